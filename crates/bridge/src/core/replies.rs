//! Reply correlation: which `%begin`…`%end`/`%error` block answers which
//! command we sent.
//!
//! tmux answers a client's commands in order, one block with flags 1 per
//! command (flags 0 are the initial attach and hooks, which are not ours),
//! so a queue of what we expect is enough, with one rule: when a command
//! fails, tmux skips the rest of its `;`-joined line, whose replies then
//! never come (reference §1). Each expectation therefore carries how many
//! more replies its line owes after it.

use std::collections::VecDeque;

use tmux_cc::PaneId;
use tmux_cc::command::CommandLine;

/// What a reply we are waiting for is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Expect {
    /// Nothing to do with the reply (but log an error).
    Ignore(&'static str),
    /// `list-windows` with `tmux_cc::listing::WINDOWS_FORMAT`.
    Windows,
    /// `list-clients` with `tmux_cc::listing::CLIENTS_FORMAT`.
    Clients,
    /// `list-keys` for resolving the page's keys (tmux before 3.4).
    Keys,
    /// The window size for the hidden client
    /// (`tmux_cc::listing::WINDOW_SIZE_FORMAT`).
    HiddenSize,
    /// A command for the page's keys or tmux action: its failure goes to
    /// the relay as an `error` with tmux's message.
    Page,
    /// Part `part` of a resync bundle of `parts` commands for `pane`.
    Resync {
        pane: PaneId,
        part: usize,
        parts: usize,
    },
}

/// The replies we wait for, in order.
#[derive(Debug, Default)]
pub(super) struct Replies {
    /// Each with how many more replies its command line owes after it.
    queue: VecDeque<(Expect, usize)>,
}

impl Replies {
    /// Expects the replies of `line`: `expect` for its last command, and
    /// nothing in particular for the commands joined before it.
    pub(super) fn expect(&mut self, line: &CommandLine, expect: Expect) {
        let n = line.replies().max(1);
        for i in 0..n - 1 {
            self.queue
                .push_back((Expect::Ignore("batched command"), n - 1 - i));
        }
        self.queue.push_back((expect, 0));
    }

    /// Expects a resync bundle of `parts` commands for `pane`.
    pub(super) fn expect_resync(&mut self, pane: PaneId, parts: usize) {
        for part in 0..parts {
            self.queue
                .push_back((Expect::Resync { pane, part, parts }, parts - 1 - part));
        }
    }

    /// What the next reply (with flags 1) answers, and, when it failed, the
    /// expectations of the rest of its line, which tmux skipped. `None` for
    /// a reply nobody waited for.
    pub(super) fn answer(&mut self, success: bool) -> Option<(Expect, Vec<Expect>)> {
        let (expect, rest) = self.queue.pop_front()?;
        let mut skipped = Vec::new();
        if !success {
            for _ in 0..rest {
                if let Some((e, _)) = self.queue.pop_front() {
                    skipped.push(e);
                }
            }
        }
        Some((expect, skipped))
    }

    /// How many replies are outstanding.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tmux_cc::command;

    #[test]
    fn a_failed_command_skips_the_rest_of_its_line_only() {
        let mut r = Replies::default();
        // Three commands on one line, then one on its own.
        let line = command::join([
            command::kill_pane(PaneId(1)),
            command::kill_pane(PaneId(2)),
            command::kill_pane(PaneId(3)),
        ])
        .expect("join");
        assert_eq!(line.replies(), 3);
        r.expect(&line, Expect::Windows);
        r.expect(&command::detach_client(), Expect::Clients);
        assert_eq!(r.len(), 4);
        // The second command fails: the third never answers.
        assert_eq!(
            r.answer(true),
            Some((Expect::Ignore("batched command"), vec![]))
        );
        assert_eq!(
            r.answer(false),
            Some((Expect::Ignore("batched command"), vec![Expect::Windows]))
        );
        // The next reply is the next line's.
        assert_eq!(r.answer(true), Some((Expect::Clients, vec![])));
        assert_eq!(r.answer(true), None);
    }

    #[test]
    fn a_failed_last_command_skips_nothing() {
        let mut r = Replies::default();
        r.expect(&command::detach_client(), Expect::Windows);
        r.expect(&command::detach_client(), Expect::Clients);
        assert_eq!(r.answer(false), Some((Expect::Windows, vec![])));
        assert_eq!(r.answer(false), Some((Expect::Clients, vec![])));
    }

    #[test]
    fn a_resync_bundle_owes_its_remaining_parts() {
        let mut r = Replies::default();
        let p = PaneId(4);
        r.expect_resync(p, 3);
        let part = |part| Expect::Resync {
            pane: p,
            part,
            parts: 3,
        };
        assert_eq!(r.answer(false), Some((part(0), vec![part(1), part(2)])));
        assert_eq!(r.len(), 0);
    }
}
