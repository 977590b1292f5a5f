//! Pane state for resync (reference §8): the state-dump format, its parser,
//! the one-line resync command bundle, and the decoder for `capture-pane -C`
//! output.
//!
//! Owns the format text and its parsing; does no I/O. The bridge sends
//! [`resync_commands`], keeps the replies, and turns them into a
//! [`PaneResync`] with [`PaneResync::from_replies`].

use crate::command::{self, CaptureOptions, CommandLine, PaneFlow, Target};
use crate::event::Reply;
use crate::ids::{PaneId, WindowId};
use crate::parser::octal3;

/// The state dump, for `display-message -p -t %P` (or `list-panes -F`).
///
/// Fields are `key=value` separated by single spaces; every value but the
/// title is numeric or a comma list, so none holds a space. `pane_title` is
/// last because it may contain anything (spaces, `=`, even the separator).
/// Variables a tmux version does not know expand to the empty string
/// (`bracket_paste_flag` and `synchronized_output_flag` are 3.7+), which
/// [`PaneState::parse`] reads as `None`.
pub const PANE_STATE_FORMAT: &str = concat!(
    "pane_id=#{pane_id} window_id=#{window_id} pane_width=#{pane_width} pane_height=#{pane_height}",
    " cursor_x=#{cursor_x} cursor_y=#{cursor_y} cursor_flag=#{cursor_flag} insert_flag=#{insert_flag}",
    " keypad_cursor_flag=#{keypad_cursor_flag} keypad_flag=#{keypad_flag} wrap_flag=#{wrap_flag}",
    " origin_flag=#{origin_flag} mouse_standard_flag=#{mouse_standard_flag}",
    " mouse_button_flag=#{mouse_button_flag} mouse_any_flag=#{mouse_any_flag}",
    " mouse_all_flag=#{mouse_all_flag} mouse_utf8_flag=#{mouse_utf8_flag} mouse_sgr_flag=#{mouse_sgr_flag}",
    " alternate_on=#{alternate_on} alternate_saved_x=#{alternate_saved_x}",
    " alternate_saved_y=#{alternate_saved_y} scroll_region_upper=#{scroll_region_upper}",
    " scroll_region_lower=#{scroll_region_lower} pane_tabs=#{pane_tabs} history_size=#{history_size}",
    " history_limit=#{history_limit} pane_in_mode=#{pane_in_mode} pane_dead=#{pane_dead}",
    " bracket_paste_flag=#{bracket_paste_flag} synchronized_output_flag=#{synchronized_output_flag}",
    " pane_title=#{pane_title}"
);

const TITLE_KEY: &[u8] = b"pane_title=";

/// Why a state line or a resync reply could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    #[error("state line has no pane_title field")]
    NoTitle,
    #[error("state field {0} is missing")]
    Missing(&'static str),
    #[error("state field {key} has invalid value {value:?}")]
    BadValue { key: &'static str, value: String },
    #[error("resync expected {expected} replies, got {got}")]
    ReplyCount { expected: usize, got: usize },
    #[error("resync command {index} failed: {text}")]
    CommandFailed { index: usize, text: String },
}

/// Mouse reporting modes the program enabled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MouseModes {
    /// `?1000`
    pub standard: bool,
    /// `?1002`
    pub button: bool,
    /// Some mouse mode is on (tmux's `mouse_any_flag` covers `?1000`,
    /// `?1002` and `?1003`).
    pub any: bool,
    /// `?1003`, all motion (`mouse_all_flag`; `None` if a version lacks it).
    pub all: Option<bool>,
    /// `?1005`
    pub utf8: bool,
    /// `?1006`
    pub sgr: bool,
}

/// A pane's terminal state as tmux reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaneState {
    pub pane: PaneId,
    pub window: WindowId,
    pub width: u32,
    pub height: u32,
    /// 0-based column.
    pub cursor_x: u32,
    /// 0-based row.
    pub cursor_y: u32,
    /// Cursor visible (`?25`).
    pub cursor_visible: bool,
    /// Insert mode (IRM).
    pub insert: bool,
    /// Application cursor keys (DECCKM).
    pub keypad_cursor: bool,
    /// Application keypad (DECKPAM).
    pub keypad: bool,
    /// Autowrap (DECAWM).
    pub wrap: bool,
    /// Origin mode (DECOM).
    pub origin: bool,
    pub mouse: MouseModes,
    /// The alternate screen is active.
    pub alternate_on: bool,
    /// Cursor saved when the alternate screen was entered (`None` if not).
    pub alternate_saved: Option<(u32, u32)>,
    /// Scroll region, 0-based inclusive rows `(upper, lower)`.
    pub scroll_region: (u32, u32),
    /// Tab stops (columns).
    pub tabs: Vec<u32>,
    pub history_size: u32,
    pub history_limit: u32,
    /// The pane is in a mode (copy, view…): typed keys go to the mode.
    pub in_mode: bool,
    pub dead: bool,
    /// Bracketed paste (`?2004`); `None` before tmux 3.7.
    pub bracketed_paste: Option<bool>,
    /// Synchronized output (`?2026`); `None` before tmux 3.7.
    pub synchronized_output: Option<bool>,
    /// The title, bytes as tmux printed them.
    pub title: Vec<u8>,
}

/// The `key=value` fields before the title.
struct Fields<'a>(Vec<(&'a [u8], &'a [u8])>);

impl<'a> Fields<'a> {
    fn raw(&self, key: &'static str) -> Option<&'a [u8]> {
        self.0
            .iter()
            .find(|(k, _)| *k == key.as_bytes())
            .map(|(_, v)| *v)
    }

    fn text(&self, key: &'static str) -> Result<&'a str, StateError> {
        let v = self.raw(key).ok_or(StateError::Missing(key))?;
        std::str::from_utf8(v).map_err(|_| bad(key, v))
    }

    fn num(&self, key: &'static str) -> Result<u32, StateError> {
        let v = self.text(key)?;
        v.parse().map_err(|_| bad(key, v.as_bytes()))
    }

    fn flag(&self, key: &'static str) -> Result<bool, StateError> {
        match self.text(key)? {
            "0" => Ok(false),
            "1" => Ok(true),
            v => Err(bad(key, v.as_bytes())),
        }
    }

    /// A flag older tmux versions print as empty (or do not print).
    fn opt_flag(&self, key: &'static str) -> Result<Option<bool>, StateError> {
        match self.raw(key) {
            None | Some(b"") => Ok(None),
            Some(_) => self.flag(key).map(Some),
        }
    }

    /// A coordinate tmux prints as UINT_MAX (or -1) when unset.
    fn opt_coord(&self, key: &'static str) -> Result<Option<u32>, StateError> {
        match self.text(key)? {
            "" | "-1" | "4294967295" => Ok(None),
            v => v.parse().map(Some).map_err(|_| bad(key, v.as_bytes())),
        }
    }
}

fn bad(key: &'static str, v: &[u8]) -> StateError {
    StateError::BadValue {
        key,
        value: String::from_utf8_lossy(v).into_owned(),
    }
}

impl PaneState {
    /// Parses the output of [`PANE_STATE_FORMAT`] (one reply's text; a title
    /// holding a newline spans lines, so pass [`Reply::text`]). Unknown keys
    /// are ignored.
    pub fn parse(line: &[u8]) -> Result<PaneState, StateError> {
        let (head, title) = if let Some(t) = line.strip_prefix(TITLE_KEY) {
            (&line[..0], t)
        } else {
            let mut pat = Vec::with_capacity(TITLE_KEY.len() + 1);
            pat.push(b' ');
            pat.extend_from_slice(TITLE_KEY);
            let pos = memchr::memmem::find(line, &pat).ok_or(StateError::NoTitle)?;
            (&line[..pos], &line[pos + pat.len()..])
        };
        let fields = Fields(
            head.split(|&b| b == b' ')
                .filter(|f| !f.is_empty())
                .map(|f| match f.iter().position(|&b| b == b'=') {
                    Some(p) => (&f[..p], &f[p + 1..]),
                    None => (f, &f[f.len()..]),
                })
                .collect(),
        );
        let pane_text = fields.text("pane_id")?;
        let pane = PaneId::parse_bytes(pane_text.as_bytes())
            .ok_or_else(|| bad("pane_id", pane_text.as_bytes()))?;
        let window_text = fields.text("window_id")?;
        let window = WindowId::parse_bytes(window_text.as_bytes())
            .ok_or_else(|| bad("window_id", window_text.as_bytes()))?;
        let tabs_text = fields.text("pane_tabs")?;
        let tabs = if tabs_text.is_empty() {
            Vec::new()
        } else {
            tabs_text
                .split(',')
                .map(|t| {
                    t.parse::<u32>()
                        .map_err(|_| bad("pane_tabs", tabs_text.as_bytes()))
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        let saved_x = fields.opt_coord("alternate_saved_x")?;
        let saved_y = fields.opt_coord("alternate_saved_y")?;
        Ok(PaneState {
            pane,
            window,
            width: fields.num("pane_width")?,
            height: fields.num("pane_height")?,
            cursor_x: fields.num("cursor_x")?,
            cursor_y: fields.num("cursor_y")?,
            cursor_visible: fields.flag("cursor_flag")?,
            insert: fields.flag("insert_flag")?,
            keypad_cursor: fields.flag("keypad_cursor_flag")?,
            keypad: fields.flag("keypad_flag")?,
            wrap: fields.flag("wrap_flag")?,
            origin: fields.flag("origin_flag")?,
            mouse: MouseModes {
                standard: fields.flag("mouse_standard_flag")?,
                button: fields.flag("mouse_button_flag")?,
                any: fields.flag("mouse_any_flag")?,
                all: fields.opt_flag("mouse_all_flag")?,
                utf8: fields.flag("mouse_utf8_flag")?,
                sgr: fields.flag("mouse_sgr_flag")?,
            },
            alternate_on: fields.flag("alternate_on")?,
            alternate_saved: saved_x.zip(saved_y),
            scroll_region: (
                fields.num("scroll_region_upper")?,
                fields.num("scroll_region_lower")?,
            ),
            tabs,
            history_size: fields.num("history_size")?,
            history_limit: fields.num("history_limit")?,
            in_mode: fields.flag("pane_in_mode")?,
            dead: fields.flag("pane_dead")?,
            bracketed_paste: fields.opt_flag("bracket_paste_flag")?,
            synchronized_output: fields.opt_flag("synchronized_output_flag")?,
            title: title.to_vec(),
        })
    }
}

/// How many replies [`resync_commands`] produces without `continue` (one
/// more with it).
pub const RESYNC_REPLIES: usize = 4;

/// The resync bundle for one pane, as **one line** so tmux runs it in one
/// pass with no pane reads in between (reference §8.5):
///
/// 1. `capture-pane -p -e -C -J -N -q -t %P -S -<history_lines>`: history and
///    the current screen (the alternate one if `alternate_on`);
/// 2. `capture-pane -p -e -C -J -N -q -a -t %P`: the *saved* grid, i.e. the
///    primary screen while the alternate screen is on (empty otherwise);
/// 3. `display-message -p -t %P` with [`PANE_STATE_FORMAT`];
/// 4. `capture-pane -p -P -C -t %P`: bytes tmux has read but not parsed;
/// 5. if `continue_after`: `refresh-client -A '%P:continue'`.
///
/// `%output` for the pane that arrives before the first reply is already in
/// the capture and must be dropped; everything after applies normally.
pub fn resync_commands(pane: PaneId, history_lines: u32, continue_after: bool) -> CommandLine {
    let screen = CaptureOptions {
        escapes: true,
        octal: true,
        join: true,
        trailing_spaces: true,
        quiet: true,
        ..CaptureOptions::default()
    };
    let first = command::capture_pane(
        pane,
        CaptureOptions {
            history: Some(history_lines),
            ..screen
        },
    );
    let mut rest = vec![
        command::capture_pane(
            pane,
            CaptureOptions {
                alternate: true,
                ..screen
            },
        ),
        command::display_message_const(&Target::Pane(pane), PANE_STATE_FORMAT),
        command::capture_pane(
            pane,
            CaptureOptions {
                pending: true,
                octal: true,
                ..CaptureOptions::default()
            },
        ),
    ];
    if continue_after {
        rest.push(command::pane_flow(pane, PaneFlow::Continue));
    }
    command::join_nonempty(first, rest)
}

/// The decoded replies of a [`resync_commands`] bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaneResync {
    /// The history, then the current screen's rows, one entry per (`-J`
    /// joined) line, escapes decoded: bytes to feed a terminal model with
    /// `\r\n` between lines. While the alternate screen is on, the history
    /// is still the primary screen's and the rows are the alternate
    /// screen's (verified on 3.3a: see the `resync` fixture).
    pub screen: Vec<Vec<u8>>,
    /// The saved grid: the primary screen's rows while `alternate_on`;
    /// empty when there is none.
    pub saved_screen: Vec<Vec<u8>>,
    pub state: PaneState,
    /// Input tmux had read but not parsed yet (an incomplete sequence).
    pub pending: Vec<u8>,
}

impl PaneResync {
    /// Reads the replies of one bundle (the 4 or 5 blocks with flags 1, in
    /// order). A failed capture or state command is an error; a failed
    /// `continue` is not (the pane may have closed).
    ///
    /// tmux skips the rest of a line after a failed command, so a failure
    /// (e.g. the pane is gone) usually comes with fewer replies.
    pub fn from_replies(replies: &[Reply]) -> Result<PaneResync, StateError> {
        for (index, r) in replies.iter().take(RESYNC_REPLIES).enumerate() {
            if !r.success {
                return Err(StateError::CommandFailed {
                    index,
                    text: String::from_utf8_lossy(&r.text()).into_owned(),
                });
            }
        }
        if replies.len() != RESYNC_REPLIES && replies.len() != RESYNC_REPLIES + 1 {
            return Err(StateError::ReplyCount {
                expected: RESYNC_REPLIES,
                got: replies.len(),
            });
        }
        let lines = |r: &Reply| {
            r.lines
                .iter()
                .map(|l| decode_capture_escapes(l))
                .collect::<Vec<_>>()
        };
        let mut pending = Vec::new();
        for l in &replies[3].lines {
            pending.extend_from_slice(&decode_capture_escapes(l));
        }
        Ok(PaneResync {
            screen: lines(&replies[0]),
            saved_screen: lines(&replies[1]),
            state: PaneState::parse(&replies[2].text())?,
            pending,
        })
    }
}

/// Decodes `capture-pane -C` text: `\\` → `\`, `\ooo` (three octal digits,
/// value ≤ 0o377) → that byte; any other byte, including a lone `\`, is
/// kept. With `-e -C` the SGR introducer arrives as the text `\033[`; with
/// `-P -C` every control byte, `\` and byte ≥ 0x80 is `\ooo` (§8.3).
pub fn decode_capture_escapes(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        if b == b'\\' {
            if text.get(i + 1) == Some(&b'\\') {
                out.push(b'\\');
                i += 2;
                continue;
            }
            if let Some(v) = octal3(&text[i + 1..]) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests;
