//! [`SessionModel`]: one tmux session's topology and pane screens, fed with
//! `tmux_cc::Event`s, producing the gap-free sequence of [`Record`]s that
//! protocol §1–§2 describes; and [`SessionView`], which applies records
//! (what a browser, a test or a store reader does).
//!
//! The model owns: windows (id, index, name, layout, visible layout, flags,
//! active pane), the pane→window map (always from the latest layout), one
//! [`PaneModel`] per pane, and the next sequence number. It does no I/O and
//! reads no clock; replies to commands are handled by the bridge, which
//! calls [`SessionModel::set_window_info`] and [`SessionModel::replace_pane`] with a model
//! from [`crate::seed`].
//!
//! Record semantics, which [`SessionView`] implements and the browser must
//! follow: a PaneReset creates or replaces a pane at its size; Output feeds
//! it; a Topology only describes (it never resizes a pane). The model
//! therefore emits a PaneReset before the first Output of a pane it has not
//! announced and whenever a layout gives a pane a new size (the reset carries
//! the pane as the model holds it after the resize; the bridge then resyncs
//! it from tmux, which reflows).

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use tmux_cc::{Event, Layout, PaneId, SessionId, WindowId};

use crate::emu::Profile;
use crate::pane::{PaneModel, SizeError};
use protocol::topology::{PaneInfo, Topology, WindowInfo};
use protocol::wire::{Frame, Record, RecordBody};

/// How panes are modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// Scrollback lines kept per pane.
    pub scrollback: usize,
    /// Size of a pane whose size the stream has not stated yet.
    pub default_size: (u16, u16),
    /// Sequence number of the first record (the relay's `last_seq + 1` for
    /// a bridge that resumes).
    pub first_seq: u64,
    /// The tmux version the pane models follow (`#{version}` at attach).
    pub profile: Profile,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            scrollback: 10_000,
            default_size: (80, 24),
            first_seq: 1,
            profile: Profile::NEWEST,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Window {
    index: Option<u32>,
    name: String,
    layout: String,
    visible_layout: String,
    flags: String,
    active_pane: Option<PaneId>,
    /// Panes in layout order with their offset.
    panes: Vec<(PaneId, i32, i32)>,
}

#[derive(Debug)]
struct Pane {
    model: PaneModel,
    window: Option<WindowId>,
    /// Dropped from its window's layout or its window closed; kept a while
    /// in case a `join-pane`/`move-pane` places it in another window.
    dead: bool,
}

/// How many dead panes are kept for a possible move between windows.
const DEAD_KEPT: usize = 16;

/// A checkpoint: the records that rebuild the session at `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub seq: u64,
    /// One Topology, then one PaneReset per pane, each with `seq`.
    pub records: Vec<Record>,
}

impl Snapshot {
    /// The protocol's Snapshot frame.
    pub fn frame(&self) -> Option<Frame> {
        Frame::snapshot(self.seq, self.records.clone())
    }
}

/// One tmux session as the bridge sees it.
#[derive(Debug)]
pub struct SessionModel {
    config: SessionConfig,
    session: Option<SessionId>,
    name: String,
    active_window: Option<WindowId>,
    windows: BTreeMap<WindowId, Window>,
    panes: BTreeMap<PaneId, Pane>,
    dead: VecDeque<PaneId>,
    /// Windows added without a known pane, oldest first: tmux creates a
    /// window with its first pane and sends no layout for it, so the next
    /// unknown pane that speaks is taken to be that window's (a later
    /// layout always overrides this guess).
    awaiting_pane: VecDeque<WindowId>,
    next_seq: u64,
    /// The time stamped on the records made from now on (milliseconds since
    /// the Unix epoch), given by the caller: the model reads no clock.
    now_ms: u64,
}

impl SessionModel {
    pub fn new(config: SessionConfig) -> SessionModel {
        SessionModel {
            config,
            session: None,
            name: String::new(),
            active_window: None,
            windows: BTreeMap::new(),
            panes: BTreeMap::new(),
            dead: VecDeque::new(),
            awaiting_pane: VecDeque::new(),
            next_seq: config.first_seq,
            now_ms: 0,
        }
    }

    /// Follows the tmux version `profile` from now on, in every pane (the
    /// bridge learns `#{version}` when it attaches).
    pub fn set_profile(&mut self, profile: Profile) {
        self.config.profile = profile;
        for p in self.panes.values_mut() {
            p.model.set_profile(profile);
        }
    }

    /// The tmux version the pane models follow.
    pub fn profile(&self) -> Profile {
        self.config.profile
    }

    /// Sets the time (milliseconds since the Unix epoch) stamped on the
    /// records made from now on; call it before applying each input.
    pub fn set_time(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
    }

    /// The sequence number the next record gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The last sequence number assigned (`first_seq - 1` before any).
    pub fn last_seq(&self) -> u64 {
        self.next_seq.saturating_sub(1)
    }

    /// A pane's model, if it is known (alive or recently dead).
    pub fn pane(&self, pane: PaneId) -> Option<&PaneModel> {
        self.panes.get(&pane).map(|p| &p.model)
    }

    /// Panes not known to be dead, in pane-number order.
    pub fn live_panes(&self) -> impl Iterator<Item = (PaneId, &PaneModel)> {
        self.panes
            .iter()
            .filter(|(_, p)| !p.dead)
            .map(|(id, p)| (*id, &p.model))
    }

    /// The window a pane belongs to, from the latest layout.
    pub fn pane_window(&self, pane: PaneId) -> Option<WindowId> {
        self.panes.get(&pane).and_then(|p| p.window)
    }

    fn record(&mut self, body: RecordBody) -> Record {
        let seq = self.next_seq;
        self.next_seq += 1;
        Record {
            seq,
            time: self.now_ms,
            body,
        }
    }

    fn topology_record(&mut self) -> Record {
        let json = serde_json::to_vec(&self.topology()).unwrap_or_default();
        self.record(RecordBody::Topology(Bytes::from(json)))
    }

    fn reset_body(pane: PaneId, model: &mut PaneModel) -> RecordBody {
        let (cols, rows) = model.size();
        RecordBody::PaneReset {
            pane,
            cols,
            rows,
            bytes: Bytes::from(model.live_reset_bytes()),
        }
    }

    fn reset_record(&mut self, pane: PaneId) -> Option<Record> {
        let body = Self::reset_body(pane, &mut self.panes.get_mut(&pane)?.model);
        Some(self.record(body))
    }

    /// The current topology.
    pub fn topology(&self) -> Topology {
        let mut windows: Vec<(&WindowId, &Window)> = self.windows.iter().collect();
        windows.sort_by_key(|(id, w)| (w.index.is_none(), w.index, **id));
        Topology {
            session: self.session,
            name: self.name.clone(),
            active_window: self.active_window,
            windows: windows
                .into_iter()
                .map(|(id, w)| WindowInfo {
                    id: *id,
                    index: w.index,
                    name: w.name.clone(),
                    active: Some(*id) == self.active_window,
                    layout: w.layout.clone(),
                    visible_layout: w.visible_layout.clone(),
                    flags: w.flags.clone(),
                    active_pane: w.active_pane,
                    panes: w
                        .panes
                        .iter()
                        .filter_map(|(p, x, y)| {
                            let m = &self.panes.get(p)?.model;
                            let (cols, rows) = m.size();
                            Some(PaneInfo {
                                id: *p,
                                x: *x,
                                y: *y,
                                cols,
                                rows,
                                title: String::from_utf8_lossy(m.title()).into_owned(),
                            })
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// Applies one event and returns the records it produces (often none).
    pub fn apply(&mut self, event: &Event) -> Vec<Record> {
        match event {
            Event::Output { pane, data } | Event::ExtendedOutput { pane, data, .. } => {
                self.output(*pane, data)
            }
            Event::LayoutChange {
                window,
                layout,
                visible_layout,
                flags,
            } => self.layout_change(*window, layout, visible_layout.as_ref(), flags.as_ref()),
            Event::WindowAdd { window } => {
                let w = self.windows.entry(*window).or_default();
                if w.panes.is_empty() && !self.awaiting_pane.contains(window) {
                    self.awaiting_pane.push_back(*window);
                }
                vec![self.topology_record()]
            }
            Event::WindowClose { window } | Event::UnlinkedWindowClose { window } => {
                self.awaiting_pane.retain(|w| w != window);
                if self.windows.remove(window).is_none() {
                    return Vec::new();
                }
                let gone: Vec<PaneId> = self
                    .panes
                    .iter()
                    .filter(|(_, p)| p.window == Some(*window))
                    .map(|(id, _)| *id)
                    .collect();
                for p in gone {
                    self.mark_dead(p);
                }
                if self.active_window == Some(*window) {
                    self.active_window = None;
                }
                vec![self.topology_record()]
            }
            Event::WindowRenamed { window, name }
            | Event::UnlinkedWindowRenamed { window, name } => match self.windows.get_mut(window) {
                Some(w) => {
                    w.name = String::from_utf8_lossy(name).into_owned();
                    vec![self.topology_record()]
                }
                None => Vec::new(),
            },
            Event::SessionChanged { session, name } => {
                if self.session.is_some_and(|s| s != *session) {
                    // Another session: its windows are not ours; the bridge
                    // relists and resyncs.
                    self.windows.clear();
                    self.awaiting_pane.clear();
                    self.active_window = None;
                    let all: Vec<PaneId> = self.panes.keys().copied().collect();
                    for p in all {
                        self.mark_dead(p);
                    }
                }
                self.session = Some(*session);
                self.name = String::from_utf8_lossy(name).into_owned();
                vec![self.topology_record()]
            }
            Event::SessionRenamed { session, name } if self.session == Some(*session) => {
                self.name = String::from_utf8_lossy(name).into_owned();
                vec![self.topology_record()]
            }
            Event::SessionWindowChanged { session, window } if self.session == Some(*session) => {
                self.active_window = Some(*window);
                vec![self.topology_record()]
            }
            Event::WindowPaneChanged { window, pane } => match self.windows.get_mut(window) {
                Some(w) => {
                    w.active_pane = Some(*pane);
                    vec![self.topology_record()]
                }
                None => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    fn output(&mut self, pane: PaneId, data: &Bytes) -> Vec<Record> {
        let mut out = Vec::new();
        if let Some(p) = self.panes.get_mut(&pane)
            && p.dead
        {
            // Output proves the pane lives (moved out of our windows, say):
            // announce it again so every view has it.
            p.dead = false;
            self.dead.retain(|d| *d != pane);
            out.extend(self.reset_record(pane));
        }
        if !self.panes.contains_key(&pane) {
            let (c, r) = self.config.default_size;
            let Ok(model) = PaneModel::with_profile(
                u32::from(c),
                u32::from(r),
                self.config.scrollback,
                self.config.profile,
            ) else {
                return out;
            };
            let window = self.awaiting_pane.pop_front();
            if let Some(w) = window.and_then(|w| self.windows.get_mut(&w)) {
                w.panes.push((pane, 0, 0));
                w.active_pane.get_or_insert(pane);
            }
            self.panes.insert(
                pane,
                Pane {
                    model,
                    window,
                    dead: false,
                },
            );
            if window.is_some() {
                out.push(self.topology_record());
            }
            out.extend(self.reset_record(pane));
        }
        // The live stream, not the raw bytes: what tmux shows, in words
        // every terminal reads alike (crate::live). Output that shows
        // nothing (a sequence tmux swallows, or its first part) makes no
        // record.
        // A stream that outgrew its bound (hostile output redrawing a lot
        // from a few bytes) is replaced by the pane whole.
        let live = match self.panes.get_mut(&pane) {
            Some(p) => p.model.feed_live(data),
            None => return out,
        };
        match live {
            Some(live) if live.is_empty() => {}
            Some(live) => out.push(self.record(RecordBody::Output {
                pane,
                bytes: Bytes::from(live),
            })),
            None => out.extend(self.reset_record(pane)),
        }
        out
    }

    fn layout_change(
        &mut self,
        window: WindowId,
        layout: &Bytes,
        visible: Option<&Bytes>,
        flags: Option<&Bytes>,
    ) -> Vec<Record> {
        let Ok(parsed) = Layout::parse(layout) else {
            tracing::warn!(%window, "unparsable layout ignored");
            return Vec::new();
        };
        let visible_parsed = visible.and_then(|v| Layout::parse(v).ok());
        // A zoomed pane has the visible layout's size; the others keep
        // theirs from the full layout.
        let mut cells: Vec<(PaneId, i32, i32, u32, u32)> = parsed
            .panes()
            .iter()
            .map(|p| (p.pane, p.x, p.y, p.width, p.height))
            .collect();
        if let Some(v) = &visible_parsed {
            for vp in v.panes() {
                if let Some(c) = cells.iter_mut().find(|c| c.0 == vp.pane) {
                    *c = (vp.pane, vp.x, vp.y, vp.width, vp.height);
                }
            }
        }
        let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
        self.awaiting_pane.retain(|w| *w != window);
        let w = self.windows.entry(window).or_default();
        w.layout = text(layout);
        w.visible_layout = visible.map(text).unwrap_or_else(|| text(layout));
        if let Some(f) = flags {
            w.flags = text(f);
        }
        let before: Vec<PaneId> = w.panes.iter().map(|p| p.0).collect();
        w.panes = cells.iter().map(|c| (c.0, c.1, c.2)).collect();
        for p in before {
            if !cells.iter().any(|c| c.0 == p)
                && self.panes.get(&p).is_some_and(|x| x.window == Some(window))
            {
                self.mark_dead(p);
            }
        }
        let mut resets = Vec::new();
        for (pane, _, _, cols, rows) in &cells {
            match self.panes.get_mut(pane) {
                Some(p) => {
                    if p.dead {
                        p.dead = false;
                        self.dead.retain(|d| d != pane);
                    }
                    p.window = Some(window);
                    let (c, r) = p.model.size();
                    if (u32::from(c), u32::from(r)) != (*cols, *rows) {
                        if p.model.resize(*cols, *rows).is_ok() {
                            resets.push(*pane);
                        } else {
                            tracing::warn!(%pane, cols, rows, "pane size out of range ignored");
                        }
                    }
                }
                None => match PaneModel::with_profile(
                    *cols,
                    *rows,
                    self.config.scrollback,
                    self.config.profile,
                ) {
                    Ok(model) => {
                        self.panes.insert(
                            *pane,
                            Pane {
                                model,
                                window: Some(window),
                                dead: false,
                            },
                        );
                        resets.push(*pane);
                    }
                    Err(SizeError { .. }) => {
                        tracing::warn!(%pane, cols, rows, "pane size out of range ignored")
                    }
                },
            }
        }
        let mut out = vec![self.topology_record()];
        for p in resets {
            out.extend(self.reset_record(p));
        }
        out
    }

    fn mark_dead(&mut self, pane: PaneId) {
        if let Some(p) = self.panes.get_mut(&pane)
            && !p.dead
        {
            p.dead = true;
            p.window = None;
            self.dead.push_back(pane);
        }
        while self.dead.len() > DEAD_KEPT {
            if let Some(old) = self.dead.pop_front() {
                self.panes.remove(&old);
            }
        }
    }

    /// Sets what `list-windows` told about a window (index and name) and
    /// returns the Topology record if anything changed.
    pub fn set_window_info(
        &mut self,
        window: WindowId,
        index: Option<u32>,
        name: &[u8],
    ) -> Vec<Record> {
        let name = String::from_utf8_lossy(name).into_owned();
        let w = self.windows.entry(window).or_default();
        if w.index == index && w.name == name {
            return Vec::new();
        }
        w.index = index;
        w.name = name;
        vec![self.topology_record()]
    }

    /// Replaces a pane's model (after a resync from tmux, see
    /// [`crate::seed`]) and returns its PaneReset record.
    pub fn replace_pane(&mut self, pane: PaneId, mut model: PaneModel) -> Record {
        let body = Self::reset_body(pane, &mut model);
        match self.panes.get_mut(&pane) {
            Some(p) => p.model = model,
            None => {
                self.panes.insert(
                    pane,
                    Pane {
                        model,
                        window: None,
                        dead: false,
                    },
                );
            }
        }
        self.record(body)
    }

    /// A checkpoint at [`last_seq`](Self::last_seq): the Topology and one
    /// PaneReset per live pane, all numbered `last_seq`. Consumes no
    /// sequence number.
    pub fn snapshot(&mut self) -> Snapshot {
        let seq = self.last_seq();
        let json = serde_json::to_vec(&self.topology()).unwrap_or_default();
        let time = self.now_ms;
        let mut records = vec![Record {
            seq,
            time,
            body: RecordBody::Topology(Bytes::from(json)),
        }];
        for (id, p) in self.panes.iter_mut() {
            if !p.dead {
                records.push(Record {
                    seq,
                    time,
                    body: Self::reset_body(*id, &mut p.model),
                });
            }
        }
        Snapshot { seq, records }
    }

    /// A session reset as live records (a bridge that resumed at the
    /// relay's `last_seq + 1` starts with this): Topology then a PaneReset
    /// per live pane, each with its own sequence number.
    pub fn reset_records(&mut self) -> Vec<Record> {
        let mut out = vec![self.topology_record()];
        let live: Vec<PaneId> = self.live_panes().map(|(id, _)| id).collect();
        for p in live {
            out.extend(self.reset_record(p));
        }
        out
    }
}

/// Applies records, as a browser does: the receiving side of the protocol,
/// used by tests, the replay command and anything that reads stored frames.
#[derive(Debug)]
pub struct SessionView {
    scrollback: usize,
    pub last_seq: u64,
    profile: Profile,
    pub topology: Option<Topology>,
    panes: BTreeMap<PaneId, PaneModel>,
}

/// A record that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    #[error("record {got} does not follow {last}")]
    Gap { last: u64, got: u64 },
    #[error("output for pane {0} before any reset of it")]
    UnknownPane(PaneId),
    #[error(transparent)]
    Size(#[from] SizeError),
}

impl SessionView {
    /// An empty view expecting the record after `last_seq`.
    pub fn new(scrollback: usize, last_seq: u64) -> SessionView {
        SessionView::with_profile(scrollback, last_seq, Profile::NEWEST)
    }

    /// [`SessionView::new`] whose panes follow the tmux version `profile`.
    pub fn with_profile(scrollback: usize, last_seq: u64, profile: Profile) -> SessionView {
        SessionView {
            scrollback,
            last_seq,
            profile,
            topology: None,
            panes: BTreeMap::new(),
        }
    }

    /// A view built from a snapshot at m (expects m+1 next).
    pub fn from_snapshot(scrollback: usize, snap: &Snapshot) -> Result<SessionView, ApplyError> {
        let mut v = SessionView::new(scrollback, snap.seq);
        for r in &snap.records {
            v.apply_body(&r.body)?;
        }
        Ok(v)
    }

    /// Applies a live record; records at or below `last_seq` are ignored
    /// (already applied), a gap is an error.
    pub fn apply(&mut self, record: &Record) -> Result<(), ApplyError> {
        if record.seq <= self.last_seq {
            return Ok(());
        }
        if record.seq != self.last_seq + 1 {
            return Err(ApplyError::Gap {
                last: self.last_seq,
                got: record.seq,
            });
        }
        self.apply_body(&record.body)?;
        self.last_seq = record.seq;
        Ok(())
    }

    fn apply_body(&mut self, body: &RecordBody) -> Result<(), ApplyError> {
        match body {
            RecordBody::Output { pane, bytes } => {
                self.panes
                    .get_mut(pane)
                    .ok_or(ApplyError::UnknownPane(*pane))?
                    .feed(bytes);
            }
            RecordBody::Topology(json) => {
                self.topology = serde_json::from_slice(json).ok();
            }
            RecordBody::PaneReset {
                pane,
                cols,
                rows,
                bytes,
            } => {
                let mut m = PaneModel::with_profile(
                    u32::from(*cols),
                    u32::from(*rows),
                    self.scrollback,
                    self.profile,
                )?;
                m.feed(bytes);
                self.panes.insert(*pane, m);
            }
        }
        Ok(())
    }

    /// A pane's screen.
    pub fn pane(&self, pane: PaneId) -> Option<&PaneModel> {
        self.panes.get(&pane)
    }

    pub fn pane_mut(&mut self, pane: PaneId) -> Option<&mut PaneModel> {
        self.panes.get_mut(&pane)
    }

    pub fn panes(&self) -> impl Iterator<Item = (&PaneId, &PaneModel)> {
        self.panes.iter()
    }
}

#[cfg(test)]
mod tests;
