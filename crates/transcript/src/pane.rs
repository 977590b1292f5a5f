//! [`PaneModel`]: one pane's screen, as tmux holds it, built by feeding the
//! pane's raw bytes into the crate's own emulator ([`crate::emu`], which
//! follows tmux's input.c, screen-write.c and grid.c for the tmux version
//! in its [`Profile`]).
//!
//! This module owns the model's public face: its rendering as
//! `capture-pane` text ([`PaneModel::rows_text`], [`PaneModel::rows_ansi`])
//! and as reset bytes that rebuild it in a fresh terminal
//! ([`PaneModel::reset_bytes`], in [`crate::snapshot`]). Seeding from
//! tmux's capture replies is in [`crate::seed`]. It never does I/O and
//! never answers terminal queries.
//!
//! Memory per pane is bounded by `cols x (rows + scrollback)` cells (20
//! bytes each) plus a bounded table of multi-code-point characters.

pub use protocol::size::{MAX_DIM, SizeError, check_size};

use crate::emu::{Cell, Emulator, Line, Profile, Screen, capture};

/// One pane's terminal state.
#[derive(Clone)]
pub struct PaneModel {
    emu: Emulator,
}

impl std::fmt::Debug for PaneModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (cols, rows) = self.size();
        f.debug_struct("PaneModel")
            .field("cols", &cols)
            .field("rows", &rows)
            .field("scrollback", &self.scrollback_limit())
            .field("profile", &self.profile())
            .finish_non_exhaustive()
    }
}

impl PaneModel {
    /// A blank pane of `cols x rows` keeping at most `scrollback` lines of
    /// history, following the newest tmux.
    pub fn new(cols: u32, rows: u32, scrollback: usize) -> Result<PaneModel, SizeError> {
        PaneModel::with_profile(cols, rows, scrollback, Profile::NEWEST)
    }

    /// A blank pane that follows the tmux version `profile`.
    pub fn with_profile(
        cols: u32,
        rows: u32,
        scrollback: usize,
        profile: Profile,
    ) -> Result<PaneModel, SizeError> {
        let (cols, rows) = check_size(cols, rows)?;
        Ok(PaneModel {
            emu: Emulator::new(usize::from(cols), usize::from(rows), scrollback, profile),
        })
    }

    /// The tmux version this model follows.
    pub fn profile(&self) -> Profile {
        self.emu.profile()
    }

    /// Follows another tmux version from now on (the screen is kept).
    pub fn set_profile(&mut self, profile: Profile) {
        self.emu.screen.profile = profile;
    }

    /// `(cols, rows)`.
    pub fn size(&self) -> (u16, u16) {
        (self.emu.screen.sx() as u16, self.emu.screen.sy() as u16)
    }

    /// The scrollback limit in lines.
    pub fn scrollback_limit(&self) -> usize {
        self.emu.screen.grid.hlimit
    }

    /// Lines currently in the scrollback.
    pub fn scrollback_len(&self) -> usize {
        self.emu.screen.grid.history.len()
    }

    /// Bytes held by the scrollback's cells.
    pub fn scrollback_bytes(&self) -> usize {
        self.emu.screen.grid.history.heap_bytes()
    }

    /// Heap bytes the whole model holds (grid, history, saved screen,
    /// texts).
    pub fn memory_bytes(&self) -> usize {
        let s = &self.emu.screen;
        s.grid.heap_bytes()
            + s.texts.heap_bytes()
            + s.saved
                .as_ref()
                .map_or(0, |v| v.lines.iter().map(Line::heap_bytes).sum())
            + std::mem::size_of::<Self>()
    }

    /// Feeds raw pane bytes (any chunking; sequences may span calls).
    pub fn feed(&mut self, bytes: &[u8]) {
        self.emu.feed(bytes);
    }

    /// Feeds raw pane bytes and returns the live stream for them: what a
    /// terminal (xterm.js, or another `PaneModel`) must be given to show
    /// what tmux shows ([`crate::live`]). Feeding the returned bytes to a
    /// model rebuilt from [`PaneModel::live_reset_bytes`] keeps it equal
    /// to this one.
    ///
    /// `None` when the stream would have outgrown its bound (16 bytes per
    /// byte read plus 64 KiB, [`crate::emu::input::LIVE_BUDGET`]: hostile
    /// output can make redraws out of a few bytes); the model took the bytes
    /// all the same, and the caller sends [`PaneModel::live_reset_bytes`].
    pub fn feed_live(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(bytes.len() + 16);
        self.emu.feed_live(bytes, &mut out).then_some(out)
    }

    /// Resizes the pane. Unlike tmux this does not reflow wrapped lines;
    /// the bridge resyncs a pane after tmux resizes it.
    pub fn resize(&mut self, cols: u32, rows: u32) -> Result<(), SizeError> {
        let (cols, rows) = check_size(cols, rows)?;
        if (cols, rows) != self.size() {
            self.emu.screen.resize(usize::from(cols), usize::from(rows));
        }
        Ok(())
    }

    /// The screen, for inspection.
    pub fn screen(&self) -> &Screen {
        &self.emu.screen
    }

    /// The emulator (parser state and screen).
    pub fn emulator(&self) -> &Emulator {
        &self.emu
    }

    /// The title last set with OSC 0 or 2 (or APC).
    pub fn title(&self) -> &[u8] {
        &self.emu.screen.title
    }

    /// Cursor `(x, y)`, 0-based, as tmux's `cursor_x`/`cursor_y` report it:
    /// `x == cols` while a wrap is pending.
    pub fn cursor(&self) -> (u16, u16) {
        (self.emu.screen.cx as u16, self.emu.screen.cy as u16)
    }

    /// Visible rows as `tmux capture-pane -p -N` prints them, trailing
    /// spaces removed.
    pub fn rows_text(&self) -> Vec<String> {
        self.rows(false)
    }

    /// Visible rows as `tmux capture-pane -p -e -N` prints them (the pen
    /// carried from row to row as tmux does), trailing spaces removed.
    pub fn rows_ansi(&self) -> Vec<String> {
        self.rows(true)
    }

    fn rows(&self, ansi: bool) -> Vec<String> {
        let s = &self.emu.screen;
        let mut last = Cell::DEFAULT;
        let mut buf = Vec::new();
        (0..s.sy())
            .map(|y| {
                buf.clear();
                capture::line(
                    s.grid.line(y).into(),
                    s.sx(),
                    &s.texts,
                    s.profile,
                    ansi,
                    &mut last,
                    &mut buf,
                );
                while buf.last() == Some(&b' ') {
                    buf.pop();
                }
                String::from_utf8_lossy(&buf).into_owned()
            })
            .collect()
    }

    /// Bytes that, written into a freshly reset terminal of the same size
    /// (xterm.js or a new `PaneModel` of the same profile), reproduce this
    /// pane: history, screen with attributes, the alternate screen with the
    /// saved normal screen, cursor, pen, tab stops, scroll region, modes,
    /// title and the unfinished sequence (see [`crate::snapshot`]).
    ///
    /// Takes `&mut self`: history lines are rendered once and kept for the
    /// next snapshot.
    pub fn reset_bytes(&mut self) -> Vec<u8> {
        crate::snapshot::reset_bytes(&mut self.emu, true)
    }

    /// [`PaneModel::reset_bytes`] for a terminal fed the live stream
    /// ([`PaneModel::feed_live`]): without the unfinished sequence, which
    /// the live stream writes whole once tmux has read it whole.
    pub fn live_reset_bytes(&mut self) -> Vec<u8> {
        crate::snapshot::reset_bytes(&mut self.emu, false)
    }
}

#[cfg(test)]
mod tests;
