//! [`PaneModel`]: one pane's screen, as tmux holds it, built by feeding the
//! pane's raw bytes into a `vt100` parser behind our [`Filter`].
//!
//! This module owns the screen model, its rendering as `capture-pane` text
//! ([`PaneModel::rows_text`], [`PaneModel::rows_ansi`]) and as reset bytes
//! that rebuild it in a fresh terminal ([`PaneModel::reset_bytes`]).
//! Seeding from tmux's capture replies is in [`crate::seed`]. It never does
//! I/O and never answers terminal queries: vt100 has no output channel, and
//! nothing here writes back to the pane.
//!
//! Memory per pane is bounded by `cols x (rows + scrollback)` cells.

use crate::filter::{ACS_BASE, Filter, Special};

pub use protocol::size::{MAX_DIM, SizeError, check_size};

/// A checked size as vt100 wants it (`v >= 1` by [`check_size`]).
fn nz(v: u16) -> std::num::NonZeroU16 {
    std::num::NonZeroU16::MIN.saturating_add(v.saturating_sub(1))
}

/// Callbacks that keep what vt100 reports but does not store: the title,
/// and the history (rows scrolled off the top of the normal screen).
#[derive(Debug, Default)]
struct Hooks {
    title: Vec<u8>,
    history: History,
    /// A scroll region other than the whole screen is set: tmux keeps no
    /// history for rows scrolled out of it, while vt100 reports those of a
    /// region starting at row 0.
    partial_region: bool,
}

/// The pane's history, kept here rather than in vt100: vt100 0.18 walks its
/// whole scrollback on every scrolled line (O(scrollback) per line: 2 µs
/// with 10 000 lines), and stores full cells. Each row is kept as the bytes
/// that redraw it (SGR from default attributes, DEC graphics as
/// `ESC ( 0`), bounded by a line count.
#[derive(Debug, Default)]
struct History {
    rows: std::collections::VecDeque<HistoryRow>,
    limit: usize,
    bytes: usize,
    /// Reused formatting buffer.
    text: String,
}

#[derive(Debug)]
struct HistoryRow {
    bytes: Box<[u8]>,
    /// The row continues on the next one (autowrap).
    wrapped: bool,
}

/// A writer that stops at the first character and remembers it: used to
/// learn whether vt100 would start the next row with a newline.
struct FirstChar(Option<char>);

impl std::fmt::Write for FirstChar {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0 = s.chars().next();
        Err(std::fmt::Error)
    }
}

impl History {
    fn push(&mut self, row: &vt100::capture::RowContents<'_>) {
        if self.limit == 0 {
            return;
        }
        self.text.clear();
        let mut state = vt100::capture::BasicFormattedCaptureState::new();
        if row
            .write_formatted_basic(&mut self.text, &mut state)
            .is_err()
        {
            return;
        }
        // The state now says whether a newline would precede the next row.
        let mut probe = FirstChar(None);
        let _ = row.write_formatted_basic(&mut probe, &mut state);
        let wrapped = probe.0 != Some('\n');
        let bytes: Box<[u8]> = if self.text.as_bytes().contains(&0xf4) {
            acs_to_terminal(self.text.as_bytes()).into_boxed_slice()
        } else {
            Box::from(self.text.as_bytes())
        };
        self.bytes += bytes.len();
        self.rows.push_back(HistoryRow { bytes, wrapped });
        while self.rows.len() > self.limit {
            if let Some(old) = self.rows.pop_front() {
                self.bytes -= old.bytes.len();
            }
        }
    }

    fn clear(&mut self) {
        self.rows.clear();
        self.bytes = 0;
    }
}

/// Replaces the private-use stand-ins of DEC graphics cells with the
/// characters inside `ESC ( 0` … `ESC ( B`.
fn acs_to_terminal(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 8);
    let s = String::from_utf8_lossy(text);
    let mut in_acs = false;
    for ch in s.chars() {
        if let Some(b) = acs_byte(ch) {
            if !in_acs {
                out.extend_from_slice(b"\x1b(0");
                in_acs = true;
            }
            out.push(b);
        } else {
            if in_acs {
                out.extend_from_slice(b"\x1b(B");
                in_acs = false;
            }
            let mut buf = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        }
    }
    if in_acs {
        out.extend_from_slice(b"\x1b(B");
    }
    out
}

impl vt100::Callbacks for Hooks {
    fn set_window_title(&mut self, _: &mut vt100::Screen, title: &[u8]) {
        self.title.clear();
        // Kept bounded; control bytes would break the OSC that replays it.
        self.title.extend(
            title
                .iter()
                .copied()
                .filter(|&b| b >= 0x20 && b != 0x7f)
                .take(1024),
        );
    }

    fn on_scroll(&mut self, row: vt100::capture::RowContents<'_>, alternate_screen: bool) {
        // tmux keeps no history for the alternate screen or a partial region.
        if !alternate_screen && !self.partial_region {
            self.history.push(&row);
        }
    }
}

/// One pane's terminal state.
pub struct PaneModel {
    parser: vt100::Parser<Hooks>,
    filter: Filter,
    scratch: Vec<u8>,
    /// Tab stops by column (tmux: every eighth column by default).
    tabs: Vec<bool>,
    cols: u16,
    rows: u16,
}

impl std::fmt::Debug for PaneModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaneModel")
            .field("cols", &self.cols)
            .field("rows", &self.rows)
            .field("scrollback", &self.scrollback_limit())
            .finish_non_exhaustive()
    }
}

impl PaneModel {
    /// A blank pane of `cols x rows` keeping at most `scrollback` lines of
    /// history.
    pub fn new(cols: u32, rows: u32, scrollback: usize) -> Result<PaneModel, SizeError> {
        let (cols, rows) = check_size(cols, rows)?;
        let hooks = Hooks {
            history: History {
                limit: scrollback,
                ..History::default()
            },
            ..Hooks::default()
        };
        Ok(PaneModel {
            // vt100 keeps no scrollback: rows leaving the screen go to our
            // `History` through `on_scroll`.
            parser: vt100::Parser::new_with_callbacks(nz(rows), nz(cols), 0, hooks),
            filter: Filter::default(),
            scratch: Vec::new(),
            tabs: default_tabs(cols),
            cols,
            rows,
        })
    }

    /// `(cols, rows)`.
    pub fn size(&self) -> (u16, u16) {
        (self.cols, self.rows)
    }

    /// The scrollback limit in lines.
    pub fn scrollback_limit(&self) -> usize {
        self.parser.callbacks().history.limit
    }

    /// Lines currently in the scrollback.
    pub fn scrollback_len(&self) -> usize {
        self.parser.callbacks().history.rows.len()
    }

    /// Bytes held by the scrollback.
    pub fn scrollback_bytes(&self) -> usize {
        self.parser.callbacks().history.bytes
    }

    /// Feeds raw pane bytes (any chunking; sequences may span calls).
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            self.scratch.clear();
            let (used, special) = self.filter.filter(bytes, &mut self.scratch, self.rows);
            self.parser.process(&self.scratch);
            bytes = &bytes[used..];
            if let Some(s) = special {
                self.special(s);
            }
        }
    }

    /// Applies a control that depends on the cursor (see [`Special`]).
    fn special(&mut self, s: Special) {
        let (row, col) = self.parser.screen().cursor_position();
        let last = self.cols - 1;
        match s {
            Special::Tab => {
                // tmux: to the next stop, else the last column.
                if col < last {
                    let target = (col + 1..last)
                        .find(|&c| self.tabs.get(usize::from(c)) == Some(&true))
                        .unwrap_or(last);
                    self.parser
                        .process(format!("\x1b[{}C", target - col).as_bytes());
                }
            }
            Special::SetTab => {
                if let Some(t) = self.tabs.get_mut(usize::from(col.min(last))) {
                    *t = true;
                }
            }
            Special::ClearTabs { all: true } => self.tabs.iter_mut().for_each(|t| *t = false),
            Special::ClearTabs { all: false } => {
                if let Some(t) = self.tabs.get_mut(usize::from(col.min(last))) {
                    *t = false;
                }
            }
            Special::ResetTabs => {
                self.tabs = default_tabs(self.cols);
                self.parser.callbacks_mut().partial_region = false;
            }
            Special::ClearHistory => self.parser.callbacks_mut().history.clear(),
            Special::Region => {
                let partial = self.filter.scroll_region.is_some();
                self.parser.callbacks_mut().partial_region = partial;
            }
            Special::AfterPrintNoWrap => {
                // A cursor waiting to wrap stays on the last column instead.
                if col >= self.cols {
                    self.parser
                        .process(format!("\x1b[{}G", self.cols).as_bytes());
                }
            }
            Special::ReverseIndex => {
                let top = self.filter.scroll_region.map_or(0, |r| r.0);
                if row == top {
                    self.parser.process(b"\x1bM");
                } else if row > 0 {
                    self.parser.process(b"\x1b[A");
                }
            }
        }
        self.filter.custom_tabs = self.tabs != default_tabs(self.cols);
    }

    /// Resizes the pane. Like vt100 (and unlike tmux) this does not reflow
    /// wrapped lines; the bridge resyncs a pane after tmux resizes it.
    pub fn resize(&mut self, cols: u32, rows: u32) -> Result<(), SizeError> {
        let (cols, rows) = check_size(cols, rows)?;
        if (cols, rows) != (self.cols, self.rows) {
            // Through the parser, so rows pushed off by a smaller height
            // reach the history.
            self.parser.set_size(nz(rows), nz(cols));
            self.parser.callbacks_mut().partial_region = false;
            self.cols = cols;
            self.rows = rows;
            self.filter.reset_region();
            // tmux resets tab stops when the width changes.
            self.tabs = default_tabs(cols);
            self.filter.custom_tabs = false;
        }
        Ok(())
    }

    /// The vt100 screen, for inspection.
    pub fn screen(&self) -> &vt100::Screen {
        self.parser.screen()
    }

    /// The title last set with OSC 0 or 2.
    pub fn title(&self) -> &[u8] {
        &self.parser.callbacks().title
    }

    /// Cursor `(x, y)`, 0-based, as tmux's `cursor_x`/`cursor_y` report it
    /// (a cursor waiting to wrap stays on the last column).
    pub fn cursor(&self) -> (u16, u16) {
        let (row, col) = self.parser.screen().cursor_position();
        (col.min(self.cols - 1), row)
    }

    /// Visible rows as `tmux capture-pane -p -N` prints them, trailing
    /// spaces removed.
    pub fn rows_text(&self) -> Vec<String> {
        let screen = self.parser.screen();
        (0..self.rows)
            .map(|r| row_text(screen, r, self.cols))
            .collect()
    }

    /// Visible rows as `tmux capture-pane -p -e -N` prints them (SGR state
    /// carried from row to row as tmux does), trailing spaces removed.
    pub fn rows_ansi(&self) -> Vec<String> {
        let screen = self.parser.screen();
        let mut last = Pen::default();
        (0..self.rows)
            .map(|r| row_ansi(screen, r, self.cols, &mut last))
            .collect()
    }

    /// Bytes that, written into a freshly reset terminal of the same size
    /// (xterm.js or a new `PaneModel`), reproduce this pane: scrollback,
    /// screen with attributes, the alternate screen with the saved normal
    /// screen, cursor position, visibility and style, scroll region, input
    /// modes and title.
    ///
    /// Copies the history's stored bytes and walks the screen (no clone of
    /// the screen); takes `&mut self` because reading the primary screen
    /// while the alternate one is shown switches vt100's grids and back.
    pub fn reset_bytes(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"\x1b[0m");
        let alternate = self.parser.screen().alternate_screen();
        if alternate {
            // Look at the normal grid (47 switches grids without clearing or
            // saving anything in vt100), then come back.
            self.parser.process(b"\x1b[?47l");
        }
        self.write_normal_grid(&mut out);
        let (crow, ccol) = self.parser.screen().cursor_position();
        if alternate {
            self.parser.process(b"\x1b[?47h");
            // The normal screen's cursor, which 1049 saves and restores.
            write_cup(&mut out, crow, ccol.min(self.cols - 1));
            out.extend_from_slice(b"\x1b[?1049h\x1b[0m");
            let screen = self.parser.screen();
            let mut pen = Pen::default();
            for r in 0..self.rows {
                write_cup(&mut out, r, 0);
                write_row(screen, r, self.cols, &mut pen, &mut out, false);
            }
            out.extend_from_slice(b"\x1b[0m\x1b(B");
        }
        self.write_state(&mut out);
        // An incomplete character or escape sequence: the next output
        // completes it in the fresh terminal too.
        out.extend_from_slice(self.filter.pending());
        out
    }

    /// History and screen of the (currently viewed) normal grid, rows
    /// separated by CRLF except where a row wraps.
    fn write_normal_grid(&mut self, out: &mut Vec<u8>) {
        let mut first = true;
        let mut prev_wrapped = false;
        for row in &self.parser.callbacks().history.rows {
            if !first && !prev_wrapped {
                out.extend_from_slice(b"\r\n");
            }
            first = false;
            out.extend_from_slice(b"\x1b[0m");
            out.extend_from_slice(&row.bytes);
            prev_wrapped = row.wrapped;
        }
        let mut pen = Pen::default();
        out.extend_from_slice(b"\x1b[0m");
        let screen = self.parser.screen();
        for r in 0..self.rows {
            emit_line(
                screen,
                r,
                self.cols,
                &mut pen,
                out,
                &mut first,
                &mut prev_wrapped,
            );
        }
        out.extend_from_slice(b"\x1b[0m\x1b(B");
    }

    /// Cursor, pen, region, modes and title of the current screen.
    fn write_state(&self, out: &mut Vec<u8>) {
        let screen = self.parser.screen();
        if self.filter.custom_tabs {
            out.extend_from_slice(b"\x1b[3g");
            for (c, _) in self.tabs.iter().enumerate().filter(|(_, t)| **t) {
                out.extend_from_slice(format!("\x1b[1;{}H\x1bH", c + 1).as_bytes());
            }
        }
        if let Some((top, bottom)) = self.filter.scroll_region {
            out.extend_from_slice(format!("\x1b[{};{}r", top + 1, bottom + 1).as_bytes());
        }
        let (row, col) = screen.cursor_position();
        if col >= self.cols {
            // The cursor waits to wrap after the last column: redraw the
            // last cell so a fresh terminal is in the same state.
            write_cup(out, row, self.cols - 1);
            let mut pen = Pen::default();
            out.extend_from_slice(b"\x1b[0m");
            write_cells(screen, row, self.cols - 1, self.cols, &mut pen, out);
            out.extend_from_slice(b"\x1b(B");
        } else {
            write_cup(out, row, col);
        }
        // The pen the program is drawing with.
        let pen = Pen {
            bold: screen.bold(),
            dim: screen.dim(),
            italic: screen.italic(),
            underline: screen.underline(),
            inverse: screen.inverse(),
            acs: false,
            fg: screen.fgcolor(),
            bg: screen.bgcolor(),
        };
        out.extend_from_slice(b"\x1b[0m");
        pen.write_full(out);
        if screen.application_keypad() {
            out.extend_from_slice(b"\x1b=");
        }
        if screen.application_cursor() {
            out.extend_from_slice(b"\x1b[?1h");
        }
        if screen.bracketed_paste() {
            out.extend_from_slice(b"\x1b[?2004h");
        }
        match screen.mouse_protocol_mode() {
            vt100::MouseProtocolMode::None => {}
            vt100::MouseProtocolMode::Press => out.extend_from_slice(b"\x1b[?9h"),
            vt100::MouseProtocolMode::PressRelease => out.extend_from_slice(b"\x1b[?1000h"),
            vt100::MouseProtocolMode::ButtonMotion => out.extend_from_slice(b"\x1b[?1002h"),
            vt100::MouseProtocolMode::AnyMotion => out.extend_from_slice(b"\x1b[?1003h"),
        }
        match screen.mouse_protocol_encoding() {
            vt100::MouseProtocolEncoding::Default => {}
            vt100::MouseProtocolEncoding::Utf8 => out.extend_from_slice(b"\x1b[?1005h"),
            vt100::MouseProtocolEncoding::Sgr => out.extend_from_slice(b"\x1b[?1006h"),
        }
        let style = match screen.cursor_style() {
            vt100::CursorStyle::Default => 0,
            vt100::CursorStyle::BlinkBlock => 1,
            vt100::CursorStyle::SteadyBlock => 2,
            vt100::CursorStyle::BlinkUnderline => 3,
            vt100::CursorStyle::SteadyUnderline => 4,
            vt100::CursorStyle::BlinkVerticalBar => 5,
            vt100::CursorStyle::SteadyVerticalBar => 6,
        };
        if style != 0 {
            out.extend_from_slice(format!("\x1b[{style} q").as_bytes());
        }
        if screen.hide_cursor() {
            out.extend_from_slice(b"\x1b[?25l");
        }
        let title = self.title();
        if !title.is_empty() {
            out.extend_from_slice(b"\x1b]2;");
            out.extend_from_slice(title);
            out.push(0x07);
        }
        // Last: they change how the bytes above would have been drawn.
        if self.filter.insert {
            out.extend_from_slice(b"\x1b[4h");
        }
        if self.filter.nowrap {
            out.extend_from_slice(b"\x1b[?7l");
        }
    }
}

/// tmux's default tab stops: columns 8, 16, …
fn default_tabs(cols: u16) -> Vec<bool> {
    (0..cols).map(|c| c > 0 && c % 8 == 0).collect()
}

/// One row of the current view, separated from the previous one by CRLF
/// unless the previous row wrapped.
fn emit_line(
    screen: &vt100::Screen,
    r: u16,
    cols: u16,
    pen: &mut Pen,
    out: &mut Vec<u8>,
    first: &mut bool,
    prev_wrapped: &mut bool,
) {
    if !*first && !*prev_wrapped {
        out.extend_from_slice(b"\r\n");
    }
    *first = false;
    let wrapped = screen.row_wrapped(r) && row_fills_width(screen, r, cols);
    write_row(screen, r, cols, pen, out, wrapped);
    *prev_wrapped = wrapped;
}

/// A wrapped row continues the next only if autowrap will get there: its
/// last column must be drawn.
fn row_fills_width(screen: &vt100::Screen, r: u16, cols: u16) -> bool {
    screen
        .cell(r, cols - 1)
        .is_some_and(|c| c.has_contents() || c.is_wide_continuation())
}

fn write_cup(out: &mut Vec<u8>, row: u16, col: u16) {
    out.extend_from_slice(format!("\x1b[{};{}H", row + 1, col + 1).as_bytes());
}

/// Writes one row's cells with full SGR (for reset bytes): up to the last
/// cell that is not a default blank, or the whole width when `full`.
fn write_row(
    screen: &vt100::Screen,
    r: u16,
    cols: u16,
    pen: &mut Pen,
    out: &mut Vec<u8>,
    full: bool,
) {
    let end = if full {
        cols
    } else {
        used_width(screen, r, cols)
    };
    write_cells(screen, r, 0, end, pen, out);
}

fn write_cells(
    screen: &vt100::Screen,
    r: u16,
    from: u16,
    to: u16,
    pen: &mut Pen,
    out: &mut Vec<u8>,
) {
    for c in from..to {
        let Some(cell) = screen.cell(r, c) else { break };
        if cell.is_wide_continuation() {
            continue;
        }
        let next = Pen::of(cell);
        if next != *pen {
            next.write_transition(pen, out);
            *pen = next;
        }
        write_cell_text(cell, out);
    }
}

/// Cells up to the last one that has contents or non-default attributes.
fn used_width(screen: &vt100::Screen, r: u16, cols: u16) -> u16 {
    let mut end = 0;
    for c in 0..cols {
        if let Some(cell) = screen.cell(r, c)
            && (cell.has_contents() || Pen::of(cell) != Pen::default())
        {
            end = c + 1;
        }
    }
    end
}

/// A cell's text. DEC graphics cells print as their ASCII byte, which is
/// what `capture-pane -p` prints and, for reset bytes, what the terminal
/// draws inside the `ESC ( 0` that [`Pen::write_transition`] emitted.
fn write_cell_text(cell: &vt100::Cell, out: &mut Vec<u8>) {
    if !cell.has_contents() {
        out.push(b' ');
        return;
    }
    for ch in cell.contents().chars() {
        if let Some(b) = acs_byte(ch) {
            out.push(b);
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        }
    }
}

/// The DEC graphics byte a private-use stand-in ([`ACS_BASE`]` + b`) holds.
fn acs_byte(ch: char) -> Option<u8> {
    let u = u32::from(ch);
    (ACS_BASE + 0x20..=ACS_BASE + 0x7e)
        .contains(&u)
        .then(|| (u - ACS_BASE) as u8)
}

fn is_acs(cell: &vt100::Cell) -> bool {
    cell.contents().chars().next().and_then(acs_byte).is_some()
}

fn row_text(screen: &vt100::Screen, r: u16, cols: u16) -> String {
    let mut out = Vec::with_capacity(usize::from(cols));
    for c in 0..cols {
        let Some(cell) = screen.cell(r, c) else { break };
        if cell.is_wide_continuation() {
            continue;
        }
        write_cell_text(cell, &mut out);
    }
    while out.last() == Some(&b' ') {
        out.pop();
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn row_ansi(screen: &vt100::Screen, r: u16, cols: u16, last: &mut Pen) -> String {
    let mut out = Vec::new();
    let end = used_width(screen, r, cols);
    for c in 0..end {
        let Some(cell) = screen.cell(r, c) else { break };
        if cell.is_wide_continuation() {
            continue;
        }
        let pen = Pen::of(cell);
        tmux_sgr_diff(last, &pen, &mut out);
        *last = pen;
        write_cell_text(cell, &mut out);
    }
    while out.last() == Some(&b' ') {
        out.pop();
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The attributes of a cell that this model keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pen {
    bold: bool,
    dim: bool,
    italic: bool,
    underline: bool,
    inverse: bool,
    /// DEC special graphics cell.
    acs: bool,
    fg: vt100::Color,
    bg: vt100::Color,
}

impl Default for Pen {
    fn default() -> Self {
        Pen {
            bold: false,
            dim: false,
            italic: false,
            underline: false,
            inverse: false,
            acs: false,
            fg: vt100::Color::Default,
            bg: vt100::Color::Default,
        }
    }
}

impl Pen {
    fn of(cell: &vt100::Cell) -> Pen {
        Pen {
            bold: cell.bold(),
            dim: cell.dim(),
            italic: cell.italic(),
            underline: cell.underline(),
            inverse: cell.inverse(),
            acs: is_acs(cell),
            fg: cell.fgcolor(),
            bg: cell.bgcolor(),
        }
    }

    /// Attribute codes in tmux's order (`grid_string_cells_code`).
    fn attr_codes(&self) -> [(bool, u8); 5] {
        [
            (self.bold, 1),
            (self.dim, 2),
            (self.italic, 3),
            (self.underline, 4),
            (self.inverse, 7),
        ]
    }

    /// SGR for the whole pen after a reset (for reset bytes).
    fn write_full(&self, out: &mut Vec<u8>) {
        let mut codes: Vec<String> = Vec::new();
        for (on, code) in self.attr_codes() {
            if on {
                codes.push(code.to_string());
            }
        }
        if self.fg != vt100::Color::Default {
            codes.push(color_code(self.fg, 30).join(";"));
        }
        if self.bg != vt100::Color::Default {
            codes.push(color_code(self.bg, 40).join(";"));
        }
        if !codes.is_empty() {
            out.extend_from_slice(format!("\x1b[{}m", codes.join(";")).as_bytes());
        }
    }

    /// Moves a terminal from `prev` to `self` (for reset bytes: always a
    /// full reset then the pen, which is simple and exact).
    fn write_transition(&self, prev: &Pen, out: &mut Vec<u8>) {
        let (a, b) = (
            Pen {
                acs: false,
                ..*self
            },
            Pen {
                acs: false,
                ..*prev
            },
        );
        if a != b {
            out.extend_from_slice(b"\x1b[0m");
            self.write_full(out);
        }
        if self.acs != prev.acs {
            out.extend_from_slice(if self.acs { b"\x1b(0" } else { b"\x1b(B" });
        }
    }
}

/// SGR parameters for a colour; `base` 30 for foreground, 40 for background.
fn color_code(c: vt100::Color, base: u8) -> Vec<String> {
    match c {
        vt100::Color::Default => vec![(base + 9).to_string()],
        vt100::Color::Idx(i) if i < 8 => vec![(base + i).to_string()],
        vt100::Color::Idx(i) if i < 16 => vec![(base + 60 + i - 8).to_string()],
        vt100::Color::Idx(i) => vec![(base + 8).to_string(), "5".into(), i.to_string()],
        vt100::Color::Rgb(r, g, b) => {
            vec![
                (base + 8).to_string(),
                "2".into(),
                r.to_string(),
                g.to_string(),
                b.to_string(),
            ]
        }
    }
}

/// What `capture-pane -e` writes between two cells, following tmux's
/// `grid_string_cells_code`: if any attribute is removed, `0` first; then
/// newly set attributes; then the foreground if it changed (or after a `0`),
/// the background likewise, each as its own `ESC [ … m`; then SO or SI for
/// the line-drawing set.
fn tmux_sgr_diff(last: &Pen, next: &Pen, out: &mut Vec<u8>) {
    let mut s: Vec<u8> = Vec::new();
    let old = last.attr_codes();
    let new = next.attr_codes();
    let removed = old.iter().zip(new.iter()).any(|(o, n)| o.0 && !n.0);
    let mut last_attrs = old;
    if removed {
        s.push(0);
        last_attrs = Pen::default().attr_codes();
    }
    for (o, n) in last_attrs.iter().zip(new.iter()) {
        if n.0 && !o.0 {
            s.push(n.1);
        }
    }
    if !s.is_empty() {
        let codes: Vec<String> = s.iter().map(u8::to_string).collect();
        out.extend_from_slice(format!("\x1b[{}m", codes.join(";")).as_bytes());
    }
    let reset = s.first() == Some(&0);
    for (n, o, base) in [(next.fg, last.fg, 30), (next.bg, last.bg, 40)] {
        if n != o || reset {
            out.extend_from_slice(format!("\x1b[{}m", color_code(n, base).join(";")).as_bytes());
        }
    }
    if next.acs && !last.acs {
        out.push(0x0e);
    }
    if !next.acs && last.acs {
        out.push(0x0f);
    }
}

#[cfg(test)]
mod tests;
