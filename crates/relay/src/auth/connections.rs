//! Live runner connections, so that revoking a runner cuts its sockets.
//!
//! The runner WebSocket handler registers each connection after
//! authenticating it and keeps the returned [`RunnerConnection`] for the
//! connection's lifetime; its token is cancelled when the runner is
//! revoked. Dropping the guard deregisters the connection. The registry also
//! answers whether a runner is online (at least one live connection).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

type Map = HashMap<String, HashMap<u64, CancellationToken>>;

/// Registry of live runner connections. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct RunnerConnections {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    map: Mutex<Map>,
    next: AtomicU64,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Map> {
        match self.map.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// One registered runner connection. Select on [`RunnerConnection::cancelled`]
/// (or clone [`RunnerConnection::token`]) in the connection's loop and close
/// the socket with code 1008 ("runner revoked") when it fires.
#[derive(Debug)]
pub struct RunnerConnection {
    registry: Arc<Inner>,
    runner_id: String,
    key: u64,
    token: CancellationToken,
}

impl RunnerConnection {
    /// The runner this connection belongs to.
    pub fn runner_id(&self) -> &str {
        &self.runner_id
    }

    /// Cancelled when the runner is revoked.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Completes when the runner is revoked.
    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }

    /// Whether the runner has been revoked.
    pub fn is_revoked(&self) -> bool {
        self.token.is_cancelled()
    }
}

impl Drop for RunnerConnection {
    fn drop(&mut self) {
        let mut map = self.registry.lock();
        if let Some(conns) = map.get_mut(&self.runner_id) {
            conns.remove(&self.key);
            if conns.is_empty() {
                map.remove(&self.runner_id);
            }
        }
    }
}

impl RunnerConnections {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a live connection of `runner_id`.
    pub fn register(&self, runner_id: &str) -> RunnerConnection {
        let key = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let token = CancellationToken::new();
        self.inner
            .lock()
            .entry(runner_id.to_owned())
            .or_default()
            .insert(key, token.clone());
        RunnerConnection {
            registry: self.inner.clone(),
            runner_id: runner_id.to_owned(),
            key,
            token,
        }
    }

    /// Cancels every live connection of `runner_id`; returns how many.
    pub fn revoke(&self, runner_id: &str) -> usize {
        let conns = self.inner.lock().remove(runner_id).unwrap_or_default();
        for token in conns.values() {
            token.cancel();
        }
        conns.len()
    }

    /// Whether `runner_id` has a live connection.
    pub fn is_online(&self, runner_id: &str) -> bool {
        self.inner
            .lock()
            .get(runner_id)
            .is_some_and(|c| !c.is_empty())
    }

    /// Live connections of `runner_id`.
    pub fn count(&self, runner_id: &str) -> usize {
        self.inner.lock().get(runner_id).map_or(0, HashMap::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn revoke_cancels_every_connection_of_that_runner_only() {
        let reg = RunnerConnections::new();
        let a1 = reg.register("a");
        let a2 = reg.register("a");
        let b = reg.register("b");
        assert!(reg.is_online("a"));
        assert_eq!(reg.count("a"), 2);
        assert_eq!(reg.revoke("a"), 2);
        a1.cancelled().await;
        assert!(a2.is_revoked());
        assert!(!b.is_revoked());
        assert!(!reg.is_online("a"));
        drop(b);
        assert!(!reg.is_online("b"), "dropping the guard deregisters");
        assert_eq!(reg.revoke("nobody"), 0);
    }
}
