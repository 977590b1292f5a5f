//! End to end: tmux ⇄ runner daemon ⇄ relay ⇄ browser client, all real.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use bridge::core::CoreConfig;
use bridge::daemon::DaemonConfig;
use tokio_util::sync::CancellationToken;

use testkit::*;

pub fn server(tmux: &Tmux) -> bridge::tmux::TmuxServer {
    bridge::tmux::TmuxServer {
        socket_name: Some(tmux.socket.clone()),
        socket_path: None,
        config: Some("/dev/null".into()),
    }
}

pub fn session_name(idea: &str, slot: &str) -> Result<String> {
    Ok(tmux_cc::naming::session_name(idea, slot)?
        .as_str()
        .to_owned())
}

/// Runs the runner daemon in this process against a relay at `addr`.
pub fn spawn_daemon(
    tmux: &Tmux,
    addr: SocketAddr,
    token: String,
    dir: &Path,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    tokio::spawn(bridge::daemon::run(
        daemon_config(tmux, addr, token, dir),
        cancel,
    ))
}

/// The runner daemon's configuration for a relay at `addr`.
fn daemon_config(tmux: &Tmux, addr: SocketAddr, token: String, dir: &Path) -> DaemonConfig {
    DaemonConfig {
        server: server(tmux),
        relay_url: format!("http://{addr}"),
        failover_urls: Vec::new(),
        runner_token: token,
        tls: bridge::net::TlsOptions::default(),
        data_dir: dir.to_path_buf(),
        core: CoreConfig::default(),
        initial_size: (80, 24),
        agents: bridge::daemon::agents::AgentCommands::default(),
        in_process: None,
        trim_after: None,
    }
}

/// Waits until the browser's view of `pane` equals tmux's own capture (rows
/// and cursor), draining frames meanwhile.
pub async fn converge(b: &mut Browser, tmux: &Tmux, pane: &str, secs: u64) -> Result<()> {
    let mut last = String::new();
    for _ in 0..secs * 5 {
        b.drain_for(200).await?;
        let want = tmux.capture(pane)?;
        let got = view_rows(&b.view, pane);
        let cursor = tmux.cursor(pane)?;
        let id: tmux_cc::PaneId = pane.parse()?;
        let got_cursor = b.view.pane(id).map(|p| p.cursor());
        if want == got && got_cursor == Some(cursor) {
            return Ok(());
        }
        last = format!(
            "tmux:\n{}\nbrowser:\n{}\ncursor tmux {cursor:?} browser {got_cursor:?}",
            want.join("\n"),
            got.join("\n")
        );
    }
    bail!("the browser never converged on tmux's screen\n{last}")
}

/// tmux with one session, an in-process relay, the bridge serving the
/// session, and a logged-in browser login; torn down by [`InProcess::stop`].
struct InProcess {
    tmux: Tmux,
    name: String,
    pane: String,
    relay: relay::RelayHandle,
    bridge: tokio::task::JoinHandle<anyhow::Result<()>>,
    cancel: CancellationToken,
    login: Login,
    session_id: String,
    _dir: tempfile::TempDir,
}

/// How the runner reaches the relay of the test's process.
#[derive(PartialEq)]
enum Link {
    /// A loopback socket to its listener, as a separate runner does.
    Socket,
    /// Memory, as `tmux-bridge up`'s runner does.
    Memory,
}

impl InProcess {
    async fn start(slot: &str) -> Result<InProcess> {
        InProcess::start_with(slot, Link::Socket).await
    }

    async fn start_with(slot: &str, link: Link) -> Result<InProcess> {
        let tmux = Tmux::new(slot);
        let name = session_name("e2e", slot)?;
        tmux.new_session(&name, 80, 24)?;
        let dir = tempfile::tempdir()?;
        let relay = relay::Relay::start(relay::Config::new(
            "127.0.0.1:0".parse()?,
            dir.path().to_path_buf(),
        ))
        .await?;
        let local = relay.auth().ensure_local_runner("test").await?;
        let login_link = relay.auth().login_link(&local.user_id).await?;
        let cancel = CancellationToken::new();
        let mut cfg = daemon_config(&tmux, relay.local_addr(), local.runner_token, dir.path());
        if link == Link::Memory {
            cfg.in_process = Some(bridge::net::InProcessDial::new(relay.in_process_dialer()));
            // Nothing listens there: only memory reaches the relay.
            cfg.relay_url = format!("http://127.0.0.1:{}", free_port()?);
        }
        let bridge = tokio::spawn(bridge::daemon::run(cfg, cancel.clone()));
        let login = Login::from_link(&login_link).await?;
        let session_id = login.wait_session(&name).await?;
        let pane = tmux.first_pane(&name)?;
        Ok(InProcess {
            tmux,
            name,
            pane,
            relay,
            bridge,
            cancel,
            login,
            session_id,
            _dir: dir,
        })
    }

    async fn stop(self) -> Result<()> {
        self.cancel.cancel();
        self.bridge.await??;
        self.relay.shutdown().await?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_types_echo_and_sees_the_output() -> Result<()> {
    let sys = InProcess::start("echo").await?;
    let pane = sys.pane.clone();
    let mut b = Browser::connect(&sys.login, &sys.session_id, 0).await?;
    b.until("the prompt", 15, |v| view_has(v, &pane, "$"))
        .await?;
    b.send_input(&pane, "echo hi-$((6*7))\r").await?;
    b.until("the echoed output", 15, |v| {
        view_rows(v, &pane).iter().any(|r| r.trim() == "hi-42")
    })
    .await?;
    converge(&mut b, &sys.tmux, &pane, 10).await?;
    sys.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_and_a_browser_share_the_pane() -> Result<()> {
    // The runner on the link `tmux-bridge up` uses: memory, not a socket.
    let sys = InProcess::start_with("share", Link::Memory).await?;
    let pane = sys.pane.clone();
    let mut tty = TtyClient::attach(&sys.tmux, &sys.name, 100, 30).await?;
    tty.wait_for("$", 10).await?;
    let mut b = Browser::connect(&sys.login, &sys.session_id, 0).await?;
    b.until("the prompt", 15, |v| view_has(v, &pane, "$"))
        .await?;

    // Browser → pane → the person's terminal.
    b.send_input(&pane, "echo from-browser-$((1+1))\r").await?;
    tty.wait_for_line("from-browser-2", 10).await?;
    // The person's terminal → pane → browser.
    tty.type_text("echo from-tty-$((2+3))\r").await?;
    b.until("the terminal's output", 15, |v| {
        view_rows(v, &pane).iter().any(|r| r.trim() == "from-tty-5")
    })
    .await?;
    converge(&mut b, &sys.tmux, &pane, 10).await?;

    tty.detach().await;
    sys.stop().await
}

/// Over the in-memory link both ends read 4 KiB at a time: messages many
/// times that size still cross whole, both ways (a paste to the runner,
/// frames of incompressible output to the relay).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_messages_cross_the_in_memory_link() -> Result<()> {
    let sys = InProcess::start_with("memlarge", Link::Memory).await?;
    let pane = sys.pane.clone();
    let mut b = Browser::connect(&sys.login, &sys.session_id, 0).await?;
    b.until("the prompt", 15, |v| view_has(v, &pane, "$"))
        .await?;

    // One input message of 12 KiB: a pasted line the shell counts.
    let paste = "x".repeat(12 * 1024);
    b.send_input(&pane, &format!("echo {paste} | wc -c\r"))
        .await?;
    b.until("the paste counted", 30, |v| {
        view_rows(v, &pane).iter().any(|r| r.trim() == "12289")
    })
    .await?;
    // 300 KB of base64 of random bytes: frames that do not compress.
    b.send_input(
        &pane,
        "clear; head -c 225000 /dev/urandom | base64 -w 118; echo flood-$((6*7))\r",
    )
    .await?;
    b.until("the flood's end", 60, |v| {
        view_rows(v, &pane).iter().any(|r| r.trim() == "flood-42")
    })
    .await?;
    converge(&mut b, &sys.tmux, &pane, 20).await?;
    sys.stop().await
}

/// The workspace's binaries (built by `cargo build --workspace`).
pub fn workspace_bin(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("no target dir")?;
    let path = dir.join(name);
    if !path.exists() {
        bail!(
            "{} is missing: run `cargo build --workspace` first",
            path.display()
        );
    }
    Ok(path)
}

pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

pub struct Proc(pub tokio::process::Child);

impl Proc {
    pub async fn kill9(&mut self) {
        let _ = self.0.start_kill();
        let _ = self.0.wait().await;
    }
}

pub async fn start_relay_process(port: u16, data_dir: &Path) -> Result<Proc> {
    let child = tokio::process::Command::new(workspace_bin("tmux-relay")?)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(Proc(child));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("relay did not start on port {port}")
}

fn start_bridge_process(tmux: &Tmux, port: u16, token: &str, dir: &Path) -> Result<Proc> {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tmux-bridge"))
        .args([
            "run",
            "--relay",
            &format!("http://127.0.0.1:{port}"),
            "--idea",
            "e2e",
            "--slot",
            "flood",
        ])
        .args([
            "--tmux-socket",
            &tmux.socket,
            "--tmux-config",
            "/dev/null",
            "--data-dir",
        ])
        .arg(dir)
        .env("TMUX_BRIDGE_TOKEN", token)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    Ok(Proc(child))
}

/// Reconnects a browser with what it has seen, retrying while the relay is
/// down.
pub async fn reconnect(b: Browser, login: &Login, sid: &str) -> Result<Browser> {
    let mut last_err = None;
    for _ in 0..100 {
        match Browser::resume(login, sid, &b).await {
            Ok(nb) => return Ok(nb.with_state_of(b)),
            Err(e) => last_err = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(last_err.unwrap_or_else(|| anyhow::anyhow!("could not reconnect")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_kill9_during_a_flood_and_a_bridge_restart_lose_nothing() -> Result<()> {
    let tmux = Tmux::new("flood");
    let name = session_name("e2e", "flood")?;
    tmux.new_session(&name, 80, 24)?;
    let relay_dir = tempfile::tempdir()?;
    let bridge_dir = tempfile::tempdir()?;
    let port = free_port()?;

    // Credentials are made through the relay's own library on its data dir.
    let (token, link) = {
        let store =
            store::Store::connect(&relay::config::default_database_url(relay_dir.path())).await?;
        let auth = relay::auth::Auth::open(
            store,
            relay_dir.path(),
            relay::auth::AuthConfig::new(format!("http://127.0.0.1:{port}")),
        )?;
        let local = auth.ensure_local_runner("test").await?;
        (
            local.runner_token.clone(),
            auth.login_link(&local.user_id).await?,
        )
    };
    let mut relay = start_relay_process(port, relay_dir.path()).await?;
    let mut bridge = start_bridge_process(&tmux, port, &token, bridge_dir.path())?;
    let login = Login::from_link(&link).await?;
    let sid = login.wait_session(&name).await?;
    let pane = tmux.first_pane(&name)?;
    let mut b = Browser::connect(&login, &sid, 0).await?;
    b.until("the prompt", 15, |v| view_has(v, &pane, "$"))
        .await?;

    b.send_input(&pane, "seq 1 150000; echo flood-$((40+2))\r")
        .await?;
    b.until("the flood to start", 15, |v| {
        view_rows(v, &pane)
            .iter()
            .any(|r| r.trim().parse::<u32>().is_ok_and(|n| n > 1000))
    })
    .await?;
    // Issue 17.3 and 16: the relay sends this runner's Batches to browsers
    // before their commit (the runner says `rebase`), so the browser may
    // hold a few records the kill -9 cut from the store. The runner keeps
    // every frame until acked and resends it as it was (docs/protocol.md
    // §4.4): the browser resumes from what it holds, not from scratch,
    // and nothing is lost or doubled.
    b.drain_for(200).await?;
    let held = b.view.last_seq;
    relay.kill9().await;
    let stored = {
        let store =
            store::Store::connect(&relay::config::default_database_url(relay_dir.path())).await?;
        let head = store.last_seq(sid.parse()?).await?;
        store.close().await;
        head
    };
    println!("the browser held seq {held}, the database had {stored} after kill -9");
    let mut relay = start_relay_process(port, relay_dir.path()).await?;
    b = reconnect(b, &login, &sid).await?;
    b.until("the end of the flood", 60, |v| {
        view_rows(v, &pane).iter().any(|r| r.trim() == "flood-42")
    })
    .await?;
    assert_eq!(
        b.resets, 0,
        "the browser held seq {held} (the database {stored}) and was served from scratch"
    );
    converge(&mut b, &tmux, &pane, 15).await?;

    // Bridge restart: kill it hard, start it again, keep typing.
    bridge.kill9().await;
    let mut bridge = start_bridge_process(&tmux, port, &token, bridge_dir.path())?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.send_input(&pane, "echo after-$((3*3))\r").await?;
    let mut seen = false;
    for _ in 0..3 {
        if b.until("output after the bridge restart", 10, |v| {
            view_rows(v, &pane).iter().any(|r| r.trim() == "after-9")
        })
        .await
        .is_ok()
        {
            seen = true;
            break;
        }
        // The input may have been sent while no bridge was connected.
        b.send_input(&pane, "echo after-$((3*3))\r").await?;
    }
    assert!(seen, "input after the bridge restart never showed");
    converge(&mut b, &tmux, &pane, 15).await?;
    b.check_gap_free()?;

    bridge.kill9().await;
    relay.kill9().await;
    Ok(())
}

/// Waits until tmux shows `line` in `pane` and the store's head has not
/// moved for half a second (the runner shipped the output, the relay
/// stored it).
async fn wait_stored(sys: &InProcess, id: i64, line: &str) -> Result<u64> {
    let store = sys.relay.store();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if tokio::time::Instant::now() > deadline {
            bail!("the output never settled in the store");
        }
        let shown = sys
            .tmux
            .capture(&sys.pane)?
            .iter()
            .any(|r| r.trim() == line);
        let head = store.last_seq(id).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        if shown && store.last_seq(id).await? == head {
            return Ok(head);
        }
    }
}

/// Issue 16, bounded resume: a tab that missed much output receives a
/// fresh snapshot taken on demand (no more than that snapshot plus the
/// relay's margin), not the records; a new tab gets about a snapshot too;
/// with the runner offline a tab resumes from the store as before. Each
/// ends on the right screen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_a_returning_tab_gets_a_fresh_snapshot_not_the_missed_output() -> Result<()> {
    use relay::ws::browser::RESUME_MARGIN;
    let mut sys = InProcess::start("resume").await?;
    let pane = sys.pane.clone();
    let id: i64 = sys.session_id.parse()?;
    let mut b = Browser::connect(&sys.login, &sys.session_id, 0).await?;
    b.until("the prompt", 15, |v| view_has(v, &pane, "$"))
        .await?;
    converge(&mut b, &sys.tmux, &pane, 10).await?;
    b.close().await?;
    let k = b.view.last_seq;

    // Output the closed tab misses: 50,000 lines of random hex (3.4 MB,
    // about half of it once compressed), five times the 10,000 lines of
    // history a snapshot holds.
    sys.tmux.run(&[
        "send-keys",
        "-t",
        &pane,
        "od -An -tx8 -w32 -N 1600000 /dev/urandom; echo done-$((6*7))",
        "Enter",
    ])?;
    let head = wait_stored(&sys, id, "done-42").await?;
    let missed = sys.relay.store().since_cost(id, k).await?.bytes;
    let requests = sys.relay.metrics().resume_snapshots.get();

    let (bytes0, snaps0) = (b.frame_bytes, b.snapshots);
    let mut back = Browser::resume(&sys.login, &sys.session_id, &b)
        .await?
        .with_state_of(b);
    converge(&mut back, &sys.tmux, &pane, 20).await?;
    back.close().await?;
    let got = (back.frame_bytes - bytes0) as u64;
    let fresh = sys
        .relay
        .store()
        .latest_snapshot(id)
        .await?
        .context("a snapshot")?;
    eprintln!(
        "resume after {} records: missed {missed} B, fresh snapshot {} B at {}, received {got} B",
        head - k,
        fresh.bytes.len(),
        fresh.at_seq
    );
    assert_eq!(back.snapshots, snaps0 + 1, "resumed from one snapshot");
    assert_eq!(
        sys.relay.metrics().resume_snapshots.get(),
        requests + 1,
        "taken on demand"
    );
    assert!(fresh.at_seq >= head, "the snapshot is at the head");
    let bound = fresh.bytes.len() as u64 + RESUME_MARGIN;
    assert!(
        missed > bound,
        "the test needs more missed output than a snapshot: {missed} B"
    );
    assert!(got <= bound, "received {got} B, over {bound} B");

    // A new tab: the stored snapshot at the head and what follows it.
    let mut new_tab = Browser::connect(&sys.login, &sys.session_id, 0).await?;
    converge(&mut new_tab, &sys.tmux, &pane, 20).await?;
    let got = new_tab.frame_bytes as u64;
    let snap = sys
        .relay
        .store()
        .latest_snapshot(id)
        .await?
        .context("a snapshot")?;
    assert!(
        got <= snap.bytes.len() as u64 + RESUME_MARGIN,
        "a new tab received {got} B"
    );
    let k2 = new_tab.view.last_seq;
    new_tab.close().await?;

    // More output, then the runner goes away: a tab resumes from the
    // store (records or the stored snapshot), as before.
    sys.tmux.run(&[
        "send-keys",
        "-t",
        &pane,
        "seq 1 100000; echo again-$((6*7))",
        "Enter",
    ])?;
    let head = wait_stored(&sys, id, "again-42").await?;
    let mut probe = Browser::connect(&sys.login, &sys.session_id, 0).await?;
    converge(&mut probe, &sys.tmux, &pane, 20).await?;
    sys.cancel.cancel();
    (&mut sys.bridge).await??;
    let offline = Browser::resume(&sys.login, &sys.session_id, &new_tab).await?;
    let mut offline = offline.with_state_of(new_tab);
    let bytes0 = offline.frame_bytes;
    offline
        .until("the head, from the store", 20, |v| v.last_seq >= head)
        .await?;
    let missed = sys.relay.store().since_cost(id, k2).await?.bytes;
    assert_eq!(
        (offline.frame_bytes - bytes0) as u64,
        missed,
        "the store's answer"
    );
    assert_eq!(
        view_rows(&offline.view, &pane),
        view_rows(&probe.view, &pane),
        "the same screen as a tab that watched with the runner online"
    );
    sys.relay.shutdown().await?;
    Ok(())
}
