//! The page's keys and tmux actions (§5.1) through the core: to our own
//! client's key table on tmux 3.4+, resolved from `list-keys` before; panes
//! and windows outside the session refused with `unknown_pane`; tmux's
//! failures reported as `error` `tmux`.

use super::*;
use crate::core::ErrorCode;
use protocol::control::TmuxOp;

fn keys(k: &[&str]) -> Vec<String> {
    k.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn keys_go_to_our_client_key_table_on_tmux_3_4() {
    let mut h = H::ready();
    let e = h.relay(RelayMsg::Keys {
        pane: PaneId(0),
        keys: keys(&["C-b", "c"]),
    });
    // (The fabricated topology does not say which pane is active: the
    // pane is selected first.)
    assert_eq!(
        cmds(&e).last().map(String::as_str),
        Some(format!("send-keys -K -c 'client-{OWN_PID}' -- 'C-b' 'c'").as_str())
    );
    h.reply(true, &[]);
    // A failure comes back with tmux's message.
    let e = h.reply(false, &["unknown key: x"]);
    match texts(&e).as_slice() {
        [ToRelay::Error { code, message, .. }] => {
            assert_eq!(*code, ErrorCode::Tmux);
            assert!(message.contains("unknown key"), "{message}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn keys_and_actions_for_another_sessions_pane_are_refused() {
    let mut h = H::ready();
    let e = h.relay(RelayMsg::Keys {
        pane: PaneId(7),
        keys: keys(&["a"]),
    });
    assert!(cmds(&e).is_empty(), "{e:?}");
    assert!(matches!(
        texts(&e).as_slice(),
        [ToRelay::Error {
            code: ErrorCode::UnknownPane,
            ..
        }]
    ));
    let e = h.relay(RelayMsg::Tmux(TmuxOp::KillPane { pane: PaneId(7) }));
    assert!(cmds(&e).is_empty(), "{e:?}");
    let e = h.relay(RelayMsg::Tmux(TmuxOp::SelectWindow {
        window: WindowId(9),
    }));
    assert!(cmds(&e).is_empty(), "{e:?}");
    let e = h.relay(RelayMsg::Tmux(TmuxOp::Split {
        pane: PaneId(0),
        direction: protocol::control::SplitDirection::Right,
    }));
    assert_eq!(cmds(&e), ["split-window -h -t '%0'"]);
}

#[test]
fn keys_before_3_4_are_resolved_from_list_keys() {
    let mut h = H::with(CoreConfig {
        keys_via_client: false,
        ..CoreConfig::default()
    });
    let e = h.input(Input::Start);
    assert_eq!(cmds(&e)[1], "list-keys");
    h.clients(&[]);
    h.reply(true, &["bind-key -T prefix c new-window"]);
    let e = h.ev(Event::SessionChanged {
        session: SessionId(0),
        name: Bytes::from_static(b"s"),
    });
    assert!(cmds(&e)[0].starts_with("list-windows"), "{e:?}");
    h.reply(true, &[&format!("@0 0 {ONE_PANE} {ONE_PANE} * 1 shell")]);
    h.drained();
    h.answer_resync(PaneId(0), &["$ "], false);
    let e = h.relay(RelayMsg::Keys {
        pane: PaneId(0),
        keys: keys(&["C-b", "c", "x"]),
    });
    assert_eq!(cmds(&e)[1..], ["new-window", "send-keys -t '$0' -- 'x'"]);
}
