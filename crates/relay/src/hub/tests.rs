//! Queue limits, the overflow-to-snapshot switch, runner channel
//! replacement and the topology scope.

use super::*;

/// A fake runner connection: its outgoing queue's receiver.
struct Reg {
    conn: u64,
    rx: mpsc::Receiver<RelayMsg>,
}

fn attach(hub: &SessionHub, conn: u64) -> Reg {
    let (tx, rx) = mpsc::channel(RUNNER_CHANNEL);
    hub.attach_runner(
        SessionMeta::default(),
        0,
        Scope::default(),
        RunnerLink {
            conn,
            ch: 7,
            tx,
            features: Vec::new(),
        },
    );
    Reg { conn, rx }
}

fn batch(first: u64, last: u64, len: usize) -> LiveFrame {
    LiveFrame {
        kind: FrameKind::Batch,
        first_seq: first,
        last_seq: last,
        bytes: Bytes::from(vec![0u8; len]),
    }
}

fn snap(m: u64) -> LiveFrame {
    LiveFrame {
        kind: FrameKind::Snapshot,
        first_seq: m,
        last_seq: m,
        bytes: Bytes::from_static(b"snap"),
    }
}

async fn pop_frame(q: &BrowserQueue) -> (FrameKind, u64, u64) {
    match q.pop().await {
        Outgoing::Frame(f) => (f.kind, f.first_seq, f.last_seq),
        other => panic!("expected a frame, got {other:?}"),
    }
}

#[tokio::test]
async fn queue_overflow_by_frames_awaits_snapshot() {
    let q = BrowserQueue::with_limits(1 << 20, 3);
    for i in 1..=3 {
        assert_eq!(q.push_frame(&batch(i, i, 10)), Pushed::Queued);
    }
    assert_eq!(q.push_frame(&batch(4, 4, 10)), Pushed::Overflowed);
    assert!(q.awaiting_snapshot());
    // Batches are skipped until a snapshot arrives, then flow again.
    assert_eq!(q.push_frame(&batch(5, 5, 10)), Pushed::Skipped);
    assert_eq!(q.push_frame(&snap(5)), Pushed::Queued);
    assert_eq!(q.push_frame(&batch(6, 7, 10)), Pushed::Queued);
    assert_eq!(pop_frame(&q).await, (FrameKind::Snapshot, 5, 5));
    assert_eq!(pop_frame(&q).await, (FrameKind::Batch, 6, 7));
    assert_eq!(q.overflows(), 1);
}

#[tokio::test]
async fn queue_overflow_by_bytes_keeps_text() {
    let q = BrowserQueue::with_limits(100, 1000);
    assert_eq!(q.push_frame(&batch(1, 1, 60)), Pushed::Queued);
    q.push_text("{\"t\":\"runner\",\"online\":false}".into());
    assert_eq!(q.push_frame(&batch(2, 2, 60)), Pushed::Overflowed);
    match q.pop().await {
        Outgoing::Text(t) => assert!(t.contains("runner")),
        other => panic!("{other:?} instead of the text after the overflow"),
    }
}

#[test]
fn live_snapshots_skip_browsers_that_are_current() {
    let q = BrowserQueue::new();
    assert_eq!(q.push_frame(&snap(3)), Pushed::Skipped);
}

#[tokio::test]
async fn overflow_requests_a_snapshot_and_spares_other_browsers() {
    let hub = SessionHub::new(1, None);
    let mut reg = attach(&hub, 1);
    let slow = hub.add_browser(Arc::new(BrowserQueue::with_limits(1 << 20, 2)));
    let fast = hub.add_browser(Arc::new(BrowserQueue::with_limits(1 << 20, 100)));
    for i in 1..=5 {
        hub.publish(batch(i, i, 1));
    }
    let mut saw_request = false;
    while let Ok(m) = reg.rx.try_recv() {
        if m == (RelayMsg::SnapshotRequest { ch: 7 }) {
            saw_request = true;
        }
    }
    assert!(saw_request);
    assert!(slow.queue.awaiting_snapshot());
    assert!(!fast.queue.awaiting_snapshot());
    for i in 1..=5 {
        assert_eq!(pop_frame(&fast.queue).await, (FrameKind::Batch, i, i));
    }
    assert_eq!(hub.head_seq(), 5);
}

#[test]
fn a_second_runner_replaces_the_first() {
    let hub = SessionHub::new(1, None);
    let first = attach(&hub, 1);
    let second = attach(&hub, 2);
    // The old connection's detach must not take the new one offline.
    hub.detach_runner(first.conn);
    assert!(hub.runner_online());
    hub.detach_runner(second.conn);
    assert!(!hub.runner_online());
}

#[test]
fn scope_holds_the_topology_ids() {
    let topo = br#"{"session":"$1","name":"x","active_window":"@1","windows":[{"id":"@1","index":0,"name":"b","active":true,"layout":"","visible_layout":"","flags":"*","active_pane":"%3","panes":[{"id":"%3","x":0,"y":0,"cols":80,"rows":24,"title":""},{"id":"%5","x":0,"y":0,"cols":80,"rows":24,"title":""}]}]}"#;
    let scope = Scope::from_topology(topo).expect("parses");
    assert!(scope.has_pane(tmux_cc::PaneId(3)) && scope.has_pane(tmux_cc::PaneId(5)));
    assert!(!scope.has_pane(tmux_cc::PaneId(1)));
    assert!(scope.has_window(tmux_cc::WindowId(1)));
    assert_eq!(Scope::parse(&scope.to_stored()), scope);
    assert!(Scope::from_topology(b"{").is_none());
    assert!(!Scope::default().has_pane(tmux_cc::PaneId(0)));
}

#[test]
fn resize_goes_to_the_runner_once_per_change() {
    let hub = SessionHub::new(1, None);
    let mut reg = attach(&hub, 1);
    let b1 = hub.add_browser(Arc::new(BrowserQueue::new()));
    let b2 = hub.add_browser(Arc::new(BrowserQueue::new()));
    hub.set_browser_size(b1.id, 80, 24);
    hub.set_browser_size(b2.id, 100, 20);
    hub.set_browser_size(b2.id, 100, 20);
    let mut sizes = Vec::new();
    while let Ok(m) = reg.rx.try_recv() {
        if let RelayMsg::Resize { ch: 7, cols, rows } = m {
            sizes.push((cols, rows));
        }
    }
    // The most recently active tab's size, not a maximum of all.
    assert_eq!(sizes, vec![(80, 24), (100, 20)]);
}

fn resizes(reg: &mut Reg) -> Vec<(u16, u16)> {
    let mut sizes = Vec::new();
    while let Ok(m) = reg.rx.try_recv() {
        if let RelayMsg::Resize { ch: 7, cols, rows } = m {
            sizes.push((cols, rows));
        }
    }
    sizes
}

/// Issue 14, item 2: the size offered to tmux follows the viewers present
/// now: a big tab that closes, hides or keeps tmux's size stops counting.
#[test]
fn issue_14_size_follows_the_viewers_present_now() {
    let hub = SessionHub::new(1, None);
    let mut reg = attach(&hub, 1);
    let small = hub.add_browser(Arc::new(BrowserQueue::new()));
    let big = hub.add_browser(Arc::new(BrowserQueue::new()));
    hub.set_browser_size(small.id, 80, 24);
    hub.set_browser_size(big.id, 200, 60);
    assert_eq!(resizes(&mut reg), vec![(80, 24), (200, 60)]);
    // The big tab closes: the small one's size, at once.
    hub.remove_browser(big.id);
    assert_eq!(resizes(&mut reg), vec![(80, 24)]);
    // A big tab that is hidden does not count; shown again, it does.
    let big = hub.add_browser(Arc::new(BrowserQueue::new()));
    hub.set_browser_size(big.id, 200, 60);
    hub.set_browser_view(big.id, false, true);
    assert_eq!(resizes(&mut reg), vec![(200, 60), (80, 24)]);
    hub.set_browser_view(big.id, true, true);
    assert_eq!(resizes(&mut reg), vec![(200, 60)]);
    // Typing in the small tab makes it the one tmux fits.
    hub.touch_browser(small.id);
    assert_eq!(resizes(&mut reg), vec![(80, 24)]);
    // "Keep tmux's size": the tab never sizes tmux, even when used.
    hub.set_browser_view(small.id, true, false);
    assert_eq!(resizes(&mut reg), vec![(200, 60)]);
    hub.touch_browser(small.id);
    assert_eq!(resizes(&mut reg), vec![]);
    // Nobody fits: tmux keeps its size (nothing is sent).
    hub.set_browser_view(big.id, false, true);
    assert_eq!(resizes(&mut reg), vec![]);
}

#[test]
fn presence_counts_tabs_per_viewer() {
    let hub = SessionHub::new(1, None);
    let a = hub.add_browser(Arc::new(BrowserQueue::new()));
    let b = hub.add_browser(Arc::new(BrowserQueue::new()));
    let c = hub.add_browser(Arc::new(BrowserQueue::new()));
    hub.set_browser_viewer(a.id, "alice", false);
    hub.set_browser_viewer(b.id, "alice", false);
    hub.set_browser_viewer(c.id, "demo", true);
    let names: Vec<(String, bool, u32)> = hub
        .viewers()
        .into_iter()
        .map(|v| (v.name, v.read_only, v.tabs))
        .collect();
    assert_eq!(
        names,
        vec![("alice".into(), false, 2), ("demo".into(), true, 1)]
    );
    hub.remove_browser(b.id);
    assert_eq!(hub.viewers()[0].tabs, 1);
    // A browser named again moves its tab; one that leaves takes it along.
    hub.set_browser_viewer(a.id, "bob", false);
    hub.remove_browser(c.id);
    let names: Vec<(String, u32)> = hub
        .viewers()
        .into_iter()
        .map(|v| (v.name, v.tabs))
        .collect();
    assert_eq!(names, vec![("bob".into(), 1)]);
}

/// What a presence watcher holds now, parsed.
fn presence_of(rx: &mut watch::Receiver<Option<Arc<str>>>) -> serde_json::Value {
    let text = rx.borrow_and_update().clone().expect("a presence");
    serde_json::from_str(&text).expect("presence json")
}

#[test]
fn presence_is_the_latest_message_only_and_never_queued() {
    let hub = SessionHub::new(1, None);
    let first = hub.add_browser(Arc::new(BrowserQueue::new()));
    hub.set_browser_viewer(first.id, "alice", false);
    let mut rx = hub.watch_presence();
    assert!(
        rx.has_changed().expect("open"),
        "a new watcher sends the current one"
    );
    assert_eq!(presence_of(&mut rx)["viewers"][0]["tabs"], 1);
    // A crowd joins: the watcher sees one change, the last one; nothing
    // piles up in the browsers' queues.
    let crowd: Vec<_> = (0..100)
        .map(|_| hub.add_browser(Arc::new(BrowserQueue::new())))
        .collect();
    for b in &crowd {
        hub.set_browser_viewer(b.id, "alice", false);
    }
    hub.set_attached_clients(2);
    assert!(rx.has_changed().expect("open"));
    let now = presence_of(&mut rx);
    assert_eq!(now["viewers"][0]["tabs"], 101);
    assert_eq!(now["attached_clients"], 2);
    assert!(!rx.has_changed().expect("open"));
    assert!(first.queue.try_pop().is_none());
    assert!(crowd.iter().all(|b| b.queue.try_pop().is_none()));
    for b in &crowd {
        hub.remove_browser(b.id);
    }
    assert_eq!(presence_of(&mut rx)["viewers"][0]["tabs"], 1);
}

#[tokio::test]
async fn runner_leaving_turns_a_pending_snapshot_into_a_resync() {
    let hub = SessionHub::new(1, None);
    let reg = attach(&hub, 1);
    let b = hub.add_browser(Arc::new(BrowserQueue::with_limits(1 << 20, 1)));
    hub.publish(batch(1, 1, 1));
    hub.publish(batch(2, 2, 1));
    assert!(b.queue.awaiting_snapshot());
    hub.detach_runner(reg.conn);
    assert!(!b.queue.awaiting_snapshot());
    // The runner-offline text survives the overflow, then the resync marker.
    assert!(matches!(b.queue.pop().await, Outgoing::Text(_)));
    assert!(matches!(b.queue.pop().await, Outgoing::Resync));
}

#[tokio::test]
async fn cluster_notes_come_only_from_a_local_runner_and_keep_the_bytes() {
    let (tx, mut rx) = mpsc::channel(NOTES_CHANNEL);
    let hub = Hub::with_notes(tx);
    let s = hub.session(3);
    // No runner: nothing to tell the other relays.
    s.publish(batch(1, 1, 10));
    assert!(rx.try_recv().is_err());
    let _local = attach(&s, 1);
    assert!(matches!(
        rx.try_recv(),
        Ok(HubNote::Scope { session: 3, .. })
    ));
    assert!(matches!(
        rx.try_recv(),
        Ok(HubNote::Runner {
            session: 3,
            online: true,
            ..
        })
    ));
    let f = batch(2, 4, 32);
    s.publish(f.clone());
    match rx.try_recv() {
        Ok(HubNote::Frame { session: 3, frame }) => {
            assert_eq!(frame, f);
            assert_eq!(frame.bytes.as_ptr(), f.bytes.as_ptr(), "the same Bytes");
        }
        other => panic!("expected the frame, got {other:?}"),
    }
    s.set_scope(Scope::parse("%1 @1"));
    assert!(matches!(rx.try_recv(), Ok(HubNote::Scope { stored, .. }) if stored == "%1 @1"));
    s.rebase("e1".into(), 4);
    assert!(matches!(
        rx.try_recv(),
        Ok(HubNote::Epoch { session: 3, epoch, stored_head: 4 }) if epoch == "e1"
    ));
    s.detach_runner(1);
    assert!(matches!(
        rx.try_recv(),
        Ok(HubNote::Runner { online: false, .. })
    ));
    // A remote link (a runner on another relay): frames fed from NATS are
    // never published again.
    let _remote = attach(&s, REMOTE_CONN);
    s.publish(batch(5, 5, 10));
    s.set_scope(Scope::parse("%2"));
    s.rebase("e2".into(), 5);
    s.detach_runner(REMOTE_CONN);
    assert!(rx.try_recv().is_err(), "nothing noted for a remote runner");
    // Without a cluster no hub notes anything.
    let plain = Hub::new().session(3);
    let _l = attach(&plain, 1);
    plain.publish(batch(1, 1, 1));
}

#[tokio::test]
async fn resync_queues_a_catch_up_unless_a_snapshot_is_awaited() {
    let q = BrowserQueue::with_limits(1 << 20, 3);
    q.resync();
    assert_eq!(q.push_frame(&batch(1, 1, 10)), Pushed::Queued);
    assert!(matches!(q.pop().await, Outgoing::Resync), "the store first");
    assert_eq!(pop_frame(&q).await, (FrameKind::Batch, 1, 1));
    q.await_snapshot();
    q.resync();
    assert_eq!(q.push_frame(&snap(4)), Pushed::Queued);
    assert_eq!(
        pop_frame(&q).await,
        (FrameKind::Snapshot, 4, 4),
        "the awaited snapshot covers it"
    );
}

#[tokio::test]
async fn unstored_frames_go_out_in_order_and_reach_browsers_that_join_before_the_commit() {
    let hub = SessionHub::new(1, None);
    let _reg = attach(&hub, 1);
    hub.note_head(2);
    let early = hub.add_browser(Arc::new(BrowserQueue::new()));
    // Only a Batch that continues what browsers were sent goes early.
    assert_eq!(hub.publish_unstored(&batch(4, 4, 1)), None, "a gap waits");
    assert_eq!(hub.publish_unstored(&snap(2)), None, "a snapshot waits");
    assert_eq!(hub.publish_unstored(&batch(3, 3, 1)), Some(0));
    assert_eq!(hub.publish_unstored(&batch(4, 5, 1)), Some(0));
    assert_eq!(hub.head_seq(), 5);
    assert_eq!(pop_frame(&early.queue).await, (FrameKind::Batch, 3, 3));
    // A browser joining now gets what is not stored yet, after the store's.
    let late = hub.add_browser(Arc::new(BrowserQueue::new()));
    assert_eq!(pop_frame(&late.queue).await, (FrameKind::Batch, 3, 3));
    assert_eq!(pop_frame(&late.queue).await, (FrameKind::Batch, 4, 5));
    assert_eq!(hub.unstored_after(3).len(), 1);
    hub.stored(batch(3, 3, 1));
    assert_eq!(
        hub.unstored_after(0)
            .iter()
            .map(|f| f.first_seq)
            .collect::<Vec<_>>(),
        vec![4]
    );
    hub.stored(batch(4, 5, 1));
    assert!(hub.unstored_after(0).is_empty());
    let third = hub.add_browser(Arc::new(BrowserQueue::new()));
    assert!(third.queue.try_pop().is_none(), "the store has them now");
}

#[test]
fn a_rebase_resets_browsers_only_when_they_were_sent_records_the_store_lacks() {
    let hub = SessionHub::new(1, None);
    let _reg = attach(&hub, 1);
    hub.note_head(2);
    let b = hub.add_browser(Arc::new(BrowserQueue::new()));
    hub.rebase("e1".into(), 2);
    let text = |q: &BrowserQueue| loop {
        match q.try_pop() {
            Some(Outgoing::Text(t)) if t.contains("\"epoch\"") => return t,
            Some(_) => {}
            None => panic!("no epoch message"),
        }
    };
    assert_eq!(text(&b.queue), r#"{"t":"epoch","epoch":"e1"}"#);
    assert_eq!(hub.publish_unstored(&batch(3, 3, 1)), Some(0));
    // 3 was never stored; the runner numbers over from 2.
    hub.rebase("e2".into(), 2);
    assert_eq!(text(&b.queue), r#"{"t":"epoch","epoch":"e2","reset":true}"#);
    assert_eq!(hub.head_seq(), 2);
    assert!(hub.unstored_after(0).is_empty());
}
