//! `LOAD_ONLY=preview`: dev server previews through the relay (issue 12)
//! against a direct connection to the same dev server. The relay (with
//! its preview listener) and the runner daemon run in this process, on a
//! private tmux server; the dev server is `python3 -m http.server` started
//! as a dev server (`POST /api/devservers`) and detected by the runner. Per run: a 256 MiB
//! download (MB/s, direct and through the preview, and this process's
//! peak RSS growth during the preview download), then `PREVIEW_REQUESTS`
//! (default 200) sequential GETs of a small page on fresh connections
//! (p50/p99 ms, direct and through the preview; the difference is what a
//! preview adds: the relay's checks, a tunnel opened per request, two more
//! hops over loopback WebSockets). Each run is a fresh system.
//!
//! The client speaks plain HTTP/1.1 over TCP (`Connection: close`), the
//! same for both paths, counting the body as it arrives.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::{Result, row};

const BIG: u64 = 256 * 1024 * 1024;

/// One GET on a fresh connection: status, body bytes, and the time to the
/// last byte.
async fn get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    cookie: &str,
) -> Result<(u16, u64, Duration)> {
    let t = Instant::now();
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let cookie = if cookie.is_empty() {
        String::new()
    } else {
        format!("Cookie: {cookie}\r\n")
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{cookie}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut head = Vec::new();
    let mut body = 0u64;
    let mut in_body = false;
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        if in_body {
            body += n as u64;
            continue;
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            body = (head.len() - end - 4) as u64;
            head.truncate(end);
            in_body = true;
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status line")?;
    Ok((status, body, t.elapsed()))
}

/// The response's `name` header.
async fn header(
    addr: SocketAddr,
    host: &str,
    path: &str,
    cookie: &str,
    name: &str,
) -> Result<(u16, Option<String>)> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nSec-Fetch-Site: same-origin\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await?;
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    let value = text.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    });
    Ok((status, value))
}

fn rss_mb() -> f64 {
    testkit::procfs::status_mb("self", "VmRSS")
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

struct Run {
    direct_mbps: f64,
    preview_mbps: f64,
    rss_growth: f64,
    direct_p50: f64,
    direct_p99: f64,
    preview_p50: f64,
    preview_p99: f64,
}

pub async fn run(runs: usize) -> Result<()> {
    let requests: usize = std::env::var("PREVIEW_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    println!("\n## previews: python3 -m http.server as a dev server, direct vs through the relay");
    let mut all = Vec::new();
    for _ in 0..runs {
        all.push(one(requests).await?);
    }
    let col = |f: fn(&Run) -> f64| all.iter().map(f).collect::<Vec<_>>();
    row("256 MiB download, direct", &col(|r| r.direct_mbps), "MB/s");
    row(
        "256 MiB download, through the preview",
        &col(|r| r.preview_mbps),
        "MB/s",
    );
    row(
        "relay+runner RSS growth during the preview download",
        &col(|r| r.rss_growth),
        "MB",
    );
    row(
        &format!("GET 1 KB page x{requests}, direct: p50"),
        &col(|r| r.direct_p50),
        "ms",
    );
    row(
        &format!("GET 1 KB page x{requests}, direct: p99"),
        &col(|r| r.direct_p99),
        "ms",
    );
    row(
        &format!("GET 1 KB page x{requests}, preview: p50"),
        &col(|r| r.preview_p50),
        "ms",
    );
    row(
        &format!("GET 1 KB page x{requests}, preview: p99"),
        &col(|r| r.preview_p99),
        "ms",
    );
    row(
        "added latency per request (p50 preview - p50 direct)",
        &col(|r| r.preview_p50 - r.direct_p50),
        "ms",
    );
    Ok(())
}

async fn one(requests: usize) -> Result<Run> {
    let tmux = testkit::Tmux::new("load-pv");
    let name = tmux_cc::naming::session_name("dev", "primary")?
        .as_str()
        .to_owned();
    tmux.new_session(&name, 80, 24)?;
    let dir = tempfile::tempdir()?;
    let site = dir.path().join("site");
    std::fs::create_dir_all(&site)?;
    std::fs::write(site.join("index.html"), "x".repeat(1024))?;
    {
        let f = std::fs::File::create(site.join("big.bin"))?;
        let mut w = std::io::BufWriter::new(f);
        let block: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
        for _ in 0..BIG / (1024 * 1024) {
            std::io::Write::write_all(&mut w, &block)?;
        }
    }
    let mut cfg = relay::Config::new("127.0.0.1:0".parse()?, dir.path().join("relay"));
    cfg.search_interval = None;
    cfg.preview = Some(relay::preview::PreviewConfig {
        listen: "127.0.0.1:0".parse()?,
        url: "http://{id}.localhost:{port}".into(),
        limits: relay::preview::PreviewLimits::default(),
    });
    let relay = relay::Relay::start(cfg).await?;
    let local = relay.auth().ensure_local_runner("load").await?;
    let login = testkit::Login::from_link(&relay.auth().login_link(&local.user_id).await?).await?;
    let cancel = CancellationToken::new();
    let daemon = tokio::spawn(bridge::daemon::run(
        bridge::daemon::DaemonConfig {
            server: bridge::tmux::TmuxServer {
                socket_name: Some(tmux.socket.clone()),
                socket_path: None,
                config: Some("/dev/null".into()),
            },
            relay_url: format!("http://{}", relay.local_addr()),
            failover_urls: Vec::new(),
            runner_token: local.runner_token.clone(),
            tls: bridge::net::TlsOptions::default(),
            data_dir: dir.path().join("runner"),
            core: bridge::core::CoreConfig::default(),
            initial_size: (80, 24),
            agents: bridge::daemon::agents::AgentCommands::default(),
            in_process: None,
            trim_after: None,
        },
        cancel.clone(),
    ));
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let body = serde_json::json!({
        "idea": "dev",
        "command": format!(
            "exec python3 -m http.server {port} --bind 127.0.0.1 --directory {}",
            site.display()
        ),
    })
    .to_string();
    let (status, _, answer) = testkit::http(
        login.addr,
        "POST",
        "/api/devservers",
        &[
            ("Cookie", &login.cookie),
            ("Origin", &login.origin()),
            ("X-Requested-With", "load"),
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
    let job_id = v["id"].as_str().context("dev server id")?.to_owned();
    let t = Instant::now();
    loop {
        if let Some(j) = relay.store().job(&job_id).await?
            && j.state == "running"
            && relay::preview::proxy::port_detected(&j.ports, port)
        {
            break;
        }
        if t.elapsed() > Duration::from_secs(30) {
            bail!("the dev server's port was never detected");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Mint, enter: the preview's host and cookie.
    let (status, location) = header(
        login.addr,
        &login.addr.to_string(),
        &format!("/preview/{job_id}/{port}"),
        &login.cookie,
        "location",
    )
    .await?;
    let location = location.with_context(|| format!("mint answered {status}"))?;
    let rest = location.strip_prefix("http://").context("location")?;
    let (host, path) = rest.split_once('/').context("location path")?;
    let paddr = relay.preview_addr().context("preview listener")?;
    let (status, set_cookie) = header(paddr, host, &format!("/{path}"), "", "set-cookie").await?;
    let cookie = set_cookie
        .with_context(|| format!("enter answered {status}"))?
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let direct: SocketAddr = ([127, 0, 0, 1], port).into();
    let direct_host = format!("127.0.0.1:{port}");

    let (s, n, d_time) = get(direct, &direct_host, "/big.bin", "").await?;
    if (s, n) != (200, BIG) {
        bail!("direct download: {s}, {n} bytes");
    }
    let before = rss_mb();
    let sampler = {
        let stop = CancellationToken::new();
        let s = stop.clone();
        let task = tokio::spawn(async move {
            let mut peak = 0f64;
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            while !s.is_cancelled() {
                tick.tick().await;
                peak = peak.max(rss_mb());
            }
            peak
        });
        (stop, task)
    };
    let (s, n, p_time) = get(paddr, host, "/big.bin", &cookie).await?;
    sampler.0.cancel();
    let peak = sampler.1.await?;
    if (s, n) != (200, BIG) {
        bail!("preview download: {s}, {n} bytes");
    }
    let mut d_lat = Vec::new();
    let mut p_lat = Vec::new();
    for _ in 0..requests {
        let (s, _, t) = get(direct, &direct_host, "/index.html", "").await?;
        if s != 200 {
            bail!("direct GET: {s}");
        }
        d_lat.push(t.as_secs_f64() * 1000.0);
        let (s, _, t) = get(paddr, host, "/index.html", &cookie).await?;
        if s != 200 {
            bail!("preview GET: {s}");
        }
        p_lat.push(t.as_secs_f64() * 1000.0);
    }
    cancel.cancel();
    daemon.await??;
    relay.shutdown().await?;
    drop(tmux);
    let mbps = |t: Duration| BIG as f64 / 1e6 / t.as_secs_f64();
    Ok(Run {
        direct_mbps: mbps(d_time),
        preview_mbps: mbps(p_time),
        rss_growth: peak - before,
        direct_p50: percentile(d_lat.clone(), 0.5),
        direct_p99: percentile(d_lat, 0.99),
        preview_p50: percentile(p_lat.clone(), 0.5),
        preview_p99: percentile(p_lat, 0.99),
    })
}
