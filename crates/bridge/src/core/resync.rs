//! Resync: rebuilding a pane from tmux's own screen (reference §8.5) when
//! our model cannot be trusted: a pane we first saw mid-stream, a resize
//! (tmux rewraps without sending output), a `%pause`, the end of a flood.
//!
//! Panes are marked dirty during a burst of inputs; at its end each dirty
//! pane gets one bundle (`tmux_cc::state::resync_commands`), at most one in
//! flight per pane: a pane marked again while its bundle runs gets another
//! (`again`) when it completes. A pane tmux paused gets `continue` at the
//! end of its bundle, or on its own if the bundle failed. Output of a pane
//! whose bundle is in flight is dropped: the capture holds it.

use std::collections::{BTreeSet, HashMap};

use tmux_cc::command::{self, CommandLine};
use tmux_cc::state::PaneResync;
use tmux_cc::{PaneId, Reply};
use tracing::debug;

use super::replies::Expect;
use super::{Effect, Machine};

/// One bundle in flight.
#[derive(Debug, Default)]
pub(super) struct Bundle {
    /// A frame of a flooding pane: visible screen only, no `continue`.
    flood_frame: bool,
    /// Replies collected so far.
    replies: Vec<Reply>,
    /// Another resync was asked for while this one was in flight.
    again: bool,
    /// The bundle ends with `continue` for the pane.
    continue_after: bool,
}

#[derive(Debug, Default)]
pub(super) struct Resyncs {
    in_flight: HashMap<PaneId, Bundle>,
    /// Panes that need a resync at the end of this burst (ordered, so the
    /// commands go out in pane order).
    dirty: BTreeSet<PaneId>,
    /// Panes paused by tmux (`%pause`) that need `continue` after resync.
    paused: BTreeSet<PaneId>,
    /// Panes to send a bare `continue` for at the end of this burst.
    continues: Vec<PaneId>,
}

impl Bundle {
    /// A frame of a flooding pane (`crate::core::flood`).
    pub(super) fn flood_frame() -> Self {
        Bundle {
            flood_frame: true,
            ..Bundle::default()
        }
    }
}

impl Resyncs {
    /// Asks for a resync of `pane` at the end of this burst.
    pub(super) fn mark(&mut self, pane: PaneId) {
        self.dirty.insert(pane);
    }

    /// `pane` is paused (by tmux's `%pause`, or by us for a flood that
    /// ended): resync it, then let it continue.
    pub(super) fn mark_paused(&mut self, pane: PaneId) {
        self.paused.insert(pane);
        self.dirty.insert(pane);
    }

    /// Whether a bundle for `pane` is in flight.
    pub(super) fn in_flight(&self, pane: PaneId) -> bool {
        self.in_flight.contains_key(&pane)
    }

    /// Sends a bare `continue` for `pane` at the end of this burst.
    pub(super) fn continue_pane(&mut self, pane: PaneId) {
        self.continues.push(pane);
    }
}

impl Machine {
    /// Sends a bundle for `pane` and keeps its state until the replies are in.
    pub(super) fn send_bundle(&mut self, pane: PaneId, line: CommandLine, bundle: Bundle) {
        self.resync.in_flight.insert(pane, bundle);
        self.replies.expect_resync(pane, line.replies());
        self.effects.push(Effect::Tmux(line));
    }

    /// End of a burst: a bundle for every dirty pane that can have one, and
    /// the bare `continue`s.
    pub(super) fn send_resyncs(&mut self) {
        for pane in std::mem::take(&mut self.resync.dirty) {
            if self.model.pane(pane).is_none() {
                continue;
            }
            if self.flood.contains(pane) {
                // Its frames come from tmux anyway; the flood's end resyncs.
                continue;
            }
            if let Some(bundle) = self.resync.in_flight.get_mut(&pane) {
                bundle.again = true;
                continue;
            }
            let continue_after = self.resync.paused.remove(&pane);
            let line =
                tmux_cc::state::resync_commands(pane, self.cfg.history_lines, continue_after);
            self.send_bundle(
                pane,
                line,
                Bundle {
                    continue_after,
                    ..Bundle::default()
                },
            );
        }
        for pane in std::mem::take(&mut self.resync.continues) {
            let line = command::pane_flow(pane, command::PaneFlow::Continue);
            self.issue(line, Expect::Ignore("refresh-client -A continue"));
        }
    }

    /// A reply to part `part` of `pane`'s bundle; the last part, or a
    /// failed one (tmux skips the rest of the line), completes it.
    pub(super) fn resync_reply(&mut self, pane: PaneId, part: usize, parts: usize, reply: Reply) {
        let failed = !reply.success;
        let Some(bundle) = self.resync.in_flight.get_mut(&pane) else {
            return;
        };
        bundle.replies.push(reply);
        if failed || part + 1 == parts {
            let bundle = self.resync.in_flight.remove(&pane).unwrap_or_default();
            self.finish_resync(pane, bundle);
        }
    }

    /// Rebuilds a pane from its bundle's replies.
    fn finish_resync(&mut self, pane: PaneId, bundle: Bundle) {
        if bundle.flood_frame {
            self.finish_flood_frame(pane, &bundle.replies);
            return;
        }
        // tmux before 3.7 does not report bracketed paste: keep what we knew.
        let bracketed = self
            .model
            .pane(pane)
            .is_some_and(|p| p.screen().bracketed_paste());
        let scrollback = self.cfg.history_lines as usize;
        let seeded = PaneResync::from_replies(&bundle.replies)
            .map_err(|e| e.to_string())
            .and_then(|r| {
                transcript::seed::seed_with(&r, scrollback, bracketed, self.cfg.tmux_profile)
                    .map_err(|e| e.to_string())
            });
        match seeded {
            Ok(model) => {
                self.snap.changed();
                let record = self.model.replace_pane(pane, model);
                self.push_records(vec![record]);
            }
            // The pane may be gone (killed between the command and its run).
            Err(err) => {
                debug!(%pane, %err, "resync failed");
                if bundle.continue_after {
                    // The bundle's own `continue` was skipped with the rest
                    // of its line: resume the pane's output anyway.
                    self.resync.continue_pane(pane);
                }
            }
        }
        if bundle.again {
            self.resync.mark(pane);
        }
    }
}
