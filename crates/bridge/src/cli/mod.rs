//! Subcommands of `tmux-bridge`, one file each.

pub mod attach;
pub mod events;
pub mod kill;
#[cfg(feature = "up")]
pub mod login_link;
pub mod ls;
pub mod new;
pub mod pair;
pub mod replay;
pub mod run;
pub mod service;
pub mod status;
#[cfg(feature = "up")]
pub mod up;

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Reads FILE, or standard input when the path is `-` or absent.
pub fn read_input(path: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    match path {
        None => std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading standard input")?,
        Some(p) if p == Path::new("-") => std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading standard input")?,
        Some(p) => {
            return std::fs::read(p).with_context(|| format!("reading {}", p.display()));
        }
    };
    Ok(buf)
}

/// Parses `COLSxROWS`.
pub fn parse_size(s: &str) -> Result<(u16, u16), String> {
    let (c, r) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("expected COLSxROWS, got {s:?}"))?;
    let cols: u16 = c.parse().map_err(|_| format!("bad column count {c:?}"))?;
    let rows: u16 = r.parse().map_err(|_| format!("bad row count {r:?}"))?;
    if !(1..=1000).contains(&cols) || !(1..=1000).contains(&rows) {
        return Err(format!("size {cols}x{rows} is outside 1..=1000"));
    }
    Ok((cols, rows))
}

/// When the daemon (`run`, `up`) hands back the code pages it stopped using.
#[derive(clap::Args, Debug, Clone)]
pub struct TrimArgs {
    /// Seconds without pane traffic after which the runner drops its
    /// mappings of the code pages it no longer runs (they stay in the page
    /// cache; its resident memory falls to what its idle loop touches);
    /// 0 never does.
    #[arg(
        long,
        env = "TMUX_BRIDGE_TRIM_AFTER",
        default_value_t = 15,
        value_name = "SECS",
        value_parser = clap::value_parser!(u64).range(0..=86_400)
    )]
    pub trim_after: u64,
}

impl TrimArgs {
    /// The quiet time, `None` for never.
    pub fn after(&self) -> Option<std::time::Duration> {
        (self.trim_after > 0).then(|| std::time::Duration::from_secs(self.trim_after))
    }
}

/// Which tmux server: the flags every subcommand that talks to tmux takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TmuxArgs {
    /// Use the tmux server on this socket name (`tmux -L NAME`).
    #[arg(long, env = "TMUX_BRIDGE_SOCKET")]
    pub tmux_socket: Option<String>,
    /// Use the tmux server on this socket path (`tmux -S PATH`).
    #[arg(long, env = "TMUX_BRIDGE_SOCKET_PATH", conflicts_with = "tmux_socket")]
    pub tmux_socket_path: Option<PathBuf>,
    /// tmux config file to use if this starts the tmux server.
    #[arg(long)]
    pub tmux_config: Option<PathBuf>,
}

impl TmuxArgs {
    pub fn server(&self) -> crate::tmux::TmuxServer {
        crate::tmux::TmuxServer {
            socket_name: self.tmux_socket.clone(),
            socket_path: self.tmux_socket_path.clone(),
            config: self.tmux_config.clone(),
        }
    }

    /// For messages: `-L NAME`, `-S PATH` or `default`.
    pub fn describe(&self) -> String {
        match (&self.tmux_socket, &self.tmux_socket_path) {
            (Some(n), _) => format!("-L {n}"),
            (None, Some(p)) => format!("-S {}", p.display()),
            (None, None) => "default".into(),
        }
    }
}

/// Runs the daemon until Ctrl-C/SIGTERM (then `Ok`) or until it ends by
/// itself (its result, e.g. the relay refused the token).
/// The built-in agent kinds' commands from `agents.json` beside the
/// credentials (defaults when it is missing); a bad file stops the start.
pub fn agent_commands() -> anyhow::Result<crate::daemon::agents::AgentCommands> {
    use crate::daemon::agents::AgentCommands;
    match AgentCommands::default_path() {
        Some(path) => Ok(AgentCommands::load(&path)?),
        None => Ok(AgentCommands::default()),
    }
}

pub async fn daemon_until_signal(cfg: crate::daemon::DaemonConfig) -> anyhow::Result<()> {
    let cancel = tokio_util::sync::CancellationToken::new();
    let task_cancel = cancel.clone();
    let mut task = tokio::spawn(async move { crate::daemon::run(cfg, task_cancel).await });
    let ended = tokio::select! {
        _ = shutdown_signal() => None,
        r = &mut task => Some(r),
    };
    cancel.cancel();
    let result = match ended {
        Some(r) => r,
        None => {
            tracing::info!("shutting down");
            match tokio::time::timeout(std::time::Duration::from_secs(10), task).await {
                Ok(r) => r,
                Err(_) => return Ok(()),
            }
        }
    };
    result.map_err(|err| anyhow::anyhow!("the runner task failed: {err}"))?
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
