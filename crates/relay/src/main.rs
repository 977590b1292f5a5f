//! `tmux-relay`: the relay server's command line. `serve` runs the relay
//! until Ctrl-C or SIGTERM, then shuts down gracefully (WebSockets closed
//! with 1001, store closed). Logging is set up here and only here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use relay::auth::SocketCaps;
use relay::{Config, Relay, Retention, config};

#[derive(Parser, Debug)]
#[command(name = "tmux-relay", version, about = "The tmux-bridge relay server")]
struct Cli {
    /// Log lines as text, or one JSON object per line (the filter is
    /// RUST_LOG's, default info).
    #[arg(long, global = true, env = "TMUX_RELAY_LOG_FORMAT", value_enum, default_value_t = relay::logs::LogFormat::Text)]
    log_format: relay::logs::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve runners, browsers and the page.
    Serve(Box<ServeArgs>),
    /// Manage users (`user add NAME`).
    User(relay::auth::cli::UserArgs),
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TMUX_RELAY_LISTEN", default_value = config::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Database URL: sqlite://PATH or postgres://... (default: SQLite
    /// tmux-relay.db in the data dir).
    #[arg(long, env = "TMUX_RELAY_DATABASE_URL")]
    database_url: Option<String>,
    /// Directory for the signing secret and the default database (default:
    /// the OS data dir + /tmux-bridge).
    #[arg(long, env = "TMUX_RELAY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// URL browsers use to reach the relay; WebSocket Origins must match it
    /// (default: http://<listen>).
    #[arg(long, env = "TMUX_RELAY_PUBLIC_URL")]
    public_url: Option<String>,
    /// Serve the page from this built web/dist instead of the one in the binary.
    #[arg(long, env = "TMUX_RELAY_WEB_DIR")]
    web_dir: Option<PathBuf>,
    /// Snapshots kept per terminal session.
    #[arg(long, env = "TMUX_RELAY_KEEP_SNAPSHOTS", default_value_t = Retention::default().keep_snapshots)]
    keep_snapshots: u32,
    /// Days finished jobs (with their logs) and ingested log lines are
    /// kept; 0 keeps them forever.
    #[arg(long, env = "TMUX_RELAY_LOG_RETENTION_DAYS", default_value_t = Retention::default().log_days)]
    log_retention_days: u32,
    /// Byte budget per terminal session (frames plus snapshots).
    #[arg(long, env = "TMUX_RELAY_MAX_SESSION_BYTES", default_value_t = Retention::default().max_bytes)]
    max_session_bytes: u64,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs
    /// --tls-key. Without it the relay speaks plain HTTP (put it behind a
    /// TLS proxy, or keep it on loopback).
    #[arg(
        long,
        env = "TMUX_RELAY_TLS_CERT",
        value_name = "PEM",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        env = "TMUX_RELAY_TLS_KEY",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
    /// Also serve /metrics, /healthz and /readyz on this address (plain
    /// HTTP; keep it on loopback or a private network). Without it, and
    /// without --metrics-token-file, /metrics is not served at all.
    #[arg(long, env = "TMUX_RELAY_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// A file holding the bearer token GET /metrics requires (at least 16
    /// printable characters). With it, /metrics is served on the main
    /// listener too, to that token only.
    #[arg(long, env = "TMUX_RELAY_METRICS_TOKEN_FILE", value_name = "FILE")]
    metrics_token_file: Option<PathBuf>,
    /// Serve dev server previews on this address (issue 12). Each preview
    /// gets its own origin from --preview-url; see docs/previews.md.
    #[arg(long, env = "TMUX_RELAY_PREVIEW_LISTEN", value_name = "ADDR")]
    preview_listen: Option<SocketAddr>,
    /// The preview origins: `{id}` is each preview's first host label,
    /// `{port}` the preview listener's port. Use a registrable domain of
    /// its own with wildcard DNS and TLS in a deployment
    /// (`https://{id}.preview.example`).
    #[arg(
        long,
        env = "TMUX_RELAY_PREVIEW_URL",
        value_name = "TEMPLATE",
        default_value = "http://{id}.localhost:{port}"
    )]
    preview_url: String,
    /// Cluster mode: join the other relays on this NATS server (JetStream
    /// enabled), e.g. nats://127.0.0.1:4222. Every relay of a cluster uses
    /// the same PostgreSQL database. Without it: one process, no NATS.
    #[arg(long, env = "TMUX_RELAY_NATS_URL", value_name = "URL")]
    nats_url: Option<String>,
    /// Concurrent WebSockets one account may hold, its runners' included
    /// (in a cluster: on every relay together; docs/deploy.md, "WebSocket
    /// caps"); 4429 beyond.
    #[arg(long, env = "TMUX_RELAY_MAX_SOCKETS_PER_ACCOUNT", value_name = "N", default_value_t = SocketCaps::default().per_account, value_parser = at_least_one)]
    max_sockets_per_account: usize,
    /// Concurrent WebSockets one client address may hold (in a cluster: on
    /// every relay together; behind a reverse proxy every browser shares
    /// the proxy's address); 4429 beyond.
    #[arg(long, env = "TMUX_RELAY_MAX_SOCKETS_PER_ADDRESS", value_name = "N", default_value_t = SocketCaps::default().per_addr, value_parser = at_least_one)]
    max_sockets_per_address: usize,
    /// Concurrent WebSockets this relay holds in all (per relay, also in a
    /// cluster).
    #[arg(long, env = "TMUX_RELAY_MAX_SOCKETS", value_name = "N", default_value_t = SocketCaps::default().global, value_parser = at_least_one)]
    max_sockets: usize,
    /// Seconds between prune passes; 0 disables pruning.
    #[arg(long, env = "TMUX_RELAY_PRUNE_INTERVAL", default_value_t = 60)]
    prune_interval_secs: u64,
}

/// A cap of at least 1 (a cap of 0 would refuse every socket).
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    relay::logs::init(relay::logs::env_filter(None, "info"), cli.log_format);
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(*args)),
        Command::User(args) => runtime.block_on(relay::auth::cli::run(args)),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let data_dir = args.data_dir.unwrap_or_else(config::default_data_dir);
    let mut cfg = Config::new(args.listen, data_dir);
    if let Some(url) = args.database_url {
        cfg.database_url = url;
    }
    cfg.public_url = args.public_url;
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        cfg.tls = Some(relay::tls::TlsFiles { cert, key });
    }
    if let Some(dir) = args.web_dir {
        cfg.web_dir = dir;
    }
    cfg.metrics_listen = args.metrics_listen;
    cfg.limits.sockets = SocketCaps {
        per_account: args.max_sockets_per_account,
        per_addr: args.max_sockets_per_address,
        global: args.max_sockets,
    };
    cfg.nats_url = args.nats_url;
    cfg.preview = args
        .preview_listen
        .map(|listen| relay::preview::PreviewConfig {
            listen,
            url: args.preview_url.clone(),
            limits: relay::preview::PreviewLimits::default(),
        });
    if let Some(path) = args.metrics_token_file {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the metrics token file {}", path.display()))?;
        let token = config::MetricsToken::new(&text)
            .with_context(|| format!("the metrics token in {}", path.display()))?;
        cfg.metrics_token = Some(token);
    }
    cfg.retention = Retention {
        keep_snapshots: args.keep_snapshots.max(1),
        max_bytes: args.max_session_bytes,
        log_days: args.log_retention_days,
        interval: (args.prune_interval_secs > 0)
            .then(|| Duration::from_secs(args.prune_interval_secs)),
    };
    let relay = Relay::start(cfg).await.context("starting the relay")?;
    println!("tmux-relay listening on {}", relay.public_url());
    shutdown_signal().await;
    relay.shutdown().await.context("shutting down")?;
    Ok(())
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
