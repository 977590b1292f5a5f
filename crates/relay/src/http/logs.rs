//! Logs beyond terminals (issue 11): `POST /api/logs/ingest` takes lines
//! from other tools on a runner's token; `GET /api/ideas/{idea}/logs` is
//! everything of an idea in time order: its jobs (with their logs'
//! addresses), its terminal sessions (with their recordings') and the
//! ingested lines.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{AppError, json_body, refusal, too_many};
use crate::auth::{CurrentUser, LimitError, bearer_token, now_ms};
use crate::jobs::lifecycle::job_json;
use crate::state::AppState;

/// Most lines in one ingest batch.
pub const MAX_BATCH: usize = 1000;
/// Longest ingested line, in bytes.
pub const MAX_LINE: usize = 4096;
/// Longest `source` or `idea`, in bytes.
const MAX_NAME: usize = 128;
/// Entries of each kind an idea's timeline holds at most.
const TIMELINE_LIMIT: u32 = 500;

/// One ingested line: text, or `{"line", "at"?}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Line {
    Text(String),
    Timed { line: String, at: Option<i64> },
}

/// The body of `POST /api/logs/ingest`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestBody {
    source: String,
    #[serde(default)]
    idea: Option<String>,
    lines: Vec<Line>,
}

/// `POST /api/logs/ingest` with a runner's bearer token: 204 when stored;
/// 400 for a bad batch (no source, more than 1,000 lines, a line over
/// 4 KiB); 401 without a live runner token; 429 with `Retry-After` beyond
/// 1,000 lines a minute per runner.
pub async fn ingest(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let Some(token) = bearer_token(&headers) else {
        return Ok(refusal(
            StatusCode::UNAUTHORIZED,
            "a runner token is required",
        ));
    };
    let runner = match st.auth.authenticate_runner(token).await {
        Ok(r) => r,
        // 401 for a bad token, 503 while the database is unavailable.
        Err(e) => return Ok(e.into_response()),
    };
    let body: IngestBody = match json_body(&body, r#"{"source","idea"?,"lines":[…]}"#) {
        Ok(b) => b,
        Err(refused) => return Ok(*refused),
    };
    let bad_name = |s: &str| s.is_empty() || s.len() > MAX_NAME || s.chars().any(char::is_control);
    if bad_name(&body.source) {
        return Ok(refusal(
            StatusCode::BAD_REQUEST,
            "source must be 1 to 128 bytes without control characters",
        ));
    }
    let idea = body.idea.filter(|i| !i.is_empty());
    if idea.as_deref().is_some_and(bad_name) {
        return Ok(refusal(
            StatusCode::BAD_REQUEST,
            "idea must be at most 128 bytes without control characters",
        ));
    }
    if body.lines.is_empty() || body.lines.len() > MAX_BATCH {
        return Ok(refusal(
            StatusCode::BAD_REQUEST,
            format!("a batch holds 1 to {MAX_BATCH} lines"),
        ));
    }
    let now = now_ms();
    let mut lines = Vec::with_capacity(body.lines.len());
    for l in body.lines {
        let (line, at) = match l {
            Line::Text(line) => (line, None),
            Line::Timed { line, at } => (line, at),
        };
        if line.len() > MAX_LINE || line.contains('\0') {
            return Ok(refusal(
                StatusCode::BAD_REQUEST,
                format!("a line is longer than {MAX_LINE} bytes or holds NUL"),
            ));
        }
        // A time from the future is the runner's clock being wrong: now.
        lines.push((at.filter(|&t| t > 0 && t <= now).unwrap_or(now), line));
    }
    let n = u32::try_from(lines.len()).unwrap_or(u32::MAX);
    match st
        .jobs
        .ingest_limit
        .try_acquire_n(&runner.runner_id, n)
        .await
    {
        Ok(()) => {}
        Err(LimitError::Limited(wait)) => {
            return Ok(too_many(wait, "at most 1000 lines a minute per runner"));
        }
        Err(LimitError::Store(e)) => return Err(e.into()),
    }
    st.store
        .ingest_lines(
            &runner.user_id,
            &runner.runner_id,
            idea.as_deref(),
            &body.source,
            &lines,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/ideas/{idea}/logs`: `{"entries":[…]}` in time order: `job`
/// (a Job and its `log` address), `session` (`session_id`, `slot`,
/// `asciicast` address, created and closed times) and `line` (an
/// ingested line with its `source`).
pub async fn idea_logs(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(idea): Path<String>,
) -> Result<Response, AppError> {
    let mut entries: Vec<(i64, Value)> = Vec::new();
    for j in st
        .store
        .jobs_for_user(&user.id, Some(&idea), None, TIMELINE_LIMIT)
        .await?
    {
        let at = j.started_at.unwrap_or(j.created_at);
        entries.push((
            at,
            json!({"kind": "job", "at": at, "log": format!("/api/jobs/{}/log", j.id), "job": job_json(&j)}),
        ));
    }
    for s in st
        .store
        .sessions_for_user(&user.id)
        .await?
        .into_iter()
        .filter(|s| s.idea == idea)
    {
        entries.push((
            s.created_at,
            json!({
                "kind": "session",
                "at": s.created_at,
                "session_id": s.id.to_string(),
                "slot": s.slot,
                "closed_at": s.closed_at,
                "last_activity_at": s.last_activity_at,
                "asciicast": format!("/api/sessions/{}/asciicast", s.id),
            }),
        ));
    }
    for l in st
        .store
        .ingested_for_idea(&user.id, &idea, TIMELINE_LIMIT)
        .await?
    {
        entries.push((
            l.at,
            json!({"kind": "line", "at": l.at, "source": l.source, "line": l.line}),
        ));
    }
    entries.sort_by_key(|(at, _)| *at);
    let entries: Vec<Value> = entries.into_iter().map(|(_, v)| v).collect();
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({ "entries": entries })),
    )
        .into_response())
}
