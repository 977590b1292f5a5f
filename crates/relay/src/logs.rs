//! The log output of `tmux-relay` and `tmux-bridge` (each binary's `main`
//! installs it, nothing else does): `tracing`'s fmt layer under an
//! `EnvFilter`, plus a filter no configuration can lift that drops the
//! events known to carry secrets or pane bytes (issue 10: no token,
//! password, pairing code or pane byte in the logs at any level).
//!
//! The layer writes human-readable lines ([`LogFormat::Text`]) or one JSON
//! object per event ([`LogFormat::Json`]: `timestamp`, `level`, `target`,
//! the event's fields at the top level, and its spans) for a log collector.
//! Both formats write the same events and fields, past the same filters.
//!
//! Our own code never logs a secret or a payload. Some dependencies do at
//! `trace`: tungstenite dumps every WebSocket frame it reads or writes in
//! hex (pane output, keystrokes) and every text message in full, through
//! the `log` crate. Those events are dropped whatever `RUST_LOG` says;
//! their `debug` and higher events (connection states, close codes) stay.

use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{FilterFn, LevelFilter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Targets (and their children) whose `trace` events carry message
/// payloads.
pub const PAYLOAD_TARGETS: &[&str] = &["tungstenite", "tokio_tungstenite"];

/// Whether an event may be written: false for the payload dumps of
/// [`PAYLOAD_TARGETS`].
pub fn allowed(meta: &Metadata<'_>) -> bool {
    if *meta.level() != Level::TRACE {
        return true;
    }
    let target = meta.target();
    !PAYLOAD_TARGETS.iter().any(|t| {
        target == *t
            || target
                .strip_prefix(t)
                .is_some_and(|rest| rest.starts_with("::"))
    })
}

/// How log events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The fmt layer both binaries use, writing to `writer` in `format` under
/// `filter`, with the payload dumps removed.
pub fn layer<S, W>(
    filter: EnvFilter,
    writer: W,
    format: LogFormat,
) -> impl Layer<S> + Send + Sync + 'static
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer);
    let fmt = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
    };
    // The payload filter only narrows: it takes the level filter's ceiling
    // as its own. Without a ceiling the subscriber's would be `trace`, and
    // `init` hands that to the `log` crate, whose every `trace!` (one per
    // WebSocket frame read or written, in tungstenite) would then go
    // through both filters before being dropped.
    let ceiling = filter.max_level_hint().unwrap_or(LevelFilter::TRACE);
    fmt.with_filter(filter)
        .with_filter(FilterFn::new(allowed).with_max_level_hint(ceiling))
}

/// The filter from the environment variable `var` (then `RUST_LOG`), else
/// `default`.
pub fn env_filter(var: Option<&str>, default: &str) -> EnvFilter {
    var.and_then(|v| EnvFilter::try_from_env(v).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new(default))
}

/// Installs [`layer`] writing to standard error as the global subscriber
/// (and the `log` crate's logger). Call once, from `main`.
pub fn init(filter: EnvFilter, format: LogFormat) {
    tracing_subscriber::registry()
        .with(layer(filter, std::io::stderr, format))
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_targets_are_dropped_at_trace_only() {
        use tracing::callsite::Identifier;
        use tracing::field::FieldSet;
        use tracing::metadata::Kind;
        struct Cs;
        impl tracing::callsite::Callsite for Cs {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &Metadata<'_> {
                unreachable!()
            }
        }
        static CS: Cs = Cs;
        let meta = |target: &'static str, level| {
            Metadata::new(
                "e",
                target,
                level,
                None,
                None,
                None,
                FieldSet::new(&[], Identifier(&CS)),
                Kind::EVENT,
            )
        };
        assert!(!allowed(&meta(
            "tungstenite::protocol::frame",
            Level::TRACE
        )));
        assert!(!allowed(&meta("tungstenite", Level::TRACE)));
        assert!(!allowed(&meta("tokio_tungstenite::compat", Level::TRACE)));
        assert!(allowed(&meta("tungstenite::protocol", Level::DEBUG)));
        assert!(allowed(&meta("tungstenite_other", Level::TRACE)));
        assert!(allowed(&meta("relay::ws", Level::TRACE)));
    }

    #[test]
    fn the_ceiling_is_the_level_filter_s() {
        // What `init` gives the `log` crate as its maximum level.
        let ceiling = |directives: &str| {
            tracing_subscriber::registry()
                .with(layer(
                    EnvFilter::new(directives),
                    std::io::sink,
                    LogFormat::Text,
                ))
                .max_level_hint()
        };
        assert_eq!(ceiling("warn"), Some(LevelFilter::WARN));
        assert_eq!(ceiling("info,relay=debug"), Some(LevelFilter::DEBUG));
        assert_eq!(ceiling("warn,latency=trace"), Some(LevelFilter::TRACE));
    }

    #[derive(Clone, Default)]
    struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Logs through the layer in `format` and returns what it wrote.
    fn logged(format: LogFormat) -> String {
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::registry().with(layer(
            EnvFilter::new("trace"),
            move || writer.clone(),
            format,
        ));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("runner_ws", runner = "r-1");
            let _in = span.enter();
            tracing::info!(session = 7, bytes = 42, "batch");
            tracing::trace!(target: "tungstenite::protocol", "frame SECRET-PAYLOAD");
        });
        let bytes = buf.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn json_format_writes_one_object_per_event_past_the_same_filter() {
        let out = logged(LogFormat::Json);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "only the info event: {out}");
        let v: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON object");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "batch");
        assert_eq!(v["session"], 7);
        assert_eq!(v["bytes"], 42);
        assert_eq!(v["span"]["runner"], "r-1");
        assert!(v["timestamp"].is_string());
        assert!(!out.contains("SECRET-PAYLOAD"));
        let text = logged(LogFormat::Text);
        assert!(text.contains("batch") && text.contains("session"), "{text}");
        assert!(!text.starts_with('{'), "text is not JSON: {text}");
        assert!(!text.contains("SECRET-PAYLOAD"));
    }
}
