//! The WebSocket to the relay: connect with the runner token, `hello` /
//! `welcome`, forward frames from the core, deliver the relay's messages to
//! the core, and reconnect with capped exponential backoff and jitter.
//!
//! The uplink keeps no transcript state: the core holds every unacked frame
//! and resends from the relay's `last_seq` after each `Opened`. Messages
//! from the core carry the connection generation they were meant for, so a
//! frame queued for a dead connection is never sent on the next one (which
//! would duplicate or reorder sequence numbers).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use protocol::control::{RelayToRunner, RunnerHello, RunnerToRelay};

use crate::core::{RelayEvent, RelayMsg, ToRelay};
use rand::Rng;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct UplinkConfig {
    /// The relay's base URL (`http://127.0.0.1:8417`, `https://relay.example`).
    pub relay_url: String,
    pub runner_token: String,
    pub hello: RunnerHello,
    /// How to trust the relay (`--ca-file`, `--insecure`).
    pub tls: crate::net::TlsOptions,
}

/// The relay's runner WebSocket URL for a base URL.
pub fn runner_ws_url(relay_url: &str) -> anyhow::Result<String> {
    let base = relay_url.trim_end_matches('/');
    let ws = if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if base.starts_with("ws://") || base.starts_with("wss://") {
        base.to_owned()
    } else {
        anyhow::bail!("relay URL must start with http://, https://, ws:// or wss://: {relay_url}");
    };
    Ok(format!("{ws}/api/runner/ws"))
}

/// Capped exponential backoff with ±50 % jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    attempt: u32,
    base: Duration,
    cap: Duration,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            attempt: 0,
            base,
            cap,
        }
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let exp = self.base.saturating_mul(1u32 << self.attempt.min(16));
        self.attempt = self.attempt.saturating_add(1);
        let capped = exp.min(self.cap);
        let jitter = rand::thread_rng().gen_range(0.5..1.5);
        capped.mul_f64(jitter).min(self.cap)
    }
}

/// Runs the uplink until `cancel` fires or the relay rejects the token.
pub async fn run(
    cfg: UplinkConfig,
    to_core: mpsc::UnboundedSender<RelayEvent>,
    mut from_core: mpsc::Receiver<ToRelay>,
    cancel: CancellationToken,
) {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(15));
    let mut generation = 0u64;
    loop {
        if cancel.is_cancelled() {
            return;
        }
        generation += 1;
        match connect_once(&cfg, generation, &to_core, &mut from_core, &cancel).await {
            Outcome::Cancelled => return,
            Outcome::Rejected(reason) => {
                let _ = to_core.send(RelayEvent::Rejected { reason });
                return;
            }
            Outcome::Lost { was_up } => {
                let _ = to_core.send(RelayEvent::Lost { generation });
                if was_up {
                    backoff.reset();
                }
            }
        }
        let delay = backoff.next_delay();
        debug!(?delay, "reconnecting to relay");
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        // Drop anything queued for the connection that died.
        while from_core.try_recv().is_ok() {}
    }
}

/// The core's view of a relay message (`None` for one it has no use for).
fn relay_msg(msg: RelayToRunner) -> Option<RelayMsg> {
    Some(match msg {
        RelayToRunner::Ack { seq } => RelayMsg::Ack { seq },
        RelayToRunner::Input { pane, data } => RelayMsg::Input { pane, data },
        RelayToRunner::Resize { cols, rows } => RelayMsg::Resize { cols, rows },
        RelayToRunner::Viewers { count } => RelayMsg::Viewers { count },
        RelayToRunner::SnapshotRequest => RelayMsg::SnapshotRequest,
        _ => return None,
    })
}

enum Outcome {
    Cancelled,
    Rejected(String),
    Lost { was_up: bool },
}

async fn connect_once(
    cfg: &UplinkConfig,
    generation: u64,
    to_core: &mpsc::UnboundedSender<RelayEvent>,
    from_core: &mut mpsc::Receiver<ToRelay>,
    cancel: &CancellationToken,
) -> Outcome {
    let url = match runner_ws_url(&cfg.relay_url) {
        Ok(u) => u,
        Err(err) => return Outcome::Rejected(err.to_string()),
    };
    let ws = tokio::select! {
        _ = cancel.cancelled() => return Outcome::Cancelled,
        r = crate::net::connect_ws(&url, &cfg.runner_token, &cfg.tls) => match r {
            Ok(ws) => ws,
            Err(err) if err.is_definite() => return Outcome::Rejected(err.to_string()),
            Err(err) => {
                warn!(%err, "cannot connect to the relay; retrying");
                return Outcome::Lost { was_up: false };
            }
        },
    };
    let (mut sink, mut stream) = ws.split();

    let hello = RunnerToRelay::Hello(cfg.hello.clone());
    let Ok(text) = serde_json::to_string(&hello) else {
        return Outcome::Rejected("cannot encode hello".into());
    };
    if sink.send(Message::text(text)).await.is_err() {
        return Outcome::Lost { was_up: false };
    }

    // Wait for welcome.
    let welcome = tokio::select! {
        _ = cancel.cancelled() => return Outcome::Cancelled,
        r = tokio::time::timeout(Duration::from_secs(10), stream.next()) => r,
    };
    let (session_id, last_seq) = match welcome {
        Ok(Some(Ok(Message::Text(t)))) => match serde_json::from_str::<RelayToRunner>(&t) {
            Ok(RelayToRunner::Welcome {
                session_id,
                last_seq,
            }) => (session_id, last_seq),
            Ok(other) => {
                warn!(?other, "relay did not answer hello with welcome");
                return Outcome::Lost { was_up: false };
            }
            Err(err) => {
                warn!(%err, "relay sent a malformed welcome");
                return Outcome::Lost { was_up: false };
            }
        },
        Ok(Some(Ok(Message::Close(frame)))) => {
            let reason = frame
                .map(|f| format!("{} {}", u16::from(f.code), f.reason))
                .unwrap_or_default();
            if reason.starts_with("1008") {
                return Outcome::Rejected(format!("the relay closed the connection: {reason}"));
            }
            warn!(%reason, "relay closed during hello");
            return Outcome::Lost { was_up: false };
        }
        _ => return Outcome::Lost { was_up: false },
    };
    info!(session_id, last_seq, "connected to relay");
    let _ = to_core.send(RelayEvent::Opened {
        generation,
        last_seq,
    });

    loop {
        tokio::select! {
            _ = cancel.cancelled() => {
                let _ = sink.send(Message::Close(Some(tungstenite::protocol::CloseFrame {
                    code: tungstenite::protocol::frame::coding::CloseCode::Normal,
                    reason: "runner shutting down".into(),
                }))).await;
                return Outcome::Cancelled;
            }
            out = from_core.recv() => {
                let Some(out) = out else { return Outcome::Cancelled };
                let msg = match out {
                    ToRelay::Frame { generation: g, bytes } if g == generation => Message::Binary(bytes),
                    ToRelay::Status { attached_clients } => {
                        match serde_json::to_string(&RunnerToRelay::Status { attached_clients }) {
                            Ok(t) => Message::text(t),
                            Err(_) => continue,
                        }
                    }
                    ToRelay::Error { code, .. } => {
                        // Protocol 1 has no `error` message (a relay would
                        // close the socket on it); the core logged it.
                        debug!(%code, "not telling the relay of a refused message");
                        continue;
                    }
                    _ => continue,
                };
                if let Err(err) = sink.send(msg).await {
                    debug!(%err, "sending to relay");
                    return Outcome::Lost { was_up: true };
                }
            }
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<RelayToRunner>(&t) {
                    Ok(msg) => match relay_msg(msg) {
                        Some(msg) => { let _ = to_core.send(RelayEvent::Message(msg)); }
                        None => debug!("ignoring an unexpected message from the relay"),
                    },
                    Err(err) => warn!(%err, "ignoring a malformed message from the relay"),
                },
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.as_ref().map(|f| u16::from(f.code)).unwrap_or(1005);
                    let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                    if code == protocol::control::close::POLICY {
                        return Outcome::Rejected(format!("the relay closed the connection: {reason}"));
                    }
                    info!(code, %reason, "relay closed the connection");
                    return Outcome::Lost { was_up: true };
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => {
                    debug!(%err, "relay connection failed");
                    return Outcome::Lost { was_up: true };
                }
                None => return Outcome::Lost { was_up: true },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_url_from_relay_url() {
        assert_eq!(
            runner_ws_url("http://127.0.0.1:8417/").ok().as_deref(),
            Some("ws://127.0.0.1:8417/api/runner/ws")
        );
        assert_eq!(
            runner_ws_url("https://r.example").ok().as_deref(),
            Some("wss://r.example/api/runner/ws")
        );
        assert!(runner_ws_url("ftp://x").is_err());
    }

    #[test]
    fn backoff_is_capped_and_grows() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let first = b.next_delay();
        assert!(first <= Duration::from_millis(150));
        for _ in 0..20 {
            assert!(b.next_delay() <= Duration::from_secs(2));
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(150));
    }
}
