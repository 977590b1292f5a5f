//! `tmux-bridge replay [FILE|-] [--size WxH] [--format text|ansi]` (being written: issue 3).

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A raw control-mode stream; `-` or absent: standard input.
    pub file: Option<PathBuf>,
}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("replay is not implemented yet")
}
