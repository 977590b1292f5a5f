//! `tmux-bridge status`: whether a runner daemon is running (its state
//! file in the data dir), its relay, whether it is connected, and the
//! sessions it serves.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::daemon::state::{DaemonState, STATE_FILE};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The daemon's data dir (default: the user's data dir).
    #[arg(long, env = "TMUX_BRIDGE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print the state as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dir = args
        .data_dir
        .unwrap_or_else(relay::config::default_data_dir);
    let state = DaemonState::read(&dir.join(STATE_FILE)).filter(DaemonState::alive);
    let Some(s) = state else {
        println!(
            "no tmux-bridge runner is running (data dir {})",
            dir.display()
        );
        return Ok(ExitCode::from(3));
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("runner: running (pid {}), tmux {}", s.pid, s.tmux);
    match (&s.connected, &s.runner_id, &s.last_error) {
        (true, id, _) => println!(
            "relay:  {} (connected, runner {})",
            s.relay_url,
            id.as_deref().unwrap_or("?")
        ),
        (false, _, Some(err)) => println!("relay:  {} (not connected: {err})", s.relay_url),
        (false, _, None) => println!("relay:  {} (connecting)", s.relay_url),
    }
    if !s.relay_urls.is_empty() {
        println!("relays: {} (in failover order)", s.relay_urls.join(", "));
    }
    println!("sessions: {}", s.sessions.len());
    for x in &s.sessions {
        println!("  {}/{} (channel {}): {}", x.idea, x.slot, x.ch, x.attach);
    }
    Ok(ExitCode::SUCCESS)
}
