//! Unit tests of the encoder's text; the proofs against real tmux live in
//! `tests/it/encoder.rs`.

use super::*;

fn texts(lines: &[CommandLine]) -> Vec<&str> {
    lines.iter().map(|l| l.text()).collect()
}

#[test]
fn lines_end_in_one_newline() {
    let l = detach_client();
    assert_eq!(l.as_bytes(), b"detach-client\n");
    assert_eq!(l.text(), "detach-client");
    assert_eq!(l.replies(), 1);
}

#[test]
fn quote_escapes_single_quotes_and_refuses_line_breaks() {
    assert_eq!(quote("x", "it's").as_deref(), Ok("'it'\\''s'"));
    assert_eq!(
        quote("x", "a;b $HOME ~ #{x}").as_deref(),
        Ok("'a;b $HOME ~ #{x}'")
    );
    for (s, byte) in [("a\nb", b'\n'), ("a\rb", b'\r'), ("a\0b", 0)] {
        assert_eq!(
            quote("x", s),
            Err(CommandError::ForbiddenByte { what: "x", byte })
        );
    }
}

#[test]
fn send_input_splits_literal_and_hex_runs() {
    let p = PaneId(3);
    assert_eq!(
        texts(&send_input(p, b"ls -la /tmp\r")),
        ["send-keys -t '%3' -l -- 'ls -la /tmp' ; send-keys -t '%3' -H 0d"]
    );
    assert_eq!(send_input(p, b"ls -la /tmp\r")[0].replies(), 2);
    assert_eq!(
        texts(&send_input(p, b"ls\r")),
        ["send-keys -t '%3' -H 6c 73 0d"]
    );
    assert_eq!(
        texts(&send_input(p, b"a#b'c\xc3\xa9")),
        ["send-keys -t '%3' -H 61 23 62 27 63 c3 a9"]
    );
    assert_eq!(
        texts(&send_input(p, b"echo 'hello world'")),
        [
            "send-keys -t '%3' -H 65 63 68 6f 20 27 ; send-keys -t '%3' -l -- 'hello world' ; send-keys -t '%3' -H 27"
        ]
    );
    assert!(send_input(p, b"").is_empty());
}

#[test]
fn send_input_chunks_long_input() {
    let big = vec![0x01u8; 5000];
    let lines = send_input(PaneId(0), &big);
    assert!(lines.len() >= 5, "{}", lines.len());
    for l in &lines {
        assert!(
            l.text().split(' ').count() <= MAX_WORDS_PER_LINE,
            "too many words"
        );
        assert!(l.as_bytes().len() <= MAX_INPUT_LINE_BYTES + 1);
    }
    let text = vec![b'x'; 100_000];
    let lines = send_input(PaneId(0), &text);
    let total: usize = lines.iter().map(|l| l.text().matches('x').count()).sum();
    assert_eq!(total, 100_000);
    assert!(
        lines
            .iter()
            .all(|l| l.as_bytes().len() <= MAX_INPUT_LINE_BYTES + 1)
    );
}

#[test]
fn paste_markers_are_stripped_even_when_nested() {
    assert_eq!(strip_paste_markers(b"a\x1b[201~b\x1b[200~c"), b"abc");
    assert_eq!(strip_paste_markers(b"\x1b[20\x1b[201~1~rm -rf"), b"rm -rf");
    assert_eq!(strip_paste_markers(b"plain\x1b[A"), b"plain\x1b[A");
    let lines = send_paste(PaneId(1), b"x\x1b[201~y", true);
    assert_eq!(
        texts(&lines),
        ["send-keys -t '%1' -H 1b 5b 32 30 30 7e 78 79 1b 5b 32 30 31 7e"]
    );
}

#[test]
fn sizes_are_checked() {
    assert_eq!(
        resize_client(80, 24)
            .map(|l| l.text().to_owned())
            .as_deref(),
        Ok("refresh-client -C 80x24")
    );
    assert!(resize_client(10_000, 10_000).is_ok());
    assert_eq!(
        resize_client(0, 24),
        Err(CommandError::SizeOutOfRange { cols: 0, rows: 24 })
    );
    assert!(resize_client(65535, 65535).is_err());
    assert_eq!(
        resize_window_for_client(WindowId(2), 50, 12)
            .map(|l| l.text().to_owned())
            .as_deref(),
        Ok("refresh-client -C '@2:50x12'")
    );
    assert_eq!(
        clear_window_size_for_client(WindowId(2)).text(),
        "refresh-client -C '@2:'"
    );
}

#[test]
fn client_flags_flow_and_subscriptions() {
    let l = set_client_flags(&[
        ClientFlag::PauseAfter(Some(5)),
        ClientFlag::WaitExit(false),
        ClientFlag::IgnoreSize(true),
    ]);
    assert_eq!(
        l.map(|l| l.text().to_owned()).as_deref(),
        Ok("refresh-client -f 'pause-after=5,!wait-exit,ignore-size'")
    );
    assert!(set_client_flags(&[]).is_err());
    assert_eq!(
        pane_flow(PaneId(4), PaneFlow::Continue).text(),
        "refresh-client -A '%4:continue'"
    );
    assert_eq!(
        pane_flows(&[(PaneId(0), PaneFlow::Pause), (PaneId(2), PaneFlow::Pause)])
            .map(|l| l.text().to_owned())
            .as_deref(),
        Ok("refresh-client -A '%0:pause' -A '%2:pause'")
    );
    assert_eq!(
        subscribe("dead", SubscriptionTarget::AllPanes, "#{pane_id} it's")
            .map(|l| l.text().to_owned())
            .as_deref(),
        Ok("refresh-client -B 'dead:%*:#{pane_id} it'\\''s'")
    );
    assert!(subscribe("a:b", SubscriptionTarget::Session, "x").is_err());
    assert!(subscribe("a", SubscriptionTarget::Session, "x\ny").is_err());
    assert_eq!(
        unsubscribe("dead").map(|l| l.text().to_owned()).as_deref(),
        Ok("refresh-client -B 'dead'")
    );
}

#[test]
fn capture_and_queries() {
    let opts = CaptureOptions {
        history: Some(500),
        escapes: true,
        octal: true,
        join: true,
        quiet: true,
        ..Default::default()
    };
    assert_eq!(
        capture_pane(PaneId(1), opts).text(),
        "capture-pane -p -t '%1' -e -C -J -q -S -500"
    );
    assert_eq!(
        display_message(&Target::Pane(PaneId(1)), "-#{pane_id}")
            .map(|l| l.text().to_owned())
            .as_deref(),
        Ok("display-message -p -t '%1' -- '-#{pane_id}'")
    );
    assert_eq!(
        list_panes(
            &PaneScope::Session(Target::Session(SessionId(2))),
            "#{pane_id}"
        )
        .map(|l| l.text().to_owned())
        .as_deref(),
        Ok("list-panes -s -t '$2' -F '#{pane_id}'")
    );
    assert_eq!(
        list_windows(&WindowScope::All, "#{window_id}").map(|l| l.replies()),
        Ok(1)
    );
}

#[test]
fn sessions_windows_options() {
    let name = SessionName::new("tb_a__b").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        new_session(&name, 80, 24, Some(&["sh", "-c", "echo '$x'"]))
            .map(|l| l.text().to_owned())
            .as_deref(),
        Ok(
            "new-session -d -s 'tb_a__b' -x 80 -y 24 -P -F '#{session_id}' -- 'sh' '-c' 'echo '\\''$x'\\'''"
        )
    );
    assert_eq!(
        new_session(&name, 80, 24, Some(&["echo #x"])),
        Err(CommandError::FormatChar {
            what: "shell command"
        })
    );
    assert_eq!(
        new_session(&name, 80, 24, Some(&[])),
        Err(CommandError::Empty {
            what: "shell command"
        })
    );
    assert_eq!(
        new_window(SessionId(1), Some("w#{x}"), None)
            .map(|l| l.text().to_owned())
            .as_deref(),
        Ok("new-window -d -t '$1:' -n 'w##{x}' -P -F '#{window_id} #{pane_id}'")
    );
    assert_eq!(
        set_option_user(&Target::Session(SessionId(1)), "@bridge_id", "a'b")
            .map(|l| l.text().to_owned())
            .as_deref(),
        Ok("set-option -t '$1' -- '@bridge_id' 'a'\\''b'")
    );
    assert!(set_option_user(&Target::Pane(PaneId(1)), "bridge_id", "x").is_err());
    assert!(set_option_user(&Target::Pane(PaneId(1)), "@a;b", "x").is_err());
    assert_eq!(
        unset_option_user(&Target::Session(SessionId(1)), "@bridge_hidden_client")
            .map(|l| l.text().to_owned())
            .as_deref(),
        Ok("set-option -u -t '$1' -- '@bridge_hidden_client'")
    );
    assert!(unset_option_user(&Target::Pane(PaneId(1)), "x").is_err());
    assert_eq!(
        show_option(&Target::Pane(PaneId(1)), "@x")
            .map(|l| l.text().to_owned())
            .as_deref(),
        Ok("show-options -v -q -p -t '%1' -- '@x'")
    );
    assert_eq!(Target::SessionName(name).quoted(), "'=tb_a__b:'");
    assert_eq!(kill_session(SessionId(3)).text(), "kill-session -t '$3'");
}

#[test]
fn join_sums_replies_and_refuses_nothing() {
    let j = join([
        kill_pane(PaneId(1)),
        send_input(PaneId(2), b"a\r").remove(0),
    ]);
    let j = j.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(j.text(), "kill-pane -t '%1' ; send-keys -t '%2' -H 61 0d");
    assert_eq!(j.replies(), 2);
    assert_eq!(join(Vec::new()), Err(CommandError::EmptyJoin));
}

#[test]
fn format_escapes() {
    assert_eq!(escape_format("#{x} 100%"), "##{x} 100%");
    assert_eq!(escape_time_format("#{x} 100% %e"), "##{x} 100%% %%e");
}

/// Decodes the `send-keys` lines `send_input` makes back into bytes.
fn decode_send_keys(lines: &[CommandLine]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        for cmd in l.text().split(" ; ") {
            let rest = cmd
                .strip_prefix("send-keys -t '%0' ")
                .unwrap_or_else(|| panic!("{cmd}"));
            if let Some(text) = rest.strip_prefix("-l -- '") {
                let text = text.strip_suffix('\'').unwrap_or_else(|| panic!("{cmd}"));
                assert!(!text.contains('\''));
                out.extend_from_slice(text.as_bytes());
            } else if let Some(hex) = rest.strip_prefix("-H ") {
                for h in hex.split(' ') {
                    out.push(u8::from_str_radix(h, 16).unwrap_or_else(|e| panic!("{h}: {e}")));
                }
            } else {
                panic!("unexpected {cmd}");
            }
        }
    }
    out
}

proptest::proptest! {
    #[test]
    fn send_input_round_trips_any_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..6000)) {
        let lines = send_input(PaneId(0), &bytes);
        for l in &lines {
            proptest::prop_assert!(!l.text().is_empty());
            proptest::prop_assert!(!l.text().bytes().any(|b| matches!(b, b'\n' | b'\r' | 0)));
            proptest::prop_assert!(l.text().split(' ').count() <= MAX_WORDS_PER_LINE);
            proptest::prop_assert!(l.as_bytes().len() <= MAX_INPUT_LINE_BYTES + 1);
            proptest::prop_assert_eq!(l.replies(), l.text().split(" ; ").count());
        }
        proptest::prop_assert_eq!(decode_send_keys(&lines), bytes);
    }

    #[test]
    fn send_input_round_trips_mostly_text(text in "[ -~\t\r\né€]{0,3000}") {
        let lines = send_input(PaneId(0), text.as_bytes());
        proptest::prop_assert_eq!(decode_send_keys(&lines), text.as_bytes());
    }

    #[test]
    fn quote_never_leaks(s in ".{0,64}") {
        match quote("x", &s) {
            Ok(q) => {
                // Undo tmux's single-quote rules: the result is the input.
                let mut out = String::new();
                let mut rest = q.as_str();
                loop {
                    let inner = rest.strip_prefix('\'').unwrap_or_else(|| panic!("{q}"));
                    let end = inner.find('\'').unwrap_or_else(|| panic!("{q}"));
                    out.push_str(&inner[..end]);
                    rest = &inner[end + 1..];
                    if let Some(r) = rest.strip_prefix("\\'") {
                        out.push('\'');
                        rest = r;
                    } else {
                        break;
                    }
                }
                proptest::prop_assert_eq!(rest, "");
                proptest::prop_assert_eq!(out, s);
            }
            Err(_) => proptest::prop_assert!(s.contains(['\n', '\r', '\0'])),
        }
    }
}
