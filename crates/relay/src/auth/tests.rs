//! `Auth` against a real SQLite store (and PostgreSQL when
//! `TEST_DATABASE_URL` is set).

use std::net::{IpAddr, Ipv4Addr};

use super::*;
use axum::http::HeaderMap;

pub(crate) async fn auths() -> Vec<Auth> {
    let mut stores = vec![Store::connect("sqlite::memory:").await.expect("sqlite")];
    if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
        stores.push(
            Store::connect(&url)
                .await
                .expect("TEST_DATABASE_URL is set but unreachable"),
        );
    }
    stores
        .into_iter()
        .map(|s| {
            Auth::with_secret(s, Secret::generate(), AuthConfig::new("http://127.0.0.1:9"))
                .expect("auth")
        })
        .collect()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &codes::new_id()[..12])
}

const ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

/// A new browser login of `user`, as the cookie extractor sees it.
async fn login(auth: &Auth, user: &CurrentUser) -> (CurrentLogin, HeaderMap) {
    let cookie = auth.start_browser_login(&user.id).await.expect("login");
    let mut h = HeaderMap::new();
    h.insert(
        header::COOKIE,
        HeaderValue::from_str(&format!("{}={cookie}", auth.cookie_name())).expect("cookie"),
    );
    let l = auth
        .login_from_headers(&h)
        .await
        .expect("q")
        .expect("live login");
    assert_eq!(&l.user, user);
    (l, h)
}

#[tokio::test]
async fn local_runner_token_authenticates_and_rotates() {
    for auth in auths().await {
        let first = auth.ensure_local_runner("box").await.expect("local");
        let id = auth
            .authenticate_runner(&first.runner_token)
            .await
            .expect("auth");
        assert_eq!(
            (id.user_id.as_str(), id.runner_id.as_str()),
            (first.user_id.as_str(), first.runner_id.as_str())
        );
        let second = auth.ensure_local_runner("box").await.expect("local again");
        assert_eq!(
            second.runner_id, first.runner_id,
            "one embedded runner per user"
        );
        assert!(matches!(
            auth.authenticate_runner(&first.runner_token).await,
            Err(AuthError::Revoked)
        ));
        assert!(auth.authenticate_runner(&second.runner_token).await.is_ok());
        assert!(
            auth.store()
                .runner(&first.runner_id)
                .await
                .expect("q")
                .and_then(|r| r.last_seen_at)
                .is_some()
        );
    }
}

#[tokio::test]
async fn login_link_is_single_use() {
    for auth in auths().await {
        let local = auth.ensure_local_runner("box").await.expect("local");
        let link = auth.login_link(&local.user_id).await.expect("link");
        let code = link
            .split_once("code=")
            .map(|(_, c)| c.to_owned())
            .expect("code");
        assert!(link.starts_with("http://127.0.0.1:9/login/once?code="));
        let cookie = auth.login_once(&code).await.expect("login");
        assert!(matches!(
            auth.login_once(&code).await,
            Err(AuthError::BadCode)
        ));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("tb_session={cookie}")).expect("hv"),
        );
        let user = auth
            .user_from_headers(&h)
            .await
            .expect("q")
            .expect("logged in");
        assert_eq!(user.id, local.user_id);
        auth.logout(&h).await.expect("logout");
        assert_eq!(auth.user_from_headers(&h).await.expect("q"), None);
    }
}

#[tokio::test]
async fn password_login_and_failures() {
    for auth in auths().await {
        let name = unique("alice");
        auth.add_user(&name, "s3cret pass").await.expect("add");
        assert!(matches!(
            auth.add_user(&name, "x").await,
            Err(AuthError::Conflict(_))
        ));
        let (user, cookie) = auth
            .login_password(&name, "s3cret pass", ADDR)
            .await
            .expect("login");
        assert_eq!(user.name, name);
        assert_eq!(cookie.len(), 43);
        assert!(matches!(
            auth.login_password(&name, "wrong", ADDR).await,
            Err(AuthError::BadLogin)
        ));
        assert!(matches!(
            auth.login_password("nobody-here", "wrong", ADDR).await,
            Err(AuthError::BadLogin)
        ));
        // 10 failures per name per 10 minutes, then 429 even with the right password.
        let other = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        for _ in 0..9 {
            let _ = auth.login_password(&name, "wrong", other).await;
        }
        assert!(matches!(
            auth.login_password(&name, "s3cret pass", other).await,
            Err(AuthError::RateLimited(_))
        ));
    }
}

#[tokio::test]
async fn pairing_flow_binds_the_runner_to_the_approver_once() {
    for auth in auths().await {
        let name = unique("bob");
        let bob = auth.add_user(&name, "pw").await.expect("add");
        let bob = CurrentUser {
            id: bob.id,
            name: bob.name,
        };
        let start = auth
            .pair_start(ADDR, "laptop\u{1b}[31m", "host-1")
            .await
            .expect("start");
        assert_eq!(start.interval, 5);
        // Poll times in the past, so the minted token is not issued in the future.
        let t0 = now_ms() - 60_000;
        assert_eq!(
            auth.pair_check_at(&start.code, &start.poll_token, t0)
                .await
                .expect("check"),
            PairCheck::Pending { interval: 5 }
        );
        assert_eq!(
            auth.pair_check_at(&start.code, &start.poll_token, t0 + 1000)
                .await
                .expect("check"),
            PairCheck::SlowDown { interval: 10 }
        );
        assert!(matches!(
            auth.pair_check_at(&start.code, "not-the-secret", t0 + 20_000)
                .await,
            Err(AuthError::Unauthenticated)
        ));
        let approved = auth
            .pair_approve(&bob, ADDR, &start.code.to_lowercase())
            .await
            .expect("approve");
        assert_eq!(approved.name, "laptop[31m", "control characters stripped");
        assert!(
            matches!(
                auth.pair_approve(&bob, ADDR, &start.code).await,
                Err(AuthError::BadCode)
            ),
            "single use"
        );
        let got = auth
            .pair_check_at(&start.code, &start.poll_token, t0 + 20_000)
            .await
            .expect("check");
        let PairCheck::Approved {
            runner_id,
            runner_token,
            account,
            relay_url,
        } = got
        else {
            panic!("expected approved, got {got:?}");
        };
        assert_eq!(
            (runner_id.as_str(), account.as_str(), relay_url.as_str()),
            (
                approved.runner_id.as_str(),
                name.as_str(),
                "http://127.0.0.1:9"
            )
        );
        assert_eq!(
            auth.pair_check_at(&start.code, &start.poll_token, t0 + 40_000)
                .await
                .expect("check"),
            PairCheck::Consumed
        );
        let id = auth
            .authenticate_runner(&runner_token)
            .await
            .expect("runner auth");
        assert_eq!(id.user_id, bob.id);
        let listed = auth.list_runners(&bob.id).await.expect("list");
        assert_eq!(listed.len(), 1);
        let conn = auth.connections().register(&runner_id);
        assert!(auth.list_runners(&bob.id).await.expect("list")[0].online);
        auth.revoke_runner(&bob.id, &runner_id)
            .await
            .expect("revoke");
        assert!(conn.is_revoked());
        assert!(matches!(
            auth.authenticate_runner(&runner_token).await,
            Err(AuthError::Revoked)
        ));
        assert!(matches!(
            auth.revoke_runner(&bob.id, &runner_id).await,
            Err(AuthError::NotFound)
        ));
    }
}

#[tokio::test]
async fn wrong_codes_are_capped_per_user() {
    for auth in auths().await {
        let u = auth.add_user(&unique("eve"), "pw").await.expect("add");
        let eve = CurrentUser {
            id: u.id,
            name: u.name,
        };
        let start = auth
            .pair_start(IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)), "victim", "h")
            .await
            .expect("start");
        let preview = auth
            .pair_preview(&eve, ADDR, &start.code)
            .await
            .expect("preview");
        assert_eq!(
            (preview.name.as_str(), preview.host.as_str()),
            ("victim", "h")
        );
        assert!(preview.expires_in > 590 && preview.expires_in <= 600);
        for i in 0..5 {
            let guess = format!("ZZZ-ZZZ{}", ["2", "3", "4", "5", "6"][i]);
            // Previews and approvals count alike.
            let r = if i % 2 == 0 {
                auth.pair_preview(&eve, ADDR, &guess).await.map(|_| ())
            } else {
                auth.pair_approve(&eve, ADDR, &guess).await.map(|_| ())
            };
            assert!(matches!(r, Err(AuthError::BadCode)));
        }
        // Even the right code is refused now: the cap is on the user, not the code.
        assert!(matches!(
            auth.pair_approve(&eve, ADDR, &start.code).await,
            Err(AuthError::RateLimited(_))
        ));
    }
}

#[tokio::test]
async fn pair_start_is_limited_per_address() {
    for auth in auths().await {
        let addr = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
        for _ in 0..3 {
            auth.pair_start(addr, "n", "h").await.expect("start");
        }
        let Err(AuthError::RateLimited(retry)) = auth.pair_start(addr, "n", "h").await else {
            panic!("fourth start within 5 minutes must be refused");
        };
        assert!(retry.secs() > 290 && retry.secs() <= 300);
    }
}

#[tokio::test]
async fn browser_tokens_need_an_owned_live_runner() {
    for auth in auths().await {
        let local = auth.ensure_local_runner("box").await.expect("local");
        let me = CurrentUser {
            id: local.user_id.clone(),
            name: LOCAL_USER.into(),
        };
        let other = auth.add_user(&unique("mallory"), "pw").await.expect("add");
        let mallory = CurrentUser {
            id: other.id,
            name: other.name,
        };
        let (mallory, _) = login(&auth, &mallory).await;
        let (me_login, _) = login(&auth, &me).await;
        assert!(matches!(
            auth.mint_browser_token(&mallory, &local.runner_id, "1")
                .await,
            Err(AuthError::NotFound)
        ));
        let t = auth
            .mint_browser_token(&me_login, &local.runner_id, "1")
            .await
            .expect("mint");
        let c = auth.authenticate_browser(&t).await.expect("auth");
        assert_eq!(
            (c.session_id.as_str(), c.runner_id.as_str()),
            ("1", local.runner_id.as_str())
        );
        assert!(matches!(
            auth.authenticate_runner(&t).await,
            Err(AuthError::InvalidToken)
        ));
        auth.revoke_runner(&me.id, &local.runner_id)
            .await
            .expect("revoke");
        assert!(matches!(
            auth.authenticate_browser(&t).await,
            Err(AuthError::Revoked)
        ));
    }
}

#[tokio::test]
async fn session_quota_allows_existing_sessions_only_at_the_limit() {
    for auth in auths().await {
        let local = auth.ensure_local_runner("box").await.expect("local");
        let user = unique("quota");
        for i in 0..MAX_SESSIONS_PER_USER {
            let idea = format!("idea{i}");
            auth.check_session_quota(&user, &local.runner_id, &idea, "s")
                .await
                .expect("below the limit");
            auth.store()
                .upsert_session(
                    &local.runner_id,
                    &user,
                    &idea,
                    "s",
                    &format!("tb_{idea}__s"),
                )
                .await
                .expect("upsert");
        }
        assert!(
            auth.check_session_quota(&user, &local.runner_id, "idea0", "s")
                .await
                .is_ok(),
            "existing session"
        );
        let refused = auth
            .check_session_quota(&user, &local.runner_id, "one-more", "s")
            .await;
        assert!(matches!(refused, Err(AuthError::Quota(_))), "{refused:?}");
        assert!(
            auth.check_session_quota(&unique("other"), &local.runner_id, "one-more", "s")
                .await
                .is_ok()
        );
    }
}

/// A login for a name that does not exist costs the same argon2 work as a
/// wrong password for one that does (no user enumeration by timing).
#[tokio::test]
async fn unknown_users_take_as_long_as_wrong_passwords() {
    let auth = auths().await.remove(0);
    let name = unique("timed");
    auth.add_user(&name, "right").await.expect("add");
    // The dummy hash is made on first use; make it before measuring.
    password::verify_dummy("warm up");
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..8u8 {
        let t0 = std::time::Instant::now();
        let r = auth
            .login_password(&name, "wrong", IpAddr::V4(Ipv4Addr::new(10, 2, 0, i)))
            .await;
        known.push(t0.elapsed());
        assert!(matches!(r, Err(AuthError::BadLogin)));
        let t0 = std::time::Instant::now();
        let r = auth
            .login_password(
                &unique("ghost"),
                "wrong",
                IpAddr::V4(Ipv4Addr::new(10, 3, 0, i)),
            )
            .await;
        unknown.push(t0.elapsed());
        assert!(matches!(r, Err(AuthError::BadLogin)));
    }
    known.sort();
    unknown.sort();
    let (k, u) = (known[4].as_secs_f64(), unknown[4].as_secs_f64());
    println!(
        "login failure medians: known user {:.1} ms, unknown user {:.1} ms",
        k * 1e3,
        u * 1e3
    );
    // Both run one argon2 verification (tens of ms); skipping it for an
    // unknown name would make one side about a hundred times faster. The
    // bound leaves room for a loaded 2-core machine's wander.
    assert!(
        k.max(u) / k.min(u) < 3.0,
        "known {k:.4}s vs unknown {u:.4}s"
    );
}

/// A user of its own with a runner of its own (not the shared local user:
/// other tests revoke its runner on a shared PostgreSQL database).
async fn own_runner(auth: &Auth) -> (CurrentUser, String) {
    let u = auth.add_user(&unique("own"), "pw").await.expect("add");
    let runner_id = codes::new_id();
    auth.store()
        .create_runner(&RunnerRecord {
            id: runner_id.clone(),
            user_id: u.id.clone(),
            name: "r".into(),
            host: "h".into(),
            embedded: false,
            token_jti: codes::new_id(),
            created_at: now_ms(),
            last_seen_at: None,
            revoked_at: None,
        })
        .await
        .expect("runner");
    (
        CurrentUser {
            id: u.id,
            name: u.name,
        },
        runner_id,
    )
}

#[tokio::test]
async fn issue_10_browser_tokens_are_single_use_and_die_with_their_login() {
    for auth in auths().await {
        let (me, runner_id) = own_runner(&auth).await;
        let (l1, h1) = login(&auth, &me).await;
        let (l2, _) = login(&auth, &me).await;
        let t1 = auth
            .mint_browser_token(&l1, &runner_id, "1")
            .await
            .expect("mint");
        let c1 = auth.authenticate_browser(&t1).await.expect("auth");
        assert_eq!(c1.login, l1.login_id);
        auth.consume_browser_token(&c1).await.expect("first use");
        assert!(matches!(
            auth.consume_browser_token(&c1).await,
            Err(AuthError::Revoked)
        ));
        // Logging out of l1 kills l1's tokens, not l2's, and ends l1's
        // watchers only.
        let t1b = auth
            .mint_browser_token(&l1, &runner_id, "1")
            .await
            .expect("mint");
        let t2 = auth
            .mint_browser_token(&l2, &runner_id, "1")
            .await
            .expect("mint");
        let w1 = auth.watch_login(&l1);
        let w2 = auth.watch_login(&l2);
        auth.logout(&h1).await.expect("logout");
        assert!(w1.has_ended() && !w2.has_ended());
        assert!(matches!(
            auth.authenticate_browser(&t1b).await,
            Err(AuthError::Revoked)
        ));
        let c2 = auth.authenticate_browser(&t2).await.expect("other login");
        assert!(auth.login_is_live(&c2).await.expect("q"));
        // Log out everywhere: every login of the account.
        auth.logout_everywhere(&me).await.expect("everywhere");
        assert!(w2.has_ended());
        assert!(!auth.login_is_live(&c2).await.expect("q"));
        assert!(matches!(
            auth.authenticate_browser(&t2).await,
            Err(AuthError::Revoked)
        ));
    }
}

#[tokio::test]
async fn issue_10_password_change_ends_every_login_and_logs_the_caller_in() {
    for auth in auths().await {
        let name = unique("pat");
        let u = auth.add_user(&name, "old pw").await.expect("add");
        let me = CurrentUser {
            id: u.id.clone(),
            name: u.name.clone(),
        };
        let (a, _) = login(&auth, &me).await;
        let (b, _) = login(&auth, &me).await;
        let (wa, wb) = (auth.watch_login(&a), auth.watch_login(&b));
        assert!(matches!(
            auth.change_password(&me, "wrong", "new pw", ADDR).await,
            Err(AuthError::BadLogin)
        ));
        assert!(!wa.has_ended(), "a wrong password changes nothing");
        let cookie = auth
            .change_password(&me, "old pw", "new pw", ADDR)
            .await
            .expect("change");
        assert!(wa.has_ended() && wb.has_ended());
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{}={cookie}", auth.cookie_name())).expect("cookie"),
        );
        let fresh = auth
            .login_from_headers(&h)
            .await
            .expect("q")
            .expect("new login");
        assert_ne!(fresh.login_id, a.login_id);
        assert!(matches!(
            auth.login_password(&name, "old pw", ADDR).await,
            Err(AuthError::BadLogin)
        ));
        auth.login_password(&name, "new pw", ADDR)
            .await
            .expect("new password works");
    }
}

/// Issue 10: `pair_check`'s answer does not depend on whether a code
/// exists. Without the poll secret, a live code, an unknown code and a
/// malformed code are all 401; with it, a code other than its own is 401
/// too.
#[tokio::test]
async fn issue_10_pair_check_is_not_an_oracle() {
    for auth in auths().await {
        let start = auth.pair_start(ADDR, "n", "h").await.expect("start");
        let other = auth
            .pair_start(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), "n", "h")
            .await
            .expect("start");
        for (code, poll) in [
            (start.code.as_str(), "wrong"),
            ("ZZZ-ZZZZ", "wrong"),
            ("bad", "wrong"),
            (start.code.as_str(), ""),
            ("ZZZ-ZZZZ", start.poll_token.as_str()),
            (other.code.as_str(), start.poll_token.as_str()),
        ] {
            assert!(
                matches!(
                    auth.pair_check(code, poll).await,
                    Err(AuthError::Unauthenticated)
                ),
                "{code} / {poll}"
            );
        }
        assert!(matches!(
            auth.pair_check(&start.code, &start.poll_token).await,
            Ok(PairCheck::Pending { .. })
        ));
    }
}

#[tokio::test]
async fn issue_10_pair_check_is_rate_limited_per_address_and_globally() {
    let auth = auths().await.remove(0);
    let per_addr = limits::PAIR_CHECK_PER_ADDR.max;
    for _ in 0..per_addr {
        assert!(matches!(
            auth.pair_check_from(ADDR, "ZZZ-ZZZZ", "x").await,
            Err(AuthError::Unauthenticated)
        ));
    }
    let Err(AuthError::RateLimited(retry)) = auth.pair_check_from(ADDR, "ZZZ-ZZZZ", "x").await
    else {
        panic!("one poll too many from one address must be refused");
    };
    assert!((1..=60).contains(&retry.secs()));
    // Many addresses together reach the relay-wide cap.
    let global = limits::PAIR_CHECK_GLOBAL.max;
    let mut admitted = per_addr;
    let mut refused_at = None;
    for i in 0..=(global / per_addr + 1) {
        let addr = IpAddr::V4(Ipv4Addr::new(10, 1, (i >> 8) as u8, i as u8));
        for _ in 0..per_addr {
            match auth.pair_check_from(addr, "ZZZ-ZZZZ", "x").await {
                Err(AuthError::Unauthenticated) => admitted += 1,
                Err(AuthError::RateLimited(_)) => {
                    refused_at.get_or_insert(admitted);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(
        refused_at,
        Some(global),
        "the global cap admits exactly {global}"
    );
}

/// Issue 14: a login that is used stays (each use restarts its idle
/// timeout); one left alone for the idle timeout ends. Idle 3 s here: used
/// at 2 s it is still live at 4 s (it would have ended at 3 s), and after
/// 4 s without use it is gone (a second of margin each way for a loaded
/// machine).
#[tokio::test]
async fn issue_14_a_used_login_stays_and_an_idle_one_ends() {
    for auth in auths().await {
        let mut config = auth.config().clone();
        config.login_idle = std::time::Duration::from_secs(3);
        let auth =
            Auth::with_secret(auth.store().clone(), Secret::generate(), config).expect("auth");
        let u = auth.add_user(&unique("idle"), "pw").await.expect("add");
        let user = CurrentUser {
            id: u.id,
            name: u.name,
        };
        let (_, headers) = login(&auth, &user).await;
        let live = || async {
            auth.login_from_headers(&headers)
                .await
                .expect("q")
                .is_some()
        };
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        assert!(live().await, "used at 2 s");
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        assert!(live().await, "used at 2 s, so still live at 4 s");
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
        assert!(!live().await, "4 s without use: ended");
    }
}
