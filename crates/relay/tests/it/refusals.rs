//! What the relay refuses: bad, expired and wrong-type tokens, a bad
//! Origin, another user's session, malformed messages (close 4000),
//! out-of-range resizes and oversized messages.

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::*;
use crate::principal::*;

#[tokio::test]
async fn runner_handshake_needs_a_valid_runner_token() {
    let relay = TestRelay::start(&Db::Sqlite).await;
    let p = new_principal(&relay).await;
    assert_eq!(runner_socket(relay.addr(), None).await.err(), Some(401));
    assert_eq!(
        runner_socket(relay.addr(), Some("garbage")).await.err(),
        Some(401)
    );
    // A browser token is not a runner token.
    let btok = browser_token(&relay, &p, "1");
    assert_eq!(
        runner_socket(relay.addr(), Some(&btok)).await.err(),
        Some(401)
    );
    // A token signed with another key.
    let other = relay::auth::tokens::TokenKeys::new(&relay::auth::secret::Secret::generate());
    let forged = other
        .mint_runner(&p.user_id, &p.runner_id, &p.jti, now(), 3600)
        .expect("mint");
    assert_eq!(
        runner_socket(relay.addr(), Some(&forged)).await.err(),
        Some(401)
    );
    assert!(
        runner_socket(relay.addr(), Some(&p.runner_token))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn browser_handshake_checks_origin_token_and_session() {
    let relay = TestRelay::start(&Db::Sqlite).await;
    let a = new_principal(&relay).await;
    let b = new_principal(&relay).await;
    let ra = RunnerClient::connect(relay.addr(), &a.runner_token, &hello(&unique("idea"))).await;
    let rb = RunnerClient::connect(relay.addr(), &b.runner_token, &hello(&unique("idea"))).await;
    let tok_a = browser_token(&relay, &a, &ra.session_id);
    let origin = relay.origin();
    // Good.
    assert!(
        browser_socket(relay.addr(), &ra.session_id, &tok_a, &origin)
            .await
            .is_ok()
    );
    // Bad Origin.
    assert_eq!(
        browser_socket(relay.addr(), &ra.session_id, &tok_a, "http://evil.example")
            .await
            .err(),
        Some(403)
    );
    // A token for session A used on session B's URL.
    assert_eq!(
        browser_socket(relay.addr(), &rb.session_id, &tok_a, &origin)
            .await
            .err(),
        Some(403)
    );
    // User A's token naming user B's session: the session is not A's.
    let forged = browser_token(&relay, &a, &rb.session_id);
    assert_eq!(
        browser_socket(relay.addr(), &rb.session_id, &forged, &origin)
            .await
            .err(),
        Some(404)
    );
    // Expired, garbage, and a runner token used as a browser token.
    let expired = expired_browser_token(&relay, &a, &ra.session_id);
    assert_eq!(
        browser_socket(relay.addr(), &ra.session_id, &expired, &origin)
            .await
            .err(),
        Some(401)
    );
    assert_eq!(
        browser_socket(relay.addr(), &ra.session_id, "x.y.z", &origin)
            .await
            .err(),
        Some(401)
    );
    assert_eq!(
        browser_socket(relay.addr(), &ra.session_id, &a.runner_token, &origin)
            .await
            .err(),
        Some(401)
    );
}

#[tokio::test]
async fn malformed_runner_messages_close_with_4000() {
    let relay = TestRelay::start(&Db::Sqlite).await;
    let p = new_principal(&relay).await;
    let cases: Vec<(Message, &str)> = vec![
        (Message::Text("not json".into()), "malformed"),
        (Message::Text(r#"{"t":"bogus"}"#.into()), "malformed"),
        (
            Message::Binary(bytes::Bytes::from_static(b"ab")),
            "no channel prefix",
        ),
        (
            Message::Binary(protocol::runner::with_channel(CH, b"short")),
            "bad frame",
        ),
        (
            Message::Binary(protocol::runner::with_channel(CH, &[9u8; 40])),
            "bad frame",
        ),
        (
            Message::Binary(protocol::runner::with_channel(99, &batch(1, 1, 10))),
            "not open",
        ),
        (
            Message::Text(r#"{"t":"close","ch":99,"reason":"killed"}"#.into()),
            "not open",
        ),
    ];
    for (msg, want) in cases {
        let mut r =
            RunnerClient::connect(relay.addr(), &p.runner_token, &hello(&unique("idea"))).await;
        r.ws.send(msg).await.expect("send");
        let (code, reason) = wait_close(&mut r.ws).await.expect("close frame");
        assert_eq!(code, 4000, "{reason}");
        assert!(
            reason.contains(want),
            "reason {reason:?} should contain {want:?}"
        );
    }
    // A first message that is not hello.
    let mut ws = runner_socket(relay.addr(), Some(&p.runner_token))
        .await
        .expect("upgrade");
    ws.send(Message::Text(
        r#"{"t":"status","attached_clients":1}"#.into(),
    ))
    .await
    .expect("send");
    assert_eq!(wait_close(&mut ws).await.map(|c| c.0), Some(4000));
}

#[tokio::test]
async fn malformed_browser_messages_and_bad_resizes_close_with_4000() {
    let relay = TestRelay::start(&Db::Sqlite).await;
    let p = new_principal(&relay).await;
    let r = RunnerClient::connect(relay.addr(), &p.runner_token, &hello(&unique("idea"))).await;
    let cases = [
        r#"{"t":"resize","cols":0,"rows":24}"#,
        r#"{"t":"resize","cols":1001,"rows":24}"#,
        r#"{"t":"resize","cols":65535,"rows":65535}"#,
        r#"{"t":"resize","cols":70000,"rows":1}"#,
        r#"{"t":"nope"}"#,
        "{",
        r#"{"t":"input","pane":"3","data":"x"}"#,
    ];
    for text in cases {
        // Browser tokens are single use (issue 10): one per socket.
        let tok = browser_token(&relay, &p, &r.session_id);
        let mut b =
            BrowserClient::connect(relay.addr(), &r.session_id, &tok, &relay.origin(), 0).await;
        b.ws.send(Message::Text(text.into())).await.expect("send");
        let (code, reason) = wait_close(&mut b.ws).await.expect("close frame");
        assert_eq!(code, 4000, "{text}: {reason}");
    }
    // Binary from a browser.
    let tok = browser_token(&relay, &p, &r.session_id);
    let mut b = BrowserClient::connect(relay.addr(), &r.session_id, &tok, &relay.origin(), 0).await;
    b.ws.send(Message::Binary(bytes::Bytes::from_static(b"x")))
        .await
        .expect("send");
    assert_eq!(wait_close(&mut b.ws).await.map(|c| c.0), Some(4000));
}

#[tokio::test]
async fn oversized_browser_message_closes_with_1009() {
    let relay = TestRelay::start(&Db::Sqlite).await;
    let p = new_principal(&relay).await;
    let r = RunnerClient::connect(relay.addr(), &p.runner_token, &hello(&unique("idea"))).await;
    let tok = browser_token(&relay, &p, &r.session_id);
    let mut b = BrowserClient::connect(relay.addr(), &r.session_id, &tok, &relay.origin(), 0).await;
    let big = format!(
        r#"{{"t":"input","pane":"%0","data":"{}"}}"#,
        "a".repeat(2 * 1024 * 1024)
    );
    // The relay may close while we are still writing; either way the close
    // code must say "too big".
    let _ = b.ws.send(Message::Text(big.into())).await;
    match wait_close(&mut b.ws).await {
        Some((code, _)) => assert_eq!(code, 1009),
        None => panic!("no close frame for an oversized message"),
    }
}

#[tokio::test]
async fn oversized_runner_message_closes_with_1009() {
    let relay = TestRelay::start(&Db::Sqlite).await;
    let p = new_principal(&relay).await;
    let mut r = RunnerClient::connect(relay.addr(), &p.runner_token, &hello(&unique("idea"))).await;
    // One byte over the 16 MiB limit (+ the channel prefix): a valid
    // header, then padding.
    let mut big = protocol::runner::with_channel(CH, &batch(1, 1, 10)).to_vec();
    big.resize(16 * 1024 * 1024 + 4 + 1, 0);
    let _ = r.ws.send(Message::Binary(big.into())).await;
    assert_eq!(wait_close(&mut r.ws).await.map(|c| c.0), Some(1009));
    // Nothing of it was stored.
    assert_eq!(
        relay
            .handle()
            .store()
            .last_seq(r.id())
            .await
            .expect("last_seq"),
        0
    );
}
