//! Seeding a [`PaneModel`] from tmux's own state (reference §8.5): the
//! decoded replies of `tmux_cc::state::resync_commands` become a model that
//! shows what tmux shows, for panes that existed before the bridge attached
//! and to heal a pane after `%pause`/`%continue`, a resize or any gap.
//!
//! This module owns the order of the rebuild: lines (CRLF between them, none
//! after the last; `-J` lines re-wrap by autowrap), the alternate screen with
//! the saved primary screen, tab stops, scroll region, cursor, modes, title,
//! then the pending bytes tmux had not parsed yet. No I/O.
//!
//! What tmux does not report, and so cannot be restored: the current SGR
//! pen (reset to default), the G0/G1 designations (reset to ASCII), the
//! cursor saved by DECSC outside the alternate screen, and before tmux 3.7
//! bracketed paste (the caller passes what it knew).

use tmux_cc::state::PaneResync;

use crate::emu::Profile;
use crate::pane::{PaneModel, SizeError};

/// Rebuilds a pane from a resync bundle's replies. `bracketed_paste` is used
/// when tmux does not report it (before 3.7): pass the previous model's
/// value, or `false`.
pub fn seed(
    resync: &PaneResync,
    scrollback: usize,
    bracketed_paste: bool,
) -> Result<PaneModel, SizeError> {
    seed_with(resync, scrollback, bracketed_paste, Profile::NEWEST)
}

/// [`seed`] for a pane of the tmux version `profile`.
pub fn seed_with(
    resync: &PaneResync,
    scrollback: usize,
    bracketed_paste: bool,
    profile: Profile,
) -> Result<PaneModel, SizeError> {
    let st = &resync.state;
    let mut m = PaneModel::with_profile(st.width, st.height, scrollback, profile)?;
    let (cols, rows) = m.size();
    // `capture-pane -e` marks line-drawing cells with SO/SI: make G1 the DEC
    // graphics set while the captures are replayed.
    m.feed(b"\x1b)0");
    feed_lines(&mut m, &resync.screen);
    if st.alternate_on {
        // `screen` was history + the alternate screen; the primary screen
        // is the saved grid. Put the saved grid on the primary screen, then
        // enter the alternate screen and draw what the captures ended with.
        let mut alt = PaneModel::with_profile(u32::from(cols), u32::from(rows), 0, profile)?;
        alt.feed(b"\x1b)0");
        feed_lines(&mut alt, &resync.screen);
        m.feed(b"\x1b[0m\x1b[H\x1b[2J");
        feed_lines(&mut m, &resync.saved_screen);
        let (sx, sy) = st.alternate_saved.unwrap_or((0, 0));
        m.feed(
            format!(
                "\x1b[0m\x1b[{};{}H\x1b[?1049h",
                sy.min(u32::from(rows) - 1) + 1,
                sx.min(u32::from(cols) - 1) + 1
            )
            .as_bytes(),
        );
        m.feed(&alt.reset_bytes());
    }
    let mut state = Vec::new();
    state.extend_from_slice(b"\x1b[0m\x1b)B\x0f");
    let default_tabs: Vec<u32> = (8..u32::from(cols)).step_by(8).collect();
    if st.tabs != default_tabs {
        state.extend_from_slice(b"\x1b[3g");
        for &c in st.tabs.iter().filter(|&&c| c < u32::from(cols)) {
            state.extend_from_slice(format!("\x1b[1;{}H\x1bH", c + 1).as_bytes());
        }
    }
    let (upper, lower) = st.scroll_region;
    if (upper, lower) != (0, u32::from(rows) - 1) && upper < lower {
        state.extend_from_slice(format!("\x1b[{};{}r", upper + 1, lower + 1).as_bytes());
    }
    let mut y = st.cursor_y.min(u32::from(rows) - 1);
    if st.origin {
        state.extend_from_slice(b"\x1b[?6h");
        y = y.saturating_sub(upper);
    }
    state.extend_from_slice(
        format!(
            "\x1b[{};{}H",
            y + 1,
            st.cursor_x.min(u32::from(cols) - 1) + 1
        )
        .as_bytes(),
    );
    if st.keypad_cursor {
        state.extend_from_slice(b"\x1b[?1h");
    }
    if st.keypad {
        state.extend_from_slice(b"\x1b=");
    }
    if !st.cursor_visible {
        state.extend_from_slice(b"\x1b[?25l");
    }
    if st.bracketed_paste.unwrap_or(bracketed_paste) {
        state.extend_from_slice(b"\x1b[?2004h");
    }
    let mouse = &st.mouse;
    if mouse.all == Some(true) {
        state.extend_from_slice(b"\x1b[?1003h");
    } else if mouse.button {
        state.extend_from_slice(b"\x1b[?1002h");
    } else if mouse.standard || mouse.any {
        state.extend_from_slice(b"\x1b[?1000h");
    }
    if mouse.utf8 {
        state.extend_from_slice(b"\x1b[?1005h");
    }
    if mouse.sgr {
        state.extend_from_slice(b"\x1b[?1006h");
    }
    if !st.title.is_empty() {
        state.extend_from_slice(b"\x1b]2;");
        state.extend(st.title.iter().copied().filter(|&b| b >= 0x20 && b != 0x7f));
        state.push(0x07);
    }
    if st.insert {
        state.extend_from_slice(b"\x1b[4h");
    }
    if !st.wrap {
        state.extend_from_slice(b"\x1b[?7l");
    }
    m.feed(&state);
    m.feed(&resync.pending);
    Ok(m)
}

/// Writes capture lines with CRLF between them and none after the last (an
/// extra newline would scroll everything by one row).
fn feed_lines(m: &mut PaneModel, lines: &[Vec<u8>]) {
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            m.feed(b"\x1b[0m\r\n");
        }
        m.feed(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tmux_cc::state::{MouseModes, PaneState};
    use tmux_cc::{PaneId, WindowId};

    fn state(cols: u32, rows: u32) -> PaneState {
        PaneState {
            pane: PaneId(0),
            window: WindowId(0),
            width: cols,
            height: rows,
            cursor_x: 0,
            cursor_y: 0,
            cursor_visible: true,
            insert: false,
            keypad_cursor: false,
            keypad: false,
            wrap: true,
            origin: false,
            mouse: MouseModes::default(),
            alternate_on: false,
            alternate_saved: None,
            scroll_region: (0, rows - 1),
            tabs: (8..cols).step_by(8).collect(),
            history_size: 0,
            history_limit: 2000,
            in_mode: false,
            dead: false,
            bracketed_paste: None,
            synchronized_output: None,
            title: Vec::new(),
        }
    }

    #[test]
    fn joined_lines_rewrap_and_no_newline_after_the_last() {
        let mut st = state(10, 3);
        st.cursor_x = 3;
        st.cursor_y = 2;
        let r = PaneResync {
            screen: vec![b"0123456789abc".to_vec(), b"\x1b[31mred".to_vec()],
            saved_screen: vec![],
            state: st,
            pending: b"\x1b[3".to_vec(),
        };
        let mut m = seed(&r, 100, false).expect("valid");
        assert_eq!(m.rows_text(), vec!["0123456789", "abc", "red"]);
        // 3.4+ capture: the row's unwritten cells end in the default colour.
        assert_eq!(m.rows_ansi()[2], "\x1b[31mred\x1b[39m");
        assert_eq!(m.cursor(), (3, 2));
        // The pending bytes continue.
        m.feed(b"2mX");
        assert_eq!(m.rows_ansi()[2], "\x1b[31mred\x1b[32mX\x1b[39m");
    }
}
