//! Serving one tmux session: make sure it exists (named by
//! `tmux_cc::naming`), attach a control client, and run the core and the
//! uplink until shutdown. If the control client exits (the session was
//! killed, the server restarted), it is recreated and attached again.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use protocol::control::{PROTOCOL_VERSION, RunnerHello};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::core::{Core, CoreConfig};
use crate::tmux::{TmuxServer, spawn_control_client};
use crate::uplink::{self, UplinkConfig};

/// Everything needed to serve one terminal session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub server: TmuxServer,
    pub idea: String,
    pub slot: String,
    pub relay_url: String,
    pub runner_token: String,
    /// Where unacked frames spill to disk.
    pub spill_dir: PathBuf,
    pub core: CoreConfig,
    /// Size of a session we create (columns, rows).
    pub initial_size: (u16, u16),
}

/// The tmux session name for (idea, slot), and the attach command.
pub fn names(server: &TmuxServer, idea: &str, slot: &str) -> anyhow::Result<(String, String)> {
    let name = tmux_cc::naming::session_name(idea, slot)
        .context("naming the tmux session")?
        .as_str()
        .to_owned();
    let attach = server.attach_command(&name);
    Ok((name, attach))
}

/// Creates the session if it does not exist, and records the logical id in
/// the `@bridge_id` user option. Returns the session name.
pub async fn ensure_session(
    server: &TmuxServer,
    idea: &str,
    slot: &str,
    size: (u16, u16),
) -> anyhow::Result<String> {
    let (name, _) = names(server, idea, slot)?;
    let exact = format!("={name}");
    let exists = server
        .command()
        .args(["has-session", "-t", &exact])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .context("running tmux")?
        .success();
    if !exists {
        let (cols, rows) = (size.0.to_string(), size.1.to_string());
        server
            .run(&["new-session", "-d", "-s", &name, "-x", &cols, "-y", &rows])
            .await
            .with_context(|| format!("creating tmux session {name}"))?;
        info!(session = %name, "created tmux session");
    }
    // Arguments given on the command line are not parsed by tmux's command
    // parser and set-option does not format-expand values without -F, so
    // the logical id is stored verbatim.
    let logical = tmux_cc::naming::logical_id(idea, slot)?;
    server
        // set-option takes a pane target: `=NAME:` (a bare `=NAME` is read
        // as a window name and fails).
        .run(&[
            "set-option",
            "-t",
            &format!("{exact}:"),
            "@bridge_id",
            &logical,
        ])
        .await
        .context("setting @bridge_id")?;
    Ok(name)
}

/// This machine's host name, for display.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default()
}

/// Serves the session until `cancel` fires or the relay rejects the token.
pub async fn run(cfg: SessionConfig, cancel: CancellationToken) -> anyhow::Result<()> {
    let mut restart_delay = Duration::from_millis(200);
    loop {
        let name = ensure_session(&cfg.server, &cfg.idea, &cfg.slot, cfg.initial_size).await?;
        let started = tokio::time::Instant::now();
        let outcome = serve_once(&cfg, &name, &cancel).await;
        if cancel.is_cancelled() {
            return outcome;
        }
        match outcome {
            Err(err) if err.is::<Rejected>() => return Err(err),
            Err(err) => warn!("serving {name}: {err:#}"),
            Ok(()) => info!(session = %name, "control client ended; attaching again"),
        }
        if started.elapsed() > Duration::from_secs(10) {
            restart_delay = Duration::from_millis(200);
        }
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(restart_delay) => {}
        }
        restart_delay = (restart_delay * 2).min(Duration::from_secs(10));
    }
}

/// The relay refused our credentials: retrying cannot help.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(pub String);

async fn serve_once(
    cfg: &SessionConfig,
    name: &str,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    // ignore-size: a person attached in a terminal keeps authority over the
    // window size; our `refresh-client -C` applies only when no such client
    // is attached (README, "Resize policy"). pause-after: fall behind and
    // get `%pause` (then resync) instead of being disconnected.
    let flags = format!("pause-after={},ignore-size", cfg.core.pause_after_secs);
    let mut client = spawn_control_client(&cfg.server, name, &flags)?;
    let own_pid = client.child.id();
    let (core_tx, core_rx) = mpsc::unbounded_channel();
    let (uplink_tx, uplink_rx) = mpsc::channel(64);
    let hello = RunnerHello {
        v: PROTOCOL_VERSION,
        idea: cfg.idea.clone(),
        slot: cfg.slot.clone(),
        tmux_session: name.to_owned(),
        attach: cfg.server.attach_command(name),
        host: host_name(),
    };
    let uplink_cancel = cancel.child_token();
    let uplink_task = tokio::spawn(uplink::run(
        UplinkConfig {
            relay_url: cfg.relay_url.clone(),
            runner_token: cfg.runner_token.clone(),
            hello,
        },
        core_tx,
        uplink_rx,
        uplink_cancel.clone(),
    ));
    // The pane models follow this tmux's emulator (transcript::emu::Profile).
    let mut core_cfg = cfg.core.clone();
    match cfg
        .server
        .run(&["display-message", "-p", "#{version}"])
        .await
    {
        Ok(v) => {
            let version = String::from_utf8_lossy(&v).trim().to_owned();
            core_cfg.tmux_profile = transcript::emu::Profile::parse(&version);
            info!(%version, profile = %core_cfg.tmux_profile, "tmux version");
        }
        Err(err) => warn!("tmux version unknown, modelling the newest: {err:#}"),
    }
    let core = Core::new(
        core_cfg,
        client.commands.clone(),
        uplink_tx,
        cfg.spill_dir.clone(),
        own_pid,
    );
    let output = std::mem::replace(&mut client.output, mpsc::channel(1).1);
    let result = core
        .run(output, core_rx, cancel.clone())
        .await
        .map(|ended| debug!(?ended, "session core ended"));

    // Closing stdin detaches the control client; give tmux a moment, then
    // make sure the process is gone.
    drop(client.commands);
    if tokio::time::timeout(Duration::from_secs(3), client.child.wait())
        .await
        .is_err()
    {
        let _ = client.child.start_kill();
        let _ = client.child.wait().await;
    }
    uplink_cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(3), uplink_task).await;
    result.map_err(|e| match e.downcast::<Rejected>() {
        Ok(r) => anyhow::Error::new(r),
        Err(e) => e,
    })
}
