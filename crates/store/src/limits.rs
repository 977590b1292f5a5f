//! Limits counted across relays (issue 15, cluster mode): the rate limits'
//! sliding-window logs and the WebSockets each relay holds, under a lease.
//! Schema: `migrations/*/0070_shared_limits.sql`.
//!
//! It decides nothing: a log is opaque bytes replaced by compare-and-swap
//! on its version (the relay's pure limiter reads it, decides and writes
//! it back), keys arrive hashed, and every time is an argument in
//! milliseconds since the Unix epoch.

use crate::{Millis, Store, StoreError, on_db};

/// A rate limit's stored log and the version a swap must name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLog {
    pub events: Vec<u8>,
    pub version: i64,
}

impl Store {
    /// The log of `limiter` for `key_hash`, if one is stored.
    pub async fn rate_log(
        &self,
        limiter: &str,
        key_hash: &str,
    ) -> Result<Option<RateLog>, StoreError> {
        let row: Option<(Vec<u8>, i64)> = on_db!(self.db(), pool => {
            sqlx::query_as("SELECT events, version FROM rate_limit_logs WHERE limiter = $1 AND key_hash = $2")
                .bind(limiter).bind(key_hash).fetch_optional(pool).await?
        });
        Ok(row.map(|(events, version)| RateLog { events, version }))
    }

    /// Replaces the log of `limiter` for `key_hash` if it is still at
    /// `expected` (`None`: no log stored yet); `false` when another writer
    /// came first (read it again and retry). `expires_at`: when every event
    /// of `events` has left the window.
    pub async fn swap_rate_log(
        &self,
        limiter: &str,
        key_hash: &str,
        expected: Option<i64>,
        events: &[u8],
        expires_at: Millis,
    ) -> Result<bool, StoreError> {
        let n = on_db!(self.db(), pool => {
            match expected {
                None => sqlx::query("INSERT INTO rate_limit_logs (limiter, key_hash, events, version, expires_at) \
                                     VALUES ($1, $2, $3, 1, $4) ON CONFLICT (limiter, key_hash) DO NOTHING")
                    .bind(limiter).bind(key_hash).bind(events).bind(expires_at)
                    .execute(pool).await?.rows_affected(),
                Some(v) => sqlx::query("UPDATE rate_limit_logs SET events = $3, version = version + 1, expires_at = $4 \
                                        WHERE limiter = $1 AND key_hash = $2 AND version = $5")
                    .bind(limiter).bind(key_hash).bind(events).bind(expires_at).bind(v)
                    .execute(pool).await?.rows_affected(),
            }
        });
        Ok(n == 1)
    }

    /// Deletes the logs whose events have all left their window by `now`.
    pub async fn prune_rate_logs(&self, now: Millis) -> Result<u64, StoreError> {
        Ok(on_db!(self.db(), pool => {
            sqlx::query("DELETE FROM rate_limit_logs WHERE expires_at <= $1")
                .bind(now).execute(pool).await?.rows_affected()
        }))
    }

    /// Sets the WebSockets `relay` holds per key (`count` 0 deletes the
    /// key's row), each under a lease until `expires_at`, in one
    /// transaction.
    pub async fn put_socket_counts(
        &self,
        relay: &str,
        counts: &[(String, i64)],
        expires_at: Millis,
    ) -> Result<(), StoreError> {
        if counts.is_empty() {
            return Ok(());
        }
        on_db!(self.db(), pool => {
            let mut tx = pool.begin().await?;
            for (key, count) in counts {
                if *count > 0 {
                    sqlx::query("INSERT INTO socket_leases (key_hash, relay, count, expires_at) VALUES ($1, $2, $3, $4) \
                                 ON CONFLICT (key_hash, relay) DO UPDATE SET count = excluded.count, expires_at = excluded.expires_at")
                        .bind(key).bind(relay).bind(count).bind(expires_at)
                        .execute(&mut *tx).await?;
                } else {
                    sqlx::query("DELETE FROM socket_leases WHERE key_hash = $1 AND relay = $2")
                        .bind(key).bind(relay).execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Renews every lease of `relay` until `expires_at`; returns how many
    /// rows it holds (fewer than it counts: some expired and were pruned,
    /// so it should write them again).
    pub async fn renew_socket_leases(
        &self,
        relay: &str,
        expires_at: Millis,
    ) -> Result<u64, StoreError> {
        Ok(on_db!(self.db(), pool => {
            sqlx::query("UPDATE socket_leases SET expires_at = $2 WHERE relay = $1")
                .bind(relay).bind(expires_at).execute(pool).await?.rows_affected()
        }))
    }

    /// WebSockets held by relays other than `relay` under a lease live at
    /// `now`, summed for each of `keys` (in order): one round trip.
    pub async fn socket_counts_elsewhere(
        &self,
        relay: &str,
        keys: [&str; 2],
        now: Millis,
    ) -> Result<[i64; 2], StoreError> {
        const SUM: &str = "(SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM socket_leases \
                           WHERE key_hash = ";
        let sql = format!(
            "SELECT {SUM}$1 AND relay <> $3 AND expires_at > $4), {SUM}$2 AND relay <> $3 AND expires_at > $4)"
        );
        let (a, b): (i64, i64) = on_db!(self.db(), pool => {
            sqlx::query_as(&sql).bind(keys[0]).bind(keys[1]).bind(relay).bind(now)
                .fetch_one(pool).await?
        });
        Ok([a, b])
    }

    /// Deletes every lease of `relay` (it stops) and returns how many.
    pub async fn drop_socket_leases(&self, relay: &str) -> Result<u64, StoreError> {
        Ok(on_db!(self.db(), pool => {
            sqlx::query("DELETE FROM socket_leases WHERE relay = $1")
                .bind(relay).execute(pool).await?.rows_affected()
        }))
    }

    /// Deletes the leases that expired by `now` (relays that died).
    pub async fn prune_socket_leases(&self, now: Millis) -> Result<u64, StoreError> {
        Ok(on_db!(self.db(), pool => {
            sqlx::query("DELETE FROM socket_leases WHERE expires_at <= $1")
                .bind(now).execute(pool).await?.rows_affected()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn stores() -> Vec<Store> {
        let mut out = vec![Store::connect("sqlite::memory:").await.expect("sqlite")];
        if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
            out.push(
                Store::connect(&url)
                    .await
                    .expect("TEST_DATABASE_URL is set but unreachable"),
            );
        }
        out
    }

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

    #[tokio::test]
    async fn a_rate_log_is_swapped_only_from_the_version_read() {
        for s in stores().await {
            let key = uid("k");
            assert_eq!(s.rate_log("login", &key).await.expect("read"), None);
            assert!(
                s.swap_rate_log("login", &key, None, b"one", 1_000)
                    .await
                    .expect("insert")
            );
            assert!(
                !s.swap_rate_log("login", &key, None, b"again", 1_000)
                    .await
                    .expect("second insert"),
                "a second first writer loses"
            );
            let log = s.rate_log("login", &key).await.expect("read").expect("row");
            assert_eq!(log.events, b"one");
            assert!(
                s.swap_rate_log("login", &key, Some(log.version), b"two", 2_000)
                    .await
                    .expect("swap")
            );
            assert!(
                !s.swap_rate_log("login", &key, Some(log.version), b"stale", 2_000)
                    .await
                    .expect("stale swap"),
                "a writer holding an old version loses"
            );
            let now = s.rate_log("login", &key).await.expect("read").expect("row");
            assert_eq!(now.events, b"two");
            assert_eq!(now.version, log.version + 1);
            assert_eq!(
                s.rate_log("pairing", &key).await.expect("read"),
                None,
                "limiters are apart"
            );
            s.prune_rate_logs(1_999).await.expect("prune");
            assert!(s.rate_log("login", &key).await.expect("read").is_some());
            assert!(s.prune_rate_logs(2_000).await.expect("prune") >= 1);
            assert_eq!(s.rate_log("login", &key).await.expect("read"), None);
        }
    }

    #[tokio::test]
    async fn socket_counts_elsewhere_sum_other_relays_under_live_leases() {
        for s in stores().await {
            let (a, b, c) = (uid("relay-a"), uid("relay-b"), uid("relay-c"));
            let (acct, addr) = (uid("acct"), uid("addr"));
            s.put_socket_counts(&a, &[(acct.clone(), 3), (addr.clone(), 2)], 10_000)
                .await
                .expect("put a");
            s.put_socket_counts(&b, &[(acct.clone(), 4)], 20_000)
                .await
                .expect("put b");
            let from_c = s
                .socket_counts_elsewhere(&c, [&acct, &addr], 5_000)
                .await
                .expect("sum");
            assert_eq!(from_c, [7, 2]);
            let from_a = s
                .socket_counts_elsewhere(&a, [&acct, &addr], 5_000)
                .await
                .expect("sum");
            assert_eq!(from_a, [4, 0], "a relay's own rows are not counted");
            // A's lease runs out: its counts stop counting.
            let later = s
                .socket_counts_elsewhere(&c, [&acct, &addr], 10_000)
                .await
                .expect("sum");
            assert_eq!(later, [4, 0]);
            // Renewed, they count again; a zero count deletes the row.
            assert_eq!(s.renew_socket_leases(&a, 30_000).await.expect("renew"), 2);
            s.put_socket_counts(&a, &[(addr.clone(), 0)], 30_000)
                .await
                .expect("zero");
            assert_eq!(
                s.socket_counts_elsewhere(&c, [&acct, &addr], 10_000)
                    .await
                    .expect("sum"),
                [7, 0]
            );
            assert_eq!(s.renew_socket_leases(&a, 30_000).await.expect("renew"), 1);
            assert_eq!(s.drop_socket_leases(&a).await.expect("drop"), 1);
            s.prune_socket_leases(20_000).await.expect("prune");
            assert_eq!(
                s.socket_counts_elsewhere(&c, [&acct, &addr], 0)
                    .await
                    .expect("sum"),
                [0, 0],
                "b's expired lease was pruned, a's dropped"
            );
        }
    }
}
