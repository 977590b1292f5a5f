//! Limits that hold across relays (issue 15, cluster mode): the edge
//! between the pure limit logic ([`super::limits::Window`],
//! [`super::sockets::SocketLimits`]) and the shared PostgreSQL tables.
//!
//! - A [`Limit`] counts in this process ([`RateLimiter`]) or, in a
//!   cluster, in the database ([`SharedRates`]): the window's log for a
//!   (limiter, key) is one row, read, decided by the same pure
//!   [`Window::admit`] and written back by compare-and-swap on its
//!   version (two round trips; a lost race reads again). Exact: every
//!   relay's events count, whichever relay saw them.
//! - WebSocket caps: each relay writes how many sockets it holds per key
//!   ([`SocketLeases`]) under a lease it renews; a socket's check reads
//!   the other relays' live counts in one round trip and adds its own from
//!   memory. A relay that dies stops counting when its lease runs out.
//!
//! Keys are stored as keyed hashes (the relays' shared signing secret):
//! the tables hold no address and no account name. A single relay
//! (without `--nats-url`) never touches any of this.
//!
//! When the database fails: a rate limit refuses (the request answers 503,
//! like every request that needs the database, and the login or pairing
//! it guards needs the database anyway); a WebSocket cap falls back to this
//! relay's own counts (the per-relay caps of a single relay still hold),
//! because refusing every runner and browser while the counts cannot be
//! read would take every terminal offline for a bookkeeping failure.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use store::{Store, StoreError};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::codes::hash_secret;
use super::limits::{LimitConfig, Moment, RateLimiter, RetryAfter, WallMs, Window};
use super::now_ms;
use super::sockets::{Elsewhere, SocketLimits};

/// Attempts of one shared admission before it gives up (refused): each
/// lost only because another relay wrote the same key meanwhile.
const SWAP_ATTEMPTS: usize = 8;
/// The longest a socket's check waits for the other relays' counts before
/// it goes on with this relay's own.
const ELSEWHERE_DEADLINE: Duration = Duration::from_secs(1);
/// How long a relay's socket counts live without renewal.
pub const SOCKET_LEASE: Duration = crate::cluster::LEASE;
/// How often a relay renews them.
pub const SOCKET_RENEW: Duration = crate::cluster::RENEW;
/// How often a relay deletes expired leases and logs.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Why a limited action did not go ahead.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    /// Over the limit: retry after this long.
    #[error("too many requests")]
    Limited(RetryAfter),
    /// The shared counts could not be read or written.
    #[error("the shared rate-limit counts failed")]
    Store(#[from] StoreError),
}

/// How a key is written before it is hashed.
pub trait LimitKey {
    /// The key as text (never stored or logged as such).
    fn text(&self) -> String;
}

impl LimitKey for IpAddr {
    fn text(&self) -> String {
        self.to_string()
    }
}

impl LimitKey for String {
    fn text(&self) -> String {
        self.clone()
    }
}

impl LimitKey for () {
    fn text(&self) -> String {
        String::new()
    }
}

/// The shared rate-limit logs (cluster mode). Cheap to clone.
#[derive(Clone)]
pub struct SharedRates {
    store: Store,
    key: Arc<[u8]>,
}

impl std::fmt::Debug for SharedRates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedRates").finish_non_exhaustive()
    }
}

impl SharedRates {
    /// Logs in `store`, keys hashed under `secret`.
    pub fn new(store: Store, secret: &[u8]) -> Self {
        SharedRates {
            store,
            key: secret.into(),
        }
    }

    /// Admits `n` events of `limiter` for `key` now (recording them when
    /// `record`): read, decide, swap; again if another relay wrote first.
    async fn admit(
        &self,
        limiter: &str,
        config: LimitConfig,
        key: &str,
        n: u32,
        record: bool,
    ) -> Result<(), LimitError> {
        let key_hash = hash_secret(&self.key, &format!("limit:{limiter}"), key);
        for _ in 0..SWAP_ATTEMPTS {
            let stored = self.store.rate_log(limiter, &key_hash).await?;
            let mut window = match &stored {
                Some(log) => Window::decode(&log.events, config.max).unwrap_or_else(|e| {
                    tracing::warn!(limiter, error = %e, "replacing a shared rate-limit log");
                    Window::default()
                }),
                None => Window::default(),
            };
            let now = WallMs(now_ms());
            window
                .admit(config, now, n, record)
                .map_err(LimitError::Limited)?;
            if !record {
                return Ok(());
            }
            let expires = window.newest().unwrap_or(now).plus(config.window);
            if self
                .store
                .swap_rate_log(
                    limiter,
                    &key_hash,
                    stored.map(|l| l.version),
                    &window.encode(),
                    expires.0,
                )
                .await?
            {
                return Ok(());
            }
        }
        tracing::warn!(limiter, "a shared rate limit stayed contended; refusing");
        Err(LimitError::Limited(RetryAfter(Duration::from_secs(1))))
    }
}

/// Where a [`Limit`] counts.
#[derive(Debug)]
enum Counter<K> {
    /// In this process.
    Local(RateLimiter<K>),
    /// Across relays, in the database.
    Shared(SharedRates),
}

/// One rate limit, named (the `limiter` label of `/metrics` and its row
/// in the shared table), counted in this process or across relays. Reads
/// the clock here, at the edge; the decision is [`Window::admit`]'s.
#[derive(Debug)]
pub struct Limit<K> {
    name: &'static str,
    config: LimitConfig,
    counter: Counter<K>,
    /// Refusals of the shared counter (the local one counts its own).
    refused: AtomicU64,
}

impl<K: std::hash::Hash + Eq + Clone + LimitKey> Limit<K> {
    /// `config` under `name`, shared across relays when `shared` is given,
    /// else counted in this process.
    pub fn new(name: &'static str, config: LimitConfig, shared: Option<&SharedRates>) -> Self {
        Limit {
            name,
            config,
            counter: match shared {
                Some(s) => Counter::Shared(s.clone()),
                None => Counter::Local(RateLimiter::new(config)),
            },
            refused: AtomicU64::new(0),
        }
    }

    /// Counted in this process only, always (limits that protect one
    /// relay's own capacity).
    pub fn local(name: &'static str, config: LimitConfig) -> Self {
        Self::new(name, config, None)
    }

    /// The name of this limit.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether it counts across relays.
    pub fn is_shared(&self) -> bool {
        matches!(self.counter, Counter::Shared(_))
    }

    /// Events refused so far by this relay.
    pub fn refused(&self) -> u64 {
        match &self.counter {
            Counter::Local(l) => l.refused(),
            Counter::Shared(_) => self.refused.load(Ordering::Relaxed),
        }
    }

    /// Records an event for `key` if the limit allows it.
    pub async fn try_acquire(&self, key: &K) -> Result<(), LimitError> {
        self.admit(key, 1, true, true).await
    }

    /// Records `n` events for `key` if the limit allows all of them (none
    /// otherwise).
    pub async fn try_acquire_n(&self, key: &K, n: u32) -> Result<(), LimitError> {
        self.admit(key, n, true, true).await
    }

    /// Whether an event for `key` would be admitted, without recording one.
    pub async fn check(&self, key: &K) -> Result<(), LimitError> {
        self.admit(key, 1, false, true).await
    }

    /// Records an event without checking (a failure counted after the
    /// fact, where [`Limit::check`] guarded the attempt); nothing when the
    /// limit is full already.
    pub async fn record(&self, key: &K) -> Result<(), StoreError> {
        match self.admit(key, 1, true, false).await {
            Ok(()) | Err(LimitError::Limited(_)) => Ok(()),
            Err(LimitError::Store(e)) => Err(e),
        }
    }

    async fn admit(&self, key: &K, n: u32, record: bool, count: bool) -> Result<(), LimitError> {
        match &self.counter {
            Counter::Local(l) => {
                let now = Instant::now();
                let r = match (record, count) {
                    (true, true) => l.try_acquire_n(key, n, now),
                    (false, _) => l.check(key, now),
                    (true, false) => {
                        l.record(key, now);
                        Ok(())
                    }
                };
                r.map_err(LimitError::Limited)
            }
            Counter::Shared(s) => {
                let r = s
                    .admit(self.name, self.config, &key.text(), n, record)
                    .await;
                if count && matches!(r, Err(LimitError::Limited(_))) {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                }
                r
            }
        }
    }
}

/// A socket's keys, as the leases name them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Held {
    Account(String),
    Addr(IpAddr),
}

/// This relay's WebSocket counts in the shared table (cluster mode): which
/// keys changed since they were last written, and who writes them.
pub struct SocketLeases {
    store: Store,
    key: Arc<[u8]>,
    relay: String,
    dirty: Mutex<HashSet<Held>>,
    wake: Notify,
}

impl std::fmt::Debug for SocketLeases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketLeases")
            .field("relay", &self.relay)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SocketLeases {
    /// Leases of relay `relay` in `store`, keys hashed under `secret`.
    pub fn new(store: Store, secret: &[u8], relay: &str) -> Self {
        SocketLeases {
            store,
            key: secret.into(),
            relay: relay.to_owned(),
            dirty: Mutex::default(),
            wake: Notify::new(),
        }
    }

    fn hash(&self, held: &Held) -> String {
        match held {
            Held::Account(a) => hash_secret(&self.key, "sockets:account", a),
            Held::Addr(a) => hash_secret(&self.key, "sockets:addr", &a.to_string()),
        }
    }

    /// A socket of `account` from `addr` came or went: write its counts
    /// soon.
    pub(crate) fn changed(&self, account: &str, addr: IpAddr) {
        let mut d = lock(&self.dirty);
        d.insert(Held::Account(account.to_owned()));
        d.insert(Held::Addr(addr));
        drop(d);
        self.wake.notify_one();
    }

    /// The sockets other relays hold for `account` and `addr` (one round
    /// trip); none when the database does not answer within a second (the
    /// caps then hold per relay).
    pub(crate) async fn elsewhere(&self, account: &str, addr: IpAddr) -> Elsewhere {
        let keys = [
            self.hash(&Held::Account(account.to_owned())),
            self.hash(&Held::Addr(addr)),
        ];
        let read = self
            .store
            .socket_counts_elsewhere(&self.relay, [&keys[0], &keys[1]], now_ms());
        match tokio::time::timeout(ELSEWHERE_DEADLINE, read).await {
            Ok(Ok([a, b])) => Elsewhere {
                account: usize::try_from(a).unwrap_or(0),
                addr: usize::try_from(b).unwrap_or(0),
            },
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "reading other relays' socket counts failed; counting this relay's only");
                Elsewhere::default()
            }
            Err(_) => {
                tracing::warn!("other relays' socket counts timed out; counting this relay's only");
                Elsewhere::default()
            }
        }
    }
}

fn lease_end() -> i64 {
    WallMs(now_ms()).plus(SOCKET_LEASE).0
}

/// Keeps this relay's socket counts in the shared table until `shutdown`:
/// writes the keys that changed (at once, a burst in one transaction),
/// renews the lease every [`SOCKET_RENEW`], prunes what expired (every
/// relay's, and the rate limits' old logs) now and then, and deletes this
/// relay's rows when it stops. Nothing to do for a relay without leases.
pub async fn keep_leases(sockets: SocketLimits, shutdown: CancellationToken) {
    let Some(leases) = sockets.leases().cloned() else {
        return;
    };
    let mut renew = tokio::time::interval(SOCKET_RENEW);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_prune = Instant::now();
    loop {
        let renewing = tokio::select! {
            () = shutdown.cancelled() => break,
            () = leases.wake.notified() => false,
            _ = renew.tick() => true,
        };
        if renewing {
            match leases
                .store
                .renew_socket_leases(&leases.relay, lease_end())
                .await
            {
                // Rows of ours were pruned (we stalled past the lease):
                // write every count again.
                Ok(rows) if rows < sockets.held_keys().len() as u64 => {
                    lock(&leases.dirty).extend(sockets.held_keys());
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "renewing the socket leases failed"),
            }
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = Instant::now();
                let now = now_ms();
                if let Err(e) = leases.store.prune_socket_leases(now).await {
                    tracing::warn!(error = %e, "pruning expired socket leases failed");
                }
                if let Err(e) = leases.store.prune_rate_logs(now).await {
                    tracing::warn!(error = %e, "pruning old rate-limit logs failed");
                }
            }
        }
        let dirty: Vec<Held> = lock(&leases.dirty).drain().collect();
        if dirty.is_empty() {
            continue;
        }
        let counts: Vec<(String, i64)> = dirty
            .iter()
            .map(|h| {
                let n = i64::try_from(sockets.count_of(h)).unwrap_or(i64::MAX);
                (leases.hash(h), n)
            })
            .collect();
        if let Err(e) = leases
            .store
            .put_socket_counts(&leases.relay, &counts, lease_end())
            .await
        {
            tracing::warn!(error = %e, "writing the socket counts failed; retrying");
            lock(&leases.dirty).extend(dirty);
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            leases.wake.notify_one();
        }
    }
    match leases.store.drop_socket_leases(&leases.relay).await {
        Ok(n) => tracing::debug!(rows = n, "socket leases dropped"),
        Err(e) => tracing::warn!(error = %e, "dropping the socket leases failed (they expire)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sockets::{Refused, SocketCaps};

    /// SQLite always, PostgreSQL too when `TEST_DATABASE_URL` is set.
    async fn stores() -> Vec<Store> {
        let mut out = vec![Store::connect("sqlite::memory:").await.expect("sqlite")];
        if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
            out.push(Store::connect(&url).await.expect("TEST_DATABASE_URL"));
        }
        out
    }

    /// A signing secret of this test's own: its keys meet no other test's.
    fn secret() -> Vec<u8> {
        crate::auth::codes::new_id().into_bytes()
    }

    #[tokio::test]
    async fn two_relays_racing_on_one_key_admit_the_limit_once() {
        for store in stores().await {
            let rates = SharedRates::new(store, &secret());
            let config = LimitConfig::new(10, Duration::from_secs(600));
            // Two relays' limiters over one table.
            let a = Arc::new(Limit::<IpAddr>::new("race", config, Some(&rates)));
            let b = Arc::new(Limit::<IpAddr>::new("race", config, Some(&rates)));
            assert!(a.is_shared());
            let key: IpAddr = "192.0.2.7".parse().expect("ip");
            let tasks: Vec<_> = (0..12)
                .map(|i| {
                    let l = if i % 2 == 0 { a.clone() } else { b.clone() };
                    tokio::spawn(async move { l.try_acquire(&key).await })
                })
                .collect();
            let mut admitted = 0;
            for t in tasks {
                match t.await.expect("task") {
                    Ok(()) => admitted += 1,
                    Err(LimitError::Limited(_)) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            assert!(admitted <= 10, "{admitted} admitted past a limit of 10");
            // No update was lost: what the racers left plus what a
            // sequential caller still gets is exactly the limit.
            let mut more = 0;
            while a.try_acquire(&key).await.is_ok() {
                more += 1;
                assert!(more <= 10, "the log lost events");
            }
            assert_eq!(admitted + more, 10);
            assert!(a.refused() + b.refused() >= 1);
            // Failures recorded after the fact count on the other relay.
            let user = "ann".to_owned();
            let fails = Limit::<String>::new(
                "fails",
                LimitConfig::new(2, Duration::from_secs(600)),
                Some(&rates),
            );
            let fails_b = Limit::<String>::new(
                "fails",
                LimitConfig::new(2, Duration::from_secs(600)),
                Some(&rates),
            );
            fails.record(&user).await.expect("record");
            assert!(fails_b.check(&user).await.is_ok());
            fails_b.record(&user).await.expect("record");
            assert!(matches!(
                fails.check(&user).await,
                Err(LimitError::Limited(_))
            ));
        }
    }

    #[tokio::test]
    async fn socket_counts_reach_the_other_relay_and_leave_with_the_relay() {
        for store in stores().await {
            let secret = secret();
            let caps = SocketCaps {
                per_account: 2,
                per_addr: 100,
                global: 100,
            };
            let relay_a = crate::auth::codes::new_id();
            let a = SocketLimits::shared(caps, SocketLeases::new(store.clone(), &secret, &relay_a));
            let b = SocketLimits::shared(
                caps,
                SocketLeases::new(store.clone(), &secret, &crate::auth::codes::new_id()),
            );
            let stop_a = CancellationToken::new();
            let task_a = tokio::spawn(keep_leases(a.clone(), stop_a.clone()));
            let addr: IpAddr = "192.0.2.8".parse().expect("ip");
            let a1 = a.acquire_cluster_wide("ann", addr).await.expect("a1");
            let _a2 = a.acquire_cluster_wide("ann", addr).await.expect("a2");
            // B sees A's two once A wrote them (at once, on change).
            let mut refused = None;
            for _ in 0..100 {
                match b.acquire_cluster_wide("ann", addr).await {
                    Err(r) => {
                        refused = Some(r);
                        break;
                    }
                    Ok(slot) => drop(slot),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(refused, Some(Refused::Account));
            // A gives one back: B admits one.
            drop(a1);
            let mut admitted = None;
            for _ in 0..100 {
                if let Ok(slot) = b.acquire_cluster_wide("ann", addr).await {
                    admitted = Some(slot);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(admitted.is_some(), "A's freed socket reached B");
            drop(admitted);
            // A stops (its socket still held in its memory): its rows go
            // with it, and B admits the account's two.
            stop_a.cancel();
            task_a.await.expect("lease task");
            let b1 = b.acquire_cluster_wide("ann", addr).await;
            let b2 = b.acquire_cluster_wide("ann", addr).await;
            assert!(b1.is_ok() && b2.is_ok(), "A's socket no longer counts on B");
        }
    }

    #[tokio::test]
    async fn without_the_database_rate_limits_refuse_and_socket_caps_count_this_relay() {
        let store = Store::connect("sqlite::memory:").await.expect("sqlite");
        let secret = secret();
        let rates = SharedRates::new(store.clone(), &secret);
        let limit = Limit::<String>::new(
            "down",
            LimitConfig::new(10, Duration::from_secs(60)),
            Some(&rates),
        );
        let caps = SocketCaps {
            per_account: 1,
            per_addr: 100,
            global: 100,
        };
        let sockets = SocketLimits::shared(caps, SocketLeases::new(store.clone(), &secret, "r"));
        store.close().await;
        assert!(
            matches!(
                limit.try_acquire(&"ann".to_owned()).await,
                Err(LimitError::Store(_))
            ),
            "a rate limit fails closed (503)"
        );
        let addr: IpAddr = "192.0.2.9".parse().expect("ip");
        let held = sockets.acquire_cluster_wide("ann", addr).await;
        assert!(
            held.is_ok(),
            "a socket cap falls back to this relay's counts"
        );
        assert_eq!(
            sockets.acquire_cluster_wide("ann", addr).await.err(),
            Some(Refused::Account),
            "which still hold"
        );
    }

    fn percentiles(mut d: Vec<Duration>) -> (Duration, Duration) {
        d.sort();
        let at = |p: f64| d[((d.len() - 1) as f64 * p).round() as usize];
        (at(0.5), at(0.99))
    }

    /// What a shared limit costs per request on PostgreSQL, for the
    /// report (not a check):
    /// `TEST_DATABASE_URL=postgres://… cargo test -p tmux-relay --release --lib auth::shared::tests::measure -- --ignored --nocapture`
    #[tokio::test]
    #[ignore = "measurement; run explicitly"]
    async fn measure_the_cost_of_shared_limits() {
        let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
            eprintln!("skipping: TEST_DATABASE_URL is not set");
            return;
        };
        let store = Store::connect(&url).await.expect("PostgreSQL");
        let secret = secret();
        let rates = SharedRates::new(store.clone(), &secret);
        let logins = Limit::<IpAddr>::new(
            "measure",
            LimitConfig::new(10, Duration::from_secs(600)),
            Some(&rates),
        );
        const N: usize = 1000;
        let (mut acquire, mut check) = (Vec::with_capacity(N), Vec::with_capacity(N));
        for i in 0..N {
            let key = IpAddr::from([10, 9, (i / 256) as u8, (i % 256) as u8]);
            let t = Instant::now();
            logins.try_acquire(&key).await.expect("fresh key");
            acquire.push(t.elapsed());
            let t = Instant::now();
            logins.check(&key).await.expect("under the limit");
            check.push(t.elapsed());
        }
        let sockets = SocketLimits::shared(
            SocketCaps::default(),
            SocketLeases::new(store, &secret, &crate::auth::codes::new_id()),
        );
        let mut connect = Vec::with_capacity(N);
        for i in 0..N {
            let addr = IpAddr::from([10, 8, (i / 256) as u8, (i % 256) as u8]);
            let t = Instant::now();
            let slot = sockets.acquire_cluster_wide("measure", addr).await;
            connect.push(t.elapsed());
            drop(slot);
        }
        let local = SocketLimits::new(SocketCaps::default());
        let mut single = Vec::with_capacity(N);
        for _ in 0..N {
            let t = Instant::now();
            let slot = local
                .acquire_cluster_wide("measure", [10, 7, 0, 1].into())
                .await;
            single.push(t.elapsed());
            drop(slot);
        }
        let (a, c, s, l) = (
            percentiles(acquire),
            percentiles(check),
            percentiles(connect),
            percentiles(single),
        );
        println!(
            "{N} each on PostgreSQL: shared try_acquire (read + swap) p50 {:?} p99 {:?}; shared check (read) p50 {:?} p99 {:?}; socket check with the other relays' counts p50 {:?} p99 {:?}; without (single relay) p50 {:?} p99 {:?}",
            a.0, a.1, c.0, c.1, s.0, s.1, l.0, l.1
        );
    }
}
