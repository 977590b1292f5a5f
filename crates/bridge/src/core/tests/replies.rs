//! Reply correlation through the machine: replies go to the command that
//! asked, hooks' blocks (flags 0) are not ours, a failed command of a line
//! skips the rest of that line only.

use super::*;

#[test]
fn blocks_with_flags_0_do_not_consume_an_expectation() {
    let mut h = H::ready();
    let e = h.relay(RelayMsg::Input {
        pane: PaneId(0),
        data: "x".into(),
    });
    assert_eq!(cmds(&e).len(), 1, "{e:?}");
    let e = h.ev(Event::ClientDetached {
        client: Bytes::from_static(b"/dev/pts/1"),
    });
    assert!(cmds(&e)[0].starts_with("list-clients"), "{e:?}");
    // A hook's output arrives between them.
    let mut hook = reply(false, &["hook failed"]);
    hook.flags = 0;
    h.ev(Event::Reply(hook));
    h.reply(true, &[]); // send-keys
    let e = h.clients(&[7]);
    assert_eq!(
        texts(&e),
        [ToRelay::Status {
            attached_clients: 1
        }],
        "the clients reply reached the clients expectation"
    );
}

#[test]
fn a_failed_bundle_part_hands_the_next_reply_to_the_next_command() {
    let mut h = H::ready();
    h.ev(Event::Pause { pane: PaneId(0) });
    assert_eq!(bundles(&h.drained()).len(), 1);
    let e = h.ev(Event::ClientDetached {
        client: Bytes::from_static(b"/dev/pts/1"),
    });
    assert_eq!(cmds(&e).len(), 1);
    // The bundle's first command fails: its four other replies never come.
    h.reply(false, &["can't find pane: %0"]);
    let e = h.clients(&[8, 9]);
    assert_eq!(
        texts(&e),
        [ToRelay::Status {
            attached_clients: 2
        }]
    );
}

#[test]
fn a_reply_nobody_waited_for_is_dropped() {
    let mut h = H::ready();
    let e = h.clients(&[5]);
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(h.m.attached_clients(), 0);
}
