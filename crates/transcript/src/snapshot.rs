//! Reset bytes (the `PaneReset` payload): bytes that rebuild a pane model in
//! a freshly reset terminal, whether that terminal is a new [`PaneModel`]
//! of the same profile or xterm.js in the page.
//!
//! Order: the history and the normal screen as lines (autowrap where a line
//! wraps, CRLF otherwise, so the history scrolls into place), the alternate
//! screen when shown (`?1049h` after the saved cursor and pen), tab stops,
//! scroll region, DECSC's saved state, modes, title, the cursor (a pending
//! wrap is recreated by redrawing the last cell), insert and no-wrap modes
//! last (they change how the bytes above draw), then the unfinished
//! sequence.
//!
//! Every cell that is not one ASCII character is followed by an explicit
//! cursor position (CUP), so a terminal whose width table differs from
//! tmux's (xterm.js for emoji sequences, for instance) still puts the next
//! cell where tmux has it. Cleared cells are drawn with ECH so they keep
//! their background without counting as written. A wide character whose
//! padding was erased or overwritten keeps its half-cell as tmux shows it
//! (the padding is erased with ECH before the next cell is drawn), and
//! padding left by an erased character is recreated.
//!
//! [`PaneModel`]: crate::pane::PaneModel

use crate::emu::capture::colour_codes;
use crate::emu::grid::{COLOUR_DEFAULT, LineRef, Texts, attr, flag};
use crate::emu::screen::{CursorStyle, Screen, mode};
use crate::emu::{Cell, Emulator};

/// The writer's view of the terminal it is driving.
pub(crate) struct Out {
    pub(crate) bytes: Vec<u8>,
    pub(crate) pen: Cell,
    /// SO is active (G1 = DEC graphics while drawing).
    pub(crate) shifted: bool,
}

impl Out {
    pub(crate) fn push(&mut self, b: &[u8]) {
        self.bytes.extend_from_slice(b);
    }

    pub(crate) fn num(&mut self, n: usize) {
        push_num(&mut self.bytes, n);
    }

    /// HPA: column `col` of the current row (row-independent, so a line's
    /// bytes can be kept and replayed at any row).
    pub(crate) fn col(&mut self, col: usize) {
        self.push(b"\x1b[");
        self.num(col + 1);
        self.push(b"G");
    }

    pub(crate) fn cup(&mut self, row: usize, col: usize) {
        self.push(b"\x1b[");
        self.num(row + 1);
        self.push(b";");
        self.num(col + 1);
        self.push(b"H");
    }

    /// Sets the pen (attributes and colours; line drawing via SO/SI).
    pub(crate) fn pen(&mut self, c: &Cell) {
        let want = Cell {
            attr: c.attr & !attr::CHARSET,
            ..*c
        };
        if !want.same_pen(&self.pen) {
            self.push(b"\x1b[0m");
            write_sgr(&want, &mut self.bytes);
            self.pen = want;
        }
        let acs = c.attr & attr::CHARSET != 0;
        if acs != self.shifted {
            self.push(if acs { b"\x0e" } else { b"\x0f" });
            self.shifted = acs;
        }
    }

    pub(crate) fn default_pen(&mut self) {
        self.pen(&Cell::DEFAULT);
    }
}

/// Decimal digits of `n`, without allocating.
fn push_num(out: &mut Vec<u8>, mut n: usize) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Full SGR for a pen, after `ESC [ 0 m`.
pub fn write_sgr(c: &Cell, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(b"\x1b[");
    let mut any = false;
    let mut sep = |out: &mut Vec<u8>| {
        if any {
            out.push(b';');
        }
        any = true;
    };
    for (m, code) in [
        (attr::BRIGHT, "1"),
        (attr::DIM, "2"),
        (attr::ITALICS, "3"),
        (attr::UNDERSCORE, "4"),
        (attr::BLINK, "5"),
        (attr::REVERSE, "7"),
        (attr::HIDDEN, "8"),
        (attr::STRIKETHROUGH, "9"),
        (attr::UNDERSCORE_2, "4:2"),
        (attr::UNDERSCORE_3, "4:3"),
        (attr::UNDERSCORE_4, "4:4"),
        (attr::UNDERSCORE_5, "4:5"),
        (attr::OVERLINE, "53"),
    ] {
        if c.attr & m != 0 {
            sep(out);
            out.extend_from_slice(code.as_bytes());
        }
    }
    let mut v = Vec::with_capacity(5);
    for (col, base) in [(c.fg, 30), (c.bg, 40), (c.us, 50)] {
        if col != COLOUR_DEFAULT {
            colour_codes(col, base, &mut v);
            for (i, n) in v.iter().enumerate() {
                if i == 0 {
                    sep(out);
                } else {
                    out.push(b';');
                }
                push_num(out, *n as usize);
            }
        }
    }
    if any {
        out.push(b'm');
    } else {
        out.truncate(start);
    }
}

/// See the module documentation; `pending` adds the unfinished sequence.
/// History lines are rendered once and kept
/// in the history (`History::rendered`), so a later snapshot only renders
/// what scrolled since.
pub fn reset_bytes(emu: &mut Emulator, pending: bool) -> Vec<u8> {
    render_history(emu);
    let emu = &*emu;
    let s = &emu.screen;
    let (sx, sy) = (s.sx(), s.sy());
    let mut o = Out {
        bytes: Vec::with_capacity(s.grid.history.rendered_bytes() + sx * sy * 2),
        pen: Cell::DEFAULT,
        shifted: false,
    };
    // Line drawing is drawn through G1 and SO/SI.
    o.push(b"\x1b[0m\x1b)0");

    let alternate = s.saved.as_ref();
    if alternate.is_none()
        && let Some((x, y)) = s.saved_cursor
    {
        // `?1049l` outside the alternate screen still restores this.
        o.cup(y.min(sy - 1), x.min(sx - 1));
        o.pen(&s.saved_cell);
        o.push(b"\x1b[?1049h\x1b[?1047l");
        o.default_pen();
    }

    // History and the normal screen.
    let normal: Vec<LineRef<'_>> = match alternate {
        Some(saved) => saved.lines.iter().map(LineRef::from).collect(),
        None => s.grid.lines.iter().map(LineRef::from).collect(),
    };
    let hist = s.grid.history.len();
    let mut lines: Vec<LineRef<'_>> = Vec::with_capacity(hist + sy);
    lines.extend((0..hist).filter_map(|i| s.grid.history.line(i)));
    lines.extend(normal);
    let cached: Vec<(&[u8], bool)> = (0..hist)
        .filter_map(|i| s.grid.history.rendered(i))
        .collect();
    draw_lines(&s.texts, sx, sy, &mut o, &lines, &cached, true);

    if let Some(saved) = alternate {
        let _ = saved;
        if let Some((x, y)) = s.saved_cursor {
            o.cup(y.min(sy - 1), x.min(sx - 1));
        } else {
            o.cup(0, 0);
        }
        o.pen(&s.saved_cell);
        o.push(if s.saved_cursor.is_some() {
            b"\x1b[?1049h"
        } else {
            b"\x1b[?1047h"
        });
        let alt: Vec<LineRef<'_>> = s.grid.lines.iter().map(LineRef::from).collect();
        draw_lines(&s.texts, sx, sy, &mut o, &alt, &[], false);
    }
    o.default_pen();

    write_state(emu, &mut o);
    if pending {
        o.bytes.extend_from_slice(&emu.pending());
    }
    o.bytes
}

/// Draws `lines` from the top row; `scroll` lets rows beyond the screen
/// scroll into the history. `cached` holds the bytes of the first lines
/// already rendered (history lines, rendered once and kept), with whether
/// they end waiting to wrap.
fn draw_lines(
    texts: &Texts,
    sx: usize,
    sy: usize,
    o: &mut Out,
    lines: &[LineRef<'_>],
    cached: &[(&[u8], bool)],
    scroll: bool,
) {
    let mut pending_wrap = false;
    let mut fresh;
    for (i, l) in lines.iter().enumerate() {
        let row = i.min(sy - 1);
        let continues = i > 0 && lines[i - 1].wrapped && pending_wrap;
        if i > 0 && !continues {
            if scroll && i >= sy {
                o.push(b"\r\n");
            } else if i >= sy {
                break;
            }
        }
        if !continues {
            o.cup(row, 0);
        }
        let (bytes, pending): (&[u8], bool) = match cached.get(i) {
            Some(&(b, p)) => (b, p),
            None => {
                fresh = render_line(texts, l, continues, sx);
                (&fresh.0, fresh.1)
            }
        };
        o.push(bytes);
        pending_wrap = pending;
    }
}

/// One line's bytes, from the start of its row (or, when `continues`,
/// from the pending wrap at the end of the row above), starting and ending
/// with the default pen; with whether the cursor ends waiting to wrap (the
/// line's last column was printed). Only HPA moves the cursor, so the bytes
/// do not depend on the row.
pub(crate) fn render_line(
    texts: &Texts,
    l: &LineRef<'_>,
    continues: bool,
    sx: usize,
) -> (Vec<u8>, bool) {
    let mut o = Out {
        bytes: Vec::with_capacity(usize::from(l.used) + 16),
        pen: Cell::DEFAULT,
        shifted: false,
    };
    let o = &mut o;
    let used = usize::from(l.used).min(sx);
    let len = l.len().min(sx);
    let mut text = Vec::new();
    let mut x = 0;
    if continues {
        // The cursor waits at the end of the previous row; the first
        // printed cell wraps onto this row.
        // A space wraps first when the cell is not plain text: a wide
        // or joining character would otherwise join the cell at the end
        // of the row above instead of wrapping.
        let first = l.get(0);
        let plain = first.single().is_some_and(|c| c.is_ascii_graphic()) && first.width == 1;
        if first.flags & flag::CLEARED != 0 || first.is_padding() || used == 0 || !plain {
            o.default_pen();
            o.push(b" ");
            o.col(0);
        }
    }
    let mut last_printed_end = 0;
    while x < len {
        let c = l.get(x);
        if c.is_padding() {
            x += 1;
            continue;
        }
        let w = usize::from(c.width);
        let cleared = c.flags & flag::CLEARED != 0;
        let after_broken_wide = x > 0 && !owned_prev_ok(l, x);
        if x >= used || (cleared && after_broken_wide) {
            // Beyond the written cells, or where a wide character's padding
            // was erased: erase, which neither writes nor fixes wide
            // characters.
            if c.bg != COLOUR_DEFAULT || cleared {
                let mut n = 1;
                while x + n < len && x + n >= used && l.get(x + n) == c {
                    n += 1;
                }
                o.col(x);
                o.pen(&Cell {
                    bg: c.bg,
                    ..Cell::DEFAULT
                });
                o.push(b"\x1b[");
                o.num(n);
                o.push(b"X");
                x += n;
            } else {
                x += 1;
            }
            continue;
        }
        // A cell where a wide character's padding was: erase the padding
        // (ECH leaves the character whole), then draw over the erased cell.
        let after_broken = x > 0 && !owned_prev_ok(l, x);
        if after_broken {
            o.col(x);
            o.default_pen();
            o.push(b"\x1b[X");
        } else if x != last_printed_end {
            o.col(x);
        }
        if c.flags & flag::TAB != 0 {
            draw_tab(o, l, sx, x, w);
            // What joined the tab cell (its data is `w` spaces, then that).
            text.clear();
            texts.push_utf8(c.text, &mut text);
            if c.single().is_none() && text.len() > w {
                o.push(&text[w..]);
            }
        } else if x + w > sx {
            // A wide character cut by the right edge (tmux keeps it after
            // an insertion or a resize): a terminal would wrap it onto the
            // next row, so it is left out, as tmux leaves it out when it
            // draws the row on a terminal.
            x = sx;
            continue;
        } else {
            o.pen(&c);
            if c.width == 0 {
                // A character that could not join its neighbour; drawn in
                // place (it does not move the cursor).
            }
            text.clear();
            texts.push_utf8(c.text, &mut text);
            o.push(&text);
            let ascii = text.len() == 1 && text[0] < 0x80;
            if !ascii && x + w < sx {
                o.col(x + w);
            }
        }
        // A wide character whose padding was replaced: the next cell
        // starts right after its first column.
        let broken = w >= 2 && x + 1 < len && !l.get(x + 1).is_padding();
        x += if broken { 1 } else { w.max(1) };
        last_printed_end = x;
    }
    // Orphan padding (its character was erased): draw a wide character
    // over it and its left neighbour, erase that, and redraw the neighbour
    // with autowrap off (which, unlike a run of text, leaves the padding
    // after it alone).
    for px in 1..len {
        let c = l.get(px);
        let left = l.get(px - 1);
        if continues || !c.is_padding() || owned(l, px) || left.is_padding() {
            continue;
        }
        o.default_pen();
        o.col(px - 1);
        o.push("日".as_bytes());
        o.col(px - 1);
        o.pen(&Cell {
            bg: left.bg,
            ..Cell::DEFAULT
        });
        o.push(b"\x1b[X");
        if left.flags & flag::CLEARED == 0 && left.width == 1 {
            o.pen(&left);
            text.clear();
            texts.push_utf8(left.text, &mut text);
            o.push(b"\x1b[?7l");
            o.push(&text);
            o.push(b"\x1b[?7h");
        }
        last_printed_end = usize::MAX;
    }
    o.default_pen();
    let pending = last_printed_end >= sx && last_printed_end != usize::MAX;
    (std::mem::take(&mut o.bytes), pending)
}

/// Whether the padding at `px` belongs to a wide character to its left.
fn owned(l: &LineRef<'_>, px: usize) -> bool {
    let mut k = 1;
    while k <= px {
        let c = l.get(px - k);
        if !c.is_padding() {
            return usize::from(c.width) > k;
        }
        k += 1;
    }
    false
}

/// Whether the cell before `x` is complete: not a wide character whose
/// padding should have covered `x`.
fn owned_prev_ok(l: &LineRef<'_>, x: usize) -> bool {
    let mut k = 1;
    while k <= x {
        let c = l.get(x - k);
        if !c.is_padding() {
            return usize::from(c.width) <= k;
        }
        k += 1;
    }
    true
}

/// A tab cell: HT to a stop `w` columns on over erased cells of the tab's
/// background; where the default stops do not give that width, one stop
/// is set for it and the defaults put back after.
fn draw_tab(o: &mut Out, l: &LineRef<'_>, sx: usize, x: usize, w: usize) {
    let c = l.get(x);
    let target = x + w;
    let default_stop = ((x / 8) + 1) * 8;
    let natural = if default_stop >= sx - 1 {
        sx - 1
    } else {
        default_stop
    };
    // The cells a tab covers all looked like its first one.
    o.pen(&Cell {
        bg: c.bg,
        ..Cell::DEFAULT
    });
    o.push(b"\x1b[");
    o.num(w);
    o.push(b"X");
    if natural == target {
        o.push(b"\t");
        return;
    }
    o.push(b"\x1b[3g");
    o.col(target);
    o.push(b"\x1bH");
    o.col(x);
    o.push(b"\t\x1b[3g");
    for stop in (8..sx).step_by(8) {
        o.col(stop);
        o.push(b"\x1bH");
    }
    o.col(target);
}

/// Renders the history lines not rendered yet (or rendered as continuing,
/// or not, a line whose wrap has changed since).
fn render_history(emu: &mut Emulator) {
    let s = &mut emu.screen;
    let sx = s.sx();
    let texts = &s.texts;
    let history = &mut s.grid.history;
    let mut pending = false;
    let mut prev_wrapped = false;
    for i in 0..history.len() {
        let continues = i > 0 && prev_wrapped && pending;
        let (wrapped, hit) = match (history.line(i), history.rendered_with(i)) {
            (Some(l), Some((p, c))) if c == continues => (l.wrapped, Some(p)),
            (Some(l), _) => (l.wrapped, None),
            (None, _) => break,
        };
        pending = match hit {
            Some(p) => p,
            None => {
                let Some(l) = history.line(i) else { break };
                let (bytes, p) = render_line(texts, &l, continues, sx);
                history.set_rendered(i, bytes, p, continues);
                p
            }
        };
        prev_wrapped = wrapped;
    }
}

/// Tab stops, region, DECSC state, modes, title, cursor.
fn write_state(emu: &Emulator, o: &mut Out) {
    let s = &emu.screen;
    let (sx, sy) = (s.sx(), s.sy());
    if !s.default_tabs() {
        o.push(b"\x1b[3g");
        for (c, _) in s.tabs.iter().enumerate().filter(|(_, t)| **t) {
            o.cup(0, c);
            o.push(b"\x1bH");
        }
    }
    if (s.rupper, s.rlower) != (0, sy - 1) {
        o.push(b"\x1b[");
        o.num(s.rupper + 1);
        o.push(b";");
        o.num(s.rlower + 1);
        o.push(b"r");
    }
    // DECSC's saved state.
    let (pen, set, g0, g1, cx, cy, origin) = emu.saved_state();
    if !pen.same_pen(&Cell::DEFAULT) || set || g0 || g1 || cx != 0 || cy != 0 || origin {
        if origin {
            o.push(b"\x1b[?6h");
            o.cup(cy.saturating_sub(s.rupper), cx.min(sx - 1));
        } else {
            o.cup(cy.min(sy - 1), cx.min(sx - 1));
        }
        o.push(b"\x1b[0m");
        write_sgr(&pen, &mut o.bytes);
        o.pen = pen;
        o.push(if g0 { b"\x1b(0" } else { b"\x1b(B" });
        o.push(if g1 { b"\x1b)0" } else { b"\x1b)B" });
        o.push(if set { b"\x0e" } else { b"\x0f" });
        o.push(b"\x1b7");
        if origin {
            o.push(b"\x1b[?6l");
        }
    }
    // The cursor, recreating a pending wrap.
    let m = s.mode;
    if m & mode::ORIGIN != 0 {
        o.push(b"\x1b[?6h");
    }
    place_cursor(o, s);
    // The pen and character sets the program is drawing with.
    o.push(b"\x1b[0m");
    write_sgr(&emu.pen, &mut o.bytes);
    o.push(if emu.g0 { b"\x1b(0" } else { b"\x1b(B" });
    o.push(if emu.g1 { b"\x1b)0" } else { b"\x1b)B" });
    o.push(if emu.set { b"\x0e" } else { b"\x0f" });
    if m & mode::KKEYPAD != 0 {
        o.push(b"\x1b=");
    }
    if m & mode::KCURSOR != 0 {
        o.push(b"\x1b[?1h");
    }
    if m & mode::BRACKETPASTE != 0 {
        o.push(b"\x1b[?2004h");
    }
    if m & mode::MOUSE_STANDARD != 0 {
        o.push(b"\x1b[?1000h");
    }
    if m & mode::MOUSE_BUTTON != 0 {
        o.push(b"\x1b[?1002h");
    }
    if m & mode::MOUSE_ALL != 0 {
        o.push(b"\x1b[?1003h");
    }
    if m & mode::MOUSE_UTF8 != 0 {
        o.push(b"\x1b[?1005h");
    }
    if m & mode::MOUSE_SGR != 0 {
        o.push(b"\x1b[?1006h");
    }
    if m & mode::FOCUSON != 0 {
        o.push(b"\x1b[?1004h");
    }
    let blink = m & mode::CURSOR_BLINKING != 0;
    let style = match s.cstyle {
        CursorStyle::Default => 0,
        CursorStyle::Block => 2,
        CursorStyle::Underline => 4,
        CursorStyle::Bar => 6,
    };
    if style != 0 {
        let n = if blink { style - 1 } else { style };
        o.push(format!("\x1b[{n} q").as_bytes());
    } else if blink && m & mode::CURSOR_BLINKING_SET == 0 {
        // Blinking left on by DECSCUSR, then the shape reset.
        o.push(b"\x1b[1 q\x1b[0 q");
    }
    if m & mode::CURSOR_BLINKING_SET != 0 {
        o.push(if blink { b"\x1b[?12h" } else { b"\x1b[?12l" });
    }
    if m & mode::CURSOR == 0 {
        o.push(b"\x1b[?25l");
    }
    if !s.title.is_empty() {
        o.push(b"\x1b]2;");
        o.bytes.extend_from_slice(&s.title);
        o.push(b"\x07");
    }
    if m & mode::INSERT != 0 {
        o.push(b"\x1b[4h");
    }
    if m & mode::WRAP == 0 {
        o.push(b"\x1b[?7l");
    }
}

/// Moves the cursor to `(y, x)` in a terminal whose origin mode and scroll
/// region are the screen's.
pub(crate) fn goto(o: &mut Out, s: &Screen, y: usize, x: usize) {
    if s.mode & mode::ORIGIN == 0 {
        o.cup(y, x);
    } else if y >= s.rupper && y <= s.rlower {
        o.cup(y - s.rupper, x);
    } else {
        // Outside the region in origin mode, where CUP cannot go:
        // DECSTBM homes the cursor to the real top-left, then move.
        o.push(b"\x1b[");
        o.num(s.rupper + 1);
        o.push(b";");
        o.num(s.rlower + 1);
        o.push(b"r");
        if y > 0 {
            o.push(b"\x1b[");
            o.num(y);
            o.push(b"B");
        }
        if x > 0 {
            o.push(b"\x1b[");
            o.num(x);
            o.push(b"C");
        }
    }
}

/// Puts the cursor where the screen has it; a pending wrap (the cursor
/// past the last column) is recreated by redrawing the row's last cell,
/// which leaves G1 as line drawing, SI and the cell's pen in `o`.
pub(crate) fn place_cursor(o: &mut Out, s: &Screen) {
    let sx = s.sx();
    if s.cx >= sx {
        let line = s.grid.line(s.cy);
        let mut x = sx - 1;
        while x > 0 && line.get(x).is_padding() {
            x -= 1;
        }
        let c = line.get(x);
        goto(o, s, s.cy, x);
        // G1 back to line drawing for the redrawn cell.
        o.push(b"\x1b)0\x0f");
        o.shifted = false;
        o.pen(&c);
        let mut text = Vec::new();
        s.texts.push_utf8(c.text, &mut text);
        if c.is_padding() {
            text = b" ".to_vec();
        }
        o.push(&text);
    } else {
        goto(o, s, s.cy, s.cx);
    }
}
