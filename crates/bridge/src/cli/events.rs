//! `tmux-bridge events [FILE|-]` (being written: issue 2).

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A raw control-mode stream as `tmux -C` or `-CC` writes it; `-` or absent: standard input.
    pub file: Option<PathBuf>,
}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("events is not implemented yet")
}
