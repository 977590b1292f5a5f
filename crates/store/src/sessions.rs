//! Terminal session rows: open by (runner, idea, slot, instance) with the
//! superseded instances closed, lookups, close and delete, the topology's
//! pane ids, and the connected/detached timestamps. Frames and snapshots
//! live in `frames.rs`.

use crate::{Millis, SessionRecord, Store, StoreError, TerminalSessionId, on_db, seq_from_db};

/// Columns of every session query, as [`Row`] reads them.
const SESSION_COLUMNS: &str = "id, runner_id, user_id, idea, slot, tmux_session, created_at, \
     last_connected_at, last_detached_at, last_seq, instance, attach, host, \
     last_activity_at, closed_at, panes, epoch";

/// One `terminal_sessions` row.
#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    runner_id: String,
    user_id: String,
    idea: String,
    slot: String,
    tmux_session: String,
    created_at: i64,
    last_connected_at: Option<i64>,
    last_detached_at: Option<i64>,
    last_seq: i64,
    instance: String,
    attach: String,
    host: String,
    last_activity_at: Option<i64>,
    closed_at: Option<i64>,
    panes: String,
    epoch: String,
}

fn record(r: Row) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        id: r.id,
        runner_id: r.runner_id,
        user_id: r.user_id,
        idea: r.idea,
        slot: r.slot,
        tmux_session: r.tmux_session,
        created_at: r.created_at,
        last_connected_at: r.last_connected_at,
        last_detached_at: r.last_detached_at,
        last_seq: seq_from_db(r.last_seq, "last_seq")?,
        instance: r.instance,
        attach: r.attach,
        host: r.host,
        last_activity_at: r.last_activity_at,
        closed_at: r.closed_at,
        panes: r.panes,
        epoch: r.epoch,
    })
}

/// What a runner's `open` says about the session it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSession<'a> {
    pub runner_id: &'a str,
    pub user_id: &'a str,
    pub idea: &'a str,
    pub slot: &'a str,
    pub instance: &'a str,
    pub tmux_session: &'a str,
    pub attach: &'a str,
    pub host: &'a str,
    /// Now (the connection time).
    pub at: Millis,
}

/// What [`Store::open_session`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedSession {
    pub record: SessionRecord,
    /// A new row (a new terminal session), not one found again.
    pub created: bool,
    /// Sessions of the same (runner, idea, slot) with another instance
    /// that this one closed (their tmux server died and the session was
    /// recreated).
    pub superseded: Vec<SessionRecord>,
}

impl Store {
    /// Finds or creates the session of (runner, idea, slot, instance) and
    /// records what the runner said about it and that it connected at
    /// `at` (a closed one opens again). A session of protocol 1 (instance
    /// '') is adopted by the first instance that opens it. A new instance
    /// closes the other open sessions of (runner, idea, slot). Refuses with
    /// [`StoreError::OwnerMismatch`] when the row belongs to another user.
    pub async fn open_session(&self, s: &OpenSession<'_>) -> Result<OpenedSession, StoreError> {
        let found = match self
            .find_session(s.runner_id, s.idea, s.slot, s.instance)
            .await?
        {
            Some(r) => Some(r),
            None => self.find_session(s.runner_id, s.idea, s.slot, "").await?,
        };
        let (id, created) = match found {
            Some(r) if r.user_id != s.user_id => {
                return Err(StoreError::OwnerMismatch { id: r.id });
            }
            Some(r) => (r.id, false),
            None => {
                let id: Option<i64> = on_db!(&self.db, pool => {
                    sqlx::query_scalar(
                        "INSERT INTO terminal_sessions \
                         (runner_id, user_id, idea, slot, instance, tmux_session, attach, host) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                         ON CONFLICT (runner_id, idea, slot, instance) DO NOTHING RETURNING id",
                    )
                    .bind(s.runner_id)
                    .bind(s.user_id)
                    .bind(s.idea)
                    .bind(s.slot)
                    .bind(s.instance)
                    .bind(s.tmux_session)
                    .bind(s.attach)
                    .bind(s.host)
                    .fetch_optional(pool)
                    .await?
                });
                match id {
                    Some(id) => (id, true),
                    None => {
                        // Inserted concurrently: find it again.
                        let r = self
                            .find_session(s.runner_id, s.idea, s.slot, s.instance)
                            .await?
                            .ok_or_else(|| {
                                StoreError::Corrupt("insert conflicted but no row exists".into())
                            })?;
                        if r.user_id != s.user_id {
                            return Err(StoreError::OwnerMismatch { id: r.id });
                        }
                        (r.id, false)
                    }
                }
            }
        };
        on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE terminal_sessions SET instance = $1, tmux_session = $2, attach = $3, \
                 host = $4, last_connected_at = $5, closed_at = NULL WHERE id = $6",
            )
            .bind(s.instance)
            .bind(s.tmux_session)
            .bind(s.attach)
            .bind(s.host)
            .bind(s.at)
            .bind(id)
            .execute(pool)
            .await?;
        });
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM terminal_sessions \
             WHERE runner_id = $1 AND idea = $2 AND slot = $3 AND id <> $4 \
             AND closed_at IS NULL"
        );
        let others: Vec<Row> = on_db!(&self.db, pool => {
            sqlx::query_as(&sql)
                .bind(s.runner_id)
                .bind(s.idea)
                .bind(s.slot)
                .bind(id)
                .fetch_all(pool)
                .await?
        });
        let mut superseded = Vec::new();
        for other in others {
            let mut other = record(other)?;
            if self.close_session(other.id, s.at).await? {
                other.closed_at = Some(s.at);
                superseded.push(other);
            }
        }
        let record = self
            .session(id)
            .await?
            .ok_or(StoreError::NoSuchSession(id))?;
        Ok(OpenedSession {
            record,
            created,
            superseded,
        })
    }

    async fn find_session(
        &self,
        runner_id: &str,
        idea: &str,
        slot: &str,
        instance: &str,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM terminal_sessions \
             WHERE runner_id = $1 AND idea = $2 AND slot = $3 AND instance = $4"
        );
        let row: Option<Row> = on_db!(&self.db, pool => {
            sqlx::query_as(&sql)
                .bind(runner_id)
                .bind(idea)
                .bind(slot)
                .bind(instance)
                .fetch_optional(pool)
                .await?
        });
        row.map(record).transpose()
    }

    /// Finds or creates the session of (runner, idea, slot) without an
    /// instance (protocol 1's identity; kept for tools and tests),
    /// recording the current tmux session name. Refuses with
    /// [`StoreError::OwnerMismatch`] when the row belongs to another user.
    pub async fn upsert_session(
        &self,
        runner_id: &str,
        user_id: &str,
        idea: &str,
        slot: &str,
        tmux_session: &str,
    ) -> Result<SessionRecord, StoreError> {
        // The WHERE on the update makes a row owned by someone else return
        // nothing instead of being taken over.
        let sql = format!(
            "INSERT INTO terminal_sessions (runner_id, user_id, idea, slot, tmux_session) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (runner_id, idea, slot, instance) DO UPDATE \
             SET tmux_session = excluded.tmux_session \
             WHERE terminal_sessions.user_id = excluded.user_id \
             RETURNING {SESSION_COLUMNS}"
        );
        let row: Option<Row> = on_db!(&self.db, pool => {
            sqlx::query_as(&sql)
                .bind(runner_id)
                .bind(user_id)
                .bind(idea)
                .bind(slot)
                .bind(tmux_session)
                .fetch_optional(pool)
                .await?
        });
        match row {
            Some(row) => record(row),
            None => match self.find_session(runner_id, idea, slot, "").await? {
                Some(r) => Err(StoreError::OwnerMismatch { id: r.id }),
                None => Err(StoreError::Corrupt(
                    "upsert returned no row and none exists".to_owned(),
                )),
            },
        }
    }

    /// The session `id`, if it exists.
    pub async fn session(
        &self,
        id: TerminalSessionId,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM terminal_sessions WHERE id = $1");
        let row: Option<Row> = on_db!(&self.db, pool => {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        });
        row.map(record).transpose()
    }

    /// Every session of `user_id`, oldest first.
    pub async fn sessions_for_user(&self, user_id: &str) -> Result<Vec<SessionRecord>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM terminal_sessions WHERE user_id = $1 ORDER BY id"
        );
        let rows: Vec<Row> = on_db!(&self.db, pool => {
            sqlx::query_as(&sql).bind(user_id).fetch_all(pool).await?
        });
        rows.into_iter().map(record).collect()
    }

    /// Every session id, for the pruner.
    pub async fn session_ids(&self) -> Result<Vec<TerminalSessionId>, StoreError> {
        Ok(on_db!(&self.db, pool => {
            sqlx::query_scalar("SELECT id FROM terminal_sessions ORDER BY id")
                .fetch_all(pool)
                .await?
        }))
    }

    /// Marks session `id` closed at `at` (killed, or its tmux server
    /// died); `false` when it was closed already.
    pub async fn close_session(
        &self,
        id: TerminalSessionId,
        at: Millis,
    ) -> Result<bool, StoreError> {
        let n = on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE terminal_sessions SET closed_at = $1 WHERE id = $2 AND closed_at IS NULL",
            )
            .bind(at)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Deletes session `id` with its frames, snapshots and share links;
    /// `false` when there was no such row.
    pub async fn delete_session(&self, id: TerminalSessionId) -> Result<bool, StoreError> {
        let n = on_db!(&self.db, pool => {
            sqlx::query("DELETE FROM terminal_sessions WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Records the pane ids of the session's current topology
    /// (comma-separated).
    pub async fn set_panes(&self, id: TerminalSessionId, panes: &str) -> Result<(), StoreError> {
        on_db!(&self.db, pool => {
            sqlx::query("UPDATE terminal_sessions SET panes = $1 WHERE id = $2")
                .bind(panes)
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Records the session's numbering epoch (a runner's `rebase`).
    pub async fn set_epoch(&self, id: TerminalSessionId, epoch: &str) -> Result<(), StoreError> {
        on_db!(&self.db, pool => {
            sqlx::query("UPDATE terminal_sessions SET epoch = $1 WHERE id = $2")
                .bind(epoch)
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Records that the bridge of `id` connected at `at`.
    pub async fn mark_connected(
        &self,
        id: TerminalSessionId,
        at: Millis,
    ) -> Result<(), StoreError> {
        self.set_time("last_connected_at", id, at).await
    }

    /// Records that the bridge of `id` went away at `at`.
    pub async fn mark_detached(&self, id: TerminalSessionId, at: Millis) -> Result<(), StoreError> {
        self.set_time("last_detached_at", id, at).await
    }

    async fn set_time(
        &self,
        column: &'static str,
        id: TerminalSessionId,
        at: Millis,
    ) -> Result<(), StoreError> {
        let sql = format!("UPDATE terminal_sessions SET {column} = $1 WHERE id = $2");
        let n = on_db!(&self.db, pool => {
            sqlx::query(&sql).bind(at).bind(id).execute(pool).await?.rows_affected()
        });
        if n == 0 {
            return Err(StoreError::NoSuchSession(id));
        }
        Ok(())
    }
}
