//! `tmux-bridge pair` end to end (issue 6): the real CLI against a real
//! relay on 127.0.0.1:0. The runner prints a code, a user approves it, the
//! CLI names the approving account, asks before saving, saves 0600
//! credentials (or, when declined, revokes the new runner and saves
//! nothing), and `tmux-bridge connect` finds the saved credentials.
//!
//! Issue 9: the same over https and wss against a relay serving TLS with a
//! certificate from a CA made in the test (`testkit::tls`): trusted with
//! `--ca-file`, refused in plain words without it or for another host
//! name, and cleartext to a non-loopback host refused before any I/O.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::time::Duration;

use relay::auth::CurrentUser;
use relay::{Config, Relay, RelayHandle};

async fn relay(dir: &std::path::Path) -> RelayHandle {
    relay_at(dir, "127.0.0.1:0".parse().expect("addr")).await
}

/// A relay on `addr` over the data and database of `dir` (a restart when
/// they exist).
async fn relay_at(dir: &std::path::Path, addr: std::net::SocketAddr) -> RelayHandle {
    let mut config = Config::new(addr, dir.join("data"));
    config.database_url = format!("sqlite://{}", dir.join("relay.db").display());
    config.web_dir = dir.join("web");
    config.retention.interval = None;
    Relay::start(config).await.expect("relay starts")
}

/// A relay serving TLS with `cert` (issue 9).
async fn tls_relay(dir: &std::path::Path, cert: &testkit::tls::ServerCert) -> RelayHandle {
    let mut config = Config::new("127.0.0.1:0".parse().expect("addr"), dir.join("data"));
    config.database_url = format!("sqlite://{}", dir.join("relay.db").display());
    config.web_dir = dir.join("web");
    config.retention.interval = None;
    config.tls = Some(relay::tls::TlsFiles {
        cert: cert.cert.clone(),
        key: cert.key.clone(),
    });
    Relay::start(config).await.expect("TLS relay starts")
}

struct Run {
    status: std::process::ExitStatus,
    stdout: String,
}

/// Runs `tmux-bridge pair`, approves its code as `user`, answers `answer`
/// to the confirmation.
async fn pair(
    relay: &RelayHandle,
    config_dir: &std::path::Path,
    user: &CurrentUser,
    extra: &[&str],
    answer: &str,
) -> Run {
    let url = relay.public_url().to_owned();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tmux-bridge"))
        .args(["pair", "--relay", &url, "--name", "ci-box"])
        .args(extra)
        .env("TMUX_BRIDGE_CONFIG_DIR", config_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn tmux-bridge pair");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(answer.as_bytes()).expect("answer");
    drop(stdin);
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let t = line.trim();
            if t.len() == 8
                && t.as_bytes()[3] == b'-'
                && t.chars().all(|c| c == '-' || c.is_ascii_alphanumeric())
            {
                let _ = tx.send(t.to_owned());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let code = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
        .await
        .expect("join")
        .expect("the CLI prints a code");
    relay
        .auth()
        .pair_approve(user, IpAddr::V4(Ipv4Addr::LOCALHOST), &code)
        .await
        .expect("approve the printed code");
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    let stdout = reader.join().expect("reader");
    Run { status, stdout }
}

async fn user(relay: &RelayHandle, name: &str) -> CurrentUser {
    let u = relay.auth().add_user(name, "pw").await.expect("add user");
    CurrentUser {
        id: u.id,
        name: u.name,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pair_confirm_saves_credentials() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(dir.path()).await;
    let alice = user(&relay, "alice").await;
    let cfg = dir.path().join("cfg");
    let run = pair(&relay, &cfg, &alice, &[], "y\n").await;
    assert!(run.status.success(), "pair failed:\n{}", run.stdout);
    assert!(
        run.stdout.contains("Approved by the account \"alice\""),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("http://{}/pair", relay.local_addr()))
    );
    let path = cfg.join("credentials.json");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("saved")).expect("json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
            0o600
        );
    }
    let token = saved["runner_token"].as_str().expect("token");
    assert!(!run.stdout.contains(token), "the token is never printed");
    let id = relay
        .auth()
        .authenticate_runner(token)
        .await
        .expect("saved token works");
    assert_eq!(id.user_id, alice.id);
    assert_eq!(saved["runner_id"].as_str(), Some(id.runner_id.as_str()));
    assert_eq!(
        saved["relay_url"].as_str(),
        Some(format!("http://{}", relay.local_addr()).as_str())
    );
    assert_eq!(id.name, "ci-box");

    // A second pairing with --yes replaces the credentials without asking.
    let run = pair(&relay, &cfg, &alice, &["--yes"], "").await;
    assert!(run.status.success(), "{}", run.stdout);
    assert!(!run.stdout.contains("[y/N]"));
    let saved2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("saved")).expect("json");
    assert_ne!(saved2["runner_id"], saved["runner_id"]);
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn pair_declined_saves_nothing_and_revokes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(dir.path()).await;
    let mallory = user(&relay, "mallory").await;
    let cfg = dir.path().join("cfg");
    let run = pair(&relay, &cfg, &mallory, &[], "n\n").await;
    assert!(!run.status.success());
    assert!(
        run.stdout.contains("Approved by the account \"mallory\""),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Not paired"), "{}", run.stdout);
    assert!(
        !cfg.join("credentials.json").exists(),
        "nothing saved when declined"
    );
    assert!(
        relay
            .auth()
            .list_runners(&mallory.id)
            .await
            .expect("list")
            .is_empty(),
        "the declined runner was revoked"
    );
    relay.shutdown().await.expect("shutdown");
}

#[test]
fn pair_reports_an_unreachable_relay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let out = Command::new(env!("CARGO_BIN_EXE_tmux-bridge"))
        .args(["pair", "--relay", &format!("http://127.0.0.1:{port}")])
        .env("TMUX_BRIDGE_CONFIG_DIR", dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("contacting the relay"));
}

fn connect_cmd(config_dir: &std::path::Path, data_dir: &std::path::Path, socket: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tmux-bridge"));
    c.args([
        "connect",
        "--tmux-socket",
        socket,
        "--idea",
        "paired",
        "--slot",
        "one",
    ])
    .arg("--data-dir")
    .arg(data_dir)
    .env("TMUX_BRIDGE_CONFIG_DIR", config_dir)
    .env_remove("TMUX_BRIDGE_RELAY")
    .env_remove("TMUX_BRIDGE_TOKEN")
    .env_remove("TMUX")
    .stdin(Stdio::null());
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn saved_credentials_survive_network_errors_and_die_on_revocation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(dir.path()).await;
    let bob = user(&relay, "bob").await;
    let cfg = dir.path().join("cfg");
    let run = pair(&relay, &cfg, &bob, &["--yes"], "").await;
    assert!(run.status.success(), "{}", run.stdout);
    let creds = cfg.join("credentials.json");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&creds).expect("saved")).expect("json");
    let runner_id = saved["runner_id"].as_str().expect("runner id").to_owned();
    let tmux = testkit::Tmux::new("pair");
    let socket = tmux.socket.clone();

    // The saved credentials are used with no flags: the runner comes online.
    let mut child = connect_cmd(&cfg, &dir.path().join("bridge-data"), &socket)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn connect");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !relay.auth().connections().is_online(&runner_id) {
        assert!(
            std::time::Instant::now() < deadline,
            "runner never came online with saved credentials"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A network error (the relay goes away) keeps the credentials.
    let url = relay.public_url().to_owned();
    relay.shutdown().await.expect("shutdown");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        matches!(child.try_wait(), Ok(None)),
        "connect keeps retrying while the relay is down"
    );
    assert!(creds.exists(), "a network error never deletes credentials");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    assert!(creds.exists());

    // A definite rejection (revoked runner, 401) deletes them.
    let relay = relay_at(
        dir.path(),
        url.trim_start_matches("http://")
            .parse()
            .expect("same addr"),
    )
    .await;
    relay
        .auth()
        .revoke_runner(&bob.id, &runner_id)
        .await
        .expect("revoke");
    let out = tokio::task::spawn_blocking({
        let (cfg, data, socket) = (cfg.clone(), dir.path().join("bridge-data"), socket.clone());
        move || connect_cmd(&cfg, &data, &socket).output()
    })
    .await
    .expect("join")
    .expect("run connect");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("deleted the saved credentials"), "{stderr}");
    assert!(
        !creds.exists(),
        "a definite rejection deletes the credentials"
    );
    relay.shutdown().await.expect("shutdown");
}

/// A TLS relay with a certificate for 127.0.0.1 only, and its CA.
async fn ca_and_tls_relay(dir: &std::path::Path) -> (testkit::tls::TestCa, RelayHandle) {
    let ca = testkit::tls::TestCa::new(&dir.join("pki"), "test-ca").expect("CA");
    let cert = ca.server_cert("relay", &["127.0.0.1"]).expect("cert");
    let relay = tls_relay(dir, &cert).await;
    assert!(relay.public_url().starts_with("https://"));
    (ca, relay)
}

/// `tmux-bridge pair --relay URL EXTRA…` that is expected to fail before
/// printing a code: its exit status and stderr.
async fn pair_fails(url: &str, config_dir: &std::path::Path, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tmux-bridge"))
        .args(["pair", "--relay", url])
        .args(extra)
        .env("TMUX_BRIDGE_CONFIG_DIR", config_dir)
        .env_remove("TMUX_BRIDGE_CA_FILE")
        .stdin(Stdio::null())
        .output()
        .expect("run pair");
    assert!(!out.status.success());
    assert!(
        !config_dir.join("credentials.json").exists(),
        "nothing saved on a failed pairing"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_9_pair_and_connect_over_https_with_a_private_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, relay) = ca_and_tls_relay(dir.path()).await;
    let carol = user(&relay, "carol").await;
    let cfg = dir.path().join("cfg");
    let ca_file = ca.cert_path().to_str().expect("utf-8 path").to_owned();
    let run = pair(&relay, &cfg, &carol, &["--yes", "--ca-file", &ca_file], "").await;
    assert!(
        run.status.success(),
        "pair over https failed:\n{}",
        run.stdout
    );
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cfg.join("credentials.json")).expect("saved"))
            .expect("json");
    assert_eq!(saved["relay_url"].as_str(), Some(relay.public_url()));
    assert_eq!(saved["ca_file"].as_str(), Some(ca_file.as_str()));
    let runner_id = saved["runner_id"].as_str().expect("runner id").to_owned();

    // `connect` with no flags: the saved https URL and CA, over wss.
    let tmux = testkit::Tmux::new("tls");
    let mut child = connect_cmd(&cfg, &dir.path().join("bridge-data"), &tmux.socket)
        .env_remove("TMUX_BRIDGE_CA_FILE")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn connect");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !relay.auth().connections().is_online(&runner_id) {
        assert!(
            std::time::Instant::now() < deadline,
            "runner never came online over wss"
        );
        assert!(matches!(child.try_wait(), Ok(None)), "connect exited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_9_pair_refuses_an_untrusted_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_ca, relay) = ca_and_tls_relay(dir.path()).await;
    let stderr = pair_fails(relay.public_url(), &dir.path().join("cfg"), &[]).await;
    assert!(stderr.contains("not trusted"), "{stderr}");
    assert!(stderr.contains("--ca-file"), "says what to do: {stderr}");
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_9_pair_refuses_a_certificate_for_another_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, relay) = ca_and_tls_relay(dir.path()).await;
    // The certificate names 127.0.0.1, not localhost.
    let url = format!("https://localhost:{}", relay.local_addr().port());
    let ca_file = ca.cert_path().to_str().expect("utf-8 path").to_owned();
    let stderr = pair_fails(&url, &dir.path().join("cfg"), &["--ca-file", &ca_file]).await;
    assert!(
        stderr.contains("not valid for the name localhost"),
        "{stderr}"
    );
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_9_pair_refuses_cleartext_to_another_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No I/O happens: the URL is refused before any connection.
    let stderr = pair_fails("http://relay.invalid:8417", &dir.path().join("cfg"), &[]).await;
    assert!(stderr.contains("cleartext"), "{stderr}");
    assert!(stderr.contains("https://"), "says what to do: {stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_9_runner_websocket_over_wss() {
    use bridge::net::{NetError, TlsOptions, connect_ws};
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, relay) = ca_and_tls_relay(dir.path()).await;
    let local = relay.local_setup("laptop").await.expect("local setup");
    let url = relay.runner_ws_url();
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");
    let trusted = TlsOptions {
        ca_file: Some(ca.cert_path().to_owned()),
        insecure: false,
    };

    // The upgrade succeeds over TLS with the test CA and the runner token.
    let ws = connect_ws(&url, &local.runner_token, &trusted)
        .await
        .expect("wss handshake with the test CA");
    assert!(matches!(
        ws.get_ref(),
        tokio_util::either::Either::Left(tokio_tungstenite::MaybeTlsStream::Rustls(_))
    ));
    drop(ws);

    // A wrong token is a definite 401 over TLS too.
    let err = connect_ws(&url, "not-a-token", &trusted)
        .await
        .expect_err("bad token");
    assert!(
        matches!(err, NetError::Rejected { .. }) && err.is_definite(),
        "{err}"
    );

    // Without the CA: not trusted, in words; not definite (a renewed
    // certificate may fix it), so the runner retries and says why at warn.
    let err = connect_ws(&url, &local.runner_token, &TlsOptions::default())
        .await
        .expect_err("untrusted");
    assert!(matches!(err, NetError::Untrusted { .. }), "{err}");
    assert!(!err.is_definite());

    // --insecure skips verification (tests only).
    let insecure = TlsOptions {
        ca_file: None,
        insecure: true,
    };
    connect_ws(&url, &local.runner_token, &insecure)
        .await
        .expect("--insecure connects");

    // A plain ws:// client on the TLS port gets a TLS error, not a hang.
    let plain = format!("ws://{}/api/runner/ws", relay.local_addr());
    assert!(
        connect_ws(&plain, &local.runner_token, &trusted)
            .await
            .is_err()
    );
    relay.shutdown().await.expect("shutdown");
}

/// A browser of `relay` over https: the login cookie, the same Origin, the
/// CSRF header, trusting the test CA.
struct Page {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

impl Page {
    async fn new(relay: &RelayHandle, user: &CurrentUser, ca: &std::path::Path) -> Page {
        let tls = bridge::net::TlsOptions {
            ca_file: Some(ca.to_owned()),
            insecure: false,
        };
        let config = tls.client_config().expect("TLS config");
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(rustls::ClientConfig::clone(&config))
            .no_proxy()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        let value = relay
            .auth()
            .start_browser_login(&user.id)
            .await
            .expect("login");
        Page {
            http,
            base: relay.public_url().to_owned(),
            cookie: format!("{}={value}", relay.auth().cookie_name()),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("origin", &self.base)
            .header("x-requested-with", "tmux-bridge");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request over https");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// The session named `tmux_session`, if the list has it.
    async fn session(&self, tmux_session: &str) -> Option<serde_json::Value> {
        let (status, list) = self.send(reqwest::Method::GET, "/api/sessions", None).await;
        assert_eq!(status, 200, "{list}");
        list["sessions"]
            .as_array()?
            .iter()
            .find(|s| s["tmux_session"] == tmux_session && s["state"] != "closed")
            .cloned()
    }
}

async fn eventually<F, Fut>(what: &str, secs: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Issue 9 as a user runs it, over TLS with a CA made in the test: pair
/// once with the https relay; start the daemon; a session made from the
/// page shows in `tmux ls`; one made locally with `tmux-bridge new` shows
/// in the page; closing it from the page kills it in tmux; kill -9 of the
/// runner shows it offline within 5 s, and a restart serves every session
/// again.
#[tokio::test(flavor = "multi_thread")]
async fn issue_9_the_daemon_over_tls_as_a_user_runs_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, relay) = ca_and_tls_relay(dir.path()).await;
    let dana = user(&relay, "dana").await;
    let cfg = dir.path().join("cfg");
    let ca_file = ca.cert_path().to_str().expect("utf-8 path").to_owned();
    let run = pair(&relay, &cfg, &dana, &["--yes", "--ca-file", &ca_file], "").await;
    assert!(run.status.success(), "pair over https:\n{}", run.stdout);
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cfg.join("credentials.json")).expect("saved"))
            .expect("json");
    let runner_id = saved["runner_id"].as_str().expect("runner id").to_owned();

    let tmux = testkit::Tmux::new("user9");
    let start = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tmux-bridge"));
        c.args([
            "run",
            "--tmux-socket",
            &tmux.socket,
            "--tmux-config",
            "/dev/null",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("runner-data"))
        .env("TMUX_BRIDGE_CONFIG_DIR", &cfg)
        .env_remove("TMUX_BRIDGE_RELAY")
        .env_remove("TMUX_BRIDGE_TOKEN")
        .env_remove("TMUX_BRIDGE_CA_FILE")
        .env_remove("TMUX")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn run")
    };
    let mut runner = start();
    eventually("the runner online over wss", 30, || async {
        relay.auth().connections().is_online(&runner_id)
    })
    .await;
    let page = Page::new(&relay, &dana, ca.cert_path()).await;

    // New terminal from the page: the runner makes it in tmux.
    let (status, body) = page
        .send(
            reqwest::Method::POST,
            "/api/sessions",
            Some(serde_json::json!({"idea": "tls", "slot": "one"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["session"]["state"], "live", "{body}");
    let ls = tmux
        .run(&["list-sessions", "-F", "#{session_name}"])
        .expect("tmux ls");
    assert!(ls.lines().any(|l| l == "tb_tls__one"), "{ls}");

    // Made locally: in the page within a few seconds.
    let out = Command::new(env!("CARGO_BIN_EXE_tmux-bridge"))
        .args([
            "new",
            "tls",
            "two",
            "--tmux-socket",
            &tmux.socket,
            "--tmux-config",
            "/dev/null",
        ])
        .env_remove("TMUX")
        .output()
        .expect("new");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("tb_tls__two in the page", 10, || async {
        page.session("tb_tls__two")
            .await
            .is_some_and(|s| s["state"] == "live")
    })
    .await;

    // Closed from the page: killed in tmux.
    let two = page.session("tb_tls__two").await.expect("listed");
    let id = two["id"].as_str().expect("id").to_owned();
    let (status, body) = page
        .send(
            reqwest::Method::DELETE,
            &format!("/api/sessions/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let ls = tmux
        .run(&["list-sessions", "-F", "#{session_name}"])
        .expect("tmux ls");
    assert!(!ls.lines().any(|l| l == "tb_tls__two"), "{ls}");

    // kill -9 of the runner: offline within 5 s, in the page too.
    let one_before = page.session("tb_tls__one").await.expect("listed");
    runner.kill().expect("kill -9");
    let _ = runner.wait();
    let killed = std::time::Instant::now();
    eventually("the runner offline", 5, || async {
        !relay.auth().connections().is_online(&runner_id)
            && page
                .session("tb_tls__one")
                .await
                .is_some_and(|s| s["runner_online"] == false)
    })
    .await;
    println!("offline {:?} after kill -9", killed.elapsed());

    // Restarted: the same session (same id and instance) is live again.
    let mut runner = start();
    eventually("tb_tls__one live again", 30, || async {
        page.session("tb_tls__one")
            .await
            .is_some_and(|s| s["state"] == "live" && s["id"] == one_before["id"])
    })
    .await;
    let _ = Command::new("kill")
        .args(["-TERM", &runner.id().to_string()])
        .status();
    let _ = tokio::task::spawn_blocking(move || runner.wait()).await;
    relay.shutdown().await.expect("shutdown");
}
