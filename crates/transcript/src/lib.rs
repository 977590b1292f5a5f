//! Pane screen models, the sequence-numbered delta log, snapshots, the zstd
//! codec and durable storage (issue 3).
pub mod control;
