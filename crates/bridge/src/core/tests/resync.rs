//! Resync: bundles per pane, output dropped while one is in flight,
//! `again`, `continue` after `%pause`.

use super::*;

#[test]
fn a_pane_first_seen_mid_stream_is_resynced_and_its_output_dropped_meanwhile() {
    let mut h = H::ready();
    // %5 speaks before any layout names it (a window tmux just made).
    let e = h.output(5, b"hello");
    assert!(cmds(&e).is_empty());
    let e = h.drained();
    assert_eq!(output_of(&e, 5), b"hello", "streamed at once");
    assert_eq!(resets(&e), [PaneId(5)], "announced before its output");
    assert_eq!(bundles(&e), [(PaneId(5), 10_000, false)]);
    // Output that tmux read before the capture ran is in the capture.
    h.output(5, b"dropped");
    let e = h.drained();
    assert!(frames(&e).is_empty(), "{e:?}");
    let e = h.answer_resync(PaneId(5), &["hello", "dropped"], false);
    assert!(cmds(&e).is_empty());
    let e = h.drained();
    assert_eq!(resets(&e), [PaneId(5)], "rebuilt from tmux's screen");
    // Output flows again.
    h.output(5, b"after");
    assert_eq!(output_of(&h.drained(), 5), b"after");
}

#[test]
fn a_pane_marked_again_while_its_bundle_runs_gets_another() {
    let mut h = H::ready();
    h.layout(0, TWO_PANES);
    let e = h.drained();
    assert_eq!(
        bundles(&e),
        [(PaneId(0), 10_000, false), (PaneId(1), 10_000, false)],
        "the resized pane and the new one"
    );
    // Resized back while both bundles are in flight: no second bundle yet.
    h.layout(0, ONE_PANE);
    assert!(bundles(&h.drained()).is_empty());
    h.answer_resync(PaneId(0), &["a"], false);
    let e = h.drained();
    assert_eq!(bundles(&e), [(PaneId(0), 10_000, false)], "again: {e:?}");
}

#[test]
fn a_paused_pane_is_resynced_then_continued() {
    let mut h = H::ready();
    h.ev(Event::Pause { pane: PaneId(0) });
    let e = h.drained();
    assert_eq!(bundles(&e), [(PaneId(0), 10_000, true)]);
    let e = h.answer_resync(PaneId(0), &["$ "], true);
    assert!(cmds(&e).is_empty());
    let e = h.drained();
    assert_eq!(resets(&e), [PaneId(0)]);
    assert!(cmds(&e).is_empty(), "the bundle carried the continue");
}

#[test]
fn a_failed_bundle_still_continues_a_paused_pane() {
    let mut h = H::ready();
    h.ev(Event::Pause { pane: PaneId(0) });
    assert_eq!(bundles(&h.drained()), [(PaneId(0), 10_000, true)]);
    // The first capture fails (the pane is going away): tmux skips the
    // rest of the line, the bundle's `continue` included.
    h.reply(false, &["can't find pane: %0"]);
    let e = h.drained();
    assert_eq!(cmds(&e), ["refresh-client -A '%0:continue'"]);
    assert!(frames(&e).is_empty());
}

#[test]
fn a_dirty_pane_that_is_gone_gets_no_bundle() {
    let mut h = H::ready();
    h.ev(Event::Pause { pane: PaneId(9) });
    assert!(cmds(&h.drained()).is_empty());
}
