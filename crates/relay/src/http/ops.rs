//! Endpoints for operators (issue 15): `GET /healthz` (the process
//! answers: 200 `ok`, touches nothing), `GET /readyz` (every readiness
//! check passed within `Limits::ready_timeout`: 200, else 503; a JSON body
//! names each check) and `GET /metrics` (Prometheus, `crate::metrics`).
//!
//! None of them needs a login. `/metrics` is protected instead: with a
//! metrics token (`--metrics-token-file`) it answers only to
//! `Authorization: Bearer <token>`, on any listener; without one it is
//! served only on the separate metrics listener (`--metrics-listen`), and
//! the main listener answers 404. Its output names no account.
//!
//! Readiness is a list of named checks run concurrently (the database;
//! NATS in cluster mode, `--nats-url`), and its result is kept for
//! [`READY_CACHE`] so a flood of `/readyz` costs the database one query a
//! second.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use store::Store;

use crate::auth::bearer_token;
use crate::state::AppState;

/// How long a readiness result is reused.
pub const READY_CACHE: Duration = Duration::from_secs(1);

/// The routes of the separate metrics listener (`--metrics-listen`).
pub fn metrics_router(st: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(st)
}

/// `GET /healthz`: the process is alive and serving HTTP.
pub async fn healthz() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "ok\n",
    )
        .into_response()
}

/// The outcome of one readiness check.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    /// What was checked (`"database"`).
    pub name: &'static str,
    pub ok: bool,
    /// Why it failed, in a few fixed words (details go to the log, never
    /// to this unauthenticated answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    /// How long it took.
    pub millis: u64,
}

/// The body of `GET /readyz`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Report {
    pub ready: bool,
    pub checks: Vec<Check>,
}

/// Runs the readiness checks, at most once per [`READY_CACHE`].
#[derive(Debug)]
pub struct Readiness {
    store: Store,
    /// Cluster mode: NATS must answer too.
    nats: Option<std::sync::Arc<crate::cluster::Cluster>>,
    deadline: Duration,
    last: tokio::sync::Mutex<Option<(Instant, Report)>>,
}

type CheckFuture<'a> = Pin<Box<dyn Future<Output = Check> + Send + 'a>>;

impl Readiness {
    /// Checks of `store`, each failed after `deadline`.
    pub fn new(store: Store, deadline: Duration) -> Readiness {
        Readiness {
            store,
            nats: None,
            deadline,
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// Checks NATS too (cluster mode).
    pub fn with_nats(mut self, cluster: std::sync::Arc<crate::cluster::Cluster>) -> Readiness {
        self.nats = Some(cluster);
        self
    }

    /// The current report: a fresh one, or the last if it is younger than
    /// [`READY_CACHE`]. Concurrent callers wait for one run.
    pub async fn report(&self) -> Report {
        // A tokio mutex: callers queue behind the one run in progress.
        let mut last = self.last.lock().await;
        if let Some((at, report)) = last.as_ref()
            && at.elapsed() < READY_CACHE
        {
            return report.clone();
        }
        let mut checks: Vec<CheckFuture<'_>> = vec![Box::pin(self.database())];
        if let Some(c) = &self.nats {
            checks.push(Box::pin(async move {
                let started = Instant::now();
                let error = c.ping(self.deadline).await.err();
                Check {
                    name: "nats",
                    ok: error.is_none(),
                    error,
                    millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                }
            }));
        }
        let checks = futures_util::future::join_all(checks).await;
        let report = Report {
            ready: checks.iter().all(|c| c.ok),
            checks,
        };
        *last = Some((Instant::now(), report.clone()));
        report
    }

    /// `SELECT 1` within the deadline.
    async fn database(&self) -> Check {
        let started = Instant::now();
        let error = match tokio::time::timeout(self.deadline, self.store.ping()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: the database failed");
                Some("query failed")
            }
            Err(_) => {
                tracing::warn!(
                    secs = self.deadline.as_secs_f64(),
                    "readiness: the database did not answer in time"
                );
                Some("timed out")
            }
        };
        Check {
            name: "database",
            ok: error.is_none(),
            error,
            millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// `GET /readyz`: 200 when every check passed, else 503; JSON either way.
pub async fn readyz(State(st): State<AppState>) -> Response {
    let report = st.readiness.report().await;
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut resp = (status, axum::Json(report)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `GET /metrics` on the main listener: only with a metrics token set
/// (else 404, as for any unknown path), and only to that token.
pub async fn metrics_main(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if st.metrics_token.is_none() {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    metrics(State(st), headers).await
}

/// `GET /metrics`: the exposition, to the metrics token's bearer when one
/// is set.
pub async fn metrics(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = st.metrics_token.as_deref()
        && !bearer_token(&headers).is_some_and(|t| token.matches(t))
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "the metrics token is required\n",
        )
            .into_response();
    }
    match st.metrics.render() {
        Ok(text) => (
            [
                (header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE),
                (header::CACHE_CONTROL, "no-store"),
            ],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering the metrics failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
        }
    }
}
