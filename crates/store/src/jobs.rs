//! Jobs (issue 11) and their logs: one row per job with its state, and the
//! log as compressed chunks that tile it by byte offset. The relay decides
//! the states; this module stores them. No clock: times are arguments.

use crate::{Millis, Store, StoreError, TerminalSessionId, on_db};

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JobRecord {
    pub id: String,
    pub user_id: String,
    /// `job`, `agent` or `devserver` (issue 12).
    pub kind: String,
    pub idea: String,
    pub slot: String,
    pub name: String,
    pub command: String,
    pub cwd: Option<String>,
    /// A JSON object.
    pub env: String,
    pub want_runner_id: Option<String>,
    pub runner_id: Option<String>,
    pub state: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub error: Option<String>,
    pub session_id: Option<TerminalSessionId>,
    pub pane: Option<String>,
    pub cancel_requested: bool,
    pub log_bytes: i64,
    pub created_at: Millis,
    pub started_at: Option<Millis>,
    pub ended_at: Option<Millis>,
    /// A dev server's detected ports: a JSON array of
    /// `protocol::runner::DetectedPort`.
    pub ports: String,
}

const JOB_COLUMNS: &str = "id, user_id, kind, idea, slot, name, command, cwd, env, \
     want_runner_id, runner_id, state, exit_code, signal, error, session_id, pane, \
     cancel_requested, log_bytes, created_at, started_at, ended_at, ports";

/// One stored piece of a job's log.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LogChunkRecord {
    pub start_byte: i64,
    pub len: i64,
    /// One zstd frame of `len` bytes.
    pub data: Vec<u8>,
}

fn to_db(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::SeqOutOfRange(n))
}

impl Store {
    /// Stores a new job (its `log_bytes` must be 0).
    pub async fn insert_job(&self, j: &JobRecord) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO jobs ({JOB_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
             $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)"
        );
        on_db!(&self.db, pool => {
            sqlx::query(&sql)
                .bind(&j.id)
                .bind(&j.user_id)
                .bind(&j.kind)
                .bind(&j.idea)
                .bind(&j.slot)
                .bind(&j.name)
                .bind(&j.command)
                .bind(&j.cwd)
                .bind(&j.env)
                .bind(&j.want_runner_id)
                .bind(&j.runner_id)
                .bind(&j.state)
                .bind(j.exit_code)
                .bind(j.signal)
                .bind(&j.error)
                .bind(j.session_id)
                .bind(&j.pane)
                .bind(j.cancel_requested)
                .bind(0i64)
                .bind(j.created_at)
                .bind(j.started_at)
                .bind(j.ended_at)
                .bind(&j.ports)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Writes a job's mutable fields (runner, state, exit, error, session,
    /// pane, cancel request, times, ports) as `j` has them. Not `log_bytes`:
    /// only [`Store::append_job_log`] moves it.
    pub async fn update_job(&self, j: &JobRecord) -> Result<(), StoreError> {
        on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE jobs SET runner_id = $2, state = $3, exit_code = $4, signal = $5, \
                 error = $6, session_id = $7, pane = $8, cancel_requested = $9, \
                 started_at = $10, ended_at = $11, ports = $12 WHERE id = $1",
            )
            .bind(&j.id)
            .bind(&j.runner_id)
            .bind(&j.state)
            .bind(j.exit_code)
            .bind(j.signal)
            .bind(&j.error)
            .bind(j.session_id)
            .bind(&j.pane)
            .bind(j.cancel_requested)
            .bind(j.started_at)
            .bind(j.ended_at)
            .bind(&j.ports)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Moves job `id` from state `from` to `to` on `runner_id`, only if it
    /// is still in `from`: `true` when this call moved it. Relays of a
    /// cluster that dispatch the same queued job at once (each to a runner
    /// of its own) agree this way on which one starts it.
    pub async fn claim_job(
        &self,
        id: &str,
        runner_id: &str,
        from: &str,
        to: &str,
    ) -> Result<bool, StoreError> {
        let moved = on_db!(&self.db, pool => {
            sqlx::query("UPDATE jobs SET state = $3, runner_id = $2 WHERE id = $1 AND state = $4")
                .bind(id)
                .bind(runner_id)
                .bind(to)
                .bind(from)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(moved == 1)
    }

    /// A job by id, whoever owns it (the caller checks).
    pub async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        Ok(on_db!(&self.db, pool => {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        }))
    }

    /// The user's jobs (of one idea and one kind when given), newest
    /// first, at most `limit`.
    pub async fn jobs_for_user(
        &self,
        user_id: &str,
        idea: Option<&str>,
        kind: Option<&str>,
        limit: u32,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE user_id = $1 AND ($2 IS NULL OR idea = $2) \
             AND ($4 IS NULL OR kind = $4) ORDER BY created_at DESC, id DESC LIMIT $3"
        );
        Ok(on_db!(&self.db, pool => {
            sqlx::query_as(&sql)
                .bind(user_id)
                .bind(idea)
                .bind(i64::from(limit))
                .bind(kind)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Jobs in one of `states` (lower-case words): of a user (`user_id`)
    /// or on a runner (`runner_id`), oldest first.
    pub async fn jobs_in_states(
        &self,
        user_id: Option<&str>,
        runner_id: Option<&str>,
        states: &[&str],
    ) -> Result<Vec<JobRecord>, StoreError> {
        if states.is_empty()
            || states
                .iter()
                .any(|s| s.is_empty() || !s.bytes().all(|b| b.is_ascii_lowercase()))
        {
            return Err(StoreError::Corrupt(format!("bad job states {states:?}")));
        }
        // The states are words checked above, never outside input.
        let list = states
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE ($1 IS NULL OR user_id = $1) \
             AND ($2 IS NULL OR runner_id = $2) AND state IN ({list}) ORDER BY created_at, id"
        );
        Ok(on_db!(&self.db, pool => {
            sqlx::query_as(&sql)
                .bind(user_id)
                .bind(runner_id)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Appends the log chunk `start..start+len` (`data` one zstd frame of
    /// it) when it continues the stored log exactly; anything else (a
    /// resend, an overlap, a gap) stores nothing. Returns how many bytes of
    /// the log are stored now: the runner resends from there.
    pub async fn append_job_log(
        &self,
        job_id: &str,
        start: u64,
        len: u64,
        data: &[u8],
    ) -> Result<u64, StoreError> {
        let start_db = to_db(start)?;
        let len_db = to_db(len)?;
        let end_db = to_db(start.saturating_add(len))?;
        let stored: Option<i64> = on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            // The conditional UPDATE takes the row's write lock first.
            let n = sqlx::query(
                "UPDATE jobs SET log_bytes = $3 WHERE id = $1 AND log_bytes = $2",
            )
            .bind(job_id)
            .bind(start_db)
            .bind(end_db)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 && len > 0 {
                sqlx::query(
                    "INSERT INTO job_logs (job_id, start_byte, len, data) VALUES ($1, $2, $3, $4)",
                )
                .bind(job_id)
                .bind(start_db)
                .bind(len_db)
                .bind(data)
                .execute(&mut *tx)
                .await?;
            }
            let stored: Option<i64> = sqlx::query_scalar("SELECT log_bytes FROM jobs WHERE id = $1")
                .bind(job_id)
                .fetch_optional(&mut *tx)
                .await?;
            tx.commit().await?;
            stored
        });
        let stored = stored.ok_or_else(|| StoreError::Corrupt(format!("no job {job_id}")))?;
        u64::try_from(stored).map_err(|_| StoreError::Corrupt("negative log_bytes".into()))
    }

    /// The log chunks that end after byte `from`, in order, at most
    /// `limit`.
    pub async fn job_log_chunks(
        &self,
        job_id: &str,
        from: u64,
        limit: u32,
    ) -> Result<Vec<LogChunkRecord>, StoreError> {
        let from = to_db(from)?;
        Ok(on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT start_byte, len, data FROM job_logs WHERE job_id = $1 \
                 AND start_byte + len > $2 ORDER BY start_byte LIMIT $3",
            )
            .bind(job_id)
            .bind(from)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        }))
    }
}

/// A line another tool sent (`POST /api/logs/ingest`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IngestedLine {
    pub id: i64,
    pub runner_id: String,
    pub idea: Option<String>,
    pub source: String,
    pub at: Millis,
    pub line: String,
}

impl Store {
    /// Stores a batch of ingested lines `(at, line)`, in one transaction.
    pub async fn ingest_lines(
        &self,
        user_id: &str,
        runner_id: &str,
        idea: Option<&str>,
        source: &str,
        lines: &[(Millis, String)],
    ) -> Result<(), StoreError> {
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            for (at, line) in lines {
                sqlx::query(
                    "INSERT INTO log_lines (user_id, runner_id, idea, source, at, line) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(user_id)
                .bind(runner_id)
                .bind(idea)
                .bind(source)
                .bind(*at)
                .bind(line)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Deletes the jobs that ended before `before` (with their logs) and
    /// the ingested lines stamped before it; returns how many of each.
    pub async fn prune_logs(&self, before: Millis) -> Result<(u64, u64), StoreError> {
        Ok(on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            for table in [
                "job_logs",
                "log_lines",
                "job_index_progress",
                "devserver_events",
            ] {
                sqlx::query(&format!(
                    "DELETE FROM {table} WHERE job_id IN \
                     (SELECT id FROM jobs WHERE ended_at IS NOT NULL AND ended_at < $1)"
                ))
                .bind(before)
                .execute(&mut *tx)
                .await?;
            }
            let jobs = sqlx::query("DELETE FROM jobs WHERE ended_at IS NOT NULL AND ended_at < $1")
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let lines = sqlx::query("DELETE FROM log_lines WHERE job_id IS NULL AND at < $1")
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            (jobs, lines)
        }))
    }

    /// The user's ingested lines of `idea`, oldest first, at most `limit`
    /// (the newest ones when there are more).
    pub async fn ingested_for_idea(
        &self,
        user_id: &str,
        idea: &str,
        limit: u32,
    ) -> Result<Vec<IngestedLine>, StoreError> {
        let mut v: Vec<IngestedLine> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, runner_id, idea, source, at, line FROM log_lines \
                 WHERE user_id = $1 AND idea = $2 AND job_id IS NULL \
                 ORDER BY at DESC, id DESC LIMIT $3",
            )
            .bind(user_id)
            .bind(idea)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        v.reverse();
        Ok(v)
    }
}
