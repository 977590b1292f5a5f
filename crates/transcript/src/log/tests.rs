use bytes::Bytes;
use proptest::prelude::*;
use tmux_cc::PaneId;

use super::*;
use crate::wire::RecordBody;

fn rec(seq: u64, len: usize) -> Record {
    Record {
        seq,
        body: RecordBody::Output {
            pane: PaneId(0),
            bytes: Bytes::from(vec![b'x'; len]),
        },
    }
}

fn snap(seq: u64) -> Snapshot {
    Snapshot {
        seq,
        records: vec![Record {
            seq,
            body: RecordBody::Topology(Bytes::from_static(b"{}")),
        }],
    }
}

/// The contract of `since`, checked for one k.
fn check_since(log: &DeltaLog, k: u64) -> Result<(), TestCaseError> {
    let head = log.head();
    match log.since(k) {
        Some(Since::Deltas(d)) => {
            let seqs: Vec<u64> = d.iter().map(|r| r.seq).collect();
            prop_assert_eq!(seqs, (k + 1..=head).collect::<Vec<_>>());
        }
        Some(Since::Snapshot(s, d)) => {
            prop_assert!(s.seq >= k, "snapshot at {} older than {}", s.seq, k);
            let seqs: Vec<u64> = d.iter().map(|r| r.seq).collect();
            prop_assert_eq!(seqs, (s.seq + 1..=head).collect::<Vec<_>>());
        }
        None => {
            prop_assert!(
                k > head || k + 1 < log.first(),
                "refused k={} with first={}",
                k,
                log.first()
            );
        }
    }
    Ok(())
}

#[test]
fn deltas_then_snapshot_after_eviction() {
    let mut log = DeltaLog::new(
        LogLimits {
            max_bytes: usize::MAX,
            max_entries: 5,
            max_checkpoints: 2,
        },
        0,
    );
    for s in 1..=4 {
        log.push(rec(s, 1)).expect("next");
    }
    log.checkpoint(snap(4)).expect("at head");
    for s in 5..=10 {
        log.push(rec(s, 1)).expect("next");
    }
    assert_eq!(log.first(), 6);
    assert!(matches!(log.since(7), Some(Since::Deltas(d)) if d.len() == 3));
    // k=2 is older than every record: snapshot at 4 needs 5.., which is
    // gone, so no answer; a newer checkpoint fixes it.
    assert_eq!(log.since(2), None);
    assert!(log.needs_checkpoint());
    log.checkpoint(snap(8)).expect("at or below head");
    match log.since(2) {
        Some(Since::Snapshot(s, d)) => {
            assert_eq!(s.seq, 8);
            assert_eq!(d.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![9, 10]);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(log.since(10), Some(Since::Deltas(vec![])));
    assert_eq!(log.since(11), None);
}

#[test]
fn push_refuses_gaps_and_checkpoint_refuses_the_future() {
    let mut log = DeltaLog::new(LogLimits::default(), 41);
    assert_eq!(
        log.push(rec(43, 1)),
        Err(LogError::NotNext { head: 41, got: 43 })
    );
    log.push(rec(42, 1)).expect("next");
    assert_eq!(
        log.checkpoint(snap(43)),
        Err(LogError::CheckpointAhead { head: 42, got: 43 })
    );
}

#[test]
fn byte_bound_holds_and_trim_frees() {
    let mut log = DeltaLog::new(
        LogLimits {
            max_bytes: 1000,
            max_entries: usize::MAX,
            max_checkpoints: 2,
        },
        0,
    );
    for s in 1..=100 {
        log.push(rec(s, 50)).expect("next");
        assert!(log.bytes() <= 1000);
    }
    log.trim_through(99);
    assert_eq!(log.len(), 1);
    assert_eq!(log.first(), 100);
}

#[derive(Debug, Clone)]
enum Op {
    Push(usize),
    Checkpoint,
    Trim(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..200).prop_map(Op::Push),
        1 => Just(Op::Checkpoint),
        1 => (0u64..20).prop_map(Op::Trim),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn since_is_exact_or_snapshot_never_gap_or_duplicate(
        start in 0u64..5,
        ops in proptest::collection::vec(op(), 1..120),
        max_entries in 1usize..40,
        max_bytes in 100usize..4000,
    ) {
        let mut log = DeltaLog::new(LogLimits { max_bytes, max_entries, max_checkpoints: 3 }, start);
        for o in ops {
            match o {
                Op::Push(len) => log.push(rec(log.head() + 1, len)).expect("next"),
                Op::Checkpoint => log.checkpoint(snap(log.head())).expect("at head"),
                Op::Trim(back) => log.trim_through(log.head().saturating_sub(back)),
            }
            prop_assert!(log.len() <= max_entries.max(1));
        }
        for k in 0..=log.head() + 1 {
            check_since(&log, k)?;
        }
    }
}
