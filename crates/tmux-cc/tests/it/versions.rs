//! The control-mode differences between tmux versions, checked on every tmux
//! this machine has: the `tmux` on `PATH` and each `/opt/tmux-*/bin/tmux`
//! that `scripts/install-tmux-versions` installs (3.5a, 3.7c, 3.8 from
//! Debian). Each one gets a private server (`tb-ver-<pid>-<n>`) whose config
//! file holds an unknown command, and one control client that displays a
//! message, sets and deletes a paste buffer, creates and kills a window and
//! types hostile bytes with [`tmux_cc::command::send_input`]. What tmux
//! printed must parse without an `Unknown` or `Malformed` event and must
//! match the version:
//!
//! * 3.4+: `%config-error`, `%message`, `%paste-buffer-changed`/`-deleted`;
//!   before 3.4 none of them, and the config error puts `%0` in view mode
//!   (`%pane-mode-changed %0`) until `send-keys -X cancel`;
//! * 3.8: no `%window-add @0` for the session's first window, and
//!   `kill-window` of a window of the attached session is `%window-close`
//!   (`%unlinked-window-close` before 3.8);
//! * every version: `send-keys` bytes reach the pane literally (`#{…}`,
//!   `%`, `$`, `~`, `;`, quotes, backslash are not expanded).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use tmux_cc::command::{cancel_mode, send_input};
use tmux_cc::ids::{PaneId, WindowId};
use tmux_cc::{Event, Parser};

static COUNTER: AtomicUsize = AtomicUsize::new(0);
const TIMEOUT: Duration = Duration::from_secs(20);
/// Typed into `cat` in `%0`; its echo must come back byte for byte.
const TYPED: &[u8] = b"x#{pane_id}#(id)%H;$HOME~'\"\\y\n";
const TYPED_ECHO: &[u8] = b"x#{pane_id}#(id)%H;$HOME~'\"\\y";

/// The `tmux` on `PATH`, then every `/opt/tmux-*/bin/tmux`, by version.
pub fn binaries() -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from("tmux")];
    let mut extra: Vec<PathBuf> = std::fs::read_dir("/opt")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("tmux-"))
                .map(|e| e.path().join("bin/tmux"))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default();
    extra.sort();
    out.extend(extra);
    out
}

/// `(major, minor, "tmux 3.5a")` from `tmux -V` (`next-3.6` counts as 3.6).
pub fn version(bin: &Path) -> (u32, u32, String) {
    let out = Command::new(bin)
        .arg("-V")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let word = text.split_whitespace().last().unwrap_or("");
    let digits = word.trim_start_matches(|c: char| !c.is_ascii_digit());
    let mut parts = digits.split('.');
    let major = parts.next().and_then(|m| m.parse().ok());
    let minor = parts
        .next()
        .map(|m| {
            m.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|m| m.parse().ok());
    match (major, minor) {
        (Some(a), Some(b)) => (a, b, text),
        _ => panic!("{}: cannot read a version from {text:?}", bin.display()),
    }
}

/// Runs the workload on one tmux and returns every event it printed.
fn run(bin: &Path, below_3_4: bool) -> Vec<Event> {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("bad.conf");
    std::fs::write(&conf, "this-is-not-a-command\n").expect("writing the config");
    let socket = format!(
        "tb-ver-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    let mut child = Command::new(bin)
        .arg("-u")
        .args(["-L", &socket, "-f"])
        .arg(&conf)
        .args([
            "-C",
            "new-session",
            "-s",
            "v",
            "-x",
            "80",
            "-y",
            "24",
            "cat",
        ])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("LANG", "C.UTF-8")
        .env("TERM", "xterm-256color")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut parser = Parser::new();
        let mut buf = vec![0u8; 65536];
        loop {
            let n = stdout.read(&mut buf).unwrap_or(0);
            if n == 0 {
                parser.finish();
            } else {
                parser.push(&buf[..n]);
            }
            while let Some(e) = parser.next_event() {
                if tx.send(e).is_err() {
                    return;
                }
            }
            if n == 0 {
                return;
            }
        }
    });

    let mut script = String::new();
    if below_3_4 {
        // The config error left %0 in view mode: keys would go to the mode.
        script.push_str(cancel_mode(PaneId(0)).text());
        script.push('\n');
    }
    for line in [
        "display-message v-msg",
        "set-buffer -b tbbuf xyz",
        "delete-buffer -b tbbuf",
        "new-window -d -n extra cat",
        "kill-window -t @1",
    ] {
        script.push_str(line);
        script.push('\n');
    }
    for line in send_input(PaneId(0), TYPED) {
        script.push_str(line.text());
        script.push('\n');
    }
    stdin
        .write_all(script.as_bytes())
        .expect("writing commands");
    stdin.flush().expect("flushing commands");

    // Collect until `cat` echoed the typed line twice (tty echo + cat).
    let mut events = Vec::new();
    let mut echo = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    let mut closed = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(e) => {
                if let Event::Output {
                    pane: PaneId(0),
                    data,
                }
                | Event::ExtendedOutput {
                    pane: PaneId(0),
                    data,
                    ..
                } = &e
                {
                    echo.extend_from_slice(data);
                }
                events.push(e);
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {}
        }
        let echoed = echo
            .windows(TYPED_ECHO.len())
            .filter(|w| *w == TYPED_ECHO)
            .count()
            >= 2;
        if !closed && (echoed || Instant::now() >= deadline) {
            // An empty line ends the control client; %exit follows.
            let _ = stdin.write_all(b"\n");
            let _ = stdin.flush();
            closed = true;
        }
        if Instant::now() >= deadline + Duration::from_secs(5) {
            break;
        }
    }
    drop(stdin);
    let _ = Command::new(bin)
        .args(["-L", &socket, "kill-server"])
        .output();
    let _ = child.kill();
    let _ = child.wait();
    events
}

fn has(events: &[Event], pred: impl Fn(&Event) -> bool) -> bool {
    events.iter().any(pred)
}

#[test]
fn each_installed_tmux_speaks_its_version_of_control_mode() {
    let mut failures = Vec::new();
    let mut checked = Vec::new();
    for bin in binaries() {
        let (major, minor, text) = version(&bin);
        let at_least = |a: u32, b: u32| (major, minor) >= (a, b);
        let events = run(&bin, !at_least(3, 4));
        let mut fail = |what: String| failures.push(format!("{text} ({}): {what}", bin.display()));

        let strange: Vec<_> = events
            .iter()
            .filter(|e| matches!(e, Event::Unknown { .. } | Event::Malformed(_)))
            .collect();
        if !strange.is_empty() {
            fail(format!("unparsed lines {strange:?}"));
        }
        let failed: Vec<_> = events
            .iter()
            .filter(|e| matches!(e, Event::Reply(r) if !r.success))
            .collect();
        if !failed.is_empty() {
            fail(format!("commands failed: {failed:?}"));
        }
        if !has(&events, |e| matches!(e, Event::Exit { .. })) {
            fail("no %exit".into());
        }

        let config_error = has(
            &events,
            |e| matches!(e, Event::ConfigError { text } if text.windows(21).any(|w| w == b"this-is-not-a-command")),
        );
        let message = has(
            &events,
            |e| matches!(e, Event::Message { text } if &text[..] == b"v-msg"),
        );
        let buf_set = has(
            &events,
            |e| matches!(e, Event::PasteBufferChanged { name } if &name[..] == b"tbbuf"),
        );
        let buf_del = has(
            &events,
            |e| matches!(e, Event::PasteBufferDeleted { name } if &name[..] == b"tbbuf"),
        );
        let view_mode = has(&events, |e| {
            matches!(e, Event::PaneModeChanged { pane: PaneId(0) })
        });
        let new34 = at_least(3, 4);
        for (name, seen) in [
            ("%config-error", config_error),
            ("%message", message),
            ("%paste-buffer-changed", buf_set),
            ("%paste-buffer-deleted", buf_del),
        ] {
            if seen != new34 {
                fail(format!("{name} seen: {seen}, expected {new34}"));
            }
        }
        if !new34 && !view_mode {
            fail("config error did not put %0 in view mode".into());
        }

        let first_add = has(&events, |e| {
            matches!(
                e,
                Event::WindowAdd {
                    window: WindowId(0)
                }
            )
        });
        if first_add == at_least(3, 8) {
            fail(format!("%window-add @0 seen: {first_add}"));
        }
        let close = has(&events, |e| {
            matches!(
                e,
                Event::WindowClose {
                    window: WindowId(1)
                }
            )
        });
        let unlinked = has(&events, |e| {
            matches!(
                e,
                Event::UnlinkedWindowClose {
                    window: WindowId(1)
                }
            )
        });
        if (close, unlinked) != (at_least(3, 8), !at_least(3, 8)) {
            fail(format!(
                "kill-window @1: %window-close {close}, %unlinked-window-close {unlinked}"
            ));
        }

        let mut echo = Vec::new();
        for e in &events {
            if let Event::Output {
                pane: PaneId(0),
                data,
            } = e
            {
                echo.extend_from_slice(data);
            }
        }
        let echoes = echo
            .windows(TYPED_ECHO.len())
            .filter(|w| *w == TYPED_ECHO)
            .count();
        if echoes < 2 {
            fail(format!(
                "typed bytes echoed {echoes} times: {:?}",
                String::from_utf8_lossy(&echo)
            ));
        }
        checked.push(text);
    }
    eprintln!("checked: {checked:?}");
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(!checked.is_empty());
}
