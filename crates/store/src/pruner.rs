//! The background pruning task the relay starts: applies a
//! [`RetentionPolicy`] to every session at a fixed interval until cancelled.
//! The policy itself lives in `frames.rs` ([`Store::prune`]).

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{RetentionPolicy, Store};

/// Spawns a task that runs [`Store::prune_all`] every `interval` (the first
/// pass after one interval) and returns when `cancel` fires. A failed pass
/// is logged and retried at the next tick; a pass in progress finishes its
/// current transaction before the task notices the cancellation.
pub fn spawn_pruner(
    store: Store,
    policy: RetentionPolicy,
    interval: Duration,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let start = tokio::time::Instant::now() + interval;
        let mut ticks = tokio::time::interval_at(start, interval.max(Duration::from_millis(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = ticks.tick() => {}
            }
            match store.prune_all(policy).await {
                Ok(stats) if stats != Default::default() => tracing::debug!(
                    frames = stats.frames_deleted,
                    snapshots = stats.snapshots_deleted,
                    "pruned"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "prune pass failed"),
            }
        }
        tracing::debug!("pruner stopped");
    })
}
