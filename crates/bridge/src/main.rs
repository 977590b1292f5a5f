//! `tmux-bridge`: the runner's command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use bridge::cli;

#[derive(Parser, Debug)]
#[command(name = "tmux-bridge", version, about = "Serve your tmux sessions in the browser through a relay")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the events of a raw control-mode stream as JSON lines.
    Events(cli::events::Args),
    /// Replay a raw control-mode stream through the screen models and print every pane.
    Replay(cli::replay::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Events(args) => cli::events::run(args),
        Command::Replay(args) => cli::replay::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("tmux-bridge: {err:#}");
            ExitCode::FAILURE
        }
    }
}
