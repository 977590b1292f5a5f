//! What each browser login has open in this relay process, so that ending
//! a login ends what it opened (issue 10): logout cancels the login's
//! watchers, "log out everywhere" and a password change cancel every
//! watcher of the account.
//!
//! Whatever a login keeps open (a browser WebSocket, the `GET /api/events`
//! stream) takes a [`LoginWatch`] with [`super::Auth::watch_login`] and ends
//! when [`LoginWatch::ended`] completes. Dropping the watch deregisters it.
//! Other relay processes on the same database learn of an ended login when
//! they next check it in the store (browser sockets do at every keepalive
//! tick: [`super::Auth::login_is_live`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

/// user id → login id → watch key → token.
type Map = HashMap<String, HashMap<String, HashMap<u64, CancellationToken>>>;

/// Registry of live login watchers. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct LiveLogins {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    map: Mutex<Map>,
    next: AtomicU64,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Map> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One open thing of a login. Select on [`LoginWatch::ended`] and close
/// (browser sockets with 4401) when it completes.
#[derive(Debug)]
pub struct LoginWatch {
    registry: Arc<Inner>,
    user_id: String,
    login_id: String,
    key: u64,
    token: CancellationToken,
}

impl LoginWatch {
    /// Completes when the login ends (logout, log out everywhere, password
    /// change) in this process.
    pub async fn ended(&self) {
        self.token.cancelled().await
    }

    /// Whether the login has ended.
    pub fn has_ended(&self) -> bool {
        self.token.is_cancelled()
    }

    /// A token cancelled when the login ends.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// The login watched.
    pub fn login_id(&self) -> &str {
        &self.login_id
    }
}

impl Drop for LoginWatch {
    fn drop(&mut self) {
        let mut map = self.registry.lock();
        if let Some(logins) = map.get_mut(&self.user_id) {
            if let Some(watches) = logins.get_mut(&self.login_id) {
                watches.remove(&self.key);
                if watches.is_empty() {
                    logins.remove(&self.login_id);
                }
            }
            if logins.is_empty() {
                map.remove(&self.user_id);
            }
        }
    }
}

impl LiveLogins {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers something `login_id` (of `user_id`) keeps open.
    pub fn watch(&self, user_id: &str, login_id: &str) -> LoginWatch {
        let key = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let token = CancellationToken::new();
        self.inner
            .lock()
            .entry(user_id.to_owned())
            .or_default()
            .entry(login_id.to_owned())
            .or_default()
            .insert(key, token.clone());
        LoginWatch {
            registry: self.inner.clone(),
            user_id: user_id.to_owned(),
            login_id: login_id.to_owned(),
            key,
            token,
        }
    }

    /// Ends everything one login keeps open; returns how many.
    pub fn end_login(&self, user_id: &str, login_id: &str) -> usize {
        let watches = {
            let mut map = self.inner.lock();
            let Some(logins) = map.get_mut(user_id) else {
                return 0;
            };
            let w = logins.remove(login_id).unwrap_or_default();
            if logins.is_empty() {
                map.remove(user_id);
            }
            w
        };
        watches.values().for_each(CancellationToken::cancel);
        watches.len()
    }

    /// Ends everything every login of `user_id` keeps open; returns how
    /// many.
    pub fn end_user(&self, user_id: &str) -> usize {
        let logins = self.inner.lock().remove(user_id).unwrap_or_default();
        let mut n = 0;
        for watches in logins.values() {
            watches.values().for_each(CancellationToken::cancel);
            n += watches.len();
        }
        n
    }

    /// How many things `user_id`'s logins keep open.
    pub fn count(&self, user_id: &str) -> usize {
        self.inner
            .lock()
            .get(user_id)
            .map_or(0, |l| l.values().map(HashMap::len).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ending_a_login_or_a_user_cancels_exactly_theirs() {
        let reg = LiveLogins::new();
        let a1 = reg.watch("ann", "l1");
        let a1b = reg.watch("ann", "l1");
        let a2 = reg.watch("ann", "l2");
        let b = reg.watch("ben", "l3");
        assert_eq!(reg.count("ann"), 3);
        assert_eq!(reg.end_login("ann", "l1"), 2);
        a1.ended().await;
        assert!(a1b.has_ended());
        assert!(!a2.has_ended() && !b.has_ended());
        assert_eq!(reg.end_login("ann", "l1"), 0, "already ended");
        assert_eq!(reg.end_user("ann"), 1);
        assert!(a2.has_ended() && !b.has_ended());
        drop(b);
        assert_eq!(reg.count("ben"), 0, "dropping deregisters");
        assert_eq!(reg.end_user("ben"), 0);
    }
}
