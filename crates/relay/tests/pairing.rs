//! Pairing end to end over HTTP against a real relay (issue 6): a runner
//! starts, a logged-in user approves, the runner collects its token once,
//! connects, and is cut off within a second when the user revokes it.
//! The CLI side (`tmux-bridge pair`) is tested in the bridge crate.

mod auth_support;

use std::time::{Duration, Instant};

use auth_support::*;

async fn start_pairing(relay: &TestRelay) -> (String, String) {
    let r = relay
        .http(
            "POST",
            "/api/pair/start",
            &[("content-type", "application/json")],
            br#"{"name":"laptop","host":"box"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let v = r.json();
    let code = v["code"].as_str().expect("code").to_owned();
    assert_eq!(v["interval"], 5);
    assert_eq!(v["expiresIn"], 600);
    assert_eq!(
        v["approveUrl"].as_str(),
        Some(format!("{}/pair", relay.origin()).as_str())
    );
    (code, v["pollToken"].as_str().expect("pollToken").to_owned())
}

async fn check(relay: &TestRelay, code: &str, poll: Option<&str>) -> (u16, serde_json::Value) {
    let auth = poll.map(|p| format!("Bearer {p}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let r = relay
        .http(
            "GET",
            &format!("/api/pair/check?code={code}"),
            &headers,
            b"",
        )
        .await;
    let v = serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
    (r.status, v)
}

#[tokio::test]
async fn pair_approve_collect_connect_revoke() {
    let dir = tempfile::tempdir().expect("tempdir");
    for url in database_urls(dir.path()) {
        let relay = TestRelay::start(&url).await;
        let (alice_id, cookie) = relay.user("alice").await;
        let (code, poll) = start_pairing(&relay).await;

        // Polling: pending; no secret, no answer.
        assert_eq!(
            check(&relay, &code, Some(&poll)).await,
            (200, serde_json::json!({"status":"pending","interval":5}))
        );
        assert_eq!(check(&relay, &code, None).await.0, 401);
        assert_eq!(check(&relay, &code, Some("wrong")).await.0, 401);

        // Approval needs the cookie and the same origin.
        let body = serde_json::json!({ "code": code.to_lowercase().replace('-', " ") }).to_string();
        let json = ("content-type", "application/json");
        let r = relay
            .http(
                "POST",
                "/api/pair/approve",
                &[json, ("origin", &relay.origin())],
                body.as_bytes(),
            )
            .await;
        assert_eq!(r.status, 401, "no cookie");
        let r = relay
            .http(
                "POST",
                "/api/pair/approve",
                &[json, ("cookie", &cookie), ("origin", "http://evil.example")],
                body.as_bytes(),
            )
            .await;
        assert_eq!(r.status, 403, "cross-origin approval");
        let r = relay
            .http(
                "POST",
                "/api/pair/approve",
                &[json, ("cookie", &cookie), ("origin", &relay.origin())],
                body.as_bytes(),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let runner_id = r.json()["runnerId"].as_str().expect("runnerId").to_owned();
        assert_eq!(r.json()["name"], "laptop");

        // The runner collects once (after waiting out its interval).
        tokio::time::sleep(Duration::from_millis(4_100)).await;
        let (status, v) = check(&relay, &code, Some(&poll)).await;
        assert_eq!(status, 200);
        assert_eq!(v["status"], "approved", "{v}");
        assert_eq!(v["runnerId"], runner_id.as_str());
        assert_eq!(v["relayUrl"], relay.origin().as_str());
        let account = v["account"].as_str().expect("account");
        assert!(account.starts_with("alice"));
        let token = v["runnerToken"].as_str().expect("token").to_owned();
        tokio::time::sleep(Duration::from_millis(4_100)).await;
        assert_eq!(
            check(&relay, &code, Some(&poll)).await.1["status"],
            "consumed"
        );

        // The runner connects; the page lists it online.
        let (mut ws, _session) = runner_session(relay.addr(), &token, &unique("idea")).await;
        let r = relay
            .http("GET", "/api/runners", &[("cookie", &cookie)], b"")
            .await;
        let listed = r.json();
        let me = listed["runners"]
            .as_array()
            .expect("runners")
            .iter()
            .find(|x| x["id"] == runner_id.as_str())
            .cloned();
        let me = me.expect("paired runner is listed");
        assert_eq!(
            (
                me["name"].as_str(),
                me["host"].as_str(),
                me["online"].as_bool()
            ),
            // The host is what the connected runner's hello says.
            (Some("laptop"), Some("test-host"), Some(true))
        );
        assert!(me["lastSeenAt"].is_number());
        assert_eq!(me["version"], "0.0.0-test");
        assert_eq!(me["tmuxVersion"], "3.4");

        // Revocation cuts the live socket within a second and the token is dead.
        let t0 = Instant::now();
        let r = relay
            .http(
                "DELETE",
                &format!("/api/runners/{runner_id}"),
                &[("cookie", &cookie), ("origin", &relay.origin())],
                b"",
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.text());
        let closed = wait_close(&mut ws, Duration::from_secs(1)).await;
        println!("revocation to close frame: {:?}", t0.elapsed());
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "cut after {:?}",
            t0.elapsed()
        );
        assert_eq!(closed.map(|c| c.0), Some(1008));
        assert_eq!(runner_ws(relay.addr(), Some(&token)).await.err(), Some(401));
        let r = relay
            .http("GET", "/api/runners", &[("cookie", &cookie)], b"")
            .await;
        assert!(
            !r.text().contains(&runner_id),
            "revoked runner no longer listed"
        );
        let _ = alice_id;
    }
}

#[tokio::test]
async fn pair_start_is_rate_limited_with_retry_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = TestRelay::start(&database_urls(dir.path())[0]).await;
    for _ in 0..3 {
        start_pairing(&relay).await;
    }
    let r = relay
        .http(
            "POST",
            "/api/pair/start",
            &[("content-type", "application/json")],
            b"{}",
        )
        .await;
    assert_eq!(r.status, 429);
    let retry: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=300).contains(&retry), "{retry}");
    // Oversized bodies are refused before any work.
    let big = vec![b' '; 64 * 1024];
    let r = relay
        .http(
            "POST",
            "/api/pair/start",
            &[("content-type", "application/json")],
            &big,
        )
        .await;
    assert_eq!(r.status, 413);
}

#[tokio::test]
async fn polling_too_fast_slows_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = TestRelay::start(&database_urls(dir.path())[0]).await;
    let (code, poll) = start_pairing(&relay).await;
    assert_eq!(
        check(&relay, &code, Some(&poll)).await.1["status"],
        "pending"
    );
    assert_eq!(
        check(&relay, &code, Some(&poll)).await.1,
        serde_json::json!({"status":"slow_down","interval":10})
    );
    assert_eq!(
        check(&relay, &code, Some(&poll)).await.1,
        serde_json::json!({"status":"slow_down","interval":15})
    );
    // Another code than the poll token's own: refused like a wrong token.
    assert_eq!(check(&relay, "ZZZ-ZZZZ", Some(&poll)).await.0, 401);
    assert_eq!(check(&relay, "not-a-code", Some(&poll)).await.0, 401);
}

/// Issue 10, the pairing-code oracle: `GET /api/pair/check` answered 401
/// for a live code with a wrong poll token but 200 `expired` for an
/// unknown code, so guessing codes found live ones. Now the poll token is
/// checked first and the answer is the same, byte for byte, whether the
/// code is live, unknown or malformed.
#[tokio::test]
async fn issue_10_pair_check_is_not_an_oracle() {
    let dir = tempfile::tempdir().expect("tempdir");
    for url in database_urls(dir.path()) {
        let relay = TestRelay::start(&url).await;
        let (code, poll) = start_pairing(&relay).await;
        let answer = |r: HttpResponse| {
            let mut h: Vec<(String, String)> =
                r.headers.into_iter().filter(|(k, _)| k != "date").collect();
            h.sort();
            (r.status, h, r.body)
        };
        let mut seen = Vec::new();
        for (c, token) in [
            (code.as_str(), Some("wrong-poll-token")),
            ("ZZZ-ZZZZ", Some("wrong-poll-token")),
            ("not-a-code", Some("wrong-poll-token")),
            (code.as_str(), None),
            ("ZZZ-ZZZZ", None),
        ] {
            let auth = token.map(|t| format!("Bearer {t}"));
            let headers: Vec<(&str, &str)> =
                auth.iter().map(|a| ("authorization", a.as_str())).collect();
            let r = relay
                .http("GET", &format!("/api/pair/check?code={c}"), &headers, b"")
                .await;
            seen.push((c.to_owned(), answer(r)));
        }
        for (c, a) in &seen {
            assert_eq!(a.0, 401, "{c}");
            assert_eq!(
                a, &seen[0].1,
                "the answer for {c} differs from a live code's"
            );
        }
        // The runner itself still gets its answer.
        assert_eq!(
            check(&relay, &code, Some(&poll)).await.1["status"],
            "pending"
        );
    }
}

/// Issue 10: polls are limited per client address (429 + Retry-After),
/// whatever they poll for; another address is not affected.
#[tokio::test]
async fn issue_10_pair_check_is_rate_limited_per_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = TestRelay::start(&database_urls(dir.path())[0]).await;
    let (code, poll) = start_pairing(&relay).await;
    let guesser: std::net::IpAddr = "127.0.0.77".parse().expect("ip");
    let runner: std::net::IpAddr = "127.0.0.78".parse().expect("ip");
    let limit = relay::auth::limits::PAIR_CHECK_PER_ADDR.max;
    let mut statuses = Vec::new();
    for i in 0..=limit {
        let r = http_from(
            Some(guesser),
            relay.addr(),
            "GET",
            &format!("/api/pair/check?code=ZZZ-{:04}", 2000 + i),
            &[("authorization", "Bearer guess")],
            b"",
        )
        .await;
        if r.status == 429 {
            let retry: u64 = r
                .header("retry-after")
                .and_then(|v| v.parse().ok())
                .expect("429 carries Retry-After");
            assert!((1..=60).contains(&retry), "{retry}");
        }
        statuses.push(r.status);
    }
    assert!(
        statuses[..limit as usize].iter().all(|&s| s == 401),
        "{statuses:?}"
    );
    assert_eq!(statuses[limit as usize], 429);
    let bearer = format!("Bearer {poll}");
    let r = http_from(
        Some(runner),
        relay.addr(),
        "GET",
        &format!("/api/pair/check?code={code}"),
        &[("authorization", bearer.as_str())],
        b"",
    )
    .await;
    assert_eq!(r.json()["status"], "pending", "another address still polls");
}

#[tokio::test]
async fn declining_runner_revokes_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = TestRelay::start(&database_urls(dir.path())[0]).await;
    let (_, cookie) = relay.user("carol").await;
    let (code, poll) = start_pairing(&relay).await;
    let body = serde_json::json!({ "code": code }).to_string();
    let r = relay
        .http(
            "POST",
            "/api/pair/approve",
            &[
                ("content-type", "application/json"),
                ("cookie", &cookie),
                ("origin", &relay.origin()),
            ],
            body.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200);
    let v = check(&relay, &code, Some(&poll)).await.1;
    assert_eq!(
        v["status"], "approved",
        "first poll after approval collects"
    );
    let token = v["runnerToken"].as_str().expect("token").to_owned();
    let bearer = format!("Bearer {token}");
    let r = relay
        .http(
            "POST",
            "/api/runner/revoke",
            &[("authorization", &bearer)],
            b"",
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(runner_ws(relay.addr(), Some(&token)).await.err(), Some(401));
    let r = relay
        .http(
            "POST",
            "/api/runner/revoke",
            &[("authorization", &bearer)],
            b"",
        )
        .await;
    assert_eq!(r.status, 401);
}
