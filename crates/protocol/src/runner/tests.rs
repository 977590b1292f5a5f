//! The runner messages as docs/protocol.md §4 shows them.

use super::*;
use serde_json::json;

fn relay(v: serde_json::Value) -> RelayMsg {
    serde_json::from_value(v).expect("relay message")
}

fn runner(v: serde_json::Value) -> RunnerMsg {
    serde_json::from_value(v).expect("runner message")
}

#[test]
fn hello_and_status_as_documented() {
    let m = runner(json!({"t":"hello","v":2,"host":"laptop","version":"0.2.0",
        "tmux_version":"3.3a","started_at":1733400000000u64}));
    let RunnerMsg::Hello(h) = m else {
        panic!("not a hello: {m:?}")
    };
    assert_eq!((h.v, h.host.as_str(), h.features.len()), (2, "laptop", 0));
    let m = runner(json!({"t":"status","uptime_s":5,"load":[0.1,0.2,0.3],
        "tmux_version":"3.3a","sessions":[{"ch":1,"attached_clients":1}]}));
    assert!(
        matches!(m, RunnerMsg::Status { uptime_s: 5, ref sessions, .. } if sessions.len() == 1)
    );
}

#[test]
fn open_close_result_round_trip() {
    let open = json!({"t":"open","ch":1,"idea":"local","slot":"primary",
        "instance":"u-1","tmux_session":"tb_local__primary","attach":"tmux -L x attach -t '=tb_local__primary'"});
    let m = runner(open.clone());
    assert_eq!(serde_json::to_value(&m).expect("encode"), open);
    let RunnerMsg::Open(o) = m else {
        panic!("not open")
    };
    assert_eq!(o.validate(), Ok(()));
    let m = runner(json!({"t":"close","ch":1,"reason":"server_exited"}));
    assert_eq!(
        m,
        RunnerMsg::Close {
            ch: 1,
            reason: CloseReason::ServerExited
        }
    );
    let ok = json!({"t":"result","id":"c1","ok":true,"ch":5});
    assert_eq!(
        serde_json::to_value(runner(ok.clone())).expect("encode"),
        ok
    );
    let failed = json!({"t":"result","id":"c1","ok":false,
        "error":{"code":"invalid_name","message":"bad"}});
    assert_eq!(
        serde_json::to_value(runner(failed.clone())).expect("encode"),
        failed
    );
}

#[test]
fn open_validation_refuses_what_4_4_refuses() {
    let good = Open {
        ch: 3,
        idea: "x".into(),
        slot: "1".into(),
        instance: "i".into(),
        tmux_session: "tb_x__1".into(),
        attach: String::new(),
    };
    assert!(good.validate().is_ok());
    let cases = [
        Open {
            ch: 0,
            ..good.clone()
        },
        Open {
            ch: RELAY_CHANNEL_BIT | 1,
            ..good.clone()
        },
        Open {
            idea: String::new(),
            ..good.clone()
        },
        Open {
            slot: "a\nb".into(),
            ..good.clone()
        },
        Open {
            instance: "i".repeat(MAX_OPEN_FIELD + 1),
            ..good.clone()
        },
        Open {
            attach: "tmux\u{1b}[2J".into(),
            ..good.clone()
        },
    ];
    for bad in cases {
        assert!(bad.validate().is_err(), "accepted {bad:?}");
    }
}

#[test]
fn relay_messages_as_documented() {
    let cases = [
        json!({"t":"welcome","runner_id":"r1","heartbeat_ms":2000}),
        json!({"t":"opened","ch":1,"session_id":"7","last_seq":42}),
        json!({"t":"open_failed","ch":1,"code":4003,"reason":"not yours"}),
        json!({"t":"ack","ch":1,"seq":9}),
        json!({"t":"input","ch":1,"pane":"%3","data":"ls\r"}),
        json!({"t":"resize","ch":1,"cols":120,"rows":40}),
        json!({"t":"viewers","ch":1,"count":2}),
        json!({"t":"snapshot_request","ch":1}),
        json!({"t":"keys","ch":1,"pane":"%3","keys":["C-b","c"]}),
        json!({"t":"tmux","ch":1,"op":"new_window"}),
        json!({"t":"command","id":"c1","op":"create_session","idea":"x","slot":"1","cwd":"/home/me/x"}),
        json!({"t":"command","id":"c2","op":"kill_session","idea":"x","slot":"1","instance":"u"}),
        json!({"t":"error","code":"unknown_pane","message":"no %9 here"}),
    ];
    for case in cases {
        let m = relay(case.clone());
        assert_eq!(serde_json::to_value(&m).expect("encode"), case, "{m:?}");
    }
}

#[test]
fn channel_prefix_round_trips_and_short_messages_are_refused() {
    let framed = with_channel(0x0102_0304, b"frame");
    assert_eq!(&framed[..4], &[4, 3, 2, 1]);
    let (ch, frame) = split_channel(&framed).expect("prefix");
    assert_eq!((ch, &frame[..]), (0x0102_0304, &b"frame"[..]));
    assert_eq!(
        split_channel(&Bytes::from_static(b"abc")),
        Err(NoChannel(3))
    );
}

#[test]
fn watch_and_activity_as_documented() {
    let m = relay(json!({"t":"watch","ch":3,"pane":"%3","idle_ms":30000}));
    assert_eq!(
        m,
        RelayMsg::Watch {
            ch: 3,
            pane: PaneId(3),
            idle_ms: Some(30_000)
        }
    );
    let m = relay(json!({"t":"watch","ch":3,"pane":"%3"}));
    assert!(matches!(m, RelayMsg::Watch { idle_ms: None, .. }));
    let m = relay(json!({"t":"watch","ch":3,"pane":"%3","idle_ms":null}));
    assert!(matches!(m, RelayMsg::Watch { idle_ms: None, .. }));
    let a = json!({"t":"activity","ch":3,"pane":"%3","idle":true,"at":1733400000000u64});
    let m = runner(a.clone());
    assert_eq!(serde_json::to_value(&m).expect("encode"), a);
}

#[test]
fn tunnel_messages_as_documented() {
    let open = json!({"t":"tunnel_open","stream":3,"job":"j-1","port":5173});
    let m = relay(open.clone());
    assert_eq!(
        m,
        RelayMsg::TunnelOpen {
            stream: 3,
            job: "j-1".into(),
            port: 5173
        }
    );
    assert_eq!(serde_json::to_value(&m).expect("encode"), open);
    let close = json!({"t":"tunnel_close","stream":3,"code":"port_not_detected"});
    assert_eq!(
        runner(close.clone()),
        RunnerMsg::TunnelClose {
            stream: 3,
            code: TunnelError::PortNotDetected
        }
    );
    assert_eq!(
        runner(json!({"t":"tunnel_credit","stream":3,"bytes":131072})),
        RunnerMsg::TunnelCredit {
            stream: 3,
            bytes: 131_072
        }
    );
    assert_eq!(
        relay(json!({"t":"tunnel_eof","stream":3})),
        RelayMsg::TunnelEof { stream: 3 }
    );
    // A port outside u16 or an unknown code is malformed.
    assert!(
        serde_json::from_value::<RelayMsg>(
            json!({"t":"tunnel_open","stream":3,"job":"j","port":70000})
        )
        .is_err()
    );
    assert!(
        serde_json::from_value::<RunnerMsg>(json!({"t":"tunnel_close","stream":3,"code":"nope"}))
            .is_err()
    );
}
