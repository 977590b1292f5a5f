//! Agents and idle watching (issue 12): an agent's row beside its job (its
//! kind, arguments, idle time, whether its pane is idle, its derived state)
//! with its state transitions, the watched panes of sessions, and the
//! account settings. The relay derives the states; this module stores
//! them. No clock: times are arguments.

use crate::{Millis, Store, StoreError, TerminalSessionId, on_db};

/// Transitions kept per agent: older ones are deleted as new ones come.
pub const TRANSITIONS_KEPT: i64 = 500;

/// An agent as stored (its job is the `jobs` row of the same id).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AgentRecord {
    pub job_id: String,
    pub user_id: String,
    /// `claude-code`, `codex`, `cursor` or `custom`.
    pub agent_kind: String,
    /// A JSON array of strings.
    pub args: String,
    /// `None`: the account's setting, else the default.
    pub idle_ms: Option<i64>,
    /// Whether its pane is idle, as the runner last said.
    pub idle: bool,
    /// `starting`, `running`, `idle`, `stopped` or `errored`.
    pub state: String,
    pub state_at: Millis,
}

const AGENT_COLUMNS: &str = "job_id, user_id, agent_kind, args, idle_ms, idle, state, state_at";

/// One stored state transition of an agent.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AgentTransition {
    pub state: String,
    pub at: Millis,
}

/// A watched pane of a terminal session.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PaneWatch {
    pub session_id: TerminalSessionId,
    /// `%N`.
    pub pane: String,
    pub user_id: String,
    pub idle_ms: i64,
    pub idle: bool,
    pub changed_at: Millis,
}

const WATCH_COLUMNS: &str = "session_id, pane, user_id, idle_ms, idle, changed_at";

impl Store {
    /// Stores a new agent (its job must exist) and its first transition.
    pub async fn insert_agent(&self, a: &AgentRecord) -> Result<(), StoreError> {
        let sql =
            format!("INSERT INTO agents ({AGENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(&sql)
                .bind(&a.job_id)
                .bind(&a.user_id)
                .bind(&a.agent_kind)
                .bind(&a.args)
                .bind(a.idle_ms)
                .bind(a.idle)
                .bind(&a.state)
                .bind(a.state_at)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO agent_transitions (job_id, state, at) VALUES ($1, $2, $3)")
                .bind(&a.job_id)
                .bind(&a.state)
                .bind(a.state_at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// An agent by its job id, whoever owns it (the caller checks).
    pub async fn agent(&self, job_id: &str) -> Result<Option<AgentRecord>, StoreError> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE job_id = $1");
        Ok(on_db!(&self.db, pool => {
            sqlx::query_as(&sql).bind(job_id).fetch_optional(pool).await?
        }))
    }

    /// The user's agents (of one idea when given), newest job first, at
    /// most `limit`.
    pub async fn agents_for_user(
        &self,
        user_id: &str,
        idea: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AgentRecord>, StoreError> {
        let cols = AGENT_COLUMNS
            .split(", ")
            .map(|c| format!("a.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {cols} FROM agents a JOIN jobs j ON j.id = a.job_id \
             WHERE a.user_id = $1 AND ($2 IS NULL OR j.idea = $2) \
             ORDER BY j.created_at DESC, j.id DESC LIMIT $3"
        );
        Ok(on_db!(&self.db, pool => {
            sqlx::query_as(&sql)
                .bind(user_id)
                .bind(idea)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        }))
    }

    /// The agents whose job runs in session `session_id`, with their panes.
    pub async fn running_agents_in_session(
        &self,
        session_id: TerminalSessionId,
    ) -> Result<Vec<(AgentRecord, String)>, StoreError> {
        let cols = AGENT_COLUMNS
            .split(", ")
            .map(|c| format!("a.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {cols}, j.pane FROM agents a JOIN jobs j ON j.id = a.job_id \
             WHERE j.session_id = $1 AND j.state = 'running' AND j.pane IS NOT NULL"
        );
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            a: AgentRecord,
            pane: String,
        }
        let rows: Vec<Row> = on_db!(&self.db, pool => {
            sqlx::query_as(&sql).bind(session_id).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(|r| (r.a, r.pane)).collect())
    }

    /// Writes an agent's idle flag and state; when the state differs from
    /// `previous`, stores the transition at `at` too (keeping the newest
    /// [`TRANSITIONS_KEPT`]). Returns whether the state changed.
    pub async fn set_agent_state(
        &self,
        job_id: &str,
        idle: bool,
        state: &str,
        previous: &str,
        at: Millis,
    ) -> Result<bool, StoreError> {
        let changed = state != previous;
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE agents SET idle = $2, state = $3, \
                 state_at = CASE WHEN state = $3 THEN state_at ELSE $4 END WHERE job_id = $1",
            )
            .bind(job_id)
            .bind(idle)
            .bind(state)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            if changed {
                sqlx::query("INSERT INTO agent_transitions (job_id, state, at) VALUES ($1, $2, $3)")
                    .bind(job_id)
                    .bind(state)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "DELETE FROM agent_transitions WHERE job_id = $1 AND id NOT IN \
                     (SELECT id FROM agent_transitions WHERE job_id = $1 ORDER BY id DESC LIMIT $2)",
                )
                .bind(job_id)
                .bind(TRANSITIONS_KEPT)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(changed)
    }

    /// An agent's transitions, oldest first (at most [`TRANSITIONS_KEPT`]).
    pub async fn agent_transitions(
        &self,
        job_id: &str,
    ) -> Result<Vec<AgentTransition>, StoreError> {
        Ok(on_db!(&self.db, pool => {
            sqlx::query_as("SELECT state, at FROM agent_transitions WHERE job_id = $1 ORDER BY id")
                .bind(job_id)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Watches `pane` of a session (or changes its idle time), active.
    pub async fn upsert_pane_watch(&self, w: &PaneWatch) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO pane_watches ({WATCH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (session_id, pane) DO UPDATE SET idle_ms = excluded.idle_ms"
        );
        on_db!(&self.db, pool => {
            sqlx::query(&sql)
                .bind(w.session_id)
                .bind(&w.pane)
                .bind(&w.user_id)
                .bind(w.idle_ms)
                .bind(w.idle)
                .bind(w.changed_at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Stops watching a pane; `false` if it was not watched.
    pub async fn delete_pane_watch(
        &self,
        session_id: TerminalSessionId,
        pane: &str,
    ) -> Result<bool, StoreError> {
        Ok(on_db!(&self.db, pool => {
            sqlx::query("DELETE FROM pane_watches WHERE session_id = $1 AND pane = $2")
                .bind(session_id)
                .bind(pane)
                .execute(pool)
                .await?
                .rows_affected()
                > 0
        }))
    }

    /// The watched panes of a session.
    pub async fn pane_watches(
        &self,
        session_id: TerminalSessionId,
    ) -> Result<Vec<PaneWatch>, StoreError> {
        let sql =
            format!("SELECT {WATCH_COLUMNS} FROM pane_watches WHERE session_id = $1 ORDER BY pane");
        Ok(on_db!(&self.db, pool => {
            sqlx::query_as(&sql).bind(session_id).fetch_all(pool).await?
        }))
    }

    /// Sets a watched pane idle or active at `at`; `Some(watch)` when that
    /// changed it, `None` when it was so already or is not watched.
    pub async fn set_pane_idle(
        &self,
        session_id: TerminalSessionId,
        pane: &str,
        idle: bool,
        at: Millis,
    ) -> Result<Option<PaneWatch>, StoreError> {
        let changed = on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE pane_watches SET idle = $3, changed_at = $4 \
                 WHERE session_id = $1 AND pane = $2 AND idle <> $3",
            )
            .bind(session_id)
            .bind(pane)
            .bind(idle)
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if changed == 0 {
            return Ok(None);
        }
        Ok(self
            .pane_watches(session_id)
            .await?
            .into_iter()
            .find(|w| w.pane == pane))
    }

    /// The account's default agent idle time, if set.
    pub async fn agent_idle_ms(&self, user_id: &str) -> Result<Option<i64>, StoreError> {
        let v: Option<Option<i64>> = on_db!(&self.db, pool => {
            sqlx::query_scalar("SELECT agent_idle_ms FROM account_settings WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(v.flatten())
    }

    /// Sets (or, with `None`, clears) the account's default agent idle time.
    pub async fn set_agent_idle_ms(
        &self,
        user_id: &str,
        ms: Option<i64>,
    ) -> Result<(), StoreError> {
        on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO account_settings (user_id, agent_idle_ms) VALUES ($1, $2) \
                 ON CONFLICT (user_id) DO UPDATE SET agent_idle_ms = excluded.agent_idle_ms",
            )
            .bind(user_id)
            .bind(ms)
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}
