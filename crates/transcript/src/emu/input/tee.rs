//! The emulator's side of the live stream ([`crate::live`]): after each
//! escape sequence, control sequence and OSC, what a terminal must be given
//! to end up as tmux did. Called only while [`Emulator::feed_live`] runs.

use super::{Emulator, OSC};
use crate::live;

/// OSC numbers passed on: titles, colours, hyperlinks, the clipboard.
const OSC_PASSED: [u32; 12] = [0, 1, 2, 4, 8, 10, 11, 12, 52, 104, 110, 111];

/// Measured before a sequence runs: whether it splits a wide character,
/// and how many lines its clear moves into tmux's history.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Pre {
    splits: bool,
    /// It clears the whole screen (ED 2, ED 0 from the top-left corner,
    /// DECCOLM, RIS).
    clears: bool,
    pushes: usize,
}

fn num(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(n.to_string().as_bytes());
}

impl Emulator {
    /// What the stream needs to know before a control sequence (final
    /// byte `b`) runs.
    pub(super) fn tee_pre_csi(&mut self, b: u8) -> Pre {
        if self.discard || !self.split() {
            return Pre::default();
        }
        let clears = match (b, self.interm.as_slice()) {
            (b'J', []) => match self.get(0, 0, 0) {
                2 => true,
                0 => self.screen.cx == 0 && self.screen.cy == 0,
                _ => false,
            },
            (b'h' | b'l', b"?") => (0..self.params.len()).any(|i| self.get(i, 0, -1) == 3),
            _ => false,
        };
        let row_edit = matches!(b, b'@' | b'P' | b'X' | b'K' | b'J');
        let shifted = row_edit && self.tee_shifted.contains(&self.screen.cy);
        Pre {
            splits: self.interm.is_empty() && (shifted || self.edit_splits(b)),
            clears,
            pushes: if clears { live::clear_pushes(self) } else { 0 },
        }
    }

    pub(super) fn tee_pre_esc(&self, b: u8) -> Pre {
        let reset = b == b'c' && self.interm.is_empty() && !self.discard;
        Pre {
            splits: false,
            clears: reset,
            pushes: if reset { live::clear_pushes(self) } else { 0 },
        }
    }

    /// Whether an edit of the cursor's row (final byte `b`) starts inside a
    /// wide character or ends inside one: tmux and a terminal resolve that
    /// differently, so the row is redrawn after it.
    fn edit_splits(&self, b: u8) -> bool {
        let s = &self.screen;
        let (cx, sx) = (s.cx, s.sx());
        let padding = |x: usize| x < sx && s.grid.get_cell(x, s.cy).is_padding();
        let n = self.get(0, 1, 1).max(1) as usize;
        match b {
            b'@' => padding(cx) || (n < sx && padding(sx - n)),
            b'P' | b'X' => padding(cx) || padding(cx.saturating_add(n)),
            b'K' | b'J' => match self.get(0, 0, 0) {
                0 => padding(cx),
                1 => padding(cx + 1),
                _ => false,
            },
            _ => false,
        }
    }

    pub(super) fn tee_esc(&mut self, b: u8, pre: Pre) {
        let Some(mut t) = self.tee.take() else { return };
        if matches!(b, b'c' | b'D' | b'E' | b'M') && self.interm.is_empty() {
            self.tee_shifted.clear();
        }
        if !self.discard {
            match (b, self.interm.as_slice()) {
                (b'c', []) => self.tee_reset(pre.pushes, &mut t),
                (b'D' | b'E' | b'M', []) => {
                    t.extend_from_slice(&[0x1b, b]);
                    live::cursor(self, &mut t);
                }
                (b'H' | b'=' | b'>' | b'7', []) => t.extend_from_slice(&[0x1b, b]),
                (b'8', []) => {
                    t.extend_from_slice(b"\x1b8");
                    live::cursor(self, &mut t);
                    live::pen(self, &mut t);
                }
                (b'8', b"#") => {
                    // tmux fills with default cells; a terminal with its pen.
                    t.extend_from_slice(b"\x1b[0m\x1b#8");
                    live::cursor(self, &mut t);
                    live::pen(self, &mut t);
                }
                (b'0' | b'B', b"(" | b")") => {
                    t.push(0x1b);
                    t.push(self.interm[0]);
                    t.push(b);
                }
                _ => {}
            }
        }
        self.tee = Some(t);
    }

    /// The parameter `i` as tmux read it (`input_get`), as a number to
    /// write back; `None` for a string parameter.
    fn tee_param(&self, i: usize, min: i32, default: i32) -> Option<usize> {
        let n = self.get(i, min, default);
        usize::try_from(n).ok()
    }

    pub(super) fn tee_csi(&mut self, b: u8, pre: Pre) {
        let Some(mut t) = self.tee.take() else { return };
        if self.interm.is_empty() && matches!(b, b'L' | b'M' | b'S' | b'T') || pre.clears {
            self.tee_shifted.clear();
        }
        if b == b'h' || b == b'l' {
            // The alternate screen, DECCOLM: other rows.
            self.tee_shifted.clear();
        }
        if !self.discard && self.params_ok() {
            self.tee_csi_known(b, pre, &mut t);
        }
        self.tee = Some(t);
    }

    /// RIS as tmux does it: the screen into the history, modes, margins,
    /// tab stops, pen and character sets back to their defaults, the
    /// screen cleared; unlike a terminal's RIS, the history stays.
    /// `pushes` lines go into the history first.
    fn tee_reset(&self, pushes: usize, t: &mut Vec<u8>) {
        // DECSTR: modes, margins, pen, character sets, saved cursor.
        t.extend_from_slice(b"\x1b[!p\x1b[0m\x1b(B\x1b)B\x0f\x1b>\x1b[?1l\x1b[?2004l");
        t.extend_from_slice(b"\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1004l\x1b[?1005l\x1b[?1006l");
        t.extend_from_slice(b"\x1b[?6l\x1b[4l\x1b[?7h\x1b[?25h\x1b[r\x1b[3g");
        let sx = self.screen.sx();
        for c in (8..sx).step_by(8) {
            t.extend_from_slice(b"\x1b[1;");
            num(t, c + 1);
            t.extend_from_slice(b"H\x1bH");
        }
        live::clear(self, pushes, t);
    }

    /// Whether the parameters parse as tmux's `input_split` takes them
    /// (`csi_dispatch` ran it; a failure left nothing done).
    fn params_ok(&self) -> bool {
        self.params.len() < 24 || self.param.is_empty()
    }

    fn tee_csi_known(&mut self, b: u8, pre: Pre, t: &mut Vec<u8>) {
        let edit_splits = pre.splits;
        let interm = self.interm.clone();
        match (b, interm.as_slice()) {
            // Cursor movement: where the cursor is now.
            (
                b'A' | b'B' | b'C' | b'D' | b'E' | b'F' | b'G' | b'`' | b'H' | b'f' | b'd' | b'Z',
                [],
            ) => {
                live::cursor(self, t);
            }
            (b'@' | b'L' | b'M' | b'P' | b'S' | b'T' | b'X', []) => {
                let Some(n) = self.tee_param(0, 1, 1) else {
                    return;
                };
                t.extend_from_slice(b"\x1b[");
                num(t, n);
                t.push(b);
                if matches!(b, b'L' | b'M') {
                    live::cursor(self, t);
                }
                if edit_splits {
                    let y = self.screen.cy;
                    self.tee_repair(y, t);
                }
            }
            (b'J' | b'K', []) => {
                let Some(n) = self.tee_param(0, 0, 0) else {
                    return;
                };
                if n > 3 || (b == b'K' && n == 3) {
                    return;
                }
                if b == b'J' && n == 3 && self.get(1, 0, 0) != 0 {
                    return;
                }
                if pre.clears {
                    live::clear(self, pre.pushes, t);
                    return;
                }
                t.extend_from_slice(b"\x1b[");
                num(t, n);
                t.push(b);
                if edit_splits && n != 3 {
                    let y = self.screen.cy;
                    self.tee_repair(y, t);
                }
            }
            (b'g', []) => match self.get(0, 0, 0) {
                0 => t.extend_from_slice(b"\x1b[0g"),
                3 => t.extend_from_slice(b"\x1b[3g"),
                _ => {}
            },
            (b'h' | b'l', []) => {
                for i in 0..self.params.len() {
                    if self.get(i, 0, -1) == 4 {
                        t.extend_from_slice(b"\x1b[4");
                        t.push(b);
                    }
                }
            }
            (b'h' | b'l', b"?") => self.tee_private_modes(b, pre.pushes, t),
            (b'm', []) => live::pen(self, t),
            (b'r', []) => {
                let s = &self.screen;
                t.extend_from_slice(b"\x1b[");
                num(t, s.rupper + 1);
                t.push(b';');
                num(t, s.rlower + 1);
                t.push(b'r');
                live::cursor(self, t);
            }
            (b's', []) => t.extend_from_slice(b"\x1b7"),
            (b'u', []) => {
                t.extend_from_slice(b"\x1b8");
                live::cursor(self, t);
                live::pen(self, t);
            }
            (b'q', b" ") => {
                if let Some(n) = self.tee_param(0, 0, 0).filter(|n| *n <= 6) {
                    t.extend_from_slice(b"\x1b[");
                    num(t, n);
                    t.extend_from_slice(b" q");
                }
            }
            _ => {}
        }
    }

    fn tee_private_modes(&mut self, b: u8, pushes: usize, t: &mut Vec<u8>) {
        for i in 0..self.params.len() {
            let m = self.get(i, 0, -1);
            match m {
                1 | 7 | 12 | 25 | 1000..=1006 | 2004 => {
                    t.extend_from_slice(b"\x1b[?");
                    num(t, m as usize);
                    t.push(b);
                }
                3 => {
                    // DECCOLM: tmux clears and homes; the width stays.
                    live::clear(self, pushes, t);
                }
                6 | 47 | 1047 | 1049 => {
                    t.extend_from_slice(b"\x1b[?");
                    num(t, m as usize);
                    t.push(b);
                    live::cursor(self, t);
                    if m == 1049 {
                        live::pen(self, t);
                    }
                }
                _ => {}
            }
        }
    }

    /// An OSC that ends: passed on, re-terminated with ST, when tmux read
    /// it whole and a terminal shows its effect the same way.
    pub(super) fn tee_osc(&mut self) {
        debug_assert_eq!(self.state, OSC);
        if self.discard || self.input_len != self.input.len() {
            return;
        }
        let digits = self.input.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 4 {
            return;
        }
        let rest = &self.input[digits..];
        if !(rest.is_empty() || rest[0] == b';') {
            return;
        }
        let n: u32 = self.input[..digits]
            .iter()
            .fold(0, |n, c| n * 10 + u32::from(c - b'0'));
        if !OSC_PASSED.contains(&n) || std::str::from_utf8(&self.input).is_err() {
            return;
        }
        let Some(mut t) = self.tee.take() else { return };
        t.extend_from_slice(b"\x1b]");
        t.extend_from_slice(&self.input);
        t.extend_from_slice(b"\x1b\\");
        self.tee = Some(t);
    }
}
