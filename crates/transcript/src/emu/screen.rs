//! [`Screen`]: tmux's `struct screen` and the writing operations of
//! screen-write.c (cursor movement, printing with wide-character and
//! combining rules, erasing, scrolling, the alternate screen), applied to a
//! [`Grid`]. Each method is named after, and behaves like, the tmux
//! function it follows; the profile selects the behaviour of a release.

use std::collections::VecDeque;

use super::grid::{COLOUR_DEFAULT, Cell, Grid, Line, Texts, attr, flag};
use super::profile::Profile;

/// `MODE_*` bits, as tmux numbers them.
pub mod mode {
    pub const CURSOR: u32 = 0x1;
    pub const INSERT: u32 = 0x2;
    pub const KCURSOR: u32 = 0x4;
    pub const KKEYPAD: u32 = 0x8;
    pub const WRAP: u32 = 0x10;
    pub const MOUSE_STANDARD: u32 = 0x20;
    pub const MOUSE_BUTTON: u32 = 0x40;
    pub const CURSOR_BLINKING: u32 = 0x80;
    pub const MOUSE_UTF8: u32 = 0x100;
    pub const MOUSE_SGR: u32 = 0x200;
    pub const BRACKETPASTE: u32 = 0x400;
    pub const FOCUSON: u32 = 0x800;
    pub const MOUSE_ALL: u32 = 0x1000;
    pub const ORIGIN: u32 = 0x2000;
    pub const CURSOR_BLINKING_SET: u32 = 0x20000;
    pub const ALL_MOUSE: u32 = MOUSE_STANDARD | MOUSE_BUTTON | MOUSE_ALL;
}

/// The cursor shape (`DECSCUSR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CursorStyle {
    #[default]
    Default,
    Block,
    Underline,
    Bar,
}

/// A printable character on its way to the grid: its UTF-8 and width.
#[derive(Debug, Clone, Copy)]
pub struct Glyph {
    /// The code point (glibc's, which can be past U+10FFFF).
    pub cp: u32,
    pub width: u8,
}

impl Glyph {
    fn size(&self) -> usize {
        match self.cp {
            0..=0x7f => 1,
            0x80..=0x7ff => 2,
            0x800..=0xffff => 3,
            _ => 4,
        }
    }

    fn push(&self, out: &mut Vec<u8>) {
        super::grid::push_cp(self.cp, out);
    }
}

/// The alternate screen's saved state.
#[derive(Debug, Clone)]
pub struct Saved {
    pub lines: VecDeque<Line>,
    pub sx: usize,
    pub history_on: bool,
}

/// One pane's screen.
#[derive(Debug, Clone)]
pub struct Screen {
    pub grid: Grid,
    pub texts: Texts,
    pub profile: Profile,
    pub cx: usize,
    pub cy: usize,
    pub rupper: usize,
    pub rlower: usize,
    pub mode: u32,
    pub tabs: Vec<bool>,
    pub cstyle: CursorStyle,
    /// Cursor and pen saved by `?1049h` (`saved_cx`, `saved_cy`,
    /// `saved_cell`); kept after the alternate screen is left, as tmux does.
    pub saved_cursor: Option<(usize, usize)>,
    pub saved_cell: Cell,
    /// The normal screen while the alternate one is shown.
    pub saved: Option<Saved>,
    pub title: Vec<u8>,
    /// 3.2's `SCREEN_WRITE_ZWJ`: the next character joins the previous.
    zwj: bool,
    /// The last [`Screen::write_cell`] placed a cell (rather than joining
    /// the character to the previous one or dropping it).
    pub wrote: bool,
}

fn default_tabs(sx: usize) -> Vec<bool> {
    (0..sx).map(|c| c > 0 && c % 8 == 0).collect()
}

impl Screen {
    pub fn new(sx: usize, sy: usize, hlimit: usize, profile: Profile) -> Screen {
        Screen {
            grid: Grid::new(sx, sy, hlimit),
            texts: Texts::default(),
            profile,
            cx: 0,
            cy: 0,
            rupper: 0,
            rlower: sy - 1,
            mode: mode::CURSOR | mode::WRAP,
            tabs: default_tabs(sx),
            cstyle: CursorStyle::Default,
            saved_cursor: None,
            saved_cell: Cell::DEFAULT,
            saved: None,
            title: Vec::new(),
            zwj: false,
            wrote: false,
        }
    }

    pub fn sx(&self) -> usize {
        self.grid.sx
    }

    pub fn sy(&self) -> usize {
        self.grid.sy
    }

    pub fn alternate(&self) -> bool {
        self.saved.is_some()
    }

    /// The alternate screen is shown.
    pub fn alternate_screen(&self) -> bool {
        self.saved.is_some()
    }

    /// Bracketed paste (`?2004h`) is on.
    pub fn bracketed_paste(&self) -> bool {
        self.mode & mode::BRACKETPASTE != 0
    }

    /// Cursor keys in application mode (DECCKM).
    pub fn application_cursor(&self) -> bool {
        self.mode & mode::KCURSOR != 0
    }

    /// Keypad in application mode (DECKPAM).
    pub fn application_keypad(&self) -> bool {
        self.mode & mode::KKEYPAD != 0
    }

    /// Mouse tracking: `?1000`, `?1002` or `?1003` as 1000/1002/1003, or 0.
    pub fn mouse_tracking(&self) -> u16 {
        if self.mode & mode::MOUSE_ALL != 0 {
            1003
        } else if self.mode & mode::MOUSE_BUTTON != 0 {
            1002
        } else if self.mode & mode::MOUSE_STANDARD != 0 {
            1000
        } else {
            0
        }
    }

    /// Mouse encoding: 1006 (SGR), 1005 (UTF-8) or 0.
    pub fn mouse_encoding(&self) -> u16 {
        if self.mode & mode::MOUSE_SGR != 0 {
            1006
        } else if self.mode & mode::MOUSE_UTF8 != 0 {
            1005
        } else {
            0
        }
    }

    /// The cursor shape and whether it blinks.
    pub fn cursor_style(&self) -> (CursorStyle, bool) {
        (self.cstyle, self.mode & mode::CURSOR_BLINKING != 0)
    }

    /// The cursor is hidden (`?25l`).
    pub fn hide_cursor(&self) -> bool {
        self.mode & mode::CURSOR == 0
    }

    pub fn default_tabs(&self) -> bool {
        self.tabs == default_tabs(self.sx())
    }

    /// `screen_write_set_cursor`; `None` keeps a coordinate.
    pub fn set_cursor(&mut self, cx: Option<usize>, cy: Option<usize>) {
        if let Some(x) = cx {
            self.cx = if x > self.sx() { self.sx() - 1 } else { x };
        }
        if let Some(y) = cy {
            self.cy = y.min(self.sy() - 1);
        }
    }

    /// The UTF-8 of a cell as tmux keeps it (`gc.data`).
    pub fn cell_data(&self, c: &Cell, out: &mut Vec<u8>) {
        out.clear();
        if c.flags & flag::TAB != 0 && c.single().is_some() {
            out.extend(std::iter::repeat_n(b' ', usize::from(c.width)));
        } else {
            self.texts.push_utf8(c.text, out);
        }
    }

    // --- cursor movement ---------------------------------------------

    pub fn cursor_up(&mut self, ny: usize) {
        let mut ny = ny.max(1);
        let (mut cx, cy) = (self.cx, self.cy);
        if cy < self.rupper {
            ny = ny.min(cy);
        } else {
            ny = ny.min(cy - self.rupper);
        }
        if cx == self.sx() {
            cx -= 1;
        }
        self.set_cursor(Some(cx), Some(cy - ny));
    }

    pub fn cursor_down(&mut self, ny: usize) {
        let mut ny = ny.max(1);
        let (mut cx, cy) = (self.cx, self.cy);
        if cy > self.rlower {
            ny = ny.min(self.sy() - 1 - cy);
        } else {
            ny = ny.min(self.rlower - cy);
        }
        if cx == self.sx() {
            cx -= 1;
        } else if ny == 0 {
            return;
        }
        self.set_cursor(Some(cx), Some(cy + ny));
    }

    pub fn cursor_right(&mut self, nx: usize) {
        if self.cx > self.sx() - 1 {
            // tmux's unsigned `sx - 1 - cx` wraps: the cursor goes to the
            // last column.
            self.set_cursor(Some(self.cx + nx.max(1)), None);
            return;
        }
        let nx = nx.max(1).min(self.sx() - 1 - self.cx);
        if nx == 0 {
            return;
        }
        self.set_cursor(Some(self.cx + nx), None);
    }

    pub fn cursor_left(&mut self, nx: usize) {
        let nx = nx.max(1).min(self.cx);
        if nx == 0 {
            return;
        }
        self.set_cursor(Some(self.cx - nx), None);
    }

    pub fn backspace(&mut self) {
        let (mut cx, mut cy) = (self.cx, self.cy);
        if cx == 0 {
            if cy == 0 {
                return;
            }
            if self.grid.line(cy - 1).wrapped {
                cy -= 1;
                cx = self.sx() - 1;
            }
        } else {
            cx -= 1;
        }
        self.set_cursor(Some(cx), Some(cy));
    }

    /// `screen_write_cursormove`; `origin` applies DECOM.
    pub fn cursor_move(&mut self, px: Option<usize>, py: Option<usize>, origin: bool) {
        let mut py = py;
        if origin
            && self.mode & mode::ORIGIN != 0
            && let Some(y) = py
        {
            py = Some(if y > self.rlower - self.rupper {
                self.rlower
            } else {
                y + self.rupper
            });
        }
        let px = px.map(|x| x.min(self.sx() - 1));
        let py = py.map(|y| y.min(self.sy() - 1));
        self.set_cursor(px, py);
    }

    pub fn carriage_return(&mut self) {
        self.set_cursor(Some(0), None);
    }

    /// HT.
    pub fn tab(&mut self, pen: &Cell) {
        let sx = self.sx();
        if self.cx + 1 >= sx {
            return;
        }
        if !self.profile.tab_cells() {
            let mut cx = self.cx;
            loop {
                cx += 1;
                if self.tabs.get(cx) == Some(&true) || cx >= sx - 1 {
                    break;
                }
            }
            self.cx = cx;
            return;
        }
        let _ = pen;
        let y = self.cy;
        let first = self.grid.get_cell(self.cx, y);
        let mut has_content = false;
        let mut cx = self.cx;
        loop {
            if !has_content {
                let gc = self.grid.get_cell(cx, y);
                // One space (a tab cell's data is `width` spaces).
                let plain = gc.single() == Some(' ')
                    && (gc.flags & flag::TAB == 0 || gc.width == 1)
                    && gc.looks_equal(&first);
                if !plain {
                    has_content = true;
                }
            }
            cx += 1;
            if self.tabs.get(cx) == Some(&true) || cx >= sx - 1 {
                break;
            }
        }
        let width = cx - self.cx;
        if has_content || width > self.profile.cell_bytes() {
            self.cx = cx;
        } else {
            let gc = Cell {
                text: u32::from(b' '),
                flags: (first.flags | flag::TAB) & !flag::PADDING,
                width: width as u8,
                ..first
            };
            self.write_cell(gc, None);
        }
    }

    /// CBT.
    pub fn back_tab(&mut self, n: usize) {
        let mut cx = self.cx.min(self.sx() - 1);
        let mut n = n;
        while cx > 0 && n > 0 {
            n -= 1;
            loop {
                cx -= 1;
                if cx == 0 || self.tabs.get(cx) == Some(&true) {
                    break;
                }
            }
        }
        self.cx = cx;
    }

    // --- lines, scrolling --------------------------------------------

    pub fn linefeed(&mut self, wrapped: bool, bg: u32) {
        if wrapped && let Some(l) = self.grid.lines.get_mut(self.cy) {
            l.wrapped = true;
        }
        if self.cy == self.rlower {
            self.grid.scroll_region_up(self.rupper, self.rlower, bg);
        } else if self.cy < self.sy() - 1 {
            self.set_cursor(None, Some(self.cy + 1));
        }
    }

    pub fn reverse_index(&mut self, bg: u32) {
        if self.cy == self.rupper {
            self.grid.scroll_region_down(self.rupper, self.rlower, bg);
        } else if self.cy > 0 {
            self.set_cursor(None, Some(self.cy - 1));
        }
    }

    pub fn scroll_region(&mut self, rupper: usize, rlower: usize) {
        let rupper = rupper.min(self.sy() - 1);
        let rlower = rlower.min(self.sy() - 1);
        if rupper >= rlower {
            return;
        }
        self.set_cursor(Some(0), Some(0));
        self.rupper = rupper;
        self.rlower = rlower;
    }

    pub fn scroll_up(&mut self, lines: usize, bg: u32) {
        let lines = lines.max(1).min(self.rlower - self.rupper + 1);
        for _ in 0..lines {
            self.grid.scroll_region_up(self.rupper, self.rlower, bg);
        }
    }

    pub fn scroll_down(&mut self, lines: usize, bg: u32) {
        let lines = lines.max(1).min(self.rlower - self.rupper + 1);
        for _ in 0..lines {
            self.grid.scroll_region_down(self.rupper, self.rlower, bg);
        }
    }

    pub fn insert_lines(&mut self, ny: usize, bg: u32) {
        let ny = ny.max(1);
        let (sy, cy) = (self.sy(), self.cy);
        if cy < self.rupper || cy > self.rlower {
            let ny = ny.min(sy - cy);
            if ny == 0 {
                return;
            }
            // grid_view_insert_lines
            self.grid.move_lines(cy + ny, cy, sy - cy - ny, bg);
            return;
        }
        let ny = ny.min(self.rlower + 1 - cy);
        if ny == 0 {
            return;
        }
        // grid_view_insert_lines_region
        let ny2 = self.rlower + 1 - cy - ny;
        self.grid.move_lines(self.rlower + 1 - ny2, cy, ny2, bg);
        if ny > ny2 {
            self.grid.clear(0, cy + ny2, self.sx(), ny - ny2, bg);
        }
    }

    pub fn delete_lines(&mut self, ny: usize, bg: u32) {
        let ny = ny.max(1);
        let (sy, cy) = (self.sy(), self.cy);
        if cy < self.rupper || cy > self.rlower {
            let ny = ny.min(sy - cy);
            if ny == 0 {
                return;
            }
            // grid_view_delete_lines
            self.grid.move_lines(cy, cy + ny, sy - cy - ny, bg);
            self.grid.clear(0, sy - ny, self.sx(), ny, bg);
            return;
        }
        let ny = ny.min(self.rlower + 1 - cy);
        if ny == 0 {
            return;
        }
        // grid_view_delete_lines_region
        let ny2 = self.rlower + 1 - cy - ny;
        self.grid.move_lines(cy, cy + ny, ny2, bg);
        if ny > ny2 {
            self.grid.clear(0, cy + ny2, self.sx(), ny - ny2, bg);
        }
    }

    // --- erasing -----------------------------------------------------

    pub fn clear_line(&mut self, bg: u32) {
        if self.grid.line(self.cy).is_empty() && bg == COLOUR_DEFAULT {
            return;
        }
        self.grid.clear(0, self.cy, self.sx(), 1, bg);
    }

    pub fn clear_end_of_line(&mut self, bg: u32) {
        if self.cx == 0 {
            self.clear_line(bg);
            return;
        }
        let size = self.grid.line(self.cy).len();
        if self.cx > self.sx() - 1 || (self.cx >= size && bg == COLOUR_DEFAULT) {
            return;
        }
        self.grid
            .clear(self.cx, self.cy, self.sx() - self.cx, 1, bg);
    }

    pub fn clear_start_of_line(&mut self, bg: u32) {
        if self.cx >= self.sx() - 1 {
            self.clear_line(bg);
            return;
        }
        self.grid.clear(0, self.cy, self.cx + 1, 1, bg);
    }

    pub fn clear_end_of_screen(&mut self, bg: u32) {
        let (sx, sy) = (self.sx(), self.sy());
        if self.cx == 0 && self.cy == 0 && self.grid.history_on {
            self.grid.clear_into_history(bg);
        } else {
            if self.cx < sx {
                self.grid.clear(self.cx, self.cy, sx - self.cx, 1, bg);
            }
            self.grid.clear(0, self.cy + 1, sx, sy - (self.cy + 1), bg);
        }
    }

    pub fn clear_start_of_screen(&mut self, bg: u32) {
        let sx = self.sx();
        if self.cy > 0 {
            self.grid.clear(0, 0, sx, self.cy, bg);
        }
        if self.cx > sx - 1 {
            self.grid.clear(0, self.cy, sx, 1, bg);
        } else {
            self.grid.clear(0, self.cy, self.cx + 1, 1, bg);
        }
    }

    pub fn clear_screen(&mut self, bg: u32) {
        if self.grid.history_on {
            self.grid.clear_into_history(bg);
        } else {
            let (sx, sy) = (self.sx(), self.sy());
            self.grid.clear(0, 0, sx, sy, bg);
        }
    }

    pub fn clear_history(&mut self) {
        self.grid.clear_history();
    }

    /// ECH, ICH, DCH share these bounds.
    fn char_count(&self, nx: usize) -> Option<usize> {
        let sx = self.sx();
        let nx = nx.max(1).min(sx.saturating_sub(self.cx));
        if nx == 0 || self.cx > sx - 1 {
            return None;
        }
        Some(nx)
    }

    pub fn clear_characters(&mut self, nx: usize, bg: u32) {
        if let Some(nx) = self.char_count(nx) {
            self.grid.clear(self.cx, self.cy, nx, 1, bg);
        }
    }

    /// `grid_view_insert_cells`.
    fn insert_cells(&mut self, px: usize, py: usize, nx: usize, bg: u32) {
        let sx = self.sx();
        if px >= sx - 1 {
            self.grid.clear(px, py, 1, 1, bg);
        } else {
            self.grid
                .move_cells(px + nx, px, py, sx.saturating_sub(px + nx), bg);
        }
    }

    pub fn insert_characters(&mut self, nx: usize, bg: u32) {
        if let Some(nx) = self.char_count(nx) {
            self.insert_cells(self.cx, self.cy, nx, bg);
        }
    }

    pub fn delete_characters(&mut self, nx: usize, bg: u32) {
        if let Some(nx) = self.char_count(nx) {
            let sx = self.sx();
            let (px, py) = (self.cx, self.cy);
            self.grid.move_cells(px, px + nx, py, sx - px - nx, bg);
            self.grid.clear(sx - nx, py, nx, 1, bg);
        }
    }

    /// DECALN.
    pub fn alignment_test(&mut self) {
        let e = Cell {
            text: u32::from(b'E'),
            ..Cell::DEFAULT
        };
        for y in 0..self.sy() {
            for x in 0..self.sx() {
                self.grid.set_cell(x, y, e);
            }
        }
        self.set_cursor(Some(0), Some(0));
        self.rupper = 0;
        self.rlower = self.sy() - 1;
    }

    /// RIS (`screen_write_reset`).
    pub fn reset(&mut self) {
        self.tabs = default_tabs(self.sx());
        self.scroll_region(0, self.sy() - 1);
        self.mode = mode::CURSOR | mode::WRAP;
        self.clear_screen(COLOUR_DEFAULT);
        self.set_cursor(Some(0), Some(0));
    }

    // --- the alternate screen ----------------------------------------

    pub fn alternate_on(&mut self, pen: &Cell, cursor: bool) {
        if self.saved.is_some() {
            return;
        }
        let (sx, sy) = (self.sx(), self.sy());
        self.saved = Some(Saved {
            lines: self.grid.lines.clone(),
            sx,
            history_on: self.grid.history_on,
        });
        if cursor {
            self.saved_cursor = Some((self.cx, self.cy));
        }
        self.saved_cell = *pen;
        self.grid.clear(0, 0, sx, sy, COLOUR_DEFAULT);
        self.grid.history_on = false;
    }

    pub fn alternate_off(&mut self, pen: &mut Cell, cursor: bool) {
        let (sx, sy) = (self.sx(), self.sy());
        if let Some(saved) = &self.saved
            && (saved.sx, saved.lines.len()) != (sx, sy)
        {
            let (ox, oy) = (saved.sx, saved.lines.len());
            self.resize_with(ox, oy, false);
        }
        if cursor && let Some((x, y)) = self.saved_cursor {
            self.cx = x;
            self.cy = y;
            *pen = self.saved_cell;
        }
        if let Some(saved) = self.saved.take() {
            self.grid.lines = saved.lines;
            self.grid.history_on = saved.history_on;
            self.resize_with(sx, sy, true);
        }
        self.cx = self.cx.min(self.sx() - 1);
        self.cy = self.cy.min(self.sy() - 1);
    }

    // --- printing ----------------------------------------------------

    /// Printable ASCII with one pen, collected (`screen_write_collect_add`
    /// and `_end`): autowrap on, insert off, no line drawing.
    pub fn write_ascii(&mut self, pen: &Cell, mut bytes: &[u8]) {
        let sx = self.sx();
        while !bytes.is_empty() {
            if self.cx > sx - 1 {
                self.linefeed(true, COLOUR_DEFAULT);
                self.set_cursor(Some(0), None);
            }
            let n = bytes.len().min(sx - self.cx);
            let (run, rest) = bytes.split_at(n);
            let (cx, cy) = (self.cx, self.cy);
            self.erase_padding_before(cx, cy);
            let padding_after = self.grid.set_ascii(cx, cy, pen, run);
            self.cx = cx + n;
            if padding_after {
                self.erase_padding_after(self.cx, cy);
            }
            bytes = rest;
        }
    }

    /// Erases a cell that belonged to a wide character (3.8+ keeps its
    /// background: `screen_write_clear_cell`).
    fn erase_cell(&mut self, x: usize, y: usize) {
        let c = if self.profile.padding_bg() {
            Cell {
                bg: self.grid.get_cell(x, y).bg,
                ..Cell::DEFAULT
            }
        } else {
            Cell::DEFAULT
        };
        self.grid.set_cell(x, y, c);
    }

    /// A padding cell for a character of background `bg`.
    fn padding(&self, bg: u32) -> Cell {
        if self.profile.padding_bg() {
            Cell {
                bg,
                ..Cell::PADDING
            }
        } else {
            Cell::PADDING
        }
    }

    /// The collect path's "padding erased (before)": writing over the
    /// right half of a wide character erases the whole character.
    fn erase_padding_before(&mut self, cx: usize, cy: usize) {
        if cx == 0 {
            return;
        }
        let mut xx = cx;
        // The last cell looked at (tmux's `gc`).
        let mut gc = Cell::DEFAULT;
        while xx > 0 {
            gc = self.grid.get_cell(xx, cy);
            if !gc.is_padding() {
                break;
            }
            self.erase_cell(xx, cy);
            xx -= 1;
        }
        if self.profile.padding_erase_fix() {
            if xx != cx {
                if xx == 0 {
                    gc = self.grid.get_cell(0, cy);
                }
                if gc.width > 1 || gc.is_padding() {
                    self.erase_cell(xx, cy);
                }
            }
        } else if gc.width > 1 {
            self.erase_cell(xx, cy);
        }
    }

    /// "padding erased (after)".
    fn erase_padding_after(&mut self, from: usize, cy: usize) {
        let sx = self.sx();
        let mut xx = from;
        while xx < sx {
            if !self.grid.is_padding(xx, cy) {
                break;
            }
            self.erase_cell(xx, cy);
            xx += 1;
        }
    }

    /// `screen_write_cell`: one cell through the combining, wrapping and
    /// wide-character rules. `glyph` is the character for the combining
    /// checks (`None` for tab cells, whose data is spaces).
    pub fn write_cell(&mut self, gc: Cell, glyph: Option<Glyph>) {
        self.wrote = false;
        let sx = self.sx();
        let sy = self.sy();
        let width = usize::from(gc.width);
        if let Some(g) = glyph
            && self.combine(&gc, g)
        {
            return;
        }
        if glyph.is_none() && self.combine_tab(&gc) {
            return;
        }
        if self.mode & mode::WRAP == 0
            && width > 1
            && (width > sx || (self.cx != sx && self.cx + width > sx))
        {
            return;
        }
        if self.mode & mode::INSERT != 0 {
            self.insert_cells(self.cx, self.cy, width, COLOUR_DEFAULT);
        }
        if self.mode & mode::WRAP != 0 && self.cx + width > sx {
            self.linefeed(true, COLOUR_DEFAULT);
            self.set_cursor(Some(0), None);
        }
        if self.cx + width > sx || self.cy > sy - 1 {
            return;
        }
        let now = self.grid.get_cell(self.cx, self.cy);
        self.overwrite(&now, width);
        let pad = self.padding(gc.bg);
        for xx in self.cx + 1..self.cx + width {
            self.grid.set_cell(xx, self.cy, pad);
        }
        self.grid.set_cell(self.cx, self.cy, gc);
        self.wrote = true;
        let not_wrap = usize::from(self.mode & mode::WRAP == 0);
        if self.cx + not_wrap + width <= sx {
            self.set_cursor(Some(self.cx + width), None);
        } else {
            self.set_cursor(Some(sx - not_wrap), None);
        }
    }

    /// `screen_write_overwrite`: clears the rest of any wide character the
    /// new one lands on.
    fn overwrite(&mut self, now: &Cell, width: usize) {
        let (cx, cy, sx) = (self.cx, self.cy, self.sx());
        if now.is_padding() {
            let mut xx = cx + 1;
            loop {
                xx -= 1;
                if xx == 0 || !self.grid.get_cell(xx, cy).is_padding() {
                    break;
                }
                self.erase_cell(xx, cy);
            }
            self.erase_cell(xx, cy);
        }
        if width != 1 || now.width != 1 || now.is_padding() {
            let mut xx = cx + width;
            while xx < sx {
                let c = self.grid.get_cell(xx, cy);
                if !c.is_padding() {
                    break;
                }
                if now.flags & flag::TAB != 0 && !self.profile.padding_bg() {
                    // tmux copies the tab cell, flags and all.
                    let t = Cell {
                        text: u32::from(b' '),
                        width: 1,
                        ..*now
                    };
                    self.grid.set_cell(xx, cy, t);
                } else {
                    self.erase_cell(xx, cy);
                }
                xx += 1;
            }
        }
    }

    /// A tab cell (data: spaces) can only join a cell ending in ZWJ (3.6+).
    fn combine_tab(&mut self, gc: &Cell) -> bool {
        let width = usize::from(gc.width);
        if width < 2 || self.cx == 0 || !self.profile.modern_combine() {
            return false;
        }
        let Some((x, last)) = self.combine_target() else {
            return false;
        };
        let mut data = Vec::new();
        self.cell_data(&last, &mut data);
        if !data.ends_with("\u{200d}".as_bytes()) || data.len() + width > self.profile.cell_bytes()
        {
            return false;
        }
        data.extend(std::iter::repeat_n(b' ', width));
        self.set_combined(x, last, &data, false);
        true
    }

    /// The cell a character at the cursor would join, with its column
    /// (3.5+: the cell just left, or the wide one two left).
    fn combine_target(&self) -> Option<(usize, Cell)> {
        let (cx, cy) = (self.cx, self.cy);
        let mut n = 1;
        let mut last = self.grid.get_cell(cx - n, cy);
        if cx != 1 && last.is_padding() {
            n = 2;
            last = self.grid.get_cell(cx - n, cy);
        }
        if n != usize::from(last.width) || last.is_padding() {
            return None;
        }
        Some((cx - n, last))
    }

    fn set_combined(&mut self, x: usize, last: Cell, data: &[u8], force_wide: bool) {
        // tmux packs a cell's size in 5 bits next to its width: 32 bytes
        // (possible from 3.6) read back as no data and a wider width.
        let overflow = data.len() == 32;
        let text = self.texts.intern(if overflow { &[] } else { data });
        let mut cell = Cell { text, ..last };
        let cy = self.cy;
        let stored = |w: u8| if overflow { ((w + 1) | 1) - 1 } else { w };
        cell.width = stored(last.width);
        if last.width == 1 && force_wide {
            cell.width = stored(2);
            self.grid.set_cell(x, cy, cell);
            let pad = self.padding(last.bg);
            self.grid.set_cell(x + 1, cy, pad);
            // 3.7+ leaves the cursor alone when the widened character
            // sticks out of the pane (`vis < n` in screen_write_combine).
            if !(self.profile.combine_37() && x + 2 > self.sx()) {
                self.set_cursor(Some(self.cx + 1), None);
            }
        } else {
            self.grid.set_cell(x, cy, cell);
        }
        if self.texts.needs_collect() {
            self.collect_texts();
        }
    }

    /// Rebuilds the text table from the cells still alive.
    fn collect_texts(&mut self) {
        let mut saved_cells: Vec<&mut Cell> = Vec::new();
        if let Some(s) = self.saved.as_mut() {
            saved_cells.extend(s.lines.iter_mut().flat_map(|l| l.cells_mut()));
        }
        self.texts.collect(self.grid.cells_mut().chain(saved_cells));
    }

    /// `screen_write_combine`: true when the character was consumed (joined
    /// to the previous cell, or dropped because it cannot stand alone).
    fn combine(&mut self, gc: &Cell, g: Glyph) -> bool {
        if !self.profile.modern_combine() {
            return self.combine_32(gc, g);
        }
        let c = g.cp;
        if self.profile.combine_37() && c == 0x3164 {
            return true;
        }
        let mut force_wide = false;
        let zero_width = if c == 0x200d {
            true
        } else if c == 0xfe0f {
            force_wide = true;
            true
        } else {
            g.width == 0
        };
        if g.size() < 2 || self.cx == 0 {
            return zero_width;
        }
        let Some((x, last)) = self.combine_target() else {
            return zero_width;
        };
        // Fast path (no allocation) for the common case: an ordinary
        // character after a one-code-point cell joins only a lone ZWJ.
        if !zero_width
            && last.flags & flag::TAB == 0
            && last.single_cp().is_some_and(|w| !joins_specially(w))
            && !joins_specially(c)
            && last.text != 0x200d
        {
            return false;
        }
        let mut data = Vec::new();
        self.cell_data(&last, &mut data);
        if !zero_width {
            if self.profile.combine_37() {
                match hangul_state(&data, g) {
                    Hangul::NotComposable => return true,
                    Hangul::Choseong => return false,
                    Hangul::Composable => {}
                    Hangul::Other => {
                        let w = first_char(&data);
                        if should_combine(w, &data, c) || should_combine_rev(c, w, &data) {
                            force_wide = true;
                        } else if !data.ends_with("\u{200d}".as_bytes()) {
                            return false;
                        }
                    }
                }
            } else if is_modifier(c) {
                if data.len() < 2 {
                    return false;
                }
                force_wide = true;
            } else if !data.ends_with("\u{200d}".as_bytes()) {
                return false;
            }
        }
        if data.len() + g.size() > self.profile.cell_bytes() {
            // 3.8 drops a zero-width character that no longer fits;
            // before, it was written as a cell of its own.
            return zero_width && self.profile.padding_bg();
        }
        g.push(&mut data);
        self.set_combined(x, last, &data, force_wide);
        true
    }

    /// tmux 3.2–3.4: ZWJ sets a flag and the next character joins the
    /// previous cell, as does any width-0 character; a character that
    /// cannot join is dropped.
    fn combine_32(&mut self, gc: &Cell, g: Glyph) -> bool {
        let _ = gc;
        if g.cp == 0x200d {
            self.zwj = true;
            return true;
        }
        if g.width != 0 && !self.zwj {
            return false;
        }
        let zwj = std::mem::take(&mut self.zwj);
        if zwj {
            self.append_32("\u{200d}".as_bytes());
        }
        let mut add = Vec::new();
        g.push(&mut add);
        self.append_32(&add);
        true
    }

    fn append_32(&mut self, add: &[u8]) {
        let (cx, cy) = (self.cx, self.cy);
        if cx == 0 {
            return;
        }
        let mut n = 1;
        let mut last = self.grid.get_cell(cx - n, cy);
        while last.is_padding() {
            n += 1;
            if n > cx {
                return;
            }
            last = self.grid.get_cell(cx - n, cy);
        }
        let mut data = Vec::new();
        self.cell_data(&last, &mut data);
        if data.len() + add.len() > self.profile.cell_bytes() {
            return;
        }
        data.extend_from_slice(add);
        self.set_combined(cx - n, last, &data, false);
    }

    /// Whether the pen's line-drawing bit must be set on a printed cell.
    pub fn charset_cell(pen: &Cell, charset: bool) -> Cell {
        let mut c = *pen;
        if charset {
            c.attr |= attr::CHARSET;
        } else {
            c.attr &= !attr::CHARSET;
        }
        c
    }

    /// Resizes the screen as tmux does (`screen_resize`): see
    /// [`super::resize`]. The normal screen reflows; the alternate one does
    /// not, and the normal screen it hides is resized when it comes back.
    pub fn resize(&mut self, sx: usize, sy: usize) {
        let reflow = self.saved.is_none();
        self.resize_with(sx, sy, reflow);
    }

    /// `screen_resize_cursor(s, sx, sy, reflow, 1, 1)`.
    fn resize_with(&mut self, sx: usize, sy: usize, reflow: bool) {
        if sx != self.sx() {
            self.tabs = default_tabs(sx);
        }
        let oldy = self.sy();
        let (cx, cy) = super::resize::resize(&mut self.grid, sx, sy, reflow, self.cx, self.cy);
        self.cx = cx;
        self.cy = cy;
        if sy != oldy {
            self.rupper = 0;
            self.rlower = sy - 1;
        }
    }
}

fn first_char(data: &[u8]) -> u32 {
    let n = match data.first() {
        Some(0..=0x7f) => 1,
        Some(0xc0..=0xdf) => 2,
        Some(0xe0..=0xef) => 3,
        _ => 4,
    };
    data.get(..n)
        .and_then(|b| {
            if n == 1 {
                Some(u32::from(b[0]))
            } else {
                super::grid::decode_cp(b)
            }
        })
        .unwrap_or(0)
}

/// Characters some tmux joins to a neighbour by their own rules: regional
/// indicators, skin tones and their bases, Hangul jamo.
fn joins_specially(c: u32) -> bool {
    // Cheap ranges first: most characters are below every one of these.
    (0x1100..=0x11ff).contains(&c)
        || (0xa960..=0xa97f).contains(&c)
        || (0xd7b0..=0xd7ff).contains(&c)
        || (c >= 0x1F1E6 && (is_modifier(c) || SKIN_TONE_BASES.binary_search(&c).is_ok()))
}

/// 3.5's modifier table: regional indicators and skin tones.
fn is_modifier(c: u32) -> bool {
    (0x1F1E6..=0x1F1FF).contains(&c) || (0x1F3FB..=0x1F3FF).contains(&c)
}

fn regional_count(data: &[u8]) -> usize {
    data.windows(4)
        .filter(|w| w[0] == 0xf0 && w[1] == 0x9f && w[2] == 0x87 && (0xa6..=0xbf).contains(&w[3]))
        .count()
}

const SKIN_TONE_BASES: &[u32] = &[
    0x1F44B, 0x1F44C, 0x1F44D, 0x1F44E, 0x1F44F, 0x1F450, 0x1F466, 0x1F467, 0x1F468, 0x1F469,
    0x1F46E, 0x1F470, 0x1F471, 0x1F472, 0x1F473, 0x1F474, 0x1F475, 0x1F476, 0x1F477, 0x1F478,
    0x1F47C, 0x1F481, 0x1F482, 0x1F483, 0x1F485, 0x1F486, 0x1F487, 0x1F4AA, 0x1F575, 0x1F57A,
    0x1F590, 0x1F595, 0x1F596, 0x1F645, 0x1F646, 0x1F647, 0x1F64B, 0x1F64C, 0x1F64D, 0x1F64E,
    0x1F64F, 0x1F6B4, 0x1F6B5, 0x1F6B6, 0x1F926, 0x1F937, 0x1F938, 0x1F939, 0x1F93D, 0x1F93E,
    0x1F9B5, 0x1F9B6, 0x1F9B8, 0x1F9B9, 0x1F9CD, 0x1F9CE, 0x1F9CF, 0x1F9D1, 0x1F9D2, 0x1F9D3,
    0x1F9D4, 0x1F9D5, 0x1F9D6, 0x1F9D7, 0x1F9D8, 0x1F9D9, 0x1F9DA, 0x1F9DB, 0x1F9DC, 0x1F9DD,
    0x1F9DE, 0x1F9DF,
];

/// `utf8_should_combine(with, add)` with `with` = the cell (first code
/// point `w`, bytes `with`) and `add` the new character.
fn should_combine(w: u32, with: &[u8], a: u32) -> bool {
    let mut add = Vec::new();
    super::grid::push_cp(a, &mut add);
    pair_combines(w, with, a, &add)
}

/// `utf8_should_combine(add, with)`: the arguments the other way round.
fn should_combine_rev(a: u32, w: u32, with: &[u8]) -> bool {
    let mut add = Vec::new();
    super::grid::push_cp(a, &mut add);
    pair_combines(a, &add, w, with)
}

fn pair_combines(w: u32, with: &[u8], a: u32, add: &[u8]) -> bool {
    let regional = |c: u32| (0x1F1E6..=0x1F1FF).contains(&c);
    if regional(a) && regional(w) {
        return regional_count(with) == 1 && regional_count(add) == 1;
    }
    SKIN_TONE_BASES.binary_search(&a).is_ok() && (0x1F3FB..=0x1F3FF).contains(&w)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hangul {
    Other,
    Choseong,
    Composable,
    NotComposable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JamoClass {
    Not,
    Choseong,
    Jungseong,
    Jongseong,
}

/// `hanguljamo_get_class` on three UTF-8 bytes.
fn jamo_class(s: &[u8]) -> JamoClass {
    if s.len() < 3 {
        return JamoClass::Not;
    }
    match (s[0], s[1], s[2]) {
        (0xE1, 0x84, 0x80..=0xBF) => JamoClass::Choseong,
        (0xE1, 0x85, 0x80..=0x9F) => JamoClass::Choseong,
        (0xE1, 0x85, 0xA0..=0xBF) => JamoClass::Jungseong,
        (0xE1, 0x86, 0x80..=0xA7) => JamoClass::Jungseong,
        (0xE1, 0x86, 0xA8..=0xBF) => JamoClass::Jongseong,
        (0xE1, 0x87, 0x80..=0xBF) => JamoClass::Jongseong,
        (0xEA, 0xA5, 0xA0..=0xBC) => JamoClass::Choseong,
        (0xED, 0x9E, 0xB0..=0xBF) => JamoClass::Jungseong,
        (0xED, 0x9F, 0x80..=0x86) => JamoClass::Jungseong,
        (0xED, 0x9F, 0x8B..=0xBB) => JamoClass::Jongseong,
        _ => JamoClass::Not,
    }
}

/// `hanguljamo_check_state(previous cell, new character)`.
fn hangul_state(prev: &[u8], g: Glyph) -> Hangul {
    let mut v = Vec::new();
    g.push(&mut v);
    let ud = &v[..];
    if ud.len() != 3 {
        return Hangul::Other;
    }
    let tail = |want: JamoClass| {
        if prev.len() < 3 {
            return Hangul::NotComposable;
        }
        if jamo_class(&prev[prev.len() - 3..]) == want {
            Hangul::Composable
        } else {
            Hangul::NotComposable
        }
    };
    match jamo_class(ud) {
        JamoClass::Choseong => Hangul::Choseong,
        JamoClass::Jungseong => tail(JamoClass::Choseong),
        JamoClass::Jongseong => tail(JamoClass::Jungseong),
        JamoClass::Not => Hangul::Other,
    }
}
