//! The real page in headless Chromium against a real relay: the one-time
//! login link sets the cookie, the page loads under the relay's CSP and lists
//! the session from `GET /api/sessions`. Skipped (passes trivially) when
//! `/usr/bin/chromium` or the built page is missing. Terminal rendering is
//! tested by the page's own Playwright suite.

use std::path::Path;

use bytes::Bytes;
use protocol::wire::{Frame, Record, RecordBody};

use crate::harness::*;

const CHROMIUM: &str = "/usr/bin/chromium";

fn topology() -> &'static str {
    r#"{"session":"$1","name":"tb_local_primary","active_window":"@1","windows":[{"id":"@1","index":0,"name":"bash","active":true,"layout":"b25d,80x24,0,0,0","visible_layout":"b25d,80x24,0,0,0","flags":"*","active_pane":"%0","panes":[{"id":"%0","x":0,"y":0,"cols":80,"rows":24,"title":"host"}]}]}"#
}

/// `GET /json/list` of a DevTools endpoint (which keeps the connection
/// open: read by Content-Length).
async fn json_list(addr: std::net::SocketAddr) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return serde_json::Value::Null;
    };
    // The Host names the port: DevTools builds its WebSocket URLs from it.
    let req = format!("GET /json/list HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return serde_json::Value::Null;
    }
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let Ok(Ok(n)) = tokio::time::timeout(STEP, s.read(&mut buf)).await else {
            return serde_json::Value::Null;
        };
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw);
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if raw.len() >= end + 4 + len {
                return serde_json::from_slice(&raw[end + 4..end + 4 + len]).unwrap_or_default();
            }
        }
    }
    serde_json::Value::Null
}

/// Opens `url` in headless Chromium and returns the page's DOM once
/// `ready` holds for it (or at the deadline). Over the DevTools protocol
/// rather than `--dump-dom --virtual-time-budget`: the page keeps its
/// `/api/events` stream open, and virtual time never advances while a
/// fetch is pending.
async fn dom_when(profile: &Path, url: &str, ready: impl Fn(&str) -> bool) -> String {
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::AsyncBufReadExt;
    use tokio_tungstenite::tungstenite::Message;
    let mut child = tokio::process::Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run chromium");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let port = tokio::time::timeout(STEP, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.strip_prefix("DevTools listening on ws://127.0.0.1:") {
                return rest.split('/').next().and_then(|p| p.parse::<u16>().ok());
            }
        }
        None
    })
    .await
    .expect("chromium starts in time")
    .expect("a DevTools port");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let devtools: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = tokio::time::Instant::now() + STEP;
    let mut dom = String::new();
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let targets = json_list(devtools).await;
        let Some(ws_url) = targets
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
        else {
            continue;
        };
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(ws_url).await else {
            continue;
        };
        let ask = serde_json::json!({"id": 1, "method": "Runtime.evaluate",
            "params": {"expression": "document.documentElement.outerHTML", "returnByValue": true}});
        if ws.send(Message::text(ask.to_string())).await.is_err() {
            continue;
        }
        while let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(std::time::Duration::from_secs(5), ws.next()).await
        {
            let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap_or_default();
            if v["id"] == 1 {
                dom = v["result"]["result"]["value"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                break;
            }
        }
        if ready(&dom) {
            break;
        }
    }
    let _ = child.kill().await;
    dom
}

#[tokio::test]
async fn the_built_page_lists_and_opens_a_session_in_chromium() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/dist");
    if !Path::new(CHROMIUM).exists() || !web.join("index.html").exists() {
        eprintln!("skipped: no chromium or no built page");
        return;
    }
    let relay = TestRelay::start_with(&Db::Sqlite, |c| c.web_dir = web.clone()).await;
    let setup = relay
        .handle()
        .local_setup("laptop")
        .await
        .expect("local setup");
    let h = hello("chromium");
    let mut r = RunnerClient::connect(relay.addr(), &setup.runner_token, &h).await;
    let snap = Frame::snapshot(
        1,
        vec![
            Record {
                time: 0,
                seq: 1,
                body: RecordBody::Topology(Bytes::from_static(topology().as_bytes())),
            },
            Record {
                time: 0,
                seq: 1,
                body: RecordBody::PaneReset {
                    pane: tmux_cc::PaneId(0),
                    cols: 80,
                    rows: 24,
                    bytes: Bytes::from_static(b"hello from the relay\r\n"),
                },
            },
        ],
    )
    .expect("snapshot");
    let batch = Frame::batch(vec![Record {
        time: 0,
        seq: 1,
        body: RecordBody::Topology(Bytes::from_static(topology().as_bytes())),
    }])
    .expect("batch");
    r.send(batch.encode(true)).await;
    r.wait_ack(1).await;
    r.send(snap.encode(true)).await;
    r.send(
        Frame::batch(vec![Record {
            time: 0,
            seq: 2,
            body: RecordBody::Output {
                pane: tmux_cc::PaneId(0),
                bytes: Bytes::from_static(b"second line ok\r\n"),
            },
        }])
        .expect("batch")
        .encode(true),
    )
    .await;
    r.wait_ack(2).await;

    // The login link sets the cookie and redirects to the session list.
    let profile = tempfile::tempdir().expect("profile dir");
    let dom = dom_when(profile.path(), &setup.login_url, |d| d.contains("seq 2")).await;
    assert!(
        dom.contains("tb_chromium__primary"),
        "session list rendered:\n{dom}"
    );
    assert!(dom.contains("runner online"), "{dom}");
    assert!(dom.contains("seq 2"), "head seq listed: {dom}");
}
