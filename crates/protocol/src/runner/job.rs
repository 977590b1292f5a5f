//! Jobs on a runner (docs/protocol.md §4.6): what the relay asks a runner
//! to run ([`JobSpec`]), what the runner reports back ([`JobReport`]), and
//! the job log's binary chunks ([`LogChunk`]), which travel on channel 0 of
//! the runner's WebSocket beside the sessions' frames.
//!
//! A job's log is everything its pane printed, taken by `pipe-pane` on the
//! runner (so it is complete even when the pane's live stream is paused in
//! a flood), shipped in order by byte offset and acknowledged by the relay
//! with the length it has stored. Pure (de)serialization and validation.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use tmux_cc::PaneId;

use super::Channel;
use super::agent::AgentSpec;

/// Longest job id, in bytes.
pub const MAX_JOB_ID: usize = 64;
/// Longest job command, in bytes.
pub const MAX_JOB_COMMAND: usize = 16 * 1024;
/// Longest job name (its tmux window's name), in bytes.
pub const MAX_JOB_NAME: usize = 64;
/// Most environment variables a job may set.
pub const MAX_JOB_ENV: usize = 64;
/// Longest environment variable value, or cwd, in bytes.
pub const MAX_JOB_VALUE: usize = 4096;
/// Most log bytes one chunk carries (uncompressed and compressed).
pub const MAX_LOG_CHUNK: usize = 1024 * 1024;

/// A runner feature: it takes `start_job` / `cancel_job`.
pub const FEATURE_JOBS: &str = "jobs";

/// What a job's process is for (issue 12). Agents and dev servers are
/// jobs: a tmux window per process, the same states, exit status and log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// A command run to its end (a build, a test run).
    #[default]
    Job,
    /// A coding agent: its pane is watched for idleness.
    Agent,
    /// A dev server: the ports its process tree listens on are detected
    /// and can be previewed through the relay.
    Devserver,
}

impl JobKind {
    /// The name stored and shown (`job`, `agent`, `devserver`).
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Job => "job",
            JobKind::Agent => "agent",
            JobKind::Devserver => "devserver",
        }
    }

    /// The kind named `s`, if it is one.
    pub fn parse(s: &str) -> Option<JobKind> {
        match s {
            "job" => Some(JobKind::Job),
            "agent" => Some(JobKind::Agent),
            "devserver" => Some(JobKind::Devserver),
            _ => None,
        }
    }

    fn is_job(&self) -> bool {
        *self == JobKind::Job
    }
}

/// Where the runner learnt of a dev server's port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortSource {
    /// A listening socket of the job's process tree (Linux: /proc/net/tcp
    /// and tcp6 matched against the tree's socket inodes).
    Socket,
    /// A URL the job printed (`http://localhost:5173/`) naming a port that
    /// something on the machine listens on.
    Output,
}

/// A port a dev server listens on, as the runner detected it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DetectedPort {
    pub port: u16,
    /// The listening address as found (`127.0.0.1`, `::1`, `0.0.0.0`,
    /// `::`); the runner only ever dials loopback for it.
    pub addr: String,
    pub source: PortSource,
}

/// What to run, as `start_job` carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The relay's job id.
    pub job: String,
    /// A job, an agent or a dev server (absent: a job).
    #[serde(default, skip_serializing_if = "JobKind::is_job")]
    pub kind: JobKind,
    pub idea: String,
    pub slot: String,
    /// The tmux window's name.
    pub name: String,
    /// Run in the window's pane by tmux with its `default-shell -c`. Empty
    /// for an agent of a built-in kind (the runner's config names it).
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// The agent to run (kind `agent` only, §4.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentSpec>,
}

/// Whether `s` is a usable job id: 1 to [`MAX_JOB_ID`] of `[A-Za-z0-9_-]`
/// (it names a file on the runner).
pub fn valid_job_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_JOB_ID
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `s` is a usable environment variable name.
pub fn valid_env_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && s.len() <= 128
}

impl JobSpec {
    /// The rules both ends check: a valid id, a non-empty command of at
    /// most [`MAX_JOB_COMMAND`] bytes without NUL, a name without control
    /// characters, an absolute cwd, and at most [`MAX_JOB_ENV`] variables
    /// with valid names and values without NUL.
    pub fn validate(&self) -> Result<(), String> {
        if !valid_job_id(&self.job) {
            return Err("the job id must be 1 to 64 letters, digits, - or _".into());
        }
        match &self.agent {
            Some(_) if self.kind != JobKind::Agent => {
                return Err("only a job of kind agent names an agent".into());
            }
            Some(a) => {
                a.validate()?;
                if a.kind.is_builtin() && !self.command.is_empty() {
                    return Err(format!(
                        "an agent of kind {} takes no command (the runner's config names it)",
                        a.kind.as_str()
                    ));
                }
                if !a.kind.is_builtin() && self.command.trim().is_empty() {
                    return Err("a custom agent needs a command".into());
                }
            }
            None if self.command.trim().is_empty() => {
                return Err("the command is empty".into());
            }
            None => {}
        }
        if self.command.len() > MAX_JOB_COMMAND {
            return Err(format!(
                "the command is longer than {MAX_JOB_COMMAND} bytes"
            ));
        }
        if self.command.contains('\0') {
            return Err("the command contains a NUL byte".into());
        }
        if self.name.is_empty() || self.name.len() > MAX_JOB_NAME {
            return Err(format!("the name must be 1 to {MAX_JOB_NAME} bytes"));
        }
        if self.name.chars().any(char::is_control) {
            return Err("the name contains a control character".into());
        }
        if let Some(cwd) = &self.cwd {
            if !cwd.starts_with('/') {
                return Err("cwd must be an absolute path".into());
            }
            if cwd.len() > MAX_JOB_VALUE || cwd.chars().any(char::is_control) {
                return Err("cwd is too long or contains a control character".into());
            }
        }
        if self.env.len() > MAX_JOB_ENV {
            return Err(format!("more than {MAX_JOB_ENV} environment variables"));
        }
        for (k, v) in &self.env {
            if !valid_env_name(k) {
                return Err(format!("{k:?} is not an environment variable name"));
            }
            if v.len() > MAX_JOB_VALUE || v.contains('\0') {
                return Err(format!("the value of {k} is too long or contains NUL"));
            }
        }
        Ok(())
    }
}

/// Where a job is, as the runner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobPhase {
    /// Its pane's process runs.
    Running,
    /// Its process ended; `exit_code` or `signal` says how.
    Exited,
    /// Its window or pane was closed (killed in tmux, or its session).
    Vanished,
}

/// A job's state as the runner reports it (`{"t":"job",…}`), on every
/// change, and for every job it knows after each connect (`jobs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobReport {
    pub job: String,
    pub phase: JobPhase,
    /// The channel of the session the job's window is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ch: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pane: Option<PaneId>,
    /// ms since the epoch, by the runner's clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// A dev server's ports, every one currently detected (absent or empty:
    /// none). A report carries the whole set, so a port that closed is one
    /// missing from the next report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<DetectedPort>,
}

/// A bad log chunk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogChunkError {
    #[error("log chunk of {0} bytes is too short")]
    Short(usize),
    #[error("log chunk names an invalid job id")]
    BadJob,
    #[error("log chunk of {0} bytes is larger than the limit")]
    TooLarge(usize),
}

/// A piece of a job's log: the bytes at `offset` of everything its pane
/// printed, zstd-compressed as one frame. On the wire (after channel 0's
/// four zero bytes): job id length (u8), job id, offset (u64 LE), data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    pub job: String,
    pub offset: u64,
    /// One zstd frame of at most [`MAX_LOG_CHUNK`] bytes, decompressing
    /// to at most as many.
    pub data: Bytes,
}

impl LogChunk {
    /// The binary message, channel prefix included.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(4 + 1 + self.job.len() + 8 + self.data.len());
        out.put_u32_le(0);
        // `valid_job_id` keeps ids under 256 bytes; a longer one would be
        // refused by the decoder.
        out.put_u8(u8::try_from(self.job.len()).unwrap_or(u8::MAX));
        out.put_slice(self.job.as_bytes());
        out.put_u64_le(self.offset);
        out.put_slice(&self.data);
        out.freeze()
    }

    /// Reads the part after the channel prefix (see
    /// [`split_channel`](super::split_channel)); the data is a slice of
    /// `body`, not decompressed.
    pub fn decode(body: &Bytes) -> Result<LogChunk, LogChunkError> {
        let short = || LogChunkError::Short(body.len());
        let len = usize::from(*body.first().ok_or_else(short)?);
        let job = body.get(1..1 + len).ok_or_else(short)?;
        let job = std::str::from_utf8(job).map_err(|_| LogChunkError::BadJob)?;
        if !valid_job_id(job) {
            return Err(LogChunkError::BadJob);
        }
        let at = 1 + len;
        let offset = body.get(at..at + 8).ok_or_else(short)?;
        let mut o = [0u8; 8];
        o.copy_from_slice(offset);
        let data = body.slice(at + 8..);
        if data.len() > MAX_LOG_CHUNK {
            return Err(LogChunkError::TooLarge(data.len()));
        }
        Ok(LogChunk {
            job: job.to_owned(),
            offset: u64::from_le_bytes(o),
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::split_channel;

    fn spec() -> JobSpec {
        JobSpec {
            job: "j1".into(),
            kind: JobKind::Job,
            idea: "idea".into(),
            slot: "primary".into(),
            name: "build".into(),
            command: "make".into(),
            cwd: None,
            env: BTreeMap::new(),
            agent: None,
        }
    }

    #[test]
    fn agents_are_checked() {
        use crate::runner::agent::{AgentKind, AgentSpec};
        let builtin = JobSpec {
            kind: JobKind::Agent,
            command: String::new(),
            agent: Some(AgentSpec {
                kind: AgentKind::ClaudeCode,
                args: vec!["--resume".into()],
            }),
            ..spec()
        };
        assert_eq!(builtin.validate(), Ok(()));
        let s = serde_json::to_string(&builtin).expect("json");
        assert!(
            s.contains(r#""agent":{"kind":"claude-code","args":["--resume"]}"#),
            "{s}"
        );
        assert_eq!(serde_json::from_str::<JobSpec>(&s).expect("back"), builtin);
        let custom = JobSpec {
            kind: JobKind::Agent,
            command: "./agent.sh".into(),
            agent: Some(AgentSpec {
                kind: AgentKind::Custom,
                args: vec![],
            }),
            ..spec()
        };
        assert_eq!(custom.validate(), Ok(()));
        let bad = [
            JobSpec {
                command: "claude".into(),
                ..builtin.clone()
            },
            JobSpec {
                command: " ".into(),
                ..custom.clone()
            },
            JobSpec {
                kind: JobKind::Job,
                ..custom.clone()
            },
        ];
        for s in bad {
            assert!(s.validate().is_err(), "{s:?}");
        }
    }

    #[test]
    fn specs_are_checked() {
        assert_eq!(spec().validate(), Ok(()));
        let bad = [
            JobSpec {
                job: "../x".into(),
                ..spec()
            },
            JobSpec {
                command: " ".into(),
                ..spec()
            },
            JobSpec {
                command: "a\0b".into(),
                ..spec()
            },
            JobSpec {
                command: "x".repeat(MAX_JOB_COMMAND + 1),
                ..spec()
            },
            JobSpec {
                name: "a\nb".into(),
                ..spec()
            },
            JobSpec {
                cwd: Some("relative".into()),
                ..spec()
            },
            JobSpec {
                env: [("A=B".to_owned(), "v".to_owned())].into(),
                ..spec()
            },
            JobSpec {
                env: [("PATH".to_owned(), "a\0".to_owned())].into(),
                ..spec()
            },
        ];
        for s in bad {
            assert!(s.validate().is_err(), "{s:?}");
        }
    }

    #[test]
    fn kinds_default_to_job_and_round_trip() {
        let s = serde_json::to_string(&spec()).expect("json");
        assert!(!s.contains("kind"), "{s}");
        let agent = JobSpec {
            kind: JobKind::Agent,
            ..spec()
        };
        let s = serde_json::to_string(&agent).expect("json");
        assert!(s.contains(r#""kind":"agent""#), "{s}");
        assert_eq!(serde_json::from_str::<JobSpec>(&s).expect("back"), agent);
        for k in [JobKind::Job, JobKind::Agent, JobKind::Devserver] {
            assert_eq!(JobKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(JobKind::parse("shell"), None);
    }

    #[test]
    fn log_chunks_round_trip_and_bad_ones_are_refused() {
        let c = LogChunk {
            job: "job-1".into(),
            offset: 1 << 40,
            data: Bytes::from_static(b"zz"),
        };
        let wire = c.encode();
        let (ch, body) = split_channel(&wire).expect("prefix");
        assert_eq!(ch, 0);
        assert_eq!(LogChunk::decode(&body), Ok(c));
        assert!(matches!(
            LogChunk::decode(&Bytes::new()),
            Err(LogChunkError::Short(0))
        ));
        assert_eq!(
            LogChunk::decode(&Bytes::from_static(b"\x02a/\0\0\0\0\0\0\0\0")),
            Err(LogChunkError::BadJob)
        );
        assert!(matches!(
            LogChunk::decode(&Bytes::from_static(b"\x05job-1\0\0")),
            Err(LogChunkError::Short(_))
        ));
        let mut big = BytesMut::new();
        big.put_u8(1);
        big.put_slice(b"j");
        big.put_u64_le(0);
        big.put_slice(&vec![0u8; MAX_LOG_CHUNK + 1]);
        assert!(matches!(
            LogChunk::decode(&big.freeze()),
            Err(LogChunkError::TooLarge(_))
        ));
    }

    #[test]
    fn reports_are_json() {
        let r = JobReport {
            job: "j".into(),
            phase: JobPhase::Exited,
            ch: Some(1),
            pane: Some(PaneId(4)),
            started_at: Some(1),
            ended_at: Some(2),
            exit_code: Some(3),
            signal: None,
            ports: vec![DetectedPort {
                port: 5173,
                addr: "::1".into(),
                source: PortSource::Socket,
            }],
        };
        let s = serde_json::to_string(&r).expect("json");
        assert!(s.contains(r#""phase":"exited""#), "{s}");
        assert!(s.contains(r#""source":"socket""#), "{s}");
        assert_eq!(serde_json::from_str::<JobReport>(&s).expect("back"), r);
    }
}
