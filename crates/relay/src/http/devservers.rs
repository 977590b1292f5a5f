//! The page's dev servers API (issue 12, protocol.md §5):
//! `POST /api/devservers`, `GET /api/devservers?idea=…`,
//! `GET /api/devservers/{id}` and `POST /api/devservers/{id}/stop`. A dev
//! server is a job of kind `devserver`: creating, rate-limiting and
//! stopping are the jobs' (`crate::jobs`), its events are
//! `crate::jobs::devservers`'; this file reads requests and writes
//! answers. Another user's dev server, and a job of another kind, are
//! answered exactly like a missing one (404). Logs are the jobs API's
//! (`GET /api/jobs/{id}/log`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use protocol::runner::JobKind;
use serde::Deserialize;
use serde_json::json;
use store::JobRecord;

use super::error::{AppError, json_body, no_store, refusal, too_many};
use super::sessions::check_csrf;
use crate::auth::CurrentUser;
use crate::jobs::devservers::{EVENTS_SHOWN, devserver_json};
use crate::jobs::{self, JobError, NewJob};
use crate::state::AppState;

/// Dev servers a list shows at most (newest first).
pub const LIST_LIMIT: u32 = 100;

fn devserver_error(e: JobError) -> Result<Response, AppError> {
    Ok(match e {
        JobError::Invalid(why) => refusal(StatusCode::BAD_REQUEST, why),
        JobError::NoRunner => refusal(StatusCode::NOT_FOUND, "no such runner"),
        JobError::NotFound => return Err(AppError::NotFound),
        JobError::Ended => refusal(StatusCode::CONFLICT, "the dev server has ended already"),
        JobError::Limited(wait) => too_many(wait, "at most 10 jobs and dev servers a minute"),
        JobError::Store(e) => return Err(e.into()),
    })
}

/// The body of `POST /api/devservers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    idea: String,
    command: String,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    slot: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    runner_id: Option<String>,
}

/// `user_id`'s dev server `id`: `None` when missing, another account's,
/// or a job of another kind.
async fn owned(st: &AppState, user_id: &str, id: &str) -> Result<Option<JobRecord>, AppError> {
    Ok(st
        .store
        .job(id)
        .await?
        .filter(|j| j.user_id == user_id && j.kind == JobKind::Devserver.as_str()))
}

/// The dev server with its newest events.
async fn with_events(st: &AppState, job: &JobRecord) -> Result<serde_json::Value, AppError> {
    let events = st.store.devserver_events(&job.id, EVENTS_SHOWN).await?;
    Ok(devserver_json(job, &events))
}

/// `POST /api/devservers`: 201 with the dev server (queued, or already
/// starting); 400 bad input, 404 unknown runner, 429 over the jobs' rate
/// limit (dev servers count with jobs).
pub async fn create(
    State(st): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    check_csrf(&st, &headers)?;
    let body: CreateBody = match json_body(&body, r#"{"idea","command",…}"#) {
        Ok(b) => b,
        Err(refused) => return Ok(*refused),
    };
    let req = NewJob {
        kind: JobKind::Devserver,
        agent: None,
        idea: body.idea,
        slot: body.slot,
        name: body.name,
        command: body.command,
        cwd: body.cwd,
        env: body.env,
        runner_id: body.runner_id.filter(|r| !r.is_empty()),
    };
    match jobs::create(&st, &user.id, req).await {
        Ok(job) => Ok((StatusCode::CREATED, Json(devserver_json(&job, &[]))).into_response()),
        Err(e) => devserver_error(e),
    }
}

#[derive(Deserialize)]
pub struct ListParams {
    idea: Option<String>,
}

/// `GET /api/devservers?idea=…`: `{"devservers": [Devserver…]}`, newest
/// first, each with its newest events.
pub async fn list(
    State(st): State<AppState>,
    user: CurrentUser,
    Query(p): Query<ListParams>,
) -> Result<Response, AppError> {
    let idea = p.idea.as_deref().filter(|i| !i.is_empty());
    let list = st
        .store
        .jobs_for_user(
            &user.id,
            idea,
            Some(JobKind::Devserver.as_str()),
            LIST_LIMIT,
        )
        .await?;
    let mut out = Vec::with_capacity(list.len());
    for j in &list {
        out.push(with_events(&st, j).await?);
    }
    Ok(no_store(Json(json!({ "devservers": out }))))
}

/// `GET /api/devservers/{id}`.
pub async fn get(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let Some(job) = owned(&st, &user.id, &id).await? else {
        return Err(AppError::NotFound);
    };
    let v = with_events(&st, &job).await?;
    Ok(no_store(Json(v)))
}

/// `POST /api/devservers/{id}/stop`: 200 with the dev server (a queued one
/// is cancelled at once; a running one gets C-c, then its process group
/// is killed after the jobs' grace); 409 when it ended (or a stop is under
/// way).
pub async fn stop(
    State(st): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    check_csrf(&st, &headers)?;
    if owned(&st, &user.id, &id).await?.is_none() {
        return Err(AppError::NotFound);
    }
    match jobs::cancel(&st, &user.id, &id).await {
        Ok(job) => Ok(Json(with_events(&st, &job).await?).into_response()),
        Err(e) => devserver_error(e),
    }
}
