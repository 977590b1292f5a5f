//! The watcher: one control client with no pane output
//! (`-f no-output,ignore-size`; not `read-only`: tmux 3.7 refuses a
//! command-line client's commands while a read-only client is the best
//! client) whose only job is tmux's
//! `%sessions-changed` notification, which every control client gets when
//! a session is created, killed or renamed. The daemon rescans the server
//! on each one; a slow poll covers the time the watcher is not attached
//! (no server, or its session just went away: the watcher then exits and
//! the daemon starts another).

use std::time::Duration;

use tmux_cc::Event;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::server::Server;
use crate::tmux::{TmuxOutput, spawn_control_client};

/// What the watcher reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// Sessions were created, killed or renamed.
    Changed,
    /// The watcher's client exited.
    Gone,
}

/// Starts a watcher attached to the session named `session` (the start lock held until tmux
/// answered). It reports on `tx` until its client exits or `cancel` fires.
pub async fn start(
    server: &Server,
    session: &str,
    tx: mpsc::UnboundedSender<Watch>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut client = {
        let _starts = server.lock.lock().await;
        let mut client = spawn_control_client(&server.tmux, session, "no-output,ignore-size")?;
        if let Some(attached) = client.attached.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), attached).await;
        }
        client
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                out = client.output.recv() => match out {
                    Some(TmuxOutput::Events(events)) => {
                        if events.iter().any(|e| matches!(e, Event::SessionsChanged | Event::SessionRenamed { .. })) {
                            let _ = tx.send(Watch::Changed);
                        }
                    }
                    Some(TmuxOutput::Closed) | None => break,
                },
            }
        }
        drop(client.commands);
        if tokio::time::timeout(Duration::from_secs(2), client.child.wait())
            .await
            .is_err()
        {
            let _ = client.child.start_kill();
            let _ = client.child.wait().await;
        }
        debug!("watcher ended");
        let _ = tx.send(Watch::Gone);
    });
    Ok(())
}
