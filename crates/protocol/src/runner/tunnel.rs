//! Preview tunnels (docs/protocol.md §4.8): byte streams the relay opens
//! through a runner to a dev server's detected port, so a browser can
//! preview it. The relay names a stream, a job and a port
//! (`tunnel_open`), never a host: the runner dials loopback only, and only
//! a port it detected for that job.
//!
//! A stream's bytes travel as binary messages on channel
//! `RELAY_CHANNEL_BIT | stream` ([`stream_channel`]), at most
//! [`MAX_TUNNEL_CHUNK`] bytes each. Each direction has its own credit
//! window ([`SendWindow`], [`RecvWindow`]): a sender may have at most
//! [`TUNNEL_WINDOW`] bytes the receiver has not yet consumed, and the
//! receiver returns credit (`tunnel_credit`) as it hands bytes on, so
//! neither side buffers more than a window per stream. Pure: messages,
//! limits and the window arithmetic; no I/O, no clock.

use serde::{Deserialize, Serialize};

use super::{Channel, RELAY_CHANNEL_BIT};

/// A runner feature: it takes `tunnel_open` (preview tunnels).
pub const FEATURE_TUNNEL: &str = "tunnel";

/// Bytes a sender may have unconsumed at the receiver, per stream and
/// direction, before it must wait for `tunnel_credit`.
pub const TUNNEL_WINDOW: u32 = 256 * 1024;

/// Most bytes one binary tunnel message carries (after the channel
/// prefix).
pub const MAX_TUNNEL_CHUNK: usize = 64 * 1024;

/// Most streams open at once on one runner connection. A `tunnel_open`
/// beyond it is refused with [`TunnelError::TooManyStreams`].
pub const MAX_TUNNEL_STREAMS: usize = 64;

/// A stream number, `1..RELAY_CHANNEL_BIT`, chosen by the relay and never
/// reused on one connection.
pub type StreamId = u32;

/// The channel a stream's bytes travel on, or `None` for a number that is
/// not a stream (0 or with the top bit set).
pub fn stream_channel(stream: StreamId) -> Option<Channel> {
    (stream != 0 && stream & RELAY_CHANNEL_BIT == 0).then_some(stream | RELAY_CHANNEL_BIT)
}

/// The stream a channel carries, if it is a tunnel channel.
pub fn channel_stream(ch: Channel) -> Option<StreamId> {
    let stream = ch & !RELAY_CHANNEL_BIT;
    (ch & RELAY_CHANNEL_BIT != 0 && stream != 0).then_some(stream)
}

/// Why a stream was refused or reset (the `code` of `tunnel_close`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TunnelError {
    /// Both directions ended normally.
    #[error("closed")]
    Done,
    /// The job has no such detected port (or is not this runner's, or
    /// ended): nothing was dialled.
    #[error("port not detected for this job")]
    PortNotDetected,
    /// The loopback connection failed or timed out.
    #[error("connecting to the dev server failed")]
    ConnectFailed,
    /// The job ended or stopped listening on the port.
    #[error("the dev server stopped")]
    PortClosed,
    /// Too many streams on this connection.
    #[error("too many streams")]
    TooManyStreams,
    /// The peer sent more than its credit, a chunk over the limit, or a
    /// stream number in use.
    #[error("protocol violation")]
    Protocol,
    /// The connection to the dev server (or the browser) broke.
    #[error("connection reset")]
    Reset,
    /// The runner does not take tunnels.
    #[error("unsupported")]
    Unsupported,
}

impl TunnelError {
    /// The code as it travels (`port_not_detected`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelError::Done => "done",
            TunnelError::PortNotDetected => "port_not_detected",
            TunnelError::ConnectFailed => "connect_failed",
            TunnelError::PortClosed => "port_closed",
            TunnelError::TooManyStreams => "too_many_streams",
            TunnelError::Protocol => "protocol",
            TunnelError::Reset => "reset",
            TunnelError::Unsupported => "unsupported",
        }
    }
}

/// The sending half of a stream's flow control: how many bytes may still
/// be sent before the peer returns credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendWindow {
    credit: u64,
}

impl Default for SendWindow {
    fn default() -> Self {
        SendWindow {
            credit: u64::from(TUNNEL_WINDOW),
        }
    }
}

impl SendWindow {
    /// Bytes that may be sent now.
    pub fn available(&self) -> usize {
        usize::try_from(self.credit).unwrap_or(usize::MAX)
    }

    /// How many of `want` bytes to send in the next message: bounded by
    /// the credit and [`MAX_TUNNEL_CHUNK`]; 0 means wait for credit.
    pub fn next_chunk(&self, want: usize) -> usize {
        want.min(self.available()).min(MAX_TUNNEL_CHUNK)
    }

    /// `n` bytes were sent (at most [`SendWindow::available`]).
    pub fn sent(&mut self, n: usize) {
        self.credit = self.credit.saturating_sub(n as u64);
    }

    /// The peer returned `bytes` of credit. More than a window in total is
    /// a protocol error (`Err`): the credit stays as it was.
    pub fn credit(&mut self, bytes: u32) -> Result<(), TunnelError> {
        let next = self.credit + u64::from(bytes);
        if next > u64::from(TUNNEL_WINDOW) {
            return Err(TunnelError::Protocol);
        }
        self.credit = next;
        Ok(())
    }
}

/// The receiving half of a stream's flow control: checks the peer stays
/// within its credit and says when to return credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvWindow {
    /// Bytes the peer may still send.
    allowed: u64,
    /// Bytes consumed since credit was last returned.
    consumed: u64,
}

impl Default for RecvWindow {
    fn default() -> Self {
        RecvWindow {
            allowed: u64::from(TUNNEL_WINDOW),
            consumed: 0,
        }
    }
}

impl RecvWindow {
    /// A chunk of `n` bytes arrived: an error when it is over
    /// [`MAX_TUNNEL_CHUNK`] or over the credit given.
    pub fn received(&mut self, n: usize) -> Result<(), TunnelError> {
        let n64 = n as u64;
        if n > MAX_TUNNEL_CHUNK || n64 > self.allowed {
            return Err(TunnelError::Protocol);
        }
        self.allowed -= n64;
        Ok(())
    }

    /// `n` received bytes were handed on (written to the dev server, read
    /// by the proxy). Returns the credit to send back, once at least half
    /// a window was consumed (fewer, larger `tunnel_credit` messages).
    pub fn consumed(&mut self, n: usize) -> Option<u32> {
        self.consumed += n as u64;
        if self.consumed < u64::from(TUNNEL_WINDOW / 2) {
            return None;
        }
        let give = u32::try_from(self.consumed).unwrap_or(TUNNEL_WINDOW);
        self.consumed = 0;
        self.allowed += u64::from(give);
        Some(give)
    }

    /// `bytes` of credit were given to the peer by the other half of this
    /// end (when the consuming and the checking sides are split).
    pub fn granted(&mut self, bytes: u32) {
        self.allowed += u64::from(bytes);
    }

    /// Bytes the peer may still send.
    pub fn allowed(&self) -> u64 {
        self.allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_channels_have_the_relay_bit() {
        assert_eq!(stream_channel(1), Some(RELAY_CHANNEL_BIT | 1));
        assert_eq!(stream_channel(0), None);
        assert_eq!(stream_channel(RELAY_CHANNEL_BIT), None);
        assert_eq!(channel_stream(RELAY_CHANNEL_BIT | 7), Some(7));
        assert_eq!(channel_stream(7), None);
        assert_eq!(channel_stream(RELAY_CHANNEL_BIT), None);
        assert_eq!(channel_stream(0), None);
    }

    #[test]
    fn a_sender_never_exceeds_the_window() {
        let mut w = SendWindow::default();
        let mut sent = 0usize;
        loop {
            let n = w.next_chunk(100_000);
            if n == 0 {
                break;
            }
            assert!(n <= MAX_TUNNEL_CHUNK);
            w.sent(n);
            sent += n;
        }
        assert_eq!(sent, TUNNEL_WINDOW as usize);
        assert_eq!(w.credit(TUNNEL_WINDOW + 1), Err(TunnelError::Protocol));
        assert_eq!(w.credit(1000), Ok(()));
        assert_eq!(w.next_chunk(5000), 1000);
    }

    #[test]
    fn a_receiver_refuses_overruns_and_returns_credit_by_half_windows() {
        let mut r = RecvWindow::default();
        assert_eq!(r.received(MAX_TUNNEL_CHUNK + 1), Err(TunnelError::Protocol));
        for _ in 0..4 {
            assert_eq!(r.received(MAX_TUNNEL_CHUNK), Ok(()));
        }
        assert_eq!(r.allowed(), 0);
        assert_eq!(r.received(1), Err(TunnelError::Protocol));
        assert_eq!(r.consumed(MAX_TUNNEL_CHUNK), None);
        assert_eq!(
            r.consumed(MAX_TUNNEL_CHUNK),
            Some(2 * MAX_TUNNEL_CHUNK as u32)
        );
        assert_eq!(r.allowed(), 2 * MAX_TUNNEL_CHUNK as u64);
        // Sender and receiver agree: the credit given is exactly what the
        // sender may add.
        let mut s = SendWindow::default();
        s.sent(TUNNEL_WINDOW as usize);
        assert_eq!(s.credit(2 * MAX_TUNNEL_CHUNK as u32), Ok(()));
        assert_eq!(s.available() as u64, r.allowed());
    }

    #[test]
    fn error_codes_travel_as_snake_case() {
        for e in [
            TunnelError::PortNotDetected,
            TunnelError::ConnectFailed,
            TunnelError::TooManyStreams,
            TunnelError::Done,
        ] {
            let json = serde_json::to_string(&e).expect("encode");
            assert_eq!(json, format!("\"{}\"", e.as_str()));
        }
    }
}
