//! Flood control: a pane producing more than
//! [`CoreConfig::flood_bytes_per_sec`](super::CoreConfig) stops being
//! streamed and is redrawn from tmux's own screen at
//! [`flood_frame_interval`](super::CoreConfig) instead (tmux parses every
//! byte into its grid anyway); when the flood is over, a full resync
//! (history included) brings the browser to tmux's exact screen.
//!
//! While a terminal keeps tmux reading the pane (a person's, or the
//! runner's hidden client, `hidden`), we also pause it (`refresh-client -A
//! %P:pause`) so tmux drops the bytes for us (reference §7) and takes its
//! redraw-skipping terminal path; the flood is then over when two frames
//! in a row show the same screen. With no terminal we must not pause (tmux
//! would stop reading a pane no client takes and block the program), so we
//! read and drop the bytes, which costs only the parser; the flood is over
//! when no output came for [`CALM_AFTER`]. A flood that starts with no
//! terminal asks for the hidden client and is paused once it is attached.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use tmux_cc::command;
use tmux_cc::state::PaneResync;
use tmux_cc::{PaneId, Reply};
use tracing::debug;

use super::Machine;
use super::replies::Expect;
use super::resync::Bundle;

/// Output is counted over windows of this length.
const WINDOW: Duration = Duration::from_millis(250);
/// A window younger than this counts as this long (one burst of a fast
/// program is not a flood).
const MIN_ELAPSED: Duration = Duration::from_millis(50);
/// Fewer bytes than this in a window are never a flood.
const MIN_BYTES: usize = 256 << 10;
/// An unpaused flood is over after this long without output.
pub(super) const CALM_AFTER: Duration = Duration::from_millis(150);

/// Output counted over a short window.
#[derive(Debug, Clone, Copy)]
struct Rate {
    since: Instant,
    bytes: usize,
}

/// What a flood frame showed: screen, cursor and history size.
type Fingerprint = (Vec<Vec<u8>>, u32, u32, u32);

/// A pane that floods: redrawn from tmux's screen, its output dropped.
#[derive(Debug)]
struct Flood {
    /// The last frame's fingerprint.
    last: Option<Fingerprint>,
    next_frame: Instant,
    /// We paused it (a terminal keeps tmux reading it).
    paused: bool,
    /// When its last dropped output arrived.
    last_output: Instant,
}

#[derive(Debug, Default)]
pub(super) struct Floods {
    /// Output rate per pane.
    rates: HashMap<PaneId, Rate>,
    /// Panes that flood now.
    flooding: BTreeMap<PaneId, Flood>,
}

impl Floods {
    pub(super) fn contains(&self, pane: PaneId) -> bool {
        self.flooding.contains_key(&pane)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.flooding.is_empty()
    }

    /// Flooding panes we have not paused.
    pub(super) fn unpaused(&self) -> Vec<PaneId> {
        self.flooding
            .iter()
            .filter(|(_, f)| !f.paused)
            .map(|(p, _)| *p)
            .collect()
    }

    /// Flooding panes we paused.
    pub(super) fn paused_panes(&self) -> Vec<PaneId> {
        self.flooding
            .iter()
            .filter(|(_, f)| f.paused)
            .map(|(p, _)| *p)
            .collect()
    }

    /// Switches a flooding pane between paused (the flood ends on a still
    /// screen) and unpaused (it ends after [`CALM_AFTER`] without output,
    /// counted from `now`).
    pub(super) fn set_paused(&mut self, pane: PaneId, paused: bool, now: Instant) {
        if let Some(f) = self.flooding.get_mut(&pane) {
            f.paused = paused;
            f.last = None;
            f.last_output = now;
        }
    }

    /// Output of `pane` at `now`: if the pane floods, it is dropped (and
    /// noted for calm detection) and this returns `true`.
    pub(super) fn note_dropped_output(&mut self, pane: PaneId, now: Instant) -> bool {
        match self.flooding.get_mut(&pane) {
            Some(f) => {
                f.last_output = now;
                true
            }
            None => false,
        }
    }

    /// Counts `len` bytes of `pane` at `now`; returns the rate (bytes per
    /// second) when it crosses `limit`.
    fn count(&mut self, pane: PaneId, len: usize, now: Instant, limit: usize) -> Option<f64> {
        let rate = self.rates.entry(pane).or_insert(Rate {
            since: now,
            bytes: 0,
        });
        if now.saturating_duration_since(rate.since) > WINDOW {
            *rate = Rate {
                since: now,
                bytes: 0,
            };
        }
        rate.bytes += len;
        let elapsed = now.saturating_duration_since(rate.since).max(MIN_ELAPSED);
        let per_sec = rate.bytes as f64 / elapsed.as_secs_f64();
        (per_sec >= limit as f64 && rate.bytes >= MIN_BYTES).then_some(per_sec)
    }
}

impl Machine {
    /// Counts a pane's output; returns `true` when the pane starts flooding
    /// (its output from here on is dropped), pausing it if a terminal is
    /// attached (a person's or the hidden client), else asking for the
    /// hidden client.
    pub(super) fn check_flood(&mut self, pane: PaneId, len: usize) -> bool {
        let now = self.now;
        let Some(per_sec) = self
            .flood
            .count(pane, len, now, self.cfg.flood_bytes_per_sec)
        else {
            return false;
        };
        let pause = self.clients.attached > 0 || self.hidden.ready();
        debug!(%pane, per_sec, pause, "pane floods: redrawing it from tmux");
        self.flood.flooding.insert(
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
            self.issue(line, Expect::Ignore("refresh-client -A pause"));
        } else {
            self.hidden_flood_started();
        }
        true
    }

    /// Asks tmux for the visible screen of every flooding pane whose next
    /// frame is due and that has no bundle in flight.
    pub(super) fn flood_frames(&mut self) {
        let now = self.now;
        let due: Vec<PaneId> = self
            .flood
            .flooding
            .iter()
            .filter(|(p, f)| f.next_frame <= now && !self.resync.in_flight(**p))
            .map(|(p, _)| *p)
            .collect();
        for pane in due {
            if let Some(f) = self.flood.flooding.get_mut(&pane) {
                f.next_frame = now + self.cfg.flood_frame_interval;
            }
            let line = tmux_cc::state::resync_commands(pane, 0, false);
            self.send_bundle(pane, line, Bundle::flood_frame());
        }
    }

    /// When the next flood frame is due (panes with a bundle in flight wait
    /// for its replies, not for the clock).
    pub(super) fn flood_wakeup(&self) -> Option<Instant> {
        self.flood
            .flooding
            .iter()
            .filter(|(p, _)| !self.resync.in_flight(**p))
            .map(|(_, f)| f.next_frame)
            .min()
    }

    /// A frame of a flooding pane: show it, or, when the flood is over, end
    /// it with a full resync (and `continue` if we paused the pane).
    pub(super) fn finish_flood_frame(&mut self, pane: PaneId, replies: &[Reply]) {
        let Ok(resync) = PaneResync::from_replies(replies) else {
            // The pane is gone or tmux refused: stop treating it as flooding.
            self.flood.flooding.remove(&pane);
            self.resync.continue_pane(pane);
            self.hidden_flood_over();
            return;
        };
        let fingerprint = (
            resync.screen.clone(),
            resync.state.cursor_x,
            resync.state.cursor_y,
            resync.state.history_size,
        );
        let now = self.now;
        let calm = self.flood.flooding.get(&pane).is_some_and(|f| {
            if f.paused {
                f.last.as_ref() == Some(&fingerprint)
            } else {
                now.saturating_duration_since(f.last_output) >= CALM_AFTER
            }
        });
        if calm {
            debug!(%pane, "flood over: full resync");
            if self.flood.flooding.remove(&pane).is_some_and(|f| f.paused) {
                self.resync.mark_paused(pane);
            } else {
                self.resync.mark(pane);
            }
            self.flood.rates.remove(&pane);
            self.hidden_flood_over();
            return;
        }
        let bracketed = self
            .model
            .pane(pane)
            .is_some_and(|p| p.screen().bracketed_paste());
        let scrollback = self.cfg.history_lines as usize;
        match transcript::seed::seed_with(&resync, scrollback, bracketed, self.cfg.tmux_profile) {
            Ok(model) => {
                self.snap.changed();
                let record = self.model.replace_pane(pane, model);
                self.push_records(vec![record]);
            }
            Err(err) => debug!(%pane, %err, "flood frame failed"),
        }
        if let Some(f) = self.flood.flooding.get_mut(&pane) {
            f.last = Some(fingerprint);
        }
    }
}
