//! Unit tests of the state format, the bundle text and the `-C` decoder; the
//! real-tmux checks are in `tests/it/state.rs`.

use super::*;

const SAMPLE: &[u8] = b"pane_id=%3 window_id=@1 pane_width=80 pane_height=24 cursor_x=3 cursor_y=9 cursor_flag=0 insert_flag=0 keypad_cursor_flag=1 keypad_flag=1 wrap_flag=1 origin_flag=0 mouse_standard_flag=1 mouse_button_flag=0 mouse_any_flag=1 mouse_all_flag=0 mouse_utf8_flag=0 mouse_sgr_flag=1 alternate_on=0 alternate_saved_x=4294967295 alternate_saved_y=4294967295 scroll_region_upper=2 scroll_region_lower=4 pane_tabs=8,16,24 history_size=0 history_limit=2000 pane_in_mode=0 pane_dead=0 bracket_paste_flag= synchronized_output_flag= pane_title=My pane_title=x y";

#[test]
fn parses_a_33a_state_line() {
    let s = PaneState::parse(SAMPLE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.pane, PaneId(3));
    assert_eq!(s.window, WindowId(1));
    assert_eq!((s.width, s.height, s.cursor_x, s.cursor_y), (80, 24, 3, 9));
    assert!(!s.cursor_visible && s.keypad_cursor && s.keypad && s.wrap && !s.origin);
    assert_eq!(
        s.mouse,
        MouseModes {
            standard: true,
            button: false,
            any: true,
            all: Some(false),
            utf8: false,
            sgr: true
        }
    );
    assert_eq!(s.alternate_saved, None);
    assert_eq!(s.scroll_region, (2, 4));
    assert_eq!(s.tabs, vec![8, 16, 24]);
    assert_eq!(s.history_limit, 2000);
    assert_eq!(s.bracketed_paste, None);
    assert_eq!(s.title, b"My pane_title=x y");
}

#[test]
fn rejects_broken_state_lines() {
    assert_eq!(PaneState::parse(b"pane_id=%1"), Err(StateError::NoTitle));
    let missing = String::from_utf8_lossy(SAMPLE).replace("cursor_x=3 ", "");
    assert_eq!(
        PaneState::parse(missing.as_bytes()),
        Err(StateError::Missing("cursor_x"))
    );
    let bad = String::from_utf8_lossy(SAMPLE).replace("wrap_flag=1", "wrap_flag=2");
    assert!(matches!(
        PaneState::parse(bad.as_bytes()),
        Err(StateError::BadValue {
            key: "wrap_flag",
            ..
        })
    ));
    let bad = String::from_utf8_lossy(SAMPLE).replace("pane_id=%3", "pane_id=3");
    assert!(matches!(
        PaneState::parse(bad.as_bytes()),
        Err(StateError::BadValue { key: "pane_id", .. })
    ));
}

#[test]
fn bundle_is_one_line_with_four_or_five_replies() {
    let l = resync_commands(PaneId(2), 1000, false);
    assert_eq!(l.replies(), 4);
    assert!(l.text().starts_with("capture-pane -p -t '%2' -e -C -J -N -q -S -1000 ; capture-pane -p -t '%2' -e -C -J -N -q -a ; display-message -p -t '%2' -- 'pane_id=#{pane_id} "));
    assert!(
        l.text()
            .ends_with(" pane_title=#{pane_title}' ; capture-pane -p -t '%2' -C -P")
    );
    let l = resync_commands(PaneId(2), 0, true);
    assert_eq!(l.replies(), 5);
    assert!(l.text().ends_with(" ; refresh-client -A '%2:continue'"));
    assert_eq!(l.as_bytes().iter().filter(|&&b| b == b'\n').count(), 1);
}

#[test]
fn capture_escapes_decode() {
    let check = |input: &[u8], expected: &[u8]| {
        assert_eq!(decode_capture_escapes(input), expected, "{input:?}")
    };
    check(b"a\\\\b \\033[31mred\\033[39m", b"a\\b \x1b[31mred\x1b[39m");
    check(b"\\033]2;caf\\303\\251", b"\x1b]2;caf\xc3\xa9");
    check(b"\\000\\377", b"\x00\xff");
    check(
        b"lone \\ and \\8 and \\400 and \\03",
        b"lone \\ and \\8 and \\400 and \\03",
    );
    check(b"", b"");
}
