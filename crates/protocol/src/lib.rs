//! The wire protocol of tmux-bridge (docs/protocol.md), shared by the runner,
//! the relay, the tests and, by its documented layout, the page: records and
//! frames ([`wire`]), their zstd framing ([`codec`]), the JSON control
//! messages ([`control`]; the runner daemon's protocol 2 in [`runner`]), the topology JSON ([`topology`]) and the size
//! limits ([`size`]).
//!
//! It does no I/O, reads no clock, and knows neither screens (the
//! `transcript` crate) nor SQL (the `store` crate): the relay links this
//! crate and `store`, never the screen model.
pub mod codec;
pub mod control;
pub mod runner;
pub mod size;
pub mod topology;
pub mod wire;
