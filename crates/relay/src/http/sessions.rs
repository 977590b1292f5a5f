//! The page's session API (protocol.md §5, "HTTP API of the page"):
//! `GET /api/sessions` lists the account's terminal sessions with their
//! state; `POST /api/sessions` asks a runner to create one (a `command`
//! over its socket, answered once the runner opened it);
//! `DELETE /api/sessions/{id}` kills one through its runner, or deletes a
//! closed one. Another user's session is answered exactly like a missing
//! one (404).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use protocol::control::SessionInfo;
use protocol::runner::CommandOp;
use serde::{Deserialize, Serialize};
use serde_json::json;
use store::{SessionRecord, TerminalSessionId};

use super::api::CSRF_HEADER;
use super::error::{AppError, json_body, refusal};
use crate::auth::{CurrentUser, now_ms};
use crate::hub::Live;
use crate::runners::{CommandError, CommandReply};
use crate::state::AppState;

/// Longest accepted `cwd` or `command`, in bytes.
const MAX_COMMAND: usize = 4096;

/// A terminal session as the page sees it (§5 `Session`).
#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    #[serde(flatten)]
    pub info: SessionInfo,
    pub runner_id: String,
    pub runner_name: String,
    /// `starting`, `live`, `runner_offline` or `closed`.
    pub state: &'static str,
    pub attached_clients: u32,
    pub viewers: u32,
    pub created_at: i64,
    pub last_activity_at: Option<i64>,
    pub closed_at: Option<i64>,
}

/// The state of a session from its row and its live state.
pub fn state_of(record: &SessionRecord, live: Live) -> &'static str {
    if record.closed_at.is_some() {
        "closed"
    } else if live.runner_online {
        "live"
    } else {
        "runner_offline"
    }
}

fn view(st: &AppState, r: SessionRecord, names: &HashMap<String, String>) -> SessionView {
    let live = st.hub.get(r.id).map(|h| h.live()).unwrap_or_default();
    let live = Live {
        runner_online: live.runner_online && r.closed_at.is_none(),
        ..live
    };
    let state = state_of(&r, live);
    SessionView {
        info: SessionInfo {
            id: r.id.to_string(),
            idea: r.idea.clone(),
            slot: r.slot.clone(),
            tmux_session: r.tmux_session.clone(),
            attach: r.attach.clone(),
            host: r.host.clone(),
            runner_online: live.runner_online,
            head_seq: live.head_seq.max(r.last_seq),
        },
        runner_name: names.get(&r.runner_id).cloned().unwrap_or_default(),
        runner_id: r.runner_id,
        state,
        attached_clients: if live.runner_online {
            live.attached_clients
        } else {
            0
        },
        viewers: live.viewers,
        created_at: r.created_at,
        last_activity_at: r.last_activity_at,
        closed_at: r.closed_at,
    }
}

async fn runner_names(st: &AppState, user_id: &str) -> Result<HashMap<String, String>, AppError> {
    Ok(st
        .store
        .runners_of_user(user_id)
        .await?
        .into_iter()
        .map(|r| (r.id, r.name))
        .collect())
}

/// The checks of every state-changing request of the page: the
/// `X-Requested-With` header and a same-origin `Origin` (403).
pub(super) fn check_csrf(st: &AppState, headers: &HeaderMap) -> Result<(), AppError> {
    if !headers.contains_key(CSRF_HEADER) {
        return Err(AppError::Forbidden("missing X-Requested-With header"));
    }
    if st.auth.check_origin(headers).is_err() {
        return Err(AppError::Forbidden("bad Origin"));
    }
    Ok(())
}

/// `GET /api/sessions`: `{"sessions": [Session, ...]}`, newest activity
/// first.
pub async fn list(State(st): State<AppState>, user: CurrentUser) -> Result<Response, AppError> {
    let records = st.store.sessions_for_user(&user.id).await?;
    let names = runner_names(&st, &user.id).await?;
    // Cluster mode: a runner held by another relay serves the sessions it
    // opened and did not leave since.
    let elsewhere: Vec<String> = match &st.cluster {
        Some(_) => crate::cluster::routing::online_of_user(&st, &user.id).await,
        None => Vec::new(),
    };
    let mut sessions: Vec<SessionView> = records
        .into_iter()
        .map(|r| {
            let served_elsewhere = elsewhere.contains(&r.runner_id)
                && r.closed_at.is_none()
                && r.last_connected_at.is_some()
                && r.last_detached_at <= r.last_connected_at;
            let mut v = view(&st, r, &names);
            if served_elsewhere && !v.info.runner_online {
                v.info.runner_online = true;
                v.state = "live";
            }
            v
        })
        .collect();
    let key = |s: &SessionView| s.last_activity_at.unwrap_or(s.created_at);
    sessions.sort_by(|a, b| key(b).cmp(&key(a)).then_with(|| b.info.id.cmp(&a.info.id)));
    Ok((
        [("cache-control", "no-store")],
        Json(json!({ "sessions": sessions })),
    )
        .into_response())
}

/// The body of `POST /api/sessions`.
#[derive(Debug, Deserialize)]
pub struct CreateBody {
    idea: String,
    slot: String,
    #[serde(default)]
    runner_id: Option<String>,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    command: Option<String>,
}

/// `POST /api/sessions`: 201 `{"session"}` when created, 200 when it
/// existed; 400 bad idea or slot; 409 several runners online and none
/// named; 503 no runner online; 504 the runner did not answer in time.
pub async fn create(
    State(st): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    // The login and the CSRF checks come before the body is read.
    check_csrf(&st, &headers)?;
    let body: CreateBody = match json_body(&body, r#"{"idea","slot",…}"#) {
        Ok(b) => b,
        Err(refused) => return Ok(*refused),
    };
    if let Err(e) = tmux_cc::naming::session_name(&body.idea, &body.slot) {
        return Ok(refusal(StatusCode::BAD_REQUEST, e.to_string()));
    }
    if body
        .idea
        .chars()
        .chain(body.slot.chars())
        .any(char::is_control)
    {
        return Ok(refusal(
            StatusCode::BAD_REQUEST,
            "idea and slot must not contain control characters",
        ));
    }
    for (name, value) in [("cwd", &body.cwd), ("command", &body.command)] {
        if let Some(v) = value
            && (v.len() > MAX_COMMAND
                || v.contains('\0')
                || (name == "cwd" && v.chars().any(char::is_control)))
        {
            return Ok(refusal(
                StatusCode::BAD_REQUEST,
                format!("{name} is longer than {MAX_COMMAND} bytes or holds forbidden characters"),
            ));
        }
    }
    let runner_id = match &body.runner_id {
        Some(id) => {
            match st.store.runner(id).await? {
                Some(r) if r.user_id == user.id && r.revoked_at.is_none() => {}
                _ => return Ok(refusal(StatusCode::NOT_FOUND, "no such runner")),
            }
            if !crate::cluster::routing::runner_online(&st, id).await {
                return Ok(refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "that runner is offline",
                ));
            }
            id.clone()
        }
        None => {
            let online = crate::cluster::routing::online_of_user(&st, &user.id).await;
            match online.as_slice() {
                [] => {
                    return Ok(refusal(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "no runner of this account is online",
                    ));
                }
                [one] => one.clone(),
                several => {
                    let names = st.store.runners_of_user(&user.id).await?;
                    let runners: Vec<_> = several
                        .iter()
                        .map(|id| {
                            let r = names.iter().find(|r| &r.id == id);
                            json!({
                                "id": id,
                                "name": r.map(|r| r.name.as_str()).unwrap_or(""),
                                "host": st.runners.details(id).map(|d| d.host).filter(|h| !h.is_empty())
                                    .or_else(|| r.map(|r| r.host.clone())).unwrap_or_default(),
                            })
                        })
                        .collect();
                    return Ok((
                        StatusCode::CONFLICT,
                        Json(json!({
                            "error": "several runners are online: name one (runner_id)",
                            "runners": runners,
                        })),
                    )
                        .into_response());
                }
            }
        }
    };
    let existed = st
        .store
        .sessions_for_user(&user.id)
        .await?
        .into_iter()
        .any(|r| {
            r.runner_id == runner_id
                && r.idea == body.idea
                && r.slot == body.slot
                && r.closed_at.is_none()
                && st.hub.get(r.id).is_some_and(|h| h.runner_online())
        });
    let op = CommandOp::CreateSession {
        idea: body.idea.clone(),
        slot: body.slot.clone(),
        cwd: body.cwd,
        command: body.command,
    };
    let reply =
        match crate::cluster::routing::command(&st, &runner_id, op, st.command_timeout).await {
            Ok(r) => r,
            Err(e) => return Ok(command_failed(e)),
        };
    let session = match reply_session(&reply) {
        Ok(id) => id,
        Err(resp) => return Ok(*resp),
    };
    let Some(record) = st.store.session(session).await? else {
        return Ok(refusal(
            StatusCode::BAD_GATEWAY,
            "the runner's session is gone",
        ));
    };
    let names = runner_names(&st, &user.id).await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    st.notifier.sessions(&user.id);
    Ok((
        status,
        Json(json!({ "session": view(&st, record, &names) })),
    )
        .into_response())
}

/// 503 offline, 504 no answer in time.
fn command_failed(e: CommandError) -> Response {
    let status = match e {
        CommandError::Offline | CommandError::Gone => StatusCode::SERVICE_UNAVAILABLE,
        CommandError::Timeout => StatusCode::GATEWAY_TIMEOUT,
    };
    refusal(status, e.to_string())
}

/// The session a successful `create_session` opened, or the answer for
/// a refusal (400 for names the runner refused, 502 otherwise).
fn reply_session(reply: &CommandReply) -> Result<TerminalSessionId, Box<Response>> {
    if !reply.ok {
        let (code, message) = reply
            .error
            .as_ref()
            .map(|e| (e.code.as_str(), e.message.as_str()))
            .unwrap_or(("failed", "the runner refused"));
        let status = if code == "invalid_name" {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::BAD_GATEWAY
        };
        return Err(Box::new(
            (status, Json(json!({ "error": message, "code": code }))).into_response(),
        ));
    }
    reply.session_id.ok_or_else(|| {
        Box::new(refusal(
            StatusCode::BAD_GATEWAY,
            "the runner did not open the session it created",
        ))
    })
}

/// `DELETE /api/sessions/{id}`: 204 once the runner killed it (or a closed
/// one was deleted); 404 missing or another user's; 503 runner offline;
/// 504 no answer in time.
pub async fn delete(
    State(st): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    check_csrf(&st, &headers)?;
    let Ok(id) = id.parse::<TerminalSessionId>() else {
        return Err(AppError::NotFound);
    };
    let record = match st.store.session(id).await? {
        Some(r) if r.user_id == user.id => r,
        _ => return Err(AppError::NotFound),
    };
    if record.closed_at.is_some() {
        st.store.delete_session(id).await?;
        st.hub.remove(id);
        st.notifier.sessions(&user.id);
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    if !crate::cluster::routing::runner_online(&st, &record.runner_id).await {
        return Ok(refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "the session's runner is offline",
        ));
    }
    let op = CommandOp::KillSession {
        idea: record.idea.clone(),
        slot: record.slot.clone(),
        instance: record.instance.clone(),
    };
    let reply = match crate::cluster::routing::command(
        &st,
        &record.runner_id,
        op,
        st.command_timeout,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return Ok(command_failed(e)),
    };
    if !reply.ok {
        let message = reply
            .error
            .map(|e| e.message)
            .unwrap_or_else(|| "the runner refused".to_owned());
        return Ok(refusal(StatusCode::BAD_GATEWAY, message));
    }
    // The runner sent `close` (killed) before its result; make sure.
    st.store.close_session(id, now_ms()).await?;
    st.notifier.sessions(&user.id);
    Ok(StatusCode::NO_CONTENT.into_response())
}
