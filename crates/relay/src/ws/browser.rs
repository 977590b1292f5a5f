//! `GET /api/ws/browser/{session_id}`: a browser watching one terminal
//! session (protocol.md §5).
//!
//! Before the upgrade: the `Origin` must equal the relay's public origin,
//! the browser token (subprotocol `bearer.<token>`) must be valid and name
//! this session, and the session must belong to the token's user.
//!
//! After `hello{last_seq: k}` the browser is registered with the hub
//! *first* (its queue collects live frames from then on), then the store is
//! read (`since(k)`), then the queue is drained while dropping every frame
//! the store already supplied: no gap and no duplicate across the switch.
//! The queue is bounded; on overflow the hub moves the browser to the next
//! snapshot (see `hub.rs`). This task owns the browser's socket.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use protocol::control::{
    BROWSER_SUBPROTOCOL, BrowserToRelay, MAX_BROWSER_MESSAGE, RelayToBrowser, RelayToRunner,
    SessionInfo, bearer_from_subprotocols, close, resize_is_valid,
};
use protocol::wire::FrameKind;
use store::{SessionRecord, Since, StoreError, StoredFrame, TerminalSessionId};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, warn};

use std::time::Duration;

use super::{HELLO_TIMEOUT, Keepalive, send_timed};
use crate::auth::{AuthError, BrowserClaims, RunnerConnection};
use crate::hub::{BrowserQueue, BrowserRegistration, Outgoing, SessionHub, ToRunner};
use crate::state::AppState;

/// The upgrade handler.
pub async fn browser_ws(
    State(st): State<AppState>,
    Path(session_id): Path<String>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if st.auth.check_origin(&headers).is_err() {
        info!("browser handshake refused: bad Origin");
        return (StatusCode::FORBIDDEN, "Origin not allowed\n").into_response();
    }
    let offered: Vec<&str> = ws
        .requested_protocols()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let offered = offered.join(",");
    let Some(token) = bearer_from_subprotocols(&offered) else {
        return (
            StatusCode::UNAUTHORIZED,
            "missing tmux-bridge.v1 subprotocol or bearer token\n",
        )
            .into_response();
    };
    let access = match authenticate(&st, token).await {
        Ok(a) => a,
        Err(e) if e.status().is_server_error() => {
            error!(error = %e, "authenticating a browser failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
        }
        Err(e) => {
            info!(error = %e, "browser token refused");
            return (
                StatusCode::UNAUTHORIZED,
                "invalid or expired browser token\n",
            )
                .into_response();
        }
    };
    let claims = &access.claims;
    if claims.session_id != session_id {
        return (StatusCode::FORBIDDEN, "token is for another session\n").into_response();
    }
    let Ok(id) = session_id.parse::<TerminalSessionId>() else {
        return (StatusCode::NOT_FOUND, "no such session\n").into_response();
    };
    let record = match st.store.session(id).await {
        Ok(Some(r)) if r.user_id == claims.sub && r.runner_id == claims.runner_id => r,
        Ok(_) => return (StatusCode::NOT_FOUND, "no such session\n").into_response(),
        Err(e) => {
            error!(error = %e, "reading session failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
        }
    };
    let guard = st.tracker.token();
    let cancel = st.shutdown.child_token();
    let span = info_span!("browser_ws", session = id);
    ws.protocols([BROWSER_SUBPROTOCOL])
        .max_message_size(MAX_BROWSER_MESSAGE)
        .max_frame_size(MAX_BROWSER_MESSAGE)
        // One frame (≤ 16 MiB) plus control messages: writes wait for the
        // socket, so this bounds the socket's own buffering.
        .max_write_buffer_size(2 * protocol::control::MAX_RUNNER_MESSAGE)
        .on_upgrade(move |socket| {
            async move {
                let _guard = guard;
                run(st, socket, record, cancel, access).await;
            }
            .instrument(span)
        })
}

/// Who is on the other end: the session's owner (a browser token) or a
/// share link's viewer (a share token: read-only, cut when the link is
/// revoked or expires).
struct Access {
    claims: BrowserClaims,
    read_only: bool,
    share_id: Option<String>,
    /// The share link's label, shown in `presence`.
    label: String,
}

async fn authenticate(st: &AppState, token: &str) -> Result<Access, AuthError> {
    match st.auth.authenticate_browser(token).await {
        Ok(claims) => Ok(Access {
            claims,
            read_only: false,
            share_id: None,
            label: String::new(),
        }),
        Err(e) if e.status().is_server_error() => Err(e),
        Err(browser_err) => match st.auth.authenticate_share(token).await {
            Ok(s) => Ok(Access {
                claims: BrowserClaims {
                    typ: s.typ,
                    aud: s.aud,
                    sub: s.sub,
                    runner_id: s.runner_id,
                    session_id: s.session_id,
                    jti: s.jti,
                    iat: s.iat,
                    exp: s.exp,
                },
                read_only: true,
                share_id: Some(s.share_id),
                label: if s.label.is_empty() {
                    "share link".to_owned()
                } else {
                    s.label
                },
            }),
            Err(e) if e.status().is_server_error() => Err(e),
            // Neither: report the browser token's reason.
            Err(_) => Err(browser_err),
        },
    }
}

/// Resolves when a share viewer must go (its link was revoked or expired),
/// with the reason; never for the owner.
async fn share_ended(st: &AppState, access: &Access, watch: Option<&RunnerConnection>) -> String {
    let (Some(share), Some(watch)) = (access.share_id.as_deref(), watch) else {
        return std::future::pending().await;
    };
    let left = st.auth.share_expires_in_ms(share).await.unwrap_or(0);
    let token = watch.token();
    tokio::select! {
        () = token.cancelled() => "share link revoked".to_owned(),
        () = tokio::time::sleep(Duration::from_millis(u64::try_from(left).unwrap_or(0))) => "share link expired".to_owned(),
    }
}

async fn run(
    st: AppState,
    mut socket: WebSocket,
    record: SessionRecord,
    cancel: CancellationToken,
    access: Access,
) {
    let k = match read_hello(&mut socket, &cancel).await {
        Ok(k) => k,
        Err((code, reason)) => {
            info!(code, "browser refused before welcome");
            super::close(socket, code, &reason).await;
            return;
        }
    };
    let hub = st.hub.session(record.id);
    hub.note_head(record.last_seq);
    let reg = hub.add_browser(Arc::new(BrowserQueue::new()));
    debug!(
        browser = reg.id,
        last_seq = k,
        read_only = access.read_only,
        "browser hello"
    );
    let viewer = if access.read_only {
        access.label.clone()
    } else {
        match st.store.user_by_id(&access.claims.sub).await {
            Ok(Some(u)) => u.name,
            _ => "owner".to_owned(),
        }
    };
    hub.set_browser_viewer(reg.id, &viewer, access.read_only);
    let watch = access.share_id.as_deref().map(|id| st.auth.watch_share(id));
    let ending = serve(
        &st,
        &hub,
        &record,
        &mut socket,
        &reg,
        k,
        &cancel,
        &access,
        watch.as_ref(),
    )
    .await;
    hub.remove_browser(reg.id);
    match ending {
        Some((code, reason)) => {
            info!(code, "closing browser socket");
            super::close(socket, code, &reason).await;
        }
        None => debug!("browser disconnected"),
    }
}

async fn read_hello(
    socket: &mut WebSocket,
    cancel: &CancellationToken,
) -> Result<u64, (u16, String)> {
    let msg = tokio::select! {
        () = cancel.cancelled() => return Err((close::GOING_AWAY, "relay shutting down".into())),
        r = tokio::time::timeout(HELLO_TIMEOUT, socket.recv()) => r,
    };
    let text = match msg {
        Err(_) => return Err((close::PROTOCOL, "no hello within 10 s".into())),
        Ok(None) | Ok(Some(Err(_))) => return Err((close::NORMAL, "closed".into())),
        Ok(Some(Ok(Message::Text(t)))) => t,
        Ok(Some(Ok(_))) => return Err((close::PROTOCOL, "expected a hello text message".into())),
    };
    match serde_json::from_str::<BrowserToRelay>(text.as_str()) {
        Ok(BrowserToRelay::Hello { last_seq }) => Ok(last_seq),
        Ok(_) => Err((close::PROTOCOL, "expected hello first".into())),
        Err(e) => Err((close::PROTOCOL, format!("malformed hello: {e}"))),
    }
}

/// Sends the frames of `since`, returning the last sequence sent.
async fn send_stored(
    socket: &mut WebSocket,
    since: Since,
    mut sent: u64,
    limit: Duration,
) -> Result<u64, ()> {
    let frames: Vec<StoredFrame> = match since {
        Since::Frames(frames) => frames,
        Since::Snapshot { snapshot, frames } => {
            send_timed(socket, Message::Binary(snapshot.bytes), limit).await?;
            sent = snapshot.at_seq;
            frames
        }
    };
    for f in frames {
        if f.last_seq <= sent {
            continue;
        }
        send_timed(socket, Message::Binary(f.bytes), limit).await?;
        sent = f.last_seq;
    }
    Ok(sent)
}

type Ending = Option<(u16, String)>;

/// Tells this browser why a message was refused (the connection stays).
fn refuse(reg: &BrowserRegistration, code: &str, message: &str) {
    if let Ok(text) = serde_json::to_string(&RelayToBrowser::Error {
        code: code.to_owned(),
        message: message.to_owned(),
    }) {
        reg.queue.push_text(text);
    }
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    st: &AppState,
    hub: &SessionHub,
    record: &SessionRecord,
    socket: &mut WebSocket,
    reg: &BrowserRegistration,
    k: u64,
    cancel: &CancellationToken,
    access: &Access,
    watch: Option<&RunnerConnection>,
) -> Ending {
    let ended = share_ended(st, access, watch);
    tokio::pin!(ended);
    let id = record.id;
    let mut alive = Keepalive::new(st.keepalive);
    let limit = alive.send_limit();
    // The queue already collects live frames; read the store now.
    let (since, mut sent) = match st.store.since(id, k).await {
        Ok(s) => (s, k),
        // The browser is ahead of the store (the relay lost data, or the
        // database was replaced): serve it from scratch; its welcome's
        // head_seq below its last_seq tells it to reset.
        Err(StoreError::Ahead { .. }) | Err(StoreError::NoResumePoint { .. }) => {
            match st.store.since(id, 0).await {
                Ok(s) => (s, 0),
                Err(e) => {
                    error!(error = %e, "reading the store failed");
                    return Some((1011, "internal error".into()));
                }
            }
        }
        Err(e) => {
            error!(error = %e, "reading the store failed");
            return Some((1011, "internal error".into()));
        }
    };
    let stored_head = match &since {
        Since::Frames(f) => f.last().map_or(sent, |f| f.last_seq),
        Since::Snapshot { snapshot, frames } => {
            frames.last().map_or(snapshot.at_seq, |f| f.last_seq)
        }
    };
    let head_seq = stored_head.max(record.last_seq);
    let runner_online = hub.runner_online();
    let session = hub.info().unwrap_or_else(|| SessionInfo {
        id: id.to_string(),
        idea: record.idea.clone(),
        slot: record.slot.clone(),
        tmux_session: record.tmux_session.clone(),
        attach: String::new(),
        host: String::new(),
        runner_online,
        head_seq,
    });
    let welcome = RelayToBrowser::Welcome {
        session: SessionInfo {
            head_seq,
            runner_online,
            ..session
        },
        head_seq,
        runner_online,
        read_only: access.read_only,
        // What the runner takes beyond input and resize; none yet (the
        // runner side of `keys` and `tmux` comes with the runner daemon).
        features: Vec::new(),
    };
    let Ok(text) = serde_json::to_string(&welcome) else {
        return Some((1011, "internal error".into()));
    };
    if send_timed(socket, Message::Text(text.into()), limit)
        .await
        .is_err()
    {
        return None;
    }
    sent = match send_stored(socket, since, sent, limit).await {
        Ok(s) => s,
        Err(()) => return None,
    };

    loop {
        enum Event {
            Shutdown,
            ShareEnded(String),
            Tick,
            Out(Outgoing),
            Incoming(Option<Result<Message, axum::Error>>),
        }
        let event = tokio::select! {
            biased;
            () = cancel.cancelled() => Event::Shutdown,
            why = &mut ended => Event::ShareEnded(why),
            () = alive.tick() => Event::Tick,
            msg = socket.recv() => Event::Incoming(msg),
            item = reg.queue.pop() => Event::Out(item),
        };
        if matches!(event, Event::Incoming(Some(Ok(_)))) {
            alive.heard();
        }
        match event {
            Event::Shutdown => return Some((close::GOING_AWAY, "relay shutting down".into())),
            Event::ShareEnded(why) => return Some((close::SHARE_ENDED, why)),
            Event::Tick => {
                if alive.expired() {
                    info!("browser silent for three keepalive periods; dropping it");
                    return None;
                }
                // A runner that never answers snapshot_request must not leave
                // this browser frozen: catch it up from the store instead.
                // The wait is one keepalive period, checked at each tick.
                if reg.queue.awaiting_for().is_some_and(|d| d >= st.keepalive)
                    && reg.queue.resync_if_awaiting()
                {
                    warn!("no snapshot arrived in time; resyncing from the store");
                }
                if send_timed(socket, Message::Ping(bytes::Bytes::new()), limit)
                    .await
                    .is_err()
                {
                    return None;
                }
            }
            Event::Out(Outgoing::Resync) => {
                debug!(sent, "resync from the store");
                match st.store.since(id, sent).await {
                    Ok(s) => match send_stored(socket, s, sent, limit).await {
                        Ok(s) => sent = s,
                        Err(()) => return None,
                    },
                    Err(e) => {
                        error!(error = %e, "resync from the store failed");
                        return Some((1011, "internal error".into()));
                    }
                }
            }
            Event::Out(Outgoing::Text(text)) => {
                if send_timed(socket, Message::Text(text.into()), limit)
                    .await
                    .is_err()
                {
                    return None;
                }
            }
            Event::Out(Outgoing::Frame(f)) => {
                let fresh = match f.kind {
                    FrameKind::Snapshot => f.last_seq > sent,
                    FrameKind::Batch => f.last_seq > sent,
                };
                if !fresh {
                    continue;
                }
                if f.kind == FrameKind::Batch && f.first_seq > sent + 1 {
                    // Only reachable if a frame was published without being
                    // stored first; fill the hole from the store.
                    warn!(
                        sent,
                        first_seq = f.first_seq,
                        "gap in live frames; refilling from the store"
                    );
                    match st.store.since(id, sent).await {
                        Ok(s) => match send_stored(socket, s, sent, limit).await {
                            Ok(s) => sent = s,
                            Err(()) => return None,
                        },
                        Err(e) => {
                            error!(error = %e, "refilling from the store failed");
                            return Some((1011, "internal error".into()));
                        }
                    }
                    if f.last_seq <= sent {
                        continue;
                    }
                }
                if send_timed(socket, Message::Binary(f.bytes), limit)
                    .await
                    .is_err()
                {
                    return None;
                }
                sent = f.last_seq;
            }
            Event::Incoming(None) => return None,
            Event::Incoming(Some(Err(e))) => {
                if super::is_too_big(&e) {
                    warn!("browser message too big");
                    return Some((close::TOO_BIG, "message too big (limit 1 MiB)".into()));
                }
                debug!(error = %e, "browser socket error");
                return None;
            }
            Event::Incoming(Some(Ok(msg))) => match msg {
                Message::Text(text) => {
                    match serde_json::from_str::<BrowserToRelay>(text.as_str()) {
                        Ok(
                            BrowserToRelay::Input { .. }
                            | BrowserToRelay::Keys { .. }
                            | BrowserToRelay::Tmux(_)
                            | BrowserToRelay::Resize { .. },
                        ) if access.read_only => {
                            // A share link's viewer watches; nothing it sends
                            // reaches the runner or sizes tmux.
                            refuse(reg, "read_only", "this is a read-only share link");
                        }
                        Ok(BrowserToRelay::View { visible, fit }) => {
                            hub.set_browser_view(reg.id, visible, fit);
                        }
                        Ok(BrowserToRelay::Keys { keys, .. })
                            if !protocol::control::keys_are_valid(&keys) =>
                        {
                            return Some((
                                close::PROTOCOL,
                                "keys: 1..=256 names of 1..=32 bytes, no control characters".into(),
                            ));
                        }
                        Ok(BrowserToRelay::Tmux(op)) if !op.is_valid() => {
                            return Some((close::PROTOCOL, "tmux action out of range".into()));
                        }
                        Ok(BrowserToRelay::Keys { .. } | BrowserToRelay::Tmux(_)) => {
                            hub.touch_browser(reg.id);
                            refuse(
                                reg,
                                "unsupported",
                                "this session's runner does not take keys or tmux actions from the page",
                            );
                        }
                        Ok(BrowserToRelay::Input { pane, data }) => {
                            hub.touch_browser(reg.id);
                            let Some(tx) = hub.runner_sender() else {
                                debug!(
                                    bytes = data.len(),
                                    "input while the runner is offline; dropped"
                                );
                                continue;
                            };
                            // Bounded: a browser typing faster than the runner
                            // takes input waits here, alone.
                            let _ = tx
                                .send(ToRunner::Control(RelayToRunner::Input { pane, data }))
                                .await;
                        }
                        Ok(BrowserToRelay::Resize { cols, rows }) => {
                            if !resize_is_valid(cols, rows) {
                                return Some((
                                    close::PROTOCOL,
                                    format!("resize {cols}x{rows} out of range 1..=1000"),
                                ));
                            }
                            hub.set_browser_size(reg.id, cols, rows);
                        }
                        Ok(BrowserToRelay::Hello { .. }) => {
                            return Some((close::PROTOCOL, "hello sent twice".into()));
                        }
                        Ok(_) => return Some((close::PROTOCOL, "unexpected message type".into())),
                        Err(e) => {
                            warn!(bytes = text.len(), "malformed browser message");
                            return Some((
                                close::PROTOCOL,
                                format!("malformed control message: {e}"),
                            ));
                        }
                    }
                }
                Message::Binary(b) => {
                    warn!(bytes = b.len(), "binary message from a browser");
                    return Some((close::PROTOCOL, "browsers send text messages only".into()));
                }
                Message::Close(_) => return None,
                Message::Ping(_) | Message::Pong(_) => {}
            },
        }
    }
}
