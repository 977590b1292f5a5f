//! The command encoder against a real tmux: hostile input reaches the pane
//! byte for byte, runs no command, creates no file, never detaches the client.

use std::time::Duration;

use tmux_cc::command::{
    self, CaptureOptions, ClientFlag, CommandError, PaneFlow, SubscriptionTarget, Target,
    WindowScope,
};
use tmux_cc::{Event, PaneId, SessionId, WindowId};

use crate::real_tmux::{Tmux, raw_cat};

const P0: PaneId = PaneId(0);

/// Hostile inputs; `{dir}` is replaced by the test's scratch directory.
fn corpus(dir: &str) -> Vec<Vec<u8>> {
    let mut c: Vec<Vec<u8>> = [
        "a;b",
        "'",
        "\"",
        "#{pane_id}",
        "##{pane_id}",
        "#(touch {dir}/pwned)",
        "$HOME",
        "${HOME}",
        "~",
        "~root",
        "-x",
        "--",
        "a\nb",
        "a\r\nb",
        "\n\n",
        "\\",
        "\\;",
        "a \\; display-message pwned",
        "%end 1 2 1",
        "%begin 1 2 1",
        "100% %e %H %%",
        "\u{1b}[201~",
        "é€😀 日本",
        "it's \"quoted\" ; $x #{y} ~z",
        "' ; run-shell 'touch {dir}/pwned2' ; '",
        "Enter C-c Escape",
    ]
    .iter()
    .map(|s| s.replace("{dir}", dir).into_bytes())
    .collect();
    c.push(vec![0]);
    c.push(b"nul\0in\0middle".to_vec());
    c.push(b"\xff\xfe invalid \xc3 utf8 \xc0\xaf".to_vec());
    c.push((0u8..=255).collect());
    // 10 000 words of input.
    c.push("word ".repeat(10_000).into_bytes());
    // 10 000 bytes that each need -H.
    c.push(vec![b'#'; 10_000]);
    // Pseudo-random blobs (fixed seed): mixed runs of every kind.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in [1, 7, 8, 9, 100, 999, 1000, 1001, 4096, 5000] {
        let blob = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Half printable ASCII, half anything.
                if x & 1 == 0 {
                    b' ' + (x >> 8) as u8 % 95
                } else {
                    (x >> 8) as u8
                }
            })
            .collect();
        c.push(blob);
    }
    c
}

fn assert_no_markers(t: &Tmux) {
    for m in ["pwned", "pwned2"] {
        assert!(!t.path(m).exists(), "{m} was created: a command ran");
    }
}

#[test]
fn send_input_delivers_exact_bytes_and_runs_nothing() {
    let mut t = Tmux::start(raw_cat);
    t.wait_file(&t.path("ready"), 0);
    let dir = t.dir.path().display().to_string();
    let mut expected = Vec::new();
    for case in corpus(&dir) {
        let lines = command::send_input(P0, &case);
        for line in &lines {
            assert!(!line.text().bytes().any(|b| matches!(b, b'\n' | b'\r' | 0)));
            t.ok(line);
        }
        expected.extend_from_slice(&case);
        let got = t.wait_file(&t.path("out"), expected.len());
        assert_eq!(
            got.len(),
            expected.len(),
            "after case {:?}",
            String::from_utf8_lossy(&case)
        );
        assert!(
            got == expected,
            "pane bytes differ after case {:?}",
            String::from_utf8_lossy(&case)
        );
        t.assert_alive();
    }
    assert_no_markers(&t);
    // Nothing more arrives later.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(std::fs::read(t.path("out")).unwrap_or_default(), expected);
}

#[test]
fn a_megabyte_paste_arrives_without_paste_markers() {
    let mut t = Tmux::start(raw_cat);
    t.wait_file(&t.path("ready"), 0);
    let unit: Vec<u8> =
        b"line 'one' ; #{x} $y ~z \\ \x1b[201~evil\r\n\x1b[200~\xc3\xa9\xff\t".to_vec();
    let mut paste = Vec::new();
    while paste.len() < 1 << 20 {
        paste.extend_from_slice(&unit);
    }
    let lines = command::send_paste(P0, &paste, true);
    let mut expected = b"\x1b[200~".to_vec();
    expected.extend_from_slice(&command::strip_paste_markers(&paste));
    expected.extend_from_slice(b"\x1b[201~");
    assert_eq!(expected.windows(6).filter(|w| w == b"\x1b[201~").count(), 1);
    // Pipelined: write every line, then read every reply.
    let start = std::time::Instant::now();
    let all: Vec<u8> = lines
        .iter()
        .flat_map(|l| l.as_bytes().iter().copied())
        .collect();
    let writer = {
        let mut stdin = t.take_stdin();
        std::thread::spawn(move || {
            use std::io::Write;
            stdin.write_all(&all).expect("writing the paste");
            stdin
        })
    };
    let n: usize = lines.iter().map(|l| l.replies()).sum();
    let replies = t.replies(n, "paste");
    assert_eq!(replies.len(), n);
    assert!(replies.iter().all(|r| r.success));
    t.put_stdin(writer.join().expect("writer thread"));
    let sent = start.elapsed();
    let got = t.wait_file(&t.path("out"), expected.len());
    eprintln!(
        "1 MiB paste: {} lines, {} bytes of commands, replies after {sent:?}, all bytes in the pane after {:?}",
        lines.len(),
        lines.iter().map(|l| l.as_bytes().len()).sum::<usize>(),
        start.elapsed()
    );
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "paste differs");
    t.assert_alive();
}

#[test]
fn client_commands_work_on_real_tmux() {
    let mut t = Tmux::start(|_| "cat".to_owned());
    // Sizes.
    t.ok(&command::resize_client(100, 30).expect("size"));
    let size = command::display_message(
        &Target::Window(WindowId(0)),
        "#{window_width}x#{window_height}",
    )
    .expect("fmt");
    assert_eq!(t.text(&size), b"100x30");
    t.ok(&command::resize_window_for_client(WindowId(0), 50, 12).expect("size"));
    assert_eq!(t.text(&size), b"50x12");
    t.ok(&command::clear_window_size_for_client(WindowId(0)));
    assert_eq!(t.text(&size), b"100x30");
    assert!(matches!(
        command::resize_client(0, 10),
        Err(CommandError::SizeOutOfRange { .. })
    ));
    // Flags.
    t.ok(&command::set_client_flags(&[
        ClientFlag::PauseAfter(Some(7)),
        ClientFlag::WaitExit(false),
    ])
    .expect("flags"));
    let flags = t.text(&command::list_clients("#{client_flags}").expect("fmt"));
    assert!(
        String::from_utf8_lossy(&flags).contains("pause-after=7"),
        "{}",
        String::from_utf8_lossy(&flags)
    );
    // Flow control: pause/continue print %pause/%continue.
    t.ok(&command::pane_flow(P0, PaneFlow::Pause));
    t.wait_event(
        "%pause",
        |e| matches!(e, Event::Pause { pane } if *pane == P0),
    );
    t.ok(&command::pane_flows(&[(P0, PaneFlow::Continue)]).expect("flows"));
    t.wait_event(
        "%continue",
        |e| matches!(e, Event::Continue { pane } if *pane == P0),
    );
    // Subscriptions.
    t.ok(&command::subscribe(
        "deadsub",
        SubscriptionTarget::AllPanes,
        "#{pane_id}=#{pane_dead}",
    )
    .expect("sub"));
    let e = t.wait_event("subscription", |e| {
        matches!(e, Event::SubscriptionChanged { .. })
    });
    let Event::SubscriptionChanged {
        name, pane, value, ..
    } = e
    else {
        unreachable!()
    };
    assert_eq!(
        (&name[..], pane, &value[..]),
        (&b"deadsub"[..], Some(P0), &b"%0=0"[..])
    );
    t.ok(&command::unsubscribe("deadsub").expect("unsub"));
    // Queries.
    let w = t.text(&command::list_windows(&WindowScope::All, "#{window_id}").expect("fmt"));
    assert_eq!(w, b"@0");
    let cap = t.send(&command::capture_pane(
        P0,
        CaptureOptions {
            history: Some(10),
            quiet: true,
            ..Default::default()
        },
    ));
    assert!(cap[0].success);
    assert_eq!(
        t.text(&command::list_sessions("#{session_id} #{session_name}").expect("fmt")),
        b"$0 t"
    );
    // A joined line answers once per command, until one fails: tmux skips
    // the rest of the line.
    let j = command::join([
        command::list_sessions("x").expect("fmt"),
        command::kill_window(WindowId(99)),
    ]);
    let j = j.expect("join");
    assert_eq!(j.replies(), 2);
    let r = t.send(&j);
    assert_eq!((r.len(), r[0].success, r[1].success), (2, true, false));
    let j = command::join([command::kill_window(WindowId(99)), command::detach_client()])
        .expect("join");
    let r = t.send(&j);
    assert_eq!(r.len(), 1);
    assert!(!r[0].success, "no window @99");
    t.assert_alive();
    t.ok(&command::detach_client());
    let events = t.close();
    assert!(
        events.iter().any(|e| matches!(e, Event::Exit { .. })),
        "detach-client ends with %exit"
    );
}

/// Undoes the backslash escapes tmux's `utf8_stravis` adds to window names
/// (`\$`, `\"`, `\\`).
fn unvis(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < name.len() {
        if name[i] == b'\\' && i + 1 < name.len() && matches!(name[i + 1], b'$' | b'"' | b'\\') {
            i += 1;
        }
        out.push(name[i]);
        i += 1;
    }
    out
}

#[test]
fn user_text_in_names_options_and_formats_stays_literal() {
    let mut t = Tmux::start(|_| "cat".to_owned());
    let dir = t.dir.path().display().to_string();
    let hostile = [
        "a;b".to_owned(),
        "it's".to_owned(),
        "say \"hi\"".to_owned(),
        "#{pane_id}".to_owned(),
        "##".to_owned(),
        format!("#(touch {dir}/pwned)"),
        "$HOME".to_owned(),
        "~".to_owned(),
        "-x".to_owned(),
        "%end 1 2 1".to_owned(),
        "100% %e %H:%M %%".to_owned(),
        "é€😀".to_owned(),
        "a \\; b".to_owned(),
    ];
    for text in &hostile {
        // display-message: escape_time_format keeps user text literal.
        let line = command::display_message(&Target::Pane(P0), &command::escape_time_format(text))
            .expect("fmt");
        assert_eq!(t.text(&line), text.as_bytes(), "display-message {text:?}");
        // User options are stored and shown verbatim.
        t.ok(
            &command::set_option_user(&Target::Session(SessionId(0)), "@bridge_id", text)
                .expect("set"),
        );
        let shown = t.text(
            &command::show_option(&Target::Session(SessionId(0)), "@bridge_id").expect("show"),
        );
        assert_eq!(shown, text.as_bytes(), "option {text:?}");
        let listed = t.text(&command::list_sessions("#{@bridge_id}").expect("fmt"));
        assert_eq!(listed, text.as_bytes(), "#{{@bridge_id}} {text:?}");
        t.ok(&command::set_option_user(&Target::Pane(P0), "@pane_tag", text).expect("set"));
        assert_eq!(
            t.text(&command::show_option(&Target::Pane(P0), "@pane_tag").expect("show")),
            text.as_bytes()
        );
        // Window names round-trip through new-window and rename-window.
        if !text.contains('\\') {
            let out = t.text(
                &command::new_window(SessionId(0), Some(text), Some(&["cat"])).expect("new-window"),
            );
            let out = String::from_utf8_lossy(&out).into_owned();
            let (w, _pane) = out.split_once(' ').expect("@W %P");
            let w: WindowId = w.parse().expect("window id");
            let name_fmt =
                command::display_message(&Target::Window(w), "#{window_name}").expect("fmt");
            assert_eq!(t.text(&name_fmt), text.as_bytes(), "new-window -n {text:?}");
            t.ok(&command::rename_window(w, &format!("{text}2")).expect("rename"));
            // rename-window stores the name vis-encoded (3.3a writes `$` as
            // `\$`): literal text, only escaped for display.
            assert_eq!(
                unvis(&t.text(&name_fmt)),
                format!("{text}2").as_bytes(),
                "rename-window {text:?}"
            );
            t.ok(&command::kill_window(w));
        }
        t.assert_alive();
    }
    // Lines that cannot be encoded are refused before anything is sent.
    for bad in ["a\nb", "a\rb", "a\0b", "\n\n"] {
        assert!(matches!(
            command::set_option_user(&Target::Pane(P0), "@x", bad),
            Err(CommandError::ForbiddenByte { .. })
        ));
        assert!(command::display_message(&Target::Pane(P0), bad).is_err());
        assert!(command::new_window(SessionId(0), Some(bad), None).is_err());
    }
    assert!(
        t.path("pwned").metadata().is_err(),
        "a format ran a shell command"
    );
    t.assert_alive();
}

#[test]
fn shell_commands_run_verbatim_and_kill_commands_work() {
    let mut t = Tmux::start(|_| "cat".to_owned());
    let out = t.path("args").display().to_string();
    // Several words: executed directly, each argument verbatim.
    let script = format!("printf '%s|' \"$@\" > {out}");
    let args = [
        "sh", "-c", &script, "sh", "a;b", "$HOME", "~", "it's", "-x", "\"q\"",
    ];
    let reply = t.text(&command::new_window(SessionId(0), None, Some(&args)).expect("new-window"));
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let pane: PaneId = reply
        .split_once(' ')
        .expect("@W %P")
        .1
        .parse()
        .expect("pane id");
    let got = t.wait_file(std::path::Path::new(&out), 1);
    assert_eq!(String::from_utf8_lossy(&got), "a;b|$HOME|~|it's|-x|\"q\"|");
    assert!(matches!(
        command::new_window(SessionId(0), None, Some(&["echo", "#{pane_id}"])),
        Err(CommandError::FormatChar { .. })
    ));
    // kill-pane of a dead-or-alive pane, then kill-session of a second session.
    let _ = t.send(&command::kill_pane(pane));
    let name = tmux_cc::naming::session_name("kill", "me").expect("name");
    let sid = t.text(&command::new_session(&name, 80, 24, Some(&["cat"])).expect("new-session"));
    let sid: SessionId = String::from_utf8_lossy(&sid).parse().expect("session id");
    t.ok(&command::kill_session(sid));
    let listed = t.text(&command::list_sessions("#{session_id}").expect("fmt"));
    assert_eq!(listed, b"$0");
    t.assert_alive();
}
