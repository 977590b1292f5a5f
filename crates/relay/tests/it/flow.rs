//! Storing, acking, resuming, snapshots, slow browsers, restarts and
//! shutdown, each against SQLite and (with `TEST_DATABASE_URL`) PostgreSQL.

use std::time::Duration;

use protocol::control::BrowserToRelay;
use protocol::runner::RelayMsg;
use protocol::wire::FrameKind;
use store::{RetentionPolicy, Since};

use crate::harness::*;
use crate::principal::*;

#[tokio::test]
async fn frames_are_stored_then_acked_and_resend_is_idempotent() {
    for db in databases() {
        let relay = TestRelay::start(&db).await;
        let dialect = match db {
            Db::Sqlite => "sqlite",
            Db::Postgres(_) => "postgres",
        };
        assert_eq!(relay.handle().store().dialect(), dialect);
        let p = new_principal(&relay).await;
        let h = hello(&unique("idea"));
        let mut r = RunnerClient::connect(relay.addr(), &p.runner_token, &h).await;
        assert_eq!(r.last_seq, 0, "{db:?}: fresh session starts at 0");
        r.send(batch(1, 3, 100)).await;
        r.wait_ack(3).await;
        // Acked means stored: the store has it, byte for byte.
        let since = relay
            .handle()
            .store()
            .since(r.id(), 0)
            .await
            .expect("since");
        match since {
            Since::Frames(f) => {
                assert_eq!(f.len(), 1);
                assert_eq!((f[0].first_seq, f[0].last_seq), (1, 3));
                assert_eq!(f[0].bytes, batch(1, 3, 100));
            }
            other => panic!("{db:?}: unexpected {other:?}"),
        }
        r.send(batch(4, 4, 10)).await;
        r.wait_ack(4).await;

        // Reconnect (same runner, same session): welcome says 4; resending
        // 4 is acked again without being stored twice.
        drop(r);
        let mut r = RunnerClient::connect(relay.addr(), &p.runner_token, &h).await;
        assert_eq!(r.last_seq, 4);
        r.send(batch(4, 4, 10)).await;
        r.wait_ack(4).await;
        r.send(batch(5, 6, 10)).await;
        r.wait_ack(6).await;
        assert_eq!(
            relay
                .handle()
                .store()
                .last_seq(r.id())
                .await
                .expect("last_seq"),
            6
        );
        let tok = browser_token(&relay, &p, &r.session_id);
        let mut b =
            BrowserClient::connect(relay.addr(), &r.session_id, &tok, &relay.origin(), 0).await;
        b.read_until(6).await;
        let ranges: Vec<_> = b.frames.iter().map(|f| (f.1, f.2)).collect();
        assert_eq!(
            ranges,
            vec![(1, 3), (4, 4), (5, 6)],
            "{db:?}: no duplicate of the resent frame"
        );
    }
}

#[tokio::test]
async fn a_gap_closes_the_runner_with_4000() {
    let relay = TestRelay::start(&Db::Sqlite).await;
    let p = new_principal(&relay).await;
    let mut r = RunnerClient::connect(relay.addr(), &p.runner_token, &hello(&unique("idea"))).await;
    r.send(batch(1, 1, 10)).await;
    r.wait_ack(1).await;
    r.send(batch(3, 3, 10)).await;
    let (code, reason) = wait_close(&mut r.ws).await.expect("close frame");
    assert_eq!(code, 4000);
    assert!(reason.contains("gap"), "reason names the gap: {reason}");
}

#[tokio::test]
async fn browser_resume_gets_exactly_the_missing_frames_then_live() {
    for db in databases() {
        let relay = TestRelay::start(&db).await;
        let p = new_principal(&relay).await;
        let mut r =
            RunnerClient::connect(relay.addr(), &p.runner_token, &hello(&unique("idea"))).await;
        let mut expected_bytes = 0usize;
        for seq in 1..=10u64 {
            let f = batch(seq, seq, 200 + seq as usize);
            if seq > 4 {
                expected_bytes += f.len();
            }
            r.send(f).await;
        }
        r.wait_ack(10).await;
        let tok = browser_token(&relay, &p, &r.session_id);
        let mut b =
            BrowserClient::connect(relay.addr(), &r.session_id, &tok, &relay.origin(), 4).await;
        assert_eq!(b.welcome_head, 10);
        assert!(b.runner_online);
        b.read_until(10).await;
        let seqs: Vec<u64> = b.frames.iter().map(|f| f.1).collect();
        assert_eq!(seqs, (5..=10).collect::<Vec<_>>(), "{db:?}: exactly 5..=10");
        let got_bytes: usize = b.frames.iter().map(|f| f.3).sum();
        assert_eq!(got_bytes, expected_bytes, "{db:?}: only the missing bytes");
        // Then live, once.
        r.send(batch(11, 12, 50)).await;
        r.wait_ack(12).await;
        b.read_until(12).await;
        assert_eq!(b.frames.last().map(|f| (f.1, f.2)), Some((11, 12)));
        assert_eq!(b.frames.len(), 7);
    }
}

#[tokio::test]
async fn pruned_history_is_served_from_a_snapshot() {
    for db in databases() {
        let relay = TestRelay::start(&db).await;
        let p = new_principal(&relay).await;
        let mut r =
            RunnerClient::connect(relay.addr(), &p.runner_token, &hello(&unique("idea"))).await;
        for seq in 1..=10u64 {
            r.send(batch(seq, seq, 100)).await;
        }
        r.wait_ack(10).await;
        r.send(snapshot(10)).await;
        r.send(batch(11, 11, 100)).await;
        r.send(batch(12, 12, 100)).await;
        r.wait_ack(12).await;
        let stats = relay
            .handle()
            .store()
            .prune(
                r.id(),
                RetentionPolicy {
                    keep_snapshots: 1,
                    max_bytes: 1 << 30,
                },
            )
            .await
            .expect("prune");
        assert!(
            stats.frames_deleted >= 10,
            "{db:?}: frames before the snapshot pruned: {stats:?}"
        );
        let tok = browser_token(&relay, &p, &r.session_id);
        let mut b =
            BrowserClient::connect(relay.addr(), &r.session_id, &tok, &relay.origin(), 2).await;
        b.read_until(12).await;
        let got: Vec<_> = b.frames.iter().map(|f| (f.0, f.1, f.2)).collect();
        assert_eq!(
            got,
            vec![
                (FrameKind::Snapshot, 10, 10),
                (FrameKind::Batch, 11, 11),
                (FrameKind::Batch, 12, 12)
            ],
            "{db:?}"
        );
    }
}

/// A runner client that answers `snapshot_request` with a Snapshot at the
/// last seq it sent, while flooding batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_browser_is_moved_to_a_snapshot_while_a_fast_one_gets_everything() {
    let relay = TestRelay::start(&Db::Sqlite).await;
    let p = new_principal(&relay).await;
    let mut r = RunnerClient::connect(relay.addr(), &p.runner_token, &hello(&unique("idea"))).await;
    let tok = browser_token(&relay, &p, &r.session_id);
    let mut fast =
        BrowserClient::connect(relay.addr(), &r.session_id, &tok, &relay.origin(), 0).await;
    // Browser tokens are single use (issue 10): one per socket.
    let tok = browser_token(&relay, &p, &r.session_id);
    let mut slow =
        BrowserClient::connect(relay.addr(), &r.session_id, &tok, &relay.origin(), 0).await;
    // 1200 frames of 32 KiB: ~38 MiB, past both the socket buffers and the
    // 8 MiB / 1024-frame queue of a browser that does not read.
    const N: u64 = 1200;
    const LEN: usize = 32 * 1024;
    let fast_task = tokio::spawn(async move {
        fast.read_until(N).await;
        fast
    });
    let mut snapshots_sent = 0;
    for seq in 1..=N {
        r.send(batch(seq, seq, LEN)).await;
        // Keep acks and requests flowing (never let our own read side stall).
        let other = r.wait_ack(seq).await;
        for m in other {
            if m == (RelayMsg::SnapshotRequest { ch: CH }) {
                r.send(snapshot(seq)).await;
                snapshots_sent += 1;
            }
        }
    }
    let fast = tokio::time::timeout(Duration::from_secs(60), fast_task)
        .await
        .expect("fast browser finished in time")
        .expect("fast task");
    let seqs: Vec<u64> = fast.frames.iter().map(|f| f.1).collect();
    assert_eq!(
        seqs,
        (1..=N).collect::<Vec<_>>(),
        "the fast browser got every frame, in order"
    );
    assert!(
        fast.frames.iter().all(|f| f.0 == FrameKind::Batch),
        "and no snapshot"
    );
    assert!(snapshots_sent >= 1, "the relay asked for a snapshot");
    // Issue 15: the move shows in the metrics, once per overflow.
    let moves = relay.handle().metrics().snapshot_moves.get();
    assert!(
        (1..=snapshots_sent + 1).contains(&moves),
        "browser_snapshot_moves {moves} for {snapshots_sent} snapshot requests"
    );

    // Make sure at least one snapshot follows the overflow, then drain the
    // slow browser: a prefix of batches, a snapshot, then batches gap-free.
    r.send(snapshot(N)).await;
    r.send(batch(N + 1, N + 1, 10)).await;
    r.wait_ack(N + 1).await;
    slow.read_until(N + 1).await;
    let snap_at = slow
        .frames
        .iter()
        .position(|f| f.0 == FrameKind::Snapshot)
        .expect("the slow browser received a snapshot");
    let before = &slow.frames[..snap_at];
    for (i, f) in before.iter().enumerate() {
        assert_eq!(
            f.1,
            i as u64 + 1,
            "the prefix before the snapshot is gap-free"
        );
    }
    let mut sent = slow.frames[snap_at].2;
    assert!(
        sent > before.last().map_or(0, |f| f.2),
        "the snapshot moves the browser forward"
    );
    for f in &slow.frames[snap_at + 1..] {
        match f.0 {
            FrameKind::Batch => {
                assert_eq!(f.1, sent + 1, "gap-free after the snapshot");
                sent = f.2;
            }
            FrameKind::Snapshot => assert!(f.1 > sent, "a later snapshot only moves forward"),
        }
    }
    assert_eq!(sent, N + 1);
    assert!(
        slow.frames.len() < N as usize,
        "the slow browser skipped frames instead of buffering them ({} frames)",
        slow.frames.len()
    );
}

#[tokio::test]
async fn relay_restart_keeps_everything_acked() {
    for db in databases() {
        let mut relay = TestRelay::start(&db).await;
        let p = new_principal(&relay).await;
        let h = hello(&unique("idea"));
        let mut r = RunnerClient::connect(relay.addr(), &p.runner_token, &h).await;
        for seq in 1..=5u64 {
            r.send(batch(seq, seq, 100)).await;
        }
        r.wait_ack(5).await;
        relay.restart().await;
        // The old socket was closed with 1001.
        assert_eq!(wait_close(&mut r.ws).await.map(|c| c.0), Some(1001));
        let mut r = RunnerClient::connect(relay.addr(), &p.runner_token, &h).await;
        assert_eq!(
            r.last_seq, 5,
            "{db:?}: welcome after restart resumes at the last ack"
        );
        r.send(batch(6, 6, 100)).await;
        r.wait_ack(6).await;
        let tok = browser_token(&relay, &p, &r.session_id);
        let mut b =
            BrowserClient::connect(relay.addr(), &r.session_id, &tok, &relay.origin(), 0).await;
        b.read_until(6).await;
        let seqs: Vec<u64> = b.frames.iter().map(|f| f.1).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6], "{db:?}");
        drop(b);
        relay.stop().await;
    }
}

#[tokio::test]
async fn shutdown_closes_every_socket_with_1001() {
    let mut relay = TestRelay::start(&Db::Sqlite).await;
    let p = new_principal(&relay).await;
    let mut r = RunnerClient::connect(relay.addr(), &p.runner_token, &hello(&unique("idea"))).await;
    let tok = browser_token(&relay, &p, &r.session_id);
    let mut b = BrowserClient::connect(relay.addr(), &r.session_id, &tok, &relay.origin(), 0).await;
    let addr = relay.addr();
    relay.stop().await;
    let rc = wait_close(&mut r.ws).await.expect("runner close frame");
    assert_eq!(rc.0, 1001);
    assert!(rc.1.contains("shutting down"));
    let bc = wait_close(&mut b.ws).await.expect("browser close frame");
    assert_eq!(bc.0, 1001);
    // And it no longer accepts connections.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn a_second_runner_connection_replaces_the_first_with_4001() {
    let relay = TestRelay::start(&Db::Sqlite).await;
    let p = new_principal(&relay).await;
    let h = hello(&unique("idea"));
    let mut first = RunnerClient::connect(relay.addr(), &p.runner_token, &h).await;
    let tok = browser_token(&relay, &p, &first.session_id);
    let mut b =
        BrowserClient::connect(relay.addr(), &first.session_id, &tok, &relay.origin(), 0).await;
    let mut second = RunnerClient::connect(relay.addr(), &p.runner_token, &h).await;
    assert_eq!(second.session_id, first.session_id);
    let (code, _) = wait_close(&mut first.ws).await.expect("close frame");
    assert_eq!(code, 4001);
    // The browser keeps watching the new connection's frames.
    second.send(batch(1, 1, 10)).await;
    second.wait_ack(1).await;
    b.read_until(1).await;
}

#[tokio::test]
async fn input_resize_and_viewers_reach_the_runner() {
    let relay = TestRelay::start(&Db::Sqlite).await;
    let p = new_principal(&relay).await;
    let mut r = RunnerClient::connect(relay.addr(), &p.runner_token, &hello(&unique("idea"))).await;
    let tok = browser_token(&relay, &p, &r.session_id);
    // The session's topology has pane %3 (input for any other is refused).
    r.send(topology_batch(1, &[3])).await;
    r.wait_ack(1).await;
    let mut b = BrowserClient::connect(relay.addr(), &r.session_id, &tok, &relay.origin(), 0).await;
    r.wait_for(|m| *m == RelayMsg::Viewers { ch: CH, count: 1 })
        .await;
    send_json(
        &mut b.ws,
        &BrowserToRelay::Input {
            pane: tmux_cc::PaneId(3),
            data: "echo hi\r".into(),
        },
    )
    .await;
    let m = r.wait_for(|m| matches!(m, RelayMsg::Input { .. })).await;
    assert_eq!(
        m,
        RelayMsg::Input {
            ch: CH,
            pane: tmux_cc::PaneId(3),
            data: "echo hi\r".into()
        }
    );
    send_json(
        &mut b.ws,
        &BrowserToRelay::Resize {
            cols: 120,
            rows: 40,
        },
    )
    .await;
    let m = r.wait_for(|m| matches!(m, RelayMsg::Resize { .. })).await;
    assert_eq!(
        m,
        RelayMsg::Resize {
            ch: CH,
            cols: 120,
            rows: 40
        }
    );
    drop(b);
    r.wait_for(|m| *m == RelayMsg::Viewers { ch: CH, count: 0 })
        .await;
}

#[tokio::test]
async fn runner_online_state_is_pushed_to_browsers() {
    let relay = TestRelay::start(&Db::Sqlite).await;
    let p = new_principal(&relay).await;
    let h = hello(&unique("idea"));
    let r = RunnerClient::connect(relay.addr(), &p.runner_token, &h).await;
    let tok = browser_token(&relay, &p, &r.session_id);
    let mut b = BrowserClient::connect(relay.addr(), &r.session_id, &tok, &relay.origin(), 0).await;
    assert!(b.runner_online);
    drop(r);
    b.read_one().await;
    assert_eq!(
        b.texts.last().map(String::as_str),
        Some(r#"{"t":"runner","online":false}"#)
    );
    let _r = RunnerClient::connect(relay.addr(), &p.runner_token, &h).await;
    b.read_one().await;
    assert_eq!(
        b.texts.last().map(String::as_str),
        Some(r#"{"t":"runner","online":true}"#)
    );
}

#[tokio::test]
async fn local_setup_gives_a_working_runner_token() {
    let relay = TestRelay::start(&Db::Sqlite).await;
    let setup = relay
        .handle()
        .local_setup("laptop")
        .await
        .expect("local setup");
    assert!(
        setup
            .login_url
            .starts_with(&format!("{}/login/once?code=", relay.origin())),
        "{setup:?}"
    );
    assert!(
        !format!("{setup:?}").contains(&setup.runner_token),
        "Debug hides the token"
    );
    let mut r =
        RunnerClient::connect(relay.addr(), &setup.runner_token, &hello(&unique("idea"))).await;
    r.send(batch(1, 1, 10)).await;
    r.wait_ack(1).await;
    // A second setup (a new `tmux-bridge up`) rotates the token: the old
    // one is refused from then on.
    let again = relay
        .handle()
        .local_setup("laptop")
        .await
        .expect("second setup");
    assert_eq!(again.user_id, setup.user_id);
    assert_eq!(
        runner_socket(relay.addr(), Some(&setup.runner_token))
            .await
            .err(),
        Some(401)
    );
    assert!(
        runner_socket(relay.addr(), Some(&again.runner_token))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn revoking_a_runner_closes_its_socket_with_1008() {
    let relay = TestRelay::start(&Db::Sqlite).await;
    let p = new_principal(&relay).await;
    let mut r = RunnerClient::connect(relay.addr(), &p.runner_token, &hello(&unique("idea"))).await;
    let started = std::time::Instant::now();
    relay
        .handle()
        .auth()
        .revoke_runner(&p.user_id, &p.runner_id)
        .await
        .expect("revoke");
    let (code, reason) = wait_close(&mut r.ws).await.expect("close frame");
    assert_eq!(code, 1008, "{reason}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "cut within a second"
    );
    assert_eq!(
        runner_socket(relay.addr(), Some(&p.runner_token))
            .await
            .err(),
        Some(401)
    );
}

#[tokio::test]
async fn a_browser_awaiting_a_snapshot_resyncs_from_the_store_when_the_runner_leaves() {
    let relay = TestRelay::start(&Db::Sqlite).await;
    let p = new_principal(&relay).await;
    let mut r = RunnerClient::connect(relay.addr(), &p.runner_token, &hello(&unique("idea"))).await;
    let tok = browser_token(&relay, &p, &r.session_id);
    let mut slow =
        BrowserClient::connect(relay.addr(), &r.session_id, &tok, &relay.origin(), 0).await;
    const N: u64 = 600;
    let mut requested = false;
    for seq in 1..=N {
        r.send(batch(seq, seq, 32 * 1024)).await;
        // Never answer snapshot requests: the runner then leaves.
        requested |= r
            .wait_ack(seq)
            .await
            .contains(&RelayMsg::SnapshotRequest { ch: CH });
    }
    assert!(requested, "the browser overflowed");
    drop(r);
    slow.read_until(N).await;
    let mut sent = 0;
    for f in &slow.frames {
        assert_eq!(f.0, FrameKind::Batch);
        assert_eq!(f.1, sent + 1, "gap-free through the resync");
        sent = f.2;
    }
    assert_eq!(sent, N);
}

#[tokio::test]
async fn a_silent_runner_is_dropped_and_browsers_see_it_offline() {
    let relay = TestRelay::start_with(&Db::Sqlite, |c| {
        c.keepalive = Duration::from_millis(200);
        c.heartbeat = Duration::from_millis(200);
    })
    .await;
    let p = new_principal(&relay).await;
    // This runner never reads again, so it never answers the relay's pings
    // and sends no heartbeat: offline after 2.5 heartbeats.
    let started = std::time::Instant::now();
    let r = RunnerClient::connect(relay.addr(), &p.runner_token, &hello(&unique("idea"))).await;
    let tok = browser_token(&relay, &p, &r.session_id);
    let mut b = BrowserClient::connect(relay.addr(), &r.session_id, &tok, &relay.origin(), 0).await;
    assert!(b.runner_online);
    // The browser does read (and so answers pings): it stays connected and
    // is told the runner went away.
    while b.texts.is_empty() {
        b.read_one().await;
    }
    assert_eq!(
        b.texts.last().map(String::as_str),
        Some(r#"{"t":"runner","online":false}"#)
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(500),
        "not before 2.5 heartbeats: {waited:?}"
    );
    drop(r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_whose_snapshot_never_comes_is_caught_up_from_the_store() {
    // The browser does not read (nor pong) during the flood: the keepalive
    // must outlast it on a loaded machine (3 periods), and is also how long
    // the relay waits for the snapshot before catching up from the store.
    let relay = TestRelay::start_with(&Db::Sqlite, |c| c.keepalive = Duration::from_secs(15)).await;
    let p = new_principal(&relay).await;
    let mut r = RunnerClient::connect(relay.addr(), &p.runner_token, &hello(&unique("idea"))).await;
    let tok = browser_token(&relay, &p, &r.session_id);
    let mut slow =
        BrowserClient::connect(relay.addr(), &r.session_id, &tok, &relay.origin(), 0).await;
    const N: u64 = 600;
    let mut requested = false;
    for seq in 1..=N {
        r.send(batch(seq, seq, 32 * 1024)).await;
        // The runner stays connected but ignores snapshot requests.
        requested |= r
            .wait_ack(seq)
            .await
            .contains(&RelayMsg::SnapshotRequest { ch: CH });
    }
    assert!(requested, "the browser overflowed");
    slow.read_until(N).await;
    let mut sent = 0;
    for f in &slow.frames {
        assert_eq!(f.0, FrameKind::Batch);
        assert_eq!(f.1, sent + 1, "gap-free through the resync");
        sent = f.2;
    }
    assert_eq!(sent, N);
    drop(r);
}

/// Issue 16, group commit at the relay: two runners, three channels each,
/// send 120 Batches per channel without waiting for acks (and a Snapshot
/// right behind Batch 60, which the store refuses unless the Batches
/// before it are stored first). Acks come per channel in order, each once;
/// acked means stored; a browser gets every Batch once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_pipelined_frames_of_many_channels_are_acked_in_order_after_commit() {
    const N: u64 = 120;
    for db in databases() {
        let relay = TestRelay::start(&db).await;
        let mut runners = Vec::new();
        for _ in 0..2 {
            let p = new_principal(&relay).await;
            let mut r =
                TestRunner::connect(relay.addr(), &p.runner_token, testkit::runner::hello(&[]))
                    .await
                    .expect("runner connects");
            let idea = unique("gc");
            let mut ids = Vec::new();
            for ch in 1..=3u32 {
                let opened = r
                    .open(testkit::runner::open(ch, &idea, &format!("s{ch}"), "i1"))
                    .await
                    .expect("opened");
                ids.push(opened.session_id);
            }
            runners.push((p, r, ids));
        }
        for seq in 1..=N {
            for (_, r, _) in &mut runners {
                for ch in 1..=3u32 {
                    r.send_frame(ch, &batch(seq, seq, 100 + seq as usize))
                        .await
                        .expect("send");
                    if seq == N / 2 && ch == 2 {
                        r.send_frame(ch, &snapshot(seq)).await.expect("send");
                    }
                }
            }
        }
        for (_, r, ids) in &mut runners {
            let mut acked = [0u64; 3];
            while acked.iter().any(|a| *a < N) {
                let m = tokio::time::timeout(STEP, r.next())
                    .await
                    .expect("acks keep coming")
                    .expect("relay message");
                if let RelayMsg::Ack { ch, seq } = m {
                    let i = (ch - 1) as usize;
                    assert_eq!(
                        seq,
                        acked[i] + 1,
                        "{db:?}: channel {ch} acked in order, once"
                    );
                    acked[i] = seq;
                    let id: i64 = ids[i].parse().expect("id");
                    let head = relay.handle().store().last_seq(id).await.expect("head");
                    assert!(head >= seq, "{db:?}: acked {seq} but stored {head}");
                }
            }
        }
        let (p, _, ids) = &runners[0];
        let tok = browser_token(&relay, p, &ids[0]);
        let mut b = BrowserClient::connect(relay.addr(), &ids[0], &tok, &relay.origin(), 0).await;
        b.read_until(N).await;
        let seqs: Vec<u64> = b.frames.iter().map(|f| f.1).collect();
        assert_eq!(seqs, (1..=N).collect::<Vec<_>>(), "{db:?}");
        let id: i64 = runners[0].2[1].parse().expect("id");
        let snap = relay
            .handle()
            .store()
            .latest_snapshot(id)
            .await
            .expect("snap");
        assert_eq!(
            snap.map(|s| s.at_seq),
            Some(N / 2),
            "{db:?}: the snapshot was stored"
        );
    }
}
