//! ttyd beside the bridge (issue 16): ttyd serving `tmux attach` to a
//! WebSocket client that speaks ttyd's own protocol (what its page does:
//! the `tty` subprotocol, a JSON hello with the size, then binary messages
//! whose first byte says what they are, `0` output or input). The same
//! floods and keystrokes as the bridge's cases, on the same kind of tmux
//! server, with the same clock points.
//!
//! ttyd is found as `$TTYD`, `/opt/ttyd-*/bin/ttyd` (`scripts/install-ttyd`)
//! or `ttyd` on `PATH`; without it the load tool leaves these cases out and
//! says so.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use testkit::Tmux;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::{COLS, MARKER, ROWS, Result, new_session, proc_usage, tmux_server_cpu, type_command};

/// The ttyd binary, if one is installed.
pub fn find() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TTYD").map(PathBuf::from) {
        return p.exists().then_some(p);
    }
    let mut opt: Vec<PathBuf> = std::fs::read_dir("/opt")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin/ttyd"))
        .filter(|p| p.exists())
        .collect();
    opt.sort();
    if let Some(p) = opt.pop() {
        return Some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("ttyd"))
            .find(|p| p.exists())
    })
}

/// `ttyd --version`.
pub fn version(bin: &PathBuf) -> String {
    std::process::Command::new(bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// A ttyd process serving `tmux attach -t =<session>` on a loopback port.
pub struct Ttyd {
    child: tokio::process::Child,
    port: u16,
}

impl Ttyd {
    pub async fn start(bin: &PathBuf, tmux: &Tmux, session: &str) -> Result<Ttyd> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let target = format!("={session}");
        let child = tokio::process::Command::new(bin)
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-W", "-d", "0"])
            .args(["tmux", "-u", "-L", &tmux.socket, "attach", "-t", &target])
            .env("TERM", "xterm-256color")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting ttyd")?;
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Ok(Ttyd { child, port });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bail!("ttyd never listened on {port}")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The processes ttyd started (the `tmux attach` client).
    pub fn children(&self) -> Vec<u32> {
        let Some(pid) = self.pid() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
        {
            let Ok(task) = task else { continue };
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            out.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
        out
    }

    pub async fn stop(mut self) {
        super::terminate(&mut self.child).await;
    }
}

/// A browser as ttyd's page is one, reading as fast as it can.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Bytes of every message received.
    pub bytes: usize,
    /// Time spent looking through what arrived (the client's own share of
    /// a keystroke's echo).
    pub work: Duration,
}

impl Client {
    pub async fn connect(ttyd: &Ttyd, cols: u16, rows: u16) -> Result<Client> {
        let mut req = format!("ws://127.0.0.1:{}/ws", ttyd.port).into_client_request()?;
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("tty"));
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
        let hello = serde_json::json!({ "AuthToken": "", "columns": cols, "rows": rows });
        ws.send(Message::Binary(hello.to_string().into_bytes().into()))
            .await?;
        Ok(Client {
            ws,
            bytes: 0,
            work: Duration::ZERO,
        })
    }

    /// Types `data` into the terminal.
    pub async fn send_input(&mut self, data: &[u8]) -> Result<()> {
        let mut m = Vec::with_capacity(data.len() + 1);
        m.push(b'0');
        m.extend_from_slice(data);
        self.ws.send(Message::Binary(m.into())).await?;
        Ok(())
    }

    /// Reads (and counts) whatever arrives for `ms`.
    pub async fn drain_for(&mut self, ms: u64) -> Result<()> {
        self.until(b"\x00never", Duration::from_millis(ms))
            .await
            .map(drop)
    }

    /// Reads until `needle` appears in the terminal output (across
    /// messages), within `limit`.
    pub async fn until(&mut self, needle: &[u8], limit: Duration) -> Result<bool> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut tail: Vec<u8> = Vec::new();
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Ok(false),
                Ok(None) => return Ok(false),
                Ok(Some(m)) => m?,
            };
            let Message::Binary(data) = msg else { continue };
            let started = std::time::Instant::now();
            self.bytes += data.len();
            if data.first() != Some(&b'0') {
                continue;
            }
            tail.extend_from_slice(&data[1..]);
            let found = memchr::memmem::find(&tail, needle).is_some();
            let keep = needle.len().saturating_sub(1).min(tail.len());
            tail.drain(..tail.len() - keep);
            self.work += started.elapsed();
            if found {
                return Ok(true);
            }
        }
    }
}

/// One flood through ttyd.
pub struct Flood {
    pub secs: f64,
    pub browser_bytes: usize,
    /// ttyd and the `tmux attach` it runs.
    pub ttyd_cpu: f64,
    pub tmux_cpu: f64,
    pub ttyd_rss_mb: f64,
    pub client_rss_mb: f64,
}

pub async fn flood(bin: &PathBuf, command: &str) -> Result<Flood> {
    let tmux = Tmux::new("load-t");
    let pane = new_session(&tmux, "load")?;
    type_command(&tmux, &pane, command)?;
    let ttyd = Ttyd::start(bin, &tmux, "load").await?;
    let mut c = Client::connect(&ttyd, COLS, ROWS + 1).await?;
    if !c.until(b"FLOOD", Duration::from_secs(10)).await? {
        bail!("ttyd's client never showed the typed command");
    }
    let kids = ttyd.children();
    let usage = |pids: &[u32]| {
        pids.iter()
            .map(|p| proc_usage(Some(*p)))
            .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1))
    };
    let (tcpu0, _) = proc_usage(ttyd.pid());
    let (kcpu0, _) = usage(&kids);
    let server0 = tmux_server_cpu(&tmux);
    let bytes0 = c.bytes;
    let start = Instant::now();
    tmux.run(&["send-keys", "-t", &pane, "Enter"])?;
    if !c.until(MARKER.as_bytes(), Duration::from_secs(180)).await? {
        bail!("ttyd's client never showed the final line");
    }
    let secs = start.elapsed().as_secs_f64();
    let (tcpu1, trss) = proc_usage(ttyd.pid());
    let (kcpu1, krss) = usage(&kids);
    let server1 = tmux_server_cpu(&tmux);
    let out = Flood {
        secs,
        browser_bytes: c.bytes - bytes0,
        ttyd_cpu: (tcpu1 - tcpu0) + (kcpu1 - kcpu0),
        tmux_cpu: server1 - server0,
        ttyd_rss_mb: trss,
        client_rss_mb: krss,
    };
    ttyd.stop().await;
    Ok(out)
}
