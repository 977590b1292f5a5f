//! `AppError`, the error type of the relay's own HTTP handlers: user errors
//! go back as they are; internal ones get a generic body and are logged once
//! here (the handler returns them without logging).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An HTTP handler failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    #[error("not found")]
    NotFound,
    /// A request the API refuses as it is: 400 with `{"error": reason}`.
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("internal error: {0}")]
    Internal(String),
    /// The database is down, unreachable or locked (503 + Retry-After):
    /// it passes by itself.
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

impl From<store::StoreError> for AppError {
    fn from(e: store::StoreError) -> Self {
        if e.is_unavailable() {
            AppError::Unavailable(format!("store: {e}: {}", source_text(&e)))
        } else {
            AppError::Internal(format!("store: {e}"))
        }
    }
}

/// The innermost cause's text, for the log line.
fn source_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::NotFound => (StatusCode::NOT_FOUND, "not found\n").into_response(),
            AppError::BadRequest(why) => (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({ "error": why })),
            )
                .into_response(),
            AppError::Forbidden(why) => {
                (StatusCode::FORBIDDEN, format!("forbidden: {why}\n")).into_response()
            }
            AppError::Internal(detail) => {
                tracing::error!(error = %detail, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
            }
            AppError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "database unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(
                        axum::http::header::RETRY_AFTER,
                        crate::auth::UNAVAILABLE_RETRY_SECS.to_string(),
                    )],
                    "the database is unavailable; try again shortly\n",
                )
                    .into_response()
            }
        }
    }
}

/// `{"error": …}` with `status`: the answer of the page's API to a request
/// it refuses as it is.
pub fn refusal(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "error": message.into() })),
    )
        .into_response()
}

/// `body` with `Cache-Control: no-store` (answers about one account).
pub fn no_store(body: impl IntoResponse) -> Response {
    ([(axum::http::header::CACHE_CONTROL, "no-store")], body).into_response()
}

/// A request's JSON body as `T`, or the 400 refusal that says what was
/// `expected` and what did not parse.
pub fn json_body<T: serde::de::DeserializeOwned>(
    body: &[u8],
    expected: &str,
) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(refusal(
            StatusCode::BAD_REQUEST,
            format!("expected {expected}: {e}"),
        ))
    })
}

/// 429 with `Retry-After` and `{"error": "<limit>: try again in N s"}`.
pub fn too_many(wait: crate::auth::limits::RetryAfter, limit: &str) -> Response {
    let secs = wait.secs();
    let mut resp = refusal(
        StatusCode::TOO_MANY_REQUESTS,
        format!("{limit}: try again in {secs} s"),
    );
    resp.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(secs),
    );
    resp
}
