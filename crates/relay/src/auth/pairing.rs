//! Runner pairing: an inverted device-code flow (RFC 8628 §5.1, §5.4).
//!
//! The runner starts a pairing and gets a short code for a person plus a
//! long poll secret for itself; a logged-in user approves the code, which
//! binds a new runner to *their* account; the runner polls with code and
//! secret and receives its token exactly once. Because approving someone
//! else's code captures their machine, wrong codes are capped per user,
//! per address and relay-wide, codes are single use and short-lived, and
//! only hashes are stored. The poll secret means that knowing the code is
//! not enough to collect the runner token.

use std::net::IpAddr;

use serde::Serialize;
use store::accounts::{PairRecord, RunnerRecord};

use super::users::clean_label;
use super::{Auth, AuthError, CurrentUser, codes, now_ms};

/// Added to the poll interval on each `slow_down` (RFC 8628 §3.5).
const SLOW_DOWN_STEP_SECS: i64 = 5;
/// Polls this much early still count as on time (network jitter).
const POLL_TOLERANCE_MS: i64 = 1000;

/// Answer to `POST /api/pair/start`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PairStart {
    /// The code a person types, `ABC-DEFG`.
    pub code: String,
    /// The runner's secret for polling (`Authorization: Bearer`).
    pub poll_token: String,
    /// Where a person approves the code.
    pub approve_url: String,
    /// Seconds between polls.
    pub interval: i64,
    /// Seconds until the code expires.
    pub expires_in: i64,
}

/// A pending pairing as shown before approval.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PairPreview {
    pub name: String,
    pub host: String,
    /// Seconds until the code expires.
    pub expires_in: i64,
}

/// Answer to `POST /api/pair/approve`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PairApproved {
    pub runner_id: String,
    pub name: String,
    pub host: String,
}

/// Answer to `GET /api/pair/check`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PairCheck {
    /// Not approved yet; poll again after `interval` seconds.
    Pending { interval: i64 },
    /// Polled too fast; the interval grew to `interval`.
    SlowDown { interval: i64 },
    /// Approved: the runner's credentials, given exactly once.
    #[serde(rename_all = "camelCase")]
    Approved {
        relay_url: String,
        runner_id: String,
        runner_token: String,
        account: String,
    },
    /// Approved earlier and already collected.
    Consumed,
    /// Expired (an unknown code or poll secret is a 401, never this).
    Expired,
}

impl Auth {
    /// Starts a pairing for a runner at `addr` named `name` on `host`.
    /// Limited to 3 per 5 minutes per address.
    pub async fn pair_start(
        &self,
        addr: IpAddr,
        name: &str,
        host: &str,
    ) -> Result<PairStart, AuthError> {
        self.limits().pair_start_per_addr.try_acquire(&addr).await?;
        let code = codes::new_pair_code();
        let canonical = codes::normalize_pair_code(&code).ok_or(AuthError::Internal(
            "generated code does not normalize".into(),
        ))?;
        let poll_token = codes::random_token(32);
        let now = now_ms();
        let ttl_ms = self.code_ttl_ms();
        let interval = i64::try_from(self.config().pair_poll_interval.as_secs())
            .unwrap_or(5)
            .max(1);
        self.store()
            .create_pair_request(&PairRecord {
                code_hash: self.hash("pair-code", &canonical),
                poll_hash: self.hash("pair-poll", &poll_token),
                runner_name: clean_label(name, "runner"),
                host: clean_label(host, "unknown"),
                created_at: now,
                expires_at: now.saturating_add(ttl_ms),
                interval_secs: interval,
                last_poll_at: None,
                approved_by: None,
                approved_at: None,
                runner_id: None,
                consumed_at: None,
            })
            .await?;
        tracing::info!(%addr, "pairing started");
        self.maybe_prune().await;
        Ok(PairStart {
            code,
            poll_token,
            approve_url: format!("{}/pair", self.config().public_url),
            interval,
            expires_in: ttl_ms / 1000,
        })
    }

    /// Approves a typed pairing code for `user`, from `addr`: creates the
    /// runner in the user's account. Every failure is
    /// [`AuthError::BadCode`] and counts against the per-user, per-address
    /// and global caps on wrong codes; once any cap is reached every
    /// approval is refused with [`AuthError::RateLimited`] until it slides.
    pub async fn pair_approve(
        &self,
        user: &CurrentUser,
        addr: IpAddr,
        code: &str,
    ) -> Result<PairApproved, AuthError> {
        let approved = self
            .guarded(user, addr, self.try_approve(user, code))
            .await?;
        tracing::info!(user = %user.id, runner = %approved.runner_id, "pairing approved");
        self.record_runner_event(
            &user.id,
            &approved.runner_id,
            &approved.name,
            "runner_paired",
        )
        .await;
        Ok(approved)
    }

    /// What approving `code` would pair, without approving it: the runner's
    /// name and host, for a confirmation step (RFC 8628 §5.4). Guarded and
    /// counted exactly like [`Auth::pair_approve`].
    pub async fn pair_preview(
        &self,
        user: &CurrentUser,
        addr: IpAddr,
        code: &str,
    ) -> Result<PairPreview, AuthError> {
        self.guarded(user, addr, self.try_preview(code)).await
    }

    /// Runs one code attempt under the approval limits; `Ok(None)` from the
    /// attempt is a wrong code and is counted against every cap.
    async fn guarded<T>(
        &self,
        user: &CurrentUser,
        addr: IpAddr,
        attempt: impl std::future::Future<Output = Result<Option<T>, AuthError>>,
    ) -> Result<T, AuthError> {
        let l = self.limits();
        l.pair_approve_per_user.try_acquire(&user.id).await?;
        l.pair_wrong_per_user.check(&user.id).await?;
        l.pair_wrong_per_addr.check(&addr).await?;
        l.pair_wrong_global.check(&()).await?;
        match attempt.await? {
            Some(v) => Ok(v),
            None => {
                l.pair_wrong_per_user.record(&user.id).await?;
                l.pair_wrong_per_addr.record(&addr).await?;
                l.pair_wrong_global.record(&()).await?;
                tracing::info!(user = %user.id, %addr, "wrong pairing code");
                Err(AuthError::BadCode)
            }
        }
    }

    async fn try_preview(&self, code: &str) -> Result<Option<PairPreview>, AuthError> {
        let Some(canonical) = codes::normalize_pair_code(code) else {
            return Ok(None);
        };
        let code_hash = self.hash("pair-code", &canonical);
        let now = now_ms();
        match self.store().pair_request(&code_hash).await? {
            Some(p)
                if codes::ct_eq(p.code_hash.as_bytes(), code_hash.as_bytes())
                    && p.approved_by.is_none()
                    && p.expires_at > now =>
            {
                Ok(Some(PairPreview {
                    name: p.runner_name,
                    host: p.host,
                    expires_in: (p.expires_at - now) / 1000,
                }))
            }
            _ => Ok(None),
        }
    }

    async fn try_approve(
        &self,
        user: &CurrentUser,
        code: &str,
    ) -> Result<Option<PairApproved>, AuthError> {
        let Some(canonical) = codes::normalize_pair_code(code) else {
            return Ok(None);
        };
        let code_hash = self.hash("pair-code", &canonical);
        let Some(pending) = self.store().pair_request(&code_hash).await? else {
            return Ok(None);
        };
        // The row was found by its hash; comparing again in constant time
        // keeps the decision free of early-exit comparisons.
        if !codes::ct_eq(pending.code_hash.as_bytes(), code_hash.as_bytes()) {
            return Ok(None);
        }
        if self.store().runners_of_user(&user.id).await?.len() >= super::MAX_RUNNERS_PER_USER {
            return Err(AuthError::Quota(
                "runner limit of this account reached; revoke one first",
            ));
        }
        let now = now_ms();
        let runner = RunnerRecord {
            id: codes::new_id(),
            user_id: user.id.clone(),
            name: pending.runner_name.clone(),
            host: pending.host.clone(),
            embedded: false,
            token_jti: codes::new_id(),
            created_at: now,
            last_seen_at: None,
            revoked_at: None,
        };
        if !self
            .store()
            .approve_pair_request(&code_hash, &runner, now)
            .await?
        {
            return Ok(None);
        }
        Ok(Some(PairApproved {
            runner_id: runner.id,
            name: runner.name,
            host: runner.host,
        }))
    }

    /// Answers a poll from `addr` ([`Auth::pair_check`]) under the limits
    /// on polls per address and relay-wide ([`AuthError::RateLimited`]);
    /// the limits are checked before anything else, so a refusal says
    /// nothing about any code.
    pub async fn pair_check_from(
        &self,
        addr: IpAddr,
        code: &str,
        poll_token: &str,
    ) -> Result<PairCheck, AuthError> {
        let l = self.limits();
        l.pair_check_per_addr.try_acquire(&addr).await?;
        l.pair_check_global.try_acquire(&()).await?;
        self.pair_check(code, poll_token).await
    }

    /// Answers a runner's poll for `code` with its poll secret. The
    /// pairing is found by the poll secret, never by the code: without the
    /// secret of a pairing the answer is [`AuthError::Unauthenticated`]
    /// whether or not the code exists (issue 10: the code is not an
    /// oracle), and with it, a code other than that pairing's is refused
    /// alike.
    pub async fn pair_check(&self, code: &str, poll_token: &str) -> Result<PairCheck, AuthError> {
        self.pair_check_at(code, poll_token, now_ms()).await
    }

    /// [`Auth::pair_check`] at `now` (milliseconds).
    pub async fn pair_check_at(
        &self,
        code: &str,
        poll_token: &str,
        now: i64,
    ) -> Result<PairCheck, AuthError> {
        if poll_token.is_empty() || poll_token.len() > 256 {
            return Err(AuthError::Unauthenticated);
        }
        let Some(p) = self
            .store()
            .pair_request_by_poll(&self.hash("pair-poll", poll_token))
            .await?
        else {
            return Err(AuthError::Unauthenticated);
        };
        // The row was found by the poll secret's hash; only its owner gets
        // here, and the code must be the one that secret was issued with.
        let code_hash = codes::normalize_pair_code(code)
            .map(|c| self.hash("pair-code", &c))
            .unwrap_or_default();
        if !codes::ct_eq(p.code_hash.as_bytes(), code_hash.as_bytes()) {
            return Err(AuthError::Unauthenticated);
        }
        if p.consumed_at.is_some() {
            return Ok(PairCheck::Consumed);
        }
        if p.expires_at <= now {
            return Ok(PairCheck::Expired);
        }
        if let Some(last) = p.last_poll_at
            && now.saturating_sub(last) < p.interval_secs.saturating_mul(1000) - POLL_TOLERANCE_MS
        {
            let interval = p.interval_secs.saturating_add(SLOW_DOWN_STEP_SECS).min(60);
            self.store()
                .record_pair_poll(&code_hash, now, interval)
                .await?;
            return Ok(PairCheck::SlowDown { interval });
        }
        self.store()
            .record_pair_poll(&code_hash, now, p.interval_secs)
            .await?;
        let (Some(user_id), Some(runner_id)) = (p.approved_by, p.runner_id) else {
            return Ok(PairCheck::Pending {
                interval: p.interval_secs,
            });
        };
        if !self.store().consume_pair_request(&code_hash, now).await? {
            return Ok(PairCheck::Consumed);
        }
        let runner = self.owned_runner(&user_id, &runner_id).await?;
        let account = self
            .store()
            .user_by_id(&user_id)
            .await?
            .map(|u| u.name)
            .unwrap_or_default();
        let runner_token = self.keys().mint_runner(
            &user_id,
            &runner.id,
            &runner.token_jti,
            now.div_euclid(1000),
            self.runner_ttl_secs(),
        )?;
        tracing::info!(runner = %runner.id, "pairing collected");
        Ok(PairCheck::Approved {
            relay_url: self.config().public_url.clone(),
            runner_id: runner.id,
            runner_token,
            account,
        })
    }
}
