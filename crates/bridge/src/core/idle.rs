//! Idle watching (docs/protocol.md §4.7): a watched pane goes idle when no
//! output came for its idle time, and active again on its next output.
//!
//! Output counts as it arrives from tmux, before flood control or a resync
//! may drop it, and so does tmux's `%pause` (the pane printed more than we
//! read). Every transition, and the answer to every `watch`, is an
//! `activity` message for the relay; the wake-up for the next idle
//! transition joins [`Machine::next_wakeup`](super::Machine::next_wakeup).
//! Nothing is persisted: the relay sends a session's watches again after
//! each `opened`. A watched pane that closes loses its watch silently. This file never reads a clock: the machine's `now` is
//! the time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tmux_cc::PaneId;

use super::{ErrorCode, Machine, ToRelay};

/// Most panes one session watches at once.
pub(super) const MAX_WATCHES: usize = 64;

/// One watched pane.
#[derive(Debug, Clone, Copy)]
struct Watch {
    idle_after: Duration,
    last_output: Instant,
    idle: bool,
    /// The pane was seen live in the session: once it is not any more
    /// (closed), the watch goes. A pane not seen yet may be one the model
    /// has not heard of yet, and is kept.
    seen: bool,
}

impl Watch {
    fn due(&self) -> Instant {
        self.last_output + self.idle_after
    }
}

/// The watched panes of one session.
#[derive(Debug, Default)]
pub(super) struct Watches {
    panes: BTreeMap<PaneId, Watch>,
}

impl Watches {
    /// The earliest pending idle transition.
    fn wakeup(&self) -> Option<Instant> {
        self.panes
            .values()
            .filter(|w| !w.idle)
            .map(Watch::due)
            .min()
    }
}

impl Machine {
    /// `watch`: start (or change the idle time of) watching `pane`, or stop
    /// with `None`. A new watch starts active at `now`; a changed one keeps
    /// its state. Answered with the pane's state now.
    pub(super) fn watch(&mut self, pane: PaneId, idle_ms: Option<u64>) {
        let Some(ms) = idle_ms else {
            self.idle.panes.remove(&pane);
            return;
        };
        if !protocol::runner::agent::valid_idle_ms(ms) {
            self.watch_refused(format!(
                "idle_ms must be {} to {}",
                protocol::runner::agent::MIN_IDLE_MS,
                protocol::runner::agent::MAX_IDLE_MS
            ));
            return;
        }
        if !self.idle.panes.contains_key(&pane) && self.idle.panes.len() >= MAX_WATCHES {
            self.watch_refused(format!("a session watches at most {MAX_WATCHES} panes"));
            return;
        }
        let now = self.now;
        let w = self.idle.panes.entry(pane).or_insert(Watch {
            idle_after: Duration::ZERO,
            last_output: now,
            idle: false,
            seen: false,
        });
        w.idle_after = Duration::from_millis(ms);
        let (idle, at) = (w.idle, self.wall_ms);
        self.activity(pane, idle, at);
        // A shorter idle time may be due already.
        self.idle_tick();
    }

    fn watch_refused(&mut self, message: String) {
        self.text(|generation| ToRelay::Error {
            generation,
            code: ErrorCode::Invalid,
            message,
        });
    }

    /// Output (or `%pause`) of `pane` at the machine's `now`.
    pub(super) fn idle_output(&mut self, pane: PaneId) {
        let now = self.now;
        let Some(w) = self.idle.panes.get_mut(&pane) else {
            return;
        };
        w.last_output = now;
        if w.idle {
            w.idle = false;
            let at = self.wall_ms;
            self.activity(pane, false, at);
        }
    }

    /// Panes whose idle time has passed go idle, stamped with the wall
    /// time they became due.
    pub(super) fn idle_tick(&mut self) {
        if !self.idle.panes.is_empty() {
            let live: std::collections::HashSet<PaneId> =
                self.model.live_panes().map(|(id, _)| id).collect();
            self.idle.panes.retain(|pane, w| {
                w.seen |= live.contains(pane);
                !w.seen || live.contains(pane)
            });
        }
        let now = self.now;
        let wall = self.wall_ms;
        let mut went = Vec::new();
        for (pane, w) in &mut self.idle.panes {
            if !w.idle && w.due() <= now {
                w.idle = true;
                let late = u64::try_from(now.saturating_duration_since(w.due()).as_millis())
                    .unwrap_or(u64::MAX);
                went.push((*pane, wall.saturating_sub(late)));
            }
        }
        for (pane, at) in went {
            self.activity(pane, true, at);
        }
    }

    /// When the next watched pane goes idle.
    pub(super) fn idle_wakeup(&self) -> Option<Instant> {
        self.idle.wakeup()
    }

    fn activity(&mut self, pane: PaneId, idle: bool, at: u64) {
        tracing::debug!(%pane, idle, "pane activity");
        self.effects
            .push(super::Effect::Relay(ToRelay::Activity { pane, idle, at }));
    }
}
