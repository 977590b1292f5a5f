//! Accounts storage against SQLite always and PostgreSQL when
//! `TEST_DATABASE_URL` is set.

use super::*;

fn uid(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// When the revoked tokens of these tests expire: after the tests, since
/// PostgreSQL is shared with tests that prune the revocations of expired
/// tokens (`prune_accounts`), which took one away mid-test in CI.
const EXPIRES: Millis = 4_102_444_800_000; // 2100-01-01

async fn stores() -> Vec<Store> {
    let mut out = vec![
        Store::connect("sqlite::memory:")
            .await
            .expect("sqlite store"),
    ];
    if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
        out.push(
            Store::connect(&url)
                .await
                .expect("TEST_DATABASE_URL is set but unreachable"),
        );
    }
    out
}

fn runner_rec(id: &str, user: &str, jti: &str) -> RunnerRecord {
    RunnerRecord {
        id: id.into(),
        user_id: user.into(),
        name: "laptop".into(),
        host: "host-a".into(),
        embedded: false,
        token_jti: jti.into(),
        created_at: 1_000,
        last_seen_at: None,
        revoked_at: None,
    }
}

#[tokio::test]
async fn users_are_unique_by_name() {
    for s in stores().await {
        let (id, name) = (uid("u"), uid("alice"));
        let u = s
            .create_user(&id, &name, Some("$argon2id$x"), 5)
            .await
            .expect("create")
            .expect("new");
        assert_eq!(u.name, name);
        assert_eq!(
            s.create_user(&uid("u"), &name, None, 6)
                .await
                .expect("create"),
            None
        );
        assert_eq!(
            s.user_by_name(&name).await.expect("q").map(|u| u.id),
            Some(id.clone())
        );
        assert_eq!(
            s.user_by_id(&id).await.expect("q").map(|u| u.password_hash),
            Some(Some("$argon2id$x".into()))
        );
        assert!(s.set_password_hash(&id, "$argon2id$y").await.expect("set"));
        assert!(!s.set_password_hash("nobody", "h").await.expect("set"));
    }
}

#[tokio::test]
async fn browser_logins_expire_and_log_out() {
    for s in stores().await {
        let id = uid("u");
        s.create_user(&id, &uid("bob"), None, 0)
            .await
            .expect("create");
        let h = uid("hash");
        let login = uid("login");
        s.create_browser_login(&h, &login, &id, 100, 200)
            .await
            .expect("login");
        assert_eq!(
            s.browser_login(&h, 150)
                .await
                .expect("q")
                .map(|(u, l)| (u.id, l)),
            Some((id.clone(), login.clone()))
        );
        assert_eq!(
            s.login_owner(&login, 150).await.expect("q"),
            Some(id.clone())
        );
        assert_eq!(
            s.login_owner(&login, 200).await.expect("q"),
            None,
            "expired"
        );
        assert_eq!(
            s.browser_login_user(&h, 150)
                .await
                .expect("q")
                .map(|u| u.id),
            Some(id.clone())
        );
        assert_eq!(
            s.browser_login_user(&h, 200).await.expect("q"),
            None,
            "expired at 200"
        );
        assert_eq!(s.browser_login_user("other", 150).await.expect("q"), None);
        assert!(s.delete_browser_login(&h).await.expect("del"));
        assert_eq!(s.browser_login_user(&h, 150).await.expect("q"), None);
        assert_eq!(
            s.login_owner(&login, 150).await.expect("q"),
            None,
            "logged out"
        );
    }
}

/// Issue 14: logins last days with an idle timeout. Created at 100 with
/// idle 100 and max 1000: used at 150 it lives to 250, used at 240 to 340
/// (a use within `slack` of the last writes nothing), left alone it ends;
/// however often it is used it ends at 1100.
#[tokio::test]
async fn issue_14_logins_end_when_idle_and_at_their_maximum() {
    for s in stores().await {
        let id = uid("u");
        s.create_user(&id, &uid("idle"), None, 0)
            .await
            .expect("create");
        let h = uid("hash");
        s.create_browser_login(&h, &uid("login"), &id, 100, 200)
            .await
            .expect("login");
        let live = |now: i64| {
            let (s, h) = (s.clone(), h.clone());
            async move { s.browser_login(&h, now).await.expect("q").is_some() }
        };
        s.touch_browser_login(&h, 150, 100, 1000, 10)
            .await
            .expect("touch");
        assert!(live(240).await, "used at 150: lives to 250");
        assert!(!live(250).await);
        s.touch_browser_login(&h, 240, 100, 1000, 10)
            .await
            .expect("touch");
        assert!(live(330).await, "used at 240: lives to 340");
        // Within the slack: no write, the end stays at 340.
        s.touch_browser_login(&h, 245, 100, 1000, 10)
            .await
            .expect("touch");
        assert!(!live(342).await);
        // Used often, it still ends 1000 after it began.
        let mut now = 300;
        while now < 1200 {
            s.touch_browser_login(&h, now, 100, 1000, 10)
                .await
                .expect("touch");
            now += 50;
        }
        assert!(live(1099).await);
        assert!(!live(1100).await, "at most 1000 after it began");
        // An ended login is never brought back.
        s.touch_browser_login(&h, 1150, 100, 1000, 10)
            .await
            .expect("touch");
        assert!(!live(1150).await);
    }
}

#[tokio::test]
async fn issue_10_log_out_everywhere_and_password_change_end_every_login() {
    for s in stores().await {
        let (a, b) = (uid("u"), uid("u"));
        s.create_user(&a, &uid("ann"), Some("h0"), 0)
            .await
            .expect("create");
        s.create_user(&b, &uid("ben"), None, 0)
            .await
            .expect("create");
        let logins: Vec<(String, String, &String)> = [&a, &a, &b, &a]
            .into_iter()
            .map(|u| (uid("hash"), uid("login"), u))
            .collect();
        for (h, l, u) in &logins {
            s.create_browser_login(h, l, u, 0, 1000)
                .await
                .expect("login");
        }
        assert_eq!(s.delete_browser_logins_of_user(&a).await.expect("del"), 3);
        for (_, l, u) in &logins {
            let live = s.login_owner(l, 10).await.expect("q");
            assert_eq!(live.is_some(), *u == &b, "{u}");
        }
        let (h, l) = (uid("hash"), uid("login"));
        s.create_browser_login(&h, &l, &b, 0, 1000)
            .await
            .expect("login");
        assert!(s.change_password(&b, "h1").await.expect("change"));
        assert_eq!(s.login_owner(&l, 10).await.expect("q"), None);
        assert_eq!(
            s.delete_browser_logins_of_user(&b).await.expect("del"),
            0,
            "all gone"
        );
        assert_eq!(
            s.user_by_id(&b)
                .await
                .expect("q")
                .and_then(|u| u.password_hash),
            Some("h1".into())
        );
        assert!(!s.change_password("nobody", "h").await.expect("change"));
    }
}

#[tokio::test]
async fn issue_10_browser_token_ids_are_consumed_once_and_pruned() {
    for s in stores().await {
        let (j1, j2) = (uid("jti"), uid("jti"));
        assert!(s.consume_browser_jti(&j1, 1_000).await.expect("q"));
        assert!(
            !s.consume_browser_jti(&j1, 1_000).await.expect("q"),
            "second use"
        );
        assert!(s.consume_browser_jti(&j2, 5_000).await.expect("q"));
        // Pruning deletes every expired row of the database: only on the
        // private in-memory one, not on a PostgreSQL database that other
        // tests share at the same time (the SQL is the same for both).
        if s.dialect() == "sqlite" {
            s.prune_accounts(2_000, 0).await.expect("prune");
            // j1 expired and was pruned (a token past exp is refused
            // anyway); j2 is still remembered.
            assert!(s.consume_browser_jti(&j1, 1_000).await.expect("q"));
            assert!(!s.consume_browser_jti(&j2, 5_000).await.expect("q"));
        }
    }
}

#[tokio::test]
async fn login_codes_are_single_use_and_expire() {
    for s in stores().await {
        let id = uid("u");
        s.create_user(&id, &uid("carol"), None, 0)
            .await
            .expect("create");
        let (c1, c2) = (uid("c"), uid("c"));
        s.create_login_code(&c1, &id, 1_000).await.expect("code");
        s.create_login_code(&c2, &id, 1_000).await.expect("code");
        assert_eq!(
            s.consume_login_code(&c1, 500).await.expect("q"),
            Some(id.clone())
        );
        assert_eq!(
            s.consume_login_code(&c1, 500).await.expect("q"),
            None,
            "second use"
        );
        assert_eq!(
            s.consume_login_code(&c2, 1_000).await.expect("q"),
            None,
            "expired"
        );
        assert_eq!(
            s.consume_login_code(&c2, 500).await.expect("q"),
            None,
            "expired code was deleted"
        );
    }
}

#[tokio::test]
async fn revoking_is_owner_only_and_records_the_jti() {
    for s in stores().await {
        let (a, b) = (uid("a"), uid("b"));
        s.create_user(&a, &uid("a"), None, 0).await.expect("a");
        s.create_user(&b, &uid("b"), None, 0).await.expect("b");
        let (rid, jti) = (uid("r"), uid("jti"));
        s.create_runner(&runner_rec(&rid, &a, &jti))
            .await
            .expect("runner");
        assert_eq!(s.runners_of_user(&a).await.expect("q").len(), 1);
        assert!(s.runners_of_user(&b).await.expect("q").is_empty());
        assert_eq!(
            s.revoke_runner(&b, &rid, 10, EXPIRES).await.expect("q"),
            None,
            "not B's runner"
        );
        assert!(!s.is_jti_revoked(&jti).await.expect("q"));
        let r = s
            .revoke_runner(&a, &rid, 10, EXPIRES)
            .await
            .expect("q")
            .expect("revoked");
        assert_eq!(r.token_jti, jti);
        assert!(s.is_jti_revoked(&jti).await.expect("q"));
        assert_eq!(
            s.revoke_runner(&a, &rid, 11, EXPIRES).await.expect("q"),
            None,
            "already revoked"
        );
        assert!(s.runners_of_user(&a).await.expect("q").is_empty());
        assert_eq!(
            s.runner(&rid).await.expect("q").and_then(|r| r.revoked_at),
            Some(10)
        );
    }
}

#[tokio::test]
async fn rotating_revokes_the_old_jti() {
    for s in stores().await {
        let a = uid("a");
        s.create_user(&a, &uid("a"), None, 0).await.expect("a");
        let (rid, j1, j2) = (uid("r"), uid("j"), uid("j"));
        let mut rec = runner_rec(&rid, &a, &j1);
        rec.embedded = true;
        s.create_runner(&rec).await.expect("runner");
        assert_eq!(
            s.embedded_runner(&a).await.expect("q").map(|r| r.id),
            Some(rid.clone())
        );
        assert!(
            s.rotate_runner_jti(&rid, &j2, 5, EXPIRES)
                .await
                .expect("rotate")
        );
        assert!(s.is_jti_revoked(&j1).await.expect("q"));
        assert!(!s.is_jti_revoked(&j2).await.expect("q"));
        assert_eq!(
            s.runner(&rid).await.expect("q").map(|r| r.token_jti),
            Some(j2)
        );
        s.touch_runner(&rid, 77).await.expect("touch");
        assert_eq!(
            s.runner(&rid)
                .await
                .expect("q")
                .and_then(|r| r.last_seen_at),
            Some(77)
        );
    }
}

#[tokio::test]
async fn pairing_approves_once_and_consumes_once() {
    for s in stores().await {
        let (a, b) = (uid("a"), uid("b"));
        s.create_user(&a, &uid("a"), None, 0).await.expect("a");
        s.create_user(&b, &uid("b"), None, 0).await.expect("b");
        let code = uid("code");
        let p = PairRecord {
            code_hash: code.clone(),
            poll_hash: uid("poll"),
            runner_name: "n".into(),
            host: "h".into(),
            created_at: 0,
            expires_at: 600_000,
            interval_secs: 5,
            last_poll_at: None,
            approved_by: None,
            approved_at: None,
            runner_id: None,
            consumed_at: None,
        };
        s.create_pair_request(&p).await.expect("create");
        assert_eq!(s.pair_request(&code).await.expect("q"), Some(p.clone()));
        assert_eq!(
            s.pair_request_by_poll(&p.poll_hash).await.expect("q"),
            Some(p.clone())
        );
        assert_eq!(s.pair_request_by_poll(&uid("poll")).await.expect("q"), None);
        assert!(
            !s.consume_pair_request(&code, 1).await.expect("q"),
            "not approved yet"
        );
        let (r1, r2) = (uid("r"), uid("r"));
        assert!(
            !s.approve_pair_request(&code, &runner_rec(&r1, &a, "j1"), 600_000)
                .await
                .expect("q"),
            "expired"
        );
        assert!(
            s.approve_pair_request(&code, &runner_rec(&r1, &a, &uid("j")), 10)
                .await
                .expect("q")
        );
        assert!(
            !s.approve_pair_request(&code, &runner_rec(&r2, &b, &uid("j")), 11)
                .await
                .expect("q"),
            "second approval"
        );
        assert!(
            s.runner(&r2).await.expect("q").is_none(),
            "losing approval wrote nothing"
        );
        let got = s.pair_request(&code).await.expect("q").expect("row");
        assert_eq!(got.approved_by.as_deref(), Some(a.as_str()));
        assert_eq!(got.runner_id.as_deref(), Some(r1.as_str()));
        s.record_pair_poll(&code, 12, 10).await.expect("poll");
        assert!(s.consume_pair_request(&code, 13).await.expect("q"));
        assert!(!s.consume_pair_request(&code, 14).await.expect("q"));
        let got = s.pair_request(&code).await.expect("q").expect("row");
        assert_eq!(
            (got.last_poll_at, got.interval_secs, got.consumed_at),
            (Some(12), 10, Some(13))
        );
        assert!(s.prune_accounts(700_000, 700_000).await.expect("prune") >= 1);
        assert_eq!(s.pair_request(&code).await.expect("q"), None);
    }
}
