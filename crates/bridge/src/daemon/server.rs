//! The tmux server the daemon serves, as plain `tmux` processes (argv
//! words, never a command string; names from `tmux_cc::naming`, formats
//! from `tmux_cc::listing`): list the bridged sessions, give a session its
//! instance id, create and kill sessions, list the attached terminals.
//!
//! Every start of a control client, every session creation or kill, and
//! the hidden client's attach and detach (`crate::hidden`) hold
//! [`Server::lock`]: tmux before 3.7 crashes when a notification (a session
//! created or killed, a client attaching or leaving) reaches a control
//! client that is still attaching (SIGSEGV in `control_write`, fixed by
//! tmux commit e5a2a25), so these never overlap on one server. The
//! supervisor also lets its own leaving clients go first (`settle`).

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use tmux_cc::listing::{self, SessionLine};
use tmux_cc::naming;
use tracing::{debug, info};

use crate::tmux::TmuxServer;

/// A bridged session found on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridged {
    pub line: SessionLine,
    pub idea: String,
    pub slot: String,
}

impl Bridged {
    /// Its instance id, if it has a valid one.
    pub fn instance(&self) -> Option<&str> {
        valid_instance(&self.line.instance).then_some(self.line.instance.as_str())
    }
}

/// What `list-sessions` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub server_pid: Option<u32>,
    pub bridged: Vec<Bridged>,
    /// Every session (bridged or not), for choosing the watcher's.
    pub all: Vec<SessionLine>,
}

impl Listing {
    pub fn find(&self, name: &str) -> Option<&Bridged> {
        self.bridged.iter().find(|b| b.line.name == name)
    }
}

/// Instance ids the daemon makes and accepts: 1 to 64 of `[A-Za-z0-9-]`.
pub fn valid_instance(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A new random instance id (128 bits, hex).
pub fn new_instance() -> String {
    let v: u128 = rand::random();
    format!("{v:032x}")
}

/// Sorts `list-sessions` lines into bridged sessions (named by the scheme)
/// and the rest.
pub fn parse_listing(out: &[u8]) -> Listing {
    let mut listing = Listing {
        server_pid: None,
        bridged: Vec::new(),
        all: Vec::new(),
    };
    for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(line) = SessionLine::parse(line) else {
            continue;
        };
        listing.server_pid = Some(line.server_pid);
        if let Ok((idea, slot)) = naming::parse_name(&line.name) {
            listing.bridged.push(Bridged {
                line: line.clone(),
                idea,
                slot,
            });
        }
        listing.all.push(line);
    }
    listing
}

/// The server and the lock that serializes control-client starts and
/// session creation and kills on it.
#[derive(Debug, Clone)]
pub struct Server {
    pub tmux: TmuxServer,
    pub lock: Arc<tokio::sync::Mutex<()>>,
}

/// `tmux: no server running` and friends: the server is not there.
fn no_server(stderr: &str) -> bool {
    stderr.contains("no server running")
        || stderr.contains("error connecting to")
        || stderr.contains("lost server")
        || stderr.contains("server exited")
}

impl Server {
    pub fn new(tmux: TmuxServer) -> Self {
        Server {
            tmux,
            lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The server's sessions; `None` when no server runs.
    pub async fn list(&self) -> anyhow::Result<Option<Listing>> {
        let out = self
            .tmux
            .command()
            .args(["list-sessions", "-F", listing::SESSIONS_FORMAT])
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .context("running tmux list-sessions")?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            if no_server(&err) || err.contains("no sessions") {
                return Ok(None);
            }
            anyhow::bail!("tmux list-sessions: {}", err.trim());
        }
        Ok(Some(parse_listing(&out.stdout)))
    }

    /// Gives a bridged session its instance id if it has none (or one this
    /// daemon cannot use); returns the id. `set-option -o` never replaces
    /// one set meanwhile (by `tmux-bridge new`): the first writer wins and
    /// everybody reads the winner back.
    pub async fn ensure_instance(&self, b: &Bridged) -> anyhow::Result<String> {
        if let Some(i) = b.instance() {
            return Ok(i.to_owned());
        }
        let target = format!("{}:", b.line.id);
        let logical = naming::logical_id(&b.idea, &b.slot)?;
        let fresh = new_instance();
        if !b.line.instance.is_empty() {
            // Set, but not by us (unusable): replace it.
            self.tmux
                .run(&["set-option", "-u", "-t", &target, listing::INSTANCE_OPTION])
                .await
                .context("unsetting @bridge_instance")?;
        }
        // `-o` fails when the option is set already: not an error here.
        let _ = self
            .tmux
            .run(&[
                "set-option",
                "-o",
                "-t",
                &target,
                listing::INSTANCE_OPTION,
                &fresh,
                ";",
                "set-option",
                "-t",
                &target,
                naming::BRIDGE_ID_OPTION,
                &logical,
            ])
            .await;
        let out = self
            .tmux
            .run(&[
                "show-options",
                "-v",
                "-t",
                &target,
                listing::INSTANCE_OPTION,
            ])
            .await
            .context("reading @bridge_instance")?;
        let instance = String::from_utf8_lossy(&out).trim().to_owned();
        if !valid_instance(&instance) {
            anyhow::bail!("session {} has an unusable @bridge_instance", b.line.name);
        }
        Ok(instance)
    }

    /// Creates the session for (idea, slot) with its options set; returns
    /// false when it existed already. Starts the server if none runs (in
    /// the runner's cleaned environment).
    pub async fn create(
        &self,
        idea: &str,
        slot: &str,
        size: (u16, u16),
        cwd: Option<&str>,
        command: Option<&str>,
    ) -> anyhow::Result<bool> {
        let name = naming::session_name(idea, slot)?;
        let logical = naming::logical_id(idea, slot)?;
        let _starts = self.lock.lock().await;
        if let Some(l) = self.list().await?
            && l.find(name.as_str()).is_some()
        {
            return Ok(false);
        }
        let (cols, rows) = (size.0.to_string(), size.1.to_string());
        let instance = new_instance();
        let mut args: Vec<&str> = vec![
            "new-session",
            "-d",
            "-s",
            name.as_str(),
            "-x",
            &cols,
            "-y",
            &rows,
        ];
        if let Some(dir) = cwd {
            args.extend(["-c", dir]);
        }
        if let Some(cmd) = command {
            // One word: tmux runs it with `sh -c`, as typed in the page.
            args.extend(["--", cmd]);
        }
        // The options are set by the same tmux process: `;` as its own
        // argv word separates commands; nothing is parsed from a string.
        let target = format!("={}:", name.as_str());
        args.extend([
            ";",
            "set-option",
            "-o",
            "-t",
            &target,
            listing::INSTANCE_OPTION,
        ]);
        args.push(&instance);
        args.extend([";", "set-option", "-t", &target, naming::BRIDGE_ID_OPTION]);
        args.push(&logical);
        self.tmux
            .run(&args)
            .await
            .with_context(|| format!("creating tmux session {name}"))?;
        info!(session = %name, "created tmux session");
        Ok(true)
    }

    /// Kills the session `name` if its instance is `instance` (or any, when
    /// `None`); returns whether it killed one.
    pub async fn kill(&self, name: &str, instance: Option<&str>) -> anyhow::Result<bool> {
        let _starts = self.lock.lock().await;
        let Some(l) = self.list().await? else {
            return Ok(false);
        };
        let Some(b) = l.find(name) else {
            return Ok(false);
        };
        if instance.is_some_and(|i| b.line.instance != i) {
            return Ok(false);
        }
        let target = b.line.id.to_string();
        match self.tmux.run(&["kill-session", "-t", &target]).await {
            Ok(_) => Ok(true),
            // Gone meanwhile: as good as killed by us.
            Err(_) if self.list().await?.is_none_or(|l| l.find(name).is_none()) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Terminals attached, per session name: neither control clients nor
    /// the runner's hidden client (`tmux_cc::listing::ClientSession::is_terminal`).
    pub async fn attached_terminals(&self) -> anyhow::Result<HashMap<String, u32>> {
        let out = self
            .tmux
            .command()
            .args(["list-clients", "-F", listing::CLIENT_SESSIONS_FORMAT])
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .context("running tmux list-clients")?;
        let mut counts = HashMap::new();
        if out.status.success() {
            for line in out.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                match listing::ClientSession::parse(line) {
                    Ok(c) if c.is_terminal() => *counts.entry(c.session).or_insert(0) += 1,
                    Ok(_) => {}
                    Err(e) => debug!(field = e.field, "unreadable list-clients line"),
                }
            }
        }
        Ok(counts)
    }

    /// `tmux -V` without the `tmux ` prefix (empty if it cannot run).
    pub async fn version(&self) -> String {
        match self.tmux.command().arg("-V").output().await {
            Ok(out) => String::from_utf8_lossy(&out.stdout)
                .trim()
                .trim_start_matches("tmux ")
                .to_owned(),
            Err(_) => String::new(),
        }
    }
}

/// Whether a `tmux -V` version is 3.4 or later (`send-keys -K`).
pub fn has_send_keys_k(version: &str) -> bool {
    let v = version.trim_start_matches("next-");
    let mut parts = v.split('.');
    let major: u32 = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    let minor: u32 = parts
        .next()
        .map(|m| m.trim_end_matches(|c: char| c.is_ascii_alphabetic()))
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    (major, minor) >= (3, 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_keeps_bridged_sessions_and_the_server_pid() {
        let out = b"10 $0 abc tb_x__y\n10 $1  my own\n10 $2  tb_bad\n";
        let l = parse_listing(out);
        assert_eq!(l.server_pid, Some(10));
        assert_eq!(l.all.len(), 3);
        assert_eq!(l.bridged.len(), 1);
        let b = &l.bridged[0];
        assert_eq!((b.idea.as_str(), b.slot.as_str()), ("x", "y"));
        assert_eq!(b.instance(), Some("abc"));
        assert!(l.find("tb_x__y").is_some());
    }

    #[test]
    fn instances_and_versions() {
        assert!(valid_instance(&new_instance()));
        assert!(!valid_instance(""));
        assert!(!valid_instance("a b"));
        assert!(has_send_keys_k("3.4"));
        assert!(has_send_keys_k("3.5a"));
        assert!(has_send_keys_k("next-3.6"));
        assert!(!has_send_keys_k("3.3a"));
        assert!(has_send_keys_k("4.0"));
    }
}
