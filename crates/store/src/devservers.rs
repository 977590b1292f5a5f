//! Dev server events (issue 12): `port-detected`, `port-closed` and
//! `process-exited`, as the relay derived them from a dev server's
//! reports, stored per job so a page lists them after a reload. Each job
//! keeps its newest [`Store::DEVSERVER_EVENTS_KEPT`]; older ones are
//! dropped as new ones arrive, so a port that flaps cannot grow the table
//! without bound. This module stores and reads; it never decides what
//! happened (that is the relay's pure derivation) and reads no clock.

use crate::{Millis, Store, StoreError, on_db};

/// A dev server event to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDevserverEvent {
    /// `port-detected`, `port-closed` or `process-exited`.
    pub kind: String,
    pub port: Option<u16>,
    pub addr: Option<String>,
    /// `socket` or `output`.
    pub source: Option<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
}

/// A stored dev server event.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DevserverEventRecord {
    pub id: i64,
    pub job_id: String,
    pub at: Millis,
    pub kind: String,
    pub port: Option<i32>,
    pub addr: Option<String>,
    pub source: Option<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
}

const COLUMNS: &str = "id, job_id, at, kind, port, addr, source, exit_code, signal";

impl Store {
    /// Events a dev server keeps (its newest).
    pub const DEVSERVER_EVENTS_KEPT: u32 = 200;

    /// Stores `events` of job `job_id` at `at`, in order, and drops the
    /// job's events beyond the newest [`Self::DEVSERVER_EVENTS_KEPT`].
    /// Returns them as stored (with their ids).
    pub async fn add_devserver_events(
        &self,
        job_id: &str,
        at: Millis,
        events: &[NewDevserverEvent],
    ) -> Result<Vec<DevserverEventRecord>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let insert = format!(
            "INSERT INTO devserver_events (job_id, at, kind, port, addr, source, exit_code, \
             signal) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
        );
        let trim = "DELETE FROM devserver_events WHERE job_id = $1 AND id <= \
             (SELECT id FROM devserver_events WHERE job_id = $1 ORDER BY id DESC \
              LIMIT 1 OFFSET $2)";
        Ok(on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let mut out = Vec::with_capacity(events.len());
            for e in events {
                let rec: DevserverEventRecord = sqlx::query_as(&insert)
                    .bind(job_id)
                    .bind(at)
                    .bind(&e.kind)
                    .bind(e.port.map(i32::from))
                    .bind(&e.addr)
                    .bind(&e.source)
                    .bind(e.exit_code)
                    .bind(e.signal)
                    .fetch_one(&mut *tx)
                    .await?;
                out.push(rec);
            }
            sqlx::query(trim)
                .bind(job_id)
                .bind(i64::from(Self::DEVSERVER_EVENTS_KEPT))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            out
        }))
    }

    /// Job `job_id`'s newest `limit` events, oldest first (the caller
    /// checks who owns the job).
    pub async fn devserver_events(
        &self,
        job_id: &str,
        limit: u32,
    ) -> Result<Vec<DevserverEventRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM devserver_events WHERE job_id = $1 ORDER BY id DESC LIMIT $2"
        );
        let mut v: Vec<DevserverEventRecord> = on_db!(&self.db, pool => {
            sqlx::query_as(&sql)
                .bind(job_id)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        v.reverse();
        Ok(v)
    }
}
