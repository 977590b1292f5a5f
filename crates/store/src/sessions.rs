//! Terminal session rows: create-or-find by (runner, idea, slot), lookups,
//! and the connected/detached timestamps. Frames and snapshots live in
//! `frames.rs`.

use crate::{Millis, SessionRecord, Store, StoreError, TerminalSessionId, on_db, seq_from_db};

/// Column order shared by every session query and [`SessionRow`].
const SESSION_COLUMNS: &str = "id, runner_id, user_id, idea, slot, tmux_session, created_at, \
     last_connected_at, last_detached_at, last_seq";

type SessionRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    i64,
);

fn record(row: SessionRow) -> Result<SessionRecord, StoreError> {
    let (id, runner_id, user_id, idea, slot, tmux_session, created_at, conn, det, last_seq) = row;
    Ok(SessionRecord {
        id,
        runner_id,
        user_id,
        idea,
        slot,
        tmux_session,
        created_at,
        last_connected_at: conn,
        last_detached_at: det,
        last_seq: seq_from_db(last_seq, "last_seq")?,
    })
}

impl Store {
    /// Finds or creates the session of (runner, idea, slot), recording the
    /// current tmux session name. Refuses with
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
             ON CONFLICT (runner_id, idea, slot) DO UPDATE \
             SET tmux_session = excluded.tmux_session \
             WHERE terminal_sessions.user_id = excluded.user_id \
             RETURNING {SESSION_COLUMNS}"
        );
        let row: Option<SessionRow> = on_db!(&self.db, pool => {
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
            None => {
                let id: Option<i64> = on_db!(&self.db, pool => {
                    sqlx::query_scalar(
                        "SELECT id FROM terminal_sessions \
                         WHERE runner_id = $1 AND idea = $2 AND slot = $3",
                    )
                    .bind(runner_id)
                    .bind(idea)
                    .bind(slot)
                    .fetch_optional(pool)
                    .await?
                });
                match id {
                    Some(id) => Err(StoreError::OwnerMismatch { id }),
                    None => Err(StoreError::Corrupt(
                        "upsert returned no row and none exists".to_owned(),
                    )),
                }
            }
        }
    }

    /// The session `id`, if it exists.
    pub async fn session(
        &self,
        id: TerminalSessionId,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM terminal_sessions WHERE id = $1");
        let row: Option<SessionRow> = on_db!(&self.db, pool => {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        });
        row.map(record).transpose()
    }

    /// Every session of `user_id`, oldest first.
    pub async fn sessions_for_user(&self, user_id: &str) -> Result<Vec<SessionRecord>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM terminal_sessions WHERE user_id = $1 ORDER BY id"
        );
        let rows: Vec<SessionRow> = on_db!(&self.db, pool => {
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
