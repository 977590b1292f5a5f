//! The page's browser tokens (cookie session through the auth module's
//! extractor; the session list is `sessions.rs`):
//! `POST /api/sessions/{id}/token` mints a 5-minute browser token for one of
//! them. Another user's session is answered exactly like a missing one (404).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use store::TerminalSessionId;

use super::error::AppError;
use crate::auth::{AuthError, CurrentLogin};
use crate::state::AppState;

/// The header the page sends on every API call; a cross-site form cannot set
/// it, so requiring it on POST (besides the Origin check) stops CSRF even
/// without SameSite cookies.
pub const CSRF_HEADER: &str = "x-requested-with";

/// `POST /api/sessions/{id}/token`: `{"token": "...", "expires_in": 300}`.
pub async fn mint_token(
    State(st): State<AppState>,
    login: CurrentLogin,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let user = &login.user;
    if !headers.contains_key(CSRF_HEADER) {
        return Err(AppError::Forbidden("missing X-Requested-With header"));
    }
    if st.auth.check_origin(&headers).is_err() {
        return Err(AppError::Forbidden("bad Origin"));
    }
    let Ok(session) = id.parse::<TerminalSessionId>() else {
        return Err(AppError::NotFound);
    };
    let record = match st.store.session(session).await? {
        Some(r) if r.user_id == user.id => r,
        _ => return Err(AppError::NotFound),
    };
    let token = match st
        .auth
        .mint_browser_token(&login, &record.runner_id, &record.id.to_string())
        .await
    {
        Ok(t) => t,
        // The session's runner was revoked: the session is gone for the page.
        Err(AuthError::NotFound) => return Err(AppError::NotFound),
        Err(AuthError::Store(e)) => return Err(e.into()),
        Err(e) => return Err(AppError::Internal(format!("minting a browser token: {e}"))),
    };
    #[derive(Serialize)]
    struct Body {
        token: String,
        expires_in: i64,
    }
    let body = Body {
        token,
        expires_in: crate::auth::tokens::BROWSER_TOKEN_TTL_SECS,
    };
    Ok((StatusCode::OK, [("cache-control", "no-store")], Json(body)).into_response())
}
