//! The daemon's state file, `<data dir>/daemon.json`: what `tmux-bridge
//! status` shows (is a daemon running, its relay, connected or not, the
//! sessions it serves). Written atomically on every change, removed at
//! exit; a file whose pid is not alive is stale. Holds no secret.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// File name inside the data dir.
pub const STATE_FILE: &str = "daemon.json";

/// One served session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    pub ch: u32,
    pub idea: String,
    pub slot: String,
    pub instance: String,
    pub tmux_session: String,
    pub attach: String,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonState {
    pub pid: u32,
    /// The relay connected to (or tried first).
    pub relay_url: String,
    /// Every relay URL of the runner, the primary first, when it has more
    /// than one (failover).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relay_urls: Vec<String>,
    pub connected: bool,
    #[serde(default)]
    pub runner_id: Option<String>,
    /// Why the last connection attempt failed, while not connected.
    #[serde(default)]
    pub last_error: Option<String>,
    pub tmux: String,
    pub started_at: u64,
    pub sessions: Vec<SessionState>,
}

impl DaemonState {
    /// Writes the file atomically (temporary file, then rename).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".{STATE_FILE}.{}.tmp", std::process::id()));
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, path)
    }

    /// The file at `path`, if there is one that parses.
    pub fn read(path: &Path) -> Option<DaemonState> {
        let bytes = std::fs::read(path).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Whether the process that wrote it is alive (`kill -0`).
    pub fn alive(&self) -> bool {
        std::process::Command::new("kill")
            .args(["-0", &self.pid.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}
