//! Round trips and exact JSON shapes of the control messages.

use super::*;

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

#[test]
fn browser_messages_parse() {
    let m: BrowserToRelay = serde_json::from_str(r#"{"t":"hello","last_seq":0}"#).expect("hello");
    assert_eq!(
        m,
        BrowserToRelay::Hello {
            last_seq: 0,
            epoch: None
        }
    );
    let m: BrowserToRelay =
        serde_json::from_str(r#"{"t":"hello","last_seq":7,"epoch":"e1"}"#).expect("hello");
    assert_eq!(
        m,
        BrowserToRelay::Hello {
            last_seq: 7,
            epoch: Some("e1".into())
        }
    );
    let m: BrowserToRelay =
        serde_json::from_str(r#"{"t":"resize","cols":80,"rows":24}"#).expect("resize");
    assert_eq!(m, BrowserToRelay::Resize { cols: 80, rows: 24 });
}

#[test]
fn unknown_type_and_bad_pane_are_errors() {
    assert!(serde_json::from_str::<BrowserToRelay>(r#"{"t":"nope"}"#).is_err());
    assert!(
        serde_json::from_str::<BrowserToRelay>(r#"{"t":"input","pane":"3","data":""}"#).is_err()
    );
    // A runner may not send browser messages and vice versa.
    assert!(
        serde_json::from_str::<crate::runner::RunnerMsg>(r#"{"t":"hello","last_seq":0}"#).is_err()
    );
    // 65535 fits u16 but is refused by validation; 70000 does not parse.
    assert!(
        serde_json::from_str::<BrowserToRelay>(r#"{"t":"resize","cols":70000,"rows":1}"#).is_err()
    );
}

#[test]
fn resize_bounds() {
    assert!(resize_is_valid(1, 1));
    assert!(resize_is_valid(1000, 1000));
    assert!(!resize_is_valid(0, 24));
    assert!(!resize_is_valid(80, 1001));
    assert!(!resize_is_valid(65535, 65535));
}

#[test]
fn bearer_subprotocol() {
    assert_eq!(
        bearer_from_subprotocols("tmux-bridge.v1, bearer.abc.def"),
        Some("abc.def")
    );
    assert_eq!(
        bearer_from_subprotocols("bearer.abc, tmux-bridge.v1"),
        Some("abc")
    );
    assert_eq!(bearer_from_subprotocols("bearer.abc"), None);
    assert_eq!(bearer_from_subprotocols("tmux-bridge.v1"), None);
    assert_eq!(
        bearer_from_subprotocols("tmux-bridge.v1, bearer.a, bearer.b"),
        None
    );
    assert_eq!(bearer_from_subprotocols("tmux-bridge.v1, bearer."), None);
}

#[test]
fn welcome_to_browser_shape() {
    let info = SessionInfo {
        id: "s1".into(),
        idea: "local".into(),
        slot: "primary".into(),
        tmux_session: "tb_local_primary".into(),
        attach: "tmux attach".into(),
        host: "h".into(),
        runner_online: true,
        head_seq: 9,
    };
    let text = json(&RelayToBrowser::Welcome {
        session: info.clone(),
        head_seq: 9,
        runner_online: true,
        read_only: false,
        features: Vec::new(),
        epoch: String::new(),
        reset: false,
    });
    let v: serde_json::Value = serde_json::from_str(&text).expect("valid json");
    assert_eq!(v["t"], "welcome");
    assert_eq!(v["session"]["id"], "s1");
    assert_eq!(v["head_seq"], 9);
    // An owner's welcome of a runner without features is protocol 1's shape.
    assert!(
        v.get("read_only").is_none()
            && v.get("features").is_none()
            && v.get("epoch").is_none()
            && v.get("reset").is_none(),
        "{text}"
    );
    let shared = json(&RelayToBrowser::Welcome {
        session: info,
        head_seq: 9,
        runner_online: true,
        read_only: true,
        features: vec!["keys".into()],
        epoch: "e2".into(),
        reset: true,
    });
    assert!(
        shared.contains(r#""read_only":true,"features":["keys"],"epoch":"e2","reset":true"#),
        "{shared}"
    );
    assert_eq!(
        json(&RelayToBrowser::Epoch {
            epoch: "e3".into(),
            reset: false
        }),
        r#"{"t":"epoch","epoch":"e3"}"#
    );
    assert_eq!(
        json(&RelayToBrowser::Runner { online: false }),
        r#"{"t":"runner","online":false}"#
    );
}

#[test]
fn page_messages_match_protocol_doc() {
    let parse = |t: &str| serde_json::from_str::<BrowserToRelay>(t).expect(t);
    assert_eq!(
        parse(r#"{"t":"view","visible":true,"fit":false}"#),
        BrowserToRelay::View {
            visible: true,
            fit: false
        }
    );
    assert_eq!(
        parse(r#"{"t":"keys","pane":"%3","keys":["C-b","c"]}"#),
        BrowserToRelay::Keys {
            pane: PaneId(3),
            keys: vec!["C-b".into(), "c".into()]
        }
    );
    assert_eq!(
        parse(r#"{"t":"tmux","op":"split","pane":"%3","direction":"right"}"#),
        BrowserToRelay::Tmux(TmuxOp::Split {
            pane: PaneId(3),
            direction: SplitDirection::Right
        })
    );
    assert_eq!(
        parse(r#"{"t":"tmux","op":"new_window"}"#),
        BrowserToRelay::Tmux(TmuxOp::NewWindow)
    );
    let op = TmuxOp::ResizePane {
        pane: PaneId(1),
        dx: -3,
        dy: 0,
    };
    assert_eq!(
        json(&BrowserToRelay::Tmux(op.clone())),
        r#"{"t":"tmux","op":"resize_pane","pane":"%1","dx":-3,"dy":0}"#
    );
    assert_eq!(op.pane(), Some(PaneId(1)));
    assert!(serde_json::from_str::<BrowserToRelay>(r#"{"t":"tmux","op":"kill_server"}"#).is_err());
    assert!(
        !TmuxOp::RenameWindow {
            window: tmux_cc::WindowId(1),
            name: "a\nb".into()
        }
        .is_valid()
    );
    assert!(
        !TmuxOp::RenameWindow {
            window: tmux_cc::WindowId(1),
            name: String::new()
        }
        .is_valid()
    );
    assert!(
        TmuxOp::RenameWindow {
            window: tmux_cc::WindowId(1),
            name: "logs".into()
        }
        .is_valid()
    );
    assert!(keys_are_valid(&["C-b".into(), "é".into()]));
    assert!(!keys_are_valid(&[]));
    assert!(!keys_are_valid(&["\u{1b}[A".into()]));
    assert!(!keys_are_valid(&vec!["a".to_owned(); MAX_KEYS + 1]));
    assert_eq!(
        json(&RelayToBrowser::Presence {
            viewers: vec![Viewer {
                name: "alice".into(),
                read_only: false,
                tabs: 2
            }],
            attached_clients: 1
        }),
        r#"{"t":"presence","viewers":[{"name":"alice","read_only":false,"tabs":2}],"attached_clients":1}"#
    );
}
