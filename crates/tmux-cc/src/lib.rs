//! tmux control mode, without I/O.
//!
//! This crate owns two things and nothing else:
//!
//! * [`Parser`]: a streaming parser of what `tmux -C` / `tmux -CC` writes on
//!   stdout. Feed it any chunk of bytes with [`Parser::push`] (split anywhere:
//!   inside an octal escape, inside a UTF-8 character, inside `\r\n`) and pull
//!   typed [`Event`]s with [`Parser::next_event`]. The same bytes always give
//!   the same events, whatever the chunking. A malformed line becomes
//!   [`Event::Malformed`]; parsing always goes on.
//! * [`command`]: an encoder for every command the bridge sends to tmux, with
//!   quoting that makes injection impossible (see `security-notes.md`).
//!   Beside it, the formats the bridge asks tmux for and their reply
//!   parsers: [`state`] (pane state for resync) and [`listing`]
//!   (`list-windows`, `list-clients`).
//! * [`keys`]: tmux's key tables resolved from `list-keys` output, for
//!   servers older than 3.4 (whose `send-keys` has no `-K`).
//!
//! It never spawns a process, touches a socket or reads the clock.
//! Pane output is bytes ([`bytes::Bytes`]), never `String`.

pub mod command;
pub mod event;
pub mod ids;
pub mod json;
pub mod keys;
pub mod layout;
pub mod listing;
pub mod naming;
pub mod parser;
pub mod state;

pub use event::{Event, LineError, LineErrorKind, Reply};
pub use ids::{PaneId, SessionId, WindowId};
pub use layout::{Layout, LayoutCell, LayoutError, LayoutNode};
pub use parser::{Parser, ParserLimits};
