//! `tmux-bridge attach IDEA [SLOT]`: attaches this terminal to the tmux
//! session of (idea, slot) on the configured server, as the page's attach
//! command does (same socket, exact-name target): the process becomes
//! `tmux attach-session`, or `tmux switch-client` when run inside tmux.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};

use anyhow::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The idea the session belongs to.
    pub idea: String,
    /// The slot of the session within the idea.
    #[arg(default_value = "primary")]
    pub slot: String,
    #[command(flatten)]
    pub tmux: super::TmuxArgs,
}

/// A `tmux` for this person's terminal: the server's flags, and the
/// environment without the runner's own settings (`TMUX_BRIDGE_*`); `TMUX`
/// stays, so tmux knows when it runs inside itself.
fn tmux(server: &crate::tmux::TmuxServer) -> Command {
    let mut cmd = Command::new("tmux");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("TMUX_BRIDGE_") {
            cmd.env_remove(key);
        }
    }
    cmd.args(server.base_args());
    cmd
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let server = args.tmux.server();
    let (name, _) = crate::session::names(&server, &args.idea, &args.slot)?;
    let target = format!("={name}");
    let exists = tmux(&server)
        .args(["has-session", "-t", &target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running tmux")?
        .success();
    if !exists {
        eprintln!(
            "tmux-bridge: no tmux session {name} on the {} tmux server; make it with \
             `tmux-bridge new {} {}` or from the page",
            args.tmux.describe(),
            crate::tmux::shell_quote(&args.idea),
            crate::tmux::shell_quote(&args.slot),
        );
        return Ok(ExitCode::FAILURE);
    }
    let inside = std::env::var_os("TMUX").is_some_and(|v| !v.is_empty());
    let verb = if inside {
        "switch-client"
    } else {
        "attach-session"
    };
    let err = tmux(&server).args([verb, "-t", &target]).exec();
    Err(err).context("starting tmux")
}
