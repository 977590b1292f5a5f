//! Keyed rate limiters (sliding window) and the relay's limit presets.
//!
//! A [`RateLimiter`] admits at most `max` events per `window` per key and
//! answers a refused event with how long to wait (the `Retry-After` of a
//! 429). Time is an argument (`Instant`), so tests step it. Memory is
//! bounded: at most `max_keys` keys are tracked; when full, keys whose
//! events have all expired are dropped, and if none has, the new key is
//! refused (fail closed) rather than growing without bound. Each limiter
//! counts the events it refused (`/metrics`: `tmux_relay_rate_limited`).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One limit: `max` events per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitConfig {
    /// Events admitted per window.
    pub max: u32,
    /// Length of the sliding window.
    pub window: Duration,
}

impl LimitConfig {
    /// `max` events per `window`.
    pub const fn new(max: u32, window: Duration) -> Self {
        LimitConfig { max, window }
    }
}

/// `POST /api/pair/start`: 3 per 5 minutes per client address.
pub const PAIR_START_PER_ADDR: LimitConfig = LimitConfig::new(3, Duration::from_secs(300));
/// Wrong pairing codes per user: 5 per 10 minutes.
pub const PAIR_APPROVE_WRONG_PER_USER: LimitConfig = LimitConfig::new(5, Duration::from_secs(600));
/// Wrong pairing codes per client address: 10 per 10 minutes.
pub const PAIR_APPROVE_WRONG_PER_ADDR: LimitConfig = LimitConfig::new(10, Duration::from_secs(600));
/// Wrong pairing codes relay-wide: 100 per 10 minutes. With 35-bit codes
/// and even 1,000 codes pending at once, a guesser needs about 80 years of
/// this budget for an even chance at any one of them.
pub const PAIR_APPROVE_WRONG_GLOBAL: LimitConfig = LimitConfig::new(100, Duration::from_secs(600));
/// Pairing approvals attempted per user (right or wrong): 20 per 10 minutes.
pub const PAIR_APPROVE_PER_USER: LimitConfig = LimitConfig::new(20, Duration::from_secs(600));
/// `GET /api/pair/check` per client address: 60 per minute (a runner
/// polls every 5 s: room for five pairings behind one address).
pub const PAIR_CHECK_PER_ADDR: LimitConfig = LimitConfig::new(60, Duration::from_secs(60));
/// `GET /api/pair/check` relay-wide: 3,000 per minute (250 pairings
/// polling at once).
pub const PAIR_CHECK_GLOBAL: LimitConfig = LimitConfig::new(3000, Duration::from_secs(60));
/// Login attempts (failed) per client address: 10 per 10 minutes.
pub const LOGIN_FAIL_PER_ADDR: LimitConfig = LimitConfig::new(10, Duration::from_secs(600));
/// Login attempts (failed) per user name: 10 per 10 minutes.
pub const LOGIN_FAIL_PER_USER: LimitConfig = LimitConfig::new(10, Duration::from_secs(600));

/// Keys tracked per limiter before old ones are evicted.
const DEFAULT_MAX_KEYS: usize = 100_000;

/// A refused event: retry after this long (at least one second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds for a `Retry-After` header, rounded up, at least 1.
    pub fn secs(&self) -> u64 {
        let s = self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0);
        s.max(1)
    }
}

/// A sliding-window limiter keyed by `K` (an address, a user id, `()` for a
/// global limit).
#[derive(Debug)]
pub struct RateLimiter<K> {
    config: LimitConfig,
    max_keys: usize,
    events: Mutex<HashMap<K, VecDeque<Instant>>>,
    /// Events refused by `try_acquire` and `check` so far.
    refused: AtomicU64,
}

impl<K: std::hash::Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter for `config`.
    pub fn new(config: LimitConfig) -> Self {
        Self::with_max_keys(config, DEFAULT_MAX_KEYS)
    }

    /// A limiter that tracks at most `max_keys` keys.
    pub fn with_max_keys(config: LimitConfig, max_keys: usize) -> Self {
        RateLimiter {
            config,
            max_keys: max_keys.max(1),
            events: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
        }
    }

    /// How many events [`RateLimiter::try_acquire`] and
    /// [`RateLimiter::check`] refused since the limiter was made.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// The limit this limiter enforces.
    pub fn config(&self) -> LimitConfig {
        self.config
    }

    /// Records an event for `key` at `now` if the limit allows it.
    pub fn try_acquire(&self, key: &K, now: Instant) -> Result<(), RetryAfter> {
        self.count(self.check_inner(key, now, 1, true))
    }

    /// Records `n` events for `key` at `now` if the limit allows all of
    /// them (none otherwise).
    pub fn try_acquire_n(&self, key: &K, n: u32, now: Instant) -> Result<(), RetryAfter> {
        self.count(self.check_inner(key, now, n, true))
    }

    /// Whether an event for `key` would be admitted at `now`, without
    /// recording one.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), RetryAfter> {
        self.count(self.check_inner(key, now, 1, false))
    }

    fn count(&self, r: Result<(), RetryAfter>) -> Result<(), RetryAfter> {
        if r.is_err() {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// Records an event without checking (used to count failures after the
    /// fact, where [`RateLimiter::check`] guarded the attempt).
    pub fn record(&self, key: &K, now: Instant) {
        let _ = self.check_inner(key, now, 1, true);
    }

    fn check_inner(&self, key: &K, now: Instant, n: u32, record: bool) -> Result<(), RetryAfter> {
        let window = self.config.window;
        let mut map = match self.events.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !map.contains_key(key) && map.len() >= self.max_keys {
            map.retain(|_, q| {
                prune(q, now, window);
                !q.is_empty()
            });
            if map.len() >= self.max_keys {
                return Err(RetryAfter(window));
            }
        }
        let queue = map.entry(key.clone()).or_default();
        prune(queue, now, window);
        if n > self.config.max {
            return Err(RetryAfter(window));
        }
        let max = self.config.max as usize;
        if queue.len() + n as usize > max {
            // Wait until enough of the oldest events expire.
            let freeing = (queue.len() + n as usize - max).saturating_sub(1);
            let oldest = queue.get(freeing).copied().unwrap_or(now);
            let wait = (oldest + window).saturating_duration_since(now);
            return Err(RetryAfter(wait.max(Duration::from_secs(1))));
        }
        if record {
            queue.extend(std::iter::repeat_n(now, n as usize));
        }
        Ok(())
    }
}

fn prune(queue: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while let Some(&t) = queue.front() {
        if now.saturating_duration_since(t) >= window {
            queue.pop_front();
        } else {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_max_then_refuses_until_window_slides() {
        let l = RateLimiter::new(LimitConfig::new(3, Duration::from_secs(300)));
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(l.try_acquire(&"a", t0 + Duration::from_secs(i)), Ok(()));
        }
        let refused = l.try_acquire(&"a", t0 + Duration::from_secs(10));
        assert_eq!(refused, Err(RetryAfter(Duration::from_secs(290))));
        assert_eq!(RetryAfter(Duration::from_millis(1500)).secs(), 2);
        // Another key is independent.
        assert_eq!(l.try_acquire(&"b", t0 + Duration::from_secs(10)), Ok(()));
        // The first event leaves the window at t0+300.
        assert_eq!(l.try_acquire(&"a", t0 + Duration::from_secs(300)), Ok(()));
        assert!(l.try_acquire(&"a", t0 + Duration::from_secs(300)).is_err());
    }

    #[test]
    fn batches_are_admitted_whole_or_not_at_all() {
        let l = RateLimiter::new(LimitConfig::new(10, Duration::from_secs(60)));
        let t0 = Instant::now();
        assert!(l.try_acquire_n(&1, 6, t0).is_ok());
        let refused = l.try_acquire_n(&1, 5, t0 + Duration::from_secs(10));
        assert_eq!(
            refused,
            Err(RetryAfter(Duration::from_secs(50))),
            "until the first 6 expire"
        );
        assert!(l.try_acquire_n(&1, 4, t0 + Duration::from_secs(10)).is_ok());
        assert!(
            l.try_acquire_n(&1, 11, t0 + Duration::from_secs(500))
                .is_err(),
            "more than max"
        );
        assert!(
            l.try_acquire_n(&1, 10, t0 + Duration::from_secs(500))
                .is_ok()
        );
        assert_eq!(l.refused(), 2);
    }

    #[test]
    fn check_does_not_record() {
        let l = RateLimiter::new(LimitConfig::new(1, Duration::from_secs(60)));
        let t0 = Instant::now();
        assert!(l.check(&(), t0).is_ok());
        assert!(l.check(&(), t0).is_ok());
        l.record(&(), t0);
        assert!(l.check(&(), t0).is_err());
        assert_eq!(l.refused(), 1, "a refused check counts, a record does not");
    }

    #[test]
    fn key_table_is_bounded_and_fails_closed() {
        let l = RateLimiter::with_max_keys(LimitConfig::new(1, Duration::from_secs(60)), 2);
        let t0 = Instant::now();
        assert!(l.try_acquire(&1, t0).is_ok());
        assert!(l.try_acquire(&2, t0).is_ok());
        assert!(
            l.try_acquire(&3, t0).is_err(),
            "full table of live keys refuses new keys"
        );
        // Once the old events expire, their keys are evicted.
        assert!(l.try_acquire(&3, t0 + Duration::from_secs(61)).is_ok());
    }
}
