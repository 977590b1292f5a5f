//! Resize debounce: the last size wins after the quiet period, a size
//! already applied is not sent again, an invalid one is refused.

use super::*;
use crate::core::ErrorCode;

fn resize(h: &mut H, cols: u16, rows: u16) -> Vec<Effect> {
    h.relay(RelayMsg::Resize { cols, rows })
}

#[test]
fn the_last_size_is_applied_after_the_debounce() {
    let mut h = H::ready();
    let start = h.ms();
    assert!(cmds(&resize(&mut h, 100, 30)).is_empty());
    h.advance(50);
    resize(&mut h, 120, 40);
    let due = h.t0 + Duration::from_millis(start + 50 + 120);
    assert_eq!(h.m.next_wakeup(), Some(due));
    h.advance(119);
    assert!(cmds(&h.tick()).is_empty(), "still settling");
    h.advance(1);
    assert_eq!(cmds(&h.tick()), ["refresh-client -C 120x40"]);
    assert!(cmds(&h.tick()).is_empty(), "once");
    // The same size again: nothing to do.
    resize(&mut h, 120, 40);
    h.advance(200);
    assert!(cmds(&h.tick()).is_empty());
    resize(&mut h, 90, 20);
    h.advance(120);
    assert_eq!(cmds(&h.tick()), ["refresh-client -C 90x20"]);
}

#[test]
fn an_invalid_size_is_refused() {
    let mut h = H::ready();
    for (cols, rows) in [(0, 10), (10, 0), (u16::MAX, 10)] {
        let e = resize(&mut h, cols, rows);
        assert!(cmds(&e).is_empty());
        assert!(
            matches!(
                texts(&e).as_slice(),
                [ToRelay::Error {
                    generation: 1,
                    code: ErrorCode::InvalidSize,
                    ..
                }]
            ),
            "{e:?}"
        );
    }
    h.advance(500);
    assert!(cmds(&h.tick()).is_empty());
}
