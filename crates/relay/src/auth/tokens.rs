//! Signed tokens: runner tokens (long-lived, held by a paired runner) and
//! browser tokens (at most five minutes, for one terminal session).
//!
//! A browser token also names the login that minted it (`login`) and is
//! good for one WebSocket: the relay consumes its `jti` when the socket
//! opens and refuses it once the login ends (issue 10). Those checks need
//! the store and live in [`super::Auth`].
//!
//! Both are JWTs signed with HS256 under the relay's secret. They carry
//! distinct `typ` and `aud` claims and are validated exclusively: a runner
//! token never passes as a browser token and vice versa (jsonwebtoken checks
//! neither `typ` nor, without configuration, `aud`). Only HS256 is accepted,
//! `exp`, `aud` and `sub` are required, and the leeway is five seconds.
//!
//! This module is pure: the current time is an argument, and it does not
//! consult revocations (that is [`super::Auth`]'s job, against the store).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::AuthError;
use super::secret::Secret;

/// `typ` claim of a runner token.
pub const RUNNER_TYP: &str = "runner";
/// `aud` claim of a runner token.
pub const RUNNER_AUD: &str = "tmux-bridge/runner";
/// `typ` claim of a browser token.
pub const BROWSER_TYP: &str = "browser";
/// `aud` claim of a browser token.
pub const BROWSER_AUD: &str = "tmux-bridge/browser";
/// Clock skew tolerated on `exp` and `iat`, in seconds.
pub const LEEWAY_SECS: u64 = 5;
/// Default lifetime of a runner token: 30 days.
pub const RUNNER_TOKEN_TTL_SECS: i64 = 30 * 24 * 3600;
/// Lifetime of a browser token: 5 minutes, the maximum the protocol allows.
pub const BROWSER_TOKEN_TTL_SECS: i64 = 5 * 60;

/// Claims of a runner token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerClaims {
    /// Always [`RUNNER_TYP`].
    pub typ: String,
    /// Always [`RUNNER_AUD`].
    pub aud: String,
    /// The owning user's id.
    pub sub: String,
    /// The runner's id.
    pub runner_id: String,
    /// Unique token id; revocation is by `jti`, never by token text.
    pub jti: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: i64,
}

/// Claims of a browser token: one user, one runner, one terminal session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserClaims {
    /// Always [`BROWSER_TYP`].
    pub typ: String,
    /// Always [`BROWSER_AUD`].
    pub aud: String,
    /// The user's id.
    pub sub: String,
    /// The runner serving the session.
    pub runner_id: String,
    /// The terminal session (the relay's session id) the token opens.
    pub session_id: String,
    /// The public id of the browser login that minted the token; the token
    /// dies with the login.
    pub login: String,
    /// Unique token id.
    pub jti: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: i64,
}

/// The relay's signing and verification keys, derived from its [`Secret`].
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    runner_validation: Validation,
    browser_validation: Validation,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(..)")
    }
}

fn validation(aud: &str) -> Validation {
    let mut v = Validation::new(Algorithm::HS256);
    v.algorithms = vec![Algorithm::HS256];
    v.leeway = LEEWAY_SECS;
    v.validate_exp = true;
    v.validate_aud = true;
    v.set_audience(&[aud]);
    v.set_required_spec_claims(&["exp", "aud", "sub"]);
    v
}

impl TokenKeys {
    /// Keys for HS256 under `secret`.
    pub fn new(secret: &Secret) -> Self {
        TokenKeys {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            runner_validation: validation(RUNNER_AUD),
            browser_validation: validation(BROWSER_AUD),
        }
    }

    /// Mints a runner token valid from `now` for `ttl_secs`.
    pub fn mint_runner(
        &self,
        user_id: &str,
        runner_id: &str,
        jti: &str,
        now: i64,
        ttl_secs: i64,
    ) -> Result<String, AuthError> {
        let claims = RunnerClaims {
            typ: RUNNER_TYP.to_owned(),
            aud: RUNNER_AUD.to_owned(),
            sub: user_id.to_owned(),
            runner_id: runner_id.to_owned(),
            jti: jti.to_owned(),
            iat: now,
            exp: now.saturating_add(ttl_secs),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AuthError::Internal(format!("encoding runner token: {e}")))
    }

    /// Mints a browser token under the login `login_id`, valid from `now`
    /// for `min(ttl_secs, BROWSER_TOKEN_TTL_SECS)`.
    #[allow(clippy::too_many_arguments)]
    pub fn mint_browser(
        &self,
        user_id: &str,
        runner_id: &str,
        session_id: &str,
        login_id: &str,
        jti: &str,
        now: i64,
        ttl_secs: i64,
    ) -> Result<String, AuthError> {
        let claims = BrowserClaims {
            typ: BROWSER_TYP.to_owned(),
            aud: BROWSER_AUD.to_owned(),
            sub: user_id.to_owned(),
            runner_id: runner_id.to_owned(),
            session_id: session_id.to_owned(),
            login: login_id.to_owned(),
            jti: jti.to_owned(),
            iat: now,
            exp: now.saturating_add(ttl_secs.clamp(1, BROWSER_TOKEN_TTL_SECS)),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AuthError::Internal(format!("encoding browser token: {e}")))
    }

    /// Verifies a runner token's signature, `typ`, `aud` and lifetime at
    /// `now`. Does not check revocation.
    pub fn verify_runner(&self, token: &str, now: i64) -> Result<RunnerClaims, AuthError> {
        let claims: RunnerClaims =
            jsonwebtoken::decode(token, &self.decoding, &self.runner_validation)
                .map_err(map_jwt_error)?
                .claims;
        check(
            &claims.typ,
            RUNNER_TYP,
            &claims.aud,
            RUNNER_AUD,
            claims.iat,
            claims.exp,
            now,
        )?;
        Ok(claims)
    }

    /// Verifies a browser token's signature, `typ`, `aud` and lifetime at
    /// `now`. Does not check that the session still belongs to the user.
    pub fn verify_browser(&self, token: &str, now: i64) -> Result<BrowserClaims, AuthError> {
        let claims: BrowserClaims =
            jsonwebtoken::decode(token, &self.decoding, &self.browser_validation)
                .map_err(map_jwt_error)?
                .claims;
        check(
            &claims.typ,
            BROWSER_TYP,
            &claims.aud,
            BROWSER_AUD,
            claims.iat,
            claims.exp,
            now,
        )?;
        // A browser token must never outlive the protocol's five minutes,
        // even if some future minting path forgets the clamp.
        if claims.exp.saturating_sub(claims.iat) > BROWSER_TOKEN_TTL_SECS {
            return Err(AuthError::InvalidToken);
        }
        Ok(claims)
    }
}

fn check(
    typ: &str,
    want_typ: &str,
    aud: &str,
    want_aud: &str,
    iat: i64,
    exp: i64,
    now: i64,
) -> Result<(), AuthError> {
    if typ != want_typ || aud != want_aud {
        return Err(AuthError::InvalidToken);
    }
    let leeway = LEEWAY_SECS as i64;
    if exp < now.saturating_sub(leeway) {
        return Err(AuthError::ExpiredToken);
    }
    if iat > now.saturating_add(leeway) || iat > exp {
        return Err(AuthError::InvalidToken);
    }
    Ok(())
}

fn map_jwt_error(e: jsonwebtoken::errors::Error) -> AuthError {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::ExpiredSignature => AuthError::ExpiredToken,
        _ => AuthError::InvalidToken,
    }
}

#[cfg(test)]
mod tests;
