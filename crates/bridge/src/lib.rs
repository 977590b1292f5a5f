//! The runner `tmux-bridge`: drives tmux as a control client, keeps the
//! transcript of every pane, and streams it to a relay.
//!
//! Everything here is I/O and orchestration; protocol parsing lives in
//! `tmux-cc` and screen/delta logic in `transcript`.
//!
//! - [`tmux`]: the control client process and its reader/writer pumps.
//! - [`core`]: a session's state machine (no I/O, no clock) and the thin
//!   async loop that runs it.
//! - [`unacked`]: frames the relay has not acknowledged (memory, then disk).
//! - [`uplink`]: the WebSocket to the relay, with backoff and resume.
//! - [`net`]: the HTTP client for the relay's API and the WebSocket
//!   connect, over rustls (`--ca-file`, `--insecure`).
//! - [`session`]: one served session (control client + core) in the daemon.
//! - [`hidden`]: the hidden terminal client a flood gets when no person's
//!   terminal is attached (a pty the runner owns).
//! - [`daemon`]: the runner daemon: discovery, supervision, commands, jobs
//!   and agents (the agent kinds' commands come from `agents.json` beside
//!   the credentials: [`daemon::agents`]).
//! - [`page_input`]: the page's keys and tmux actions as tmux commands.
//! - [`resident`]: hands back the code pages a quiet runner stopped using
//!   (the one `unsafe` call, `madvise`).
//! - [`cli`]: one file per subcommand.

pub mod cli;
pub mod config;
pub mod core;
pub mod daemon;
pub mod hidden;
pub mod net;
pub mod page_input;
pub mod resident;
pub mod session;
pub mod tmux;
pub mod unacked;
pub mod uplink;
