//! The runner daemon end to end (issue 9): real tmux on a private socket,
//! a real relay, the daemon in this process or as the binary. Discovery of
//! existing sessions, pick-up of one made with `tmux-bridge new` within a
//! second, `close` on kill and on server death, a new instance after the
//! server comes back, create and kill from the relay's API, and a clean
//! environment for a tmux server the runner starts.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;

use super::e2e::{server, session_name, spawn_daemon};
use testkit::*;

/// A relay in this process, a login, a tmux server (maybe without
/// sessions) and, unless told otherwise, the daemon in this process.
pub(super) struct Sys {
    pub(super) tmux: Tmux,
    pub(super) relay: relay::RelayHandle,
    pub(super) login: Login,
    pub(super) token: String,
    daemon: Option<(
        tokio::task::JoinHandle<anyhow::Result<()>>,
        CancellationToken,
    )>,
    pub(super) dir: tempfile::TempDir,
}

impl Sys {
    pub(super) async fn start(
        tag: &str,
        sessions: &[(&str, &str)],
        in_process: bool,
    ) -> Result<Sys> {
        let tmux = Tmux::new(tag);
        for (idea, slot) in sessions {
            tmux.new_session(&session_name(idea, slot)?, 80, 24)?;
        }
        let dir = tempfile::tempdir()?;
        let relay = relay::Relay::start(relay::Config::new(
            "127.0.0.1:0".parse()?,
            dir.path().join("relay"),
        ))
        .await?;
        let local = relay.auth().ensure_local_runner("test").await?;
        let link = relay.auth().login_link(&local.user_id).await?;
        let login = Login::from_link(&link).await?;
        let mut sys = Sys {
            tmux,
            relay,
            login,
            token: local.runner_token,
            daemon: None,
            dir,
        };
        if in_process {
            sys.start_daemon();
        }
        Ok(sys)
    }

    pub(super) fn start_daemon(&mut self) {
        let cancel = CancellationToken::new();
        let task = spawn_daemon(
            &self.tmux,
            self.relay.local_addr(),
            self.token.clone(),
            &self.dir.path().join("runner"),
            cancel.clone(),
        );
        self.daemon = Some((task, cancel));
    }

    /// The sessions the relay lists for `tmux_session`, newest first.
    /// Stops the in-process daemon (tmux keeps running).
    pub(super) async fn stop_daemon(&mut self) -> Result<()> {
        if let Some((task, cancel)) = self.daemon.take() {
            cancel.cancel();
            task.await??;
        }
        Ok(())
    }

    pub(super) async fn sessions_named(
        &self,
        tmux_session: &str,
    ) -> Result<Vec<serde_json::Value>> {
        let mut v: Vec<_> = self
            .login
            .sessions()
            .await?
            .into_iter()
            .filter(|s| s["tmux_session"] == tmux_session)
            .collect();
        v.sort_by_key(|s| std::cmp::Reverse(s["created_at"].as_i64()));
        Ok(v)
    }

    /// Waits until the session with id `id` is in `state`.
    pub(super) async fn wait_state(&self, id: &str, state: &str, secs: u64) -> Result<Duration> {
        let t = Instant::now();
        let mut last = serde_json::Value::Null;
        while t.elapsed() < Duration::from_secs(secs) {
            if let Some(s) = self
                .login
                .sessions()
                .await?
                .into_iter()
                .find(|s| s["id"] == id)
            {
                if s["state"] == state {
                    return Ok(t.elapsed());
                }
                last = s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("session {id} never became {state}; last: {last}")
    }

    pub(super) async fn api(
        &self,
        method: &str,
        path: &str,
        body: &str,
    ) -> Result<(u16, serde_json::Value)> {
        let origin = self.login.origin();
        let (status, _, body) = http(
            self.login.addr,
            method,
            path,
            &[
                ("Cookie", &self.login.cookie),
                ("Origin", &origin),
                ("X-Requested-With", "tmux-bridge"),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
        .await?;
        let v = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        Ok((status, v))
    }

    /// `tmux-bridge run` as the binary on this relay and tmux server, with
    /// the token in its environment and `extra` flags; the caller adds the
    /// rest and spawns it.
    fn runner_binary(&self, extra: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tmux-bridge"));
        cmd.args([
            "run",
            "--relay",
            &format!("http://{}", self.relay.local_addr()),
            "--tmux-socket",
            &self.tmux.socket,
            "--tmux-config",
            "/dev/null",
        ])
        .args(extra)
        .arg("--data-dir")
        .arg(self.dir.path().join("runner"))
        .env("TMUX_BRIDGE_TOKEN", &self.token)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true);
        cmd
    }

    pub(super) fn has_session(&self, name: &str) -> bool {
        self.tmux
            .run(&["has-session", "-t", &format!("={name}")])
            .is_ok()
    }

    pub(super) async fn stop(mut self) -> Result<()> {
        if let Some((task, cancel)) = self.daemon.take() {
            cancel.cancel();
            task.await??;
        }
        self.relay.shutdown().await?;
        Ok(())
    }
}

/// `tmux-bridge ARGS --tmux-socket S --tmux-config /dev/null`.
fn cli(tmux: &Tmux, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tmux-bridge"))
        .args(args)
        .args(["--tmux-socket", &tmux.socket, "--tmux-config", "/dev/null"])
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        bail!(
            "tmux-bridge {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovers_existing_sessions_picks_up_new_ones_and_closes_killed_ones() -> Result<()> {
    let sys = Sys::start("disc", &[("disc", "one"), ("disc", "two")], true).await?;
    sys.tmux.new_session("mine", 80, 24)?;
    let one = sys
        .login
        .wait_session(&session_name("disc", "one")?)
        .await?;
    let two_name = session_name("disc", "two")?;
    let two = sys.login.wait_session(&two_name).await?;
    assert_ne!(one, two);

    // The sessions stream: type in one, see the output.
    let pane = sys.tmux.first_pane(&two_name)?;
    let mut b = Browser::connect(&sys.login, &two, 0).await?;
    b.until("the prompt", 15, |v| view_has(v, &pane, "$"))
        .await?;
    b.send_input(&pane, "echo two-$((6*7))\r").await?;
    b.until("the echoed output", 15, |v| {
        view_rows(v, &pane).iter().any(|r| r.trim() == "two-42")
    })
    .await?;

    // Made locally with `tmux-bridge new`: served within a second.
    let out = cli(&sys.tmux, &["new", "disc", "three"])?;
    let t = Instant::now();
    assert!(out.contains("attach -t =tb_disc__three"), "{out}");
    let three = sys
        .login
        .wait_session(&session_name("disc", "three")?)
        .await?;
    let picked_up = t.elapsed();
    println!("a session made with `tmux-bridge new` was live at the relay after {picked_up:?}");
    assert!(
        picked_up < Duration::from_secs(1),
        "picked up after {picked_up:?}"
    );
    // `ls` shows the three with their instances.
    let ls = cli(&sys.tmux, &["ls"])?;
    for slot in ["one", "two", "three"] {
        assert!(ls.contains(&format!("disc\t{slot}\t")), "{ls}");
    }
    assert!(!ls.contains("mine"), "{ls}");

    // Killed locally: closed at the relay.
    cli(&sys.tmux, &["kill", "disc", "one"])?;
    let closed = sys.wait_state(&one, "closed", 5).await?;
    println!("a killed session was closed at the relay after {closed:?}");
    sys.wait_state(&two, "live", 1).await?;
    sys.wait_state(&three, "live", 1).await?;
    // Renamed away from the scheme: no longer served, closed.
    sys.tmux.run(&[
        "rename-session",
        "-t",
        &format!("={}", session_name("disc", "three")?),
        "someone-else",
    ])?;
    sys.wait_state(&three, "closed", 5).await?;
    sys.wait_state(&two, "live", 1).await?;
    // A person's own session is never served.
    assert!(sys.sessions_named("mine").await?.is_empty());
    drop(b);
    sys.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_server_closes_its_sessions_and_a_new_one_is_a_new_instance() -> Result<()> {
    let sys = Sys::start("srv", &[("srv", "a")], true).await?;
    let name = session_name("srv", "a")?;
    let first = sys.login.wait_session(&name).await?;
    let old_pane = sys.tmux.first_pane(&name)?;
    sys.tmux.run(&[
        "send-keys",
        "-t",
        &old_pane,
        "echo before-$((6*7))",
        "Enter",
    ])?;
    let mut b = Browser::connect(&sys.login, &first, 0).await?;
    b.until("output before the death", 15, |v| {
        view_has(v, &old_pane, "before-42")
    })
    .await?;
    drop(b);
    sys.tmux.run(&["kill-server"])?;
    sys.wait_state(&first, "closed", 5).await?;
    // Issue 17.4: the dead server's session is closed, not reset: a
    // browser that opens it now still gets its history from the store.
    let mut b = Browser::connect(&sys.login, &first, 0).await?;
    b.until("the old history", 15, |v| {
        view_has(v, &old_pane, "before-42")
    })
    .await?;
    drop(b);

    // The server comes back with a session of the same name: a new
    // terminal session, the old one stays closed and readable.
    sys.tmux.new_session(&name, 80, 24)?;
    let second = sys.login.wait_session(&name).await?;
    assert_ne!(first, second, "a new instance is a new terminal session");
    sys.wait_state(&first, "closed", 1).await?;
    let pane = sys.tmux.first_pane(&name)?;
    let mut b = Browser::connect(&sys.login, &second, 0).await?;
    b.until("the prompt", 15, |v| view_has(v, &pane, "$"))
        .await?;
    drop(b);
    sys.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_kill_from_the_relay_with_a_clean_environment() -> Result<()> {
    // No tmux server runs: the runner starts it, as the binary, with its
    // token and a setting in its environment.
    let mut sys = Sys::start("cmd", &[], false).await?;
    let secret_setting = "setting-value-5e1f";
    let mut runner = sys
        .runner_binary(&[])
        .env("TMUX_BRIDGE_SOME_SETTING", secret_setting)
        .env("SHELL", "/bin/sh")
        .env_remove("TMUX")
        .spawn()?;

    let body = r#"{"idea":"cmd","slot":"one"}"#;
    let t = Instant::now();
    let (status, created) = loop {
        let (status, v) = sys.api("POST", "/api/sessions", body).await?;
        if status != 503 || t.elapsed() > Duration::from_secs(10) {
            break (status, v);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, 201, "{created}");
    let name = session_name("cmd", "one")?;
    assert_eq!(created["session"]["tmux_session"], name.as_str());
    let id = created["session"]["id"]
        .as_str()
        .context("session id")?
        .to_owned();
    assert!(sys.has_session(&name));
    // The page sees the new session's first output.
    let mut b = Browser::connect(&sys.login, &id, 0).await?;
    b.until("the first output", 15, |v| {
        v.panes()
            .any(|(_, p)| p.rows_text().iter().any(|r| !r.trim().is_empty()))
    })
    .await?;
    drop(b);
    // Asked again: the same session.
    let (status, again) = sys.api("POST", "/api/sessions", body).await?;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["session"]["id"], id.as_str());
    let (status, bad) = sys
        .api("POST", "/api/sessions", r#"{"idea":"","slot":"x"}"#)
        .await?;
    assert_eq!(status, 400, "{bad}");

    // Neither the token nor a setting reaches the server or a pane.
    let global = sys.tmux.run(&["show-environment", "-g"])?;
    assert!(!global.contains(&sys.token), "token in the server's env");
    assert!(!global.contains("TMUX_BRIDGE_"), "{global}");
    let pane = sys.tmux.first_pane(&name)?;
    sys.tmux.run(&[
        "send-keys",
        "-t",
        &pane,
        "-l",
        "echo env-$(env | grep -c -e TMUX_BRIDGE_ -e setting-value)-end\r",
    ])?;
    let mut screen = String::new();
    // (15 s: a shell can take long to start on a machine under load.)
    for _ in 0..300 {
        screen = sys.tmux.run(&["capture-pane", "-p", "-t", &pane])?;
        if screen.lines().any(|l| l.trim() == "env-0-end") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        screen.lines().any(|l| l.trim() == "env-0-end"),
        "the pane's environment holds the runner's: {screen}"
    );
    assert!(!screen.contains(secret_setting));

    // Killed from the relay: gone from tmux, closed at the relay.
    let (status, v) = sys
        .api("DELETE", &format!("/api/sessions/{id}"), "")
        .await?;
    assert_eq!(status, 204, "{v}");
    assert!(!sys.has_session(&name), "still in tmux");
    sys.wait_state(&id, "closed", 3).await?;

    let _ = runner.start_kill();
    let _ = runner.wait().await;
    sys.daemon = None;
    sys.stop().await
}

/// RssFile of a process, in kB.
fn rss_file_kb(pid: u32) -> Result<u64> {
    procfs::status_kb(&pid.to_string(), "RssFile").context("no RssFile in /proc/PID/status")
}

/// Issue 16: a runner quiet for `--trim-after` hands back the code pages
/// it stopped using (its resident file pages fall), and serves on: a
/// command typed after the trim echoes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_runner_hands_back_code_pages_and_serves_on() -> Result<()> {
    let sys = Sys::start("trim", &[("trim", "a")], false).await?;
    let mut runner = sys.runner_binary(&["--trim-after", "1"]).spawn()?;
    let pid = runner.id().context("the runner's pid")?;
    let name = session_name("trim", "a")?;
    let id = sys.login.wait_session(&name).await?;
    let pane = sys.tmux.first_pane(&name)?;
    let mut b = Browser::connect(&sys.login, &id, 0).await?;
    b.until("the prompt", 15, |v| view_has(v, &pane, "$"))
        .await?;
    // Start-up, the session and the first view ran: that code is mapped.
    let busy = rss_file_kb(pid)?;
    let mut lowest = busy;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) && lowest * 4 > busy * 3 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        lowest = lowest.min(rss_file_kb(pid)?);
    }
    println!("runner RssFile {busy} kB after start-up, {lowest} kB once quiet");
    assert!(
        lowest * 4 <= busy * 3,
        "RssFile {busy} kB after start-up, still {lowest} kB after {:?} quiet",
        t.elapsed()
    );

    // What the next keystroke runs maps back in.
    b.send_input(&pane, "echo trim-$((6*7))\r").await?;
    b.until("the echo after the trim", 15, |v| {
        view_rows(v, &pane).iter().any(|r| r.trim() == "trim-42")
    })
    .await?;

    let _ = runner.start_kill();
    let _ = runner.wait().await;
    sys.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_running_daemon() -> Result<()> {
    let sys = Sys::start("stat", &[("stat", "a")], true).await?;
    sys.login.wait_session(&session_name("stat", "a")?).await?;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tmux-bridge"))
        .args(["status", "--data-dir"])
        .arg(sys.dir.path().join("runner"))
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("connected"), "{text}");
    assert!(text.contains("stat/a"), "{text}");
    assert!(!text.contains(&sys.token));

    // Written on a change only: an idle daemon leaves the file as it is
    // across its once-a-second poll; a new session is written out.
    let file = sys.dir.path().join("runner").join("daemon.json");
    let written = std::fs::metadata(&file)?.modified()?;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        std::fs::metadata(&file)?.modified()?,
        written,
        "the idle daemon rewrote its state file"
    );
    sys.tmux.new_session(&session_name("stat", "b")?, 80, 24)?;
    sys.login.wait_session(&session_name("stat", "b")?).await?;
    let t = Instant::now();
    loop {
        let text = std::fs::read_to_string(&file)?;
        if text.contains(&session_name("stat", "b")?) {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "no stat/b in {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_ne!(std::fs::metadata(&file)?.modified()?, written);
    let _ = server(&sys.tmux);
    sys.stop().await
}

/// tmux before 3.7 crashes when control clients attach and detach while
/// sessions are created and killed at the same moment: a burst of both
/// leaves the server alive and every session accounted for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_creations_and_kills_keeps_the_server_alive() -> Result<()> {
    let sys = Sys::start("burst", &[("burst", "keep")], true).await?;
    let keep = sys
        .login
        .wait_session(&session_name("burst", "keep")?)
        .await?;
    let names: Vec<String> = (0..8)
        .map(|i| session_name("burst", &i.to_string()))
        .collect::<Result<_>>()?;
    let run_all = |args: Vec<Vec<String>>| {
        let socket = sys.tmux.socket.clone();
        let threads: Vec<_> = args
            .into_iter()
            .map(|a| {
                let socket = socket.clone();
                std::thread::spawn(move || {
                    std::process::Command::new("tmux")
                        .args(["-L", &socket, "-f", "/dev/null"])
                        .args(&a)
                        .status()
                })
            })
            .collect();
        for t in threads {
            let _ = t.join();
        }
    };
    run_all(
        names
            .iter()
            .map(|n| {
                ["new-session", "-d", "-s", n.as_str()]
                    .map(str::to_owned)
                    .to_vec()
            })
            .collect(),
    );
    let mut ids = Vec::new();
    for n in &names {
        ids.push(sys.login.wait_session(n).await?);
    }
    run_all(
        names
            .iter()
            .map(|n| vec!["kill-session".to_owned(), "-t".to_owned(), format!("={n}")])
            .collect(),
    );
    for id in &ids {
        sys.wait_state(id, "closed", 10).await?;
    }
    assert!(
        sys.has_session(&session_name("burst", "keep")?),
        "the server died"
    );
    sys.wait_state(&keep, "live", 1).await?;
    sys.stop().await
}

/// tmux before 3.7 crashes (SIGSEGV in `control_write`) when a
/// notification, such as `%client-detached` from a client leaving, reaches
/// a control client that is still attaching. Sessions killed and renamed
/// away in turn make the daemon's own clients leave and its watcher attach
/// again, turn after turn: the daemon attaches only after its leaving
/// clients are gone, and the server stays alive. (Before that ordering
/// this crashed tmux 3.3a in about one run in thirty of
/// `discovers_existing_sessions_picks_up_new_ones_and_closes_killed_ones`
/// with another test beside it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_killed_and_renamed_away_in_turn_keep_the_server_alive() -> Result<()> {
    // A session that is not the daemon's, for its first watcher.
    let mut sys = Sys::start("turns", &[], false).await?;
    sys.tmux.new_session("mine", 80, 24)?;
    sys.start_daemon();
    for turn in 0..8 {
        let a = session_name("turns", &format!("{turn}a"))?;
        let b = session_name("turns", &format!("{turn}b"))?;
        sys.tmux.new_session(&a, 80, 24)?;
        sys.tmux.new_session(&b, 80, 24)?;
        let a_id = sys.login.wait_session(&a).await?;
        let b_id = sys.login.wait_session(&b).await?;
        // The session the daemon's watcher (the `no-output` control
        // client) sits on: killed, so the watcher attaches again, while a
        // served session is renamed away in the same tmux command, so the
        // daemon's client on it leaves.
        let clients = sys
            .tmux
            .run(&["list-clients", "-F", "#{client_flags}\t#{session_name}"])?;
        let watched = clients
            .lines()
            .find_map(|l| {
                let (flags, session) = l.split_once('\t')?;
                flags.contains("no-output").then(|| session.to_owned())
            })
            .with_context(|| format!("no watcher among {clients:?}"))?;
        let (renamed, renamed_id) = if watched == b {
            (&a, &a_id)
        } else {
            (&b, &b_id)
        };
        let away = format!("away-{turn}");
        sys.tmux.run(&[
            "kill-session",
            "-t",
            &format!("={watched}"),
            ";",
            "rename-session",
            "-t",
            &format!("={renamed}"),
            &away,
        ])?;
        sys.wait_state(renamed_id, "closed", 10).await?;
        assert!(
            sys.has_session(&away),
            "the tmux server died in turn {turn}"
        );
    }
    sys.stop().await
}

/// The page's keys and tmux actions (§5.1) reach tmux through the daemon:
/// key names through the key tables (the prefix, a binding), a split.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_tmux_actions_from_the_page() -> Result<()> {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;

    let sys = Sys::start("keys", &[("keys", "a")], true).await?;
    let name = session_name("keys", "a")?;
    let id = sys.login.wait_session(&name).await?;
    let pane = sys.tmux.first_pane(&name)?;
    let token = sys.login.browser_token(&id).await?;
    let mut req = format!("ws://{}/api/ws/browser/{id}", sys.login.addr).into_client_request()?;
    req.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(&format!("tmux-bridge.v1, bearer.{token}"))?,
    );
    req.headers_mut()
        .insert("origin", HeaderValue::from_str(&sys.login.origin())?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    // Drain the socket in the background: the relay must never wait on us.
    ws.send(Message::text(r#"{"t":"hello","last_seq":0}"#))
        .await?;
    let (mut sink, mut stream) = futures_util::StreamExt::split(ws);
    let drain = tokio::spawn(async move {
        while let Some(Ok(_)) = futures_util::StreamExt::next(&mut stream).await {}
    });
    let wait = |what: &'static str, args: Vec<String>, done: Box<dyn Fn(&str) -> bool + Send>| {
        let tmux = &sys.tmux;
        async move {
            let mut out = String::new();
            for _ in 0..200 {
                let a: Vec<&str> = args.iter().map(String::as_str).collect();
                out = tmux.run(&a)?;
                if done(&out) {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            bail!("{what} never happened: {out}")
        }
    };
    // The shell's prompt first, so typed keys are not lost to its start.
    wait(
        "the prompt",
        vec![
            "capture-pane".into(),
            "-p".into(),
            "-t".into(),
            pane.clone(),
        ],
        Box::new(|s| s.contains('$')),
    )
    .await?;
    let keys =
        |keys: &[&str]| serde_json::json!({"t": "keys", "pane": pane, "keys": keys}).to_string();
    sink.send(Message::text(keys(&[
        "e", "c", "h", "o", "Space", "k", "-", "4", "2", "Enter",
    ])))
    .await?;
    wait(
        "typed keys",
        vec![
            "capture-pane".into(),
            "-p".into(),
            "-t".into(),
            pane.clone(),
        ],
        Box::new(|s| s.lines().any(|l| l.trim() == "k-42")),
    )
    .await?;
    // The prefix and a binding: C-b c makes a window.
    sink.send(Message::text(keys(&["C-b", "c"]))).await?;
    let target = format!("={name}");
    wait(
        "prefix c",
        vec!["list-windows".into(), "-t".into(), target.clone()],
        Box::new(|s| s.lines().count() == 2),
    )
    .await?;
    // A tmux action: split the first pane.
    let split = serde_json::json!({"t": "tmux", "op": "split", "pane": pane, "direction": "right"});
    sink.send(Message::text(split.to_string())).await?;
    wait(
        "split",
        vec![
            "list-panes".into(),
            "-s".into(),
            "-t".into(),
            target.clone(),
        ],
        Box::new(|s| s.lines().count() == 3),
    )
    .await?;
    drain.abort();
    sys.stop().await
}

/// A relay restart while two sessions print: after it, both browsers resume
/// where they were, gap-free, and see what the panes printed meanwhile;
/// then a runner restart (a new daemon, the same sessions and instances)
/// continues both sequences.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_and_runner_restarts_lose_nothing_on_any_channel() -> Result<()> {
    let mut sys = Sys::start("rst", &[("rst", "a"), ("rst", "b")], true).await?;
    let addr = sys.relay.local_addr();
    let names = [session_name("rst", "a")?, session_name("rst", "b")?];
    let mut ids = Vec::new();
    let mut panes = Vec::new();
    let mut browsers = Vec::new();
    for n in &names {
        let id = sys.login.wait_session(n).await?;
        let pane = sys.tmux.first_pane(n)?;
        let mut b = Browser::connect(&sys.login, &id, 0).await?;
        let p = pane.clone();
        b.until("the prompt", 15, move |v| view_has(v, &p, "$"))
            .await?;
        ids.push(id);
        panes.push(pane);
        browsers.push(b);
    }
    // The relay goes away; the panes print meanwhile.
    sys.relay.shutdown().await?;
    for (i, pane) in panes.iter().enumerate() {
        sys.tmux.run(&[
            "send-keys",
            "-t",
            pane,
            "-l",
            &format!("echo while-down-{i}-$((6*7))\r"),
        ])?;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    sys.relay = relay::Relay::start(relay::Config::new(addr, sys.dir.path().join("relay"))).await?;
    for (i, old) in std::mem::take(&mut browsers).into_iter().enumerate() {
        let mut nb = super::e2e::reconnect(old, &sys.login, &ids[i]).await?;
        let (p, want) = (panes[i].clone(), format!("while-down-{i}-42"));
        nb.until(
            "what the pane printed while the relay was down",
            15,
            move |v| view_rows(v, &p).iter().any(|r| r.trim() == want),
        )
        .await?;
        nb.check_gap_free()?;
        browsers.push(nb);
    }
    // A new daemon (the old one stops): same instances, sequences continue.
    if let Some((task, cancel)) = sys.daemon.take() {
        cancel.cancel();
        task.await??;
    }
    sys.start_daemon();
    for (i, pane) in panes.iter().enumerate() {
        sys.tmux.run(&[
            "send-keys",
            "-t",
            pane,
            "-l",
            &format!("echo after-restart-{i}-$((6*7))\r"),
        ])?;
    }
    for (i, b) in browsers.iter_mut().enumerate() {
        let (p, want) = (panes[i].clone(), format!("after-restart-{i}-42"));
        b.until("output after the runner restart", 15, move |v| {
            view_rows(v, &p).iter().any(|r| r.trim() == want)
        })
        .await?;
        b.check_gap_free()?;
        super::e2e::converge(b, &sys.tmux, &panes[i], 10).await?;
    }
    for (i, n) in names.iter().enumerate() {
        assert_eq!(
            sys.login.wait_session(n).await?,
            ids[i],
            "the same terminal session"
        );
    }
    drop(browsers);
    sys.stop().await
}
