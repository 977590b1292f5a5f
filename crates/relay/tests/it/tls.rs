//! Issue 9: the relay serving TLS itself (`--tls-cert/--tls-key`), with a
//! certificate from a CA made in the test. A real rustls client is served
//! over https; a client that opens TCP and stalls in the handshake is cut
//! at the handshake deadline without holding up anyone else; hyper's
//! header timeout still cuts a slow request head after the handshake; a
//! plain-HTTP client on the TLS port gets no HTTP answer.

use std::time::{Duration, Instant};

use relay::tls::TlsFiles;
use testkit::tls::TestCa;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Db, TestRelay};

/// Reads until the relay closes the connection (EOF, or a TLS stream
/// ending without close_notify); panics if it stays open for `limit`.
async fn read_until_closed(s: &mut (impl AsyncRead + Unpin), limit: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    let _ = tokio::time::timeout(limit, s.read_to_end(&mut got))
        .await
        .expect("the relay closes the connection");
    got
}

#[tokio::test]
async fn issue_9_relay_serves_tls_and_cuts_stalled_handshakes() {
    let pki = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new(pki.path(), "relay-ca").expect("CA");
    let cert = ca.server_cert("relay", &["127.0.0.1"]).expect("cert");
    let deadline = Duration::from_millis(500);
    let relay = TestRelay::start_with(&Db::Sqlite, |c| {
        c.tls = Some(TlsFiles {
            cert: cert.cert.clone(),
            key: cert.key.clone(),
        });
        c.limits.tls_handshake_timeout = deadline;
        c.limits.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let addr = relay.addr();
    assert!(relay.handle().public_url().starts_with("https://"));
    assert!(relay.handle().runner_ws_url().starts_with("wss://"));
    let client = ca.client_config().expect("client config");

    // Two stalled clients: one sends nothing, one half a ClientHello.
    let t0 = Instant::now();
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let mut partial = TcpStream::connect(addr).await.expect("connect");
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .expect("partial hello");

    // Meanwhile a real client is served over https.
    let mut tls = testkit::tls::connect(addr, "127.0.0.1", client.clone())
        .await
        .expect("TLS handshake with the test CA");
    tls.write_all(b"GET /api/me HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
        .await
        .expect("request");
    let got = read_until_closed(&mut tls, Duration::from_secs(10)).await;
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 401"),
        "{}",
        String::from_utf8_lossy(&got)
    );

    // The stalled handshakes are cut at the deadline.
    for s in [&mut silent, &mut partial] {
        let got = read_until_closed(s, Duration::from_secs(5)).await;
        assert!(got.is_empty() || got[0] == 0x15, "nothing but an alert");
    }
    let took = t0.elapsed();
    println!("stalled TLS handshakes cut after {took:?}");
    assert!(took >= deadline, "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // After the handshake, hyper's header timeout applies as on TCP.
    let mut slow = testkit::tls::connect(addr, "127.0.0.1", client)
        .await
        .expect("TLS handshake");
    slow.write_all(b"GET /api/me HTTP/1.1\r\n")
        .await
        .expect("half a head");
    let got = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(
        !String::from_utf8_lossy(&got).starts_with("HTTP/1.1 2"),
        "never served"
    );

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(addr).await.expect("connect");
    plain
        .write_all(b"GET /api/me HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .expect("request");
    let got = read_until_closed(&mut plain, Duration::from_secs(5)).await;
    assert!(
        !got.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
}

#[tokio::test]
async fn issue_9_relay_refuses_to_start_with_a_bad_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = relay::Config::new(
        "127.0.0.1:0".parse().expect("addr"),
        dir.path().join("data"),
    );
    config.tls = Some(TlsFiles {
        cert: dir.path().join("missing.pem"),
        key: dir.path().join("missing.key.pem"),
    });
    let err = relay::Relay::start(config)
        .await
        .err()
        .expect("a missing certificate stops the start");
    assert!(matches!(err, relay::RelayError::Tls(_)), "{err}");
    assert!(
        format!("{:#}", anyhow::Error::from(err)).contains("missing.pem"),
        "names the file"
    );
}
