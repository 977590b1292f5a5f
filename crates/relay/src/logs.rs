//! The log output of `tmux-relay` and `tmux-bridge` (each binary's `main`
//! installs it, nothing else does): `tracing`'s fmt layer under an
//! `EnvFilter`, plus a filter no configuration can lift that drops the
//! events known to carry secrets or pane bytes (issue 10: no token,
//! password, pairing code or pane byte in the logs at any level).
//!
//! Our own code never logs a secret or a payload. Some dependencies do at
//! `trace`: tungstenite dumps every WebSocket frame it reads or writes in
//! hex (pane output, keystrokes) and every text message in full, through
//! the `log` crate. Those events are dropped whatever `RUST_LOG` says;
//! their `debug` and higher events (connection states, close codes) stay.

use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::FilterFn;
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

/// The fmt layer both binaries use, writing to `writer` under `filter`,
/// with the payload dumps removed.
pub fn layer<S, W>(filter: EnvFilter, writer: W) -> impl Layer<S> + Send + Sync + 'static
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_filter(filter)
        .with_filter(FilterFn::new(allowed))
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
pub fn init(filter: EnvFilter) {
    tracing_subscriber::registry()
        .with(layer(filter, std::io::stderr))
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
}
