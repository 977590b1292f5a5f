//! Agents and idle watching on a runner (docs/protocol.md §4.7): which
//! coding agent a `start_job` of kind `agent` runs ([`AgentSpec`]), and the
//! bounds of a pane watch's idle time. Pure (de)serialization and
//! validation; the runner resolves a built-in kind to the command of its
//! config file, the relay never names a program for it.

use serde::{Deserialize, Serialize};

/// A runner feature: it takes `watch` and reports `activity`.
pub const FEATURE_WATCH: &str = "watch";
/// The shortest idle time a watch may have, in ms.
pub const MIN_IDLE_MS: u64 = 1_000;
/// The longest idle time a watch may have, in ms (one day).
pub const MAX_IDLE_MS: u64 = 86_400_000;
/// The idle time when neither the agent nor the account sets one.
pub const DEFAULT_IDLE_MS: u64 = 30_000;
/// Most arguments an agent may be given.
pub const MAX_AGENT_ARGS: usize = 64;
/// Longest argument, in bytes.
pub const MAX_AGENT_ARG: usize = 4096;

/// Whether `ms` is an idle time a watch may have.
pub fn valid_idle_ms(ms: u64) -> bool {
    (MIN_IDLE_MS..=MAX_IDLE_MS).contains(&ms)
}

/// Which agent runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgentKind {
    /// Anthropic's Claude Code (`claude` by default).
    ClaudeCode,
    /// OpenAI's Codex CLI (`codex` by default).
    Codex,
    /// Cursor's CLI agent (`cursor-agent` by default).
    Cursor,
    /// Any command, given in the job's `command`.
    Custom,
}

impl AgentKind {
    /// Every kind, in the order a page lists them.
    pub const ALL: [AgentKind; 4] = [
        AgentKind::ClaudeCode,
        AgentKind::Codex,
        AgentKind::Cursor,
        AgentKind::Custom,
    ];

    /// The name on the wire and in the API (`claude-code`, `codex`,
    /// `cursor`, `custom`).
    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::ClaudeCode => "claude-code",
            AgentKind::Codex => "codex",
            AgentKind::Cursor => "cursor",
            AgentKind::Custom => "custom",
        }
    }

    /// The kind named `s`, if it is one.
    pub fn parse(s: &str) -> Option<AgentKind> {
        AgentKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the runner's config names its command (every kind but
    /// `custom`).
    pub fn is_builtin(self) -> bool {
        self != AgentKind::Custom
    }
}

/// The agent of a `start_job` of kind `agent`: for a built-in kind the
/// runner runs its configured command followed by `args` (each quoted for
/// the shell) and the job's `command` is empty; for `custom` it runs the
/// job's `command` followed by `args`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSpec {
    pub kind: AgentKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

impl AgentSpec {
    /// At most [`MAX_AGENT_ARGS`] arguments of at most [`MAX_AGENT_ARG`]
    /// bytes, none holding NUL.
    pub fn validate(&self) -> Result<(), String> {
        if self.args.len() > MAX_AGENT_ARGS {
            return Err(format!("more than {MAX_AGENT_ARGS} arguments"));
        }
        for a in &self.args {
            if a.len() > MAX_AGENT_ARG {
                return Err(format!("an argument is longer than {MAX_AGENT_ARG} bytes"));
            }
            if a.contains('\0') {
                return Err("an argument contains a NUL byte".into());
            }
        }
        Ok(())
    }
}

/// `s` quoted for a POSIX shell: one word, nothing expanded.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:@%+,".contains(&b))
    {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `command` followed by `args`, each quoted.
pub fn command_line(command: &str, args: &[String]) -> String {
    let mut out = command.trim().to_owned();
    for a in args {
        out.push(' ');
        out.push_str(&shell_quote(a));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for k in AgentKind::ALL {
            assert_eq!(AgentKind::parse(k.as_str()), Some(k));
            let s = serde_json::to_string(&k).expect("json");
            assert_eq!(s, format!("\"{}\"", k.as_str()));
        }
        assert_eq!(AgentKind::parse("claude"), None);
        assert!(!AgentKind::Custom.is_builtin());
    }

    #[test]
    fn args_are_checked_and_quoted() {
        let ok = AgentSpec {
            kind: AgentKind::Codex,
            args: vec!["--model".into(), "o3".into()],
        };
        assert_eq!(ok.validate(), Ok(()));
        let nul = AgentSpec {
            kind: AgentKind::Codex,
            args: vec!["a\0".into()],
        };
        assert!(nul.validate().is_err());
        let many = AgentSpec {
            kind: AgentKind::Codex,
            args: vec!["a".into(); MAX_AGENT_ARGS + 1],
        };
        assert!(many.validate().is_err());
        assert_eq!(
            command_line(
                "claude",
                &["-p".into(), "it's $HOME; rm -rf /".into(), String::new()]
            ),
            r"claude -p 'it'\''s $HOME; rm -rf /' ''"
        );
        assert!(valid_idle_ms(30_000));
        assert!(!valid_idle_ms(999));
        assert!(!valid_idle_ms(MAX_IDLE_MS + 1));
    }
}
