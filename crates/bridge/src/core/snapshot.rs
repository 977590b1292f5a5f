//! Snapshots: checkpoint frames (protocol.md §3) that let a browser or the
//! relay start from the state at `m` instead of replaying from 1. One is
//! sent after [`snapshot_every_bytes`](super::CoreConfig) of output, after
//! [`snapshot_every`](super::CoreConfig) if anything changed, on the relay's
//! request and when the relay opens the session. A snapshot consumes no
//! sequence number and is not kept unacked: the next one replaces it.

use std::time::Instant;

use protocol::wire::Frame;
use tracing::{debug, warn};

use super::{Effect, Machine, ToRelay};

/// When the next snapshot is due.
#[derive(Debug)]
pub(super) struct Cadence {
    bytes_since: usize,
    changed: bool,
    last: Instant,
}

impl Cadence {
    pub(super) fn new(now: Instant) -> Self {
        Cadence {
            bytes_since: 0,
            changed: false,
            last: now,
        }
    }

    /// `len` bytes of pane output went into the model.
    pub(super) fn output(&mut self, len: usize) {
        self.bytes_since += len;
        self.changed = true;
    }

    /// The session changed (topology, a pane rebuilt).
    pub(super) fn changed(&mut self) {
        self.changed = true;
    }
}

impl Machine {
    /// Sends a snapshot of the session as of the last record sent, and
    /// restarts the cadence (also without a connection: the next one is due
    /// a full period later).
    pub(super) fn send_snapshot(&mut self) {
        self.snap = Cadence::new(self.now);
        let Some(generation) = self.seq.connection else {
            return;
        };
        // A snapshot must describe exactly the records sent so far.
        self.flush();
        let snap = self.model.snapshot();
        let seq = self.seq.relay_seq(snap.seq);
        let records = snap
            .records
            .into_iter()
            .map(|mut r| {
                r.seq = seq;
                r
            })
            .collect();
        let Some(frame) = Frame::snapshot(seq, records) else {
            warn!("cannot frame a snapshot");
            return;
        };
        let bytes = frame.encode(true);
        debug!(at = seq, bytes = bytes.len(), "snapshot");
        self.effects
            .push(Effect::Relay(ToRelay::Frame { generation, bytes }));
    }

    /// End of a burst: a snapshot if enough output went by.
    pub(super) fn snapshot_if_due_by_bytes(&mut self) {
        if self.snap.bytes_since >= self.cfg.snapshot_every_bytes {
            self.send_snapshot();
        }
    }

    /// A tick: a snapshot if the session changed and the period is over.
    pub(super) fn snapshot_if_due_by_time(&mut self) {
        if self.snapshot_wakeup().is_some_and(|at| self.now >= at) {
            self.send_snapshot();
        }
    }

    /// When the next snapshot falls due by time, if anything changed.
    pub(super) fn snapshot_wakeup(&self) -> Option<Instant> {
        self.snap
            .changed
            .then(|| self.snap.last + self.cfg.snapshot_every)
    }
}
