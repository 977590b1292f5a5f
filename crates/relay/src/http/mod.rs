//! The relay's HTTP surface: [`router`] assembles the page, the page's API,
//! the auth endpoints (owned by the auth module's files `auth.rs`,
//! `pair.rs`, `runners.rs`), the two WebSocket endpoints and the
//! operators' endpoints (`ops.rs`: `/healthz`, `/readyz`, `/metrics`), under
//! body limits and the security headers of every response.

pub mod activity;
pub mod agents;
pub mod api;
pub mod auth;
pub mod devservers;
pub mod error;
pub mod export;
pub mod jobs;
pub mod logs;
pub mod ops;
pub mod pair;
pub mod previews;
pub mod runners;
pub mod search;
pub mod sessions;
pub mod shares;
pub mod static_files;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, header};
use axum::routing::{any, delete, get, post};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::state::AppState;
use crate::ws;

/// Largest HTTP request body the relay reads (JSON API; the WebSocket
/// limits are separate).
pub const MAX_BODY: usize = 64 * 1024;

/// The relay's whole router.
pub fn router(st: AppState) -> Router {
    Router::new()
        .route("/", get(static_files::index))
        .route("/s/{id}", get(static_files::index))
        .route("/v", get(static_files::index))
        .route("/search", get(static_files::index))
        .route("/play/{id}", get(static_files::index))
        .route("/jobs/{idea}", get(static_files::index))
        .route("/t/{idea}/{slot}", get(static_files::index))
        .route("/api/sessions", get(sessions::list).post(sessions::create))
        .route("/api/sessions/{id}", delete(sessions::delete))
        .route("/api/activity", get(activity::activity))
        .route("/api/events", get(activity::events))
        .route("/api/sessions/{id}/token", post(api::mint_token))
        .route("/api/sessions/{id}/asciicast", get(export::asciicast))
        .route("/api/search", get(search::search))
        .route("/api/jobs", get(jobs::list).post(jobs::create))
        .route("/api/jobs/{id}", get(jobs::get))
        .route("/api/jobs/{id}/cancel", post(jobs::cancel))
        .route("/api/jobs/{id}/log", get(jobs::log))
        .route(
            "/api/devservers",
            get(devservers::list).post(devservers::create),
        )
        .route("/api/devservers/{id}", get(devservers::get))
        .route("/api/devservers/{id}/stop", post(devservers::stop))
        .route("/api/logs/ingest", post(logs::ingest))
        .route("/api/ideas/{idea}/logs", get(logs::idea_logs))
        .route("/preview/{job}/{port}", get(previews::open))
        .route("/api/runner/ws", any(ws::runner::runner_ws))
        .route("/api/ws/browser/{session_id}", any(ws::browser::browser_ws))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics_main))
        .merge(agents::routes())
        .merge(auth::routes())
        .merge(pair::routes())
        .merge(runners::routes())
        .merge(shares::routes())
        .fallback(static_files::asset)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(static_files::CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("x-frame-options"),
            HeaderValue::from_static("DENY"),
        ))
        .with_state(st)
}
