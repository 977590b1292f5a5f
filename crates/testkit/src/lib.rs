//! Helpers for the end-to-end tests and the load tool, so both drive the
//! system the same way a user does:
//!
//! - [`Tmux`]: a tmux server of our own on a private socket (`-L`), killed
//!   on drop; never touches another server.
//! - [`http`] and [`Login`]: the relay's HTTP API as a browser uses it
//!   (one-time login link, cookie, browser tokens).
//! - [`Browser`]: the browser side of docs/protocol.md over a real
//!   WebSocket, applying frames to a `transcript::session::SessionView` and
//!   checking that the relay sends no gap and no duplicate.
//! - [`runner::TestRunner`]: the runner side of protocol 2 (§4): one
//!   socket, channels, frames, commands.
//! - [`TtyClient`]: an ordinary tmux client in a pseudo-terminal (through
//!   `script(1)`), as a person at a terminal.
//! - [`tls`]: a CA made in the test and the certificates it signs (PEM
//!   files), for https/wss tests against a relay serving TLS.
//! - [`procfs`]: a process's memory from `/proc/<pid>/status`.

pub mod procfs;
pub mod tls;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use protocol::control::{BrowserToRelay, RelayToBrowser};
use protocol::wire::{Frame, FrameKind, RecordBody};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use transcript::session::{SessionView, Snapshot};

pub type Result<T> = anyhow::Result<T>;

pub mod runner;

pub use transcript;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A tmux server of our own on a private socket; killed on drop.
pub struct Tmux {
    pub socket: String,
}

impl Tmux {
    pub fn new(tag: &str) -> Tmux {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Tmux {
            socket: format!("tb-e2e-{tag}-{}-{n}", std::process::id()),
        }
    }

    /// Runs `tmux -L socket -f /dev/null ARGS`, returning stdout.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("tmux")
            .args(["-u", "-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("running tmux")?;
        if !out.status.success() {
            bail!("tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Creates session `name` running a plain, predictable shell.
    pub fn new_session(&self, name: &str, cols: u16, rows: u16) -> Result<()> {
        self.run(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
            "env",
            "-i",
            "PATH=/usr/bin:/bin",
            "TERM=screen",
            "PS1=$ ",
            "HOME=/tmp",
            "bash",
            "--norc",
            "--noprofile",
        ])?;
        self.run(&[
            "set-option",
            "-t",
            &format!("={name}:"),
            "history-limit",
            "5000",
        ])?;
        Ok(())
    }

    /// `capture-pane -p -N` of a pane, trailing spaces removed per row.
    pub fn capture(&self, pane: &str) -> Result<Vec<String>> {
        let text = self.run(&["capture-pane", "-p", "-N", "-t", pane])?;
        Ok(text.lines().map(|l| l.trim_end().to_owned()).collect())
    }

    /// `#{cursor_x},#{cursor_y}` of a pane.
    pub fn cursor(&self, pane: &str) -> Result<(u16, u16)> {
        let t = self.run(&[
            "display-message",
            "-p",
            "-t",
            pane,
            "#{cursor_x} #{cursor_y}",
        ])?;
        let mut it = t.split_whitespace().map(|v| v.parse::<u16>());
        match (it.next(), it.next()) {
            (Some(Ok(x)), Some(Ok(y))) => Ok((x, y)),
            _ => bail!("bad cursor {t:?}"),
        }
    }

    /// The first pane of the session.
    pub fn first_pane(&self, session: &str) -> Result<String> {
        let t = self.run(&[
            "list-panes",
            "-t",
            &format!("={session}:"),
            "-F",
            "#{pane_id}",
        ])?;
        t.lines().next().map(str::to_owned).context("no pane")
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // A control client orphaned by a killed bridge can keep a 3.3a
        // server alive after kill-server; end every process of this socket
        // (its name is unique to this test, so nothing else matches).
        let _ = Command::new("pkill")
            .args(["-KILL", "-f", "--", &format!("-L {} ", self.socket)])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A minimal HTTP/1.1 request over a fresh connection; returns (status,
/// headers, body).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, Vec<(String, String)>, Vec<u8>)> {
    let mut s = TcpStream::connect(addr).await?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await?;
    s.write_all(body).await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no header end")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .context("no status")?;
    let hdrs: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if hdrs
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Ok((status, hdrs, body))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let Ok(n) = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16) else {
            break;
        };
        if n == 0 || b.len() < eol + 2 + n {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[(eol + 4 + n).min(b.len())..];
    }
    out
}

/// A logged-in browser: its cookie on one relay.
pub struct Login {
    pub addr: SocketAddr,
    pub cookie: String,
}

impl Login {
    /// Follows a one-time login URL and keeps the cookie it sets.
    pub async fn from_link(link: &str) -> Result<Login> {
        let rest = link.strip_prefix("http://").context("link is not http")?;
        let (host, path) = rest.split_once('/').context("no path")?;
        let addr: SocketAddr = host.parse()?;
        let (status, headers, _) = http(addr, "GET", &format!("/{path}"), &[], b"").await?;
        if !(300..400).contains(&status) && status != 200 {
            bail!("login link answered {status}");
        }
        let cookie = headers
            .iter()
            .find(|(k, _)| k == "set-cookie")
            .and_then(|(_, v)| v.split(';').next())
            .context("login set no cookie")?
            .to_owned();
        Ok(Login { addr, cookie })
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `GET /api/sessions`.
    pub async fn sessions(&self) -> Result<Vec<serde_json::Value>> {
        let (status, _, body) = http(
            self.addr,
            "GET",
            "/api/sessions",
            &[("Cookie", &self.cookie)],
            b"",
        )
        .await?;
        if status != 200 {
            bail!("/api/sessions answered {status}");
        }
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        let list = v.get("sessions").cloned().unwrap_or(v);
        Ok(list.as_array().cloned().unwrap_or_default())
    }

    /// Waits until the relay lists a session for `tmux_session` with its
    /// runner online; returns its id.
    pub async fn wait_session(&self, tmux_session: &str) -> Result<String> {
        for _ in 0..200 {
            for s in self.sessions().await? {
                if s["tmux_session"] == tmux_session && s["runner_online"] == true {
                    return s["id"]
                        .as_str()
                        .map(str::to_owned)
                        .context("session without id");
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("session {tmux_session} never appeared")
    }

    /// `POST /api/sessions/{id}/token`.
    pub async fn browser_token(&self, session_id: &str) -> Result<String> {
        let origin = self.origin();
        let (status, _, body) = http(
            self.addr,
            "POST",
            &format!("/api/sessions/{session_id}/token"),
            &[
                ("Cookie", &self.cookie),
                ("Origin", &origin),
                ("X-Requested-With", "tmux-bridge"),
            ],
            b"",
        )
        .await?;
        if status != 200 {
            bail!(
                "token answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        v["token"]
            .as_str()
            .map(str::to_owned)
            .context("no token in answer")
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// The browser side of the protocol, applying what it receives.
pub struct Browser {
    ws: Ws,
    pub view: SessionView,
    /// Sequence numbers of every live record applied, in order.
    pub applied: Vec<u64>,
    /// Bytes of binary frames received.
    pub frame_bytes: usize,
    /// Binary frames received (Batches and Snapshots).
    pub frames: usize,
    pub snapshots: usize,
    /// The most recent output records (pane, bytes), oldest first, at most
    /// [`RECENT_OUTPUT`] of them.
    pub recent_output: std::collections::VecDeque<(tmux_cc::PaneId, Vec<u8>)>,
    /// The session's numbering epoch, as the page keeps it (`welcome`,
    /// `epoch`), named in the `hello` of [`Browser::resume`].
    pub epoch: Option<String>,
    /// `welcome`s that told this browser to start from scratch (its
    /// records were of another epoch, or ahead of the store).
    pub resets: usize,
    /// Time spent taking in what arrived (decoding frames, applying them
    /// to the screens, reading text messages): the client's own share of
    /// a keystroke's echo, for the load tool.
    pub work: Duration,
}

/// How many output records [`Browser::recent_output`] keeps.
pub const RECENT_OUTPUT: usize = 64;

pub const SCROLLBACK: usize = 10_000;

impl Browser {
    pub async fn connect(login: &Login, session_id: &str, last_seq: u64) -> Result<Browser> {
        Browser::connect_in(login, session_id, last_seq, None).await
    }

    /// [`Browser::connect`] naming the epoch `last_seq` belongs to.
    pub async fn connect_in(
        login: &Login,
        session_id: &str,
        last_seq: u64,
        epoch: Option<&str>,
    ) -> Result<Browser> {
        let token = login.browser_token(session_id).await?;
        let url = format!("ws://{}/api/ws/browser/{session_id}", login.addr);
        let mut req = url.as_str().into_client_request()?;
        req.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(&format!("tmux-bridge.v1, bearer.{token}"))?,
        );
        req.headers_mut()
            .insert("origin", HeaderValue::from_str(&login.origin())?);
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, None, true)
            .await
            .context("browser websocket")?;
        let hello = BrowserToRelay::Hello {
            last_seq,
            epoch: epoch.map(str::to_owned),
        };
        ws.send(Message::text(serde_json::to_string(&hello)?))
            .await?;
        Ok(Browser {
            ws,
            view: SessionView::new(SCROLLBACK, last_seq),
            applied: Vec::new(),
            frame_bytes: 0,
            frames: 0,
            snapshots: 0,
            recent_output: Default::default(),
            epoch: epoch.map(str::to_owned),
            resets: 0,
            work: Duration::ZERO,
        })
    }

    /// A new connection that resumes from what `old` has applied.
    pub async fn resume(login: &Login, session_id: &str, old: &Browser) -> Result<Browser> {
        Browser::connect_in(login, session_id, old.view.last_seq, old.epoch.as_deref()).await
    }

    /// Carries the screens and counters of the old connection over.
    pub fn with_state_of(mut self, old: Browser) -> Browser {
        self.view = old.view;
        self.applied = old.applied;
        self.frame_bytes += old.frame_bytes;
        self.frames += old.frames;
        self.snapshots += old.snapshots;
        self.work += old.work;
        self
    }

    /// Closes the socket, as a tab that goes away does; the screens and
    /// counters stay, for [`Browser::resume`] and [`Browser::with_state_of`].
    pub async fn close(&mut self) -> Result<()> {
        self.ws.close(None).await?;
        // Read until the relay's close frame (or the end).
        while let Some(Ok(_)) = self.ws.next().await {}
        Ok(())
    }

    /// Every live record applied once, in increasing order.
    pub fn check_gap_free(&self) -> Result<()> {
        for w in self.applied.windows(2) {
            if w[1] <= w[0] {
                bail!("record {} applied after {}", w[1], w[0]);
            }
        }
        Ok(())
    }

    pub async fn send_input(&mut self, pane: &str, data: &str) -> Result<()> {
        let msg = serde_json::json!({"t": "input", "pane": pane, "data": data});
        self.ws.send(Message::text(msg.to_string())).await?;
        Ok(())
    }

    fn apply_frame(&mut self, bytes: &[u8]) -> Result<()> {
        self.frame_bytes += bytes.len();
        self.frames += 1;
        let frame = Frame::decode(bytes)?;
        match frame.kind {
            FrameKind::Snapshot => {
                self.snapshots += 1;
                let snap = Snapshot {
                    seq: frame.last_seq,
                    records: frame.records,
                };
                self.view = SessionView::from_snapshot(SCROLLBACK, &snap)?;
            }
            FrameKind::Batch => {
                // The relay promises exactly what we miss: no overlap with
                // what we have (a duplicate) and no hole (a gap).
                if frame.first_seq != self.view.last_seq + 1 {
                    bail!(
                        "batch {}..={} after seq {}: a gap or a duplicate",
                        frame.first_seq,
                        frame.last_seq,
                        self.view.last_seq
                    );
                }
                for r in &frame.records {
                    self.view.apply(r)?;
                    self.applied.push(r.seq);
                    if let RecordBody::Output { pane, bytes } = &r.body {
                        if self.recent_output.len() == RECENT_OUTPUT {
                            self.recent_output.pop_front();
                        }
                        self.recent_output.push_back((*pane, bytes.to_vec()));
                    }
                }
            }
        }
        Ok(())
    }

    /// Receives and applies until `done(view)` holds.
    pub async fn until(
        &mut self,
        what: &str,
        secs: u64,
        mut done: impl FnMut(&SessionView) -> bool,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while !done(&self.view) {
            if !self.receive_one(deadline).await? {
                bail!("timed out waiting for {what}");
            }
        }
        Ok(())
    }

    /// Receives until an output record for `pane` carrying `byte` arrives
    /// (earlier records are forgotten first).
    pub async fn until_output(&mut self, pane: &str, byte: u8, limit: Duration) -> Result<()> {
        let id: tmux_cc::PaneId = pane.parse()?;
        self.recent_output.clear();
        let deadline = tokio::time::Instant::now() + limit;
        while !self
            .recent_output
            .iter()
            .any(|(p, b)| *p == id && b.contains(&byte))
        {
            if !self.receive_one(deadline).await? {
                bail!("no output with {byte:#04x} for {pane}");
            }
        }
        Ok(())
    }

    /// Receives for a while, applying everything that arrives.
    pub async fn drain_for(&mut self, ms: u64) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
        while self.receive_one(deadline).await? {}
        Ok(())
    }

    /// Receives one message and applies it if it is a frame; `false` when
    /// the deadline passed first. A closed or failed socket is an error.
    /// `welcome` and `epoch` as the page takes them: the epoch is kept; a
    /// reset starts the screens over (`welcome`) or is an error here
    /// (`epoch`: the page would reconnect from 0; no test expects it).
    fn on_text(&mut self, text: &str) -> Result<()> {
        match serde_json::from_str::<RelayToBrowser>(text)? {
            RelayToBrowser::Welcome { epoch, reset, .. } => {
                if reset {
                    self.view = SessionView::new(SCROLLBACK, 0);
                    self.resets += 1;
                }
                self.epoch = Some(epoch);
            }
            RelayToBrowser::Epoch { reset: true, .. } => {
                bail!("the relay reset this browser: {text}")
            }
            RelayToBrowser::Epoch { epoch, .. } => self.epoch = Some(epoch),
            _ => {}
        }
        Ok(())
    }

    async fn receive_one(&mut self, deadline: tokio::time::Instant) -> Result<bool> {
        let msg = tokio::time::timeout_at(deadline, self.ws.next()).await;
        let started = std::time::Instant::now();
        let taken = match msg {
            Err(_) => return Ok(false),
            Ok(Some(Ok(Message::Binary(b)))) => self.apply_frame(&b),
            Ok(Some(Ok(Message::Text(t)))) => self.on_text(t.as_str()),
            Ok(Some(Ok(Message::Close(f)))) => bail!("relay closed the browser socket: {f:?}"),
            Ok(Some(Err(e))) => bail!("browser socket: {e}"),
            Ok(None) => bail!("browser socket ended"),
            Ok(Some(Ok(_))) => Ok(()),
        };
        self.work += started.elapsed();
        taken.map(|()| true)
    }
}

/// The visible rows of a pane in the view, trailing spaces removed.
pub fn view_rows(view: &SessionView, pane: &str) -> Vec<String> {
    let Ok(id) = pane.parse::<tmux_cc::PaneId>() else {
        return Vec::new();
    };
    view.pane(id)
        .map(|p| {
            p.rows_text()
                .into_iter()
                .map(|r| r.trim_end().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether any visible row of the pane contains `needle`.
pub fn view_has(view: &SessionView, pane: &str, needle: &str) -> bool {
    view_rows(view, pane).iter().any(|r| r.contains(needle))
}

/// An ordinary tmux client attached in a pseudo-terminal (through
/// `script`), whose screen we can read and which we can type into.
pub struct TtyClient {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    screen: std::sync::Arc<std::sync::Mutex<vt100::Parser>>,
}

impl TtyClient {
    pub async fn attach(tmux: &Tmux, session: &str, cols: u16, rows: u16) -> Result<TtyClient> {
        Self::attach_with_flags(tmux, session, cols, rows, "").await
    }

    /// Attaches with `attach -f FLAGS` (tmux 3.2+ client flags, such as
    /// `read-only,ignore-size`; none when empty).
    pub async fn attach_with_flags(
        tmux: &Tmux,
        session: &str,
        cols: u16,
        rows: u16,
        flags: &str,
    ) -> Result<TtyClient> {
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!("-f {flags} ")
        };
        let cmd = format!(
            "stty cols {cols} rows {rows}; exec tmux -u -L {} -f /dev/null attach {flags}-t ={session}",
            tmux.socket
        );
        let mut child = tokio::process::Command::new("script")
            .args(["-qfec", &cmd, "/dev/null"])
            .env("TERM", "xterm-256color")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting script(1); is bsdutils installed?")?;
        let stdin = child.stdin.take().context("stdin")?;
        let mut stdout = child.stdout.take().context("stdout")?;
        let size = |n: u16| std::num::NonZeroU16::new(n).context("zero terminal size");
        let screen = std::sync::Arc::new(std::sync::Mutex::new(vt100::Parser::new(
            size(rows)?,
            size(cols)?,
            0,
        )));
        let s2 = screen.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok(n) = stdout.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                if let Ok(mut p) = s2.lock() {
                    p.process(&buf[..n]);
                }
            }
        });
        Ok(TtyClient {
            child,
            stdin,
            screen,
        })
    }

    pub async fn type_text(&mut self, text: &str) -> Result<()> {
        self.stdin.write_all(text.as_bytes()).await?;
        self.stdin.flush().await?;
        Ok(())
    }

    pub fn contents(&self) -> String {
        self.screen
            .lock()
            .map(|p| p.screen().contents())
            .unwrap_or_default()
    }

    pub async fn wait_for(&self, needle: &str, secs: u64) -> Result<()> {
        for _ in 0..secs * 20 {
            if self.contents().contains(needle) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "the terminal never showed {needle:?}; it shows:\n{}",
            self.contents()
        )
    }

    /// Waits until a row of the terminal's screen is exactly `line`
    /// (trailing spaces aside).
    pub async fn wait_for_line(&self, line: &str, secs: u64) -> Result<()> {
        for _ in 0..secs * 20 {
            if self.contents().lines().any(|l| l.trim_end() == line) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "the terminal never showed the line {line:?}; it shows:\n{}",
            self.contents()
        )
    }

    pub async fn detach(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}
