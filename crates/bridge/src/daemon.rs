//! The runner daemon (`tmux-bridge run`): one process per machine and
//! account serving every bridged session of one tmux server over one
//! WebSocket to the relay (protocol 2, docs/protocol.md §4).
//!
//! - [`server`]: the tmux server through plain `tmux` processes (list,
//!   instance ids, create, kill) and the lock that serializes control-client
//!   starts and session creation/kills on it.
//! - [`watcher`]: a control client that only hears `%sessions-changed`.
//! - [`supervisor`]: which sessions are served, on which channel; commands
//!   from the relay; what the relay hears when a session ends.
//! - [`agents`]: the built-in agent kinds' commands (`agents.json`) and
//!   an agent's command line, refused when its program is not installed.
//! - [`jobs`]: jobs in tmux windows (plain jobs, agents, dev servers),
//!   their exit status and their logs.
//! - [`ports`]: the ports detected for running dev servers, the only ones
//!   a preview tunnel may dial; [`detect`] parses what [`sockets`] reads
//!   from the system (/proc or lsof) and the URLs a server prints.
//! - [`tunnel`]: preview tunnels (§4.8): loopback connections to those
//!   ports, pumped under credit windows; run from the uplink task.
//! - [`memory`]: the last 256 command results (pure).
//! - [`state`]: the state file `tmux-bridge status` reads.
//!
//! Each served session is [`crate::session`]: its control client and core
//! under one task; [`crate::uplink`] is the WebSocket.

pub mod agents;
pub mod detect;
pub mod jobs;
pub mod memory;
pub mod ports;
pub mod server;
pub mod sockets;
pub mod state;
pub mod supervisor;
pub mod tunnel;
pub mod watcher;

use std::path::PathBuf;
use std::time::Duration;

use protocol::runner::{
    FEATURE_JOBS, FEATURE_KEYS, FEATURE_REBASE, FEATURE_TMUX, FEATURE_TUNNEL, FEATURE_WATCH, Hello,
    RUNNER_PROTOCOL_VERSION,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::core::CoreConfig;
use crate::session::Rejected;
use crate::tmux::TmuxServer;
use crate::uplink::{self, UplinkConfig, UplinkEnd};

/// Everything the daemon needs.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub server: TmuxServer,
    /// The relay's URL (the primary).
    pub relay_url: String,
    /// More URLs of relays of the same cluster, tried in order when the
    /// current one fails (failover; see `uplink`).
    pub failover_urls: Vec<String>,
    pub runner_token: String,
    /// How to trust the relay (`--ca-file`, `--insecure`).
    pub tls: crate::net::TlsOptions,
    /// Unacked frames spill under `<data_dir>/spill`; the state file is
    /// `<data_dir>/daemon.json`.
    pub data_dir: PathBuf,
    pub core: CoreConfig,
    /// Size of a session the daemon creates (columns, rows).
    pub initial_size: (u16, u16),
    /// The commands of the built-in agent kinds.
    pub agents: agents::AgentCommands,
    /// The relay is in this process (`tmux-bridge up`; see
    /// [`UplinkConfig::in_process`]).
    pub in_process: Option<crate::net::InProcessDial>,
    /// Hand back the code pages the process stopped using once the uplink
    /// has carried no traffic for this long ([`crate::resident`]); `None`
    /// never does.
    pub trim_after: Option<Duration>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Runs the daemon until `cancel` fires (`Ok`) or the relay rejects the
/// token (`Err` holding [`Rejected`]).
pub async fn run(mut cfg: DaemonConfig, cancel: CancellationToken) -> anyhow::Result<()> {
    let state_path = cfg.data_dir.join(state::STATE_FILE);
    // Two daemons on one data dir would serve the same sessions twice (and,
    // with one token, replace each other's connection at the relay).
    if let Some(other) = state::DaemonState::read(&state_path)
        && other.pid != std::process::id()
        && other.alive()
    {
        anyhow::bail!(
            "a runner daemon is already running with data dir {} (pid {}; see `tmux-bridge status`)",
            cfg.data_dir.display(),
            other.pid
        );
    }
    let server = server::Server::new(cfg.server.clone());
    let tmux_version = server.version().await;
    cfg.core.keys_via_client = server::has_send_keys_k(&tmux_version);
    // The pane models follow this tmux's emulator (transcript::emu::Profile).
    cfg.core.tmux_profile = transcript::emu::Profile::parse(&tmux_version);
    tracing::info!(version = %tmux_version, profile = %cfg.core.tmux_profile, "tmux version");
    let hello = Hello {
        v: RUNNER_PROTOCOL_VERSION,
        host: crate::session::host_name(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        tmux_version: tmux_version.clone(),
        started_at: now_ms(),
        features: vec![
            FEATURE_KEYS.to_owned(),
            FEATURE_TMUX.to_owned(),
            FEATURE_JOBS.to_owned(),
            FEATURE_TUNNEL.to_owned(),
            FEATURE_WATCH.to_owned(),
            FEATURE_REBASE.to_owned(),
        ],
    };
    info!(%tmux_version, relay = %cfg.relay_url, "runner daemon starting");
    let activity = crate::resident::Activity::default();
    let trim_cancel = cancel.child_token();
    if let Some(after) = cfg.trim_after {
        tokio::spawn(crate::resident::trim_when_quiet(
            activity.clone(),
            after,
            trim_cancel.clone(),
        ));
    }
    let (to_uplink, uplink_rx) = mpsc::channel(1024);
    let (from_uplink_tx, from_uplink) = mpsc::unbounded_channel();
    let uplink_cancel = CancellationToken::new();
    let mut sup = supervisor::Supervisor::new(&cfg, server, to_uplink.clone(), state_path.clone());
    let tunnels = tunnel::TunnelSetup {
        ports: sup.ports(),
        to_uplink,
    };
    let mut uplink_task = tokio::spawn(uplink::run(
        UplinkConfig {
            relay_urls: std::iter::once(cfg.relay_url.clone())
                .chain(cfg.failover_urls.iter().cloned())
                .collect(),
            runner_token: cfg.runner_token.clone(),
            hello,
            tls: cfg.tls.clone(),
            tunnels: Some(tunnels),
            in_process: cfg.in_process.clone(),
            activity,
        },
        uplink_rx,
        from_uplink_tx,
        uplink_cancel.clone(),
    ));
    let ended = sup.run(from_uplink, &mut uplink_task, &cancel).await;
    // The cores first (their last frames and snapshots go out), then the
    // uplink (`close` `stopping` for every channel).
    sup.shutdown(Duration::from_secs(5)).await;
    uplink_cancel.cancel();
    trim_cancel.cancel();
    let end = match ended {
        Some(end) => Some(end),
        None => tokio::time::timeout(Duration::from_secs(3), &mut uplink_task)
            .await
            .ok()
            .and_then(Result::ok),
    };
    let _ = std::fs::remove_file(&state_path);
    match end {
        Some(UplinkEnd::Rejected(reason)) => Err(Rejected(reason).into()),
        _ => Ok(()),
    }
}
