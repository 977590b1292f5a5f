//! Test harness: a real relay on 127.0.0.1:0 over a real store (a SQLite
//! file in a temp dir, or PostgreSQL when `TEST_DATABASE_URL` is set), and
//! protocol clients built on tokio-tungstenite: a runner and browsers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use protocol::control::{BrowserToRelay, RelayToBrowser};
use protocol::runner::RelayMsg;
use protocol::wire::{Frame, FrameKind};
use relay::{Config, Relay, RelayHandle, Retention};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long any single expected event may take.
pub const STEP: Duration = Duration::from_secs(20);

/// Which databases to run a test against: SQLite always, PostgreSQL when
/// `TEST_DATABASE_URL` is set.
pub fn databases() -> Vec<Db> {
    let mut v = vec![Db::Sqlite];
    if let Ok(url) = std::env::var("TEST_DATABASE_URL")
        && !url.is_empty()
    {
        v.push(Db::Postgres(url));
    }
    v
}

#[derive(Debug, Clone)]
pub enum Db {
    Sqlite,
    Postgres(String),
}

/// A relay under test, with its data dir.
pub struct TestRelay {
    pub handle: Option<RelayHandle>,
    /// Holds the relay's files for the test's lifetime.
    pub _dir: tempfile::TempDir,
    pub config: Config,
}

pub fn web_dir_with_index(dir: &std::path::Path) -> PathBuf {
    let web = dir.join("web");
    std::fs::create_dir_all(&web).expect("mkdir web");
    std::fs::write(
        web.join("index.html"),
        "<!doctype html><title>t</title><script src=\"/app.js\"></script>",
    )
    .expect("write index");
    std::fs::write(web.join("app.js"), "console.log(1)").expect("write app.js");
    web
}

impl TestRelay {
    pub async fn start(db: &Db) -> TestRelay {
        Self::start_with(db, |_| {}).await
    }

    /// Starts a relay after `adjust` changed its default test configuration.
    pub async fn start_with(db: &Db, adjust: impl FnOnce(&mut Config)) -> TestRelay {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::new(
            "127.0.0.1:0".parse().expect("addr"),
            dir.path().join("data"),
        );
        config.database_url = match db {
            Db::Sqlite => format!("sqlite://{}", dir.path().join("relay.db").display()),
            Db::Postgres(url) => url.clone(),
        };
        config.web_dir = web_dir_with_index(dir.path());
        config.retention = Retention {
            interval: None,
            ..Retention::default()
        };
        config.shutdown_timeout = Duration::from_secs(5);
        // The test runners send no heartbeats unless a test asks them to;
        // on a loaded machine 5 s between two of their messages is no
        // fault. Tests of offline detection set a short one.
        config.heartbeat = Duration::from_secs(30);
        // Every test relay on the shared PostgreSQL database would index
        // every test's output; the search tests turn the indexer on.
        config.search_interval = None;
        adjust(&mut config);
        let handle = Relay::start(config.clone()).await.expect("relay starts");
        TestRelay {
            handle: Some(handle),
            _dir: dir,
            config,
        }
    }

    pub fn handle(&self) -> &RelayHandle {
        self.handle.as_ref().expect("relay running")
    }

    pub fn addr(&self) -> SocketAddr {
        self.handle().local_addr()
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// Stops the relay and starts it again on the same database and data
    /// dir (a new port).
    pub async fn restart(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await.expect("clean shutdown");
        }
        self.handle = Some(
            Relay::start(self.config.clone())
                .await
                .expect("relay restarts"),
        );
    }

    pub async fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await.expect("clean shutdown");
        }
    }
}

/// A unique name for this test run (runner ids, ideas) so tests sharing a
/// PostgreSQL database never collide.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{t}-{n}", std::process::id())
}

// ---- frames and the runner (testkit's protocol-2 runner) -------------------

pub use testkit::runner::{TestRunner, batch, runner_socket, snapshot, topology_batch};

/// `(kind, first_seq, last_seq)` of a frame.
pub fn header(b: &[u8]) -> (FrameKind, u64, u64) {
    let (k, f, l, _) = Frame::peek_header(b).expect("valid frame header");
    (k, f, l)
}

/// The session a [`RunnerClient`] serves on its one channel.
#[derive(Debug, Clone)]
pub struct SessionHello {
    pub idea: String,
    pub slot: String,
    pub instance: String,
}

/// The session `idea`/primary, instance "i1".
pub fn hello(idea: &str) -> SessionHello {
    SessionHello {
        idea: idea.to_owned(),
        slot: "primary".to_owned(),
        instance: "i1".to_owned(),
    }
}

/// The channel a [`RunnerClient`] serves its session on.
pub const CH: u32 = 1;

/// A runner connection serving one session on channel [`CH`] (most tests
/// need no more; the multiplexing tests use [`TestRunner`] directly).
pub struct RunnerClient {
    pub rt: TestRunner,
    pub session_id: String,
    pub last_seq: u64,
}

impl std::ops::Deref for RunnerClient {
    type Target = TestRunner;
    fn deref(&self) -> &TestRunner {
        &self.rt
    }
}

impl std::ops::DerefMut for RunnerClient {
    fn deref_mut(&mut self) -> &mut TestRunner {
        &mut self.rt
    }
}

impl RunnerClient {
    /// Connects, says hello (no features) and opens the session on [`CH`].
    pub async fn connect(addr: SocketAddr, token: &str, h: &SessionHello) -> RunnerClient {
        Self::connect_with(addr, token, h, &[]).await
    }

    /// [`RunnerClient::connect`] announcing `features`.
    pub async fn connect_with(
        addr: SocketAddr,
        token: &str,
        h: &SessionHello,
        features: &[&str],
    ) -> RunnerClient {
        let mut rt = TestRunner::connect(addr, token, testkit::runner::hello(features))
            .await
            .expect("runner connects");
        let opened = rt
            .open(testkit::runner::open(CH, &h.idea, &h.slot, &h.instance))
            .await
            .expect("channel opens");
        RunnerClient {
            rt,
            session_id: opened.session_id,
            last_seq: opened.last_seq,
        }
    }

    pub fn id(&self) -> i64 {
        self.session_id.parse().expect("numeric session id")
    }

    /// Sends a frame on [`CH`].
    pub async fn send(&mut self, frame: Bytes) {
        self.rt.send_frame(CH, &frame).await.expect("runner send");
    }

    /// Waits for the ack of `seq` on [`CH`], skipping other messages;
    /// returns the messages skipped.
    pub async fn wait_ack(&mut self, seq: u64) -> Vec<RelayMsg> {
        self.rt.wait_ack(CH, seq).await.expect("ack")
    }

    /// Waits for the next relay message matching `pred`.
    pub async fn wait_for(&mut self, pred: impl Fn(&RelayMsg) -> bool) -> RelayMsg {
        self.rt.wait_for(pred).await.expect("relay message")
    }
}

// ---- browser client --------------------------------------------------------

/// Opens a browser socket with `token` and `origin`. `Err` carries the HTTP
/// status of a refused handshake.
pub async fn browser_socket(
    addr: SocketAddr,
    session_id: &str,
    token: &str,
    origin: &str,
) -> Result<Ws, u16> {
    let mut req = format!("ws://{addr}/api/ws/browser/{session_id}")
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(&format!("tmux-bridge.v1, bearer.{token}")).expect("header"),
    );
    req.headers_mut()
        .insert("origin", HeaderValue::from_str(origin).expect("origin"));
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, resp)) => {
            let proto = resp
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok());
            assert_eq!(
                proto,
                Some("tmux-bridge.v1"),
                "relay must answer with the subprotocol"
            );
            Ok(ws)
        }
        Err(WsError::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("browser connect failed: {e}"),
    }
}

/// [`browser_socket`] over a TCP connection made by the caller (from
/// another local address, with small buffers, ...).
pub async fn browser_socket_over(
    stream: TcpStream,
    addr: SocketAddr,
    session_id: &str,
    token: &str,
    origin: &str,
) -> Result<Ws, u16> {
    let mut req = format!("ws://{addr}/api/ws/browser/{session_id}")
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(&format!("tmux-bridge.v1, bearer.{token}")).expect("header"),
    );
    req.headers_mut()
        .insert("origin", HeaderValue::from_str(origin).expect("origin"));
    match tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(stream)).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("browser connect failed: {e}"),
    }
}

/// A TCP connection to `addr` from the local address `from`.
pub async fn tcp_from(from: std::net::IpAddr, addr: SocketAddr) -> TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.bind(SocketAddr::new(from, 0)).expect("bind");
    sock.connect(addr).await.expect("connect")
}

pub struct BrowserClient {
    pub ws: Ws,
    pub welcome_head: u64,
    pub runner_online: bool,
    /// Frames received (header and byte count), in order.
    pub frames: Vec<(FrameKind, u64, u64, usize)>,
    pub texts: Vec<String>,
}

impl BrowserClient {
    pub async fn connect(
        addr: SocketAddr,
        session_id: &str,
        token: &str,
        origin: &str,
        last_seq: u64,
    ) -> BrowserClient {
        let mut ws = browser_socket(addr, session_id, token, origin)
            .await
            .expect("browser handshake accepted");
        send_json(
            &mut ws,
            &BrowserToRelay::Hello {
                last_seq,
                epoch: None,
            },
        )
        .await;
        match next_control::<RelayToBrowser>(&mut ws).await {
            RelayToBrowser::Welcome {
                head_seq,
                runner_online,
                session,
                ..
            } => {
                assert_eq!(session.id, session_id);
                BrowserClient {
                    ws,
                    welcome_head: head_seq,
                    runner_online,
                    frames: Vec::new(),
                    texts: Vec::new(),
                }
            }
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    /// Reads until a frame with `last_seq >= seq` arrived.
    pub async fn read_until(&mut self, seq: u64) {
        while self.frames.last().is_none_or(|f| f.2 < seq) {
            self.read_one().await;
        }
    }

    /// Reads whatever arrives within `quiet` of silence.
    pub async fn drain_quiet(&mut self, quiet: Duration) {
        loop {
            let Ok(msg) = tokio::time::timeout(quiet, self.ws.next()).await else {
                return;
            };
            match msg {
                Some(Ok(Message::Binary(b))) => {
                    let (k, f, l) = header(&b);
                    self.frames.push((k, f, l, b.len()));
                }
                Some(Ok(Message::Text(t))) if is_presence(t.as_str()) => {}
                Some(Ok(Message::Text(t))) => self.texts.push(t.to_string()),
                Some(Ok(_)) => {}
                _ => return,
            }
        }
    }

    /// Reads one message (frame or text).
    /// Reads one message (a frame or a control message other than
    /// `presence`, which the relay sends whenever viewers come and go).
    pub async fn read_one(&mut self) {
        loop {
            let msg = tokio::time::timeout(STEP, self.ws.next())
                .await
                .expect("browser message in time")
                .expect("browser socket open")
                .expect("browser socket ok");
            match msg {
                Message::Binary(b) => {
                    let (k, f, l) = header(&b);
                    self.frames.push((k, f, l, b.len()));
                }
                Message::Text(t) if is_presence(t.as_str()) => continue,
                Message::Text(t) => self.texts.push(t.to_string()),
                Message::Close(c) => panic!("browser closed: {c:?}"),
                _ => {}
            }
            return;
        }
    }
}

// ---- shared ----------------------------------------------------------------

pub async fn send_json<T: serde::Serialize>(ws: &mut Ws, msg: &T) {
    let text = serde_json::to_string(msg).expect("json");
    ws.send(Message::Text(text.into()))
        .await
        .expect("send json");
}

/// Whether a control message is `presence` (who watches: informational,
/// sent whenever browsers come and go), which the tests' readers skip.
pub fn is_presence(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| v["t"] == "presence")
}

/// The next text message other than `presence`, parsed; binary messages
/// are an error here.
pub async fn next_control<T: serde::de::DeserializeOwned>(ws: &mut Ws) -> T {
    loop {
        let msg = tokio::time::timeout(STEP, ws.next())
            .await
            .expect("message in time")
            .expect("socket open")
            .expect("socket ok");
        match msg {
            Message::Text(t) if is_presence(t.as_str()) => {}
            Message::Text(t) => {
                return serde_json::from_str(t.as_str()).expect("valid control message");
            }
            Message::Close(c) => panic!("socket closed: {c:?}"),
            Message::Binary(_) => panic!("unexpected binary message"),
            _ => {}
        }
    }
}

/// Reads until the socket closes; returns the close frame (code, reason).
pub async fn wait_close(ws: &mut Ws) -> Option<(u16, String)> {
    loop {
        let msg = tokio::time::timeout(STEP, ws.next())
            .await
            .expect("close in time");
        match msg {
            None => return None,
            Some(Err(_)) => return None,
            Some(Ok(Message::Close(Some(CloseFrame { code, reason })))) => {
                return Some((u16::from(code), reason.to_string()));
            }
            Some(Ok(Message::Close(None))) => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// A minimal HTTP/1.1 request over a real TCP connection: (status, headers
/// lowercased, body).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    http_with_body(addr, method, path, headers, b"").await
}

/// [`http`] with a request body.
pub async fn http_with_body(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write body");
    let mut buf = Vec::new();
    tokio::time::timeout(STEP, stream.read_to_end(&mut buf))
        .await
        .expect("response in time")
        .expect("read");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let mut body = buf[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let hdrs: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    if hdrs
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    (status, hdrs, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..nl]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = nl + 2;
        let Some(chunk) = b.get(start..start + size) else {
            break;
        };
        out.extend_from_slice(chunk);
        b = b.get(start + size + 2..).unwrap_or_default();
    }
    out
}

pub fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
