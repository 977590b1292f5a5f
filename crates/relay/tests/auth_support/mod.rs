//! Shared by `tests/pairing.rs` and `tests/isolation.rs`: a real relay on
//! 127.0.0.1:0 over SQLite (and PostgreSQL when `TEST_DATABASE_URL` is
//! set), a raw HTTP/1.1 client, cookie logins, and WebSocket clients for
//! the runner and browser endpoints.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use relay::{Config, Relay, RelayHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Longest wait for any one expected event.
pub const STEP: Duration = Duration::from_secs(20);

pub fn database_urls(dir: &std::path::Path) -> Vec<String> {
    let mut v = vec![format!("sqlite://{}", dir.join("relay.db").display())];
    if let Ok(url) = std::env::var("TEST_DATABASE_URL")
        && !url.is_empty()
    {
        v.push(url);
    }
    v
}

pub struct TestRelay {
    pub handle: RelayHandle,
    pub _dir: tempfile::TempDir,
}

impl TestRelay {
    pub async fn start(database_url: &str) -> TestRelay {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::new(
            "127.0.0.1:0".parse().expect("addr"),
            dir.path().join("data"),
        );
        config.database_url = if database_url.starts_with("sqlite") {
            format!("sqlite://{}", dir.path().join("relay.db").display())
        } else {
            database_url.to_owned()
        };
        let web = dir.path().join("web");
        std::fs::create_dir_all(&web).expect("mkdir web");
        std::fs::write(web.join("index.html"), "<!doctype html><title>t</title>").expect("index");
        config.web_dir = web;
        config.retention.interval = None;
        // Test runners send no heartbeats: they must not go offline while
        // a test looks elsewhere.
        config.heartbeat = Duration::from_secs(10);
        // No search indexer over the shared test database.
        config.search_interval = None;
        // Previews on (issue 12): `GET /preview/{job}/{port}` joins the matrix.
        config.preview = Some(relay::preview::PreviewConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            url: "http://{id}.localhost:{port}".into(),
            limits: relay::preview::PreviewLimits::default(),
        });
        let handle = Relay::start(config).await.expect("relay starts");
        TestRelay { handle, _dir: dir }
    }

    pub fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr())
    }

    pub fn auth(&self) -> &relay::auth::Auth {
        self.handle.auth()
    }

    /// Creates a user with a password and logs in through `POST /login`;
    /// returns `(user id, "Cookie" header value)`.
    pub async fn user(&self, prefix: &str) -> (String, String) {
        let name = unique(prefix);
        let u = self
            .auth()
            .add_user(&name, "correct horse")
            .await
            .expect("add user");
        let body = format!("name={name}&password=correct+horse&next=%2F");
        let r = self
            .http(
                "POST",
                "/login",
                &[
                    ("origin", &self.origin()),
                    ("content-type", "application/x-www-form-urlencoded"),
                ],
                body.as_bytes(),
            )
            .await;
        assert_eq!(r.status, 303, "login redirects: {}", r.text());
        let set = r.header("set-cookie").expect("login sets a cookie");
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"),
            "{set}"
        );
        let cookie = set.split(';').next().expect("cookie pair").to_owned();
        (u.id, cookie)
    }

    pub async fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        http(self.addr(), method, path, headers, body).await
    }
}

pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() % 1_000_000_000_000)
        .unwrap_or(0);
    format!(
        "{prefix}{}x{t}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// One HTTP/1.1 request with `Connection: close`.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    http_from(None, addr, method, path, headers, body).await
}

/// [`http`] from the local address `from` (any of 127.0.0.0/8 on Linux),
/// so a test can be a client address of its own for the relay's limits.
pub async fn http_from(
    from: Option<std::net::IpAddr>,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let connect = async {
        match from {
            None => TcpStream::connect(addr).await,
            Some(ip) => {
                let sock = tokio::net::TcpSocket::new_v4()?;
                sock.bind(SocketAddr::new(ip, 0))?;
                sock.connect(addr).await
            }
        }
    };
    let mut s = tokio::time::timeout(STEP, connect)
        .await
        .expect("connect in time")
        .expect("connect");
    s.write_all(req.as_bytes()).await.expect("write");
    s.write_all(body).await.expect("write body");
    let mut raw = Vec::new();
    tokio::time::timeout(STEP, s.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .expect("read");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(&rest) } else { rest };
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        b = &b[eol + 2..];
        if size == 0 || b.len() < size {
            break;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[(size + 2).min(b.len())..];
    }
    out
}

/// The runner socket with an optional bearer token; `Err(status)` when the
/// handshake is refused.
pub async fn runner_ws(addr: SocketAddr, token: Option<&str>) -> Result<Ws, u16> {
    let mut req = format!("ws://{addr}/api/runner/ws")
        .into_client_request()
        .expect("request");
    if let Some(t) = token {
        req.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {t}")).expect("header"),
        );
    }
    match tokio::time::timeout(STEP, tokio_tungstenite::connect_async(req))
        .await
        .expect("handshake in time")
    {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("runner connect failed: {e}"),
    }
}

/// The runner's hello (protocol 2).
pub fn hello_json() -> String {
    serde_json::json!({
        "t": "hello", "v": 2, "host": "test-host", "version": "0.0.0-test",
        "tmux_version": "3.4", "started_at": 0
    })
    .to_string()
}

/// The next JSON text message whose `t` is `t`.
async fn next_of(ws: &mut Ws, t: &str) -> serde_json::Value {
    loop {
        let msg = tokio::time::timeout(STEP, ws.next())
            .await
            .expect("message in time")
            .expect("open")
            .expect("ok");
        if let Message::Text(text) = msg {
            let v: serde_json::Value = serde_json::from_str(&text).expect("json");
            if v["t"] == t {
                return v;
            }
        }
    }
}

/// Connects a runner, says hello, opens the session `idea`/primary on
/// channel 1 with a topology of one pane `%0` (record 1), and returns the
/// socket and the session id of the `opened`.
pub async fn runner_session(addr: SocketAddr, token: &str, idea: &str) -> (Ws, String) {
    let mut ws = runner_ws(addr, Some(token)).await.expect("runner accepted");
    ws.send(Message::text(hello_json()))
        .await
        .expect("send hello");
    next_of(&mut ws, "welcome").await;
    let open = protocol::runner::RunnerMsg::Open(testkit::runner::open(1, idea, "primary", "i1"));
    ws.send(Message::text(serde_json::to_string(&open).expect("json")))
        .await
        .expect("send open");
    let v = next_of(&mut ws, "opened").await;
    let id = match &v["session_id"] {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let topo = testkit::runner::topology_batch(1, &[0]);
    ws.send(Message::Binary(protocol::runner::with_channel(1, &topo)))
        .await
        .expect("send topology");
    next_of(&mut ws, "ack").await;
    (ws, id)
}

/// The browser socket for `session_id` offering `token` in the subprotocol
/// and sending `origin`; `Err(status)` when refused.
pub async fn browser_ws(
    addr: SocketAddr,
    session_id: &str,
    token: Option<&str>,
    origin: &str,
) -> Result<Ws, u16> {
    let mut req = format!("ws://{addr}/api/ws/browser/{session_id}")
        .into_client_request()
        .expect("request");
    let protocols = match token {
        Some(t) => format!("tmux-bridge.v1, bearer.{t}"),
        None => "tmux-bridge.v1".to_owned(),
    };
    req.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(&protocols).expect("header"),
    );
    req.headers_mut()
        .insert("origin", HeaderValue::from_str(origin).expect("origin"));
    match tokio::time::timeout(STEP, tokio_tungstenite::connect_async(req))
        .await
        .expect("handshake in time")
    {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("browser connect failed: {e}"),
    }
}

/// Waits for the close frame; `(code, reason)`, or `None` if the socket
/// ended without one.
pub async fn wait_close(ws: &mut Ws, within: Duration) -> Option<(u16, String)> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("socket closed in time");
        match msg {
            Some(Ok(Message::Close(frame))) => {
                return frame.map(|f| (u16::from(f.code), f.reason.to_string()));
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}
