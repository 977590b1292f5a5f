//! Agents on the runner (issue 12, docs/protocol.md §4.7): the commands of
//! the built-in agent kinds, read from the runner's config file, and the
//! step that turns an agent's `start_job` into the command its window runs.
//!
//! The file is `agents.json` beside `credentials.json` (see
//! [`crate::config`]: `~/.config/tmux-bridge/` on Linux,
//! `$TMUX_BRIDGE_CONFIG_DIR` overrides), an object naming a command line
//! per kind; kinds it leaves out keep their default, and a missing file
//! means every default:
//!
//! ```json
//! {"claude-code": "claude", "codex": "codex --full-auto", "cursor": "cursor-agent"}
//! ```
//!
//! A built-in kind whose program (the command's first word) is not found
//! on the runner's `PATH` is refused with `not_installed` before any
//! session or window is made. `custom` runs the command the relay sent,
//! unchecked (it may be any shell command). Arguments are quoted one word
//! each. This module does not start anything; `jobs` does.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use protocol::runner::agent::{AgentKind, command_line};
use protocol::runner::{ErrorBody, JobSpec};
use serde::{Deserialize, Serialize};

/// The config file's name, beside `credentials.json`.
pub const AGENTS_FILE: &str = "agents.json";

/// The command line of each built-in kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentCommands {
    #[serde(rename = "claude-code")]
    pub claude_code: String,
    pub codex: String,
    pub cursor: String,
}

impl Default for AgentCommands {
    fn default() -> Self {
        AgentCommands {
            claude_code: "claude".into(),
            codex: "codex".into(),
            cursor: "cursor-agent".into(),
        }
    }
}

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentConfigError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a valid agents file (an object of \"claude-code\", \"codex\", \"cursor\" to command lines)"
    )]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: the command of {kind} is empty")]
    Empty { path: PathBuf, kind: &'static str },
}

impl AgentCommands {
    /// `<config dir>/tmux-bridge/agents.json`, if there is a config dir.
    pub fn default_path() -> Option<PathBuf> {
        crate::config::Credentials::default_path()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join(AGENTS_FILE)))
    }

    /// Reads `path`; a missing file is every default.
    pub fn load(path: &Path) -> Result<AgentCommands, AgentConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(AgentCommands::default());
            }
            Err(source) => {
                return Err(AgentConfigError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let cmds: AgentCommands =
            serde_json::from_str(&text).map_err(|source| AgentConfigError::Parse {
                path: path.to_owned(),
                source,
            })?;
        for kind in [AgentKind::ClaudeCode, AgentKind::Codex, AgentKind::Cursor] {
            if cmds.command(kind).is_some_and(|c| c.trim().is_empty()) {
                return Err(AgentConfigError::Empty {
                    path: path.to_owned(),
                    kind: kind.as_str(),
                });
            }
        }
        Ok(cmds)
    }

    /// The command line of a built-in kind (`None` for `custom`).
    pub fn command(&self, kind: AgentKind) -> Option<&str> {
        match kind {
            AgentKind::ClaudeCode => Some(&self.claude_code),
            AgentKind::Codex => Some(&self.codex),
            AgentKind::Cursor => Some(&self.cursor),
            AgentKind::Custom => None,
        }
    }
}

/// Where `program` is found: itself if it names a path (holds `/`), else
/// the first directory of `path` (a `PATH` value) holding an executable
/// file of that name.
pub fn find_program(program: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return is_executable(&p).then_some(p);
    }
    std::env::split_paths(path?)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

fn error(code: &str, message: String) -> ErrorBody {
    ErrorBody {
        code: code.into(),
        message,
    }
}

/// The job to start for `spec`: unchanged for anything but an agent; for
/// an agent, its command line (the kind's configured command, or the
/// custom command, then the quoted args) with the agent part resolved.
/// `path` is the `PATH` the programs are looked up on.
pub fn resolve(
    spec: JobSpec,
    cmds: &AgentCommands,
    path: Option<&OsStr>,
) -> Result<JobSpec, ErrorBody> {
    let Some(agent) = spec.agent.clone() else {
        return Ok(spec);
    };
    let base = match cmds.command(agent.kind) {
        None => spec.command.clone(),
        Some(configured) => {
            let program = configured.split_whitespace().next().unwrap_or_default();
            if find_program(program, path).is_none() {
                return Err(error(
                    "not_installed",
                    format!(
                        "{} is not installed on this runner: `{program}` is not found on PATH (set its command in {AGENTS_FILE})",
                        agent.kind.as_str()
                    ),
                ));
            }
            configured.to_owned()
        }
    };
    Ok(JobSpec {
        command: command_line(&base, &agent.args),
        agent: None,
        ..spec
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::runner::{AgentSpec, JobKind};

    fn spec(kind: AgentKind, command: &str, args: &[&str]) -> JobSpec {
        JobSpec {
            job: "a1".into(),
            kind: JobKind::Agent,
            idea: "i".into(),
            slot: "primary".into(),
            name: "agent".into(),
            command: command.into(),
            cwd: None,
            env: Default::default(),
            agent: Some(AgentSpec {
                kind,
                args: args.iter().map(|s| (*s).to_owned()).collect(),
            }),
        }
    }

    #[test]
    fn built_in_kinds_take_the_configured_command_when_installed() {
        let dir = tempfile::tempdir().expect("dir");
        let bin = dir.path().join("fake-claude");
        std::fs::write(&bin, "#!/bin/sh\n").expect("write");
        let not_exec = dir.path().join("fake-codex");
        std::fs::write(&not_exec, "").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let cmds = AgentCommands {
            claude_code: "fake-claude --verbose".into(),
            codex: "fake-codex".into(),
            cursor: "no-such-agent-program".into(),
        };
        let path = std::env::join_paths([Path::new("/nonexistent"), dir.path()]).expect("PATH");
        let s = resolve(
            spec(AgentKind::ClaudeCode, "", &["-p", "fix it; now"]),
            &cmds,
            Some(&path),
        )
        .expect("resolved");
        assert_eq!(s.command, "fake-claude --verbose -p 'fix it; now'");
        assert_eq!(s.agent, None);
        assert_eq!(s.kind, JobKind::Agent);
        assert_eq!(s.validate(), Ok(()));
        for kind in [AgentKind::Codex, AgentKind::Cursor] {
            let e = resolve(spec(kind, "", &[]), &cmds, Some(&path)).expect_err("missing");
            assert_eq!(e.code, "not_installed");
            assert!(e.message.contains(kind.as_str()), "{}", e.message);
        }
        let e = resolve(spec(AgentKind::ClaudeCode, "", &[]), &cmds, None).expect_err("no PATH");
        assert!(e.message.contains("`fake-claude`"), "{}", e.message);
        // An absolute path is checked as it is.
        let abs = AgentCommands {
            claude_code: bin.display().to_string(),
            ..cmds
        };
        assert!(resolve(spec(AgentKind::ClaudeCode, "", &[]), &abs, None).is_ok());
    }

    #[test]
    fn custom_runs_its_command_and_plain_jobs_pass() {
        let s = resolve(
            spec(AgentKind::Custom, "./agent.sh", &["a b"]),
            &AgentCommands::default(),
            None,
        )
        .expect("custom");
        assert_eq!(s.command, "./agent.sh 'a b'");
        let plain = JobSpec {
            agent: None,
            kind: JobKind::Job,
            command: "make".into(),
            ..spec(AgentKind::Custom, "", &[])
        };
        assert_eq!(
            resolve(plain.clone(), &AgentCommands::default(), None).expect("job"),
            plain
        );
    }

    #[test]
    fn the_config_file_overrides_defaults_and_bad_ones_are_errors() {
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join(AGENTS_FILE);
        assert_eq!(
            AgentCommands::load(&p).expect("missing"),
            AgentCommands::default()
        );
        std::fs::write(&p, r#"{"codex": "codex --full-auto"}"#).expect("write");
        let c = AgentCommands::load(&p).expect("partial");
        assert_eq!(c.codex, "codex --full-auto");
        assert_eq!(c.claude_code, "claude");
        std::fs::write(&p, r#"{"claud": "x"}"#).expect("write");
        assert!(matches!(
            AgentCommands::load(&p),
            Err(AgentConfigError::Parse { .. })
        ));
        std::fs::write(&p, r#"{"cursor": " "}"#).expect("write");
        assert!(matches!(
            AgentCommands::load(&p),
            Err(AgentConfigError::Empty { kind: "cursor", .. })
        ));
    }
}
