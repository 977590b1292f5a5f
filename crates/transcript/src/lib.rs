//! The screen model of the runner: pane screens fed with tmux's output, the
//! session model that numbers records, snapshots, and seeding a pane from
//! tmux's own screen.
//!
//! The core is pure: [`emu`] (the pane emulator, tmux's own model),
//! [`pane::PaneModel`] (one screen per pane), [`snapshot`] (reset bytes),
//! [`session::SessionModel`] (topology, sequence numbers, records),
//! [`seed`] (a pane from a resync bundle), [`replay`] (a control-mode capture
//! to final screens). None of them does I/O or reads the clock. The byte
//! layout of records and frames is the `protocol` crate's; storage is the
//! `store` crate's (this crate never links sqlx).
pub mod emu;
pub mod live;
pub mod pane;
pub mod replay;
pub mod seed;
pub mod session;
pub mod snapshot;
