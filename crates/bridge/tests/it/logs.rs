//! Issue 10: no token, password, pairing code or pane byte appears in the
//! logs at any level. A real relay process and a real runner process run
//! at `trace` (their own log setup, `relay::logs`), a person logs in with a
//! password and a one-time link, pairs the runner with a code, opens the
//! session in a browser, types, sees pane output and changes the password;
//! then both logs are searched for every secret and every pane byte, raw
//! and hex-encoded (a WebSocket library's trace dump is hex).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use testkit::*;

fn workspace_bin(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("no target dir")?;
    let path = dir.join(name);
    if !path.exists() {
        bail!(
            "{} is missing: run `cargo build --workspace` first",
            path.display()
        );
    }
    Ok(path)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn post(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, Vec<(String, String)>, serde_json::Value)> {
    let (status, h, b) = http(addr, "POST", path, headers, body).await?;
    Ok((
        status,
        h,
        serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_10_no_secret_or_pane_byte_reaches_the_logs_at_trace() -> Result<()> {
    let tmux = Tmux::new("logs");
    let name = tmux_cc::naming::session_name("logs", "trace")?
        .as_str()
        .to_owned();
    tmux.new_session(&name, 80, 24)?;
    let dir = tempfile::tempdir()?;
    let relay_dir = dir.path().join("relay");
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let origin = format!("http://{addr}");
    let relay_log = dir.path().join("relay.log");
    let bridge_log = dir.path().join("bridge.log");
    let mut secrets: Vec<String> = Vec::new();

    // A user with a password, made by the relay's CLI.
    let password = "hunter2-PASSWORD-4b1e";
    let new_password = "hunter3-PASSWORD-9d0c";
    secrets.extend([password.to_owned(), new_password.to_owned()]);
    let mut add = tokio::process::Command::new(workspace_bin("tmux-relay")?)
        .args(["user", "add", "ann", "--password-stdin", "--data-dir"])
        .arg(&relay_dir)
        .env_remove("TMUX_RELAY_DATABASE_URL")
        .env("RUST_LOG", "trace")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("add.log"))?)
        .spawn()?;
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = add.stdin.take().context("stdin")?;
        stdin.write_all(format!("{password}\n").as_bytes()).await?;
    }
    if !add.wait().await?.success() {
        bail!("tmux-relay user add failed");
    }
    // A one-time login link, made through the relay's library.
    let link = {
        let store = store::Store::connect(&relay::config::default_database_url(&relay_dir)).await?;
        let auth = relay::auth::Auth::open(
            store.clone(),
            &relay_dir,
            relay::auth::AuthConfig::new(origin.clone()),
        )?;
        let user = store.user_by_name("ann").await?.context("ann")?;
        let link = auth.login_link(&user.id).await?;
        store.close().await;
        link
    };
    secrets.push(link.split_once("code=").context("code")?.1.to_owned());

    let mut relay = tokio::process::Command::new(workspace_bin("tmux-relay")?)
        .args(["serve", "--listen", &addr.to_string(), "--data-dir"])
        .arg(&relay_dir)
        .env("RUST_LOG", "trace")
        .env_remove("TMUX_RELAY_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&relay_log)?)
        .kill_on_drop(true)
        .spawn()?;
    let mut up = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !up {
        bail!("the relay did not start");
    }

    // Password login and the one-time link.
    let form = format!("name=ann&password={}", password.replace('-', "%2D"));
    let (status, headers, _) = post(
        addr,
        "/login",
        &[
            ("Origin", &origin),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        form.as_bytes(),
    )
    .await?;
    assert_eq!(status, 303, "password login");
    let cookie = headers
        .iter()
        .find(|(k, _)| k == "set-cookie")
        .and_then(|(_, v)| v.split(';').next())
        .context("cookie")?
        .to_owned();
    let login = Login::from_link(&link).await?;
    for c in [&cookie, &login.cookie] {
        secrets.push(c.split_once('=').context("cookie value")?.1.to_owned());
    }

    // Pairing: start, approve by code, collect the runner token.
    let (_, _, start) = post(
        addr,
        "/api/pair/start",
        &[("Content-Type", "application/json")],
        br#"{"name":"laptop","host":"box"}"#,
    )
    .await?;
    let code = start["code"].as_str().context("code")?.to_owned();
    let poll = start["pollToken"].as_str().context("poll")?.to_owned();
    secrets.extend([code.clone(), code.replace('-', ""), poll.clone()]);
    let (status, _, _) = post(
        addr,
        "/api/pair/approve",
        &[
            ("Cookie", &cookie),
            ("Origin", &origin),
            ("Content-Type", "application/json"),
        ],
        format!(r#"{{"code":"{code}"}}"#).as_bytes(),
    )
    .await?;
    assert_eq!(status, 200, "approve");
    let bearer = format!("Bearer {poll}");
    let (_, _, body) = http(
        addr,
        "GET",
        &format!("/api/pair/check?code={code}"),
        &[("Authorization", &bearer)],
        b"",
    )
    .await?;
    let check: serde_json::Value = serde_json::from_slice(&body)?;
    let runner_token = check["runnerToken"]
        .as_str()
        .context("runner token")?
        .to_owned();
    secrets.push(runner_token.clone());

    // The runner, at trace.
    let mut bridge = tokio::process::Command::new(env!("CARGO_BIN_EXE_tmux-bridge"))
        .args([
            "connect",
            "--relay",
            &origin,
            "--idea",
            "logs",
            "--slot",
            "trace",
            "--tmux-socket",
            &tmux.socket,
            "--tmux-config",
            "/dev/null",
            "--data-dir",
        ])
        .arg(dir.path().join("bridge"))
        .env("TMUX_BRIDGE_TOKEN", &runner_token)
        .env("TMUX_BRIDGE_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&bridge_log)?)
        .kill_on_drop(true)
        .spawn()?;

    // A browser: types a secret, and sees output that only the pane made.
    let logged_in = testkit::Login {
        addr,
        cookie: cookie.clone(),
    };
    let sid = logged_in.wait_session(&name).await?;
    let pane = tmux.first_pane(&name)?;
    let mut b = Browser::connect(&logged_in, &sid, 0).await?;
    b.until("the prompt", 15, |v| view_has(v, &pane, "$"))
        .await?;
    let typed = "TYPED-SECRET-91c2";
    let shown = "PANE-SECRET-7f3a-OUT";
    b.send_input(
        &pane,
        &format!(": {typed}; printf 'PANE%sOUT\\n' -SECRET-7f3a-\r"),
    )
    .await?;
    b.until("the pane's output", 15, |v| view_has(v, &pane, shown))
        .await?;
    secrets.extend([typed.to_owned(), shown.to_owned()]);
    // A browser token that went through the relay.
    let token = logged_in.browser_token(&sid).await?;
    let mut req = format!("ws://{addr}/api/ws/browser/{sid}").into_client_request()?;
    req.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(&format!("tmux-bridge.v1, bearer.{token}"))?,
    );
    req.headers_mut()
        .insert("origin", HeaderValue::from_str(&origin)?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    ws.send(Message::Text(r#"{"t":"hello","last_seq":0}"#.into()))
        .await?;
    secrets.push(token);

    // A password change (it ends the logins above).
    let body = format!(r#"{{"current":"{password}","new":"{new_password}"}}"#);
    let (status, _, _) = post(
        addr,
        "/api/password",
        &[
            ("Cookie", &cookie),
            ("Origin", &origin),
            ("X-Requested-With", "t"),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
    .await?;
    assert_eq!(status, 204, "password change");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let _ = bridge.start_kill();
    let _ = bridge.wait().await;
    let _ = relay.start_kill();
    let _ = relay.wait().await;

    let relay_text = std::fs::read_to_string(&relay_log)?;
    let bridge_text = std::fs::read_to_string(&bridge_log)?;
    let add_text = std::fs::read_to_string(dir.path().join("add.log"))?;
    println!(
        "log sizes: relay {} bytes, runner {} bytes",
        relay_text.len(),
        bridge_text.len()
    );
    // The logs are real: both sides logged their work at debug and below
    // (no dependency of ours logs at trace except the payload dumps the
    // filter removes: tungstenite's hex dumps of every frame, which held
    // the pane bytes and keystrokes before issue 10).
    assert!(
        relay_text.contains("sqlx::query"),
        "the relay logged at debug"
    );
    assert!(
        relay_text.contains("password changed"),
        "the relay logged the change"
    );
    assert!(
        bridge_text.contains("connected to relay"),
        "the runner logged"
    );
    assert!(bridge_text.contains("DEBUG"), "the runner logged at debug");
    for (who, text) in [
        ("relay", &relay_text),
        ("runner", &bridge_text),
        ("user add", &add_text),
    ] {
        for s in &secrets {
            assert!(s.len() >= 7, "too short to search for: {s}");
            for form in [s.clone(), hex(s.as_bytes())] {
                assert!(
                    !text.contains(&form),
                    "the {who}'s log holds a secret or pane bytes: {s:?} (as {form:?})"
                );
            }
        }
    }
    Ok(())
}
