//! The channels of one runner connection (protocol.md §4.2): `open` →
//! `opened`/`open_failed`, binary `ch` + frame, `close`, and the runner's
//! per-channel `status`, `result` and `error` messages.
//!
//! Every frame is validated completely (`Frame::decode`: the zstd content
//! size before inflating, every record's bounds and kind, sequence numbers
//! matching the header without a gap, Topology JSON that parses) before
//! anything is stored, acked or forwarded; a bad one closes the connection
//! with 4000. A Batch is stored, then acked; it is published to browsers
//! after its commit too, except from a runner that speaks `rebase`
//! (protocol.md §4.4): then at once, once handed to the store, and should
//! the store lose it, the runner resends it or rebases the session.
//! Storing goes through the relay's one [`store::FrameCommitter`] (group
//! commit: many frames, of every connection, per transaction): a Batch is
//! handed to it and the connection keeps reading; its answers come back
//! in order ([`Channels::next_answer`]) and only then is the frame acked
//! (and published, if it was not yet). At most [`MAX_IN_FLIGHT`] frames
//! of a connection wait for their answer; past that the connection stops
//! reading the socket (a slow store back-pressures the runner). Every
//! other message (a snapshot, a log chunk, a text message) first waits
//! for the frames in flight, so it is handled after them, as if frames
//! were stored one by one. The ids
//! of the session's current topology (its panes and windows) are kept in
//! the hub and the store, for the browser checks of `unknown_pane`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::WebSocket;
use bytes::Bytes;
use protocol::control::close;
use protocol::runner::{
    Channel, CloseReason, FEATURE_REBASE, Hello, LogChunk, Open, RelayMsg, RunnerMsg, split_channel,
};
use protocol::wire::{Frame, FrameKind, RecordBody};
use store::{
    Appended, NewEvent, NewFrame, OpenSession, PendingFrame, StoreError, TerminalSessionId,
};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use super::send_json;
use crate::auth::{RunnerIdentity, now_ms};
use crate::hub::{LiveFrame, RunnerLink, Scope, SessionHub, SessionMeta};
use crate::runners::{CommandReply, Connection};
use crate::state::AppState;

/// A close code and reason that end the connection.
type Close = (u16, String);

/// Batches of one connection handed to the committer and not answered
/// yet, at most: past this the connection stops reading its socket.
pub(super) const MAX_IN_FLIGHT: usize = 256;

/// A Batch handed to the committer, awaiting its answer.
struct InFlight {
    ch: Channel,
    session: TerminalSessionId,
    first_seq: u64,
    last_seq: u64,
    bytes: Bytes,
    /// The frame's last Topology, if any.
    scope: Option<(u64, Scope)>,
    started: std::time::Instant,
    answer: PendingFrame,
    /// Sent to browsers before its commit ([`SessionHub::publish_unstored`]).
    published: bool,
}

/// One open channel: the terminal session it serves.
struct Chan {
    id: TerminalSessionId,
    hub: Arc<SessionHub>,
    idea: String,
    slot: String,
    instance: String,
    /// Sequence of the topology the scope was taken from.
    scope_seq: u64,
}

/// The channels of one connection, and what they need from it.
pub(super) struct Channels {
    st: AppState,
    runner_id: String,
    user_id: String,
    runner_name: String,
    host: String,
    features: Vec<String>,
    /// The runner says `rebase` before numbering over: its Batches may go
    /// to browsers before their commit.
    early: bool,
    conn: u64,
    tx: mpsc::Sender<RelayMsg>,
    open: HashMap<Channel, Chan>,
    /// Channel numbers used on this connection (never reused, §4.2).
    used: HashSet<Channel>,
    /// Batches awaiting the committer's answer, in the order received.
    in_flight: VecDeque<InFlight>,
}

impl Channels {
    pub(super) fn new(
        st: &AppState,
        claims: &RunnerIdentity,
        hello: &Hello,
        conn: &Connection,
    ) -> Channels {
        Channels {
            st: st.clone(),
            runner_id: claims.runner_id.clone(),
            user_id: claims.user_id.clone(),
            runner_name: claims.name.clone(),
            host: hello.host.clone(),
            features: hello.features.clone(),
            early: hello.features.iter().any(|f| f == FEATURE_REBASE),
            conn: conn.conn,
            tx: conn.tx.clone(),
            open: HashMap::new(),
            used: HashSet::new(),
            in_flight: VecDeque::new(),
        }
    }

    /// Whether the connection may read another message: fewer than
    /// [`MAX_IN_FLIGHT`] Batches await their answer.
    pub(super) fn can_read(&self) -> bool {
        self.in_flight.len() < MAX_IN_FLIGHT
    }

    /// Whether a Batch awaits its answer.
    pub(super) fn has_in_flight(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// The answer for the oldest Batch in flight (pending forever when
    /// there is none). Cancel-safe: the answer stays until taken, and
    /// [`Channels::on_answer`] takes it.
    pub(super) async fn next_answer(&mut self) -> Result<Appended, StoreError> {
        match self.in_flight.front_mut() {
            Some(f) => (&mut f.answer).await,
            None => std::future::pending().await,
        }
    }

    /// The oldest Batch in flight was answered: a stored one is published
    /// (its transaction committed), then any but a refused one is acked.
    pub(super) async fn on_answer(
        &mut self,
        socket: &mut WebSocket,
        answer: Result<Appended, StoreError>,
        limit: Duration,
    ) -> Option<Close> {
        let f = self.in_flight.pop_front()?;
        let (ch, id, first_seq, last_seq) = (f.ch, f.session, f.first_seq, f.last_seq);
        let appended = match answer {
            Ok(a) => a,
            Err(e) => return store_refusal(id, e),
        };
        self.st
            .metrics
            .store_append
            .observe(f.started.elapsed().as_secs_f64());
        debug!(
            ch,
            session = id,
            first_seq,
            last_seq,
            bytes = f.bytes.len(),
            ?appended,
            "batch"
        );
        if appended == Appended::Stored {
            if let Some((seq, scope)) = f.scope {
                self.update_scope(ch, seq, scope).await;
            }
            // A channel closed since is drained first (see `on_text`), so
            // it is still open here unless the runner closed it early.
            if let Some(chan) = self.open.get(&ch).filter(|c| c.id == id) {
                tracing::trace!(target: "latency", stage = "relay_frame_stored");
                let frame = LiveFrame {
                    kind: FrameKind::Batch,
                    first_seq,
                    last_seq,
                    bytes: f.bytes,
                };
                if f.published {
                    chan.hub.stored(frame);
                } else {
                    let moved = chan.hub.publish(frame);
                    self.st.metrics.snapshot_moves.inc_by(moved as u64);
                }
            }
        }
        let ack = RelayMsg::Ack { ch, seq: last_seq };
        if send_json(socket, &ack, limit).await.is_err() {
            return Some((close::NORMAL, "send failed".into()));
        }
        None
    }

    /// Waits for every Batch in flight and handles its answer.
    pub(super) async fn drain(&mut self, socket: &mut WebSocket, limit: Duration) -> Option<Close> {
        while self.has_in_flight() {
            let answer = self.next_answer().await;
            if let Some(end) = self.on_answer(socket, answer, limit).await {
                return Some(end);
            }
        }
        None
    }

    /// The connection ended: every session it served goes offline.
    pub(super) async fn detach_all(&mut self) {
        let now = now_ms();
        for (_, chan) in self.open.drain() {
            chan.hub.detach_runner(self.conn);
            if let Err(e) = self.st.store.mark_detached(chan.id, now).await {
                warn!(session = chan.id, error = %e, "recording the detach time failed");
            }
        }
    }

    /// A text message other than `hello`.
    pub(super) async fn on_text(
        &mut self,
        socket: &mut WebSocket,
        msg: RunnerMsg,
        limit: Duration,
    ) -> Option<Close> {
        // After the frames received before it.
        if let Some(end) = self.drain(socket, limit).await {
            return Some(end);
        }
        match msg {
            RunnerMsg::Status {
                uptime_s, sessions, ..
            } => {
                debug!(uptime_s, sessions = sessions.len(), "runner status");
                for s in sessions {
                    if let Some(chan) = self.open.get(&s.ch) {
                        chan.hub.set_attached_clients(s.attached_clients);
                    }
                }
                None
            }
            RunnerMsg::Open(open) => self.on_open(socket, open, limit).await,
            RunnerMsg::Close { ch, reason } => self.on_close(ch, reason).await,
            RunnerMsg::Rebase { ch } => self.on_rebase(ch).await,
            RunnerMsg::Result { id, ok, ch, error } => {
                let session_id = ch.and_then(|c| self.open.get(&c)).map(|c| c.id);
                let reply = CommandReply {
                    ok,
                    session_id,
                    error,
                };
                if !self
                    .st
                    .runners
                    .resolve(&self.runner_id, self.conn, &id, reply)
                {
                    debug!(id = %id, "result for no waiting command (late or repeated)");
                }
                None
            }
            RunnerMsg::Error { ch, code, message } => {
                info!(ch, code = %code, "runner refused a message");
                if let Some(chan) = ch.and_then(|c| self.open.get(&c)) {
                    chan.hub.broadcast_error(&code, &message);
                }
                None
            }
            RunnerMsg::Job(report) => {
                let session = report.ch.and_then(|c| self.open.get(&c)).map(|c| c.id);
                if let Err(e) = crate::jobs::on_report(
                    &self.st,
                    &self.runner_id,
                    &self.user_id,
                    &report,
                    session,
                )
                .await
                {
                    warn!(job = %report.job, error = %e, "recording a job report failed");
                }
                None
            }
            RunnerMsg::Jobs { jobs } => {
                let sessions: HashMap<Channel, TerminalSessionId> =
                    self.open.iter().map(|(ch, c)| (*ch, c.id)).collect();
                // The inventory waits for the store and may dispatch jobs:
                // off this connection's loop.
                let st = self.st.clone();
                let (runner, user) = (self.runner_id.clone(), self.user_id.clone());
                self.st.tracker.spawn(async move {
                    if let Err(e) =
                        crate::jobs::on_inventory(&st, &runner, &user, &jobs, &sessions).await
                    {
                        warn!(error = %e, "recording the runner's jobs failed");
                    }
                });
                None
            }
            RunnerMsg::Activity { ch, pane, idle, at } => {
                // A channel of this connection only; in order, like job
                // reports (an idle and the next output must not swap).
                let Some(session) = self.open.get(&ch).map(|c| c.id) else {
                    debug!(ch, "activity for a channel that is not open");
                    return None;
                };
                if let Err(e) = crate::jobs::agents::on_activity(
                    &self.st,
                    &self.user_id,
                    session,
                    pane,
                    idle,
                    at,
                )
                .await
                {
                    warn!(session, error = %e, "recording a pane's activity failed");
                }
                None
            }
            RunnerMsg::Hello(_) => Some((close::PROTOCOL, "hello sent twice".into())),
            _ => Some((close::PROTOCOL, "unexpected message type".into())),
        }
    }

    async fn refuse_open(
        socket: &mut WebSocket,
        ch: Channel,
        code: u16,
        reason: String,
        limit: Duration,
    ) -> Option<Close> {
        info!(ch, code, reason = %reason, "open refused");
        let msg = RelayMsg::OpenFailed { ch, code, reason };
        if send_json(socket, &msg, limit).await.is_err() {
            return Some((close::NORMAL, "send failed".into()));
        }
        None
    }

    async fn on_open(
        &mut self,
        socket: &mut WebSocket,
        open: Open,
        limit: Duration,
    ) -> Option<Close> {
        let ch = open.ch;
        if self.used.contains(&ch) {
            return Some((close::PROTOCOL, format!("channel {ch} opened twice")));
        }
        if let Err(reason) = open.validate() {
            return Self::refuse_open(socket, ch, close::PROTOCOL, reason, limit).await;
        }
        self.used.insert(ch);
        if let Some((other, _)) = self.open.iter().find(|(_, c)| {
            c.idea == open.idea && c.slot == open.slot && c.instance == open.instance
        }) {
            let reason = format!("this session is open on channel {other} already");
            return Self::refuse_open(socket, ch, close::PROTOCOL, reason, limit).await;
        }
        match self
            .st
            .auth
            .check_session_quota(&self.user_id, &self.runner_id, &open.idea, &open.slot)
            .await
        {
            Ok(()) => {}
            Err(e) if e.status().is_server_error() => {
                error!(error = %e, "checking the session quota failed");
                return Some((close::INTERNAL, "internal error".into()));
            }
            Err(e) => {
                return Self::refuse_open(socket, ch, close::FORBIDDEN, e.to_string(), limit).await;
            }
        }
        let now = now_ms();
        let opened = match self
            .st
            .store
            .open_session(&OpenSession {
                runner_id: &self.runner_id,
                user_id: &self.user_id,
                idea: &open.idea,
                slot: &open.slot,
                instance: &open.instance,
                tmux_session: &open.tmux_session,
                attach: &open.attach,
                host: &self.host,
                at: now,
            })
            .await
        {
            Ok(o) => o,
            Err(StoreError::OwnerMismatch { id }) => {
                warn!(session = id, "runner's session belongs to another user");
                let reason = "this terminal session belongs to another user".to_owned();
                return Self::refuse_open(socket, ch, close::FORBIDDEN, reason, limit).await;
            }
            Err(e) => {
                error!(error = %e, "storing the session failed");
                return Some((close::INTERNAL, "internal error".into()));
            }
        };
        let record = opened.record;
        let id = record.id;
        // A channel of this connection still serving a superseded instance
        // is over (the runner should have closed it).
        let stale: Vec<Channel> = self
            .open
            .iter()
            .filter(|(_, c)| opened.superseded.iter().any(|s| s.id == c.id))
            .map(|(ch, _)| *ch)
            .collect();
        for c in stale {
            if let Some(chan) = self.open.remove(&c) {
                chan.hub.detach_runner(self.conn);
            }
        }
        for old in &opened.superseded {
            self.event(
                "session_closed",
                Some(old.id),
                &old.idea,
                &old.slot,
                Some("a new instance replaced it"),
            )
            .await;
        }
        if opened.created {
            self.event("session_created", Some(id), &open.idea, &open.slot, None)
                .await;
        }
        let hub = self.st.hub.session(id);
        hub.note_head(record.last_seq);
        hub.attach_runner(
            SessionMeta {
                user_id: self.user_id.clone(),
                runner_id: self.runner_id.clone(),
                idea: open.idea.clone(),
                slot: open.slot.clone(),
                tmux_session: open.tmux_session.clone(),
                attach: open.attach.clone(),
                host: self.host.clone(),
            },
            record.last_seq,
            Scope::parse(&record.panes),
            RunnerLink {
                conn: self.conn,
                ch,
                tx: self.tx.clone(),
                features: self.features.clone(),
            },
        );
        info!(ch, session = id, last_seq = record.last_seq, "channel open");
        self.open.insert(
            ch,
            Chan {
                id,
                hub,
                idea: open.idea,
                slot: open.slot,
                instance: open.instance,
                scope_seq: 0,
            },
        );
        self.st.notifier.sessions(&self.user_id);
        let msg = RelayMsg::Opened {
            ch,
            session_id: id.to_string(),
            last_seq: record.last_seq,
        };
        if send_json(socket, &msg, limit).await.is_err() {
            return Some((close::NORMAL, "send failed".into()));
        }
        // The runner keeps no watches across restarts: send them again.
        let st = self.st.clone();
        self.st.tracker.spawn(async move {
            if let Err(e) = crate::jobs::agents::on_session_opened(&st, id).await {
                warn!(session = id, error = %e, "sending the session's watches failed");
            }
        });
        None
    }

    async fn on_close(&mut self, ch: Channel, reason: CloseReason) -> Option<Close> {
        let Some(chan) = self.open.remove(&ch) else {
            return Some((
                close::PROTOCOL,
                format!("close of channel {ch}, which is not open"),
            ));
        };
        chan.hub.detach_runner(self.conn);
        let now = now_ms();
        info!(ch, session = chan.id, ?reason, "channel closed");
        let detail = match reason {
            CloseReason::Killed => Some("killed"),
            CloseReason::ServerExited => Some("the tmux server exited"),
            CloseReason::Stopping => None,
        };
        if let Some(detail) = detail {
            match self.st.store.close_session(chan.id, now).await {
                Ok(true) => {
                    self.event(
                        "session_closed",
                        Some(chan.id),
                        &chan.idea,
                        &chan.slot,
                        Some(detail),
                    )
                    .await;
                }
                Ok(false) => {}
                Err(e) => {
                    error!(session = chan.id, error = %e, "closing the session failed");
                    return Some((close::INTERNAL, "internal error".into()));
                }
            }
        }
        if let Err(e) = self.st.store.mark_detached(chan.id, now).await {
            warn!(session = chan.id, error = %e, "recording the detach time failed");
        }
        self.st.notifier.sessions(&self.user_id);
        None
    }

    async fn event(
        &self,
        kind: &str,
        session_id: Option<TerminalSessionId>,
        idea: &str,
        slot: &str,
        detail: Option<&str>,
    ) {
        crate::notify::record(
            &self.st,
            NewEvent {
                user_id: &self.user_id,
                at: now_ms(),
                kind,
                runner_id: &self.runner_id,
                runner_name: &self.runner_name,
                session_id,
                idea: Some(idea),
                slot: Some(slot),
                detail,
            },
        )
        .await;
    }

    /// A job's log chunk (channel 0, §4.6): stored when it continues the
    /// log, answered with `log_ack` (or an `error` for a job that is not
    /// this runner's). A chunk that does not parse closes the connection.
    async fn on_log(
        &mut self,
        socket: &mut WebSocket,
        body: &Bytes,
        limit: Duration,
    ) -> Option<Close> {
        let chunk = match LogChunk::decode(body) {
            Ok(c) => c,
            Err(e) => return Some((close::PROTOCOL, format!("bad log chunk: {e}"))),
        };
        let reply =
            match crate::jobs::on_log(&self.st, &self.runner_id, &self.user_id, &chunk).await {
                Ok(stored) => RelayMsg::LogAck {
                    job: chunk.job,
                    offset: chunk.offset,
                    stored,
                },
                Err(code) if code.starts_with("bad_log_chunk") => {
                    return Some((close::PROTOCOL, code));
                }
                Err(code) => RelayMsg::Error {
                    ch: None,
                    message: format!("log chunk for job {} refused", chunk.job),
                    code,
                },
            };
        if send_json(socket, &reply, limit).await.is_err() {
            return Some((close::GOING_AWAY, "runner socket stalled".into()));
        }
        None
    }

    /// A binary message: `ch` + frame. Validated whole, then stored, then
    /// published, then (Batch) acked: a Batch goes to the committer and is
    /// published and acked from [`Channels::on_answer`].
    pub(super) async fn on_binary(
        &mut self,
        socket: &mut WebSocket,
        bytes: Bytes,
        limit: Duration,
    ) -> Option<Close> {
        let (ch, frame) = match split_channel(&bytes) {
            Ok(x) => x,
            Err(e) => return Some((close::PROTOCOL, e.to_string())),
        };
        if ch == 0 {
            if let Some(end) = self.drain(socket, limit).await {
                return Some(end);
            }
            return self.on_log(socket, &frame, limit).await;
        }
        self.st.metrics.frame_in(frame.len());
        tracing::trace!(target: "latency", stage = "relay_frame_in");
        let Some(chan) = self.open.get_mut(&ch) else {
            return Some((
                close::PROTOCOL,
                format!("frame for channel {ch}, which is not open"),
            ));
        };
        let id = chan.id;
        let decoded = match Frame::decode(&frame) {
            Ok(f) => f,
            Err(e) => {
                warn!(ch, session = id, bytes = frame.len(), error = %e, "bad frame from runner");
                return Some((close::PROTOCOL, format!("bad frame on channel {ch}: {e}")));
            }
        };
        // The last Topology of the frame becomes the session's scope; one
        // that does not parse is a bad frame (a browser could not lay it out).
        let mut scope = None;
        for r in &decoded.records {
            if let RecordBody::Topology(json) = &r.body {
                match Scope::from_topology(json) {
                    Some(s) => scope = Some((r.seq, s)),
                    None => {
                        warn!(
                            ch,
                            session = id,
                            seq = r.seq,
                            "topology record does not parse"
                        );
                        return Some((
                            close::PROTOCOL,
                            format!(
                                "bad frame on channel {ch}: topology at {} is not valid JSON",
                                r.seq
                            ),
                        ));
                    }
                }
            }
        }
        let (first_seq, last_seq) = (decoded.first_seq, decoded.last_seq);
        match decoded.kind {
            FrameKind::Batch => {
                let at = decoded
                    .records
                    .last()
                    .map(|r| r.time)
                    .filter(|t| *t > 0)
                    .and_then(|t| i64::try_from(t).ok())
                    .unwrap_or_else(now_ms);
                let started = std::time::Instant::now();
                let answer = match self
                    .st
                    .frames
                    .submit(NewFrame {
                        session: id,
                        first_seq,
                        last_seq,
                        bytes: frame.clone(),
                        at: Some(at),
                    })
                    .await
                {
                    Ok(a) => a,
                    Err(e) => return store_refusal(id, e),
                };
                // Browsers get it now; the ack still waits for the commit.
                let live = LiveFrame {
                    kind: FrameKind::Batch,
                    first_seq,
                    last_seq,
                    bytes: frame,
                };
                let published = self.early
                    && match chan.hub.publish_unstored(&live) {
                        Some(moved) => {
                            tracing::trace!(target: "latency", stage = "relay_frame_published");
                            self.st.metrics.snapshot_moves.inc_by(moved as u64);
                            true
                        }
                        None => false,
                    };
                self.in_flight.push_back(InFlight {
                    ch,
                    session: id,
                    first_seq,
                    last_seq,
                    bytes: live.bytes,
                    scope,
                    started,
                    answer,
                    published,
                });
                None
            }
            FrameKind::Snapshot => {
                // It describes the records sent before it: those first.
                if let Some(end) = self.drain(socket, limit).await {
                    return Some(end);
                }
                if let Err(e) = self.st.store.put_snapshot(id, last_seq, &frame).await {
                    return store_refusal(id, e);
                }
                debug!(
                    ch,
                    session = id,
                    at = last_seq,
                    bytes = frame.len(),
                    "snapshot"
                );
                if let Some((seq, scope)) = scope {
                    self.update_scope(ch, seq, scope).await;
                }
                if let Some(chan) = self.open.get(&ch) {
                    // A snapshot overflows no queue that awaits it; count
                    // the rare one that does all the same.
                    let moved = chan.hub.publish(LiveFrame {
                        kind: FrameKind::Snapshot,
                        first_seq,
                        last_seq,
                        bytes: frame,
                    });
                    self.st.metrics.snapshot_moves.inc_by(moved as u64);
                }
                None
            }
        }
    }

    /// `rebase`: the runner numbers the session over from what the store
    /// holds (its frames in flight were answered first), under a new epoch
    /// stored with the session; the hub resets browsers that were sent
    /// records past it.
    async fn on_rebase(&mut self, ch: Channel) -> Option<Close> {
        let Some(chan) = self.open.get(&ch) else {
            return Some((
                close::PROTOCOL,
                format!("rebase for channel {ch}, which is not open"),
            ));
        };
        let epoch = crate::auth::codes::random_token(12);
        // The store's head, not one this connection tracks: the frames in
        // flight were answered before this message (`on_text`).
        let stored = async {
            self.st.store.set_epoch(chan.id, &epoch).await?;
            self.st.store.last_seq(chan.id).await
        };
        let stored = match stored.await {
            Ok(head) => head,
            Err(e) => {
                error!(session = chan.id, error = %e, "storing the epoch failed");
                return Some((close::INTERNAL, "internal error: storage failed".into()));
            }
        };
        info!(
            ch,
            session = chan.id,
            from = stored,
            "runner numbers the session over"
        );
        chan.hub.rebase(epoch, stored);
        None
    }

    /// Takes the topology at `seq` as the session's scope unless a newer
    /// one was seen; stores it when it changed.
    async fn update_scope(&mut self, ch: Channel, seq: u64, scope: Scope) {
        let Some(chan) = self.open.get_mut(&ch) else {
            return;
        };
        if seq < chan.scope_seq {
            return;
        }
        chan.scope_seq = seq;
        if chan.hub.scope() == scope {
            return;
        }
        let stored = scope.to_stored();
        chan.hub.set_scope(scope);
        if let Err(e) = self.st.store.set_panes(chan.id, &stored).await {
            warn!(session = chan.id, error = %e, "storing the topology's ids failed");
        }
    }
}

fn store_refusal(id: TerminalSessionId, e: StoreError) -> Option<Close> {
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
            Some((close::INTERNAL, "internal error: storage failed".into()))
        }
    }
}
