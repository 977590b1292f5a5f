//! The hidden terminal client (issue 16): while a pane floods and no
//! person's terminal is attached, the runner attaches a terminal client of
//! its own (`crate::hidden`: a pty it owns, `read-only,ignore-size`) so
//! that tmux keeps reading the pane while our control client has it paused
//! and takes its redraw-skipping terminal path instead of escaping every
//! byte into `%output` for us. Flood control then runs as with a person's
//! terminal attached (`flood`: frames from tmux's screen, a still screen
//! ends the flood, a full resync with `continue`), and the client leaves
//! when no pane floods any more.
//!
//! The steps, each an input or a reply: a flood starts alone → ask tmux
//! the current window's size and status lines (the client's pty must
//! measure exactly that: with only `ignore-size` clients attached tmux
//! sizes the window by the latest one, reference §11) → [`HiddenOp::Start`]
//! → [`HiddenEvent::Spawned`] (its pid is never counted as a person's
//! terminal, here or in the `status` sent to the relay, and the session's
//! `@bridge_hidden_client` option names it for `tmux-bridge ls` until it
//! exits) →
//! [`HiddenEvent::Ready`] (tmux drew on it: it is attached) → pause the
//! flooding panes. No pane floods any more → [`HiddenOp::Stop`] →
//! [`HiddenEvent::Exited`]. A failed spawn or a client that dies early
//! leaves the flood on today's path (read and drop, unpaused) until every
//! flood is over; the next flood tries again.

use tmux_cc::Reply;
use tmux_cc::command::{self, Target};
use tmux_cc::listing::{self, TerminalSize};
use tracing::{debug, warn};

use super::replies::Expect;
use super::{Effect, Machine};

/// What the machine asks the loop to do with the hidden client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HiddenOp {
    /// Attach a hidden client to the session on a pty of this size.
    Start { cols: u16, rows: u16 },
    /// Detach it (end its process).
    Stop,
}

/// What the loop tells the machine about the hidden client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HiddenEvent {
    /// Its process runs with this pid (not yet attached).
    Spawned { pid: u32 },
    /// It could not be started (the loop logged why).
    Failed,
    /// tmux drew on its terminal: it is attached and keeps tmux reading.
    Ready,
    /// Its process is gone.
    Exited,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No hidden client (or one we told to stop).
    #[default]
    Off,
    /// The window size was asked for.
    Sizing,
    /// [`HiddenOp::Start`] went out.
    Starting,
    /// Spawned, not attached yet.
    Attaching,
    /// Attached: flooding panes are paused for our control client.
    Ready,
    /// It failed or died: floods go on unpaused until all are over.
    Failed,
}

#[derive(Debug, Default)]
pub(super) struct Hidden {
    phase: Phase,
    /// Its process id from spawn until it exited: never a person's terminal.
    pid: Option<u32>,
}

impl Hidden {
    /// Whether `pid` is the hidden client's.
    pub(super) fn is(&self, pid: u32) -> bool {
        self.pid == Some(pid)
    }

    /// Whether it is attached and keeps tmux reading paused panes.
    pub(super) fn ready(&self) -> bool {
        self.phase == Phase::Ready
    }
}

impl Machine {
    /// A pane started flooding with no person's terminal attached: start
    /// the hidden client if there is none.
    pub(super) fn hidden_flood_started(&mut self) {
        if !self.cfg.hidden_client || self.hidden.phase != Phase::Off || self.hidden.pid.is_some() {
            // Disabled, on its way, failed this time, or the last one has
            // not exited yet (at most one per session).
            return;
        }
        let Some(session) = self.model.topology().session else {
            return;
        };
        self.hidden.phase = Phase::Sizing;
        self.issue(listing::window_size(session), Expect::HiddenSize);
    }

    /// The reply with the window's size: start the client at that size, if
    /// it is still wanted.
    pub(super) fn hidden_size_reply(&mut self, reply: &Reply) {
        if self.hidden.phase != Phase::Sizing {
            return;
        }
        if self.flood.is_empty() || self.clients.attached > 0 {
            // The flood ended, or a person attached, meanwhile.
            self.hidden.phase = Phase::Off;
            return;
        }
        let size = reply
            .success
            .then(|| reply.lines.first())
            .flatten()
            .map(|line| TerminalSize::parse(line));
        match size {
            Some(Ok(TerminalSize { cols, rows })) => {
                self.hidden.phase = Phase::Starting;
                self.effects
                    .push(Effect::Hidden(HiddenOp::Start { cols, rows }));
            }
            Some(Err(err)) => {
                warn!(field = err.field, "window size for the hidden client");
                self.hidden.phase = Phase::Failed;
            }
            None => {
                warn!(error = %String::from_utf8_lossy(&reply.text()), "tmux refused the window size");
                self.hidden.phase = Phase::Failed;
            }
        }
    }

    /// What the loop reports about the hidden client.
    pub(super) fn on_hidden(&mut self, ev: HiddenEvent) {
        match ev {
            HiddenEvent::Spawned { pid } => {
                self.hidden.pid = Some(pid);
                self.name_hidden(Some(pid));
                if self.hidden.phase == Phase::Starting {
                    self.hidden.phase = Phase::Attaching;
                } else {
                    // No longer wanted (cannot happen: the loop answers a
                    // start at once), but never leave one behind.
                    self.effects.push(Effect::Hidden(HiddenOp::Stop));
                }
            }
            HiddenEvent::Failed => {
                if self.hidden.phase == Phase::Starting {
                    self.hidden.phase = Phase::Failed;
                }
            }
            HiddenEvent::Ready => {
                if self.hidden.phase != Phase::Attaching {
                    return;
                }
                self.hidden.phase = Phase::Ready;
                let panes = self.flood.unpaused();
                debug!(?panes, "hidden client attached: pausing the flooding panes");
                for pane in panes {
                    self.flood.set_paused(pane, true, self.now);
                    let line = command::pane_flow(pane, command::PaneFlow::Pause);
                    self.issue(line, Expect::Ignore("refresh-client -A pause"));
                }
            }
            HiddenEvent::Exited => {
                self.hidden.pid = None;
                self.name_hidden(None);
                match self.hidden.phase {
                    Phase::Attaching | Phase::Ready => {
                        warn!("the hidden client exited during a flood");
                        self.hidden.phase = Phase::Failed;
                        self.hidden_gone();
                    }
                    Phase::Off => {
                        // A flood that started while this one was leaving
                        // gets its own.
                        if !self.flood.is_empty() && self.clients.attached == 0 {
                            self.hidden_flood_started();
                        }
                    }
                    Phase::Starting | Phase::Sizing | Phase::Failed => {}
                }
                // Its detach changes the clients' count only by itself;
                // list them again so a person's count is exact.
                self.list_clients();
            }
        }
    }

    /// Names the hidden client's pid in the session's
    /// `listing::HIDDEN_CLIENT_OPTION` (or, `None`, unsets it), where
    /// anything listing clients, such as `tmux-bridge ls` in another
    /// process, tells it from a person's terminal.
    fn name_hidden(&mut self, pid: Option<u32>) {
        let Some(session) = self.model.topology().session else {
            return;
        };
        let target = Target::Session(session);
        let option = listing::HIDDEN_CLIENT_OPTION;
        let line = match pid {
            Some(pid) => command::set_option_user(&target, option, &pid.to_string()),
            None => command::unset_option_user(&target, option),
        };
        match line {
            Ok(line) => self.issue(line, Expect::Ignore("set-option @bridge_hidden_client")),
            Err(err) => warn!(error = %err, "naming the hidden client"),
        }
    }

    /// The hidden client died while it kept tmux reading: panes we paused
    /// for it (with no person's terminal to keep them read) continue, their
    /// flood goes on unpaused.
    fn hidden_gone(&mut self) {
        if self.clients.attached > 0 {
            return;
        }
        for pane in self.flood.paused_panes() {
            self.flood.set_paused(pane, false, self.now);
            let line = command::pane_flow(pane, command::PaneFlow::Continue);
            self.issue(line, Expect::Ignore("refresh-client -A continue"));
        }
    }

    /// A flood ended: with no pane flooding any more, the hidden client
    /// leaves and the next flood may start one again.
    pub(super) fn hidden_flood_over(&mut self) {
        if !self.flood.is_empty() {
            return;
        }
        if self.hidden.pid.is_some() && self.hidden.phase != Phase::Off {
            self.effects.push(Effect::Hidden(HiddenOp::Stop));
        }
        self.hidden.phase = Phase::Off;
    }

    /// The runner stops: the hidden client goes too.
    pub(super) fn hidden_shutdown(&mut self) {
        if self.hidden.pid.is_some() && self.hidden.phase != Phase::Off {
            self.effects.push(Effect::Hidden(HiddenOp::Stop));
        }
        self.hidden.phase = Phase::Off;
    }
}
