//! The dev servers API of issue 12 against a real relay (SQLite, and
//! PostgreSQL when `TEST_DATABASE_URL` is set): a page starts, lists, reads
//! and stops dev servers; a runner connection speaking the runner protocol
//! takes the `start_job` and reports ports; the events derived from its
//! reports are pushed live on `/api/events` as `devserver` events and
//! listed with the dev server after a reload. Bad input is refused in
//! words. (The real runner and tmux are in the bridge's end-to-end test;
//! another account's dev servers are in the isolation matrix.)

mod auth_support;

use std::net::SocketAddr;
use std::time::Duration;

use auth_support::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// A live `GET /api/events` stream read as raw HTTP.
struct Events {
    stream: TcpStream,
    buf: String,
}

impl Events {
    async fn open(addr: SocketAddr, cookie: &str) -> Events {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let req = format!(
            "GET /api/events HTTP/1.1\r\nhost: {addr}\r\ncookie: {cookie}\r\naccept: text/event-stream\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await.expect("request");
        let mut ev = Events {
            stream,
            buf: String::new(),
        };
        ev.fill_until(|b| b.contains("\r\n\r\n")).await;
        assert!(ev.buf.starts_with("HTTP/1.1 200"), "{}", ev.buf);
        ev
    }

    async fn fill_until(&mut self, done: impl Fn(&str) -> bool) {
        let deadline = tokio::time::Instant::now() + STEP;
        while !done(&self.buf) {
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .expect("event in time")
                .expect("read");
            assert!(n > 0, "the event stream ended");
            self.buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    }

    /// The data of every `devserver` event received so far.
    fn devserver_events(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut lines = self.buf.lines();
        while let Some(l) = lines.next() {
            if l.trim_end() == "event: devserver"
                && let Some(d) = lines.next().and_then(|d| d.strip_prefix("data: "))
                && let Ok(v) = serde_json::from_str::<Value>(d.trim_end())
            {
                out.push(v);
            }
        }
        out
    }

    /// Reads whatever arrives within `within` (nothing is fine).
    async fn drain(&mut self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        let mut chunk = [0u8; 4096];
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await
        {
            if n == 0 {
                break;
            }
            self.buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    }

    /// Waits until `n` devserver events have arrived; returns them all.
    async fn wait_devserver(&mut self, n: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let got = self.devserver_events();
            if got.len() >= n {
                return got;
            }
            let mut chunk = [0u8; 4096];
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .unwrap_or_else(|_| panic!("{n} devserver events in time, got {got:?}"))
                .expect("read");
            assert!(read > 0, "the event stream ended");
            self.buf.push_str(&String::from_utf8_lossy(&chunk[..read]));
        }
    }
}

/// A runner connection that takes jobs: hello with the `jobs` feature.
async fn job_runner(addr: SocketAddr, token: &str) -> Ws {
    let mut ws = runner_ws(addr, Some(token)).await.expect("runner accepted");
    let hello = json!({
        "t": "hello", "v": 2, "host": "test-host", "version": "0.0.0-test",
        "tmux_version": "3.4", "started_at": 0, "features": ["jobs"]
    });
    ws.send(Message::text(hello.to_string()))
        .await
        .expect("hello");
    next_msg(&mut ws, |v| v["t"] == "welcome").await;
    ws
}

async fn next_msg(ws: &mut Ws, want: impl Fn(&Value) -> bool) -> Value {
    loop {
        let msg = tokio::time::timeout(STEP, ws.next())
            .await
            .expect("message in time")
            .expect("open")
            .expect("ok");
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).expect("json");
            if want(&v) {
                return v;
            }
        }
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.expect("send");
}

#[tokio::test]
async fn issue_12_devservers_api_and_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    for url in database_urls(dir.path()) {
        api_and_events(&url).await;
    }
}

async fn api_and_events(url: &str) {
    let relay = TestRelay::start(url).await;
    let origin = relay.origin();
    let (user_id, cookie) = relay.user("dev").await;
    let h: Vec<(&str, &str)> = vec![
        ("cookie", &cookie),
        ("origin", &origin),
        ("x-requested-with", "tmux-bridge"),
        ("content-type", "application/json"),
    ];
    let idea = unique("devidea");

    // Bad input is refused in words.
    for (body, why) in [
        (json!({"idea": idea}).to_string(), "command"),
        (json!({"idea": idea, "command": "  "}).to_string(), "empty"),
        (
            json!({"idea": idea, "command": "x", "cwd": "relative"}).to_string(),
            "absolute",
        ),
        (
            json!({"idea": idea, "command": "x", "kind": "job"}).to_string(),
            "unknown field",
        ),
        (
            json!({"idea": "bad\u{1}idea", "command": "x"}).to_string(),
            "control",
        ),
        ("not json".to_owned(), "expected"),
    ] {
        let r = relay
            .http("POST", "/api/devservers", &h, body.as_bytes())
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        let err = r.json()["error"].as_str().unwrap_or_default().to_owned();
        assert!(!err.is_empty() && err.contains(why), "{body}: {err}");
    }
    let r = relay
        .http(
            "POST",
            "/api/devservers",
            &[("cookie", &cookie), ("origin", "http://evil.example")],
            br#"{"idea":"x","command":"y"}"#,
        )
        .await;
    assert_eq!(r.status, 403, "cross-site creation");

    // A queued one, stopped before any runner took it: cancelled, no
    // process-exited (it never ran).
    let body = json!({"idea": idea, "command": "npm run dev"}).to_string();
    let r = relay
        .http("POST", "/api/devservers", &h, body.as_bytes())
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let queued = r.json();
    assert_eq!(
        (queued["kind"].as_str(), queued["state"].as_str()),
        (Some("devserver"), Some("queued"))
    );
    assert_eq!(queued["ports"], json!([]));
    assert_eq!(queued["events"], json!([]));
    let q = queued["id"].as_str().expect("id").to_owned();
    let r = relay
        .http("POST", &format!("/api/devservers/{q}/stop"), &h, b"")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["state"], "cancelled");
    let r = relay
        .http("POST", &format!("/api/devservers/{q}/stop"), &h, b"")
        .await;
    assert_eq!(r.status, 409, "stopping twice");
    assert!(r.text().contains("ended"), "{}", r.text());

    // A job of kind job is not a dev server here.
    let r = relay
        .http(
            "POST",
            "/api/jobs",
            &h,
            json!({"idea": idea, "command": "make"})
                .to_string()
                .as_bytes(),
        )
        .await;
    assert_eq!(r.status, 201);
    let plain = r.json()["id"].as_str().expect("id").to_owned();
    for (m, p) in [
        ("GET", format!("/api/devservers/{plain}")),
        ("POST", format!("/api/devservers/{plain}/stop")),
        ("GET", "/api/devservers/jnope".to_owned()),
        ("POST", "/api/devservers/jnope/stop".to_owned()),
    ] {
        let r = relay.http(m, &p, &h, b"").await;
        assert_eq!(r.status, 404, "{m} {p}");
    }

    // A runner that takes jobs: the dev server starts, reports ports, ends.
    let mut events = Events::open(relay.addr(), &cookie).await;
    // Another account's event stream, open all along.
    let (_other_id, other_cookie) = relay.user("other").await;
    let mut others = Events::open(relay.addr(), &other_cookie).await;
    let (rid, token) = pair(&relay, &user_id).await;
    let mut ws = job_runner(relay.addr(), &token).await;
    // The queued plain job reaches the runner first; refuse it.
    let r = relay
        .http("POST", "/api/devservers", &h, body.as_bytes())
        .await;
    assert_eq!(r.status, 201);
    let id = r.json()["id"].as_str().expect("id").to_owned();
    loop {
        let cmd = next_msg(&mut ws, |v| v["t"] == "command" && v["op"] == "start_job").await;
        let ok = cmd["job"] == id.as_str();
        if ok {
            assert_eq!(cmd["kind"], "devserver", "{cmd}");
        }
        send(&mut ws, json!({"t": "result", "id": cmd["id"], "ok": ok})).await;
        if ok {
            break;
        }
    }
    let report = |phase: &str, ports: Value| json!({"t": "job", "job": id, "phase": phase, "started_at": 1_000, "ports": ports});
    send(&mut ws, report("running", json!([]))).await;
    send(
        &mut ws,
        report(
            "running",
            json!([{"port": 8123, "addr": "127.0.0.1", "source": "socket"},
                   {"port": 8123, "addr": "::1", "source": "socket"}]),
        ),
    )
    .await;
    let got = events.wait_devserver(1).await;
    assert_eq!(got[0]["kind"], "port-detected", "{got:?}");
    assert_eq!(got[0]["job"], id.as_str());
    assert_eq!(got[0]["idea"], idea.as_str());
    assert_eq!(got[0]["port"], 8123);
    assert_eq!(got[0]["addr"], "127.0.0.1");
    assert_eq!(got[0]["source"], "socket");
    assert_eq!(got[0]["url"], format!("/preview/{id}/8123"));
    send(
        &mut ws,
        report(
            "running",
            json!([{"port": 9000, "addr": "localhost", "source": "output"}]),
        ),
    )
    .await;
    let got = events.wait_devserver(3).await;
    assert_eq!(
        (got[1]["kind"].as_str(), got[1]["port"].as_u64()),
        (Some("port-closed"), Some(8123))
    );
    assert_eq!(
        (
            got[2]["kind"].as_str(),
            got[2]["port"].as_u64(),
            got[2]["source"].as_str()
        ),
        (Some("port-detected"), Some(9000), Some("output"))
    );

    // The page after a reload: the list and the dev server carry the ports
    // (with their preview URLs) and the events.
    let r = relay
        .http("GET", &format!("/api/devservers?idea={idea}"), &h, b"")
        .await;
    assert_eq!(r.status, 200);
    let list = r.json()["devservers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        list.iter().map(|d| d["id"].as_str()).collect::<Vec<_>>(),
        [Some(id.as_str()), Some(q.as_str())],
        "newest first, dev servers only"
    );
    let r = relay
        .http("GET", &format!("/api/devservers/{id}"), &h, b"")
        .await;
    assert_eq!(r.status, 200);
    let d = r.json();
    assert_eq!(d["state"], "running");
    assert_eq!(d["ports"][0]["url"], format!("/preview/{id}/9000"));
    let kinds: Vec<_> = d["events"]
        .as_array()
        .map(|a| a.iter().map(|e| e["kind"].as_str().unwrap_or("")).collect())
        .unwrap_or_default();
    assert_eq!(kinds, ["port-detected", "port-closed", "port-detected"]);

    // Stop: the runner gets the cancel, reports the exit; every port
    // closes and the process exited with its signal.
    let r = relay
        .http("POST", &format!("/api/devservers/{id}/stop"), &h, b"")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["cancel_requested"], true);
    let cmd = next_msg(&mut ws, |v| v["t"] == "command" && v["op"] == "cancel_job").await;
    assert_eq!(cmd["job"], id.as_str());
    send(&mut ws, json!({"t": "result", "id": cmd["id"], "ok": true})).await;
    send(
        &mut ws,
        json!({"t": "job", "job": id, "phase": "exited", "signal": 2, "started_at": 1_000, "ended_at": 2_000}),
    )
    .await;
    let got = events.wait_devserver(5).await;
    assert_eq!(
        (got[3]["kind"].as_str(), got[3]["port"].as_u64()),
        (Some("port-closed"), Some(9000))
    );
    assert_eq!(got[4]["kind"], "process-exited");
    assert_eq!(
        (got[4]["exit_code"].clone(), got[4]["signal"].clone()),
        (Value::Null, json!(2))
    );
    let r = relay
        .http("GET", &format!("/api/devservers/{id}"), &h, b"")
        .await;
    let d = r.json();
    assert_eq!(d["state"], "cancelled");
    assert_eq!(d["ports"], json!([]));
    assert_eq!(d["events"].as_array().map(Vec::len), Some(5));
    // A late report changes nothing and says nothing.
    send(
        &mut ws,
        report(
            "running",
            json!([{"port": 9001, "addr": "::1", "source": "socket"}]),
        ),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = relay
        .http("GET", &format!("/api/devservers/{id}"), &h, b"")
        .await;
    assert_eq!(r.json()["events"].as_array().map(Vec::len), Some(5));
    // Nothing of it reached the other account's stream.
    others.drain(Duration::from_millis(300)).await;
    assert_eq!(others.devserver_events(), Vec::<Value>::new());
    assert!(
        !others.buf.contains(&id),
        "another account saw the dev server"
    );
    let _ = rid;
    let _ = ws.close(None).await;
}

/// Pairs a runner into the account through the real pairing flow.
async fn pair(relay: &TestRelay, user_id: &str) -> (String, String) {
    let auth = relay.auth();
    let addr = "10.78.0.1".parse().expect("addr");
    let start = auth
        .pair_start(addr, "dev-runner", "host")
        .await
        .expect("start");
    let name = auth
        .store()
        .user_by_id(user_id)
        .await
        .expect("q")
        .expect("user")
        .name;
    let cu = relay::auth::CurrentUser {
        id: user_id.to_owned(),
        name,
    };
    auth.pair_approve(&cu, addr, &start.code)
        .await
        .expect("approve");
    match auth
        .pair_check(&start.code, &start.poll_token)
        .await
        .expect("check")
    {
        relay::auth::PairCheck::Approved {
            runner_id,
            runner_token,
            ..
        } => (runner_id, runner_token),
        _ => panic!("pairing not approved"),
    }
}
