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
    let r =
        PaneResync::from_replies(&replies).unwrap_or_else(|e| panic!("{e}; replies {replies:?}"));
    let s = &r.state;
    assert_eq!((s.pane, s.window), (P0, WindowId(0)));
    assert_eq!((s.width, s.height), (80, 24));
    assert_eq!((s.cursor_x, s.cursor_y), (2, 9), "CUP 10;3");
    assert!(s.alternate_on);
    assert!(s.alternate_saved.is_some(), "{s:?}");
    assert!(!s.cursor_visible);
    assert!(s.keypad_cursor && s.keypad);
    assert!(
        s.mouse.standard && s.mouse.sgr && s.mouse.any,
        "{:?}",
        s.mouse
    );
    assert!(
        !s.mouse.button && s.mouse.all == Some(false) && !s.mouse.utf8,
        "{:?}",
        s.mouse
    );
    assert_eq!(s.scroll_region, (2, 4));
    assert_eq!(s.title, b"My Title; x=1");
    assert!(!s.dead && !s.in_mode);
    assert_eq!(s.tabs.first(), Some(&8));
    // The current screen is the alternate one, with decoded SGR escapes and
    // the backslash; the saved grid is the primary screen.
    let screen: Vec<u8> = r.screen.concat();
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(
        find(&screen, b"alt-line \x1b[31mred"),
        "{:?}",
        String::from_utf8_lossy(&screen)
    );
    assert!(
        find(&screen, b"a\\b"),
        "{:?}",
        String::from_utf8_lossy(&screen)
    );
    assert!(!find(&screen, b"primary-line"));
    let saved: Vec<u8> = r.saved_screen.concat();
    assert!(
        find(&saved, b"primary-line"),
        "{:?}",
        String::from_utf8_lossy(&saved)
    );
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
    let text = t.text(
        &command::display_message(
            &command::Target::Pane(P0),
            tmux_cc::state::PANE_STATE_FORMAT,
        )
        .expect("fmt"),
    );
    let s = PaneState::parse(&text)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&text)));
    assert!(!s.alternate_on && s.alternate_saved.is_none() && s.cursor_visible && s.wrap);
    assert_eq!(s.scroll_region, (0, 23));
    assert_eq!((s.cursor_x, s.cursor_y), (0, 0));
    // tmux 3.3a has no bracket_paste_flag; 3.7+ does.
    let version =
        t.text(&command::display_message(&command::Target::Pane(P0), "#{version}").expect("fmt"));
    if version.starts_with(b"3.3") {
        assert_eq!(s.bracketed_paste, None);
    }
    // In copy mode typed keys go to the mode; cancel_mode leaves it.
    let r = t.send(&tmux_cc::command::cancel_mode(P0));
    assert!(!r[0].success, "not in a mode yet");
    assert!(t.plain(&["copy-mode", "-t", "%0"]).status.success());
    let state = |t: &mut Tmux| {
        let text = t.text(
            &command::display_message(
                &command::Target::Pane(P0),
                tmux_cc::state::PANE_STATE_FORMAT,
            )
            .expect("fmt"),
        );
        PaneState::parse(&text).unwrap_or_else(|e| panic!("{e}"))
    };
    assert!(state(&mut t).in_mode);
    t.ok(&tmux_cc::command::cancel_mode(P0));
    assert!(!state(&mut t).in_mode);
    // A pane that does not exist: the first command fails, tmux skips the rest.
    let replies = t.send(&resync_commands(PaneId(77), 10, true));
    assert_eq!(replies.len(), 1);
    assert!(PaneResync::from_replies(&replies).is_err());
    t.assert_alive();
}

/// The bundle the recorder sends in the `resync` fixture.
fn recorded_bundle() -> String {
    resync_commands(P0, 200, false).text().to_owned()
}

#[test]
fn recorder_sends_the_encoders_bundle() {
    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/record-fixtures"
    ))
    .expect("reading scripts/record-fixtures");
    let bundle = recorded_bundle();
    assert!(
        script.contains(&format!("RESYNC_BUNDLE = {bundle:?}")),
        "update RESYNC_BUNDLE in the recorder to:\n{bundle:?}"
    );
}

/// The `resync` fixture: the bundle's replies, recorded from tmux, decode
/// and agree with tmux's own state dump in `resync.panes.json`.
#[test]
fn recorded_resync_bundle_decodes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tmux-cc");
    let log = std::fs::read(dir.join("resync.log")).expect("resync.log");
    let panes: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("resync.panes.json")).expect("panes.json"))
            .expect("json");
    let mut parser = tmux_cc::Parser::new();
    parser.push(&log);
    parser.finish();
    let mut replies = Vec::new();
    while let Some(e) = parser.next_event() {
        if let tmux_cc::Event::Reply(r) = e
            && r.flags == 1
        {
            replies.push(r);
        }
    }
    // The bundle is the last line the recorder sent.
    let bundle = &replies[replies.len() - 4..];
    let r = PaneResync::from_replies(bundle).unwrap_or_else(|e| panic!("{e}"));
    let want = &panes["%0"];
    let s = &r.state;
    assert_eq!(u64::from(s.width), want["width"].as_u64().expect("width"));
    assert_eq!(
        u64::from(s.height),
        want["height"].as_u64().expect("height")
    );
    assert_eq!(
        u64::from(s.cursor_x),
        want["cursor_x"].as_u64().expect("cursor_x")
    );
    assert_eq!(
        u64::from(s.cursor_y),
        want["cursor_y"].as_u64().expect("cursor_y")
    );
    assert_eq!(
        u64::from(s.alternate_on),
        want["alternate_on"].as_u64().expect("alternate_on")
    );
    assert_eq!(
        u64::from(s.history_size),
        want["history_size"].as_u64().expect("history_size")
    );
    assert!(s.alternate_on && s.mouse.standard && s.mouse.sgr && s.keypad && s.keypad_cursor);
    assert_eq!(s.scroll_region, (1, 19));
    assert_eq!(s.title, b"a title");
    assert_eq!(r.pending, b"\x1b[1;2");
    // History (primary) first, then the alternate screen's rows.
    // `-J` joins wrapped rows (the 81-column command line), so there may be
    // fewer lines than history_size + height.
    let rows = s.history_size as usize + s.height as usize;
    assert_eq!(r.screen.len(), rows - 1, "one wrapped row joined");
    assert!(
        r.screen[1].starts_with(b"\x1b[31mline 1\x1b[39m a\\b"),
        "{:?}",
        String::from_utf8_lossy(&r.screen[1])
    );
    let alt_start = r.screen.len() - s.height as usize;
    assert!(r.screen[alt_start].starts_with(b"in alt \x1b[1mbold"));
    // The saved grid is the primary screen the program left.
    // Its last command line (the long printf) wrapped and was joined.
    assert_eq!(r.saved_screen.len(), s.height as usize - 1);
    assert!(
        r.saved_screen
            .iter()
            .any(|l| l.starts_with(b"\x1b[30mline 40"))
    );
    // tmux's own capture of the visible (alternate) screen agrees.
    let text = want["text"].as_array().expect("text");
    assert_eq!(text[0].as_str(), Some("in alt bold"));
}
