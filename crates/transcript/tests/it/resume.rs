//! The resume invariant over the recorded fixtures: for random cut points k,
//! snapshot@k followed by records k+1..n gives the same screens as the live
//! model at n, and as records 1..n applied from scratch.

use proptest::prelude::*;
use protocol::wire::{Frame, Record};
use transcript::session::{SessionConfig, SessionModel, SessionView, Snapshot};

use crate::fixtures;
use crate::live::rows_shown;

const SCROLLBACK: usize = 2000;

struct Run {
    model: SessionModel,
    records: Vec<Record>,
    snapshots: Vec<Snapshot>,
}

/// Replays a fixture, taking a snapshot after each event whose index is in
/// `cuts` (event boundaries are where a bridge can take one).
fn run(log: &[u8], cuts: &[usize]) -> Run {
    let mut model = SessionModel::new(SessionConfig {
        scrollback: SCROLLBACK,
        ..SessionConfig::default()
    });
    let mut parser = tmux_cc::Parser::new();
    parser.push(log);
    parser.finish();
    let mut records = Vec::new();
    let mut snapshots = vec![model.snapshot()];
    let mut i = 0;
    while let Some(ev) = parser.next_event() {
        records.extend(model.apply(&ev));
        if cuts.contains(&i) {
            snapshots.push(model.snapshot());
        }
        i += 1;
    }
    Run {
        model,
        records,
        snapshots,
    }
}

fn event_count(log: &[u8]) -> usize {
    let mut parser = tmux_cc::Parser::new();
    parser.push(log);
    parser.finish();
    std::iter::from_fn(|| parser.next_event()).count()
}

/// Every live pane of the model shows the same in `view`.
fn same_screens(model: &SessionModel, view: &SessionView, what: &str) -> Result<(), TestCaseError> {
    for (id, pane) in model.live_panes() {
        let v = view
            .pane(id)
            .ok_or_else(|| TestCaseError::fail(format!("{what}: {id} missing")))?;
        prop_assert_eq!(v.size(), pane.size(), "{}: {} size", what, id);
        // Rows tmux holds and no terminal can (half of a wide character
        // erased) are drawn as tmux draws them: `crate::live::rows_shown`.
        prop_assert_eq!(
            rows_shown(pane, v.rows_ansi()),
            rows_shown(pane, pane.rows_ansi()),
            "{}: {} rows",
            what,
            id
        );
        prop_assert_eq!(v.cursor(), pane.cursor(), "{}: {} cursor", what, id);
        prop_assert_eq!(
            v.scrollback_len(),
            pane.scrollback_len(),
            "{}: {} scrollback",
            what,
            id
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn snapshot_at_k_plus_deltas_equals_live(
        which in 0usize..100,
        cut_permille in proptest::collection::vec(0usize..1000, 1..4),
    ) {
        let all = fixtures::all();
        let f = &all[which % all.len()];
        let n_events = event_count(&f.log);
        let cuts: Vec<usize> = cut_permille.iter().map(|p| p * n_events / 1000).collect();
        let mut r = run(&f.log, &cuts);
        prop_assert_eq!(r.records.iter().map(|x| x.seq).collect::<Vec<_>>(), (1..=r.records.len() as u64).collect::<Vec<_>>());
        // From scratch.
        let mut scratch = SessionView::new(SCROLLBACK, 0);
        for rec in &r.records {
            scratch.apply(rec).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        same_screens(&r.model, &scratch, &format!("{} from scratch", f.name))?;
        // From each snapshot, going through the wire encoding as a browser
        // would receive it.
        for snap in &r.snapshots {
            let frame = snap.frame().ok_or_else(|| TestCaseError::fail("snapshot frame"))?;
            let decoded = Frame::decode(&frame.encode(true)).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let snap2 = Snapshot { seq: decoded.last_seq, records: decoded.records };
            let mut view = SessionView::from_snapshot(SCROLLBACK, &snap2).map_err(|e| TestCaseError::fail(e.to_string()))?;
            for rec in r.records.iter().filter(|x| x.seq > snap.seq) {
                view.apply(rec).map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            same_screens(&r.model, &view, &format!("{} from snapshot@{}", f.name, snap.seq))?;
        }
        // A snapshot of the end equals the end.
        let end = r.model.snapshot();
        let view = SessionView::from_snapshot(SCROLLBACK, &end).map_err(|e| TestCaseError::fail(e.to_string()))?;
        same_screens(&r.model, &view, &format!("{} snapshot@end", f.name))?;
    }
}
