//! The grid: cells, lines and history, laid out as tmux's grid.c keeps them
//! (a line has `cellsize` allocated cells and `cellused` written ones; both
//! show in `capture-pane`), with the history in a ring buffer.
//!
//! Screen lines own a `Vec<Cell>` each, allocated once and reused as lines
//! scroll; history lines are copied into one `VecDeque<Cell>` ring (no
//! allocation per line once it has grown). A cell is 20 bytes; characters
//! of more than one code point (combining marks, joined emoji) live in a
//! [`Texts`] table and the cell holds an index.

use std::collections::{HashMap, VecDeque};

/// `GRID_ATTR_*` bits, as tmux numbers them.
pub mod attr {
    pub const BRIGHT: u16 = 0x1;
    pub const DIM: u16 = 0x2;
    pub const UNDERSCORE: u16 = 0x4;
    pub const BLINK: u16 = 0x8;
    pub const REVERSE: u16 = 0x10;
    pub const HIDDEN: u16 = 0x20;
    pub const ITALICS: u16 = 0x40;
    pub const CHARSET: u16 = 0x80;
    pub const STRIKETHROUGH: u16 = 0x100;
    pub const UNDERSCORE_2: u16 = 0x200;
    pub const UNDERSCORE_3: u16 = 0x400;
    pub const UNDERSCORE_4: u16 = 0x800;
    pub const UNDERSCORE_5: u16 = 0x1000;
    pub const OVERLINE: u16 = 0x2000;
    pub const ALL_UNDERSCORE: u16 =
        UNDERSCORE | UNDERSCORE_2 | UNDERSCORE_3 | UNDERSCORE_4 | UNDERSCORE_5;
}

/// `GRID_FLAG_*` bits this model keeps.
pub mod flag {
    /// The right half (or more) of a wide character.
    pub const PADDING: u8 = 0x1;
    /// Cleared by an erase (not written).
    pub const CLEARED: u8 = 0x2;
    /// A tab cell (tmux 3.6+): `width` columns, `capture-pane` prints `\t`.
    pub const TAB: u8 = 0x4;
}

/// The default colour (`8` in tmux).
pub const COLOUR_DEFAULT: u32 = 8;
/// A 256-colour palette index (`COLOUR_FLAG_256`).
pub const COLOUR_256: u32 = 0x0100_0000;
/// An RGB colour (`COLOUR_FLAG_RGB`), `0x02RRGGBB`.
pub const COLOUR_RGB: u32 = 0x0200_0000;

/// Marks [`Cell::text`] as an index into [`Texts`].
const COMBINED: u32 = 0x8000_0000;

/// One cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    /// A character (`char as u32`), or `COMBINED | index` into [`Texts`].
    pub text: u32,
    pub fg: u32,
    pub bg: u32,
    /// Underline colour.
    pub us: u32,
    pub attr: u16,
    pub flags: u8,
    /// Columns the character takes (0 for padding).
    pub width: u8,
}

impl Cell {
    /// `grid_default_cell`.
    pub const DEFAULT: Cell = Cell {
        text: b' ' as u32,
        fg: COLOUR_DEFAULT,
        bg: COLOUR_DEFAULT,
        us: COLOUR_DEFAULT,
        attr: 0,
        flags: 0,
        width: 1,
    };

    /// `grid_padding_cell`.
    pub const PADDING: Cell = Cell {
        text: b'!' as u32,
        width: 0,
        flags: flag::PADDING,
        ..Cell::DEFAULT
    };

    /// A cell cleared with background `bg` (`grid_clear_cell`).
    pub fn cleared(bg: u32) -> Cell {
        Cell {
            flags: flag::CLEARED,
            bg,
            ..Cell::DEFAULT
        }
    }

    pub fn is_padding(&self) -> bool {
        self.flags & flag::PADDING != 0
    }

    /// A single character (not a [`Texts`] entry).
    pub fn single(&self) -> Option<char> {
        if self.text & COMBINED != 0 {
            None
        } else {
            char::from_u32(self.text)
        }
    }

    /// A single code point (glibc's UTF-8 goes past U+10FFFF).
    pub fn single_cp(&self) -> Option<u32> {
        (self.text & COMBINED == 0).then_some(self.text)
    }

    /// Same look (`grid_cells_look_equal`): colours, attributes, flags but
    /// `CLEARED`.
    pub fn looks_equal(&self, o: &Cell) -> bool {
        self.fg == o.fg
            && self.bg == o.bg
            && self.attr == o.attr
            && (self.flags & !flag::CLEARED) == (o.flags & !flag::CLEARED)
    }

    /// Same pen: the attributes a terminal draws with.
    pub fn same_pen(&self, o: &Cell) -> bool {
        self.fg == o.fg && self.bg == o.bg && self.us == o.us && self.attr == o.attr
    }
}

/// Texts of cells that hold more than one code point, interned. Bounded:
/// when full, [`Texts::collect`] keeps only what live cells use.
#[derive(Debug, Default, Clone)]
pub struct Texts {
    strings: Vec<Box<[u8]>>,
    index: HashMap<Box<[u8]>, u32>,
}

/// Appends the UTF-8 form of a code point, including glibc's values past
/// U+10FFFF (four bytes up to U+1FFFFF).
pub fn push_cp(cp: u32, out: &mut Vec<u8>) {
    match cp {
        0..=0x7f => out.push(cp as u8),
        0x80..=0x7ff => out.extend_from_slice(&[0xc0 | (cp >> 6) as u8, 0x80 | (cp & 0x3f) as u8]),
        0x800..=0xffff => out.extend_from_slice(&[
            0xe0 | (cp >> 12) as u8,
            0x80 | ((cp >> 6) & 0x3f) as u8,
            0x80 | (cp & 0x3f) as u8,
        ]),
        _ => out.extend_from_slice(&[
            0xf0 | ((cp >> 18) & 0x07) as u8,
            0x80 | ((cp >> 12) & 0x3f) as u8,
            0x80 | ((cp >> 6) & 0x3f) as u8,
            0x80 | (cp & 0x3f) as u8,
        ]),
    }
}

/// Decodes one UTF-8 character as glibc's `mbtowc` does for the sequences
/// tmux hands it (2 to 4 bytes, lead `C2`-`F4`): overlong forms and
/// surrogates are rejected, values past U+10FFFF are not.
pub fn decode_cp(b: &[u8]) -> Option<u32> {
    let cont = |i: usize| -> Option<u32> {
        let c = *b.get(i)?;
        (c & 0xc0 == 0x80).then_some(u32::from(c & 0x3f))
    };
    let lead = u32::from(*b.first()?);
    let (cp, min) = match b.len() {
        2 => ((lead & 0x1f) << 6 | cont(1)?, 0x80),
        3 => ((lead & 0x0f) << 12 | cont(1)? << 6 | cont(2)?, 0x800),
        4 => (
            (lead & 0x07) << 18 | cont(1)? << 12 | cont(2)? << 6 | cont(3)?,
            0x10000,
        ),
        _ => return None,
    };
    if cp < min || (0xd800..=0xdfff).contains(&cp) {
        return None;
    }
    Some(cp)
}

/// Entries before a collection.
const TEXTS_MAX: usize = 1 << 16;

impl Texts {
    /// The cell text for UTF-8 `s` of one or more characters.
    pub fn intern(&mut self, s: &[u8]) -> u32 {
        if let Some(i) = self.index.get(s) {
            return COMBINED | *i;
        }
        let i = self.strings.len() as u32;
        self.strings.push(s.into());
        self.index.insert(s.into(), i);
        COMBINED | i
    }

    /// Appends the UTF-8 of a cell text to `out`.
    pub fn push_utf8(&self, text: u32, out: &mut Vec<u8>) {
        if text & COMBINED != 0 {
            if let Some(s) = self.strings.get((text & !COMBINED) as usize) {
                out.extend_from_slice(s);
            }
        } else {
            push_cp(text, out);
        }
    }

    pub fn needs_collect(&self) -> bool {
        self.strings.len() >= TEXTS_MAX
    }

    /// Drops entries no cell uses; `cells` yields every live cell and is
    /// walked twice (mark, then rewrite via `rewrite`).
    pub fn collect<'a>(&mut self, cells: impl Iterator<Item = &'a mut Cell>) {
        let old = std::mem::take(&mut self.strings);
        self.index.clear();
        let mut remap: HashMap<u32, u32> = HashMap::new();
        for c in cells {
            if c.text & COMBINED == 0 {
                continue;
            }
            let from = c.text & !COMBINED;
            let to = match remap.get(&from) {
                Some(&t) => t,
                None => {
                    let s = old
                        .get(from as usize)
                        .cloned()
                        .unwrap_or_else(|| Box::from(&b" "[..]));
                    let t = self.strings.len() as u32;
                    self.index.insert(s.clone(), t);
                    self.strings.push(s);
                    remap.insert(from, t);
                    t
                }
            };
            c.text = COMBINED | to;
        }
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.strings.iter().map(|s| 2 * s.len() + 40).sum::<usize>()
    }
}

/// A screen line.
#[derive(Debug, Clone, Default)]
pub struct Line {
    /// `cellsize` cells.
    pub cells: Vec<Cell>,
    /// `cellused`.
    pub used: u16,
    /// `GRID_LINE_WRAPPED`: continues on the next line.
    pub wrapped: bool,
}

impl Line {
    fn empty(&mut self) {
        self.cells.clear();
        self.used = 0;
        self.wrapped = false;
    }

    pub fn get(&self, x: usize) -> Cell {
        self.cells.get(x).copied().unwrap_or(Cell::DEFAULT)
    }
}

/// A history line's place in the ring.
#[derive(Debug, Clone, Copy)]
struct HistLine {
    /// Absolute index of its first cell.
    start: u64,
    /// Cells stored: the line's cells without its trailing run of
    /// default cleared cells (`grid_expand_line`'s fill).
    len: u16,
    /// The line's `cellsize`.
    size: u16,
    used: u16,
    wrapped: bool,
}

/// A history line's kept snapshot bytes, whether they end waiting to wrap,
/// whether they were rendered as continuing the line above.
type Rendered = (Box<[u8]>, bool, bool);

/// Lines scrolled off the top, oldest first, in one ring of cells.
#[derive(Debug, Default, Clone)]
pub struct History {
    /// Each line's snapshot bytes once rendered (`crate::snapshot`): the
    /// bytes, whether they end waiting to wrap, whether they were rendered
    /// as continuing the line above.
    rendered: VecDeque<Option<Rendered>>,
    rendered_bytes: usize,
    cells: VecDeque<Cell>,
    /// Absolute index of `cells[0]`.
    base: u64,
    lines: VecDeque<HistLine>,
}

/// A borrowed line: screen or history.
#[derive(Debug, Clone, Copy)]
pub struct LineRef<'a> {
    /// The stored cells (two slices of the history ring).
    pub cells: (&'a [Cell], &'a [Cell]),
    /// `cellsize`: cells past the stored ones are default cleared cells.
    pub size: u16,
    pub used: u16,
    pub wrapped: bool,
}

/// The fill of a line's allocated but unwritten cells.
const FILL: Cell = Cell {
    flags: flag::CLEARED,
    ..Cell::DEFAULT
};

impl LineRef<'_> {
    pub fn len(&self) -> usize {
        usize::from(self.size)
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    fn stored(&self) -> usize {
        self.cells.0.len() + self.cells.1.len()
    }

    pub fn get(&self, x: usize) -> Cell {
        let a = self.cells.0.len();
        if x < a {
            self.cells.0[x]
        } else if let Some(c) = self.cells.1.get(x - a) {
            *c
        } else if x < self.len() {
            FILL
        } else {
            Cell::DEFAULT
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Cell> + '_ {
        let fill = self.len().saturating_sub(self.stored());
        self.cells
            .0
            .iter()
            .chain(self.cells.1.iter())
            .copied()
            .chain(std::iter::repeat_n(FILL, fill))
    }
}

impl<'a> From<&'a Line> for LineRef<'a> {
    fn from(l: &'a Line) -> Self {
        LineRef {
            cells: (&l.cells, &[]),
            size: l.cells.len() as u16,
            used: l.used,
            wrapped: l.wrapped,
        }
    }
}

impl History {
    /// Line `i`'s kept snapshot bytes and whether they end waiting to wrap.
    pub fn rendered(&self, i: usize) -> Option<(&[u8], bool)> {
        self.rendered.get(i)?.as_ref().map(|(b, p, _)| (&b[..], *p))
    }

    /// Whether line `i` has kept bytes: (pending wrap, rendered continuing).
    pub fn rendered_with(&self, i: usize) -> Option<(bool, bool)> {
        self.rendered.get(i)?.as_ref().map(|(_, p, c)| (*p, *c))
    }

    pub fn set_rendered(&mut self, i: usize, bytes: Vec<u8>, pending: bool, continues: bool) {
        if let Some(slot) = self.rendered.get_mut(i) {
            if let Some((old, _, _)) = slot.take() {
                self.rendered_bytes -= old.len();
            }
            self.rendered_bytes += bytes.len();
            *slot = Some((bytes.into_boxed_slice(), pending, continues));
        }
    }

    /// Bytes of kept snapshot renderings.
    pub fn rendered_bytes(&self) -> usize {
        self.rendered_bytes
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn cell_count(&self) -> usize {
        self.cells.len()
    }

    /// Adds a line at the newest end.
    pub fn push_line(&mut self, line: &Line) {
        self.push(line);
    }

    fn push(&mut self, line: &Line) {
        let start = self.base + self.cells.len() as u64;
        let keep = line
            .cells
            .iter()
            .rposition(|c| *c != FILL)
            .map_or(0, |i| i + 1);
        self.cells.extend(line.cells[..keep].iter().copied());
        self.rendered.push_back(None);
        self.lines.push_back(HistLine {
            start,
            len: keep as u16,
            size: line.cells.len() as u16,
            used: line.used,
            wrapped: line.wrapped,
        });
    }

    fn pop_front(&mut self, n: usize) {
        for _ in 0..n {
            if let Some(Some((b, _, _))) = self.rendered.pop_front() {
                self.rendered_bytes -= b.len();
            }
            if let Some(l) = self.lines.pop_front() {
                let drop = (l.start + u64::from(l.len) - self.base) as usize;
                self.cells.drain(..drop.min(self.cells.len()));
                self.base += drop as u64;
            }
        }
    }

    pub fn clear(&mut self) {
        self.rendered.clear();
        self.rendered_bytes = 0;
        self.base += self.cells.len() as u64;
        self.cells.clear();
        self.lines.clear();
    }

    /// Line `i` (0 = oldest).
    pub fn line(&self, i: usize) -> Option<LineRef<'_>> {
        let l = self.lines.get(i)?;
        let from = (l.start - self.base) as usize;
        let to = from + usize::from(l.len);
        let (a, b) = self.cells.as_slices();
        let cells = if to <= a.len() {
            (&a[from..to], &[][..])
        } else if from >= a.len() {
            (&b[from - a.len()..to - a.len()], &[][..])
        } else {
            (&a[from..], &b[..to - a.len()])
        };
        Some(LineRef {
            cells,
            size: l.size,
            used: l.used,
            wrapped: l.wrapped,
        })
    }

    fn last_mut_unwrap(&mut self) {
        if let Some(l) = self.lines.back_mut() {
            l.wrapped = false;
        }
    }

    pub fn cells_mut(&mut self) -> impl Iterator<Item = &mut Cell> {
        self.cells.iter_mut()
    }

    pub fn heap_bytes(&self) -> usize {
        self.cells.capacity() * std::mem::size_of::<Cell>()
            + self.lines.capacity() * std::mem::size_of::<HistLine>()
            + self.rendered.capacity() * std::mem::size_of::<Option<Rendered>>()
            + self.rendered_bytes
    }
}

/// A screen's grid: `sy` lines of `sx` columns, and history when enabled.
#[derive(Debug, Clone)]
pub struct Grid {
    pub sx: usize,
    pub sy: usize,
    pub lines: Vec<Line>,
    pub history: History,
    /// `GRID_HISTORY`: lines scrolled off the top are kept.
    pub history_on: bool,
    /// `history-limit`.
    pub hlimit: usize,
    /// `hscrolled`: history lines that scrolled there (not pushed by a
    /// clear), which a taller pane takes back.
    pub hscrolled: usize,
}

impl Grid {
    pub fn new(sx: usize, sy: usize, hlimit: usize) -> Grid {
        Grid {
            sx,
            sy,
            lines: (0..sy).map(|_| Line::default()).collect(),
            history: History::default(),
            history_on: true,
            hlimit,
            hscrolled: 0,
        }
    }

    pub fn line(&self, y: usize) -> &Line {
        &self.lines[y]
    }

    pub fn get_cell(&self, x: usize, y: usize) -> Cell {
        self.lines.get(y).map_or(Cell::DEFAULT, |l| l.get(x))
    }

    /// `grid_expand_line`.
    pub fn expand_line(&mut self, y: usize, want: usize, bg: u32) {
        let sx = self.sx;
        let Some(l) = self.lines.get_mut(y) else {
            return;
        };
        if want <= l.cells.len() {
            return;
        }
        let size = if want < sx / 4 {
            sx / 4
        } else if want < sx / 2 {
            sx / 2
        } else if sx > want {
            sx
        } else {
            want
        };
        l.cells.resize(size, Cell::cleared(bg));
    }

    /// `grid_set_cell`.
    pub fn set_cell(&mut self, x: usize, y: usize, c: Cell) {
        if y >= self.sy {
            return;
        }
        self.expand_line(y, x + 1, COLOUR_DEFAULT);
        let l = &mut self.lines[y];
        if x + 1 > usize::from(l.used) {
            l.used = (x + 1) as u16;
        }
        l.cells[x] = c;
    }

    /// Sets `n` cells of the same pen from ASCII bytes (`grid_set_cells`).
    pub fn set_ascii(&mut self, x: usize, y: usize, pen: &Cell, bytes: &[u8]) {
        if y >= self.sy || bytes.is_empty() {
            return;
        }
        self.expand_line(y, x + bytes.len(), COLOUR_DEFAULT);
        let l = &mut self.lines[y];
        if x + bytes.len() > usize::from(l.used) {
            l.used = (x + bytes.len()) as u16;
        }
        for (c, &b) in l.cells[x..x + bytes.len()].iter_mut().zip(bytes) {
            *c = Cell {
                text: u32::from(b),
                width: 1,
                flags: 0,
                ..*pen
            };
        }
    }

    /// `grid_clear_cell` for cells inside the line.
    fn clear_cell(&mut self, x: usize, y: usize, bg: u32) {
        if let Some(c) = self.lines[y].cells.get_mut(x) {
            *c = Cell::cleared(bg);
        }
    }

    /// `grid_clear`: `nx` cells from `px` on `ny` lines from `py`.
    pub fn clear(&mut self, px: usize, py: usize, nx: usize, ny: usize, bg: u32) {
        if nx == 0 || ny == 0 {
            return;
        }
        if px == 0 && nx == self.sx {
            self.clear_lines(py, ny, bg);
            return;
        }
        if py + ny > self.sy {
            return;
        }
        for y in py..py + ny {
            let size = self.lines[y].cells.len();
            let sx = self.sx.min(size);
            let mut ox = nx;
            if bg == COLOUR_DEFAULT {
                if px > sx {
                    continue;
                }
                if px + nx > sx {
                    ox = sx - px;
                }
            }
            self.expand_line(y, px + ox, COLOUR_DEFAULT);
            for x in px..px + ox {
                self.clear_cell(x, y, bg);
            }
        }
    }

    /// `grid_empty_line`.
    fn empty_line(&mut self, y: usize, bg: u32) {
        self.lines[y].empty();
        if bg != COLOUR_DEFAULT {
            self.expand_line(y, self.sx, bg);
        }
    }

    /// The line above `y` (the newest history line for `y == 0`) no longer
    /// wraps into it.
    fn unwrap_above(&mut self, y: usize) {
        if y > 0 {
            self.lines[y - 1].wrapped = false;
        } else {
            self.history.last_mut_unwrap();
        }
    }

    /// `grid_clear_lines`.
    pub fn clear_lines(&mut self, py: usize, ny: usize, bg: u32) {
        if ny == 0 || py + ny > self.sy {
            return;
        }
        for y in py..py + ny {
            self.empty_line(y, bg);
        }
        if py != 0 || !self.history.is_empty() {
            self.unwrap_above(py);
        }
    }

    /// `grid_move_lines`: `ny` lines from `py` to `dy`.
    pub fn move_lines(&mut self, dy: usize, py: usize, ny: usize, bg: u32) {
        if ny == 0 || py == dy || py + ny > self.sy || dy + ny > self.sy {
            return;
        }
        if dy != 0 || !self.history.is_empty() {
            self.unwrap_above(dy);
        }
        // memmove: the destination gets the source lines; what it held
        // ends up in source slots, which are emptied below.
        if dy < py {
            for i in 0..ny {
                self.lines.swap(dy + i, py + i);
            }
        } else {
            for i in (0..ny).rev() {
                self.lines.swap(dy + i, py + i);
            }
        }
        for y in py..py + ny {
            if y < dy || y >= dy + ny {
                self.empty_line(y, bg);
            }
        }
        if (py != 0 || !self.history.is_empty()) && (py < dy || py >= dy + ny) {
            self.unwrap_above(py);
        }
    }

    /// `grid_move_cells`: `nx` cells from `px` to `dx` on line `py`.
    pub fn move_cells(&mut self, dx: usize, px: usize, py: usize, nx: usize, bg: u32) {
        if nx == 0 || px == dx || py >= self.sy {
            return;
        }
        self.expand_line(py, px + nx, COLOUR_DEFAULT);
        self.expand_line(py, dx + nx, COLOUR_DEFAULT);
        let l = &mut self.lines[py];
        l.cells.copy_within(px..px + nx, dx);
        if dx + nx > usize::from(l.used) {
            l.used = (dx + nx) as u16;
        }
        for x in px..px + nx {
            if x >= dx && x < dx + nx {
                continue;
            }
            l.cells[x] = Cell::cleared(bg);
        }
    }

    /// `grid_collect_history`: makes room before a line is added.
    fn collect_history(&mut self) {
        let hsize = self.history.len();
        if hsize == 0 || hsize < self.hlimit {
            return;
        }
        let ny = (self.hlimit / 10).clamp(1, hsize);
        self.history.pop_front(ny);
        self.hscrolled = self.hscrolled.min(self.history.len());
    }

    /// The top line goes to the history, a blank one comes in at the
    /// bottom (`grid_scroll_history`).
    pub fn scroll_history(&mut self, bg: u32) {
        self.collect_history();
        self.history.push(&self.lines[0]);
        self.hscrolled += 1;
        self.lines.rotate_left(1);
        let last = self.sy - 1;
        self.empty_line(last, bg);
    }

    /// The top line of the region goes to the history, the region moves up
    /// (`grid_scroll_history_region`).
    pub fn scroll_history_region(&mut self, upper: usize, lower: usize, bg: u32) {
        self.collect_history();
        self.history.push(&self.lines[upper]);
        self.hscrolled += 1;
        self.lines[upper..=lower].rotate_left(1);
        self.empty_line(lower, bg);
    }

    /// `grid_view_scroll_region_up`.
    pub fn scroll_region_up(&mut self, rupper: usize, rlower: usize, bg: u32) {
        if self.history_on {
            if rupper == 0 && rlower == self.sy - 1 {
                self.scroll_history(bg);
            } else {
                self.scroll_history_region(rupper, rlower, bg);
            }
        } else {
            self.move_lines(rupper, rupper + 1, rlower - rupper, bg);
        }
    }

    /// `grid_view_scroll_region_down`.
    pub fn scroll_region_down(&mut self, rupper: usize, rlower: usize, bg: u32) {
        self.move_lines(rupper + 1, rupper, rlower - rupper, bg);
    }

    /// `grid_view_clear_history`: the screen's used lines go to the history.
    pub fn clear_into_history(&mut self, bg: u32) {
        let last = (0..self.sy)
            .rev()
            .find(|&y| self.lines[y].used != 0)
            .map_or(0, |y| y + 1);
        if last == 0 {
            self.clear(0, 0, self.sx, self.sy, bg);
            return;
        }
        for _ in 0..last {
            self.scroll_history(bg);
        }
        if last < self.sy {
            self.clear(0, 0, self.sx, self.sy - last, bg);
        }
        self.hscrolled = 0;
    }

    pub fn clear_history(&mut self) {
        self.history.clear();
        self.hscrolled = 0;
    }

    /// Every cell, screen and history, for [`Texts::collect`].
    pub fn cells_mut(&mut self) -> impl Iterator<Item = &mut Cell> {
        self.lines
            .iter_mut()
            .flat_map(|l| l.cells.iter_mut())
            .chain(self.history.cells_mut())
    }

    /// Heap bytes held by cells and line tables.
    pub fn heap_bytes(&self) -> usize {
        self.lines
            .iter()
            .map(|l| l.cells.capacity() * std::mem::size_of::<Cell>())
            .sum::<usize>()
            + self.lines.capacity() * std::mem::size_of::<Line>()
            + self.history.heap_bytes()
    }
}
