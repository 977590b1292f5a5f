//! Issue 16: a Batch reaches browsers before its commit when the runner
//! says `rebase` before numbering over; the ack still waits for the commit;
//! a browser holding records the store never got is reset, at once or on
//! its next `hello` (the session's numbering epoch).

use std::time::Duration;

use futures_util::StreamExt;
use protocol::control::{BrowserToRelay, RelayToBrowser};
use protocol::runner::{FEATURE_REBASE, RelayMsg, RunnerMsg};
use sqlx::Connection;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::*;
use crate::principal::*;

/// The next binary frame's (first_seq, last_seq) within `wait`, skipping
/// text; `None` if none came.
async fn next_frame(ws: &mut Ws, wait: Duration) -> Option<(u64, u64)> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.ok()??;
        match msg.ok()? {
            Message::Binary(b) => {
                let (_, first, last) = header(&b);
                return Some((first, last));
            }
            Message::Close(c) => panic!("browser closed: {c:?}"),
            _ => {}
        }
    }
}

/// A browser socket that said `hello` with `last_seq` and `epoch`; returns
/// it with the welcome.
async fn browser(
    relay: &TestRelay,
    p: &Principal,
    sid: &str,
    last_seq: u64,
    epoch: Option<&str>,
) -> (Ws, RelayToBrowser) {
    let tok = browser_token(relay, p, sid);
    let mut ws = browser_socket(relay.addr(), sid, &tok, &relay.origin())
        .await
        .expect("browser handshake");
    let hello = BrowserToRelay::Hello {
        last_seq,
        epoch: epoch.map(str::to_owned),
    };
    send_json(&mut ws, &hello).await;
    let welcome = next_control::<RelayToBrowser>(&mut ws).await;
    (ws, welcome)
}

fn welcome_epoch(w: &RelayToBrowser) -> (String, bool) {
    match w {
        RelayToBrowser::Welcome { epoch, reset, .. } => (epoch.clone(), *reset),
        other => panic!("expected welcome, got {other:?}"),
    }
}

/// Holds SQLite's write lock (another connection's `BEGIN IMMEDIATE`).
async fn lock_sqlite(relay: &TestRelay) -> sqlx::SqliteConnection {
    let mut other = sqlx::SqliteConnection::connect(&relay.config.database_url)
        .await
        .expect("a second connection");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .expect("take the write lock");
    other
}

#[tokio::test]
async fn issue_16_a_batch_reaches_browsers_before_its_commit_and_is_acked_after() {
    let relay = TestRelay::start_with(&Db::Sqlite, |c| {
        c.limits.db_busy_timeout = Duration::from_secs(5);
    })
    .await;
    let p = new_principal(&relay).await;
    for early in [true, false] {
        let features: &[&str] = if early { &[FEATURE_REBASE] } else { &[] };
        let mut r = RunnerClient::connect_with(
            relay.addr(),
            &p.runner_token,
            &hello(&unique("early")),
            features,
        )
        .await;
        r.send(batch(1, 2, 50)).await;
        r.wait_ack(2).await;
        let (mut ws, _) = browser(&relay, &p, &r.session_id, 0, None).await;
        assert_eq!(next_frame(&mut ws, STEP).await, Some((1, 2)));

        // The store cannot commit while another connection holds the lock.
        let mut lock = lock_sqlite(&relay).await;
        r.send(batch(3, 3, 50)).await;
        let seen = next_frame(&mut ws, Duration::from_millis(700)).await;
        let acked = tokio::time::timeout(
            Duration::from_millis(200),
            r.wait_for(|m| matches!(m, RelayMsg::Ack { seq: 3, .. })),
        )
        .await
        .is_ok();
        assert!(!acked, "early={early}: no ack before the commit");
        if early {
            assert_eq!(seen, Some((3, 3)), "sent to the browser before the commit");
        } else {
            assert_eq!(seen, None, "a runner without rebase: after the commit only");
        }
        sqlx::query("ROLLBACK")
            .execute(&mut lock)
            .await
            .expect("release");
        r.wait_ack(3).await;
        if !early {
            assert_eq!(next_frame(&mut ws, STEP).await, Some((3, 3)));
        }
        // Nothing twice, and live frames go on; a browser that joins now
        // gets everything once.
        r.send(batch(4, 4, 50)).await;
        r.wait_ack(4).await;
        assert_eq!(next_frame(&mut ws, STEP).await, Some((4, 4)));
        let (mut late, _) = browser(&relay, &p, &r.session_id, 0, None).await;
        assert_eq!(next_frame(&mut late, STEP).await, Some((1, 2)));
        assert_eq!(next_frame(&mut late, STEP).await, Some((3, 3)));
        assert_eq!(next_frame(&mut late, STEP).await, Some((4, 4)));
    }
}

#[tokio::test]
async fn issue_16_a_rebase_starts_a_new_epoch_and_browsers_of_another_start_over() {
    let relay = TestRelay::start(&Db::Sqlite).await;
    let p = new_principal(&relay).await;
    let h = hello(&unique("epoch"));
    let mut r =
        RunnerClient::connect_with(relay.addr(), &p.runner_token, &h, &[FEATURE_REBASE]).await;
    r.send(batch(1, 3, 40)).await;
    r.wait_ack(3).await;
    let (mut a, w) = browser(&relay, &p, &r.session_id, 0, None).await;
    let (before, reset) = welcome_epoch(&w);
    assert!(!reset);
    assert_eq!(next_frame(&mut a, STEP).await, Some((1, 3)));

    // A restarted runner numbers over from what the store holds.
    r.rt.send(&RunnerMsg::Rebase { ch: CH })
        .await
        .expect("rebase");
    r.send(batch(4, 5, 60)).await;
    r.wait_ack(5).await;
    let epoch = match next_control::<RelayToBrowser>(&mut a).await {
        RelayToBrowser::Epoch { epoch, reset } => {
            assert!(!reset, "browser A holds only stored records");
            epoch
        }
        other => panic!("expected epoch, got {other:?}"),
    };
    assert_ne!(epoch, before);
    assert_eq!(next_frame(&mut a, STEP).await, Some((4, 5)));
    // Stored with the session: it outlives this relay process's memory.
    let stored = relay
        .handle()
        .store()
        .session(r.id())
        .await
        .expect("read")
        .expect("session");
    assert_eq!(stored.epoch, epoch);

    // Resuming in this epoch: only what is missing.
    let (mut b, w) = browser(&relay, &p, &r.session_id, 3, Some(&epoch)).await;
    assert_eq!(welcome_epoch(&w), (epoch.clone(), false));
    assert_eq!(next_frame(&mut b, STEP).await, Some((4, 5)));
    // Resuming with another epoch's records: from scratch, told to reset.
    let (mut c, w) = browser(&relay, &p, &r.session_id, 3, Some(&before)).await;
    assert_eq!(welcome_epoch(&w), (epoch.clone(), true));
    assert_eq!(next_frame(&mut c, STEP).await, Some((1, 3)));
    assert_eq!(next_frame(&mut c, STEP).await, Some((4, 5)));
    // A page that never knew an epoch resumes as before.
    let (mut d, w) = browser(&relay, &p, &r.session_id, 3, None).await;
    assert!(!welcome_epoch(&w).1);
    assert_eq!(next_frame(&mut d, STEP).await, Some((4, 5)));
}

#[tokio::test]
async fn issue_16_records_sent_but_never_stored_reset_the_browser_on_rebase() {
    let relay = TestRelay::start_with(&Db::Sqlite, |c| {
        c.limits.db_busy_timeout = Duration::from_millis(300);
    })
    .await;
    let p = new_principal(&relay).await;
    let h = hello(&unique("lost"));
    let mut r =
        RunnerClient::connect_with(relay.addr(), &p.runner_token, &h, &[FEATURE_REBASE]).await;
    r.send(batch(1, 2, 40)).await;
    r.wait_ack(2).await;
    let (mut a, _) = browser(&relay, &p, &r.session_id, 0, None).await;
    assert_eq!(next_frame(&mut a, STEP).await, Some((1, 2)));

    // The commit of 3 fails (the database stays locked past the busy
    // timeout): the browser already has 3, the relay drops the runner.
    let mut lock = lock_sqlite(&relay).await;
    r.send(batch(3, 3, 40)).await;
    assert_eq!(next_frame(&mut a, STEP).await, Some((3, 3)));
    let (code, _) = r.wait_close().await.expect("close frame");
    assert_eq!(code, 1011, "a failed commit drops the runner");
    sqlx::query("ROLLBACK")
        .execute(&mut lock)
        .await
        .expect("release");
    drop(r);

    // The runner restarted meanwhile: it numbers over from 2.
    let mut r =
        RunnerClient::connect_with(relay.addr(), &p.runner_token, &h, &[FEATURE_REBASE]).await;
    assert_eq!(r.last_seq, 2, "3 was never stored");
    r.rt.send(&RunnerMsg::Rebase { ch: CH })
        .await
        .expect("rebase");
    r.send(batch(3, 4, 70)).await;
    r.wait_ack(4).await;
    loop {
        match next_control::<RelayToBrowser>(&mut a).await {
            RelayToBrowser::Epoch { reset, .. } => {
                assert!(reset, "A holds a record never stored");
                break;
            }
            RelayToBrowser::Runner { .. } => {}
            other => panic!("expected epoch, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn issue_16_a_browser_ahead_of_the_store_in_its_epoch_resumes_after_the_resend() {
    let relay = TestRelay::start_with(&Db::Sqlite, |c| {
        c.limits.db_busy_timeout = Duration::from_millis(300);
    })
    .await;
    let p = new_principal(&relay).await;
    let h = hello(&unique("ahead"));
    let mut r =
        RunnerClient::connect_with(relay.addr(), &p.runner_token, &h, &[FEATURE_REBASE]).await;
    r.rt.send(&RunnerMsg::Rebase { ch: CH })
        .await
        .expect("rebase");
    r.send(batch(1, 2, 40)).await;
    r.wait_ack(2).await;
    let (mut a, w) = browser(&relay, &p, &r.session_id, 0, None).await;
    let (epoch, _) = welcome_epoch(&w);
    assert!(!epoch.is_empty());
    assert_eq!(next_frame(&mut a, STEP).await, Some((1, 2)));
    let mut lock = lock_sqlite(&relay).await;
    r.send(batch(3, 3, 40)).await;
    assert_eq!(next_frame(&mut a, STEP).await, Some((3, 3)));
    let (code, _) = r.wait_close().await.expect("close frame");
    assert_eq!(code, 1011);
    sqlx::query("ROLLBACK")
        .execute(&mut lock)
        .await
        .expect("release");
    let sid = r.session_id.clone();
    drop(r);

    // The tab comes back holding 3, which the store lacks: in its epoch,
    // it is taken as sent through 3, not served from scratch.
    let (mut b, w) = browser(&relay, &p, &sid, 3, Some(&epoch)).await;
    match &w {
        RelayToBrowser::Welcome {
            head_seq, reset, ..
        } => assert_eq!((*head_seq, *reset), (3, false)),
        other => panic!("expected welcome, got {other:?}"),
    }
    // The runner resends 3 as it was, then goes on: the browser gets 4.
    let mut r =
        RunnerClient::connect_with(relay.addr(), &p.runner_token, &h, &[FEATURE_REBASE]).await;
    assert_eq!(r.last_seq, 2);
    r.send(batch(3, 3, 40)).await;
    r.send(batch(4, 4, 40)).await;
    r.wait_ack(4).await;
    assert_eq!(next_frame(&mut b, STEP).await, Some((4, 4)));
    // Another epoch's 3 would have been served from scratch.
    let (mut c, w) = browser(&relay, &p, &r.session_id, 3, Some("other")).await;
    assert_eq!(welcome_epoch(&w), (epoch, true));
    assert_eq!(next_frame(&mut c, STEP).await, Some((1, 2)));
}
