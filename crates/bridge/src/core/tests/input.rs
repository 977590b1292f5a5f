//! Input from the relay: typed into panes of this session only; anything
//! else is refused with `unknown_pane` (issue 10) and never reaches tmux.

use super::*;
use crate::core::ErrorCode;

#[test]
fn input_for_a_pane_of_the_session_is_typed() {
    let mut h = H::ready();
    let e = h.relay(RelayMsg::Input {
        pane: PaneId(0),
        data: "ls\r".into(),
    });
    let c = cmds(&e);
    assert!(!c.is_empty());
    assert!(
        c.iter().all(|c| c.starts_with("send-keys -t '%0'")),
        "{c:?}"
    );
    assert!(texts(&e).is_empty());
}

#[test]
fn input_for_a_pane_outside_the_session_is_refused() {
    let mut h = H::ready();
    // %7 exists on the server (another session's pane), not in our model.
    let e = h.relay(RelayMsg::Input {
        pane: PaneId(7),
        data: "rm -rf ~\r".into(),
    });
    assert!(cmds(&e).is_empty(), "nothing reaches tmux: {e:?}");
    match texts(&e).as_slice() {
        [
            ToRelay::Error {
                generation: 1,
                code: ErrorCode::UnknownPane,
                message,
            },
        ] => {
            assert!(message.contains("%7"), "{message}");
            assert!(!message.contains("rm -rf"), "the data is not echoed");
        }
        other => panic!("expected one unknown_pane error, got {other:?}"),
    }
    assert_eq!(ErrorCode::UnknownPane.as_str(), "unknown_pane");
}

#[test]
fn input_for_a_pane_that_left_the_session_is_refused() {
    let mut h = H::ready();
    h.layout(0, TWO_PANES);
    h.drained();
    let typed = |h: &mut H| {
        let e = h.relay(RelayMsg::Input {
            pane: PaneId(1),
            data: "x".into(),
        });
        (cmds(&e).len(), texts(&e).len())
    };
    assert_eq!(typed(&mut h), (1, 0));
    // %1 closes (its layout no longer holds it).
    h.layout(0, ONE_PANE);
    assert_eq!(typed(&mut h), (0, 1));
}

#[test]
fn refused_input_without_a_connection_is_only_logged() {
    let mut h = H::ready();
    h.input(Input::RelayLost { generation: 1 });
    let e = h.relay(RelayMsg::Input {
        pane: PaneId(3),
        data: "x".into(),
    });
    assert!(e.is_empty(), "{e:?}");
}
