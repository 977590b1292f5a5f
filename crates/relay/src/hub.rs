//! The live fan-out: one [`SessionHub`] per terminal session, holding the
//! runner channel serving it (if any: a channel of one runner connection,
//! protocol 2) and one bounded [`BrowserQueue`] per browser, plus what the
//! relay checks browser messages against (the ids of the session's current
//! topology, the runner's features).
//!
//! The runner task pushes each frame to every browser queue (a Batch as
//! soon as it is validated and handed to the store, when its runner says
//! `rebase`; else once stored) without ever waiting: a queue that would
//! exceed its limits (protocol.md §6) is emptied and set to await a
//! snapshot, and the runner is asked for one. So a slow browser never
//! slows the runner or the other browsers, and nothing is buffered
//! without bound. Browser input goes the other way through the
//! runner's bounded channel (back-pressure lands on that browser only).
//! Who watches (`presence`) is not queued: the hub keeps the latest
//! message, serialized once per change, and each browser task sends the
//! latest when it is ready (see [`SessionHub::watch_presence`]): a change
//! costs one serialization of the viewers (not of the browsers) and a wake
//! of the browser tasks ready to send, and a crowd's joins are not a
//! queued message per browser per join.
//!
//! It owns no socket and does no storage I/O: the runner and browser tasks in
//! `ws/` do. Locks here are never held across an `.await`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use protocol::control::{
    BROWSER_QUEUE_BYTES, BROWSER_QUEUE_FRAMES, RelayToBrowser, SessionInfo, Viewer,
};
use protocol::runner::{Channel, RelayMsg};
use protocol::wire::FrameKind;
use store::TerminalSessionId;
use tokio::sync::{Notify, mpsc, watch};

/// Capacity of a runner connection's outgoing channel (input, resize,
/// viewers, commands, ... of every session it serves).
pub const RUNNER_CHANNEL: usize = 1024;

/// The `conn` of a [`RunnerLink`] whose runner is connected to another
/// relay of the cluster (its `tx` goes to the cluster module, which routes
/// what it carries to that relay).
pub const REMOTE_CONN: u64 = u64::MAX;

/// Capacity of the notes channel to the cluster module.
pub const NOTES_CHANNEL: usize = 4096;

/// Batches of a session sent to browsers before their commit and not yet
/// stored, at most (a connection has at most 256 in flight): past this a
/// Batch waits for its commit.
pub const MAX_UNSTORED: usize = 256;

/// What a session hub tells the cluster module about a session whose
/// runner is connected here (cluster mode only; never waits: a full
/// channel drops the note, and a relay that misses a frame refills the
/// gap from the store on the next one).
#[derive(Debug, Clone)]
pub enum HubNote {
    /// A frame the store committed, as published to local browsers.
    Frame {
        session: TerminalSessionId,
        frame: LiveFrame,
    },
    /// The ids of the session's topology changed (stored form).
    Scope {
        session: TerminalSessionId,
        stored: String,
    },
    /// A runner channel of this relay now serves the session
    /// (`online: true`, with its features) or stopped serving it.
    Runner {
        session: TerminalSessionId,
        online: bool,
        features: Vec<String>,
    },
    /// The runner numbers the session over from `stored_head + 1` under
    /// `epoch` (its `rebase`, [`SessionHub::rebase`]), noted after the
    /// frames stored before it.
    Epoch {
        session: TerminalSessionId,
        epoch: String,
        stored_head: u64,
    },
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these short locks leaves plain data that is
    // still consistent enough to keep serving; do not cascade the panic.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A frame as received from the runner, once stored, shared by every
/// browser: the same `Bytes`, never re-encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveFrame {
    pub kind: FrameKind,
    pub first_seq: u64,
    pub last_seq: u64,
    pub bytes: Bytes,
}

/// One item of a browser's send queue.
#[derive(Debug, Clone)]
pub enum Outgoing {
    Frame(LiveFrame),
    /// A JSON control message (already serialized).
    Text(String),
    /// The snapshot this browser awaited will not come (its runner went
    /// away): catch up from the store instead, from what it has.
    Resync,
}

impl Outgoing {
    fn cost(&self) -> usize {
        match self {
            Outgoing::Frame(f) => f.bytes.len(),
            Outgoing::Text(t) => t.len(),
            Outgoing::Resync => 0,
        }
    }
}

/// What pushing a frame into a browser queue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// Not for this browser (a snapshot it does not need, or a batch while it
    /// awaits a snapshot).
    Skipped,
    /// The queue overflowed: it was emptied and now awaits a snapshot.
    Overflowed,
}

#[derive(Debug, Default)]
struct QueueInner {
    items: VecDeque<Outgoing>,
    bytes: usize,
    frames: usize,
    awaiting_snapshot: bool,
    /// When the current wait for a snapshot began.
    awaiting_since: Option<tokio::time::Instant>,
    overflows: u64,
}

/// A bounded send queue for one browser: at most
/// [`BROWSER_QUEUE_BYTES`] and [`BROWSER_QUEUE_FRAMES`]. Single consumer.
#[derive(Debug)]
pub struct BrowserQueue {
    inner: Mutex<QueueInner>,
    notify: Notify,
    max_bytes: usize,
    max_frames: usize,
}

impl BrowserQueue {
    /// A queue with the protocol's limits.
    pub fn new() -> Self {
        Self::with_limits(BROWSER_QUEUE_BYTES, BROWSER_QUEUE_FRAMES)
    }

    /// A queue with explicit limits (tests use small ones).
    pub fn with_limits(max_bytes: usize, max_frames: usize) -> Self {
        BrowserQueue {
            inner: Mutex::new(QueueInner::default()),
            notify: Notify::new(),
            max_bytes,
            max_frames,
        }
    }

    /// Offers a live frame. Batches are queued unless the browser awaits a
    /// snapshot; snapshots are queued only when it does (the others already
    /// have every record the snapshot covers). Never blocks.
    pub fn push_frame(&self, frame: &LiveFrame) -> Pushed {
        let mut q = lock(&self.inner);
        match (frame.kind, q.awaiting_snapshot) {
            (FrameKind::Snapshot, true) => {
                q.awaiting_snapshot = false;
                q.awaiting_since = None;
            }
            (FrameKind::Snapshot, false) | (FrameKind::Batch, true) => return Pushed::Skipped,
            (FrameKind::Batch, false) => {}
        }
        let cost = frame.bytes.len();
        if q.frames + 1 > self.max_frames || q.bytes + cost > self.max_bytes {
            // Keep control messages (runner state); drop every frame.
            q.items.retain(|i| matches!(i, Outgoing::Text(_)));
            q.bytes = q.items.iter().map(Outgoing::cost).sum();
            q.frames = 0;
            q.awaiting_snapshot = true;
            q.awaiting_since = Some(tokio::time::Instant::now());
            q.overflows += 1;
            return Pushed::Overflowed;
        }
        q.bytes += cost;
        q.frames += 1;
        q.items.push_back(Outgoing::Frame(frame.clone()));
        drop(q);
        self.notify.notify_one();
        Pushed::Queued
    }

    /// Queues a control message. Dropped if the queue is at its byte limit
    /// (control messages are small; the limit only guards a runner flapping
    /// against a browser that never reads).
    pub fn push_text(&self, text: String) {
        let mut q = lock(&self.inner);
        if q.bytes + text.len() > self.max_bytes || q.items.len() >= self.max_frames * 2 {
            return;
        }
        q.bytes += text.len();
        q.items.push_back(Outgoing::Text(text));
        drop(q);
        self.notify.notify_one();
    }

    /// If the queue awaits a snapshot, stops waiting and queues
    /// [`Outgoing::Resync`] instead. Frames published after this call are
    /// queued behind the marker (they are in the store too, so the browser
    /// task's catch-up plus its `last_seq` filter loses and repeats nothing).
    pub fn resync_if_awaiting(&self) -> bool {
        let mut q = lock(&self.inner);
        if !q.awaiting_snapshot {
            return false;
        }
        q.awaiting_snapshot = false;
        q.awaiting_since = None;
        q.items.push_back(Outgoing::Resync);
        drop(q);
        self.notify.notify_one();
        true
    }

    /// Queues [`Outgoing::Resync`] unless the queue awaits a snapshot (the
    /// snapshot covers it): the browser task catches up from the store
    /// first, then takes the frames queued behind the marker.
    pub fn resync(&self) {
        let mut q = lock(&self.inner);
        if q.awaiting_snapshot {
            return;
        }
        q.items.push_back(Outgoing::Resync);
        drop(q);
        self.notify.notify_one();
    }

    /// Drops every queued frame (control messages stay) and waits for the
    /// next snapshot: a resuming browser whose missed records outweigh a
    /// fresh snapshot gets that snapshot instead. Not an overflow.
    pub fn await_snapshot(&self) {
        let mut q = lock(&self.inner);
        q.items.retain(|i| matches!(i, Outgoing::Text(_)));
        q.bytes = q.items.iter().map(Outgoing::cost).sum();
        q.frames = 0;
        q.awaiting_snapshot = true;
        q.awaiting_since = Some(tokio::time::Instant::now());
    }

    /// Waits for the next item. Cancel-safe: an item is only removed in the
    /// poll that returns it.
    pub async fn pop(&self) -> Outgoing {
        loop {
            let notified = self.notify.notified();
            if let Some(item) = self.try_pop() {
                return item;
            }
            notified.await;
        }
    }

    /// The next item if one is queued, without waiting.
    pub fn try_pop(&self) -> Option<Outgoing> {
        let mut q = lock(&self.inner);
        let item = q.items.pop_front()?;
        q.bytes = q.bytes.saturating_sub(item.cost());
        if matches!(item, Outgoing::Frame(_)) {
            q.frames = q.frames.saturating_sub(1);
        }
        Some(item)
    }

    /// Whether the queue is waiting for a snapshot after an overflow.
    pub fn awaiting_snapshot(&self) -> bool {
        lock(&self.inner).awaiting_snapshot
    }

    /// How long the queue has been waiting for a snapshot, if it is.
    pub fn awaiting_for(&self) -> Option<std::time::Duration> {
        lock(&self.inner).awaiting_since.map(|t| t.elapsed())
    }

    /// How many times this queue overflowed.
    pub fn overflows(&self) -> u64 {
        lock(&self.inner).overflows
    }
}

impl Default for BrowserQueue {
    fn default() -> Self {
        Self::new()
    }
}

/// Descriptive fields of a terminal session, from the runner's `open`.
#[derive(Debug, Clone, Default)]
pub struct SessionMeta {
    pub user_id: String,
    pub runner_id: String,
    pub idea: String,
    pub slot: String,
    pub tmux_session: String,
    pub attach: String,
    pub host: String,
}

/// The runner channel that serves a session: which connection, which
/// channel on it, the connection's outgoing queue, and what the runner
/// takes beyond `input` and `resize` (its `hello.features`).
#[derive(Debug, Clone)]
pub struct RunnerLink {
    pub conn: u64,
    pub ch: Channel,
    pub tx: mpsc::Sender<RelayMsg>,
    pub features: Vec<String>,
}

/// The ids (`%P` panes, `@W` windows) of a session's current topology, as
/// stored (space-separated) and checked against browser messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope(std::collections::BTreeSet<String>);

impl Scope {
    /// From the stored form.
    pub fn parse(stored: &str) -> Scope {
        Scope(
            stored
                .split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    /// From a Topology record's JSON; `None` when it does not parse.
    pub fn from_topology(json: &[u8]) -> Option<Scope> {
        let t: protocol::topology::Topology = serde_json::from_slice(json).ok()?;
        let mut ids = std::collections::BTreeSet::new();
        for w in &t.windows {
            ids.insert(w.id.to_string());
            for p in &w.panes {
                ids.insert(p.id.to_string());
            }
        }
        Some(Scope(ids))
    }

    /// The stored form.
    pub fn to_stored(&self) -> String {
        self.0
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn has_pane(&self, pane: tmux_cc::PaneId) -> bool {
        self.0.contains(&pane.to_string())
    }

    pub fn has_window(&self, window: tmux_cc::WindowId) -> bool {
        self.0.contains(&window.to_string())
    }
}

/// What a session's live state adds to its stored row, for the page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Live {
    pub runner_online: bool,
    pub attached_clients: u32,
    /// Browser tabs watching.
    pub viewers: u32,
    pub head_seq: u64,
}

#[derive(Debug)]
struct BrowserLink {
    queue: Arc<BrowserQueue>,
    size: Option<(u16, u16)>,
    /// The tab is shown (`view.visible`); hidden tabs do not size tmux.
    visible: bool,
    /// The tab asks tmux to fit it (`view.fit`); "keep tmux's size" does not.
    fit: bool,
    /// When the browser was last active (a counter: joined, shown, resized,
    /// typed); the most recently active fitting tab sizes tmux.
    active: u64,
    /// Who watches (account name or share link label), for `presence`.
    viewer: String,
    read_only: bool,
}

#[derive(Debug, Default)]
struct SessionInner {
    meta: SessionMeta,
    head_seq: u64,
    runner: Option<RunnerLink>,
    browsers: HashMap<u64, BrowserLink>,
    next_id: u64,
    sent_size: Option<(u16, u16)>,
    attached_clients: u32,
    scope: Scope,
    /// Counter for `BrowserLink::active`.
    activity: u64,
    /// Batches sent to browsers before the store committed them
    /// ([`SessionHub::publish_unstored`]), oldest first: a browser that
    /// joins or catches up from the store gets them after what it read.
    unstored: VecDeque<LiveFrame>,
    /// Tabs per named viewer, keyed `(read_only, name)` (the order
    /// `presence` lists them in), kept as browsers are named and leave, so
    /// that a change costs the viewers, not the browsers.
    viewers: BTreeMap<(bool, String), u32>,
}

impl SessionInner {
    /// Whether the runner serving the session is connected to this relay.
    fn runner_here(&self) -> bool {
        self.runner.as_ref().is_some_and(|r| r.conn != REMOTE_CONN)
    }
}

/// The live state of one terminal session.
#[derive(Debug)]
pub struct SessionHub {
    id: TerminalSessionId,
    inner: Mutex<SessionInner>,
    /// How many browsers are registered (`inner.browsers.len()`), read
    /// without the lock by every browser task after each write.
    watching: AtomicUsize,
    notes: Option<mpsc::Sender<HubNote>>,
    /// The latest `presence` message, serialized once per change and
    /// shared by every browser (see [`SessionHub::watch_presence`]).
    presence: watch::Sender<Option<Arc<str>>>,
}

/// A registered browser, as the browser task holds it. Unregister with
/// [`SessionHub::remove_browser`].
#[derive(Debug)]
pub struct BrowserRegistration {
    pub id: u64,
    pub queue: Arc<BrowserQueue>,
    pub runner_online: bool,
}

impl SessionHub {
    fn new(id: TerminalSessionId, notes: Option<mpsc::Sender<HubNote>>) -> Self {
        SessionHub {
            id,
            inner: Mutex::new(SessionInner::default()),
            watching: AtomicUsize::new(0),
            notes,
            presence: watch::Sender::new(None),
        }
    }

    /// The session's `presence` as it changes: the latest serialized
    /// message only, never a backlog (a browser that reads it after ten
    /// changes gets the tenth, once), marked changed so that a browser
    /// sends the current one first. Each change costs the hub one
    /// serialization, whatever the number of browsers; how often a browser
    /// sends it is the browser task's choice.
    pub fn watch_presence(&self) -> watch::Receiver<Option<Arc<str>>> {
        let mut rx = self.presence.subscribe();
        rx.mark_changed();
        rx
    }

    /// Publishes the session's presence (who watches, terminals attached);
    /// called with the session's lock held, so that versions follow the
    /// changes' order.
    fn publish_presence(&self, s: &SessionInner) {
        let msg = RelayToBrowser::Presence {
            viewers: viewers_of(&s.viewers),
            attached_clients: s.attached_clients,
        };
        match serde_json::to_string(&msg) {
            Ok(text) => {
                self.presence.send_replace(Some(text.into()));
            }
            Err(e) => tracing::error!(error = %e, "cannot serialize presence"),
        }
    }

    /// Hands `note` to the cluster module, if there is one; never waits.
    fn note(&self, note: HubNote) {
        if let Some(tx) = &self.notes
            && tx.try_send(note).is_err()
        {
            tracing::warn!(session = self.id, "cluster notes full; a note was dropped");
        }
    }

    /// The terminal session's id.
    pub fn id(&self) -> TerminalSessionId {
        self.id
    }

    /// Installs the runner channel serving the session (replacing any
    /// previous one) and what the relay knows of its topology. Tells the
    /// browsers the runner is online, and the runner how many browsers
    /// watch and their preferred size. Every browser catches up from the
    /// store first ([`Outgoing::Resync`]).
    pub fn attach_runner(&self, meta: SessionMeta, head_seq: u64, scope: Scope, link: RunnerLink) {
        let mut s = lock(&self.inner);
        s.meta = meta;
        s.head_seq = s.head_seq.max(head_seq);
        s.sent_size = None;
        s.scope = scope;
        // A new connection: the last one's frames are stored by now or
        // resent by the runner.
        s.unstored.clear();
        let (tx, ch) = (link.tx.clone(), link.ch);
        let local =
            (link.conn != REMOTE_CONN).then(|| (link.features.clone(), s.scope.to_stored()));
        s.runner = Some(link);
        let viewers = u32::try_from(s.browsers.len()).unwrap_or(u32::MAX);
        let size = preferred_size(&s.browsers);
        broadcast_text(&s.browsers, &RelayToBrowser::Runner { online: true });
        // A runner that moved here from a relay that died: that relay may
        // have committed frames it never published. Every browser catches
        // up from the shared store before the new runner's frames.
        for b in s.browsers.values() {
            b.queue.resync();
        }
        drop(s);
        if let Some((features, stored)) = local {
            self.note(HubNote::Scope {
                session: self.id,
                stored,
            });
            self.note(HubNote::Runner {
                session: self.id,
                online: true,
                features,
            });
        }
        let _ = tx.try_send(RelayMsg::Viewers { ch, count: viewers });
        if let Some((cols, rows)) = size {
            self.send_resize_if_changed(cols, rows);
        }
    }

    /// Removes the runner channel of connection `conn` if it still serves
    /// the session, and tells the browsers the runner went offline.
    pub fn detach_runner(&self, conn: u64) {
        let mut s = lock(&self.inner);
        if s.runner.as_ref().is_some_and(|r| r.conn == conn) {
            s.runner = None;
            s.unstored.clear();
            broadcast_text(&s.browsers, &RelayToBrowser::Runner { online: false });
            // No runner will answer the snapshot requests now.
            for b in s.browsers.values() {
                b.queue.resync_if_awaiting();
            }
            drop(s);
            if conn != REMOTE_CONN {
                self.note(HubNote::Runner {
                    session: self.id,
                    online: false,
                    features: Vec::new(),
                });
            }
        }
    }

    /// Replaces the ids of the session's current topology.
    pub fn set_scope(&self, scope: Scope) {
        let mut s = lock(&self.inner);
        let local = s.runner_here();
        let stored = local.then(|| scope.to_stored());
        s.scope = scope;
        drop(s);
        if let Some(stored) = stored {
            self.note(HubNote::Scope {
                session: self.id,
                stored,
            });
        }
    }

    /// The ids of the session's current topology.
    pub fn scope(&self) -> Scope {
        lock(&self.inner).scope.clone()
    }

    /// Fans a stored frame out to every browser (a Snapshot, a Batch heard
    /// from another relay, or one [`SessionHub::publish_unstored`] did not
    /// take: a runner without `rebase` must not have a browser hold a
    /// sequence number the relay can lose); asks the runner for a snapshot
    /// if a browser overflowed.
    /// Never waits. Returns how many browsers overflowed (and now await a
    /// snapshot).
    pub fn publish(&self, frame: LiveFrame) -> usize {
        let mut s = lock(&self.inner);
        if frame.kind == FrameKind::Batch {
            s.head_seq = s.head_seq.max(frame.last_seq);
            trim_unstored(&mut s.unstored, frame.last_seq);
        }
        let local = s.runner_here();
        let overflowed = self.fan_out(s, &frame);
        if local {
            self.note_stored(frame);
        }
        overflowed
    }

    /// Fans a Batch out to every browser *before* the store committed it
    /// (issue 16: the commit was the largest stage of a keystroke's echo),
    /// if it continues what the browsers were sent (`first_seq` is the
    /// head + 1) and fewer than [`MAX_UNSTORED`] wait for their commit.
    /// Only for a runner that says `rebase` before numbering over: a
    /// relay that dies before the commit leaves browsers holding records
    /// the store never got, which that runner either resends as they were
    /// (it keeps every frame until acked) or replaces under a new epoch
    /// ([`SessionHub::rebase`]; protocol.md §5). The frame is kept until
    /// [`SessionHub::stored`], so a browser that joins or catches up from
    /// the store meanwhile gets it after what the store supplied. Cluster
    /// notes and acks still wait for the commit. `None`: not published
    /// (the caller publishes once the frame is stored).
    pub fn publish_unstored(&self, frame: &LiveFrame) -> Option<usize> {
        let mut s = lock(&self.inner);
        if frame.kind != FrameKind::Batch
            || frame.first_seq != s.head_seq.wrapping_add(1)
            || s.unstored.len() >= MAX_UNSTORED
        {
            return None;
        }
        s.head_seq = frame.last_seq;
        s.unstored.push_back(frame.clone());
        Some(self.fan_out(s, frame))
    }

    /// The store committed a Batch that [`SessionHub::publish_unstored`]
    /// sent: it leaves the unstored frames and goes to the other relays
    /// (cluster mode), which only ever get stored frames.
    pub fn stored(&self, frame: LiveFrame) {
        let mut s = lock(&self.inner);
        trim_unstored(&mut s.unstored, frame.last_seq);
        let local = s.runner_here();
        drop(s);
        if local {
            self.note_stored(frame);
        }
    }

    /// Hands a stored frame of a runner connected here to the cluster
    /// module (if any): published once per session for the other relays,
    /// after the store committed it, same bytes.
    fn note_stored(&self, frame: LiveFrame) {
        if self.notes.is_some() {
            self.note(HubNote::Frame {
                session: self.id,
                frame,
            });
        }
    }

    /// The frames sent to browsers but not stored yet that come after
    /// `seq`, in order (what a browser catching up from the store lacks).
    pub fn unstored_after(&self, seq: u64) -> Vec<LiveFrame> {
        lock(&self.inner)
            .unstored
            .iter()
            .filter(|f| f.last_seq > seq)
            .cloned()
            .collect()
    }

    /// The runner numbers the session over from `stored_head + 1` under a
    /// new epoch: browsers learn the epoch for their next `hello`, and if
    /// they were sent records past `stored_head` (published before a
    /// commit that never happened) they reset and reconnect from scratch.
    /// A relay of a cluster with the runner's connection notes it for the
    /// others, whose hubs get the same call: their browsers learn the epoch
    /// too (they were sent stored records, so none resets unless it
    /// resumed there ahead of the store from a relay that died), and a tab
    /// that reconnects names the epoch of what it holds instead of
    /// starting from scratch.
    pub fn rebase(&self, epoch: String, stored_head: u64) {
        let mut s = lock(&self.inner);
        if s.runner_here() {
            self.note(HubNote::Epoch {
                session: self.id,
                epoch: epoch.clone(),
                stored_head,
            });
        }
        let reset = s.head_seq > stored_head;
        if reset {
            tracing::warn!(
                session = self.id,
                sent = s.head_seq,
                stored = stored_head,
                "browsers hold records the store never got; resetting them"
            );
            s.head_seq = stored_head;
        }
        s.unstored.clear();
        broadcast_text(&s.browsers, &RelayToBrowser::Epoch { epoch, reset });
    }

    /// Pushes `frame` to every browser queue, then (the lock released)
    /// asks the runner for a snapshot if a queue overflowed; returns how
    /// many did.
    fn fan_out(&self, s: MutexGuard<'_, SessionInner>, frame: &LiveFrame) -> usize {
        let mut overflowed = 0usize;
        for (id, b) in &s.browsers {
            if b.queue.push_frame(frame) == Pushed::Overflowed {
                tracing::warn!(
                    session = self.id,
                    browser = id,
                    "browser queue overflowed; moving it to a snapshot"
                );
                overflowed += 1;
            }
        }
        drop(s);
        if overflowed > 0 {
            self.request_snapshot();
        }
        overflowed
    }

    /// Asks the runner serving the session for a fresh snapshot; `false`
    /// when no runner serves it (or its queue is full: the browser's
    /// wait then ends at its timeout, from the store).
    pub fn request_snapshot(&self) -> bool {
        let link = lock(&self.inner)
            .runner
            .as_ref()
            .map(|r| (r.tx.clone(), r.ch));
        match link {
            Some((tx, ch)) => tx.try_send(RelayMsg::SnapshotRequest { ch }).is_ok(),
            None => false,
        }
    }

    /// Registers a browser whose queue starts collecting live frames now
    /// (before the browser task reads the store).
    pub fn add_browser(&self, queue: Arc<BrowserQueue>) -> BrowserRegistration {
        let mut s = lock(&self.inner);
        s.next_id += 1;
        let id = s.next_id;
        s.activity += 1;
        let active = s.activity;
        s.browsers.insert(
            id,
            BrowserLink {
                queue: queue.clone(),
                size: None,
                visible: true,
                fit: true,
                active,
                viewer: String::new(),
                read_only: false,
            },
        );
        // Sent to the others but not in the store yet: after what the
        // browser task reads from the store.
        for f in &s.unstored {
            queue.push_frame(f);
        }
        let runner_online = s.runner.is_some();
        self.watching.store(s.browsers.len(), Ordering::Relaxed);
        let count = u32::try_from(s.browsers.len()).unwrap_or(u32::MAX);
        let link = s.runner.as_ref().map(|r| (r.tx.clone(), r.ch));
        drop(s);
        if let Some((tx, ch)) = link {
            let _ = tx.try_send(RelayMsg::Viewers { ch, count });
        }
        BrowserRegistration {
            id,
            queue,
            runner_online,
        }
    }

    /// Unregisters a browser and updates the runner's viewer count and size.
    pub fn remove_browser(&self, id: u64) {
        let mut s = lock(&self.inner);
        if let Some(b) = s.browsers.remove(&id) {
            forget_viewer(&mut s.viewers, &b);
        }
        self.watching.store(s.browsers.len(), Ordering::Relaxed);
        self.publish_presence(&s);
        let count = u32::try_from(s.browsers.len()).unwrap_or(u32::MAX);
        let link = s.runner.as_ref().map(|r| (r.tx.clone(), r.ch));
        let size = preferred_size(&s.browsers);
        drop(s);
        if let Some((tx, ch)) = link {
            let _ = tx.try_send(RelayMsg::Viewers { ch, count });
        }
        if let Some((cols, rows)) = size {
            self.send_resize_if_changed(cols, rows);
        }
    }

    /// Records a browser's available size and forwards the browsers'
    /// preferred size (see [`preferred_size`]) to the runner when it changes.
    pub fn set_browser_size(&self, id: u64, cols: u16, rows: u16) {
        let size = {
            let mut s = lock(&self.inner);
            s.activity += 1;
            let active = s.activity;
            if let Some(b) = s.browsers.get_mut(&id) {
                b.size = Some((cols, rows));
                b.active = active;
            }
            preferred_size(&s.browsers)
        };
        if let Some((cols, rows)) = size {
            self.send_resize_if_changed(cols, rows);
        }
    }

    /// Records whether a browser's tab is shown and whether it asks tmux to
    /// fit it (`view`); a tab being shown counts as activity. Recomputes
    /// the preferred size.
    pub fn set_browser_view(&self, id: u64, visible: bool, fit: bool) {
        let size = {
            let mut s = lock(&self.inner);
            s.activity += 1;
            let active = s.activity;
            if let Some(b) = s.browsers.get_mut(&id) {
                if visible && !b.visible {
                    b.active = active;
                }
                b.visible = visible;
                b.fit = fit;
            }
            preferred_size(&s.browsers)
        };
        if let Some((cols, rows)) = size {
            self.send_resize_if_changed(cols, rows);
        }
    }

    /// The person typed in this browser: it becomes the most recently
    /// active one (tmux follows the size of the tab in use, like tmux's
    /// `window-size latest`).
    pub fn touch_browser(&self, id: u64) {
        let size = {
            let mut s = lock(&self.inner);
            s.activity += 1;
            let active = s.activity;
            let Some(b) = s.browsers.get_mut(&id) else {
                return;
            };
            b.active = active;
            preferred_size(&s.browsers)
        };
        if let Some((cols, rows)) = size {
            self.send_resize_if_changed(cols, rows);
        }
    }

    /// Names the viewer of a browser (account name or share link label) and
    /// tells every browser who watches now.
    pub fn set_browser_viewer(&self, id: u64, viewer: &str, read_only: bool) {
        let mut s = lock(&self.inner);
        let s = &mut *s;
        let Some(b) = s.browsers.get_mut(&id) else {
            return;
        };
        forget_viewer(&mut s.viewers, b);
        b.viewer = viewer.to_owned();
        b.read_only = read_only;
        if !viewer.is_empty() {
            *s.viewers.entry((read_only, b.viewer.clone())).or_insert(0) += 1;
        }
        self.publish_presence(s);
    }

    /// Who watches the session now, one entry per viewer with its tab count.
    pub fn viewers(&self) -> Vec<Viewer> {
        viewers_of(&lock(&self.inner).viewers)
    }

    fn send_resize_if_changed(&self, cols: u16, rows: u16) {
        let mut s = lock(&self.inner);
        if s.sent_size == Some((cols, rows)) {
            return;
        }
        let Some((tx, ch)) = s.runner.as_ref().map(|r| (r.tx.clone(), r.ch)) else {
            return;
        };
        if tx.try_send(RelayMsg::Resize { ch, cols, rows }).is_ok() {
            s.sent_size = Some((cols, rows));
        }
    }

    /// The runner channel serving the session, if any (for input).
    pub fn runner(&self) -> Option<RunnerLink> {
        lock(&self.inner).runner.clone()
    }

    /// The runner channel serving the session if it is a connection to
    /// this relay (not [`REMOTE_CONN`]).
    pub fn local_runner(&self) -> Option<RunnerLink> {
        lock(&self.inner)
            .runner
            .clone()
            .filter(|r| r.conn != REMOTE_CONN)
    }

    /// Tells every browser of the session about a refused message (the
    /// runner's `error` for this channel).
    pub fn broadcast_error(&self, code: &str, message: &str) {
        let s = lock(&self.inner);
        broadcast_text(
            &s.browsers,
            &RelayToBrowser::Error {
                code: code.to_owned(),
                message: message.to_owned(),
            },
        );
    }

    /// What the live state adds to the stored row.
    pub fn live(&self) -> Live {
        let s = lock(&self.inner);
        Live {
            runner_online: s.runner.is_some(),
            attached_clients: s.attached_clients,
            viewers: u32::try_from(s.browsers.len()).unwrap_or(u32::MAX),
            head_seq: s.head_seq,
        }
    }

    /// Records the runner's `status` (and tells the browsers when it changed).
    pub fn set_attached_clients(&self, n: u32) {
        let mut s = lock(&self.inner);
        if s.attached_clients != n {
            s.attached_clients = n;
            self.publish_presence(&s);
        }
    }

    /// Whether a runner is connected.
    pub fn runner_online(&self) -> bool {
        lock(&self.inner).runner.is_some()
    }

    /// The highest sequence stored or noted (0 if unknown).
    pub fn head_seq(&self) -> u64 {
        lock(&self.inner).head_seq
    }

    /// Raises the known head (from the store).
    pub fn note_head(&self, seq: u64) {
        let mut s = lock(&self.inner);
        s.head_seq = s.head_seq.max(seq);
    }

    /// How many browsers are registered.
    pub fn browser_count(&self) -> usize {
        lock(&self.inner).browsers.len()
    }

    /// How many browsers are registered, without taking the lock (may
    /// lag a concurrent join or leave).
    pub fn watching(&self) -> usize {
        self.watching.load(Ordering::Relaxed)
    }

    /// The session as the page sees it, if a runner ever opened it on this
    /// relay process (else the caller fills it from the store).
    pub fn info(&self) -> Option<SessionInfo> {
        let s = lock(&self.inner);
        if s.meta.tmux_session.is_empty() {
            return None;
        }
        Some(SessionInfo {
            id: self.id.to_string(),
            idea: s.meta.idea.clone(),
            slot: s.meta.slot.clone(),
            tmux_session: s.meta.tmux_session.clone(),
            attach: s.meta.attach.clone(),
            host: s.meta.host.clone(),
            runner_online: s.runner.is_some(),
            head_seq: s.head_seq,
        })
    }
}

/// Drops the unstored frames the store now holds (through `seq`).
fn trim_unstored(unstored: &mut VecDeque<LiveFrame>, seq: u64) {
    while unstored.front().is_some_and(|f| f.last_seq <= seq) {
        unstored.pop_front();
    }
}

fn broadcast_text(browsers: &HashMap<u64, BrowserLink>, msg: &RelayToBrowser) {
    let Ok(text) = serde_json::to_string(msg) else {
        return;
    };
    for b in browsers.values() {
        b.queue.push_text(text.clone());
    }
}

/// The size offered to tmux: that of the most recently active browser
/// among those present now that are shown and ask tmux to fit them
/// (issue 14, item 2: never a stale maximum of tabs that closed, hid or
/// chose "keep tmux's size"). `None` when no browser qualifies: tmux then
/// keeps its size.
fn preferred_size(browsers: &HashMap<u64, BrowserLink>) -> Option<(u16, u16)> {
    browsers
        .values()
        .filter(|b| b.visible && b.fit && !b.read_only)
        .filter_map(|b| b.size.map(|size| (b.active, size)))
        .max_by_key(|(active, _)| *active)
        .map(|(_, size)| size)
}

/// One entry per viewer (name, read-only), with how many tabs it has open,
/// owners first, then by name; browsers not yet named are left out.
fn viewers_of(viewers: &BTreeMap<(bool, String), u32>) -> Vec<Viewer> {
    viewers
        .iter()
        .map(|((read_only, name), tabs)| Viewer {
            name: name.clone(),
            read_only: *read_only,
            tabs: *tabs,
        })
        .collect()
}

/// Takes browser `b`'s tab off its viewer's count (if it was named).
fn forget_viewer(viewers: &mut BTreeMap<(bool, String), u32>, b: &BrowserLink) {
    if b.viewer.is_empty() {
        return;
    }
    let key = (b.read_only, b.viewer.clone());
    if let Some(tabs) = viewers.get_mut(&key) {
        *tabs = tabs.saturating_sub(1);
        if *tabs == 0 {
            viewers.remove(&key);
        }
    }
}

/// Every live terminal session of this relay process.
#[derive(Debug, Default)]
pub struct Hub {
    sessions: Mutex<HashMap<TerminalSessionId, Arc<SessionHub>>>,
    /// Cluster mode: where session hubs send their [`HubNote`]s.
    notes: Option<mpsc::Sender<HubNote>>,
}

impl Hub {
    pub fn new() -> Self {
        Self::default()
    }

    /// A hub whose sessions note what the cluster module publishes.
    pub fn with_notes(notes: mpsc::Sender<HubNote>) -> Self {
        Hub {
            sessions: Mutex::default(),
            notes: Some(notes),
        }
    }

    /// The hub of session `id`, created on first use.
    pub fn session(&self, id: TerminalSessionId) -> Arc<SessionHub> {
        lock(&self.sessions)
            .entry(id)
            .or_insert_with(|| Arc::new(SessionHub::new(id, self.notes.clone())))
            .clone()
    }

    /// The hub of session `id` if it exists.
    pub fn get(&self, id: TerminalSessionId) -> Option<Arc<SessionHub>> {
        lock(&self.sessions).get(&id).cloned()
    }

    /// Forgets session `id` (deleted).
    pub fn remove(&self, id: TerminalSessionId) {
        lock(&self.sessions).remove(&id);
    }

    /// `(sessions served by a connected runner, browser sockets)` right
    /// now, for `/metrics`. Takes each session's lock after the map's is
    /// released.
    pub fn counts(&self) -> (usize, usize) {
        let sessions: Vec<Arc<SessionHub>> = lock(&self.sessions).values().cloned().collect();
        sessions.iter().fold((0, 0), |(live, browsers), s| {
            (
                live + usize::from(s.runner_online()),
                browsers + s.browser_count(),
            )
        })
    }
}

#[cfg(test)]
mod tests;
