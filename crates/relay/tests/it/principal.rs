//! Users, runners and tokens for tests, made the way the relay makes them:
//! rows in the real store and JWTs signed with the relay's own secret (read
//! from its data dir).

use relay::auth::secret::Secret;
use relay::auth::tokens::TokenKeys;
use store::accounts::RunnerRecord;

use crate::harness::{TestRelay, unique};

/// A user with one runner and that runner's token.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: String,
    pub runner_id: String,
    pub jti: String,
    pub runner_token: String,
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
    Principal {
        user_id,
        runner_id,
        jti,
        runner_token,
    }
}

pub fn browser_token(relay: &TestRelay, p: &Principal, session_id: &str) -> String {
    keys(relay)
        .mint_browser(
            &p.user_id,
            &p.runner_id,
            session_id,
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
            &unique("bjti"),
            now() - 3600,
            300,
        )
        .expect("mint browser token")
}
