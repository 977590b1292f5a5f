//! Users, runners and tokens for tests, made the way the relay makes them:
//! rows in the real store and JWTs signed with the relay's own secret (read
//! from its data dir).

use relay::auth::secret::Secret;
use relay::auth::tokens::TokenKeys;
use store::accounts::RunnerRecord;

use crate::harness::{TestRelay, unique};

/// A user with one runner and that runner's token, and one browser login
/// (the cookie's value and the login's id: browser tokens are bound to it).
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: String,
    pub runner_id: String,
    pub jti: String,
    pub runner_token: String,
    pub login_id: String,
    /// `Cookie` header value of the login.
    pub cookie: String,
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn keys(relay: &TestRelay) -> TokenKeys {
    TokenKeys::new(&Secret::load_or_create(&relay.config.data_dir).expect("relay secret"))
}

pub async fn new_principal(relay: &TestRelay) -> Principal {
    let store = relay.handle().store();
    let user_id = unique("user");
    store
        .create_user(&user_id, &user_id, None, now() * 1000)
        .await
        .expect("create user")
        .expect("fresh user name");
    let runner_id = unique("runner");
    let jti = unique("jti");
    store
        .create_runner(&RunnerRecord {
            id: runner_id.clone(),
            user_id: user_id.clone(),
            name: "test".into(),
            host: "test-host".into(),
            embedded: false,
            token_jti: jti.clone(),
            created_at: now() * 1000,
            last_seen_at: None,
            revoked_at: None,
        })
        .await
        .expect("create runner");
    let runner_token = keys(relay)
        .mint_runner(&user_id, &runner_id, &jti, now(), 3600)
        .expect("mint runner token");
    let (login_id, cookie) = new_login(relay, &user_id).await;
    Principal {
        user_id,
        runner_id,
        jti,
        runner_token,
        login_id,
        cookie,
    }
}

/// A new browser login of `user_id`: `(login id, Cookie header value)`.
pub async fn new_login(relay: &TestRelay, user_id: &str) -> (String, String) {
    let auth = relay.handle().auth();
    let value = auth
        .start_browser_login(user_id)
        .await
        .expect("browser login");
    let cookie = format!("{}={value}", auth.cookie_name());
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("cookie", cookie.parse().expect("cookie header"));
    let login_id = auth
        .login_from_headers(&headers)
        .await
        .expect("q")
        .expect("live login")
        .login_id;
    (login_id, cookie)
}

/// A browser token of `p`'s user under the login `login_id`.
pub fn browser_token_under(
    relay: &TestRelay,
    p: &Principal,
    login_id: &str,
    session_id: &str,
) -> String {
    keys(relay)
        .mint_browser(
            &p.user_id,
            &p.runner_id,
            session_id,
            login_id,
            &unique("bjti"),
            now(),
            300,
        )
        .expect("mint browser token")
}

pub fn browser_token(relay: &TestRelay, p: &Principal, session_id: &str) -> String {
    keys(relay)
        .mint_browser(
            &p.user_id,
            &p.runner_id,
            session_id,
            &p.login_id,
            &unique("bjti"),
            now(),
            300,
        )
        .expect("mint browser token")
}

pub fn expired_browser_token(relay: &TestRelay, p: &Principal, session_id: &str) -> String {
    keys(relay)
        .mint_browser(
            &p.user_id,
            &p.runner_id,
            session_id,
            &p.login_id,
            &unique("bjti"),
            now() - 3600,
            300,
        )
        .expect("mint browser token")
}
