//! Issue 10, the attacks that got through, each reproduced against a real
//! relay on loopback (SQLite, and PostgreSQL when `TEST_DATABASE_URL` is
//! set): replayed browser tokens, logout that ended nothing, unbounded
//! WebSockets, slow headers and bodies, the Origin check on every
//! state-changing request, cookie flags on https, the data dir's
//! permissions and secrets in trace-level logs. (The pairing oracle is in
//! `tests/pairing.rs`, the decoder bombs in the protocol crate.)

use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use relay::auth::SocketCaps;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::*;
use crate::principal::*;

/// A browser that said hello and read its welcome.
async fn viewer(relay: &TestRelay, sid: &str, token: &str) -> Ws {
    BrowserClient::connect(relay.addr(), sid, token, &relay.origin(), 0)
        .await
        .ws
}

/// Reads until a binary message containing `needle` arrives; panics on a
/// close.
async fn expect_output(ws: &mut Ws, needle: &[u8]) {
    loop {
        let msg = tokio::time::timeout(STEP, ws.next())
            .await
            .expect("output in time")
            .expect("socket open")
            .expect("socket ok");
        match msg {
            Message::Binary(b) if b.windows(needle.len()).any(|w| w == needle) => return,
            Message::Close(c) => panic!("closed instead: {c:?}"),
            _ => {}
        }
    }
}

/// One batch of pane output `text` at `seq`.
fn output(seq: u64, text: &[u8]) -> bytes::Bytes {
    use protocol::wire::{Frame, Record, RecordBody};
    Frame::batch(vec![Record {
        time: 0,
        seq,
        body: RecordBody::Output {
            pane: tmux_cc::PaneId(0),
            bytes: bytes::Bytes::copy_from_slice(text),
        },
    }])
    .expect("batch")
    .encode(false)
}

// ---- 10.3: browser tokens are single use -----------------------------------

/// One minted token opened 1,500 WebSockets and could be replayed from
/// another address. Now its jti is consumed when its socket opens, in the
/// database: a copy is refused (401) from any address and by any relay
/// process sharing the database.
#[tokio::test]
async fn issue_10_browser_token_opens_one_socket_once() {
    for db in databases() {
        let relay = TestRelay::start(&db).await;
        let p = new_principal(&relay).await;
        let r = RunnerClient::connect(relay.addr(), &p.runner_token, &hello(&unique("idea"))).await;
        let tok = browser_token(&relay, &p, &r.session_id);
        let _first = viewer(&relay, &r.session_id, &tok).await;
        assert_eq!(
            browser_socket(relay.addr(), &r.session_id, &tok, &relay.origin())
                .await
                .err(),
            Some(401),
            "{db:?}: the same token again"
        );
        let elsewhere: IpAddr = "127.0.0.23".parse().expect("ip");
        let stream = tcp_from(elsewhere, relay.addr()).await;
        assert_eq!(
            browser_socket_over(stream, relay.addr(), &r.session_id, &tok, &relay.origin())
                .await
                .err(),
            Some(401),
            "{db:?}: replayed from another address"
        );

        // A second relay process on the same database and secret.
        let twin = TestRelay::start_with(&db, |c| {
            c.database_url = relay.config.database_url.clone();
            c.data_dir = relay.config.data_dir.clone();
        })
        .await;
        assert_eq!(
            browser_socket(twin.addr(), &r.session_id, &tok, &twin.origin())
                .await
                .err(),
            Some(401),
            "{db:?}: a token used on one relay is used on all"
        );
        let fresh = browser_token(&relay, &p, &r.session_id);
        assert!(
            browser_socket(twin.addr(), &r.session_id, &fresh, &twin.origin())
                .await
                .is_ok(),
            "{db:?}: a fresh token works on the twin"
        );
        assert_eq!(
            browser_socket(relay.addr(), &r.session_id, &fresh, &relay.origin())
                .await
                .err(),
            Some(401),
            "{db:?}: and then not on the first relay"
        );
    }
}

// ---- 10.4: logout ends what is open ---------------------------------------

/// The viewer kept receiving output after logout, and tokens minted before
/// it still opened sockets. Now logout closes that login's sockets (4401),
/// refuses its tokens, and leaves the account's other logins alone; "log
/// out everywhere" ends those too.
#[tokio::test]
async fn issue_10_logout_closes_the_logins_sockets_and_tokens() {
    for db in databases() {
        let relay = TestRelay::start(&db).await;
        let p = new_principal(&relay).await;
        let mut r =
            RunnerClient::connect(relay.addr(), &p.runner_token, &hello(&unique("idea"))).await;
        let sid = r.session_id.clone();
        let (other_login, other_cookie) = new_login(&relay, &p.user_id).await;
        let mut mine = viewer(&relay, &sid, &browser_token(&relay, &p, &sid)).await;
        let mut other = viewer(
            &relay,
            &sid,
            &browser_token_under(&relay, &p, &other_login, &sid),
        )
        .await;
        let unused = browser_token(&relay, &p, &sid);
        r.send(output(1, b"before-logout")).await;
        expect_output(&mut mine, b"before-logout").await;
        expect_output(&mut other, b"before-logout").await;

        let (status, headers, _) = http(
            relay.addr(),
            "POST",
            "/logout",
            &[("cookie", &p.cookie), ("origin", &relay.origin())],
        )
        .await;
        assert_eq!(status, 303, "{db:?}");
        assert!(
            header_value(&headers, "set-cookie").is_some_and(|c| c.contains("Max-Age=0")),
            "logout clears the cookie"
        );
        assert_eq!(
            wait_close(&mut mine).await.map(|c| c.0),
            Some(4401),
            "{db:?}: the logged-out login's socket is closed"
        );
        assert_eq!(
            browser_socket(relay.addr(), &sid, &unused, &relay.origin())
                .await
                .err(),
            Some(401),
            "{db:?}: a token minted before logout opens nothing"
        );
        let (status, _, _) = http(relay.addr(), "GET", "/api/me", &[("cookie", &p.cookie)]).await;
        assert_eq!(status, 401);
        r.send(output(2, b"after-logout")).await;
        expect_output(&mut other, b"after-logout").await;

        let (status, _, _) = http(
            relay.addr(),
            "POST",
            "/logout/everywhere",
            &[("cookie", &other_cookie), ("origin", &relay.origin())],
        )
        .await;
        assert_eq!(status, 303);
        assert_eq!(wait_close(&mut other).await.map(|c| c.0), Some(4401));
        let (status, _, _) =
            http(relay.addr(), "GET", "/api/me", &[("cookie", &other_cookie)]).await;
        assert_eq!(status, 401, "{db:?}: every login of the account ended");
    }
}

/// A password change ends every login of the account and closes their
/// sockets, through the API, the page's form, and `tmux-relay user
/// passwd` (a separate process: the running relay sees the ended login in
/// the store at its next keepalive tick).
#[tokio::test]
async fn issue_10_password_change_logs_out_everywhere() {
    for db in databases() {
        let relay = TestRelay::start_with(&db, |c| {
            c.keepalive = Duration::from_millis(200);
        })
        .await;
        let auth = relay.handle().auth();
        let name = unique("pw");
        let user = auth.add_user(&name, "first pw").await.expect("user");
        let q = principal_for(&relay, &user.id).await;
        let r = RunnerClient::connect(relay.addr(), &q.runner_token, &hello(&unique("idea"))).await;
        let sid = r.session_id.clone();
        let (l2, _) = new_login(&relay, &q.user_id).await;
        let mut s1 = viewer(&relay, &sid, &browser_token(&relay, &q, &sid)).await;
        let mut s2 = viewer(&relay, &sid, &browser_token_under(&relay, &q, &l2, &sid)).await;
        let origin = relay.origin();

        // Wrong current password: 401, nothing ends.
        let h = [
            ("cookie", q.cookie.as_str()),
            ("origin", origin.as_str()),
            ("x-requested-with", "t"),
            ("content-type", "application/json"),
        ];
        let (status, _, _) = http_with_body(
            relay.addr(),
            "POST",
            "/api/password",
            &h,
            br#"{"current":"nope","new":"second pw"}"#,
        )
        .await;
        assert_eq!(status, 401);
        let (status, headers, _) = http_with_body(
            relay.addr(),
            "POST",
            "/api/password",
            &h,
            br#"{"current":"first pw","new":"second pw"}"#,
        )
        .await;
        assert_eq!(status, 204, "{db:?}");
        assert_eq!(wait_close(&mut s1).await.map(|c| c.0), Some(4401));
        assert_eq!(wait_close(&mut s2).await.map(|c| c.0), Some(4401));
        let (status, _, _) = http(relay.addr(), "GET", "/api/me", &[("cookie", &q.cookie)]).await;
        assert_eq!(status, 401, "the old cookie is dead");
        let fresh = header_value(&headers, "set-cookie")
            .and_then(|c| c.split(';').next())
            .expect("a new cookie for the caller")
            .to_owned();
        let (status, _, _) = http(relay.addr(), "GET", "/api/me", &[("cookie", &fresh)]).await;
        assert_eq!(status, 200, "the caller stays logged in");

        // The page's form.
        let form = b"current=second+pw&new=third+pw&again=third+pw";
        let (status, headers, body) = http_with_body(
            relay.addr(),
            "POST",
            "/password",
            &[
                ("cookie", &fresh),
                ("origin", &origin),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            form,
        )
        .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert!(String::from_utf8_lossy(&body).contains("Password changed"));
        let fresh = header_value(&headers, "set-cookie")
            .and_then(|c| c.split(';').next())
            .expect("cookie")
            .to_owned();

        // `tmux-relay user passwd` from another process.
        let (l3, _) = new_login(&relay, &q.user_id).await;
        let mut s3 = viewer(&relay, &sid, &browser_token_under(&relay, &q, &l3, &sid)).await;
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tmux-relay"));
        cmd.args([
            "user",
            "passwd",
            &name,
            "--password-stdin",
            "--database-url",
        ])
        .arg(&relay.config.database_url)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .env("RUST_LOG", "warn");
        let mut child = cmd.spawn().expect("tmux-relay user passwd");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"fourth pw\n")
            .await
            .expect("password");
        let out = child.wait_with_output().await.expect("passwd runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(wait_close(&mut s3).await.map(|c| c.0), Some(4401));
        let (status, _, _) = http(relay.addr(), "GET", "/api/me", &[("cookie", &fresh)]).await;
        assert_eq!(status, 401);
        assert!(
            auth.login_password(&name, "fourth pw", "10.9.9.9".parse().expect("ip"))
                .await
                .is_ok()
        );
    }
}

/// A principal (runner, token, login) for an existing user.
async fn principal_for(relay: &TestRelay, user_id: &str) -> Principal {
    use store::accounts::RunnerRecord;
    let runner_id = unique("runner");
    let jti = unique("jti");
    relay
        .handle()
        .store()
        .create_runner(&RunnerRecord {
            id: runner_id.clone(),
            user_id: user_id.to_owned(),
            name: "test".into(),
            host: "test-host".into(),
            embedded: false,
            token_jti: jti.clone(),
            created_at: now() * 1000,
            last_seen_at: None,
            revoked_at: None,
        })
        .await
        .expect("runner");
    let runner_token = keys(relay)
        .mint_runner(user_id, &runner_id, &jti, now(), 3600)
        .expect("mint");
    let (login_id, cookie) = new_login(relay, user_id).await;
    Principal {
        user_id: user_id.to_owned(),
        runner_id,
        jti,
        runner_token,
        login_id,
        cookie,
    }
}

// ---- 10.5: caps on concurrent WebSockets ------------------------------------

/// What a browser socket's first answer to `hello` is: `Ok` for a
/// welcome, `Err(code)` for a close.
async fn hello_answer(ws: &mut Ws) -> Result<(), u16> {
    ws.send(Message::Text(r#"{"t":"hello","last_seq":0}"#.into()))
        .await
        .ok();
    loop {
        let msg = tokio::time::timeout(STEP, ws.next())
            .await
            .expect("answer in time");
        match msg {
            Some(Ok(Message::Text(t))) if t.contains("welcome") => return Ok(()),
            Some(Ok(Message::Close(Some(c)))) => return Err(u16::from(c.code)),
            Some(Ok(_)) => continue,
            other => panic!("socket ended without a close frame: {other:?}"),
        }
    }
}

/// 1,500 sockets from one account added 139–196 MiB to the relay. Now the
/// account's 257th socket, and every one after it, is closed with 4429
/// (the default cap is 256), and closing one frees a slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_10_one_account_cannot_open_1500_sockets() {
    let relay = TestRelay::start(&Db::Sqlite).await;
    let p = new_principal(&relay).await;
    let r = RunnerClient::connect(relay.addr(), &p.runner_token, &hello(&unique("idea"))).await;
    let cap = SocketCaps::default().per_account;
    let keys = keys(&relay);
    let rss_before = rss_kib();
    let mut open = Vec::new();
    let mut refused = 0;
    for _ in 0..1500 {
        let tok = keys
            .mint_browser(
                &p.user_id,
                &p.runner_id,
                &r.session_id,
                &p.login_id,
                &unique("j"),
                now(),
                300,
            )
            .expect("mint");
        let mut ws = browser_socket(relay.addr(), &r.session_id, &tok, &relay.origin())
            .await
            .expect("upgrade (a refused socket is closed after it)");
        match hello_answer(&mut ws).await {
            Ok(()) => open.push(ws),
            Err(code) => {
                assert_eq!(code, 4429);
                refused += 1;
            }
        }
    }
    let rss_after = rss_kib();
    println!(
        "1500 attempts: {} open, {refused} refused; relay process RSS {} KiB -> {} KiB",
        open.len(),
        rss_before,
        rss_after
    );
    // The runner's own socket counts against the account's cap too.
    assert_eq!(open.len(), cap - 1);
    assert_eq!(refused, 1500 - (cap - 1));
    assert_eq!(relay.handle().auth().sockets().of_account(&p.user_id), cap);
    // Closing one frees its slot.
    let mut one = open.pop().expect("one");
    one.close(None).await.expect("close");
    while tokio::time::timeout(STEP, one.next())
        .await
        .expect("closed in time")
        .is_some()
    {}
    let deadline = Instant::now() + STEP;
    while relay.handle().auth().sockets().of_account(&p.user_id) == cap {
        assert!(Instant::now() < deadline, "slot freed in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tok = browser_token(&relay, &p, &r.session_id);
    let mut ws = browser_socket(relay.addr(), &r.session_id, &tok, &relay.origin())
        .await
        .expect("upgrade");
    assert_eq!(hello_answer(&mut ws).await, Ok(()));
}

/// This process's resident set (the test and the relay share it), KiB.
fn rss_kib() -> u64 {
    testkit::procfs::status_kb("self", "VmRSS").unwrap_or(0)
}

/// The per-address cap (4429) counts every account from one address; the
/// relay-wide cap answers 1013 (try again later).
#[tokio::test]
async fn issue_10_address_and_global_caps_close_with_their_codes() {
    let relay = TestRelay::start_with(&Db::Sqlite, |c| {
        c.limits.sockets = SocketCaps {
            per_account: 100,
            per_addr: 3,
            // Five browsers and the two runners' sockets.
            global: 7,
        };
    })
    .await;
    let a = new_principal(&relay).await;
    let b = new_principal(&relay).await;
    let ra = RunnerClient::connect(relay.addr(), &a.runner_token, &hello(&unique("idea"))).await;
    let rb = RunnerClient::connect(relay.addr(), &b.runner_token, &hello(&unique("idea"))).await;
    let from = |last: u8| -> IpAddr { format!("127.0.0.{last}").parse().expect("ip") };
    let mut open = Vec::new();
    let attempt = |p: &Principal, sid: &str, ip: IpAddr| {
        let tok = browser_token(&relay, p, sid);
        let sid = sid.to_owned();
        let (addr, origin) = (relay.addr(), relay.origin());
        async move {
            let stream = tcp_from(ip, addr).await;
            let mut ws = browser_socket_over(stream, addr, &sid, &tok, &origin)
                .await
                .expect("upgrade");
            let answer = hello_answer(&mut ws).await;
            (ws, answer)
        }
    };
    for (p, sid) in [
        (&a, &ra.session_id),
        (&b, &rb.session_id),
        (&a, &ra.session_id),
    ] {
        let (ws, answer) = attempt(p, sid, from(31)).await;
        assert_eq!(answer, Ok(()));
        open.push(ws);
    }
    let (_, answer) = attempt(&b, &rb.session_id, from(31)).await;
    assert_eq!(
        answer,
        Err(4429),
        "the address's fourth socket, another account"
    );
    for (p, sid) in [(&b, &rb.session_id), (&a, &ra.session_id)] {
        let (ws, answer) = attempt(p, sid, from(32)).await;
        assert_eq!(answer, Ok(()), "another address");
        open.push(ws);
    }
    let (_, answer) = attempt(&b, &rb.session_id, from(33)).await;
    assert_eq!(answer, Err(1013), "the relay's sixth socket");
}

// ---- 10.5: header, body and idle timeouts -----------------------------------

/// Whether the server closed `stream` (EOF or reset) before `deadline`,
/// while a writer task dribbles `bytes` one at a time every `every`.
async fn cut_while_dribbling(
    stream: TcpStream,
    prefix: &[u8],
    bytes: Vec<u8>,
    every: Duration,
) -> (Vec<u8>, usize) {
    let (mut rd, mut wr) = stream.into_split();
    wr.write_all(prefix).await.expect("prefix");
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = sent.clone();
    let writer = tokio::spawn(async move {
        for b in bytes {
            tokio::time::sleep(every).await;
            if wr.write_all(&[b]).await.is_err() {
                return;
            }
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), rd.read_to_end(&mut got))
        .await
        .expect("the relay cuts the connection");
    writer.abort();
    (got, sent.load(std::sync::atomic::Ordering::Relaxed))
}

/// A request sending one header byte every 5 s, and a POST body at one
/// byte per second, were both still open after 70 s. Now hyper's header
/// timeout cuts the first and tower-http's request timeout answers the
/// second with 408, long before either finishes; an idle keep-alive
/// connection is closed too.
#[tokio::test]
async fn issue_10_slow_headers_slow_bodies_and_idle_connections_are_cut() {
    let relay = TestRelay::start_with(&Db::Sqlite, |c| {
        c.limits.header_read_timeout = Duration::from_secs(3);
        c.limits.request_timeout = Duration::from_secs(3);
        c.limits.body_idle_timeout = Duration::from_secs(3);
    })
    .await;
    let addr = relay.addr();

    // Headers, one byte every 5 s: 60 bytes would take 5 minutes.
    let header = format!("host: {addr}\r\nx-slow: {}\r\n\r\n", "a".repeat(30)).into_bytes();
    let total = header.len();
    let t0 = Instant::now();
    let (got, sent) = cut_while_dribbling(
        TcpStream::connect(addr).await.expect("connect"),
        b"GET /api/me HTTP/1.1\r\n",
        header,
        Duration::from_secs(5),
    )
    .await;
    println!("slow headers cut after {:?}, {sent} bytes", t0.elapsed());
    assert!(sent < total, "cut before the header was complete");
    assert!(
        !String::from_utf8_lossy(&got).starts_with("HTTP/1.1 2"),
        "never served"
    );

    // A body at one byte per second: 200 bytes would take 200 s.
    let body = vec![b'a'; 200];
    let prefix = format!(
        "POST /login HTTP/1.1\r\nhost: {addr}\r\norigin: http://{addr}\r\n\
         content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let t0 = Instant::now();
    let (got, sent) = cut_while_dribbling(
        TcpStream::connect(addr).await.expect("connect"),
        prefix.as_bytes(),
        body,
        Duration::from_secs(1),
    )
    .await;
    println!("slow body cut after {:?}, {sent} bytes", t0.elapsed());
    assert!(sent < 200, "cut before the body was complete");
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&got)
    );

    // An idle keep-alive connection after one request.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET /api/me HTTP/1.1\r\nhost: {addr}\r\n\r\n").as_bytes())
        .await
        .expect("request");
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut got))
        .await
        .expect("idle connection closed")
        .ok();
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 401"));
}

/// The defaults are the documented ones (protocol.md §6).
#[test]
fn issue_10_default_limits_are_documented() {
    let l = relay::Limits::default();
    assert_eq!(l.header_read_timeout, Duration::from_secs(10));
    assert_eq!(l.request_timeout, Duration::from_secs(30));
    assert_eq!(l.body_idle_timeout, Duration::from_secs(10));
    assert_eq!(
        (l.sockets.per_account, l.sockets.per_addr, l.sockets.global),
        (256, 512, 10_000)
    );
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/protocol.md"
    ))
    .expect("protocol.md");
    for needle in [
        "256", "512", "10,000", "4429", "1013", "4401", "4408", "1007",
    ] {
        assert!(doc.contains(needle), "protocol.md states {needle}");
    }
}

/// The caps are operators' flags (docs/deploy.md): `serve --help` names
/// them with their environment variables and defaults, and a cap of 0
/// (which would refuse every socket) is refused with a clear error.
#[test]
fn issue_10_socket_caps_are_flags() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_tmux-relay"))
        .args(["serve", "--help"])
        .output()
        .expect("serve --help");
    let text = String::from_utf8_lossy(&help.stdout);
    for (flag, env, default) in [
        (
            "--max-sockets-per-account",
            "TMUX_RELAY_MAX_SOCKETS_PER_ACCOUNT",
            "256",
        ),
        (
            "--max-sockets-per-address",
            "TMUX_RELAY_MAX_SOCKETS_PER_ADDRESS",
            "512",
        ),
        ("--max-sockets ", "TMUX_RELAY_MAX_SOCKETS=", "10000"),
    ] {
        let line = text
            .lines()
            .position(|l| l.contains(flag))
            .unwrap_or_else(|| panic!("{flag} in serve --help:\n{text}"));
        // The flag's entry: its line and the ones before the next flag.
        let entry: String = text
            .lines()
            .skip(line)
            .enumerate()
            .take_while(|(i, l)| *i == 0 || !l.trim_start().starts_with('-'))
            .map(|(_, l)| l)
            .collect();
        assert!(entry.contains(env), "{flag} names {env}: {entry}");
        assert!(
            entry.contains(&format!("default: {default}")),
            "{flag} defaults to {default}: {entry}"
        );
    }
    let zero = std::process::Command::new(env!("CARGO_BIN_EXE_tmux-relay"))
        .args(["serve", "--max-sockets-per-address", "0"])
        .output()
        .expect("serve with a zero cap");
    assert!(!zero.status.success());
    assert!(
        String::from_utf8_lossy(&zero.stderr).contains("must be at least 1"),
        "{}",
        String::from_utf8_lossy(&zero.stderr)
    );
}

// ---- also: Origin on every state-changing request ---------------------------

/// Every state-changing request a cookie can make is refused (403) from
/// another origin, and from no origin unless the browser says
/// `Sec-Fetch-Site: same-origin`; the browser WebSocket too. Nothing it
/// asked for happens. New endpoints join this list.
#[tokio::test]
async fn issue_10_origin_is_checked_on_every_state_changing_request() {
    let relay = TestRelay::start(&Db::Sqlite).await;
    let p = new_principal(&relay).await;
    let r = RunnerClient::connect(relay.addr(), &p.runner_token, &hello(&unique("idea"))).await;
    let sid = r.session_id.clone();
    let name = unique("o");
    relay
        .handle()
        .auth()
        .add_user(&name, "pw pw")
        .await
        .expect("user");
    let form = "application/x-www-form-urlencoded";
    let json = "application/json";
    let token_path = format!("/api/sessions/{sid}/token");
    let runner_delete = format!("/api/runners/{}", p.runner_id);
    let runner_revoke = format!("/runners/{}/revoke", p.runner_id);
    let login_body = format!("name={name}&password=pw+pw");
    let cases: Vec<(&str, &str, &str, &[u8])> = vec![
        ("POST", "/login", form, login_body.as_bytes()),
        ("POST", "/logout", form, b""),
        ("POST", "/logout/everywhere", form, b""),
        ("POST", "/password", form, b"current=x&new=y&again=y"),
        (
            "POST",
            "/api/password",
            json,
            br#"{"current":"x","new":"y"}"#,
        ),
        ("POST", "/pair", form, b"code=ABC-DEFG"),
        ("POST", "/api/pair/approve", json, br#"{"code":"ABC-DEFG"}"#),
        ("POST", "/api/pair/preview", json, br#"{"code":"ABC-DEFG"}"#),
        ("POST", &token_path, json, b""),
        ("DELETE", &runner_delete, json, b""),
        ("POST", &runner_revoke, form, b""),
    ];
    for (method, path, ctype, body) in &cases {
        for bad in [
            vec![("origin", "http://evil.example")],
            vec![("origin", "null")],
            vec![("sec-fetch-site", "cross-site")],
            vec![],
        ] {
            let mut h: Vec<(&str, &str)> = vec![
                ("cookie", &p.cookie),
                ("content-type", ctype),
                ("x-requested-with", "tmux-bridge"),
            ];
            h.extend(bad.iter().copied());
            let (status, _, _) = http_with_body(relay.addr(), method, path, &h, body).await;
            assert_eq!(status, 403, "{method} {path} with {bad:?}");
        }
    }
    // Nothing happened: still logged in, runner not revoked.
    let (status, _, _) = http(relay.addr(), "GET", "/api/me", &[("cookie", &p.cookie)]).await;
    assert_eq!(status, 200);
    assert!(
        relay
            .handle()
            .auth()
            .owned_runner(&p.user_id, &p.runner_id)
            .await
            .is_ok()
    );
    // The WebSocket upgrade.
    let tok = browser_token(&relay, &p, &sid);
    for bad in [
        "http://evil.example",
        "null",
        &format!("{}.evil", relay.origin()),
    ] {
        assert_eq!(
            browser_socket(relay.addr(), &sid, &tok, bad).await.err(),
            Some(403),
            "{bad}"
        );
    }
    assert!(
        browser_socket(relay.addr(), &sid, &tok, &relay.origin())
            .await
            .is_ok()
    );
}

// ---- also: cookie flags on https ---------------------------------------------

/// Over https the login cookie is `__Host-tb_session` with `Secure;
/// HttpOnly; SameSite=Strict; Path=/` and no `Domain`, and logout clears it
/// with the same flags; over plain http it is `tb_session` without
/// `Secure` (a browser would drop a Secure cookie there).
#[tokio::test]
async fn issue_10_cookies_on_https_are_secure_and_host_prefixed() {
    for (public, secure) in [("https://relay.test:8443", true), ("", false)] {
        let relay = TestRelay::start_with(&Db::Sqlite, |c| {
            if !public.is_empty() {
                c.public_url = Some(public.to_owned());
            }
        })
        .await;
        let origin = if secure {
            public.to_owned()
        } else {
            relay.origin()
        };
        let name = unique("c");
        relay
            .handle()
            .auth()
            .add_user(&name, "pw pw")
            .await
            .expect("user");
        let (status, headers, _) = http_with_body(
            relay.addr(),
            "POST",
            "/login",
            &[
                ("origin", &origin),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            format!("name={name}&password=pw+pw").as_bytes(),
        )
        .await;
        assert_eq!(status, 303);
        let set = header_value(&headers, "set-cookie")
            .expect("cookie")
            .to_owned();
        let cookie = set.split(';').next().expect("pair").to_owned();
        let attrs: Vec<String> = set
            .split(';')
            .skip(1)
            .map(|a| a.trim().to_ascii_lowercase())
            .collect();
        for a in ["httponly", "samesite=strict", "path=/"] {
            assert!(attrs.iter().any(|x| x == a), "{set}");
        }
        assert!(!attrs.iter().any(|x| x.starts_with("domain")), "{set}");
        assert_eq!(attrs.iter().any(|x| x == "secure"), secure, "{set}");
        assert_eq!(cookie.starts_with("__Host-tb_session="), secure, "{set}");
        let (_, headers, _) = http(
            relay.addr(),
            "POST",
            "/logout",
            &[("cookie", &cookie), ("origin", &origin)],
        )
        .await;
        let clear = header_value(&headers, "set-cookie").expect("clearing cookie");
        assert!(clear.contains("Max-Age=0"));
        assert_eq!(clear.contains("; Secure"), secure, "{clear}");
    }
}

// ---- 10.7: the data dir and the database are the owner's -------------------

#[cfg(unix)]
fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

/// The SQLite database (transcripts, password hashes) was readable by every
/// user of the machine, and the data dir was 0700 only when the relay
/// created it. Now the data dir is 0700 and the database files 0600
/// whoever creates them: the relay, or `tmux-relay user add` before it;
/// an existing data dir open to others is narrowed.
#[cfg(unix)]
#[tokio::test]
async fn issue_10_data_dir_and_database_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    // The relay creates everything.
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let mut config = relay::Config::new("127.0.0.1:0".parse().expect("addr"), data.clone());
    config.web_dir = web_dir_with_index(tmp.path());
    config.retention.interval = None;
    let handle = relay::Relay::start(config.clone()).await.expect("start");
    handle
        .auth()
        .add_user(&unique("m"), "pw pw")
        .await
        .expect("a write");
    assert_eq!(mode(&data), 0o700);
    for f in [
        "tmux-relay.db",
        "tmux-relay.db-wal",
        "tmux-relay.db-shm",
        "auth-secret",
    ] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
    handle.shutdown().await.expect("stop");

    // `tmux-relay user add` creates them first, under umask 022.
    let data2 = tmp.path().join("data2");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tmux-relay"))
        .args(["user", "add", "admin", "--password-stdin", "--data-dir"])
        .arg(&data2)
        .env_remove("TMUX_RELAY_DATABASE_URL")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("user add");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"pw pw\n")
        .await
        .expect("write");
    let out = child.wait_with_output().await.expect("user add runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&data2), 0o700);
    assert_eq!(mode(&data2.join("tmux-relay.db")), 0o600);

    // A data dir someone made 0755 is narrowed when the relay starts.
    std::fs::set_permissions(&data2, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut config2 = config.clone();
    config2.data_dir = data2.clone();
    config2.database_url = relay::config::default_database_url(&data2);
    let handle = relay::Relay::start(config2).await.expect("start");
    assert_eq!(mode(&data2), 0o700);
    handle.shutdown().await.expect("stop");
}
