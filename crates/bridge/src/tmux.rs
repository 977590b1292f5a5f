//! The tmux control client process: spawning `tmux -u -C attach`, a reader
//! pump that parses stdout into [`Event`]s, and a writer pump that writes
//! encoded command lines to stdin.
//!
//! This module owns the child process and nothing else: what the events mean
//! is decided by [`crate::core`]. The reader never blocks on anything but the
//! bounded event channel, so a slow consumer turns into back-pressure on
//! tmux's stdout, which tmux answers with `%pause` (we set `pause-after`)
//! instead of disconnecting us.

use std::path::PathBuf;
use std::process::Stdio;

use anyhow::Context;
use bytes::Bytes;
use tmux_cc::{Event, Parser};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// Where the tmux server lives.
#[derive(Debug, Clone, Default)]
pub struct TmuxServer {
    /// `-L NAME`: a named socket in tmux's socket directory.
    pub socket_name: Option<String>,
    /// `-S PATH`: an explicit socket path.
    pub socket_path: Option<PathBuf>,
    /// `-f FILE`: the config file used if this starts the server.
    pub config: Option<PathBuf>,
}

impl TmuxServer {
    /// A `tmux` command with this server's socket and config flags and
    /// `-u`, in a cleaned environment ([`clean_env`]): a server it starts,
    /// and every pane of it, never sees the runner's token or settings.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        clean_env(cmd.as_std_mut());
        cmd.args(self.base_args());
        cmd
    }

    /// The arguments that select this server (`-u`, `-L`/`-S`, `-f`).
    pub fn base_args(&self) -> Vec<String> {
        let mut args = vec!["-u".to_owned()];
        if let Some(name) = &self.socket_name {
            args.push("-L".into());
            args.push(name.clone());
        }
        if let Some(path) = &self.socket_path {
            args.push("-S".into());
            args.push(path.display().to_string());
        }
        if let Some(conf) = &self.config {
            args.push("-f".into());
            args.push(conf.display().to_string());
        }
        args
    }

    /// The command a person types to attach to `session` (an exact-name
    /// target, quoted for a POSIX shell).
    pub fn attach_command(&self, session: &str) -> String {
        let mut parts = vec!["tmux".to_owned()];
        if let Some(name) = &self.socket_name {
            parts.push("-L".into());
            parts.push(shell_quote(name));
        }
        if let Some(path) = &self.socket_path {
            parts.push("-S".into());
            parts.push(shell_quote(&path.display().to_string()));
        }
        parts.push("attach".into());
        parts.push("-t".into());
        parts.push(shell_quote(&format!("={session}")));
        parts.join(" ")
    }

    /// Runs a plain (non-control) tmux command and returns its stdout.
    pub async fn run(&self, args: &[&str]) -> anyhow::Result<Vec<u8>> {
        let out = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .context("running tmux")?;
        if !out.status.success() {
            anyhow::bail!(
                "tmux {} failed: {}",
                args.first().copied().unwrap_or(""),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(out.stdout)
    }
}

/// Whether an environment variable of the runner must not reach tmux: the
/// runner's own settings and secrets (`TMUX_BRIDGE_*`, the token among
/// them), its log filter, and `TMUX`/`TMUX_PANE` (the runner may itself run
/// inside tmux; a server it starts is not nested in that one).
pub fn is_private_env(key: &std::ffi::OsStr) -> bool {
    let key = key.to_string_lossy();
    key.starts_with("TMUX_BRIDGE_")
        || matches!(
            key.as_ref(),
            "TMUX" | "TMUX_PANE" | "RUST_LOG" | "RUST_BACKTRACE"
        )
}

/// Removes [`is_private_env`] variables from what `cmd` inherits.
pub fn clean_env(cmd: &mut std::process::Command) {
    for (key, _) in std::env::vars_os() {
        if is_private_env(&key) {
            cmd.env_remove(key);
        }
    }
}

/// One word for a POSIX shell (the protocol crate's, shared with the
/// agents' command lines).
pub use protocol::runner::agent::shell_quote;

/// What the reader pump delivers: parsed events, in order, a read's worth at
/// a time.
#[derive(Debug)]
pub enum TmuxOutput {
    Events(Vec<Event>),
    /// stdout reached EOF: the client exited.
    Closed,
}

/// A running control client.
pub struct ControlClient {
    pub child: Child,
    /// Encoded command lines (each ending in `\n`) to write to tmux's stdin.
    pub commands: mpsc::Sender<Bytes>,
    pub output: mpsc::Receiver<TmuxOutput>,
    /// Fires when tmux first wrote to stdout (the attach was answered), or
    /// is dropped when it exited without a word.
    pub attached: Option<tokio::sync::oneshot::Receiver<()>>,
}

/// Spawns `tmux -u -C attach-session -f FLAGS -t =SESSION` with reader and
/// writer pumps. The session must exist. The client flags are given at
/// attach (tmux 3.2+): a `refresh-client -f` sent on stdin can run before
/// the client is attached and fail with "no current client" on 3.3a.
pub fn spawn_control_client(
    server: &TmuxServer,
    session: &str,
    flags: &str,
) -> anyhow::Result<ControlClient> {
    let mut child = server
        .command()
        .arg("-C")
        .arg("attach-session")
        .arg("-f")
        .arg(flags)
        .arg("-t")
        .arg(format!("={session}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting tmux in control mode (is tmux installed?)")?;
    let stdout = child.stdout.take().context("tmux stdout")?;
    let stdin = child.stdin.take().context("tmux stdin")?;

    let (out_tx, out_rx) = mpsc::channel::<TmuxOutput>(256);
    let (attached_tx, attached_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(read_pump(stdout, out_tx, attached_tx));
    let (cmd_tx, cmd_rx) = mpsc::channel::<Bytes>(1024);
    tokio::spawn(write_pump(stdin, cmd_rx));
    Ok(ControlClient {
        child,
        commands: cmd_tx,
        output: out_rx,
        attached: Some(attached_rx),
    })
}

async fn read_pump(
    mut stdout: tokio::process::ChildStdout,
    tx: mpsc::Sender<TmuxOutput>,
    attached: tokio::sync::oneshot::Sender<()>,
) {
    let mut attached = Some(attached);
    let mut parser = Parser::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match stdout.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                if let Some(a) = attached.take() {
                    let _ = a.send(());
                }
                n
            }
            Err(err) => {
                warn!(%err, "reading tmux stdout");
                break;
            }
        };
        parser.push(&buf[..n]);
        let events: Vec<Event> = parser.by_ref().collect();
        // A pane's output, not the reply to `send-keys` that tmux sends
        // before the pane has echoed anything.
        if tracing::enabled!(target: "latency", tracing::Level::TRACE)
            && events
                .iter()
                .any(|e| matches!(e, Event::Output { .. } | Event::ExtendedOutput { .. }))
        {
            tracing::trace!(target: "latency", stage = "runner_tmux_read", bytes = n);
        }
        if !events.is_empty() && tx.send(TmuxOutput::Events(events)).await.is_err() {
            // The consumer is gone; keep draining so tmux never blocks on a
            // dead pipe (a known way to keep a killed server alive on 3.3a).
            while matches!(stdout.read(&mut buf).await, Ok(n) if n > 0) {}
            return;
        }
    }
    parser.finish();
    let tail: Vec<Event> = parser.by_ref().collect();
    if !tail.is_empty() {
        let _ = tx.send(TmuxOutput::Events(tail)).await;
    }
    debug!("tmux stdout closed");
    let _ = tx.send(TmuxOutput::Closed).await;
}

async fn write_pump(mut stdin: tokio::process::ChildStdin, mut rx: mpsc::Receiver<Bytes>) {
    while let Some(line) = rx.recv().await {
        if let Err(err) = stdin.write_all(&line).await {
            log_write_error(&err);
            return;
        }
        // Coalesce whatever is already queued before flushing.
        while let Ok(more) = rx.try_recv() {
            if let Err(err) = stdin.write_all(&more).await {
                log_write_error(&err);
                return;
            }
        }
        if let Err(err) = stdin.flush().await {
            log_write_error(&err);
            return;
        }
        tracing::trace!(target: "latency", stage = "runner_tmux_written");
    }
    // Channel closed: dropping stdin sends EOF, which makes tmux detach us.
}

/// A broken pipe is the client exiting (its session was killed): not worth
/// a warning.
fn log_write_error(err: &std::io::Error) {
    if err.kind() == std::io::ErrorKind::BrokenPipe {
        debug!(%err, "writing to tmux stdin");
    } else {
        warn!(%err, "writing to tmux stdin");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_command_quotes_what_a_shell_would_expand() {
        let s = TmuxServer {
            socket_name: Some("tb test".into()),
            ..Default::default()
        };
        assert_eq!(
            s.attach_command("tb_local_primary"),
            "tmux -L 'tb test' attach -t =tb_local_primary"
        );
        assert_eq!(shell_quote("a'b"), "'a'\\''b'");
        assert_eq!(shell_quote(""), "''");
    }
}
