//! `tmux-bridge`: the runner's command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use bridge::cli;

#[derive(Parser, Debug)]
#[command(
    name = "tmux-bridge",
    version,
    about = "Serve your tmux sessions in the browser through a relay"
)]
struct Cli {
    /// Log lines as text, or one JSON object per line.
    #[arg(long, global = true, env = "TMUX_BRIDGE_LOG_FORMAT", value_enum, default_value_t = relay::logs::LogFormat::Text)]
    log_format: relay::logs::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the events of a raw control-mode stream as JSON lines.
    Events(cli::events::Args),
    /// Replay a raw control-mode stream through the screen models and print every pane.
    Replay(cli::replay::Args),
    /// Pair this machine with an account on a relay (prints a code to approve on its page).
    Pair(cli::pair::Args),
    /// Serve your tmux sessions in the browser through an embedded local relay (the local default).
    #[cfg(feature = "up")]
    Up(cli::up::Args),
    /// Run the runner daemon: serve every bridged tmux session through a relay, with a runner token.
    #[command(alias = "connect")]
    Run(cli::run::Args),
    /// Create the tmux session for IDEA and SLOT (the runner serves it) and print how to attach.
    New(cli::new::Args),
    /// Attach this terminal to the tmux session for IDEA and SLOT.
    Attach(cli::attach::Args),
    /// Kill the tmux session for IDEA and SLOT.
    Kill(cli::kill::Args),
    /// List the bridged tmux sessions.
    Ls(cli::ls::Args),
    /// Is the runner daemon running, connected, and what it serves.
    Status(cli::status::Args),
    /// Run the runner daemon as a background service that starts at login (systemd user unit, launchd agent).
    Service(cli::service::Args),
    /// Print a fresh one-time login link for the running `tmux-bridge up`.
    #[cfg(feature = "up")]
    LoginLink(cli::login_link::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr; `TMUX_BRIDGE_LOG` (or `RUST_LOG`) picks the level.
    // The relay's log layer: no payload dump of a dependency reaches the
    // output at any level (issue 10).
    relay::logs::init(
        relay::logs::env_filter(Some("TMUX_BRIDGE_LOG"), "warn"),
        cli.log_format,
    );
    let result = match cli.command {
        Command::Events(args) => cli::events::run(args),
        Command::Replay(args) => cli::replay::run(args),
        Command::Pair(args) => cli::pair::run(args),
        #[cfg(feature = "up")]
        Command::Up(args) => cli::up::run(args),
        Command::Run(args) => cli::run::run(args),
        Command::New(args) => cli::new::run(args),
        Command::Attach(args) => cli::attach::run(args),
        Command::Kill(args) => cli::kill::run(args),
        Command::Ls(args) => cli::ls::run(args),
        Command::Status(args) => cli::status::run(args),
        Command::Service(args) => cli::service::run(args),
        #[cfg(feature = "up")]
        Command::LoginLink(args) => cli::login_link::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("tmux-bridge: {err:#}");
            ExitCode::FAILURE
        }
    }
}
