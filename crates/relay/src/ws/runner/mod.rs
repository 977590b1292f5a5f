//! `GET /api/runner/ws`: one WebSocket per runner daemon, multiplexing
//! every terminal session it serves as a channel (protocol.md §4,
//! protocol 2).
//!
//! The handshake is refused with 401 before the upgrade unless the Bearer
//! runner token is valid and not revoked; a socket beyond the account's,
//! the address's or the relay's cap is upgraded and closed at once (4429,
//! 1013). After `hello` (v = 2, within 10 s) and `welcome`, the loop here
//! reads runner messages and writes what the hub, the commands and the
//! channels queue for the runner; `channels.rs` owns what happens per
//! channel (open, frames, close). The connection ends with 4001 when a
//! newer connection of the same runner replaces it, 1008 when the runner
//! is revoked, 4408 when it sent nothing for 2.5 heartbeats, 4000 on a
//! protocol error. This task owns the runner's socket; it never waits on a
//! browser.

mod channels;

use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use protocol::control::{MAX_RUNNER_MESSAGE, close};
use protocol::runner::tunnel::channel_stream;
use protocol::runner::{Hello, RUNNER_PROTOCOL_VERSION, RelayMsg, RunnerMsg, split_channel};
use store::NewEvent;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, warn};

use super::send_timed;
use crate::auth::{ClientAddr, RunnerConnection, RunnerIdentity, bearer_token, now_ms};
use crate::preview::tunnel::{RunnerTunnels, TunnelWire};
use crate::runners::{Connection, RunnerDetails};
use crate::state::AppState;
use channels::Channels;

/// Longest accepted host, version or tmux version in `hello`.
const MAX_HELLO_FIELD: usize = 512;

/// The upgrade handler.
pub async fn runner_ws(
    State(st): State<AppState>,
    ClientAddr(addr): ClientAddr,
    in_process: Option<Extension<super::InProcess>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(token) = bearer_token(&headers) else {
        return (StatusCode::UNAUTHORIZED, "missing Bearer runner token\n").into_response();
    };
    let claims = match st.auth.authenticate_runner(token).await {
        Ok(c) => c,
        Err(e) if e.status() == StatusCode::SERVICE_UNAVAILABLE => {
            warn!(error = %e, "runner handshake: database unavailable");
            return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response();
        }
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
    let guard = st.tracker.token();
    let span = info_span!("runner_ws", runner = %claims.runner_id);
    let slot = match st
        .auth
        .sockets()
        .acquire_cluster_wide(&claims.user_id, addr)
        .await
    {
        Ok(slot) => slot,
        Err(refused) => {
            let (code, reason) = (
                refused.close_code(),
                refused.reason(st.auth.sockets().caps()),
            );
            info!(code, cap = ?refused, "runner socket refused: cap reached");
            return ws.on_upgrade(move |socket| {
                async move {
                    let _guard = guard;
                    super::close(socket, code, &reason).await;
                }
                .instrument(span)
            });
        }
    };
    // Registered before the upgrade so a revocation racing the handshake
    // still cuts this connection.
    let revocation = st.auth.connections().register(&claims.runner_id);
    let cancel = st.shutdown.child_token();
    ws.max_message_size(MAX_RUNNER_MESSAGE + 4)
        .max_frame_size(MAX_RUNNER_MESSAGE + 4)
        .max_write_buffer_size(4 * 1024 * 1024)
        .read_buffer_size(if in_process.is_some() {
            IN_PROCESS_READ_BUFFER
        } else {
            RUNNER_READ_BUFFER
        })
        .on_upgrade(move |socket| {
            async move {
                let _guard = guard;
                let _slot = slot;
                run(st, socket, claims, revocation, cancel).await;
            }
            .instrument(span)
        })
}

/// Bytes one read of a runner socket takes at most. tungstenite zero-fills
/// this much of its buffer on every read attempt, and a keystroke's echo
/// is two attempts (the frame, then `WouldBlock`): the default 128 KiB
/// made that 256 KiB of memset per echoed key. A flood's frames are a few
/// KiB to a few tens of KiB compressed, so they still take one read or two.
const RUNNER_READ_BUFFER: usize = 32 * 1024;

/// The same for `up`'s runner in this process ([`super::InProcess`]): a
/// read of its in-memory stream copies bytes without a system call, so
/// reading a flood's frame in 4 KiB pieces costs nothing and an echoed
/// key's frame no longer zero-fills 64 KiB (callgrind).
const IN_PROCESS_READ_BUFFER: usize = 4 * 1024;

/// How the connection ends: the close code and reason to send (`None`:
/// the peer closed or the socket failed).
pub(crate) type Ending = Option<(u16, String)>;

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
    let runner_id = claims.runner_id.clone();
    let user_id = claims.user_id.clone();
    let mut conn = st.runners.connect(
        &runner_id,
        RunnerDetails {
            user_id: user_id.clone(),
            host: hello.host.clone(),
            version: hello.version.clone(),
            tmux_version: hello.tmux_version.clone(),
            features: hello.features.clone(),
        },
    );
    if let Err(e) = st
        .store
        .set_runner_versions(&runner_id, &hello.host, &hello.version, &hello.tmux_version)
        .await
    {
        warn!(error = %e, "recording the runner's versions failed");
    }
    if let Err(e) = st.store.touch_runner(&runner_id, now_ms()).await {
        warn!(error = %e, "recording the runner's last seen time failed");
    }
    info!(
        conn = conn.conn,
        version = %hello.version,
        tmux = %hello.tmux_version,
        "runner connected"
    );
    crate::notify::record(
        &st,
        NewEvent {
            user_id: &user_id,
            at: now_ms(),
            kind: "runner_connected",
            runner_id: &runner_id,
            runner_name: &claims.name,
            session_id: None,
            idea: None,
            slot: None,
            detail: (!hello.host.is_empty()).then_some(hello.host.as_str()),
        },
    )
    .await;
    st.notifier.runner(&user_id, &runner_id, true);

    let welcome = RelayMsg::Welcome {
        runner_id: runner_id.clone(),
        heartbeat_ms: u64::try_from(st.heartbeat.as_millis()).unwrap_or(u64::MAX),
        features: vec![protocol::runner::FEATURE_REBASE.to_owned()],
    };
    let mut channels = Channels::new(&st, &claims, &hello, &conn);
    let (tunnels, mut tunnel_rx) = st.previews.attach(&runner_id, conn.conn);
    if !hello
        .features
        .iter()
        .any(|f| f == protocol::runner::FEATURE_TUNNEL)
    {
        // A runner older than previews: none are routed to it (a request
        // gets 502 at once instead of waiting for a tunnel never opened).
        st.previews.detach(&runner_id, conn.conn);
    }
    let ending = if send_json(&mut socket, &welcome, st.keepalive * 6)
        .await
        .is_err()
    {
        None
    } else {
        pump(
            &st,
            &mut socket,
            &mut conn,
            &mut channels,
            (&tunnels, &mut tunnel_rx),
            &revocation,
            &cancel,
        )
        .await
    };
    st.previews.detach(&runner_id, conn.conn);
    let replaced = conn.replaced.is_cancelled();
    channels.detach_all().await;
    let current = st.runners.disconnect(&runner_id, conn.conn);
    drop(revocation);
    if let Err(e) = st.auth.runner_disconnected(&runner_id).await {
        warn!(error = %e, "recording the runner's last seen time failed");
    }
    if current && !replaced {
        let why = ending.as_ref().map(|(_, r)| r.as_str());
        crate::notify::record(
            &st,
            NewEvent {
                user_id: &user_id,
                at: now_ms(),
                kind: "runner_disconnected",
                runner_id: &runner_id,
                runner_name: &claims.name,
                session_id: None,
                idea: None,
                slot: None,
                detail: why,
            },
        )
        .await;
        st.notifier.runner(&user_id, &runner_id, false);
        st.notifier.sessions(&user_id);
        if let Err(e) = crate::jobs::on_runner_gone(&st, &runner_id).await {
            warn!(error = %e, "marking the runner's jobs lost failed");
        }
    }
    match ending {
        Some((code, reason)) => {
            info!(code, reason = %reason, "closing runner socket");
            super::close(socket, code, &reason).await;
        }
        None => info!("runner disconnected"),
    }
}

async fn read_hello(
    socket: &mut WebSocket,
    cancel: &CancellationToken,
) -> Result<Hello, (u16, String)> {
    let text = super::first_text(socket, cancel, "16 MiB").await?;
    // The version first, so that a runner of another protocol learns why.
    let v = serde_json::from_str::<serde_json::Value>(text.as_str())
        .ok()
        .and_then(|v| v.get("v").and_then(serde_json::Value::as_u64));
    if let Some(v) = v
        && v != u64::from(RUNNER_PROTOCOL_VERSION)
    {
        return Err((
            close::PROTOCOL,
            format!(
                "unsupported protocol version {v} (this relay speaks {RUNNER_PROTOCOL_VERSION})"
            ),
        ));
    }
    let hello = match serde_json::from_str::<RunnerMsg>(text.as_str()) {
        Ok(RunnerMsg::Hello(h)) => h,
        Ok(_) => return Err((close::PROTOCOL, "expected hello first".into())),
        Err(e) => return Err((close::PROTOCOL, format!("malformed hello: {e}"))),
    };
    let fields = [&hello.host, &hello.version, &hello.tmux_version];
    if fields
        .iter()
        .any(|f| f.len() > MAX_HELLO_FIELD || f.chars().any(char::is_control))
        || hello.features.len() > 32
        || hello
            .features
            .iter()
            .any(|f| f.len() > 64 || f.chars().any(char::is_control))
    {
        return Err((
            close::PROTOCOL,
            "a hello field is too long or holds control characters".into(),
        ));
    }
    Ok(hello)
}

pub(crate) async fn send_json<T: serde::Serialize>(
    socket: &mut WebSocket,
    msg: &T,
    limit: Duration,
) -> Result<(), ()> {
    let text = serde_json::to_string(msg).map_err(|_| ())?;
    send_timed(socket, Message::Text(text.into()), limit).await
}

async fn pump(
    st: &AppState,
    socket: &mut WebSocket,
    conn: &mut Connection,
    channels: &mut Channels,
    (tunnels, tunnel_rx): (
        &RunnerTunnels,
        &mut tokio::sync::mpsc::UnboundedReceiver<TunnelWire>,
    ),
    revocation: &RunnerConnection,
    cancel: &CancellationToken,
) -> Ending {
    let heartbeat = st.heartbeat;
    let silence = heartbeat * 5 / 2;
    // Fine-grained, so that silence is noticed within a tenth of a
    // heartbeat of the 2.5 × limit (issue 9: offline within 5 s).
    let mut ticks = tokio::time::interval(heartbeat / 10);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heard = tokio::time::Instant::now();
    let mut last_ping = tokio::time::Instant::now();
    let limit = st.keepalive * 6;
    loop {
        enum Event {
            Shutdown,
            Replaced,
            Revoked,
            Tick,
            Out(Option<RelayMsg>),
            Tunnel(Option<TunnelWire>),
            Answer(Result<store::Appended, store::StoreError>),
            Incoming(Option<Result<Message, axum::Error>>),
        }
        let (answers, readable) = (channels.has_in_flight(), channels.can_read());
        let event = tokio::select! {
            biased;
            () = cancel.cancelled() => Event::Shutdown,
            () = conn.replaced.cancelled() => Event::Replaced,
            () = revocation.cancelled() => Event::Revoked,
            _ = ticks.tick() => Event::Tick,
            msg = conn.rx.recv() => Event::Out(msg),
            msg = tunnel_rx.recv() => Event::Tunnel(msg),
            // Stored frames are acked before more are read.
            answer = channels.next_answer(), if answers => Event::Answer(answer),
            // Not while too many frames await the store: back-pressure.
            msg = socket.recv(), if readable => Event::Incoming(msg),
        };
        if matches!(event, Event::Incoming(Some(Ok(_)))) {
            last_heard = tokio::time::Instant::now();
        }
        match event {
            Event::Shutdown => return Some((close::GOING_AWAY, "relay shutting down".into())),
            Event::Replaced => {
                return Some((
                    close::REPLACED,
                    "replaced: the same runner connected again".into(),
                ));
            }
            Event::Revoked => return Some((close::POLICY, "runner revoked".into())),
            Event::Tick => {
                if !channels.can_read() {
                    // Not reading (the store is behind) is not silence.
                    last_heard = tokio::time::Instant::now();
                }
                if last_heard.elapsed() > silence {
                    info!(
                        silent_ms = last_heard.elapsed().as_millis(),
                        "runner silent for 2.5 heartbeats: offline"
                    );
                    return Some((
                        close::TIMEOUT,
                        format!("no heartbeat for {} ms", silence.as_millis()),
                    ));
                }
                if last_heard.elapsed() >= heartbeat && last_ping.elapsed() >= heartbeat {
                    last_ping = tokio::time::Instant::now();
                    if send_timed(socket, Message::Ping(Bytes::new()), limit)
                        .await
                        .is_err()
                    {
                        return None;
                    }
                }
            }
            // The registry holds a sender while this connection is current.
            Event::Out(None) => return Some((close::REPLACED, "replaced".into())),
            Event::Out(Some(msg)) => {
                if send_json(socket, &msg, limit).await.is_err() {
                    return None;
                }
                tracing::trace!(target: "latency", stage = "relay_msg_sent");
            }
            // The tunnels hold a sender while this task runs.
            Event::Tunnel(None) => {}
            Event::Tunnel(Some(TunnelWire::Msg(msg))) => {
                if send_json(socket, &msg, limit).await.is_err() {
                    return None;
                }
            }
            Event::Tunnel(Some(TunnelWire::Data(bytes))) => {
                if send_timed(socket, Message::Binary(bytes), limit)
                    .await
                    .is_err()
                {
                    return None;
                }
            }
            Event::Answer(answer) => {
                if let Some(end) = channels.on_answer(socket, answer, limit).await {
                    return Some(end);
                }
            }
            Event::Incoming(None) => return None,
            Event::Incoming(Some(Err(e))) => {
                if let Some(ending) = super::error_close(&e, "16 MiB") {
                    warn!(code = ending.0, "bad runner message");
                    return Some(ending);
                }
                debug!(error = %e, "runner socket error");
                return None;
            }
            Event::Incoming(Some(Ok(msg))) => match msg {
                Message::Binary(bytes) => {
                    let stream = split_channel(&bytes)
                        .ok()
                        .and_then(|(ch, data)| Some((channel_stream(ch)?, data)));
                    if let Some((stream, data)) = stream {
                        tunnels.on_data(stream, data);
                        continue;
                    }
                    if let Some(end) = channels.on_binary(socket, bytes, limit).await {
                        return Some(end);
                    }
                }
                Message::Text(text) => match serde_json::from_str::<RunnerMsg>(text.as_str()) {
                    Ok(RunnerMsg::Hello(_)) => {
                        return Some((close::PROTOCOL, "hello sent twice".into()));
                    }
                    Ok(
                        msg @ (RunnerMsg::TunnelOpened { .. }
                        | RunnerMsg::TunnelCredit { .. }
                        | RunnerMsg::TunnelEof { .. }
                        | RunnerMsg::TunnelClose { .. }),
                    ) => tunnels.on_msg(&msg),
                    Ok(msg) => {
                        if let Some(end) = channels.on_text(socket, msg, limit).await {
                            return Some(end);
                        }
                    }
                    Err(e) => {
                        warn!(bytes = text.len(), "malformed runner message");
                        return Some((close::PROTOCOL, format!("malformed control message: {e}")));
                    }
                },
                Message::Close(_) => return None,
                Message::Ping(_) | Message::Pong(_) => {}
            },
        }
    }
}
