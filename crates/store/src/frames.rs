//! Frames and snapshots of a terminal session: gap-free appends with
//! idempotent resends, snapshot checkpoints, the `since` answer for a
//! resuming client, and retention pruning.
//!
//! Invariants kept here (every write runs in one transaction that first
//! locks the session row):
//! - stored frames form one gap-free range ending at the session's
//!   `last_seq`; pruning only removes a prefix of it;
//! - no snapshot lies strictly inside a stored frame, so a snapshot at `m`
//!   is always followed by a frame starting at `m + 1` (or by nothing);
//! - pruning never deletes the latest snapshot or any frame after it, so
//!   `since` can always answer from the latest snapshot.

use bytes::Bytes;

use crate::one_trip;
use crate::{
    Appended, Db, Millis, NewFrame, PruneStats, RetentionPolicy, Since, SinceCost, Store,
    StoreError, StoredFrame, StoredSnapshot, TerminalSessionId, on_db, seq_from_db, seq_to_db,
};

/// The bytes of a session's frames after seq `$2` (its catch-up from
/// there) and after seq `$3` (from a snapshot at `$3`): the weighing of
/// `since` and `since_cost`.
const SIZES_AFTER: &str = "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT), \
     CAST(COALESCE(SUM(CASE WHEN last_seq > $3 THEN size ELSE 0 END), 0) AS BIGINT) \
     FROM frames WHERE session_id = $1 AND last_seq > $2";

type FrameRow = (i64, i64, Vec<u8>);
type SnapshotRow = (i64, Vec<u8>, i64);

fn frame(row: FrameRow) -> Result<StoredFrame, StoreError> {
    let (first, last, bytes) = row;
    Ok(StoredFrame {
        first_seq: seq_from_db(first, "first_seq")?,
        last_seq: seq_from_db(last, "last_seq")?,
        bytes: Bytes::from(bytes),
    })
}

fn frames(rows: Vec<FrameRow>) -> Result<Vec<StoredFrame>, StoreError> {
    rows.into_iter().map(frame).collect()
}

fn snapshot(row: SnapshotRow) -> Result<StoredSnapshot, StoreError> {
    let (at, bytes, created_at) = row;
    Ok(StoredSnapshot {
        at_seq: seq_from_db(at, "at_seq")?,
        bytes: Bytes::from(bytes),
        created_at,
    })
}

fn size_to_db(len: usize) -> Result<i64, StoreError> {
    i64::try_from(len).map_err(|_| StoreError::Corrupt(format!("blob of {len} bytes")))
}

/// Whether no two of `runs` (sorted by session) are of one session.
fn one_run_per_session(frames: &[NewFrame], runs: &[one_trip::Run<'_>]) -> bool {
    runs.windows(2)
        .all(|w| frames[w[0][0].0].session != frames[w[1][0].0].session)
}

/// Checks that frames after `after` start at `after + 1` and run gap-free
/// to `head`.
fn check_contiguous(after: u64, head: u64, list: &[StoredFrame]) -> Result<(), StoreError> {
    let mut next = after + 1;
    for f in list {
        if f.first_seq != next {
            return Err(StoreError::Corrupt(format!(
                "stored frames jump from {} to {}",
                next - 1,
                f.first_seq
            )));
        }
        next = f.last_seq + 1;
    }
    if next - 1 != head {
        return Err(StoreError::Corrupt(format!(
            "stored frames end at {} but last_seq is {head}",
            next - 1
        )));
    }
    Ok(())
}

/// What a frame that did not continue the stored sequence ending at `head`
/// is: a resend of stored records, an overlap or a gap.
fn not_appended(first_seq: u64, last_seq: u64, head: u64) -> Result<Appended, StoreError> {
    if last_seq <= head {
        Ok(Appended::Duplicate)
    } else if first_seq <= head {
        Err(StoreError::Overlap {
            first: first_seq,
            last: last_seq,
            stored: head,
        })
    } else {
        Err(StoreError::Gap {
            expected: head + 1,
            got: first_seq,
        })
    }
}

/// Moves session `$2`'s `last_seq` to `$1` if it is `$3` (the frame
/// continues it), recording `$4` (if not NULL) as its last activity; one
/// row changed means stored. The row's lock is the transaction's write
/// lock (SQLite: taken before any read).
const ADVANCE_HEAD: &str = "UPDATE terminal_sessions SET last_seq = $1, \
     last_activity_at = COALESCE($4, last_activity_at) \
     WHERE id = $2 AND last_seq = $3";

/// The head of the multi-row INSERTs of frames (here and in
/// [`one_trip`]), the columns in the order their values are bound.
pub(crate) const INSERT_FRAMES: &str =
    "INSERT INTO frames (session_id, first_seq, last_seq, size, bytes) ";

/// Rows per multi-row INSERT of [`Store::append_frames`].
const INSERT_ROWS: usize = 512;

const FRAMES_AFTER: &str = "SELECT first_seq, last_seq, bytes FROM frames \
     WHERE session_id = $1 AND last_seq > $2 ORDER BY last_seq";
const LATEST_SNAPSHOT: &str = "SELECT at_seq, bytes, created_at FROM snapshots \
     WHERE session_id = $1 ORDER BY at_seq DESC LIMIT 1";

impl Store {
    /// Stores a Batch frame covering `first_seq..=last_seq` and advances the
    /// session's `last_seq`, in one transaction. A frame whose records are
    /// all stored already is a resend: `Ok(Appended::Duplicate)`, nothing
    /// written. A frame not starting at `last_seq + 1` is refused
    /// ([`StoreError::Gap`], [`StoreError::Overlap`]). When this returns
    /// `Ok`, the frame is committed (see the module doc on durability).
    pub async fn append_frame(
        &self,
        session: TerminalSessionId,
        first_seq: u64,
        last_seq: u64,
        bytes: &[u8],
    ) -> Result<Appended, StoreError> {
        self.append_frame_at(session, first_seq, last_seq, bytes, None)
            .await
    }

    /// [`Store::append_frame`], also recording `at` as the session's last
    /// activity when the frame is stored.
    pub async fn append_frame_at(
        &self,
        session: TerminalSessionId,
        first_seq: u64,
        last_seq: u64,
        bytes: &[u8],
        at: Option<Millis>,
    ) -> Result<Appended, StoreError> {
        if first_seq == 0 || first_seq > last_seq {
            return Err(StoreError::InvalidRange {
                first: first_seq,
                last: last_seq,
            });
        }
        let first_db = seq_to_db(first_seq)?;
        let last_db = seq_to_db(last_seq)?;
        let size = size_to_db(bytes.len())?;
        // Hot path: two statements. The conditional UPDATE both checks that
        // the frame continues the stored sequence and takes the session
        // row's write lock (SQLite: the database write lock, before any
        // read, so no busy-snapshot upgrade failure).
        let stored = on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(ADVANCE_HEAD)
            .bind(last_db)
            .bind(session)
            .bind(first_db - 1)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                sqlx::query(
                    "INSERT INTO frames (session_id, first_seq, last_seq, size, bytes) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(session)
                .bind(first_db)
                .bind(last_db)
                .bind(size)
                .bind(bytes)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                true
            } else {
                tx.rollback().await?;
                false
            }
        });
        if stored {
            return Ok(Appended::Stored);
        }
        // Slow path: explain the refusal. last_seq only grows, so a
        // duplicate seen here stays a duplicate.
        let head = self.last_seq(session).await?;
        not_appended(first_seq, last_seq, head)
    }

    /// Stores many Batch frames in one transaction (group commit): each
    /// frame as [`Store::append_frame_at`] would, in the order given per
    /// session (sessions are visited in id order, so two batches lock
    /// session rows in the same order). The outer `Err` means the
    /// transaction failed and nothing was stored; otherwise the
    /// transaction committed and the answer per frame, in the order of
    /// `frames`, is what it did (`Stored`, `Duplicate`) or why it was
    /// refused (a gap, an overlap, an invalid range, no such session: a
    /// refused frame writes nothing and does not undo the others). On a
    /// SQLite file, a run of frames that does not continue its session is
    /// answered by a second transaction; should that one fail, its frames
    /// alone are answered [`StoreError::Batch`].
    pub async fn append_frames(
        &self,
        frames: &[NewFrame],
    ) -> Result<Vec<Result<Appended, StoreError>>, StoreError> {
        let mut out: Vec<Option<Result<Appended, StoreError>>> =
            frames.iter().map(|_| None).collect();
        let mut todo: Vec<(usize, i64, i64, i64)> = Vec::with_capacity(frames.len());
        for (i, f) in frames.iter().enumerate() {
            if f.first_seq == 0 || f.first_seq > f.last_seq {
                out[i] = Some(Err(StoreError::InvalidRange {
                    first: f.first_seq,
                    last: f.last_seq,
                }));
                continue;
            }
            match (
                seq_to_db(f.first_seq),
                seq_to_db(f.last_seq),
                size_to_db(f.bytes.len()),
            ) {
                (Ok(first), Ok(last), Ok(size)) => todo.push((i, first, last, size)),
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => out[i] = Some(Err(e)),
            }
        }
        // Stable: the frames of one session keep their order.
        todo.sort_by_key(|t| frames[t.0].session);
        // Runs of frames of one session, each continuing the one before:
        // one UPDATE per run moves the session's last_seq over all of them.
        let mut runs: Vec<one_trip::Run<'_>> = Vec::new();
        let mut rest = todo.as_slice();
        while !rest.is_empty() {
            let mut n = 1;
            while n < rest.len()
                && frames[rest[n].0].session == frames[rest[0].0].session
                && rest[n].1 == rest[n - 1].2 + 1
            {
                n += 1;
            }
            runs.push(&rest[..n]);
            rest = &rest[n..];
        }
        // A SQLite file, every session in one run and the frames fit one
        // INSERT (the usual batch): the whole transaction in one round trip
        // ([`one_trip`]); runs it could not store go on to the
        // frame-by-frame path in a second transaction.
        if let Some(writer) = &self.frame_writer
            && !runs.is_empty()
            && todo.len() <= INSERT_ROWS
            && one_run_per_session(frames, &runs)
        {
            let stored = writer.store_runs(frames, &runs).await?;
            let mut rest = Vec::new();
            for (run, stored) in runs.into_iter().zip(stored) {
                if stored {
                    for t in run {
                        out[t.0] = Some(Ok(Appended::Stored));
                    }
                } else {
                    rest.push(run);
                }
            }
            if !rest.is_empty() {
                // The batch's first transaction committed: a failure now
                // is these frames' alone.
                if let Err(e) = self.append_runs(frames, &rest, &mut out).await {
                    let e = std::sync::Arc::new(e);
                    for t in rest.iter().flat_map(|run| run.iter()) {
                        out[t.0] = Some(Err(StoreError::Batch(e.clone())));
                    }
                }
            }
        } else if !runs.is_empty() {
            self.append_runs(frames, &runs, &mut out).await?;
        }
        Ok(out
            .into_iter()
            .map(|o| o.unwrap_or(Err(StoreError::Corrupt("frame left unanswered".into()))))
            .collect())
    }

    /// The transaction of [`Store::append_frames`] over `runs` (as it
    /// has always run; a SQLite file's usual batch takes `one_trip`
    /// instead):
    /// a run continuing its session's `last_seq` is stored by one UPDATE
    /// and the frames' INSERT, any other frame by frame. Answers go to
    /// `out`; on `Err` the transaction failed and those answers are void.
    async fn append_runs(
        &self,
        frames: &[NewFrame],
        runs: &[one_trip::Run<'_>],
        out: &mut [Option<Result<Appended, StoreError>>],
    ) -> Result<(), StoreError> {
        let todo: usize = runs.iter().map(|r| r.len()).sum();
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let mut insert: Vec<(usize, i64, i64, i64)> = Vec::with_capacity(todo);
            for &run in runs {
                let (first, last) = (&frames[run[0].0], &run[run.len() - 1]);
                let at = run.iter().rev().find_map(|t| frames[t.0].at);
                let n = sqlx::query(ADVANCE_HEAD)
                .bind(last.2)
                .bind(first.session)
                .bind(run[0].1 - 1)
                .bind(at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 1 {
                    for t in run {
                        out[t.0] = Some(Ok(Appended::Stored));
                    }
                    insert.extend_from_slice(run);
                    continue;
                }
                // Not a plain continuation: frame by frame, as
                // append_frame_at does.
                for &(i, first_db, last_db, size) in run {
                    let f = &frames[i];
                    let n = sqlx::query(ADVANCE_HEAD)
                    .bind(last_db)
                    .bind(f.session)
                    .bind(first_db - 1)
                    .bind(f.at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    let answer = if n == 1 {
                        insert.push((i, first_db, last_db, size));
                        Ok(Appended::Stored)
                    } else {
                        // The row is locked by this transaction or absent.
                        let head: Option<i64> = sqlx::query_scalar(
                            "SELECT last_seq FROM terminal_sessions WHERE id = $1",
                        )
                        .bind(f.session)
                        .fetch_optional(&mut *tx)
                        .await?;
                        match head {
                            None => Err(StoreError::NoSuchSession(f.session)),
                            Some(h) => seq_from_db(h, "last_seq")
                                .and_then(|h| not_appended(f.first_seq, f.last_seq, h)),
                        }
                    };
                    out[i] = Some(answer);
                }
            }
            // Every stored frame in a few multi-row INSERTs (5 bound
            // values a row, well under both databases' limits).
            for chunk in insert.chunks(INSERT_ROWS) {
                let mut q = sqlx::QueryBuilder::new(INSERT_FRAMES);
                q.push_values(chunk, |mut row, &(i, first_db, last_db, size)| {
                    row.push_bind(frames[i].session)
                        .push_bind(first_db)
                        .push_bind(last_db)
                        .push_bind(size)
                        .push_bind(frames[i].bytes.as_ref());
                });
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Stores a Snapshot frame at `at_seq` (replacing one stored at the same
    /// sequence). Refused when `at_seq` is past the stored sequence or
    /// inside a stored frame.
    pub async fn put_snapshot(
        &self,
        session: TerminalSessionId,
        at_seq: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let at_db = seq_to_db(at_seq)?;
        let size = size_to_db(bytes.len())?;
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            // A no-op write that locks the session row against appends and
            // pruning for the rest of the transaction.
            let head: Option<i64> = sqlx::query_scalar(
                "UPDATE terminal_sessions SET last_seq = last_seq WHERE id = $1 RETURNING last_seq",
            )
            .bind(session)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(head) = head else {
                return Err(StoreError::NoSuchSession(session));
            };
            let head = seq_from_db(head, "last_seq")?;
            if at_seq > head {
                return Err(StoreError::SnapshotAhead { at: at_seq, stored: head });
            }
            let inside: Option<(i64, i64)> = sqlx::query_as(
                "SELECT first_seq, last_seq FROM frames \
                 WHERE session_id = $1 AND first_seq <= $2 AND last_seq > $2",
            )
            .bind(session)
            .bind(at_db)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((first, last)) = inside {
                return Err(StoreError::SnapshotMisaligned {
                    at: at_seq,
                    first: seq_from_db(first, "first_seq")?,
                    last: seq_from_db(last, "last_seq")?,
                });
            }
            sqlx::query(
                "INSERT INTO snapshots (session_id, at_seq, size, bytes) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (session_id, at_seq) DO UPDATE \
                 SET size = excluded.size, bytes = excluded.bytes",
            )
            .bind(session)
            .bind(at_db)
            .bind(size)
            .bind(bytes)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// The last sequence number stored for `session` (0 if none).
    pub async fn last_seq(&self, session: TerminalSessionId) -> Result<u64, StoreError> {
        let v: Option<i64> = on_db!(&self.db, pool => {
            sqlx::query_scalar("SELECT last_seq FROM terminal_sessions WHERE id = $1")
                .bind(session)
                .fetch_optional(pool)
                .await?
        });
        match v {
            Some(v) => seq_from_db(v, "last_seq"),
            None => Err(StoreError::NoSuchSession(session)),
        }
    }

    /// Stored frames with `last_seq > k`, in order, stopping once their
    /// total size reaches `max_bytes` (the first frame is always included,
    /// so a caller paging with the last returned `last_seq` progresses).
    pub async fn frames_after(
        &self,
        session: TerminalSessionId,
        k: u64,
        max_bytes: u64,
    ) -> Result<Vec<StoredFrame>, StoreError> {
        let k_db = seq_to_db(k)?;
        let budget = i64::try_from(max_bytes).unwrap_or(i64::MAX);
        // Running total over the ordered frames; a frame is returned when
        // the frames before it stay under the budget.
        let rows: Vec<FrameRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT first_seq, last_seq, bytes FROM ( \
                   SELECT first_seq, last_seq, bytes, \
                          SUM(size) OVER (ORDER BY last_seq) - size AS run_before, \
                          ROW_NUMBER() OVER (ORDER BY last_seq) AS rn \
                   FROM frames WHERE session_id = $1 AND last_seq > $2 \
                 ) AS t WHERE run_before < $3 OR rn = 1 ORDER BY last_seq",
            )
            .bind(session)
            .bind(k_db)
            .bind(budget)
            .fetch_all(pool)
            .await?
        });
        frames(rows)
    }

    /// Up to `max` stored frames ending after `after`, in order: a page
    /// of [`Store::frames_after`] for readers that walk a whole session
    /// (the search indexer, the asciicast export) in bounded memory.
    pub async fn frames_page(
        &self,
        session: TerminalSessionId,
        after: u64,
        max: u32,
    ) -> Result<Vec<StoredFrame>, StoreError> {
        let sql = format!("{FRAMES_AFTER} LIMIT $3");
        let rows: Vec<FrameRow> = on_db!(&self.db, pool => {
            sqlx::query_as(&sql)
                .bind(session)
                .bind(seq_to_db(after)?)
                .bind(i64::from(max))
                .fetch_all(pool)
                .await?
        });
        frames(rows)
    }

    /// The snapshot with the highest `at_seq`.
    pub async fn latest_snapshot(
        &self,
        session: TerminalSessionId,
    ) -> Result<Option<StoredSnapshot>, StoreError> {
        let row: Option<SnapshotRow> = on_db!(&self.db, pool => {
            sqlx::query_as(LATEST_SNAPSHOT).bind(session).fetch_optional(pool).await?
        });
        row.map(snapshot).transpose()
    }

    /// The earliest snapshot with `at_seq >= k`.
    pub async fn snapshot_at_or_after(
        &self,
        session: TerminalSessionId,
        k: u64,
    ) -> Result<Option<StoredSnapshot>, StoreError> {
        let k_db = seq_to_db(k)?;
        let row: Option<SnapshotRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT at_seq, bytes, created_at FROM snapshots \
                 WHERE session_id = $1 AND at_seq >= $2 ORDER BY at_seq LIMIT 1",
            )
            .bind(session)
            .bind(k_db)
            .fetch_optional(pool)
            .await?
        });
        row.map(snapshot).transpose()
    }

    /// What a client that last saw `k` needs, read in one consistent
    /// transaction: the frames `k+1..=head` when all are stored and they
    /// weigh no more than the alternative, else the latest snapshot (at
    /// `m >= k`) and the frames `m+1..=head`.
    pub async fn since(&self, session: TerminalSessionId, k: u64) -> Result<Since, StoreError> {
        let k_db = seq_to_db(k)?;
        let postgres = matches!(self.db, Db::Postgres(_));
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            if postgres {
                // One snapshot of the data for all the reads below, so a
                // concurrent prune cannot remove frames between them.
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .execute(&mut *tx)
                    .await?;
            }
            let head: Option<i64> =
                sqlx::query_scalar("SELECT last_seq FROM terminal_sessions WHERE id = $1")
                    .bind(session)
                    .fetch_optional(&mut *tx)
                    .await?;
            let head = resume_head(session, head, k)?;
            if k == head {
                return Ok(Since::Frames(Vec::new()));
            }
            let first: Option<i64> = sqlx::query_scalar(
                "SELECT first_seq FROM frames WHERE session_id = $1 AND last_seq > $2 \
                 ORDER BY last_seq LIMIT 1",
            )
            .bind(session)
            .bind(k_db)
            .fetch_optional(&mut *tx)
            .await?;
            let snap_meta: Option<(i64, i64)> = sqlx::query_as(
                "SELECT at_seq, size FROM snapshots WHERE session_id = $1 \
                 ORDER BY at_seq DESC LIMIT 1",
            )
            .bind(session)
            .fetch_optional(&mut *tx)
            .await?;
            let mut frames_complete = first == Some(k_db + 1);
            if let (true, Some((m, snap_size))) = (frames_complete, snap_meta)
                && m > k_db
            {
                // Both answers are exact; send the smaller. A fresh tab
                // (k = 0) on a long session gets the snapshot instead of
                // the whole retained history.
                let (after_k, after_m): (i64, i64) = sqlx::query_as(
                    SIZES_AFTER,
                )
                .bind(session)
                .bind(k_db)
                .bind(m)
                .fetch_one(&mut *tx)
                .await?;
                if snap_size.saturating_add(after_m) < after_k {
                    frames_complete = false;
                }
            }
            if frames_complete {
                let rows: Vec<FrameRow> = sqlx::query_as(FRAMES_AFTER)
                    .bind(session)
                    .bind(k_db)
                    .fetch_all(&mut *tx)
                    .await?;
                let list = frames(rows)?;
                check_contiguous(k, head, &list)?;
                return Ok(Since::Frames(list));
            }
            let snap: Option<SnapshotRow> = sqlx::query_as(LATEST_SNAPSHOT)
                .bind(session)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(snap) = snap.map(snapshot).transpose()? else {
                return Err(StoreError::NoResumePoint { k });
            };
            if snap.at_seq < k {
                return Err(StoreError::NoResumePoint { k });
            }
            let rows: Vec<FrameRow> = sqlx::query_as(FRAMES_AFTER)
                .bind(session)
                .bind(seq_to_db(snap.at_seq)?)
                .fetch_all(&mut *tx)
                .await?;
            let list = frames(rows)?;
            check_contiguous(snap.at_seq, head, &list)?;
            Ok(Since::Snapshot { snapshot: snap, frames: list })
        })
    }

    /// What [`Store::since`] would answer a client at `k`, in sizes only
    /// (no frame is read): its bytes, the stored head, and the latest
    /// snapshot's size, for a relay that bounds what a resuming client
    /// receives. Refusals as `since` (`Ahead`, `NoSuchSession`).
    pub async fn since_cost(
        &self,
        session: TerminalSessionId,
        k: u64,
    ) -> Result<SinceCost, StoreError> {
        let k_db = seq_to_db(k)?;
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let head: Option<i64> =
                sqlx::query_scalar("SELECT last_seq FROM terminal_sessions WHERE id = $1")
                    .bind(session)
                    .fetch_optional(&mut *tx)
                    .await?;
            let head = resume_head(session, head, k)?;
            let snap_meta: Option<(i64, i64)> = sqlx::query_as(
                "SELECT at_seq, size FROM snapshots WHERE session_id = $1 \
                 ORDER BY at_seq DESC LIMIT 1",
            )
            .bind(session)
            .fetch_optional(&mut *tx)
            .await?;
            let snapshot_bytes = snap_meta.map(|(_, size)| u64::try_from(size).unwrap_or(0));
            if k == head {
                return Ok(SinceCost { head, bytes: 0, snapshot_bytes });
            }
            let first: Option<i64> = sqlx::query_scalar(
                "SELECT first_seq FROM frames WHERE session_id = $1 AND last_seq > $2 \
                 ORDER BY last_seq LIMIT 1",
            )
            .bind(session)
            .bind(k_db)
            .fetch_optional(&mut *tx)
            .await?;
            let m = snap_meta.map_or(0, |(m, _)| m);
            let (after_k, after_m): (i64, i64) = sqlx::query_as(
                SIZES_AFTER,
            )
            .bind(session)
            .bind(k_db)
            .bind(m)
            .fetch_one(&mut *tx)
            .await?;
            tx.rollback().await?;
            // The same choice as `since`.
            let frames_complete = first == Some(k_db + 1);
            let bytes = match snap_meta {
                Some((m, size)) if m >= k_db && (!frames_complete || (m > k_db && size.saturating_add(after_m) < after_k)) => {
                    size.saturating_add(after_m)
                }
                _ => after_k,
            };
            Ok(SinceCost { head, bytes: u64::try_from(bytes).unwrap_or(0), snapshot_bytes })
        })
    }

    /// Applies `policy` to one session: keeps the latest
    /// `keep_snapshots` (at least 1) snapshots, fewer while frames plus
    /// snapshots exceed `max_bytes` (never fewer than 1), and deletes the
    /// older snapshots and every frame ending at or before the oldest kept
    /// snapshot. A session without snapshots keeps all its frames.
    pub async fn prune(
        &self,
        session: TerminalSessionId,
        policy: RetentionPolicy,
    ) -> Result<PruneStats, StoreError> {
        let budget = i64::try_from(policy.max_bytes).unwrap_or(i64::MAX);
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let locked = sqlx::query("UPDATE terminal_sessions SET last_seq = last_seq WHERE id = $1")
                .bind(session)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if locked == 0 {
                return Err(StoreError::NoSuchSession(session));
            }
            let snaps: Vec<(i64, i64)> = sqlx::query_as(
                "SELECT at_seq, size FROM snapshots WHERE session_id = $1 ORDER BY at_seq DESC",
            )
            .bind(session)
            .fetch_all(&mut *tx)
            .await?;
            if snaps.is_empty() {
                tx.rollback().await?;
                return Ok(PruneStats::default());
            }
            let wanted = usize::try_from(policy.keep_snapshots).unwrap_or(usize::MAX);
            let mut keep = wanted.clamp(1, snaps.len());
            while keep > 1 {
                let cut = snaps[keep - 1].0;
                let frame_bytes: i64 = sqlx::query_scalar(
                    "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM frames \
                     WHERE session_id = $1 AND last_seq > $2",
                )
                .bind(session)
                .bind(cut)
                .fetch_one(&mut *tx)
                .await?;
                let snap_bytes: i64 = snaps[..keep].iter().map(|s| s.1).sum();
                if frame_bytes.saturating_add(snap_bytes) <= budget {
                    break;
                }
                keep -= 1;
            }
            let cut = snaps[keep - 1].0;
            let snapshots_deleted = sqlx::query(
                "DELETE FROM snapshots WHERE session_id = $1 AND at_seq < $2",
            )
            .bind(session)
            .bind(cut)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let frames_deleted = sqlx::query(
                "DELETE FROM frames WHERE session_id = $1 AND last_seq <= $2",
            )
            .bind(session)
            .bind(cut)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(PruneStats { frames_deleted, snapshots_deleted })
        })
    }

    /// [`Store::prune`] over every session; a failing session is logged
    /// and skipped.
    pub async fn prune_all(&self, policy: RetentionPolicy) -> Result<PruneStats, StoreError> {
        let mut total = PruneStats::default();
        for id in self.session_ids().await? {
            match self.prune(id, policy).await {
                Ok(s) => total += s,
                // Deleted between the listing and the prune.
                Err(StoreError::NoSuchSession(_)) => {}
                Err(e) => tracing::warn!(session = id, error = %e, "prune failed"),
            }
        }
        Ok(total)
    }
}

/// The stored head of a session a client resumes at `k` from: refused when
/// the session does not exist or `k` is past it (`since`, `since_cost`).
fn resume_head(session: TerminalSessionId, head: Option<i64>, k: u64) -> Result<u64, StoreError> {
    let Some(head) = head else {
        return Err(StoreError::NoSuchSession(session));
    };
    let head = seq_from_db(head, "last_seq")?;
    if k > head {
        return Err(StoreError::Ahead { k, head });
    }
    Ok(head)
}
