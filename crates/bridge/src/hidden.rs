//! The hidden terminal client's process (issue 16; when and why is
//! `core::hidden`'s): `tmux attach-session -f read-only,ignore-size` on a
//! pseudo-terminal the runner owns, whose output is read and dropped.
//!
//! `read-only`: tmux takes no keys from it, and we never write to the pty
//! anyway. `ignore-size`: a person's terminal attached later keeps
//! authority over the window size; with only our clients attached tmux
//! sizes the window by the latest one, so the pty measures exactly the
//! window plus its status lines (`tmux_cc::listing::TerminalSize`) and
//! nothing a person sees changes. `TERM` is a plain `vt100`
//! (`xterm-256color` measured the same: tmux's cost in a flood is parsing
//! it into its grid, README "Performance").
//!
//! A thread per client reads the pty (blocking reads: tokio's `AsyncFd`
//! needs `unsafe` to register a raw fd) as fast as tmux writes (reading it
//! throttled, so tmux's buffer fills and it skips redraws, did not lower
//! tmux's CPU in the load tool) and ends at
//! EOF or EIO, when nothing holds the terminal open any more; a task per
//! client reports [`HiddenEvent::Ready`] on the first bytes (tmux drew: the
//! client is attached) and [`HiddenEvent::Exited`] when the process is
//! gone. Stopping (or dropping the handle) sends SIGTERM, on which tmux
//! detaches the client cleanly; SIGKILL follows if it is still there after
//! [`STOP_GRACE`].
//!
//! Its attach and its detach notify every control client, and tmux before
//! 3.7 crashes when a notification reaches a control client that is still
//! attaching (`daemon::supervisor`'s `settle`). So it holds the server's
//! start lock from its spawn until tmux drew (at most [`ATTACH_WAIT`]) and
//! from its stop until the process is gone; a flood that begins while the
//! daemon attaches a client waits for it.

use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use rustix::fs::{Mode, OFlags};
use rustix::pty::OpenptFlags;
use tokio::process::Child;
use tokio::sync::{Mutex, OwnedMutexGuard, mpsc, oneshot};
use tracing::debug;

use crate::core::HiddenEvent;
use crate::daemon::server::Server;

/// The client flags: no keys, no say in the window size (tmux 3.2+).
pub const FLAGS: &str = "read-only,ignore-size";
/// The terminal it claims to be.
pub const TERM: &str = "vt100";
/// How long a stopped client gets to detach before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// How long the spawn waits for the start lock, and the lock then waits
/// for tmux to draw the client.
const ATTACH_WAIT: Duration = Duration::from_secs(2);
/// One read of the pty.
const READ_BYTES: usize = 64 << 10;

/// Why the hidden client could not be started.
#[derive(Debug, thiserror::Error)]
pub enum HiddenError {
    #[error("opening a pseudo-terminal: {0}")]
    Pty(io::Error),
    #[error("starting tmux attach-session: {0}")]
    Spawn(io::Error),
    #[error("the tmux server's start lock stayed busy for {0:?}")]
    Busy(Duration),
}

/// A running hidden client.
#[derive(Debug)]
pub struct HiddenClient {
    pid: u32,
    stop: Option<oneshot::Sender<()>>,
    events: mpsc::Receiver<HiddenEvent>,
}

impl HiddenClient {
    /// Attaches a hidden client to the session named `session` (exactly)
    /// on a `cols`×`rows` pty, once the server's start lock is free (the
    /// daemon holds it for milliseconds at a time).
    pub async fn spawn(
        server: &Server,
        session: &str,
        cols: u16,
        rows: u16,
    ) -> Result<HiddenClient, HiddenError> {
        let attaching = tokio::time::timeout(ATTACH_WAIT, server.lock.clone().lock_owned())
            .await
            .map_err(|_| HiddenError::Busy(ATTACH_WAIT))?;
        let (master, slave) = open_pty(cols, rows).map_err(HiddenError::Pty)?;
        let stdio = |fd: &OwnedFd| fd.try_clone().map(Stdio::from).map_err(HiddenError::Pty);
        let mut cmd = server.tmux.command();
        cmd.args(["attach-session", "-f", FLAGS, "-t"])
            .arg(format!("={session}"))
            .env("TERM", TERM)
            .stdin(stdio(&slave)?)
            .stdout(stdio(&slave)?)
            .stderr(Stdio::from(slave))
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(HiddenError::Spawn)?;
        // `cmd` holds the slave's copies until dropped: only tmux keeps the
        // terminal open, so the pty reads EIO once it is gone.
        drop(cmd);
        let pid = child
            .id()
            .ok_or_else(|| HiddenError::Spawn(io::Error::other("exited at once")))?;
        let (ready_tx, ready_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("hidden-pty".into())
            .spawn(move || drain(std::fs::File::from(master), ready_tx))
            .map_err(HiddenError::Spawn)?;
        let (stop_tx, stop_rx) = oneshot::channel();
        let (events_tx, events) = mpsc::channel(4);
        let starts = server.lock.clone();
        tokio::spawn(run(
            child, pid, ready_rx, stop_rx, events_tx, attaching, starts,
        ));
        Ok(HiddenClient {
            pid,
            stop: Some(stop_tx),
            events,
        })
    }

    /// The tmux client's process id (`#{client_pid}`).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Asks it to detach; [`HiddenEvent::Exited`] follows.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// The next event; `None` after [`HiddenEvent::Exited`].
    pub async fn next(&mut self) -> Option<HiddenEvent> {
        self.events.recv().await
    }
}

/// A pty pair at `cols`×`rows`, neither end our controlling terminal.
fn open_pty(cols: u16, rows: u16) -> io::Result<(OwnedFd, OwnedFd)> {
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    rustix::pty::grantpt(&master)?;
    rustix::pty::unlockpt(&master)?;
    let name = rustix::pty::ptsname(&master, Vec::new())?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    rustix::termios::tcsetwinsize(
        &slave,
        rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )?;
    Ok((master, slave))
}

/// Reads and drops what tmux writes to the terminal until nothing holds it
/// open (EOF, or EIO on Linux); `ready` hears the first bytes.
fn drain(mut master: std::fs::File, ready: oneshot::Sender<()>) {
    let mut buf = vec![0u8; READ_BYTES];
    let mut ready = Some(ready);
    loop {
        match master.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Reports the client's readiness and exit; stops it when asked (or when
/// the handle is dropped). `attaching` (the start lock) is let go once
/// tmux drew; `starts` is locked again for the stop.
async fn run(
    mut child: Child,
    pid: u32,
    mut ready: oneshot::Receiver<()>,
    mut stop: oneshot::Receiver<()>,
    events: mpsc::Sender<HiddenEvent>,
    attaching: OwnedMutexGuard<()>,
    starts: Arc<Mutex<()>>,
) {
    let mut waiting = true;
    let mut attaching = Some(attaching);
    let attach_wait = tokio::time::sleep(ATTACH_WAIT);
    tokio::pin!(attach_wait);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            status = child.wait() => {
                debug!(pid, ?status, "hidden client exited");
                let _ = events.send(HiddenEvent::Exited).await;
                return;
            }
            got = &mut ready, if waiting => {
                waiting = false;
                attaching = None;
                if got.is_ok() {
                    let _ = events.send(HiddenEvent::Ready).await;
                }
            }
            () = &mut attach_wait, if attaching.is_some() => attaching = None,
        }
    }
    // Asked to stop: SIGTERM makes tmux detach it; SIGKILL if it lingers.
    drop(attaching);
    let _stopping = starts.lock_owned().await;
    if let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
    }
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    debug!(pid, "hidden client stopped");
    let _ = events.send(HiddenEvent::Exited).await;
}
