//! Resize debounce: the browsers' preferred size is applied with
//! `refresh-client -C` [`resize_debounce`](super::CoreConfig) after the last
//! change, and only when it differs from what we applied. tmux honours it
//! only while no person is attached in a terminal (`ignore-size`; README,
//! "Resize policy"), so the core never has to check for one.

use std::time::Instant;

use tmux_cc::command;
use tracing::warn;

use super::replies::Expect;
use super::{ErrorCode, Machine, ToRelay};

#[derive(Debug, Default)]
pub(super) struct Debounce {
    /// The size asked for, and when it is applied.
    pending: Option<(u16, u16, Instant)>,
    /// The size last sent to tmux.
    applied: Option<(u16, u16)>,
}

impl Machine {
    /// The relay's `resize`: applied after the debounce; a size out of range
    /// is refused with an error.
    pub(super) fn relay_resize(&mut self, cols: u16, rows: u16) {
        if !protocol::control::resize_is_valid(cols, rows) {
            warn!(cols, rows, "resize out of range dropped");
            self.text(|generation| ToRelay::Error {
                generation,
                code: ErrorCode::InvalidSize,
                message: format!(
                    "size {cols}x{rows} is outside 1..={}",
                    protocol::control::MAX_RESIZE
                ),
            });
            return;
        }
        self.resize.pending = Some((cols, rows, self.now + self.cfg.resize_debounce));
    }

    /// A tick: applies the pending size once its debounce is over.
    pub(super) fn resize_tick(&mut self) {
        let Some((cols, rows, at)) = self.resize.pending else {
            return;
        };
        if self.now < at {
            return;
        }
        self.resize.pending = None;
        if self.resize.applied == Some((cols, rows)) {
            return;
        }
        self.resize.applied = Some((cols, rows));
        match command::resize_client(u32::from(cols), u32::from(rows)) {
            Ok(line) => self.issue(line, Expect::Ignore("refresh-client -C")),
            Err(err) => warn!(%err, "refusing a resize"),
        }
    }

    /// When the pending size is applied.
    pub(super) fn resize_wakeup(&self) -> Option<Instant> {
        self.resize.pending.map(|(_, _, at)| at)
    }
}
