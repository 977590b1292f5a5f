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
//! (the padding is erased with ECH before the next cell is drawn), unless
//! only erased blanks follow it on its line: then it is drawn whole, as
//! xterm.js cannot keep half of one (ECH on the second half erases it
//! all). Padding left by an erased character is recreated. An unfinished
//! DCS is replayed without its body (see `push_pending`). A cell of several
//! characters is wrapped in a private OSC that tells the page its width
//! (see `CLUSTER_OSC`).
//!
//! [`PaneModel`]: crate::pane::PaneModel

use crate::emu::capture::colour_codes;
use crate::emu::grid::{COLOUR_DEFAULT, LineRef, Texts, attr, flag};
use crate::emu::screen::{CursorStyle, Screen, mode};
use crate::emu::{Cell, Emulator};

/// A private OSC around a cell of several characters: `OSC 7761 ; W BEL`
/// before it, `OSC 7761 BEL` after. The page (web/src/pane.ts) then puts
/// every character in between into one cell of width W, as tmux has it
/// (a ZWJ sequence, a skin-tone modifier or a VS16 that tmux 3.5+ joins and
/// widens, which xterm.js's Unicode tables split or keep narrow). tmux,
/// the model and other terminals ignore an OSC they do not know.
const CLUSTER_OSC: &[u8] = b"\x1b]7761";

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

    /// A cell's text; one of several characters is wrapped in
    /// [`CLUSTER_OSC`] with its width `w`, so the page lays it out as one
    /// cell of tmux's width whatever its own width table says.
    pub(crate) fn cell_text(&mut self, text: &[u8], w: usize) {
        let cluster = w > 0 && std::str::from_utf8(text).is_ok_and(|t| t.chars().nth(1).is_some());
        if cluster {
            self.push(CLUSTER_OSC);
            self.push(b";");
            self.num(w);
            self.push(b"\x07");
        }
        self.push(text);
        if cluster {
            self.push(CLUSTER_OSC);
            self.push(b"\x07");
        }
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
        push_pending(&mut o.bytes, &emu.pending());
    }
    o.bytes
}

/// The unfinished sequence, so that the terminal fed the reset bytes waits
/// in the same state. A DCS whose body has begun is cut down to its
/// introducer and header (and an ESC the body ended in): tmux lets
/// nothing but `ESC \` end the body, and ignores what it holds, while
/// xterm.js ends a DCS at CAN or SUB (and an ESC followed by anything) and
/// would print what came after (issue 13).
fn push_pending(out: &mut Vec<u8>, pending: &[u8]) {
    let Some(rest) = pending.strip_prefix(b"\x1bP") else {
        out.extend_from_slice(pending);
        return;
    };
    // The header: parameters, intermediates and C0 controls (ignored
    // there, by tmux and xterm.js alike), up to the final byte.
    let Some(end) = rest.iter().position(|b| (0x40..=0x7e).contains(b)) else {
        out.extend_from_slice(pending);
        return;
    };
    out.extend_from_slice(b"\x1bP");
    out.extend(rest[..=end].iter().filter(|b| **b >= 0x20));
    let mut escape = false;
    for &b in &rest[end + 1..] {
        escape = b == 0x1b && !escape;
    }
    if escape {
        out.push(0x1b);
    }
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
    if !continues && !whole(l, len) {
        return render_as_drawn(texts, l, sx, o);
    }
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
            o.cell_text(&text, w);
            let ascii = text.len() == 1 && text[0] < 0x80;
            if !ascii && x + w < sx {
                o.col(x + w);
            }
        }
        // A wide character whose padding was replaced: the next cell
        // starts right after its first column. When nothing but erased
        // blanks follows it on the line (an EL from its second half), it
        // is drawn whole instead: a terminal cannot keep half of a wide
        // character (xterm.js erases all of it), and tmux shows it whole.
        let broken = w >= 2
            && x + 1 < len
            && !l.get(x + 1).is_padding()
            && !(x + 1..len).all(|k| k >= used || blank_erased(&l.get(k)));
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

/// An erased cell of the default background (nothing to draw).
fn blank_erased(c: &Cell) -> bool {
    c.flags & flag::CLEARED != 0 && c.bg == COLOUR_DEFAULT && !c.is_padding()
}

/// Whether a row holds only what a terminal can: every wide character
/// with its padding, no padding without its character.
pub(crate) fn whole(l: &LineRef<'_>, len: usize) -> bool {
    let mut owner_end = 0;
    for x in 0..len {
        let c = l.get(x);
        if c.is_padding() {
            if x >= owner_end {
                return false;
            }
        } else if c.single_cp().is_some_and(|cp| cp > 0x10ffff) {
            // Four bytes tmux 3.5+ keeps as one cell: drawn as four U+FFFD.
            return false;
        } else {
            let w = usize::from(c.width).max(1);
            owner_end = x + w;
            // A tab's cells after the first need not be padding.
            if c.flags & flag::TAB == 0
                && w > 1
                && x + w <= len
                && (x + 1..x + w).any(|p| !l.get(p).is_padding())
            {
                return false;
            }
        }
    }
    true
}

/// A row tmux holds and no terminal can (a wide character whose other
/// half was erased, deleted or overwritten, or padding left without its
/// character), drawn the way tmux draws it on a terminal when it redraws
/// the row (tty_draw_line): the cells in order, padding skipped, each
/// where the one before ended, up to the right edge. That is also what
/// `capture-pane` prints for it.
fn render_as_drawn(texts: &Texts, l: &LineRef<'_>, sx: usize, o: &mut Out) -> (Vec<u8>, bool) {
    let len = l.len().min(sx);
    let used = usize::from(l.used).min(len);
    // The last cell that is written or coloured: beyond it, nothing.
    let end = (0..len)
        .rev()
        .find(|&x| x < used || l.get(x).bg != COLOUR_DEFAULT)
        .map_or(0, |x| x + 1);
    let mut vx = 0;
    let mut text = Vec::new();
    for x in 0..end {
        let c = l.get(x);
        if c.is_padding() {
            continue;
        }
        let blank = x >= used || c.flags & flag::CLEARED != 0;
        let w = if blank {
            1
        } else {
            usize::from(c.width).max(1)
        };
        if vx + w > sx {
            break;
        }
        text.clear();
        if blank || c.flags & flag::TAB != 0 {
            o.pen(&Cell {
                bg: c.bg,
                ..Cell::DEFAULT
            });
            text.extend(std::iter::repeat_n(b' ', w));
        } else {
            o.pen(&c);
            texts.push_utf8(c.text, &mut text);
        }
        let mut w = w;
        if std::str::from_utf8(&text).is_err() {
            // What a terminal makes of bytes that are not UTF-8 (a code
            // point past U+10FFFF tmux 3.5+ keeps): U+FFFD each.
            let shown = String::from_utf8_lossy(&text).into_owned();
            w = shown.chars().count();
            if vx + w > sx {
                break;
            }
            text = shown.into_bytes();
        }
        o.cell_text(&text, w);
        vx += w;
        if !(text.len() == 1 && text[0] < 0x80) && vx < sx {
            o.col(vx);
        }
    }
    o.default_pen();
    (std::mem::take(&mut o.bytes), vx >= sx)
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

#[cfg(test)]
mod tests {
    use crate::emu::Profile;
    use crate::pane::PaneModel;

    fn model() -> PaneModel {
        PaneModel::with_profile(20, 4, 100, Profile::parse("3.3")).expect("size")
    }

    /// The model after `bytes`, and a fresh one fed its reset bytes.
    fn both(bytes: &[u8]) -> (PaneModel, PaneModel, Vec<u8>) {
        let mut m = model();
        m.feed(bytes);
        let reset = m.reset_bytes();
        let mut fresh = model();
        fresh.feed(&reset);
        (m, fresh, reset)
    }

    #[test]
    fn an_unfinished_dcs_is_replayed_without_its_body() {
        // tmux keeps swallowing past CAN and SUB; the body is not replayed
        // (xterm.js would end the DCS at CAN and print the rest).
        let (mut m, mut fresh, reset) = both(b"before \x1bPq#0;2\x18after\x1a\x1bxy");
        assert!(
            reset.ends_with(b"\x1bPq"),
            "{:?}",
            String::from_utf8_lossy(&reset)
        );
        assert!(!reset.windows(5).any(|w| w == b"after"));
        for p in [&mut m, &mut fresh] {
            p.feed(b"more\x1b\\X");
        }
        assert_eq!(fresh.rows_text(), m.rows_text());
        assert_eq!(m.rows_text()[0], "before X");
        assert_eq!(fresh.cursor(), m.cursor());
    }

    #[test]
    fn a_dcs_body_ending_in_esc_keeps_the_esc() {
        let (mut m, mut fresh, reset) = both(b"a\x1bP1$rbody\x1b");
        assert!(
            reset.ends_with(b"\x1bP1$r\x1b"),
            "{:?}",
            String::from_utf8_lossy(&reset)
        );
        for p in [&mut m, &mut fresh] {
            p.feed(b"\\Z");
        }
        assert_eq!(fresh.rows_text(), m.rows_text());
        assert_eq!(m.rows_text()[0], "aZ");
    }

    #[test]
    fn a_dcs_still_in_its_header_is_replayed_as_is() {
        let (_, _, reset) = both(b"\x1bP1;2");
        assert!(reset.ends_with(b"\x1bP1;2"));
    }

    #[test]
    fn a_cell_of_several_characters_is_marked_with_its_width() {
        // 3.5 joins a skin tone into its base's cell and widens a VS16
        // sequence: the page is told the cell and its width.
        let mut m = PaneModel::with_profile(20, 4, 100, Profile::parse("3.5")).expect("size");
        m.feed("[👍🏽][❤\u{fe0f}][x]".as_bytes());
        let reset = m.reset_bytes();
        let text = String::from_utf8_lossy(&reset);
        assert!(text.contains("\x1b]7761;2\x07👍🏽\x1b]7761\x07"), "{text:?}");
        assert!(
            text.contains("\x1b]7761;2\x07❤\u{fe0f}\x1b]7761\x07"),
            "{text:?}"
        );
        assert!(!text.contains("\x1b]7761;1"), "{text:?}");
        let mut fresh = PaneModel::with_profile(20, 4, 100, Profile::parse("3.5")).expect("size");
        fresh.feed(&reset);
        assert_eq!(fresh.rows_text(), m.rows_text());
        assert_eq!(fresh.cursor(), m.cursor());
    }

    #[test]
    fn a_wide_character_erased_from_its_second_half_to_the_end_is_drawn_whole() {
        // EL from the second half of 本: tmux shows 本 whole; drawing it
        // whole is what keeps it in xterm.js (ECH there erases all of it).
        let (m, fresh, reset) = both("日本語|\x1b[1;4H\x1b[K".as_bytes());
        assert_eq!(m.rows_text()[0], "日本");
        assert_eq!(fresh.rows_text(), m.rows_text());
        assert_eq!(fresh.cursor(), m.cursor());
        let text = String::from_utf8_lossy(&reset);
        assert!(text.contains("本"), "{text:?}");
        assert!(
            !text.contains("\x1b[X"),
            "no ECH over its padding: {text:?}"
        );
    }
}
