//! The relay's configuration: listen address, database URL, data and web
//! directories, public URL (for Origin checks), retention and the limits
//! that protect it (timeouts, WebSocket caps, buffers: [`Limits`]). Built by
//! `main` from flags and environment variables, or by `tmux-bridge up` for
//! the embedded relay. No I/O here beyond computing default paths.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Default listen address of `tmux-relay serve`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8417";

/// How long history is kept, and how often the pruner runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Snapshots to keep per terminal session (at least 1 is kept).
    pub keep_snapshots: u32,
    /// Byte budget per terminal session for frames plus snapshots.
    pub max_bytes: u64,
    /// Time between prune passes; `None` disables the pruner.
    pub interval: Option<Duration>,
    /// Days a finished job (its row and log) and an ingested line are
    /// kept; 0 keeps them forever.
    pub log_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep_snapshots: 4,
            max_bytes: 64 * 1024 * 1024,
            interval: Some(Duration::from_secs(60)),
            log_days: 30,
        }
    }
}

/// What the relay allows its clients (issue 10, protocol.md §6): the HTTP
/// timeouts are hyper's and tower-http's own settings, the caps are counted
/// per WebSocket, the database timeouts are the pool's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// A request's head (request line and headers) must arrive within
    /// this; it is also how long an idle keep-alive connection stays open
    /// (hyper's `header_read_timeout`).
    pub header_read_timeout: Duration,
    /// A whole request, body included, must be answered within this, else
    /// 408 (tower-http's `TimeoutLayer`); WebSockets only count up to
    /// their upgrade.
    pub request_timeout: Duration,
    /// A request body that sends nothing for this long is cut
    /// (tower-http's `RequestBodyTimeoutLayer`).
    pub body_idle_timeout: Duration,
    /// Concurrent WebSockets per account, per address and in all.
    pub sockets: crate::auth::SocketCaps,
    /// The kernel send buffer of every accepted connection (`SO_SNDBUF`;
    /// Linux doubles it). Small enough that a slow browser's backlog
    /// builds up in its relay queue, where the queue limits move it to a
    /// snapshot, rather than in the kernel; `None` leaves the OS default
    /// (autotuned up to several MiB).
    pub send_buffer: Option<u32>,
    /// How long a request waits for a database connection before the API
    /// answers 503.
    pub db_acquire_timeout: Duration,
    /// How long a SQLite write waits for a lock held by another process
    /// before the API answers 503.
    pub db_busy_timeout: Duration,
    /// With TLS, the handshake must finish within this, else the
    /// connection is dropped (the header timeout starts after it).
    pub tls_handshake_timeout: Duration,
    /// `GET /readyz` fails a check that has not answered within this.
    pub ready_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            body_idle_timeout: Duration::from_secs(10),
            sockets: crate::auth::SocketCaps::default(),
            send_buffer: Some(256 * 1024),
            db_acquire_timeout: Duration::from_secs(3),
            db_busy_timeout: Duration::from_secs(5),
            tls_handshake_timeout: Duration::from_secs(10),
            ready_timeout: Duration::from_secs(2),
        }
    }
}

/// Everything [`crate::Relay::start`] needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; port 0 picks a free port (see `RelayHandle::local_addr`).
    pub listen: SocketAddr,
    /// `sqlite://PATH`, `sqlite::memory:` or `postgres://…`.
    pub database_url: String,
    /// Holds the signing secret (and the default SQLite file).
    pub data_dir: PathBuf,
    /// The URL browsers use to reach the relay, e.g. `http://127.0.0.1:8417`;
    /// WebSocket `Origin` headers must match it. `None`: `http://<local addr>`
    /// (`https://` with [`Config::tls`]; decided after binding, so port 0
    /// works).
    pub public_url: Option<String>,
    /// A built page on disk to serve instead of the one in the binary
    /// (empty: the page built into the binary; see `http::static_files`).
    pub web_dir: PathBuf,
    pub retention: Retention,
    /// Time between passes of the search indexer (`search::indexer`; it
    /// runs again at once while there is a backlog); `None` disables it.
    pub search_interval: Option<Duration>,
    /// Time allowed for WebSockets to close on shutdown.
    pub shutdown_timeout: Duration,
    /// The relay pings every WebSocket this often; a peer silent for three
    /// intervals, or a send stuck for six, is closed with 4408 (dead TCP
    /// peers would otherwise look online for many minutes).
    pub keepalive: Duration,
    /// How often a runner sends `status` (`welcome.heartbeat_ms`); a
    /// runner silent for 2.5 times this is offline (closed with 4408).
    pub heartbeat: Duration,
    /// How long `POST`/`DELETE /api/sessions` wait for the runner's
    /// `result` before answering 504.
    pub command_timeout: Duration,
    /// Timeouts, caps and buffers.
    pub limits: Limits,
    /// Serve HTTPS with this certificate and key instead of plain HTTP.
    pub tls: Option<crate::tls::TlsFiles>,
    /// A second, plain-HTTP listener serving only `/metrics`, `/healthz`
    /// and `/readyz` (for a private network or loopback).
    pub metrics_listen: Option<SocketAddr>,
    /// The bearer token `GET /metrics` requires, on either listener.
    /// Without it, `/metrics` is served only on [`Config::metrics_listen`]
    /// (the main listener answers 404).
    pub metrics_token: Option<MetricsToken>,
    /// The preview listener (`--preview-listen`, `--preview-url`): dev
    /// servers' previews on origins that are not the app's. `None`:
    /// previews are off.
    pub preview: Option<crate::preview::PreviewConfig>,
    /// Cluster mode (`--nats-url`): several relays on one PostgreSQL
    /// database as one service over NATS with JetStream (`crate::cluster`).
    /// `None`: a single process, as before.
    pub nats_url: Option<String>,
}

/// The bearer token of `GET /metrics`. `Debug` never prints it.
#[derive(Clone)]
pub struct MetricsToken(String);

/// Why a metrics token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsTokenError {
    #[error("the metrics token must be at least {min} characters", min = MetricsToken::MIN_LEN)]
    TooShort,
    #[error("the metrics token must be printable ASCII without spaces")]
    NotPrintable,
}

impl MetricsToken {
    /// Shortest token accepted.
    pub const MIN_LEN: usize = 16;

    /// A token from `text` (surrounding whitespace, such as a file's final
    /// newline, is ignored).
    pub fn new(text: &str) -> Result<MetricsToken, MetricsTokenError> {
        let t = text.trim();
        if !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(MetricsTokenError::NotPrintable);
        }
        if t.len() < Self::MIN_LEN {
            return Err(MetricsTokenError::TooShort);
        }
        Ok(MetricsToken(t.to_owned()))
    }

    /// Whether `presented` is this token, compared in constant time (over
    /// SHA-256 digests, so the length does not show either).
    pub fn matches(&self, presented: &str) -> bool {
        use sha2::Digest;
        use subtle::ConstantTimeEq;
        let a = sha2::Sha256::digest(self.0.as_bytes());
        let b = sha2::Sha256::digest(presented.as_bytes());
        a.ct_eq(&b).into()
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(…)")
    }
}

impl Config {
    /// A configuration with every default, listening on `listen`, keeping
    /// its data (secret and SQLite database) in `data_dir`.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Config {
        Config {
            listen,
            database_url: default_database_url(&data_dir),
            data_dir,
            public_url: None,
            web_dir: PathBuf::new(),
            retention: Retention::default(),
            search_interval: Some(Duration::from_secs(1)),
            shutdown_timeout: Duration::from_secs(5),
            keepalive: Duration::from_secs(20),
            heartbeat: Duration::from_millis(protocol::runner::DEFAULT_HEARTBEAT_MS),
            command_timeout: crate::runners::COMMAND_TIMEOUT,
            limits: Limits::default(),
            tls: None,
            metrics_listen: None,
            metrics_token: None,
            preview: None,
            nats_url: None,
        }
    }
}

/// `<data dir of the OS>/tmux-bridge`, or `./tmux-bridge-data` if the OS has
/// none.
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .map(|d| d.join("tmux-bridge"))
        .unwrap_or_else(|| PathBuf::from("tmux-bridge-data"))
}

/// SQLite `tmux-relay.db` inside `data_dir`.
pub fn default_database_url(data_dir: &std::path::Path) -> String {
    format!("sqlite://{}", data_dir.join("tmux-relay.db").display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_token_is_checked_and_never_printed() {
        assert_eq!(
            MetricsToken::new("short").err(),
            Some(MetricsTokenError::TooShort)
        );
        assert_eq!(
            MetricsToken::new("has a space in it somewhere").err(),
            Some(MetricsTokenError::NotPrintable)
        );
        let t = MetricsToken::new("  0123456789abcdef0123\n").expect("a file's newline is ignored");
        assert!(t.matches("0123456789abcdef0123"));
        assert!(!t.matches("0123456789abcdef012"));
        assert!(!t.matches("0123456789abcdef01234"));
        assert!(!t.matches(""));
        assert_eq!(format!("{t:?}"), "MetricsToken(…)");
        let mut c = Config::new("127.0.0.1:0".parse().expect("addr"), PathBuf::from("d"));
        c.metrics_token = Some(t);
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
    }
}
