//! The operators' endpoints of issue 15 on a real relay: `/healthz`,
//! `/readyz` following the database, the Prometheus metrics counting
//! runners, sessions, browsers, frames and refusals, and the protection of
//! `/metrics` (a separate listener, or a bearer token).

use std::net::SocketAddr;
use std::time::Duration;

use relay::config::MetricsToken;

use crate::harness::*;
use crate::principal::*;

const TOKEN: &str = "metrics-token-0123456789abcdef";

/// The value of the sample `name` (with its labels, as rendered), if any.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

async fn scrape(addr: SocketAddr, headers: &[(&str, &str)]) -> String {
    let (status, hdrs, body) = http(addr, "GET", "/metrics", headers).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(
        header_value(&hdrs, "content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{hdrs:?}"
    );
    String::from_utf8(body).expect("UTF-8 metrics")
}

fn with_metrics_listener(c: &mut relay::Config) {
    c.metrics_listen = Some("127.0.0.1:0".parse().expect("addr"));
}

#[tokio::test]
async fn healthz_and_readyz_follow_the_database() {
    for db in databases() {
        let mut relay = TestRelay::start(&db).await;
        let (status, hdrs, body) = http(relay.addr(), "GET", "/healthz", &[]).await;
        assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]), "{db:?}");
        assert!(header_value(&hdrs, "content-type").is_some_and(|t| t.starts_with("text/plain")));

        let (status, _, body) = http(relay.addr(), "GET", "/readyz", &[]).await;
        let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(status, 200, "{db:?}: {v}");
        assert_eq!(v["ready"], true);
        assert_eq!(v["checks"][0]["name"], "database");
        assert_eq!(v["checks"][0]["ok"], true);

        // The database goes away (its pool closed): /readyz says so within
        // its one-second cache, naming the check; /healthz stays 200.
        relay.handle().store().close().await;
        let deadline = tokio::time::Instant::now() + STEP;
        let v = loop {
            let (status, _, body) = http(relay.addr(), "GET", "/readyz", &[]).await;
            if status == 503 {
                break serde_json::from_slice::<serde_json::Value>(&body).expect("JSON");
            }
            assert_eq!(status, 200);
            assert!(
                tokio::time::Instant::now() < deadline,
                "{db:?}: /readyz never failed"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(v["ready"], false, "{v}");
        assert_eq!(v["checks"][0]["name"], "database");
        assert_eq!(v["checks"][0]["ok"], false);
        assert_eq!(v["checks"][0]["error"], "query failed");
        let (status, _, _) = http(relay.addr(), "GET", "/healthz", &[]).await;
        assert_eq!(status, 200, "{db:?}: alive without its database");
        relay.stop().await;
    }
}

#[tokio::test]
async fn readyz_times_out_on_a_database_that_does_not_answer() {
    // Every pooled connection held by the test: the check cannot get one
    // within its deadline.
    let relay = TestRelay::start_with(&Db::Sqlite, |c| {
        c.limits.ready_timeout = Duration::from_millis(300);
        c.limits.db_acquire_timeout = Duration::from_secs(5);
    })
    .await;
    let store::Db::Sqlite(pool) = relay.handle().store().db() else {
        panic!("a SQLite store");
    };
    let mut held = Vec::new();
    while let Ok(Ok(c)) = tokio::time::timeout(Duration::from_millis(500), pool.acquire()).await {
        held.push(c);
    }
    assert!(!held.is_empty(), "took the pool's connections");
    let (status, _, body) = http(relay.addr(), "GET", "/readyz", &[]).await;
    let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["checks"][0]["error"], "timed out");
    drop(held);
}

#[tokio::test]
async fn metrics_count_runners_sessions_browsers_frames_and_refusals() {
    let relay = TestRelay::start_with(&Db::Sqlite, with_metrics_listener).await;
    let maddr = relay.handle().metrics_addr().expect("metrics listener");
    let before = scrape(maddr, &[]).await;
    for (name, want) in [
        ("tmux_relay_runners", 0.0),
        ("tmux_relay_sessions", 0.0),
        ("tmux_relay_browser_sockets", 0.0),
        ("tmux_relay_frames_in_total", 0.0),
        ("tmux_relay_frames_out_total", 0.0),
        ("tmux_relay_store_append_seconds_count", 0.0),
        ("tmux_relay_browser_snapshot_moves_total", 0.0),
        (
            "tmux_relay_rate_limited_total{limiter=\"pair_start_per_addr\"}",
            0.0,
        ),
    ] {
        assert_eq!(sample(&before, name), Some(want), "{name} in:\n{before}");
    }
    assert!(before.trim_end().ends_with("# EOF"));

    let p = new_principal(&relay).await;
    let idea = unique("metricsidea");
    let mut r = RunnerClient::connect(relay.addr(), &p.runner_token, &hello(&idea)).await;
    r.send(topology_batch(1, &[0])).await;
    r.wait_ack(1).await;
    r.send(batch(2, 4, 300)).await;
    r.wait_ack(4).await;
    let tok = browser_token(&relay, &p, &r.session_id);
    let mut b = BrowserClient::connect(relay.addr(), &r.session_id, &tok, &relay.origin(), 0).await;
    b.read_until(4).await;
    // Pairing starts from one address: the fourth within 5 minutes is
    // refused by its limiter.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let (status, _, _) = http(relay.addr(), "POST", "/api/pair/start", &[]).await;
        statuses.push(status);
    }
    assert_eq!(statuses, vec![200, 200, 200, 429]);

    let after = scrape(maddr, &[]).await;
    let get = |name: &str| sample(&after, name).unwrap_or_else(|| panic!("{name} in:\n{after}"));
    assert_eq!(get("tmux_relay_runners"), 1.0);
    assert_eq!(get("tmux_relay_sessions"), 1.0);
    assert_eq!(get("tmux_relay_browser_sockets"), 1.0);
    assert_eq!(get("tmux_relay_frames_in_total"), 2.0);
    let bytes_in = batch(2, 4, 300).len() + topology_batch(1, &[0]).len();
    assert_eq!(get("tmux_relay_bytes_in_total"), bytes_in as f64);
    assert_eq!(
        get("tmux_relay_frames_out_total"),
        2.0,
        "catch-up of both frames"
    );
    assert_eq!(get("tmux_relay_bytes_out_total"), bytes_in as f64);
    assert_eq!(get("tmux_relay_store_append_seconds_count"), 2.0);
    assert_eq!(
        get("tmux_relay_rate_limited_total{limiter=\"pair_start_per_addr\"}"),
        1.0
    );
    assert!(
        get("tmux_relay_http_responses_total{class=\"1xx\"}") >= 2.0,
        "two upgrades"
    );
    assert!(
        get("tmux_relay_http_responses_total{class=\"4xx\"}") >= 1.0,
        "the 429"
    );
    // Nothing names the account, its runner or its session.
    for word in [&p.user_id, &p.runner_id, &idea] {
        assert!(!after.contains(word.as_str()), "metrics name {word}");
    }
    assert!(
        !after.contains(&format!("\"{}\"", r.session_id)),
        "a label holds the session id"
    );

    // The browser leaves, then the runner: the gauges follow.
    drop(b);
    drop(r);
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let now = scrape(maddr, &[]).await;
        if sample(&now, "tmux_relay_runners") == Some(0.0)
            && sample(&now, "tmux_relay_sessions") == Some(0.0)
            && sample(&now, "tmux_relay_browser_sockets") == Some(0.0)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gauges stuck:\n{now}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn metrics_are_not_served_on_the_main_listener_without_a_token() {
    // Neither option: nowhere.
    let relay = TestRelay::start(&Db::Sqlite).await;
    let (status, _, body) = http(relay.addr(), "GET", "/metrics", &[]).await;
    assert_eq!(status, 404);
    assert!(!String::from_utf8_lossy(&body).contains("tmux_relay"));

    // A metrics listener: there only; it serves nothing but the
    // operators' endpoints.
    let relay = TestRelay::start_with(&Db::Sqlite, with_metrics_listener).await;
    let maddr = relay.handle().metrics_addr().expect("metrics listener");
    assert_ne!(maddr, relay.addr());
    let (status, _, _) = http(relay.addr(), "GET", "/metrics", &[]).await;
    assert_eq!(status, 404, "not on the public listener");
    scrape(maddr, &[]).await;
    for (path, want) in [
        ("/healthz", 200),
        ("/readyz", 200),
        ("/api/sessions", 404),
        ("/", 404),
        ("/api/runner/ws", 404),
    ] {
        let (status, _, _) = http(maddr, "GET", path, &[]).await;
        assert_eq!(status, want, "{path} on the metrics listener");
    }
}

#[tokio::test]
async fn metrics_with_a_token_answer_only_to_it() {
    let token = MetricsToken::new(TOKEN).expect("token");
    let relay = TestRelay::start_with(&Db::Sqlite, |c| {
        with_metrics_listener(c);
        c.metrics_token = Some(token);
    })
    .await;
    let maddr = relay.handle().metrics_addr().expect("metrics listener");
    let right = format!("Bearer {TOKEN}");
    let wrong = format!("Bearer {TOKEN}x");
    let short = format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]);
    for addr in [relay.addr(), maddr] {
        for headers in [
            vec![],
            vec![("authorization", wrong.as_str())],
            vec![("authorization", short.as_str())],
            vec![("authorization", "Basic bWV0cmljczp4")],
            vec![("cookie", "tb_login=whatever")],
        ] {
            let (status, hdrs, body) = http(addr, "GET", "/metrics", &headers).await;
            assert_eq!(status, 401, "{addr} {headers:?}");
            assert_eq!(header_value(&hdrs, "www-authenticate"), Some("Bearer"));
            assert!(!String::from_utf8_lossy(&body).contains("tmux_relay"));
        }
        let text = scrape(addr, &[("authorization", &right)]).await;
        assert!(text.contains("tmux_relay_runners"), "{text}");
    }
    // The probes need no token.
    for path in ["/healthz", "/readyz"] {
        let (status, _, _) = http(relay.addr(), "GET", path, &[]).await;
        assert_eq!(status, 200, "{path}");
    }
}
