//! The resync bundle against a real tmux: its replies parse, and the state
//! matches what the pane's program set up.

use tmux_cc::command;
use tmux_cc::state::{PaneResync, PaneState, resync_commands};
use tmux_cc::{PaneId, WindowId};

use crate::real_tmux::Tmux;

const P0: PaneId = PaneId(0);

/// A program that writes on the primary screen, enters the alternate
/// screen, sets modes, a scroll region, a title and the cursor, and leaves
/// an incomplete escape sequence pending; then waits for input.
fn program(dir: &std::path::Path) -> String {
    let d = dir.display();
    format!(
        "printf 'primary-line\\r\\n'; printf '\\033[?1049h\\033[?1000h\\033[?1006h\\033[?1h\\033=\\033[?25l'; \
         printf '\\033]2;My Title; x=1\\007'; printf 'alt-line \\033[31mred\\033[0m a\\\\b'; \
         printf '\\033[3;5r\\033[10;3H'; printf '\\033[1;2'; touch {d}/ready; exec cat > /dev/null"
    )
}

#[test]
fn resync_bundle_reports_the_real_state() {
    let mut t = Tmux::start(program);
    t.wait_file(&t.path("ready"), 0);
    // Let tmux read everything the program wrote (a second display-message
    // round trip after the ready file exists).
    std::thread::sleep(std::time::Duration::from_millis(200));
    t.assert_alive();
    let line = resync_commands(P0, 100, false);
    let replies = t.send(&line);
    assert_eq!(replies.len(), 4);
    let r = PaneResync::from_replies(&replies).unwrap_or_else(|e| panic!("{e}; replies {replies:?}"));
    let s = &r.state;
    assert_eq!((s.pane, s.window), (P0, WindowId(0)));
    assert_eq!((s.width, s.height), (80, 24));
    assert_eq!((s.cursor_x, s.cursor_y), (2, 9), "CUP 10;3");
    assert!(s.alternate_on);
    assert!(s.alternate_saved.is_some(), "{s:?}");
    assert!(!s.cursor_visible);
    assert!(s.keypad_cursor && s.keypad);
    assert!(s.mouse.standard && s.mouse.sgr && s.mouse.any, "{:?}", s.mouse);
    assert!(!s.mouse.button && s.mouse.all == Some(false) && !s.mouse.utf8, "{:?}", s.mouse);
    assert_eq!(s.scroll_region, (2, 4));
    assert_eq!(s.title, b"My Title; x=1");
    assert!(!s.dead && !s.in_mode);
    assert_eq!(s.tabs.first(), Some(&8));
    // The current screen is the alternate one, with decoded SGR escapes and
    // the backslash; the saved grid is the primary screen.
    let screen: Vec<u8> = r.screen.concat();
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(find(&screen, b"alt-line \x1b[31mred"), "{:?}", String::from_utf8_lossy(&screen));
    assert!(find(&screen, b"a\\b"), "{:?}", String::from_utf8_lossy(&screen));
    assert!(!find(&screen, b"primary-line"));
    let saved: Vec<u8> = r.saved_screen.concat();
    assert!(find(&saved, b"primary-line"), "{:?}", String::from_utf8_lossy(&saved));
    assert_eq!(r.pending, b"\x1b[1;2");
    // With continue: five replies, the last one refresh-client.
    let replies = t.send(&resync_commands(P0, 0, true));
    assert_eq!(replies.len(), 5);
    assert!(replies.iter().all(|r| r.success));
    assert!(PaneResync::from_replies(&replies).is_ok());
    t.assert_alive();
}

#[test]
fn state_of_a_plain_pane_and_of_a_missing_pane() {
    let mut t = Tmux::start(|_| "cat".to_owned());
    let text = t.text(&command::display_message(&command::Target::Pane(P0), tmux_cc::state::PANE_STATE_FORMAT)
        .expect("fmt"));
    let s = PaneState::parse(&text).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&text)));
    assert!(!s.alternate_on && s.alternate_saved.is_none() && s.cursor_visible && s.wrap);
    assert_eq!(s.scroll_region, (0, 23));
    assert_eq!((s.cursor_x, s.cursor_y), (0, 0));
    // tmux 3.3a has no bracket_paste_flag; 3.7+ does.
    let version = t.text(&command::display_message(&command::Target::Pane(P0), "#{version}").expect("fmt"));
    if version.starts_with(b"3.3") {
        assert_eq!(s.bracketed_paste, None);
    }
    // A pane that does not exist: the first command fails, tmux skips the rest.
    let replies = t.send(&resync_commands(PaneId(77), 10, true));
    assert_eq!(replies.len(), 1);
    assert!(PaneResync::from_replies(&replies).is_err());
    t.assert_alive();
}
