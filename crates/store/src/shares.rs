//! Read-only share links (issue 14): a link to watch one terminal session,
//! created by its owner, expiring, revocable. Schema:
//! `migrations/*/0020_share_links.sql`.
//!
//! It stores what it is given: the link's secret arrives hashed (the
//! relay's `auth` module hashes it) and every time is an argument in
//! milliseconds since the Unix epoch. It decides nothing about who may
//! create or revoke a link beyond the owner check in each statement.

use crate::{Millis, Store, StoreError, TerminalSessionId, on_db};

/// A share link row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareRecord {
    pub id: String,
    pub user_id: String,
    pub session_id: TerminalSessionId,
    pub label: String,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub revoked_at: Option<Millis>,
}

impl ShareRecord {
    /// Whether the link lets someone watch at `now`.
    pub fn is_active(&self, now: Millis) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

type ShareRow = (String, String, i64, String, i64, i64, Option<i64>);

const SHARE_COLS: &str = "id, user_id, session_id, label, created_at, expires_at, revoked_at";

fn share(r: ShareRow) -> ShareRecord {
    ShareRecord {
        id: r.0,
        user_id: r.1,
        session_id: r.2,
        label: r.3,
        created_at: r.4,
        expires_at: r.5,
        revoked_at: r.6,
    }
}

impl Store {
    /// Stores a new share link under the hash of its secret.
    pub async fn create_share(
        &self,
        rec: &ShareRecord,
        secret_hash: &str,
    ) -> Result<(), StoreError> {
        on_db!(self.db(), pool => {
            sqlx::query("INSERT INTO share_links (id, secret_hash, user_id, session_id, label, created_at, expires_at, revoked_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(&rec.id).bind(secret_hash).bind(&rec.user_id).bind(rec.session_id)
                .bind(&rec.label).bind(rec.created_at).bind(rec.expires_at).bind(rec.revoked_at)
                .execute(pool).await?;
        });
        Ok(())
    }

    /// The link whose secret hashes to `secret_hash`, active or not.
    pub async fn share_by_secret(
        &self,
        secret_hash: &str,
    ) -> Result<Option<ShareRecord>, StoreError> {
        let sql = format!("SELECT {SHARE_COLS} FROM share_links WHERE secret_hash = $1");
        let row: Option<ShareRow> = on_db!(self.db(), pool => {
            sqlx::query_as(&sql).bind(secret_hash).fetch_optional(pool).await?
        });
        Ok(row.map(share))
    }

    /// The link `id`, active or not.
    pub async fn share(&self, id: &str) -> Result<Option<ShareRecord>, StoreError> {
        let sql = format!("SELECT {SHARE_COLS} FROM share_links WHERE id = $1");
        let row: Option<ShareRow> = on_db!(self.db(), pool => {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        });
        Ok(row.map(share))
    }

    /// The links of one of `user_id`'s sessions that are active at `now`, newest first.
    pub async fn active_shares(
        &self,
        user_id: &str,
        session_id: TerminalSessionId,
        now: Millis,
    ) -> Result<Vec<ShareRecord>, StoreError> {
        let sql = format!(
            "SELECT {SHARE_COLS} FROM share_links WHERE user_id = $1 AND session_id = $2 \
             AND revoked_at IS NULL AND expires_at > $3 ORDER BY created_at DESC, id"
        );
        let rows: Vec<ShareRow> = on_db!(self.db(), pool => {
            sqlx::query_as(&sql).bind(user_id).bind(session_id).bind(now).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(share).collect())
    }

    /// Revokes `user_id`'s link `id`; `false` if it is not theirs or was
    /// revoked already.
    pub async fn revoke_share(
        &self,
        user_id: &str,
        id: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let n = on_db!(self.db(), pool => {
            sqlx::query("UPDATE share_links SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL")
                .bind(now).bind(id).bind(user_id).execute(pool).await?.rows_affected()
        });
        Ok(n == 1)
    }

    /// Deletes links that expired or were revoked before `before`.
    pub async fn prune_shares(&self, before: Millis) -> Result<u64, StoreError> {
        let n = on_db!(self.db(), pool => {
            sqlx::query("DELETE FROM share_links WHERE expires_at < $1 OR revoked_at < $1")
                .bind(before).execute(pool).await?.rows_affected()
        });
        Ok(n)
    }
}
