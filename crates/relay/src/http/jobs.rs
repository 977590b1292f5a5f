//! The page's jobs API (issue 11, protocol.md §5): `POST /api/jobs`,
//! `GET /api/jobs?idea=…`, `GET /api/jobs/{id}`,
//! `POST /api/jobs/{id}/cancel` and `GET /api/jobs/{id}/log`. The logic is
//! `crate::jobs`; this file reads requests and writes answers. Another
//! user's job is answered exactly like a missing one (404).

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use protocol::runner::job::MAX_LOG_CHUNK;
use serde::Deserialize;
use serde_json::json;
use store::Store;

use super::error::{AppError, json_body, no_store, refusal, too_many};
use super::sessions::check_csrf;
use crate::auth::CurrentUser;
use crate::jobs::lifecycle::job_json;
use crate::jobs::{self, JobError, LIST_LIMIT, NewJob};
use crate::search::lines::PaneLines;
use crate::state::AppState;

/// Log chunks read from the store per piece of the response.
const CHUNKS_PER_READ: u32 = 8;

fn job_error(e: JobError) -> Result<Response, AppError> {
    Ok(match e {
        JobError::Invalid(why) => refusal(StatusCode::BAD_REQUEST, why),
        JobError::NoRunner => refusal(StatusCode::NOT_FOUND, "no such runner"),
        JobError::NotFound => return Err(AppError::NotFound),
        JobError::Ended => refusal(StatusCode::CONFLICT, "the job has ended already"),
        JobError::Limited(wait) => too_many(wait, "at most 10 jobs a minute"),
        JobError::Store(e) => return Err(e.into()),
    })
}

/// The body of `POST /api/jobs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    idea: String,
    command: String,
    #[serde(default)]
    slot: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    runner_id: Option<String>,
}

/// `POST /api/jobs`: 201 with the job (queued, or already starting);
/// 400 bad input, 404 unknown runner, 429 over the rate limit.
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
        kind: protocol::runner::JobKind::Job,
        idea: body.idea,
        slot: body.slot,
        name: body.name,
        command: body.command,
        cwd: body.cwd,
        env: body.env,
        runner_id: body.runner_id.filter(|r| !r.is_empty()),
        agent: None,
    };
    match jobs::create(&st, &user.id, req).await {
        Ok(job) => Ok((StatusCode::CREATED, Json(job_json(&job))).into_response()),
        Err(e) => job_error(e),
    }
}

#[derive(Deserialize)]
pub struct ListParams {
    idea: Option<String>,
    /// `job`, `agent` or `devserver`; absent: every kind.
    kind: Option<String>,
}

/// `GET /api/jobs?idea=…&kind=…`: `{"jobs": [Job…]}`, newest first.
pub async fn list(
    State(st): State<AppState>,
    user: CurrentUser,
    Query(p): Query<ListParams>,
) -> Result<Response, AppError> {
    let idea = p.idea.as_deref().filter(|i| !i.is_empty());
    let kind = match p.kind.as_deref().filter(|k| !k.is_empty()) {
        None => None,
        Some(k) => match protocol::runner::JobKind::parse(k) {
            Some(k) => Some(k.as_str()),
            None => {
                return Ok(refusal(
                    StatusCode::BAD_REQUEST,
                    "kind is job, agent or devserver",
                ));
            }
        },
    };
    let list = st
        .store
        .jobs_for_user(&user.id, idea, kind, LIST_LIMIT)
        .await?;
    let jobs: Vec<_> = list.iter().map(job_json).collect();
    Ok(no_store(Json(json!({ "jobs": jobs }))))
}

/// `GET /api/jobs/{id}`.
pub async fn get(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    match st.store.job(&id).await? {
        Some(j) if j.user_id == user.id => Ok(no_store(Json(job_json(&j)))),
        _ => Err(AppError::NotFound),
    }
}

/// `POST /api/jobs/{id}/cancel`: 200 with the job; 409 when it ended (or
/// a cancel is under way).
pub async fn cancel(
    State(st): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    check_csrf(&st, &headers)?;
    match jobs::cancel(&st, &user.id, &id).await {
        Ok(job) => Ok(Json(job_json(&job)).into_response()),
        Err(e) => job_error(e),
    }
}

#[derive(Deserialize)]
pub struct LogParams {
    /// `1`: the bytes as printed; otherwise text without escape sequences.
    #[serde(default)]
    ansi: Option<String>,
    /// Byte range of the raw log, `from` inclusive, `to` exclusive.
    from: Option<u64>,
    to: Option<u64>,
}

struct LogStream {
    store: Store,
    job: String,
    next: u64,
    to: u64,
    text: Option<PaneLines>,
    finished: bool,
}

impl LogStream {
    async fn next(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        if self.finished {
            return None;
        }
        let chunks = match self
            .store
            .job_log_chunks(&self.job, self.next, CHUNKS_PER_READ)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                self.finished = true;
                return Some(Err(std::io::Error::other(e.to_string())));
            }
        };
        let mut out = Vec::new();
        for c in &chunks {
            let (Ok(start), Ok(len)) = (u64::try_from(c.start_byte), u64::try_from(c.len)) else {
                continue;
            };
            let data = match protocol::codec::decompress(&c.data, MAX_LOG_CHUNK) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(job = %self.job, start, error = %e, "a stored log chunk does not decode");
                    self.finished = true;
                    return Some(Err(std::io::Error::other("a stored log chunk is damaged")));
                }
            };
            let lo = usize::try_from(self.next.saturating_sub(start)).unwrap_or(usize::MAX);
            let hi = usize::try_from(self.to.saturating_sub(start)).unwrap_or(usize::MAX);
            let piece = data
                .get(lo.min(data.len())..hi.min(data.len()))
                .unwrap_or(&[]);
            match &mut self.text {
                Some(lines) => {
                    for l in lines.feed(piece) {
                        out.extend_from_slice(l.as_bytes());
                        out.push(b'\n');
                    }
                }
                None => out.extend_from_slice(piece),
            }
            self.next = start + len;
            if self.next >= self.to {
                break;
            }
        }
        if chunks.len() < CHUNKS_PER_READ as usize || self.next >= self.to {
            self.finished = true;
            if let Some(lines) = &self.text {
                let rest = lines.pending().trim_end();
                if !rest.is_empty() {
                    out.extend_from_slice(rest.as_bytes());
                    out.push(b'\n');
                }
            }
        }
        Some(Ok(Bytes::from(out)))
    }
}

/// `GET /api/jobs/{id}/log[?ansi=1][&from=N][&to=M]`: everything the
/// job's pane printed, streamed; as text without escape sequences, or the
/// raw bytes with `ansi=1`. `X-Log-Bytes` is the stored length (more may
/// come while the job runs).
pub async fn log(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Query(p): Query<LogParams>,
) -> Result<Response, AppError> {
    let job = match st.store.job(&id).await? {
        Some(j) if j.user_id == user.id => j,
        _ => return Err(AppError::NotFound),
    };
    let from = p.from.unwrap_or(0);
    let to = p.to.unwrap_or(u64::MAX);
    if from > to {
        return Err(AppError::BadRequest("from is after to".into()));
    }
    let raw = matches!(p.ansi.as_deref(), Some("1" | "true"));
    let stream = LogStream {
        store: st.store.clone(),
        job: job.id.clone(),
        next: from,
        to,
        text: (!raw).then(PaneLines::default),
        finished: false,
    };
    let body = futures_util::stream::unfold(stream, |mut s| async move {
        let piece = s.next().await?;
        Some((piece, s))
    });
    let kind = if raw {
        "application/octet-stream"
    } else {
        "text/plain; charset=utf-8"
    };
    Ok((
        [
            (header::CONTENT_TYPE, kind.to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (
                header::HeaderName::from_static("x-log-bytes"),
                job.log_bytes.to_string(),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}
