//! The runner daemons connected to this relay process (protocol 2, §4):
//! one live connection per runner id, what its `hello` said, and the
//! commands sent to it that await their `result`.
//!
//! A second connection of the same runner replaces the first (its
//! `replaced` token is cancelled: the old task closes with 4001).
//! [`Runners::command`] sends a command with a fresh id over the current
//! connection and waits (bounded) for the runner task to hand it the
//! answer. No I/O here and no lock held across an `.await`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use protocol::runner::{CommandOp, ErrorBody, RelayMsg};
use store::TerminalSessionId;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::hub::RUNNER_CHANNEL;

/// How long the relay waits for a command's `result` (§4.3, §5: 504).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a runner said about itself in `hello` (and `status`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunnerDetails {
    pub user_id: String,
    pub host: String,
    pub version: String,
    pub tmux_version: String,
    pub features: Vec<String>,
}

/// A command's answer as the runner task resolves it: the `result`, with
/// the session its channel serves (for `create_session`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CommandReply {
    pub ok: bool,
    pub session_id: Option<TerminalSessionId>,
    pub error: Option<ErrorBody>,
}

/// Why a command got no answer.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum CommandError {
    #[error("the runner is offline")]
    Offline,
    #[error("the runner did not answer within {} s", COMMAND_TIMEOUT.as_secs())]
    Timeout,
    #[error("the runner went away before answering")]
    Gone,
}

#[derive(Debug)]
struct Live {
    conn: u64,
    tx: mpsc::Sender<RelayMsg>,
    replaced: CancellationToken,
    details: RunnerDetails,
    pending: HashMap<String, oneshot::Sender<CommandReply>>,
}

/// The live runner connections of this relay process. Shared (`Arc`).
#[derive(Debug, Default)]
pub struct Runners {
    live: Mutex<HashMap<String, Live>>,
    next_conn: AtomicU64,
    next_command: AtomicU64,
    /// Makes command ids unique across relay restarts too.
    epoch: u64,
    /// Woken when a runner connects or goes (the cluster's leases follow).
    changed: tokio::sync::Notify,
}

/// A registered connection, as its task holds it.
#[derive(Debug)]
pub struct Connection {
    pub conn: u64,
    pub tx: mpsc::Sender<RelayMsg>,
    pub rx: mpsc::Receiver<RelayMsg>,
    /// Cancelled when a newer connection of the same runner replaces this
    /// one.
    pub replaced: CancellationToken,
}

impl Runners {
    pub fn new() -> Self {
        Runners {
            epoch: rand::random::<u64>() >> 16,
            ..Self::default()
        }
    }

    /// Registers the connection of `runner_id` that said `hello`,
    /// replacing (and cancelling) a previous one.
    pub fn connect(&self, runner_id: &str, details: RunnerDetails) -> Connection {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = mpsc::channel(RUNNER_CHANNEL);
        let replaced = CancellationToken::new();
        let old = lock(&self.live).insert(
            runner_id.to_owned(),
            Live {
                conn,
                tx: tx.clone(),
                replaced: replaced.clone(),
                details,
                pending: HashMap::new(),
            },
        );
        if let Some(old) = old {
            old.replaced.cancel();
        }
        self.changed.notify_one();
        Connection {
            conn,
            tx,
            rx,
            replaced,
        }
    }

    /// Removes connection `conn` of `runner_id` if it is still the current
    /// one; commands awaiting it fail with [`CommandError::Gone`]. `true`
    /// when it was current (the runner is offline now).
    pub fn disconnect(&self, runner_id: &str, conn: u64) -> bool {
        let mut live = lock(&self.live);
        if live.get(runner_id).is_some_and(|l| l.conn == conn) {
            live.remove(runner_id);
            self.changed.notify_one();
            true
        } else {
            false
        }
    }

    /// What the runner's current connection said about itself, if online.
    pub fn details(&self, runner_id: &str) -> Option<RunnerDetails> {
        lock(&self.live).get(runner_id).map(|l| l.details.clone())
    }

    /// Every runner connected here: its id, its connection's number and
    /// what it said about itself.
    pub fn connections(&self) -> Vec<(String, u64, RunnerDetails)> {
        lock(&self.live)
            .iter()
            .map(|(id, l)| (id.clone(), l.conn, l.details.clone()))
            .collect()
    }

    /// Ends connection `conn` of `runner_id` because the runner connected
    /// to another relay (cluster mode): it is no longer this relay's (gone
    /// from the registry at once; commands awaiting it fail as
    /// [`CommandError::Gone`]) and its task closes it as replaced (4001),
    /// without telling anyone the runner went offline. `false` when `conn`
    /// is not the current connection any more.
    pub fn evict(&self, runner_id: &str, conn: u64) -> bool {
        let mut live = lock(&self.live);
        if live.get(runner_id).is_none_or(|l| l.conn != conn) {
            return false;
        }
        if let Some(l) = live.remove(runner_id) {
            l.replaced.cancel();
        }
        drop(live);
        self.changed.notify_one();
        true
    }

    /// Every runner connected here, with what it said about itself.
    pub fn all(&self) -> Vec<(String, RunnerDetails)> {
        lock(&self.live)
            .iter()
            .map(|(id, l)| (id.clone(), l.details.clone()))
            .collect()
    }

    /// Completes after a runner connected or went (a change since the
    /// last call counts).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// How many runners have a connection that said `hello`.
    pub fn online_count(&self) -> usize {
        lock(&self.live).len()
    }

    /// Whether `runner_id` has a connection that said `hello`.
    pub fn is_online(&self, runner_id: &str) -> bool {
        lock(&self.live).contains_key(runner_id)
    }

    /// The online runners of `user_id`.
    pub fn online_of_user(&self, user_id: &str) -> Vec<String> {
        let mut ids: Vec<String> = lock(&self.live)
            .iter()
            .filter(|(_, l)| l.details.user_id == user_id)
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Sends `op` to the runner with a fresh id and waits for its result
    /// (at most `timeout`).
    pub async fn command(
        &self,
        runner_id: &str,
        op: CommandOp,
        timeout: Duration,
    ) -> Result<CommandReply, CommandError> {
        let n = self.next_command.fetch_add(1, Ordering::Relaxed) + 1;
        let id = format!("c{:x}-{n}", self.epoch);
        let (reply_tx, reply_rx) = oneshot::channel();
        let tx = {
            let mut live = lock(&self.live);
            let l = live.get_mut(runner_id).ok_or(CommandError::Offline)?;
            l.pending.insert(id.clone(), reply_tx);
            l.tx.clone()
        };
        let sent =
            tokio::time::timeout(timeout, tx.send(RelayMsg::Command { id: id.clone(), op })).await;
        let outcome = match sent {
            Ok(Ok(())) => match tokio::time::timeout(timeout, reply_rx).await {
                Ok(Ok(reply)) => Ok(reply),
                Ok(Err(_)) => Err(CommandError::Gone),
                Err(_) => Err(CommandError::Timeout),
            },
            Ok(Err(_)) => Err(CommandError::Gone),
            Err(_) => Err(CommandError::Timeout),
        };
        if outcome.is_err()
            && let Some(l) = lock(&self.live).get_mut(runner_id)
        {
            l.pending.remove(&id);
        }
        outcome
    }

    /// Hands a `result` from connection `conn` to the command awaiting it;
    /// `false` when none does (unknown id, answered already, or timed out).
    pub fn resolve(&self, runner_id: &str, conn: u64, id: &str, reply: CommandReply) -> bool {
        let waiter = {
            let mut live = lock(&self.live);
            match live.get_mut(runner_id) {
                Some(l) if l.conn == conn => l.pending.remove(id),
                _ => None,
            }
        };
        waiter.is_some_and(|w| w.send(reply).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_evicted_connection_is_gone_and_told_as_replaced() {
        let runners = Runners::new();
        let first = runners.connect("r", RunnerDetails::default());
        assert!(!runners.evict("r", first.conn + 1), "not that connection");
        assert!(runners.is_online("r"));
        assert!(runners.evict("r", first.conn));
        assert!(first.replaced.is_cancelled(), "its task closes it (4001)");
        assert!(!runners.is_online("r"), "gone from the registry at once");
        assert!(runners.connections().is_empty());
        assert!(
            !runners.disconnect("r", first.conn),
            "its task's disconnect finds it gone: no offline notice"
        );
        // A newer connection is never evicted for an older one.
        let second = runners.connect("r", RunnerDetails::default());
        assert!(!runners.evict("r", first.conn));
        assert!(!second.replaced.is_cancelled());
        assert_eq!(runners.connections().len(), 1);
    }
}
