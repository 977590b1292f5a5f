//! The live stream: pane output as the browser's terminal gets it.
//!
//! tmux does not forward a program's bytes to the terminals attached to it;
//! it interprets them and redraws. The page's xterm.js, fed the raw bytes,
//! would interpret them itself and differ from tmux wherever the two
//! disagree (sequences tmux swallows, invalid UTF-8, widths, wide
//! characters erased by half, cursor moves at a pending wrap…). So the
//! runner's model, while it takes the raw bytes, writes a *normalized*
//! stream ([`crate::PaneModel::feed_live`]): what tmux did, in a small
//! canonical vocabulary both ends implement alike (docs/protocol.md §2.3).
//!
//! - Printable ASCII runs, LF, CR, SO/SI and BEL pass as they are.
//! - Characters are written as tmux stored them (U+FFFD or nothing for
//!   invalid UTF-8, per the tmux version); one whose width a terminal may
//!   judge differently (emoji, symbols, zero-width and joined characters) is
//!   followed by the cursor's position.
//! - Every control that moves the cursor is replaced by the cursor's
//!   absolute position after it (`CUP`, origin mode respected; a pending
//!   wrap is recreated by redrawing the row's last cell).
//! - SGR becomes the whole pen (`ESC [ 0 ; … m`); modes, margins, tab
//!   stops, erases, insertions and deletions are re-encoded from their
//!   parsed parameters; an erase or edit that leaves half of a wide
//!   character is followed by the row as tmux holds it.
//! - What tmux swallows is dropped: DCS, APC, PM, SOS, `ESC k`, unknown
//!   escape and control sequences, queries; OSC only passes for titles,
//!   colours, hyperlinks and the clipboard, re-terminated.
//!
//! These functions write the replacement bytes; the emulator
//! ([`crate::emu::input`]) calls them from its handlers when it has a live
//! stream to write. Pure: no I/O.

use crate::emu::grid::LineRef;
use crate::emu::screen::mode;
use crate::emu::{Cell, Emulator};
use crate::snapshot::{Out, goto, place_cursor, render_line, whole, write_sgr};

fn out(bytes: &mut Vec<u8>) -> Out {
    Out {
        bytes: std::mem::take(bytes),
        pen: Cell::DEFAULT,
        shifted: false,
    }
}

/// The whole pen as one SGR (`ESC [ 0 ; … m`).
pub(crate) fn pen(emu: &Emulator, bytes: &mut Vec<u8>) {
    let start = bytes.len();
    write_sgr(&emu.pen, bytes);
    if bytes.len() == start {
        bytes.extend_from_slice(b"\x1b[0m");
    } else {
        // `ESC [` … → `ESC [ 0 ;` …
        bytes.splice(start + 2..start + 2, *b"0;");
    }
}

/// The pen, the character sets and insert mode as the model has them, after
/// bytes that changed them.
fn restore(emu: &Emulator, bytes: &mut Vec<u8>) {
    pen(emu, bytes);
    bytes.extend_from_slice(if emu.g0 { b"\x1b(0" } else { b"\x1b(B" });
    bytes.extend_from_slice(if emu.g1 { b"\x1b)0" } else { b"\x1b)B" });
    bytes.push(if emu.set { 0x0e } else { 0x0f });
    if emu.screen.mode & mode::INSERT != 0 {
        bytes.extend_from_slice(b"\x1b[4h");
    }
}

/// The cursor where the model has it. A pending wrap is recreated by
/// redrawing the last cell of the row, which needs the pen back after.
pub(crate) fn cursor(emu: &Emulator, bytes: &mut Vec<u8>) {
    let s = &emu.screen;
    if s.cx < s.sx() {
        let mut o = out(bytes);
        goto(&mut o, s, s.cy, s.cx);
        *bytes = o.bytes;
        return;
    }
    if s.mode & mode::INSERT != 0 {
        bytes.extend_from_slice(b"\x1b[4l");
    }
    let wrap_off = s.mode & mode::WRAP == 0;
    if wrap_off {
        // Past the edge with autowrap off (set after the wrap was
        // pending): only printing with autowrap on gets a terminal there.
        bytes.extend_from_slice(b"\x1b[?7h");
    }
    let mut o = out(bytes);
    o.pen = Cell {
        attr: 0xffff,
        ..Cell::DEFAULT
    };
    place_cursor(&mut o, s);
    *bytes = o.bytes;
    if wrap_off {
        bytes.extend_from_slice(b"\x1b[?7l");
    }
    restore(emu, bytes);
}

/// Row `y` redrawn from the model, then the cursor and pen: after an erase
/// or edit that split a wide character, which tmux and a terminal resolve
/// differently.
pub(crate) fn repair_row(emu: &Emulator, y: usize, bytes: &mut Vec<u8>) {
    let s = &emu.screen;
    let sx = s.sx();
    let line = s.grid.line(y);
    let l = LineRef::from(line);
    let (row, _) = render_line(&s.texts, &l, false, sx);
    if s.mode & mode::INSERT != 0 {
        bytes.extend_from_slice(b"\x1b[4l");
    }
    bytes.extend_from_slice(b"\x1b[0m\x0f\x1b)0");
    let mut o = out(bytes);
    goto(&mut o, s, y, 0);
    *bytes = o.bytes;
    bytes.extend_from_slice(b"\x1b[2K");
    bytes.extend_from_slice(&row);
    if s.mode & mode::WRAP == 0 {
        bytes.extend_from_slice(b"\x1b[?7l");
    }
    cursor_and_restore(emu, bytes);
}

/// The cell at (`x`, `y`) drawn again, whole (a cell of several
/// characters wrapped in OSC 7761 with tmux's width), then the cursor and
/// pen: after tmux joined to it a character a terminal would have given a
/// cell of its own.
pub(crate) fn redraw_cell(emu: &Emulator, x: usize, y: usize, bytes: &mut Vec<u8>) {
    let s = &emu.screen;
    let c = s.grid.get_cell(x, y);
    if s.mode & mode::INSERT != 0 {
        bytes.extend_from_slice(b"\x1b[4l");
    }
    bytes.extend_from_slice(b"\x1b[0m\x0f\x1b)0");
    let mut o = out(bytes);
    goto(&mut o, s, y, x);
    o.pen = Cell::DEFAULT;
    o.pen(&c);
    let mut text = Vec::new();
    s.texts.push_utf8(c.text, &mut text);
    o.cell_text(&text, usize::from(c.width));
    *bytes = o.bytes;
    cursor_and_restore(emu, bytes);
}

fn cursor_and_restore(emu: &Emulator, bytes: &mut Vec<u8>) {
    let s = &emu.screen;
    if s.cx < s.sx() {
        let mut o = out(bytes);
        goto(&mut o, s, s.cy, s.cx);
        *bytes = o.bytes;
        restore(emu, bytes);
    } else {
        cursor(emu, bytes);
    }
}

/// Whether a terminal may give code point `cp` another width than tmux's
/// `width`: zero-width characters, and wide ones outside the blocks whose
/// width every table since Unicode 9 agrees on (CJK, Hangul, fullwidth
/// forms, the emoji of Unicode 6–8). Such a character is followed by the
/// cursor's position. Narrow characters are narrow everywhere (a
/// variation selector that widens one comes as a join, which is followed
/// by the position too).
pub(crate) fn uncertain_width(cp: u32, width: u8) -> bool {
    match width {
        1 => false,
        2 => {
            !((0x1100..0x1160).contains(&cp)
                || (0x2e80..0x303f).contains(&cp)
                || (0x3041..0x33ff).contains(&cp)
                || (0x3400..0x4dc0).contains(&cp)
                || (0x4e00..0xa4d0).contains(&cp)
                || (0xac00..0xd7a4).contains(&cp)
                || (0xf900..0xfb00).contains(&cp)
                || (0xff00..0xff61).contains(&cp)
                || (0xffe0..0xffe7).contains(&cp)
                || (0x1f300..0x1f650).contains(&cp)
                || (0x20000..0x3fffe).contains(&cp))
        }
        _ => true,
    }
}

/// After a character: the cursor where the model has it, as a column
/// (HPA) when the row did not change.
pub(crate) fn cursor_after(emu: &Emulator, row: usize, bytes: &mut Vec<u8>) {
    let s = &emu.screen;
    if s.cy == row && s.cx < s.sx() {
        let mut o = out(bytes);
        o.col(s.cx);
        *bytes = o.bytes;
    } else {
        cursor(emu, bytes);
    }
}

/// Lines a clear of the screen moves into tmux's history: the rows up to
/// the last one written (tmux's `scroll-on-clear`), on the normal screen
/// with history on.
pub(crate) fn clear_pushes(emu: &Emulator) -> usize {
    let s = &emu.screen;
    if !s.grid.history_on || s.saved.is_some() {
        return 0;
    }
    (0..s.sy())
        .rev()
        .find(|&y| s.grid.line(y).used != 0)
        .map_or(0, |y| y + 1)
}

/// A clear of the whole screen as tmux does it: on the normal screen with
/// history, the `pushes` rows up to the last one written scroll into the
/// history (a terminal's own clear keeps none) and the rest is deleted
/// (DL, which no terminal adds to its scrollback); elsewhere an erase.
/// Then the cursor where the model has it.
pub(crate) fn clear(emu: &Emulator, pushes: usize, bytes: &mut Vec<u8>) {
    let s = &emu.screen;
    if !s.grid.history_on || s.saved.is_some() {
        bytes.extend_from_slice(b"\x1b[2J");
        cursor(emu, bytes);
        return;
    }
    let full = (s.rupper, s.rlower) == (0, s.sy() - 1);
    let mut o = out(bytes);
    if s.mode & mode::ORIGIN != 0 {
        o.push(b"\x1b[?6l");
    }
    if !full {
        o.push(b"\x1b[r");
    }
    if pushes > 0 {
        o.cup(s.sy() - 1, 0);
        o.bytes.extend(std::iter::repeat_n(b'\n', pushes));
    }
    o.cup(0, 0);
    o.push(b"\x1b[");
    o.num(s.sy());
    o.push(b"M");
    if !full {
        o.push(b"\x1b[");
        o.num(s.rupper + 1);
        o.push(b";");
        o.num(s.rlower + 1);
        o.push(b"r");
    }
    if s.mode & mode::ORIGIN != 0 {
        o.push(b"\x1b[?6h");
    }
    *bytes = o.bytes;
    cursor(emu, bytes);
}

/// Whether row `y` holds only what a terminal can (see
/// [`crate::snapshot`]): one that does not is drawn shifted, as tmux draws
/// it, so later writes to it are followed by the row again.
pub(crate) fn row_whole(emu: &Emulator, y: usize) -> bool {
    let s = &emu.screen;
    let line = s.grid.line(y);
    let l = LineRef::from(line);
    whole(&l, l.len().min(s.sx()))
}
