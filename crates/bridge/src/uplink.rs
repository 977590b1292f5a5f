//! The runner's one WebSocket to the relay (protocol 2, docs/protocol.md
//! §4): connect with the runner token, `hello` / `welcome`, `open` every
//! served session as a channel, carry each channel's frames and messages,
//! heartbeats, and reconnect with capped exponential backoff and jitter.
//!
//! Failover (issue 15): the runner may know several URLs of one relay
//! cluster ([`Relays`]): the first is the primary. It stays on whichever
//! relay it is connected to; when that connection fails or an attempt
//! fails, the next URL is tried (a dead relay costs one failed attempt,
//! not a backoff); the backoff grows only once every URL failed in a row.
//! It does not go back to the primary while another relay works: every
//! relay of a cluster serves it alike, and moving costs its browsers a
//! reconnect of the runner.
//!
//! The uplink keeps no transcript state: each session's core holds its
//! unacked frames and resends from the relay's `last_seq` after each
//! `Opened`. Everything the daemon and the cores send goes through one
//! ordered queue ([`ToUplink`]), so a session's `open` precedes the
//! `result` of the command that created it and its last frames precede its
//! `close`. Frames carry the connection generation they were meant for: one
//! queued for a dead connection is dropped, never sent on the next one
//! (which would duplicate or reorder sequence numbers). While disconnected
//! the queue is still drained (frames wait in the cores' unacked logs).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use protocol::runner::{
    Channel, ChannelStatus, CloseReason, CommandOp, ErrorBody, FEATURE_REBASE, Hello, JobReport,
    LogChunk, Open, RelayMsg as Wire, RunnerMsg, TunnelError, split_channel,
    tunnel::channel_stream, with_channel,
};
use rand::Rng;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, trace, warn};

use crate::core::{RelayEvent, RelayMsg, ToRelay};
use crate::daemon::tunnel::{TunnelOut, TunnelSetup, Tunnels};

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct UplinkConfig {
    /// The relay's base URLs (`http://127.0.0.1:8417`,
    /// `https://relay.example`), the primary first: several relays of one
    /// cluster (failover). Never empty when run.
    pub relay_urls: Vec<String>,
    pub runner_token: String,
    pub hello: Hello,
    /// How to trust the relay (`--ca-file`, `--insecure`).
    pub tls: crate::net::TlsOptions,
    /// Preview tunnels (§4.8): the detected ports and the way back into
    /// this queue; `None` refuses every `tunnel_open` as `unsupported`.
    pub tunnels: Option<TunnelSetup>,
    /// The relay is in this process (`tmux-bridge up`): connect to it
    /// through memory, not a loopback socket (every URL is its listener's).
    pub in_process: Option<crate::net::InProcessDial>,
    /// Bumped by every message to or from the relay but heartbeats: the
    /// runner is quiet when it stops moving ([`crate::resident`]).
    pub activity: crate::resident::Activity,
}

/// What the daemon and the session cores give the uplink, in order.
#[derive(Debug)]
pub enum ToUplink {
    /// Serve a session on `open.ch`; the relay's messages for it go to `to_core`.
    Serve {
        open: Open,
        to_core: mpsc::UnboundedSender<RelayEvent>,
    },
    /// A session core's frame, status or error.
    Core { ch: Channel, msg: ToRelay },
    /// Stop serving a channel (after its core ended).
    Close { ch: Channel, reason: CloseReason },
    /// The answer to a command.
    Result {
        id: String,
        result: Result<Option<Channel>, ErrorBody>,
    },
    /// A job's state changed.
    Job(JobReport),
    /// Every job the runner knows (after each connect).
    Jobs(Vec<JobReport>),
    /// A piece of a job's log (dropped while disconnected: the daemon
    /// resends from the relay's last `log_ack`).
    Log(LogChunk),
    /// A preview tunnel's message or bytes, for the connection `generation`
    /// it was opened on (dropped on any other).
    Tunnel { generation: u64, out: TunnelOut },
}

/// What the uplink tells the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromUplink {
    /// A command from the relay.
    Command { id: String, op: CommandOp },
    /// Connected and welcomed by the relay at `url`.
    Connected { runner_id: String, url: String },
    /// Not connected (any more); why.
    Disconnected { reason: String },
    /// The relay stored `stored` bytes of a job's log.
    LogAck {
        job: String,
        offset: u64,
        stored: u64,
    },
}

/// How the uplink ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UplinkEnd {
    Cancelled,
    /// The relay refused the runner token: retrying cannot help.
    Rejected(String),
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

    /// The first delay (with jitter), without growing.
    pub fn first_delay(&self) -> Duration {
        let jitter = rand::thread_rng().gen_range(0.5..1.5);
        self.base.mul_f64(jitter).min(self.cap)
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

/// The relay URLs a runner connects to, in order, and which one is
/// current (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relays {
    urls: Vec<String>,
    at: usize,
    /// Attempts failed since the last connection that was welcomed.
    failed: usize,
}

impl Relays {
    /// `None` when `urls` is empty.
    pub fn new(urls: Vec<String>) -> Option<Relays> {
        (!urls.is_empty()).then_some(Relays {
            urls,
            at: 0,
            failed: 0,
        })
    }

    /// The URL to connect to now.
    pub fn current(&self) -> &str {
        &self.urls[self.at]
    }

    /// A connection was welcomed: stay on this URL.
    pub fn connected(&mut self) {
        self.failed = 0;
    }

    /// An attempt failed or a connection was lost: the next URL is
    /// current. `true` when every URL failed in a row since the last
    /// connection (a full round: time to back off further).
    pub fn failed(&mut self) -> bool {
        self.at = (self.at + 1) % self.urls.len();
        self.failed += 1;
        self.failed.is_multiple_of(self.urls.len())
    }
}

type Ws = crate::net::WsStream;

/// Why a connection attempt failed.
#[derive(Debug)]
enum ConnectError {
    /// Definite: the token (or the URL) is refused; stop.
    Rejected(String),
    /// Worth retrying.
    Failed(String),
}

/// Opens the runner WebSocket with the token: the one place that dials,
/// through `net::connect_ws` (TLS, `--ca-file`, plain-words errors), or
/// through memory to the relay of this process.
async fn connect_ws(relay_url: &str, token: &str, cfg: &UplinkConfig) -> Result<Ws, ConnectError> {
    let url = runner_ws_url(relay_url).map_err(|e| ConnectError::Rejected(e.to_string()))?;
    let ws = match &cfg.in_process {
        Some(dial) => crate::net::connect_ws_in_process(&url, token, dial).await,
        None => crate::net::connect_ws(&url, token, &cfg.tls).await,
    };
    ws.map_err(|err| {
        if err.is_definite() {
            ConnectError::Rejected(err.to_string())
        } else {
            ConnectError::Failed(err.to_string())
        }
    })
}

/// One served channel as the uplink sees it.
#[derive(Debug)]
struct Chan {
    open: Open,
    to_core: mpsc::UnboundedSender<RelayEvent>,
    /// `opened` arrived on the live connection.
    opened: bool,
    attached: u32,
}

/// The uplink's state across connections.
struct State {
    cfg: UplinkConfig,
    relays: Relays,
    channels: BTreeMap<Channel, Chan>,
    /// The live connection's generation (0 before the first).
    generation: u64,
    connected: bool,
    started: Instant,
    to_daemon: mpsc::UnboundedSender<FromUplink>,
    /// The live connection's preview streams.
    tunnels: Option<Tunnels>,
    /// The live connection's relay takes `rebase` (its `welcome.features`).
    relay_rebase: bool,
}

fn text(msg: &RunnerMsg) -> Option<Message> {
    match serde_json::to_string(msg) {
        Ok(t) => Some(Message::text(t)),
        Err(err) => {
            warn!(%err, "cannot encode a message for the relay");
            None
        }
    }
}

impl State {
    /// Takes one message from the daemon or a core; returns what to send
    /// (nothing while disconnected).
    fn local(&mut self, msg: ToUplink) -> Vec<Message> {
        self.cfg.activity.touch();
        let connected = self.connected;
        let mut out = Vec::new();
        match msg {
            ToUplink::Serve { open, to_core } => {
                if connected {
                    out.extend(text(&RunnerMsg::Open(open.clone())));
                }
                self.channels.insert(
                    open.ch,
                    Chan {
                        open,
                        to_core,
                        opened: false,
                        attached: 0,
                    },
                );
            }
            ToUplink::Core { ch, msg } => {
                let Some(chan) = self.channels.get_mut(&ch) else {
                    return out;
                };
                match msg {
                    ToRelay::Frame { generation, bytes } => {
                        if connected && chan.opened && generation == self.generation {
                            out.push(Message::Binary(with_channel(ch, &bytes)));
                        }
                    }
                    ToRelay::Status { attached_clients } => chan.attached = attached_clients,
                    ToRelay::Rebase { generation } => {
                        // An older relay fans out only after the commit and
                        // would close the connection on `rebase`.
                        if connected
                            && chan.opened
                            && generation == self.generation
                            && self.relay_rebase
                        {
                            out.extend(text(&RunnerMsg::Rebase { ch }));
                        }
                    }
                    ToRelay::Activity { pane, idle, at } => {
                        if connected && chan.opened {
                            out.extend(text(&RunnerMsg::Activity { ch, pane, idle, at }));
                        }
                    }
                    ToRelay::Error {
                        generation,
                        code,
                        message,
                    } => {
                        if connected && generation == self.generation {
                            out.extend(text(&RunnerMsg::Error {
                                ch: Some(ch),
                                code: code.as_str().to_owned(),
                                message,
                            }));
                        }
                    }
                }
            }
            ToUplink::Close { ch, reason } => {
                if self.channels.remove(&ch).is_some() && connected {
                    out.extend(text(&RunnerMsg::Close { ch, reason }));
                }
            }
            ToUplink::Result { id, result } => {
                if connected {
                    let msg = match result {
                        Ok(ch) => RunnerMsg::Result {
                            id,
                            ok: true,
                            ch,
                            error: None,
                        },
                        Err(error) => RunnerMsg::Result {
                            id,
                            ok: false,
                            ch: None,
                            error: Some(error),
                        },
                    };
                    out.extend(text(&msg));
                } else {
                    debug!(%id, "a command result for a connection that is gone");
                }
            }
            ToUplink::Job(report) => {
                if connected {
                    out.extend(text(&RunnerMsg::Job(report)));
                }
            }
            ToUplink::Jobs(jobs) => {
                if connected {
                    out.extend(text(&RunnerMsg::Jobs { jobs }));
                }
            }
            ToUplink::Log(chunk) => {
                if connected {
                    out.push(Message::Binary(chunk.encode()));
                }
            }
            ToUplink::Tunnel {
                generation,
                out: tunnel,
            } => {
                if !connected || generation != self.generation {
                    return out;
                }
                match tunnel {
                    TunnelOut::Data(bytes) => out.push(Message::Binary(bytes)),
                    TunnelOut::Msg(msg) => {
                        if let Some(t) = self.tunnels.as_mut() {
                            t.outgoing(&msg);
                        }
                        out.extend(text(&msg));
                    }
                }
            }
        }
        out
    }

    /// A tunnel message from the relay (§4.8); returns what to answer at
    /// once.
    fn tunnel(&mut self, msg: Wire) -> Vec<Message> {
        self.cfg.activity.touch();
        let generation = self.generation;
        let Some(t) = self.tunnels.as_mut() else {
            return match msg {
                Wire::TunnelOpen { stream, .. } => text(&RunnerMsg::TunnelClose {
                    stream,
                    code: TunnelError::Unsupported,
                })
                .into_iter()
                .collect(),
                _ => Vec::new(),
            };
        };
        let reply = match msg {
            Wire::TunnelOpen { stream, job, port } => t.open(stream, &job, port, generation),
            Wire::TunnelCredit { stream, bytes } => t.credit(stream, bytes),
            Wire::TunnelEof { stream } => {
                t.eof(stream);
                None
            }
            Wire::TunnelClose { stream, .. } => {
                t.close(stream);
                None
            }
            _ => None,
        };
        reply.as_ref().and_then(text).into_iter().collect()
    }

    /// A binary message from the relay: only tunnel bytes travel this way.
    fn binary(&mut self, message: &bytes::Bytes) -> Vec<Message> {
        self.cfg.activity.touch();
        let stream = split_channel(message)
            .ok()
            .and_then(|(ch, data)| Some((channel_stream(ch)?, data)));
        let Some((stream, data)) = stream else {
            warn!(
                bytes = message.len(),
                "a binary message from the relay on no tunnel"
            );
            return Vec::new();
        };
        let reply = self.tunnels.as_mut().and_then(|t| t.data(stream, data));
        reply.as_ref().and_then(text).into_iter().collect()
    }

    /// A text message from the relay.
    fn remote(&mut self, msg: Wire) {
        self.cfg.activity.touch();
        let (ch, event) = match msg {
            Wire::Opened {
                ch,
                session_id,
                last_seq,
            } => {
                if let Some(chan) = self.channels.get_mut(&ch) {
                    debug!(ch, %session_id, last_seq, "opened");
                    chan.opened = true;
                }
                (
                    ch,
                    RelayEvent::Opened {
                        generation: self.generation,
                        last_seq,
                    },
                )
            }
            Wire::OpenFailed { ch, code, reason } => {
                let name = self.channels.get(&ch).map(|c| c.open.tmux_session.clone());
                warn!(ch, code, %reason, session = ?name, "the relay refused to open a session");
                return;
            }
            Wire::Ack { ch, seq } => (ch, RelayEvent::Message(RelayMsg::Ack { seq })),
            Wire::Input { ch, pane, data } => {
                (ch, RelayEvent::Message(RelayMsg::Input { pane, data }))
            }
            Wire::Resize { ch, cols, rows } => {
                (ch, RelayEvent::Message(RelayMsg::Resize { cols, rows }))
            }
            Wire::Viewers { ch, count } => (ch, RelayEvent::Message(RelayMsg::Viewers { count })),
            Wire::SnapshotRequest { ch } => (ch, RelayEvent::Message(RelayMsg::SnapshotRequest)),
            Wire::Keys { ch, pane, keys } => {
                (ch, RelayEvent::Message(RelayMsg::Keys { pane, keys }))
            }
            Wire::Tmux { ch, op } => (ch, RelayEvent::Message(RelayMsg::Tmux(op))),
            Wire::Watch { ch, pane, idle_ms } => {
                (ch, RelayEvent::Message(RelayMsg::Watch { pane, idle_ms }))
            }
            Wire::Command { id, op } => {
                let _ = self.to_daemon.send(FromUplink::Command { id, op });
                return;
            }
            Wire::LogAck {
                job,
                offset,
                stored,
            } => {
                let _ = self.to_daemon.send(FromUplink::LogAck {
                    job,
                    offset,
                    stored,
                });
                return;
            }
            Wire::Error { ch, code, message } => {
                warn!(?ch, %code, %message, "the relay reported an error");
                return;
            }
            Wire::Welcome { .. } => {
                debug!("a second welcome");
                return;
            }
            other => {
                debug!(?other, "a relay message this runner does not take");
                return;
            }
        };
        match self.channels.get(&ch) {
            Some(chan) => {
                let _ = chan.to_core.send(event);
            }
            None => debug!(ch, "a message for a channel that is closed"),
        }
    }

    fn status(&self) -> Option<Message> {
        text(&RunnerMsg::Status {
            uptime_s: self.started.elapsed().as_secs(),
            load: load_average(),
            tmux_version: self.cfg.hello.tmux_version.clone(),
            sessions: self
                .channels
                .iter()
                .map(|(ch, c)| ChannelStatus {
                    ch: *ch,
                    attached_clients: c.attached,
                })
                .collect(),
        })
    }

    /// The connection is gone: every core hears so.
    fn lost(&mut self, reason: String) {
        if self.connected {
            warn!(%reason, "lost the relay connection");
        }
        self.connected = false;
        for chan in self.channels.values_mut() {
            chan.opened = false;
            let _ = chan.to_core.send(RelayEvent::Lost {
                generation: self.generation,
            });
        }
        if let Some(t) = self.tunnels.as_mut() {
            t.clear();
        }
        let _ = self.to_daemon.send(FromUplink::Disconnected { reason });
    }
}

/// `/proc/loadavg`'s three numbers (empty elsewhere).
fn load_average() -> Vec<f32> {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| {
            s.split_whitespace()
                .take(3)
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs the uplink until `cancel` fires (then every channel is closed with
/// `stopping`) or the relay rejects the token.
pub async fn run(
    cfg: UplinkConfig,
    mut rx: mpsc::Receiver<ToUplink>,
    to_daemon: mpsc::UnboundedSender<FromUplink>,
    cancel: CancellationToken,
) -> UplinkEnd {
    let tunnels = cfg.tunnels.clone().map(Tunnels::new);
    let Some(relays) = Relays::new(cfg.relay_urls.clone()) else {
        let reason = "no relay URL to connect to".to_owned();
        let _ = to_daemon.send(FromUplink::Disconnected {
            reason: reason.clone(),
        });
        return UplinkEnd::Rejected(reason);
    };
    let mut state = State {
        cfg,
        relays,
        tunnels,
        channels: BTreeMap::new(),
        generation: 0,
        connected: false,
        started: Instant::now(),
        to_daemon,
        relay_rebase: false,
    };
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(15));
    loop {
        state.generation += 1;
        let (reason, was_up) = match connected(&mut state, &mut rx, &cancel).await {
            Session::Cancelled => return UplinkEnd::Cancelled,
            Session::Rejected(reason) => {
                warn!(%reason, "the relay rejected this runner; not retrying");
                state.lost(reason.clone());
                return UplinkEnd::Rejected(reason);
            }
            Session::Lost { reason, was_up } => (reason, was_up),
        };
        if !was_up {
            warn!(%reason, url = %state.relays.current(), "cannot reach the relay; retrying");
        }
        state.lost(reason);
        if was_up {
            backoff.reset();
        }
        // The next relay at once (after the first delay's jitter); longer
        // only once every relay failed in a row.
        let delay = if state.relays.failed() {
            backoff.next_delay()
        } else {
            backoff.first_delay()
        };
        debug!(?delay, url = %state.relays.current(), "reconnecting to relay");
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return UplinkEnd::Cancelled,
                () = &mut sleep => break,
                msg = rx.recv() => match msg {
                    Some(msg) => { state.local(msg); }
                    None => return UplinkEnd::Cancelled,
                },
            }
        }
    }
}

enum Session {
    Cancelled,
    Rejected(String),
    Lost { reason: String, was_up: bool },
}

/// How long the relay may stay silent (no message, no pong) before the
/// connection counts as dead.
fn silence_limit(heartbeat: Duration) -> Duration {
    (heartbeat * 5).max(Duration::from_secs(10))
}

/// One connection: handshake, open every channel, then serve until it
/// breaks.
async fn connected(
    state: &mut State,
    rx: &mut mpsc::Receiver<ToUplink>,
    cancel: &CancellationToken,
) -> Session {
    let url = state.relays.current().to_owned();
    let ws = tokio::select! {
        _ = cancel.cancelled() => return Session::Cancelled,
        r = connect_ws(&url, &state.cfg.runner_token, &state.cfg) => match r {
            Ok(ws) => ws,
            Err(ConnectError::Rejected(reason)) => return Session::Rejected(reason),
            Err(ConnectError::Failed(reason)) => return Session::Lost { reason, was_up: false },
        },
    };
    let (mut sink, mut stream) = ws.split();
    let lost = |reason: String| Session::Lost {
        reason,
        was_up: false,
    };
    let Some(hello) = text(&RunnerMsg::Hello(state.cfg.hello.clone())) else {
        return Session::Rejected("cannot encode hello".into());
    };
    if let Err(err) = sink.send(hello).await {
        return lost(format!("sending hello: {err}"));
    }
    let welcome = tokio::select! {
        _ = cancel.cancelled() => return Session::Cancelled,
        r = tokio::time::timeout(Duration::from_secs(10), stream.next()) => r,
    };
    let (runner_id, heartbeat_ms, features) = match welcome {
        Err(_) => return lost("the relay did not answer hello within 10 s".into()),
        Ok(Some(Ok(Message::Text(t)))) => match serde_json::from_str::<Wire>(&t) {
            Ok(Wire::Welcome {
                runner_id,
                heartbeat_ms,
                features,
            }) => (runner_id, heartbeat_ms, features),
            Ok(other) => return lost(format!("the relay answered hello with {other:?}")),
            Err(err) => return lost(format!("the relay sent a malformed welcome: {err}")),
        },
        Ok(Some(Ok(Message::Close(frame)))) => {
            let (code, reason) = frame
                .map(|f| (u16::from(f.code), f.reason.to_string()))
                .unwrap_or((1005, String::new()));
            if code == 1008 {
                return Session::Rejected(format!(
                    "the relay closed the connection: {code} {reason}"
                ));
            }
            if code == 4000 {
                // A protocol version this relay does not speak: definite.
                return Session::Rejected(format!("the relay refused hello: {code} {reason}"));
            }
            return lost(format!("the relay closed during hello: {code} {reason}"));
        }
        Ok(other) => return lost(format!("the relay answered hello with {other:?}")),
    };
    info!(%runner_id, %url, "connected to relay");
    state.connected = true;
    state.relay_rebase = features.iter().any(|f| f == FEATURE_REBASE);
    state.relays.connected();
    let _ = state
        .to_daemon
        .send(FromUplink::Connected { runner_id, url });
    let opens: Vec<Message> = state
        .channels
        .values()
        .filter_map(|c| text(&RunnerMsg::Open(c.open.clone())))
        .collect();
    for m in opens {
        if let Err(err) = sink.send(m).await {
            return lost(format!("sending open: {err}"));
        }
    }
    let heartbeat = Duration::from_millis(heartbeat_ms.clamp(200, 60_000));
    let mut tick = tokio::time::interval(heartbeat);
    let mut heard = Instant::now();
    let up = |reason: String| Session::Lost {
        reason,
        was_up: true,
    };
    // One task writes, so this loop reads whatever the relay sends even
    // while the socket to it is full. The relay's loop waits on its writes
    // too: with both ends sending at once (a preview uploading while it
    // downloads), two loops that each wait on their own write would wait
    // for each other.
    let (ctrl_tx, ctrl_rx) = mpsc::unbounded_channel::<Message>();
    let (data_tx, data_rx) = mpsc::channel::<Message>(WRITE_QUEUE);
    let mut writer = tokio::spawn(write_all(sink, ctrl_rx, data_rx));
    // What `rx` gave that the writer's queue had no room for yet (at most
    // one message's worth: `rx` is read only when this is empty).
    let mut pending: VecDeque<Message> = VecDeque::new();
    let ctrl = |m: Message| {
        // Only fails once the writer ended, which the loop sees next.
        let _ = ctrl_tx.send(m);
    };
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            ended = &mut writer => {
                let reason = match ended {
                    Ok(Err(err)) => format!("sending to the relay: {err}"),
                    _ => "the writer to the relay ended".to_owned(),
                };
                return up(reason);
            }
            permit = data_tx.reserve(), if !pending.is_empty() => {
                if let (Ok(permit), Some(m)) = (permit, pending.pop_front()) {
                    permit.send(m);
                }
            }
            msg = rx.recv(), if pending.is_empty() => {
                let Some(msg) = msg else {
                    writer.abort();
                    return Session::Cancelled;
                };
                for m in state.local(msg) {
                    match data_tx.try_send(m) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(m)) => pending.push_back(m),
                        // The writer ended: the loop sees why next.
                        Err(mpsc::error::TrySendError::Closed(_)) => break,
                    }
                }
            }
            _ = tick.tick() => {
                if heard.elapsed() > silence_limit(heartbeat) {
                    writer.abort();
                    return up(format!("the relay was silent for {:?}", heard.elapsed()));
                }
                if let Some(m) = state.status() {
                    ctrl(m);
                }
                ctrl(Message::Ping(Default::default()));
            }
            msg = stream.next() => {
                heard = Instant::now();
                match msg {
                    None => {
                        writer.abort();
                        return up("the relay closed the connection".into());
                    }
                    Some(Err(err)) => {
                        writer.abort();
                        return up(format!("reading from the relay: {err}"));
                    }
                    Some(Ok(Message::Text(t))) => match serde_json::from_str::<Wire>(&t) {
                        Ok(msg @ (Wire::TunnelOpen { .. } | Wire::TunnelCredit { .. }
                            | Wire::TunnelEof { .. } | Wire::TunnelClose { .. })) => {
                            state.tunnel(msg).into_iter().for_each(ctrl);
                        }
                        Ok(msg) => {
                            trace!(target: "latency", stage = "runner_msg_in");
                            state.remote(msg);
                        }
                        Err(err) => warn!(%err, "a malformed message from the relay"),
                    },
                    Some(Ok(Message::Binary(b))) => state.binary(&b).into_iter().for_each(ctrl),
                    Some(Ok(Message::Close(frame))) => {
                        writer.abort();
                        let (code, reason) = frame
                            .map(|f| (u16::from(f.code), f.reason.to_string()))
                            .unwrap_or((1005, String::new()));
                        if code == 1008 {
                            return Session::Rejected(format!(
                                "the relay closed the connection: {code} {reason}"
                            ));
                        }
                        return up(format!("the relay closed the connection: {code} {reason}"));
                    }
                    Some(Ok(_)) => {}
                }
            }
        }
    }
    // Last frames of the cores are queued already (they stop first): after
    // what is queued, in order, then the closes.
    let mut last: Vec<Message> = pending.drain(..).collect();
    while let Ok(msg) = rx.try_recv() {
        last.extend(state.local(msg));
    }
    last.extend(state.channels.keys().filter_map(|ch| {
        text(&RunnerMsg::Close {
            ch: *ch,
            reason: CloseReason::Stopping,
        })
    }));
    last.push(Message::Close(None));
    let flush = async {
        for m in last {
            if data_tx.send(m).await.is_err() {
                break;
            }
        }
        drop(data_tx);
        drop(ctrl_tx);
        let _ = (&mut writer).await;
    };
    if tokio::time::timeout(Duration::from_secs(5), flush)
        .await
        .is_err()
    {
        writer.abort();
    }
    Session::Cancelled
}

/// Messages queued for the writer from the cores, jobs and tunnels, at
/// most: beyond it the loop stops taking from them (their own bounds hold
/// the rest) but keeps reading the relay.
const WRITE_QUEUE: usize = 64;

/// The connection's writer: control messages (answers to what the relay
/// sent, heartbeats) before queued data, until both queues close (`Ok`)
/// or a write fails.
async fn write_all(
    mut sink: futures_util::stream::SplitSink<Ws, Message>,
    mut ctrl: mpsc::UnboundedReceiver<Message>,
    mut data: mpsc::Receiver<Message>,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let (mut ctrl_open, mut data_open) = (true, true);
    while ctrl_open || data_open {
        let m = tokio::select! {
            biased;
            m = ctrl.recv(), if ctrl_open => m.or_else(|| {
                ctrl_open = false;
                None
            }),
            m = data.recv(), if data_open => m.or_else(|| {
                data_open = false;
                None
            }),
        };
        if let Some(m) = m {
            let frame = matches!(m, Message::Binary(_));
            sink.send(m).await?;
            if frame {
                trace!(target: "latency", stage = "runner_frame_sent");
            }
        }
    }
    sink.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ErrorCode;

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

    #[test]
    fn relays_rotate_on_failure_and_stay_on_success() {
        assert_eq!(Relays::new(Vec::new()), None);
        let mut one = Relays::new(vec!["a".into()]).expect("one");
        assert!(one.failed(), "one URL: every failure is a full round");
        assert_eq!(one.current(), "a");
        let mut r = Relays::new(vec!["a".into(), "b".into(), "c".into()]).expect("three");
        assert_eq!(r.current(), "a", "the primary first");
        assert!(!r.failed(), "a failed: b next, no back-off yet");
        assert_eq!(r.current(), "b");
        r.connected();
        // Lost b: c, then a; a full round only after b, c and a failed.
        assert!(!r.failed());
        assert_eq!(r.current(), "c");
        assert!(!r.failed());
        assert_eq!(r.current(), "a");
        assert!(r.failed(), "b, c and a failed in a row");
        assert_eq!(r.current(), "b");
        r.connected();
        assert_eq!(r.current(), "b", "stays on the relay that works");
    }

    fn state() -> (State, mpsc::UnboundedReceiver<FromUplink>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let state = State {
            relays: Relays::new(vec!["http://127.0.0.1:1".into()]).expect("a URL"),
            cfg: UplinkConfig {
                relay_urls: vec!["http://127.0.0.1:1".into()],
                runner_token: "t".into(),
                hello: Hello {
                    v: 2,
                    host: "h".into(),
                    version: "0".into(),
                    tmux_version: "3.3a".into(),
                    started_at: 0,
                    features: Vec::new(),
                },
                tls: crate::net::TlsOptions::default(),
                tunnels: None,
                in_process: None,
                activity: crate::resident::Activity::default(),
            },
            tunnels: None,
            relay_rebase: true,
            channels: BTreeMap::new(),
            generation: 1,
            connected: true,
            started: Instant::now(),
            to_daemon: tx,
        };
        (state, rx)
    }

    fn open(ch: Channel) -> Open {
        Open {
            ch,
            idea: "i".into(),
            slot: "s".into(),
            instance: "x".into(),
            tmux_session: "tb_i__s".into(),
            attach: String::new(),
        }
    }

    /// Serves channel `ch`: what the uplink sends, and what its core hears.
    fn serve(s: &mut State, ch: Channel) -> (Vec<Message>, mpsc::UnboundedReceiver<RelayEvent>) {
        let (core_tx, core_rx) = mpsc::unbounded_channel();
        let sent = s.local(ToUplink::Serve {
            open: open(ch),
            to_core: core_tx,
        });
        (sent, core_rx)
    }

    /// The relay's `opened` for channel `ch`.
    fn opened(s: &mut State, ch: Channel, last_seq: u64) {
        s.remote(Wire::Opened {
            ch,
            session_id: "7".into(),
            last_seq,
        });
    }

    #[test]
    fn frames_go_out_only_after_opened_and_for_the_live_generation() {
        let (mut s, _d) = state();
        let (sent, mut core_rx) = serve(&mut s, 3);
        assert_eq!(sent.len(), 1, "open is sent at once");
        let frame = |generation| ToUplink::Core {
            ch: 3,
            msg: ToRelay::Frame {
                generation,
                bytes: bytes::Bytes::from_static(b"F"),
            },
        };
        assert!(s.local(frame(1)).is_empty(), "not opened yet");
        opened(&mut s, 3, 4);
        assert_eq!(
            core_rx.try_recv().ok(),
            Some(RelayEvent::Opened {
                generation: 1,
                last_seq: 4
            })
        );
        let out = s.local(frame(1));
        assert_eq!(out, vec![Message::Binary(with_channel(3, b"F"))]);
        assert!(s.local(frame(0)).is_empty(), "an old connection's frame");
        // Errors keep their channel; unknown channels are dropped.
        let err = s.local(ToUplink::Core {
            ch: 3,
            msg: ToRelay::Error {
                generation: 1,
                code: ErrorCode::UnknownPane,
                message: "m".into(),
            },
        });
        assert_eq!(err.len(), 1);
        s.remote(Wire::Ack { ch: 9, seq: 1 });
        // Lost: every core hears, and nothing is sent until the next open.
        s.lost("test".into());
        assert_eq!(
            core_rx.try_recv().ok(),
            Some(RelayEvent::Lost { generation: 1 })
        );
        assert!(s.local(frame(1)).is_empty());
        // Close removes the channel.
        s.connected = true;
        assert_eq!(
            s.local(ToUplink::Close {
                ch: 3,
                reason: CloseReason::Killed
            })
            .len(),
            1
        );
        assert!(s.channels.is_empty());
    }

    #[test]
    fn rebase_goes_only_to_a_relay_that_takes_it() {
        for takes in [true, false] {
            let (mut s, _d) = state();
            s.relay_rebase = takes;
            let (core_tx, _core_rx) = mpsc::unbounded_channel();
            s.local(ToUplink::Serve {
                open: open(2),
                to_core: core_tx,
            });
            s.remote(Wire::Opened {
                ch: 2,
                session_id: "7".into(),
                last_seq: 0,
            });
            let out = s.local(ToUplink::Core {
                ch: 2,
                msg: ToRelay::Rebase { generation: 1 },
            });
            let want = if takes {
                vec![Message::text(r#"{"t":"rebase","ch":2}"#)]
            } else {
                Vec::new()
            };
            assert_eq!(out, want, "relay takes rebase: {takes}");
        }
    }

    #[test]
    fn commands_reach_the_daemon_and_status_lists_channels() {
        let (mut s, mut d) = state();
        s.remote(Wire::Command {
            id: "c1".into(),
            op: CommandOp::KillSession {
                idea: "i".into(),
                slot: "s".into(),
                instance: "x".into(),
            },
        });
        assert!(matches!(d.try_recv(), Ok(FromUplink::Command { id, .. }) if id == "c1"));
        let _core = serve(&mut s, 1);
        s.local(ToUplink::Core {
            ch: 1,
            msg: ToRelay::Status {
                attached_clients: 2,
            },
        });
        let Some(Message::Text(t)) = s.status() else {
            panic!("no status")
        };
        assert!(
            t.contains(r#""sessions":[{"ch":1,"attached_clients":2}]"#),
            "{t}"
        );
    }
}
