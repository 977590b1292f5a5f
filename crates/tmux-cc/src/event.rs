//! The typed events the [`Parser`](crate::Parser) produces: one per
//! notification line, one [`Reply`] per `%begin … %end|%error` block.
//!
//! Names (`name`, `text`, `value` fields) are bytes as tmux printed them
//! (window names are vis-escaped by tmux, see the reference §10); they are
//! never trusted and never re-used in a command without the encoder.

use bytes::Bytes;

use crate::ids::{PaneId, SessionId, WindowId};

/// One event from tmux's control-mode output.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A `%begin … %end` or `%begin … %error` block.
    Reply(Reply),
    /// `%output %P DATA`: bytes the pane produced, octal escapes decoded.
    Output { pane: PaneId, data: Bytes },
    /// `%extended-output %P AGE ... : DATA` (clients with `pause-after`).
    /// `age_ms` is how long the data waited inside tmux.
    ExtendedOutput {
        pane: PaneId,
        age_ms: u64,
        data: Bytes,
    },
    /// `%pause %P`: tmux stopped sending this pane's output to us.
    Pause { pane: PaneId },
    /// `%continue %P`: output for the pane resumed (from "now": resync).
    Continue { pane: PaneId },
    /// `%layout-change @W LAYOUT [VISIBLE_LAYOUT [FLAGS]]`. Layout strings are
    /// kept raw; parse them with [`Layout::parse`](crate::Layout::parse).
    /// tmux before 2.2 sent only the window and the layout.
    LayoutChange {
        window: WindowId,
        layout: Bytes,
        visible_layout: Option<Bytes>,
        flags: Option<Bytes>,
    },
    /// `%window-add @W`
    WindowAdd { window: WindowId },
    /// `%window-close @W`
    WindowClose { window: WindowId },
    /// `%unlinked-window-add @W`
    UnlinkedWindowAdd { window: WindowId },
    /// `%unlinked-window-close @W` (tmux 3.3a also sends this for windows of
    /// the attached session; treat both close forms alike).
    UnlinkedWindowClose { window: WindowId },
    /// `%window-renamed @W NAME`
    WindowRenamed { window: WindowId, name: Bytes },
    /// `%unlinked-window-renamed @W NAME`
    UnlinkedWindowRenamed { window: WindowId, name: Bytes },
    /// `%session-changed $S NAME`: this client is now attached to `$S`.
    SessionChanged { session: SessionId, name: Bytes },
    /// `%client-session-changed CLIENT $S NAME`: another client switched.
    ClientSessionChanged {
        client: Bytes,
        session: SessionId,
        name: Bytes,
    },
    /// `%session-renamed $S NAME`
    SessionRenamed { session: SessionId, name: Bytes },
    /// `%sessions-changed`
    SessionsChanged,
    /// `%session-window-changed $S @W`
    SessionWindowChanged {
        session: SessionId,
        window: WindowId,
    },
    /// `%window-pane-changed @W %P`
    WindowPaneChanged { window: WindowId, pane: PaneId },
    /// `%pane-mode-changed %P`
    PaneModeChanged { pane: PaneId },
    /// `%client-detached CLIENT`
    ClientDetached { client: Bytes },
    /// `%subscription-changed NAME $S @W IDX %P ... : VALUE`; unused fields
    /// are `-` in tmux's output and `None` here.
    SubscriptionChanged {
        name: Bytes,
        session: Option<SessionId>,
        window: Option<WindowId>,
        window_index: Option<u32>,
        pane: Option<PaneId>,
        value: Bytes,
    },
    /// `%exit [REASON]`: the client is exiting.
    Exit { reason: Option<Bytes> },
    /// `%config-error TEXT` (3.4+)
    ConfigError { text: Bytes },
    /// `%paste-buffer-changed NAME` (3.4+)
    PasteBufferChanged { name: Bytes },
    /// `%paste-buffer-deleted NAME` (3.4+)
    PasteBufferDeleted { name: Bytes },
    /// `%message TEXT` (3.4+)
    Message { text: Bytes },
    /// A `%word …` line whose keyword this crate does not know (a newer tmux).
    Unknown { line: Bytes },
    /// A line outside any block that does not start with `%` (hooks that
    /// print, for example).
    Stray { line: Bytes },
    /// A line that looked like a known notification but did not parse, or a
    /// line or block that exceeded the parser's limits.
    Malformed(LineError),
}

/// The output of one command: the lines between `%begin` and its matching
/// `%end` (success) or `%error` (failure). Lines are raw bytes without the
/// line terminator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Seconds since the epoch when tmux queued the command.
    pub time: u64,
    /// tmux's server-wide command number (not contiguous).
    pub number: u64,
    /// 1 when the command came from this client, 0 for the initial command
    /// and hooks.
    pub flags: u32,
    /// `true` for `%end`, `false` for `%error`.
    pub success: bool,
    /// The output lines.
    pub lines: Vec<Bytes>,
    /// `true` when the block exceeded
    /// [`ParserLimits::max_block_bytes`](crate::ParserLimits::max_block_bytes)
    /// and lines past the limit were dropped.
    pub truncated: bool,
}

impl Reply {
    /// The reply's lines joined with `\n`, for commands whose output is text.
    pub fn text(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, l) in self.lines.iter().enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            out.extend_from_slice(l);
        }
        out
    }
}

/// A line the parser could not turn into an event. The line is kept (up to
/// the parser's line limit) so the caller can log or show it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {}", String::from_utf8_lossy(&line[..line.len().min(200)]))]
pub struct LineError {
    pub line: Bytes,
    pub kind: LineErrorKind,
}

/// Why a line was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineErrorKind {
    #[error("malformed %{0} line")]
    BadNotification(&'static str),
    #[error("line longer than {0} bytes was cut")]
    LineTooLong(usize),
    #[error("%end or %error without an open %begin")]
    UnmatchedGuard,
    #[error("stream ended inside a %begin block")]
    UnterminatedBlock,
}
