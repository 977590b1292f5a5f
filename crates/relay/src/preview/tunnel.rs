//! The relay's half of preview tunnels (docs/protocol.md §4.8): streams
//! through one runner connection to its dev servers' ports, each an
//! [`AsyncRead`] + [`AsyncWrite`] byte stream ([`TunnelStream`]) that the
//! reverse proxy speaks HTTP over.
//!
//! [`RunnerTunnels`] belongs to one runner connection: the runner's socket
//! task feeds it what the runner sends ([`RunnerTunnels::on_msg`],
//! [`RunnerTunnels::on_data`]) and writes what it queues ([`TunnelWire`]).
//! Flow control is the protocol's credit windows: a stream never writes
//! past the runner's credit, the runner may not send past ours, and we
//! grant credit only as the proxy reads; so a stream holds at most one
//! window each way and the queue to the runner at most a window per open
//! stream ([`MAX_TUNNEL_STREAMS`] of them). No HTTP here.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes};
use protocol::runner::tunnel::{
    MAX_TUNNEL_STREAMS, RecvWindow, SendWindow, StreamId, stream_channel,
};
use protocol::runner::{RelayMsg, RunnerMsg, TunnelError, with_channel};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, oneshot};

/// How long the runner may take to answer `tunnel_open` (its own connect
/// timeout is 5 s).
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(8);

/// What the runner's socket task sends for the tunnels.
#[derive(Debug, Clone, PartialEq)]
pub enum TunnelWire {
    Msg(RelayMsg),
    /// Bytes with their channel prefix.
    Data(Bytes),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug, Default)]
struct StreamState {
    opened: Option<oneshot::Sender<Result<(), TunnelError>>>,
    inbound: VecDeque<Bytes>,
    recv: RecvWindow,
    send: SendWindow,
    /// The runner sent `tunnel_eof`.
    eof_in: bool,
    /// We sent `tunnel_eof`.
    eof_out: bool,
    /// The stream ended (the runner's code, or ours).
    closed: Option<TunnelError>,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

impl StreamState {
    fn wake(&mut self) {
        if let Some(w) = self.read_waker.take() {
            w.wake();
        }
        if let Some(w) = self.write_waker.take() {
            w.wake();
        }
    }

    fn end(&mut self, code: TunnelError) {
        if self.closed.is_none() {
            self.closed = Some(code);
        }
        if let Some(tx) = self.opened.take() {
            let _ = tx.send(Err(code));
        }
        self.wake();
    }
}

type Shared = Arc<Mutex<StreamState>>;

/// The streams of one runner connection.
#[derive(Debug)]
pub struct RunnerTunnels {
    /// The runner connection these streams ride on.
    pub conn: u64,
    out: mpsc::UnboundedSender<TunnelWire>,
    streams: Mutex<HashMap<StreamId, Shared>>,
    next: AtomicU32,
}

impl RunnerTunnels {
    /// The tunnels of connection `conn`, and the queue its socket task
    /// writes to the runner.
    pub fn new(conn: u64) -> (Arc<Self>, mpsc::UnboundedReceiver<TunnelWire>) {
        let (out, rx) = mpsc::unbounded_channel();
        (
            Arc::new(RunnerTunnels {
                conn,
                out,
                streams: Mutex::new(HashMap::new()),
                next: AtomicU32::new(1),
            }),
            rx,
        )
    }

    /// Opens a stream to `port` of dev server `job` and waits for the
    /// runner's answer.
    pub async fn open(self: &Arc<Self>, job: &str, port: u16) -> Result<TunnelStream, TunnelError> {
        let stream = self.next.fetch_add(1, Ordering::Relaxed);
        let ch = stream_channel(stream).ok_or(TunnelError::TooManyStreams)?;
        let (tx, rx) = oneshot::channel();
        let shared: Shared = Arc::new(Mutex::new(StreamState {
            opened: Some(tx),
            ..StreamState::default()
        }));
        {
            let mut streams = lock(&self.streams);
            if streams.len() >= MAX_TUNNEL_STREAMS {
                return Err(TunnelError::TooManyStreams);
            }
            streams.insert(stream, shared.clone());
        }
        let tunnel = TunnelStream {
            tunnels: self.clone(),
            stream,
            ch,
            shared,
            pending_read: Bytes::new(),
        };
        let open = RelayMsg::TunnelOpen {
            stream,
            job: job.to_owned(),
            port,
        };
        if self.out.send(TunnelWire::Msg(open)).is_err() {
            return Err(TunnelError::Reset);
        }
        match tokio::time::timeout(OPEN_TIMEOUT, rx).await {
            Ok(Ok(Ok(()))) => Ok(tunnel),
            Ok(Ok(Err(code))) => Err(code),
            Ok(Err(_)) => Err(TunnelError::Reset),
            Err(_) => Err(TunnelError::ConnectFailed),
        }
    }

    fn get(&self, stream: StreamId) -> Option<Shared> {
        lock(&self.streams).get(&stream).cloned()
    }

    /// A tunnel message from the runner. Messages for streams that are
    /// gone are ignored (they may cross our close).
    pub fn on_msg(&self, msg: &RunnerMsg) {
        match *msg {
            RunnerMsg::TunnelOpened { stream } => {
                if let Some(s) = self.get(stream)
                    && let Some(tx) = lock(&s).opened.take()
                {
                    let _ = tx.send(Ok(()));
                }
            }
            RunnerMsg::TunnelCredit { stream, bytes } => {
                if let Some(s) = self.get(stream) {
                    let bad = {
                        let mut st = lock(&s);
                        let bad = st.send.credit(bytes).is_err();
                        if let Some(w) = st.write_waker.take() {
                            w.wake();
                        }
                        bad
                    };
                    if bad {
                        self.reset(stream, TunnelError::Protocol);
                    }
                }
            }
            RunnerMsg::TunnelEof { stream } => {
                if let Some(s) = self.get(stream) {
                    let mut st = lock(&s);
                    st.eof_in = true;
                    st.wake();
                }
            }
            RunnerMsg::TunnelClose { stream, code } => {
                if let Some(s) = lock(&self.streams).remove(&stream) {
                    lock(&s).end(code);
                }
            }
            _ => {}
        }
    }

    /// Bytes from the runner for `stream`. Beyond the credit we gave, the
    /// stream is reset (never buffered).
    pub fn on_data(&self, stream: StreamId, bytes: Bytes) {
        let Some(s) = self.get(stream) else {
            return;
        };
        let overrun = {
            let mut st = lock(&s);
            if st.closed.is_some() || st.eof_in {
                false
            } else if st.recv.received(bytes.len()).is_err() {
                true
            } else {
                if !bytes.is_empty() {
                    st.inbound.push_back(bytes);
                }
                if let Some(w) = st.read_waker.take() {
                    w.wake();
                }
                false
            }
        };
        if overrun {
            tracing::warn!(stream, "the runner overran a tunnel's credit: reset");
            self.reset(stream, TunnelError::Protocol);
        }
    }

    /// Ends `stream` here and tells the runner.
    fn reset(&self, stream: StreamId, code: TunnelError) {
        if let Some(s) = lock(&self.streams).remove(&stream) {
            lock(&s).end(code);
            let _ = self
                .out
                .send(TunnelWire::Msg(RelayMsg::TunnelClose { stream, code }));
        }
    }

    /// The runner connection is gone: every stream fails.
    pub fn close_all(&self) {
        let all: Vec<Shared> = lock(&self.streams).drain().map(|(_, s)| s).collect();
        for s in all {
            lock(&s).end(TunnelError::Reset);
        }
    }

    /// How many streams are open.
    pub fn open_streams(&self) -> usize {
        lock(&self.streams).len()
    }
}

/// One stream, as the proxy reads and writes it. Dropping it closes the
/// stream at the runner.
#[derive(Debug)]
pub struct TunnelStream {
    tunnels: Arc<RunnerTunnels>,
    stream: StreamId,
    ch: u32,
    shared: Shared,
    /// The front chunk being read.
    pending_read: Bytes,
}

fn closed_error(code: TunnelError) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, code.to_string())
}

impl AsyncRead for TunnelStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let credit = {
            let mut st = lock(&this.shared);
            if this.pending_read.is_empty() {
                match st.inbound.pop_front() {
                    Some(b) => this.pending_read = b,
                    None => {
                        if st.eof_in {
                            return Poll::Ready(Ok(()));
                        }
                        if let Some(code) = st.closed {
                            return if code == TunnelError::Done {
                                Poll::Ready(Ok(()))
                            } else {
                                Poll::Ready(Err(closed_error(code)))
                            };
                        }
                        st.read_waker = Some(cx.waker().clone());
                        return Poll::Pending;
                    }
                }
            }
            let n = this.pending_read.len().min(buf.remaining());
            buf.put_slice(&this.pending_read[..n]);
            this.pending_read.advance(n);
            st.recv.consumed(n)
        };
        if let Some(bytes) = credit {
            let stream = this.stream;
            let _ = this
                .tunnels
                .out
                .send(TunnelWire::Msg(RelayMsg::TunnelCredit { stream, bytes }));
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for TunnelStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut st = lock(&this.shared);
        if let Some(code) = st.closed {
            return Poll::Ready(Err(closed_error(code)));
        }
        if st.eof_out {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after shutdown",
            )));
        }
        let n = st.send.next_chunk(buf.len());
        if n == 0 {
            st.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        st.send.sent(n);
        drop(st);
        if this
            .tunnels
            .out
            .send(TunnelWire::Data(with_channel(this.ch, &buf[..n])))
            .is_err()
        {
            return Poll::Ready(Err(closed_error(TunnelError::Reset)));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut st = lock(&this.shared);
        if !st.eof_out && st.closed.is_none() {
            st.eof_out = true;
            let stream = this.stream;
            let _ = this
                .tunnels
                .out
                .send(TunnelWire::Msg(RelayMsg::TunnelEof { stream }));
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for TunnelStream {
    fn drop(&mut self) {
        let still_open = lock(&self.tunnels.streams).remove(&self.stream).is_some();
        if still_open {
            let stream = self.stream;
            let _ = self
                .tunnels
                .out
                .send(TunnelWire::Msg(RelayMsg::TunnelClose {
                    stream,
                    code: TunnelError::Done,
                }));
        }
    }
}
