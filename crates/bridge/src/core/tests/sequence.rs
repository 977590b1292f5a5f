//! Sequencing: the first `opened` rebases onto the relay's sequence, a
//! later one resends exactly the unacked frames after the relay's
//! `last_seq`, frames for a lost connection are kept but not sent, and a
//! relay we cannot bring up to date gets a full reset.

use super::*;
use protocol::wire::RecordBody;

#[test]
fn the_first_open_continues_the_relays_sequence_with_a_full_reset() {
    let mut h = H::new();
    h.input(Input::Start);
    h.clients(&[]);
    h.ev(Event::SessionChanged {
        session: SessionId(0),
        name: Bytes::from_static(b"s"),
    });
    h.reply(true, &[&format!("@0 0 {TWO_PANES} {TWO_PANES} * 1 shell")]);
    assert_eq!(bundles(&h.drained()).len(), 2);
    h.answer_resync(PaneId(0), &["$ "], false);
    h.answer_resync(PaneId(1), &["$ "], false);
    h.output(0, b"before the relay");
    let e = h.drained();
    assert!(frames(&e).is_empty(), "no connection yet: {e:?}");
    // The relay holds 41 records of an earlier run.
    h.at(2000);
    let e = h.input(Input::RelayOpened {
        generation: 7,
        last_seq: 41,
    });
    let f = frames(&e);
    assert!(f.iter().all(|(g, _)| *g == 7));
    // Said before the reset's frames: the relay may have sent browsers
    // records of an earlier run that it never stored.
    assert_eq!(rebase_first(&e), Some((7, true)));
    // Topology, then a reset per pane, from 42; then a snapshot at 44.
    assert_eq!(batches(&e), [(42, 44)]);
    let batch = &f[0].1;
    assert!(matches!(batch.records[0].body, RecordBody::Topology(_)));
    assert_eq!(resets(&e), [PaneId(0), PaneId(1)]);
    assert!(
        batch.records.iter().all(|r| r.time == WALL0 + 2000),
        "stamped with the wall clock given"
    );
    assert_eq!(snapshots(&e), [44]);
    assert_eq!(
        texts(&e),
        [ToRelay::Status {
            attached_clients: 0
        }]
    );
    // Live records continue from there.
    h.output(0, b"after");
    assert_eq!(batches(&h.drained()), [(45, 45)]);
}

#[test]
fn a_reopen_resends_the_unacked_frames_after_the_relays_last_seq() {
    let mut h = H::ready();
    // Ready: batch 1..=2 and a snapshot at 2.
    let mut sent = Vec::new();
    for i in 0..3 {
        h.output(0, format!("line {i}\r\n").as_bytes());
        sent.extend(batches(&h.drained()));
    }
    assert_eq!(sent, [(3, 3), (4, 4), (5, 5)]);
    h.relay(RelayMsg::Ack { seq: 3 });
    h.input(Input::RelayLost { generation: 1 });
    // Made while disconnected: kept, not sent.
    h.output(0, b"offline");
    let e = h.drained();
    assert!(frames(&e).is_empty(), "{e:?}");
    // The relay stored through 4 (its ack of 4 was lost with the socket).
    let e = h.input(Input::RelayOpened {
        generation: 2,
        last_seq: 4,
    });
    assert_eq!(batches(&e), [(5, 5), (6, 6)], "gap-free from 5");
    assert_eq!(rebase_first(&e), None, "a resend is no rebase");
    assert!(frames(&e).iter().all(|(g, _)| *g == 2));
    assert_eq!(output_of(&e, 0), b"line 2\r\noffline");
    assert_eq!(snapshots(&e), [6]);
}

#[test]
fn frames_for_a_stale_generation_are_never_sent() {
    let mut h = H::ready();
    h.input(Input::RelayOpened {
        generation: 2,
        last_seq: 2,
    });
    // The loss of the old connection arrives late: it changes nothing.
    h.input(Input::RelayLost { generation: 1 });
    h.output(0, b"x");
    let e = h.drained();
    assert_eq!(batches(&e), [(3, 3)]);
    assert!(frames(&e).iter().all(|(g, _)| *g == 2));
}

#[test]
fn a_relay_whose_last_seq_splits_a_frame_gets_a_full_reset() {
    let mut h = H::ready();
    h.output(0, b"a");
    assert_eq!(batches(&h.drained()), [(3, 3)]);
    h.input(Input::RelayLost { generation: 1 });
    // The relay's store was restored from a backup that ends inside our
    // first frame (1..=2): resending it would overlap, which the relay
    // refuses (protocol.md §4.4). Continue from 2 with a reset instead.
    let e = h.input(Input::RelayOpened {
        generation: 2,
        last_seq: 1,
    });
    assert_eq!(batches(&e), [(2, 3)]);
    assert_eq!(resets(&e), [PaneId(0)]);
    assert_eq!(snapshots(&e), [3]);
}

#[test]
fn frames_dropped_past_the_bound_make_the_relay_start_over() {
    let mut h = H::ready_with(CoreConfig {
        unacked_memory_bytes: usize::MAX,
        unacked_max_bytes: 200,
        ..CoreConfig::default()
    });
    for _ in 0..5 {
        h.output(0, &[b'q'; 100]);
        h.drained();
    }
    h.input(Input::RelayLost { generation: 1 });
    let e = h.input(Input::RelayOpened {
        generation: 2,
        last_seq: 2,
    });
    // Records 3..=7 cannot all be resent: a reset continues from 3.
    assert_eq!(batches(&e), [(3, 4)]);
    assert_eq!(rebase_first(&e), Some((2, true)));
    assert_eq!(resets(&e), [PaneId(0)]);
    assert_eq!(snapshots(&e), [4]);
    h.output(0, b"next");
    assert_eq!(batches(&h.drained()), [(5, 5)]);
}

#[test]
fn a_relay_ahead_of_us_is_continued_not_contradicted() {
    let mut h = H::ready();
    h.input(Input::RelayLost { generation: 1 });
    // Another runner process served the session meanwhile up to 90.
    let e = h.input(Input::RelayOpened {
        generation: 2,
        last_seq: 90,
    });
    assert_eq!(batches(&e), [(91, 92)]);
    assert_eq!(snapshots(&e), [92]);
}

#[test]
fn a_burst_past_256_kib_asks_for_a_frame() {
    let mut h = H::ready();
    h.output(0, &[b'a'; 200 << 10]);
    assert!(!h.m.batch_full());
    // Later (not a flood), in the same burst.
    h.advance(300).output(0, &[b'a'; 100 << 10]);
    assert!(h.m.batch_full());
    assert_eq!(batches(&h.drained()), [(3, 4)]);
    assert!(!h.m.batch_full());
}
