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

async fn dump_dom(profile: &Path, url: &str) -> String {
    let out = tokio::process::Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=8000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .output()
        .await
        .expect("run chromium");
    String::from_utf8_lossy(&out.stdout).into_owned()
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
    let dom = dump_dom(profile.path(), &setup.login_url).await;
    assert!(
        dom.contains("tb_chromium_primary"),
        "session list rendered:\n{dom}"
    );
    assert!(dom.contains("runner online"), "{dom}");
    assert!(dom.contains("seq 2"), "head seq listed: {dom}");
}
