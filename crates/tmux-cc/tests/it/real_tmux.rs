//! A real tmux server on a private socket with one control client, for the
//! encoder, naming and state tests: commands go in through stdin, stdout goes
//! through `tmux_cc::Parser`, replies with flags 1 come back in order.
//!
//! Every server uses its own socket (`tb-cc-<pid>-<n>`) and is killed with
//! `tmux -L <socket> kill-server` when the harness is dropped.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use tmux_cc::command::CommandLine;
use tmux_cc::{Event, Parser, Reply};

static COUNTER: AtomicUsize = AtomicUsize::new(0);
const TIMEOUT: Duration = Duration::from_secs(30);

pub struct Tmux {
    pub socket: String,
    /// The tmux binary (`tmux` on `PATH` unless [`Tmux::start_with`] chose).
    pub bin: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
    rx: Receiver<Event>,
    /// Every event that is not a flags-1 reply, in arrival order.
    pub events: Vec<Event>,
    /// A scratch directory for the test (marker files, pane output).
    pub dir: tempfile::TempDir,
    eof: bool,
}

impl Tmux {
    /// Starts a server whose first pane (`%0`) runs the shell command
    /// `shell_command(scratch dir)` through `/bin/sh -c`, attached to a `-C`
    /// client, and waits until it is up.
    pub fn start(shell_command: impl FnOnce(&Path) -> String) -> Tmux {
        Tmux::start_with(Path::new("tmux"), shell_command)
    }

    /// [`Tmux::start`] with a given tmux binary.
    pub fn start_with(bin: &Path, shell_command: impl FnOnce(&Path) -> String) -> Tmux {
        let dir = tempfile::tempdir().expect("tempdir");
        let shell_command = shell_command(dir.path());
        let socket = format!(
            "tb-cc-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut child = Command::new(bin)
            .args([
                "-u",
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "-C",
                "new-session",
                "-s",
                "t",
                "-x",
                "80",
                "-y",
                "24",
            ])
            .arg(&shell_command)
            .env("HOME", dir.path())
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning tmux");
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().expect("tmux stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut parser = Parser::new();
            let mut buf = vec![0u8; 65536];
            loop {
                let n = match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => 0,
                    Ok(n) => n,
                };
                if n == 0 {
                    parser.finish();
                } else {
                    parser.push(&buf[..n]);
                }
                while let Some(e) = parser.next_event() {
                    if tx.send(e).is_err() {
                        return;
                    }
                }
                if n == 0 {
                    return;
                }
            }
        });
        let mut t = Tmux {
            socket,
            bin: bin.to_owned(),
            child,
            stdin,
            rx,
            events: Vec::new(),
            dir,
            eof: false,
        };
        t.wait_event("session-changed", |e| {
            matches!(e, Event::SessionChanged { .. })
        });
        t
    }

    /// The process id of the control client (tmux's `client_pid`).
    pub fn client_pid(&self) -> u32 {
        self.child.id()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn next(&mut self, deadline: Instant) -> Option<Event> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(e) => Some(e),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                self.eof = true;
                None
            }
        }
    }

    /// Waits for a non-reply event matching `pred` (kept in `events`).
    pub fn wait_event(&mut self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        if let Some(e) = self.events.iter().find(|e| pred(e)) {
            return e.clone();
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let Some(e) = self.next(deadline) else {
                panic!(
                    "no {what} event (eof={}); events: {:?}",
                    self.eof, self.events
                );
            };
            self.events.push(e.clone());
            if pred(&e) {
                return e;
            }
        }
    }

    /// Takes stdin out (to write from another thread while reading replies).
    pub fn take_stdin(&mut self) -> ChildStdin {
        self.stdin.take().expect("stdin open")
    }

    /// Gives stdin back after [`take_stdin`](Self::take_stdin).
    pub fn put_stdin(&mut self, stdin: ChildStdin) {
        self.stdin = Some(stdin);
    }

    /// Writes raw bytes to the control client's stdin.
    pub fn write_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("writing to tmux");
        stdin.flush().expect("flushing tmux stdin");
    }

    /// Sends one encoded line and returns its replies: `line.replies()` of
    /// them, or fewer if one failed (tmux skips the rest of the line).
    pub fn send(&mut self, line: &CommandLine) -> Vec<Reply> {
        self.write_raw(line.as_bytes());
        self.replies(line.replies(), line.text())
    }

    /// Collects up to `n` replies with flags 1, stopping after a failed one.
    pub fn replies(&mut self, n: usize, what: &str) -> Vec<Reply> {
        let deadline = Instant::now() + TIMEOUT;
        let mut out = Vec::new();
        while out.len() < n {
            match self.next(deadline) {
                Some(Event::Reply(r)) if r.flags == 1 => {
                    let failed = !r.success;
                    out.push(r);
                    if failed {
                        break;
                    }
                }
                Some(e) => self.events.push(e),
                None => panic!(
                    "{} of {n} replies to {what:.200} (eof={})",
                    out.len(),
                    self.eof
                ),
            }
        }
        out
    }

    /// Sends a line whose commands must all succeed; returns the replies.
    pub fn ok(&mut self, line: &CommandLine) -> Vec<Reply> {
        let replies = self.send(line);
        for r in &replies {
            assert!(
                r.success,
                "{:.200} failed: {}",
                line.text(),
                String::from_utf8_lossy(&r.text())
            );
        }
        replies
    }

    /// The text of a one-reply command that must succeed.
    pub fn text(&mut self, line: &CommandLine) -> Vec<u8> {
        let r = self.ok(line);
        assert_eq!(r.len(), 1);
        r[0].text()
    }

    /// Proves the client is still attached and in step: a fresh probe is
    /// answered with exactly its own text, and no `%exit` was seen.
    pub fn assert_alive(&mut self) {
        let probe = format!("probe-{}", COUNTER.fetch_add(1, Ordering::SeqCst));
        let line = tmux_cc::command::display_message(
            &tmux_cc::command::Target::Pane(tmux_cc::PaneId(0)),
            &probe,
        )
        .expect("probe");
        assert_eq!(self.text(&line), probe.as_bytes());
        assert!(
            !self.events.iter().any(|e| matches!(e, Event::Exit { .. })),
            "client exited: {:?}",
            self.events
        );
    }

    /// A plain `tmux -L <socket>` command (not through the control client).
    pub fn plain(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .args(["-u", "-L", &self.socket])
            .args(args)
            .env("LANG", "C.UTF-8")
            .output()
            .expect("running tmux")
    }

    /// Waits until `path` exists and holds at least `len` bytes, then
    /// returns its contents.
    pub fn wait_file(&self, path: &Path, len: usize) -> Vec<u8> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Ok(data) = std::fs::read(path)
                && data.len() >= len
            {
                return data;
            }
            if Instant::now() > deadline {
                return std::fs::read(path).unwrap_or_default();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Closes stdin and returns the remaining events until EOF.
    pub fn close(&mut self) -> Vec<Event> {
        self.stdin = None;
        let deadline = Instant::now() + TIMEOUT;
        while let Some(e) = self.next(deadline) {
            self.events.push(e);
        }
        assert!(self.eof, "tmux did not close its stdout");
        self.events.clone()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.stdin = None;
        let _ = Command::new(&self.bin)
            .args(["-L", &self.socket, "kill-server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A pane command that puts its tty in raw mode (no echo, no line
/// discipline changes), signals readiness, then copies every input byte to
/// `out`.
pub fn raw_cat(dir: &Path) -> String {
    let d = dir.display();
    format!("stty raw -echo -iexten; touch {d}/ready; exec cat > {d}/out")
}
