//! Read-only share links over HTTP (issue 14; the rules are in
//! `auth::shares`): the owner's `POST/GET /api/sessions/{id}/shares` and
//! `DELETE /api/shares/{id}` (cookie, same origin, `X-Requested-With`), and
//! the viewer's `POST /api/view/token` (no account: the link's secret in
//! the body, same origin, rate limited). Another user's session or link is
//! answered like a missing one (404).

use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use store::TerminalSessionId;
use store::shares::ShareRecord;

use super::api::CSRF_HEADER;
use crate::auth::{Auth, AuthError, ClientAddr, CurrentUser};

/// The share routes. Merge into the relay's router.
pub fn routes<S>() -> Router<S>
where
    Auth: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/sessions/{id}/shares", post(create).get(list))
        .route("/api/shares/{id}", delete(revoke))
        .route("/api/view/token", post(view_token))
        .layer(axum::extract::DefaultBodyLimit::max(4 * 1024))
}

/// A link as the owner's page lists it (times in ms).
#[derive(Debug, Serialize)]
struct ShareJson {
    id: String,
    session_id: String,
    label: String,
    created_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
}

impl From<ShareRecord> for ShareJson {
    fn from(r: ShareRecord) -> Self {
        ShareJson {
            id: r.id,
            session_id: r.session_id.to_string(),
            label: r.label,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
        }
    }
}

fn same_origin(auth: &Auth, headers: &HeaderMap) -> Result<(), AuthError> {
    if !headers.contains_key(CSRF_HEADER) {
        return Err(AuthError::BadOrigin);
    }
    auth.check_origin(headers)
}

/// The user's session `id`, or NotFound.
async fn owned_session(
    auth: &Auth,
    user: &CurrentUser,
    id: &str,
) -> Result<TerminalSessionId, AuthError> {
    let id: TerminalSessionId = id.parse().map_err(|_| AuthError::NotFound)?;
    match auth.store().session(id).await? {
        Some(r) if r.user_id == user.id => Ok(id),
        _ => Err(AuthError::NotFound),
    }
}

#[derive(Deserialize)]
struct CreateBody {
    expires_in_s: i64,
    #[serde(default)]
    label: String,
}

async fn create(
    State(auth): State<Auth>,
    headers: HeaderMap,
    user: CurrentUser,
    Path(id): Path<String>,
    body: Option<Json<CreateBody>>,
) -> Result<Response, AuthError> {
    same_origin(&auth, &headers)?;
    let session = owned_session(&auth, &user, &id).await?;
    let Json(body) = body.ok_or(AuthError::BadRequest("expected {\"expires_in_s\": N}"))?;
    let new = auth
        .create_share(&user.id, session, &body.label, body.expires_in_s)
        .await?;
    #[derive(Serialize)]
    struct Out {
        share: ShareJson,
        url: String,
    }
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(Out {
            share: new.share.into(),
            url: new.url,
        }),
    )
        .into_response())
}

async fn list(
    State(auth): State<Auth>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, AuthError> {
    let session = owned_session(&auth, &user, &id).await?;
    let shares: Vec<ShareJson> = auth
        .list_shares(&user.id, session)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({ "shares": shares })),
    )
        .into_response())
}

async fn revoke(
    State(auth): State<Auth>,
    headers: HeaderMap,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, AuthError> {
    same_origin(&auth, &headers)?;
    auth.revoke_share(&user.id, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct ViewBody {
    secret: String,
}

async fn view_token(
    State(auth): State<Auth>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    body: Option<Json<ViewBody>>,
) -> Result<Response, AuthError> {
    same_origin(&auth, &headers)?;
    let Json(body) = body.ok_or(AuthError::BadRequest("expected {\"secret\": \"…\"}"))?;
    let (token, share, expires_in) = auth.share_token(&body.secret, addr).await?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({
            "token": token,
            "session_id": share.session_id.to_string(),
            "expires_in": expires_in,
        })),
    )
        .into_response())
}
