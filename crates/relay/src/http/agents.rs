//! The page's agents API (issue 12, protocol.md §5): `POST /api/agents`,
//! `GET /api/agents?idea=…`, `GET /api/agents/{id}`,
//! `POST /api/agents/{id}/stop`, the account settings
//! (`GET`/`PUT /api/settings`) and pane watches
//! (`POST /api/sessions/{id}/panes/{pane}/watch`,
//! `GET /api/sessions/{id}/watches`). The logic is `crate::jobs::agents`;
//! this file reads requests and writes answers. Another account's agent,
//! session or pane is answered exactly like a missing one (404).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use store::{JobRecord, TerminalSessionId};
use tmux_cc::PaneId;

use super::error::{AppError, json_body, no_store, refusal, too_many};
use super::sessions::check_csrf;
use crate::auth::{CurrentUser, LimitError};
use crate::hub::Scope;
use crate::jobs::agents::{self, NewAgent, agent_json, idle_ms_of, watch_json};
use crate::jobs::{self, JobError, LIST_LIMIT};
use crate::state::AppState;

/// The routes of this file.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/agents", get(list).post(create))
        .route("/api/agents/{id}", get(get_one))
        .route("/api/agents/{id}/stop", post(stop))
        .route("/api/settings", get(settings).put(put_settings))
        .route("/api/sessions/{id}/panes/{pane}/watch", post(watch))
        .route("/api/sessions/{id}/watches", get(watches))
}

fn agent_error(e: JobError) -> Result<Response, AppError> {
    Ok(match e {
        JobError::Invalid(why) => refusal(StatusCode::BAD_REQUEST, why),
        JobError::NoRunner => refusal(StatusCode::NOT_FOUND, "no such runner"),
        JobError::NotFound => return Err(AppError::NotFound),
        JobError::Ended => refusal(StatusCode::CONFLICT, "the agent has stopped already"),
        JobError::Limited(wait) => too_many(wait, "too many changes"),
        JobError::Store(e) => return Err(e.into()),
    })
}

/// `body` as `T`, or what a 400 says: what was expected.
/// The body of `POST /api/agents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    idea: String,
    kind: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    slot: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    idle_ms: Option<u64>,
    #[serde(default)]
    runner_id: Option<String>,
}

/// An agent of `user_id` by id, with its job; 404 for anyone else's, or
/// a job that is not an agent.
async fn owned(
    st: &AppState,
    user_id: &str,
    id: &str,
) -> Result<(JobRecord, store::AgentRecord), AppError> {
    let job = match st.store.job(id).await? {
        Some(j) if j.user_id == user_id => j,
        _ => return Err(AppError::NotFound),
    };
    match st.store.agent(id).await? {
        Some(a) if a.user_id == user_id => Ok((job, a)),
        _ => Err(AppError::NotFound),
    }
}

/// `POST /api/agents`: 201 with the agent (starting); 400 bad input, 404
/// unknown runner, 429 over the jobs' rate limit.
async fn create(
    State(st): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    check_csrf(&st, &headers)?;
    let b: CreateBody = match json_body(&body, "{\"idea\",\"kind\",\"args\"?,…}") {
        Ok(b) => b,
        Err(refused) => return Ok(*refused),
    };
    let req = NewAgent {
        idea: b.idea,
        kind: b.kind,
        args: b.args,
        command: b.command,
        slot: b.slot,
        name: b.name,
        cwd: b.cwd,
        idle_ms: b.idle_ms,
        runner_id: b.runner_id.filter(|r| !r.is_empty()),
    };
    let job = match agents::create(&st, &user.id, req).await {
        Ok(j) => j,
        Err(e) => return agent_error(e),
    };
    let (job, a) = owned(&st, &user.id, &job.id).await?;
    let ms = idle_ms_of(&st, &a).await?;
    Ok((StatusCode::CREATED, Json(agent_json(&job, &a, ms))).into_response())
}

#[derive(Deserialize)]
struct ListParams {
    idea: Option<String>,
}

/// `GET /api/agents?idea=…`: `{"agents": [Agent…]}`, newest first.
async fn list(
    State(st): State<AppState>,
    user: CurrentUser,
    Query(p): Query<ListParams>,
) -> Result<Response, AppError> {
    let idea = p.idea.as_deref().filter(|i| !i.is_empty());
    let agents = st.store.agents_for_user(&user.id, idea, LIST_LIMIT).await?;
    let jobs = st
        .store
        .jobs_for_user(&user.id, idea, Some("agent"), LIST_LIMIT)
        .await?;
    let account = st.store.agent_idle_ms(&user.id).await?;
    let by_id: std::collections::HashMap<&str, &JobRecord> =
        jobs.iter().map(|j| (j.id.as_str(), j)).collect();
    let out: Vec<_> = agents
        .iter()
        .filter_map(|a| {
            let j = by_id.get(a.job_id.as_str())?;
            Some(agent_json(j, a, agents::effective_idle_ms(a, account)))
        })
        .collect();
    Ok(no_store(Json(json!({ "agents": out }))))
}

/// `GET /api/agents/{id}`: the agent with its stored transitions.
async fn get_one(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let (job, a) = owned(&st, &user.id, &id).await?;
    let ms = idle_ms_of(&st, &a).await?;
    let mut v = agent_json(&job, &a, ms);
    let transitions: Vec<_> = st
        .store
        .agent_transitions(&id)
        .await?
        .into_iter()
        .map(|t| json!({ "state": t.state, "at": t.at }))
        .collect();
    v["transitions"] = json!(transitions);
    Ok(no_store(Json(v)))
}

/// `POST /api/agents/{id}/stop`: C-c, then the process group is killed
/// after the jobs' grace; 200 with the agent, 409 when it stopped already.
async fn stop(
    State(st): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    check_csrf(&st, &headers)?;
    owned(&st, &user.id, &id).await?;
    if let Err(e) = jobs::cancel(&st, &user.id, &id).await {
        return agent_error(e);
    }
    let (job, a) = owned(&st, &user.id, &id).await?;
    let ms = idle_ms_of(&st, &a).await?;
    Ok(Json(agent_json(&job, &a, ms)).into_response())
}

/// `GET /api/settings`: `{"agent_idle_ms": ms|null, "default_idle_ms": ms}`.
async fn settings(State(st): State<AppState>, user: CurrentUser) -> Result<Response, AppError> {
    let ms = st.store.agent_idle_ms(&user.id).await?;
    Ok(no_store(Json(json!({
        "agent_idle_ms": ms,
        "default_idle_ms": protocol::runner::agent::DEFAULT_IDLE_MS,
    }))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    agent_idle_ms: Option<u64>,
}

/// `PUT /api/settings {"agent_idle_ms": ms|null}`: the account's default
/// idle time (null: the built-in 30 s). Applies to agents without their
/// own the next time their watch is sent.
async fn put_settings(
    State(st): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    check_csrf(&st, &headers)?;
    let b: SettingsBody = match json_body(&body, "{\"agent_idle_ms\": ms|null}") {
        Ok(b) => b,
        Err(refused) => return Ok(*refused),
    };
    if let Err(e) = b.agent_idle_ms.map(agents::check_idle_ms).transpose() {
        return agent_error(e);
    }
    match st.jobs.agents.change_limit.try_acquire(&user.id).await {
        Ok(()) => {}
        Err(LimitError::Limited(wait)) => return Ok(too_many(wait, "too many changes")),
        Err(LimitError::Store(e)) => return Err(e.into()),
    }
    let ms = b.agent_idle_ms.and_then(|m| i64::try_from(m).ok());
    st.store.set_agent_idle_ms(&user.id, ms).await?;
    settings(State(st), user).await
}

/// A session of `user_id` and a pane of its current topology; 404 for
/// anything else (another account's session or pane, a pane id that does
/// not parse).
async fn owned_pane(
    st: &AppState,
    user_id: &str,
    id: &str,
    pane: Option<&str>,
) -> Result<(TerminalSessionId, Option<PaneId>), AppError> {
    let id: TerminalSessionId = id.parse().map_err(|_| AppError::NotFound)?;
    let record = match st.store.session(id).await? {
        Some(r) if r.user_id == user_id => r,
        _ => return Err(AppError::NotFound),
    };
    let Some(pane) = pane else {
        return Ok((id, None));
    };
    // `%3` (sent as `%253`) or `3`.
    let text = if pane.starts_with('%') {
        pane.to_owned()
    } else {
        format!("%{pane}")
    };
    let pane = PaneId::parse_bytes(text.as_bytes()).ok_or(AppError::NotFound)?;
    let scope = match st.hub.get(id) {
        Some(h) if h.runner_online() => h.scope(),
        _ => Scope::parse(&record.panes),
    };
    if !scope.has_pane(pane) {
        return Err(AppError::NotFound);
    }
    Ok((id, Some(pane)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WatchBody {
    #[serde(default)]
    idle_ms: Option<u64>,
}

/// `POST /api/sessions/{id}/panes/{pane}/watch {"idle_ms": ms|null}`:
/// watch a pane for idleness (null: stop). 200 with
/// `{"watch": PaneWatch|null}`; 404 for a pane not in the session.
async fn watch(
    State(st): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path((id, pane)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    check_csrf(&st, &headers)?;
    let (session, pane) = owned_pane(&st, &user.id, &id, Some(&pane)).await?;
    let Some(pane) = pane else {
        return Err(AppError::NotFound);
    };
    let b: WatchBody = match json_body(&body, "{\"idle_ms\": ms|null}") {
        Ok(b) => b,
        Err(refused) => return Ok(*refused),
    };
    match agents::watch_pane(&st, &user.id, session, pane, b.idle_ms).await {
        Ok(Some(w)) => Ok(Json(json!({ "watch": watch_json(&st, &w).await })).into_response()),
        Ok(None) => Ok(Json(json!({ "watch": null })).into_response()),
        Err(e) => agent_error(e),
    }
}

/// `GET /api/sessions/{id}/watches`: `{"watches": [PaneWatch…]}`.
async fn watches(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let (session, _) = owned_pane(&st, &user.id, &id, None).await?;
    // Panes that closed since are not listed (their rows go when the
    // runner next reports them or reopens the session).
    let scope = st
        .hub
        .get(session)
        .filter(|h| h.runner_online())
        .map(|h| h.scope());
    let mut out = Vec::new();
    for w in st.store.pane_watches(session).await? {
        let closed = PaneId::parse_bytes(w.pane.as_bytes())
            .is_none_or(|p| scope.as_ref().is_some_and(|s| !s.has_pane(p)));
        if !closed {
            out.push(watch_json(&st, &w).await);
        }
    }
    Ok(no_store(Json(json!({ "watches": out }))))
}
