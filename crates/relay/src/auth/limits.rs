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

/// A point in time for the window logic: `Instant` for a limiter in one
/// process, [`WallMs`] for a log the relays of a cluster share (their
/// clocks must agree; a skew between them shifts the windows by as much).
pub trait Moment: Copy + Ord {
    /// How long after `earlier` this is (zero if before).
    fn since(self, earlier: Self) -> Duration;
    /// This moment plus `d`.
    fn plus(self, d: Duration) -> Self;
}

impl Moment for Instant {
    fn since(self, earlier: Self) -> Duration {
        self.saturating_duration_since(earlier)
    }
    fn plus(self, d: Duration) -> Self {
        self + d
    }
}

/// Milliseconds since the Unix epoch, as a [`Moment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct WallMs(pub i64);

impl Moment for WallMs {
    fn since(self, earlier: Self) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }
    fn plus(self, d: Duration) -> Self {
        WallMs(
            self.0
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }
}

/// One key's events inside the sliding window, oldest first, as (when, how
/// many): the whole decision of a limit, pure (time is an argument). At
/// most `max` entries survive an admission, so it stays small.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window<M> {
    events: VecDeque<(M, u32)>,
}

impl<M> Default for Window<M> {
    fn default() -> Self {
        Window {
            events: VecDeque::new(),
        }
    }
}

impl<M: Moment> Window<M> {
    /// Admits `n` events at `now` under `config` (recording them when
    /// `record`), or says how long until they would be admitted.
    pub fn admit(
        &mut self,
        config: LimitConfig,
        now: M,
        n: u32,
        record: bool,
    ) -> Result<(), RetryAfter> {
        self.prune(now, config.window);
        if n > config.max {
            return Err(RetryAfter(config.window));
        }
        let held: u64 = self.events.iter().map(|&(_, c)| u64::from(c)).sum();
        let max = u64::from(config.max);
        if held + u64::from(n) > max {
            // Wait until enough of the oldest events expire.
            let need = held + u64::from(n) - max;
            let mut freed = 0u64;
            let mut oldest = now;
            for &(t, c) in &self.events {
                freed += u64::from(c);
                oldest = t;
                if freed >= need {
                    break;
                }
            }
            let wait = oldest.plus(config.window).since(now);
            return Err(RetryAfter(wait.max(Duration::from_secs(1))));
        }
        if record && n > 0 {
            match self.events.back_mut() {
                Some((t, c)) if *t == now => *c = c.saturating_add(n),
                Some(&mut (t, _)) if t > now => {
                    // Another relay's clock ran ahead: keep the order.
                    let at = self.events.partition_point(|&(e, _)| e <= now);
                    self.events.insert(at, (now, n));
                }
                _ => self.events.push_back((now, n)),
            }
        }
        Ok(())
    }

    /// Drops the events that left the window by `now`.
    pub fn prune(&mut self, now: M, window: Duration) {
        while let Some(&(t, _)) = self.events.front() {
            if now.since(t) >= window {
                self.events.pop_front();
            } else {
                break;
            }
        }
    }

    /// Whether no event is left.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The newest event's time.
    pub fn newest(&self) -> Option<M> {
        self.events.back().map(|&(t, _)| t)
    }
}

/// Bytes of one encoded event: its time (i64 ms) and count (u32), little
/// endian.
const EVENT_BYTES: usize = 12;

/// A stored log that does not decode (the relays wrote it, but the bytes
/// come from the database).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a stored rate-limit log of {0} bytes does not decode")]
pub struct BadLog(pub usize);

impl Window<WallMs> {
    /// The log as stored in the shared table.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.events.len() * EVENT_BYTES);
        for &(t, c) in &self.events {
            out.extend_from_slice(&t.0.to_le_bytes());
            out.extend_from_slice(&c.to_le_bytes());
        }
        out
    }

    /// A stored log; at most `max_events` entries (a limit's `max`: more
    /// never survive an admission), sorted by time.
    pub fn decode(bytes: &[u8], max_events: u32) -> Result<Self, BadLog> {
        let bad = BadLog(bytes.len());
        if !bytes.len().is_multiple_of(EVENT_BYTES)
            || bytes.len() / EVENT_BYTES > max_events as usize
        {
            return Err(bad);
        }
        let mut events: Vec<(WallMs, u32)> = bytes
            .chunks_exact(EVENT_BYTES)
            .map(|e| {
                let (t, c) = e.split_at(8);
                let t: [u8; 8] = t.try_into().map_err(|_| bad)?;
                let c: [u8; 4] = c.try_into().map_err(|_| bad)?;
                Ok((WallMs(i64::from_le_bytes(t)), u32::from_le_bytes(c)))
            })
            .collect::<Result<_, BadLog>>()?;
        events.sort_by_key(|&(t, _)| t);
        Ok(Window {
            events: events.into(),
        })
    }
}

/// A sliding-window limiter keyed by `K` (an address, a user id, `()` for a
/// global limit), counting in this process.
#[derive(Debug)]
pub struct RateLimiter<K> {
    config: LimitConfig,
    max_keys: usize,
    events: Mutex<HashMap<K, Window<Instant>>>,
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
            map.retain(|_, w| {
                w.prune(now, window);
                !w.is_empty()
            });
            if map.len() >= self.max_keys {
                return Err(RetryAfter(window));
            }
        }
        map.entry(key.clone())
            .or_default()
            .admit(self.config, now, n, record)
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
    fn a_shared_log_decides_as_the_local_limiter_and_survives_encoding() {
        let config = LimitConfig::new(10, Duration::from_secs(60));
        let mut w = Window::default();
        let t0 = WallMs(1_700_000_000_000);
        let at = |s: u64| t0.plus(Duration::from_secs(s));
        assert!(w.admit(config, at(0), 6, true).is_ok());
        assert!(
            w.admit(config, at(0), 1, true).is_ok(),
            "merged into one entry"
        );
        let mut w = Window::decode(&w.encode(), config.max).expect("round trip");
        assert_eq!(w.newest(), Some(at(0)));
        assert!(w.admit(config, at(5), 3, true).is_ok());
        assert_eq!(
            w.admit(config, at(10), 1, true),
            Err(RetryAfter(Duration::from_secs(50))),
            "full: until the first 7 expire"
        );
        assert!(w.admit(config, at(10), 1, false).is_err(), "a check alike");
        assert!(w.admit(config, at(60), 7, true).is_ok(), "the first 7 left");
        assert!(w.admit(config, at(60), 1, true).is_err());
        // An event from a relay whose clock is behind keeps the order.
        let mut w = Window::default();
        assert!(w.admit(config, at(30), 1, true).is_ok());
        assert!(w.admit(config, at(20), 1, true).is_ok());
        assert_eq!(w.newest(), Some(at(30)));
        w.prune(at(81), config.window);
        assert_eq!(w.newest(), Some(at(30)), "the older event left first");
        w.prune(at(90), config.window);
        assert!(w.is_empty());
    }

    #[test]
    fn a_stored_log_that_does_not_decode_is_refused() {
        assert_eq!(Window::decode(&[0u8; 13], 10), Err(BadLog(13)));
        assert_eq!(
            Window::decode(&[0u8; 12 * 4], 3),
            Err(BadLog(48)),
            "more entries than the limit admits"
        );
        assert!(Window::decode(&[], 3).expect("empty").is_empty());
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
