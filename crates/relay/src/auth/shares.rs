//! Read-only share links (issue 14): the owner of a terminal session makes
//! a link anyone can watch the session with, until it expires (at most 30
//! days) or is revoked; revoking cuts every viewer within a second.
//!
//! The link is `<public>/v#<secret>`: the secret sits in the fragment,
//! which browsers never send to a server (so it reaches no access log),
//! and is stored only as a keyed hash. The page trades it at
//! `POST /api/view/token` for a share token: a JWT of its own type
//! (`typ: "share"`, `aud: "tmux-bridge/share"`, never accepted where a
//! browser or runner token is) that lives at most five minutes and never
//! past the link. The browser socket then serves the session read-only and
//! registers the viewer under the link's id so revocation can cut it.

use std::net::IpAddr;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use store::TerminalSessionId;
use store::shares::ShareRecord;

use super::limits::LimitConfig;
use super::{Auth, AuthError, codes, now_ms, tokens};

/// `typ` claim of a share token.
pub const SHARE_TYP: &str = "share";
/// `aud` claim of a share token.
pub const SHARE_AUD: &str = "tmux-bridge/share";
/// Longest lifetime of a share link: 30 days.
pub const MAX_SHARE_TTL_SECS: i64 = 30 * 24 * 3600;
/// Shortest lifetime of a share link: one minute.
pub const MIN_SHARE_TTL_SECS: i64 = 60;
/// Active links per session.
pub const MAX_SHARES_PER_SESSION: usize = 20;
/// Share-token requests per client address (right or wrong secrets).
pub const VIEW_TOKEN_PER_ADDR: LimitConfig =
    LimitConfig::new(60, std::time::Duration::from_secs(60));

/// Claims of a share token: one link, one terminal session, read-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareClaims {
    /// Always [`SHARE_TYP`].
    pub typ: String,
    /// Always [`SHARE_AUD`].
    pub aud: String,
    /// The link owner's user id.
    pub sub: String,
    /// The runner serving the session when the token was minted.
    pub runner_id: String,
    /// The terminal session (the relay's session id) the token opens.
    pub session_id: String,
    /// The share link's id (revocation cuts the viewers registered under it).
    pub share_id: String,
    /// The link's label, shown to the owner in `presence`.
    pub label: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
}

/// A new link: its row and the URL to give out (shown once, never stored).
#[derive(Debug, Clone)]
pub struct NewShare {
    pub share: ShareRecord,
    pub url: String,
}

impl Auth {
    fn share_keys(&self) -> (EncodingKey, DecodingKey, Validation) {
        let secret = self.inner.secret.as_bytes();
        let mut v = Validation::new(Algorithm::HS256);
        v.algorithms = vec![Algorithm::HS256];
        v.leeway = tokens::LEEWAY_SECS;
        v.validate_exp = true;
        v.validate_aud = true;
        v.set_audience(&[SHARE_AUD]);
        v.set_required_spec_claims(&["exp", "aud", "sub"]);
        (
            EncodingKey::from_secret(secret),
            DecodingKey::from_secret(secret),
            v,
        )
    }

    /// Makes a link for `session_id`, which the caller checked is
    /// `user_id`'s. `ttl_secs` is clamped to one minute … 30 days; the
    /// label to 100 characters without control characters.
    pub async fn create_share(
        &self,
        user_id: &str,
        session_id: TerminalSessionId,
        label: &str,
        ttl_secs: i64,
    ) -> Result<NewShare, AuthError> {
        let now = now_ms();
        let active = self.store().active_shares(user_id, session_id, now).await?;
        if active.len() >= MAX_SHARES_PER_SESSION {
            return Err(AuthError::Quota("share link limit of this session reached"));
        }
        let label: String = label
            .chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect();
        let ttl = ttl_secs.clamp(MIN_SHARE_TTL_SECS, MAX_SHARE_TTL_SECS);
        let secret = codes::random_token(32);
        let share = ShareRecord {
            id: codes::new_id(),
            user_id: user_id.to_owned(),
            session_id,
            label: label.trim().to_owned(),
            created_at: now,
            expires_at: now.saturating_add(ttl.saturating_mul(1000)),
            revoked_at: None,
        };
        self.store()
            .create_share(&share, &self.hash("share-link", &secret))
            .await?;
        // Links that ended a week ago are of no use to anyone: drop them
        // (housekeeping on the owner's request; a failure only logs).
        if let Err(e) = self.store().prune_shares(now - 7 * 24 * 3_600_000).await {
            tracing::warn!(error = %e, "pruning old share links failed");
        }
        let url = format!("{}/v#{secret}", self.config().public_url);
        Ok(NewShare { share, url })
    }

    /// The active links of one of the user's sessions.
    pub async fn list_shares(
        &self,
        user_id: &str,
        session_id: TerminalSessionId,
    ) -> Result<Vec<ShareRecord>, AuthError> {
        Ok(self
            .store()
            .active_shares(user_id, session_id, now_ms())
            .await?)
    }

    /// Revokes one of the user's links and cuts its viewers at once;
    /// [`AuthError::NotFound`] if it is not theirs or was revoked already.
    pub async fn revoke_share(&self, user_id: &str, share_id: &str) -> Result<(), AuthError> {
        if !self
            .store()
            .revoke_share(user_id, share_id, now_ms())
            .await?
        {
            return Err(AuthError::NotFound);
        }
        let cut = self.cut(super::Cut::Share {
            share_id: share_id.to_owned(),
        });
        tracing::info!(share = %share_id, viewers = cut, "share link revoked");
        Ok(())
    }

    /// `POST /api/view/token`: a share token for the link with `secret`, at
    /// most five minutes and never past the link's expiry. Unknown,
    /// expired and revoked links (and links whose session's runner was
    /// revoked) are all [`AuthError::NotFound`]. Rate limited per address.
    pub async fn share_token(
        &self,
        secret: &str,
        addr: IpAddr,
    ) -> Result<(String, ShareRecord, i64), AuthError> {
        self.inner.share_limit.try_acquire(&addr).await?;
        if secret.is_empty() || secret.len() > 200 {
            return Err(AuthError::NotFound);
        }
        let now = now_ms();
        let share = self
            .store()
            .share_by_secret(&self.hash("share-link", secret))
            .await?
            .filter(|s| s.is_active(now))
            .ok_or(AuthError::NotFound)?;
        let session = self
            .store()
            .session(share.session_id)
            .await?
            .filter(|r| codes::ct_eq(r.user_id.as_bytes(), share.user_id.as_bytes()))
            .ok_or(AuthError::NotFound)?;
        self.owned_runner(&share.user_id, &session.runner_id)
            .await?;
        let now_s = now.div_euclid(1000);
        let exp = (now_s + tokens::BROWSER_TOKEN_TTL_SECS).min(share.expires_at.div_euclid(1000));
        let claims = ShareClaims {
            typ: SHARE_TYP.to_owned(),
            aud: SHARE_AUD.to_owned(),
            sub: share.user_id.clone(),
            runner_id: session.runner_id,
            session_id: share.session_id.to_string(),
            share_id: share.id.clone(),
            label: share.label.clone(),
            jti: codes::new_id(),
            iat: now_s,
            exp,
        };
        let (enc, _, _) = self.share_keys();
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &enc)
            .map_err(|e| AuthError::Internal(format!("encoding share token: {e}")))?;
        Ok((token, share, (exp - now_s).max(0)))
    }

    /// Authenticates a share token at the current time: it must verify as a
    /// share token, its link must still be active, and the link's session
    /// must still be served by a runner of the link's owner.
    pub async fn authenticate_share(&self, token: &str) -> Result<ShareClaims, AuthError> {
        let (_, dec, validation) = self.share_keys();
        let data = jsonwebtoken::decode::<ShareClaims>(token, &dec, &validation).map_err(|e| {
            match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::ExpiredToken,
                _ => AuthError::InvalidToken,
            }
        })?;
        let claims = data.claims;
        if claims.typ != SHARE_TYP {
            return Err(AuthError::InvalidToken);
        }
        let share = self
            .store()
            .share(&claims.share_id)
            .await?
            .ok_or(AuthError::Revoked)?;
        if !share.is_active(now_ms()) || share.user_id != claims.sub {
            return Err(AuthError::Revoked);
        }
        match self.owned_runner(&claims.sub, &claims.runner_id).await {
            Ok(_) => Ok(claims),
            Err(AuthError::NotFound) => Err(AuthError::Revoked),
            Err(e) => Err(e),
        }
    }

    /// Registers a viewer of link `share_id`; its token is cancelled when
    /// the link is revoked. Drop the guard when the viewer leaves.
    pub fn watch_share(&self, share_id: &str) -> super::RunnerConnection {
        self.inner.share_viewers.register(share_id)
    }

    /// Milliseconds until link `share_id` expires (0 if it has or is gone).
    pub async fn share_expires_in_ms(&self, share_id: &str) -> Result<i64, AuthError> {
        Ok(self
            .store()
            .share(share_id)
            .await?
            .map_or(0, |s| (s.expires_at - now_ms()).max(0)))
    }
}
