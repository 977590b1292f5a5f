//! The two WebSocket endpoints: runners (`runner.rs`) and browsers
//! (`browser.rs`), plus the helpers both use to close a socket with a
//! documented code (protocol.md §6): [`close`], [`error_close`] (1009 for
//! an oversized message, 1007 for a text message that is not UTF-8), and
//! [`Keepalive`]. Each upgraded socket runs on the relay's `TaskTracker`
//! with a child of the shutdown token, because axum's graceful shutdown
//! does not cover upgraded connections.

pub mod browser;
pub mod runner;

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use protocol::control::close as code;
use tokio_util::sync::CancellationToken;

/// Marks a request that came over an in-process connection
/// ([`crate::RelayHandle::in_process_dialer`]), as a request extension the
/// relay adds itself (a client cannot send one). Only how large a read of
/// the socket is depends on it; who may connect, and how, does not.
#[derive(Debug, Clone, Copy)]
pub struct InProcess;

/// How long a peer has to send its `hello` after the upgrade.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// The peer's first message, which must be a text message (its `hello`)
/// within [`HELLO_TIMEOUT`]; otherwise the close code and reason to end the
/// socket with. `limit` names the message size limit for the 1009 reason.
pub async fn first_text(
    socket: &mut WebSocket,
    cancel: &CancellationToken,
    limit: &str,
) -> Result<Utf8Bytes, (u16, String)> {
    let msg = tokio::select! {
        () = cancel.cancelled() => return Err((code::GOING_AWAY, "relay shutting down".into())),
        r = tokio::time::timeout(HELLO_TIMEOUT, socket.recv()) => r,
    };
    match msg {
        Err(_) => Err((code::PROTOCOL, "no hello within 10 s".into())),
        Ok(Some(Err(e))) => Err(error_close(&e, limit).unwrap_or((code::NORMAL, "closed".into()))),
        Ok(None) => Err((code::NORMAL, "closed".into())),
        Ok(Some(Ok(Message::Text(t)))) => Ok(t),
        Ok(Some(Ok(_))) => Err((code::PROTOCOL, "expected a hello text message".into())),
    }
}

/// How long sending the close frame may take before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the relay waits for the peer's answering close frame.
const CLOSE_LINGER: Duration = Duration::from_secs(3);

/// Sends a close frame with `code` and `reason`, waits (bounded) for the
/// peer's answer, and drops the socket.
///
/// Waiting is what makes the close frame arrive: dropping the socket at
/// once makes a peer that wakes up (a stalled tab) answer our pings into a
/// closed connection, and the reset that follows can discard the close
/// frame before it reads it (RFC 6455 §7.1.1: the server closes the TCP
/// connection after the closing handshake).
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
    let sent = tokio::time::timeout(CLOSE_TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
    if !matches!(sent, Ok(Ok(()))) {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        while let Some(Ok(msg)) = socket.recv().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// Whether an axum WebSocket error is a size-limit violation (close 1009).
pub fn is_too_big(err: &axum::Error) -> bool {
    let text = err.to_string();
    // tungstenite's `CapacityError` texts; axum does not re-export the type.
    text.contains("Space limit exceeded") || text.contains("Message too long")
}

/// Whether an axum WebSocket error is a text message that is not valid
/// UTF-8 (close 1007, RFC 6455 §7.4.1).
pub fn is_invalid_utf8(err: &axum::Error) -> bool {
    // tungstenite's `Error::Utf8` text; axum does not re-export the type.
    // The rest of that text quotes the message, so it is never logged.
    err.to_string().starts_with("UTF-8 encoding error")
}

/// The close code and reason owed to a peer whose message failed to read
/// with `err`, if the protocol names one (1009, 1007); `None` for a
/// broken connection (nothing can be sent).
pub fn error_close(err: &axum::Error, limit: &str) -> Option<(u16, String)> {
    use protocol::control::close;
    if is_too_big(err) {
        Some((close::TOO_BIG, format!("message too big (limit {limit})")))
    } else if is_invalid_utf8(err) {
        Some((
            close::INVALID_DATA,
            "text message is not valid UTF-8".into(),
        ))
    } else {
        None
    }
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
