//! Integration tests of the relay: a real relay on 127.0.0.1:0, a real
//! store, and protocol clients speaking WebSocket.

mod chromium;
mod daemon;
mod early;
mod flow;
mod harness;
mod http;
mod issue_10;
mod issue_17;
mod measure;
mod ops;
mod principal;
mod refusals;
mod search;
mod tls;
