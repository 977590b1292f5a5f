//! The session core: one task that owns everything about one served tmux
//! session — the transcript's `SessionModel`, the queue of commands waiting
//! for replies, pane resyncs, batching records into frames, the unacked
//! frames, snapshots, input and the resize policy.
//!
//! Inputs arrive on three channels (tmux events, uplink events, shutdown);
//! outputs leave on two (command lines to tmux, frames to the uplink). The
//! loop is one flat `select!`. Nothing here blocks on the network: frames
//! wait in [`Unacked`] until the relay acknowledges them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use protocol::control::{RelayToRunner, RunnerToRelay};
use protocol::wire::{Frame, Record};
use tmux_cc::command::{self, CommandLine};
use tmux_cc::command::{Target, WindowScope};
use tmux_cc::state::PaneResync;
use tmux_cc::{Event, PaneId, Reply};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use transcript::session::{SessionConfig, SessionModel};

use crate::tmux::TmuxOutput;
use crate::unacked::Unacked;
use crate::uplink::{ToUplink, UplinkEvent};

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
        }
    }
}

/// What a reply we are waiting for is for.
#[derive(Debug)]
enum Expect {
    /// Nothing to do with the reply (but log an error).
    Ignore(&'static str),
    /// `list-windows` with [`WINDOWS_FORMAT`].
    Windows,
    /// `list-clients` with [`CLIENTS_FORMAT`].
    Clients,
    /// Part `part` of a resync bundle for `pane`.
    Resync {
        pane: PaneId,
        part: usize,
        parts: usize,
    },
}

/// Output counted over a short window.
#[derive(Debug, Clone, Copy)]
struct Rate {
    since: Instant,
    bytes: usize,
}

/// A pane that floods: redrawn from tmux's screen, its output dropped.
#[derive(Debug)]
struct Flood {
    /// The last frame's screen, cursor and history size.
    last: Option<(Vec<Vec<u8>>, u32, u32, u32)>,
    next_frame: Instant,
    /// We paused it (a terminal keeps tmux reading it).
    paused: bool,
    /// When its last dropped output arrived.
    last_output: Instant,
}

/// `list-windows` format: fields that hold no space first, the name last
/// (it may hold anything). Space separates: tmux versions differ in whether
/// command output escapes tabs.
const WINDOWS_FORMAT: &str = "#{window_id} #{window_index} #{window_layout} #{window_visible_layout} #{window_raw_flags} #{window_active} #{window_name}";
/// `list-clients` format.
const CLIENTS_FORMAT: &str = "#{client_control_mode} #{client_pid} #{client_tty}";

#[derive(Debug, Default)]
struct ResyncState {
    /// A frame of a flooding pane: visible screen only, no `continue`.
    flood_frame: bool,
    /// Replies collected so far.
    replies: Vec<Reply>,
    /// Another resync was asked for while this one was in flight.
    again: bool,
    /// Send `continue` for the pane at the end of the bundle.
    continue_after: bool,
}

/// Runs the core until tmux exits or `cancel` fires.
pub struct Core {
    cfg: CoreConfig,
    tmux: mpsc::Sender<Bytes>,
    uplink: mpsc::Sender<ToUplink>,
    model: SessionModel,
    /// Replies we wait for, in order, each with how many more replies its
    /// command line owes after it: tmux skips the rest of a `;`-joined line
    /// after a failed command, so an error drops those too.
    expect: VecDeque<(Expect, usize)>,
    resyncing: HashMap<PaneId, ResyncState>,
    /// Panes that need a resync at the end of this drain cycle.
    dirty: HashSet<PaneId>,
    /// Panes paused by tmux (`%pause`) that need `continue` after resync.
    paused: HashSet<PaneId>,
    /// Panes to send a bare `continue` for at the end of this cycle.
    continue_panes: Vec<PaneId>,
    records: Vec<Record>,
    /// Encoded size of `records` (kept, not recomputed, on the hot path).
    records_bytes: usize,
    /// Output rate per pane, for flood detection.
    rates: HashMap<PaneId, Rate>,
    /// Panes paused because they flood, with the last frame's fingerprint.
    flooding: HashMap<PaneId, Flood>,
    unacked: Unacked,
    /// The live relay connection's generation, once `welcome` arrived.
    connection: Option<u64>,
    /// Whether the relay's sequence and ours have been joined once (the
    /// first connection always rebases: the relay may hold records of an
    /// earlier run of the bridge).
    session_epoch_started: bool,
    /// Added (wrapping) to the model's sequence numbers to get the relay's:
    /// the model counts from 1 and a rebase moves this.
    seq_offset: u64,
    bytes_since_snapshot: usize,
    changed_since_snapshot: bool,
    last_snapshot: Instant,
    pending_resize: Option<(u16, u16, Instant)>,
    applied_size: Option<(u16, u16)>,
    attached_tty_clients: u32,
    own_pid: Option<u32>,
}

impl Core {
    pub fn new(
        cfg: CoreConfig,
        tmux: mpsc::Sender<Bytes>,
        uplink: mpsc::Sender<ToUplink>,
        spill_dir: std::path::PathBuf,
        own_pid: Option<u32>,
    ) -> Self {
        let model = SessionModel::new(SessionConfig {
            scrollback: cfg.history_lines as usize,
            ..SessionConfig::default()
        });
        let unacked = Unacked::new(cfg.unacked_memory_bytes, cfg.unacked_max_bytes, spill_dir);
        Core {
            cfg,
            tmux,
            uplink,
            model,
            expect: VecDeque::new(),
            resyncing: HashMap::new(),
            dirty: HashSet::new(),
            paused: HashSet::new(),
            continue_panes: Vec::new(),
            records: Vec::new(),
            records_bytes: 0,
            rates: HashMap::new(),
            flooding: HashMap::new(),
            unacked,
            connection: None,
            session_epoch_started: false,
            seq_offset: 0,
            bytes_since_snapshot: 0,
            changed_since_snapshot: false,
            last_snapshot: Instant::now(),
            pending_resize: None,
            applied_size: None,
            attached_tty_clients: 0,
            own_pid,
        }
    }

    /// The main loop.
    pub async fn run(
        mut self,
        mut tmux_out: mpsc::Receiver<TmuxOutput>,
        mut uplink_in: mpsc::UnboundedReceiver<UplinkEvent>,
        cancel: CancellationToken,
    ) -> anyhow::Result<()> {
        self.start().await?;
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut clients_tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = cancel.cancelled() => {
                    self.shutdown().await;
                    return Ok(());
                }
                out = tmux_out.recv() => match out {
                    Some(TmuxOutput::Events(events)) => {
                        for ev in events {
                            self.on_tmux_event(ev).await?;
                        }
                        // Drain whatever else is ready before flushing, so a
                        // flood becomes big frames and a keystroke goes out
                        // at once.
                        while let Ok(more) = tmux_out.try_recv() {
                            match more {
                                TmuxOutput::Events(events) => {
                                    for ev in events {
                                        self.on_tmux_event(ev).await?;
                                    }
                                }
                                TmuxOutput::Closed => {
                                    self.flush().await;
                                    info!("tmux control client exited");
                                    return Ok(());
                                }
                            }
                            if self.records_bytes > 256 << 10 {
                                break;
                            }
                        }
                        self.end_of_cycle().await;
                    }
                    Some(TmuxOutput::Closed) | None => {
                        self.flush().await;
                        info!("tmux control client exited");
                        return Ok(());
                    }
                },
                ev = uplink_in.recv() => match ev {
                    Some(ev) => {
                        self.on_uplink(ev).await?;
                        self.end_of_cycle().await;
                    }
                    None => return Ok(()),
                },
                _ = tick.tick() => self.on_tick().await,
                _ = clients_tick.tick() => self.list_clients().await,
            }
        }
    }

    /// First command after attaching (the client flags were given to
    /// `attach-session`). The topology is listed once `%session-changed`
    /// tells us which session we are on.
    async fn start(&mut self) -> anyhow::Result<()> {
        self.list_clients().await;
        Ok(())
    }

    async fn send_tmux(&mut self, line: CommandLine, expect: Expect) {
        let n = line.replies().max(1);
        for i in 0..n - 1 {
            self.expect
                .push_back((Expect::Ignore("batched command"), n - 1 - i));
        }
        self.expect.push_back((expect, 0));
        if self
            .tmux
            .send(Bytes::copy_from_slice(line.as_bytes()))
            .await
            .is_err()
        {
            debug!("tmux writer is gone");
        }
    }

    async fn list_windows(&mut self) {
        let Some(session) = self.model.topology().session else {
            return;
        };
        match command::list_windows(
            &WindowScope::Session(Target::Session(session)),
            WINDOWS_FORMAT,
        ) {
            Ok(line) => self.send_tmux(line, Expect::Windows).await,
            Err(err) => warn!(%err, "list-windows"),
        }
    }

    async fn list_clients(&mut self) {
        match command::list_clients(CLIENTS_FORMAT) {
            Ok(line) => self.send_tmux(line, Expect::Clients).await,
            Err(err) => warn!(%err, "list-clients"),
        }
    }

    fn pane_sizes(&self) -> HashMap<PaneId, (u16, u16)> {
        self.model
            .live_panes()
            .map(|(id, m)| (id, m.size()))
            .collect()
    }

    async fn on_tmux_event(&mut self, ev: Event) -> anyhow::Result<()> {
        self.model.set_time(wall_clock_ms());
        match &ev {
            Event::Output { pane, data } | Event::ExtendedOutput { pane, data, .. } => {
                if let Some(f) = self.flooding.get_mut(pane) {
                    f.last_output = Instant::now();
                    return Ok(());
                }
                if self.resyncing.contains_key(pane) {
                    // Bytes tmux read before our capture ran are already in
                    // the capture (reference §2.3), and a flooding pane is
                    // redrawn from tmux's screen: drop them.
                    return Ok(());
                }
                if self.is_flooding(*pane, data.len()).await {
                    return Ok(());
                }
                self.bytes_since_snapshot += data.len();
                self.changed_since_snapshot = true;
                let records = self.model.apply(&ev);
                if records.len() > 1 {
                    // A pane we had not seen: get it from tmux properly.
                    self.dirty.insert(*pane);
                }
                self.push_records(records);
                return Ok(());
            }
            Event::Reply(reply) => {
                if reply.flags == 0 {
                    // The initial attach and hooks: not ours.
                    if !reply.success {
                        warn!(error = %String::from_utf8_lossy(&reply.text()), "tmux reported an error");
                    }
                    return Ok(());
                }
                let Some((expect, rest)) = self.expect.pop_front() else {
                    debug!("a reply nobody waited for");
                    return Ok(());
                };
                if !reply.success {
                    for _ in 0..rest {
                        if let Some((skipped, _)) = self.expect.pop_front() {
                            self.skipped(skipped);
                        }
                    }
                }
                return self.on_reply(expect, reply.clone()).await;
            }
            Event::Pause { pane } => {
                if !self.flooding.contains_key(pane) {
                    debug!(%pane, "paused by tmux");
                    self.paused.insert(*pane);
                    self.dirty.insert(*pane);
                }
                return Ok(());
            }
            Event::Continue { .. } => return Ok(()),
            Event::ClientSessionChanged { .. } | Event::ClientDetached { .. } => {
                self.list_clients().await;
                return Ok(());
            }
            Event::Exit { reason } => {
                info!(reason = ?reason.as_ref().map(|r| String::from_utf8_lossy(r).into_owned()), "tmux says the client exits");
                return Ok(());
            }
            Event::Malformed(err) => {
                warn!(%err, "malformed line from tmux");
                return Ok(());
            }
            _ => {}
        }
        let before = self.pane_sizes();
        let records = self.model.apply(&ev);
        self.changed_since_snapshot |= !records.is_empty();
        self.push_records(records);
        match ev {
            Event::SessionChanged { .. }
            | Event::WindowAdd { .. }
            | Event::WindowRenamed { .. } => {
                self.list_windows().await;
            }
            Event::LayoutChange { .. } => {
                // A resize makes tmux rewrap history and screen without
                // sending output: heal every pane whose size changed, and
                // new panes.
                self.mark_resized(&before);
            }
            _ => {}
        }
        Ok(())
    }

    fn mark_resized(&mut self, before: &HashMap<PaneId, (u16, u16)>) {
        for (pane, size) in self.pane_sizes() {
            if before.get(&pane) != Some(&size) {
                self.dirty.insert(pane);
            }
        }
    }

    /// A reply that will never come (an earlier command of its line failed).
    fn skipped(&mut self, expect: Expect) {
        if let Expect::Resync { pane, .. } = expect {
            self.resyncing.remove(&pane);
        }
    }

    async fn on_reply(&mut self, expect: Expect, reply: Reply) -> anyhow::Result<()> {
        match expect {
            Expect::Ignore(what) => {
                if !reply.success {
                    warn!(command = what, error = %String::from_utf8_lossy(&reply.text()), "tmux refused a command");
                }
            }
            Expect::Windows => {
                if reply.success {
                    let before = self.pane_sizes();
                    for line in &reply.lines {
                        let Some((window, index, name, layout_event)) = parse_window_line(line)
                        else {
                            warn!("unparsable list-windows line");
                            continue;
                        };
                        let records = self.model.apply(&layout_event);
                        self.push_records(records);
                        let records = self.model.set_window_info(window, Some(index), &name);
                        self.push_records(records);
                    }
                    self.mark_resized(&before);
                }
            }
            Expect::Clients => {
                if reply.success {
                    let mut ttys = 0;
                    for line in &reply.lines {
                        let mut f = line.splitn(3, |&b| b == b' ');
                        let control = f.next().is_none_or(|v| v == b"1");
                        let pid = f
                            .next()
                            .and_then(|p| std::str::from_utf8(p).ok()?.parse::<u32>().ok());
                        if !control && pid != self.own_pid {
                            ttys += 1;
                        }
                    }
                    if ttys != self.attached_tty_clients {
                        self.attached_tty_clients = ttys;
                        info!(attached = ttys, "terminal clients attached");
                        self.send_text(RunnerToRelay::Status {
                            attached_clients: ttys,
                        })
                        .await;
                    }
                }
            }
            Expect::Resync { pane, part, parts } => {
                let failed = !reply.success;
                let Some(state) = self.resyncing.get_mut(&pane) else {
                    return Ok(());
                };
                state.replies.push(reply);
                if failed || part + 1 == parts {
                    let state = self.resyncing.remove(&pane).unwrap_or_default();
                    self.finish_resync(pane, state);
                }
            }
        }
        Ok(())
    }

    /// Counts a pane's output and, past the flood rate, stops streaming it:
    /// the pane is redrawn from tmux's own screen at a frame rate instead
    /// (tmux parses every byte into its grid anyway). While a person keeps
    /// tmux reading the pane, we also pause it, so tmux drops the bytes for
    /// us (reference §7). Alone we must not pause (tmux would stop reading a
    /// pane no client takes and block the program), so we read and drop the
    /// bytes, which costs only the parser. Returns `true` when the pane
    /// starts flooding.
    async fn is_flooding(&mut self, pane: PaneId, len: usize) -> bool {
        let now = Instant::now();
        let rate = self.rates.entry(pane).or_insert(Rate {
            since: now,
            bytes: 0,
        });
        if now.duration_since(rate.since) > Duration::from_millis(250) {
            *rate = Rate {
                since: now,
                bytes: 0,
            };
        }
        rate.bytes += len;
        let elapsed = now
            .duration_since(rate.since)
            .max(Duration::from_millis(50));
        let per_sec = rate.bytes as f64 / elapsed.as_secs_f64();
        if per_sec < self.cfg.flood_bytes_per_sec as f64 || rate.bytes < 256 << 10 {
            return false;
        }
        let pause = self.attached_tty_clients > 0;
        debug!(%pane, per_sec, pause, "pane floods: redrawing it from tmux");
        self.flooding.insert(
            pane,
            Flood {
                last: None,
                next_frame: now,
                paused: pause,
                last_output: now,
            },
        );
        if pause {
            let line = command::pane_flow(pane, command::PaneFlow::Pause);
            self.send_tmux(line, Expect::Ignore("refresh-client -A pause"))
                .await;
        }
        true
    }

    /// Asks tmux for the visible screen of every flooding pane whose next
    /// frame is due.
    async fn flood_frames(&mut self) {
        let now = Instant::now();
        let due: Vec<PaneId> = self
            .flooding
            .iter()
            .filter(|(p, f)| f.next_frame <= now && !self.resyncing.contains_key(*p))
            .map(|(p, _)| *p)
            .collect();
        for pane in due {
            if let Some(f) = self.flooding.get_mut(&pane) {
                f.next_frame = now + self.cfg.flood_frame_interval;
            }
            let line = tmux_cc::state::resync_commands(pane, 0, false);
            self.send_resync(
                pane,
                line,
                ResyncState {
                    flood_frame: true,
                    ..Default::default()
                },
            )
            .await;
        }
    }

    async fn send_resync(&mut self, pane: PaneId, line: CommandLine, state: ResyncState) {
        let parts = line.replies();
        self.resyncing.insert(pane, state);
        for part in 0..parts {
            self.expect
                .push_back((Expect::Resync { pane, part, parts }, parts - 1 - part));
        }
        if self
            .tmux
            .send(Bytes::copy_from_slice(line.as_bytes()))
            .await
            .is_err()
        {
            debug!("tmux writer is gone");
        }
    }

    /// Rebuilds a pane from its resync replies (reference §8.5).
    fn finish_resync(&mut self, pane: PaneId, state: ResyncState) {
        if state.flood_frame {
            self.finish_flood_frame(pane, state);
            return;
        }
        // tmux before 3.7 does not report bracketed paste: keep what we knew.
        let bracketed = self
            .model
            .pane(pane)
            .is_some_and(|p| p.screen().bracketed_paste());
        let scrollback = self.cfg.history_lines as usize;
        let seeded = PaneResync::from_replies(&state.replies)
            .map_err(|e| e.to_string())
            .and_then(|r| {
                transcript::seed::seed(&r, scrollback, bracketed).map_err(|e| e.to_string())
            });
        match seeded {
            Ok(model) => {
                self.changed_since_snapshot = true;
                let record = self.model.replace_pane(pane, model);
                self.push_records(vec![record]);
            }
            // The pane may be gone (killed between the command and its run).
            Err(err) => {
                debug!(%pane, %err, "resync failed");
                if state.continue_after {
                    // The bundle's own `continue` was skipped with the rest
                    // of its line: resume the pane's output anyway.
                    self.continue_panes.push(pane);
                }
            }
        }
        if state.again {
            self.dirty.insert(pane);
        }
    }

    /// A frame of a flooding pane: show it, or, when the screen stopped
    /// changing, end the flood with a full resync and `continue`.
    fn finish_flood_frame(&mut self, pane: PaneId, state: ResyncState) {
        let Ok(resync) = PaneResync::from_replies(&state.replies) else {
            // The pane is gone or tmux refused: stop treating it as flooding.
            self.flooding.remove(&pane);
            self.continue_panes.push(pane);
            return;
        };
        let fingerprint = (
            resync.screen.clone(),
            resync.state.cursor_x,
            resync.state.cursor_y,
            resync.state.history_size,
        );
        // Paused, tmux sends nothing: the flood is over when the screen
        // stops changing. Not paused, when the output stops.
        let calm = self.flooding.get(&pane).is_some_and(|f| {
            if f.paused {
                f.last.as_ref() == Some(&fingerprint)
            } else {
                f.last_output.elapsed() >= Duration::from_millis(150)
            }
        });
        if calm {
            debug!(%pane, "flood over: full resync");
            if self.flooding.remove(&pane).is_some_and(|f| f.paused) {
                self.paused.insert(pane);
            }
            self.rates.remove(&pane);
            self.dirty.insert(pane);
            return;
        }
        let bracketed = self
            .model
            .pane(pane)
            .is_some_and(|p| p.screen().bracketed_paste());
        match transcript::seed::seed(&resync, self.cfg.history_lines as usize, bracketed) {
            Ok(model) => {
                self.changed_since_snapshot = true;
                let record = self.model.replace_pane(pane, model);
                self.push_records(vec![record]);
            }
            Err(err) => debug!(%pane, %err, "flood frame failed"),
        }
        if let Some(f) = self.flooding.get_mut(&pane) {
            f.last = Some(fingerprint);
        }
    }

    /// Sends the resync bundles for dirty panes, flushes records.
    async fn end_of_cycle(&mut self) {
        let dirty: Vec<PaneId> = self.dirty.drain().collect();
        for pane in dirty {
            if self.model.pane(pane).is_none() {
                continue;
            }
            if self.flooding.contains_key(&pane) {
                // Its frames come from tmux anyway; the flood's end resyncs.
                continue;
            }
            if let Some(state) = self.resyncing.get_mut(&pane) {
                state.again = true;
                continue;
            }
            let continue_after = self.paused.remove(&pane);
            let line =
                tmux_cc::state::resync_commands(pane, self.cfg.history_lines, continue_after);
            self.send_resync(
                pane,
                line,
                ResyncState {
                    continue_after,
                    ..Default::default()
                },
            )
            .await;
        }
        for pane in std::mem::take(&mut self.continue_panes) {
            let line = command::pane_flow(pane, command::PaneFlow::Continue);
            self.send_tmux(line, Expect::Ignore("refresh-client -A continue"))
                .await;
        }
        self.flush().await;
        if self.bytes_since_snapshot >= self.cfg.snapshot_every_bytes {
            self.send_snapshot().await;
        }
    }

    fn push_records(&mut self, records: Vec<Record>) {
        let off = self.seq_offset;
        for mut r in records {
            r.seq = r.seq.wrapping_add(off);
            self.records_bytes += r.encoded_len();
            self.records.push(r);
        }
    }

    /// The relay's sequence number of the last record made.
    fn last_seq(&self) -> u64 {
        self.model
            .next_seq()
            .wrapping_add(self.seq_offset)
            .wrapping_sub(1)
    }

    /// Turns pending records into one frame, keeps it until acked, sends it.
    async fn flush(&mut self) {
        if self.records.is_empty() {
            return;
        }
        let records = std::mem::take(&mut self.records);
        self.records_bytes = 0;
        let Some(frame) = Frame::batch(records) else {
            warn!("cannot frame a batch");
            return;
        };
        let (first, last) = (frame.first_seq, frame.last_seq);
        let bytes = frame.encode(true);
        if let Err(err) = self.unacked.push(first, last, bytes.clone()) {
            warn!(%err, "unacked frames could not spill to disk");
        }
        if let Some(generation) = self.connection
            && self
                .uplink
                .send(ToUplink::Frame { generation, bytes })
                .await
                .is_err()
        {
            debug!("uplink is gone");
        }
    }

    async fn send_snapshot(&mut self) {
        self.bytes_since_snapshot = 0;
        self.changed_since_snapshot = false;
        self.last_snapshot = Instant::now();
        let Some(generation) = self.connection else {
            return;
        };
        // A snapshot must describe exactly the records sent so far.
        self.flush().await;
        let snap = self.model.snapshot();
        let seq = snap.seq.wrapping_add(self.seq_offset);
        let records = snap
            .records
            .into_iter()
            .map(|mut r| {
                r.seq = seq;
                r
            })
            .collect();
        let Some(frame) = Frame::snapshot(seq, records) else {
            warn!("cannot frame a snapshot");
            return;
        };
        let bytes = frame.encode(true);
        debug!(at = seq, bytes = bytes.len(), "snapshot");
        let _ = self
            .uplink
            .send(ToUplink::Frame { generation, bytes })
            .await;
    }

    async fn send_text(&mut self, msg: RunnerToRelay) {
        if let Some(generation) = self.connection {
            let _ = self.uplink.send(ToUplink::Text { generation, msg }).await;
        }
    }

    /// Fails only when the relay refused our token (the core must stop).
    async fn on_uplink(&mut self, ev: UplinkEvent) -> anyhow::Result<()> {
        self.model.set_time(wall_clock_ms());
        match ev {
            UplinkEvent::Connected {
                generation,
                session_id,
                last_seq,
            } => {
                info!(session_id, last_seq, "relay session");
                self.connection = Some(generation);
                self.on_connected(generation, last_seq).await;
                let msg = RunnerToRelay::Status {
                    attached_clients: self.attached_tty_clients,
                };
                self.send_text(msg).await;
            }
            UplinkEvent::Disconnected { generation } => {
                if self.connection == Some(generation) {
                    self.connection = None;
                }
            }
            UplinkEvent::Rejected { reason } => {
                return Err(crate::session::Rejected(reason).into());
            }
            UplinkEvent::Message(msg) => match msg {
                RelayToRunner::Ack { seq } => self.unacked.ack(seq),
                RelayToRunner::Input { pane, data } => {
                    for line in command::send_input(pane, data.as_bytes()) {
                        self.send_tmux(line, Expect::Ignore("send-keys")).await;
                    }
                }
                RelayToRunner::Resize { cols, rows }
                    if protocol::control::resize_is_valid(cols, rows) =>
                {
                    self.pending_resize =
                        Some((cols, rows, Instant::now() + self.cfg.resize_debounce));
                }
                RelayToRunner::SnapshotRequest => self.send_snapshot().await,
                RelayToRunner::Viewers { count } => debug!(count, "viewers"),
                _ => {}
            },
        }
        Ok(())
    }

    /// Resends what the relay misses, or rebases our sequence onto the
    /// relay's when that is impossible.
    async fn on_connected(&mut self, generation: u64, relay_last: u64) {
        // Records made but not framed yet belong to the frames to come.
        self.flush().await;
        let ours = self.last_seq();
        if self.session_epoch_started && self.unacked.covers_after(relay_last, ours) {
            self.unacked.ack(relay_last);
            let frames = self.unacked.frames_after(relay_last).unwrap_or_else(|err| {
                warn!(%err, "reading unacked frames back from disk");
                Vec::new()
            });
            debug!(
                count = frames.len(),
                from = relay_last + 1,
                "resending unacked frames"
            );
            for bytes in frames {
                if self
                    .uplink
                    .send(ToUplink::Frame { generation, bytes })
                    .await
                    .is_err()
                {
                    return;
                }
            }
        } else {
            // We restarted, or dropped frames: continue the relay's sequence
            // with a full reset of every pane, so a browser resuming at any
            // seq converges on what tmux shows now.
            info!(
                relay_last,
                ours, "continuing the relay's sequence with a full reset"
            );
            self.unacked.clear();
            // Wrapping arithmetic: the offset may be "negative" (the relay is
            // behind what we numbered before it answered).
            self.seq_offset = (relay_last + 1).wrapping_sub(self.model.next_seq());
            let records = self.model.reset_records();
            self.push_records(records);
            self.session_epoch_started = true;
            self.flush().await;
        }
        self.send_snapshot().await;
    }

    async fn on_tick(&mut self) {
        self.model.set_time(wall_clock_ms());
        if !self.flooding.is_empty() {
            self.flood_frames().await;
            self.end_of_cycle().await;
        }
        if let Some((cols, rows, at)) = self.pending_resize
            && Instant::now() >= at
        {
            self.pending_resize = None;
            if self.applied_size != Some((cols, rows)) {
                self.applied_size = Some((cols, rows));
                match command::resize_client(u32::from(cols), u32::from(rows)) {
                    Ok(line) => {
                        self.send_tmux(line, Expect::Ignore("refresh-client -C"))
                            .await
                    }
                    Err(err) => warn!(%err, "refusing a resize"),
                }
            }
        }
        if self.changed_since_snapshot && self.last_snapshot.elapsed() >= self.cfg.snapshot_every {
            self.send_snapshot().await;
        }
    }

    async fn shutdown(&mut self) {
        self.flush().await;
        self.send_snapshot().await;
        // Detach politely; dropping stdin afterwards also detaches.
        let _ = self
            .tmux
            .send(Bytes::copy_from_slice(command::detach_client().as_bytes()))
            .await;
    }
}

/// Milliseconds since the Unix epoch, stamped on records.
fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Parses one `list-windows` line of [`WINDOWS_FORMAT`] into the window, its
/// index and name, and a synthetic `%layout-change` event.
fn parse_window_line(line: &[u8]) -> Option<(tmux_cc::WindowId, u32, Bytes, Event)> {
    let mut f = line.splitn(7, |&b| b == b' ');
    let window = tmux_cc::WindowId::parse_bytes(f.next()?)?;
    let index = std::str::from_utf8(f.next()?).ok()?.parse().ok()?;
    let layout = Bytes::copy_from_slice(f.next()?);
    let visible = Bytes::copy_from_slice(f.next()?);
    let flags = Bytes::copy_from_slice(f.next()?);
    let _active = f.next()?;
    let name = Bytes::copy_from_slice(f.next().unwrap_or_default());
    let ev = Event::LayoutChange {
        window,
        layout,
        visible_layout: Some(visible),
        flags: Some(flags),
    };
    Some((window, index, name, ev))
}
