//! `GET /api/ws/browser/{session_id}`: a browser watching one terminal
//! session (protocol.md §5).
//!
//! Before the upgrade: the `Origin` must equal the relay's public origin,
//! the browser token (subprotocol `bearer.<token>`) must be valid, name
//! this session, come from a login that is still live and be unused (it is
//! consumed here: one token, one socket), and the session must belong to
//! the token's user. A socket past the account's, the address's or the
//! relay's cap is upgraded and closed at once (4429 or 1013).
//!
//! While open, the socket ends with a close frame when the login that
//! opened it ends (4401: logout here, or seen in the store at a keepalive
//! tick when another relay process ended it), when the browser stops
//! answering pings or reading (4408), and on a bad message (4000, 1007 for
//! text that is not UTF-8, 1009).
//!
//! After `hello{last_seq: k}` the browser is registered with the hub
//! *first* (its queue collects live frames from then on), then the store is
//! read (`since(k)`), then the queue is drained while dropping every frame
//! the store already supplied: no gap and no duplicate across the switch.
//! The queue is bounded; on overflow the hub moves the browser to the next
//! snapshot (see `hub.rs`). Resume is bounded too (issue 16): when the
//! store's answer outweighs a snapshot (by [`RESUME_MARGIN`]) and a runner
//! serves the session, the browser is sent a fresh snapshot, asked of the
//! runner, instead. This task owns the browser's socket.

use std::sync::Arc;

use bytes::Bytes;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;
use protocol::control::{
    BROWSER_SUBPROTOCOL, BrowserToRelay, MAX_BROWSER_MESSAGE, RelayToBrowser, SessionInfo, TmuxOp,
    bearer_from_subprotocols, close, resize_is_valid,
};
use protocol::runner::{FEATURE_KEYS, FEATURE_TMUX, RelayMsg};
use protocol::wire::FrameKind;
use store::{SessionRecord, Since, SinceCost, StoreError, StoredFrame, TerminalSessionId};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, trace, warn};

use std::time::Duration;

use super::Keepalive;
use crate::auth::{AuthError, BrowserClaims, ClientAddr, LoginWatch, RunnerConnection};
use crate::hub::{BrowserQueue, BrowserRegistration, Outgoing, Scope, SessionHub};
use crate::metrics::Metrics;
use crate::state::AppState;

/// The upgrade handler.
pub async fn browser_ws(
    State(st): State<AppState>,
    ClientAddr(addr): ClientAddr,
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
        Err(e) if e.status().is_server_error() => return server_error(e),
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
        Err(e) => return server_error(AuthError::Store(e)),
    };
    let guard = st.tracker.token();
    let cancel = st.shutdown.child_token();
    let span = info_span!("browser_ws", session = id);
    let slot = match st
        .auth
        .sockets()
        .acquire_cluster_wide(&claims.sub, addr)
        .await
    {
        Ok(slot) => slot,
        Err(refused) => {
            let (code, reason) = (
                refused.close_code(),
                refused.reason(st.auth.sockets().caps()),
            );
            info!(code, cap = ?refused, "browser socket refused: cap reached");
            // A browser cannot read a refused handshake's status: upgrade,
            // then close with the code.
            return ws
                .protocols([BROWSER_SUBPROTOCOL])
                .on_upgrade(move |socket| {
                    async move {
                        let _guard = guard;
                        super::close(socket, code, &reason).await;
                    }
                    .instrument(span)
                });
        }
    };
    match st.auth.consume_browser_token(claims).await {
        Ok(()) => {}
        Err(e) if e.status().is_server_error() => return server_error(e),
        Err(_) => {
            info!("browser token refused: used already");
            return (StatusCode::UNAUTHORIZED, "browser token used already\n").into_response();
        }
    }
    // A share link's viewer is bound to the link, not to a login.
    let login = (!access.read_only).then(|| st.auth.logins().watch(&claims.sub, &claims.login));
    ws.protocols([BROWSER_SUBPROTOCOL])
        .max_message_size(MAX_BROWSER_MESSAGE)
        .max_frame_size(MAX_BROWSER_MESSAGE)
        // One frame (≤ 16 MiB) plus control messages: writes wait for the
        // socket, so this bounds the socket's own buffering.
        .max_write_buffer_size(2 * protocol::control::MAX_RUNNER_MESSAGE)
        // tungstenite zero-fills its read buffer up to this size on every
        // read attempt, and this task polls the socket on every frame it
        // sends: the default 128 KiB made that memset 75 % of the relay's
        // instructions at 300 browsers (callgrind, README "Fan-out").
        // Browsers send small messages; bigger ones take more reads.
        .read_buffer_size(BROWSER_READ_BUFFER)
        .on_upgrade(move |socket| {
            async move {
                let _guard = guard;
                let _slot = slot;
                run(st, socket, record, login, cancel, access).await;
            }
            .instrument(span)
        })
}

/// 503 when the database is unavailable, else 500 (logged).
fn server_error(e: AuthError) -> Response {
    if e.status() == StatusCode::SERVICE_UNAVAILABLE {
        warn!(error = %e, "browser handshake: database unavailable");
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
    } else {
        error!(error = %e, "browser handshake failed");
        (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
    }
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
                    login: String::new(),
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
    login: Option<LoginWatch>,
    cancel: CancellationToken,
    access: Access,
) {
    let (k, epoch) = match read_hello(&mut socket, &cancel).await {
        Ok(hello) => hello,
        Err((code, reason)) => {
            info!(code, "browser refused before welcome");
            super::close(socket, code, &reason).await;
            return;
        }
    };
    let hub = st.hub.session(record.id);
    hub.note_head(record.last_seq);
    let reg = hub.add_browser(Arc::new(BrowserQueue::new()));
    // Cluster mode: frames committed on other relays reach the hub from
    // here on (before the store is read below).
    let _watch = match &st.cluster {
        Some(c) => Some(c.watch(&hub, &record, &cancel).await),
        None => None,
    };
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
        &login,
        &mut socket,
        &reg,
        k,
        epoch.as_deref(),
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
) -> Result<(u64, Option<String>), (u16, String)> {
    let text = super::first_text(socket, cancel, "1 MiB").await?;
    match serde_json::from_str::<BrowserToRelay>(text.as_str()) {
        Ok(BrowserToRelay::Hello { last_seq, epoch }) => Ok((last_seq, epoch)),
        Ok(_) => Err((close::PROTOCOL, "expected hello first".into())),
        Err(e) => Err((close::PROTOCOL, format!("malformed hello: {e}"))),
    }
}

/// How many bytes beyond a snapshot's size a resuming browser may be sent
/// from the store before the relay asks the runner for a fresh snapshot
/// instead.
pub const RESUME_MARGIN: u64 = 32 * 1024;

/// Whether the store's answer to a resuming browser outweighs a snapshot
/// (the latest stored one's size standing for a fresh one's) by more than
/// [`RESUME_MARGIN`]. Without a stored snapshot there is nothing to weigh.
fn outweighs_a_snapshot(cost: &SinceCost) -> bool {
    cost.snapshot_bytes
        .is_some_and(|snap| cost.bytes > snap.saturating_add(RESUME_MARGIN))
}

/// Bounded resume (issue 16): when what the store would send a browser at
/// `k` outweighs a snapshot and a runner serves the session, the browser's
/// queue drops its frames and awaits the next snapshot, which the runner
/// is asked for; returns the stored head and the bytes the store would
/// have sent (a snapshot that weighs more is dropped for those when it
/// comes: what the browser receives is the smaller). The browser sends nothing
/// from the store: the snapshot, then the live frames after it, follow.
/// If the runner does not answer in time or goes away, the queue's
/// `Resync` catches the browser up from the store as before (an offline
/// runner's session is served from the store as before).
async fn resume_from_fresh_snapshot(
    st: &AppState,
    hub: &SessionHub,
    reg: &BrowserRegistration,
    id: TerminalSessionId,
    k: u64,
) -> Option<(u64, u64)> {
    if !hub.runner_online() {
        return None;
    }
    let cost = match st.store.since_cost(id, k).await {
        Ok(c) => c,
        // `since` below refuses or answers it the usual way.
        Err(e) => {
            debug!(error = %e, "no resume cost");
            return None;
        }
    };
    if !outweighs_a_snapshot(&cost) {
        return None;
    }
    reg.queue.await_snapshot();
    if hub.request_snapshot() {
        st.metrics.resume_snapshots.inc();
        debug!(
            k,
            missed_bytes = cost.bytes,
            snapshot_bytes = cost.snapshot_bytes,
            "resuming from a fresh snapshot"
        );
    } else {
        // The runner left meanwhile: from the store after all.
        reg.queue.resync_if_awaiting();
    }
    Some((cost.head, cost.bytes))
}

/// Sends what the store has after `sent`; returns the last sequence sent.
async fn catch_up(
    st: &AppState,
    socket: &mut WebSocket,
    id: TerminalSessionId,
    sent: u64,
    limit: Duration,
) -> Result<u64, Ending> {
    match st.store.since(id, sent).await {
        Ok(s) => send_stored(&st.metrics, socket, s, sent, limit).await,
        // The browser was sent records the store does not hold (yet): the
        // runner resends them as they were, or says `rebase` and the hub
        // resets this browser.
        Err(StoreError::Ahead { k, head }) => {
            debug!(k, head, "browser ahead of the store; nothing to catch up");
            Ok(sent)
        }
        Err(e) => {
            error!(error = %e, "catching up from the store failed");
            Err(Some((close::INTERNAL, "internal error".into())))
        }
    }
}

/// [`catch_up`], then the frames browsers were sent before their commit
/// that the store does not hold yet ([`SessionHub::publish_unstored`]).
async fn catch_up_all(
    st: &AppState,
    hub: &SessionHub,
    socket: &mut WebSocket,
    id: TerminalSessionId,
    sent: u64,
    limit: Duration,
) -> Result<u64, Ending> {
    let mut sent = catch_up(st, socket, id, sent, limit).await?;
    for f in hub.unstored_after(sent) {
        if f.first_seq > sent + 1 {
            break;
        }
        send_frame(&st.metrics, socket, f.bytes, limit).await?;
        sent = f.last_seq;
    }
    Ok(sent)
}

/// Sends the frames of `since`, returning the last sequence sent.
async fn send_stored(
    metrics: &Metrics,
    socket: &mut WebSocket,
    since: Since,
    mut sent: u64,
    limit: Duration,
) -> Result<u64, Ending> {
    let frames: Vec<StoredFrame> = match since {
        Since::Frames(frames) => frames,
        Since::Snapshot { snapshot, frames } => {
            send_frame(metrics, socket, snapshot.bytes, limit).await?;
            sent = snapshot.at_seq;
            frames
        }
    };
    for f in frames {
        if f.last_seq <= sent {
            continue;
        }
        send_frame(metrics, socket, f.bytes, limit).await?;
        sent = f.last_seq;
    }
    Ok(sent)
}

/// [`send`]s one frame and counts it.
async fn send_frame(
    metrics: &Metrics,
    socket: &mut WebSocket,
    bytes: Bytes,
    limit: Duration,
) -> Result<(), Ending> {
    let len = bytes.len();
    send(socket, Message::Binary(bytes), limit).await?;
    trace!(target: "latency", stage = "relay_frame_sent");
    metrics.frame_out(len);
    Ok(())
}

/// How a browser socket ends: `Some((code, reason))` gets a close frame,
/// `None` is a connection that is gone already.
type Ending = Option<(u16, String)>;

/// Sends `msg`, giving up after `limit`: a browser that stopped reading
/// gets 4408 (its close frame still goes out if the socket's buffers have
/// room; [`super::close`] bounds that attempt too). A failed send means the
/// connection is gone.
async fn send(socket: &mut WebSocket, msg: Message, limit: Duration) -> Result<(), Ending> {
    match tokio::time::timeout(limit, socket.send(msg)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(None),
        Err(_) => Err(not_reading(limit)),
    }
}

/// The ending of a browser whose send took over `limit` (4408).
fn not_reading(limit: Duration) -> Ending {
    info!(secs = limit.as_secs(), "browser not reading; closing");
    Some((
        close::TIMEOUT,
        format!("not reading: a send took over {} s", limit.as_secs()),
    ))
}

/// The read buffer of a browser socket (see the upgrade in [`browser_ws`]).
const BROWSER_READ_BUFFER: usize = 4096;

/// How many queued items one wake of a browser task writes before it
/// flushes (and looks at the socket's other events again).
const MAX_BATCH: usize = 64;

/// From this many browsers of one session on this relay, each browser
/// task waits [`PACE`] after a write before it takes the next frames, so
/// that a busy pane's frames (one every few milliseconds) go out several
/// to a write. Every write to a browser costs the relay a syscall and
/// the loopback or network stack behind it, per browser: without pacing
/// one pane at 200 frames/s to 1,000 browsers is 200,000 writes a second
/// (README, "Fan-out"). Adds at most `PACE` to the delay of such a crowd;
/// smaller audiences get every frame at once.
const PACE_FROM: usize = 200;
/// See [`PACE_FROM`].
const PACE: Duration = Duration::from_millis(20);

/// The shortest time between two `presence` messages to one browser. A
/// session's presence changes with every browser that joins or leaves:
/// sending each change to every browser made a crowd's joins quadratic
/// (1,000 sockets took 6–7 s to join, README "Fan-out"). Each browser
/// sends the latest presence, then waits this long before it sends the
/// next latest, so a burst of N joins costs each browser a few writes,
/// not N, and the page is at most this late.
const PRESENCE_EVERY: Duration = Duration::from_millis(250);

/// Completes at `when`, never when `None`.
async fn sleep_until_some(when: Option<tokio::time::Instant>) {
    match when {
        Some(when) => tokio::time::sleep_until(when).await,
        None => std::future::pending().await,
    }
}

/// Writes `first` and whatever else the queue holds (up to [`MAX_BATCH`]
/// items) to the socket's buffer, then flushes once: one write for the
/// lot. Frames the browser has are skipped; a gap, a resync or a fresh
/// snapshot that outweighs the missed records catches up from the store
/// (those sends flush on their own, in order). The caller bounds the
/// whole with the send limit.
#[allow(clippy::too_many_arguments)]
async fn deliver(
    st: &AppState,
    hub: &SessionHub,
    socket: &mut WebSocket,
    reg: &BrowserRegistration,
    id: TerminalSessionId,
    first: Outgoing,
    sent: &mut u64,
    resume_limit: &mut Option<u64>,
    limit: Duration,
) -> Result<(), Ending> {
    let mut next = Some(first);
    let mut n = 0;
    let mut fed = false;
    while let Some(item) = next.take() {
        match item {
            Outgoing::Resync => {
                debug!(sent = *sent, "resync from the store");
                *resume_limit = None;
                *sent = catch_up_all(st, hub, socket, id, *sent, limit).await?;
            }
            Outgoing::Text(text) => {
                socket
                    .feed(Message::Text(text.into()))
                    .await
                    .map_err(|_| None)?;
            }
            Outgoing::Frame(f) => {
                if f.last_seq <= *sent {
                    // Covered by what the store supplied.
                } else if f.kind == FrameKind::Snapshot
                    && let Some(missed) = resume_limit.take()
                    && u64::try_from(f.bytes.len()).unwrap_or(u64::MAX) > missed
                {
                    // The snapshot asked for on resume weighs more than the
                    // records missed: those, from the store, after all.
                    debug!(
                        snapshot_bytes = f.bytes.len(),
                        missed, "fresh snapshot outweighs the missed records"
                    );
                    *sent = catch_up_all(st, hub, socket, id, *sent, limit).await?;
                } else {
                    if f.kind == FrameKind::Batch && f.first_seq > *sent + 1 {
                        // A frame this browser skipped (awaiting a snapshot)
                        // or one the relay lost: fill the hole from the
                        // store and the frames not stored yet.
                        warn!(
                            sent = *sent,
                            first_seq = f.first_seq,
                            "gap in live frames; refilling from the store"
                        );
                        *sent = catch_up_all(st, hub, socket, id, *sent, limit).await?;
                    }
                    if f.last_seq > *sent {
                        let len = f.bytes.len();
                        socket
                            .feed(Message::Binary(f.bytes))
                            .await
                            .map_err(|_| None)?;
                        st.metrics.frame_out(len);
                        *sent = f.last_seq;
                        fed = true;
                    }
                }
            }
        }
        n += 1;
        if n < MAX_BATCH {
            next = reg.queue.try_pop();
        }
    }
    socket.flush().await.map_err(|_| None)?;
    if fed {
        trace!(target: "latency", stage = "relay_frame_sent");
    }
    Ok(())
}

/// Completes when the owner's login ends; never for a share viewer.
async fn logged_out(login: Option<&LoginWatch>) {
    match login {
        Some(l) => l.ended().await,
        None => std::future::pending().await,
    }
}

/// Whether the login behind the socket is still live in the store (always
/// for a share viewer, which no login holds).
async fn login_is_live(
    st: &AppState,
    login: &Option<LoginWatch>,
    claims: &BrowserClaims,
) -> Result<bool, AuthError> {
    match login {
        Some(_) => st.auth.login_is_live(claims).await,
        None => Ok(true),
    }
}

/// Tells this browser why a message was refused (the connection stays).
fn refuse(reg: &BrowserRegistration, code: &str, message: &str) {
    if let Ok(text) = serde_json::to_string(&RelayToBrowser::Error {
        code: code.to_owned(),
        message: message.to_owned(),
    }) {
        reg.queue.push_text(text);
    }
}

/// How far past the stored head a browser of the current epoch may resume
/// (records a relay sent before their commit, then failed): beyond that,
/// it is served from scratch.
const MAX_AHEAD: u64 = 1 << 20;

#[allow(clippy::too_many_arguments)]
async fn serve(
    st: &AppState,
    hub: &SessionHub,
    record: &SessionRecord,
    login: &Option<LoginWatch>,
    socket: &mut WebSocket,
    reg: &BrowserRegistration,
    k: u64,
    theirs: Option<&str>,
    cancel: &CancellationToken,
    access: &Access,
    watch: Option<&RunnerConnection>,
) -> Ending {
    let ended = share_ended(st, access, watch);
    tokio::pin!(ended);
    let id = record.id;
    let mut alive = Keepalive::new(st.keepalive);
    let limit = alive.send_limit();
    // Records of another numbering epoch (the runner started over since)
    // may not be the store's: such a browser starts from scratch. The
    // store has the epoch, whichever relay the runner said `rebase` to.
    let epoch = record.epoch.clone();
    let reset = k > 0 && theirs.is_some_and(|e| e != epoch);
    if reset {
        info!(last_seq = k, "browser resumes another epoch; from scratch");
    }
    let k = if reset { 0 } else { k };
    // The queue already collects live frames. A browser that missed more
    // than a fresh snapshot weighs gets one from the runner instead.
    let fresh = resume_from_fresh_snapshot(st, hub, reg, id, k).await;
    let answer = match fresh {
        Some(_) => Ok(Since::Frames(Vec::new())),
        None => st.store.since(id, k).await,
    };
    let (since, mut sent) = match answer {
        Ok(s) => (s, k),
        // Sent records before their commit by a relay that then failed
        // (this one, or one of the cluster that died): the runner resends
        // them as they were, or says `rebase`, which resets this browser
        // since the hub now counts it as sent through `k`. Only for a
        // browser that names the session's epoch, never from scratch.
        Err(StoreError::Ahead { k, head })
            if k - head <= MAX_AHEAD && !epoch.is_empty() && theirs == Some(epoch.as_str()) =>
        {
            debug!(
                k,
                head, "browser ahead of the store; waiting for the runner"
            );
            hub.note_head(k);
            (Since::Frames(Vec::new()), k)
        }
        // The browser is ahead of the store (the relay lost data, or the
        // database was replaced): serve it from scratch; its welcome's
        // head_seq below its last_seq tells it to reset.
        Err(StoreError::Ahead { .. }) | Err(StoreError::NoResumePoint { .. }) => {
            match st.store.since(id, 0).await {
                Ok(s) => (s, 0),
                Err(e) => {
                    error!(error = %e, "reading the store failed");
                    return Some((close::INTERNAL, "internal error".into()));
                }
            }
        }
        Err(e) => {
            error!(error = %e, "reading the store failed");
            return Some((close::INTERNAL, "internal error".into()));
        }
    };
    let stored_head = match &since {
        Since::Frames(f) => f.last().map_or(sent, |f| f.last_seq),
        Since::Snapshot { snapshot, frames } => {
            frames.last().map_or(snapshot.at_seq, |f| f.last_seq)
        }
    };
    let head_seq = stored_head
        .max(record.last_seq)
        .max(fresh.map_or(0, |(head, _)| head));
    let runner_online = hub.runner_online();
    let session = hub.info().unwrap_or_else(|| SessionInfo {
        id: id.to_string(),
        idea: record.idea.clone(),
        slot: record.slot.clone(),
        tmux_session: record.tmux_session.clone(),
        attach: record.attach.clone(),
        host: record.host.clone(),
        runner_online,
        head_seq,
    });
    let features = hub.runner().map(|r| r.features).unwrap_or_default();
    let welcome = RelayToBrowser::Welcome {
        session: SessionInfo {
            head_seq,
            runner_online,
            ..session
        },
        head_seq,
        runner_online,
        read_only: access.read_only,
        epoch,
        reset: reset || sent < k,
        // What the runner takes beyond input and resize (its hello).
        features: features
            .into_iter()
            .filter(|f| f == FEATURE_KEYS || f == FEATURE_TMUX)
            .collect(),
    };
    let Ok(text) = serde_json::to_string(&welcome) else {
        return Some((close::INTERNAL, "internal error".into()));
    };
    if let Err(ending) = send(socket, Message::Text(text.into()), limit).await {
        return ending;
    }
    sent = match send_stored(&st.metrics, socket, since, sent, limit).await {
        Ok(s) => s,
        Err(ending) => return ending,
    };
    // Awaiting a fresh snapshot: what the store would have sent instead.
    let mut resume_limit = fresh.map(|(_, missed)| missed);
    // Who watches: the latest only, at most once per PRESENCE_EVERY.
    let mut presence = hub.watch_presence();
    let mut presence_open = true;
    let mut presence_held: Option<tokio::time::Instant> = None;

    loop {
        enum Event {
            Shutdown,
            LoggedOut,
            ShareEnded(String),
            Tick,
            Out(Outgoing),
            Presence(bool),
            PresenceDue,
            Incoming(Option<Result<Message, axum::Error>>),
        }
        let event = tokio::select! {
            biased;
            () = cancel.cancelled() => Event::Shutdown,
            () = logged_out(login.as_ref()) => Event::LoggedOut,
            why = &mut ended => Event::ShareEnded(why),
            () = alive.tick() => Event::Tick,
            msg = socket.recv() => Event::Incoming(msg),
            item = reg.queue.pop() => Event::Out(item),
            changed = presence.changed(), if presence_open && presence_held.is_none() => {
                Event::Presence(changed.is_ok())
            }
            () = sleep_until_some(presence_held), if presence_held.is_some() => Event::PresenceDue,
        };
        if matches!(event, Event::Incoming(Some(Ok(_)))) {
            alive.heard();
        }
        match event {
            Event::Shutdown => return Some((close::GOING_AWAY, "relay shutting down".into())),
            Event::LoggedOut => {
                info!("login ended; closing");
                return Some((close::LOGGED_OUT, "logged out".into()));
            }
            Event::ShareEnded(why) => return Some((close::SHARE_ENDED, why)),
            Event::Tick => {
                if alive.expired() {
                    info!("browser silent for three keepalive periods; closing");
                    return Some((
                        close::TIMEOUT,
                        format!("no pong for {} s", (st.keepalive * 3).as_secs()),
                    ));
                }
                // Another relay process (or `tmux-relay user passwd`) may
                // have ended the login: the store says so.
                match login_is_live(st, login, &access.claims).await {
                    Ok(true) => {}
                    Ok(false) => {
                        info!("login ended (seen in the store); closing");
                        return Some((close::LOGGED_OUT, "logged out".into()));
                    }
                    Err(e) => warn!(error = %e, "cannot check the login; keeping the socket"),
                }
                // A runner that never answers snapshot_request must not leave
                // this browser frozen: catch it up from the store instead.
                // The wait is one keepalive period, checked at each tick.
                if reg.queue.awaiting_for().is_some_and(|d| d >= st.keepalive)
                    && reg.queue.resync_if_awaiting()
                {
                    warn!("no snapshot arrived in time; resyncing from the store");
                }
                if let Err(ending) = send(socket, Message::Ping(bytes::Bytes::new()), limit).await {
                    return ending;
                }
            }
            Event::Out(first) => {
                // Everything else already queued goes out with it, in one
                // write and under one timer: a browser task that woke late
                // (a busy relay) pays one flush for several frames.
                let batch = deliver(
                    st,
                    hub,
                    socket,
                    reg,
                    id,
                    first,
                    &mut sent,
                    &mut resume_limit,
                    limit,
                );
                match tokio::time::timeout(limit, batch).await {
                    Ok(Ok(())) => {}
                    Ok(Err(ending)) => return ending,
                    Err(_) => return not_reading(limit),
                }
                if hub.watching() >= PACE_FROM {
                    // A crowd: let the next frames gather (see PACE).
                    tokio::time::sleep(PACE).await;
                }
            }
            Event::Presence(false) => presence_open = false,
            Event::Presence(true) => {
                let text = presence.borrow_and_update().clone();
                if let Some(text) = text {
                    let msg = Message::Text(text.as_ref().into());
                    if let Err(ending) = send(socket, msg, limit).await {
                        return ending;
                    }
                    presence_held = Some(tokio::time::Instant::now() + PRESENCE_EVERY);
                }
            }
            Event::PresenceDue => presence_held = None,
            Event::Incoming(None) => return None,
            Event::Incoming(Some(Err(e))) => {
                if let Some(ending) = super::error_close(&e, "1 MiB") {
                    warn!(code = ending.0, "bad browser message");
                    return Some(ending);
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
                        Ok(BrowserToRelay::Keys { pane, keys }) => {
                            hub.touch_browser(reg.id);
                            forward(hub, reg, FEATURE_KEYS, &[Target::Pane(pane)], |ch| {
                                RelayMsg::Keys { ch, pane, keys }
                            })
                            .await;
                        }
                        Ok(BrowserToRelay::Tmux(op)) => {
                            hub.touch_browser(reg.id);
                            let targets = targets_of(&op);
                            forward(hub, reg, FEATURE_TMUX, &targets, |ch| RelayMsg::Tmux {
                                ch,
                                op,
                            })
                            .await;
                        }
                        Ok(BrowserToRelay::Input { pane, data }) => {
                            trace!(target: "latency", stage = "relay_input_in");
                            hub.touch_browser(reg.id);
                            forward(hub, reg, "", &[Target::Pane(pane)], |ch| RelayMsg::Input {
                                ch,
                                pane,
                                data,
                            })
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

/// A pane or window a browser message names.
#[derive(Debug, Clone, Copy)]
enum Target {
    Pane(tmux_cc::PaneId),
    Window(tmux_cc::WindowId),
}

fn targets_of(op: &TmuxOp) -> Vec<Target> {
    let mut out: Vec<Target> = op.pane().map(Target::Pane).into_iter().collect();
    match op {
        TmuxOp::RenameWindow { window, .. } | TmuxOp::SelectWindow { window } => {
            out.push(Target::Window(*window));
        }
        _ => {}
    }
    out
}

fn in_scope(scope: &Scope, t: Target) -> bool {
    match t {
        Target::Pane(p) => scope.has_pane(p),
        Target::Window(w) => scope.has_window(w),
    }
}

/// Forwards a browser message to the runner channel serving the session:
/// dropped while no runner serves it; refused (`unsupported`) when it
/// needs a feature the runner did not announce (`feature` empty: none);
/// refused (`unknown_pane`, logged) when it names a pane or window that is
/// not in the session's current topology (issue 10: a pane id is
/// server-wide, so anything else could reach another tmux session).
async fn forward(
    hub: &SessionHub,
    reg: &BrowserRegistration,
    feature: &str,
    targets: &[Target],
    make: impl FnOnce(protocol::runner::Channel) -> RelayMsg,
) {
    let Some(link) = hub.runner() else {
        debug!("message while the runner is offline; dropped");
        return;
    };
    if !feature.is_empty() && !link.features.iter().any(|f| f == feature) {
        refuse(
            reg,
            "unsupported",
            "this session's runner does not take keys or tmux actions from the page",
        );
        return;
    }
    let scope = hub.scope();
    if let Some(t) = targets.iter().find(|t| !in_scope(&scope, **t)) {
        let named = match t {
            Target::Pane(p) => p.to_string(),
            Target::Window(w) => w.to_string(),
        };
        warn!(target = %named, "browser named a pane or window outside the session; dropped");
        refuse(
            reg,
            "unknown_pane",
            &format!("{named} is not a pane or window of this session"),
        );
        return;
    }
    // Bounded: a browser typing faster than the runner takes input waits
    // here, alone.
    let _ = link.tx.send(make(link.ch)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(bytes: u64, snapshot_bytes: Option<u64>) -> SinceCost {
        SinceCost {
            head: 100,
            bytes,
            snapshot_bytes,
        }
    }

    #[test]
    fn a_fresh_snapshot_only_when_the_answer_outweighs_one_by_the_margin() {
        assert!(!outweighs_a_snapshot(&cost(0, Some(10_000))));
        assert!(!outweighs_a_snapshot(&cost(
            10_000 + RESUME_MARGIN,
            Some(10_000)
        )));
        assert!(outweighs_a_snapshot(&cost(
            10_001 + RESUME_MARGIN,
            Some(10_000)
        )));
        // Nothing to weigh against: the store's answer.
        assert!(!outweighs_a_snapshot(&cost(u64::MAX, None)));
    }
}
