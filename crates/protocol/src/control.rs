//! The JSON control messages of the wire protocol (docs/protocol.md §4–5),
//! shared by the relay, the bridge and the tests.
//!
//! Every message is a JSON object whose `t` field names its type. Each
//! direction has its own enum, so a peer can only decode what it may receive:
//! [`RunnerToRelay`], [`RelayToRunner`], [`BrowserToRelay`], [`RelayToBrowser`].
//! Binary frames are not here (see the frame header in protocol.md §3).
//! This module only (de)serializes and validates; it does no I/O.

use serde::{Deserialize, Serialize};
use tmux_cc::PaneId;

/// The protocol version carried in the runner's `hello`.
pub const PROTOCOL_VERSION: u32 = 1;

/// The WebSocket subprotocol browsers offer and the relay answers with.
pub const BROWSER_SUBPROTOCOL: &str = "tmux-bridge.v1";

/// The prefix of the subprotocol entry that carries a browser token.
pub const BEARER_SUBPROTOCOL_PREFIX: &str = "bearer.";

/// Largest accepted `resize` dimension (columns or rows), inclusive: the
/// largest pane the model accepts.
pub const MAX_RESIZE: u16 = crate::size::MAX_DIM;

/// Largest message a bridge may send to the relay (protocol.md §6).
pub const MAX_RUNNER_MESSAGE: usize = 16 * 1024 * 1024;

/// Largest message a browser may send to the relay (protocol.md §6).
pub const MAX_BROWSER_MESSAGE: usize = 1024 * 1024;

/// Per-browser send queue limit in bytes (protocol.md §6).
pub const BROWSER_QUEUE_BYTES: usize = 8 * 1024 * 1024;

/// Per-browser send queue limit in frames (protocol.md §6).
pub const BROWSER_QUEUE_FRAMES: usize = 1024;

/// WebSocket close codes (protocol.md §6).
pub mod close {
    /// Normal close.
    pub const NORMAL: u16 = 1000;
    /// The relay is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// Policy: bad or expired token, revoked runner, bad Origin.
    pub const POLICY: u16 = 1008;
    /// A text message that is not valid UTF-8 (RFC 6455 §7.4.1).
    pub const INVALID_DATA: u16 = 1007;
    /// Message too big.
    pub const TOO_BIG: u16 = 1009;
    /// Internal error (the store failed).
    pub const INTERNAL: u16 = 1011;
    /// The relay is at its relay-wide WebSocket cap: try again later.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// Protocol error: malformed JSON, unknown message type, bad frame.
    pub const PROTOCOL: u16 = 4000;
    /// Replaced: the same terminal session connected again.
    pub const REPLACED: u16 = 4001;
    /// Forbidden: not your session.
    pub const FORBIDDEN: u16 = 4003;
    /// The login that opened the socket ended (logout, log out everywhere,
    /// password change, expiry): log in again.
    pub const LOGGED_OUT: u16 = 4401;
    /// The peer stopped answering: no pong for three keepalive periods, or
    /// a send stuck for six.
    pub const TIMEOUT: u16 = 4408;
    /// Too many WebSockets for this account or from this address.
    pub const TOO_MANY: u16 = 4429;
}

/// The runner's first message: which terminal session this WebSocket serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerHello {
    /// Protocol version; must be [`PROTOCOL_VERSION`].
    pub v: u32,
    pub idea: String,
    pub slot: String,
    /// The tmux session name (`tb_<idea>_<slot>`).
    pub tmux_session: String,
    /// The exact command a person runs to attach in a terminal.
    pub attach: String,
    /// The runner's host name, for display.
    #[serde(default)]
    pub host: String,
}

/// Text messages a runner sends to the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunnerToRelay {
    Hello(RunnerHello),
    /// How many tty clients are attached to the tmux session.
    Status {
        attached_clients: u32,
    },
}

/// Text messages the relay sends to a runner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RelayToRunner {
    /// Answer to `hello`: the relay's id for this terminal session and the
    /// last sequence number it has stored (0 if none).
    Welcome { session_id: String, last_seq: u64 },
    /// Every record with `seq <= N` is durably stored.
    Ack { seq: u64 },
    /// Keystrokes or paste for a pane.
    Input { pane: PaneId, data: String },
    /// The browsers' preferred size.
    Resize { cols: u16, rows: u16 },
    /// How many browsers watch.
    Viewers { count: u32 },
    /// Send a fresh Snapshot frame soon.
    SnapshotRequest,
}

/// Text messages a browser sends to the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
#[non_exhaustive]
pub enum BrowserToRelay {
    /// First message; `last_seq` is 0 for a fresh tab.
    Hello { last_seq: u64 },
    /// Keystrokes or paste for a pane, forwarded to the runner.
    Input { pane: PaneId, data: String },
    /// The browser's available size in cells.
    Resize { cols: u16, rows: u16 },
}

/// What the relay tells browsers about a terminal session; also the item of
/// `GET /api/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The relay's id of the terminal session (used in URLs).
    pub id: String,
    pub idea: String,
    pub slot: String,
    /// The tmux session name.
    pub tmux_session: String,
    /// The exact command to attach in a terminal.
    pub attach: String,
    /// The runner's host name.
    #[serde(default)]
    pub host: String,
    /// Whether a runner is connected for this session now.
    pub runner_online: bool,
    /// The last sequence number stored (0 if none).
    pub head_seq: u64,
}

/// Text messages the relay sends to a browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RelayToBrowser {
    /// Answer to `hello`; frames follow.
    Welcome {
        session: SessionInfo,
        head_seq: u64,
        runner_online: bool,
    },
    /// The runner connected or went away.
    Runner { online: bool },
}

/// Whether a `resize` is within 1..=[`MAX_RESIZE`] in both dimensions.
pub fn resize_is_valid(cols: u16, rows: u16) -> bool {
    crate::size::check_size(cols.into(), rows.into()).is_ok()
}

/// The token in a browser's `Sec-WebSocket-Protocol` header value, if it
/// offers [`BROWSER_SUBPROTOCOL`] and exactly one `bearer.<token>` entry.
pub fn bearer_from_subprotocols(header: &str) -> Option<&str> {
    let mut offers_v1 = false;
    let mut token = None;
    for item in header.split(',').map(str::trim) {
        if item == BROWSER_SUBPROTOCOL {
            offers_v1 = true;
        } else if let Some(t) = item.strip_prefix(BEARER_SUBPROTOCOL_PREFIX) {
            if token.is_some() || t.is_empty() {
                return None;
            }
            token = Some(t);
        }
    }
    if offers_v1 { token } else { None }
}

#[cfg(test)]
mod tests;
