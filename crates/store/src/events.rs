//! The account's activity feed (issue 9): runner and session events,
//! newest first, paged by id.

use crate::{Millis, Store, StoreError, TerminalSessionId, on_db};

/// An event to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent<'a> {
    pub user_id: &'a str,
    pub at: Millis,
    /// `runner_paired`, `runner_connected`, `runner_disconnected`,
    /// `runner_revoked`, `session_created`, `session_closed`.
    pub kind: &'a str,
    pub runner_id: &'a str,
    pub runner_name: &'a str,
    pub session_id: Option<TerminalSessionId>,
    pub idea: Option<&'a str>,
    pub slot: Option<&'a str>,
    pub detail: Option<&'a str>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EventRecord {
    pub id: i64,
    pub user_id: String,
    pub at: Millis,
    pub kind: String,
    pub runner_id: String,
    pub runner_name: String,
    pub session_id: Option<TerminalSessionId>,
    pub idea: Option<String>,
    pub slot: Option<String>,
    pub detail: Option<String>,
}

const EVENT_COLUMNS: &str =
    "id, user_id, at, kind, runner_id, runner_name, session_id, idea, slot, detail";

impl Store {
    /// Records an event and returns it with its id.
    pub async fn add_event(&self, e: &NewEvent<'_>) -> Result<EventRecord, StoreError> {
        let sql = format!(
            "INSERT INTO events (user_id, at, kind, runner_id, runner_name, session_id, idea, \
             slot, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {EVENT_COLUMNS}"
        );
        Ok(on_db!(&self.db, pool => {
            sqlx::query_as(&sql)
                .bind(e.user_id)
                .bind(e.at)
                .bind(e.kind)
                .bind(e.runner_id)
                .bind(e.runner_name)
                .bind(e.session_id)
                .bind(e.idea)
                .bind(e.slot)
                .bind(e.detail)
                .fetch_one(pool)
                .await?
        }))
    }

    /// The user's events with an id below `before` (all when `None`),
    /// newest first, at most `limit`.
    pub async fn events_for_user(
        &self,
        user_id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE user_id = $1 AND id < $2 \
             ORDER BY id DESC LIMIT $3"
        );
        Ok(on_db!(&self.db, pool => {
            sqlx::query_as(&sql)
                .bind(user_id)
                .bind(before.unwrap_or(i64::MAX))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        }))
    }
}
