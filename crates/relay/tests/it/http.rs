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
        assert!(
            csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"),
            "{csp}"
        );
        assert!(!csp.contains("script-src 'self' 'unsafe-inline'"), "{csp}");
        assert_eq!(
            header_value(&headers, "x-content-type-options"),
            Some("nosniff")
        );
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
    let mut config = Config::new(
        "127.0.0.1:0".parse().expect("addr"),
        dir.path().join("data"),
    );
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
    let (status, _, _) = http(
        relay.addr(),
        "POST",
        "/api/sessions/1/token",
        &[("x-requested-with", "tmux-bridge")],
    )
    .await;
    assert_eq!(status, 401);
}

/// Logs in through the one-time link; returns the `Cookie` header value.
async fn login(relay: &TestRelay, user_id: &str) -> String {
    let link = relay
        .handle()
        .auth()
        .login_link(user_id)
        .await
        .expect("login link");
    let path = link
        .strip_prefix(&relay.origin())
        .expect("link on the relay");
    let (status, headers, _) = http(relay.addr(), "GET", path, &[]).await;
    assert!((300..400).contains(&status), "login redirects: {status}");
    let set = header_value(&headers, "set-cookie").expect("login sets a cookie");
    set.split(';').next().expect("cookie pair").to_owned()
}

#[tokio::test]
async fn logged_in_page_lists_its_sessions_and_mints_tokens_for_them_only() {
    let relay = TestRelay::start(&Db::Sqlite).await;
    let a = crate::principal::new_principal(&relay).await;
    let b = crate::principal::new_principal(&relay).await;
    let ha = hello(&unique("idea"));
    let ra = RunnerClient::connect(relay.addr(), &a.runner_token, &ha).await;
    let rb = RunnerClient::connect(relay.addr(), &b.runner_token, &hello(&unique("idea"))).await;
    let cookie = login(&relay, &a.user_id).await;

    let (status, headers, body) =
        http(relay.addr(), "GET", "/api/sessions", &[("cookie", &cookie)]).await;
    assert_eq!(status, 200);
    assert!(header_value(&headers, "content-type").is_some_and(|t| t.contains("json")));
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let list = v["sessions"].as_array().expect("sessions array");
    assert_eq!(list.len(), 1, "only A's session: {v}");
    assert_eq!(list[0]["id"], ra.session_id.as_str());
    let o = testkit::runner::open(CH, &ha.idea, &ha.slot, &ha.instance);
    assert_eq!(list[0]["tmux_session"], o.tmux_session.as_str());
    assert_eq!(list[0]["attach"], o.attach.as_str());
    assert_eq!(list[0]["runner_online"], true);
    assert_eq!(list[0]["state"], "live");
    assert_eq!(list[0]["host"], "test-host");

    let origin = relay.origin();
    let post = |sid: String, hdrs: Vec<(&'static str, String)>| {
        let addr = relay.addr();
        async move {
            let h: Vec<(&str, &str)> = hdrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            http(addr, "POST", &format!("/api/sessions/{sid}/token"), &h).await
        }
    };
    let good = vec![
        ("cookie", cookie.clone()),
        ("x-requested-with", "tmux-bridge".to_owned()),
        ("origin", origin.clone()),
    ];
    let (status, headers, body) = post(ra.session_id.clone(), good.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(header_value(&headers, "cache-control"), Some("no-store"));
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let token = v["token"].as_str().expect("token").to_owned();
    assert_eq!(v["expires_in"], 300);
    // The token opens A's session.
    BrowserClient::connect(relay.addr(), &ra.session_id, &token, &origin, 0).await;
    // B's session is answered like a missing one.
    let (status, _, body) = post(rb.session_id.clone(), good.clone()).await;
    assert_eq!(status, 404);
    assert!(!String::from_utf8_lossy(&body).contains("tb_"));
    let (status, _, _) = post("999999".into(), good.clone()).await;
    assert_eq!(status, 404);
    // CSRF guards: no X-Requested-With, or a foreign Origin.
    let (status, _, _) = post(
        ra.session_id.clone(),
        vec![("cookie", cookie.clone()), ("origin", origin.clone())],
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = post(
        ra.session_id.clone(),
        vec![
            ("cookie", cookie.clone()),
            ("x-requested-with", "x".into()),
            ("origin", "http://evil.example".into()),
        ],
    )
    .await;
    assert_eq!(status, 403);
}

/// `tmux-relay serve` configured by environment variables: prints its URL,
/// serves, and exits 0 on SIGTERM after closing sockets.
#[tokio::test]
async fn the_binary_serves_and_stops_on_sigterm() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let web = web_dir_with_index(dir.path());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tmux-relay"))
        .arg("serve")
        .env("TMUX_RELAY_LISTEN", "127.0.0.1:0")
        .env("TMUX_RELAY_DATA_DIR", dir.path().join("data"))
        .env("TMUX_RELAY_WEB_DIR", &web)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn tmux-relay");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(STEP, lines.next_line())
        .await
        .expect("URL in time")
        .expect("read")
        .expect("a line");
    let url = line
        .strip_prefix("tmux-relay listening on ")
        .expect("listening line")
        .to_owned();
    let addr: std::net::SocketAddr = url
        .strip_prefix("http://")
        .expect("http url")
        .parse()
        .expect("addr");
    let (status, _, _) = http(addr, "GET", "/", &[]).await;
    assert_eq!(status, 200);
    assert!(
        dir.path().join("data/tmux-relay.db").exists(),
        "default SQLite file in the data dir"
    );
    let pid = child.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(STEP, child.wait())
        .await
        .expect("exit in time")
        .expect("wait");
    assert!(status.success(), "{status:?}");
}

/// Issue 14, item 11: the page built into the binary (no web dir
/// configured) is served with hashed names cached as immutable, an index
/// that is revalidated, and the build's brotli and gzip copies to browsers
/// that accept them. Needs web/dist (scripts/web-build; scripts/test
/// builds it first).
#[tokio::test]
async fn issue_14_the_page_in_the_binary_is_compressed_and_cached() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::new(
        "127.0.0.1:0".parse().expect("addr"),
        dir.path().join("data"),
    );
    config.database_url = format!("sqlite://{}", dir.path().join("r.db").display());
    config.retention.interval = None;
    assert!(
        config.web_dir.as_os_str().is_empty(),
        "the default is the page in the binary"
    );
    let relay = Relay::start(config).await.expect("start");
    let addr = relay.local_addr();
    let (status, headers, body) = http(addr, "GET", "/", &[]).await;
    assert_eq!(status, 200, "web/dist must be built (scripts/web-build)");
    assert_eq!(header_value(&headers, "cache-control"), Some("no-cache"));
    let html = String::from_utf8_lossy(&body).to_string();
    let js = html
        .split('"')
        .find(|s| s.starts_with("/app-") && s.ends_with(".js"))
        .expect("a hashed app.js in index.html")
        .to_owned();
    let css = html
        .split('"')
        .find(|s| s.starts_with("/style-") && s.ends_with(".css"))
        .expect("a hashed stylesheet in index.html")
        .to_owned();
    // An unchanged index answers 304 to its ETag.
    let etag = header_value(&headers, "etag").expect("etag").to_owned();
    let (status, _, _) = http(addr, "GET", "/", &[("if-none-match", &etag)]).await;
    assert_eq!(status, 304);

    let (status, plain_headers, plain) = http(addr, "GET", &js, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(header_value(&plain_headers, "content-encoding"), None);
    assert_eq!(
        header_value(&plain_headers, "cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    for (accept, encoding) in [("gzip, deflate, br", "br"), ("gzip", "gzip")] {
        let (status, headers, body) = http(addr, "GET", &js, &[("accept-encoding", accept)]).await;
        assert_eq!(status, 200);
        assert_eq!(header_value(&headers, "content-encoding"), Some(encoding));
        assert_eq!(header_value(&headers, "vary"), Some("accept-encoding"));
        assert!(
            body.len() * 3 < plain.len(),
            "{encoding}: {} bytes of {}",
            body.len(),
            plain.len()
        );
    }
    let (status, headers, _) = http(addr, "GET", &css, &[("accept-encoding", "br")]).await;
    assert_eq!(status, 200);
    assert!(header_value(&headers, "content-type").is_some_and(|t| t.starts_with("text/css")));
    // The precompressed copies are not addressable themselves.
    let (status, _, _) = http(addr, "GET", &format!("{js}.br"), &[]).await;
    assert_eq!(status, 404);
    relay.shutdown().await.expect("shutdown");
}
