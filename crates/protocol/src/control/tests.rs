//! Round trips and exact JSON shapes of the control messages.

use super::*;

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

#[test]
fn runner_hello_matches_protocol_doc() {
    let text = r#"{"t":"hello","v":1,"idea":"local","slot":"primary","tmux_session":"tb_local_primary","attach":"tmux -L x attach -t '=tb_local_primary'","host":"laptop"}"#;
    let msg: RunnerToRelay = serde_json::from_str(text).expect("doc example parses");
    match &msg {
        RunnerToRelay::Hello(h) => {
            assert_eq!(h.v, 1);
            assert_eq!(h.tmux_session, "tb_local_primary");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(json(&msg), text);
}

#[test]
fn relay_to_runner_shapes() {
    assert_eq!(
        json(&RelayToRunner::Ack { seq: 7 }),
        r#"{"t":"ack","seq":7}"#
    );
    assert_eq!(
        json(&RelayToRunner::SnapshotRequest),
        r#"{"t":"snapshot_request"}"#
    );
    assert_eq!(
        json(&RelayToRunner::Welcome {
            session_id: "a".into(),
            last_seq: 3
        }),
        r#"{"t":"welcome","session_id":"a","last_seq":3}"#
    );
    assert_eq!(
        json(&RelayToRunner::Input {
            pane: PaneId(3),
            data: "ls\r".into()
        }),
        r#"{"t":"input","pane":"%3","data":"ls\r"}"#
    );
    assert_eq!(
        json(&RelayToRunner::Viewers { count: 2 }),
        r#"{"t":"viewers","count":2}"#
    );
}

#[test]
fn browser_messages_parse() {
    let m: BrowserToRelay = serde_json::from_str(r#"{"t":"hello","last_seq":0}"#).expect("hello");
    assert_eq!(m, BrowserToRelay::Hello { last_seq: 0 });
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
    assert!(serde_json::from_str::<RunnerToRelay>(r#"{"t":"hello","last_seq":0}"#).is_err());
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
    });
    let v: serde_json::Value = serde_json::from_str(&text).expect("valid json");
    assert_eq!(v["t"], "welcome");
    assert_eq!(v["session"]["id"], "s1");
    assert_eq!(v["head_seq"], 9);
    assert_eq!(
        json(&RelayToBrowser::Runner { online: false }),
        r#"{"t":"runner","online":false}"#
    );
}
