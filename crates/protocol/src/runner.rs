//! Protocol 2 between a runner daemon and the relay (docs/protocol.md §4):
//! one WebSocket per runner, terminal sessions multiplexed as *channels*.
//!
//! Text messages are JSON objects tagged by `t`, one enum per direction
//! ([`RunnerMsg`] runner → relay, [`RelayMsg`] relay → runner). Binary
//! messages are a channel number (`u32`, little endian) followed by a frame
//! exactly as §3 defines it; [`split_channel`] and [`with_channel`] take the
//! prefix off and put it on without copying the frame. This module only
//! (de)serializes and validates; it does no I/O.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use tmux_cc::PaneId;

use crate::control::TmuxOp;

pub mod agent;
pub mod job;
pub mod tunnel;
pub use agent::{AgentKind, AgentSpec, FEATURE_WATCH};
pub use job::{
    DetectedPort, FEATURE_JOBS, JobKind, JobPhase, JobReport, JobSpec, LogChunk, PortSource,
};
pub use tunnel::{FEATURE_TUNNEL, StreamId, TunnelError};

/// The protocol version a runner announces in `hello`.
pub const RUNNER_PROTOCOL_VERSION: u32 = 2;

/// Channels the relay opens itself have this bit set (reserved, §4.2).
pub const RELAY_CHANNEL_BIT: u32 = 1 << 31;

/// Longest text field of `open` (idea, slot, instance, names), in bytes.
pub const MAX_OPEN_FIELD: usize = 512;

/// Longest command id, in bytes (§4.3).
pub const MAX_COMMAND_ID: usize = 64;

/// How many command results a runner remembers for repeated ids (§4.3).
pub const COMMAND_MEMORY: usize = 256;

/// The default heartbeat period the relay asks for.
pub const DEFAULT_HEARTBEAT_MS: u64 = 2_000;

/// A runner feature: it takes `keys` (tmux key names through tmux's key
/// tables).
pub const FEATURE_KEYS: &str = "keys";
/// A runner feature: it takes `tmux` actions.
pub const FEATURE_TMUX: &str = "tmux";
/// A runner feature: it says `rebase` before it numbers a session's
/// records over (§4.4), so the relay may fan a Batch out before its commit.
pub const FEATURE_REBASE: &str = "rebase";

/// A channel number: one terminal session on a runner connection.
pub type Channel = u32;

/// The runner's first message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Must be [`RUNNER_PROTOCOL_VERSION`].
    pub v: u32,
    /// The machine's host name, for display.
    #[serde(default)]
    pub host: String,
    /// The runner's version (`CARGO_PKG_VERSION`).
    #[serde(default)]
    pub version: String,
    /// `tmux -V` of the server it serves, without the `tmux ` prefix.
    #[serde(default)]
    pub tmux_version: String,
    /// When the runner process started (ms since the epoch).
    #[serde(default)]
    pub started_at: u64,
    /// What the runner takes beyond the base protocol ([`FEATURE_KEYS`],
    /// [`FEATURE_TMUX`]).
    #[serde(default)]
    pub features: Vec<String>,
}

/// One session's line in a `status` heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelStatus {
    pub ch: Channel,
    /// Terminal (tty) clients attached to the tmux session.
    pub attached_clients: u32,
}

/// `open`: serve this terminal session on channel `ch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Open {
    pub ch: Channel,
    pub idea: String,
    pub slot: String,
    /// Random id kept in the tmux session's `@bridge_instance` option: a
    /// session recreated after its server died is a new instance.
    pub instance: String,
    /// The tmux session name.
    pub tmux_session: String,
    /// The exact command a person runs to attach in a terminal.
    pub attach: String,
}

impl Open {
    /// Checks §4.4's rules for `open`: non-empty idea, slot, instance and
    /// tmux session; every field at most [`MAX_OPEN_FIELD`] bytes and free
    /// of control characters; a runner-numbered channel.
    pub fn validate(&self) -> Result<(), String> {
        if self.ch == 0 || self.ch & RELAY_CHANNEL_BIT != 0 {
            return Err(format!("channel {} is not a runner channel", self.ch));
        }
        let fields = [
            ("idea", &self.idea, true),
            ("slot", &self.slot, true),
            ("instance", &self.instance, true),
            ("tmux_session", &self.tmux_session, true),
            ("attach", &self.attach, false),
        ];
        for (name, value, required) in fields {
            if required && value.is_empty() {
                return Err(format!("{name} is empty"));
            }
            if value.len() > MAX_OPEN_FIELD {
                return Err(format!("{name} is longer than {MAX_OPEN_FIELD} bytes"));
            }
            if value.chars().any(char::is_control) {
                return Err(format!("{name} contains a control character"));
            }
        }
        Ok(())
    }
}

/// Why a runner stopped serving a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The tmux session is gone: the relay marks it closed.
    Killed,
    /// The tmux server died: closed too.
    ServerExited,
    /// The runner shuts down: the session stays, runner offline.
    Stopping,
}

/// An error carried by `error` and failed `result` messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable: `unknown_pane`, `invalid_size`, `invalid_name`,
    /// `tmux`, `unsupported`, `busy`, …
    pub code: String,
    /// For a person.
    pub message: String,
}

/// Text messages a runner sends to the relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunnerMsg {
    Hello(Hello),
    /// Heartbeat, every `welcome.heartbeat_ms`.
    Status {
        uptime_s: u64,
        #[serde(default)]
        load: Vec<f32>,
        #[serde(default)]
        tmux_version: String,
        #[serde(default)]
        sessions: Vec<ChannelStatus>,
    },
    Open(Open),
    Close {
        ch: Channel,
        reason: CloseReason,
    },
    /// The frames that follow on `ch` number the session over from
    /// `opened.last_seq + 1` with a full reset (a restarted runner, or
    /// unacked frames it dropped): frames of the last connection it did
    /// not see acked will not be resent.
    Rebase {
        ch: Channel,
    },
    /// The answer to a command, exactly once per delivery.
    Result {
        id: String,
        ok: bool,
        /// The channel a `create_session` opened.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ch: Option<Channel>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<ErrorBody>,
    },
    /// A refused message that does not end the connection.
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ch: Option<Channel>,
        code: String,
        message: String,
    },
    /// A job's state changed (§4.6).
    Job(JobReport),
    /// Every job the runner knows, after each `welcome` (§4.6): a running
    /// job of this runner missing here is lost.
    Jobs {
        jobs: Vec<JobReport>,
    },
    /// A watched pane went idle or active again (§4.7), and the answer to
    /// every `watch` that sets one: its state now. `at` is when, in ms
    /// since the epoch by the runner's clock.
    Activity {
        ch: Channel,
        pane: PaneId,
        idle: bool,
        at: u64,
    },
    /// The runner connected a stream's dev server port (§4.8).
    TunnelOpened {
        stream: StreamId,
    },
    /// The runner consumed `bytes` of the stream's relay→runner bytes.
    TunnelCredit {
        stream: StreamId,
        bytes: u32,
    },
    /// The dev server closed its sending half: no more bytes on `stream`.
    TunnelEof {
        stream: StreamId,
    },
    /// The stream is gone (refused, reset, or both halves done).
    TunnelClose {
        stream: StreamId,
        code: TunnelError,
    },
}

/// What the relay asks a runner to do (`{"t":"command","id":…,"op":…}`).
/// Later issues add operations (jobs, agents, dev servers) here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CommandOp {
    /// Create the tmux session for (idea, slot), or find it.
    CreateSession {
        idea: String,
        slot: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cwd: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        command: Option<String>,
    },
    /// Kill the tmux session if it is still `instance`; a missing one is
    /// success.
    KillSession {
        idea: String,
        slot: String,
        instance: String,
    },
    /// Run a job in a new window of (idea, slot)'s session, creating the
    /// session if needed (§4.6). The result carries the session's channel.
    StartJob(JobSpec),
    /// Interrupt a job (C-c), then kill its process group after
    /// `grace_ms`. A job that ended already is success.
    CancelJob { job: String, grace_ms: u64 },
}

/// Text messages the relay sends to a runner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RelayMsg {
    Welcome {
        runner_id: String,
        heartbeat_ms: u64,
        /// What this relay takes beyond protocol 2's first messages: a
        /// runner says `rebase` only to a relay that lists it (an older
        /// relay closes the connection on a message it does not know).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        features: Vec<String>,
    },
    Opened {
        ch: Channel,
        session_id: String,
        last_seq: u64,
    },
    OpenFailed {
        ch: Channel,
        code: u16,
        reason: String,
    },
    /// Every record `<= seq` of the channel's session is durably stored.
    Ack {
        ch: Channel,
        seq: u64,
    },
    Input {
        ch: Channel,
        pane: PaneId,
        data: String,
    },
    Resize {
        ch: Channel,
        cols: u16,
        rows: u16,
    },
    Viewers {
        ch: Channel,
        count: u32,
    },
    SnapshotRequest {
        ch: Channel,
    },
    /// Key presses as tmux names them, typed in `pane` (§5.1).
    Keys {
        ch: Channel,
        pane: PaneId,
        keys: Vec<String>,
    },
    /// A tmux action from the page (§5.1).
    Tmux {
        ch: Channel,
        #[serde(flatten)]
        op: TmuxOp,
    },
    Command {
        id: String,
        #[serde(flatten)]
        op: CommandOp,
    },
    /// Watch `pane` of the channel's session for idleness (§4.7): idle after
    /// `idle_ms` without output; `None` stops watching it.
    Watch {
        ch: Channel,
        pane: PaneId,
        #[serde(default)]
        idle_ms: Option<u64>,
    },
    /// The answer to the log chunk at `offset` (§4.6): the job's log is
    /// stored up to `stored` bytes. `stored < offset` means the chunk left
    /// a gap and was not stored: resend from `stored`.
    LogAck {
        job: String,
        offset: u64,
        stored: u64,
    },
    /// Connect to `port` of dev server `job` on loopback, as stream
    /// `stream` (§4.8). No host: the runner dials only what it detected.
    TunnelOpen {
        stream: StreamId,
        job: String,
        port: u16,
    },
    /// The relay consumed `bytes` of the stream's runner→relay bytes.
    TunnelCredit {
        stream: StreamId,
        bytes: u32,
    },
    /// The browser side closed its sending half.
    TunnelEof {
        stream: StreamId,
    },
    /// Drop the stream (the browser left, or a limit was hit).
    TunnelClose {
        stream: StreamId,
        code: TunnelError,
    },
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ch: Option<Channel>,
        code: String,
        message: String,
    },
}

/// A binary message too short to carry a channel number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("binary message of {0} bytes has no channel prefix")]
pub struct NoChannel(pub usize);

/// Splits a binary runner message into its channel and frame (a slice of
/// the same buffer, no copy).
pub fn split_channel(message: &Bytes) -> Result<(Channel, Bytes), NoChannel> {
    let Some(prefix) = message.get(..4) else {
        return Err(NoChannel(message.len()));
    };
    let mut ch = [0u8; 4];
    ch.copy_from_slice(prefix);
    Ok((u32::from_le_bytes(ch), message.slice(4..)))
}

/// Puts the channel prefix before a frame.
pub fn with_channel(ch: Channel, frame: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(4 + frame.len());
    out.put_u32_le(ch);
    out.put_slice(frame);
    out.freeze()
}

#[cfg(test)]
mod tests;
