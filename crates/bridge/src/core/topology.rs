//! What the core asks tmux about the session besides pane contents: the
//! windows (`list-windows`, after `%session-changed`, `%window-add` and
//! `%window-renamed`: notifications carry no index and may miss the
//! layout) and the attached clients (`list-clients`, on attach and detach
//! and every [`CLIENTS_EVERY`](super::CLIENTS_EVERY)): how many people are
//! attached to the session in a terminal (the runner's hidden client is not
//! one) decides flood pausing and goes to the relay in `status`. The formats and their parsing are `tmux_cc::listing`'s.

use std::collections::HashMap;
use std::time::Instant;

use tmux_cc::listing::{self, ClientLine, WindowLine};
use tmux_cc::{PaneId, Reply};
use tracing::{debug, info, warn};

use super::replies::Expect;
use super::{CLIENTS_EVERY, Effect, Machine, ToRelay};

#[derive(Debug)]
pub(super) struct Clients {
    /// Terminals (not control clients) attached, as last listed.
    pub(super) attached: u32,
    /// Our own control client's process id.
    own_pid: Option<u32>,
    /// When the clients are listed next.
    pub(super) next_list: Instant,
}

impl Clients {
    pub(super) fn new(own_pid: Option<u32>, now: Instant) -> Self {
        Clients {
            attached: 0,
            own_pid,
            next_list: now + CLIENTS_EVERY,
        }
    }
}

impl Machine {
    /// Lists the session's windows (once `%session-changed` said which
    /// session we are on).
    pub(super) fn list_windows(&mut self) {
        let Some(session) = self.model.topology().session else {
            return;
        };
        match listing::list_windows(session) {
            Ok(line) => self.issue(line, Expect::Windows),
            Err(err) => warn!(%err, "list-windows"),
        }
    }

    /// Lists the server's clients, and lists them again in
    /// [`CLIENTS_EVERY`].
    pub(super) fn list_clients(&mut self) {
        self.clients.next_list = self.now + CLIENTS_EVERY;
        match listing::list_clients() {
            Ok(line) => self.issue(line, Expect::Clients),
            Err(err) => warn!(%err, "list-clients"),
        }
    }

    /// A tick: the periodic client listing.
    pub(super) fn clients_tick(&mut self) {
        if self.now >= self.clients.next_list {
            self.list_clients();
        }
    }

    /// Applies a `list-windows` reply: each window's layout as if tmux had
    /// sent `%layout-change`, its index and name.
    pub(super) fn windows_reply(&mut self, reply: &Reply) {
        if !reply.success {
            return;
        }
        let before = self.pane_sizes();
        for line in &reply.lines {
            let w = match WindowLine::parse(line) {
                Ok(w) => w,
                Err(err) => {
                    // The line holds a window name: log which field failed,
                    // not the text.
                    warn!(field = err.field, "unparsable list-windows line");
                    continue;
                }
            };
            let mut records = self.model.apply(&w.layout_event());
            records.extend(self.model.set_window_info(w.window, Some(w.index), &w.name));
            if !records.is_empty() {
                self.snap.changed();
            }
            self.push_records(records);
        }
        self.mark_resized(&before);
    }

    /// Applies a `list-clients` reply: counts the terminals attached to this
    /// session (every client of it that is not a control client, not ours
    /// and not the hidden client; every such client of the server while we
    /// do not know our session yet) and tells the relay when the count
    /// changed.
    pub(super) fn clients_reply(&mut self, reply: &Reply) {
        if !reply.success {
            return;
        }
        let session = self.model.topology().session;
        let mut ttys = 0;
        for line in &reply.lines {
            match ClientLine::parse(line) {
                Ok(c)
                    if !c.control
                        && Some(c.pid) != self.clients.own_pid
                        && !self.hidden.is(c.pid)
                        && (session.is_none() || c.session == session) =>
                {
                    ttys += 1
                }
                Ok(_) => {}
                Err(err) => debug!(field = err.field, "unparsable list-clients line"),
            }
        }
        if ttys != self.clients.attached {
            self.clients.attached = ttys;
            info!(attached = ttys, "terminal clients attached");
            self.effects.push(Effect::Relay(ToRelay::Status {
                attached_clients: ttys,
            }));
        }
    }

    /// Marks for resync every live pane whose size differs from `before`
    /// (new panes included): tmux rewraps on resize without sending output.
    pub(super) fn mark_resized(&mut self, before: &HashMap<PaneId, (u16, u16)>) {
        let resized: Vec<PaneId> = self
            .model
            .live_panes()
            .filter(|(id, m)| before.get(id) != Some(&m.size()))
            .map(|(id, _)| id)
            .collect();
        for pane in resized {
            self.resync.mark(pane);
        }
    }
}
