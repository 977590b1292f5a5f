//! Serving one tmux session inside the daemon: attach a control client
//! (holding the server's start lock until tmux answered the attach), run
//! the session's core, and carry its messages to the uplink tagged with the
//! session's channel. The task ends when the control client exits (the
//! session was killed, the server died) or the daemon cancels it; the
//! supervisor then decides what the relay hears (`close`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use protocol::runner::{Channel, Open};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::core::{Core, CoreConfig, Ended};
use crate::daemon::server::{Bridged, Server};
use crate::tmux::spawn_control_client;
use crate::uplink::ToUplink;

/// The tmux session name for (idea, slot), and the attach command.
pub fn names(
    server: &crate::tmux::TmuxServer,
    idea: &str,
    slot: &str,
) -> anyhow::Result<(String, String)> {
    let name = tmux_cc::naming::session_name(idea, slot)
        .context("naming the tmux session")?
        .as_str()
        .to_owned();
    let attach = server.attach_command(&name);
    Ok((name, attach))
}

/// This machine's host name, for display.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default()
}

/// The relay refused our credentials: retrying cannot help.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(pub String);

/// A session being served.
#[derive(Debug)]
pub struct Served {
    pub ch: Channel,
    pub open: Open,
    pub server_pid: u32,
    pub cancel: CancellationToken,
    pub task: JoinHandle<anyhow::Result<Ended>>,
}

/// Starts serving `b` (whose instance is `instance`) on channel `ch`: the
/// `open` is queued on the uplink before this returns. `ended` hears `ch`
/// when the task is over.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    server: &Server,
    b: &Bridged,
    instance: String,
    ch: Channel,
    core_cfg: &CoreConfig,
    spill_dir: PathBuf,
    uplink: mpsc::Sender<ToUplink>,
    ended: mpsc::UnboundedSender<Channel>,
) -> anyhow::Result<Served> {
    let name = b.line.name.clone();
    // ignore-size: a person attached in a terminal keeps authority over the
    // window size; our `refresh-client -C` applies only when no such client
    // is attached (README, "Resize policy"). pause-after: fall behind and
    // get `%pause` (then resync) instead of being disconnected.
    let flags = format!("pause-after={},ignore-size", core_cfg.pause_after_secs);
    let mut client = {
        let _starts = server.lock.lock().await;
        let mut client = spawn_control_client(&server.tmux, &name, &flags)?;
        if let Some(attached) = client.attached.take() {
            // tmux answers the attach at once; a client that never writes
            // is left to the core (it ends when the process does).
            let _ = tokio::time::timeout(Duration::from_secs(2), attached).await;
        }
        client
    };
    let own_pid = client.child.id();
    let open = Open {
        ch,
        idea: b.idea.clone(),
        slot: b.slot.clone(),
        instance,
        tmux_session: name.clone(),
        attach: server.tmux.attach_command(&name),
    };
    let (core_tx, core_rx) = mpsc::unbounded_channel();
    uplink
        .send(ToUplink::Serve {
            open: open.clone(),
            to_core: core_tx,
        })
        .await
        .context("the uplink is gone")?;
    let (to_relay, mut from_core) = mpsc::channel(64);
    let core = Core::new(
        core_cfg.clone(),
        client.commands.clone(),
        to_relay,
        spill_dir.join(format!("{name}-{}", open.instance)),
        own_pid,
    )
    .with_hidden_client(server.clone(), name.clone());
    let cancel = CancellationToken::new();
    let output = std::mem::replace(&mut client.output, mpsc::channel(1).1);
    let task_cancel = cancel.clone();
    let task = tokio::spawn(async move {
        let forward = async {
            while let Some(msg) = from_core.recv().await {
                if uplink.send(ToUplink::Core { ch, msg }).await.is_err() {
                    break;
                }
            }
        };
        let (result, ()) = tokio::join!(core.run(output, core_rx, task_cancel), forward);
        // Closing stdin detaches the control client; give tmux a moment,
        // then make sure the process is gone.
        drop(client.commands);
        if tokio::time::timeout(Duration::from_secs(3), client.child.wait())
            .await
            .is_err()
        {
            let _ = client.child.start_kill();
            let _ = client.child.wait().await;
        }
        match &result {
            Ok(ended) => debug!(ch, ?ended, "session core ended"),
            Err(err) => warn!(ch, "session core failed: {err:#}"),
        }
        let _ = ended.send(ch);
        result
    });
    Ok(Served {
        ch,
        open,
        server_pid: b.line.server_pid,
        cancel,
        task,
    })
}
