//! The hidden terminal client: a flood with no person's terminal asks for
//! the window's size, starts the client at exactly that size, never counts
//! it as a person, pauses the pane once it is attached, and lets it go
//! when the flood is over; a failed start or a client that dies leaves the
//! flood on the unpaused path.

use super::flood::flood;
use super::*;
use crate::core::{HiddenEvent, HiddenOp};

const SIZE_CMD: &str = "display-message -p -t '$0' -- '#{window_width} #{window_height} #{status}'";
const HIDDEN_PID: u32 = 900;
/// The session's option naming the hidden client for `tmux-bridge ls`.
const NAME_CMD: &str = "set-option -t '$0' -- '@bridge_hidden_client' '900'";
const UNNAME_CMD: &str = "set-option -u -t '$0' -- '@bridge_hidden_client'";

fn hidden_ops(effects: &[Effect]) -> Vec<HiddenOp> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Hidden(op) => Some(*op),
            _ => None,
        })
        .collect()
}

fn hidden(h: &mut H, ev: HiddenEvent) -> Vec<Effect> {
    h.input(Input::Hidden(ev))
}

/// A flood on `%0` whose hidden client is spawned and attached (its pause
/// answered); returns the effects of the flood's start.
fn flood_with_hidden_client(h: &mut H) -> Vec<Effect> {
    let (_, e) = flood(h);
    assert_eq!(cmds(&e), [SIZE_CMD], "only the size: not paused yet");
    let e = h.reply(true, &["80 24 on"]);
    assert_eq!(
        hidden_ops(&e),
        [HiddenOp::Start { cols: 80, rows: 25 }],
        "the window plus its status line"
    );
    let e = hidden(h, HiddenEvent::Spawned { pid: HIDDEN_PID });
    assert_eq!(cmds(&e), [NAME_CMD], "named, not attached yet");
    h.reply(true, &[]);
    let e = hidden(h, HiddenEvent::Ready);
    assert_eq!(cmds(&e), ["refresh-client -A '%0:pause'"]);
    h.reply(true, &[]);
    e
}

#[test]
fn a_flood_alone_gets_a_hidden_client_that_leaves_when_it_is_over() {
    let mut h = H::ready();
    flood_with_hidden_client(&mut h);
    // Its attach is heard; the listing shows it, but it is not a person.
    let e = h.ev(Event::ClientSessionChanged {
        client: Bytes::from_static(b"/dev/pts/9"),
        session: SessionId(0),
        name: Bytes::from_static(b"s"),
    });
    assert!(cmds(&e)[0].starts_with("list-clients"));
    let e = h.clients(&[HIDDEN_PID]);
    assert!(texts(&e).is_empty(), "no status change: {e:?}");
    assert_eq!(h.m.attached_clients(), 0);
    // Paused: frames until the screen stands still.
    assert_eq!(bundles(&h.tick()), [(PaneId(0), 0, false)]);
    h.answer_resync(PaneId(0), &["screen A"], false);
    assert_eq!(resets(&h.drained()), [PaneId(0)]);
    h.advance(50);
    assert_eq!(bundles(&h.tick()), [(PaneId(0), 0, false)]);
    let mut e = h.answer_resync(PaneId(0), &["screen A"], false);
    e.extend(h.drained());
    assert_eq!(hidden_ops(&e), [HiddenOp::Stop], "the flood is over");
    assert_eq!(
        bundles(&e),
        [(PaneId(0), 10_000, true)],
        "full resync, then continue"
    );
    // Gone: no longer named, listed again, still no person.
    let e = hidden(&mut h, HiddenEvent::Exited);
    assert_eq!(cmds(&e)[0], UNNAME_CMD, "{e:?}");
    assert!(cmds(&e)[1].starts_with("list-clients"), "{e:?}");
    h.reply(true, &[]);
    assert!(texts(&h.clients(&[])).is_empty());
    // The next flood starts one again.
    h.answer_resync(PaneId(0), &["final"], true);
    h.drained();
    h.advance(1000);
    let (_, e) = flood(&mut h);
    assert_eq!(cmds(&e), [SIZE_CMD]);
}

#[test]
fn a_person_is_still_counted_beside_the_hidden_client() {
    let mut h = H::ready();
    flood_with_hidden_client(&mut h);
    h.ev(Event::ClientSessionChanged {
        client: Bytes::from_static(b"/dev/pts/7"),
        session: SessionId(0),
        name: Bytes::from_static(b"s"),
    });
    let e = h.clients(&[HIDDEN_PID, 7]);
    assert_eq!(
        texts(&e),
        [ToRelay::Status {
            attached_clients: 1
        }]
    );
}

#[test]
fn a_failed_start_leaves_the_flood_unpaused_and_the_next_flood_tries_again() {
    let mut h = H::ready();
    flood(&mut h);
    h.reply(true, &["80 24 off"]);
    let e = hidden(&mut h, HiddenEvent::Failed);
    assert!(cmds(&e).is_empty(), "never paused: {e:?}");
    // The unpaused path: over after 150 ms without output, no `continue`.
    assert_eq!(bundles(&h.tick()), [(PaneId(0), 0, false)]);
    h.advance(150);
    let mut e = h.answer_resync(PaneId(0), &["frame"], false);
    e.extend(h.drained());
    assert_eq!(bundles(&e), [(PaneId(0), 10_000, false)]);
    assert!(hidden_ops(&e).is_empty(), "nothing to stop");
    h.answer_resync(PaneId(0), &["final"], false);
    h.drained();
    h.advance(1000);
    let (_, e) = flood(&mut h);
    assert_eq!(cmds(&e), [SIZE_CMD]);
}

#[test]
fn a_size_tmux_refuses_or_garbles_starts_nothing() {
    for answer in [(false, "no current session"), (true, "80 x on")] {
        let mut h = H::ready();
        flood(&mut h);
        let e = h.reply(answer.0, &[answer.1]);
        assert!(hidden_ops(&e).is_empty(), "{answer:?}: {e:?}");
        assert!(cmds(&e).is_empty(), "{answer:?}: {e:?}");
    }
}

#[test]
fn a_person_listed_before_the_size_arrives_needs_no_hidden_client() {
    let mut h = H::ready();
    // A person attaches; the listing is still unanswered when the flood
    // starts and asks for the size.
    h.ev(Event::ClientSessionChanged {
        client: Bytes::from_static(b"/dev/pts/7"),
        session: SessionId(0),
        name: Bytes::from_static(b"s"),
    });
    let (_, e) = flood(&mut h);
    assert_eq!(cmds(&e), [SIZE_CMD]);
    h.clients(&[7]);
    let e = h.reply(true, &["80 24 on"]);
    assert!(hidden_ops(&e).is_empty(), "{e:?}");
    assert_eq!(h.m.attached_clients(), 1);
}

#[test]
fn a_hidden_client_that_dies_mid_flood_lets_the_pane_continue() {
    let mut h = H::ready();
    flood_with_hidden_client(&mut h);
    let e = hidden(&mut h, HiddenEvent::Exited);
    let c = cmds(&e);
    assert_eq!(c[0], UNNAME_CMD, "{e:?}");
    assert_eq!(c[1], "refresh-client -A '%0:continue'", "{e:?}");
    assert!(c[2].starts_with("list-clients"), "{e:?}");
    h.reply(true, &[]);
    h.reply(true, &[]);
    h.clients(&[]);
    // Unpaused again: the flood ends after 150 ms without output, and its
    // resync has no `continue` (the pane runs already).
    assert_eq!(bundles(&h.tick()), [(PaneId(0), 0, false)]);
    h.advance(150);
    let mut e = h.answer_resync(PaneId(0), &["frame"], false);
    e.extend(h.drained());
    assert_eq!(bundles(&e), [(PaneId(0), 10_000, false)]);
    assert!(hidden_ops(&e).is_empty());
}

#[test]
fn a_second_flooding_pane_is_paused_at_once_while_the_client_is_attached() {
    let mut h = H::ready();
    h.layout(0, TWO_PANES);
    for (pane, _, _) in bundles(&h.drained()) {
        h.answer_resync(pane, &["$ "], false);
    }
    h.drained();
    flood_with_hidden_client(&mut h);
    let mut paused = false;
    for _ in 0..100 {
        let e = h.output(1, &[b'x'; 64 << 10]);
        if !cmds(&e).is_empty() {
            assert_eq!(cmds(&e), ["refresh-client -A '%1:pause'"]);
            paused = true;
            break;
        }
        h.drained();
        h.advance(10);
    }
    assert!(paused, "pane %1 never flooded");
}

#[test]
fn shutdown_stops_the_hidden_client() {
    let mut h = H::ready();
    flood_with_hidden_client(&mut h);
    let e = h.input(Input::Shutdown);
    assert_eq!(hidden_ops(&e), [HiddenOp::Stop]);
}

#[test]
fn a_flood_while_the_last_client_leaves_gets_the_next_one_after_it_exited() {
    let mut h = H::ready();
    flood_with_hidden_client(&mut h);
    h.tick();
    h.answer_resync(PaneId(0), &["still"], false);
    h.drained();
    h.advance(50);
    h.tick();
    let mut e = h.answer_resync(PaneId(0), &["still"], false);
    e.extend(h.drained());
    assert_eq!(hidden_ops(&e), [HiddenOp::Stop]);
    h.answer_resync(PaneId(0), &["final"], true);
    h.drained();
    h.advance(1000);
    // It has not exited yet: at most one per session, so no new one now.
    let (_, e) = flood(&mut h);
    assert!(cmds(&e).is_empty(), "{e:?}");
    let e = hidden(&mut h, HiddenEvent::Exited);
    assert_eq!(cmds(&e)[0], UNNAME_CMD, "{e:?}");
    assert_eq!(cmds(&e)[1], SIZE_CMD, "{e:?}");
    assert!(cmds(&e)[2].starts_with("list-clients"), "{e:?}");
}
