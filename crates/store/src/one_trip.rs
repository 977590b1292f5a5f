//! Group commit on SQLite in one round trip to the connection's thread.
//!
//! sqlx runs every SQLite connection on a thread of its own and hands it
//! one command at a time: a transaction of [`Store::append_frames`] built
//! from `begin`, an UPDATE, an INSERT and `commit` is four round trips
//! (`begin` and `commit` are each acknowledged back, so they wake both
//! threads twice). Each one wakes that thread and then the task waiting on
//! it: the runner's ack waits for all of them, and while a person types
//! they were most of the relay's thread switches per keystroke, on the same
//! cores as the next keystroke's echo.
//!
//! Here the whole batch is one command: a single text of statements,
//! `BEGIN; (UPDATE; INSERT …)×runs; COMMIT`, bound all at once, whose
//! statements SQLite runs one after the other on that thread. Each INSERT
//! stores its run's frames only when the UPDATE just before it moved the
//! session's `last_seq` (`WHERE changes() = 1`: SQLite's count of rows the
//! last completed statement changed), so the text needs no decision taken
//! between its statements; the answer per statement says which runs went
//! in. A run the UPDATE did not match is left to the caller, which retries
//! it frame by frame.
//!
//! sqlx 0.8 binds parameters across several statements of one text on
//! SQLite (each statement's `?` take the next arguments). It marks that
//! behaviour deprecated for a later release; the store's tests of
//! `append_frames` go through here and would show its removal.
//!
//! The connection is one of its own ([`FrameWriter`], on SQLite files),
//! not the pool's: the pool hands its idle connections out in turn, and
//! each found its page cache stale after the others' writes and read the
//! pages again; and a pooled connection is pinged, one more round trip,
//! each time it goes back. The transaction is opened by the text, not by
//! sqlx, so sqlx cannot roll it back for us: after an error the
//! connection gets a `ROLLBACK`, and a connection that may still hold an
//! open transaction (that `ROLLBACK` failed, or the future was dropped half
//! way) is closed (which rolls the transaction back) and the next batch
//! opens another.

use futures_util::TryStreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection, Executor, QueryBuilder, Sqlite};
use tokio::sync::Mutex;

use crate::frames::INSERT_FRAMES;
use crate::{NewFrame, StoreError};

/// One run of frames of one session, each continuing the one before:
/// (index into the batch, first seq, last seq, size), as the database
/// stores them.
pub(crate) type Run<'a> = &'a [(usize, i64, i64, i64)];

/// The connection the group commit's transactions run on.
#[derive(Debug)]
pub(crate) struct FrameWriter {
    connect: SqliteConnectOptions,
    /// `None` until the first batch, and after a batch whose transaction
    /// may have been left open.
    conn: Mutex<Option<SqliteConnection>>,
}

impl FrameWriter {
    /// A writer that connects with `connect` when it is first used.
    pub(crate) fn new(connect: SqliteConnectOptions) -> FrameWriter {
        FrameWriter {
            connect,
            conn: Mutex::new(None),
        }
    }

    /// Stores `runs` (of distinct sessions) in one transaction sent as one
    /// command. `Ok(v)`: committed, and `v[i]` says whether `runs[i]` was
    /// stored (its session's `last_seq` was the run's first seq minus
    /// one); a run not stored wrote nothing. `Err`: nothing was stored,
    /// except after a commit whose statements' counts do not add up (never
    /// seen; [`StoreError::Corrupt`]).
    pub(crate) async fn store_runs(
        &self,
        frames: &[NewFrame],
        runs: &[Run<'_>],
    ) -> Result<Vec<bool>, StoreError> {
        let mut q = batch_text(frames, runs);
        // The common batch (one frame) always has the same text: keep it
        // prepared. Other shapes would only crowd the statement cache.
        let persistent = runs.len() == 1 && runs[0].len() == 1;
        let query = q.build().persistent(persistent);

        let mut slot = self.conn.lock().await;
        let mut conn = match slot.take() {
            Some(conn) => conn,
            None => self.connect.connect().await?,
        };
        // Dropped here (this future dropped), `conn` closes and its
        // transaction, if open, rolls back.
        let result: Result<Vec<_>, sqlx::Error> = conn.execute_many(query).try_collect().await;
        let done = match result {
            Ok(done) => done,
            Err(e) => {
                // A statement failed: the transaction may still be open
                // (most errors leave it open; a few roll it back themselves).
                match conn.execute("ROLLBACK").await {
                    Ok(_) => *slot = Some(conn),
                    Err(sqlx::Error::Database(d))
                        if d.message().contains("no transaction is active") =>
                    {
                        *slot = Some(conn)
                    }
                    Err(_) => drop(conn.close().await),
                }
                return Err(e.into());
            }
        };
        *slot = Some(conn);
        drop(slot);
        answers(&done, runs)
    }

    /// Closes the connection, if open.
    pub(crate) async fn close(&self) {
        if let Some(conn) = self.conn.lock().await.take() {
            // Nothing is left to roll back between batches.
            let _ = conn.close().await;
        }
    }
}

/// `BEGIN; (UPDATE; INSERT)×runs; COMMIT` with every value bound.
fn batch_text<'a>(frames: &'a [NewFrame], runs: &[Run<'_>]) -> QueryBuilder<'a, Sqlite> {
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new("BEGIN;");
    for run in runs {
        let (first, last) = (run[0], run[run.len() - 1]);
        let session = frames[first.0].session;
        let at = run.iter().rev().find_map(|t| frames[t.0].at);
        // `frames::ADVANCE_HEAD`, its values bound in place.
        q.push(" UPDATE terminal_sessions SET last_seq = ")
            .push_bind(last.2)
            .push(", last_activity_at = COALESCE(")
            .push_bind(at)
            .push(", last_activity_at) WHERE id = ")
            .push_bind(session)
            .push(" AND last_seq = ")
            .push_bind(first.1 - 1)
            .push("; ")
            .push(INSERT_FRAMES)
            .push("SELECT column1, column2, column3, column4, column5 FROM (");
        q.push_values(run.iter(), |mut row, &(i, first_db, last_db, size)| {
            row.push_bind(session)
                .push_bind(first_db)
                .push_bind(last_db)
                .push_bind(size)
                .push_bind(frames[i].bytes.as_ref());
        });
        q.push(") WHERE changes() = 1;");
    }
    q.push(" COMMIT;");
    q
}

/// Which runs the statements' counts say went in.
fn answers(
    done: &[sqlx::sqlite::SqliteQueryResult],
    runs: &[Run<'_>],
) -> Result<Vec<bool>, StoreError> {
    // BEGIN, then an UPDATE and an INSERT per run, then COMMIT.
    if done.len() != 2 + 2 * runs.len() {
        return Err(StoreError::Corrupt(format!(
            "{} statement results for a batch of {} runs",
            done.len(),
            runs.len()
        )));
    }
    runs.iter()
        .enumerate()
        .map(|(i, run)| {
            let (updated, inserted) = (
                done[1 + 2 * i].rows_affected(),
                done[2 + 2 * i].rows_affected(),
            );
            match (updated, inserted) {
                (0, 0) => Ok(false),
                (1, n) if n == run.len() as u64 => Ok(true),
                _ => Err(StoreError::Corrupt(format!(
                    "a run of {} frames: {updated} sessions updated, {inserted} frames inserted",
                    run.len()
                ))),
            }
        })
        .collect()
}
