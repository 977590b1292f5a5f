//! Flood control: the rate window, flood frames at their interval, calm
//! detection alone (no output for a while) and with a terminal attached
//! (pause, then two identical frames), the full resync that ends a flood.
//! "Alone" here is without the hidden client (disabled, or failed to
//! start: today's path); with it, `hidden.rs`.

use super::*;

const CHUNK: usize = 64 << 10;

/// A ready session whose floods get no hidden client.
fn alone() -> H {
    H::ready_with(CoreConfig {
        hidden_client: false,
        ..CoreConfig::default()
    })
}

/// Feeds 64 KiB chunks of pane `%0` every 10 ms until one is dropped;
/// returns how many were streamed.
pub(super) fn flood(h: &mut H) -> (usize, Vec<Effect>) {
    let mut effects = Vec::new();
    for i in 0..100 {
        effects.extend(h.output(0, &[b'x'; CHUNK]));
        if output_of(&h.drained(), 0).is_empty() {
            return (i, effects);
        }
        h.advance(10);
    }
    panic!("never flooded");
}

#[test]
fn a_flood_alone_is_redrawn_from_tmux_and_ends_with_a_full_resync() {
    let mut h = alone();
    let (streamed, e) = flood(&mut h);
    // 256 KiB within the window is the threshold: the fourth chunk.
    assert_eq!(streamed, 3);
    assert!(
        cmds(&e).is_empty(),
        "alone, the pane is never paused: {e:?}"
    );
    let start = h.now;
    assert_eq!(h.m.next_wakeup(), Some(start), "first frame due at once");
    // Flood frames: the visible screen only, at the frame interval.
    let e = h.tick();
    assert_eq!(bundles(&e), [(PaneId(0), 0, false)]);
    h.advance(10).output(0, b"more");
    assert!(bundles(&h.tick()).is_empty(), "one frame in flight");
    let e = h.answer_resync(PaneId(0), &["frame 1"], false);
    assert!(cmds(&e).is_empty());
    let e = h.drained();
    assert_eq!(resets(&e), [PaneId(0)], "the frame is shown");
    assert!(output_of(&e, 0).is_empty(), "output is dropped");
    assert_eq!(
        h.m.next_wakeup(),
        Some(start + Duration::from_millis(50)),
        "next frame after the interval"
    );
    h.advance(39);
    assert!(bundles(&h.tick()).is_empty(), "not due yet");
    h.advance(1);
    assert_eq!(bundles(&h.tick()), [(PaneId(0), 0, false)]);
    // No output for 150 ms by the time the frame is in: the flood is over.
    h.advance(150);
    h.answer_resync(PaneId(0), &["frame 2"], false);
    let e = h.drained();
    assert_eq!(bundles(&e), [(PaneId(0), 10_000, false)], "full resync");
    assert!(resets(&e).is_empty());
    h.answer_resync(PaneId(0), &["final"], false);
    assert_eq!(resets(&h.drained()), [PaneId(0)]);
    h.advance(300).output(0, b"calm");
    assert_eq!(output_of(&h.drained(), 0), b"calm", "streamed again");
}

#[test]
fn a_flood_alone_is_not_over_while_output_continues() {
    let mut h = alone();
    flood(&mut h);
    for _ in 0..5 {
        assert_eq!(bundles(&h.tick()), [(PaneId(0), 0, false)]);
        h.advance(49).output(0, b"still");
        h.answer_resync(PaneId(0), &["same"], false);
        let e = h.drained();
        assert_eq!(resets(&e), [PaneId(0)], "still flooding: a frame");
        h.advance(1);
    }
}

#[test]
fn a_flood_with_a_terminal_attached_pauses_and_ends_on_a_still_screen() {
    let mut h = H::ready();
    h.ev(Event::ClientSessionChanged {
        client: Bytes::from_static(b"/dev/pts/7"),
        session: SessionId(0),
        name: Bytes::from_static(b"s"),
    });
    h.clients(&[7]);
    let (_, e) = flood(&mut h);
    assert_eq!(cmds(&e), ["refresh-client -A '%0:pause'"]);
    h.reply(true, &[]);
    assert_eq!(bundles(&h.tick()), [(PaneId(0), 0, false)]);
    h.answer_resync(PaneId(0), &["screen A"], false);
    assert_eq!(resets(&h.drained()), [PaneId(0)]);
    h.advance(50);
    assert_eq!(bundles(&h.tick()), [(PaneId(0), 0, false)]);
    h.answer_resync(PaneId(0), &["screen B"], false);
    assert_eq!(resets(&h.drained()), [PaneId(0)], "changed: still flooding");
    h.advance(50);
    h.tick();
    // Paused, tmux sends nothing: the same screen twice ends the flood,
    // with a full resync that continues the pane.
    h.answer_resync(PaneId(0), &["screen B"], false);
    let e = h.drained();
    assert_eq!(bundles(&e), [(PaneId(0), 10_000, true)]);
}

#[test]
fn a_flooding_pane_gets_frames_not_full_resyncs() {
    let mut h = alone();
    flood(&mut h);
    h.ev(Event::Pause { pane: PaneId(0) });
    h.layout(0, TWO_PANES);
    let e = h.drained();
    assert_eq!(
        bundles(&e),
        [(PaneId(1), 10_000, false)],
        "only the new pane: {e:?}"
    );
}

#[test]
fn a_flood_frame_for_a_pane_that_is_gone_ends_the_flood() {
    let mut h = alone();
    flood(&mut h);
    h.tick();
    h.reply(false, &["can't find pane: %0"]);
    let e = h.drained();
    assert_eq!(cmds(&e), ["refresh-client -A '%0:continue'"]);
    h.advance(100);
    assert!(bundles(&h.tick()).is_empty(), "no more frames");
}

#[test]
fn output_under_the_rate_or_under_the_minimum_is_streamed() {
    let mut h = alone();
    // 60 KiB every 100 ms (600 KiB/s) for 3 s.
    let mut streamed = 0;
    for _ in 0..30 {
        h.output(0, &[b'y'; 60 << 10]);
        streamed += output_of(&h.drained(), 0).len();
        h.advance(100);
    }
    assert_eq!(streamed, 30 * (60 << 10));
    // One burst just under 256 KiB at once.
    h.advance(1000).output(0, &[b'z'; (256 << 10) - 1]);
    assert_eq!(output_of(&h.drained(), 0).len(), (256 << 10) - 1);
}
