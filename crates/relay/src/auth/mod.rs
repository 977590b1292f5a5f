//! Accounts, tokens, pairing, revocation and rate limits (issue 6).
//!
//! [`Auth`] is what the relay keeps in its state: the signing keys, the
//! store handle, the rate limiters and the registry of live runner
//! connections. It is cheap to clone. It does not own any HTTP route; the
//! handlers in `crate::http::{auth, pair, runners}` call it.
//!
//! # API for the relay
//!
//! * Construction: [`Auth::open`]`(store, data_dir, AuthConfig)` loads or
//!   creates the signing secret (`<data_dir>/auth-secret`, 0600).
//! * Runner socket: [`bearer_token`]`(&headers)` then
//!   [`Auth::authenticate_runner`]`(token)` → [`RunnerIdentity`] (checks
//!   signature, `typ`, `aud`, expiry, revoked `jti`, runner row), then
//!   [`Auth::connections`]`().register(&runner_id)` and close with 1008 when
//!   the guard's `cancelled()` fires (revocation).
//! * Browser socket: [`Auth::check_origin`]`(&headers)`, then
//!   [`browser_token_from_protocols`]`(&headers)` and
//!   [`Auth::authenticate_browser`]`(token)` → [`BrowserClaims`] (the relay
//!   then checks `claims.session_id` is the session requested), then
//!   [`Auth::sockets`]`().acquire(..)` (caps), [`Auth::consume_browser_token`]
//!   (single use) and [`Auth::watch_login`] (closed with 4401 when the login
//!   ends; [`Auth::login_is_live`] at every keepalive tick catches logouts
//!   made by other relay processes).
//! * `POST /api/sessions/{id}/token`: [`CurrentLogin`] extractor (cookie),
//!   then [`Auth::mint_browser_token`]`(&login, runner_id, session_id)` after
//!   checking the session belongs to that runner.
//! * Anything else a login keeps open (the `GET /api/events` stream): take
//!   [`Auth::watch_login`]`(&login)` and end when [`LoginWatch::ended`]
//!   completes.
//! * Logout ([`Auth::logout`]), log out everywhere
//!   ([`Auth::logout_everywhere`]) and password change
//!   ([`Auth::change_password`]) end logins in the store and cancel their
//!   watches.
//! * `tmux-bridge up`: [`Auth::ensure_local_runner`]`(host)` →
//!   [`LocalRunner`] (default user plus a runner token for the embedded
//!   bridge), and [`Auth::login_link`]`(user_id)` →
//!   `<public>/login/once?code=…`.
//! * Pages: [`CurrentUser`] (rejects with 401) or `Option<CurrentUser>`.
//!
//! Time: methods read the wall clock via [`now_ms`]; the `_at` variants and
//! the pure [`tokens`] module take it as an argument for tests.

pub mod cli;
pub mod codes;
pub mod connections;
pub mod cuts;
mod extract;
pub mod limits;
pub mod logins;
mod pairing;
pub mod password;
pub mod secret;
pub mod shared;
pub mod shares;
pub mod sockets;
pub mod tokens;
pub mod users;

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use store::accounts::{RunnerRecord, UserRecord};
use store::{Store, StoreError};

pub use connections::{RunnerConnection, RunnerConnections};
pub use cuts::{Cut, CutSink};
pub use extract::{
    ClientAddr, CurrentLogin, CurrentUser, bearer_token, browser_token_from_protocols,
};
pub use limits::{LimitConfig, RateLimiter, RetryAfter};
pub use logins::{LiveLogins, LoginWatch};
pub use pairing::{PairApproved, PairCheck, PairPreview, PairStart};
pub use secret::Secret;
pub use shared::{Limit, LimitError, SharedRates};
pub use sockets::{Refused, SocketCaps, SocketLimits, SocketSlot};
pub use tokens::{BrowserClaims, RunnerClaims, TokenKeys};

/// Errors of authentication and authorization. Each maps to one HTTP
/// status; bodies never carry secrets or other users' data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No credentials where some are required.
    #[error("authentication required")]
    Unauthenticated,
    /// A token that does not verify (signature, type, audience, shape).
    #[error("invalid token")]
    InvalidToken,
    /// A token past its `exp`.
    #[error("token expired")]
    ExpiredToken,
    /// A token whose `jti` (or runner) has been revoked.
    #[error("token revoked")]
    Revoked,
    /// Wrong user name or password (never says which).
    #[error("invalid name or password")]
    BadLogin,
    /// Authenticated, but not allowed (another user's runner or session).
    #[error("forbidden")]
    Forbidden,
    /// A state-changing request or WebSocket from another origin.
    #[error("bad origin")]
    BadOrigin,
    /// A pairing code that is unknown, expired, used, or malformed.
    #[error("unknown or expired code")]
    BadCode,
    /// Not found (or not yours: the two are answered alike).
    #[error("not found")]
    NotFound,
    /// A name that is taken.
    #[error("{0}")]
    Conflict(&'static str),
    /// Malformed request.
    #[error("{0}")]
    BadRequest(&'static str),
    /// An account limit (sessions, runners) is reached.
    #[error("{0}")]
    Quota(&'static str),
    /// Too many requests; retry after the given time.
    #[error("too many requests")]
    RateLimited(RetryAfter),
    /// The store failed.
    #[error("storage error")]
    Store(#[from] StoreError),
    /// Anything else that is our fault; the text is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AuthError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::Unauthenticated
            | AuthError::InvalidToken
            | AuthError::ExpiredToken
            | AuthError::Revoked
            | AuthError::BadLogin => StatusCode::UNAUTHORIZED,
            AuthError::Forbidden | AuthError::BadOrigin | AuthError::Quota(_) => {
                StatusCode::FORBIDDEN
            }
            AuthError::BadCode | AuthError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AuthError::NotFound => StatusCode::NOT_FOUND,
            AuthError::Conflict(_) => StatusCode::CONFLICT,
            AuthError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            AuthError::Store(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            AuthError::Store(_) | AuthError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(error = %self, "database unavailable");
            "the database is unavailable; try again shortly".to_owned()
        } else if status.is_server_error() {
            tracing::error!(error = %self, "auth request failed");
            "internal error".to_owned()
        } else {
            self.to_string()
        };
        let body = serde_json::json!({ "error": message });
        let mut resp = (status, axum::Json(body)).into_response();
        if let AuthError::RateLimited(retry) = &self {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry.secs()));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(UNAVAILABLE_RETRY_SECS),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// Settings of [`Auth`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuthConfig {
    /// The relay's public URL (`http://127.0.0.1:8080`, `https://relay.example`):
    /// Origin checks compare against it, links are built on it, and cookies
    /// get `Secure` when it is https.
    pub public_url: String,
    /// Lifetime of runner tokens (default 30 days).
    pub runner_token_ttl: Duration,
    /// Longest life of a browser login (default 30 days), however often it
    /// is used.
    pub login_ttl: Duration,
    /// A browser login not used for this long ends (default 7 days); each
    /// use moves its end to now + this, up to `login_ttl` after it began.
    pub login_idle: Duration,
    /// Lifetime of one-time login codes and pairing codes (default 10 minutes).
    pub code_ttl: Duration,
    /// Pairing poll interval told to runners (default 5 s).
    pub pair_poll_interval: Duration,
    /// Caps on concurrent WebSockets.
    pub socket_caps: SocketCaps,
    /// Cluster mode: this relay's id; the rate limits and the WebSocket
    /// caps then count across relays in the database (`shared`). `None`:
    /// counted in this process.
    pub cluster_relay: Option<String>,
}

impl AuthConfig {
    /// Defaults for a relay reachable at `public_url`.
    pub fn new(public_url: impl Into<String>) -> Self {
        AuthConfig {
            public_url: public_url.into().trim_end_matches('/').to_owned(),
            runner_token_ttl: Duration::from_secs(tokens::RUNNER_TOKEN_TTL_SECS as u64),
            login_ttl: Duration::from_secs(30 * 24 * 3600),
            login_idle: Duration::from_secs(7 * 24 * 3600),
            code_ttl: Duration::from_secs(600),
            pair_poll_interval: Duration::from_secs(5),
            socket_caps: SocketCaps::default(),
            cluster_relay: None,
        }
    }

    /// Counts the limits across relays, as relay `relay_id` of a cluster.
    pub fn with_cluster(mut self, relay_id: impl Into<String>) -> Self {
        self.cluster_relay = Some(relay_id.into());
        self
    }

    /// Sets the caps on concurrent WebSockets.
    pub fn with_socket_caps(mut self, caps: SocketCaps) -> Self {
        self.socket_caps = caps;
        self
    }

    /// Sets the runner token lifetime.
    pub fn with_runner_token_ttl(mut self, ttl: Duration) -> Self {
        self.runner_token_ttl = ttl;
        self
    }
}

/// The limiters [`Auth`] enforces (presets in [`limits`]). In a cluster
/// every one counts across relays but the pairing polls', which only shed
/// one relay's load (the poll secret, not the limit, keeps codes from
/// being guessed).
#[derive(Debug)]
pub struct Limits {
    pub pair_start_per_addr: Limit<IpAddr>,
    pub pair_approve_per_user: Limit<String>,
    pub pair_wrong_per_user: Limit<String>,
    pub pair_wrong_per_addr: Limit<IpAddr>,
    pub pair_wrong_global: Limit<()>,
    pub pair_check_per_addr: Limit<IpAddr>,
    pub pair_check_global: Limit<()>,
    pub login_fail_per_addr: Limit<IpAddr>,
    pub login_fail_per_user: Limit<String>,
}

impl Limits {
    /// The presets, counted across relays through `shared` when given.
    pub fn new(shared: Option<&SharedRates>) -> Self {
        Limits {
            pair_start_per_addr: Limit::new(
                "pair_start_per_addr",
                limits::PAIR_START_PER_ADDR,
                shared,
            ),
            pair_approve_per_user: Limit::new(
                "pair_approve_per_user",
                limits::PAIR_APPROVE_PER_USER,
                shared,
            ),
            pair_wrong_per_user: Limit::new(
                "pair_wrong_per_user",
                limits::PAIR_APPROVE_WRONG_PER_USER,
                shared,
            ),
            pair_wrong_per_addr: Limit::new(
                "pair_wrong_per_addr",
                limits::PAIR_APPROVE_WRONG_PER_ADDR,
                shared,
            ),
            pair_wrong_global: Limit::new(
                "pair_wrong_global",
                limits::PAIR_APPROVE_WRONG_GLOBAL,
                shared,
            ),
            pair_check_per_addr: Limit::local("pair_check_per_addr", limits::PAIR_CHECK_PER_ADDR),
            pair_check_global: Limit::local("pair_check_global", limits::PAIR_CHECK_GLOBAL),
            login_fail_per_addr: Limit::new(
                "login_fail_per_addr",
                limits::LOGIN_FAIL_PER_ADDR,
                shared,
            ),
            login_fail_per_user: Limit::new(
                "login_fail_per_user",
                limits::LOGIN_FAIL_PER_USER,
                shared,
            ),
        }
    }

    /// How many events each limiter refused on this relay, by a fixed name
    /// (the `limiter` label of `/metrics`: never a key, so no address or
    /// account reaches it).
    pub fn refusals(&self) -> [(&'static str, u64); 9] {
        let all: [&dyn Named; 9] = [
            &self.pair_start_per_addr,
            &self.pair_approve_per_user,
            &self.pair_wrong_per_user,
            &self.pair_wrong_per_addr,
            &self.pair_wrong_global,
            &self.pair_check_per_addr,
            &self.pair_check_global,
            &self.login_fail_per_addr,
            &self.login_fail_per_user,
        ];
        all.map(|l| (l.name(), l.refused()))
    }
}

/// A limit's name and refusals, whatever its key.
trait Named {
    fn name(&self) -> &'static str;
    fn refused(&self) -> u64;
}

impl<K: std::hash::Hash + Eq + Clone + shared::LimitKey> Named for Limit<K> {
    fn name(&self) -> &'static str {
        Limit::name(self)
    }
    fn refused(&self) -> u64 {
        Limit::refused(self)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new(None)
    }
}

impl From<LimitError> for AuthError {
    fn from(e: LimitError) -> Self {
        match e {
            LimitError::Limited(retry) => AuthError::RateLimited(retry),
            LimitError::Store(e) => AuthError::Store(e),
        }
    }
}

/// A runner authenticated by its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerIdentity {
    pub user_id: String,
    pub runner_id: String,
    pub jti: String,
    /// The runner's name and host as recorded when it was paired.
    pub name: String,
    pub host: String,
}

/// The local default user and a fresh token for the embedded runner
/// (`tmux-bridge up`).
#[derive(Clone)]
pub struct LocalRunner {
    pub user_id: String,
    pub runner_id: String,
    pub runner_token: String,
}

impl std::fmt::Debug for LocalRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRunner")
            .field("user_id", &self.user_id)
            .field("runner_id", &self.runner_id)
            .finish_non_exhaustive()
    }
}

/// A runner as the page lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunnerInfo {
    pub id: String,
    pub name: String,
    pub host: String,
    pub embedded: bool,
    pub created_at: i64,
    pub last_seen_at: Option<i64>,
    pub online: bool,
    /// The runner's version and its tmux's, as its last `hello` said.
    pub version: String,
    pub tmux_version: String,
}

/// Terminal sessions one account may have.
pub const MAX_SESSIONS_PER_USER: usize = 64;
/// Runners (not revoked) one account may have.
pub const MAX_RUNNERS_PER_USER: usize = 32;

/// `Retry-After` of a 503 while the database is unavailable, in seconds.
pub const UNAVAILABLE_RETRY_SECS: u64 = 5;

/// Name of the local default user of `tmux-bridge up`.
pub const LOCAL_USER: &str = "local";

/// Milliseconds since the Unix epoch, from the wall clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Authentication state of the relay. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Auth {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    secret: Secret,
    keys: TokenKeys,
    store: Store,
    config: AuthConfig,
    public_origin: String,
    limits: Limits,
    connections: RunnerConnections,
    logins: LiveLogins,
    sockets: SocketLimits,
    /// Live viewers of share links, by link id (revocation cancels them).
    share_viewers: RunnerConnections,
    /// `POST /api/view/token` per client address.
    share_limit: Limit<IpAddr>,
    /// Cluster mode: the shared rate-limit logs (for the jobs' limits too).
    shared_rates: Option<SharedRates>,
    /// When expired account rows were last pruned (ms).
    last_prune: AtomicI64,
    /// Where cuts go besides this process (the cluster's broadcast).
    cut_sink: std::sync::OnceLock<cuts::SinkCell>,
}

/// Expired pairings, login codes, logins and revocations are pruned at most
/// this often, piggybacking on requests that create such rows.
const PRUNE_EVERY_MS: i64 = 10 * 60 * 1000;

impl Auth {
    /// Loads (or creates) the signing secret in `data_dir` and builds the
    /// auth state over `store`.
    pub fn open(store: Store, data_dir: &Path, config: AuthConfig) -> Result<Auth, AuthError> {
        let secret = Secret::load_or_create(data_dir)?;
        Auth::with_secret(store, secret, config)
    }

    /// Builds the auth state with an explicit secret (tests, or a secret
    /// managed elsewhere).
    pub fn with_secret(
        store: Store,
        secret: Secret,
        config: AuthConfig,
    ) -> Result<Auth, AuthError> {
        let public_origin = extract::origin_of(&config.public_url).ok_or(AuthError::BadRequest(
            "public URL must be http:// or https:// with a host",
        ))?;
        let socket_caps = config.socket_caps;
        let shared_rates = config
            .cluster_relay
            .as_ref()
            .map(|_| SharedRates::new(store.clone(), secret.as_bytes()));
        let sockets = match &config.cluster_relay {
            Some(relay) => SocketLimits::shared(
                socket_caps,
                shared::SocketLeases::new(store.clone(), secret.as_bytes(), relay),
            ),
            None => SocketLimits::new(socket_caps),
        };
        Ok(Auth {
            inner: Arc::new(Inner {
                keys: TokenKeys::new(&secret),
                secret,
                store,
                config,
                public_origin,
                limits: Limits::new(shared_rates.as_ref()),
                connections: RunnerConnections::new(),
                logins: LiveLogins::new(),
                sockets,
                share_viewers: RunnerConnections::new(),
                share_limit: Limit::new(
                    "share_view_token_per_addr",
                    shares::VIEW_TOKEN_PER_ADDR,
                    shared_rates.as_ref(),
                ),
                shared_rates,
                last_prune: AtomicI64::new(0),
                cut_sink: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Signing and verification keys.
    pub fn keys(&self) -> &TokenKeys {
        &self.inner.keys
    }

    /// The store handle.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The configuration.
    pub fn config(&self) -> &AuthConfig {
        &self.inner.config
    }

    /// The rate limiters.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Live runner connections (register on connect; revocation cancels).
    pub fn connections(&self) -> &RunnerConnections {
        &self.inner.connections
    }

    /// What each login keeps open in this process.
    pub fn logins(&self) -> &LiveLogins {
        &self.inner.logins
    }

    /// Caps on concurrent WebSockets.
    pub fn sockets(&self) -> &SocketLimits {
        &self.inner.sockets
    }

    /// Cluster mode: the rate-limit logs shared by the relays (other
    /// modules' limits count there too).
    pub fn shared_rates(&self) -> Option<&SharedRates> {
        self.inner.shared_rates.as_ref()
    }

    /// Refusals of every rate limiter and WebSocket cap, by name (for
    /// `/metrics`).
    pub fn refusals(&self) -> Vec<(&'static str, u64)> {
        let mut v = self.inner.limits.refusals().to_vec();
        v.push((
            self.inner.share_limit.name(),
            self.inner.share_limit.refused(),
        ));
        v.extend(self.inner.sockets.refusals());
        v
    }

    /// Registers something `login` keeps open (a WebSocket, an event
    /// stream): the watch ends when the login ends in this process.
    pub fn watch_login(&self, login: &CurrentLogin) -> LoginWatch {
        self.logins().watch(&login.user.id, &login.login_id)
    }

    /// `scheme://host[:port]` of the public URL, as browsers send `Origin`.
    pub fn public_origin(&self) -> &str {
        &self.inner.public_origin
    }

    /// Whether cookies get `Secure` (the public URL is https).
    pub fn secure_cookies(&self) -> bool {
        self.inner.public_origin.starts_with("https://")
    }

    /// Deletes expired account rows if the last pass is older than
    /// [`PRUNE_EVERY_MS`]. Failures are logged, never returned: pruning is
    /// housekeeping on someone else's request.
    pub(crate) async fn maybe_prune(&self) {
        let now = now_ms();
        let last = self.inner.last_prune.load(Ordering::Relaxed);
        if now - last < PRUNE_EVERY_MS
            || self
                .inner
                .last_prune
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        // Pairings are kept an hour past expiry so a late poll still reads
        // "expired" rather than an unknown code.
        match self.store().prune_accounts(now, now - 3_600_000).await {
            Ok(n) => tracing::debug!(rows = n, "pruned expired account rows"),
            Err(e) => tracing::warn!(error = %e, "pruning expired account rows failed"),
        }
    }

    /// Keyed hash of a secret value for storage.
    fn hash(&self, purpose: &str, value: &str) -> String {
        codes::hash_secret(self.inner.secret.as_bytes(), purpose, value)
    }

    fn runner_ttl_secs(&self) -> i64 {
        i64::try_from(self.inner.config.runner_token_ttl.as_secs()).unwrap_or(i64::MAX / 2)
    }

    /// Until when a runner token id revoked at `now` (ms) must stay listed:
    /// until every token minted with it has expired.
    fn revoked_jti_keep_until(&self, now: i64) -> i64 {
        now.saturating_add(self.runner_ttl_secs().saturating_mul(1000))
    }

    /// [`AuthConfig::code_ttl`] in milliseconds.
    fn code_ttl_ms(&self) -> i64 {
        i64::try_from(self.config().code_ttl.as_millis()).unwrap_or(600_000)
    }

    /// Authenticates a runner's bearer token at the current time.
    pub async fn authenticate_runner(&self, token: &str) -> Result<RunnerIdentity, AuthError> {
        self.authenticate_runner_at(token, now_ms()).await
    }

    /// [`Auth::authenticate_runner`] at `now_ms`: the token must verify, its
    /// `jti` must not be revoked, and it must be the current token of a
    /// runner of its `sub` that is not revoked. Records the runner as seen
    /// when the database takes the write.
    pub async fn authenticate_runner_at(
        &self,
        token: &str,
        now_ms: i64,
    ) -> Result<RunnerIdentity, AuthError> {
        let claims = self.keys().verify_runner(token, now_ms.div_euclid(1000))?;
        if self.store().is_jti_revoked(&claims.jti).await? {
            return Err(AuthError::Revoked);
        }
        let runner = self
            .store()
            .runner(&claims.runner_id)
            .await?
            .ok_or(AuthError::Revoked)?;
        let current = runner.revoked_at.is_none()
            && codes::ct_eq(runner.user_id.as_bytes(), claims.sub.as_bytes())
            && codes::ct_eq(runner.token_jti.as_bytes(), claims.jti.as_bytes());
        if !current {
            return Err(AuthError::Revoked);
        }
        // "Last seen" is a convenience: a busy database (SQLite's one
        // writer under a flood of frames and logs) must not refuse a
        // runner whose token checked out.
        if let Err(e) = self.store().touch_runner(&runner.id, now_ms).await {
            tracing::warn!(runner = %runner.id, error = %e, "recording the runner as seen failed");
        }
        Ok(RunnerIdentity {
            user_id: runner.user_id,
            runner_id: runner.id,
            jti: claims.jti,
            name: runner.name,
            host: runner.host,
        })
    }

    /// Records that a runner disconnected (its "last seen").
    pub async fn runner_disconnected(&self, runner_id: &str) -> Result<(), AuthError> {
        self.store().touch_runner(runner_id, now_ms()).await?;
        Ok(())
    }

    /// Mints a browser token for `login`'s user to open `session_id` served
    /// by `runner_id`, bound to that login. Refuses
    /// ([`AuthError::NotFound`]) unless the runner is the user's and not
    /// revoked; the caller has checked that the session belongs to that
    /// runner.
    pub async fn mint_browser_token(
        &self,
        login: &CurrentLogin,
        runner_id: &str,
        session_id: &str,
    ) -> Result<String, AuthError> {
        let now = now_ms();
        let user = &login.user;
        self.owned_runner(&user.id, runner_id).await?;
        self.keys().mint_browser(
            &user.id,
            runner_id,
            session_id,
            &login.login_id,
            &codes::new_id(),
            now.div_euclid(1000),
            tokens::BROWSER_TOKEN_TTL_SECS,
        )
    }

    /// Authenticates a browser token at the current time: it must verify as
    /// a browser token, the login that minted it must still be live, and
    /// its runner must still be its user's and not revoked. Does not
    /// consume it ([`Auth::consume_browser_token`]).
    pub async fn authenticate_browser(&self, token: &str) -> Result<BrowserClaims, AuthError> {
        self.authenticate_browser_at(token, now_ms()).await
    }

    /// [`Auth::authenticate_browser`] at `now_ms`.
    pub async fn authenticate_browser_at(
        &self,
        token: &str,
        now_ms: i64,
    ) -> Result<BrowserClaims, AuthError> {
        let claims = self.keys().verify_browser(token, now_ms.div_euclid(1000))?;
        if !self.login_is_live_at(&claims, now_ms).await? {
            return Err(AuthError::Revoked);
        }
        match self.owned_runner(&claims.sub, &claims.runner_id).await {
            Ok(_) => Ok(claims),
            Err(AuthError::NotFound) => Err(AuthError::Revoked),
            Err(e) => Err(e),
        }
    }

    /// Uses up a browser token: `Ok` exactly once per token across every
    /// relay process sharing the database, [`AuthError::Revoked`] after.
    /// Call when its WebSocket opens, after every other check.
    pub async fn consume_browser_token(&self, claims: &BrowserClaims) -> Result<(), AuthError> {
        // Remembered until the token would be refused as expired anyway.
        let keep_until = claims
            .exp
            .saturating_add(tokens::LEEWAY_SECS as i64 + 1)
            .saturating_mul(1000);
        if self
            .store()
            .consume_browser_jti(&claims.jti, keep_until)
            .await?
        {
            self.maybe_prune().await;
            Ok(())
        } else {
            Err(AuthError::Revoked)
        }
    }

    /// Whether the login that minted `claims` is still live (not logged
    /// out, not expired) and still its user's.
    pub async fn login_is_live(&self, claims: &BrowserClaims) -> Result<bool, AuthError> {
        self.login_is_live_at(claims, now_ms()).await
    }

    async fn login_is_live_at(&self, claims: &BrowserClaims, now: i64) -> Result<bool, AuthError> {
        self.login_alive_at(&claims.sub, &claims.login, now).await
    }

    /// Whether the login `login_id` of `user_id` is still live (in the
    /// store: this sees logouts made by other relay processes). For
    /// long-lived things a login keeps open (the event stream), checked
    /// now and then besides [`LoginWatch::ended`].
    pub async fn login_alive(&self, user_id: &str, login_id: &str) -> Result<bool, AuthError> {
        self.login_alive_at(user_id, login_id, now_ms()).await
    }

    async fn login_alive_at(
        &self,
        user_id: &str,
        login_id: &str,
        now: i64,
    ) -> Result<bool, AuthError> {
        Ok(self
            .store()
            .login_owner(login_id, now)
            .await?
            .is_some_and(|owner| codes::ct_eq(owner.as_bytes(), user_id.as_bytes())))
    }

    /// The runner `runner_id` if it is `user_id`'s and not revoked; else
    /// [`AuthError::NotFound`] (another user's runner is answered like a
    /// missing one).
    pub async fn owned_runner(
        &self,
        user_id: &str,
        runner_id: &str,
    ) -> Result<RunnerRecord, AuthError> {
        match self.store().runner(runner_id).await? {
            Some(r)
                if r.revoked_at.is_none()
                    && codes::ct_eq(r.user_id.as_bytes(), user_id.as_bytes()) =>
            {
                Ok(r)
            }
            _ => Err(AuthError::NotFound),
        }
    }

    /// Whether a runner of `user_id` may open the terminal session
    /// (`runner_id`, `idea`, `slot`): an existing one always, a new one
    /// only below [`MAX_SESSIONS_PER_USER`]. Call before storing the
    /// session on a runner's `hello`; refuse with close code 4003.
    pub async fn check_session_quota(
        &self,
        user_id: &str,
        runner_id: &str,
        idea: &str,
        slot: &str,
    ) -> Result<(), AuthError> {
        // Closed sessions stay readable but do not count.
        let sessions: Vec<_> = self
            .store()
            .sessions_for_user(user_id)
            .await?
            .into_iter()
            .filter(|s| s.closed_at.is_none())
            .collect();
        let exists = sessions
            .iter()
            .any(|s| s.runner_id == runner_id && s.idea == idea && s.slot == slot);
        if exists || sessions.len() < MAX_SESSIONS_PER_USER {
            Ok(())
        } else {
            Err(AuthError::Quota(
                "terminal session limit of this account reached",
            ))
        }
    }

    /// The user's runners with their online state.
    pub async fn list_runners(&self, user_id: &str) -> Result<Vec<RunnerInfo>, AuthError> {
        let runners = self.store().runners_of_user(user_id).await?;
        let versions = self.store().runner_versions(user_id).await?;
        Ok(runners
            .into_iter()
            .map(|r| {
                let (version, tmux_version) = versions
                    .iter()
                    .find(|(id, _, _)| *id == r.id)
                    .map(|(_, v, t)| (v.clone(), t.clone()))
                    .unwrap_or_default();
                (r, version, tmux_version)
            })
            .map(|(r, version, tmux_version)| RunnerInfo {
                online: self.connections().is_online(&r.id),
                version,
                tmux_version,
                id: r.id,
                name: r.name,
                host: r.host,
                embedded: r.embedded,
                created_at: r.created_at,
                last_seen_at: r.last_seen_at,
            })
            .collect())
    }

    /// Revokes one of the user's runners: its token id is revoked and its
    /// live connections are cancelled. [`AuthError::NotFound`] if it is not
    /// the user's (or is revoked already).
    pub async fn revoke_runner(&self, user_id: &str, runner_id: &str) -> Result<(), AuthError> {
        let now = now_ms();
        let keep_until = self.revoked_jti_keep_until(now);
        let revoked = self
            .store()
            .revoke_runner(user_id, runner_id, now, keep_until)
            .await?;
        if revoked.is_none() {
            return Err(AuthError::NotFound);
        }
        let cut = self.cut(Cut::Runner {
            runner_id: runner_id.to_owned(),
        });
        tracing::info!(runner = %runner_id, connections = cut, "runner revoked");
        let name = match self.store().runner(runner_id).await {
            Ok(Some(r)) => r.name,
            _ => String::new(),
        };
        self.record_runner_event(user_id, runner_id, &name, "runner_revoked")
            .await;
        Ok(())
    }

    /// Adds a runner event (`runner_paired`, `runner_revoked`) to the
    /// account's activity feed; a failure is logged, never fatal.
    pub(crate) async fn record_runner_event(
        &self,
        user_id: &str,
        runner_id: &str,
        runner_name: &str,
        kind: &str,
    ) {
        let e = store::NewEvent {
            user_id,
            at: now_ms(),
            kind,
            runner_id,
            runner_name,
            session_id: None,
            idea: None,
            slot: None,
            detail: None,
        };
        if let Err(err) = self.store().add_event(&e).await {
            tracing::warn!(kind, error = %err, "recording an activity event failed");
        }
    }

    /// Ensures the local default user ([`LOCAL_USER`], no password) and its
    /// embedded runner exist, gives that runner a new token id (revoking
    /// the previous one) and returns a runner token for the embedded
    /// bridge.
    pub async fn ensure_local_runner(&self, host: &str) -> Result<LocalRunner, AuthError> {
        let now = now_ms();
        let user = self.ensure_user_without_password(LOCAL_USER, now).await?;
        let jti = codes::new_id();
        let runner_id = match self.store().embedded_runner(&user.id).await? {
            Some(r) => {
                let keep_until = self.revoked_jti_keep_until(now);
                if !self
                    .store()
                    .rotate_runner_jti(&r.id, &jti, now, keep_until)
                    .await?
                {
                    return Err(AuthError::Internal(
                        "embedded runner vanished while rotating".into(),
                    ));
                }
                r.id
            }
            None => {
                let rec = RunnerRecord {
                    id: codes::new_id(),
                    user_id: user.id.clone(),
                    name: "local".into(),
                    host: users::clean_label(host, "localhost"),
                    embedded: true,
                    token_jti: jti.clone(),
                    created_at: now,
                    last_seen_at: None,
                    revoked_at: None,
                };
                self.store().create_runner(&rec).await?;
                rec.id
            }
        };
        let runner_token = self.keys().mint_runner(
            &user.id,
            &runner_id,
            &jti,
            now.div_euclid(1000),
            self.runner_ttl_secs(),
        )?;
        Ok(LocalRunner {
            user_id: user.id,
            runner_id,
            runner_token,
        })
    }

    async fn ensure_user_without_password(
        &self,
        name: &str,
        now: i64,
    ) -> Result<UserRecord, AuthError> {
        if let Some(u) = self.store().user_by_name(name).await? {
            return Ok(u);
        }
        if let Some(u) = self
            .store()
            .create_user(&codes::new_id(), name, None, now)
            .await?
        {
            return Ok(u);
        }
        // Created concurrently by another caller.
        self.store()
            .user_by_name(name)
            .await?
            .ok_or(AuthError::Internal("local user missing".into()))
    }

    /// A one-time login URL for `user_id`: `<public>/login/once?code=…`,
    /// single use, valid for [`AuthConfig::code_ttl`].
    pub async fn login_link(&self, user_id: &str) -> Result<String, AuthError> {
        let code = codes::random_token(32);
        self.store()
            .create_login_code(
                &self.hash("login-code", &code),
                user_id,
                now_ms().saturating_add(self.code_ttl_ms()),
            )
            .await?;
        Ok(format!(
            "{}/login/once?code={code}",
            self.config().public_url
        ))
    }

    /// Checks the `Origin` of a state-changing request or WebSocket
    /// handshake against the public URL. Without `Origin`, a request passes
    /// only if `Sec-Fetch-Site` says `same-origin`.
    pub fn check_origin(&self, headers: &HeaderMap) -> Result<(), AuthError> {
        extract::check_origin(self.public_origin(), headers)
    }
}

#[cfg(test)]
mod tests;
