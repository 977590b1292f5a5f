//! `tmux-bridge ls`: the bridged sessions of the tmux server, with their
//! instance, the terminals attached and the attach command.

use std::process::ExitCode;

use anyhow::Context;

use crate::daemon::server::Server;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub tmux: super::TmuxArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let tmux = args.tmux.server();
        let server = Server::new(tmux.clone());
        let Some(listing) = server.list().await? else {
            println!("no tmux server is running on `{}`", args.tmux.describe());
            return Ok(ExitCode::SUCCESS);
        };
        let attached = server.attached_terminals().await?;
        println!("IDEA\tSLOT\tINSTANCE\tATTACHED\tATTACH");
        for b in &listing.bridged {
            println!(
                "{}\t{}\t{}\t{}\t{}",
                b.idea,
                b.slot,
                b.instance().unwrap_or("-"),
                attached.get(&b.line.name).copied().unwrap_or(0),
                tmux.attach_command(&b.line.name)
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}
