//! Routing to the relay that holds a runner's connection (its owner, from
//! `owners`). Three request subjects per relay
//! ([`super::relay_subject`]):
//!
//! - `op`: a browser message for one session (`input`, `keys`, `tmux`,
//!   `resize`, `snapshot_request`), JSON [`OpRequest`], no reply. The
//!   sending relay checked it as for a local runner (who asks, read-only,
//!   the session's scope, the runner's features); the owner checks the
//!   scope and features again against its own runner channel before it
//!   queues the message for the runner.
//! - `state`: JSON [`StateRequest`] → [`RemoteState`]: whether a runner
//!   channel of the owner serves the session, its features and scope.
//! - `command`: JSON [`CommandRequest`] → [`CommandAnswer`]: a runner
//!   command (create or kill a session, cancel a job) and its result.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use protocol::control::TmuxOp;
use protocol::runner::{CommandOp, FEATURE_KEYS, FEATURE_TMUX, RelayMsg};
use serde::{Deserialize, Serialize};
use store::TerminalSessionId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Cluster, ClusterError, relay_subject};
use crate::hub::{REMOTE_CONN, RUNNER_CHANNEL, RunnerLink, Scope};
use crate::runners::{CommandError, CommandReply};
use crate::state::AppState;

/// How long a `state` request may take.
const STATE_TIMEOUT: Duration = Duration::from_secs(2);

/// A browser message for the runner serving `session` (its `ch` is the
/// owner's business: sent as 0, replaced there).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpRequest {
    pub session: TerminalSessionId,
    pub msg: RelayMsg,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateRequest {
    pub session: TerminalSessionId,
}

/// What the owner says of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteState {
    pub relay: String,
    pub online: bool,
    pub features: Vec<String>,
    /// The topology's ids, stored form.
    pub scope: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandRequest {
    pub runner_id: String,
    pub op: CommandOp,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandAnswer {
    Reply(CommandReply),
    Failed(CommandError),
}

/// Why a request to another relay failed.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error(transparent)]
    Owner(#[from] super::owners::LookupError),
    #[error("the runner's relay did not answer: {0}")]
    Request(String),
    #[error("the runner's relay answered something that does not parse")]
    Answer,
}

/// A pane or window a message names.
#[derive(Debug, Clone, Copy)]
enum Target {
    Pane(tmux_cc::PaneId),
    Window(tmux_cc::WindowId),
}

/// What `msg` needs of the runner (a feature) and which panes and
/// windows it names; `None` for a message that is not a browser's.
fn needs(msg: &RelayMsg) -> Option<(&'static str, Vec<Target>)> {
    match msg {
        RelayMsg::Input { pane, .. } => Some(("", vec![Target::Pane(*pane)])),
        RelayMsg::Keys { pane, .. } => Some((FEATURE_KEYS, vec![Target::Pane(*pane)])),
        RelayMsg::Tmux { op, .. } => {
            let mut t: Vec<Target> = op.pane().map(Target::Pane).into_iter().collect();
            if let TmuxOp::RenameWindow { window, .. } | TmuxOp::SelectWindow { window } = op {
                t.push(Target::Window(*window));
            }
            Some((FEATURE_TMUX, t))
        }
        RelayMsg::Resize { .. } | RelayMsg::SnapshotRequest { .. } => Some(("", Vec::new())),
        _ => None,
    }
}

/// `msg` on channel `ch` (pure).
fn on_channel(msg: RelayMsg, ch: protocol::runner::Channel) -> Option<RelayMsg> {
    Some(match msg {
        RelayMsg::Input { pane, data, .. } => RelayMsg::Input { ch, pane, data },
        RelayMsg::Keys { pane, keys, .. } => RelayMsg::Keys { ch, pane, keys },
        RelayMsg::Tmux { op, .. } => RelayMsg::Tmux { ch, op },
        RelayMsg::Resize { cols, rows, .. } => RelayMsg::Resize { ch, cols, rows },
        RelayMsg::SnapshotRequest { .. } => RelayMsg::SnapshotRequest { ch },
        _ => return None,
    })
}

/// Whether the owner takes `msg` for a runner with `features` and a
/// session of `scope` (the second check; pure).
pub fn allowed(msg: &RelayMsg, features: &[String], scope: &Scope) -> bool {
    let Some((feature, targets)) = needs(msg) else {
        return false;
    };
    if !feature.is_empty() && !features.iter().any(|f| f == feature) {
        return false;
    }
    targets.iter().all(|t| match t {
        Target::Pane(p) => scope.has_pane(*p),
        Target::Window(w) => scope.has_window(*w),
    })
}

/// A runner link for a hub whose runner is on `relay`: what the hub and the
/// browser tasks queue on it is sent there as `op` requests (viewer counts
/// stay local). The forwarder ends when the hub drops the link or the
/// watch ends.
pub(super) fn remote_link(
    cluster: Arc<Cluster>,
    session: TerminalSessionId,
    relay: &str,
    features: Vec<String>,
    cancel: &CancellationToken,
) -> RunnerLink {
    let (tx, mut rx) = mpsc::channel::<RelayMsg>(RUNNER_CHANNEL);
    let subject = relay_subject(relay, "op");
    let cancel = cancel.clone();
    tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                () = cancel.cancelled() => return,
                m = rx.recv() => match m {
                    Some(m) => m,
                    None => return,
                },
            };
            if needs(&msg).is_none() {
                continue;
            }
            let Ok(body) = serde_json::to_vec(&OpRequest { session, msg }) else {
                continue;
            };
            if let Err(e) = cluster.client.publish(subject.clone(), body.into()).await {
                tracing::warn!(session, error = %e, "cluster: routing a browser message failed");
            }
        }
    });
    RunnerLink {
        conn: REMOTE_CONN,
        ch: 0,
        tx,
        features,
    }
}

impl Cluster {
    /// Asks the owner of the session's runner about it; `None` when no
    /// other relay holds the runner.
    pub(super) async fn remote_state(
        &self,
        session: TerminalSessionId,
        runner_id: &str,
    ) -> Result<Option<RemoteState>, RouteError> {
        let Some(owner) = self.owner(runner_id).await? else {
            return Ok(None);
        };
        if owner.relay == self.relay_id {
            return Ok(None);
        }
        let body = serde_json::to_vec(&StateRequest { session }).map_err(|_| RouteError::Answer)?;
        let reply = tokio::time::timeout(
            STATE_TIMEOUT,
            self.client
                .request(relay_subject(&owner.relay, "state"), body.into()),
        )
        .await
        .map_err(|_| RouteError::Request("timeout".into()))?
        .map_err(|e| RouteError::Request(e.to_string()))?;
        serde_json::from_slice(&reply.payload)
            .map(Some)
            .map_err(|_| RouteError::Answer)
    }
}

/// Runs `op` on `runner_id` wherever it is connected: here, or through
/// its owner relay in cluster mode.
pub async fn command(
    st: &AppState,
    runner_id: &str,
    op: CommandOp,
    timeout: Duration,
) -> Result<CommandReply, CommandError> {
    let Some(cluster) = st.cluster.as_ref() else {
        return st.runners.command(runner_id, op, timeout).await;
    };
    if st.runners.is_online(runner_id) {
        return st.runners.command(runner_id, op, timeout).await;
    }
    let owner = match cluster.owner(runner_id).await {
        Ok(Some(o)) if o.relay != cluster.relay_id => o,
        Ok(_) => return Err(CommandError::Offline),
        Err(e) => {
            tracing::warn!(error = %e, "cluster: looking up a runner's relay failed");
            return Err(CommandError::Offline);
        }
    };
    let req = CommandRequest {
        runner_id: runner_id.to_owned(),
        op,
        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
    };
    let Ok(body) = serde_json::to_vec(&req) else {
        return Err(CommandError::Gone);
    };
    // The owner waits up to `timeout` for the runner; allow the hop.
    let reply = tokio::time::timeout(
        timeout + Duration::from_secs(1),
        cluster
            .client
            .request(relay_subject(&owner.relay, "command"), body.into()),
    )
    .await;
    match reply {
        Ok(Ok(m)) => match serde_json::from_slice::<CommandAnswer>(&m.payload) {
            Ok(CommandAnswer::Reply(r)) => Ok(r),
            Ok(CommandAnswer::Failed(e)) => Err(e),
            Err(_) => Err(CommandError::Gone),
        },
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cluster: a command to another relay failed");
            Err(CommandError::Gone)
        }
        Err(_) => Err(CommandError::Timeout),
    }
}

/// Whether `runner_id` is connected here or, in cluster mode, to another
/// relay with a live lease.
pub async fn runner_online(st: &AppState, runner_id: &str) -> bool {
    if st.runners.is_online(runner_id) {
        return true;
    }
    match st.cluster.as_ref() {
        Some(c) => matches!(c.owner(runner_id).await, Ok(Some(_))),
        None => false,
    }
}

/// The online runners of `user_id`, here and (cluster mode) elsewhere.
pub async fn online_of_user(st: &AppState, user_id: &str) -> Vec<String> {
    let mut ids = st.runners.online_of_user(user_id);
    if let Some(c) = st.cluster.as_ref() {
        match c.owned_of_user(user_id).await {
            Ok(owned) => ids.extend(owned.into_iter().map(|(id, _)| id)),
            Err(e) => tracing::warn!(error = %e, "cluster: listing the runners' relays failed"),
        }
    }
    ids.sort();
    ids.dedup();
    ids
}

/// Serves the requests other relays send this one, until shutdown.
pub(super) async fn spawn_service(
    cluster: Arc<Cluster>,
    st: &AppState,
) -> Result<(), ClusterError> {
    let mut sub = cluster
        .subscribe(relay_subject(&cluster.relay_id, "*"))
        .await?;
    let st = st.clone();
    st.tracker.clone().spawn(async move {
        loop {
            let msg = tokio::select! {
                () = st.shutdown.cancelled() => break,
                m = sub.next() => match m {
                    Some(m) => m,
                    None => break,
                },
            };
            let what = msg
                .subject
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_owned();
            match what.as_str() {
                "op" => on_op(&st, &msg.payload).await,
                "state" => {
                    let answer = on_state(&st, &cluster.relay_id, &msg.payload);
                    reply(&cluster, msg.reply, answer).await;
                }
                "command" => {
                    // Waits for the runner: off this loop.
                    let (st, cluster) = (st.clone(), cluster.clone());
                    tokio::spawn(async move {
                        let answer = on_command(&st, &msg.payload).await;
                        reply(&cluster, msg.reply, answer).await;
                    });
                }
                other => tracing::debug!(what = other, "cluster: unknown request; dropped"),
            }
        }
    });
    Ok(())
}

async fn reply<T: Serialize>(
    cluster: &Cluster,
    to: Option<async_nats::Subject>,
    answer: Option<T>,
) {
    let (Some(to), Some(answer)) = (to, answer) else {
        return;
    };
    let Ok(body) = serde_json::to_vec(&answer) else {
        return;
    };
    if let Err(e) = cluster.client.publish(to, body.into()).await {
        tracing::warn!(error = %e, "cluster: replying failed");
    }
}

async fn on_op(st: &AppState, payload: &[u8]) {
    let Ok(req) = serde_json::from_slice::<OpRequest>(payload) else {
        tracing::warn!("cluster: an op request does not parse; dropped");
        return;
    };
    let Some(link) = st.hub.get(req.session).and_then(|h| {
        let link = h.local_runner()?;
        Some((link, h.scope()))
    }) else {
        tracing::debug!(
            session = req.session,
            "cluster: op for a session not served here; dropped"
        );
        return;
    };
    let (link, scope) = link;
    if !allowed(&req.msg, &link.features, &scope) {
        tracing::warn!(
            session = req.session,
            "cluster: op outside the session's scope or features; dropped"
        );
        return;
    }
    if let Some(msg) = on_channel(req.msg, link.ch) {
        // Bounded like a local browser's input.
        let _ = link.tx.send(msg).await;
    }
}

fn on_state(st: &AppState, relay: &str, payload: &[u8]) -> Option<RemoteState> {
    let req = serde_json::from_slice::<StateRequest>(payload).ok()?;
    let hub = st.hub.get(req.session);
    let link = hub.as_ref().and_then(|h| h.local_runner());
    Some(RemoteState {
        relay: relay.to_owned(),
        online: link.is_some(),
        features: link.map(|l| l.features).unwrap_or_default(),
        scope: hub.map(|h| h.scope().to_stored()).unwrap_or_default(),
    })
}

async fn on_command(st: &AppState, payload: &[u8]) -> Option<CommandAnswer> {
    let req = serde_json::from_slice::<CommandRequest>(payload).ok()?;
    let timeout = Duration::from_millis(req.timeout_ms).min(crate::runners::COMMAND_TIMEOUT * 3);
    Some(
        match st.runners.command(&req.runner_id, req.op, timeout).await {
            Ok(r) => CommandAnswer::Reply(r),
            Err(e) => CommandAnswer::Failed(e),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_checks_scope_and_features_again() {
        let scope = Scope::parse("%1 @1");
        let p1 = "%1".parse().expect("pane");
        let p2 = "%2".parse().expect("pane");
        let input = |pane| RelayMsg::Input {
            ch: 0,
            pane,
            data: "x".into(),
        };
        assert!(allowed(&input(p1), &[], &scope));
        assert!(!allowed(&input(p2), &[], &scope), "another session's pane");
        let keys = RelayMsg::Keys {
            ch: 0,
            pane: p1,
            keys: vec!["Enter".into()],
        };
        assert!(!allowed(&keys, &[], &scope), "runner without keys");
        assert!(allowed(&keys, &[FEATURE_KEYS.to_owned()], &scope));
        assert!(allowed(
            &RelayMsg::Resize {
                ch: 0,
                cols: 80,
                rows: 24
            },
            &[],
            &scope
        ));
        assert!(!allowed(
            &RelayMsg::Viewers { ch: 0, count: 1 },
            &[],
            &scope
        ));
        assert!(matches!(
            on_channel(input(p1), 7),
            Some(RelayMsg::Input { ch: 7, .. })
        ));
    }
}
