//! Issue 16: a flood with no person's terminal attached gets the runner's
//! hidden terminal client (real tmux, the runner daemon, a relay on a
//! loopback port, a browser client): a read-only, ignore-size client
//! appears in `list-clients` during the flood and is gone after it, the
//! window keeps its size, the page is never told a terminal is attached,
//! nor is `tmux-bridge ls` (a person's own read-only, ignore-size client
//! is), and the browser ends on tmux's own screen.

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;

use crate::e2e::{converge, server, session_name, spawn_daemon};
use testkit::*;

/// Non-control clients of the server: (pid, flags), from `list-clients`.
fn terminals(tmux: &Tmux) -> Result<Vec<(u32, String)>> {
    let out = tmux.run(&[
        "list-clients",
        "-F",
        "#{client_control_mode} #{client_pid} #{client_flags}",
    ])?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let control = f.next()? == "1";
            let pid = f.next()?.parse().ok()?;
            let flags = f.next().unwrap_or_default().to_owned();
            (!control).then_some((pid, flags))
        })
        .collect())
}

fn window_size(tmux: &Tmux, pane: &str) -> Result<String> {
    Ok(tmux
        .run(&[
            "display-message",
            "-p",
            "-t",
            pane,
            "#{window_width}x#{window_height}",
        ])?
        .trim()
        .to_owned())
}

/// What `tmux-bridge ls` counts as the session's attached terminals.
async fn listed(tmux: &Tmux, name: &str) -> Result<u32> {
    let counts = bridge::daemon::server::Server::new(server(tmux))
        .attached_terminals()
        .await?;
    Ok(counts.get(name).copied().unwrap_or(0))
}

/// The session's `@bridge_hidden_client` option (empty when unset).
fn hidden_option(tmux: &Tmux, name: &str) -> Result<String> {
    let target = format!("={name}:");
    let out = tmux.run(&[
        "show-options",
        "-v",
        "-q",
        "-t",
        &target,
        tmux_cc::listing::HIDDEN_CLIENT_OPTION,
    ])?;
    Ok(out.trim().to_owned())
}

/// What the relay says of the session's attached terminals.
async fn attached(login: &Login, session_id: &str) -> Result<u64> {
    for s in login.sessions().await? {
        if s["id"] == session_id {
            return Ok(s["attached_clients"].as_u64().unwrap_or(0));
        }
    }
    bail!("session {session_id} not listed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_alone_gets_a_hidden_client_that_changes_nothing_a_person_sees() -> Result<()> {
    let tmux = Tmux::new("hidden");
    let name = session_name("e2e", "hidden")?;
    tmux.new_session(&name, 100, 30)?;
    let dir = tempfile::tempdir()?;
    let relay = relay::Relay::start(relay::Config::new(
        "127.0.0.1:0".parse()?,
        dir.path().to_path_buf(),
    ))
    .await?;
    let local = relay.auth().ensure_local_runner("test").await?;
    let link = relay.auth().login_link(&local.user_id).await?;
    let cancel = CancellationToken::new();
    let daemon = spawn_daemon(
        &tmux,
        relay.local_addr(),
        local.runner_token,
        dir.path(),
        cancel.clone(),
    );
    let login = Login::from_link(&link).await?;
    let sid = login.wait_session(&name).await?;
    let pane = tmux.first_pane(&name)?;
    let mut b = Browser::connect(&login, &sid, 0).await?;
    b.until("the prompt", 15, |v| view_has(v, &pane, "$"))
        .await?;
    b.drain_for(300).await?;
    let size = window_size(&tmux, &pane)?;
    assert!(terminals(&tmux)?.is_empty(), "no terminal before the flood");

    // A flood that lasts until the test says so.
    let stop = dir.path().join("stop");
    let command = format!(
        "while [ ! -e {} ]; do seq 1 200000; done; echo hidden-$((40+2))",
        stop.display()
    );
    tmux.run(&["send-keys", "-t", &pane, "-l", &command])?;
    tmux.run(&["send-keys", "-t", &pane, "Enter"])?;

    // The hidden client appears: read-only, ignore-size.
    let mut hidden = None;
    for _ in 0..300 {
        b.drain_for(20).await?;
        assert_eq!(window_size(&tmux, &pane)?, size, "the window was resized");
        if let Some(t) = terminals(&tmux)?.into_iter().next() {
            hidden = Some(t);
            break;
        }
    }
    let Some((pid, flags)) = hidden else {
        bail!("no hidden client appeared during the flood");
    };
    assert!(
        flags.contains("read-only") && flags.contains("ignore-size"),
        "its flags: {flags}"
    );
    // The runner names it in the session's option (a command away).
    let mut named = false;
    for _ in 0..100 {
        if hidden_option(&tmux, &name)? == pid.to_string() {
            named = true;
            break;
        }
        b.drain_for(20).await?;
    }
    assert!(named, "the hidden client's pid never reached the option");
    // While it stays: one client, the window as it was, no terminal for
    // the page.
    for _ in 0..10 {
        b.drain_for(100).await?;
        assert_eq!(window_size(&tmux, &pane)?, size, "the window was resized");
        assert_eq!(attached(&login, &sid).await?, 0, "counted as a person");
        assert_eq!(listed(&tmux, &name).await?, 0, "ls counts it");
        let now = terminals(&tmux)?;
        assert_eq!(now.len(), 1, "one hidden client at most: {now:?}");
        assert_eq!(now[0].0, pid, "the same hidden client all along");
    }

    std::fs::write(&stop, b"")?;
    b.until("the end of the flood", 60, |v| {
        view_rows(v, &pane).iter().any(|r| r.trim() == "hidden-42")
    })
    .await?;
    let mut gone = false;
    for _ in 0..100 {
        b.drain_for(50).await?;
        if terminals(&tmux)?.is_empty() {
            gone = true;
            break;
        }
    }
    assert!(gone, "the hidden client stayed after the flood");
    assert_eq!(window_size(&tmux, &pane)?, size, "the window was resized");
    converge(&mut b, &tmux, &pane, 15).await?;
    b.check_gap_free()?;
    let mut unnamed = false;
    for _ in 0..100 {
        if hidden_option(&tmux, &name)?.is_empty() {
            unnamed = true;
            break;
        }
        b.drain_for(20).await?;
    }
    assert!(unnamed, "the option still names the hidden client");

    // A person's own read-only, ignore-size terminal is a person's.
    let (cols, rows) = size
        .split_once('x')
        .map(|(c, r)| (c.parse::<u16>(), r.parse::<u16>()))
        .context("window size")?;
    let flags = bridge::hidden::FLAGS;
    let tty = TtyClient::attach_with_flags(&tmux, &name, cols?, rows? + 1, flags).await?;
    let mut seen = false;
    for _ in 0..100 {
        b.drain_for(50).await?;
        if listed(&tmux, &name).await? == 1 && attached(&login, &sid).await? == 1 {
            seen = true;
            break;
        }
    }
    assert!(
        seen,
        "a person's read-only, ignore-size terminal was not counted"
    );
    drop(tty);

    cancel.cancel();
    daemon.await??;
    relay.shutdown().await?;
    Ok(())
}
