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
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<store::StoreError> for AppError {
    fn from(e: store::StoreError) -> Self {
        AppError::Internal(format!("store: {e}"))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::NotFound => (StatusCode::NOT_FOUND, "not found\n").into_response(),
            AppError::Forbidden(why) => {
                (StatusCode::FORBIDDEN, format!("forbidden: {why}\n")).into_response()
            }
            AppError::Internal(detail) => {
                tracing::error!(error = %detail, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
            }
        }
    }
}
