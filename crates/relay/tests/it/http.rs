//! The page and the HTTP API over a real TCP connection: security headers,
//! `index.html` for `/` and `/s/{id}`, 503 when the page is not built, and
//! the API refusing requests without a login.

use relay::{Config, Relay};

use crate::harness::*;

#[tokio::test]
async fn page_is_served_with_strict_headers() {
    let relay = TestRelay::start(&Db::Sqlite).await;
    for path in ["/", "/s/42"] {
        let (status, headers, body) = http(relay.addr(), "GET", path, &[]).await;
        assert_eq!(status, 200, "{path}");
        assert!(String::from_utf8_lossy(&body).contains("<script src=\"/app.js\">"));
        let csp = header_value(&headers, "content-security-policy").expect("CSP header");
        assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"), "{csp}");
        assert!(!csp.contains("script-src 'self' 'unsafe-inline'"), "{csp}");
        assert_eq!(header_value(&headers, "x-content-type-options"), Some("nosniff"));
    }
    let (status, headers, body) = http(relay.addr(), "GET", "/app.js", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body, b"console.log(1)");
    assert!(header_value(&headers, "content-type").is_some_and(|t| t.contains("javascript")));
    let (status, _, _) = http(relay.addr(), "GET", "/nope.js", &[]).await;
    assert_eq!(status, 404);
    // Path traversal stays inside the web dir.
    let (status, _, body) = http(relay.addr(), "GET", "/../relay.db", &[]).await;
    assert!(status == 404 || status == 400, "{status}");
    assert!(!String::from_utf8_lossy(&body).contains("SQLite"));
}

#[tokio::test]
async fn unbuilt_page_answers_503_with_instructions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::new("127.0.0.1:0".parse().expect("addr"), dir.path().join("data"));
    config.database_url = format!("sqlite://{}", dir.path().join("r.db").display());
    config.web_dir = dir.path().join("missing");
    config.retention.interval = None;
    let relay = Relay::start(config).await.expect("start");
    let (status, _, body) = http(relay.local_addr(), "GET", "/", &[]).await;
    assert_eq!(status, 503);
    assert!(String::from_utf8_lossy(&body).contains("scripts/web-build"));
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn api_needs_a_login() {
    let relay = TestRelay::start(&Db::Sqlite).await;
    let (status, _, _) = http(relay.addr(), "GET", "/api/sessions", &[]).await;
    assert_eq!(status, 401);
    let (status, _, _) =
        http(relay.addr(), "POST", "/api/sessions/1/token", &[("x-requested-with", "tmux-bridge")]).await;
    assert_eq!(status, 401);
}
