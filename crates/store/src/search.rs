//! Full-text search over what terminals printed (issue 11): the lines the
//! relay's indexer extracted from stored frames, their index (SQLite FTS5,
//! PostgreSQL tsvector + GIN) and the account-scoped query.
//!
//! The indexer's progress is per session: `indexed_seq` (every frame up to
//! it is indexed) and each pane's unfinished line. [`Store::save_index`]
//! writes lines and progress in one transaction and only if the progress is
//! still where the indexer read it, so two indexers (two relays on one
//! database) never index a frame twice.
//!
//! Lines and queries are split into tokens at every character that is not
//! a letter or digit on both dialects. A query is words, never query
//! syntax: each word is matched as a quoted phrase (FTS5: its tokens in
//! order) or through `plainto_tsquery` (PostgreSQL: every token), so operators,
//! quotes and parentheses in what a person types are plain text and no
//! syntax error can reach them.

use crate::{Db, Millis, Store, StoreError, TerminalSessionId, on_db, seq_to_db};

/// One line a pane printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedLine {
    /// The pane (`%3`).
    pub pane: String,
    /// The sequence number of the record that ended the line.
    pub seq: u64,
    /// When that record was made (ms since the epoch; 0 when unknown).
    pub at: Millis,
    pub line: String,
}

/// Where the indexer stands for one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexProgress {
    pub session: TerminalSessionId,
    /// Every frame up to here is indexed.
    pub indexed_seq: u64,
    /// The session's stored head.
    pub last_seq: u64,
    /// Unfinished lines per pane, as the indexer saved them (JSON).
    pub pending: String,
}

/// A search: words, an optional idea, how many hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    pub words: Vec<String>,
    pub idea: Option<String>,
    pub limit: u32,
    /// Lines of context before and after each hit (at most 5).
    pub context: u32,
}

/// One matching line with its surroundings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    pub session: TerminalSessionId,
    pub idea: String,
    pub slot: String,
    pub pane: String,
    pub seq: u64,
    pub at: Millis,
    pub line: String,
    /// Earlier lines of the same pane, oldest first.
    pub before: Vec<String>,
    /// Later lines of the same pane, oldest first.
    pub after: Vec<String>,
}

/// Largest number of hits one query returns.
pub const MAX_HITS: u32 = 100;

/// Lines per INSERT statement in [`Store::save_index`]: 5 parameters each,
/// far below SQLite's limit of 32,766 parameters per statement.
const LINES_PER_INSERT: usize = 200;

/// The FTS5 match expression for `words`: each word a quoted phrase
/// (quotes inside doubled), all required.
pub(crate) fn fts5_expression(words: &[String]) -> String {
    words
        .iter()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

type HitRow = (
    i64,
    TerminalSessionId,
    String,
    String,
    String,
    i64,
    i64,
    String,
);

/// Ordered by the FTS5 table's own rowid (the same as `l.id`): FTS5 then
/// returns matches newest first and the query stops at the limit; ordered
/// by `l.id`, SQLite sorted every match first (seconds for a common word in
/// a gigabyte of output).
const SQLITE_SEARCH: &str = "SELECT l.id, l.session_id, s.idea, s.slot, l.pane, l.seq, l.at, l.line \
     FROM search_fts JOIN search_lines l ON l.id = search_fts.rowid \
     JOIN terminal_sessions s ON s.id = l.session_id \
     WHERE search_fts MATCH $1 AND s.user_id = $2 AND ($3 IS NULL OR s.idea = $3) \
     ORDER BY search_fts.rowid DESC LIMIT $4";

const POSTGRES_SEARCH: &str = "SELECT l.id, l.session_id, s.idea, s.slot, l.pane, l.seq, l.at, l.line \
     FROM search_lines l JOIN terminal_sessions s ON s.id = l.session_id \
     WHERE l.tsv @@ plainto_tsquery('simple', regexp_replace($1, '[^[:alnum:]]+', ' ', 'g')) \
     AND s.user_id = $2 \
     AND ($3::text IS NULL OR s.idea = $3::text) \
     ORDER BY l.id DESC LIMIT $4";

impl Store {
    /// Sessions with stored frames past their indexed sequence, at most
    /// `limit`, newest sessions first: what people search for is mostly
    /// recent, and an old session's backlog waits while newer ones print.
    pub async fn sessions_to_index(&self, limit: u32) -> Result<Vec<IndexProgress>, StoreError> {
        let sql = "SELECT s.id, COALESCE(p.indexed_seq, 0), s.last_seq, COALESCE(p.pending, '{}') \
             FROM terminal_sessions s LEFT JOIN search_progress p ON p.session_id = s.id \
             WHERE s.last_seq > COALESCE(p.indexed_seq, 0) ORDER BY s.id DESC LIMIT $1";
        let rows: Vec<(TerminalSessionId, i64, i64, String)> = on_db!(&self.db, pool => {
            sqlx::query_as(sql).bind(i64::from(limit)).fetch_all(pool).await?
        });
        rows.into_iter()
            .map(|(session, indexed, last, pending)| {
                Ok(IndexProgress {
                    session,
                    indexed_seq: crate::seq_from_db(indexed, "indexed_seq")?,
                    last_seq: crate::seq_from_db(last, "last_seq")?,
                    pending,
                })
            })
            .collect()
    }

    /// Stores `lines` and moves the session's progress from `from` to `to`
    /// with `pending`, in one transaction. Returns false (and writes
    /// nothing) when the progress is no longer `from`: another indexer got
    /// there first.
    pub async fn save_index(
        &self,
        session: TerminalSessionId,
        from: u64,
        to: u64,
        lines: &[IndexedLine],
        pending: &str,
    ) -> Result<bool, StoreError> {
        let from_db = seq_to_db(from)?;
        let to_db = seq_to_db(to)?;
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let moved = if from == 0 {
                sqlx::query(
                    "INSERT INTO search_progress (session_id, indexed_seq, pending) \
                     VALUES ($1, $2, $3) ON CONFLICT (session_id) DO UPDATE \
                     SET indexed_seq = excluded.indexed_seq, pending = excluded.pending \
                     WHERE search_progress.indexed_seq = 0",
                )
                .bind(session)
                .bind(to_db)
                .bind(pending)
                .execute(&mut *tx)
                .await?
                .rows_affected()
            } else {
                sqlx::query(
                    "UPDATE search_progress SET indexed_seq = $2, pending = $3 \
                     WHERE session_id = $1 AND indexed_seq = $4",
                )
                .bind(session)
                .bind(to_db)
                .bind(pending)
                .bind(from_db)
                .execute(&mut *tx)
                .await?
                .rows_affected()
            };
            if moved != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            // Many rows per statement: one round trip per line made the
            // indexer wait on the database, not work (issue 11's benchmark:
            // 0.3 to 0.5 MB/s of output).
            for chunk in lines.chunks(LINES_PER_INSERT) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO search_lines (session_id, pane, seq, at, line) ",
                );
                let mut rows = Vec::with_capacity(chunk.len());
                for l in chunk {
                    rows.push((l, seq_to_db(l.seq)?));
                }
                insert.push_values(rows, |mut row, (l, seq)| {
                    row.push_bind(session)
                        .push_bind(&l.pane)
                        .push_bind(seq)
                        .push_bind(l.at)
                        .push_bind(&l.line);
                });
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(true)
    }

    /// The lines of `user_id`'s sessions that contain every word of the
    /// query, newest first, with context.
    pub async fn search(
        &self,
        user_id: &str,
        query: &SearchQuery,
    ) -> Result<Vec<SearchHit>, StoreError> {
        if query.words.is_empty() {
            return Ok(Vec::new());
        }
        let limit = i64::from(query.limit.clamp(1, MAX_HITS));
        let rows: Vec<HitRow> = match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query_as(SQLITE_SEARCH)
                    .bind(fts5_expression(&query.words))
                    .bind(user_id)
                    .bind(query.idea.as_deref())
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
            Db::Postgres(pool) => {
                sqlx::query_as(POSTGRES_SEARCH)
                    .bind(query.words.join(" "))
                    .bind(user_id)
                    .bind(query.idea.as_deref())
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
        };
        let context = i64::from(query.context.min(5));
        let mut hits = Vec::with_capacity(rows.len());
        for (id, session, idea, slot, pane, seq, at, line) in rows {
            let (before, after) = if context > 0 {
                self.context_lines(session, &pane, id, context).await?
            } else {
                (Vec::new(), Vec::new())
            };
            hits.push(SearchHit {
                session,
                idea,
                slot,
                pane,
                seq: crate::seq_from_db(seq, "seq")?,
                at,
                line,
                before,
                after,
            });
        }
        Ok(hits)
    }

    async fn context_lines(
        &self,
        session: TerminalSessionId,
        pane: &str,
        id: i64,
        n: i64,
    ) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let before_sql = "SELECT line FROM search_lines \
             WHERE session_id = $1 AND pane = $2 AND id < $3 ORDER BY id DESC LIMIT $4";
        let after_sql = "SELECT line FROM search_lines \
             WHERE session_id = $1 AND pane = $2 AND id > $3 ORDER BY id LIMIT $4";
        let (mut before, after): (Vec<String>, Vec<String>) = on_db!(&self.db, pool => {
            let b = sqlx::query_scalar(before_sql)
                .bind(session)
                .bind(pane)
                .bind(id)
                .bind(n)
                .fetch_all(pool)
                .await?;
            let a = sqlx::query_scalar(after_sql)
                .bind(session)
                .bind(pane)
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

#[cfg(test)]
mod tests {
    use super::{IndexedLine, SQLITE_SEARCH, SearchQuery, fts5_expression};
    use crate::{Db, Store};

    #[test]
    fn words_become_quoted_phrases() {
        let words = ["a\"b", "NOT", "x*", "(y)"].map(String::from);
        assert_eq!(fts5_expression(&words), "\"a\"\"b\" \"NOT\" \"x*\" \"(y)\"");
    }

    /// Issue 11's benchmark: a common word matched millions of lines and
    /// SQLite sorted them all before taking the newest 20.
    #[tokio::test]
    async fn issue_11_sqlite_search_takes_matches_newest_first_without_a_sort() {
        let store = Store::connect("sqlite::memory:").await.expect("store");
        let Db::Sqlite(pool) = store.db() else {
            panic!("SQLite store");
        };
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(&format!("EXPLAIN QUERY PLAN {SQLITE_SEARCH}"))
                .bind("\"word\"")
                .bind("u")
                .bind(None::<String>)
                .bind(20i64)
                .fetch_all(pool)
                .await
                .expect("plan");
        let steps: Vec<&str> = plan.iter().map(|(_, _, _, step)| step.as_str()).collect();
        assert!(
            steps.iter().any(|s| s.starts_with("SCAN search_fts")),
            "{steps:?}"
        );
        assert!(
            !steps.iter().any(|s| s.contains("TEMP B-TREE")),
            "the matches are sorted: {steps:?}"
        );

        // And the hits still come newest first.
        let session = store
            .upsert_session("r", "u", "idea", "main", "tb")
            .await
            .expect("session")
            .id;
        let lines: Vec<IndexedLine> = (1..=5)
            .map(|seq| IndexedLine {
                pane: "%1".into(),
                seq,
                at: 0,
                line: format!("word {seq}"),
            })
            .collect();
        assert!(
            store
                .save_index(session, 0, 5, &lines, "{}")
                .await
                .expect("save")
        );
        let query = SearchQuery {
            words: vec!["word".into()],
            idea: None,
            limit: 3,
            context: 0,
        };
        let seqs: Vec<u64> = store
            .search("u", &query)
            .await
            .expect("search")
            .iter()
            .map(|h| h.seq)
            .collect();
        assert_eq!(seqs, [5, 4, 3]);
    }
}
