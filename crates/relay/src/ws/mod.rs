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
    let frame = CloseFrame { code, reason: reason.into() };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
}

/// Current time in seconds and milliseconds since the Unix epoch (the edge of
/// the relay reads the clock; pure code receives it as an argument).
pub fn now_secs() -> i64 {
    now_millis() / 1000
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Whether an axum WebSocket error is a size-limit violation (close 1009).
pub fn is_too_big(err: &axum::Error) -> bool {
    let text = err.to_string();
    // tungstenite's `CapacityError` texts; axum does not re-export the type.
    text.contains("Space limit exceeded") || text.contains("Message too long")
}
