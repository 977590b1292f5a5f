//! Previews through the relay (issue 12), end to end: real tmux on a
//! private socket, a real relay with its preview listener, the runner
//! daemon, and real dev servers (a Python HTTP server that also echoes the
//! request headers it got, a node WebSocket echo) started as dev server
//! jobs and detected by the runner. HTTP and WebSocket through the preview
//! origin, the capability flow (code once, cookie per preview), what never
//! reaches the dev server, the attacks (another account, reused codes,
//! other hosts, the app's API from a preview origin), the runner refusing
//! undetected and non-loopback ports even when the relay asks, and the
//! throughput and added latency against a direct connection (printed).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use protocol::runner::TunnelError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

use super::e2e::{session_name, spawn_daemon};
use testkit::*;

/// The dev server: files from its directory, and `/echo` answering with
/// the request's headers (what the dev server was given).
const PY_SERVER: &str = r#"
import http.server, sys, functools, time
class H(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith('/echo'):
            body = ''.join(f'{k.lower()}: {v}\n' for k, v in self.headers.items()).encode()
            self.send_response(200)
            self.send_header('Content-Type', 'text/plain')
            self.send_header('Content-Length', str(len(body)))
            self.send_header('Set-Cookie', 'dev=1; Domain=localhost; Path=/')
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path.startswith('/slow'):
            time.sleep(8)
            self.send_response(200)
            self.send_header('Content-Length', '4')
            self.end_headers()
            self.wfile.write(b'slow')
            return
        return super().do_GET()
    def log_message(self, *a):
        pass
port, bind, root = int(sys.argv[1]), sys.argv[2], sys.argv[3]
http.server.ThreadingHTTPServer((bind, port), functools.partial(H, directory=root)).serve_forever()
"#;

/// A WebSocket echo on node's `ws`.
const WS_ECHO: &str = r#"
const http = require('http');
const { WebSocketServer } = require('ws');
const port = Number(process.argv[2]);
const server = http.createServer((req, res) => res.end('ws echo'));
new WebSocketServer({ server }).on('connection', (ws) =>
  ws.on('message', (m, binary) => ws.send(m, { binary })));
server.listen(port, '127.0.0.1');
"#;

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn node_modules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/node_modules")
}

struct PreviewSys {
    tmux: Tmux,
    relay: relay::RelayHandle,
    login: Login,
    user_id: String,
    runner_id: String,
    daemon: Option<(
        tokio::task::JoinHandle<anyhow::Result<()>>,
        CancellationToken,
    )>,
    dir: tempfile::TempDir,
}

impl PreviewSys {
    async fn start(tag: &str) -> Result<PreviewSys> {
        Self::start_with(tag, relay::preview::PreviewLimits::default()).await
    }

    async fn start_with(tag: &str, limits: relay::preview::PreviewLimits) -> Result<PreviewSys> {
        let tmux = Tmux::new(tag);
        tmux.new_session(&session_name("dev", "primary")?, 80, 24)?;
        let dir = tempfile::tempdir()?;
        let mut cfg = relay::Config::new("127.0.0.1:0".parse()?, dir.path().join("relay"));
        cfg.preview = Some(relay::preview::PreviewConfig {
            listen: "127.0.0.1:0".parse()?,
            url: "http://{id}.localhost:{port}".into(),
            limits,
        });
        let relay = relay::Relay::start(cfg).await?;
        let local = relay.auth().ensure_local_runner("test").await?;
        let link = relay.auth().login_link(&local.user_id).await?;
        let login = Login::from_link(&link).await?;
        let cancel = CancellationToken::new();
        let task = spawn_daemon(
            &tmux,
            relay.local_addr(),
            local.runner_token.clone(),
            &dir.path().join("runner"),
            cancel.clone(),
        );
        Ok(PreviewSys {
            tmux,
            relay,
            login,
            user_id: local.user_id,
            runner_id: local.runner_id,
            daemon: Some((task, cancel)),
            dir,
        })
    }

    fn preview_addr(&self) -> Result<SocketAddr> {
        self.relay.preview_addr().context("no preview listener")
    }

    /// Starts `command` as a dev server and waits until its job runs with
    /// `port` detected; returns the job id.
    async fn dev_server(
        &self,
        command: String,
        port: u16,
        env: &[(&str, String)],
    ) -> Result<String> {
        let job = self.start_dev_server(command, env).await?;
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(30) {
            if let Some(j) = self.relay.store().job(&job).await?
                && j.state == "running"
                && relay::preview::proxy::port_detected(&j.ports, port)
            {
                println!("port {port} of {job} detected after {:?}", t.elapsed());
                return Ok(job);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let j = self.relay.store().job(&job).await?;
        bail!("dev server {job} never listed port {port}: {j:?}")
    }

    /// Starts `command` as a dev server (`POST /api/devservers`, as the
    /// page does); returns its id (its job's).
    async fn start_dev_server(&self, command: String, env: &[(&str, String)]) -> Result<String> {
        let env: serde_json::Map<String, serde_json::Value> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone())))
            .collect();
        let body = serde_json::json!({"idea": "dev", "command": command, "env": env}).to_string();
        let (status, _, answer) = http(
            self.login.addr,
            "POST",
            "/api/devservers",
            &[
                ("Cookie", &self.login.cookie),
                ("Origin", &self.login.origin()),
                ("X-Requested-With", "tmux-bridge"),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
        .await?;
        if status != 201 {
            bail!(
                "POST /api/devservers: {status} {}",
                String::from_utf8_lossy(&answer)
            );
        }
        let v: serde_json::Value = serde_json::from_slice(&answer)?;
        Ok(v["id"].as_str().context("dev server id")?.to_owned())
    }

    /// `GET /preview/{job}/{port}` as `login`: the status and the Location.
    async fn mint(&self, login: &Login, job: &str, port: u16) -> Result<(u16, Option<String>)> {
        let (status, headers, _) = http(
            login.addr,
            "GET",
            &format!("/preview/{job}/{port}"),
            &[("Cookie", &login.cookie), ("Sec-Fetch-Site", "same-origin")],
            b"",
        )
        .await?;
        Ok((status, header_of(&headers, "location")))
    }

    async fn stop(mut self) -> Result<()> {
        if let Some((task, cancel)) = self.daemon.take() {
            cancel.cancel();
            task.await??;
        }
        self.relay.shutdown().await?;
        drop(self.tmux);
        drop(self.dir);
        Ok(())
    }
}

fn header_of(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

/// A browser-like client of preview origins: `*.localhost` resolves to the
/// preview listener, no redirects followed, cookies by hand.
fn client(preview: SocketAddr, hosts: &[&str]) -> Result<reqwest::Client> {
    plain_client(reqwest::Client::builder(), preview, hosts)
}

/// reqwest over plain HTTP (its TLS needs a crypto provider chosen; these
/// clients never speak TLS, but the builder asks anyway; `ring` as the
/// runner's `net` uses it).
#[allow(deprecated)]
fn plain_client(
    b: reqwest::ClientBuilder,
    preview: SocketAddr,
    hosts: &[&str],
) -> Result<reqwest::Client> {
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let mut b = b
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    for h in hosts {
        b = b.resolve(h, preview);
    }
    Ok(b.build()?)
}

/// Splits `http://<id>.localhost:<port>/__tb/enter?code=…` into the host
/// and the URL.
fn preview_host(location: &str) -> Result<String> {
    let rest = location.strip_prefix("http://").context("not http")?;
    let host = rest.split('/').next().context("no host")?;
    Ok(host.split(':').next().context("no name")?.to_owned())
}

/// Follows a minted Location: the code for the cookie. Returns the cookie
/// pair and the preview origin.
async fn enter(c: &reqwest::Client, location: &str) -> Result<(String, String)> {
    let resp = c.get(location).send().await?;
    if resp.status() != 303 {
        bail!("enter answered {}", resp.status());
    }
    let set = resp
        .headers()
        .get("set-cookie")
        .context("no cookie")?
        .to_str()?
        .to_owned();
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(
        !set.to_ascii_lowercase().contains("domain="),
        "host-only: {set}"
    );
    assert_eq!(
        resp.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/")
    );
    assert_eq!(
        resp.headers()
            .get("referrer-policy")
            .and_then(|v| v.to_str().ok()),
        Some("no-referrer")
    );
    let pair = set.split(';').next().context("cookie")?.to_owned();
    let origin = location
        .split("/__tb/")
        .next()
        .context("origin")?
        .to_owned();
    Ok((pair, origin))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dev_server_is_previewed_on_its_own_origin() -> Result<()> {
    let sys = PreviewSys::start("pv-http").await?;
    let root = sys.dir.path().join("site");
    std::fs::create_dir_all(&root)?;
    std::fs::write(root.join("index.html"), "<h1>hello preview</h1>")?;
    // 64 MiB of a repeating pattern, for throughput.
    let big = 64 * 1024 * 1024;
    {
        let mut f = std::fs::File::create(root.join("big.bin"))?;
        let block: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
        for _ in 0..64 {
            std::io::Write::write_all(&mut f, &block)?;
        }
    }
    std::fs::write(sys.dir.path().join("server.py"), PY_SERVER)?;
    let port = free_port()?;
    let cmd = format!(
        "exec python3 {} {port} 127.0.0.1 {}",
        sys.dir.path().join("server.py").display(),
        root.display()
    );
    let job = sys.dev_server(cmd, port, &[]).await?;
    let paddr = sys.preview_addr()?;

    // Minted for the owner: a 303 to the preview's own origin with a code.
    let (status, location) = sys.mint(&sys.login, &job, port).await?;
    assert_eq!(status, 303);
    let location = location.context("no location")?;
    assert!(
        location.starts_with("http://") && location.contains(".localhost:"),
        "{location}"
    );
    let host = preview_host(&location)?;
    let c = client(paddr, &[&host])?;
    let (cookie, origin) = enter(&c, &location).await?;

    // The page, through the tunnel.
    let resp = c
        .get(format!("{origin}/"))
        .header("cookie", &cookie)
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await?, "<h1>hello preview</h1>");

    // What the dev server got: not the preview cookie, its own cookie yes,
    // Host as a local server expects it, no hop-by-hop header.
    let resp = c
        .get(format!("{origin}/echo"))
        .header("cookie", format!("{cookie}; theme=dark"))
        .header("x-custom", "kept")
        .send()
        .await?;
    let set_cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let echoed = resp.text().await?;
    assert!(
        echoed.contains(&format!("host: localhost:{port}")),
        "{echoed}"
    );
    assert!(echoed.contains("cookie: theme=dark\n"), "{echoed}");
    assert!(!echoed.contains("tb_preview"), "{echoed}");
    assert!(echoed.contains("x-custom: kept"), "{echoed}");
    assert_eq!(
        set_cookie.as_deref(),
        Some("dev=1; Path=/"),
        "the dev server's cookie is made host-only"
    );

    // The code worked once.
    let again = c.get(&location).send().await?;
    assert_eq!(again.status(), 404, "a reused code");

    // Throughput and added latency against the direct connection.
    let direct = plain_client(reqwest::Client::builder(), paddr, &[])?;
    let direct_url = format!("http://127.0.0.1:{port}");
    let (d_bytes, d_time) = download(&direct, &format!("{direct_url}/big.bin"), None).await?;
    let (p_bytes, p_time) =
        download(&c, &format!("{origin}/big.bin"), Some(cookie.as_str())).await?;
    assert_eq!((d_bytes, p_bytes), (big, big));
    let mbps = |b: u64, t: Duration| b as f64 / 1e6 / t.as_secs_f64();
    println!(
        "download of 64 MiB: direct {:.0} MB/s, through the preview {:.0} MB/s",
        mbps(d_bytes, d_time),
        mbps(p_bytes, p_time)
    );
    let d_lat = latencies(&direct, &format!("{direct_url}/index.html"), None, 100).await?;
    let p_lat = latencies(&c, &format!("{origin}/index.html"), Some(&cookie), 100).await?;
    println!(
        "GET /index.html x100: direct p50 {:?} p99 {:?}; preview p50 {:?} p99 {:?}",
        d_lat.0, d_lat.1, p_lat.0, p_lat.1
    );

    // A POST body reaches the dev server's handler (python answers 501
    // for POST: the status is the dev server's, not ours).
    let resp = c
        .post(format!("{origin}/"))
        .header("cookie", &cookie)
        .body("x".repeat(100_000))
        .send()
        .await?;
    assert_eq!(resp.status(), 501);

    // The dev server stops: its preview ends.
    let (status, _, _) = http(
        sys.login.addr,
        "POST",
        &format!("/api/jobs/{job}/cancel"),
        &[
            ("Cookie", &sys.login.cookie),
            ("Origin", &sys.login.origin()),
            ("X-Requested-With", "tmux-bridge"),
        ],
        b"",
    )
    .await?;
    assert!((200..300).contains(&status), "cancel: {status}");
    let t = Instant::now();
    loop {
        let s = c
            .get(format!("{origin}/"))
            .header("cookie", &cookie)
            .send()
            .await?
            .status();
        if s == 404 {
            break;
        }
        if t.elapsed() > Duration::from_secs(20) {
            bail!("the preview still answers {s} after the dev server stopped");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sys.stop().await
}

/// Streams `url` to its end, counting bytes (never holding the body).
async fn download(c: &reqwest::Client, url: &str, cookie: Option<&str>) -> Result<(u64, Duration)> {
    let t = Instant::now();
    let mut req = c.get(url);
    if let Some(ck) = cookie {
        req = req.header("cookie", ck);
    }
    let mut resp = req.send().await?;
    if resp.status() != 200 {
        bail!("{url}: {}", resp.status());
    }
    let mut n = 0u64;
    while let Some(chunk) = resp.chunk().await? {
        n += chunk.len() as u64;
    }
    Ok((n, t.elapsed()))
}

/// p50 and p99 of `n` sequential GETs.
async fn latencies(
    c: &reqwest::Client,
    url: &str,
    cookie: Option<&str>,
    n: usize,
) -> Result<(Duration, Duration)> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let mut req = c.get(url);
        if let Some(ck) = cookie {
            req = req.header("cookie", ck);
        }
        let resp = req.send().await?;
        if resp.status() != 200 {
            bail!("{url}: {}", resp.status());
        }
        resp.bytes().await?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok((times[n / 2], times[(n * 99 / 100).min(n - 1)]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_is_only_its_owners_and_only_on_its_host() -> Result<()> {
    let sys = PreviewSys::start("pv-attack").await?;
    let root = sys.dir.path().join("site");
    std::fs::create_dir_all(&root)?;
    std::fs::write(root.join("index.html"), "owner's page")?;
    std::fs::write(sys.dir.path().join("server.py"), PY_SERVER)?;
    let port = free_port()?;
    let cmd = format!(
        "exec python3 {} {port} 127.0.0.1 {}",
        sys.dir.path().join("server.py").display(),
        root.display()
    );
    let job = sys.dev_server(cmd, port, &[]).await?;
    let paddr = sys.preview_addr()?;

    // Another account: its login cannot mint for this job (404, as for a
    // missing job), nor can anyone logged out (401).
    let bob = sys
        .relay
        .auth()
        .add_user("bob", "correct horse battery")
        .await?;
    let bob_login = Login::from_link(&sys.relay.auth().login_link(&bob.id).await?).await?;
    assert_eq!(sys.mint(&bob_login, &job, port).await?.0, 404);
    let nobody = Login {
        addr: sys.login.addr,
        cookie: "tb_session=forged".into(),
    };
    assert_eq!(sys.mint(&nobody, &job, port).await?.0, 401);
    // The owner, for a port not detected, a job that does not exist.
    assert_eq!(sys.mint(&sys.login, &job, 22).await?.0, 404);
    assert_eq!(sys.mint(&sys.login, "nope", port).await?.0, 404);
    assert_eq!(sys.mint(&sys.login, &job, 0).await?.0, 404);
    // A cross-site navigation may not mint.
    let (status, _, _) = http(
        sys.login.addr,
        "GET",
        &format!("/preview/{job}/{port}"),
        &[
            ("Cookie", &sys.login.cookie),
            ("Sec-Fetch-Site", "cross-site"),
        ],
        b"",
    )
    .await?;
    assert_eq!(status, 403);

    // Two previews of the same port: each cookie opens its own host only.
    let (_, l1) = sys.mint(&sys.login, &job, port).await?;
    let (_, l2) = sys.mint(&sys.login, &job, port).await?;
    let (l1, l2) = (l1.context("l1")?, l2.context("l2")?);
    let (h1, h2) = (preview_host(&l1)?, preview_host(&l2)?);
    assert_ne!(h1, h2, "every preview is its own origin");
    let c = client(paddr, &[&h1, &h2])?;
    // A code works only on its own preview's host.
    let swapped = l1.replace(&h1, &h2);
    assert_eq!(c.get(&swapped).send().await?.status(), 404);
    // That wrong try burnt preview 2's code: mint it again.
    let (_, l2) = sys.mint(&sys.login, &job, port).await?;
    let l2 = l2.context("l2")?;
    let h2 = preview_host(&l2)?;
    let c = client(paddr, &[&h1, &h2])?;
    let (cookie1, origin1) = enter(&c, &l1).await?;
    let (cookie2, origin2) = enter(&c, &l2).await?;
    let get = |origin: &str, cookie: Option<&str>| {
        let mut r = c.get(format!("{origin}/"));
        if let Some(ck) = cookie {
            r = r.header("cookie", ck.to_owned());
        }
        r.send()
    };
    assert_eq!(get(&origin1, Some(&cookie1)).await?.status(), 200);
    assert_eq!(get(&origin2, Some(&cookie2)).await?.status(), 200);
    assert_eq!(
        get(&origin1, Some(&cookie2)).await?.status(),
        404,
        "cookie of another preview"
    );
    assert_eq!(get(&origin1, None).await?.status(), 404, "no cookie");
    assert_eq!(get(&origin1, Some("tb_preview=guess")).await?.status(), 404);
    // The app's login cookie opens no preview.
    assert_eq!(get(&origin1, Some(&sys.login.cookie)).await?.status(), 404);
    // A host that is no preview (the listener's own address, another name).
    let (status, _, _) = http(paddr, "GET", "/", &[("Cookie", &cookie1)], b"").await?;
    assert_eq!(status, 404);
    let (status, _, _) = raw_get(paddr, "evil.example", "/", &cookie1).await?;
    assert_eq!(status, 404);

    // The app's API from a preview origin, with the user's cookie (as if a
    // browser sent it): refused by the Origin check; and no CORS grant
    // lets a preview page read the app's answers.
    let (status, _, _) = http(
        sys.login.addr,
        "POST",
        "/api/sessions",
        &[
            ("Cookie", &sys.login.cookie),
            ("Origin", &origin1),
            ("X-Requested-With", "tmux-bridge"),
            ("Content-Type", "application/json"),
        ],
        br#"{"idea":"pwn","slot":"x"}"#,
    )
    .await?;
    assert_eq!(status, 403, "a preview origin may not call the app's API");
    let (status, headers, _) = http(
        sys.login.addr,
        "GET",
        "/api/sessions",
        &[("Cookie", &sys.login.cookie), ("Origin", &origin1)],
        b"",
    )
    .await?;
    assert_eq!(status, 200);
    assert!(
        header_of(&headers, "access-control-allow-origin").is_none(),
        "no CORS grant: {headers:?}"
    );
    // And a preview response never carries the app's cookie.
    let resp = get(&origin1, Some(&cookie1)).await?;
    assert!(resp.headers().get("set-cookie").is_none());

    // Logging out ends the previews that login minted.
    let (status, _, _) = http(
        sys.login.addr,
        "POST",
        "/logout/everywhere",
        &[
            ("Cookie", &sys.login.cookie),
            ("Origin", &sys.login.origin()),
        ],
        b"",
    )
    .await?;
    assert_eq!(status, 303, "logout everywhere");
    assert_eq!(get(&origin1, Some(&cookie1)).await?.status(), 404);
    assert_eq!(get(&origin2, Some(&cookie2)).await?.status(), 404);
    sys.stop().await
}

/// A GET on the preview listener with any `Host`.
async fn raw_get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    cookie: &str,
) -> Result<(u16, String, Vec<u8>)> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await??;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    Ok((status, text, out))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_are_proxied_and_the_runner_refuses_what_it_did_not_detect() -> Result<()> {
    let sys = PreviewSys::start("pv-ws").await?;
    std::fs::write(sys.dir.path().join("echo.js"), WS_ECHO)?;
    let port = free_port()?;
    let cmd = format!(
        "exec node {} {port}",
        sys.dir.path().join("echo.js").display()
    );
    let node_path = node_modules().display().to_string();
    let job = sys
        .dev_server(cmd, port, &[("NODE_PATH", node_path)])
        .await?;
    let paddr = sys.preview_addr()?;
    let (_, location) = sys.mint(&sys.login, &job, port).await?;
    let location = location.context("location")?;
    let host = preview_host(&location)?;
    let c = client(paddr, &[&host])?;
    let (cookie, origin) = enter(&c, &location).await?;

    // The echo, through the preview origin.
    let url = format!("{}/", origin.replacen("http://", "ws://", 1));
    let mut req = url.as_str().into_client_request()?;
    req.headers_mut().insert("cookie", cookie.parse()?);
    req.headers_mut().insert("origin", origin.parse()?);
    // The same cookie, from another preview's page (all previews share a
    // site, so a browser sends the Lax cookie along): refused.
    let mut foreign = req.clone();
    foreign.headers_mut().insert(
        "origin",
        "http://0123456789abcdef0123456789abcdef.localhost".parse()?,
    );
    let tcp = tokio::net::TcpStream::connect(paddr).await?;
    let refused_ws = tokio_tungstenite::client_async(foreign, tcp).await;
    assert!(
        matches!(&refused_ws, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 403),
        "a WebSocket from another origin: {refused_ws:?}"
    );
    let post = c
        .post(format!("{origin}/"))
        .header("cookie", &cookie)
        .header(
            "origin",
            "http://0123456789abcdef0123456789abcdef.localhost",
        )
        .body("x")
        .send()
        .await?;
    assert_eq!(post.status(), 403, "a POST from another origin");
    let tcp = tokio::net::TcpStream::connect(paddr).await?;
    let (mut ws, resp) = tokio_tungstenite::client_async(req, tcp).await?;
    assert_eq!(resp.status(), 101);
    for i in 0..20 {
        let msg = format!("hello {i}");
        ws.send(Message::text(msg.clone())).await?;
        let back = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await?
            .context("closed")??;
        assert_eq!(back, Message::text(msg));
    }
    let blob: Vec<u8> = (0..1_000_000u32).map(|i| (i % 256) as u8).collect();
    ws.send(Message::binary(blob.clone())).await?;
    let back = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await?
        .context("closed")??;
    assert_eq!(back.into_data().as_ref(), blob.as_slice());
    // Without the cookie, no upgrade.
    let tcp = tokio::net::TcpStream::connect(paddr).await?;
    let anonymous = tokio_tungstenite::client_async(url.as_str(), tcp).await;
    assert!(anonymous.is_err(), "an upgrade without the cookie");

    // The runner, asked by the relay itself (its real tunnels to the real
    // daemon), dials only ports it detected for that job.
    let tunnels = sys
        .relay
        .previews()
        .runner(&sys.runner_id)
        .context("runner tunnels")?;
    let other = free_port()?;
    let _unrelated = std::net::TcpListener::bind(("127.0.0.1", other))?;
    assert_eq!(
        refused(tunnels.open(&job, other).await),
        Some(TunnelError::PortNotDetected),
        "a port something listens on, not detected for the job"
    );
    assert_eq!(
        refused(tunnels.open("some-other-job", port).await),
        Some(TunnelError::PortNotDetected),
        "another job's port"
    );
    assert_eq!(
        refused(tunnels.open(&job, 22).await),
        Some(TunnelError::PortNotDetected)
    );
    // A dev server listening only on a LAN address: the runner never
    // lists it (nothing on loopback reaches it), and asked anyway it
    // dials nothing.
    if let Some(ip) = lan_address() {
        let lan_port = free_port()?;
        std::fs::write(sys.dir.path().join("server.py"), PY_SERVER)?;
        let cmd = format!(
            "exec python3 {} {lan_port} {ip} {}",
            sys.dir.path().join("server.py").display(),
            sys.dir.path().display()
        );
        let lan_job = sys.start_dev_server(cmd, &[]).await?;
        // It serves (directly, on the LAN address)...
        let t = Instant::now();
        while tokio::net::TcpStream::connect((ip, lan_port))
            .await
            .is_err()
        {
            if t.elapsed() > Duration::from_secs(20) {
                bail!("the LAN-only server never listened");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // ...for three of the runner's detection polls...
        tokio::time::sleep(Duration::from_millis(3100)).await;
        let j = sys.relay.store().job(&lan_job).await?.context("lan job")?;
        assert_eq!((j.state.as_str(), j.ports.as_str()), ("running", "[]"));
        // ...and is never dialled, whatever the relay asks.
        assert_eq!(
            refused(tunnels.open(&lan_job, lan_port).await),
            Some(TunnelError::PortNotDetected),
            "a server on {ip} only"
        );
        assert_eq!(sys.mint(&sys.login, &lan_job, lan_port).await?.0, 404);
    } else {
        println!("no non-loopback IPv4 address here: the LAN case is skipped");
    }
    // The same stream API does reach the detected port.
    let mut ok = tunnels
        .open(&job, port)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    ok.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), ok.read_to_end(&mut got)).await??;
    assert!(String::from_utf8_lossy(&got).ends_with("ws echo"));

    // An open preview WebSocket ends when its login is logged out
    // everywhere.
    ws.send(Message::text("still here")).await?;
    let back = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await?
        .context("closed")??;
    assert_eq!(back, Message::text("still here"));
    let (status, _, _) = http(
        sys.login.addr,
        "POST",
        "/logout/everywhere",
        &[
            ("Cookie", &sys.login.cookie),
            ("Origin", &sys.login.origin()),
        ],
        b"",
    )
    .await?;
    assert_eq!(status, 303);
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the preview WebSocket outlived the login");
    sys.stop().await
}

/// The refusal of a tunnel the relay asked for, if refused.
fn refused(
    r: std::result::Result<relay::preview::tunnel::TunnelStream, TunnelError>,
) -> Option<TunnelError> {
    r.err()
}

/// This machine's first non-loopback IPv4 address, if any.
fn lan_address() -> Option<std::net::Ipv4Addr> {
    let out = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|w| w.parse::<std::net::Ipv4Addr>().ok())
        .find(|ip| !ip.is_loopback())
}

const CHROMIUM: &str = "/usr/bin/chromium";

/// VmRSS of this process (the relay and the runner both run in it), MB.
fn self_rss_mb() -> f64 {
    procfs::status_mb("self", "VmRSS")
}

/// The user's view in real Chromium (web/tests/support/preview-driver.mjs):
/// log in, open a preview from the app's route, the page loads on its own
/// origin, the app's API refuses the preview page, a 200 MB download
/// streams through while this process (relay and runner) stays small, and
/// a WebSocket echoes through a second preview. Skipped (passes, with a
/// note) without /usr/bin/chromium or web/node_modules/playwright-core.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previews_work_in_chromium() -> Result<()> {
    let driver =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/tests/support/preview-driver.mjs");
    if !Path::new(CHROMIUM).exists() || !node_modules().join("playwright-core").exists() {
        println!("skipped: {CHROMIUM} or playwright-core is missing");
        return Ok(());
    }
    let sys = PreviewSys::start("pv-chromium").await?;
    let root = sys.dir.path().join("site");
    std::fs::create_dir_all(&root)?;
    std::fs::write(
        root.join("index.html"),
        "<!doctype html><title>dev</title><h1>hello from the dev server</h1>",
    )?;
    let big: u64 = 200 * 1024 * 1024;
    {
        let f = std::fs::File::create(root.join("big.bin"))?;
        let mut w = std::io::BufWriter::new(f);
        let block: Vec<u8> = (0..1024 * 1024).map(|i| (i % 253) as u8).collect();
        for _ in 0..200 {
            std::io::Write::write_all(&mut w, &block)?;
        }
    }
    std::fs::write(sys.dir.path().join("server.py"), PY_SERVER)?;
    std::fs::write(sys.dir.path().join("echo.js"), WS_ECHO)?;
    let http_port = free_port()?;
    let ws_port = free_port()?;
    let http_job = sys
        .dev_server(
            format!(
                "exec python3 {} {http_port} 127.0.0.1 {}",
                sys.dir.path().join("server.py").display(),
                root.display()
            ),
            http_port,
            &[],
        )
        .await?;
    let ws_job = sys
        .dev_server(
            format!(
                "exec node {} {ws_port}",
                sys.dir.path().join("echo.js").display()
            ),
            ws_port,
            &[("NODE_PATH", node_modules().display().to_string())],
        )
        .await?;
    let login_url = sys.relay.auth().login_link(&sys.user_id).await?;
    let baseline = self_rss_mb();
    let mut child = tokio::process::Command::new("node")
        .arg(&driver)
        .env("LOGIN_URL", &login_url)
        .env("APP", sys.login.origin())
        .env("HTTP_JOB", &http_job)
        .env("HTTP_PORT", http_port.to_string())
        .env("WS_JOB", &ws_job)
        .env("WS_PORT", ws_port.to_string())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("driver stdout")?;
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let mut peak_during_download = 0f64;
    let mut downloading = false;
    let mut done: Option<serde_json::Value> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let deadline = tokio::time::sleep(Duration::from_secs(240));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line? else { break };
                let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                match v["step"].as_str() {
                    Some("download-start") => downloading = true,
                    Some("download-done") => downloading = false,
                    _ => {}
                }
                if !v["done"].is_null() {
                    done = Some(v["done"].clone());
                }
            }
            _ = tick.tick() => {
                if downloading {
                    peak_during_download = peak_during_download.max(self_rss_mb());
                }
            }
            () = &mut deadline => bail!("the Chromium driver did not finish in 240 s"),
        }
    }
    let status = child.wait().await?;
    let done = done.context("the driver printed no result")?;
    assert!(status.success(), "driver: {status} {done}");
    assert!(done["error"].is_null(), "driver error: {}", done["error"]);
    println!("chromium: {done}");

    // The page loaded on its own origin, at `/` (the code left the URL).
    assert_eq!(done["http_status"], 200, "{done}");
    assert_eq!(done["http_path"], "/");
    let origin = done["http_origin"].as_str().unwrap_or_default();
    assert!(
        origin.ends_with(&format!(".localhost:{}", sys.preview_addr()?.port())),
        "{origin}"
    );
    assert_ne!(origin, sys.login.origin());
    assert_eq!(done["http_text"], "hello from the dev server");
    // Its cookie is host-only and HttpOnly; scripts see no cookie at all.
    assert_eq!(done["document_cookie"], "");
    let cookies = done["preview_cookies"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert_eq!(cookies[0]["name"], "tb_preview");
    assert_eq!(cookies[0]["httpOnly"], true);
    assert_eq!(
        cookies[0]["domain"].as_str(),
        origin
            .strip_prefix("http://")
            .and_then(|h| h.split(':').next())
    );
    // The app's API from the preview page: unreadable, refused, and the
    // no-cors post created nothing.
    assert!(
        done["app_get"]["error"].is_string(),
        "GET readable: {}",
        done["app_get"]
    );
    assert!(
        done["app_post"]["error"].is_string(),
        "POST answered: {}",
        done["app_post"]
    );
    let jobs = sys
        .relay
        .store()
        .jobs_for_user(&sys.user_id, Some("pwned"), None, 10)
        .await?;
    assert!(jobs.is_empty(), "a preview page created a job: {jobs:?}");
    // The download streamed whole while this process stayed small.
    assert_eq!(done["download"]["status"], 200);
    assert_eq!(done["download"]["bytes"].as_u64(), Some(big));
    let ms = done["download"]["ms"].as_f64().unwrap_or(f64::NAN);
    println!(
        "200 MiB through the preview in Chromium: {:.0} MB/s; relay+runner RSS {baseline:.0} MB before, peak {peak_during_download:.0} MB during",
        big as f64 / 1e6 / (ms / 1000.0)
    );
    assert!(
        peak_during_download - baseline < 100.0,
        "RSS grew by {:.0} MB for a 200 MiB download",
        peak_during_download - baseline
    );
    // The WebSocket echoed through its own preview origin.
    let echoes: Vec<String> = (0..5).map(|i| format!("hello {i}")).collect();
    assert_eq!(done["ws"], serde_json::json!(echoes));
    assert_ne!(done["ws_origin"], done["http_origin"]);
    assert_eq!(done["ws_cookies"].as_array().map(Vec::len), Some(1));
    sys.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_limits_answer_413_504_and_429() -> Result<()> {
    let mut limits = relay::preview::PreviewLimits::default();
    limits.max_body = 1024 * 1024;
    // Generous for a loaded machine; `/slow` answers after 8 s.
    limits.response_timeout = Duration::from_secs(3);
    limits.tunnels_per_account = 2;
    let sys = PreviewSys::start_with("pv-limits", limits).await?;
    let root = sys.dir.path().join("site");
    std::fs::create_dir_all(&root)?;
    std::fs::write(root.join("index.html"), "ok")?;
    std::fs::write(sys.dir.path().join("server.py"), PY_SERVER)?;
    let port = free_port()?;
    let cmd = format!(
        "exec python3 {} {port} 127.0.0.1 {}",
        sys.dir.path().join("server.py").display(),
        root.display()
    );
    let job = sys.dev_server(cmd, port, &[]).await?;
    let (_, location) = sys.mint(&sys.login, &job, port).await?;
    let location = location.context("location")?;
    let host = preview_host(&location)?;
    let c = client(sys.preview_addr()?, &[&host])?;
    let (cookie, origin) = enter(&c, &location).await?;

    // A body over the limit, announced: 413 before any of it is read. (The
    // headers alone: a client still sending the body when the relay
    // answers and closes may see the connection reset instead.)
    let mut raw = tokio::net::TcpStream::connect(sys.preview_addr()?).await?;
    raw.write_all(
        format!(
            "POST / HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nContent-Length: {}\r\n\r\n",
            2 * 1024 * 1024
        )
        .as_bytes(),
    )
    .await?;
    let mut head = [0u8; 12];
    raw.read_exact(&mut head).await?;
    assert_eq!(&head, b"HTTP/1.1 413", "{}", String::from_utf8_lossy(&head));
    drop(raw);
    // No response headers within the limit.
    let s = c
        .get(format!("{origin}/slow"))
        .header("cookie", &cookie)
        .send()
        .await?
        .status();
    assert_eq!(s, 504);
    // Two tunnels held open by a slow download each; the third is refused.
    let big = vec![1u8; 8 * 1024 * 1024];
    std::fs::write(root.join("big.bin"), &big)?;
    let mut held = Vec::new();
    for _ in 0..2 {
        let r = c
            .get(format!("{origin}/big.bin"))
            .header("cookie", &cookie)
            .send()
            .await?;
        assert_eq!(r.status(), 200);
        held.push(r);
    }
    let s = c
        .get(format!("{origin}/"))
        .header("cookie", &cookie)
        .send()
        .await?
        .status();
    assert_eq!(s, 429);
    // Finishing them gives the tunnels back.
    for mut r in held {
        let mut n = 0;
        while let Some(chunk) = r.chunk().await? {
            n += chunk.len();
        }
        assert_eq!(n, big.len());
    }
    let t = Instant::now();
    loop {
        let s = c
            .get(format!("{origin}/"))
            .header("cookie", &cookie)
            .send()
            .await?
            .status();
        if s == 200 {
            break;
        }
        if t.elapsed() > Duration::from_secs(10) {
            bail!("the tunnels never came back: {s}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sys.stop().await
}

/// A dev server that restarts (its port closed for a moment) keeps its
/// preview: 503 while nothing listens, the same cookie works once it is
/// back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_survives_its_dev_server_restarting() -> Result<()> {
    let sys = PreviewSys::start("pv-restart").await?;
    let root = sys.dir.path().join("site");
    std::fs::create_dir_all(&root)?;
    std::fs::write(root.join("index.html"), "<h1>up</h1>")?;
    let port = free_port()?;
    // A watcher that reruns the server 3 s after it dies.
    let cmd = format!(
        "while :; do python3 -m http.server {port} --bind 127.0.0.1 --directory {}; sleep 3; done",
        root.display()
    );
    let job = sys.dev_server(cmd, port, &[]).await?;
    let (_, location) = sys.mint(&sys.login, &job, port).await?;
    let location = location.context("location")?;
    let c = client(sys.preview_addr()?, &[&preview_host(&location)?])?;
    let (cookie, origin) = enter(&c, &location).await?;
    let get = || async {
        anyhow::Ok(
            c.get(format!("{origin}/"))
                .header("cookie", &cookie)
                .send()
                .await?
                .status()
                .as_u16(),
        )
    };
    assert_eq!(get().await?, 200);
    let killed = std::process::Command::new("pkill")
        .args(["-f", &format!("(^|/)python3 -m http.server {port} ")])
        .status()?;
    assert!(killed.success(), "pkill found the server");
    let mut seen = Vec::new();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        let s = get().await?;
        if seen.last() != Some(&s) {
            seen.push(s);
        }
        if s == 200 && seen.contains(&503) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // 502 only if a request raced the kill on an open connection attempt.
    seen.retain(|s| *s != 502);
    assert_eq!(seen.first(), Some(&503), "{seen:?}");
    assert_eq!(seen.last(), Some(&200), "{seen:?}");
    assert!(!seen.contains(&404), "the preview ended: {seen:?}");
    sys.stop().await
}
