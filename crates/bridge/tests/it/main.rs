//! End-to-end tests of the bridge: real tmux servers on private sockets, a
//! real relay on a loopback port, real SQLite, WebSocket clients that speak
//! the browser side of docs/protocol.md.

mod agents;
mod cli;
mod cluster;
mod cluster_limits;
mod daemon;
mod devservers;
mod e2e;
mod hidden;
mod jobs;
mod logs;
mod ports;
mod preview;
