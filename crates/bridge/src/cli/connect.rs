//! `tmux-bridge connect`: serve one tmux session through a relay that runs
//! elsewhere, with a runner token (from `--token`/`TMUX_BRIDGE_TOKEN`, or
//! the credentials `tmux-bridge pair` saved). Reconnects on its own; stops
//! only on Ctrl-C/SIGTERM or when the relay refuses the token.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::core::CoreConfig;
use crate::session::{self, SessionConfig};
use crate::tmux::TmuxServer;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The relay's URL (http:// or https://).
    #[arg(long, env = "TMUX_BRIDGE_RELAY")]
    pub relay: Option<String>,
    /// The runner token; prefer the environment variable or the saved credentials.
    #[arg(long, env = "TMUX_BRIDGE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The idea the session belongs to.
    #[arg(long, default_value = "local")]
    pub idea: String,
    /// The slot of the session within the idea.
    #[arg(long, default_value = "primary")]
    pub slot: String,
    /// Use the tmux server on this socket name (`tmux -L NAME`).
    #[arg(long, env = "TMUX_BRIDGE_SOCKET")]
    pub tmux_socket: Option<String>,
    /// tmux config file to use if this starts the tmux server.
    #[arg(long)]
    pub tmux_config: Option<PathBuf>,
    /// Where unacked frames spill to disk (default: the user's data dir).
    #[arg(long, env = "TMUX_BRIDGE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Size of the session when it is created, as COLSxROWS.
    #[arg(long, default_value = "120x32", value_parser = super::up::parse_size)]
    pub size: (u16, u16),
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(connect(args))
}

async fn connect(args: Args) -> anyhow::Result<ExitCode> {
    let (relay_url, token) = match (args.relay.clone(), args.token.clone()) {
        (Some(r), Some(t)) => (r, t),
        _ => anyhow::bail!("no runner token: pass --relay and --token (or TMUX_BRIDGE_RELAY and TMUX_BRIDGE_TOKEN)"),
    };
    let data_dir = args.data_dir.clone().unwrap_or_else(relay::config::default_data_dir);
    let server = TmuxServer { socket_name: args.tmux_socket.clone(), socket_path: None, config: args.tmux_config.clone() };
    let (name, attach) = session::names(&server, &args.idea, &args.slot)?;
    println!("tmux-bridge is serving tmux session {name} through {relay_url}");
    println!("Attach: {attach}");

    let cancel = CancellationToken::new();
    let cfg = SessionConfig {
        server,
        idea: args.idea.clone(),
        slot: args.slot.clone(),
        relay_url,
        runner_token: token,
        spill_dir: data_dir.join("spill"),
        core: CoreConfig::default(),
        initial_size: args.size,
    };
    let task_cancel = cancel.clone();
    let mut task = tokio::spawn(async move { session::run(cfg, task_cancel).await });
    let result = tokio::select! {
        _ = super::up::shutdown_signal() => None,
        r = &mut task => Some(r),
    };
    cancel.cancel();
    let result = match result {
        Some(r) => r,
        None => match tokio::time::timeout(std::time::Duration::from_secs(5), task).await {
            Ok(r) => r,
            Err(_) => return Ok(ExitCode::SUCCESS),
        },
    };
    match result {
        Ok(Ok(())) => Ok(ExitCode::SUCCESS),
        Ok(Err(err)) => {
            eprintln!("tmux-bridge: {err:#}");
            Ok(ExitCode::FAILURE)
        }
        Err(err) => Err(anyhow::anyhow!("the bridge task failed: {err}")),
    }
}
