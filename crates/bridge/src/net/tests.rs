use super::*;

#[test]
fn targets_and_cleartext_refusal() {
    let t = target("https://relay.example", false).expect("https");
    assert_eq!(
        (t.tls, t.host.as_str(), t.port),
        (true, "relay.example", 443)
    );
    let t = target("wss://relay.example:8443/api/runner/ws", false).expect("wss");
    assert_eq!((t.tls, t.port), (true, 8443));
    for ok in [
        "http://127.0.0.1:8417",
        "ws://localhost:1/x",
        "http://[::1]:8417",
        "http://127.1.2.3",
        "http://app.localhost",
    ] {
        assert!(target(ok, false).is_ok(), "{ok}");
    }
    assert!(matches!(
        target("http://relay.example:8417", false),
        Err(NetError::Cleartext { ref host }) if host == "relay.example"
    ));
    assert!(matches!(
        target("ws://10.0.0.5/api/runner/ws", false),
        Err(NetError::Cleartext { .. })
    ));
    assert!(target("http://relay.example:8417", true).is_ok());
    for bad in [
        "ftp://x",
        "relay.example",
        "https://user:pw@relay.example",
        "https://relay.example/?token=x",
    ] {
        assert!(
            matches!(target(bad, false), Err(NetError::BadUrl { .. })),
            "{bad}"
        );
    }
}

#[test]
fn definite_errors() {
    let rejected = NetError::Rejected {
        status: StatusCode::UNAUTHORIZED,
    };
    assert!(rejected.is_definite());
    assert!(crate::config::is_definite_rejection(&rejected.to_string()));
    assert!(!NetError::Refused { host: "h".into() }.is_definite());
}

#[test]
fn rustls_errors_are_named() {
    let e = from_rustls(
        "h",
        &rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
    );
    assert!(matches!(e, NetError::Untrusted { .. }));
    assert!(e.to_string().contains("--ca-file"));
    let e = from_rustls(
        "h",
        &rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
    );
    assert!(matches!(e, NetError::NameMismatch { .. }));
    // Wrapped in io::Error the way tokio-rustls returns it.
    let io = std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
    );
    assert!(matches!(classify("h", &io), NetError::Untrusted { .. }));
    // And that io::Error in another, the way hyper-rustls returns it.
    let io = std::io::Error::other(io);
    assert!(matches!(classify("h", &io), NetError::Untrusted { .. }));
    let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    assert!(matches!(classify("h", &refused), NetError::Refused { .. }));
}

#[test]
fn ca_file_errors_are_plain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = TlsOptions {
        ca_file: Some(dir.path().join("nope.pem")),
        insecure: false,
    };
    assert!(matches!(
        missing.client_config(),
        Err(NetError::CaFile { .. })
    ));
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let garbage = TlsOptions {
        ca_file: Some(garbage),
        insecure: false,
    };
    assert!(matches!(
        garbage.client_config(),
        Err(NetError::CaFile { .. })
    ));
    assert!(TlsOptions::default().client_config().is_ok());
}

#[tokio::test]
async fn dns_and_refused_are_named() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let tls = TlsOptions::default();
    let err = connect_ws(&format!("ws://127.0.0.1:{port}/x"), "t", &tls)
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, NetError::Refused { .. }), "{err}");
    let client = RelayClient::new(&format!("http://127.0.0.1:{port}"), &tls).expect("client");
    let err = client.get("/api/x", None).await.expect_err("refused");
    assert!(matches!(err, NetError::Refused { .. }), "{err}");
    // `.invalid` never resolves (RFC 6761).
    let err = connect_ws("wss://relay.invalid/x", "t", &tls)
        .await
        .expect_err("no such host");
    assert!(matches!(err, NetError::Dns { .. }), "{err}");
    let client = RelayClient::new("https://relay.invalid", &tls).expect("client");
    let err = client.get("/api/x", None).await.expect_err("no such host");
    assert!(matches!(err, NetError::Dns { .. }), "{err}");
}
