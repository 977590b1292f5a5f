//! Pane screen models, the sequence-numbered delta log, snapshots, the zstd
//! codec and durable storage (issue 3).
//!
//! The core is pure: [`pane::PaneModel`] (one vt100 screen per pane),
//! [`session::SessionModel`] (topology, sequence numbers, records),
//! [`wire`] (records and frames of `docs/protocol.md`), [`codec`] (zstd).
//! None of them does I/O or reads the clock. Only [`store`] knows SQL (and
//! answers `since`).
pub mod codec;
pub mod control;
pub mod filter;
pub mod pane;
pub mod replay;
pub mod seed;
pub mod session;
pub mod store;
pub mod wire;
