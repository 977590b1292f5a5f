//! Users and browser logins: `tmux-relay user add`, password login (rate
//! limited, no user enumeration by timing), one-time login links, logout,
//! log out everywhere and password change. Ending a login deletes it from
//! the store (its browser tokens stop working) and ends what it keeps open
//! in this process (issue 10).

use std::net::IpAddr;

use axum::http::HeaderMap;
use store::accounts::UserRecord;

use super::{Auth, AuthError, CurrentUser, codes, now_ms, password};

/// Whether `name` is a valid user name: 1 to 64 of `[A-Za-z0-9_.-]`, not
/// starting with `-` or `.`.
pub fn valid_user_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with(['-', '.'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A runner name or host as given by a runner: control characters
/// removed, trimmed, at most 64 characters; `default` when empty.
pub(crate) fn clean_label(s: &str, default: &str) -> String {
    let cleaned: String = s.chars().filter(|c| !c.is_control()).take(64).collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() {
        default.to_owned()
    } else {
        cleaned.to_owned()
    }
}

impl Auth {
    /// Creates a user with a password (argon2id). [`AuthError::Conflict`] if
    /// the name is taken.
    pub async fn add_user(&self, name: &str, password: &str) -> Result<UserRecord, AuthError> {
        if !valid_user_name(name) {
            return Err(AuthError::BadRequest(
                "user names are 1-64 of A-Z a-z 0-9 _ . -",
            ));
        }
        let pw = password.to_owned();
        let hash = tokio::task::spawn_blocking(move || password::hash_password(&pw))
            .await
            .map_err(|e| AuthError::Internal(format!("hashing task: {e}")))??;
        self.store()
            .create_user(&codes::new_id(), name, Some(&hash), now_ms())
            .await?
            .ok_or(AuthError::Conflict("user name taken"))
    }

    /// Checks a name and password from `addr` and starts a browser login.
    /// Returns the user and the cookie value. Failures are limited per
    /// address and per name ([`AuthError::RateLimited`]); an unknown name
    /// costs the same argon2 work as a wrong password.
    pub async fn login_password(
        &self,
        name: &str,
        password: &str,
        addr: IpAddr,
    ) -> Result<(CurrentUser, String), AuthError> {
        let key = name.to_owned();
        let limits = self.limits();
        limits.login_fail_per_addr.check(&addr).await?;
        limits.login_fail_per_user.check(&key).await?;
        let user = if valid_user_name(name) {
            self.store().user_by_name(name).await?
        } else {
            None
        };
        let stored = user.as_ref().and_then(|u| u.password_hash.clone());
        let pw = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || match stored {
            Some(hash) => password::verify_password(&pw, &hash),
            None => password::verify_dummy(&pw),
        })
        .await
        .map_err(|e| AuthError::Internal(format!("verifying task: {e}")))?;
        match (ok, user) {
            (true, Some(u)) => {
                let cookie = self.start_browser_login(&u.id).await?;
                tracing::info!(user = %u.id, "password login");
                Ok((
                    CurrentUser {
                        id: u.id,
                        name: u.name,
                    },
                    cookie,
                ))
            }
            _ => {
                limits.login_fail_per_addr.record(&addr).await?;
                limits.login_fail_per_user.record(&key).await?;
                tracing::info!(%addr, "failed password login");
                Err(AuthError::BadLogin)
            }
        }
    }

    /// Redeems a one-time login code: on success starts a browser login and
    /// returns the cookie value. Any failure is [`AuthError::BadCode`].
    pub async fn login_once(&self, code: &str) -> Result<String, AuthError> {
        if code.is_empty() || code.len() > 128 {
            return Err(AuthError::BadCode);
        }
        let user_id = self
            .store()
            .consume_login_code(&self.hash("login-code", code), now_ms())
            .await?
            .ok_or(AuthError::BadCode)?;
        tracing::info!(user = %user_id, "one-time login");
        self.start_browser_login(&user_id).await
    }

    /// Creates a browser login for `user_id`; returns the cookie value
    /// (stored only hashed).
    pub async fn start_browser_login(&self, user_id: &str) -> Result<String, AuthError> {
        let value = codes::random_token(32);
        let now = now_ms();
        // It ends after the idle timeout unless used (`touch_login`).
        let ttl = i64::try_from(
            self.config()
                .login_idle
                .min(self.config().login_ttl)
                .as_millis(),
        )
        .unwrap_or(i64::MAX / 4);
        self.store()
            .create_browser_login(
                &self.hash("login", &value),
                &codes::new_id(),
                user_id,
                now,
                now.saturating_add(ttl),
            )
            .await?;
        Ok(value)
    }

    /// Ends the login of the request's cookie, if any: deletes it (its
    /// browser tokens stop opening sockets) and closes what it keeps open.
    pub async fn logout(&self, headers: &HeaderMap) -> Result<(), AuthError> {
        let login = self.login_from_headers(headers).await?;
        if let Some(value) = self.cookie_value(headers) {
            self.store()
                .delete_browser_login(&self.hash("login", &value))
                .await?;
        }
        if let Some(l) = login {
            let closed = self.cut(super::Cut::Login {
                user_id: l.user.id.clone(),
                login_id: l.login_id.clone(),
            });
            tracing::info!(user = %l.user.id, closed, "logout");
        }
        Ok(())
    }

    /// Ends every login of `user` (log out everywhere) and closes what they
    /// keep open.
    pub async fn logout_everywhere(&self, user: &CurrentUser) -> Result<(), AuthError> {
        let logins = self.store().delete_browser_logins_of_user(&user.id).await?;
        let closed = self.cut(super::Cut::User {
            user_id: user.id.clone(),
        });
        tracing::info!(user = %user.id, logins, closed, "logged out everywhere");
        Ok(())
    }

    /// Changes `user`'s password after checking the current one (failures
    /// count against the login limits of `addr` and the name), ends every
    /// login of the account, and starts a new login for the caller: returns
    /// its cookie value. A user without a password (the local user of
    /// `tmux-bridge up`) cannot set one here.
    pub async fn change_password(
        &self,
        user: &CurrentUser,
        current: &str,
        new: &str,
        addr: IpAddr,
    ) -> Result<String, AuthError> {
        if new.is_empty() || new.len() > password::MAX_PASSWORD_LEN {
            return Err(AuthError::BadRequest("password must be 1 to 1024 bytes"));
        }
        let limits = self.limits();
        limits.login_fail_per_addr.check(&addr).await?;
        limits.login_fail_per_user.check(&user.name).await?;
        let stored = self
            .store()
            .user_by_id(&user.id)
            .await?
            .and_then(|u| u.password_hash);
        let Some(stored) = stored else {
            return Err(AuthError::BadRequest(
                "this account has no password (it logs in with a link)",
            ));
        };
        let pw = current.to_owned();
        let ok = tokio::task::spawn_blocking(move || password::verify_password(&pw, &stored))
            .await
            .map_err(|e| AuthError::Internal(format!("verifying task: {e}")))?;
        if !ok {
            limits.login_fail_per_addr.record(&addr).await?;
            limits.login_fail_per_user.record(&user.name).await?;
            tracing::info!(user = %user.id, %addr, "password change with a wrong password");
            return Err(AuthError::BadLogin);
        }
        let pw = new.to_owned();
        let hash = tokio::task::spawn_blocking(move || password::hash_password(&pw))
            .await
            .map_err(|e| AuthError::Internal(format!("hashing task: {e}")))??;
        if !self.store().change_password(&user.id, &hash).await? {
            return Err(AuthError::Unauthenticated);
        }
        let closed = self.cut(super::Cut::User {
            user_id: user.id.clone(),
        });
        tracing::info!(user = %user.id, closed, "password changed; every login ended");
        self.start_browser_login(&user.id).await
    }
}
