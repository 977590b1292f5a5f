use super::*;

/// The expectations below were taken from tmux 3.3a.
fn model(cols: u32, rows: u32) -> PaneModel {
    PaneModel::with_profile(cols, rows, 100, Profile::parse("3.3a")).expect("valid size")
}

fn fed(cols: u32, rows: u32, bytes: &[u8]) -> PaneModel {
    let mut m = model(cols, rows);
    m.feed(bytes);
    m
}

/// Rebuilds `m` from its reset bytes in a fresh model of the same size and
/// checks every observable: rows (with attributes), scrollback, cursor,
/// modes and title; and that the reset bytes are a fixed point.
fn check_reset_round_trip(m: &mut PaneModel) {
    let bytes = m.reset_bytes();
    let (c, r) = m.size();
    let mut fresh = PaneModel::with_profile(
        u32::from(c),
        u32::from(r),
        m.scrollback_limit(),
        m.profile(),
    )
    .expect("size");
    fresh.feed(&bytes);
    assert_eq!(fresh.rows_ansi(), m.rows_ansi(), "rows with attributes");
    assert_eq!(fresh.cursor(), m.cursor(), "cursor");
    assert_eq!(
        fresh.scrollback_len(),
        m.scrollback_len(),
        "scrollback length"
    );
    assert_eq!(fresh.title(), m.title());
    let (a, b) = (fresh.screen(), m.screen());
    assert_eq!(a.alternate_screen(), b.alternate_screen());
    assert_eq!(a.hide_cursor(), b.hide_cursor());
    assert_eq!(a.application_cursor(), b.application_cursor());
    assert_eq!(a.application_keypad(), b.application_keypad());
    assert_eq!(a.bracketed_paste(), b.bracketed_paste());
    assert_eq!(a.mouse_tracking(), b.mouse_tracking());
    assert_eq!(a.mouse_encoding(), b.mouse_encoding());
    // A line's allocated width (tmux's `cellsize`, which 3.4+'s
    // `capture-pane -e` shows as a trailing reset) depends on how it was
    // written, so the bytes are a fixed point from the first rebuild on.
    let again = fresh.reset_bytes();
    let mut third = PaneModel::with_profile(
        u32::from(c),
        u32::from(r),
        m.scrollback_limit(),
        m.profile(),
    )
    .expect("size");
    third.feed(&again);
    assert_eq!(third.reset_bytes(), again, "reset bytes are a fixed point");
}

#[test]
fn sizes_are_checked_before_allocating() {
    assert!(PaneModel::new(0, 24, 10).is_err());
    assert!(PaneModel::new(80, 0, 10).is_err());
    assert!(PaneModel::new(1001, 24, 10).is_err());
    assert!(PaneModel::new(80, u32::MAX, 10).is_err());
    assert!(PaneModel::new(1000, 1000, 0).is_ok());
    let mut m = model(10, 5);
    assert_eq!(m.resize(0, 5), Err(SizeError { cols: 0, rows: 5 }));
    assert_eq!(m.size(), (10, 5));
}

#[test]
fn text_rows_drop_trailing_spaces() {
    let m = fed(20, 3, b"hello   \r\nworld");
    assert_eq!(m.rows_text(), vec!["hello", "world", ""]);
    assert_eq!(m.cursor(), (5, 1));
}

#[test]
fn vt100_invalid_utf8_dropped() {
    // tmux's grid drops invalid bytes: `café \xffx` captures as `café x`.
    let m = fed(20, 2, b"caf\xc3\xa9 \xffx \xc3(y \xe2\x94z\x80");
    assert_eq!(m.rows_text()[0], "café x (y z");
}

#[test]
fn vt100_utf8_split_across_feeds() {
    let mut m = model(10, 1);
    for b in "é€😀".as_bytes() {
        m.feed(&[*b]);
    }
    assert_eq!(m.rows_text()[0], "é€😀");
}

#[test]
fn vt100_dec_graphics_line_drawing() {
    // As verified against tmux 3.3a: `capture-pane -p` prints the ASCII
    // bytes, `-e` wraps them in SO/SI.
    let m = fed(20, 1, b"a\x1b(0qqx\x1b(Bb");
    assert_eq!(m.rows_text()[0], "aqqxb");
    assert_eq!(m.rows_ansi()[0], "a\x0eqqx\x0fb");
    let m = fed(20, 1, b"\x1b)0a\x0elqk\x0fb");
    assert_eq!(m.rows_text()[0], "alqkb");
    // Escape sequences are never translated.
    let m = fed(20, 1, b"\x1b(0\x1b[31mq\x1b(B");
    assert_eq!(m.rows_ansi()[0], "\x1b[31m\x0eq");
}

#[test]
fn vt100_dec_graphics_survive_reset() {
    let mut m = fed(20, 2, b"a\x1b(0lqqk\x1b(Bb\r\n\x1b(0x");
    check_reset_round_trip(&mut m);
    let bytes = m.reset_bytes();
    assert!(
        bytes.windows(3).any(|w| w == b"\x1b(0"),
        "line drawing is sent as DEC graphics"
    );
}

#[test]
fn private_use_stand_in_is_one_cell_wide() {
    let m = fed(10, 1, b"\x1b(0qqq\x1b(Bx");
    assert_eq!(m.cursor(), (4, 0));
}

#[test]
fn ansi_rows_follow_tmux_capture_e() {
    // Observed from tmux 3.3a `capture-pane -p -e` for this input.
    let m = fed(
        40,
        2,
        b"\x1b[31mred\x1b[1mbold\x1b[0m x\r\n\x1b[44m  bg  \x1b[0m",
    );
    assert_eq!(
        m.rows_ansi(),
        vec![
            "\x1b[31mred\x1b[1mbold\x1b[0m\x1b[39m\x1b[49m x",
            "\x1b[44m  bg"
        ]
    );
}

#[test]
fn ansi_colours_use_tmux_codes() {
    let m = fed(
        40,
        1,
        b"\x1b[92ma\x1b[38;5;200mb\x1b[38;2;1;2;3mc\x1b[48;5;17md",
    );
    assert_eq!(
        m.rows_ansi()[0],
        "\x1b[92ma\x1b[38;5;200mb\x1b[38;2;1;2;3mc\x1b[48;5;17md"
    );
}

#[test]
fn never_answers_queries_and_ignores_them() {
    let mut m = fed(20, 2, b"ab");
    m.feed(b"\x1b[c\x1b[6n\x1b]11;?\x07\x1b[>c");
    assert_eq!(m.rows_text(), vec!["ab", ""]);
    assert_eq!(m.cursor(), (2, 0));
}

#[test]
fn chunking_changes_nothing() {
    let input: &[u8] = b"\x1b[1;31mhi\x1b[0m \xc3\xa9\x1b(0q\x1b(B\x1b]2;t\x07\r\nnext\x1b[2;3H!";
    let whole = fed(20, 3, input);
    for cut in 0..input.len() {
        let mut m = model(20, 3);
        m.feed(&input[..cut]);
        m.feed(&input[cut..]);
        assert_eq!(m.rows_ansi(), whole.rows_ansi(), "cut at {cut}");
        assert_eq!(m.cursor(), whole.cursor());
        assert_eq!(m.title(), whole.title());
    }
}

#[test]
fn reset_reproduces_scrollback_and_attributes() {
    let mut m = model(10, 3);
    for i in 0..30 {
        m.feed(format!("\x1b[3{}mline {i}\x1b[0m\r\n", i % 8).as_bytes());
    }
    m.feed(b"a long line that wraps twice");
    assert_eq!(m.scrollback_len(), 30);
    check_reset_round_trip(&mut m);
}

#[test]
fn reset_reproduces_alternate_screen_and_saved_normal_screen() {
    let mut m = fed(
        20,
        4,
        b"normal 1\r\nnormal 2\x1b[?1049h\x1b[2;5Halt text\x1b[?25l",
    );
    assert!(m.screen().alternate_screen());
    check_reset_round_trip(&mut m);
    let mut fresh = model(20, 4);
    fresh.feed(&m.reset_bytes());
    // Leaving the alternate screen in both gives the same normal screen and
    // the saved cursor.
    fresh.feed(b"\x1b[?1049l");
    m.feed(b"\x1b[?1049l");
    assert_eq!(fresh.rows_text(), m.rows_text());
    assert_eq!(fresh.rows_text()[1], "normal 2");
    assert_eq!(fresh.cursor(), m.cursor());
}

#[test]
fn reset_reproduces_modes_title_and_region() {
    let mut m = fed(
        20,
        6,
        b"\x1b[?1h\x1b=\x1b[?2004h\x1b[?1002h\x1b[?1006h\x1b[4 q\x1b]2;My Title\x07\x1b[2;4r\x1b[3;2Hx\x1b[1;33m",
    );
    check_reset_round_trip(&mut m);
    let mut fresh = model(20, 6);
    fresh.feed(&m.reset_bytes());
    // The region is live: a newline at its bottom scrolls only inside it.
    for x in [&mut m, &mut fresh] {
        x.feed(b"\x1b[4;1Hbottom\nnext");
    }
    assert_eq!(fresh.rows_text(), m.rows_text());
    assert_eq!(
        fresh.screen().cursor_style(),
        (crate::emu::CursorStyle::Underline, false)
    );
    // The pen carries over to new text.
    assert_eq!(fresh.rows_ansi(), m.rows_ansi());
}

#[test]
fn reset_keeps_a_cursor_waiting_to_wrap() {
    let mut m = fed(5, 2, b"abcde");
    check_reset_round_trip(&mut m);
    let mut fresh = model(5, 2);
    fresh.feed(&m.reset_bytes());
    fresh.feed(b"f");
    m.feed(b"f");
    assert_eq!(fresh.rows_text(), vec!["abcde", "f"]);
    assert_eq!(m.rows_text(), fresh.rows_text());
}

#[test]
fn wide_characters_take_two_cells() {
    let mut m = fed(6, 2, "日本語x".as_bytes());
    assert_eq!(m.rows_text(), vec!["日本語", "x"]);
    check_reset_round_trip(&mut m);
}

#[test]
fn resize_keeps_content_and_bounds() {
    let mut m = fed(10, 3, b"one\r\ntwo\r\nthree");
    m.resize(20, 5).expect("valid");
    assert_eq!(m.size(), (20, 5));
    assert_eq!(m.rows_text()[0], "one");
}

#[test]
fn vt100_tab_stops_set_and_cleared() {
    // From the `scroll` fixture: clear all stops, set one at column 19;
    // a tab after it goes to the last column, as in tmux.
    let mut m = fed(80, 3, b"a\tb\tc\r\n\x1b[3g\x1b[20G\x1bHx\ty\r\n\tz");
    assert_eq!(m.rows_text()[0], "a       b       c");
    assert_eq!(
        m.rows_text()[1],
        format!("{}x{}y", " ".repeat(19), " ".repeat(59))
    );
    assert_eq!(m.rows_text()[2], format!("{}z", " ".repeat(19)));
    check_reset_round_trip(&mut m);
    let mut fresh = model(80, 3);
    fresh.feed(&m.reset_bytes());
    fresh.feed(b"\r\t!");
    m.feed(b"\r\t!");
    assert_eq!(fresh.rows_text(), m.rows_text());
    // RIS brings the default stops back.
    m.feed(b"\x1bc\tq");
    assert_eq!(m.rows_text()[0], "        q");
}

#[test]
fn vt100_reverse_index_above_region_does_not_scroll() {
    // tmux only scrolls on RI at the region's top; above it, RI moves up.
    let m = fed(
        10,
        6,
        b"r0\r\nr1\r\nr2\r\nr3\r\nr4\x1b[2;5r\x1b[1;2H\x1bM\x1bM\x1b[3;1H\x1bM\x1bMX",
    );
    assert_eq!(m.rows_text(), vec!["r0", "X", "r1", "r2", "r3", ""]);
}

#[test]
fn vt100_csi_s_u_save_restore_cursor() {
    let m = fed(10, 3, b"ab\x1b[s\x1b[3;5Hzz\x1b[uc");
    assert_eq!(m.rows_text(), vec!["abc", "", "    zz"]);
}

#[test]
fn reset_carries_an_incomplete_sequence() {
    for (head, tail) in [
        (&b"ab\xe2\x82"[..], &b"\xacz"[..]),
        (b"ab\x1b[3", b"1mred"),
        (b"\x1b]2;ti", b"tle\x07x"),
    ] {
        let mut m = fed(10, 2, head);
        let mut fresh = model(10, 2);
        fresh.feed(&m.reset_bytes());
        m.feed(tail);
        fresh.feed(tail);
        assert_eq!(fresh.rows_ansi(), m.rows_ansi(), "{head:?}");
        assert_eq!(fresh.title(), m.title());
    }
}

#[test]
fn vt100_insert_mode() {
    // tmux inserts at the cursor in IRM; vt100 ignores `CSI 4 h`.
    let mut m = fed(10, 1, b"abcdef\x1b[1;3H\x1b[4hXY\x1b[4lZ");
    assert_eq!(m.rows_text()[0], "abXYZdef");
    m.feed(b"\x1b[1;1H\x1b[4h\xe6\x97\xa5");
    assert_eq!(m.rows_text()[0], "日abXYZdef");
    m.feed(b"Q");
    assert_eq!(m.rows_text()[0], "日QabXYZde");
    check_reset_round_trip(&mut m);
}

#[test]
fn vt100_autowrap_off_overwrites_last_column() {
    // With DECAWM off tmux keeps writing over the last column.
    let mut m = fed(5, 2, b"\x1b[?7labcdefg\r\nxy\x1b[?7h");
    assert_eq!(m.rows_text(), vec!["abcdg", "xy"]);
    m.feed(b"\x1b[?7l\x1b[1;1H12345678");
    assert_eq!(m.rows_text(), vec!["12348", "xy"]);
    assert_eq!(m.cursor(), (4, 0));
    check_reset_round_trip(&mut m);
}

#[test]
fn scroll_region_lines_go_to_history() {
    // tmux (grid_scroll_history_region) keeps the top line of any scroll
    // region in the history on the normal screen (3.3a: history_size 3).
    let mut m = fed(10, 4, b"\x1b[1;3r\x1b[3;1Ha\nb\nc\nd\x1b[r");
    assert_eq!(m.scrollback_len(), 3);
    m.feed(b"\x1b[4;1H\n\n");
    assert_eq!(m.scrollback_len(), 5);
    // CSI 3 J clears the history.
    m.feed(b"\x1b[3J");
    assert_eq!(m.scrollback_len(), 0);
    // The alternate screen keeps none.
    m.feed(b"\x1b[?1049h\n\n\n\n\n\n");
    assert_eq!(m.scrollback_len(), 0);
}

#[test]
fn history_is_bounded_by_lines() {
    let mut m = PaneModel::new(20, 2, 50).expect("size");
    for i in 0..1000 {
        m.feed(format!("line {i}\r\n").as_bytes());
    }
    // Full, tmux drops a tenth of the limit (3.3a: 49 of 50 here).
    assert_eq!(m.scrollback_len(), 49);
    assert!(
        m.scrollback_bytes() < 50 * 40 * 20,
        "{}",
        m.scrollback_bytes()
    );
    check_reset_round_trip(&mut m);
}

#[test]
fn resize_pulls_history_back_and_reflows() {
    let mut m = model(20, 5);
    for i in 0..12 {
        m.feed(format!("line {i}\r\n").as_bytes());
    }
    m.resize(20, 3).expect("size");
    m.resize(20, 5).expect("size");
    assert_eq!(
        m.rows_text(),
        vec!["line 8", "line 9", "line 10", "line 11", ""]
    );
    assert_eq!(m.cursor(), (0, 4));
    // Narrower then wider: the long line rewraps and comes back whole.
    let mut m = model(20, 4);
    m.feed(b"0123456789abcdefghij0123\r\n$ ");
    m.resize(10, 4).expect("size");
    // (tmux 3.3a: the first row goes to the history.)
    assert_eq!(m.rows_text(), vec!["abcdefghij", "0123", "$", ""]);
    assert_eq!(m.cursor(), (2, 2));
    m.resize(20, 4).expect("size");
    assert_eq!(m.rows_text(), vec!["0123456789abcdefghij", "0123", "$", ""]);
    assert_eq!(m.cursor(), (2, 2));
}
