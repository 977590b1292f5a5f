//! `LOAD_ONLY=fanout`: one busy pane (200 lines/s) delivered to many
//! browser sockets, on one relay and on three relays in cluster mode
//! (issues 16 and 15).
//!
//! Everything is real and a separate process: tmux, `tmux-bridge run`
//! (always on relay A), one `tmux-relay serve` (SQLite by default, or
//! PostgreSQL) or three on PostgreSQL + NATS. The pane runs a bash loop
//! that prints `TB <n> <wall-clock µs>` 200 times a second, paced against
//! the clock (`$EPOCHREALTIME`, no fork per line).
//!
//! The client (this process) is built to cost little per frame, so that
//! it is not what saturates (its own CPU is measured and printed):
//!
//! - every socket authenticates as a browser does (a login cookie per
//!   relay, one single-use browser token per socket from
//!   `POST /api/sessions/{id}/token`, `Origin`, the bearer subprotocol);
//! - the WebSocket is spoken by hand over a `TcpStream`: one read takes
//!   every frame the kernel holds, and a *light* socket looks only at each
//!   binary message's 20-byte frame header (`Frame::peek_header`: kind and
//!   sequence range) and notes `(last_seq, arrival µs)`: no zstd, no
//!   screen, no per-message allocation;
//! - one *probe* socket (on relay A) decodes every frame and finds the
//!   `TB` lines in the Output records: which frame (by `last_seq`) carried
//!   the line printed at which time.
//!
//! Delay = arrival − print time, for every line of the measured window on
//! every socket (the same clock: one machine). Frames reach every browser
//! with the same `last_seq` grouping (the relay forwards the runner's
//! frames as they are), so a light socket's arrivals map to print times
//! through the probe's table. A socket moved to a snapshot (its queue
//! overflowed) misses lines: "delivered" counts the lines each socket got
//! live out of those printed in the window.
//!
//! Knobs (environment): `VIEWERS=1,100,300,1000` (sockets, the probe
//! included), `RELAYS=1,3` (a 3-relay case runs for each viewer count of
//! at least 3), `FANOUT_SECS=15` (measured window, after 3 s of warm-up),
//! `FANOUT_STORE=sqlite|pg` (the single relay's database),
//! `LOAD_RUNS=1` (rounds; the cases of a round run one after another, so
//! the rounds interleave), `TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), `TEST_NATS_URL` (default
//! `nats://127.0.0.1:4222`).

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::{Buf, BytesMut};
use protocol::wire::{Frame, FrameKind, RecordBody};
use testkit::{Login, Tmux};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::{Bins, Result, percentile, proc_usage};

/// Lines the pane prints per second.
const LINES_PER_SEC: u32 = 200;
/// Warm-up between the first line and the measured window.
const WARMUP: Duration = Duration::from_secs(3);
/// Sockets connecting at once.
const CONNECT_PARALLEL: usize = 16;
/// The caps given to the relays (the defaults are 256 per account and 512
/// per address; every socket here is one account's, from loopback).
const CAP: &str = "4000";

/// One case: how many relays, how many sockets.
#[derive(Debug, Clone, Copy)]
struct Case {
    relays: usize,
    viewers: usize,
}

/// What one case measured.
struct Outcome {
    case: Case,
    lines_per_sec: f64,
    /// Delays in ms, per relay (index 0 is A, the runner's).
    delays: Vec<Vec<f64>>,
    /// Lines received live / lines expected (printed in the window ×
    /// sockets).
    delivered: f64,
    /// Snapshots received after the first frames (queue overflows).
    snapshot_moves: usize,
    /// Per relay: CPU in cores over the window, peak RSS in MB.
    relay_cpu: Vec<f64>,
    relay_rss: Vec<f64>,
    runner_cpu: f64,
    tmux_cpu: f64,
    client_cpu: f64,
    client_rss: f64,
    load: String,
}

pub async fn run(bins: &Bins) -> Result<()> {
    let viewers = list("VIEWERS", &[1, 100, 300, 1000])?;
    let relays = list("RELAYS", &[1, 3])?;
    let secs: u64 = env_num("FANOUT_SECS", 15)?;
    let rounds: usize = env_num("LOAD_RUNS", 1)?;
    let store_pg = match std::env::var("FANOUT_STORE").as_deref() {
        Ok("pg") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => bail!("FANOUT_STORE={other}: sqlite or pg"),
    };
    let pg = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
    let nats = std::env::var("TEST_NATS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let mut cases = Vec::new();
    for &r in &relays {
        if r != 1 && r != 3 {
            bail!("RELAYS takes 1 and 3");
        }
        for &v in &viewers {
            if v == 0 || (r == 3 && v < 3) {
                continue;
            }
            cases.push(Case {
                relays: r,
                viewers: v,
            });
        }
    }
    println!(
        "fan-out: {LINES_PER_SEC} lines/s, {secs} s measured per case, {rounds} round(s); \
         single relay on {}; cluster on {pg} + {nats}",
        if store_pg { "PostgreSQL" } else { "SQLite" }
    );
    let mut outcomes: Vec<Outcome> = Vec::new();
    for round in 0..rounds {
        for &case in &cases {
            println!(
                "\n## round {}: {} viewer(s) on {} relay(s)",
                round + 1,
                case.viewers,
                case.relays
            );
            let db = (case.relays > 1 || store_pg).then_some(pg.as_str());
            let nats = (case.relays > 1).then_some(nats.as_str());
            let o = one_case(bins, case, db, nats, Duration::from_secs(secs)).await?;
            print_outcome(&o);
            outcomes.push(o);
        }
    }
    print_table(&outcomes);
    Ok(())
}

fn list(name: &str, default: &[usize]) -> Result<Vec<usize>> {
    match std::env::var(name) {
        Err(_) => Ok(default.to_vec()),
        Ok(v) => v
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                s.trim()
                    .parse::<usize>()
                    .with_context(|| format!("{name}={v}"))
            })
            .collect(),
    }
}

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={v} is not a number")),
    }
}

/// Wall-clock microseconds since the Unix epoch (what the pane prints).
fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A relay process, SIGTERMed then killed when the case ends.
struct Proc(tokio::process::Child);

impl Proc {
    fn pid(&self) -> Option<u32> {
        self.0.id()
    }

    async fn stop(mut self) {
        super::terminate(&mut self.0).await;
    }
}

/// `tmux-relay serve` on `port`, ready (`/readyz` 200) before this returns.
async fn start_relay(
    bins: &Bins,
    port: u16,
    data_dir: &Path,
    db: Option<&str>,
    nats: Option<&str>,
) -> Result<Proc> {
    let mut cmd = tokio::process::Command::new(&bins.relay);
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--prune-interval-secs", "0"])
        .args(["--max-sockets-per-account", CAP])
        .args(["--max-sockets-per-address", CAP]);
    if let Some(db) = db {
        cmd.args(["--database-url", db]);
    }
    if let Some(nats) = nats {
        cmd.args(["--nats-url", nats]);
    }
    let child = cmd
        .env(
            "RUST_LOG",
            std::env::var("LOAD_RELAY_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse()?;
    for _ in 0..400 {
        if let Ok((200, _, _)) = testkit::http(addr, "GET", "/readyz", &[], b"").await {
            return Ok(Proc(child));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("relay on port {port} never became ready")
}

/// A fresh user with one runner on the database at `url`: `(user id,
/// runner token)`. Through the relay's own library, with the data dir's
/// signing secret (made here, before any relay starts, so that relays
/// sharing the dir do not race to make it).
async fn principal(url: &str, data_dir: &Path) -> Result<(String, String)> {
    let store = store::Store::connect(url).await?;
    let auth = relay::auth::Auth::open(
        store.clone(),
        data_dir,
        relay::auth::AuthConfig::new("http://127.0.0.1"),
    )?;
    let user = format!("fanout{:x}", now_us());
    store
        .create_user(&user, &user, None, relay::auth::now_ms())
        .await?
        .context("fresh user name")?;
    let runner = relay::auth::codes::new_id();
    let jti = relay::auth::codes::new_id();
    store
        .create_runner(&store::accounts::RunnerRecord {
            id: runner.clone(),
            user_id: user.clone(),
            name: "fanout".into(),
            host: "load".into(),
            embedded: false,
            token_jti: jti.clone(),
            created_at: relay::auth::now_ms(),
            last_seen_at: None,
            revoked_at: None,
        })
        .await?;
    let now = relay::auth::now_ms() / 1000;
    let token = auth.keys().mint_runner(&user, &runner, &jti, now, 3600)?;
    store.close().await;
    Ok((user, token))
}

/// A logged-in browser on the relay at `port` (its own public URL).
async fn login(url: &str, data_dir: &Path, user: &str, port: u16) -> Result<Login> {
    let store = store::Store::connect(url).await?;
    let auth = relay::auth::Auth::open(
        store.clone(),
        data_dir,
        relay::auth::AuthConfig::new(format!("http://127.0.0.1:{port}")),
    )?;
    let link = auth.login_link(user).await?;
    store.close().await;
    Login::from_link(&link).await
}

/// The pane's workload: `TB <n> <µs>` 200 times a second, paced against
/// the clock (a late line is followed at once by the next), no fork.
fn printer() -> String {
    let step = 1_000_000 / LINES_PER_SEC;
    format!(
        "n=0; next=${{EPOCHREALTIME/./}}; while :; do n=$((n+1)); \
         echo \"TB $n ${{EPOCHREALTIME/./}}\"; next=$((next+{step})); \
         d=$((next-${{EPOCHREALTIME/./}})); \
         if ((d>0)); then printf -v w '%06d' $d; read -t 0.$w; fi; done"
    )
}

async fn one_case(
    bins: &Bins,
    case: Case,
    db: Option<&str>,
    nats: Option<&str>,
    window: Duration,
) -> Result<Outcome> {
    let dir = tempfile::tempdir()?;
    let runner_dir = tempfile::tempdir()?;
    let url = match db {
        Some(u) => u.to_owned(),
        None => relay::config::default_database_url(dir.path()),
    };
    let (user, token) = principal(&url, dir.path()).await?;
    let mut ports = Vec::new();
    let mut relays = Vec::new();
    for _ in 0..case.relays {
        let port = free_port()?;
        relays.push(start_relay(bins, port, dir.path(), db, nats).await?);
        ports.push(port);
    }
    let tmux = Tmux::new("fanout");
    let name = super::bridge_session()?;
    let pane = super::new_session(&tmux, &name)?;
    let runner = tokio::process::Command::new(&bins.bridge)
        .args(["run", "--relay", &format!("http://127.0.0.1:{}", ports[0])])
        .args(["--idea", "load", "--slot", "x"])
        .args(["--tmux-socket", &tmux.socket, "--tmux-config", "/dev/null"])
        .arg("--data-dir")
        .arg(runner_dir.path())
        .env("TMUX_BRIDGE_TOKEN", &token)
        .env(
            "TMUX_BRIDGE_LOG",
            std::env::var("LOAD_BRIDGE_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let runner = Proc(runner);
    let mut logins = Vec::new();
    for &port in &ports {
        logins.push(Arc::new(login(&url, dir.path(), &user, port).await?));
    }
    let session = logins[0].wait_session(&name).await?;

    // Connect: the probe first (on A), then the light sockets, spread
    // over the relays in turn.
    let stop = CancellationToken::new();
    let ready = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(CONNECT_PARALLEL));
    let mut tasks = Vec::new();
    for i in 0..case.viewers {
        let relay = i % case.relays;
        let login = logins[relay].clone();
        let session = session.clone();
        let stop = stop.clone();
        let ready = ready.clone();
        let gate = gate.clone();
        let probe = i == 0;
        tasks.push(tokio::spawn(async move {
            let socket = {
                let _permit = gate.acquire().await?;
                Socket::open(&login, &session).await?
            };
            ready.fetch_add(1, Ordering::AcqRel);
            let samples = socket.read_until(&stop, probe).await?;
            anyhow::Ok((relay, samples))
        }));
    }
    let t = tokio::time::Instant::now();
    while ready.load(Ordering::Acquire) < case.viewers {
        if let Some(done) = tasks.iter().position(|t| t.is_finished()) {
            let t = tasks.swap_remove(done);
            t.await?.context("a socket failed while connecting")?;
            bail!("a socket ended while connecting");
        }
        if t.elapsed() > Duration::from_secs(120) {
            bail!(
                "only {} of {} sockets connected in 120 s",
                ready.load(Ordering::Acquire),
                case.viewers
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "{} sockets connected in {:.1} s",
        case.viewers,
        t.elapsed().as_secs_f64()
    );
    // Let the joins' presence messages drain, then start printing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    tmux.run(&["send-keys", "-t", &pane, "-l", &printer()])?;
    tmux.run(&["send-keys", "-t", &pane, "Enter"])?;
    tokio::time::sleep(WARMUP).await;

    let tmux_pid = super::tmux_server_pid(&tmux);
    let me = Some(std::process::id());
    let cpu = |pid| proc_usage(pid).0;
    let relay_cpu0: Vec<f64> = relays.iter().map(|r| cpu(r.pid())).collect();
    let (runner0, tmux0, client0) = (cpu(runner.pid()), cpu(tmux_pid), cpu(me));
    let from = now_us();
    let wall = std::time::Instant::now();
    tokio::time::sleep(window).await;
    let to = now_us();
    let secs = wall.elapsed().as_secs_f64();
    let relay_cpu: Vec<f64> = relays
        .iter()
        .zip(&relay_cpu0)
        .map(|(r, c0)| (cpu(r.pid()) - c0) / secs)
        .collect();
    let relay_rss: Vec<f64> = relays.iter().map(|r| proc_usage(r.pid()).1).collect();
    let runner_cpu = (cpu(runner.pid()) - runner0) / secs;
    let tmux_cpu = (cpu(tmux_pid) - tmux0) / secs;
    let client_cpu = (cpu(me) - client0) / secs;
    let load = uptime_load();
    // The lines of the window still on their way get a second to arrive.
    tmux.run(&["send-keys", "-t", &pane, "C-c"])?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.cancel();
    let mut per_socket = Vec::new();
    for t in tasks {
        per_socket.push(t.await??);
    }
    let client_rss = proc_usage(me).1;
    runner.stop().await;
    for r in relays {
        r.stop().await;
    }
    drop(tmux);

    // The probe's table: frame last_seq → print times of the lines it
    // completed.
    let printed: HashMap<u64, Vec<i64>> = per_socket
        .iter()
        .find_map(|(_, s)| s.printed.clone())
        .context("no probe")?;
    let in_window = |p: i64| p >= from && p < to;
    let lines: usize = printed
        .values()
        .flatten()
        .filter(|p| in_window(**p))
        .count();
    if lines == 0 {
        bail!("the probe saw no line printed in the window");
    }
    let mut delays = vec![Vec::new(); case.relays];
    let mut got = 0usize;
    let mut snapshot_moves = 0usize;
    for (relay, s) in &per_socket {
        snapshot_moves += s.snapshots_after_start;
        for &(seq, at) in &s.arrivals {
            for &p in printed.get(&seq).into_iter().flatten() {
                if in_window(p) {
                    delays[*relay].push((at - p) as f64 / 1000.0);
                    got += 1;
                }
            }
        }
    }
    Ok(Outcome {
        case,
        lines_per_sec: lines as f64 / ((to - from) as f64 / 1e6),
        delays,
        delivered: got as f64 / (lines * case.viewers) as f64,
        snapshot_moves,
        relay_cpu,
        relay_rss,
        runner_cpu,
        tmux_cpu,
        client_cpu,
        client_rss,
        load,
    })
}

/// `uptime`'s load averages, as printed.
fn uptime_load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// What one socket saw.
struct Samples {
    /// `(last_seq, arrival µs)` of every live Batch.
    arrivals: Vec<(u64, i64)>,
    /// Snapshot frames received after the first Batch: queue overflows.
    snapshots_after_start: usize,
    /// The probe only: frame last_seq → print times of its lines.
    printed: Option<HashMap<u64, Vec<i64>>>,
}

/// A browser WebSocket spoken by hand (RFC 6455, client side).
struct Socket {
    tcp: TcpStream,
    buf: BytesMut,
}

impl Socket {
    /// Mints a browser token, upgrades, sends `hello{last_seq: 0}` and
    /// waits for `welcome`.
    async fn open(login: &Login, session: &str) -> Result<Socket> {
        let token = login.browser_token(session).await?;
        let mut tcp = TcpStream::connect(login.addr).await?;
        tcp.set_nodelay(true)?;
        let req = format!(
            "GET /api/ws/browser/{session} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: tmux-bridge.v1, bearer.{token}\r\n\
             Origin: {}\r\n\r\n",
            login.addr,
            login.origin()
        );
        tcp.write_all(req.as_bytes()).await?;
        let mut buf = BytesMut::with_capacity(16 * 1024);
        let head_end = loop {
            if let Some(i) = memchr::memmem::find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > 16 * 1024 || tcp.read_buf(&mut buf).await? == 0 {
                bail!("no upgrade answer");
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        if !head.starts_with("HTTP/1.1 101") {
            bail!(
                "upgrade refused: {}",
                head.lines().next().unwrap_or_default()
            );
        }
        buf.advance(head_end);
        let mut s = Socket { tcp, buf };
        s.send(0x1, br#"{"t":"hello","last_seq":0}"#).await?;
        loop {
            match s.next_message().await? {
                Some((0x1, text)) if memchr::memmem::find(&text, b"\"welcome\"").is_some() => {
                    return Ok(s);
                }
                Some((0x8, close)) => bail!("closed before welcome: {}", close_reason(&close)),
                Some(_) => {}
                None => bail!("socket ended before welcome"),
            }
        }
    }

    /// Sends one masked frame (a client must mask; the key's value does
    /// not matter to a server).
    async fn send(&mut self, opcode: u8, payload: &[u8]) -> Result<()> {
        const KEY: [u8; 4] = [0x5a, 0xa5, 0x3c, 0xc3];
        if payload.len() > 125 {
            bail!("only small control and hello messages are sent");
        }
        let mut out = Vec::with_capacity(6 + payload.len());
        out.push(0x80 | opcode);
        out.push(0x80 | payload.len() as u8);
        out.extend_from_slice(&KEY);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
        self.tcp.write_all(&out).await?;
        Ok(())
    }

    /// The next whole message in the buffer, if there is one: `(opcode,
    /// payload)`. The relay never fragments nor masks.
    fn parse(&mut self) -> Result<Option<(u8, BytesMut)>> {
        let b = &self.buf;
        if b.len() < 2 {
            return Ok(None);
        }
        let opcode = b[0] & 0x0f;
        let (len, head) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() >= 10 => {
                let mut a = [0u8; 8];
                a.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(a), 10)
            }
            126 | 127 => return Ok(None),
            n => (u64::from(n), 2),
        };
        if b[1] & 0x80 != 0 || b[0] & 0x80 == 0 {
            bail!("a masked or fragmented message from the relay");
        }
        let len = usize::try_from(len)?;
        if len > (16 << 20) + 64 {
            bail!("a {len}-byte message: over the relay's limit");
        }
        if b.len() < head + len {
            self.buf.reserve(head + len - b.len());
            return Ok(None);
        }
        self.buf.advance(head);
        Ok(Some((opcode, self.buf.split_to(len))))
    }

    /// Reads until a whole message is buffered; `None` at the end.
    async fn next_message(&mut self) -> Result<Option<(u8, BytesMut)>> {
        loop {
            if let Some(m) = self.parse()? {
                return Ok(Some(m));
            }
            if self.tcp.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }

    /// Reads until `stop`, noting each Batch's `last_seq` and arrival; the
    /// probe also decodes frames and notes which printed lines each one
    /// completed. Answers the relay's pings.
    async fn read_until(mut self, stop: &CancellationToken, probe: bool) -> Result<Samples> {
        let mut s = Samples {
            arrivals: Vec::with_capacity(LINES_PER_SEC as usize * 30),
            snapshots_after_start: 0,
            printed: probe.then(HashMap::new),
        };
        let mut lines = LineScanner::default();
        let mut started = false;
        loop {
            let read = tokio::select! {
                () = stop.cancelled() => return Ok(s),
                r = self.tcp.read_buf(&mut self.buf) => r?,
            };
            if read == 0 {
                bail!("the relay ended the socket");
            }
            // One arrival time per read: every frame in it arrived then.
            let at = now_us();
            while let Some((opcode, payload)) = self.parse()? {
                match opcode {
                    0x2 => {
                        let (kind, _, last, _) = Frame::peek_header(&payload)?;
                        match kind {
                            FrameKind::Batch => {
                                started = true;
                                s.arrivals.push((last, at));
                            }
                            FrameKind::Snapshot if started => s.snapshots_after_start += 1,
                            FrameKind::Snapshot => {}
                        }
                        if let Some(printed) = s.printed.as_mut() {
                            let frame = Frame::decode(&payload)?;
                            for r in &frame.records {
                                if let RecordBody::Output { bytes, .. } = &r.body {
                                    for p in lines.push(bytes) {
                                        printed.entry(frame.last_seq).or_default().push(p);
                                    }
                                }
                            }
                        }
                    }
                    0x9 => self.send(0xA, &payload).await?,
                    0x8 => bail!("the relay closed the socket: {}", close_reason(&payload)),
                    _ => {}
                }
            }
        }
    }
}

fn close_reason(payload: &[u8]) -> String {
    if payload.len() < 2 {
        return "no code".into();
    }
    format!(
        "{} {}",
        u16::from_be_bytes([payload[0], payload[1]]),
        String::from_utf8_lossy(&payload[2..])
    )
}

/// Finds `TB <n> <µs>` lines in the pane's live stream, across records.
#[derive(Default)]
struct LineScanner {
    /// The text since the last line end (bounded).
    tail: Vec<u8>,
}

impl LineScanner {
    /// Print times of the lines completed by `bytes`.
    fn push(&mut self, bytes: &[u8]) -> Vec<i64> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == b'\n' || b == b'\r' {
                if let Some(t) = parse_line(&self.tail) {
                    out.push(t);
                }
                self.tail.clear();
            } else if self.tail.len() < 256 {
                self.tail.push(b);
            }
        }
        out
    }
}

/// The print time of a `TB <n> <µs>` line (escape sequences before it
/// ignored).
fn parse_line(line: &[u8]) -> Option<i64> {
    let at = memchr::memmem::rfind(line, b"TB ")?;
    let text = std::str::from_utf8(&line[at + 3..]).ok()?;
    let mut words = text.split(' ');
    words.next()?.parse::<u64>().ok()?;
    let us = words.next()?;
    let digits: String = us.chars().take_while(char::is_ascii_digit).collect();
    if digits.len() < 16 {
        return None;
    }
    digits.parse().ok()
}

fn pct(v: &[f64], p: f64) -> f64 {
    percentile(v, p)
}

fn print_outcome(o: &Outcome) {
    let all: Vec<f64> = o.delays.iter().flatten().copied().collect();
    println!(
        "lines printed {:.0}/s; delay p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
         delivered {:.2} %; snapshot moves {}",
        o.lines_per_sec,
        pct(&all, 0.5),
        pct(&all, 0.99),
        pct(&all, 1.0),
        o.delivered * 100.0,
        o.snapshot_moves
    );
    for (i, d) in o.delays.iter().enumerate() {
        println!(
            "relay {}: {} samples, p50 {:.1} ms, p99 {:.1} ms; CPU {:.2} cores, peak RSS {:.1} MB",
            (b'A' + i as u8) as char,
            d.len(),
            pct(d, 0.5),
            pct(d, 0.99),
            o.relay_cpu[i],
            o.relay_rss[i]
        );
    }
    println!(
        "runner CPU {:.2} cores, tmux server {:.2}; load client CPU {:.2} cores, peak RSS {:.0} MB; \
         load average {}",
        o.runner_cpu, o.tmux_cpu, o.client_cpu, o.client_rss, o.load
    );
}

/// The closing table: medians over the rounds of each case.
fn print_table(outcomes: &[Outcome]) {
    println!(
        "\n## fan-out: one pane at {LINES_PER_SEC} lines/s (median over rounds; delay = arrival on the socket − print time in the pane)\n"
    );
    println!(
        "| relays | viewers | delay p50 (ms) | delay p99 (ms) | cross-relay hop p50 / p99 (ms) | delivered live | relay CPU (cores) | relay peak RSS (MB) | runner + tmux CPU (cores) | load client CPU (cores) | load avg |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut seen: Vec<(usize, usize)> = Vec::new();
    for o in outcomes {
        let key = (o.case.relays, o.case.viewers);
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let same: Vec<&Outcome> = outcomes
            .iter()
            .filter(|x| (x.case.relays, x.case.viewers) == key)
            .collect();
        let med = |f: &dyn Fn(&Outcome) -> f64| {
            percentile(&same.iter().map(|o| f(o)).collect::<Vec<_>>(), 0.5)
        };
        let all = |o: &Outcome| o.delays.iter().flatten().copied().collect::<Vec<f64>>();
        let p50 = med(&|o| pct(&all(o), 0.5));
        let p99 = med(&|o| pct(&all(o), 0.99));
        let hop = if key.0 > 1 {
            let others = |o: &Outcome| {
                o.delays[1..]
                    .iter()
                    .flatten()
                    .copied()
                    .collect::<Vec<f64>>()
            };
            let h50 = med(&|o| pct(&others(o), 0.5) - pct(&o.delays[0], 0.5));
            let h99 = med(&|o| pct(&others(o), 0.99) - pct(&o.delays[0], 0.99));
            format!("{h50:+.1} / {h99:+.1}")
        } else {
            "—".into()
        };
        let relays = key.0;
        let cpu = (0..relays)
            .map(|i| format!("{:.2}", med(&|o| o.relay_cpu[i])))
            .collect::<Vec<_>>()
            .join(" + ");
        let rss = (0..relays)
            .map(|i| format!("{:.0}", med(&|o| o.relay_rss[i])))
            .collect::<Vec<_>>()
            .join(" + ");
        println!(
            "| {relays} | {} | {p50:.1} | {p99:.1} | {hop} | {:.1} % | {cpu} | {rss} | {:.2} | {:.2} | {} |",
            key.1,
            med(&|o| o.delivered * 100.0),
            med(&|o| o.runner_cpu + o.tmux_cpu),
            med(&|o| o.client_cpu),
            same.iter()
                .map(|o| o.load.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
}
