//! Snapshots: by output bytes at the end of a burst, by time only if the
//! session changed, on request, never kept unacked.

use super::*;

#[test]
fn a_snapshot_follows_enough_output() {
    let mut h = H::ready_with(CoreConfig {
        snapshot_every_bytes: 1000,
        ..CoreConfig::default()
    });
    h.output(0, &[b'a'; 600]);
    let e = h.drained();
    assert_eq!((batches(&e), snapshots(&e)), (vec![(3, 3)], vec![]));
    h.output(0, &[b'a'; 600]);
    let e = h.drained();
    // The batch first: a snapshot describes exactly what was sent.
    assert_eq!((batches(&e), snapshots(&e)), (vec![(4, 4)], vec![4]));
    h.output(0, &[b'a'; 600]);
    assert!(snapshots(&h.drained()).is_empty(), "the count restarted");
}

#[test]
fn a_snapshot_by_time_only_when_something_changed() {
    let mut h = H::ready();
    // Opened at 1 s with a snapshot; nothing changed since.
    h.at(40_000);
    assert!(snapshots(&h.tick()).is_empty());
    assert_eq!(h.m.snapshot_wakeup(), None);
    h.output(0, b"x");
    h.drained();
    // Due 30 s after the last one, i.e. at once.
    assert_eq!(h.m.snapshot_wakeup(), Some(h.t0 + Duration::from_secs(31)));
    assert_eq!(snapshots(&h.tick()), [3]);
    h.output(0, b"y");
    h.drained();
    h.advance(29_999);
    assert!(snapshots(&h.tick()).is_empty());
    h.advance(1);
    assert_eq!(snapshots(&h.tick()), [4]);
}

#[test]
fn a_snapshot_on_request_is_not_resent_after_a_reconnect() {
    let mut h = H::ready();
    h.output(0, b"x");
    h.drained();
    let e = h.relay(RelayMsg::SnapshotRequest);
    assert_eq!((batches(&e), snapshots(&e)), (vec![], vec![3]));
    h.input(Input::RelayLost { generation: 1 });
    let e = h.input(Input::RelayOpened {
        generation: 2,
        last_seq: 2,
    });
    // The batch 3..=3 again, and a fresh snapshot; never the old one.
    assert_eq!((batches(&e), snapshots(&e)), (vec![(3, 3)], vec![3]));
    let f = frames(&e);
    assert_eq!(f.len(), 2);
}

#[test]
fn without_a_connection_no_snapshot_is_sent_but_the_cadence_restarts() {
    let mut h = H::ready();
    h.input(Input::RelayLost { generation: 1 });
    h.output(0, b"x");
    h.drained();
    h.at(31_000);
    assert!(frames(&h.tick()).is_empty());
    assert_eq!(h.m.snapshot_wakeup(), None);
}
