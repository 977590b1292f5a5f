//! `tmux-bridge kill IDEA [SLOT]`: kills the tmux session for (idea,
//! slot); the running daemon tells the relay it is closed.

use std::process::ExitCode;

use anyhow::Context;

use crate::daemon::server::Server;

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

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let server = args.tmux.server();
        let (name, _) = crate::session::names(&server, &args.idea, &args.slot)?;
        if Server::new(server).kill(&name, None).await? {
            println!("Killed tmux session {name}.");
            Ok(ExitCode::SUCCESS)
        } else {
            eprintln!("tmux-bridge: no tmux session {name}");
            Ok(ExitCode::FAILURE)
        }
    })
}
