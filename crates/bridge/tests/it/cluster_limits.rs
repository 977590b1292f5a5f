//! Rate limits and WebSocket caps across relays (issue 15, phase 2b): two
//! `tmux-relay serve --nats-url` processes on one PostgreSQL database count
//! failed logins, pairing starts and held WebSockets together, so a client
//! split over both gets the configured allowance once, not twice; a relay
//! killed with -9 stops counting when its lease runs out.
//!
//! Needs PostgreSQL and NATS as `cluster.rs` (skipped outside CI without
//! them). Every test has its own data dir, so its own signing secret: the
//! shared counters' keys (hashed under it) never meet another test's, even
//! from the same address.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use testkit::runner::{TestRunner, open};
use testkit::*;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::cluster::{principal, services, start_member_with};
use super::e2e::free_port;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// `POST /login` with a name and password from the relay's own origin:
/// the status (303 logged in, 401 wrong, 429 limited).
async fn login(port: u16, name: &str, password: &str) -> Result<u16> {
    let origin = format!("http://127.0.0.1:{port}");
    let body = format!("name={name}&password={password}&next=%2F");
    let (status, _, _) = http(
        addr(port),
        "POST",
        "/login",
        &[
            ("Origin", &origin),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        body.as_bytes(),
    )
    .await?;
    Ok(status)
}

/// `POST /api/pair/start` as a runner does: the status.
async fn pair_start(port: u16) -> Result<u16> {
    let (status, _, _) = http(
        addr(port),
        "POST",
        "/api/pair/start",
        &[("Content-Type", "application/json")],
        br#"{"name":"limits-test","host":"test-host"}"#,
    )
    .await?;
    Ok(status)
}

/// `rate_limited_total` of `limiter` on the metrics listener at `port`.
async fn refusals(port: u16, limiter: &str) -> Result<u64> {
    let (status, _, body) = http(addr(port), "GET", "/metrics", &[], b"").await?;
    if status != 200 {
        bail!("/metrics answered {status}");
    }
    let text = String::from_utf8(body)?;
    let want = format!("tmux_relay_rate_limited_total{{limiter=\"{limiter}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&want))
        .context("no such limiter in /metrics")?
        .trim()
        .parse()
        .context("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_and_pairing_starts_split_over_two_relays_hit_one_limit() -> Result<()> {
    let Some((pg, nats)) = services().await else {
        return Ok(());
    };
    let data = tempfile::tempdir()?;
    let (pa, pb, ma, mb) = (free_port()?, free_port()?, free_port()?, free_port()?);
    let metrics = |p: u16| format!("127.0.0.1:{p}");
    let (la, lb) = (metrics(ma), metrics(mb));
    let mut a = start_member_with(pa, data.path(), &pg, &nats, &["--metrics-listen", &la]).await?;
    let mut b = start_member_with(pb, data.path(), &pg, &nats, &["--metrics-listen", &lb]).await?;

    // A user with a password, made on the shared database.
    let store = store::Store::connect(&pg).await?;
    let name = format!("lim{}", &relay::auth::codes::new_id()[..12]);
    let hash = relay::auth::password::hash_password("right-password")?;
    store
        .create_user(&name, &name, Some(&hash), relay::auth::now_ms())
        .await?
        .context("fresh user name")?;

    // Ten failures (the limit per name and per address, 10 per 10 min),
    // five on each relay: each relay alone saw only five.
    for i in 0..10 {
        let port = if i % 2 == 0 { pa } else { pb };
        assert_eq!(login(port, &name, "wrong").await?, 401, "failure {i}");
    }
    // The eleventh attempt is refused on either relay, even with the right
    // password: the limit is checked before the password.
    assert_eq!(login(pa, &name, "right-password").await?, 429, "on A");
    assert_eq!(login(pb, &name, "right-password").await?, 429, "on B");
    assert!(
        refusals(ma, "login_fail_per_addr").await? >= 1,
        "A counted its refusal"
    );
    assert!(
        refusals(mb, "login_fail_per_addr").await? >= 1,
        "B counted its refusal"
    );

    // Pairing starts: 3 per 5 minutes per address, two on A and one on B.
    for port in [pa, pa, pb] {
        assert_eq!(pair_start(port).await?, 200);
    }
    assert_eq!(pair_start(pb).await?, 429, "the fourth start, on B");
    assert_eq!(pair_start(pa).await?, 429, "and on A");
    assert_eq!(refusals(mb, "pair_start_per_addr").await?, 1);
    assert_eq!(refusals(ma, "pair_start_per_addr").await?, 1);

    b.kill9().await;
    a.kill9().await;
    Ok(())
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a browser socket for `sid` on `login`'s relay and says hello:
/// the open socket once welcomed, or the close code it was refused with.
async fn browser(login: &Login, sid: &str) -> Result<std::result::Result<Ws, u16>> {
    let tok = login.browser_token(sid).await?;
    let mut req = format!("ws://{}/api/ws/browser/{sid}", login.addr).into_client_request()?;
    req.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(&format!("tmux-bridge.v1, bearer.{tok}"))?,
    );
    req.headers_mut()
        .insert("origin", HeaderValue::from_str(&login.origin())?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    ws.send(Message::text(r#"{"t":"hello","last_seq":0}"#))
        .await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.contains("\"welcome\"") => return Ok(Ok(ws)),
            Ok(Some(Ok(Message::Close(Some(f))))) => return Ok(Err(u16::from(f.code))),
            Ok(Some(Ok(_))) => {}
            other => bail!("neither welcome nor close: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_held_on_relay_a_count_on_relay_b_until_a_dies() -> Result<()> {
    let Some((pg, nats)) = services().await else {
        return Ok(());
    };
    let data = tempfile::tempdir()?;
    let (pa, pb) = (free_port()?, free_port()?);
    // Three WebSockets per account, the runner's included.
    let cap = ["--max-sockets-per-account", "3"];
    let mut a = start_member_with(pa, data.path(), &pg, &nats, &cap).await?;
    let mut b = start_member_with(pb, data.path(), &pg, &nats, &cap).await?;
    let (auth_a, user, _runner, token) =
        principal(&pg, data.path(), &format!("http://127.0.0.1:{pa}")).await?;
    let auth_b = relay::auth::Auth::open(
        store::Store::connect(&pg).await?,
        data.path(),
        relay::auth::AuthConfig::new(format!("http://127.0.0.1:{pb}")),
    )?;
    let login_a = Login::from_link(&auth_a.login_link(&user).await?).await?;
    let login_b = Login::from_link(&auth_b.login_link(&user).await?).await?;

    // On A: the runner and two browsers, the account's three.
    let mut r = TestRunner::connect(addr(pa), &token, testkit::runner::hello(&[])).await?;
    let idea = format!("sk{}", &relay::auth::codes::new_id()[..16]);
    let sid = r.open(open(1, &idea, "1", "a")).await?.session_id;
    let _a1 = browser(&login_a, &sid)
        .await?
        .map_err(|c| anyhow::anyhow!("A refused {c}"))?;
    let _a2 = browser(&login_a, &sid)
        .await?
        .map_err(|c| anyhow::anyhow!("A refused {c}"))?;

    // B refuses a fourth once A's counts are written (at once, on change:
    // a socket let in meanwhile is closed and the check repeated).
    let started = Instant::now();
    let code = loop {
        match browser(&login_b, &sid).await? {
            Err(code) => break code,
            Ok(mut ws) => {
                let _ = ws.close(None).await;
                if started.elapsed() > Duration::from_secs(5) {
                    bail!("B kept admitting a fourth socket of the account");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(code, 4429, "too many WebSockets for this account");
    println!(
        "B refused the fourth socket {:?} after A held three",
        started.elapsed()
    );

    // A dies without a word: its lease runs out and B admits again.
    let killed = Instant::now();
    a.kill9().await;
    let _b1 = loop {
        match browser(&login_b, &sid).await? {
            Ok(ws) => break ws,
            Err(code) => {
                assert_eq!(code, 4429);
                if killed.elapsed() > relay::auth::shared::SOCKET_LEASE + Duration::from_secs(10) {
                    bail!("B still counts dead relay A's sockets");
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };
    println!(
        "B admitted again {:?} after relay A was killed (lease {:?})",
        killed.elapsed(),
        relay::auth::shared::SOCKET_LEASE
    );
    drop(r);
    b.kill9().await;
    Ok(())
}
