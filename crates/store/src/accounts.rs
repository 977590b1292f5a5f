//! Accounts storage (issue 6): users, browser logins (cookie sessions),
//! one-time login codes, runners, revoked token ids, used browser token
//! ids and pending pairings. Schema: `migrations/*/0002_accounts.sql` and
//! `0010_login_ids_used_tokens.sql`.
//!
//! It stores what it is given: secrets arrive already hashed (the relay's
//! `auth` module hashes them), passwords as argon2 PHC strings. It decides
//! nothing about tokens or limits and reads no clock: every time is an
//! argument in milliseconds since the Unix epoch. Methods that must not race
//! (approving a pairing, consuming a code) are single conditional statements
//! or one transaction, so two relays on one PostgreSQL cannot both win.

use crate::{Millis, Store, StoreError, on_db};

/// A user row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: String,
    pub name: String,
    /// argon2id PHC string; `None` for users without a password (the local
    /// default user of `tmux-bridge up`).
    pub password_hash: Option<String>,
    pub created_at: Millis,
}

/// A runner row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerRecord {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub host: String,
    /// The runner embedded in `tmux-bridge up`.
    pub embedded: bool,
    /// jti of the runner's current token.
    pub token_jti: String,
    pub created_at: Millis,
    pub last_seen_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}

/// A pending (or approved, or consumed) pairing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairRecord {
    pub code_hash: String,
    pub poll_hash: String,
    pub runner_name: String,
    pub host: String,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub interval_secs: i64,
    pub last_poll_at: Option<Millis>,
    pub approved_by: Option<String>,
    pub approved_at: Option<Millis>,
    pub runner_id: Option<String>,
    pub consumed_at: Option<Millis>,
}

type UserRow = (String, String, Option<String>, i64);
type RunnerRow = (
    String,
    String,
    String,
    String,
    i64,
    String,
    i64,
    Option<i64>,
    Option<i64>,
);
type PairRow = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<i64>,
);

const USER_COLS: &str = "id, name, password_hash, created_at";
const RUNNER_COLS: &str =
    "id, user_id, name, host, embedded, token_jti, created_at, last_seen_at, revoked_at";
const PAIR_COLS: &str = "code_hash, poll_hash, runner_name, host, created_at, expires_at, \
     interval_secs, last_poll_at, approved_by, approved_at, runner_id, consumed_at";

fn user(r: UserRow) -> UserRecord {
    UserRecord {
        id: r.0,
        name: r.1,
        password_hash: r.2,
        created_at: r.3,
    }
}

fn runner(r: RunnerRow) -> RunnerRecord {
    RunnerRecord {
        id: r.0,
        user_id: r.1,
        name: r.2,
        host: r.3,
        embedded: r.4 != 0,
        token_jti: r.5,
        created_at: r.6,
        last_seen_at: r.7,
        revoked_at: r.8,
    }
}

fn pair(r: PairRow) -> PairRecord {
    PairRecord {
        code_hash: r.0,
        poll_hash: r.1,
        runner_name: r.2,
        host: r.3,
        created_at: r.4,
        expires_at: r.5,
        interval_secs: r.6,
        last_poll_at: r.7,
        approved_by: r.8,
        approved_at: r.9,
        runner_id: r.10,
        consumed_at: r.11,
    }
}

impl Store {
    // ---- users ----

    /// Creates a user; `Ok(None)` if the name is taken.
    pub async fn create_user(
        &self,
        id: &str,
        name: &str,
        password_hash: Option<&str>,
        now: Millis,
    ) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!(
            "INSERT INTO users (id, name, password_hash, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO NOTHING RETURNING {USER_COLS}"
        );
        let row: Option<UserRow> = on_db!(self.db(), pool => {
            sqlx::query_as(&sql).bind(id).bind(name).bind(password_hash).bind(now)
                .fetch_optional(pool).await?
        });
        Ok(row.map(user))
    }

    /// The user named `name`.
    pub async fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE name = $1");
        let row: Option<UserRow> = on_db!(self.db(), pool => {
            sqlx::query_as(&sql).bind(name).fetch_optional(pool).await?
        });
        Ok(row.map(user))
    }

    /// The user with id `id`.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE id = $1");
        let row: Option<UserRow> = on_db!(self.db(), pool => {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        });
        Ok(row.map(user))
    }

    /// Replaces a user's password hash; `false` if there is no such user.
    pub async fn set_password_hash(&self, user_id: &str, hash: &str) -> Result<bool, StoreError> {
        let n = on_db!(self.db(), pool => {
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(hash).bind(user_id).execute(pool).await?.rows_affected()
        });
        Ok(n == 1)
    }

    // ---- browser logins and one-time login codes ----

    /// Stores a browser login (cookie session) under the hash of its value,
    /// with its public id `login_id` (browser tokens name it).
    pub async fn create_browser_login(
        &self,
        token_hash: &str,
        login_id: &str,
        user_id: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<(), StoreError> {
        on_db!(self.db(), pool => {
            sqlx::query("INSERT INTO browser_logins (token_hash, login_id, user_id, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5)")
                .bind(token_hash).bind(login_id).bind(user_id).bind(now).bind(expires_at)
                .execute(pool).await?;
        });
        Ok(())
    }

    /// Moves a live login's expiry to `now + idle`, never past
    /// `created_at + max` (a login used at least every `idle` lasts up to
    /// `max`; one left alone for `idle` ends). Writes only when the expiry
    /// would move by more than `slack`, so a busy page costs one write per
    /// `slack`, not one per request.
    pub async fn touch_browser_login(
        &self,
        token_hash: &str,
        now: Millis,
        idle: Millis,
        max: Millis,
        slack: Millis,
    ) -> Result<(), StoreError> {
        let target = now.saturating_add(idle);
        on_db!(self.db(), pool => {
            sqlx::query(
                "UPDATE browser_logins SET expires_at = \
                 CASE WHEN created_at + $3 < $2 THEN created_at + $3 ELSE $2 END \
                 WHERE token_hash = $1 AND expires_at > $4 AND expires_at < $5 \
                 AND expires_at < created_at + $3",
            )
            .bind(token_hash)
            .bind(target)
            .bind(max)
            .bind(now)
            .bind(target.saturating_sub(slack))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The user and login id of an unexpired browser login.
    pub async fn browser_login(
        &self,
        token_hash: &str,
        now: Millis,
    ) -> Result<Option<(UserRecord, String)>, StoreError> {
        let sql = "SELECT u.id, u.name, u.password_hash, u.created_at, b.login_id FROM browser_logins b \
                   JOIN users u ON u.id = b.user_id WHERE b.token_hash = $1 AND b.expires_at > $2";
        type Row = (String, String, Option<String>, i64, Option<String>);
        let row: Option<Row> = on_db!(self.db(), pool => {
            sqlx::query_as(sql).bind(token_hash).bind(now).fetch_optional(pool).await?
        });
        Ok(row.and_then(|(id, name, hash, created, login)| {
            login.map(|l| (user((id, name, hash, created)), l))
        }))
    }

    /// The user of the unexpired browser login whose public id is
    /// `login_id` (`None` once it ended or expired).
    pub async fn login_owner(
        &self,
        login_id: &str,
        now: Millis,
    ) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = on_db!(self.db(), pool => {
            sqlx::query_as("SELECT user_id FROM browser_logins WHERE login_id = $1 AND expires_at > $2")
                .bind(login_id).bind(now).fetch_optional(pool).await?
        });
        Ok(row.map(|r| r.0))
    }

    /// Ends every browser login of a user (log out everywhere); returns
    /// how many there were.
    pub async fn delete_browser_logins_of_user(&self, user_id: &str) -> Result<u64, StoreError> {
        let n = on_db!(self.db(), pool => {
            sqlx::query("DELETE FROM browser_logins WHERE user_id = $1")
                .bind(user_id).execute(pool).await?.rows_affected()
        });
        Ok(n)
    }

    /// Replaces a user's password hash and ends every browser login of the
    /// user, in one transaction. `false` (nothing changed) if there is no
    /// such user.
    pub async fn change_password(&self, user_id: &str, hash: &str) -> Result<bool, StoreError> {
        let ok = on_db!(self.db(), pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(hash).bind(user_id).execute(&mut *tx).await?.rows_affected();
            if n == 1 {
                sqlx::query("DELETE FROM browser_logins WHERE user_id = $1")
                    .bind(user_id).execute(&mut *tx).await?;
                tx.commit().await?;
                true
            } else {
                tx.rollback().await?;
                false
            }
        });
        Ok(ok)
    }

    /// Consumes a browser token id: `true` exactly once per `jti` across
    /// every relay process on this database. The row is kept until
    /// `expires_at` (when the token would be refused anyway).
    pub async fn consume_browser_jti(
        &self,
        jti: &str,
        expires_at: Millis,
    ) -> Result<bool, StoreError> {
        let n = on_db!(self.db(), pool => {
            sqlx::query("INSERT INTO used_browser_tokens (jti, expires_at) VALUES ($1, $2) \
                         ON CONFLICT (jti) DO NOTHING")
                .bind(jti).bind(expires_at).execute(pool).await?.rows_affected()
        });
        Ok(n == 1)
    }

    /// The user of an unexpired browser login.
    pub async fn browser_login_user(
        &self,
        token_hash: &str,
        now: Millis,
    ) -> Result<Option<UserRecord>, StoreError> {
        let sql = "SELECT u.id, u.name, u.password_hash, u.created_at FROM browser_logins b \
                   JOIN users u ON u.id = b.user_id WHERE b.token_hash = $1 AND b.expires_at > $2";
        let row: Option<UserRow> = on_db!(self.db(), pool => {
            sqlx::query_as(sql).bind(token_hash).bind(now).fetch_optional(pool).await?
        });
        Ok(row.map(user))
    }

    /// Ends a browser login (logout); `false` if it did not exist.
    pub async fn delete_browser_login(&self, token_hash: &str) -> Result<bool, StoreError> {
        let n = on_db!(self.db(), pool => {
            sqlx::query("DELETE FROM browser_logins WHERE token_hash = $1")
                .bind(token_hash).execute(pool).await?.rows_affected()
        });
        Ok(n == 1)
    }

    /// Stores a one-time login code's hash.
    pub async fn create_login_code(
        &self,
        code_hash: &str,
        user_id: &str,
        expires_at: Millis,
    ) -> Result<(), StoreError> {
        on_db!(self.db(), pool => {
            sqlx::query("INSERT INTO login_codes (code_hash, user_id, expires_at) VALUES ($1, $2, $3)")
                .bind(code_hash).bind(user_id).bind(expires_at).execute(pool).await?;
        });
        Ok(())
    }

    /// Consumes a one-time login code: returns its user once if unexpired,
    /// and deletes it either way.
    pub async fn consume_login_code(
        &self,
        code_hash: &str,
        now: Millis,
    ) -> Result<Option<String>, StoreError> {
        let row: Option<(String, i64)> = on_db!(self.db(), pool => {
            sqlx::query_as("DELETE FROM login_codes WHERE code_hash = $1 RETURNING user_id, expires_at")
                .bind(code_hash).fetch_optional(pool).await?
        });
        Ok(row.and_then(|(user_id, exp)| (exp > now).then_some(user_id)))
    }

    // ---- runners and revocation ----

    /// Inserts a runner.
    pub async fn create_runner(&self, r: &RunnerRecord) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO runners ({RUNNER_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        );
        on_db!(self.db(), pool => {
            sqlx::query(&sql)
                .bind(&r.id).bind(&r.user_id).bind(&r.name).bind(&r.host)
                .bind(i64::from(r.embedded)).bind(&r.token_jti).bind(r.created_at)
                .bind(r.last_seen_at).bind(r.revoked_at)
                .execute(pool).await?;
        });
        Ok(())
    }

    /// The runner with id `id`, revoked or not.
    pub async fn runner(&self, id: &str) -> Result<Option<RunnerRecord>, StoreError> {
        let sql = format!("SELECT {RUNNER_COLS} FROM runners WHERE id = $1");
        let row: Option<RunnerRow> = on_db!(self.db(), pool => {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        });
        Ok(row.map(runner))
    }

    /// A user's runners that are not revoked, oldest first.
    pub async fn runners_of_user(&self, user_id: &str) -> Result<Vec<RunnerRecord>, StoreError> {
        let sql = format!(
            "SELECT {RUNNER_COLS} FROM runners WHERE user_id = $1 AND revoked_at IS NULL \
             ORDER BY created_at, id"
        );
        let rows: Vec<RunnerRow> = on_db!(self.db(), pool => {
            sqlx::query_as(&sql).bind(user_id).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(runner).collect())
    }

    /// The user's embedded (`tmux-bridge up`) runner, if any and not revoked.
    pub async fn embedded_runner(&self, user_id: &str) -> Result<Option<RunnerRecord>, StoreError> {
        let sql = format!(
            "SELECT {RUNNER_COLS} FROM runners WHERE user_id = $1 AND embedded = 1 \
             AND revoked_at IS NULL ORDER BY created_at LIMIT 1"
        );
        let row: Option<RunnerRow> = on_db!(self.db(), pool => {
            sqlx::query_as(&sql).bind(user_id).fetch_optional(pool).await?
        });
        Ok(row.map(runner))
    }

    /// Gives a runner a new token id and revokes the old one (until
    /// `old_expires_at`). `false` if the runner does not exist or is revoked.
    pub async fn rotate_runner_jti(
        &self,
        runner_id: &str,
        new_jti: &str,
        now: Millis,
        old_expires_at: Millis,
    ) -> Result<bool, StoreError> {
        let ok = on_db!(self.db(), pool => {
            let mut tx = pool.begin().await?;
            let old: Option<(String,)> = sqlx::query_as(
                "SELECT token_jti FROM runners WHERE id = $1 AND revoked_at IS NULL")
                .bind(runner_id).fetch_optional(&mut *tx).await?;
            if let Some((old_jti,)) = &old {
                sqlx::query("UPDATE runners SET token_jti = $1 WHERE id = $2")
                    .bind(new_jti).bind(runner_id).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO revoked_tokens (jti, revoked_at, expires_at) VALUES ($1, $2, $3) \
                             ON CONFLICT (jti) DO NOTHING")
                    .bind(old_jti).bind(now).bind(old_expires_at).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            old.is_some()
        });
        Ok(ok)
    }

    /// Revokes `runner_id` if it belongs to `user_id`: marks it revoked and
    /// records its token id as revoked until `jti_expires_at`. Returns the
    /// runner as it was, or `None` if it is not this user's or is revoked
    /// already (the caller answers both the same way).
    pub async fn revoke_runner(
        &self,
        user_id: &str,
        runner_id: &str,
        now: Millis,
        jti_expires_at: Millis,
    ) -> Result<Option<RunnerRecord>, StoreError> {
        let sql = format!(
            "UPDATE runners SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL \
             RETURNING {RUNNER_COLS}"
        );
        let row: Option<RunnerRow> = on_db!(self.db(), pool => {
            let mut tx = pool.begin().await?;
            let row: Option<RunnerRow> = sqlx::query_as(&sql)
                .bind(now).bind(runner_id).bind(user_id).fetch_optional(&mut *tx).await?;
            if let Some(r) = &row {
                sqlx::query("INSERT INTO revoked_tokens (jti, revoked_at, expires_at) VALUES ($1, $2, $3) \
                             ON CONFLICT (jti) DO NOTHING")
                    .bind(&r.5).bind(now).bind(jti_expires_at).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            row
        });
        Ok(row.map(runner))
    }

    /// Whether a token id has been revoked.
    pub async fn is_jti_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let row: Option<(i64,)> = on_db!(self.db(), pool => {
            sqlx::query_as("SELECT revoked_at FROM revoked_tokens WHERE jti = $1")
                .bind(jti).fetch_optional(pool).await?
        });
        Ok(row.is_some())
    }

    /// Records that a runner connected or disconnected at `now`.
    pub async fn touch_runner(&self, runner_id: &str, now: Millis) -> Result<(), StoreError> {
        on_db!(self.db(), pool => {
            sqlx::query("UPDATE runners SET last_seen_at = $1 WHERE id = $2")
                .bind(now).bind(runner_id).execute(pool).await?;
        });
        Ok(())
    }

    /// Records what a connected runner reported about itself (protocol 2
    /// `hello`): its host name, its version and its tmux's.
    pub async fn set_runner_versions(
        &self,
        runner_id: &str,
        host: &str,
        version: &str,
        tmux_version: &str,
    ) -> Result<(), StoreError> {
        on_db!(self.db(), pool => {
            sqlx::query(
                "UPDATE runners SET host = CASE WHEN $1 = '' THEN host ELSE $1 END, \
                 version = $2, tmux_version = $3 WHERE id = $4",
            )
            .bind(host)
            .bind(version)
            .bind(tmux_version)
            .bind(runner_id)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// `(runner id, version, tmux version)` of every runner of `user_id`.
    pub async fn runner_versions(
        &self,
        user_id: &str,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        Ok(on_db!(self.db(), pool => {
            sqlx::query_as("SELECT id, version, tmux_version FROM runners WHERE user_id = $1")
                .bind(user_id)
                .fetch_all(pool)
                .await?
        }))
    }

    // ---- pairing ----

    /// Stores a new pairing request.
    pub async fn create_pair_request(&self, p: &PairRecord) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO pair_requests ({PAIR_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        );
        on_db!(self.db(), pool => {
            sqlx::query(&sql)
                .bind(&p.code_hash).bind(&p.poll_hash).bind(&p.runner_name).bind(&p.host)
                .bind(p.created_at).bind(p.expires_at).bind(p.interval_secs).bind(p.last_poll_at)
                .bind(&p.approved_by).bind(p.approved_at).bind(&p.runner_id).bind(p.consumed_at)
                .execute(pool).await?;
        });
        Ok(())
    }

    /// The pairing request whose poll secret hashes to `poll_hash`.
    pub async fn pair_request_by_poll(
        &self,
        poll_hash: &str,
    ) -> Result<Option<PairRecord>, StoreError> {
        let sql = format!("SELECT {PAIR_COLS} FROM pair_requests WHERE poll_hash = $1");
        let row: Option<PairRow> = on_db!(self.db(), pool => {
            sqlx::query_as(&sql).bind(poll_hash).fetch_optional(pool).await?
        });
        Ok(row.map(pair))
    }

    /// The pairing request whose code hashes to `code_hash`.
    pub async fn pair_request(&self, code_hash: &str) -> Result<Option<PairRecord>, StoreError> {
        let sql = format!("SELECT {PAIR_COLS} FROM pair_requests WHERE code_hash = $1");
        let row: Option<PairRow> = on_db!(self.db(), pool => {
            sqlx::query_as(&sql).bind(code_hash).fetch_optional(pool).await?
        });
        Ok(row.map(pair))
    }

    /// Approves a pending, unexpired pairing for `runner.user_id` and creates
    /// the runner, in one transaction. `false` (and nothing written) if the
    /// code is unknown, expired or approved already.
    pub async fn approve_pair_request(
        &self,
        code_hash: &str,
        runner: &RunnerRecord,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let insert = format!(
            "INSERT INTO runners ({RUNNER_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        );
        let ok = on_db!(self.db(), pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "UPDATE pair_requests SET approved_by = $1, approved_at = $2, runner_id = $3 \
                 WHERE code_hash = $4 AND approved_by IS NULL AND expires_at > $2")
                .bind(&runner.user_id).bind(now).bind(&runner.id).bind(code_hash)
                .execute(&mut *tx).await?.rows_affected();
            if n == 1 {
                sqlx::query(&insert)
                    .bind(&runner.id).bind(&runner.user_id).bind(&runner.name).bind(&runner.host)
                    .bind(i64::from(runner.embedded)).bind(&runner.token_jti).bind(runner.created_at)
                    .bind(runner.last_seen_at).bind(runner.revoked_at)
                    .execute(&mut *tx).await?;
                tx.commit().await?;
                true
            } else {
                tx.rollback().await?;
                false
            }
        });
        Ok(ok)
    }

    /// Records a poll at `now` and the interval the runner must keep next.
    pub async fn record_pair_poll(
        &self,
        code_hash: &str,
        now: Millis,
        interval_secs: i64,
    ) -> Result<(), StoreError> {
        on_db!(self.db(), pool => {
            sqlx::query("UPDATE pair_requests SET last_poll_at = $1, interval_secs = $2 WHERE code_hash = $3")
                .bind(now).bind(interval_secs).bind(code_hash).execute(pool).await?;
        });
        Ok(())
    }

    /// Marks an approved pairing consumed; `true` exactly once.
    pub async fn consume_pair_request(
        &self,
        code_hash: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let n = on_db!(self.db(), pool => {
            sqlx::query("UPDATE pair_requests SET consumed_at = $1 \
                         WHERE code_hash = $2 AND approved_by IS NOT NULL AND consumed_at IS NULL")
                .bind(now).bind(code_hash).execute(pool).await?.rows_affected()
        });
        Ok(n == 1)
    }

    /// Deletes pairings expired before `before`, login codes and browser
    /// logins past their expiry, and revocations of tokens that have expired
    /// anyway. Returns the number of rows deleted.
    pub async fn prune_accounts(
        &self,
        now: Millis,
        pairs_before: Millis,
    ) -> Result<u64, StoreError> {
        let n = on_db!(self.db(), pool => {
            let mut n = 0;
            n += sqlx::query("DELETE FROM pair_requests WHERE expires_at < $1")
                .bind(pairs_before).execute(pool).await?.rows_affected();
            n += sqlx::query("DELETE FROM login_codes WHERE expires_at < $1")
                .bind(now).execute(pool).await?.rows_affected();
            n += sqlx::query("DELETE FROM browser_logins WHERE expires_at < $1")
                .bind(now).execute(pool).await?.rows_affected();
            n += sqlx::query("DELETE FROM revoked_tokens WHERE expires_at < $1")
                .bind(now).execute(pool).await?.rows_affected();
            n += sqlx::query("DELETE FROM used_browser_tokens WHERE expires_at < $1")
                .bind(now).execute(pool).await?.rows_affected();
            n
        });
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
