//! The store's error type. Every refusal the relay must react to (a gap, an
//! overlap, a client ahead of the store) is its own variant carrying the
//! numbers involved; database and migration failures wrap sqlx's errors.

use crate::TerminalSessionId;

/// Errors of [`crate::Store`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL names no database this store speaks.
    #[error(
        "unsupported database url {url:?}: expected sqlite://PATH, sqlite::memory: or postgres://"
    )]
    UnsupportedUrl { url: String },

    #[error("database error")]
    Db(#[from] sqlx::Error),

    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    #[error("terminal session {0} does not exist")]
    NoSuchSession(TerminalSessionId),

    /// `upsert_session` found the (runner, idea, slot) already owned by
    /// another user; the transcript is never handed over silently.
    #[error("terminal session {id} belongs to another user")]
    OwnerMismatch { id: TerminalSessionId },

    /// A frame does not start right after the stored sequence.
    #[error("sequence gap: expected a frame starting at {expected}, got {got}")]
    Gap { expected: u64, got: u64 },

    /// A frame starts inside the stored range but ends past it: part of it is
    /// stored already and the store cannot split opaque bytes.
    #[error("frame {first}..={last} overlaps the stored sequence ending at {stored}")]
    Overlap { first: u64, last: u64, stored: u64 },

    /// `first_seq` is 0, or greater than `last_seq`.
    #[error("invalid frame range {first}..={last}")]
    InvalidRange { first: u64, last: u64 },

    /// A sequence number above `i64::MAX` (the databases' integer type).
    #[error("sequence number {0} is out of range")]
    SeqOutOfRange(u64),

    /// A snapshot at a sequence the store has not received yet.
    #[error("snapshot at {at} is ahead of the stored sequence {stored}")]
    SnapshotAhead { at: u64, stored: u64 },

    /// A snapshot inside a stored frame's range: resuming from it would
    /// replay part of that frame twice.
    #[error("snapshot at {at} falls inside stored frame {first}..={last}")]
    SnapshotMisaligned { at: u64, first: u64, last: u64 },

    /// A client claims a sequence the store never reached.
    #[error("client sequence {k} is ahead of the stored sequence {head}")]
    Ahead { k: u64, head: u64 },

    /// Neither the frames after `k` nor a snapshot at or after `k` are
    /// stored (only possible for a `k` that is not a frame boundary).
    #[error("no resume point for sequence {k}")]
    NoResumePoint { k: u64 },

    /// The transaction that held this frame, with the other frames of its
    /// batch (`Store::append_frames`, the [`crate::FrameCommitter`]),
    /// failed: none of them was stored. Shared by every frame of the batch.
    #[error("the batch holding this frame was not stored: {0}")]
    Batch(std::sync::Arc<StoreError>),

    /// The frame committer stopped (the store is closing): the frame may or
    /// may not be stored; it was not acknowledged.
    #[error("the frame committer stopped")]
    CommitterGone,

    /// A stored row violates the store's invariants (a negative number, a
    /// hole in the stored frames).
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether the database could not be reached or is busy (PostgreSQL
    /// down or unreachable, no pooled connection within the acquire
    /// timeout, a SQLite database locked by another process): a condition
    /// that passes by itself, answered with 503 rather than 500.
    pub fn is_unavailable(&self) -> bool {
        let e = match self {
            StoreError::Db(e) => e,
            StoreError::Batch(inner) => return inner.is_unavailable(),
            _ => return false,
        };
        match e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => {
                let code = db.code();
                let code = code.as_deref().unwrap_or_default();
                // SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their
                // extended codes (low byte). PostgreSQL: class 08
                // (connection exception), 57P01-57P03 (admin shutdown,
                // crash shutdown, cannot connect now), 53300 (too many
                // connections).
                match code.parse::<i64>() {
                    Ok(n) if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() => {
                        matches!(n & 0xff, 5 | 6)
                    }
                    _ => {
                        code.starts_with("08")
                            || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
                    }
                }
            }
            _ => false,
        }
    }
}
