//! [`DeltaLog`]: an in-memory, bounded log of consecutive records with
//! checkpoints, answering "I last saw k" with [`Since`]: exactly the
//! records k+1..=n, or a snapshot at m >= k and the records m+1..=n. Never a
//! gap, never a duplicate.
//!
//! Nothing outside this module's tests uses it: the bridge keeps unacked
//! frames in its own `Unacked`, the relay answers `since` from
//! [`crate::store`]. No I/O, no clock.

use std::collections::VecDeque;

use crate::session::Snapshot;
use crate::wire::Record;

/// Bounds of a [`DeltaLog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Most bytes of records kept (encoded size).
    pub max_bytes: usize,
    /// Most records kept.
    pub max_entries: usize,
    /// Most checkpoints kept.
    pub max_checkpoints: usize,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            max_bytes: 8 << 20,
            max_entries: 100_000,
            max_checkpoints: 4,
        }
    }
}

/// What a client that last saw `k` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    /// Records k+1..=n.
    Deltas(Vec<Record>),
    /// A snapshot at m >= k, then records m+1..=n.
    Snapshot(Snapshot, Vec<Record>),
}

/// A record or checkpoint that does not fit the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    #[error("record {got} does not follow {head}")]
    NotNext { head: u64, got: u64 },
    #[error("checkpoint at {got} is beyond the head {head}")]
    CheckpointAhead { head: u64, got: u64 },
}

/// The log. `head` is the last sequence appended (or `start - 1`).
#[derive(Debug, Clone)]
pub struct DeltaLog {
    limits: LogLimits,
    entries: VecDeque<Record>,
    bytes: usize,
    head: u64,
    checkpoints: VecDeque<Snapshot>,
}

impl DeltaLog {
    /// An empty log whose first record will be `last_seq + 1`.
    pub fn new(limits: LogLimits, last_seq: u64) -> DeltaLog {
        DeltaLog {
            limits,
            entries: VecDeque::new(),
            bytes: 0,
            head: last_seq,
            checkpoints: VecDeque::new(),
        }
    }

    /// Last sequence appended.
    pub fn head(&self) -> u64 {
        self.head
    }

    /// Sequence of the oldest record kept (`head + 1` when empty).
    pub fn first(&self) -> u64 {
        self.entries.front().map_or(self.head + 1, |r| r.seq)
    }

    /// Bytes of records kept.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Records kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends the next record (`head + 1`), evicting the oldest records
    /// beyond the limits.
    pub fn push(&mut self, record: Record) -> Result<(), LogError> {
        if record.seq != self.head + 1 {
            return Err(LogError::NotNext {
                head: self.head,
                got: record.seq,
            });
        }
        self.head = record.seq;
        self.bytes += record.encoded_len();
        self.entries.push_back(record);
        while (self.bytes > self.limits.max_bytes || self.entries.len() > self.limits.max_entries)
            && self.entries.len() > 1
        {
            if let Some(old) = self.entries.pop_front() {
                self.bytes -= old.encoded_len();
            }
        }
        self.drop_useless_checkpoints();
        Ok(())
    }

    /// Adds a checkpoint (a snapshot at m <= head).
    pub fn checkpoint(&mut self, snapshot: Snapshot) -> Result<(), LogError> {
        if snapshot.seq > self.head {
            return Err(LogError::CheckpointAhead {
                head: self.head,
                got: snapshot.seq,
            });
        }
        self.checkpoints.retain(|c| c.seq != snapshot.seq);
        let at = self
            .checkpoints
            .iter()
            .position(|c| c.seq > snapshot.seq)
            .unwrap_or(self.checkpoints.len());
        self.checkpoints.insert(at, snapshot);
        while self.checkpoints.len() > self.limits.max_checkpoints.max(1) {
            self.checkpoints.pop_front();
        }
        self.drop_useless_checkpoints();
        Ok(())
    }

    /// Forgets records `<= seq` (acknowledged by the relay). Checkpoints
    /// stay.
    pub fn trim_through(&mut self, seq: u64) {
        while self.entries.front().is_some_and(|r| r.seq <= seq) {
            if let Some(old) = self.entries.pop_front() {
                self.bytes -= old.encoded_len();
            }
        }
        self.drop_useless_checkpoints();
    }

    /// A checkpoint at m can serve only while records m+1.. are kept.
    fn drop_useless_checkpoints(&mut self) {
        let first = self.first();
        // Keep the newest checkpoint even if useless for deltas: it is still
        // the best answer once the head reaches it.
        while self.checkpoints.len() > 1
            && self.checkpoints.front().is_some_and(|c| c.seq + 1 < first)
        {
            self.checkpoints.pop_front();
        }
    }

    /// True when a client that last saw anything before [`first`](Self::first)
    /// - 1 could not be served: the caller should add a checkpoint.
    pub fn needs_checkpoint(&self) -> bool {
        let first = self.first();
        first > 1 && !self.checkpoints.iter().any(|c| c.seq + 1 >= first)
    }

    /// Records with seq in `from..=head`.
    fn tail(&self, from: u64) -> Vec<Record> {
        let skip = from.saturating_sub(self.first()) as usize;
        self.entries.iter().skip(skip).cloned().collect()
    }

    /// What a client that last saw `k` needs; `None` when this log cannot
    /// answer without a gap (`k` ahead of the head, or older than every
    /// record and checkpoint): the caller then sends a fresh snapshot.
    pub fn since(&self, k: u64) -> Option<Since> {
        if k > self.head {
            return None;
        }
        if k + 1 >= self.first() {
            return Some(Since::Deltas(self.tail(k + 1)));
        }
        let snap = self
            .checkpoints
            .iter()
            .rev()
            .find(|c| c.seq >= k && c.seq + 1 >= self.first())?;
        Some(Since::Snapshot(snap.clone(), self.tail(snap.seq + 1)))
    }
}

#[cfg(test)]
mod tests;
