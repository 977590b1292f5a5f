//! `tmux-bridge service install|uninstall|status`: the runner daemon as a
//! per-user background service that starts at login: a systemd user unit
//! on Linux, a launchd agent on macOS. The service runs `tmux-bridge run`
//! with the credentials `tmux-bridge pair` saved, so no token is written
//! into the unit; writing the unit is pure ([`systemd_unit`],
//! [`launchd_plist`]), loading it runs `systemctl --user` or `launchctl`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

/// The systemd unit's name, and the launchd agent's label.
pub const UNIT: &str = "tmux-bridge.service";
pub const LABEL: &str = "dev.tmux-bridge.runner";

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Write the service and start it (now and at every login).
    Install {
        #[command(flatten)]
        tmux: super::TmuxArgs,
        /// Only write the service file; do not load or start it.
        #[arg(long)]
        no_start: bool,
    },
    /// Stop the service and remove it.
    Uninstall,
    /// Whether the service is installed and running.
    Status,
}

/// Quotes one word for a systemd `ExecStart=` line: double quotes with
/// `\` and `"` escaped, and `%` and `$` doubled (systemd expands both).
pub fn systemd_quote(word: &str) -> String {
    let mut out = String::from("\"");
    for c in word.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The systemd user unit that runs `exe` with `args`.
pub fn systemd_unit(exe: &Path, args: &[String]) -> String {
    let mut exec = systemd_quote(&exe.display().to_string());
    for a in args {
        exec.push(' ');
        exec.push_str(&systemd_quote(a));
    }
    format!(
        "# Written by `tmux-bridge service install`; remove with `tmux-bridge service uninstall`.\n\
         [Unit]\n\
         Description=tmux-bridge runner: your tmux sessions in the browser\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         ExecStart={exec}\n\
         Restart=on-failure\n\
         RestartSec=5\n\
         Environment=TMUX_BRIDGE_LOG=info\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n"
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The launchd agent that runs `exe` with `args` at login and keeps it
/// running.
pub fn launchd_plist(exe: &Path, args: &[String], log: &Path) -> String {
    let mut program = format!(
        "    <string>{}</string>\n",
        xml_escape(&exe.display().to_string())
    );
    for a in args {
        program.push_str(&format!("    <string>{}</string>\n", xml_escape(a)));
    }
    let log = xml_escape(&log.display().to_string());
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <plist version=\"1.0\">\n<dict>\n\
         \x20 <key>Label</key><string>{LABEL}</string>\n\
         \x20 <key>ProgramArguments</key>\n  <array>\n{program}  </array>\n\
         \x20 <key>RunAtLoad</key><true/>\n\
         \x20 <key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>\n\
         \x20 <key>StandardErrorPath</key><string>{log}</string>\n\
         </dict>\n</plist>\n"
    )
}

/// `run` and the tmux server's flags, as the service passes them.
fn run_args(tmux: &super::TmuxArgs) -> Vec<String> {
    let mut args = vec!["run".to_owned()];
    if let Some(n) = &tmux.tmux_socket {
        args.extend(["--tmux-socket".to_owned(), n.clone()]);
    }
    if let Some(p) = &tmux.tmux_socket_path {
        args.extend(["--tmux-socket-path".to_owned(), p.display().to_string()]);
    }
    if let Some(c) = &tmux.tmux_config {
        args.extend(["--tmux-config".to_owned(), c.display().to_string()]);
    }
    args
}

fn service_path() -> anyhow::Result<PathBuf> {
    if cfg!(target_os = "macos") {
        let home = dirs::home_dir().context("no home directory")?;
        Ok(home
            .join("Library/LaunchAgents")
            .join(format!("{LABEL}.plist")))
    } else {
        let config = dirs::config_dir().context("no config directory")?;
        Ok(config.join("systemd/user").join(UNIT))
    }
}

/// Runs a service manager command; its failure is reported, not fatal.
fn manage(program: &str, args: &[&str]) -> Result<(), String> {
    match Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("`{program}` could not run: {e}")),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let path = service_path()?;
    let macos = cfg!(target_os = "macos");
    match args.action {
        Action::Install { tmux, no_start } => {
            if crate::config::Credentials::load()
                .context("reading saved credentials")?
                .is_none()
            {
                bail!(
                    "no saved credentials: pair this machine first (`tmux-bridge pair --relay URL`)"
                );
            }
            let exe = std::env::current_exe().context("finding this program")?;
            let run = run_args(&tmux);
            let text = if macos {
                let log = dirs::home_dir()
                    .context("no home directory")?
                    .join("Library/Logs/tmux-bridge.log");
                launchd_plist(&exe, &run, &log)
            } else {
                systemd_unit(&exe, &run)
            };
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            println!("Wrote {}", path.display());
            if no_start {
                return Ok(ExitCode::SUCCESS);
            }
            let path_s = path.display().to_string();
            let loaded = if macos {
                manage("launchctl", &["load", "-w", &path_s])
            } else {
                manage("systemctl", &["--user", "daemon-reload"])
                    .and_then(|()| manage("systemctl", &["--user", "enable", "--now", UNIT]))
            };
            match loaded {
                Ok(()) => {
                    println!("The runner now starts at login, and runs now.");
                    Ok(ExitCode::SUCCESS)
                }
                Err(why) => {
                    eprintln!(
                        "tmux-bridge: the service file is written but could not be started: {why}\n\
                         Start it by hand with `{}`, or run `tmux-bridge run` yourself.",
                        if macos {
                            format!("launchctl load -w {path_s}")
                        } else {
                            format!("systemctl --user enable --now {UNIT}")
                        }
                    );
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Action::Uninstall => {
            if !path.exists() {
                println!("No service installed ({} does not exist).", path.display());
                return Ok(ExitCode::SUCCESS);
            }
            let path_s = path.display().to_string();
            let stopped = if macos {
                manage("launchctl", &["unload", "-w", &path_s])
            } else {
                manage("systemctl", &["--user", "disable", "--now", UNIT])
            };
            if let Err(why) = stopped {
                eprintln!("tmux-bridge: {why} (removing the file anyway)");
            }
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            if !macos {
                let _ = manage("systemctl", &["--user", "daemon-reload"]);
            }
            println!("Removed {}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Action::Status => {
            if !path.exists() {
                println!("not installed ({} does not exist)", path.display());
                return Ok(ExitCode::FAILURE);
            }
            println!("installed: {}", path.display());
            let active = if macos {
                manage("launchctl", &["list", LABEL])
            } else {
                manage("systemctl", &["--user", "is-active", "--quiet", UNIT])
            };
            match active {
                Ok(()) => {
                    println!("running");
                    Ok(ExitCode::SUCCESS)
                }
                Err(why) => {
                    println!("not running ({why})");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_runs_the_daemon_with_quoted_arguments_and_no_secret() {
        let unit = systemd_unit(
            Path::new("/home/me/bin/tmux bridge"),
            &run_args(&super::super::TmuxArgs {
                tmux_socket: Some("work $HOME 100%\"x".into()),
                ..Default::default()
            }),
        );
        assert!(unit.contains(
            "ExecStart=\"/home/me/bin/tmux bridge\" \"run\" \"--tmux-socket\" \"work $$HOME 100%%\\\"x\"\n"
        ));
        assert!(unit.contains("WantedBy=default.target"));
        assert!(unit.contains("Restart=on-failure"));
        assert!(!unit.to_lowercase().contains("token"));
    }

    #[test]
    fn the_plist_escapes_its_strings() {
        let p = launchd_plist(
            Path::new("/bin/tb"),
            &["run".into(), "<&>".into()],
            Path::new("/l"),
        );
        assert!(p.contains("<string>&lt;&amp;&gt;</string>"));
        assert!(p.contains(&format!("<key>Label</key><string>{LABEL}</string>")));
    }
}
