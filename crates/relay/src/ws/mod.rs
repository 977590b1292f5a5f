//! The two WebSocket endpoints: runners (`runner.rs`) and browsers
//! (`browser.rs`), plus the helpers both use to close a socket with a
//! documented code (protocol.md §6). Each upgraded socket runs on the
//! relay's `TaskTracker` with a child of the shutdown token, because axum's
//! graceful shutdown does not cover upgraded connections.

pub mod browser;
pub mod runner;

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};

/// How long a peer has to send its `hello` after the upgrade.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// How long sending the close frame may take before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Sends a close frame with `code` and `reason` (best effort, bounded in
/// time) and drops the socket.
pub async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    // A close reason must fit a control frame (125 bytes, 2 for the code).
    let mut reason = reason.to_owned();
    while reason.len() > 123 {
        reason.pop();
    }
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
}

/// Whether an axum WebSocket error is a size-limit violation (close 1009).
pub fn is_too_big(err: &axum::Error) -> bool {
    let text = err.to_string();
    // tungstenite's `CapacityError` texts; axum does not re-export the type.
    text.contains("Space limit exceeded") || text.contains("Message too long")
}

/// Sends `msg`, giving up after `limit` (a peer that stopped reading must
/// not hold its task forever). `Err` means the socket is unusable.
pub async fn send_timed(socket: &mut WebSocket, msg: Message, limit: Duration) -> Result<(), ()> {
    match tokio::time::timeout(limit, socket.send(msg)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(()),
        Err(_) => {
            tracing::info!(
                secs = limit.as_secs(),
                "send timed out; dropping the socket"
            );
            Err(())
        }
    }
}

/// Liveness of one socket: the relay pings every `period`; a peer that sent
/// nothing (not even a pong) for three periods is considered gone, and a
/// single send may take at most six periods.
#[derive(Debug)]
pub struct Keepalive {
    ticks: tokio::time::Interval,
    last_heard: tokio::time::Instant,
    period: Duration,
}

impl Keepalive {
    pub fn new(period: Duration) -> Keepalive {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Keepalive {
            ticks,
            last_heard: tokio::time::Instant::now(),
            period,
        }
    }

    /// Records that the peer sent something.
    pub fn heard(&mut self) {
        self.last_heard = tokio::time::Instant::now();
    }

    /// Completes at the next ping time. Cancel-safe.
    pub async fn tick(&mut self) {
        self.ticks.tick().await;
    }

    /// Whether the peer has been silent for three periods.
    pub fn expired(&self) -> bool {
        self.last_heard.elapsed() > self.period * 3
    }

    /// The longest a single send may take.
    pub fn send_limit(&self) -> Duration {
        self.period * 6
    }
}
