//! `tmux-bridge new IDEA [SLOT]`: creates the tmux session for (idea,
//! slot) following the naming scheme (the running daemon picks it up
//! within a second) and prints the command to attach to it.

use std::path::PathBuf;
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
    /// The session's working directory.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Size of the session, as COLSxROWS.
    #[arg(long, default_value = "120x32", value_parser = super::parse_size)]
    pub size: (u16, u16),
    #[command(flatten)]
    pub tmux: super::TmuxArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let server = args.tmux.server();
        let (name, attach) = crate::session::names(&server, &args.idea, &args.slot)?;
        let cwd = args.cwd.as_ref().map(|p| p.display().to_string());
        let created = Server::new(server)
            .create(&args.idea, &args.slot, args.size, cwd.as_deref(), None)
            .await?;
        if created {
            println!("Created tmux session {name}.");
        } else {
            println!("tmux session {name} exists already.");
        }
        println!("Attach: {attach}");
        Ok(ExitCode::SUCCESS)
    })
}
