//! The runner `tmux-bridge`: drives tmux as a control client, keeps the
//! transcript of every pane, and streams it to a relay (issue 4).
//!
//! Everything here is I/O and orchestration; protocol parsing lives in
//! `tmux-cc` and screen/delta logic in `transcript`.

pub mod cli;
