//! Protocol 2 (issue 9): one runner connection multiplexing sessions as
//! channels, commands from the page's API (create, kill) with their
//! statuses, heartbeats, the activity feed and the event stream, and the
//! relay's refusals of bad frames (issue 17, item 1) and of input naming a
//! pane outside the session (issue 10, item 1).

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::SinkExt;
use protocol::control::{BrowserToRelay, TmuxOp};
use protocol::runner::{ChannelStatus, CloseReason, CommandOp, RelayMsg, with_channel};
use protocol::wire::{Frame, FrameKind, Record, RecordBody};
use testkit::runner::{TestRunner, open};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;
use crate::principal::*;

async fn runner(relay: &TestRelay, p: &Principal) -> TestRunner {
    TestRunner::connect(relay.addr(), &p.runner_token, testkit::runner::hello(&[]))
        .await
        .expect("runner connects")
}

/// A page request with the cookie, same Origin and `X-Requested-With`.
async fn page(
    relay: &TestRelay,
    p: &Principal,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let origin = relay.origin();
    let (status, _, bytes) = http_with_body(
        relay.addr(),
        method,
        path,
        &[
            ("cookie", &p.cookie),
            ("origin", &origin),
            ("x-requested-with", "tmux-bridge"),
            ("content-type", "application/json"),
        ],
        body.as_bytes(),
    )
    .await;
    let v = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, v)
}

/// `POST /api/sessions` on a task (the runner answers meanwhile).
fn post_session(
    relay: &TestRelay,
    p: &Principal,
    body: serde_json::Value,
) -> tokio::task::JoinHandle<(u16, serde_json::Value)> {
    let (addr, origin, cookie) = (relay.addr(), relay.origin(), p.cookie.clone());
    tokio::spawn(async move {
        let (status, _, bytes) = http_with_body(
            addr,
            "POST",
            "/api/sessions",
            &[
                ("cookie", &cookie),
                ("origin", &origin),
                ("x-requested-with", "tmux-bridge"),
                ("content-type", "application/json"),
            ],
            body.to_string().as_bytes(),
        )
        .await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    })
}

async fn join<T>(h: tokio::task::JoinHandle<T>) -> T {
    tokio::time::timeout(STEP, h)
        .await
        .expect("answered in time")
        .expect("task")
}

#[tokio::test]
async fn channels_are_isolated_sessions_on_one_connection() {
    for db in databases() {
        let relay = TestRelay::start(&db).await;
        let p = new_principal(&relay).await;
        let mut r = runner(&relay, &p).await;
        let idea = unique("multi");
        let one = r.open(open(1, &idea, "1", "a")).await.expect("open 1");
        let two = r.open(open(2, &idea, "2", "b")).await.expect("open 2");
        assert_ne!(one.session_id, two.session_id, "{db:?}");
        let tok1 = browser_token(&relay, &p, &one.session_id);
        let tok2 = browser_token(&relay, &p, &two.session_id);
        let mut b1 =
            BrowserClient::connect(relay.addr(), &one.session_id, &tok1, &relay.origin(), 0).await;
        let mut b2 =
            BrowserClient::connect(relay.addr(), &two.session_id, &tok2, &relay.origin(), 0).await;
        // Viewers go to the right channel.
        for ch in [1, 2] {
            let m = r
                .wait_for(|m| matches!(m, RelayMsg::Viewers { ch: c, count: 1 } if *c == ch))
                .await
                .expect("viewers");
            assert_eq!(m, RelayMsg::Viewers { ch, count: 1 });
        }
        // Interleaved on one socket, each channel with its own sequence.
        for seq in 1..=5u64 {
            r.send_frame(1, &batch(seq, seq, 100)).await.expect("send");
            r.send_frame(2, &batch(seq, seq, 300)).await.expect("send");
        }
        r.wait_ack(1, 5).await.expect("acks of 1");
        r.wait_ack(2, 5).await.expect("acks of 2");
        b1.read_until(5).await;
        b2.read_until(5).await;
        assert!(b1.frames.iter().all(|f| f.3 == batch(f.1, f.2, 100).len()));
        assert!(b2.frames.iter().all(|f| f.3 == batch(f.1, f.2, 300).len()));
        assert_eq!(b1.frames.len(), 5, "{db:?}: nothing of channel 2");
        assert_eq!(b2.frames.len(), 5, "{db:?}: nothing of channel 1");
        b1.drain_quiet(Duration::from_millis(300)).await;
        assert_eq!(b1.frames.len(), 5, "{db:?}: and nothing more");
        let store = relay.handle().store();
        assert_eq!(
            store
                .last_seq(one.session_id.parse().expect("id"))
                .await
                .expect("q"),
            5
        );
        assert_eq!(
            store
                .last_seq(two.session_id.parse().expect("id"))
                .await
                .expect("q"),
            5
        );
    }
}

#[tokio::test]
async fn a_channel_number_is_never_reused_and_frames_need_an_open_channel() {
    let relay = TestRelay::start(&Db::Sqlite).await;
    let p = new_principal(&relay).await;
    let mut r = runner(&relay, &p).await;
    r.open(open(1, &unique("x"), "1", "a")).await.expect("open");
    r.close(1, CloseReason::Stopping).await.expect("close");
    r.send(&protocol::runner::RunnerMsg::Open(open(
        1,
        &unique("y"),
        "1",
        "b",
    )))
    .await
    .expect("send");
    let (code, reason) = r.wait_close().await.expect("close frame");
    assert_eq!(code, 4000, "{reason}");
    // A bad open is refused without ending the connection.
    let mut r = runner(&relay, &p).await;
    let mut bad = open(3, "", "1", "a");
    bad.idea.clear();
    r.send(&protocol::runner::RunnerMsg::Open(bad))
        .await
        .expect("send");
    let m = r
        .wait_for(|m| matches!(m, RelayMsg::OpenFailed { .. }))
        .await
        .expect("open_failed");
    assert!(
        matches!(
            m,
            RelayMsg::OpenFailed {
                ch: 3,
                code: 4000,
                ..
            }
        ),
        "{m:?}"
    );
    assert!(r.open(open(4, &unique("z"), "1", "a")).await.is_ok());
}

/// The runner side of `create_session`: opens `ch` for the command's
/// (idea, slot) unless the id was answered before.
async fn answer_create(r: &mut TestRunner, ch: u32) -> (String, String, String) {
    let (id, op) = r.next_command().await.expect("a command");
    if r.repeat_or(&id).await.expect("repeat") {
        return (id, String::new(), String::new());
    }
    let CommandOp::CreateSession { idea, slot, .. } = op else {
        panic!("expected create_session, got {op:?}");
    };
    r.open(open(ch, &idea, &slot, &format!("inst-{ch}")))
        .await
        .expect("open");
    r.reply(&id, true, Some(ch), None).await.expect("result");
    (id, idea, slot)
}

#[tokio::test]
async fn create_and_kill_sessions_from_the_page() {
    for db in databases() {
        let relay = TestRelay::start(&db).await;
        let p = new_principal(&relay).await;
        let idea = unique("page");
        // No runner online: 503.
        let (status, v) = join(post_session(
            &relay,
            &p,
            serde_json::json!({"idea": idea, "slot": "1"}),
        ))
        .await;
        assert_eq!(status, 503, "{db:?}: {v}");
        let mut r = runner(&relay, &p).await;
        // Bad names never reach the runner: 400 with the reason.
        for (i, s) in [("", "1"), ("ok", ""), (&*"x".repeat(300), "1")] {
            let (status, v) = join(post_session(
                &relay,
                &p,
                serde_json::json!({"idea": i, "slot": s}),
            ))
            .await;
            assert_eq!(status, 400, "{i:?}/{s:?}: {v}");
            assert!(v["error"].is_string());
        }
        let post = post_session(&relay, &p, serde_json::json!({"idea": idea, "slot": "1"}));
        answer_create(&mut r, 5).await;
        let (status, v) = join(post).await;
        assert_eq!(status, 201, "{db:?}: {v}");
        let session = &v["session"];
        assert_eq!(session["idea"], idea.as_str());
        assert_eq!(session["state"], "live");
        assert_eq!(session["runner_id"], p.runner_id.as_str());
        let sid = session["id"].as_str().expect("id").to_owned();
        // Asked again: the runner finds it (same channel), 200, one session.
        let post = post_session(&relay, &p, serde_json::json!({"idea": idea, "slot": "1"}));
        let (id, op) = r.next_command().await.expect("command");
        assert!(matches!(op, CommandOp::CreateSession { .. }));
        r.reply(&id, true, Some(5), None).await.expect("result");
        let (status, v) = join(post).await;
        assert_eq!(status, 200, "{db:?}: {v}");
        assert_eq!(v["session"]["id"], sid.as_str());
        // The same result delivered twice: the second finds no command
        // waiting and is ignored.
        r.reply(&id, true, Some(5), None)
            .await
            .expect("result again");
        let (_, list) = page(&relay, &p, "GET", "/api/sessions", "").await;
        assert_eq!(list["sessions"].as_array().map(Vec::len), Some(1), "{list}");
        // A failed create carries the runner's reason.
        let post = post_session(&relay, &p, serde_json::json!({"idea": idea, "slot": "2"}));
        let (id, _) = r.next_command().await.expect("command");
        r.reply(
            &id,
            false,
            None,
            Some(protocol::runner::ErrorBody {
                code: "invalid_name".into(),
                message: "no such slot".into(),
            }),
        )
        .await
        .expect("result");
        let (status, v) = join(post).await;
        assert_eq!((status, v["error"].as_str()), (400, Some("no such slot")));

        // Kill: the runner closes the channel (killed) and answers.
        let del = {
            let (addr, origin, cookie, path) = (
                relay.addr(),
                relay.origin(),
                p.cookie.clone(),
                format!("/api/sessions/{sid}"),
            );
            tokio::spawn(async move {
                http(
                    addr,
                    "DELETE",
                    &path,
                    &[
                        ("cookie", &cookie),
                        ("origin", &origin),
                        ("x-requested-with", "tmux-bridge"),
                    ],
                )
                .await
                .0
            })
        };
        let (id, op) = r.next_command().await.expect("kill command");
        let CommandOp::KillSession {
            idea: i,
            slot,
            instance,
        } = op
        else {
            panic!("expected kill_session, got {op:?}");
        };
        assert_eq!(
            (i.as_str(), slot.as_str(), instance.as_str()),
            (idea.as_str(), "1", "inst-5")
        );
        r.close(5, CloseReason::Killed).await.expect("close");
        r.reply(&id, true, None, None).await.expect("result");
        assert_eq!(join(del).await, 204, "{db:?}");
        let (_, list) = page(&relay, &p, "GET", "/api/sessions", "").await;
        assert_eq!(list["sessions"][0]["state"], "closed", "{list}");
        assert!(list["sessions"][0]["closed_at"].is_number());
        // A closed session is deleted from the list and the store.
        let (status, _) = page(&relay, &p, "DELETE", &format!("/api/sessions/{sid}"), "").await;
        assert_eq!(status, 204);
        let (_, list) = page(&relay, &p, "GET", "/api/sessions", "").await;
        assert_eq!(list["sessions"].as_array().map(Vec::len), Some(0), "{list}");
        let gone = relay
            .handle()
            .store()
            .session(sid.parse().expect("id"))
            .await
            .expect("q");
        assert!(gone.is_none());
        let (status, _) = page(&relay, &p, "DELETE", &format!("/api/sessions/{sid}"), "").await;
        assert_eq!(status, 404, "deleted already");
        // Runner offline: 503 for a live session.
        let sid2 = r
            .open(open(6, &idea, "3", "c"))
            .await
            .expect("open")
            .session_id;
        drop(r);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (status, v) = page(&relay, &p, "DELETE", &format!("/api/sessions/{sid2}"), "").await;
        assert_eq!(status, 503, "{v}");
    }
}

#[tokio::test]
async fn a_command_without_an_answer_is_a_504_and_several_runners_a_409() {
    let relay = TestRelay::start_with(&Db::Sqlite, |c| {
        c.command_timeout = Duration::from_millis(500);
    })
    .await;
    let p = new_principal(&relay).await;
    let mut r = runner(&relay, &p).await;
    let idea = unique("slow");
    let post = post_session(&relay, &p, serde_json::json!({"idea": idea, "slot": "1"}));
    let (_id, _) = r.next_command().await.expect("command");
    let (status, v) = join(post).await;
    assert_eq!(status, 504, "{v}");
    // A second runner of the account online: the page must name one.
    let q = new_runner_of(&relay, &p).await;
    let _r2 = TestRunner::connect(relay.addr(), &q, testkit::runner::hello(&[]))
        .await
        .expect("second runner connects");
    let (status, v) = join(post_session(
        &relay,
        &p,
        serde_json::json!({"idea": idea, "slot": "1"}),
    ))
    .await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["runners"].as_array().map(Vec::len), Some(2), "{v}");
    // Naming one sends the command to it only.
    let post = post_session(
        &relay,
        &p,
        serde_json::json!({"idea": idea, "slot": "1", "runner_id": p.runner_id}),
    );
    answer_create(&mut r, 9).await;
    let (status, v) = join(post).await;
    assert_eq!(status, 201, "{v}");
    // An unknown runner id: 404.
    let (status, _) = join(post_session(
        &relay,
        &p,
        serde_json::json!({"idea": idea, "slot": "1", "runner_id": "nope"}),
    ))
    .await;
    assert_eq!(status, 404);
}

/// A second runner of `p`'s account; returns its token.
async fn new_runner_of(relay: &TestRelay, p: &Principal) -> String {
    let runner_id = unique("runner");
    let jti = unique("jti");
    relay
        .handle()
        .store()
        .create_runner(&store::accounts::RunnerRecord {
            id: runner_id.clone(),
            user_id: p.user_id.clone(),
            name: "second".into(),
            host: "other-host".into(),
            embedded: false,
            token_jti: jti.clone(),
            created_at: now() * 1000,
            last_seen_at: None,
            revoked_at: None,
        })
        .await
        .expect("create runner");
    keys(relay)
        .mint_runner(&p.user_id, &runner_id, &jti, now(), 3600)
        .expect("mint")
}

#[tokio::test]
async fn a_runner_silent_for_two_and_a_half_heartbeats_is_offline() {
    let relay = TestRelay::start_with(&Db::Sqlite, |c| {
        c.heartbeat = Duration::from_millis(200);
    })
    .await;
    let p = new_principal(&relay).await;
    let mut r = runner(&relay, &p).await;
    assert_eq!(r.heartbeat_ms, 200);
    let sid = r
        .open(open(1, &unique("hb"), "1", "a"))
        .await
        .expect("open")
        .session_id;
    // While it sends status, it stays online (well past 2.5 heartbeats).
    for _ in 0..8 {
        r.status(vec![ChannelStatus {
            ch: 1,
            attached_clients: 2,
        }])
        .await
        .expect("status");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, list) = page(&relay, &p, "GET", "/api/sessions", "").await;
    assert_eq!(list["sessions"][0]["state"], "live", "{list}");
    assert_eq!(list["sessions"][0]["attached_clients"], 2, "{list}");
    // Then silence (no status, and no pong: this runner stops reading, as
    // a frozen process or a cut network would).
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (_, runners) = page(&relay, &p, "GET", "/api/runners", "").await;
    assert_eq!(
        runners["runners"][0]["online"], false,
        "offline within 2.5 heartbeats: {runners}"
    );
    let (code, reason) = r.wait_close().await.expect("close frame");
    assert_eq!(code, 4408, "{reason}");
    let (_, list) = page(&relay, &p, "GET", "/api/sessions", "").await;
    assert_eq!(list["sessions"][0]["id"], sid.as_str());
    assert_eq!(list["sessions"][0]["state"], "runner_offline", "{list}");
}

#[tokio::test]
async fn a_second_connection_of_the_runner_replaces_the_first_with_4001() {
    let relay = TestRelay::start(&Db::Sqlite).await;
    let p = new_principal(&relay).await;
    let idea = unique("rep");
    let mut first = runner(&relay, &p).await;
    let s1 = first.open(open(1, &idea, "1", "a")).await.expect("open");
    let mut second = runner(&relay, &p).await;
    let (code, _) = first.wait_close().await.expect("close frame");
    assert_eq!(code, 4001);
    // The session is the same one, served by the new connection.
    let s2 = second.open(open(7, &idea, "1", "a")).await.expect("open");
    assert_eq!(s1.session_id, s2.session_id);
    second.send_frame(7, &batch(1, 1, 10)).await.expect("send");
    second.wait_ack(7, 1).await.expect("ack");
}

#[tokio::test]
async fn a_new_instance_is_a_new_session_and_the_old_one_stays_readable() {
    for db in databases() {
        let relay = TestRelay::start(&db).await;
        let p = new_principal(&relay).await;
        let idea = unique("inst");
        let mut r = runner(&relay, &p).await;
        let old = r.open(open(1, &idea, "1", "first")).await.expect("open");
        r.send_frame(1, &batch(1, 3, 50)).await.expect("send");
        r.wait_ack(1, 3).await.expect("ack");
        // The tmux server died; the runner recreated the session.
        r.close(1, CloseReason::ServerExited).await.expect("close");
        let new = r.open(open(2, &idea, "1", "second")).await.expect("open");
        assert_ne!(old.session_id, new.session_id, "{db:?}");
        assert_eq!(new.last_seq, 0, "a new sequence");
        let (_, list) = page(&relay, &p, "GET", "/api/sessions", "").await;
        let states: Vec<(String, String)> = list["sessions"]
            .as_array()
            .expect("list")
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().unwrap_or("").to_owned(),
                    s["state"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        assert!(
            states.contains(&(old.session_id.clone(), "closed".into())),
            "{states:?}"
        );
        assert!(
            states.contains(&(new.session_id.clone(), "live".into())),
            "{states:?}"
        );
        // The old history is readable.
        let tok = browser_token(&relay, &p, &old.session_id);
        let mut b =
            BrowserClient::connect(relay.addr(), &old.session_id, &tok, &relay.origin(), 0).await;
        b.read_until(3).await;
        assert!(!b.runner_online);
        // And the activity feed tells the story, newest first.
        let (status, feed) = page(&relay, &p, "GET", "/api/activity?limit=2", "").await;
        assert_eq!(status, 200);
        let kinds: Vec<&str> = feed["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["kind"].as_str())
            .collect();
        assert_eq!(kinds, vec!["session_created", "session_closed"], "{feed}");
        let before = feed["next_before"]
            .as_str()
            .expect("a next page")
            .to_owned();
        let (_, older) = page(
            &relay,
            &p,
            "GET",
            &format!("/api/activity?before={before}"),
            "",
        )
        .await;
        let kinds: Vec<&str> = older["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["kind"].as_str())
            .collect();
        assert_eq!(
            kinds,
            vec!["session_created", "runner_connected"],
            "{older}"
        );
        assert!(older["next_before"].is_null());
    }
}

/// Frames a runner must not get stored, acked or forwarded (issue 17,
/// item 1); each closes the connection with 4000.
fn malformed_frames() -> Vec<(&'static str, Bytes)> {
    let good = |first: u64, last: u64| batch(first, last, 10).to_vec();
    let mut three_says_one = good(1, 1);
    three_says_one[12..20].copy_from_slice(&3u64.to_le_bytes());
    let mut garbage_zstd = good(1, 1)[..20].to_vec();
    garbage_zstd[2] = 1;
    garbage_zstd.extend_from_slice(&[0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x10, 0xff, 0xff, 0xff, 0xff]);
    let mut past_end = good(1, 1);
    // The record's length (after kind, seq and time) claims more bytes.
    let len_at = 20 + 1 + 8 + 8;
    past_end[len_at..len_at + 4].copy_from_slice(&10_000u32.to_le_bytes());
    let out_of_order = {
        let rec = |seq: u64| Record {
            time: 0,
            seq,
            body: RecordBody::Output {
                pane: tmux_cc::PaneId(0),
                bytes: Bytes::from_static(b"x"),
            },
        };
        let mut payload = BytesMut::new();
        rec(2).encode_into(&mut payload);
        rec(1).encode_into(&mut payload);
        let mut f = BytesMut::new();
        f.put_u8(protocol::wire::VERSION);
        f.put_u8(FrameKind::Batch as u8);
        f.put_u8(0);
        f.put_u8(0);
        f.put_u64_le(1);
        f.put_u64_le(2);
        f.put_slice(&payload);
        f.to_vec()
    };
    let bad_topology = Frame::batch(vec![Record {
        time: 0,
        seq: 1,
        body: RecordBody::Topology(Bytes::from_static(b"{not json")),
    }])
    .expect("batch")
    .encode(false)
    .to_vec();
    vec![
        ("header says 3 records, carries 1", three_says_one.into()),
        ("garbage zstd", garbage_zstd.into()),
        ("record length past the end", past_end.into()),
        ("records out of order", out_of_order.into()),
        ("topology that is not JSON", bad_topology.into()),
    ]
}

#[tokio::test]
async fn issue_17_malformed_frames_are_refused_before_anything_is_stored() {
    for db in databases() {
        let relay = TestRelay::start(&db).await;
        let p = new_principal(&relay).await;
        for (what, frame) in malformed_frames() {
            let mut r = runner(&relay, &p).await;
            let opened = r
                .open(open(1, &unique("bad"), "1", "a"))
                .await
                .expect("open");
            let tok = browser_token(&relay, &p, &opened.session_id);
            let mut b =
                BrowserClient::connect(relay.addr(), &opened.session_id, &tok, &relay.origin(), 0)
                    .await;
            r.ws.send(tokio_tungstenite::tungstenite::Message::Binary(
                with_channel(1, &frame),
            ))
            .await
            .expect("send");
            // Nothing acked: the next message is the close.
            let mut acked = false;
            let close = loop {
                match r.next().await {
                    Ok(RelayMsg::Ack { .. }) => acked = true,
                    Ok(_) => continue,
                    Err(e) => break e.to_string(),
                }
            };
            assert!(!acked, "{db:?} {what}: acked");
            assert!(
                close.contains("4000") || close.contains("Protocol") || close.contains("bad frame"),
                "{db:?} {what}: {close}"
            );
            let id: i64 = opened.session_id.parse().expect("id");
            assert_eq!(
                relay.handle().store().last_seq(id).await.expect("q"),
                0,
                "{db:?} {what}: stored"
            );
            b.drain_quiet(Duration::from_millis(300)).await;
            assert!(b.frames.is_empty(), "{db:?} {what}: forwarded");
        }
    }
}

#[tokio::test]
async fn issue_10_input_for_a_pane_outside_the_session_is_refused() {
    let relay = TestRelay::start(&Db::Sqlite).await;
    let p = new_principal(&relay).await;
    let h = hello(&unique("pane"));
    let mut r = RunnerClient::connect(relay.addr(), &p.runner_token, &h).await;
    r.send(topology_batch(1, &[4])).await;
    r.wait_ack(1).await;
    let tok = browser_token(&relay, &p, &r.session_id);
    let mut b = BrowserClient::connect(relay.addr(), &r.session_id, &tok, &relay.origin(), 0).await;
    for msg in [
        BrowserToRelay::Input {
            pane: tmux_cc::PaneId(1),
            data: "rm -rf ~\r".into(),
        },
        BrowserToRelay::Keys {
            pane: tmux_cc::PaneId(1),
            keys: vec!["Enter".into()],
        },
    ] {
        send_json(&mut b.ws, &msg).await;
    }
    // Keys are unsupported here (no feature) before the pane is looked at.
    let mut codes = Vec::new();
    while codes.len() < 2 {
        b.read_one().await;
        if let Some(t) = b.texts.pop() {
            let v: serde_json::Value = serde_json::from_str(&t).expect("json");
            if v["t"] == "error" {
                codes.push(v["code"].as_str().unwrap_or("").to_owned());
            }
        }
    }
    assert_eq!(codes, vec!["unknown_pane", "unsupported"]);
    // Input for the session's own pane goes through; the refused one never did.
    send_json(
        &mut b.ws,
        &BrowserToRelay::Input {
            pane: tmux_cc::PaneId(4),
            data: "ok".into(),
        },
    )
    .await;
    let m = r.wait_for(|m| matches!(m, RelayMsg::Input { .. })).await;
    assert_eq!(
        m,
        RelayMsg::Input {
            ch: CH,
            pane: tmux_cc::PaneId(4),
            data: "ok".into()
        }
    );
    // The topology changes: %4 is gone, %9 is new.
    r.send(topology_batch(2, &[9])).await;
    r.wait_ack(2).await;
    send_json(
        &mut b.ws,
        &BrowserToRelay::Input {
            pane: tmux_cc::PaneId(4),
            data: "late".into(),
        },
    )
    .await;
    loop {
        b.read_one().await;
        if b.texts.last().is_some_and(|t| t.contains("unknown_pane")) {
            break;
        }
    }
}

#[tokio::test]
async fn keys_and_tmux_actions_reach_a_runner_that_takes_them() {
    let relay = TestRelay::start(&Db::Sqlite).await;
    let p = new_principal(&relay).await;
    let h = hello(&unique("keys"));
    let mut r =
        RunnerClient::connect_with(relay.addr(), &p.runner_token, &h, &["keys", "tmux"]).await;
    r.send(topology_batch(1, &[2])).await;
    r.wait_ack(1).await;
    let tok = browser_token(&relay, &p, &r.session_id);
    let mut b = browser_socket(relay.addr(), &r.session_id, &tok, &relay.origin())
        .await
        .expect("browser");
    // (From 1: no frame comes before the control messages read here.)
    send_json(
        &mut b,
        &BrowserToRelay::Hello {
            last_seq: 1,
            epoch: None,
        },
    )
    .await;
    let welcome: serde_json::Value = next_control(&mut b).await;
    assert_eq!(welcome["features"], serde_json::json!(["keys", "tmux"]));
    send_json(
        &mut b,
        &BrowserToRelay::Keys {
            pane: tmux_cc::PaneId(2),
            keys: vec!["C-b".into(), "c".into()],
        },
    )
    .await;
    let m = r.wait_for(|m| matches!(m, RelayMsg::Keys { .. })).await;
    assert_eq!(
        m,
        RelayMsg::Keys {
            ch: CH,
            pane: tmux_cc::PaneId(2),
            keys: vec!["C-b".into(), "c".into()]
        }
    );
    send_json(
        &mut b,
        &BrowserToRelay::Tmux(TmuxOp::SelectWindow {
            window: tmux_cc::WindowId(0),
        }),
    )
    .await;
    let m = r.wait_for(|m| matches!(m, RelayMsg::Tmux { .. })).await;
    assert!(matches!(m, RelayMsg::Tmux { ch: CH, .. }), "{m:?}");
    // A window that is not the session's: refused.
    send_json(
        &mut b,
        &BrowserToRelay::Tmux(TmuxOp::SelectWindow {
            window: tmux_cc::WindowId(5),
        }),
    )
    .await;
    let err: serde_json::Value = next_control(&mut b).await;
    assert_eq!(err["code"], "unknown_pane", "{err}");
}

/// Reads Server-Sent Events from `/api/events` until every name in `want`
/// was seen (in any order).
async fn sse_until(stream: &mut tokio::net::TcpStream, want: &[&str]) -> String {
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + STEP;
    while !want.iter().all(|w| seen.contains(&format!("event: {w}"))) {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .expect("events in time")
            .expect("read");
        assert!(n > 0, "stream ended early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    seen
}

#[tokio::test]
async fn the_event_stream_tells_the_page_about_sessions_and_runners() {
    let relay = TestRelay::start(&Db::Sqlite).await;
    let p = new_principal(&relay).await;
    let mut s = tokio::net::TcpStream::connect(relay.addr())
        .await
        .expect("tcp");
    let req = format!(
        "GET /api/events HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nAccept: text/event-stream\r\n\r\n",
        relay.addr(),
        p.cookie
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let head = sse_until(&mut s, &[]).await;
    let _ = head;
    let mut r = runner(&relay, &p).await;
    let got = sse_until(&mut s, &["runner", "activity"]).await;
    assert!(
        got.contains("text/event-stream") || got.contains("event: runner"),
        "{got}"
    );
    r.open(open(1, &unique("sse"), "1", "a"))
        .await
        .expect("open");
    let got = sse_until(&mut s, &["sessions"]).await;
    assert!(got.contains("event: sessions"), "{got}");
    // Another account's events never show.
    let q = new_principal(&relay).await;
    let mut rq = runner(&relay, &q).await;
    rq.open(open(1, &unique("other"), "1", "a"))
        .await
        .expect("open");
    drop(r);
    let got = sse_until(&mut s, &["runner"]).await;
    assert!(got.contains(&p.runner_id), "{got}");
    assert!(!got.contains(&q.runner_id), "{got}");
    // The stream ends with the login.
    let (status, _, _) = http(
        relay.addr(),
        "POST",
        "/logout",
        &[("cookie", &p.cookie), ("origin", &relay.origin())],
    )
    .await;
    assert!((200..400).contains(&status), "{status}");
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(STEP, s.read_to_end(&mut rest)).await;
    assert!(ended.is_ok(), "the stream ends when the login does");
    // No login: 401.
    let (status, _, _) = http(relay.addr(), "GET", "/api/events", &[]).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn runner_sockets_count_against_the_account_cap() {
    let relay = TestRelay::start_with(&Db::Sqlite, |c| {
        c.limits.sockets = relay::auth::SocketCaps {
            per_account: 1,
            per_addr: 100,
            global: 100,
        };
    })
    .await;
    let p = new_principal(&relay).await;
    let _r = runner(&relay, &p).await;
    let second = new_runner_of(&relay, &p).await;
    let mut ws = runner_socket(relay.addr(), Some(&second))
        .await
        .expect("upgraded, then closed");
    let (code, reason) = testkit::runner::wait_close(&mut ws)
        .await
        .expect("close frame");
    assert_eq!(code, 4429, "{reason}");
}
