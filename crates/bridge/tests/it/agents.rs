//! Agents and idle watching end to end (issue 12): real tmux on a private
//! socket, a real relay with SQLite, the runner daemon in this process. A
//! custom agent (a script that prints, then waits for input) goes starting
//! → running → idle after its idle time; a line typed into its pane makes
//! it running again, then idle again; the transitions are stored with
//! their times and pushed as `agent` events. A runner restart re-sends the
//! watch. A built-in kind whose program is not installed is an error and
//! no window. An ordinary pane watched for idleness goes idle and active
//! (`pane_activity`). Stop ends the agent (stopped).

use std::time::{Duration, Instant};

use anyhow::bail;
use bridge::daemon::DaemonConfig;
use bridge::daemon::agents::AgentCommands;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::daemon::Sys;
use super::e2e::{server, session_name};
use testkit::*;

/// The idle time of the test agents.
const IDLE_MS: u64 = 1_500;

type Daemon = (
    tokio::task::JoinHandle<anyhow::Result<()>>,
    CancellationToken,
);

/// The daemon in this process, with `cursor` pointing at a program that
/// does not exist.
fn daemon(sys: &Sys) -> Daemon {
    let cancel = CancellationToken::new();
    let cfg = DaemonConfig {
        server: server(&sys.tmux),
        relay_url: format!("http://{}", sys.relay.local_addr()),
        failover_urls: Vec::new(),
        runner_token: sys.token.clone(),
        tls: bridge::net::TlsOptions::default(),
        data_dir: sys.dir.path().join("runner"),
        core: bridge::core::CoreConfig::default(),
        initial_size: (80, 24),
        agents: AgentCommands {
            cursor: "tb-no-such-agent-program --flag".into(),
            ..AgentCommands::default()
        },
        in_process: None,
        trim_after: None,
    };
    (
        tokio::spawn(bridge::daemon::run(cfg, cancel.clone())),
        cancel,
    )
}

async fn stop_daemon(d: Daemon) -> Result<()> {
    d.1.cancel();
    d.0.await??;
    Ok(())
}

impl Sys {
    async fn agent(&self, id: &str) -> Result<Value> {
        let (status, v) = self.api("GET", &format!("/api/agents/{id}"), "").await?;
        if status != 200 {
            bail!("GET agent {id}: {status} {v}");
        }
        Ok(v)
    }

    /// Waits until agent `id` is in `state`; returns it and how long it took.
    async fn wait_agent(&self, id: &str, state: &str, secs: u64) -> Result<(Value, Duration)> {
        let t = Instant::now();
        let mut last = Value::Null;
        while t.elapsed() < Duration::from_secs(secs) {
            last = self.agent(id).await?;
            if last["state"] == state {
                return Ok((last, t.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("agent {id} never became {state}; last: {last}")
    }

    async fn watches(&self, session: &str) -> Result<Vec<Value>> {
        let (status, v) = self
            .api("GET", &format!("/api/sessions/{session}/watches"), "")
            .await?;
        if status != 200 {
            bail!("GET watches: {status} {v}");
        }
        Ok(v["watches"].as_array().cloned().unwrap_or_default())
    }

    async fn wait_watch(&self, session: &str, pane: &str, idle: bool, secs: u64) -> Result<()> {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(secs) {
            if self
                .watches(session)
                .await?
                .iter()
                .any(|w| w["pane"] == pane && w["idle"] == idle)
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("pane {pane} never became idle={idle}")
    }

    /// An open `/api/events` stream.
    async fn events(&self) -> Result<tokio::net::TcpStream> {
        let mut s = tokio::net::TcpStream::connect(self.login.addr).await?;
        let req = format!(
            "GET /api/events HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nAccept: text/event-stream\r\n\r\n",
            self.login.addr, self.login.cookie
        );
        s.write_all(req.as_bytes()).await?;
        Ok(s)
    }
}

/// Reads the event stream until `done` holds for what was read.
async fn read_events(s: &mut tokio::net::TcpStream, done: impl Fn(&str) -> bool) -> Result<String> {
    let mut seen = String::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done(&seen) {
        let n = tokio::time::timeout_at(deadline, s.read(&mut buf)).await??;
        if n == 0 {
            bail!("the event stream ended: {seen}");
        }
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    Ok(seen)
}

/// Everything the event stream says within `dur`.
async fn drain_events(s: &mut tokio::net::TcpStream, dur: Duration) -> Result<String> {
    let mut seen = String::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + dur;
    while let Ok(n) = tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
        let n = n?;
        if n == 0 {
            break;
        }
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    Ok(seen)
}

fn states(agent: &Value) -> Vec<String> {
    agent["transitions"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|x| x["state"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_agent_goes_idle_and_runs_again_and_a_missing_one_is_an_error() -> Result<()> {
    let sys = Sys::start("agents", &[("proj", "primary")], false).await?;
    let d = daemon(&sys);
    let session = session_name("proj", "primary")?;
    sys.login.wait_session(&session).await?;
    let mut events = sys.events().await?;

    // A script that prints, then waits for input (echoing each line).
    let script = sys.dir.path().join("agent.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'agent ready'\nwhile read line; do echo \"got: $line\"; done\n",
    )?;
    let body = json!({"idea": "proj", "kind": "custom", "command": format!("sh {}", script.display()),
        "args": ["--x"], "idle_ms": IDLE_MS, "name": "my-agent"});
    let (status, a) = sys.api("POST", "/api/agents", &body.to_string()).await?;
    assert_eq!(status, 201, "{a}");
    let id = a["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(a["kind"], "custom");
    assert_eq!(a["state"], "starting");
    assert_eq!(a["idle_ms"], IDLE_MS);
    let (running, _) = sys.wait_agent(&id, "running", 20).await?;
    let pane = running["pane"].as_str().unwrap_or_default().to_owned();
    assert!(pane.starts_with('%'), "{running}");
    let (idle, waited) = sys.wait_agent(&id, "idle", 20).await?;
    let went_idle_after =
        idle["state_at"].as_i64().unwrap_or(0) - running["state_at"].as_i64().unwrap_or(0);
    println!(
        "agent idle {went_idle_after} ms after running by the stored times (idle time {IDLE_MS} ms); seen by polling after {waited:?}"
    );
    assert!(
        went_idle_after >= IDLE_MS as i64 - 100,
        "idle after {went_idle_after} ms"
    );
    // The job is the same job, still running, in a window of the session.
    let (_, job) = sys.api("GET", &format!("/api/jobs/{id}"), "").await?;
    assert_eq!(
        (job["kind"].as_str(), job["state"].as_str()),
        (Some("agent"), Some("running"))
    );
    let windows = sys.tmux.run(&[
        "list-windows",
        "-t",
        &format!("={session}"),
        "-F",
        "#{window_name}",
    ])?;
    assert!(windows.lines().any(|w| w == "my-agent"), "{windows}");

    // A line typed into its pane: running again, then idle again.
    sys.tmux
        .run(&["send-keys", "-t", &pane, "-l", "hello agent"])?;
    sys.tmux.run(&["send-keys", "-t", &pane, "Enter"])?;
    let (_, woke) = sys.wait_agent(&id, "running", 10).await?;
    println!("agent running again {woke:?} after the line was typed (polled every 50 ms)");
    let (again, _) = sys.wait_agent(&id, "idle", 10).await?;
    assert_eq!(
        states(&again),
        ["starting", "running", "idle", "running", "idle"],
        "{again}"
    );
    let ats: Vec<i64> = again["transitions"]
        .as_array()
        .map(|t| t.iter().filter_map(|x| x["at"].as_i64()).collect())
        .unwrap_or_default();
    assert!(
        ats.windows(2).all(|w| w[0] <= w[1]),
        "times in order: {ats:?}"
    );
    let seen = read_events(&mut events, |s| {
        s.contains("event: agent") && s.contains(r#""state":"idle""#)
    })
    .await?;
    assert!(seen.contains(&id), "the agent events name it");

    // A page watch on the agent's pane, taken off again: the agent's own
    // idle time still applies (the runner keeps one watch per pane).
    let sid = running["session_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let path = format!(
        "/api/sessions/{sid}/panes/{}/watch",
        pane.replace('%', "%25")
    );
    for body in [json!({"idle_ms": 600_000}), json!({"idle_ms": null})] {
        let (status, w) = sys.api("POST", &path, &body.to_string()).await?;
        assert_eq!(status, 200, "{body} -> {w}");
    }
    sys.tmux
        .run(&["send-keys", "-t", &pane, "-l", "once more"])?;
    sys.tmux.run(&["send-keys", "-t", &pane, "Enter"])?;
    sys.wait_agent(&id, "running", 10).await?;
    sys.wait_agent(&id, "idle", 10).await?;

    // The runner restarts: the agent is found again, and its pane is
    // watched again (the runner kept no watch): idle after its idle time.
    stop_daemon(d).await?;
    sys.wait_agent(&id, "errored", 20).await?;
    let d = daemon(&sys);
    sys.wait_agent(&id, "running", 20).await?;
    sys.wait_agent(&id, "idle", 20).await?;

    // A kind whose program is not installed: errored, with the program
    // named, and no window.
    let (status, c) = sys
        .api(
            "POST",
            "/api/agents",
            &json!({"idea": "proj", "kind": "cursor"}).to_string(),
        )
        .await?;
    assert_eq!(status, 201, "{c}");
    let cid = c["id"].as_str().unwrap_or_default().to_owned();
    let (err, _) = sys.wait_agent(&cid, "errored", 20).await?;
    let msg = err["error"].as_str().unwrap_or_default();
    assert!(
        msg.contains("not installed") && msg.contains("tb-no-such-agent-program"),
        "{err}"
    );
    assert_eq!(states(&err), ["starting", "errored"]);
    let windows = sys.tmux.run(&[
        "list-windows",
        "-t",
        &format!("={session}"),
        "-F",
        "#{window_name}",
    ])?;
    assert!(!windows.lines().any(|w| w == "cursor"), "{windows}");

    // Bad requests are clear.
    for (body, want) in [
        (json!({"idea": "proj", "kind": "vim"}), "kind is"),
        (json!({"idea": "proj", "kind": "custom"}), "needs a command"),
        (
            json!({"idea": "proj", "kind": "codex", "command": "codex"}),
            "takes no command",
        ),
        (
            json!({"idea": "proj", "kind": "custom", "command": "x", "idle_ms": 5}),
            "idle_ms",
        ),
        (
            json!({"idea": "proj", "kind": "custom", "command": "x", "args": ["a\u{0}"]}),
            "NUL",
        ),
    ] {
        let (status, v) = sys.api("POST", "/api/agents", &body.to_string()).await?;
        assert_eq!(status, 400, "{body}: {v}");
        assert!(
            v["error"].as_str().unwrap_or_default().contains(want),
            "{body}: {v}"
        );
    }
    let (_, list) = sys.api("GET", "/api/agents?idea=proj", "").await?;
    assert_eq!(list["agents"].as_array().map(Vec::len), Some(2), "{list}");

    // Stop: C-c ends the script; stopped.
    let (status, s) = sys
        .api("POST", &format!("/api/agents/{id}/stop"), "")
        .await?;
    assert_eq!(status, 200, "{s}");
    sys.wait_agent(&id, "stopped", 20).await?;
    let (status, _) = sys
        .api("POST", &format!("/api/agents/{id}/stop"), "")
        .await?;
    assert_eq!(status, 409, "stopped already");

    stop_daemon(d).await?;
    sys.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordinary_pane_watched_for_idle_and_account_settings() -> Result<()> {
    let sys = Sys::start("paneidle", &[("proj", "primary")], false).await?;
    let d = daemon(&sys);
    let name = session_name("proj", "primary")?;
    sys.login.wait_session(&name).await?;
    let sid = sys.sessions_named(&name).await?[0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let pane = sys
        .tmux
        .run(&[
            "display-message",
            "-p",
            "-t",
            &format!("={name}:"),
            "#{pane_id}",
        ])?
        .trim()
        .to_owned();
    // The relay knows the pane once the topology is stored.
    let path = format!(
        "/api/sessions/{sid}/panes/{}/watch",
        pane.replace('%', "%25")
    );
    let t = Instant::now();
    let (status, w) = loop {
        let (status, w) = sys
            .api("POST", &path, &json!({"idle_ms": IDLE_MS}).to_string())
            .await?;
        if status != 404 || t.elapsed() > Duration::from_secs(10) {
            break (status, w);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, 200, "{w}");
    assert_eq!(w["watch"]["idle_ms"], IDLE_MS);
    let mut events = sys.events().await?;
    sys.wait_watch(&sid, &pane, true, 10).await?;
    sys.tmux
        .run(&["send-keys", "-t", &pane, "-l", "echo busy"])?;
    sys.tmux.run(&["send-keys", "-t", &pane, "Enter"])?;
    sys.wait_watch(&sid, &pane, false, 10).await?;
    sys.wait_watch(&sid, &pane, true, 10).await?;
    let seen = read_events(&mut events, |s| {
        s.matches("event: pane_activity").count() >= 2 && s.contains(r#""idle":false"#)
    })
    .await?;
    assert!(seen.contains(&pane), "{seen}");

    // A watched pane that closes loses its watch (it is gone, not idle).
    let split = sys
        .tmux
        .run(&["split-window", "-d", "-P", "-F", "#{pane_id}", "-t", &pane])?
        .trim()
        .to_owned();
    let split_path = format!(
        "/api/sessions/{sid}/panes/{}/watch",
        split.replace('%', "%25")
    );
    let t = Instant::now();
    loop {
        let (status, _) = sys.api("POST", &split_path, r#"{"idle_ms":1000}"#).await?;
        if status == 200 {
            break;
        }
        if t.elapsed() > Duration::from_secs(10) {
            bail!("watching the new pane {split}: {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(sys.watches(&sid).await?.iter().any(|w| w["pane"] == split));
    sys.tmux.run(&["kill-pane", "-t", &split])?;
    let t = Instant::now();
    while sys.watches(&sid).await?.iter().any(|w| w["pane"] == split) {
        if t.elapsed() > Duration::from_secs(10) {
            bail!("the closed pane {split} is still listed as watched");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Longer than its idle time: what the stream says meanwhile.
    let seen = drain_events(&mut events, Duration::from_millis(1500)).await?;
    assert!(
        !seen.contains(&format!("\"pane\":\"{split}\"")),
        "no idle for a closed pane: {seen}"
    );

    // A pane not in the session, and bad idle times.
    let (status, _) = sys
        .api(
            "POST",
            &format!("/api/sessions/{sid}/panes/999/watch"),
            r#"{"idle_ms":2000}"#,
        )
        .await?;
    assert_eq!(status, 404);
    let (status, v) = sys.api("POST", &path, r#"{"idle_ms":10}"#).await?;
    assert_eq!(status, 400, "{v}");
    // Stop watching.
    let (status, v) = sys.api("POST", &path, r#"{"idle_ms":null}"#).await?;
    assert_eq!((status, &v["watch"]), (200, &Value::Null), "{v}");
    assert!(sys.watches(&sid).await?.is_empty());

    // Account settings: the default idle time of agents.
    let (_, s) = sys.api("GET", "/api/settings", "").await?;
    assert_eq!(
        (s["agent_idle_ms"].clone(), s["default_idle_ms"].clone()),
        (Value::Null, json!(30_000))
    );
    let (status, s) = sys
        .api("PUT", "/api/settings", r#"{"agent_idle_ms":2000}"#)
        .await?;
    assert_eq!(
        (status, s["agent_idle_ms"].clone()),
        (200, json!(2000)),
        "{s}"
    );
    let (status, _) = sys
        .api("PUT", "/api/settings", r#"{"agent_idle_ms":1}"#)
        .await?;
    assert_eq!(status, 400);
    // An agent without its own idle time takes the account's.
    let body = json!({"idea": "proj", "kind": "custom", "command": "cat"});
    let (status, a) = sys.api("POST", "/api/agents", &body.to_string()).await?;
    assert_eq!((status, a["idle_ms"].clone()), (201, json!(2000)), "{a}");
    let id = a["id"].as_str().unwrap_or_default();
    sys.wait_agent(id, "idle", 20).await?;

    stop_daemon(d).await?;
    sys.stop().await
}
