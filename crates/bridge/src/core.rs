//! The session core: everything about one served tmux session (the
//! transcript's `SessionModel`, the commands waiting for replies, pane
//! resyncs, flood control, sequence numbers and unacked frames, snapshots,
//! input and the resize policy) as a state machine that does no I/O and
//! reads no clock.
//!
//! [`Machine::handle`] takes one [`Input`] and the time it happened at
//! ([`Now`]: a monotonic instant for windows, debounce and cadence, and the
//! wall clock in ms stamped on records) and returns [`Effect`]s: command
//! lines for tmux, frames and text messages for relay connection
//! `generation`, stop. [`Core`] (`task.rs`) is the thin async loop around it
//! that owns the channels, the timer and the clocks. The core knows nothing
//! of channel numbers or the WebSocket: [`RelayEvent`] in, [`ToRelay`] out.
//!
//! One file per job, each an `impl Machine` block with its own state:
//! `replies` (which reply answers which command), `resync` (rebuilding a
//! pane from tmux's screen), `flood` (rate windows, flood frames, calm
//! detection), `hidden` (when the runner's hidden terminal client attaches
//! for a flood and leaves), `sequence` (seq offset and rebase, records into frames,
//! unacked frames, resend), `snapshot` (cadence by bytes and time, on
//! request), `resize` (debounce of browser sizes), `topology`
//! (`list-windows`, `list-clients`), `idle` (watched panes going idle and
//! active again). The only I/O below this module is the
//! [`Unacked`] log it is given, which spills frames to a file past its
//! memory bound.

mod flood;
mod hidden;
mod idle;
mod page;
mod replies;
mod resize;
mod resync;
mod sequence;
mod snapshot;
mod task;
mod topology;

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use protocol::control::TmuxOp;
use tmux_cc::command::{self, CommandLine};
use tmux_cc::{Event, PaneId, Reply};
use tracing::{debug, info, warn};
use transcript::session::{SessionConfig, SessionModel};

use crate::unacked::Unacked;
use replies::{Expect, Replies};

pub use hidden::{HiddenEvent, HiddenOp};
pub use task::{Core, Ended};

/// Tunables of the core.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// `pause-after` in seconds: how far behind tmux lets us fall before it
    /// pauses a pane (which we then resync) instead of disconnecting us.
    pub pause_after_secs: u32,
    /// Scrollback lines kept per pane and captured on resync.
    pub history_lines: u32,
    /// Take a checkpoint snapshot after this much output…
    pub snapshot_every_bytes: usize,
    /// …or this long after the last one, if anything changed.
    pub snapshot_every: Duration,
    /// Debounce of browser resizes.
    pub resize_debounce: Duration,
    /// A pane producing more than this many bytes per second, while a person
    /// keeps tmux reading it, is paused and redrawn from tmux's screen at
    /// [`flood_frame_interval`](Self::flood_frame_interval) until it calms.
    pub flood_bytes_per_sec: usize,
    pub flood_frame_interval: Duration,
    /// Bound of unacked frames kept in memory before spilling to disk.
    pub unacked_memory_bytes: usize,
    /// Hard bound of unacked frames (memory + disk); beyond it the oldest are
    /// dropped and the relay gets a full session reset on reconnect.
    pub unacked_max_bytes: u64,
    /// tmux is 3.4 or later: the page's keys go through `send-keys -K` to
    /// our own control client's key table; before, they are resolved from
    /// `list-keys` (docs/protocol.md §5.1).
    pub keys_via_client: bool,
    /// The tmux version the pane models follow (`#{version}` at attach).
    pub tmux_profile: transcript::emu::Profile,
    /// A flood with no person's terminal attached gets the runner's hidden
    /// terminal client (`core::hidden`), so tmux skips redraws instead of
    /// escaping every byte for us.
    pub hidden_client: bool,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            pause_after_secs: 5,
            history_lines: 10_000,
            snapshot_every_bytes: 4 << 20,
            snapshot_every: Duration::from_secs(30),
            resize_debounce: Duration::from_millis(120),
            flood_bytes_per_sec: 1 << 20,
            flood_frame_interval: Duration::from_millis(50),
            unacked_memory_bytes: 32 << 20,
            unacked_max_bytes: 1 << 30,
            keys_via_client: true,
            tmux_profile: transcript::emu::Profile::NEWEST,
            hidden_client: true,
        }
    }
}

/// When an input happened, on both clocks (read by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic: flood windows, debounce, cadence.
    pub at: Instant,
    /// Milliseconds since the Unix epoch, stamped on the records made.
    pub wall_ms: u64,
}

/// What the relay side tells the core about this session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEvent {
    /// The relay serves this session on a connection tagged `generation`
    /// and has stored every record through `last_seq` (0 if none).
    Opened { generation: u64, last_seq: u64 },
    /// Connection `generation` is gone; what was sent on it may be lost.
    Lost { generation: u64 },
    /// A message from the relay for this session.
    Message(RelayMsg),
    /// The relay refused the runner's token: the loop ends with
    /// [`crate::session::Rejected`] (the machine never sees this).
    Rejected { reason: String },
}

/// A message from the relay for this session (its channel number, if any,
/// already taken off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayMsg {
    /// Every record with `seq <= N` is durably stored.
    Ack { seq: u64 },
    /// Keystrokes or paste for a pane.
    Input { pane: PaneId, data: String },
    /// The browsers' preferred size.
    Resize { cols: u16, rows: u16 },
    /// How many browsers watch.
    Viewers { count: u32 },
    /// Send a fresh Snapshot frame soon.
    SnapshotRequest,
    /// Key presses typed in a pane, as tmux names them (§5.1).
    Keys { pane: PaneId, keys: Vec<String> },
    /// A tmux action of the page (§5.1).
    Tmux(TmuxOp),
    /// Watch `pane` for idleness after `idle_ms` without output; `None`
    /// stops (§4.7).
    Watch { pane: PaneId, idle_ms: Option<u64> },
}

/// What the core sends to the relay. Frames and errors are for connection
/// `generation` only (one for a connection that is gone must be dropped,
/// never sent on the next one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToRelay {
    /// A Batch or Snapshot frame (protocol.md §3).
    Frame { generation: u64, bytes: Bytes },
    /// How many terminals (not control clients) are attached to the session:
    /// sent when the relay opens the session and whenever the count changes,
    /// connected or not (a runner's heartbeat carries the latest).
    Status { attached_clients: u32 },
    /// A watched pane went idle or active again, or its state as the
    /// answer to a `watch` (§4.7); sent on whatever connection is live.
    Activity { pane: PaneId, idle: bool, at: u64 },
    /// The frames that follow number the session over from the relay's
    /// `last_seq + 1` (protocol.md §4.2 `rebase`): said before them.
    Rebase { generation: u64 },
    /// A refused message (protocol.md §4.1 `error`).
    Error {
        generation: u64,
        code: ErrorCode,
        message: String,
    },
}

/// The `code` of an `error` message (protocol.md §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Input naming a pane that is not in this session (or does not exist).
    UnknownPane,
    /// A resize outside 1..=`protocol::control::MAX_RESIZE`.
    InvalidSize,
    /// tmux refused the page's command (the message is tmux's).
    Tmux,
    /// A key or name that cannot be sent to tmux.
    Invalid,
    /// Keys before the key bindings are loaded (tmux before 3.4).
    NotReady,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnknownPane => "unknown_pane",
            ErrorCode::InvalidSize => "invalid_size",
            ErrorCode::Tmux => "tmux",
            ErrorCode::Invalid => "invalid",
            ErrorCode::NotReady => "not_ready",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One input to the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// First, once: the control client is attached.
    Start,
    /// One event from tmux, in order.
    Tmux(Event),
    /// Every tmux event that was ready has been given: send the resyncs this
    /// burst asked for and turn its records into a frame.
    Drained,
    /// tmux's stdout closed: the control client exited.
    TmuxClosed,
    /// The relay opened the session on connection `generation`.
    RelayOpened { generation: u64, last_seq: u64 },
    /// Connection `generation` is gone.
    RelayLost { generation: u64 },
    /// A message from the relay.
    Relay(RelayMsg),
    /// News of the hidden terminal client the machine asked for.
    Hidden(HiddenEvent),
    /// Time passed: give it at [`Machine::next_wakeup`] (earlier is harmless).
    Tick,
    /// The runner stops: last frame and snapshot, detach.
    Shutdown,
}

/// What the machine asks its loop to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Write this command line to tmux's stdin.
    Tmux(CommandLine),
    /// Send this to the relay (if `generation` is still the live one).
    Relay(ToRelay),
    /// Start or stop the hidden terminal client; a start is answered at
    /// once with [`HiddenEvent::Spawned`] or [`HiddenEvent::Failed`].
    Hidden(HiddenOp),
    /// The session is over for this control client: stop the loop.
    Stop,
}

/// Records pending past this many encoded bytes make a frame without
/// waiting for the rest of the burst.
const BATCH_BYTES: usize = 256 << 10;

/// How often the attached clients are listed (besides on attach/detach).
const CLIENTS_EVERY: Duration = Duration::from_secs(5);

/// The state machine of one served session.
#[derive(Debug)]
pub struct Machine {
    cfg: CoreConfig,
    model: SessionModel,
    /// The time of the input being handled.
    now: Instant,
    /// The same, in ms since the epoch.
    wall_ms: u64,
    replies: Replies,
    resync: resync::Resyncs,
    flood: flood::Floods,
    seq: sequence::Sequencer,
    snap: snapshot::Cadence,
    resize: resize::Debounce,
    clients: topology::Clients,
    page: page::Page,
    idle: idle::Watches,
    hidden: hidden::Hidden,
    /// `%exit`'s reason, once tmux said the client exits.
    exit_reason: Option<String>,
    effects: Vec<Effect>,
}

impl Machine {
    /// A machine for a control client attached at `now`. `unacked` keeps
    /// the frames the relay has not acknowledged; `own_pid` is the control
    /// client's process id (not counted as an attached terminal).
    pub fn new(cfg: &CoreConfig, unacked: Unacked, own_pid: Option<u32>, now: Instant) -> Self {
        let model = SessionModel::new(SessionConfig {
            scrollback: cfg.history_lines as usize,
            profile: cfg.tmux_profile,
            ..SessionConfig::default()
        });
        Machine {
            cfg: cfg.clone(),
            model,
            now,
            wall_ms: 0,
            replies: Replies::default(),
            resync: resync::Resyncs::default(),
            flood: flood::Floods::default(),
            seq: sequence::Sequencer::new(unacked),
            snap: snapshot::Cadence::new(now),
            resize: resize::Debounce::default(),
            clients: topology::Clients::new(own_pid, now),
            page: page::Page::new(cfg.keys_via_client, own_pid),
            idle: idle::Watches::default(),
            hidden: hidden::Hidden::default(),
            exit_reason: None,
            effects: Vec::new(),
        }
    }

    /// Handles one input at `now` and returns what to do, in order.
    pub fn handle(&mut self, input: Input, now: Now) -> Vec<Effect> {
        self.now = now.at;
        self.wall_ms = now.wall_ms;
        self.model.set_time(now.wall_ms);
        match input {
            Input::Start => {
                self.list_clients();
                self.load_key_bindings();
            }
            Input::Tmux(ev) => self.on_tmux_event(ev),
            Input::Drained => self.end_of_cycle(),
            Input::TmuxClosed => {
                self.flush();
                info!("tmux control client exited");
                self.effects.push(Effect::Stop);
            }
            Input::RelayOpened {
                generation,
                last_seq,
            } => {
                self.relay_opened(generation, last_seq);
                self.effects.push(Effect::Relay(ToRelay::Status {
                    attached_clients: self.clients.attached,
                }));
                self.end_of_cycle();
            }
            Input::RelayLost { generation } => {
                self.relay_lost(generation);
                self.end_of_cycle();
            }
            Input::Relay(msg) => {
                self.on_relay(msg);
                self.end_of_cycle();
            }
            Input::Hidden(ev) => {
                self.on_hidden(ev);
                self.end_of_cycle();
            }
            Input::Tick => self.on_tick(),
            Input::Shutdown => {
                self.flush();
                self.send_snapshot();
                self.hidden_shutdown();
                // Detach politely; closing stdin afterwards also detaches.
                self.effects.push(Effect::Tmux(command::detach_client()));
                self.effects.push(Effect::Stop);
            }
        }
        std::mem::take(&mut self.effects)
    }

    /// When the machine next wants an [`Input::Tick`]: a flood frame, a
    /// debounced resize, a snapshot, a watched pane's idle time or a client
    /// listing falling due.
    pub fn next_wakeup(&self) -> Option<Instant> {
        [
            self.flood_wakeup(),
            self.resize_wakeup(),
            self.snapshot_wakeup(),
            self.idle_wakeup(),
            Some(self.clients.next_list),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Enough records are pending for a frame: the loop should stop
    /// gathering tmux events and give [`Input::Drained`].
    pub fn batch_full(&self) -> bool {
        self.seq.pending_bytes() > BATCH_BYTES
    }

    /// The reason tmux gave in `%exit`, if it sent one with a reason.
    pub fn exit_reason(&self) -> Option<&str> {
        self.exit_reason.as_deref()
    }

    /// How many terminals (not control clients, not the hidden client) are
    /// attached to the session, as last listed.
    pub fn attached_clients(&self) -> u32 {
        self.clients.attached
    }

    /// The session model (read-only).
    pub fn model(&self) -> &SessionModel {
        &self.model
    }

    /// Issues a command line to tmux whose last reply is `expect`.
    fn issue(&mut self, line: CommandLine, expect: Expect) {
        self.replies.expect(&line, expect);
        self.effects.push(Effect::Tmux(line));
    }

    /// A message for the live connection, if there is one.
    fn text(&mut self, msg: impl FnOnce(u64) -> ToRelay) {
        if let Some(generation) = self.seq.connection {
            self.effects.push(Effect::Relay(msg(generation)));
        }
    }

    fn pane_sizes(&self) -> HashMap<PaneId, (u16, u16)> {
        self.model
            .live_panes()
            .map(|(id, m)| (id, m.size()))
            .collect()
    }

    fn on_tmux_event(&mut self, ev: Event) {
        match ev {
            Event::Reply(reply) => self.on_reply(reply),
            Event::Output { pane, ref data } | Event::ExtendedOutput { pane, ref data, .. } => {
                let len = data.len();
                // Before flood control and resyncs, which may drop it.
                self.idle_output(pane);
                self.on_output(pane, len, &ev);
            }
            Event::Pause { pane } => {
                // tmux paused it for printing more than we read.
                self.idle_output(pane);
                if !self.flood.contains(pane) {
                    debug!(%pane, "paused by tmux");
                    self.resync.mark_paused(pane);
                }
            }
            Event::Continue { .. } => {}
            Event::ClientSessionChanged { .. } | Event::ClientDetached { .. } => {
                self.list_clients();
            }
            Event::Exit { reason } => {
                let reason = reason.map(|r| String::from_utf8_lossy(&r).into_owned());
                info!(?reason, "tmux says the client exits");
                self.exit_reason = reason;
            }
            Event::Malformed(err) => warn!(%err, "malformed line from tmux"),
            ev => {
                let before = self.pane_sizes();
                let records = self.model.apply(&ev);
                if !records.is_empty() {
                    self.snap.changed();
                }
                self.push_records(records);
                match ev {
                    Event::SessionChanged { .. }
                    | Event::WindowAdd { .. }
                    | Event::WindowRenamed { .. } => self.list_windows(),
                    Event::LayoutChange { .. } => {
                        // A resize makes tmux rewrap history and screen
                        // without sending output: heal every pane whose size
                        // changed, and new panes.
                        self.mark_resized(&before);
                    }
                    _ => {}
                }
            }
        }
    }

    /// `len` bytes of output of `pane` (the event `ev`): dropped while the
    /// pane floods or has a resync in flight, else into the model.
    fn on_output(&mut self, pane: PaneId, len: usize, ev: &Event) {
        if self.flood.note_dropped_output(pane, self.now) {
            return;
        }
        if self.resync.in_flight(pane) {
            // Bytes tmux read before our capture ran are already in the
            // capture (reference §2.3), and a flooding pane is redrawn from
            // tmux's screen: drop them.
            return;
        }
        if self.check_flood(pane, len) {
            return;
        }
        self.snap.output(len);
        let records = self.model.apply(ev);
        if records.len() > 1 {
            // A pane we had not seen: get it from tmux properly.
            self.resync.mark(pane);
        }
        self.push_records(records);
    }

    fn on_reply(&mut self, reply: Reply) {
        if reply.flags == 0 {
            // The initial attach and hooks: not ours.
            if !reply.success {
                warn!(error = %String::from_utf8_lossy(&reply.text()), "tmux reported an error");
            }
            return;
        }
        let Some((expect, skipped)) = self.replies.answer(reply.success) else {
            debug!("a reply nobody waited for");
            return;
        };
        // The reply first: a failed part completes its resync bundle (and
        // its failure handling sends the `continue` the bundle would have).
        match expect {
            Expect::Ignore(what) => {
                if !reply.success {
                    warn!(command = what, error = %String::from_utf8_lossy(&reply.text()), "tmux refused a command");
                }
            }
            Expect::Windows => self.windows_reply(&reply),
            Expect::Clients => self.clients_reply(&reply),
            Expect::Keys => self.key_bindings_reply(&reply),
            Expect::HiddenSize => self.hidden_size_reply(&reply),
            Expect::Page => {
                if !reply.success {
                    let message = String::from_utf8_lossy(&reply.text()).trim().to_owned();
                    self.text(|generation| ToRelay::Error {
                        generation,
                        code: ErrorCode::Tmux,
                        message,
                    });
                }
            }
            Expect::Resync { pane, part, parts } => self.resync_reply(pane, part, parts, reply),
        }
        if !skipped.is_empty() {
            // Replies that will never come: an earlier command of their line
            // failed. Nothing waits on them: the only lines that carry
            // several expectations are resync bundles, which the failed
            // part completes, and joined commands whose replies we ignore.
            debug!(?skipped, "skipped by tmux after a failed command");
        }
    }

    fn on_relay(&mut self, msg: RelayMsg) {
        match msg {
            RelayMsg::Ack { seq } => self.relay_ack(seq),
            RelayMsg::Input { pane, data } => self.input(pane, data.as_bytes()),
            RelayMsg::Resize { cols, rows } => self.relay_resize(cols, rows),
            RelayMsg::SnapshotRequest => self.send_snapshot(),
            RelayMsg::Viewers { count } => debug!(count, "viewers"),
            RelayMsg::Keys { pane, keys } => self.page_keys(pane, &keys),
            RelayMsg::Tmux(op) => self.page_tmux(&op),
            RelayMsg::Watch { pane, idle_ms } => self.watch(pane, idle_ms),
        }
    }

    /// Keystrokes for `pane`, only if it is a live pane of this session: a
    /// pane id is server-wide, and `send-keys -t %N` would type into any
    /// session's pane (issue 10).
    fn input(&mut self, pane: PaneId, data: &[u8]) {
        if !self.model.live_panes().any(|(id, _)| id == pane) {
            warn!(%pane, bytes = data.len(), "input for a pane outside this session dropped");
            self.text(|generation| ToRelay::Error {
                generation,
                code: ErrorCode::UnknownPane,
                message: format!("pane {pane} is not in this session"),
            });
            return;
        }
        for line in command::send_input(pane, data) {
            self.issue(line, Expect::Ignore("send-keys"));
        }
    }

    /// The end of a burst of inputs: resync bundles for dirty panes,
    /// `continue` for panes that need it, pending records into a frame, and
    /// a snapshot if enough output went by.
    fn end_of_cycle(&mut self) {
        self.send_resyncs();
        self.flush();
        self.snapshot_if_due_by_bytes();
    }

    fn on_tick(&mut self) {
        if !self.flood.is_empty() {
            self.flood_frames();
            self.end_of_cycle();
        }
        self.resize_tick();
        self.snapshot_if_due_by_time();
        self.clients_tick();
        self.idle_tick();
    }
}

#[cfg(test)]
mod tests;
