use super::*;

fn window(line: &str) -> Result<WindowLine, ListingError> {
    WindowLine::parse(line.as_bytes())
}

#[test]
fn a_window_line_with_a_name_holding_spaces() {
    let w = window("@3 2 b25d,80x24,0,0,1 b25d,80x24,0,0,1 *Z 1 my  window #1").expect("parses");
    assert_eq!(w.window, WindowId(3));
    assert_eq!(w.index, 2);
    assert_eq!(&w.layout[..], b"b25d,80x24,0,0,1");
    assert_eq!(&w.visible_layout[..], b"b25d,80x24,0,0,1");
    assert_eq!(&w.flags[..], b"*Z");
    assert!(w.active);
    assert_eq!(&w.name[..], b"my  window #1");
    assert_eq!(
        w.layout_event(),
        Event::LayoutChange {
            window: WindowId(3),
            layout: Bytes::from_static(b"b25d,80x24,0,0,1"),
            visible_layout: Some(Bytes::from_static(b"b25d,80x24,0,0,1")),
            flags: Some(Bytes::from_static(b"*Z")),
        }
    );
}

#[test]
fn a_window_line_with_empty_flags_and_name() {
    // An inactive window has no flags: two separators in a row.
    let w = window("@0 0 l l  0 ").expect("parses");
    assert_eq!(
        (&w.flags[..], w.active, &w.name[..]),
        (&b""[..], false, &b""[..])
    );
    let w = window("@0 0 l l - 0").expect("parses without a trailing separator");
    assert_eq!(&w.name[..], b"");
}

#[test]
fn a_window_name_keeps_every_byte() {
    let line = b"@1 1 l v * 1 caf\xc3\xa9\ttab #{x} ; \\";
    let w = WindowLine::parse(line).expect("parses");
    assert_eq!(&w.name[..], b"caf\xc3\xa9\ttab #{x} ; \\");
}

#[test]
fn malformed_window_lines_name_the_field() {
    for (line, field) in [
        ("", "window_id"),
        ("3 0 l v * 1 n", "window_id"),
        ("@3 x l v * 1 n", "window_index"),
        ("@3 -1 l v * 1 n", "window_index"),
        ("@3 0", "window_layout"),
        ("@3 0 l", "window_visible_layout"),
        ("@3 0 l v", "window_raw_flags"),
        ("@3 0 l v *", "window_active"),
        ("@3 0 l v * yes n", "window_active"),
    ] {
        let err = window(line).expect_err(line);
        assert_eq!((err.format, err.field), ("list-windows", field), "{line:?}");
    }
    let long = format!("@x {}", "a".repeat(1000));
    assert_eq!(window(&long).expect_err("bad").line.len(), 200);
}

#[test]
fn client_lines() {
    let c = ClientLine::parse(b"1 4242 $3 ").expect("control client");
    assert_eq!(
        (c.control, c.pid, c.session, &c.tty[..]),
        (true, 4242, Some(SessionId(3)), &b""[..])
    );
    let c = ClientLine::parse(b"0 77 $0 /dev/pts/3").expect("tty client");
    assert_eq!(
        (c.control, c.pid, c.session, &c.tty[..]),
        (false, 77, Some(SessionId(0)), &b"/dev/pts/3"[..])
    );
    let c = ClientLine::parse(b"0 78  /dev/pts/4").expect("no session yet");
    assert_eq!((c.session, &c.tty[..]), (None, &b"/dev/pts/4"[..]));
    let c = ClientLine::parse(b"1 9").expect("no session or tty field");
    assert_eq!((c.session, &c.tty[..]), (None, &b""[..]));
    for (line, field) in [
        ("", "client_control_mode"),
        ("x 1 t", "client_control_mode"),
        ("0", "client_pid"),
        ("0 pid $0 /dev/pts/1", "client_pid"),
        ("0 5 /dev/pts/1", "session_id"),
        ("0 5 $x /dev/pts/1", "session_id"),
    ] {
        let err = ClientLine::parse(line.as_bytes()).expect_err(line);
        assert_eq!((err.format, err.field), ("list-clients", field), "{line:?}");
    }
}

#[test]
fn terminal_sizes_add_the_status_lines() {
    let size = |line: &str| TerminalSize::parse(line.as_bytes());
    let ok = |cols, rows| Ok(TerminalSize { cols, rows });
    assert_eq!(size("120 40 on"), ok(120, 41));
    assert_eq!(size("120 40 off"), ok(120, 40));
    assert_eq!(size("80 24 3"), ok(80, 27));
    for (line, field) in [
        ("", "window_width"),
        ("0 40 on", "window_width"),
        ("10001 40 on", "window_width"),
        ("120", "window_height"),
        ("120 x on", "window_height"),
        ("120 40", "status"),
        ("120 40 6", "status"),
        ("120 40 maybe", "status"),
    ] {
        let err = size(line).expect_err(line);
        assert_eq!(
            (err.format, err.field),
            ("display-message", field),
            "{line:?}"
        );
    }
    let line = window_size(SessionId(2));
    assert_eq!(
        line.text().trim_end(),
        "display-message -p -t '$2' -- '#{window_width} #{window_height} #{status}'"
    );
}

#[test]
fn commands_carry_the_formats() {
    let line = list_windows(SessionId(4)).expect("line");
    assert_eq!(line.replies(), 1);
    assert!(line.text().starts_with("list-windows "), "{}", line.text());
    assert!(line.text().contains("$4"), "{}", line.text());
    assert!(line.text().contains("#{window_visible_layout}"));
    let line = list_clients().expect("line");
    assert!(line.text().starts_with("list-clients "), "{}", line.text());
    assert!(line.text().contains("#{client_control_mode}"));
    assert!(line.text().contains("#{session_id}"));
}

#[test]
fn session_lines() {
    let s = SessionLine::parse(b"123 $4 0a1b tb_x__y").expect("line");
    assert_eq!(
        (s.server_pid, s.id, s.instance.as_str(), s.name.as_str()),
        (123, SessionId(4), "0a1b", "tb_x__y")
    );
    // Unset instance, a person's session with spaces in its name.
    let s = SessionLine::parse(b"123 $5  my work").expect("line");
    assert_eq!((s.instance.as_str(), s.name.as_str()), ("", "my work"));
    for (line, field) in [
        ("", "pid"),
        ("x $1 i n", "pid"),
        ("1 @1 i n", "session_id"),
        ("1 $1 i", "session_name"),
    ] {
        let err = SessionLine::parse(line.as_bytes()).expect_err(line);
        assert_eq!(
            (err.format, err.field),
            ("list-sessions", field),
            "{line:?}"
        );
    }
}

#[test]
fn client_sessions_tell_a_persons_terminal_from_the_runners_hidden_client() {
    assert!(CLIENT_SESSIONS_FORMAT.contains(&format!("#{{{HIDDEN_CLIENT_OPTION}}}")));
    let parse = |line: &str| ClientSession::parse(line.as_bytes()).expect(line);
    let person = parse("0 41  attached,focused,UTF-8 my work");
    assert_eq!(
        person,
        ClientSession {
            control: false,
            pid: 41,
            hidden_pid: None,
            flags: "attached,focused,UTF-8".into(),
            session: "my work".into(),
        }
    );
    assert!(person.is_terminal());
    assert!(!parse("1 40  attached,control-mode,UTF-8 s").is_terminal());
    // tmux 3.2–3.7 print these flags alike (server_client_get_flags).
    let hidden = "0 42 42 attached,ignore-size,read-only,UTF-8 s";
    assert!(!parse(hidden).is_terminal());
    // A person's own read-only, ignore-size client beside it.
    assert!(parse("0 43 42 attached,ignore-size,read-only,UTF-8 s").is_terminal());
    // A stale pid reused by a person's ordinary client.
    assert!(parse("0 42 42 attached,focused,UTF-8 s").is_terminal());
    for (line, field) in [
        ("2 1  f s", "client_control_mode"),
        ("0 x  f s", "client_pid"),
        ("0 1 x f s", HIDDEN_CLIENT_OPTION),
        ("0 1", HIDDEN_CLIENT_OPTION),
        ("0 1 ", "client_flags"),
    ] {
        let err = ClientSession::parse(line.as_bytes()).expect_err(line);
        assert_eq!(err.field, field, "{line:?}");
    }
}
