//! The grid: cells, lines and history, laid out as tmux's grid.c keeps them
//! (a line has `cellsize` allocated cells and `cellused` written ones; both
//! show in `capture-pane`), with the history in a ring buffer.
//!
//! Screen lines own a `Vec<Cell>` each, allocated once and reused as lines
//! scroll. History lines are copied into rings (no allocation per line once
//! they have grown) in tmux's compact form: a 5-byte entry per cell, and the
//! 20-byte cell kept whole only when it does not fit (see [`Entry`]).
//! Characters of more than one code point (combining marks, joined emoji)
//! live in a [`Texts`] table and the cell holds an index.

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

/// A line: `cellsize` cells as compact entries, and the cells that do not
/// fit an entry kept whole beside them (tmux's `celldata` and
/// `extddata`).
///
/// The entry vector is never shortened: entries past `size` are the fill
/// ([`FILL`]), so a line scrolled in empty and written again costs no
/// allocation and no refill, and the fill the history trims is only looked
/// for below `hi`.
#[derive(Debug, Clone, Default)]
pub struct Line {
    entries: Vec<Entry>,
    /// `cellsize`.
    size: u16,
    /// Entries from here on are the fill; `hi <= size`.
    hi: u16,
    /// Extended cells. A cell set again gets a new slot (an entry copied
    /// by [`Line::copy_within`] may share the old one); the slots no entry
    /// uses are dropped when they outnumber the entries.
    ext: Vec<Cell>,
    /// `cellused`.
    pub used: u16,
    /// `GRID_LINE_WRAPPED`: continues on the next line.
    pub wrapped: bool,
}

impl Line {
    /// A line of these cells (`cellsize` = their number).
    pub fn from_cells(cells: impl IntoIterator<Item = Cell>, used: u16, wrapped: bool) -> Line {
        let mut l = Line {
            used,
            wrapped,
            ..Line::default()
        };
        for c in cells {
            let e = l.entry(&c);
            l.entries.push(e);
        }
        l.size = l.entries.len() as u16;
        l.hi = l.size;
        l
    }

    /// Entries `from..to` back to the fill.
    fn refill(&mut self, from: usize, to: usize) {
        if from < to {
            self.entries[from..to].fill(FILL_ENTRY);
        }
    }

    fn empty(&mut self) {
        self.refill(0, usize::from(self.hi));
        self.size = 0;
        self.hi = 0;
        self.ext.clear();
        self.used = 0;
        self.wrapped = false;
    }

    /// The `cellsize` entries.
    fn cells(&self) -> &[Entry] {
        &self.entries[..usize::from(self.size)]
    }

    /// `cellsize`.
    pub fn len(&self) -> usize {
        usize::from(self.size)
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    #[inline]
    pub fn get(&self, x: usize) -> Cell {
        self.cells()
            .get(x)
            .map_or(Cell::DEFAULT, |e| e.decode(&self.ext))
    }

    /// The entry for `c`, with a new extended slot if it needs one.
    #[inline]
    fn entry(&mut self, c: &Cell) -> Entry {
        match Entry::compact(c) {
            Some(e) => e,
            None => {
                if self.ext.len() >= (2 * self.entries.len()).max(8) {
                    self.collect_ext();
                }
                self.ext.push(*c);
                Entry::extended((self.ext.len() - 1) as u32)
            }
        }
    }

    /// Drops the extended slots no entry uses.
    fn collect_ext(&mut self) {
        let old = std::mem::take(&mut self.ext);
        for e in &mut self.entries {
            if let Some(i) = e.ext_index() {
                self.ext.push(old.get(i).copied().unwrap_or(FILL));
                *e = Entry::extended((self.ext.len() - 1) as u32);
            }
        }
    }

    /// Whether cell `x` is the right half (or more) of a wide character.
    #[inline]
    pub fn is_padding(&self, x: usize) -> bool {
        match self.cells().get(x).and_then(Entry::ext_index) {
            Some(i) => self.ext.get(i).is_some_and(Cell::is_padding),
            None => false,
        }
    }

    /// Sets cell `x` (inside the line).
    #[inline]
    pub fn set(&mut self, x: usize, c: &Cell) {
        if x < self.len() {
            let e = self.entry(c);
            self.entries[x] = e;
            self.hi = self.hi.max((x + 1) as u16);
        }
    }

    /// Makes the line `n` cells long, new cells `fill`.
    #[inline]
    pub fn resize(&mut self, n: usize, fill: Cell) {
        let size = self.len();
        if n <= size {
            self.truncate(n);
            return;
        }
        if self.entries.len() < n {
            self.entries.resize(n, FILL_ENTRY);
        }
        self.size = n as u16;
        if fill == FILL {
            return;
        }
        self.resize_with(size, n, &fill);
    }

    /// The new cells `size..n` of a line grown with a fill that is not
    /// the default.
    #[cold]
    fn resize_with(&mut self, size: usize, n: usize, fill: &Cell) {
        match Entry::compact(fill) {
            // Already there.
            Some(FILL_ENTRY) => {}
            Some(e) => {
                self.entries[size..n].fill(e);
                self.hi = n as u16;
            }
            None => {
                for x in size..n {
                    let e = self.entry(fill);
                    self.entries[x] = e;
                }
                self.hi = n as u16;
            }
        }
    }

    pub fn truncate(&mut self, n: usize) {
        if n < self.len() {
            self.refill(n, usize::from(self.hi));
            self.size = n as u16;
            self.hi = self.hi.min(self.size);
        }
    }

    /// Copies cells `src` to `dest` (`memmove`), inside the line.
    pub fn copy_within(&mut self, src: std::ops::Range<usize>, dest: usize) {
        let end = dest + src.len();
        if src.end.max(end) <= self.len() {
            self.entries.copy_within(src, dest);
            self.hi = self.hi.max(end as u16);
        }
    }

    /// Writes printable ASCII `bytes` from `x` (inside the line) with the
    /// pen `pen` (its text, width and flags ignored).
    #[inline]
    fn set_ascii(&mut self, x: usize, pen: &Cell, bytes: &[u8]) {
        let end = x + bytes.len();
        if end > self.len() {
            return;
        }
        let cell = Cell {
            text: u32::from(b' '),
            width: 1,
            flags: 0,
            ..*pen
        };
        match Entry::compact(&cell) {
            Some(e) => {
                for (slot, &b) in self.entries[x..end].iter_mut().zip(bytes) {
                    *slot = Entry { data: b, ..e };
                }
                self.hi = self.hi.max(end as u16);
            }
            None => {
                for (i, &b) in bytes.iter().enumerate() {
                    let c = Cell {
                        text: u32::from(b),
                        ..cell
                    };
                    self.set(x + i, &c);
                }
            }
        }
    }

    /// The cells kept whole (every cell whose text is a [`Texts`] entry).
    pub fn cells_mut(&mut self) -> impl Iterator<Item = &mut Cell> {
        self.ext.iter_mut()
    }

    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.ext.capacity() * std::mem::size_of::<Cell>()
    }
}

impl<'a> From<&'a Line> for LineRef<'a> {
    fn from(l: &'a Line) -> Self {
        LineRef {
            entries: l.cells(),
            ext: &l.ext,
            size: l.size,
            used: l.used,
            wrapped: l.wrapped,
        }
    }
}

/// A cell as tmux's `grid_cell_entry`: one byte of character, attributes
/// and colours in one byte each, and flags. A cell that does not fit (a
/// wider or non-Latin-1 character, attributes past the first eight, RGB or
/// underline colours, padding, tab cells) is kept whole in the line's
/// extended cells and the entry holds its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// The character, or (extended) the index's bytes.
    data: u8,
    attr: u8,
    fg: u8,
    bg: u8,
    /// `E_*` bits and, when not extended, the cell's `CLEARED` flag.
    flags: u8,
}

/// [`FILL`] as an entry.
const FILL_ENTRY: Entry = match Entry::compact(&FILL) {
    Some(e) => e,
    None => Entry::extended(u32::MAX),
};

/// The entry indexes the line's extended cells.
const E_EXTENDED: u8 = 0x80;
/// `fg` is a 256-colour palette index.
const E_FG256: u8 = 0x40;
/// `bg` is a 256-colour palette index.
const E_BG256: u8 = 0x20;

/// A colour in one byte and whether it is a palette index.
const fn colour_byte(c: u32) -> Option<(u8, bool)> {
    if c < 0x100 {
        Some((c as u8, false))
    } else if c & !0xff == COLOUR_256 {
        Some((c as u8, true))
    } else {
        None
    }
}

impl Entry {
    /// The compact form of `c`, if it has one.
    #[inline]
    const fn compact(c: &Cell) -> Option<Entry> {
        if c.width != 1
            || c.flags & !flag::CLEARED != 0
            || c.text >= 0x100
            || c.attr >= 0x100
            || c.us != COLOUR_DEFAULT
        {
            return None;
        }
        let (Some((fg, fg256)), Some((bg, bg256))) = (colour_byte(c.fg), colour_byte(c.bg)) else {
            return None;
        };
        let mut flags = c.flags;
        if fg256 {
            flags |= E_FG256;
        }
        if bg256 {
            flags |= E_BG256;
        }
        Some(Entry {
            data: c.text as u8,
            attr: c.attr as u8,
            fg,
            bg,
            flags,
        })
    }

    const fn extended(i: u32) -> Entry {
        let [data, attr, fg, bg] = i.to_le_bytes();
        Entry {
            data,
            attr,
            fg,
            bg,
            flags: E_EXTENDED,
        }
    }

    #[inline]
    fn ext_index(&self) -> Option<usize> {
        (self.flags & E_EXTENDED != 0)
            .then(|| u32::from_le_bytes([self.data, self.attr, self.fg, self.bg]) as usize)
    }

    /// The cell, from `ext` when extended.
    #[inline]
    fn decode(&self, ext: &[Cell]) -> Cell {
        match self.ext_index() {
            None => self.cell(),
            Some(i) => ext.get(i).copied().unwrap_or(FILL),
        }
    }

    /// The cell of a compact entry.
    #[inline]
    fn cell(&self) -> Cell {
        let colour = |v: u8, palette: bool| {
            if palette {
                COLOUR_256 | u32::from(v)
            } else {
                u32::from(v)
            }
        };
        Cell {
            text: u32::from(self.data),
            fg: colour(self.fg, self.flags & E_FG256 != 0),
            bg: colour(self.bg, self.flags & E_BG256 != 0),
            us: COLOUR_DEFAULT,
            attr: u16::from(self.attr),
            flags: self.flags & flag::CLEARED,
            width: 1,
        }
    }
}

/// A vector used as a queue: live items are `buf[head..]`, always one
/// slice; the dead front is dropped when the buffer would otherwise grow.
#[derive(Debug, Clone)]
struct Ring<T> {
    buf: Vec<T>,
    head: usize,
    /// Absolute index of `buf[0]`.
    base: u64,
}

impl<T> Default for Ring<T> {
    fn default() -> Self {
        Ring {
            buf: Vec::new(),
            head: 0,
            base: 0,
        }
    }
}

impl<T: Copy> Ring<T> {
    /// Absolute index of the next item pushed.
    fn end(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    fn live(&self) -> &[T] {
        &self.buf[self.head..]
    }

    fn live_mut(&mut self) -> &mut [T] {
        &mut self.buf[self.head..]
    }

    /// Makes room for `n` more items, dropping the dead front instead of
    /// growing when it is at least half the buffer.
    #[inline]
    fn reserve(&mut self, n: usize) {
        if self.buf.len() + n > self.buf.capacity() && self.head * 2 >= self.buf.len() {
            self.buf.drain(..self.head);
            self.base += self.head as u64;
            self.head = 0;
        }
        self.buf.reserve(n);
    }

    /// Items from absolute index `from` (inclusive) to `to` (exclusive).
    fn range(&self, from: u64, to: u64) -> &[T] {
        let a = (from - self.base) as usize;
        let b = (to - self.base) as usize;
        self.buf.get(a.max(self.head)..b).unwrap_or(&[])
    }

    /// Drops items before absolute index `to`.
    fn drop_before(&mut self, to: u64) {
        let to = ((to.saturating_sub(self.base)) as usize).min(self.buf.len());
        self.head = self.head.max(to);
        if self.head == self.buf.len() {
            self.base += self.buf.len() as u64;
            self.buf.clear();
            self.head = 0;
        }
    }

    fn clear(&mut self) {
        self.base += self.buf.len() as u64;
        self.buf.clear();
        self.head = 0;
    }

    fn heap_bytes(&self) -> usize {
        self.buf.capacity() * std::mem::size_of::<T>()
    }
}

/// A history line's place in the rings.
#[derive(Debug, Clone, Copy)]
struct HistLine {
    /// Absolute index of its first entry.
    start: u64,
    /// Absolute index of its first extended cell.
    ext: u64,
    /// Entries stored: the line's cells without its trailing run of
    /// default cleared cells (`grid_expand_line`'s fill).
    len: u16,
    /// Extended cells stored.
    ext_len: u16,
    /// The line's `cellsize`.
    size: u16,
    used: u16,
    wrapped: bool,
}

/// A history line's kept snapshot bytes, whether they end waiting to wrap,
/// whether they were rendered as continuing the line above.
type Rendered = (Box<[u8]>, bool, bool);

/// Lines scrolled off the top, oldest first: their cells as compact
/// entries in one ring, the cells that do not fit in another.
#[derive(Debug, Default, Clone)]
pub struct History {
    /// Each line's snapshot bytes once rendered (`crate::snapshot`): the
    /// bytes, whether they end waiting to wrap, whether they were rendered
    /// as continuing the line above.
    rendered: VecDeque<Option<Rendered>>,
    rendered_bytes: usize,
    entries: Ring<Entry>,
    ext: Ring<Cell>,
    lines: VecDeque<HistLine>,
}

/// A borrowed line: screen or history.
#[derive(Debug, Clone, Copy)]
pub struct LineRef<'a> {
    entries: &'a [Entry],
    ext: &'a [Cell],
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

    #[inline]
    pub fn get(&self, x: usize) -> Cell {
        match self.entries.get(x) {
            Some(e) => e.decode(self.ext),
            None if x < self.len() => FILL,
            None => Cell::DEFAULT,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Cell> + '_ {
        (0..self.len()).map(|x| self.get(x))
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

    /// Cells stored (compact and extended).
    pub fn cell_count(&self) -> usize {
        self.entries.live().len()
    }

    /// Adds a line at the newest end.
    pub fn push_line(&mut self, line: &Line) {
        self.push(line);
    }

    fn push(&mut self, line: &Line) {
        let keep = line.entries[..usize::from(line.hi)]
            .iter()
            .rposition(|e| *e != FILL_ENTRY)
            .map_or(0, |i| i + 1);
        let kept = &line.entries[..keep];
        let start = self.entries.end();
        let ext_start = self.ext.end();
        self.entries.reserve(keep);
        let mut ext_len = 0u32;
        if line.ext.is_empty() {
            self.entries.buf.extend_from_slice(kept);
        } else {
            for e in kept {
                match e.ext_index() {
                    None => self.entries.buf.push(*e),
                    Some(i) => {
                        if ext_len == 0 {
                            self.ext.reserve(keep);
                        }
                        self.ext.buf.push(line.ext.get(i).copied().unwrap_or(FILL));
                        self.entries.buf.push(Entry::extended(ext_len));
                        ext_len += 1;
                    }
                }
            }
        }
        self.rendered.push_back(None);
        self.lines.push_back(HistLine {
            start,
            ext: ext_start,
            len: keep as u16,
            ext_len: ext_len as u16,
            size: line.size,
            used: line.used,
            wrapped: line.wrapped,
        });
    }

    fn pop_front(&mut self, n: usize) {
        // `rendered` and `lines` always have the same length.
        let n = n.min(self.lines.len()).min(self.rendered.len());
        if n == 0 {
            return;
        }
        let freed: usize = self
            .rendered
            .drain(..n)
            .map(|r| r.map_or(0, |(b, _, _)| b.len()))
            .sum();
        self.rendered_bytes -= freed;
        let last = self.lines[n - 1];
        self.lines.drain(..n);
        self.entries.drop_before(last.start + u64::from(last.len));
        self.ext.drop_before(last.ext + u64::from(last.ext_len));
    }

    pub fn clear(&mut self) {
        self.rendered.clear();
        self.rendered_bytes = 0;
        self.entries.clear();
        self.ext.clear();
        self.lines.clear();
    }

    /// Line `i` (0 = oldest).
    pub fn line(&self, i: usize) -> Option<LineRef<'_>> {
        let l = self.lines.get(i)?;
        Some(LineRef {
            entries: self.entries.range(l.start, l.start + u64::from(l.len)),
            ext: self.ext.range(l.ext, l.ext + u64::from(l.ext_len)),
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

    /// The cells kept whole (every cell whose text is a [`Texts`] entry).
    pub fn cells_mut(&mut self) -> impl Iterator<Item = &mut Cell> {
        self.ext.live_mut().iter_mut()
    }

    pub fn heap_bytes(&self) -> usize {
        self.entries.heap_bytes()
            + self.ext.heap_bytes()
            + self.lines.capacity() * std::mem::size_of::<HistLine>()
            + self.rendered.capacity() * std::mem::size_of::<Option<Rendered>>()
            + self.rendered_bytes
    }
}

/// The `cellsize` `grid_expand_line` gives a line of a grid `sx` wide that
/// needs `want` cells.
#[inline]
pub(super) fn expand_size(sx: usize, want: usize) -> usize {
    if want < sx / 4 {
        sx / 4
    } else if want < sx / 2 {
        sx / 2
    } else if sx > want {
        sx
    } else {
        want
    }
}

/// A screen's grid: `sy` lines of `sx` columns, and history when enabled.
#[derive(Debug, Clone)]
pub struct Grid {
    pub sx: usize,
    pub sy: usize,
    /// The screen's lines, top first (a deque: a full-screen scroll moves
    /// the top line to the bottom without moving the others).
    pub lines: VecDeque<Line>,
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

    /// Whether cell `x` of line `y` is padding (`get_cell(x, y).is_padding()`).
    #[inline]
    pub fn is_padding(&self, x: usize, y: usize) -> bool {
        self.lines.get(y).is_some_and(|l| l.is_padding(x))
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
        if want <= l.len() {
            return;
        }
        l.resize(expand_size(sx, want), Cell::cleared(bg));
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
        l.set(x, &c);
    }

    /// Sets `n` cells of the same pen from ASCII bytes (`grid_set_cells`);
    /// true when the cell after them is padding.
    #[inline]
    pub fn set_ascii(&mut self, x: usize, y: usize, pen: &Cell, bytes: &[u8]) -> bool {
        let sx = self.sx;
        let Some(l) = self.lines.get_mut(y) else {
            return false;
        };
        let end = x + bytes.len();
        if end > l.len() {
            l.resize(expand_size(sx, end), FILL);
        }
        if end > usize::from(l.used) {
            l.used = end as u16;
        }
        l.set_ascii(x, pen, bytes);
        l.is_padding(end)
    }

    /// `grid_clear_cell` for cells inside the line.
    fn clear_cell(&mut self, x: usize, y: usize, bg: u32) {
        self.lines[y].set(x, &Cell::cleared(bg));
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
            let size = self.lines[y].len();
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
        // ends up in source slots, which are emptied below. Overlapping
        // ranges (a scroll) are one rotation of the lines they span.
        let lines = self.lines.make_contiguous();
        if dy < py {
            if py - dy <= ny {
                lines[dy..py + ny].rotate_left(py - dy);
            } else {
                for i in 0..ny {
                    lines.swap(dy + i, py + i);
                }
            }
        } else if dy - py <= ny {
            lines[py..dy + ny].rotate_right(dy - py);
        } else {
            for i in (0..ny).rev() {
                lines.swap(dy + i, py + i);
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
        l.copy_within(px..px + nx, dx);
        if dx + nx > usize::from(l.used) {
            l.used = (dx + nx) as u16;
        }
        for x in px..px + nx {
            if x >= dx && x < dx + nx {
                continue;
            }
            l.set(x, &Cell::cleared(bg));
        }
    }

    /// `grid_collect_history`: makes room before a line is added.
    #[inline]
    fn collect_history(&mut self) {
        let hsize = self.history.len();
        if hsize == 0 || hsize < self.hlimit {
            return;
        }
        self.drop_history(hsize);
    }

    #[cold]
    fn drop_history(&mut self, hsize: usize) {
        let ny = (self.hlimit / 10).clamp(1, hsize);
        self.history.pop_front(ny);
        self.hscrolled = self.hscrolled.min(self.history.len());
    }

    /// The top line goes to the history, a blank one comes in at the
    /// bottom (`grid_scroll_history`).
    pub fn scroll_history(&mut self, bg: u32) {
        self.collect_history();
        if let Some(top) = self.lines.front() {
            self.history.push(top);
        }
        // O(1) on a full deque (the screen's is): only the head moves.
        self.lines.rotate_left(1);
        self.hscrolled += 1;
        let last = self.sy - 1;
        self.empty_line(last, bg);
    }

    /// The top line of the region goes to the history, the region moves up
    /// (`grid_scroll_history_region`).
    pub fn scroll_history_region(&mut self, upper: usize, lower: usize, bg: u32) {
        self.collect_history();
        self.history.push(&self.lines[upper]);
        self.hscrolled += 1;
        if let Some(top) = self.lines.remove(upper) {
            self.lines.insert(lower, top);
        }
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
            .flat_map(|l| l.cells_mut())
            .chain(self.history.cells_mut())
    }

    /// Heap bytes held by cells and line tables.
    pub fn heap_bytes(&self) -> usize {
        self.lines.iter().map(Line::heap_bytes).sum::<usize>()
            + self.lines.capacity() * std::mem::size_of::<Line>()
            + self.history.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cells of every kind: compact (Latin-1, palette colours, the first
    /// eight attributes, cleared) and kept whole (wide, padding, tab, RGB,
    /// underline colour, later attributes, combined text).
    fn kinds() -> Vec<Cell> {
        let mut texts = Texts::default();
        let joined = texts.intern("e\u{301}".as_bytes());
        let c = |f: fn(&mut Cell)| {
            let mut c = Cell::DEFAULT;
            f(&mut c);
            c
        };
        vec![
            Cell::DEFAULT,
            FILL,
            Cell::cleared(3),
            Cell::cleared(COLOUR_256 | 200),
            c(|c| c.text = u32::from(b'x')),
            c(|c| c.text = 0xe9),
            c(|c| c.text = 0x100),
            c(|c| {
                c.fg = 97;
                c.bg = COLOUR_256 | 17;
                c.attr = attr::BRIGHT | attr::CHARSET;
            }),
            c(|c| c.fg = COLOUR_RGB | 0x12_34_56),
            c(|c| c.bg = COLOUR_RGB),
            c(|c| c.us = 1),
            c(|c| c.attr = attr::STRIKETHROUGH),
            c(|c| {
                c.text = 0x4e00;
                c.width = 2;
            }),
            Cell::PADDING,
            c(|c| {
                c.flags = flag::TAB;
                c.width = 4;
            }),
            Cell {
                text: joined,
                ..Cell::DEFAULT
            },
        ]
    }

    #[test]
    fn history_keeps_every_cell_as_it_was() {
        let cells = kinds();
        let mut h = History::default();
        for i in 0..cells.len() {
            // Rotated so each kind sits at each place, with fill after.
            let line = Line::from_cells(
                cells[i..]
                    .iter()
                    .chain(&cells[..i])
                    .chain(&[FILL; 5])
                    .copied(),
                9,
                i % 2 == 0,
            );
            h.push_line(&line);
        }
        for i in 0..cells.len() {
            let l = h.line(i).expect("line");
            assert_eq!(l.len(), cells.len() + 5);
            assert_eq!((l.used, l.wrapped), (9u16, i % 2 == 0));
            let want: Vec<Cell> = cells[i..].iter().chain(&cells[..i]).copied().collect();
            let got: Vec<Cell> = l.iter().collect();
            assert_eq!(&got[..cells.len()], &want[..], "line {i}");
            assert!(got[cells.len()..].iter().all(|c| *c == FILL));
            assert_eq!(l.get(cells.len() + 5), Cell::DEFAULT);
        }
    }

    #[test]
    fn history_ring_drops_its_front_without_growing() {
        let mut h = History::default();
        let mut line = Line::from_cells([Cell::DEFAULT; 40], 0, false);
        line.set(
            3,
            &Cell {
                fg: COLOUR_RGB | 7,
                ..Cell::DEFAULT
            },
        );
        let mut churn = |h: &mut History| {
            for n in 0..5_000u32 {
                line.set(
                    0,
                    &Cell {
                        text: u32::from(b'a') + n % 26,
                        ..Cell::DEFAULT
                    },
                );
                h.push_line(&line);
                if h.len() > 100 {
                    h.pop_front(10);
                }
            }
        };
        churn(&mut h);
        let cap = h.heap_bytes();
        churn(&mut h);
        assert_eq!(h.heap_bytes(), cap);
        let last = h.line(h.len() - 1).expect("line");
        assert_eq!(last.get(0).text, u32::from(b'a') + 4_999 % 26);
        assert_eq!(last.get(3).fg, COLOUR_RGB | 7);
        let first = h.line(0).expect("line");
        assert_eq!(first.get(3).fg, COLOUR_RGB | 7);
    }
}
