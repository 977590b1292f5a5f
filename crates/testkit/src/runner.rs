//! A protocol-2 runner for tests (docs/protocol.md §4): one WebSocket with
//! a runner token, `hello`, channels opened by hand, frames built with
//! `protocol::wire`, and the relay's messages (acks, commands, …) read in
//! order. It answers nothing by itself: a test decides what the runner
//! does, including how it answers commands ([`TestRunner::reply`] keeps
//! the results, so [`TestRunner::repeat_or`] answers a repeated id the
//! same way, as §4.3 requires).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use protocol::runner::{
    Channel, ChannelStatus, CloseReason, CommandOp, ErrorBody, Hello, Open,
    RUNNER_PROTOCOL_VERSION, RelayMsg, RunnerMsg, with_channel,
};
use protocol::wire::{Frame, Record, RecordBody};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::Result;

/// The runner's WebSocket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long one expected message may take.
pub const STEP: Duration = Duration::from_secs(20);

/// Opens `ws://addr/api/runner/ws` with an optional Bearer token. `Err`
/// carries the HTTP status of a refused handshake.
pub async fn runner_socket(addr: SocketAddr, token: Option<&str>) -> std::result::Result<Ws, u16> {
    let mut req = format!("ws://{addr}/api/runner/ws")
        .into_client_request()
        .map_err(|_| 0u16)?;
    if let Some(t) = token {
        let Ok(v) = HeaderValue::from_str(&format!("Bearer {t}")) else {
            return Err(0);
        };
        req.headers_mut().insert("authorization", v);
    }
    match tokio::time::timeout(STEP, tokio_tungstenite::connect_async(req)).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(WsError::Http(resp))) => Err(resp.status().as_u16()),
        _ => Err(0),
    }
}

/// A `hello` as a test runner sends it.
pub fn hello(features: &[&str]) -> Hello {
    Hello {
        v: RUNNER_PROTOCOL_VERSION,
        host: "test-host".to_owned(),
        version: "0.0.0-test".to_owned(),
        tmux_version: "3.4".to_owned(),
        started_at: 0,
        features: features.iter().map(|f| (*f).to_owned()).collect(),
    }
}

/// An `open` for (idea, slot, instance) on `ch`, with the names a runner
/// would send.
pub fn open(ch: Channel, idea: &str, slot: &str, instance: &str) -> Open {
    Open {
        ch,
        idea: idea.to_owned(),
        slot: slot.to_owned(),
        instance: instance.to_owned(),
        tmux_session: format!("tb_{idea}__{slot}"),
        attach: format!("tmux -L test attach -t '=tb_{idea}__{slot}'"),
    }
}

/// What `opened` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub session_id: String,
    pub last_seq: u64,
}

/// A raw batch of records `first..=last`, each `len` bytes of output of
/// pane `%0` (incompressible-looking, seeded by seq).
pub fn batch(first: u64, last: u64, len: usize) -> Bytes {
    let records = (first..=last)
        .map(|seq| Record {
            time: 0,
            seq,
            body: RecordBody::Output {
                pane: tmux_cc::PaneId(0),
                bytes: Bytes::from(noise(seq, len)),
            },
        })
        .collect();
    Frame::batch(records).map_or_else(Bytes::new, |f| f.encode(false))
}

/// The topology JSON of one window `@0` holding `panes`.
pub fn topology_json(panes: &[u32]) -> String {
    let panes: Vec<String> = panes
        .iter()
        .map(|p| format!(r#"{{"id":"%{p}","x":0,"y":0,"cols":80,"rows":24,"title":""}}"#))
        .collect();
    format!(
        r#"{{"session":"$0","name":"tb_t__p","active_window":"@0","windows":[{{"id":"@0","index":0,"name":"sh","active":true,"layout":"","visible_layout":"","flags":"*","active_pane":null,"panes":[{}]}}]}}"#,
        panes.join(",")
    )
}

/// A batch of one Topology record at `seq` naming `panes`.
pub fn topology_batch(seq: u64, panes: &[u32]) -> Bytes {
    let r = Record {
        time: 0,
        seq,
        body: RecordBody::Topology(Bytes::from(topology_json(panes))),
    };
    Frame::batch(vec![r]).map_or_else(Bytes::new, |f| f.encode(true))
}

/// A snapshot frame at `m`: the topology (pane `%0`) and one pane reset.
pub fn snapshot(m: u64) -> Bytes {
    let records = vec![
        Record {
            time: 0,
            seq: m,
            body: RecordBody::Topology(Bytes::from(topology_json(&[0]))),
        },
        Record {
            time: 0,
            seq: m,
            body: RecordBody::PaneReset {
                pane: tmux_cc::PaneId(0),
                cols: 80,
                rows: 24,
                bytes: Bytes::from_static(b"snap"),
            },
        },
    ];
    Frame::snapshot(m, records).map_or_else(Bytes::new, |f| f.encode(true))
}

fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x & 0xff) as u8
        })
        .collect()
}

/// A connected protocol-2 runner.
pub struct TestRunner {
    pub ws: Ws,
    /// `welcome.runner_id`.
    pub runner_id: String,
    /// `welcome.heartbeat_ms`.
    pub heartbeat_ms: u64,
    /// Messages read but not yet taken.
    inbox: VecDeque<RelayMsg>,
    /// Results given, by command id (answered again on a repeat).
    results: HashMap<String, RunnerMsg>,
}

impl TestRunner {
    /// Connects and says `hello`; waits for `welcome`.
    pub async fn connect(addr: SocketAddr, token: &str, hello: Hello) -> Result<TestRunner> {
        let ws = runner_socket(addr, Some(token))
            .await
            .map_err(|status| anyhow::anyhow!("runner handshake refused: {status}"))?;
        Self::hello_on(ws, hello).await
    }

    /// Says `hello` on an open socket; waits for `welcome`.
    pub async fn hello_on(ws: Ws, hello: Hello) -> Result<TestRunner> {
        let mut r = TestRunner {
            ws,
            runner_id: String::new(),
            heartbeat_ms: 0,
            inbox: VecDeque::new(),
            results: HashMap::new(),
        };
        r.send(&RunnerMsg::Hello(hello)).await?;
        match r.read().await? {
            RelayMsg::Welcome {
                runner_id,
                heartbeat_ms,
                ..
            } => {
                r.runner_id = runner_id;
                r.heartbeat_ms = heartbeat_ms;
                Ok(r)
            }
            other => bail!("expected welcome, got {other:?}"),
        }
    }

    /// Sends a text message.
    pub async fn send(&mut self, msg: &RunnerMsg) -> Result<()> {
        let text = serde_json::to_string(msg)?;
        self.ws.send(Message::text(text)).await?;
        Ok(())
    }

    /// Sends `frame` on channel `ch`.
    pub async fn send_frame(&mut self, ch: Channel, frame: &[u8]) -> Result<()> {
        self.ws
            .send(Message::Binary(with_channel(ch, frame)))
            .await?;
        Ok(())
    }

    /// Opens a channel and waits for its `opened` (an `open_failed` is an
    /// error carrying its code and reason).
    pub async fn open(&mut self, open: Open) -> Result<Opened> {
        let ch = open.ch;
        self.send(&RunnerMsg::Open(open)).await?;
        let m = self
            .wait_for(|m| {
                matches!(m, RelayMsg::Opened { ch: c, .. } | RelayMsg::OpenFailed { ch: c, .. } if *c == ch)
            })
            .await?;
        match m {
            RelayMsg::Opened {
                session_id,
                last_seq,
                ..
            } => Ok(Opened {
                session_id,
                last_seq,
            }),
            RelayMsg::OpenFailed { code, reason, .. } => bail!("open_failed {code}: {reason}"),
            other => bail!("unexpected {other:?}"),
        }
    }

    /// Says the channel is closed.
    pub async fn close(&mut self, ch: Channel, reason: CloseReason) -> Result<()> {
        self.send(&RunnerMsg::Close { ch, reason }).await
    }

    /// A heartbeat.
    pub async fn status(&mut self, sessions: Vec<ChannelStatus>) -> Result<()> {
        self.send(&RunnerMsg::Status {
            uptime_s: 1,
            load: vec![0.0, 0.0, 0.0],
            tmux_version: "3.4".to_owned(),
            sessions,
        })
        .await
    }

    /// The next relay message (skipping pings; [`STEP`] for the whole
    /// wait, however many pings arrive).
    async fn read(&mut self) -> Result<RelayMsg> {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .context("no message from the relay in time")?
                .context("the relay closed the socket")??;
            match msg {
                Message::Text(t) => return Ok(serde_json::from_str(t.as_str())?),
                Message::Close(f) => bail!("closed by the relay: {f:?}"),
                _ => continue,
            }
        }
    }

    /// The next message, in order.
    pub async fn next(&mut self) -> Result<RelayMsg> {
        match self.inbox.pop_front() {
            Some(m) => Ok(m),
            None => self.read().await,
        }
    }

    /// Waits for the first message matching `pred`; the others stay
    /// queued, in order, for [`TestRunner::next`].
    pub async fn wait_for(&mut self, pred: impl Fn(&RelayMsg) -> bool) -> Result<RelayMsg> {
        if let Some(i) = self.inbox.iter().position(&pred) {
            return self.inbox.remove(i).context("queued");
        }
        loop {
            let m = self.read().await?;
            if pred(&m) {
                return Ok(m);
            }
            self.inbox.push_back(m);
        }
    }

    /// Waits until channel `ch` is acked up to `seq`; returns (and drops
    /// from the queue) every other message seen before.
    /// Acks of other channels stay queued.
    pub async fn wait_ack(&mut self, ch: Channel, seq: u64) -> Result<Vec<RelayMsg>> {
        let mut other = Vec::new();
        let mut kept = VecDeque::new();
        let outcome = loop {
            let m = match self.inbox.pop_front() {
                Some(m) => m,
                None => match self.read().await {
                    Ok(m) => m,
                    Err(e) => break Err(e),
                },
            };
            match m {
                RelayMsg::Ack { ch: c, seq: s } if c == ch && s >= seq => {
                    if s != seq {
                        break Err(anyhow::anyhow!("ack {s} beyond what was sent ({seq})"));
                    }
                    break Ok(other);
                }
                RelayMsg::Ack { ch: c, .. } if c == ch => {}
                m @ RelayMsg::Ack { .. } => kept.push_back(m),
                m => other.push(m),
            }
        };
        kept.extend(self.inbox.drain(..));
        self.inbox = kept;
        outcome
    }

    /// Waits for the next `command`.
    pub async fn next_command(&mut self) -> Result<(String, CommandOp)> {
        match self
            .wait_for(|m| matches!(m, RelayMsg::Command { .. }))
            .await?
        {
            RelayMsg::Command { id, op } => Ok((id, op)),
            other => bail!("unexpected {other:?}"),
        }
    }

    /// Answers command `id` (and remembers the answer for a repeat).
    pub async fn reply(
        &mut self,
        id: &str,
        ok: bool,
        ch: Option<Channel>,
        error: Option<ErrorBody>,
    ) -> Result<()> {
        let msg = RunnerMsg::Result {
            id: id.to_owned(),
            ok,
            ch,
            error,
        };
        self.results.insert(id.to_owned(), msg.clone());
        self.send(&msg).await
    }

    /// If `id` was answered before, answers it again the same way and
    /// returns `true` (§4.3: a repeated id never acts twice).
    pub async fn repeat_or(&mut self, id: &str) -> Result<bool> {
        match self.results.get(id).cloned() {
            Some(msg) => {
                self.send(&msg).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Waits for the close frame: `(code, reason)`, or `None` when the
    /// connection ended without one.
    pub async fn wait_close(&mut self) -> Option<(u16, String)> {
        wait_close(&mut self.ws).await
    }
}

/// Reads until the close frame: `(code, reason)`, or `None` when the
/// connection ended without one.
pub async fn wait_close(ws: &mut Ws) -> Option<(u16, String)> {
    loop {
        match tokio::time::timeout(STEP, ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => {
                return frame.map(|f| (u16::from(f.code), f.reason.to_string()));
            }
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}
