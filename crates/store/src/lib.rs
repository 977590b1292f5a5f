//! Durable storage of transcripts (sqlx): terminal sessions, the relay's
//! frames (opaque bytes plus their sequence range) and snapshots, with
//! retention. The only module of the workspace that knows SQL.
//!
//! It does not parse frames: a frame is stored and returned byte for byte.
//! It reads no clock: every timestamp is an argument (milliseconds since the
//! Unix epoch), except the `created_at` columns, which the database fills.
//!
//! # One code path, two databases
//!
//! [`Db`] is an enum over a `SqlitePool` and a `PgPool`, and every query is
//! written once inside [`on_db!`], which expands the same body for each
//! driver. Chosen over `sqlx::Any` because the native drivers keep their own
//! connect options (WAL, `synchronous`, busy timeout, pool sizing for
//! `sqlite::memory:`), their native types (`BYTEA`/`BLOB`) and their
//! prepared-statement caches, while the SQL text stays shared: `$1`
//! placeholders, `ON CONFLICT`, `RETURNING` and window functions mean the
//! same in SQLite (3.35+, bundled) and PostgreSQL. Schemas differ only in
//! DDL and live in `migrations/sqlite` and `migrations/postgres`.
//!
//! # Durability
//!
//! A method that returned `Ok` has committed its transaction. SQLite runs in
//! WAL mode with `synchronous=NORMAL`: a commit is in the WAL file (the OS
//! page cache) before `COMMIT` returns, so it survives `kill -9` of the
//! process (tested: `tests/store.rs`, `kill_9_loses_no_acknowledged_frame`);
//! only a power loss or kernel crash can drop the last commits. `FULL` adds
//! an fsync per commit and divides the append rate by about 2.5
//! (`cargo bench -p benches --bench store`, one frame of 1-4 KiB per
//! transaction, 2 busy cores: NORMAL 1.4k-2.4k frames/s, FULL 0.9k/s,
//! PostgreSQL 15 with `synchronous_commit=on` 0.24k-0.34k/s). NORMAL is the
//! default; [`SqliteSync::Full`] is there for a relay that must survive a
//! power cut. The relay stores frames by group commit ([`FrameCommitter`],
//! many frames per transaction, each answered after its commit), which
//! takes the cost of a commit off each frame: with 8 writers, SQLite
//! NORMAL 17.7k frames/s, FULL 13.3k/s, PostgreSQL 10.3k/s (the same bench,
//! `store_group_commit_8`).

pub mod accounts;
mod agents;
mod commit;
mod devservers;
mod error;
mod events;
mod files;
mod frames;
mod jobs;
mod limits;
pub mod log_search;
mod one_trip;
mod pruner;
pub mod search;
mod sessions;
pub mod shares;

use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use agents::{AgentRecord, AgentTransition, PaneWatch, TRANSITIONS_KEPT};
pub use commit::{CommitOptions, CommitStats, FrameCommitter, PendingFrame};
pub use devservers::{DevserverEventRecord, NewDevserverEvent};
pub use error::StoreError;
pub use events::{EventRecord, NewEvent};
pub use jobs::{IngestedLine, JobRecord, LogChunkRecord};
pub use limits::RateLog;
pub use pruner::spawn_pruner;
pub use sessions::{OpenSession, OpenedSession};

/// Id of a terminal session (one tmux session served by one bridge); the
/// `session_id` of the wire protocol.
pub type TerminalSessionId = i64;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The connection pool of one of the two dialects. Query code matches on it
/// through [`on_db!`]; `store/accounts.rs` does the same.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool of `$db` (a
/// `&Db`): the body is written once and compiled once per driver, so plain
/// `sqlx::query("… $1 …").bind(x).fetch_one($pool)` works in both.
///
/// ```ignore
/// let n: i64 = on_db!(store.db(), pool => {
///     sqlx::query_scalar("SELECT count(*) FROM frames").fetch_one(pool).await?
/// });
/// ```
macro_rules! on_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::Db::Sqlite($pool) => $body,
            $crate::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_db;

/// SQLite's `synchronous` setting (WAL mode). Both survive `kill -9`;
/// only `Full` survives a power loss of the last commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SqliteSync {
    #[default]
    Normal,
    Full,
}

/// Connection settings beyond the URL.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreOptions {
    pub sqlite_sync: SqliteSync,
    /// Pool size for files and PostgreSQL (`sqlite::memory:` always uses
    /// one connection: each connection would be its own database).
    pub max_connections: u32,
    /// How long a SQLite writer waits for the write lock.
    pub busy_timeout: Duration,
    /// How long a query waits for a pooled connection (including opening a
    /// new one) before failing with an error for which
    /// [`StoreError::is_unavailable`] holds. sqlx's default is 30 s: with
    /// the database down, every request would hang that long.
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            sqlite_sync: SqliteSync::Normal,
            max_connections: 8,
            busy_timeout: Duration::from_secs(10),
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

/// The transcript store. Cheap to clone (the pools are shared).
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    /// SQLite files: the connection of the group commit's transactions
    /// (`one_trip`).
    frame_writer: Option<std::sync::Arc<one_trip::FrameWriter>>,
}

/// A terminal session row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: TerminalSessionId,
    pub runner_id: String,
    pub user_id: String,
    pub idea: String,
    pub slot: String,
    pub tmux_session: String,
    pub created_at: Millis,
    pub last_connected_at: Option<Millis>,
    pub last_detached_at: Option<Millis>,
    /// The last sequence number stored (0 if none): `opened.last_seq`.
    pub last_seq: u64,
    /// The runner's id of this incarnation of the tmux session
    /// (`@bridge_instance`; '' for a session of protocol 1).
    pub instance: String,
    /// The command a person runs to attach in a terminal.
    pub attach: String,
    /// The runner's host name when it opened the session.
    pub host: String,
    /// When the last record was stored.
    pub last_activity_at: Option<Millis>,
    /// When the session was killed or its tmux server died (or a new
    /// instance replaced it); `None` while it may still be served.
    pub closed_at: Option<Millis>,
    /// Pane ids of the session's current topology, comma-separated.
    pub panes: String,
    /// The runner's numbering epoch ('' until a runner said `rebase`).
    pub epoch: String,
}

/// A stored Batch frame: the bytes as received, covering records
/// `first_seq..=last_seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFrame {
    pub first_seq: u64,
    pub last_seq: u64,
    pub bytes: Bytes,
}

/// A Batch frame to store with [`Store::append_frames`] or the
/// [`FrameCommitter`]: the bytes as received, covering records
/// `first_seq..=last_seq` of `session`; `at` is recorded as the session's
/// last activity when the frame is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFrame {
    pub session: TerminalSessionId,
    pub first_seq: u64,
    pub last_seq: u64,
    pub bytes: Bytes,
    pub at: Option<Millis>,
}

/// A stored Snapshot frame at `at_seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    pub at_seq: u64,
    pub bytes: Bytes,
    pub created_at: Millis,
}

/// What [`Store::append_frame`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// The frame was new and is now stored; forward it to browsers.
    Stored,
    /// Every record of the frame was stored already (a resend after a lost
    /// ack): nothing was written; ack again, do not forward.
    Duplicate,
}

/// The answer to a client that last saw `k`: never a gap, never a duplicate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    /// Frames `k+1..=head` in order (empty when `k == head`).
    Frames(Vec<StoredFrame>),
    /// The latest snapshot (at `m >= k`) and the frames `m+1..=head`.
    Snapshot {
        snapshot: StoredSnapshot,
        frames: Vec<StoredFrame>,
    },
}

/// The size of [`Store::since`]'s answer, from [`Store::since_cost`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinceCost {
    /// The stored head (`last_seq`).
    pub head: u64,
    /// Bytes of the frames (and snapshot) `since` would send.
    pub bytes: u64,
    /// Size of the latest stored snapshot, if any.
    pub snapshot_bytes: Option<u64>,
}

/// How much history to keep per terminal session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Snapshots to keep (at least 1 is always kept); frames older than the
    /// oldest kept snapshot are deleted.
    pub keep_snapshots: u32,
    /// Byte budget for frames plus snapshots. Past it, older snapshots (and
    /// the frames before the next one) go, down to the latest snapshot and
    /// the frames after it, which are never deleted.
    pub max_bytes: u64,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            keep_snapshots: 4,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// What one prune pass deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneStats {
    pub frames_deleted: u64,
    pub snapshots_deleted: u64,
}

impl std::ops::AddAssign for PruneStats {
    fn add_assign(&mut self, o: Self) {
        self.frames_deleted += o.frames_deleted;
        self.snapshots_deleted += o.snapshots_deleted;
    }
}

impl Store {
    /// Opens `url` with default [`StoreOptions`] and runs the migrations.
    /// `sqlite://PATH` (created if missing), `sqlite::memory:`,
    /// `postgres://…` / `postgresql://…`.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Self::connect_with(url, &StoreOptions::default()).await
    }

    /// [`Store::connect`] with explicit options.
    pub async fn connect_with(url: &str, opts: &StoreOptions) -> Result<Store, StoreError> {
        let mut frame_writer = None;
        let db = if url.starts_with("sqlite:") {
            let memory = url.contains(":memory:") || url.contains("mode=memory");
            let sync = match opts.sqlite_sync {
                SqliteSync::Normal => SqliteSynchronous::Normal,
                SqliteSync::Full => SqliteSynchronous::Full,
            };
            let connect = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .foreign_keys(true)
                .busy_timeout(opts.busy_timeout)
                .synchronous(sync);
            let connect = if memory {
                connect
            } else {
                // A first run under a fresh data directory: create it (0700)
                // and the database file (0600) before SQLite does, so that
                // transcripts and password hashes are the owner's alone.
                files::prepare_sqlite_file(connect.get_filename())
                    .await
                    .map_err(sqlx::Error::Io)?;
                connect.journal_mode(SqliteJournalMode::Wal)
            };
            // No ping before each acquire (sqlx's default): a SQLite
            // connection is a file in this process and cannot be lost the
            // way a network connection can, and the ping is a round trip to
            // the connection's thread before every query and transaction
            // (a stored frame's whole transaction is one, `one_trip`).
            let pool = if memory {
                SqlitePoolOptions::new()
                    .test_before_acquire(false)
                    .acquire_timeout(opts.acquire_timeout)
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
            } else {
                SqlitePoolOptions::new()
                    .test_before_acquire(false)
                    .acquire_timeout(opts.acquire_timeout)
                    .max_connections(opts.max_connections.max(1))
            };
            let pool = pool.connect_with(connect.clone()).await?;
            migrate_sqlite(&pool).await?;
            if !memory {
                frame_writer = Some(std::sync::Arc::new(one_trip::FrameWriter::new(connect)));
            }
            Db::Sqlite(pool)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .acquire_timeout(opts.acquire_timeout)
                .max_connections(opts.max_connections.max(1))
                .connect(url)
                .await?;
            POSTGRES_MIGRATIONS.run(&pool).await?;
            Db::Postgres(pool)
        } else {
            return Err(StoreError::UnsupportedUrl { url: redact(url) });
        };
        Ok(Store { db, frame_writer })
    }

    /// The pool, for queries of sibling modules (accounts) through
    /// [`on_db!`].
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn dialect(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Runs `SELECT 1` on a pooled connection: `Ok` when the database
    /// answers (the relay's `/readyz`). Bounded by the pool's acquire
    /// timeout; callers wanting a shorter deadline wrap it in one.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_db!(&self.db, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Closes every connection; pending writes have committed already.
    pub async fn close(&self) {
        if let Some(writer) = &self.frame_writer {
            writer.close().await;
        }
        on_db!(&self.db, pool => pool.close().await)
    }
}

/// Runs the SQLite migrations on one pooled connection with foreign key
/// enforcement off, as SQLite's own procedure for schema changes requires:
/// rebuilding a table (migration 0030 drops a UNIQUE constraint that way)
/// must not cascade a `DROP TABLE` into the tables that reference it. The
/// setting cannot change inside a transaction, so it is switched around
/// the migrator (which runs each migration in one).
async fn migrate_sqlite(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    sqlx::query("PRAGMA foreign_keys = OFF")
        .execute(&mut *conn)
        .await?;
    let ran = SQLITE_MIGRATIONS.run(&mut *conn).await;
    sqlx::query("PRAGMA foreign_keys = ON")
        .execute(&mut *conn)
        .await?;
    ran?;
    Ok(())
}

/// The URL without a password, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…{}", &url[..s], &url[at..]),
        _ => url.to_owned(),
    }
}

/// u64 sequence number to the databases' i64.
pub(crate) fn seq_to_db(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::SeqOutOfRange(seq))
}

/// A stored i64 sequence number or size back to u64.
pub(crate) fn seq_from_db(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what}: {v}")))
}
