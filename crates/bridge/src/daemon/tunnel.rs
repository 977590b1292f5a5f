//! The runner's half of preview tunnels (docs/protocol.md §4.8): the relay
//! asks for a stream to a dev server's port (`tunnel_open {stream, job,
//! port}`), and this module dials it on loopback, if and only if
//! [`PortTable::dial_addr`] knows that port for that job, then pumps bytes
//! both ways under the stream's credit windows until both halves end, the
//! relay drops the stream, or the port stops being detected.
//!
//! [`Tunnels`] is owned by the uplink task and called synchronously from
//! it (no awaits: it never stands in the way of the socket's reads). Each
//! stream runs as one task with a reader (dev server → relay, bounded by
//! the relay's credit) and a writer (relay → dev server; the relay may
//! only send what this side granted, so the writer's queue holds at most a
//! window). It never resolves a host name and never dials an address it
//! was given: the relay names no host.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use protocol::runner::tunnel::{
    MAX_TUNNEL_CHUNK, MAX_TUNNEL_STREAMS, RecvWindow, SendWindow, stream_channel,
};
use protocol::runner::{RunnerMsg, StreamId, TunnelError, with_channel};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::ports::PortTable;
use crate::uplink::ToUplink;

/// How long dialling the dev server may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a stream checks that its port is still detected.
const PORT_CHECK: Duration = Duration::from_millis(500);

/// What a stream task sends toward the relay (through the uplink's queue).
#[derive(Debug, Clone, PartialEq)]
pub enum TunnelOut {
    /// A control message (`tunnel_opened`, `tunnel_credit`, …).
    Msg(RunnerMsg),
    /// Bytes from the dev server, channel prefix included.
    Data(Bytes),
}

/// What the uplink needs to run tunnels: the detected ports and a sender
/// into its own queue for the stream tasks.
#[derive(Debug, Clone)]
pub struct TunnelSetup {
    pub ports: PortTable,
    pub to_uplink: mpsc::Sender<ToUplink>,
}

/// Relay → dev server, for the writer.
#[derive(Debug)]
enum ToWriter {
    Data(Bytes),
    Eof,
}

/// The credit the reader may spend, shared with the uplink.
#[derive(Debug, Default)]
struct Credit {
    window: Mutex<SendWindow>,
    more: Notify,
}

impl Credit {
    fn with<R>(&self, f: impl FnOnce(&mut SendWindow) -> R) -> R {
        f(&mut self.window.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[derive(Debug)]
struct Stream {
    to_writer: mpsc::UnboundedSender<ToWriter>,
    credit: Arc<Credit>,
    /// What the relay may still send this stream.
    recv: RecvWindow,
    cancel: CancellationToken,
}

/// The open streams of the live connection.
#[derive(Debug)]
pub struct Tunnels {
    setup: TunnelSetup,
    streams: HashMap<StreamId, Stream>,
}

impl Tunnels {
    pub fn new(setup: TunnelSetup) -> Self {
        Tunnels {
            setup,
            streams: HashMap::new(),
        }
    }

    /// How many streams are open.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// Whether no stream is open.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// `tunnel_open`: refuses (the returned message) unless `port` was
    /// detected for `job`; else starts the stream's task, which answers
    /// `tunnel_opened` or `tunnel_close connect_failed` itself.
    pub fn open(
        &mut self,
        stream: StreamId,
        job: &str,
        port: u16,
        generation: u64,
    ) -> Option<RunnerMsg> {
        let refuse = |code| Some(RunnerMsg::TunnelClose { stream, code });
        if stream_channel(stream).is_none() || self.streams.contains_key(&stream) {
            info!(stream, "tunnel refused: bad or reused stream number");
            return refuse(TunnelError::Protocol);
        }
        if self.streams.len() >= MAX_TUNNEL_STREAMS {
            info!(
                stream,
                open = self.streams.len(),
                "tunnel refused: too many streams"
            );
            return refuse(TunnelError::TooManyStreams);
        }
        let Some(addr) = self.setup.ports.dial_addr(job, port) else {
            info!(
                stream,
                job, port, "tunnel refused: port not detected for this job"
            );
            return refuse(TunnelError::PortNotDetected);
        };
        let (to_writer, writer_rx) = mpsc::unbounded_channel();
        let credit = Arc::new(Credit::default());
        let cancel = CancellationToken::new();
        let task = StreamTask {
            stream,
            job: job.to_owned(),
            port,
            addr,
            ports: self.setup.ports.clone(),
            out: Out {
                tx: self.setup.to_uplink.clone(),
                generation,
                stream,
            },
            credit: credit.clone(),
        };
        tokio::spawn(task.run(writer_rx, cancel.clone()));
        self.streams.insert(
            stream,
            Stream {
                to_writer,
                credit,
                recv: RecvWindow::default(),
                cancel,
            },
        );
        debug!(stream, job, port, "tunnel opening");
        None
    }

    /// Bytes from the relay for `stream`. An overrun of the credit or of
    /// the chunk size resets the stream (the returned message); bytes for
    /// a stream that is gone are dropped (it may have just closed).
    pub fn data(&mut self, stream: StreamId, bytes: Bytes) -> Option<RunnerMsg> {
        let s = self.streams.get_mut(&stream)?;
        if s.recv.received(bytes.len()).is_err() {
            info!(
                stream,
                bytes = bytes.len(),
                "tunnel reset: the relay overran its credit"
            );
            return self.reset(stream, TunnelError::Protocol);
        }
        let _ = s.to_writer.send(ToWriter::Data(bytes));
        None
    }

    /// `tunnel_credit` from the relay.
    pub fn credit(&mut self, stream: StreamId, bytes: u32) -> Option<RunnerMsg> {
        let s = self.streams.get(&stream)?;
        if s.credit.with(|w| w.credit(bytes)).is_err() {
            info!(stream, "tunnel reset: credit beyond the window");
            return self.reset(stream, TunnelError::Protocol);
        }
        s.credit.more.notify_one();
        None
    }

    /// `tunnel_eof` from the relay.
    pub fn eof(&mut self, stream: StreamId) {
        if let Some(s) = self.streams.get(&stream) {
            let _ = s.to_writer.send(ToWriter::Eof);
        }
    }

    /// `tunnel_close` from the relay: drop the stream, say nothing.
    pub fn close(&mut self, stream: StreamId) {
        if let Some(s) = self.streams.remove(&stream) {
            s.cancel.cancel();
        }
    }

    /// A message a stream task sends is about to go out: its credit grants
    /// raise what the relay may send, and its close forgets the stream.
    pub fn outgoing(&mut self, msg: &RunnerMsg) {
        match msg {
            RunnerMsg::TunnelCredit { stream, bytes } => {
                if let Some(s) = self.streams.get_mut(stream) {
                    s.recv.granted(*bytes);
                }
            }
            RunnerMsg::TunnelClose { stream, .. } => {
                self.streams.remove(stream);
            }
            _ => {}
        }
    }

    /// Ends `stream` and returns the `tunnel_close` to send.
    fn reset(&mut self, stream: StreamId, code: TunnelError) -> Option<RunnerMsg> {
        self.close(stream);
        Some(RunnerMsg::TunnelClose { stream, code })
    }

    /// The connection is gone: every stream ends (the relay's side of
    /// them died with it).
    pub fn clear(&mut self) {
        for (_, s) in self.streams.drain() {
            s.cancel.cancel();
        }
    }
}

/// A stream task's way to the relay.
#[derive(Debug, Clone)]
struct Out {
    tx: mpsc::Sender<ToUplink>,
    generation: u64,
    stream: StreamId,
}

impl Out {
    async fn send(&self, out: TunnelOut) -> bool {
        self.tx
            .send(ToUplink::Tunnel {
                generation: self.generation,
                out,
            })
            .await
            .is_ok()
    }

    async fn msg(&self, msg: RunnerMsg) -> bool {
        self.send(TunnelOut::Msg(msg)).await
    }

    async fn close(&self, code: TunnelError) {
        let stream = self.stream;
        self.msg(RunnerMsg::TunnelClose { stream, code }).await;
    }
}

struct StreamTask {
    stream: StreamId,
    job: String,
    port: u16,
    addr: SocketAddr,
    ports: PortTable,
    out: Out,
    credit: Arc<Credit>,
}

impl StreamTask {
    async fn run(self, writer_rx: mpsc::UnboundedReceiver<ToWriter>, cancel: CancellationToken) {
        let connect = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(self.addr));
        let tcp = tokio::select! {
            () = cancel.cancelled() => return,
            r = connect => r,
        };
        let tcp = match tcp {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(err)) => {
                info!(stream = self.stream, port = self.port, %err, "tunnel: connecting failed");
                self.out.close(TunnelError::ConnectFailed).await;
                return;
            }
            Err(_) => {
                info!(
                    stream = self.stream,
                    port = self.port,
                    "tunnel: connecting timed out"
                );
                self.out.close(TunnelError::ConnectFailed).await;
                return;
            }
        };
        let _ = tcp.set_nodelay(true);
        let stream = self.stream;
        if !self.out.msg(RunnerMsg::TunnelOpened { stream }).await {
            return;
        }
        let (read, write) = tcp.into_split();
        let pumps = async {
            let (r, w) = tokio::join!(
                reader(read, &self.out, &self.credit),
                writer(write, writer_rx, &self.out)
            );
            r.and(w)
        };
        let still_detected = async {
            let mut tick = tokio::time::interval(PORT_CHECK);
            loop {
                tick.tick().await;
                if self.ports.dial_addr(&self.job, self.port) != Some(self.addr) {
                    return;
                }
            }
        };
        let code = tokio::select! {
            () = cancel.cancelled() => return,
            r = pumps => match r {
                Ok(()) => TunnelError::Done,
                Err(code) => code,
            },
            () = still_detected => {
                info!(stream, job = %self.job, port = self.port, "tunnel closed: the port is no longer detected");
                TunnelError::PortClosed
            }
        };
        debug!(stream, code = code.as_str(), "tunnel closed");
        self.out.close(code).await;
    }
}

/// Dev server → relay, never more than the relay's credit.
async fn reader(mut read: OwnedReadHalf, out: &Out, credit: &Credit) -> Result<(), TunnelError> {
    let mut buf = vec![0u8; MAX_TUNNEL_CHUNK];
    let ch = stream_channel(out.stream).ok_or(TunnelError::Protocol)?;
    loop {
        let want = loop {
            // Register before checking, so a credit between the check and
            // the wait is not lost.
            let more = credit.more.notified();
            let n = credit.with(|w| w.next_chunk(buf.len()));
            if n > 0 {
                break n;
            }
            more.await;
        };
        let n = read
            .read(&mut buf[..want])
            .await
            .map_err(|_| TunnelError::Reset)?;
        if n == 0 {
            let stream = out.stream;
            return if out.msg(RunnerMsg::TunnelEof { stream }).await {
                Ok(())
            } else {
                Err(TunnelError::Reset)
            };
        }
        credit.with(|w| w.sent(n));
        if !out.send(TunnelOut::Data(with_channel(ch, &buf[..n]))).await {
            return Err(TunnelError::Reset);
        }
    }
}

/// Relay → dev server; returns credit as bytes are written.
async fn writer(
    mut write: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<ToWriter>,
    out: &Out,
) -> Result<(), TunnelError> {
    let mut window = RecvWindow::default();
    let stream = out.stream;
    while let Some(msg) = rx.recv().await {
        match msg {
            ToWriter::Data(bytes) => {
                write
                    .write_all(&bytes)
                    .await
                    .map_err(|_| TunnelError::Reset)?;
                if let Some(bytes) = window.consumed(bytes.len())
                    && !out.msg(RunnerMsg::TunnelCredit { stream, bytes }).await
                {
                    return Err(TunnelError::Reset);
                }
            }
            ToWriter::Eof => {
                let _ = write.shutdown().await;
                return Ok(());
            }
        }
    }
    // The stream was dropped (the task is being cancelled).
    Err(TunnelError::Reset)
}

#[cfg(test)]
mod tests;
