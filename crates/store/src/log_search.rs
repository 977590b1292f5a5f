//! Full-text search over logs beyond terminals (issue 11): jobs' logs,
//! indexed by the relay's job-log indexer as they arrive, and lines other
//! tools sent. The same words-only query as `search` (FTS5 on SQLite, a
//! tsvector with GIN on PostgreSQL) over the `log_lines` table.

use crate::search::{MAX_HITS, SearchQuery, fts5_expression};
use crate::{Db, Millis, Store, StoreError, TerminalSessionId, on_db};

/// A job whose log has bytes the index has not read (or an unfinished
/// last line to flush once the job ended).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JobToIndex {
    pub job_id: String,
    pub user_id: String,
    pub runner_id: String,
    pub idea: String,
    pub indexed_bytes: i64,
    pub pending: String,
    pub log_bytes: i64,
    pub ended_at: Option<Millis>,
}

/// One matching log line with its neighbours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogHit {
    pub idea: Option<String>,
    /// The job whose log printed it (`None`: an ingested line).
    pub job_id: Option<String>,
    /// `job`, or the ingesting tool's name.
    pub source: String,
    pub at: Millis,
    pub line: String,
    /// The job's terminal session and pane, for a job's line.
    pub session: Option<TerminalSessionId>,
    pub pane: Option<String>,
    pub before: Vec<String>,
    pub after: Vec<String>,
}

type LogHitRow = (
    i64,
    Option<String>,
    Option<String>,
    String,
    i64,
    String,
    Option<i64>,
    Option<String>,
);

const SQLITE_LOG_SEARCH: &str = "SELECT l.id, l.idea, l.job_id, l.source, l.at, l.line, \
     j.session_id, j.pane FROM log_fts JOIN log_lines l ON l.id = log_fts.rowid \
     LEFT JOIN jobs j ON j.id = l.job_id \
     WHERE log_fts MATCH $1 AND l.user_id = $2 AND ($3 IS NULL OR l.idea = $3) \
     ORDER BY log_fts.rowid DESC LIMIT $4";

const POSTGRES_LOG_SEARCH: &str = "SELECT l.id, l.idea, l.job_id, l.source, l.at, l.line, \
     j.session_id, j.pane FROM log_lines l LEFT JOIN jobs j ON j.id = l.job_id \
     WHERE l.tsv @@ plainto_tsquery('simple', regexp_replace($1, '[^[:alnum:]]+', ' ', 'g')) \
     AND l.user_id = $2 AND ($3::text IS NULL OR l.idea = $3::text) \
     ORDER BY l.id DESC LIMIT $4";

impl Store {
    /// Jobs with log bytes past their index, or an unfinished line to
    /// flush after they ended; oldest first, at most `limit`.
    pub async fn jobs_to_index(&self, limit: u32) -> Result<Vec<JobToIndex>, StoreError> {
        Ok(on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT j.id AS job_id, j.user_id, COALESCE(j.runner_id, '') AS runner_id, \
                 j.idea, COALESCE(p.indexed_bytes, 0) AS indexed_bytes, \
                 COALESCE(p.pending, '') AS pending, j.log_bytes, j.ended_at \
                 FROM jobs j LEFT JOIN job_index_progress p ON p.job_id = j.id \
                 WHERE j.log_bytes > COALESCE(p.indexed_bytes, 0) \
                 OR (j.ended_at IS NOT NULL AND p.pending <> '') \
                 ORDER BY j.created_at, j.id LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        }))
    }

    /// Saves a job's indexed `lines` (`(at, line)`) and its progress
    /// (`indexed_bytes`, the unfinished `pending` line) in one
    /// transaction, if the progress is still `job.indexed_bytes` (another
    /// relay may index the same job); `false` when it moved meanwhile.
    pub async fn save_job_index(
        &self,
        job: &JobToIndex,
        indexed_bytes: i64,
        pending: &str,
        lines: &[(Millis, String)],
    ) -> Result<bool, StoreError> {
        Ok(on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let mut n = sqlx::query(
                "UPDATE job_index_progress SET indexed_bytes = $2, pending = $3 \
                 WHERE job_id = $1 AND indexed_bytes = $4",
            )
            .bind(&job.job_id)
            .bind(indexed_bytes)
            .bind(pending)
            .bind(job.indexed_bytes)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 && job.indexed_bytes == 0 {
                n = sqlx::query(
                    "INSERT INTO job_index_progress (job_id, indexed_bytes, pending) \
                     VALUES ($1, $2, $3) ON CONFLICT (job_id) DO NOTHING",
                )
                .bind(&job.job_id)
                .bind(indexed_bytes)
                .bind(pending)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            if n == 0 {
                tx.rollback().await?;
                false
            } else {
                for chunk in lines.chunks(200) {
                    let mut insert = sqlx::QueryBuilder::new(
                        "INSERT INTO log_lines (user_id, runner_id, idea, job_id, source, at, line) ",
                    );
                    insert.push_values(chunk, |mut row, (at, line)| {
                        row.push_bind(&job.user_id)
                            .push_bind(&job.runner_id)
                            .push_bind(&job.idea)
                            .push_bind(&job.job_id)
                            .push_bind("job")
                            .push_bind(*at)
                            .push_bind(line);
                    });
                    insert.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                true
            }
        }))
    }

    /// Log lines of `user_id` containing every word of the query, newest
    /// first, with two lines of context from the same job (or source).
    pub async fn search_logs(
        &self,
        user_id: &str,
        query: &SearchQuery,
    ) -> Result<Vec<LogHit>, StoreError> {
        if query.words.is_empty() {
            return Ok(Vec::new());
        }
        let limit = i64::from(query.limit.clamp(1, MAX_HITS));
        let rows: Vec<LogHitRow> = match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query_as(SQLITE_LOG_SEARCH)
                    .bind(fts5_expression(&query.words))
                    .bind(user_id)
                    .bind(query.idea.as_deref())
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
            Db::Postgres(pool) => {
                sqlx::query_as(POSTGRES_LOG_SEARCH)
                    .bind(query.words.join(" "))
                    .bind(user_id)
                    .bind(query.idea.as_deref())
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
        };
        let n = i64::from(query.context.min(5));
        let mut hits = Vec::with_capacity(rows.len());
        for (id, idea, job_id, source, at, line, session, pane) in rows {
            let (before, after) = if n > 0 {
                self.log_context(user_id, job_id.as_deref(), &source, id, n)
                    .await?
            } else {
                (Vec::new(), Vec::new())
            };
            hits.push(LogHit {
                idea,
                job_id,
                source,
                at,
                line,
                session,
                pane,
                before,
                after,
            });
        }
        Ok(hits)
    }

    async fn log_context(
        &self,
        user_id: &str,
        job_id: Option<&str>,
        source: &str,
        id: i64,
        n: i64,
    ) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let same = "user_id = $1 AND ((job_id IS NULL AND $2 IS NULL AND source = $3) \
             OR job_id = $2)";
        let before_sql = format!(
            "SELECT line FROM log_lines WHERE {same} AND id < $4 ORDER BY id DESC LIMIT $5"
        );
        let after_sql =
            format!("SELECT line FROM log_lines WHERE {same} AND id > $4 ORDER BY id LIMIT $5");
        let (mut before, after): (Vec<String>, Vec<String>) = on_db!(&self.db, pool => {
            let b = sqlx::query_scalar(&before_sql)
                .bind(user_id)
                .bind(job_id)
                .bind(source)
                .bind(id)
                .bind(n)
                .fetch_all(pool)
                .await?;
            let a = sqlx::query_scalar(&after_sql)
                .bind(user_id)
                .bind(job_id)
                .bind(source)
                .bind(id)
                .bind(n)
                .fetch_all(pool)
                .await?;
            (b, a)
        });
        before.reverse();
        Ok((before, after))
    }
}
