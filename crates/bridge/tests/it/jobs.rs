//! Jobs end to end (issue 11): real tmux on a private socket, a real relay
//! with SQLite, the runner daemon. A job runs in a window of its idea's
//! session (made when missing); its exit status comes from tmux (`exit 3`,
//! a signal, a shell killed from outside); cancel interrupts, then kills a
//! process group that ignores SIGINT; closing the window in tmux cancels;
//! a job made while no runner is online starts when one comes; its log is
//! complete even for 50 MB printed in a flood; bad input and the rate
//! limit get clear answers.

use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{Value, json};

use super::daemon::Sys;
use super::e2e::session_name;
use testkit::*;

impl Sys {
    async fn create_job(&self, body: Value) -> Result<Value> {
        let (status, v) = self.api("POST", "/api/jobs", &body.to_string()).await?;
        if status != 201 {
            bail!("POST /api/jobs {body}: {status} {v}");
        }
        Ok(v)
    }

    async fn job(&self, id: &str) -> Result<Value> {
        let (status, v) = self.api("GET", &format!("/api/jobs/{id}"), "").await?;
        if status != 200 {
            bail!("GET job {id}: {status}");
        }
        Ok(v)
    }

    /// Waits until job `id` is in `state`.
    async fn wait_job(&self, id: &str, state: &str, secs: u64) -> Result<Value> {
        let t = Instant::now();
        let mut last = Value::Null;
        while t.elapsed() < Duration::from_secs(secs) {
            last = self.job(id).await?;
            if last["state"] == state {
                return Ok(last);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("job {id} never became {state}; last: {last}")
    }

    /// The job's log as the API serves it.
    async fn log(&self, id: &str, query: &str) -> Result<Vec<u8>> {
        let (status, _, body) = http(
            self.login.addr,
            "GET",
            &format!("/api/jobs/{id}/log{query}"),
            &[("Cookie", &self.login.cookie)],
            b"",
        )
        .await?;
        if status != 200 {
            bail!("GET log {id}{query}: {status}");
        }
        Ok(body)
    }

    fn windows(&self, session: &str) -> Result<Vec<String>> {
        Ok(self
            .tmux
            .run(&[
                "list-windows",
                "-t",
                &format!("={session}"),
                "-F",
                "#{window_name}",
            ])?
            .lines()
            .map(str::to_owned)
            .collect())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_in_tmux_and_end_as_tmux_says() -> Result<()> {
    let sys = Sys::start("jobs", &[("proj", "primary")], true).await?;
    let session = session_name("proj", "primary")?;
    sys.login.wait_session(&session).await?;

    // exit 3: failed with code 3, in a window of the idea's session named
    // after the command, and its log has what it printed.
    let j = sys
        .create_job(json!({"idea": "proj", "command": "echo hello-job; exit 3"}))
        .await?;
    let id = j["id"].as_str().unwrap_or_default().to_owned();
    assert!(
        matches!(j["state"].as_str(), Some("queued" | "starting" | "running")),
        "{j}"
    );
    let done = sys.wait_job(&id, "failed", 20).await?;
    assert_eq!(done["exit_code"], 3, "{done}");
    assert_eq!(done["signal"], Value::Null);
    assert!(done["ended_at"].as_i64() >= done["started_at"].as_i64());
    assert!(sys.windows(&session)?.contains(&"echo".to_owned()));
    let sessions = sys.sessions_named(&session).await?;
    assert_eq!(done["session_id"], sessions[0]["id"], "the job's session");
    let t = Instant::now();
    let text = loop {
        let text = String::from_utf8(sys.log(&id, "").await?)?;
        if text.contains("hello-job") || t.elapsed() > Duration::from_secs(10) {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(text.trim(), "hello-job", "text log");
    assert_eq!(sys.log(&id, "?ansi=1").await?, b"hello-job\r\n", "raw log");
    assert_eq!(sys.log(&id, "?ansi=1&from=6&to=9").await?, b"job");

    // exit 0, with cwd and environment.
    let j = sys
        .create_job(json!({"idea": "proj", "command": "pwd; echo \"v=$FOO\" \"id=$TB_JOB_ID\"", "cwd": "/tmp", "env": {"FOO": "bar baz"}, "name": "where"}))
        .await?;
    let ok_id = j["id"].as_str().unwrap_or_default().to_owned();
    let ok = sys.wait_job(&ok_id, "succeeded", 20).await?;
    assert_eq!(ok["exit_code"], 0);
    assert!(sys.windows(&session)?.contains(&"where".to_owned()));
    let t = Instant::now();
    loop {
        let text = String::from_utf8(sys.log(&ok_id, "").await?)?;
        if text.contains(&format!("v=bar baz id={ok_id}")) && text.contains("/tmp") {
            break;
        }
        if t.elapsed() > Duration::from_secs(10) {
            bail!("log of the cwd/env job: {text:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Killed by a signal from inside, and a shell killed from outside.
    let j = sys
        .create_job(json!({"idea": "proj", "command": "kill -9 $$"}))
        .await?;
    let sig = sys
        .wait_job(j["id"].as_str().unwrap_or_default(), "failed", 20)
        .await?;
    assert_eq!(
        (sig["signal"].as_i64(), sig["exit_code"].as_i64()),
        (Some(9), None),
        "{sig}"
    );
    let j = sys
        .create_job(json!({"idea": "proj", "command": "sleep 300"}))
        .await?;
    let outside = j["id"].as_str().unwrap_or_default().to_owned();
    let running = sys.wait_job(&outside, "running", 20).await?;
    let pane = running["pane"].as_str().unwrap_or_default().to_owned();
    let pid = sys
        .tmux
        .run(&["display-message", "-p", "-t", &pane, "#{pane_pid}"])?;
    let pid: i32 = pid.trim().parse()?;
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()?;
    let killed = sys.wait_job(&outside, "failed", 20).await?;
    assert_eq!(killed["signal"], 9, "{killed}");

    // Cancel: C-c ends `sleep`; a job that ignores SIGINT is killed with
    // its process group after the grace period.
    let j = sys
        .create_job(json!({"idea": "proj", "command": "sleep 300"}))
        .await?;
    let c1 = j["id"].as_str().unwrap_or_default().to_owned();
    sys.wait_job(&c1, "running", 20).await?;
    let (status, v) = sys
        .api("POST", &format!("/api/jobs/{c1}/cancel"), "")
        .await?;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["cancel_requested"], true);
    sys.wait_job(&c1, "cancelled", 10).await?;
    let (status, _) = sys
        .api("POST", &format!("/api/jobs/{c1}/cancel"), "")
        .await?;
    assert_eq!(status, 409, "a cancelled job cancelled again");

    let j = sys
        .create_job(json!({"idea": "proj", "command": "trap '' INT; sleep 300 & wait; sleep 300"}))
        .await?;
    let c2 = j["id"].as_str().unwrap_or_default().to_owned();
    sys.wait_job(&c2, "running", 20).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    let (status, _) = sys
        .api("POST", &format!("/api/jobs/{c2}/cancel"), "")
        .await?;
    assert_eq!(status, 200);
    sys.wait_job(&c2, "cancelled", 20).await?;
    assert!(
        t.elapsed() >= Duration::from_secs(4),
        "killed only after the grace period"
    );

    // Its window closed in tmux: cancelled, saying so.
    let j = sys
        .create_job(json!({"idea": "proj", "command": "sleep 300", "name": "closeme"}))
        .await?;
    let w = j["id"].as_str().unwrap_or_default().to_owned();
    sys.wait_job(&w, "running", 20).await?;
    sys.tmux
        .run(&["kill-window", "-t", &format!("={session}:closeme")])?;
    let closed = sys.wait_job(&w, "cancelled", 20).await?;
    assert!(
        closed["error"]
            .as_str()
            .unwrap_or_default()
            .contains("closed"),
        "{closed}"
    );

    // A job for an idea without a session makes the session.
    let j = sys
        .create_job(json!({"idea": "fresh", "command": "true"}))
        .await?;
    sys.wait_job(j["id"].as_str().unwrap_or_default(), "succeeded", 20)
        .await?;
    assert!(sys.has_session(&session_name("fresh", "primary")?));

    // Finished jobs' windows beyond the newest five were closed.
    let dead = sys.tmux.run(&[
        "list-panes",
        "-s",
        "-t",
        &format!("={session}:"),
        "-F",
        "#{pane_dead}#{@bridge_job}",
    ])?;
    let dead = dead.lines().filter(|l| l.starts_with('1')).count();
    assert!(dead <= 5, "{dead} finished job windows kept");

    // The list, newest first, per idea.
    let (status, list) = sys.api("GET", "/api/jobs?idea=proj", "").await?;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list["jobs"]
        .as_array()
        .map(|a| a.iter().filter_map(|j| j["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids.len(), 7, "{list}");
    assert_eq!(ids.first(), Some(&w.as_str()));
    assert_eq!(ids.last(), Some(&id.as_str()));

    // Bad input is refused with a reason; unknown things are 404.
    for (body, want) in [
        (json!({"idea": "proj", "command": "  "}), 400),
        (
            json!({"idea": "proj", "command": "ls", "cwd": "relative"}),
            400,
        ),
        (
            json!({"idea": "proj", "command": "ls", "env": {"A=B": "x"}}),
            400,
        ),
        (json!({"idea": "", "command": "ls"}), 400),
        (json!({"idea": "proj", "command": "x".repeat(20_000)}), 400),
        (
            json!({"idea": "proj", "command": "ls", "runner_id": "nope"}),
            404,
        ),
        (json!({"command": "ls"}), 400),
    ] {
        let (status, v) = sys.api("POST", "/api/jobs", &body.to_string()).await?;
        assert_eq!(status, want, "{body}: {v}");
        assert!(v["error"].is_string(), "{v}");
    }
    let (status, _) = sys.api("GET", "/api/jobs/jnope", "").await?;
    assert_eq!(status, 404);
    let (status, _) = sys.api("POST", "/api/jobs/jnope/cancel", "").await?;
    assert_eq!(status, 404);

    // 8 jobs made this minute: two more, and the 11th is refused.
    for _ in 0..2 {
        let (status, _) = sys
            .api(
                "POST",
                "/api/jobs",
                &json!({"idea": "proj", "command": "true"}).to_string(),
            )
            .await?;
        assert_eq!(status, 201);
    }
    let origin = sys.login.origin();
    let (status, headers, _) = http(
        sys.login.addr,
        "POST",
        "/api/jobs",
        &[
            ("Cookie", &sys.login.cookie),
            ("Origin", &origin),
            ("X-Requested-With", "tmux-bridge"),
            ("Content-Type", "application/json"),
        ],
        json!({"idea": "proj", "command": "true"})
            .to_string()
            .as_bytes(),
    )
    .await?;
    assert_eq!(status, 429);
    let retry = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
        .map(|(_, v)| v.clone());
    assert!(retry.is_some_and(|v| v.parse::<u64>().is_ok_and(|s| (1..=60).contains(&s))));

    sys.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_job_starts_when_a_runner_comes_and_a_50_mb_log_is_complete() -> Result<()> {
    let mut sys = Sys::start("jobflood", &[("big", "primary")], false).await?;
    // No runner online: the job waits.
    let lines = 6_500_000u32;
    let j = sys
        .create_job(json!({"idea": "big", "command": format!("seq 1 {lines}")}))
        .await?;
    let id = j["id"].as_str().unwrap_or_default().to_owned();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sys.job(&id).await?["state"], "queued");

    sys.start_daemon();
    sys.wait_job(&id, "succeeded", 120).await?;
    // The pane printed seq's lines with the terminal's CR LF.
    let mut want = Vec::with_capacity(60 << 20);
    for i in 1..=lines {
        want.extend_from_slice(i.to_string().as_bytes());
        want.extend_from_slice(b"\r\n");
    }
    assert!(want.len() > 50_000_000);
    let t = Instant::now();
    loop {
        let job = sys.job(&id).await?;
        if job["log_bytes"].as_u64() == Some(want.len() as u64) {
            break;
        }
        if t.elapsed() > Duration::from_secs(120) {
            bail!("log stored {} of {} bytes", job["log_bytes"], want.len());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let raw = sys.log(&id, "?ansi=1").await?;
    assert_eq!(raw.len(), want.len());
    assert!(raw == want, "the stored log differs from what seq printed");
    let tail = sys.log(&id, &format!("?from={}", want.len() - 18)).await?;
    assert_eq!(String::from_utf8(tail)?, format!("6499999\n{lines}\n"));
    sys.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_ends_while_its_runner_is_away_is_reported_when_it_returns() -> Result<()> {
    let mut sys = Sys::start("jobaway", &[("away", "primary")], true).await?;
    sys.login
        .wait_session(&session_name("away", "primary")?)
        .await?;
    let j = sys
        .create_job(json!({"idea": "away", "command": "echo before; sleep 2; echo after; exit 4"}))
        .await?;
    let id = j["id"].as_str().unwrap_or_default().to_owned();
    sys.wait_job(&id, "running", 20).await?;
    sys.stop_daemon().await?;
    let lost = sys.wait_job(&id, "lost", 10).await?;
    assert!(lost["error"].is_string(), "{lost}");
    // It ends meanwhile; a new runner process finds it by its pane option.
    tokio::time::sleep(Duration::from_secs(3)).await;
    sys.start_daemon();
    let done = sys.wait_job(&id, "failed", 20).await?;
    assert_eq!(done["exit_code"], 4, "{done}");
    let t = Instant::now();
    loop {
        let text = String::from_utf8(sys.log(&id, "").await?)?;
        if text == "before\nafter\n" {
            break;
        }
        if t.elapsed() > Duration::from_secs(10) {
            bail!("log after the runner came back: {text:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sys.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingested_lines_and_the_idea_timeline() -> Result<()> {
    let sys = Sys::start("jobingest", &[("tl", "primary")], true).await?;
    sys.login
        .wait_session(&session_name("tl", "primary")?)
        .await?;
    let bearer = format!("Bearer {}", sys.token);
    let addr = sys.login.addr;
    let ingest = |auth: Option<String>, body: Value| async move {
        let mut h = vec![("Content-Type", "application/json".to_owned())];
        if let Some(a) = auth {
            h.push(("Authorization", a));
        }
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, headers, _) = http(
            addr,
            "POST",
            "/api/logs/ingest",
            &h,
            body.to_string().as_bytes(),
        )
        .await?;
        Ok::<_, anyhow::Error>((status, headers))
    };
    let (status, _) = ingest(
        Some(bearer.clone()),
        json!({"source": "ci", "idea": "tl", "lines": ["build started", {"line": "build ok", "at": 1}]}),
    )
    .await?;
    assert_eq!(status, 204);
    // No token or a wrong one; bad batches.
    assert_eq!(
        ingest(None, json!({"source": "ci", "lines": ["x"]}))
            .await?
            .0,
        401
    );
    assert_eq!(
        ingest(
            Some("Bearer nope".into()),
            json!({"source": "ci", "lines": ["x"]})
        )
        .await?
        .0,
        401
    );
    for bad in [
        json!({"source": "", "lines": ["x"]}),
        json!({"source": "ci", "lines": []}),
        json!({"source": "ci", "lines": ["x".repeat(5000)]}),
        json!({"source": "ci", "lines": vec!["x"; 1001]}),
        json!({"source": "ci\n", "lines": ["x"]}),
        json!({"lines": ["x"]}),
    ] {
        assert_eq!(
            ingest(Some(bearer.clone()), bad.clone()).await?.0,
            400,
            "{bad}"
        );
    }
    // 2 lines taken: 998 more fit this minute, then 429.
    let (status, _) = ingest(
        Some(bearer.clone()),
        json!({"source": "bulk", "lines": vec!["y"; 998]}),
    )
    .await?;
    assert_eq!(status, 204);
    let (status, headers) = ingest(
        Some(bearer.clone()),
        json!({"source": "bulk", "lines": ["one too many"]}),
    )
    .await?;
    assert_eq!(status, 429);
    assert!(headers.iter().any(|(k, _)| k == "retry-after"));

    let j = sys
        .create_job(json!({"idea": "tl", "command": "echo in-timeline"}))
        .await?;
    let id = j["id"].as_str().unwrap_or_default().to_owned();
    sys.wait_job(&id, "succeeded", 20).await?;
    let (status, v) = sys.api("GET", "/api/ideas/tl/logs", "").await?;
    assert_eq!(status, 200);
    let entries = v["entries"].as_array().cloned().unwrap_or_default();
    let kinds: Vec<&str> = entries.iter().filter_map(|e| e["kind"].as_str()).collect();
    // The line stamped at 1 ms comes first, then the session, the line
    // stamped on arrival, and the job started after it.
    assert_eq!(kinds, ["line", "session", "line", "job"], "{v}");
    assert_eq!(entries[0]["line"], "build ok");
    assert_eq!(entries[3]["log"], format!("/api/jobs/{id}/log"));
    let ats: Vec<i64> = entries.iter().filter_map(|e| e["at"].as_i64()).collect();
    assert!(
        ats.windows(2).all(|w| w[0] <= w[1]),
        "in time order: {ats:?}"
    );

    // Ingested lines and the job's log are searchable.
    let hits = search_until(&sys, "build started", 1).await?;
    assert_eq!(hits[0]["kind"], "log");
    assert_eq!(hits[0]["source"], "ci");
    assert_eq!(hits[0]["after"][0], "build ok", "{hits:?}");
    // The transcript's indexer may answer first; the job's hit follows
    // and then stands for both.
    let t = Instant::now();
    loop {
        let hits = search_until(&sys, "in-timeline", 1).await?;
        if hits
            .iter()
            .any(|h| h["kind"] == "job" && h["job_id"] == id.as_str())
        {
            assert_eq!(hits.len(), 1, "one hit for the job's line: {hits:?}");
            break;
        }
        if t.elapsed() > Duration::from_secs(20) {
            bail!("no job hit: {hits:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    sys.stop().await
}

/// `GET /api/search?q=…` until it has at least `n` results (the indexers
/// trail by about a second).
async fn search_until(sys: &Sys, q: &str, n: usize) -> Result<Vec<Value>> {
    let t = Instant::now();
    let path = format!("/api/search?q={}", q.replace(' ', "+"));
    loop {
        let (status, v) = sys.api("GET", &path, "").await?;
        let hits = v["results"].as_array().cloned().unwrap_or_default();
        if status == 200 && hits.len() >= n {
            return Ok(hits);
        }
        if t.elapsed() > Duration::from_secs(20) {
            bail!("search {q:?}: {status} {v}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_job_printed_in_a_flood_is_found_once() -> Result<()> {
    let sys = Sys::start("jobsearch", &[("srch", "primary")], true).await?;
    sys.login
        .wait_session(&session_name("srch", "primary")?)
        .await?;
    // Enough output to put the pane in flood mode (its live stream is
    // redrawn, not indexed); the last line only the job's log keeps.
    let j = sys
        .create_job(
            json!({"idea": "srch", "command": "seq 1 400000; echo needle zebra 42; sleep 1"}),
        )
        .await?;
    let id = j["id"].as_str().unwrap_or_default().to_owned();
    // Its state is not what this test is about (under a flood tmux 3.3a
    // has been seen to mark the pane dead without an exit status: the job
    // is then failed, saying so); its log and the search are.
    let t = Instant::now();
    while sys.job(&id).await?["ended_at"].is_null() {
        if t.elapsed() > Duration::from_secs(60) {
            bail!("the job did not end");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let hits = search_until(&sys, "needle zebra", 1).await?;
    // Give the transcript's indexer its pass too: still one hit.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let hits2 = search_until(&sys, "needle zebra", 1).await?;
    for hits in [hits, hits2] {
        let lines: Vec<_> = hits
            .iter()
            .filter(|h| h["line"] == "needle zebra 42")
            .collect();
        assert_eq!(lines.len(), 1, "{hits:?}");
        assert_eq!(lines[0]["kind"], "job");
        assert_eq!(lines[0]["job_id"], id.as_str());
        assert_eq!(lines[0]["before"][1], "400000");
    }
    sys.stop().await
}
