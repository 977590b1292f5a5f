//! Injection, end to end on real tmux (issue 6): hostile idea and slot
//! names (quotes, `;`, `#{}`, `#()`, `$()`, newlines, escapes) and hostile
//! browser input (the same, plus NUL and a bracketed-paste end marker) pass
//! through the real relay and the real runner daemon (`tmux-bridge new` and
//! the relay's create command make the sessions, `tmux-bridge run` serves
//! them) into a private tmux server. Nothing may run: no marker file appears, and the hostile
//! text shows up in the pane literally. Input naming a pane of another
//! session on the same server (issue 10) never reaches that pane.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use relay::auth::LOCAL_USER;
use relay::{Config, Relay, RelayHandle};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

fn marks(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Hostile text: each piece would create a marker file in `m` if tmux (or
/// a shell behind a tmux format) ever interpreted it.
fn hostile(m: &Path, n: &str) -> Vec<String> {
    let m = m.display();
    vec![
        format!("a';run-shell 'touch {m}/{n}1';'"),
        format!("b\";run-shell \"touch {m}/{n}2\";\""),
        format!("c#(touch {m}/{n}3)"),
        format!("d#{{run-shell touch {m}/{n}4}}"),
        format!("e$(touch {m}/{n}5)"),
        format!("f ; run-shell 'touch {m}/{n}6' \\; #(touch {m}/{n}7)"),
    ]
}

async fn relay(dir: &Path) -> RelayHandle {
    let mut config = Config::new("127.0.0.1:0".parse().expect("addr"), dir.join("data"));
    config.database_url = format!("sqlite://{}", dir.join("relay.db").display());
    config.web_dir = dir.join("web");
    config.retention.interval = None;
    Relay::start(config).await.expect("relay starts")
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_names_and_input_never_run_in_tmux() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = dir.path().join("marks");
    std::fs::create_dir_all(&m).expect("marks dir");
    let relay = relay(dir.path()).await;
    let local = relay
        .auth()
        .ensure_local_runner("inj")
        .await
        .expect("local runner");
    let url = relay.public_url().to_owned();
    let tmux = testkit::Tmux::new("inj");
    let socket = tmux.socket.clone();

    // Hostile names: served under a safe session name, or refused; either
    // way nothing runs. Half are made with `tmux-bridge new`, half through
    // the relay's create command; one daemon serves them all.
    let names: Vec<String> = hostile(&m, "n")
        .into_iter()
        .chain(["x\ny".to_owned(), "\u{1b}]2;t\u{7}".to_owned()])
        .collect();
    let runner = Command::new(env!("CARGO_BIN_EXE_tmux-bridge"))
        .args([
            "run",
            "--relay",
            &url,
            "--token",
            &local.runner_token,
            "--tmux-socket",
            &socket,
        ])
        .arg("--data-dir")
        .arg(dir.path().join("bridge-data"))
        .env("HOME", dir.path())
        .env("SHELL", "/bin/sh")
        .env_remove("TMUX")
        .env("TMUX_BRIDGE_CONFIG_DIR", dir.path().join("cfg"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the runner");
    let keep = ChildGuard(runner);
    let cookie = relay
        .auth()
        .start_browser_login(&local.user_id)
        .await
        .expect("login");
    let cookie_pair = format!("{}={cookie}", relay.auth().cookie_name());
    for (i, name) in names.iter().enumerate() {
        let slot = format!("s{i};{name}");
        if i % 2 == 0 {
            let _ = Command::new(env!("CARGO_BIN_EXE_tmux-bridge"))
                .args(["new", name, &slot, "--tmux-socket", &socket])
                .env("HOME", dir.path())
                .env("SHELL", "/bin/sh")
                .env_remove("TMUX")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("tmux-bridge new");
        } else {
            let body = serde_json::json!({ "idea": name, "slot": slot }).to_string();
            // Refused (400) or created; retried while the runner connects.
            for _ in 0..100 {
                let (status, _, _) = testkit::http(
                    relay.local_addr(),
                    "POST",
                    "/api/sessions",
                    &[
                        ("Cookie", &cookie_pair),
                        ("Origin", &url),
                        ("X-Requested-With", "t"),
                        ("Content-Type", "application/json"),
                    ],
                    body.as_bytes(),
                )
                .await
                .expect("POST /api/sessions");
                if status != 503 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    // Every session made is served under a safe name.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut served = None;
    while Instant::now() < deadline {
        let sessions = relay
            .store()
            .sessions_for_user(&local.user_id)
            .await
            .expect("sessions");
        for s in &sessions {
            assert!(
                s.tmux_session
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
                "unsafe tmux session name {:?}",
                s.tmux_session
            );
        }
        if let Some(s) = sessions.iter().find(|s| s.idea == names[0]) {
            served = Some((s.id, s.tmux_session.clone()));
        }
        if served.is_some() && sessions.iter().any(|s| s.idea == names[1]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (session_id, tmux_name) =
        served.expect("at least one hostile name is served under a safe name");
    assert_eq!(
        marks(&m),
        Vec::<String>::new(),
        "a hostile name ran something"
    );

    // Hostile input from a browser, typed without Enter.
    let mut cookie_header = tokio_tungstenite::tungstenite::http::HeaderMap::new();
    cookie_header.insert("cookie", cookie_pair.parse().expect("cookie"));
    let login = relay
        .auth()
        .login_from_headers(&cookie_header)
        .await
        .expect("q")
        .expect("live login");
    assert_eq!(login.user.name, LOCAL_USER);
    let record = relay
        .store()
        .session(session_id)
        .await
        .expect("q")
        .expect("session");
    let token = relay
        .auth()
        .mint_browser_token(&login, &record.runner_id, &session_id.to_string())
        .await
        .expect("token");
    let mut req = format!("ws://{}/api/ws/browser/{session_id}", relay.local_addr())
        .into_client_request()
        .expect("req");
    req.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(&format!("tmux-bridge.v1, bearer.{token}")).expect("hv"),
    );
    req.headers_mut()
        .insert("origin", HeaderValue::from_str(&url).expect("hv"));
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("browser socket");
    ws.send(Message::text(r#"{"t":"hello","last_seq":0}"#))
        .await
        .expect("hello");
    let pane = tmux
        .run(&[
            "list-panes",
            "-t",
            &format!("={tmux_name}"),
            "-F",
            "#{pane_id}",
        ])
        .expect("list-panes")
        .trim()
        .to_owned();
    assert!(pane.starts_with('%'), "pane id {pane:?}");
    // The relay checks input against the session's topology (issue 10):
    // wait until this browser has received it, so no input races it.
    let quoted = format!("\"{pane}\"");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut has_topology = false;
    while !has_topology && Instant::now() < deadline {
        if let Ok(Some(Ok(Message::Binary(b)))) =
            tokio::time::timeout(Duration::from_millis(500), ws.next()).await
            && let Ok(frame) = protocol::wire::Frame::decode(&b)
        {
            has_topology = frame.records.iter().any(|r| {
                matches!(&r.body, protocol::wire::RecordBody::Topology(json)
                    if String::from_utf8_lossy(json).contains(&quoted))
            });
        }
    }
    assert!(has_topology, "the browser never got the session's topology");
    let mut inputs = hostile(&m, "i");
    inputs.push(format!("g\u{0}h\u{1b}[201~i#(touch {}/i8)", m.display()));
    for data in &inputs {
        let msg = serde_json::json!({ "t": "input", "pane": pane, "data": data }).to_string();
        ws.send(Message::text(msg)).await.expect("input");
        // Drain what the relay sends meanwhile.
        let _ = tokio::time::timeout(Duration::from_millis(200), ws.next()).await;
    }
    // The shell's line now holds the text; tmux must show it literally.
    let needle = format!("c#(touch {}/i3)", m.display());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut screen = String::new();
    while Instant::now() < deadline {
        screen = tmux
            .run(&["capture-pane", "-p", "-J", "-t", &pane])
            .unwrap_or_default();
        if screen.contains(&needle) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        screen.contains(&needle),
        "hostile input not typed literally; pane:\n{screen}"
    );
    assert!(screen.contains("run-shell 'touch"), "{screen}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        marks(&m),
        Vec::<String>::new(),
        "hostile input ran something in tmux"
    );
    // Clear the shell's line without running it.
    let ctrl_c = serde_json::json!({ "t": "input", "pane": pane, "data": "\u{3}" }).to_string();
    ws.send(Message::text(ctrl_c)).await.expect("ctrl-c");

    // Issue 10: input naming a pane of another session on the same tmux
    // server (pane ids are server-wide) never reaches it.
    other_sessions_panes_are_out_of_reach(&tmux, &mut ws, &pane, &m).await;
    let _ = ws.close(None).await;
    drop(keep);
    relay.shutdown().await.expect("shutdown");
}

/// Types into a pane of a session the bridge does not serve, through the
/// served session's browser socket, and proves nothing arrived: the victim
/// pane copies every byte it receives to a file, and after the bridge has
/// demonstrably handled the hostile message (a marker typed after it shows
/// in the served pane) a fence typed with tmux's own CLI reaches the file
/// with nothing before it (a pty delivers bytes in order).
async fn other_sessions_panes_are_out_of_reach<S>(
    tmux: &testkit::Tmux,
    ws: &mut S,
    served_pane: &str,
    dir: &Path,
) where
    S: SinkExt<Message> + StreamExt + Unpin,
    <S as futures_util::Sink<Message>>::Error: std::fmt::Debug,
{
    let out = dir.join("victim.out");
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "victim",
        "sh",
        "-c",
        &format!("stty raw -echo; exec cat > '{}'", out.display()),
    ])
    .expect("victim session");
    let victim = tmux.first_pane("victim").expect("victim pane");
    assert_ne!(victim, served_pane);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !out.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(out.exists(), "the victim pane never started");
    for data in ["INJECTED\r", "INJECTED-AGAIN"] {
        let msg = serde_json::json!({ "t": "input", "pane": victim, "data": data }).to_string();
        ws.send(Message::text(msg)).await.expect("input");
    }
    let marker = "handled-after-victim";
    let msg = serde_json::json!({ "t": "input", "pane": served_pane, "data": marker }).to_string();
    ws.send(Message::text(msg)).await.expect("marker");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut screen = String::new();
    while Instant::now() < deadline {
        // Drain what the relay sends meanwhile.
        let _ = tokio::time::timeout(Duration::from_millis(50), ws.next()).await;
        screen = tmux
            .run(&["capture-pane", "-p", "-J", "-t", served_pane])
            .unwrap_or_default();
        if screen.contains(marker) {
            break;
        }
    }
    assert!(
        screen.contains(marker),
        "marker never typed; pane:\n{screen}"
    );
    tmux.run(&["send-keys", "-t", &victim, "-l", "FENCE"])
        .expect("fence");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while Instant::now() < deadline {
        got = std::fs::read(&out).unwrap_or_default();
        if got.ends_with(b"FENCE") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        String::from_utf8_lossy(&got),
        "FENCE",
        "input for another session's pane reached it"
    );
}

/// Kills the runner child when dropped.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
