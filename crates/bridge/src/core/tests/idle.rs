//! Idle watching: a watched pane goes idle after its idle time without
//! output and active again on output (flooded and `%pause`d output count),
//! transitions are stamped with the time they fell due, wake-ups are
//! asked for, and bad watches are refused.

use super::*;

/// The `activity` messages: (pane, idle, ms after the start).
fn activity(effects: &[Effect]) -> Vec<(u32, bool, u64)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Relay(ToRelay::Activity { pane, idle, at }) => {
                Some((pane.0, *idle, at - WALL0))
            }
            _ => None,
        })
        .collect()
}

fn watch(h: &mut H, pane: u32, idle_ms: Option<u64>) -> Vec<Effect> {
    h.relay(RelayMsg::Watch {
        pane: PaneId(pane),
        idle_ms,
    })
}

#[test]
fn a_watched_pane_goes_idle_and_active_again() {
    let mut h = H::ready();
    let t = h.ms();
    assert_eq!(activity(&watch(&mut h, 0, Some(1500))), [(0, false, t)]);
    let due = h.now + Duration::from_millis(1500);
    assert_eq!(h.m.idle_wakeup(), Some(due));
    assert!(h.m.next_wakeup() <= Some(due));
    h.advance(1000).output(0, b"still working");
    assert!(activity(&h.tick()).is_empty(), "output moves the deadline");
    assert_eq!(h.m.idle_wakeup(), Some(h.now + Duration::from_millis(1500)));
    h.advance(1499);
    assert!(activity(&h.tick()).is_empty(), "not yet");
    let t = h.advance(1).ms();
    assert_eq!(activity(&h.tick()), [(0, true, t)]);
    assert_eq!(h.m.idle_wakeup(), None, "idle: nothing to wait for");
    h.advance(5000);
    assert!(activity(&h.tick()).is_empty(), "idle is reported once");
    let t = h.ms();
    assert_eq!(activity(&h.output(0, b"> ")), [(0, false, t)]);
    assert!(activity(&h.output(0, b"more")).is_empty(), "once");
    // A late tick stamps the transition with the time it fell due.
    let due = h.ms() + 1500;
    h.advance(4000);
    assert_eq!(activity(&h.tick()), [(0, true, due)]);
}

#[test]
fn other_panes_output_does_not_count_and_unwatching_stops() {
    let mut h = H::ready();
    watch(&mut h, 0, Some(2000));
    h.advance(1500).output(1, b"another pane");
    let t = h.advance(500).ms();
    assert_eq!(activity(&h.tick()), [(0, true, t)]);
    assert!(activity(&watch(&mut h, 0, None)).is_empty());
    assert!(activity(&h.output(0, b"x")).is_empty(), "not watched");
    h.advance(10_000);
    assert!(activity(&h.tick()).is_empty());
    assert_eq!(h.m.idle_wakeup(), None);
    // An unwatched pane's output is not tracked at all.
    assert!(activity(&h.output(7, b"x")).is_empty());
}

#[test]
fn a_repeated_watch_answers_the_state_now_and_keeps_it() {
    let mut h = H::ready();
    watch(&mut h, 0, Some(1000));
    let t = h.advance(1000).ms();
    assert_eq!(activity(&h.tick()), [(0, true, t)]);
    // The relay re-sends its watches after `opened`: the pane stays idle.
    let t2 = h.advance(10).ms();
    assert_eq!(activity(&watch(&mut h, 0, Some(1000))), [(0, true, t2)]);
    // A shorter idle time applies to the next quiet spell.
    h.output(0, b"x");
    watch(&mut h, 0, Some(5000));
    h.advance(4999);
    assert!(activity(&h.tick()).is_empty());
    let t = h.advance(1).ms();
    assert_eq!(activity(&h.tick()), [(0, true, t)]);
    // Shortened below what passed already: idle at once.
    h.output(0, b"y");
    h.advance(3000);
    let e = watch(&mut h, 0, Some(2000));
    assert_eq!(activity(&e), [(0, false, h.ms()), (0, true, h.ms() - 1000)]);
}

#[test]
fn flooded_and_paused_output_counts_as_output() {
    let mut h = H::ready();
    watch(&mut h, 0, Some(1000));
    // 64 KiB every 10 ms for a second: the pane floods and its output is
    // dropped, yet it never goes idle.
    let mut dropped = false;
    for _ in 0..100 {
        h.output(0, &[b'x'; 64 << 10]);
        dropped |= output_of(&h.drained(), 0).is_empty();
        h.advance(10);
        assert!(activity(&h.tick()).is_empty(), "active while flooding");
    }
    assert!(dropped, "flood control dropped output");
    // tmux's %pause is output we did not read yet.
    h.advance(900);
    h.ev(Event::Pause { pane: PaneId(0) });
    h.advance(900);
    assert!(activity(&h.tick()).is_empty(), "%pause counted");
    let t = h.advance(100).ms();
    assert!(activity(&h.tick()).contains(&(0, true, t)));
}

#[test]
fn bad_watches_are_refused() {
    let mut h = H::ready();
    for ms in [0, 999, protocol::runner::agent::MAX_IDLE_MS + 1] {
        let e = watch(&mut h, 0, Some(ms));
        assert!(activity(&e).is_empty());
        assert!(
            matches!(
                texts(&e).as_slice(),
                [ToRelay::Error {
                    code: crate::core::ErrorCode::Invalid,
                    ..
                }]
            ),
            "{e:?}"
        );
    }
    for p in 0..64 {
        assert_eq!(activity(&watch(&mut h, p, Some(1000))).len(), 1);
    }
    let e = watch(&mut h, 64, Some(1000));
    assert!(activity(&e).is_empty());
    assert_eq!(texts(&e).len(), 1, "the 65th watch is refused: {e:?}");
    // Changing one that exists is fine.
    assert_eq!(activity(&watch(&mut h, 3, Some(2000))).len(), 1);
}

#[test]
fn a_closed_pane_loses_its_watch_without_going_idle() {
    let mut h = H::ready();
    h.layout(0, TWO_PANES);
    h.drained();
    watch(&mut h, 1, Some(1000));
    // A pane the model has not heard of yet keeps its watch.
    watch(&mut h, 9, Some(1000));
    h.advance(500);
    assert!(activity(&h.tick()).is_empty());
    h.layout(0, ONE_PANE);
    h.drained();
    let t = h.advance(600).ms();
    assert_eq!(
        activity(&h.tick()),
        [(9, true, t - 100)],
        "%1 closed: no idle"
    );
    assert_eq!(h.m.idle_wakeup(), None);
}
