//! `GET /api/runner/ws`: one WebSocket per terminal session served by a
//! runner (protocol.md §4).
//!
//! The handshake is refused with 401 before the upgrade unless the Bearer
//! runner token is valid and not revoked; revoking the runner later closes
//! the socket with 1008. After `hello`/`welcome`, every
//! Batch frame is stored (`append_frame`, idempotent on resend) and then
//! acked and published to browsers; Snapshot frames are stored and offered
//! to browsers awaiting one. Commands for the runner (input, resize,
//! viewers, snapshot requests) arrive from the hub through a bounded channel.
//! This task owns the runner's socket; it never waits on a browser.

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use protocol::control::{
    MAX_RUNNER_MESSAGE, PROTOCOL_VERSION, RelayToRunner, RunnerHello, RunnerToRelay, close,
};
use protocol::wire::{Frame, FrameKind};
use store::{Appended, StoreError, TerminalSessionId};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, warn};

use std::time::Duration;

use super::{HELLO_TIMEOUT, Keepalive, send_timed};
use crate::auth::{RunnerConnection, RunnerIdentity, bearer_token, now_ms};
use crate::hub::{LiveFrame, SessionHub, SessionMeta, ToRunner};
use crate::state::AppState;

/// Longest accepted idea, slot, tmux session name, attach command or host.
const MAX_NAME: usize = 512;

/// The upgrade handler.
pub async fn runner_ws(
    State(st): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(token) = bearer_token(&headers) else {
        return (StatusCode::UNAUTHORIZED, "missing Bearer runner token\n").into_response();
    };
    let claims = match st.auth.authenticate_runner(token).await {
        Ok(c) => c,
        Err(e) if e.status().is_server_error() => {
            error!(error = %e, "authenticating a runner failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
        }
        Err(e) => {
            info!(error = %e, "runner token refused");
            return (
                StatusCode::UNAUTHORIZED,
                "invalid, expired or revoked runner token\n",
            )
                .into_response();
        }
    };
    // Registered before the upgrade so a revocation racing the handshake
    // still cuts this connection.
    let revocation = st.auth.connections().register(&claims.runner_id);
    let guard = st.tracker.token();
    let cancel = st.shutdown.child_token();
    let span = info_span!("runner_ws", runner = %claims.runner_id);
    ws.max_message_size(MAX_RUNNER_MESSAGE)
        .max_frame_size(MAX_RUNNER_MESSAGE)
        .max_write_buffer_size(4 * 1024 * 1024)
        .on_upgrade(move |socket| {
            async move {
                let _guard = guard;
                run(st, socket, claims, revocation, cancel).await;
            }
            .instrument(span)
        })
}

/// Why the loop ended: the close code and reason to send (None: the peer
/// closed or the socket failed).
type Ending = Option<(u16, String)>;

async fn run(
    st: AppState,
    mut socket: WebSocket,
    claims: RunnerIdentity,
    revocation: RunnerConnection,
    cancel: CancellationToken,
) {
    let hello = match read_hello(&mut socket, &cancel).await {
        Ok(h) => h,
        Err((code, reason)) => {
            info!(code, "runner refused before welcome");
            super::close(socket, code, &reason).await;
            return;
        }
    };
    if let Err(e) = st
        .auth
        .check_session_quota(&claims.user_id, &claims.runner_id, &hello.idea, &hello.slot)
        .await
    {
        warn!(error = %e, "runner's new session refused");
        super::close(socket, close::FORBIDDEN, &e.to_string()).await;
        return;
    }
    let record = match st
        .store
        .upsert_session(
            &claims.runner_id,
            &claims.user_id,
            &hello.idea,
            &hello.slot,
            &hello.tmux_session,
        )
        .await
    {
        Ok(r) => r,
        Err(StoreError::OwnerMismatch { id }) => {
            warn!(session = id, "runner's session belongs to another user");
            super::close(
                socket,
                close::FORBIDDEN,
                "this terminal session belongs to another user",
            )
            .await;
            return;
        }
        Err(e) => {
            error!(error = %e, "storing the session failed");
            super::close(socket, 1011, "internal error").await;
            return;
        }
    };
    let id = record.id;
    if let Err(e) = st.store.mark_connected(id, now_ms()).await {
        warn!(session = id, error = %e, "recording the connection time failed");
    }
    let hub = st.hub.session(id);
    let meta = SessionMeta {
        user_id: claims.user_id.clone(),
        runner_id: claims.runner_id.clone(),
        idea: hello.idea,
        slot: hello.slot,
        tmux_session: hello.tmux_session,
        attach: hello.attach,
        host: hello.host,
    };
    let mut reg = hub.attach_runner(meta, record.last_seq);
    info!(session = id, last_seq = record.last_seq, "runner connected");

    let welcome = RelayToRunner::Welcome {
        session_id: id.to_string(),
        last_seq: record.last_seq,
    };
    let ending = if send_json(&mut socket, &welcome, st.keepalive * 6)
        .await
        .is_err()
    {
        None
    } else {
        pump(&st, &hub, id, &mut socket, &mut reg, &revocation, &cancel).await
    };

    hub.detach_runner(reg.conn);
    drop(revocation);
    if let Err(e) = st.auth.runner_disconnected(&claims.runner_id).await {
        warn!(error = %e, "recording the runner's last seen time failed");
    }
    if let Err(e) = st.store.mark_detached(id, now_ms()).await {
        warn!(session = id, error = %e, "recording the detach time failed");
    }
    match ending {
        Some((code, reason)) => {
            info!(session = id, code, "closing runner socket");
            super::close(socket, code, &reason).await;
        }
        None => info!(session = id, "runner disconnected"),
    }
}

async fn read_hello(
    socket: &mut WebSocket,
    cancel: &CancellationToken,
) -> Result<RunnerHello, (u16, String)> {
    let msg = tokio::select! {
        () = cancel.cancelled() => return Err((close::GOING_AWAY, "relay shutting down".into())),
        r = tokio::time::timeout(HELLO_TIMEOUT, socket.recv()) => r,
    };
    let text = match msg {
        Err(_) => return Err((close::PROTOCOL, "no hello within 10 s".into())),
        Ok(Some(Err(e))) => {
            return Err(super::error_close(&e, "16 MiB").unwrap_or((1000, "closed".into())));
        }
        Ok(None) => return Err((1000, "closed".into())),
        Ok(Some(Ok(Message::Text(t)))) => t,
        Ok(Some(Ok(_))) => return Err((close::PROTOCOL, "expected a hello text message".into())),
    };
    let hello = match serde_json::from_str::<RunnerToRelay>(text.as_str()) {
        Ok(RunnerToRelay::Hello(h)) => h,
        Ok(_) => return Err((close::PROTOCOL, "expected hello first".into())),
        Err(e) => return Err((close::PROTOCOL, format!("malformed hello: {e}"))),
    };
    if hello.v != PROTOCOL_VERSION {
        return Err((
            close::PROTOCOL,
            format!("unsupported protocol version {}", hello.v),
        ));
    }
    let fields = [
        &hello.idea,
        &hello.slot,
        &hello.tmux_session,
        &hello.attach,
        &hello.host,
    ];
    if hello.idea.is_empty() || hello.slot.is_empty() || hello.tmux_session.is_empty() {
        return Err((
            close::PROTOCOL,
            "idea, slot and tmux_session must not be empty".into(),
        ));
    }
    if fields
        .iter()
        .any(|f| f.len() > MAX_NAME || f.chars().any(char::is_control))
    {
        return Err((
            close::PROTOCOL,
            "a hello field is too long or holds control characters".into(),
        ));
    }
    Ok(hello)
}

async fn send_json<T: serde::Serialize>(
    socket: &mut WebSocket,
    msg: &T,
    limit: Duration,
) -> Result<(), ()> {
    let text = serde_json::to_string(msg).map_err(|_| ())?;
    send_timed(socket, Message::Text(text.into()), limit).await
}

async fn pump(
    st: &AppState,
    hub: &SessionHub,
    id: TerminalSessionId,
    socket: &mut WebSocket,
    reg: &mut crate::hub::RunnerRegistration,
    revocation: &RunnerConnection,
    cancel: &CancellationToken,
) -> Ending {
    let mut alive = Keepalive::new(st.keepalive);
    let limit = alive.send_limit();
    loop {
        enum Event {
            Shutdown,
            Replaced,
            Revoked,
            Tick,
            Command(Option<ToRunner>),
            Incoming(Option<Result<Message, axum::Error>>),
        }
        let event = tokio::select! {
            biased;
            () = cancel.cancelled() => Event::Shutdown,
            () = reg.replaced.cancelled() => Event::Replaced,
            () = revocation.cancelled() => Event::Revoked,
            () = alive.tick() => Event::Tick,
            cmd = reg.rx.recv() => Event::Command(cmd),
            msg = socket.recv() => Event::Incoming(msg),
        };
        if matches!(event, Event::Incoming(Some(Ok(_)))) {
            alive.heard();
        }
        match event {
            Event::Shutdown => return Some((close::GOING_AWAY, "relay shutting down".into())),
            Event::Replaced => {
                return Some((
                    close::REPLACED,
                    "replaced: the same terminal session connected again".into(),
                ));
            }
            Event::Revoked => return Some((close::POLICY, "runner revoked".into())),
            Event::Tick => {
                if alive.expired() {
                    info!(
                        session = id,
                        "runner silent for three keepalive periods; dropping it"
                    );
                    return None;
                }
                if send_timed(socket, Message::Ping(Bytes::new()), limit)
                    .await
                    .is_err()
                {
                    return None;
                }
            }
            // The hub keeps a sender while this connection is registered.
            Event::Command(None) => return Some((close::REPLACED, "replaced".into())),
            Event::Command(Some(ToRunner::Control(msg))) => {
                if send_json(socket, &msg, limit).await.is_err() {
                    return None;
                }
            }
            Event::Incoming(None) => return None,
            Event::Incoming(Some(Err(e))) => {
                if let Some(ending) = super::error_close(&e, "16 MiB") {
                    warn!(session = id, code = ending.0, "bad runner message");
                    return Some(ending);
                }
                debug!(session = id, error = %e, "runner socket error");
                return None;
            }
            Event::Incoming(Some(Ok(msg))) => match msg {
                Message::Binary(bytes) => {
                    if let Some(end) = on_frame(st, hub, id, socket, bytes, limit).await {
                        return Some(end);
                    }
                }
                Message::Text(text) => match serde_json::from_str::<RunnerToRelay>(text.as_str()) {
                    Ok(RunnerToRelay::Status { attached_clients }) => {
                        debug!(session = id, attached_clients, "runner status");
                        hub.set_attached_clients(attached_clients);
                    }
                    Ok(RunnerToRelay::Hello(_)) => {
                        return Some((close::PROTOCOL, "hello sent twice".into()));
                    }
                    Ok(_) => return Some((close::PROTOCOL, "unexpected message type".into())),
                    Err(e) => {
                        warn!(session = id, bytes = text.len(), "malformed runner message");
                        return Some((close::PROTOCOL, format!("malformed control message: {e}")));
                    }
                },
                Message::Close(_) => return None,
                Message::Ping(_) | Message::Pong(_) => {}
            },
        }
    }
}

/// Stores a frame, then acks and publishes it. Returns a close reason when
/// the frame must end the connection.
async fn on_frame(
    st: &AppState,
    hub: &SessionHub,
    id: TerminalSessionId,
    socket: &mut WebSocket,
    bytes: Bytes,
    limit: Duration,
) -> Option<(u16, String)> {
    let (kind, first_seq, last_seq, _compressed) = match Frame::peek_header(&bytes) {
        Ok(h) => h,
        Err(e) => {
            warn!(session = id, bytes = bytes.len(), error = %e, "bad frame from runner");
            return Some((close::PROTOCOL, format!("bad frame: {e}")));
        }
    };
    match kind {
        FrameKind::Batch => {
            // A frame that continues the live sequence goes to browsers
            // before the store commits (a keystroke's echo should not wait
            // for the disk); the ack still waits for it. A resend, or
            // anything else, is published only once stored.
            let early = first_seq == hub.head_seq() + 1;
            if early {
                hub.publish(LiveFrame {
                    kind,
                    first_seq,
                    last_seq,
                    bytes: bytes.clone(),
                });
            }
            match st.store.append_frame(id, first_seq, last_seq, &bytes).await {
                Ok(appended) => {
                    debug!(
                        session = id,
                        first_seq,
                        last_seq,
                        bytes = bytes.len(),
                        ?appended,
                        "batch"
                    );
                    if appended == Appended::Stored && !early {
                        hub.publish(LiveFrame {
                            kind,
                            first_seq,
                            last_seq,
                            bytes,
                        });
                    }
                    if send_json(socket, &RelayToRunner::Ack { seq: last_seq }, limit)
                        .await
                        .is_err()
                    {
                        return Some((close::NORMAL, "send failed".into()));
                    }
                    None
                }
                Err(e) => store_refusal(id, e),
            }
        }
        FrameKind::Snapshot => match st.store.put_snapshot(id, last_seq, &bytes).await {
            Ok(()) => {
                debug!(session = id, at = last_seq, bytes = bytes.len(), "snapshot");
                hub.publish(LiveFrame {
                    kind,
                    first_seq,
                    last_seq,
                    bytes,
                });
                None
            }
            Err(e) => store_refusal(id, e),
        },
    }
}

fn store_refusal(id: TerminalSessionId, e: StoreError) -> Option<(u16, String)> {
    match e {
        StoreError::Gap { .. }
        | StoreError::Overlap { .. }
        | StoreError::InvalidRange { .. }
        | StoreError::SeqOutOfRange(_)
        | StoreError::SnapshotAhead { .. }
        | StoreError::SnapshotMisaligned { .. } => {
            warn!(session = id, error = %e, "frame refused");
            Some((close::PROTOCOL, e.to_string()))
        }
        other => {
            error!(session = id, error = %other, "storing a frame failed");
            Some((1011, "internal error: storage failed".into()))
        }
    }
}
