//! `tmux-bridge attach` and `tmux-bridge service` as a person runs them:
//! attach in a real terminal (a pty through `script`) to a session made
//! with `tmux-bridge new` on a private tmux server; the service written
//! into a temporary config directory.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use testkit::Tmux;

fn bridge() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tmux-bridge"));
    cmd.env_remove("TMUX").env_remove("TMUX_PANE");
    cmd
}

#[test]
fn attach_puts_this_terminal_on_the_session_and_names_a_missing_one() -> Result<()> {
    let tmux = Tmux::new("attach");
    let out = bridge()
        .args([
            "new",
            "cli",
            "one",
            "--tmux-socket",
            &tmux.socket,
            "--tmux-config",
            "/dev/null",
        ])
        .output()?;
    assert!(
        out.status.success(),
        "new: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A real terminal: `script` gives the attach a pty.
    let cmdline = format!(
        "{} attach cli one --tmux-socket {}",
        env!("CARGO_BIN_EXE_tmux-bridge"),
        tmux.socket
    );
    let mut term = Command::new("script")
        .args(["-qfec", &cmdline, "/dev/null"])
        .env_remove("TMUX")
        .env("TERM", "xterm-256color")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(15);
    let clients = loop {
        let c = tmux
            .run(&["list-clients", "-F", "#{client_session}"])
            .unwrap_or_default();
        if c.lines().any(|s| s == "tb_cli__one") {
            break c;
        }
        if Instant::now() > deadline {
            let _ = term.kill();
            bail!("no client attached to tb_cli__one: {c:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(clients.lines().count(), 1, "{clients}");
    tmux.run(&["detach-client", "-s", "=tb_cli__one"])?;
    let _ = term.wait();

    let out = bridge()
        .args(["attach", "cli", "two", "--tmux-socket", &tmux.socket])
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no tmux session tb_cli__two") && err.contains("tmux-bridge new cli two"),
        "{err}"
    );
    Ok(())
}

#[test]
fn service_install_writes_a_unit_that_runs_the_daemon_without_secrets() -> Result<()> {
    let home = tempfile::tempdir()?;
    let config = home.path().join("config");
    let run = |args: &[&str]| {
        bridge()
            .args(args)
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", &config)
            .output()
    };
    // Not paired yet: a clear error, nothing written.
    let out = run(&["service", "install", "--no-start"])?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pair this machine first"));
    let unit = config.join("systemd/user/tmux-bridge.service");
    assert!(!unit.exists());
    // Saved credentials (as `pair` writes them).
    let creds = config.join("tmux-bridge/credentials.json");
    std::fs::create_dir_all(creds.parent().expect("dir"))?;
    std::fs::write(
        &creds,
        r#"{"relay_url":"https://relay.example","runner_id":"r1","runner_token":"secret-token-value","account":"me"}"#,
    )?;
    let out = run(&["service", "install", "--no-start", "--tmux-socket", "work"])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&unit)?;
    assert!(
        text.contains(&format!(
            "ExecStart=\"{}\" \"run\" \"--tmux-socket\" \"work\"",
            env!("CARGO_BIN_EXE_tmux-bridge")
        )),
        "{text}"
    );
    assert!(!text.contains("secret-token-value"));
    let out = run(&["service", "status"])?;
    assert!(String::from_utf8_lossy(&out.stdout).contains("installed"));
    let out = run(&["service", "uninstall"])?;
    assert!(out.status.success());
    assert!(!unit.exists());
    let out = run(&["service", "status"])?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("not installed"));
    Ok(())
}
