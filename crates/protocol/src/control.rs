//! The JSON control messages of the wire protocol (docs/protocol.md §4–5),
//! shared by the relay, the bridge and the tests.
//!
//! Every message is a JSON object whose `t` field names its type. Each
//! direction has its own enum, so a peer can only decode what it may receive:
//! [`BrowserToRelay`], [`RelayToBrowser`]; the runner's messages (protocol 2)
//! are in [`crate::runner`].
//! Binary frames are not here (see the frame header in protocol.md §3).
//! This module only (de)serializes and validates; it does no I/O.

use serde::{Deserialize, Serialize};
use tmux_cc::PaneId;

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
    /// The share link this viewer came through was revoked or expired.
    pub const SHARE_ENDED: u16 = 4403;
}

/// Text messages a browser sends to the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "t", rename_all = "snake_case")]
#[non_exhaustive]
pub enum BrowserToRelay {
    /// First message; `last_seq` is 0 for a fresh tab.
    Hello {
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        last_seq: u64,
        /// The numbering epoch `last_seq` belongs to (the last `welcome`'s
        /// or `epoch`'s); another epoch's records are served from scratch.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        epoch: Option<String>,
    },
    /// Bytes for a pane (paste, IME text, mouse reports; typing too when
    /// the runner does not take keys), forwarded to the runner.
    Input {
        #[cfg_attr(feature = "ts", ts(type = "string"))]
        pane: PaneId,
        data: String,
    },
    /// The browser's available size in cells.
    Resize { cols: u16, rows: u16 },
    /// Whether this tab is shown, and whether it asks tmux to fit it
    /// ("fit tmux to this window") or keeps tmux's size. Only shown,
    /// fitting tabs count for the size offered to tmux.
    View { visible: bool, fit: bool },
    /// Key presses as tmux names them (`C-b`, `c`, `Enter`, `M-Left`),
    /// typed in `pane`: the runner makes that pane tmux's active one and
    /// runs the keys through tmux's key tables, as a terminal client's
    /// keys are (docs/protocol.md §5.1). Only when `welcome.features`
    /// has `keys`.
    Keys {
        #[cfg_attr(feature = "ts", ts(type = "string"))]
        pane: PaneId,
        keys: Vec<String>,
    },
    /// A tmux action from the page's controls. Only when
    /// `welcome.features` has `tmux`.
    Tmux(TmuxOp),
}

/// Longest `keys` list in one message, and longest key name.
pub const MAX_KEYS: usize = 256;
/// Longest key name in a `keys` message (bytes).
pub const MAX_KEY_NAME: usize = 32;

/// A tmux action the page asks for (`{"t":"tmux","op":…}`). Panes and
/// windows are ids of the session's topology; the relay checks them
/// against it before anything reaches the runner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "op", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TmuxOp {
    /// `new-window` after the current one.
    NewWindow,
    /// `split-window -h` (right) or `-v` (below) of `pane`.
    Split {
        #[cfg_attr(feature = "ts", ts(type = "string"))]
        pane: PaneId,
        direction: SplitDirection,
    },
    /// `kill-pane` (the page asked the person first).
    KillPane {
        #[cfg_attr(feature = "ts", ts(type = "string"))]
        pane: PaneId,
    },
    /// `rename-window` (`name` at most 200 bytes, no control characters).
    RenameWindow {
        #[cfg_attr(feature = "ts", ts(type = "string"))]
        window: tmux_cc::WindowId,
        name: String,
    },
    /// `resize-pane -Z` (zoom, again to unzoom).
    Zoom {
        #[cfg_attr(feature = "ts", ts(type = "string"))]
        pane: PaneId,
    },
    /// `select-pane` (a click in the page).
    SelectPane {
        #[cfg_attr(feature = "ts", ts(type = "string"))]
        pane: PaneId,
    },
    /// `select-window`.
    SelectWindow {
        #[cfg_attr(feature = "ts", ts(type = "string"))]
        window: tmux_cc::WindowId,
    },
    /// Moves the right (`dx`) or bottom (`dy`) border of `pane` by that
    /// many cells (`resize-pane -R/-L/-D/-U`): a dragged border.
    ResizePane {
        #[cfg_attr(feature = "ts", ts(type = "string"))]
        pane: PaneId,
        dx: i16,
        dy: i16,
    },
    /// `copy-mode` on `pane`.
    CopyMode {
        #[cfg_attr(feature = "ts", ts(type = "string"))]
        pane: PaneId,
    },
    /// The session's prefix key, through the key table (the key bar's
    /// "prefix" button; the page does not know the prefix).
    SendPrefix {
        #[cfg_attr(feature = "ts", ts(type = "string"))]
        pane: PaneId,
    },
}

/// Where a split puts the new pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum SplitDirection {
    Right,
    Below,
}

impl TmuxOp {
    /// The panes this action names (the relay checks each is the session's).
    pub fn pane(&self) -> Option<PaneId> {
        match self {
            TmuxOp::Split { pane, .. }
            | TmuxOp::KillPane { pane }
            | TmuxOp::Zoom { pane }
            | TmuxOp::SelectPane { pane }
            | TmuxOp::ResizePane { pane, .. }
            | TmuxOp::CopyMode { pane }
            | TmuxOp::SendPrefix { pane } => Some(*pane),
            TmuxOp::NewWindow | TmuxOp::RenameWindow { .. } | TmuxOp::SelectWindow { .. } => None,
        }
    }

    /// Whether the fields are within the protocol's limits (window names
    /// short and free of control characters).
    pub fn is_valid(&self) -> bool {
        match self {
            TmuxOp::RenameWindow { name, .. } => {
                !name.is_empty() && name.len() <= 200 && !name.chars().any(char::is_control)
            }
            TmuxOp::ResizePane { dx, dy, .. } => {
                dx.unsigned_abs() <= 1000 && dy.unsigned_abs() <= 1000
            }
            _ => true,
        }
    }
}

/// Whether a `keys` list is within the limits: 1..=[`MAX_KEYS`] names, each
/// 1..=[`MAX_KEY_NAME`] bytes without control characters.
pub fn keys_are_valid(keys: &[String]) -> bool {
    !keys.is_empty()
        && keys.len() <= MAX_KEYS
        && keys
            .iter()
            .all(|k| !k.is_empty() && k.len() <= MAX_KEY_NAME && !k.chars().any(char::is_control))
}

/// Someone watching a session in a browser (`presence`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Viewer {
    /// The account name, or a share link's label.
    pub name: String,
    /// Watching through a read-only share link.
    pub read_only: bool,
    /// How many tabs of this viewer are open.
    pub tabs: u32,
}

/// What the relay tells browsers about a terminal session; also the item of
/// `GET /api/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub head_seq: u64,
}

/// Text messages the relay sends to a browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "t", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RelayToBrowser {
    /// Answer to `hello`; frames follow.
    Welcome {
        session: SessionInfo,
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        head_seq: u64,
        runner_online: bool,
        /// A share link's viewer: the relay refuses everything but `hello`
        /// and `view`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        #[cfg_attr(feature = "ts", ts(as = "Option<bool>", optional))]
        read_only: bool,
        /// What the session's runner takes beyond `input` and `resize`:
        /// `keys` (key presses through tmux's key tables), `tmux` (the
        /// page's tmux actions).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[cfg_attr(feature = "ts", ts(as = "Option<Vec<String>>", optional))]
        features: Vec<String>,
        /// The session's numbering epoch, for the next `hello`.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        #[cfg_attr(feature = "ts", ts(as = "Option<String>", optional))]
        epoch: String,
        /// The browser's records are not the relay's (another epoch, or
        /// ahead of the store): reset the screens; the frames that follow
        /// start from scratch.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        #[cfg_attr(feature = "ts", ts(as = "Option<bool>", optional))]
        reset: bool,
    },
    /// The runner started numbering over (protocol.md §5): the next
    /// `hello` names this epoch. With `reset`, records this browser was
    /// sent were never stored: reset the screens and reconnect from 0.
    Epoch {
        epoch: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        #[cfg_attr(feature = "ts", ts(as = "Option<bool>", optional))]
        reset: bool,
    },
    /// The runner connected or went away.
    Runner { online: bool },
    /// Who watches the session in browsers and how many terminals are
    /// attached to it in tmux; sent when either changes.
    Presence {
        viewers: Vec<Viewer>,
        attached_clients: u32,
    },
    /// A refused message that does not end the connection (`read_only`,
    /// `unsupported`, `unknown_pane`, `runner_offline`).
    Error { code: String, message: String },
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
