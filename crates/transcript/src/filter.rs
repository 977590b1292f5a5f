//! A streaming pre-filter between a pane's raw bytes and the `vt100` parser:
//! it makes `vt100` see what tmux's own terminal emulator sees.
//!
//! It owns these corrections, each tested by name in `pane::tests`:
//!
//! * invalid UTF-8 is dropped byte by byte, as tmux's grid drops it (vt100
//!   would draw U+FFFD) — `vt100_invalid_utf8_dropped`;
//! * DEC special graphics (`ESC ( 0`, `ESC ) 0`, SO, SI), which vt100
//!   ignores: while a graphics set is active, printable bytes `0x20..=0x7e` become the
//!   code points [`ACS_BASE`]` + byte` (Unicode plane-16 private use, which no
//!   icon font uses), so the cell remembers both the ASCII byte tmux's
//!   `capture-pane -p` prints and that it is a line-drawing cell —
//!   `vt100_dec_graphics_line_drawing`;
//! * `CSI s` / `CSI u` become `ESC 7` / `ESC 8` (vt100 ignores them; tmux
//!   saves and restores the cursor) — `vt100_csi_s_u_save_restore_cursor`;
//! * tab stops (HTS, TBC) and RI above a scroll region, which vt100 gets
//!   wrong, are handed to the model as [`Special`] controls because they
//!   depend on the cursor — `vt100_tab_stops_set_and_cleared`,
//!   `vt100_reverse_index_above_region_does_not_scroll`;
//! * IRM (insert mode), which vt100 ignores: each printed character is
//!   preceded by an ICH of its width — `vt100_insert_mode`;
//! * DECAWM off, where vt100 still wraps: the model is handed
//!   [`Special::AfterPrintNoWrap`] — `vt100_autowrap_off_overwrites_last_column`;
//! * it tracks what vt100 keeps private or ignores and a snapshot needs: the
//!   scroll region (DECSTBM).
//!
//! Escape sequences pass through unchanged (their bytes are never
//! translated). No I/O.

/// First code point of the private-use range that stands for DEC graphics
/// cells: a cell holding `ACS_BASE + b` shows DEC graphics character `b`.
pub const ACS_BASE: u32 = 0x10_0000;

/// A control whose effect depends on the cursor, which only the model
/// knows: [`Filter::filter`] stops after it and the caller applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// HT while tab stops differ from every eighth column.
    Tab,
    /// HTS (`ESC H`): set a tab stop at the cursor column.
    SetTab,
    /// TBC (`CSI g`, `CSI 3 g`): clear the stop at the cursor, or all.
    ClearTabs { all: bool },
    /// RIS: tab stops back to every eighth column.
    ResetTabs,
    /// `CSI 3 J`: clear the history (kept by the model, not by vt100).
    ClearHistory,
    /// DECSTBM changed the scroll region (the model decides which rows
    /// scrolled off the top become history).
    Region,
    /// A character was printed while autowrap (DECAWM) is off: vt100 always
    /// wraps, tmux keeps overwriting the last column.
    AfterPrintNoWrap,
    /// RI (`ESC M`) while a scroll region is set: vt100 scrolls the region
    /// even when the cursor is above it; tmux only moves up.
    ReverseIndex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ground,
    /// Inside a UTF-8 sequence: `need` more continuation bytes.
    Utf8 {
        need: u8,
    },
    Esc,
    /// `ESC` followed by an intermediate byte (`(`, `)`, `#`, …).
    EscInter(u8),
    Csi,
    /// OSC, DCS, APC, PM, SOS: until BEL or ST.
    Str,
    /// `ESC` seen inside a string (maybe the start of ST).
    StrEsc,
}

/// The filter's state. Cheap to keep per pane.
#[derive(Debug, Clone)]
pub struct Filter {
    state: State,
    utf8: [u8; 4],
    utf8_len: u8,
    /// CSI parameter and intermediate bytes collected so far (bounded).
    csi: Vec<u8>,
    /// G0 and G1 are DEC special graphics.
    g_graphics: [bool; 2],
    /// SO active (G1 is the current set).
    shifted: bool,
    /// Scroll region, 0-based inclusive rows, `None` when the whole screen.
    pub scroll_region: Option<(u16, u16)>,
    /// Tab stops are not the default ones: HT must be handled by the model.
    pub custom_tabs: bool,
    /// Insert mode (IRM, `CSI 4 h`), which vt100 ignores: each printed
    /// character is preceded by ICH.
    pub insert: bool,
    /// Autowrap off (`CSI ? 7 l`), which vt100 ignores.
    pub nowrap: bool,
    special: Option<Special>,
    /// Input bytes since the parser last left the ground state: an
    /// incomplete UTF-8 character or escape sequence that a snapshot must
    /// carry so the next bytes continue it (bounded by [`PENDING_MAX`]).
    pending: Vec<u8>,
}

/// Longest incomplete sequence a snapshot carries; a longer one (a huge OSC)
/// is cut, and only that sequence can come out differently.
pub const PENDING_MAX: usize = 4096;

impl Default for Filter {
    fn default() -> Self {
        Filter {
            state: State::Ground,
            utf8: [0; 4],
            utf8_len: 0,
            csi: Vec::new(),
            g_graphics: [false, false],
            shifted: false,
            scroll_region: None,
            custom_tabs: false,
            insert: false,
            nowrap: false,
            special: None,
            pending: Vec::new(),
        }
    }
}

const CSI_MAX: usize = 64;

impl Filter {
    /// True when printable ASCII is currently drawn as DEC graphics.
    fn graphics(&self) -> bool {
        self.g_graphics[usize::from(self.shifted)]
    }

    /// The incomplete sequence at the end of the input so far.
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    /// Forgets the scroll region (tmux resets it on resize and on RIS).
    pub fn reset_region(&mut self) {
        self.scroll_region = None;
    }

    /// Filters `input`, appending what vt100 should see to `out`, up to and
    /// including the first [`Special`] control. Returns how many bytes were
    /// consumed and the special control, if one stopped the filter: the
    /// caller feeds `out` to vt100, applies the control, and calls again
    /// with the rest.
    pub fn filter(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        rows: u16,
    ) -> (usize, Option<Special>) {
        out.reserve(input.len());
        for (i, &b) in input.iter().enumerate() {
            self.byte(b, out, rows);
            if self.state == State::Ground {
                self.pending.clear();
            } else if self.pending.len() < PENDING_MAX {
                self.pending.push(b);
            }
            if let Some(s) = self.special.take() {
                return (i + 1, Some(s));
            }
        }
        (input.len(), None)
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>, rows: u16) {
        match self.state {
            State::Ground => self.ground(b, out),
            State::Utf8 { need } => {
                if (0x80..0xc0).contains(&b) {
                    self.utf8[usize::from(self.utf8_len)] = b;
                    self.utf8_len += 1;
                    if need == 1 {
                        let seq = &self.utf8[..usize::from(self.utf8_len)];
                        // Overlong forms and surrogates are invalid too.
                        if let Ok(text) = std::str::from_utf8(seq) {
                            let c = text.chars().next().unwrap_or(' ');
                            let (buf, len) = (self.utf8, usize::from(self.utf8_len));
                            self.print(&buf[..len], char_width(c), out);
                        }
                        self.state = State::Ground;
                    } else {
                        self.state = State::Utf8 { need: need - 1 };
                    }
                } else {
                    // An interrupted sequence is dropped; the byte starts
                    // afresh.
                    self.state = State::Ground;
                    self.ground(b, out);
                }
            }
            State::Esc => {
                // The ESC itself is pushed here, with the byte after it, so
                // that HTS and RI can be taken out whole.
                match b {
                    b'H' => {
                        self.special = Some(Special::SetTab);
                        self.state = State::Ground;
                        return;
                    }
                    b'M' if self.scroll_region.is_some() => {
                        self.special = Some(Special::ReverseIndex);
                        self.state = State::Ground;
                        return;
                    }
                    // Another ESC: the first is abandoned, as vt100 does.
                    0x1b => return,
                    _ => {}
                }
                out.push(0x1b);
                out.push(b);
                match b {
                    b'[' => {
                        self.csi.clear();
                        self.state = State::Csi;
                    }
                    b']' | b'P' | b'_' | b'^' | b'X' => self.state = State::Str,
                    0x20..=0x2f => self.state = State::EscInter(b),
                    b'c' => {
                        // RIS: full reset.
                        self.g_graphics = [false, false];
                        self.shifted = false;
                        self.scroll_region = None;
                        self.custom_tabs = false;
                        self.insert = false;
                        self.nowrap = false;
                        // RIS resets the region too; the model re-reads it.
                        self.special = Some(Special::ResetTabs);
                        self.state = State::Ground;
                    }
                    _ => self.state = State::Ground,
                }
            }
            State::EscInter(i) => {
                out.push(b);
                match (i, b) {
                    (b'(', _) => self.g_graphics[0] = b == b'0',
                    (b')', _) => self.g_graphics[1] = b == b'0',
                    _ => {}
                }
                self.state = if (0x20..=0x2f).contains(&b) {
                    State::EscInter(b)
                } else {
                    State::Ground
                };
            }
            State::Csi => {
                out.push(b);
                match b {
                    0x40..=0x7e => {
                        if b == b'r' {
                            self.decstbm(rows);
                            self.special = Some(Special::Region);
                        } else if b == b'J' && self.csi.as_slice() == b"3" {
                            self.special = Some(Special::ClearHistory);
                        } else if (b == b's' || b == b'u') && self.csi.is_empty() {
                            // SCOSC/SCORC, which vt100 ignores: tmux treats
                            // them as DECSC/DECRC.
                            out.truncate(out.len().saturating_sub(3));
                            out.extend_from_slice(if b == b's' { b"\x1b7" } else { b"\x1b8" });
                        } else if b == b'h' || b == b'l' {
                            self.set_modes(b == b'h');
                        } else if b == b'g' {
                            match self.csi.as_slice() {
                                b"" | b"0" => {
                                    self.special = Some(Special::ClearTabs { all: false })
                                }
                                b"3" => self.special = Some(Special::ClearTabs { all: true }),
                                _ => {}
                            }
                        }
                        self.state = State::Ground;
                    }
                    0x1b => {
                        out.pop();
                        self.state = State::Esc;
                    }
                    0x18 | 0x1a => self.state = State::Ground,
                    _ => {
                        if self.csi.len() < CSI_MAX {
                            self.csi.push(b);
                        }
                    }
                }
            }
            State::Str => {
                out.push(b);
                match b {
                    0x07 | 0x18 | 0x1a => self.state = State::Ground,
                    0x1b => self.state = State::StrEsc,
                    _ => {}
                }
            }
            State::StrEsc => {
                out.push(b);
                self.state = if b == b'\\' {
                    State::Ground
                } else {
                    State::Str
                };
            }
        }
    }

    fn ground(&mut self, b: u8, out: &mut Vec<u8>) {
        match b {
            0x1b => self.state = State::Esc,
            0x09 if self.custom_tabs => self.special = Some(Special::Tab),
            0x0e => {
                self.shifted = true;
                out.push(b);
            }
            0x0f => {
                self.shifted = false;
                out.push(b);
            }
            // Every printable byte drawn under the graphics set carries
            // tmux's charset attribute (spaces too), so all are marked.
            0x20..=0x7e if self.graphics() => {
                let c = char::from_u32(ACS_BASE + u32::from(b)).unwrap_or(char::from(b));
                let mut buf = [0u8; 4];
                let len = c.encode_utf8(&mut buf).len();
                self.print(&buf[..len], 1, out);
            }
            0x20..=0x7e if self.insert || self.nowrap => self.print(&[b], 1, out),
            0x00..=0x7f => out.push(b),
            0xc2..=0xdf => self.start_utf8(b, 1),
            0xe0..=0xef => self.start_utf8(b, 2),
            0xf0..=0xf4 => self.start_utf8(b, 3),
            // Continuation bytes without a lead, C1 bytes, 0xc0, 0xc1 and
            // 0xf5.. are never valid UTF-8: tmux drops them.
            _ => {}
        }
    }

    /// Emits one printable character of display width `width`, with the
    /// corrections for insert mode and autowrap off.
    fn print(&mut self, bytes: &[u8], width: u8, out: &mut Vec<u8>) {
        if self.insert && width > 0 {
            out.extend_from_slice(if width == 2 { b"\x1b[2@" } else { b"\x1b[@" });
        }
        out.extend_from_slice(bytes);
        if self.nowrap && width > 0 {
            self.special = Some(Special::AfterPrintNoWrap);
        }
    }

    /// `CSI [?] Pm h|l`: the modes vt100 does not keep.
    fn set_modes(&mut self, on: bool) {
        let private = self.csi.first() == Some(&b'?');
        let params = if private {
            &self.csi[1..]
        } else {
            &self.csi[..]
        };
        for p in params.split(|&c| c == b';') {
            match (private, p) {
                (false, b"4") => self.insert = on,
                (true, b"7") => self.nowrap = !on,
                _ => {}
            }
        }
    }

    fn start_utf8(&mut self, b: u8, need: u8) {
        self.utf8[0] = b;
        self.utf8_len = 1;
        self.state = State::Utf8 { need };
    }

    /// `CSI top ; bottom r` without private prefix: the region vt100 applies.
    fn decstbm(&mut self, rows: u16) {
        if self
            .csi
            .first()
            .is_some_and(|c| !c.is_ascii_digit() && *c != b';')
        {
            return;
        }
        let mut params = self.csi.split(|&c| c == b';').map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|s| s.parse::<u16>().ok())
                .filter(|&v| v > 0)
        });
        let top = params.next().flatten().unwrap_or(1);
        let bottom = params.next().flatten().unwrap_or(rows).min(rows);
        // vt100 resets to the whole screen when the region is not at least
        // two rows; mirror what vt100 does, since this records its state.
        self.scroll_region = if top < bottom && !(top == 1 && bottom == rows) {
            Some((top - 1, bottom - 1))
        } else {
            None
        };
    }
}

/// Display width of a character as far as insert mode needs it: 0 for
/// combining marks and joiners, 2 for East Asian wide and emoji ranges, else
/// 1. (vt100 has its own table; this only sizes the ICH in insert mode.)
fn char_width(c: char) -> u8 {
    let u = u32::from(c);
    match u {
        0x0300..=0x036f
        | 0x1ab0..=0x1aff
        | 0x1dc0..=0x1dff
        | 0x200b..=0x200f
        | 0x20d0..=0x20ff
        | 0xfe00..=0xfe0f
        | 0xfe20..=0xfe2f
        | 0x1f3fb..=0x1f3ff
        | 0xe0100..=0xe01ef => 0,
        0x1100..=0x115f
        | 0x2e80..=0x303e
        | 0x3041..=0x33ff
        | 0x3400..=0x4dbf
        | 0x4e00..=0x9fff
        | 0xa000..=0xa4cf
        | 0xac00..=0xd7a3
        | 0xf900..=0xfaff
        | 0xfe30..=0xfe4f
        | 0xff00..=0xff60
        | 0xffe0..=0xffe6
        | 0x1f300..=0x1f64f
        | 0x1f900..=0x1f9ff
        | 0x20000..=0x3fffd => 2,
        _ => 1,
    }
}
