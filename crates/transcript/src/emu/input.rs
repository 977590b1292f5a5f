//! [`Emulator`]: tmux's input parser (input.c) driving a [`Screen`].
//!
//! The parser is a transition table built at compile time from the same
//! ranges as input.c's state tables (ground, escape, CSI, DCS, OSC, APC,
//! `ESC k` rename, consume-ST), with one action and an optional next state
//! per byte. Runs of printable ASCII in the ground state skip the table and
//! are written to the grid in one step. The pen, the G0/G1 sets, DECSC's
//! saved state, the partial UTF-8 character and the bytes of an unfinished
//! sequence live here, as they do in tmux's `struct input_ctx`.

use super::grid::decode_cp;
use super::grid::{COLOUR_256, COLOUR_DEFAULT, COLOUR_RGB, Cell, attr};
use super::profile::Profile;
use super::screen::{CursorStyle, Glyph, Screen, mode};
use super::width::cp_width;

mod tee;

const GROUND: u8 = 0;
const ESC_ENTER: u8 = 1;
const ESC_INTERM: u8 = 2;
const CSI_ENTER: u8 = 3;
const CSI_PARAM: u8 = 4;
const CSI_INTERM: u8 = 5;
const CSI_IGNORE: u8 = 6;
const DCS_ENTER: u8 = 7;
const DCS_PARAM: u8 = 8;
const DCS_INTERM: u8 = 9;
const DCS_HANDLER: u8 = 10;
const DCS_ESCAPE: u8 = 11;
const DCS_IGNORE: u8 = 12;
const OSC: u8 = 13;
const APC: u8 = 14;
const RENAME: u8 = 15;
const CONSUME_ST: u8 = 16;
const STATES: usize = 17;

// Actions (input.c handlers).
const A_NONE: u8 = 0;
const A_C0: u8 = 1;
const A_PRINT: u8 = 2;
const A_TOP: u8 = 3;
const A_INTERM: u8 = 4;
const A_PARAM: u8 = 5;
const A_ESC: u8 = 6;
const A_CSI: u8 = 7;
const A_INPUT: u8 = 8;
const A_DCS: u8 = 9;
const A_BEL: u8 = 10;

/// Next state `s` (encoded +1; 0 = stay).
const fn to(s: u8) -> u16 {
    (s as u16 + 1) << 8
}

const STAY: u16 = 0;

const fn set(t: &mut [u16; 256], from: usize, to_: usize, action: u8, next: u16) {
    let mut b = from;
    while b <= to_ {
        t[b] = action as u16 | next;
        b += 1;
    }
}

/// INPUT_STATE_ANYWHERE.
const fn anywhere(t: &mut [u16; 256]) {
    set(t, 0x18, 0x18, A_C0, to(GROUND));
    set(t, 0x1a, 0x1a, A_C0, to(GROUND));
    set(t, 0x1b, 0x1b, A_NONE, to(ESC_ENTER));
}

/// The C0 ranges (`0x00-0x17`, `0x19`, `0x1c-0x1f`) with one action.
const fn c0(t: &mut [u16; 256], action: u8) {
    set(t, 0x00, 0x17, action, STAY);
    set(t, 0x19, 0x19, action, STAY);
    set(t, 0x1c, 0x1f, action, STAY);
}

const fn build() -> [[u16; 256]; STATES] {
    let mut tables = [[0u16; 256]; STATES];

    let t = &mut tables[GROUND as usize];
    c0(t, A_C0);
    set(t, 0x20, 0x7e, A_PRINT, STAY);
    set(t, 0x7f, 0x7f, A_NONE, STAY);
    set(t, 0x80, 0xff, A_TOP, STAY);
    anywhere(t);

    let t = &mut tables[ESC_ENTER as usize];
    c0(t, A_C0);
    set(t, 0x20, 0x2f, A_INTERM, to(ESC_INTERM));
    set(t, 0x30, 0x4f, A_ESC, to(GROUND));
    set(t, 0x50, 0x50, A_NONE, to(DCS_ENTER));
    set(t, 0x51, 0x57, A_ESC, to(GROUND));
    set(t, 0x58, 0x58, A_NONE, to(CONSUME_ST));
    set(t, 0x59, 0x5a, A_ESC, to(GROUND));
    set(t, 0x5b, 0x5b, A_NONE, to(CSI_ENTER));
    set(t, 0x5c, 0x5c, A_ESC, to(GROUND));
    set(t, 0x5d, 0x5d, A_NONE, to(OSC));
    set(t, 0x5e, 0x5e, A_NONE, to(CONSUME_ST));
    set(t, 0x5f, 0x5f, A_NONE, to(APC));
    set(t, 0x60, 0x6a, A_ESC, to(GROUND));
    set(t, 0x6b, 0x6b, A_NONE, to(RENAME));
    set(t, 0x6c, 0x7e, A_ESC, to(GROUND));
    set(t, 0x7f, 0xff, A_NONE, STAY);
    anywhere(t);

    let t = &mut tables[ESC_INTERM as usize];
    c0(t, A_C0);
    set(t, 0x20, 0x2f, A_INTERM, STAY);
    set(t, 0x30, 0x7e, A_ESC, to(GROUND));
    set(t, 0x7f, 0xff, A_NONE, STAY);
    anywhere(t);

    let t = &mut tables[CSI_ENTER as usize];
    c0(t, A_C0);
    set(t, 0x20, 0x2f, A_INTERM, to(CSI_INTERM));
    set(t, 0x30, 0x3b, A_PARAM, to(CSI_PARAM));
    set(t, 0x3c, 0x3f, A_INTERM, to(CSI_PARAM));
    set(t, 0x40, 0x7e, A_CSI, to(GROUND));
    set(t, 0x7f, 0xff, A_NONE, STAY);
    anywhere(t);

    let t = &mut tables[CSI_PARAM as usize];
    c0(t, A_C0);
    set(t, 0x20, 0x2f, A_INTERM, to(CSI_INTERM));
    set(t, 0x30, 0x3b, A_PARAM, STAY);
    set(t, 0x3c, 0x3f, A_NONE, to(CSI_IGNORE));
    set(t, 0x40, 0x7e, A_CSI, to(GROUND));
    set(t, 0x7f, 0xff, A_NONE, STAY);
    anywhere(t);

    let t = &mut tables[CSI_INTERM as usize];
    c0(t, A_C0);
    set(t, 0x20, 0x2f, A_INTERM, STAY);
    set(t, 0x30, 0x3f, A_NONE, to(CSI_IGNORE));
    set(t, 0x40, 0x7e, A_CSI, to(GROUND));
    set(t, 0x7f, 0xff, A_NONE, STAY);
    anywhere(t);

    let t = &mut tables[CSI_IGNORE as usize];
    c0(t, A_C0);
    set(t, 0x20, 0x3f, A_NONE, STAY);
    set(t, 0x40, 0x7e, A_NONE, to(GROUND));
    set(t, 0x7f, 0xff, A_NONE, STAY);
    anywhere(t);

    let t = &mut tables[DCS_ENTER as usize];
    c0(t, A_NONE);
    set(t, 0x20, 0x2f, A_INTERM, to(DCS_INTERM));
    set(t, 0x30, 0x39, A_PARAM, to(DCS_PARAM));
    set(t, 0x3a, 0x3a, A_NONE, to(DCS_IGNORE));
    set(t, 0x3b, 0x3b, A_PARAM, to(DCS_PARAM));
    set(t, 0x3c, 0x3f, A_INTERM, to(DCS_PARAM));
    set(t, 0x40, 0x7e, A_INPUT, to(DCS_HANDLER));
    set(t, 0x7f, 0xff, A_NONE, STAY);
    anywhere(t);

    let t = &mut tables[DCS_PARAM as usize];
    c0(t, A_NONE);
    set(t, 0x20, 0x2f, A_INTERM, to(DCS_INTERM));
    set(t, 0x30, 0x39, A_PARAM, STAY);
    set(t, 0x3a, 0x3a, A_NONE, to(DCS_IGNORE));
    set(t, 0x3b, 0x3b, A_PARAM, STAY);
    set(t, 0x3c, 0x3f, A_NONE, to(DCS_IGNORE));
    set(t, 0x40, 0x7e, A_INPUT, to(DCS_HANDLER));
    set(t, 0x7f, 0xff, A_NONE, STAY);
    anywhere(t);

    let t = &mut tables[DCS_INTERM as usize];
    c0(t, A_NONE);
    set(t, 0x20, 0x2f, A_INTERM, STAY);
    set(t, 0x30, 0x3f, A_NONE, to(DCS_IGNORE));
    set(t, 0x40, 0x7e, A_INPUT, to(DCS_HANDLER));
    set(t, 0x7f, 0xff, A_NONE, STAY);
    anywhere(t);

    // No INPUT_STATE_ANYWHERE: only ESC \ ends a DCS.
    let t = &mut tables[DCS_HANDLER as usize];
    set(t, 0x00, 0x1a, A_INPUT, STAY);
    set(t, 0x1b, 0x1b, A_NONE, to(DCS_ESCAPE));
    set(t, 0x1c, 0xff, A_INPUT, STAY);

    let t = &mut tables[DCS_ESCAPE as usize];
    set(t, 0x00, 0x5b, A_INPUT, to(DCS_HANDLER));
    set(t, 0x5c, 0x5c, A_DCS, to(GROUND));
    set(t, 0x5d, 0xff, A_INPUT, to(DCS_HANDLER));

    let t = &mut tables[DCS_IGNORE as usize];
    c0(t, A_NONE);
    set(t, 0x20, 0xff, A_NONE, STAY);
    anywhere(t);

    let t = &mut tables[OSC as usize];
    set(t, 0x00, 0x06, A_NONE, STAY);
    set(t, 0x07, 0x07, A_BEL, to(GROUND));
    set(t, 0x08, 0x17, A_NONE, STAY);
    set(t, 0x19, 0x19, A_NONE, STAY);
    set(t, 0x1c, 0x1f, A_NONE, STAY);
    set(t, 0x20, 0xff, A_INPUT, STAY);
    anywhere(t);

    let mut s = APC;
    while s <= RENAME {
        let t = &mut tables[s as usize];
        c0(t, A_NONE);
        set(t, 0x20, 0xff, A_INPUT, STAY);
        anywhere(t);
        s += 1;
    }

    let t = &mut tables[CONSUME_ST as usize];
    c0(t, A_NONE);
    set(t, 0x20, 0xff, A_NONE, STAY);
    anywhere(t);

    tables
}

static TABLE: [[u16; 256]; STATES] = build();

/// Bytes of an OSC/APC string kept (tmux keeps up to 1 MiB; a longer
/// title is cut here).
const STRING_KEEP: usize = 4096;
/// tmux's input buffer limit: a longer string is discarded.
const STRING_LIMIT: usize = 1 << 20;
/// Unfinished-sequence bytes kept for a snapshot.
pub const PENDING_MAX: usize = 4096;

/// DECSC's saved state.
#[derive(Debug, Clone, Copy)]
struct SavedState {
    pen: Cell,
    set: bool,
    g0: bool,
    g1: bool,
    cx: usize,
    cy: usize,
    origin: bool,
}

impl Default for SavedState {
    fn default() -> Self {
        SavedState {
            pen: Cell::DEFAULT,
            set: false,
            g0: false,
            g1: false,
            cx: 0,
            cy: 0,
            origin: false,
        }
    }
}

/// A CSI parameter (`struct input_param`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Param {
    Missing,
    Number(i32),
    /// Contains `:`; the bytes are in `param` at this range.
    Str(usize, usize),
}

/// One pane's terminal: parser state and screen.
#[derive(Debug, Clone)]
pub struct Emulator {
    pub screen: Screen,
    state: u8,
    interm: Vec<u8>,
    param: Vec<u8>,
    params: Vec<Param>,
    input: Vec<u8>,
    input_len: usize,
    discard: bool,
    /// The pen (`ictx->cell.cell`) without the line-drawing bit.
    pub pen: Cell,
    /// SO: G1 is in use.
    pub set: bool,
    /// G0 / G1 are DEC line drawing.
    pub g0: bool,
    pub g1: bool,
    saved: SavedState,
    utf8: [u8; 4],
    utf8_have: usize,
    utf8_size: usize,
    utf8_bad: bool,
    utf8_started: bool,
    /// The last printed character, for REP (`INPUT_LAST`).
    last: Option<Glyph>,
    since_ground: Vec<u8>,
    /// The live stream being written ([`crate::live`]), while
    /// [`Emulator::feed_live`] runs.
    tee: Option<Vec<u8>>,
    /// A character of uncertain width was written on this row: the
    /// cursor's position is still to be written, before whatever comes
    /// next that does not join that character (a terminal joins a mark
    /// only to the character it printed just before).
    tee_fix: Option<usize>,
    /// Rows the live stream drew shifted, as tmux draws a row no terminal
    /// can hold ([`crate::live::row_whole`]): a write to one is followed by
    /// the row again. Forgotten when rows move.
    tee_shifted: Vec<usize>,
    /// The live stream may not grow past this during one
    /// [`Emulator::feed_live`] ([`LIVE_BUDGET`]).
    tee_limit: usize,
}

/// Bounds what one [`Emulator::feed_live`] may write: this many bytes per
/// byte read, plus [`LIVE_SLACK`]. Redraws (a row after an edit that
/// splits a wide character, a pending wrap, RIS's tab stops) can make a
/// few input bytes into many; past the bound the stream stops and the
/// caller sends the pane whole instead (a PaneReset).
pub const LIVE_BUDGET: usize = 16;
/// See [`LIVE_BUDGET`].
pub const LIVE_SLACK: usize = 64 * 1024;

impl Emulator {
    pub fn new(sx: usize, sy: usize, hlimit: usize, profile: Profile) -> Emulator {
        Emulator {
            screen: Screen::new(sx, sy, hlimit, profile),
            state: GROUND,
            interm: Vec::with_capacity(4),
            param: Vec::with_capacity(64),
            params: Vec::with_capacity(24),
            input: Vec::new(),
            input_len: 0,
            discard: false,
            pen: Cell::DEFAULT,
            set: false,
            g0: false,
            g1: false,
            saved: SavedState::default(),
            utf8: [0; 4],
            utf8_have: 0,
            utf8_size: 0,
            utf8_bad: false,
            utf8_started: false,
            last: None,
            since_ground: Vec::new(),
            tee: None,
            tee_fix: None,
            tee_shifted: Vec::new(),
            tee_limit: 0,
        }
    }

    pub fn profile(&self) -> Profile {
        self.screen.profile
    }

    /// Bytes that, fed to a fresh emulator, recreate the parser's
    /// unfinished state: a partial UTF-8 character, then the bytes since
    /// the parser last left the ground state.
    pub fn pending(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.utf8_started {
            out.extend_from_slice(&self.utf8[..self.utf8_have]);
        }
        out.extend_from_slice(&self.since_ground);
        out
    }

    /// DECSC's saved state: pen, sets, cursor, origin mode.
    pub fn saved_state(&self) -> (Cell, bool, bool, bool, usize, usize, bool) {
        let s = &self.saved;
        (s.pen, s.set, s.g0, s.g1, s.cx, s.cy, s.origin)
    }

    fn charset(&self) -> bool {
        if self.set { self.g1 } else { self.g0 }
    }

    /// Feeds pane output and appends to `live` what a terminal must be
    /// given to show what tmux shows ([`crate::live`]).
    ///
    /// Returns false when the stream outgrew its bound ([`LIVE_BUDGET`]):
    /// `live` then holds nothing of these bytes and the model is right; the
    /// caller sends the pane whole.
    pub fn feed_live(&mut self, bytes: &[u8], live: &mut Vec<u8>) -> bool {
        let start = live.len();
        self.tee_limit = start + bytes.len().saturating_mul(LIVE_BUDGET) + LIVE_SLACK;
        self.tee = Some(std::mem::take(live));
        self.feed(bytes);
        self.tee_check();
        match self.tee.take() {
            Some(t) => {
                *live = t;
                true
            }
            None => {
                // Overflowed: stopped teeing (see `tee_check`).
                self.tee_fix = None;
                false
            }
        }
    }

    /// Stops the live stream when it outgrew its bound.
    fn tee_check(&mut self) {
        if self.tee.as_ref().is_some_and(|t| t.len() > self.tee_limit) {
            self.tee = None;
        }
    }

    /// Feeds pane output.
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if self.state == GROUND && (0x20..0x7f).contains(&b) {
                let end = bytes[i..]
                    .iter()
                    .position(|c| !(0x20..0x7f).contains(c))
                    .map_or(bytes.len(), |p| i + p);
                self.print_run(&bytes[i..end]);
                i = end;
                continue;
            }
            // CR and LF between runs of text (most of any output), straight
            // to the screen when nothing else is in play: no unfinished
            // character, no live stream to write.
            if (b == b'\r' || b == b'\n')
                && self.state == GROUND
                && !self.utf8_started
                && self.tee.is_none()
            {
                if b == b'\r' {
                    self.screen.carriage_return();
                } else {
                    self.screen.linefeed(false, self.pen.bg);
                }
                self.last = None;
                i += 1;
                continue;
            }
            self.byte(b);
            i += 1;
        }
    }

    fn byte(&mut self, b: u8) {
        self.tee_check();
        if self.tee_fix.is_some() && !(self.state == GROUND && b >= 0x80) {
            self.tee_flush();
        }
        let tr = TABLE[usize::from(self.state)][usize::from(b)];
        match (tr & 0xff) as u8 {
            A_NONE => {}
            A_C0 => self.c0(b),
            A_PRINT => self.print_run(&[b]),
            A_TOP => self.top_bit(b),
            A_INTERM => {
                if self.interm.len() == 3 {
                    self.discard = true;
                } else {
                    self.interm.push(b);
                }
            }
            A_PARAM => {
                if self.param.len() == 63 {
                    self.discard = true;
                } else {
                    self.param.push(b);
                }
            }
            A_ESC => {
                let pre = if self.tee.is_some() {
                    Some(self.tee_pre_esc(b))
                } else {
                    None
                };
                self.esc_dispatch(b);
                if let Some(pre) = pre {
                    self.tee_esc(b, pre);
                }
            }
            A_CSI => {
                let pre = if self.tee.is_some() {
                    Some(self.tee_pre_csi(b))
                } else {
                    None
                };
                self.csi_dispatch(b);
                if let Some(pre) = pre {
                    self.tee_csi(b, pre);
                }
            }
            A_INPUT => {
                if self.input_len + 1 >= STRING_LIMIT {
                    self.discard = true;
                } else {
                    self.input_len += 1;
                    let keep = if self.tee.is_some() && self.state == OSC {
                        STRING_LIMIT
                    } else {
                        STRING_KEEP
                    };
                    if self.input.len() < keep {
                        self.input.push(b);
                    }
                }
            }
            A_DCS => {}
            A_BEL => {}
            _ => {}
        }
        let next = tr >> 8;
        if next != 0 {
            self.set_state((next - 1) as u8);
        }
        if self.state != GROUND && self.since_ground.len() < PENDING_MAX {
            self.since_ground.push(b);
        }
    }

    fn clear(&mut self) {
        self.interm.clear();
        self.param.clear();
        self.input.clear();
        self.input_len = 0;
        self.discard = false;
    }

    fn set_state(&mut self, next: u8) {
        // Exit handlers.
        match self.state {
            OSC => self.exit_osc(),
            APC => self.exit_apc(),
            _ => {}
        }
        self.state = next;
        // Enter handlers.
        match next {
            GROUND => self.since_ground.clear(),
            ESC_ENTER | CSI_ENTER => self.clear(),
            DCS_ENTER | OSC | APC | RENAME | CONSUME_ST => {
                self.clear();
                self.last = None;
            }
            _ => {}
        }
    }

    /// `input_stop_utf8`: an unfinished character ends (3.7+: as U+FFFD).
    fn stop_utf8(&mut self) {
        if self.utf8_started && self.profile().utf8_replacement() {
            self.put_glyph(Glyph {
                cp: 0xfffd,
                width: 1,
            });
        }
        self.utf8_started = false;
    }

    fn top_bit(&mut self, b: u8) {
        self.last = None;
        if !self.utf8_started {
            let size = match b {
                0xc2..=0xdf => 2,
                0xe0..=0xef => 3,
                0xf0..=0xf4 => 4,
                _ => 0,
            };
            if size == 0 {
                if self.profile().utf8_replacement() {
                    self.utf8_started = true;
                    self.stop_utf8();
                }
                return;
            }
            self.utf8_started = true;
            self.utf8 = [b, 0, 0, 0];
            self.utf8_have = 1;
            self.utf8_size = size;
            self.utf8_bad = false;
            return;
        }
        if b & 0xc0 != 0x80 {
            self.utf8_bad = true;
        }
        self.utf8[self.utf8_have] = b;
        self.utf8_have += 1;
        if self.utf8_have < self.utf8_size {
            return;
        }
        let glyph = if self.utf8_bad {
            None
        } else {
            decode_cp(&self.utf8[..self.utf8_size])
                .and_then(|cp| cp_width(cp, self.profile()).map(|width| Glyph { cp, width }))
        };
        match glyph {
            None => self.stop_utf8(),
            Some(g) => {
                self.utf8_started = false;
                self.put_glyph(g);
                self.last = Some(g);
            }
        }
    }

    /// Writes a non-ASCII character with the pen (`screen_write_collect_add`
    /// of a cell that is never collected).
    fn put_glyph(&mut self, g: Glyph) {
        // The pen as it is: REP leaves tmux's line-drawing bit set on it
        // until the next ASCII character.
        let cell = Cell {
            text: g.cp,
            width: g.width,
            flags: 0,
            ..self.pen
        };
        let target = self.tee.as_ref().and_then(|_| self.join_target());
        let row = self.screen.cy;
        // The pending cursor position as it is before this character, in
        // case it does not join.
        let mut fix = Vec::new();
        if let Some(r) = self.tee_fix.filter(|_| self.tee.is_some()) {
            crate::live::cursor_after(self, r, &mut fix);
        }
        self.screen.write_cell(cell, Some(g));
        if self.tee.is_some() {
            self.tee_glyph(g, target, row, &fix);
        }
    }

    /// The cell a character would join (the one before the cursor, past
    /// padding), with its position.
    /// Taken before the character is written: the cell's text may move in
    /// the text table when it grows.
    fn join_target(&self) -> Option<(usize, usize, Cell, Vec<u8>)> {
        let s = &self.screen;
        let (mut x, y) = (s.cx.min(s.sx()), s.cy);
        loop {
            if x == 0 {
                return None;
            }
            x -= 1;
            let c = s.grid.get_cell(x, y);
            if !c.is_padding() {
                let mut data = Vec::new();
                s.cell_data(&c, &mut data);
                return Some((x, y, c, data));
            }
        }
    }

    /// The live stream for a character: as placed, joined or dropped.
    fn tee_glyph(
        &mut self,
        g: Glyph,
        target: Option<(usize, usize, Cell, Vec<u8>)>,
        row: usize,
        fix: &[u8],
    ) {
        let Some(mut t) = self.tee.take() else { return };
        if self.screen.wrote && g.width == 0 {
            // A zero-width character tmux keeps in a cell of its own (its
            // neighbour was full): it shows nothing there, while a terminal
            // would join it to the cell before.
        } else if self.screen.wrote {
            if self.tee_fix.take().is_some() {
                t.extend_from_slice(fix);
            }
            if g.cp > 0x10ffff {
                // tmux 3.5+ keeps the four bytes as one cell and draws them
                // as they are, which a terminal shows as four U+FFFD: the
                // rest of the row drawn shifted, as tmux's own is.
                let mut raw = Vec::new();
                super::grid::push_cp(g.cp, &mut raw);
                t.extend_from_slice(String::from_utf8_lossy(&raw).as_bytes());
                let y = self.screen.cy;
                if !self.tee_shifted.contains(&y) {
                    self.tee_shifted.push(y);
                }
            } else {
                super::grid::push_cp(g.cp, &mut t);
            }
            if crate::live::uncertain_width(g.cp, g.width) {
                self.tee_fix = Some(row);
            }
            if self.tee_shifted.contains(&row) && g.cp <= 0x10ffff {
                self.tee_fix = None;
                self.tee_repair(row, &mut t);
            }
        } else if let Some((x, y, old, a)) = target {
            let now = self.screen.grid.get_cell(x, y);
            let mut b = Vec::new();
            self.screen.cell_data(&now, &mut b);
            // Compared by text: a cell whose text grew can keep its value
            // when the text table reuses the slot.
            if b != a || now.width != old.width {
                if now.width == old.width
                    && b.starts_with(&a)
                    && !b.ends_with("\u{200d}".as_bytes())
                    && joins_in_terminal(&b[a.len()..], self.profile())
                {
                    // Joined: a terminal joins a mark or a variation
                    // selector to the character it just printed too.
                    t.extend_from_slice(&b[a.len()..]);
                } else if now.width == old.width && !self.tee_shifted.contains(&y) {
                    // Anything else joined (what follows a ZWJ, a skin
                    // tone, a second regional indicator) would take a cell
                    // of its own in a terminal, and a cell left ending in
                    // ZWJ would make the page join whatever comes next:
                    // the cell again, whole, at tmux's width.
                    self.tee_fix = None;
                    crate::live::redraw_cell(self, x, y, &mut t);
                } else {
                    self.tee_fix = None;
                    self.tee_repair(y, &mut t);
                }
            }
        }
        self.tee = Some(t);
    }

    /// Row `y` as the model holds it (after an edit that split a wide
    /// character, or a write to a row drawn shifted), remembering whether
    /// it was drawn shifted.
    fn tee_repair(&mut self, y: usize, t: &mut Vec<u8>) {
        crate::live::repair_row(self, y, t);
        self.tee_shifted.retain(|&r| r != y);
        if !crate::live::row_whole(self, y) {
            self.tee_shifted.push(y);
        }
    }

    /// Writes the pending cursor position ([`Emulator::tee_fix`]).
    fn tee_flush(&mut self) {
        if let (Some(row), Some(mut t)) = (self.tee_fix.take(), self.tee.take()) {
            crate::live::cursor_after(self, row, &mut t);
            self.tee = Some(t);
        }
    }

    /// `input_print` for a run of printable ASCII.
    fn print_run(&mut self, run: &[u8]) {
        self.stop_utf8();
        if self.tee_fix.is_some() {
            self.tee_flush();
        }
        let shifted_from = (!self.tee_shifted.is_empty() && self.tee.is_some())
            .then_some(self.screen.cy)
            .filter(|y| self.tee_shifted.contains(y));
        if let Some(t) = self.tee.as_mut() {
            t.extend_from_slice(run);
        }
        self.pen.attr &= !attr::CHARSET;
        let charset = self.charset();
        let m = self.screen.mode;
        if !charset && m & mode::WRAP != 0 && m & mode::INSERT == 0 {
            self.screen.write_ascii(&self.pen, run);
        } else {
            let pen = Screen::charset_cell(&self.pen, charset);
            for &b in run {
                let cell = Cell {
                    text: u32::from(b),
                    width: 1,
                    flags: 0,
                    ..pen
                };
                let g = Glyph {
                    cp: u32::from(b),
                    width: 1,
                };
                self.screen.write_cell(cell, Some(g));
            }
        }
        if let Some(&b) = run.last() {
            self.last = Some(Glyph {
                cp: u32::from(b),
                width: 1,
            });
        }
        if let Some(y) = shifted_from {
            if self.screen.cy == y
                && let Some(mut t) = self.tee.take()
            {
                self.tee_repair(y, &mut t);
                self.tee = Some(t);
            } else {
                // Wrapped (perhaps scrolled): rows moved.
                self.tee_shifted.clear();
            }
        }
    }

    fn c0(&mut self, b: u8) {
        self.stop_utf8();
        let (cx, cy) = (self.screen.cx, self.screen.cy);
        self.c0_apply(b);
        if self.tee.is_some() {
            if matches!(b, 0x0a..=0x0c) && cy == self.screen.rlower {
                // Scrolled: rows moved.
                self.tee_shifted.clear();
            }
            self.tee_c0(b, cx);
        }
    }

    /// The live stream for a C0 control; `cx` is the column before it.
    fn tee_c0(&mut self, b: u8, cx: usize) {
        let Some(mut t) = self.tee.take() else { return };
        let sx = self.screen.sx();
        match b {
            // Where tmux and a terminal agree: within the line.
            0x08 if cx > 0 && cx < sx => t.push(b),
            0x09 if cx + 1 < sx => t.push(b),
            0x08 | 0x09 => crate::live::cursor(self, &mut t),
            0x0a..=0x0c if cx < sx => t.push(b'\n'),
            0x0a..=0x0c => {
                t.push(b'\n');
                crate::live::cursor(self, &mut t);
            }
            0x07 | 0x0d | 0x0e | 0x0f => t.push(b),
            _ => {}
        }
        self.tee = Some(t);
    }

    fn c0_apply(&mut self, b: u8) {
        let bg = self.pen.bg;
        match b {
            0x08 => self.screen.backspace(),
            0x09 => {
                let pen = self.pen;
                self.screen.tab(&pen);
            }
            0x0a..=0x0c => self.screen.linefeed(false, bg),
            0x0d => self.screen.carriage_return(),
            0x0e => self.set = true,
            0x0f => self.set = false,
            _ => {}
        }
        self.last = None;
    }

    fn save_state(&mut self) {
        self.saved = SavedState {
            pen: self.pen,
            set: self.set,
            g0: self.g0,
            g1: self.g1,
            cx: self.screen.cx,
            cy: self.screen.cy,
            origin: self.screen.mode & mode::ORIGIN != 0,
        };
    }

    fn restore_state(&mut self) {
        let s = self.saved;
        self.pen = s.pen;
        self.set = s.set;
        self.g0 = s.g0;
        self.g1 = s.g1;
        if s.origin {
            self.screen.mode |= mode::ORIGIN;
        } else {
            self.screen.mode &= !mode::ORIGIN;
        }
        self.screen.cursor_move(Some(s.cx), Some(s.cy), false);
    }

    fn esc_dispatch(&mut self, b: u8) {
        if self.discard {
            return;
        }
        let bg = self.pen.bg;
        match (b, self.interm.as_slice()) {
            (b'c', []) => {
                self.pen = Cell::DEFAULT;
                self.set = false;
                self.g0 = false;
                self.g1 = false;
                self.saved = SavedState::default();
                self.screen.reset();
            }
            (b'D', []) => self.screen.linefeed(false, bg),
            (b'E', []) => {
                self.screen.carriage_return();
                self.screen.linefeed(false, bg);
            }
            (b'H', []) => {
                let cx = self.screen.cx;
                if let Some(t) = self.screen.tabs.get_mut(cx) {
                    *t = true;
                }
            }
            (b'M', []) => self.screen.reverse_index(bg),
            (b'=', []) => self.screen.mode |= mode::KKEYPAD,
            (b'>', []) => self.screen.mode &= !mode::KKEYPAD,
            (b'7', []) => self.save_state(),
            (b'8', []) => self.restore_state(),
            (b'8', b"#") => self.screen.alignment_test(),
            (b'0', b"(") => self.g0 = true,
            (b'B', b"(") => self.g0 = false,
            (b'0', b")") => self.g1 = true,
            (b'B', b")") => self.g1 = false,
            _ => {}
        }
        self.last = None;
    }

    /// `input_split`; false when the parameters are invalid.
    fn split(&mut self) -> bool {
        self.params.clear();
        if self.param.is_empty() {
            return true;
        }
        let mut start = 0;
        let p = &self.param;
        for end in (0..=p.len()).filter(|&i| i == p.len() || p[i] == b';') {
            let part = &p[start..end];
            let v = if part.is_empty() {
                Param::Missing
            } else if part.contains(&b':') {
                Param::Str(start, end)
            } else {
                let mut n: i64 = 0;
                for &c in part {
                    n = n * 10 + i64::from(c - b'0');
                    if n > i64::from(i32::MAX) {
                        return false;
                    }
                }
                Param::Number(n as i32)
            };
            self.params.push(v);
            if self.params.len() == 24 {
                return false;
            }
            start = end + 1;
        }
        true
    }

    /// `input_get`: -1 for a string parameter.
    fn get(&self, i: usize, min: i32, default: i32) -> i32 {
        match self.params.get(i) {
            None | Some(Param::Missing) => default,
            Some(Param::Str(..)) => -1,
            Some(&Param::Number(n)) => n.max(min),
        }
    }

    fn csi_dispatch(&mut self, b: u8) {
        if self.discard {
            return;
        }
        if !self.split() {
            return;
        }
        let bg = self.pen.bg;
        let interm: &[u8] = &self.interm;
        let n1 = |s: &Self| s.get(0, 1, 1);
        macro_rules! count {
            () => {{
                let n = n1(self);
                if n == -1 {
                    self.last = None;
                    return;
                }
                n as usize
            }};
        }
        match (b, interm) {
            (b'@', []) => {
                let n = count!();
                self.screen.insert_characters(n, bg);
            }
            (b'A', []) => {
                let n = count!();
                self.screen.cursor_up(n);
            }
            (b'B', []) => {
                let n = count!();
                self.screen.cursor_down(n);
            }
            (b'C', []) => {
                let n = count!();
                self.screen.cursor_right(n);
            }
            (b'D', []) => {
                let n = count!();
                self.screen.cursor_left(n);
            }
            (b'E', []) => {
                let n = count!();
                self.screen.carriage_return();
                self.screen.cursor_down(n);
            }
            (b'F', []) => {
                let n = count!();
                self.screen.carriage_return();
                self.screen.cursor_up(n);
            }
            (b'G' | b'`', []) => {
                let n = count!();
                self.screen.cursor_move(Some(n - 1), None, true);
            }
            (b'H' | b'f', []) => {
                let n = self.get(0, 1, 1);
                let m = self.get(1, 1, 1);
                if n != -1 && m != -1 {
                    self.screen
                        .cursor_move(Some(m as usize - 1), Some(n as usize - 1), true);
                }
            }
            (b'J', []) => match self.get(0, 0, 0) {
                0 => self.screen.clear_end_of_screen(bg),
                1 => self.screen.clear_start_of_screen(bg),
                2 => self.screen.clear_screen(bg),
                3 if self.get(1, 0, 0) == 0 => self.screen.clear_history(),
                _ => {}
            },
            (b'K', []) => match self.get(0, 0, 0) {
                0 => self.screen.clear_end_of_line(bg),
                1 => self.screen.clear_start_of_line(bg),
                2 => self.screen.clear_line(bg),
                _ => {}
            },
            (b'L', []) => {
                let n = count!();
                self.screen.insert_lines(n, bg);
            }
            (b'M', []) => {
                let n = count!();
                self.screen.delete_lines(n, bg);
            }
            (b'P', []) => {
                let n = count!();
                self.screen.delete_characters(n, bg);
            }
            (b'S', []) => {
                let n = count!();
                self.screen.scroll_up(n, bg);
            }
            (b'T', []) => {
                let n = count!();
                self.screen.scroll_down(n, bg);
            }
            (b'X', []) => {
                let n = count!();
                self.screen.clear_characters(n, bg);
            }
            (b'Z', []) => {
                let n = count!();
                self.screen.back_tab(n);
            }
            (b'b', []) => {
                let n = count!();
                self.rep(n);
            }
            (b'd', []) => {
                let n = count!();
                self.screen.cursor_move(None, Some(n - 1), true);
            }
            (b'g', []) => match self.get(0, 0, 0) {
                0 => {
                    let cx = self.screen.cx;
                    if let Some(t) = self.screen.tabs.get_mut(cx) {
                        *t = false;
                    }
                }
                3 => self.screen.tabs.iter_mut().for_each(|t| *t = false),
                _ => {}
            },
            (b'h', []) => self.modes(true),
            (b'l', []) => self.modes(false),
            (b'h', b"?") => self.private_modes(true),
            (b'l', b"?") => self.private_modes(false),
            (b'm', []) => self.sgr(),
            (b'r', []) => {
                let n = self.get(0, 1, 1);
                let m = self.get(1, 1, self.screen.sy() as i32);
                if n != -1 && m != -1 {
                    self.screen.scroll_region(n as usize - 1, m as usize - 1);
                }
            }
            (b's', []) => self.save_state(),
            (b'u', []) => self.restore_state(),
            (b'q', b" ") => {
                let n = self.get(0, 0, 0);
                let s = &mut self.screen;
                match n {
                    0 => {
                        s.cstyle = CursorStyle::Default;
                        s.mode &= !mode::CURSOR_BLINKING_SET;
                    }
                    1 | 2 => s.cstyle = CursorStyle::Block,
                    3 | 4 => s.cstyle = CursorStyle::Underline,
                    5 | 6 => s.cstyle = CursorStyle::Bar,
                    _ => {}
                }
                if (1..=6).contains(&n) {
                    if n % 2 == 1 {
                        s.mode |= mode::CURSOR_BLINKING;
                    } else {
                        s.mode &= !mode::CURSOR_BLINKING;
                    }
                }
            }
            _ => {}
        }
        self.last = None;
    }

    fn rep(&mut self, n: usize) {
        let m = self.screen.sx() - self.screen.cx.min(self.screen.sx());
        let n = n.min(m);
        let Some(g) = self.last else { return };
        if g.cp >= 0x80 && !self.profile().rep_utf8() {
            return;
        }
        let charset = self.charset();
        // tmux sets (or clears) the bit on the pen itself and leaves it.
        self.pen = Screen::charset_cell(&self.pen, charset);
        if let Some(mut t) = self.tee.take() {
            for _ in 0..n {
                super::grid::push_cp(g.cp, &mut t);
            }
            self.tee = Some(t);
        }
        for _ in 0..n {
            if g.cp < 0x80 {
                let pen = Screen::charset_cell(&self.pen, charset);
                let m = self.screen.mode;
                if !charset && m & mode::WRAP != 0 && m & mode::INSERT == 0 {
                    self.screen.write_ascii(&pen, &[g.cp as u8]);
                } else {
                    let cell = Cell {
                        text: g.cp,
                        width: 1,
                        flags: 0,
                        ..pen
                    };
                    self.screen.write_cell(cell, Some(g));
                }
            } else {
                let cell = Cell {
                    text: g.cp,
                    width: g.width,
                    flags: 0,
                    ..Screen::charset_cell(&self.pen, charset)
                };
                self.screen.write_cell(cell, Some(g));
            }
        }
        if n > 0
            && crate::live::uncertain_width(g.cp, g.width)
            && let Some(mut t) = self.tee.take()
        {
            crate::live::cursor(self, &mut t);
            self.tee = Some(t);
        }
    }

    fn modes(&mut self, on: bool) {
        for i in 0..self.params.len() {
            if self.get(i, 0, -1) == 4 {
                if on {
                    self.screen.mode |= mode::INSERT;
                } else {
                    self.screen.mode &= !mode::INSERT;
                }
            }
        }
    }

    fn private_modes(&mut self, on: bool) {
        for i in 0..self.params.len() {
            let bit = |s: &mut Self, m: u32| {
                if on {
                    s.screen.mode |= m;
                } else {
                    s.screen.mode &= !m;
                }
            };
            match self.get(i, 0, -1) {
                1 => bit(self, mode::KCURSOR),
                3 => {
                    self.screen.cursor_move(Some(0), Some(0), true);
                    let bg = self.pen.bg;
                    self.screen.clear_screen(bg);
                }
                6 => {
                    bit(self, mode::ORIGIN);
                    self.screen.cursor_move(Some(0), Some(0), true);
                }
                7 => bit(self, mode::WRAP),
                12 => {
                    bit(self, mode::CURSOR_BLINKING);
                    self.screen.mode |= mode::CURSOR_BLINKING_SET;
                }
                25 => bit(self, mode::CURSOR),
                1000..=1003 => {
                    let m = self.get(i, 0, -1);
                    self.screen.mode &= !mode::ALL_MOUSE;
                    if on {
                        match m {
                            1000 => self.screen.mode |= mode::MOUSE_STANDARD,
                            1002 => self.screen.mode |= mode::MOUSE_BUTTON,
                            1003 => self.screen.mode |= mode::MOUSE_ALL,
                            _ => {}
                        }
                    }
                }
                1004 => bit(self, mode::FOCUSON),
                1005 => bit(self, mode::MOUSE_UTF8),
                1006 => bit(self, mode::MOUSE_SGR),
                47 | 1047 => self.alternate(on, false),
                1049 => self.alternate(on, true),
                2004 => bit(self, mode::BRACKETPASTE),
                _ => {}
            }
        }
    }

    fn alternate(&mut self, on: bool, cursor: bool) {
        if on {
            let pen = self.pen;
            self.screen.alternate_on(&pen, cursor);
        } else {
            let mut pen = self.pen;
            self.screen.alternate_off(&mut pen, cursor);
            self.pen = pen;
        }
    }

    fn colour_256(&mut self, which: i32, c: i32) {
        let v = if c == -1 || c > 255 {
            if which == 58 {
                return;
            }
            COLOUR_DEFAULT
        } else {
            c as u32 | COLOUR_256
        };
        match which {
            38 => self.pen.fg = v,
            48 => self.pen.bg = v,
            58 => self.pen.us = v,
            _ => {}
        }
    }

    fn colour_rgb(&mut self, which: i32, r: i32, g: i32, b: i32) -> bool {
        if [r, g, b].iter().any(|&v| v == -1 || v > 255) {
            return false;
        }
        let v = COLOUR_RGB | (r as u32) << 16 | (g as u32) << 8 | b as u32;
        match which {
            38 => self.pen.fg = v,
            48 => self.pen.bg = v,
            58 => self.pen.us = v,
            _ => {}
        }
        true
    }

    /// `input_csi_dispatch_sgr_colon`.
    fn sgr_colon(&mut self, from: usize, to: usize) {
        let mut p = [-1i32; 8];
        let mut n = 0;
        let s = self.param[from..to].to_vec();
        for part in s.split(|&c| c == b':') {
            if !part.is_empty() {
                let mut v: i64 = 0;
                for &c in part {
                    v = v * 10 + i64::from(c - b'0');
                    if v > i64::from(i32::MAX) {
                        return;
                    }
                }
                p[n] = v as i32;
                n += 1;
                if n == p.len() {
                    return;
                }
            } else {
                n += 1;
                if n == p.len() {
                    return;
                }
            }
        }
        if n == 0 {
            return;
        }
        if p[0] == 4 {
            if n != 2 {
                return;
            }
            let u = match p[1] {
                0 => 0,
                1 => attr::UNDERSCORE,
                2 => attr::UNDERSCORE_2,
                3 => attr::UNDERSCORE_3,
                4 => attr::UNDERSCORE_4,
                5 => attr::UNDERSCORE_5,
                _ => return,
            };
            self.pen.attr = (self.pen.attr & !attr::ALL_UNDERSCORE) | u;
            return;
        }
        if n < 2 || (p[0] != 38 && p[0] != 48 && p[0] != 58) {
            return;
        }
        match p[1] {
            2 => {
                if n < 3 {
                    return;
                }
                let i = if n == 5 { 2 } else { 3 };
                if n < i + 3 {
                    return;
                }
                self.colour_rgb(p[0], p[i], p[i + 1], p[i + 2]);
            }
            5 => {
                if n < 3 {
                    return;
                }
                self.colour_256(p[0], p[2]);
            }
            _ => {}
        }
    }

    fn sgr(&mut self) {
        if self.params.is_empty() {
            self.pen = Cell::DEFAULT;
            return;
        }
        let mut i = 0;
        while i < self.params.len() {
            if let Param::Str(a, b) = self.params[i] {
                self.sgr_colon(a, b);
                i += 1;
                continue;
            }
            let n = self.get(i, 0, 0);
            if n == -1 {
                i += 1;
                continue;
            }
            if n == 38 || n == 48 || n == 58 {
                i += 1;
                match self.get(i, 0, -1) {
                    2 => {
                        let (r, g, b) = (
                            self.get(i + 1, 0, -1),
                            self.get(i + 2, 0, -1),
                            self.get(i + 3, 0, -1),
                        );
                        if self.colour_rgb(n, r, g, b) {
                            i += 3;
                        }
                    }
                    5 => {
                        let c = self.get(i + 1, 0, -1);
                        self.colour_256(n, c);
                        i += 1;
                    }
                    _ => {}
                }
                i += 1;
                continue;
            }
            let a = &mut self.pen.attr;
            match n {
                0 => self.pen = Cell::DEFAULT,
                1 => *a |= attr::BRIGHT,
                2 => *a |= attr::DIM,
                3 => *a |= attr::ITALICS,
                4 => *a = (*a & !attr::ALL_UNDERSCORE) | attr::UNDERSCORE,
                5 | 6 => *a |= attr::BLINK,
                7 => *a |= attr::REVERSE,
                8 => *a |= attr::HIDDEN,
                9 => *a |= attr::STRIKETHROUGH,
                21 => *a = (*a & !attr::ALL_UNDERSCORE) | attr::UNDERSCORE_2,
                22 => *a &= !(attr::BRIGHT | attr::DIM),
                23 => *a &= !attr::ITALICS,
                24 => *a &= !attr::ALL_UNDERSCORE,
                25 => *a &= !attr::BLINK,
                27 => *a &= !attr::REVERSE,
                28 => *a &= !attr::HIDDEN,
                29 => *a &= !attr::STRIKETHROUGH,
                30..=37 => self.pen.fg = (n - 30) as u32,
                39 => self.pen.fg = COLOUR_DEFAULT,
                40..=47 => self.pen.bg = (n - 40) as u32,
                49 => self.pen.bg = COLOUR_DEFAULT,
                53 => *a |= attr::OVERLINE,
                55 => *a &= !attr::OVERLINE,
                59 => self.pen.us = COLOUR_DEFAULT,
                90..=97 => self.pen.fg = n as u32,
                100..=107 => self.pen.bg = (n - 10) as u32,
                _ => {}
            }
            i += 1;
        }
    }

    /// The string of an OSC or APC when it is valid UTF-8.
    fn string(&self) -> Option<&str> {
        if self.discard {
            return None;
        }
        std::str::from_utf8(&self.input).ok()
    }

    fn set_title(&mut self, t: &str) {
        self.screen.title.clear();
        self.screen
            .title
            .extend(t.bytes().filter(|&b| b >= 0x20 && b != 0x7f));
    }

    fn exit_osc(&mut self) {
        if self.tee.is_some() {
            self.tee_osc();
        }
        let Some(s) = self.string() else { return };
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return;
        }
        let rest = &s[digits..];
        if !(rest.is_empty() || rest.starts_with(';')) {
            return;
        }
        let option: u32 = s[..digits].parse().unwrap_or(u32::MAX);
        let p = rest.strip_prefix(';').unwrap_or(rest).to_owned();
        if option == 0 || option == 2 {
            self.set_title(&p);
        }
    }

    fn exit_apc(&mut self) {
        if let Some(s) = self.string() {
            let s = s.to_owned();
            self.set_title(&s);
        }
    }
}

/// Whether a terminal appends `added` to the character it just printed, as
/// tmux did: zero-width characters only (marks, variation selectors, ZWJ).
fn joins_in_terminal(added: &[u8], profile: Profile) -> bool {
    String::from_utf8_lossy(added).chars().all(|c| {
        cp_width(u32::from(c), profile) == Some(0)
            || matches!(c, '\u{fe0e}' | '\u{fe0f}' | '\u{200d}')
    })
}
