//! Seeding against a real tmux: put a pane in a known state on a private
//! server, run the resync bundle through a control client, seed a model from
//! the replies and compare with tmux's own `capture-pane` and cursor.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tmux_cc::state::{PaneResync, RESYNC_REPLIES, resync_commands};
use tmux_cc::{Event, PaneId};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A private tmux server, killed on drop.
struct Server {
    socket: String,
    /// The socket file, removed on drop (tmux 3.3a's `kill-server` leaves it).
    socket_path: String,
    /// Holds the script the pane runs; deleted on drop.
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(cols: u32, rows: u32, script: &str) -> Server {
        let socket = format!(
            "tb-c-seed-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("script.sh");
        std::fs::write(&path, format!("{script}\nprintf 'READY'\nexec cat\n"))
            .expect("write script");
        let mut s = Server {
            socket,
            socket_path: String::new(),
            _dir: dir,
        };
        let ok = s
            .tmux(&[
                "new-session",
                "-d",
                "-s",
                "seed",
                "-x",
                &cols.to_string(),
                "-y",
                &rows.to_string(),
                "sh",
                &path.to_string_lossy(),
            ])
            .status
            .success();
        assert!(ok, "tmux new-session failed");
        s.socket_path = s.display("#{socket_path}");
        s.wait_for("READY");
        s
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .env("LANG", "C.UTF-8")
            .output()
            .expect("tmux runs")
    }

    fn capture(&self, extra: &[&str]) -> Vec<String> {
        let mut args = vec!["capture-pane", "-p", "-N", "-t", "%0"];
        args.extend_from_slice(extra);
        let out = self.tmux(&args);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim_end_matches(' ').to_owned())
            .collect()
    }

    fn display(&self, format: &str) -> String {
        String::from_utf8_lossy(
            &self
                .tmux(&["display-message", "-p", "-t", "%0", format])
                .stdout,
        )
        .trim()
        .to_owned()
    }

    /// Polls until the pane shows `marker` (the script has run), 10 s at most.
    fn wait_for(&self, marker: &str) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if self.capture(&[]).iter().any(|l| l.contains(marker)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("pane never showed {marker}");
    }

    /// Runs the resync bundle through a `-C` control client.
    fn resync(&self) -> PaneResync {
        let mut child = Command::new("tmux")
            .args([
                "-u",
                "-L",
                &self.socket,
                "-f",
                "/dev/null",
                "-C",
                "attach",
                "-t",
                "seed",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("control client");
        let mut stdin = child.stdin.take().expect("stdin");
        let mut stdout = child.stdout.take().expect("stdout");
        stdin
            .write_all(resync_commands(PaneId(0), 10_000, false).as_bytes())
            .expect("write");
        stdin.flush().expect("flush");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut parser = tmux_cc::Parser::new();
        let mut replies = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while replies.len() < RESYNC_REPLIES {
            let chunk = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("tmux answers in time");
            parser.push(&chunk);
            while let Some(ev) = parser.next_event() {
                if let Event::Reply(r) = ev
                    && r.flags == 1
                {
                    replies.push(r);
                }
            }
        }
        // An empty line detaches the client.
        let _ = stdin.write_all(b"\n");
        drop(stdin);
        let _ = child.wait();
        PaneResync::from_replies(&replies).expect("resync replies decode")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
        if !self.socket_path.is_empty() {
            let _ = std::fs::remove_file(&self.socket_path);
        }
    }
}

/// The profile of the `tmux` on PATH.
fn tmux_profile() -> transcript::emu::Profile {
    let out = Command::new("tmux").arg("-V").output().expect("tmux runs");
    transcript::emu::Profile::parse(&String::from_utf8_lossy(&out.stdout))
}

fn check(server: &Server, bracketed: bool) -> transcript::pane::PaneModel {
    let resync = server.resync();
    let model = transcript::seed::seed_with(&resync, 10_000, bracketed, tmux_profile())
        .expect("valid size");
    assert_eq!(
        model.rows_text(),
        server.capture(&[]),
        "rows equal capture-pane -p -N"
    );
    let cursor = server.display("#{cursor_x},#{cursor_y}");
    let (x, y) = model.cursor();
    assert_eq!(format!("{x},{y}"), cursor, "cursor");
    assert_eq!(
        model.screen().alternate_screen(),
        server.display("#{alternate_on}") == "1"
    );
    model
}

#[test]
fn seed_matches_real_tmux_primary_screen_with_history() {
    let script = r#"
i=1; while [ $i -le 40 ]; do printf '\033[3%dmhistory line %d\033[0m\n' $((i % 8)) $i; i=$((i+1)); done
printf 'a long line that is much wider than the pane so that it wraps over lines: 0123456789\n'
printf 'wide: 日本語 e\314\201 \033(0lqqk\033(B tabs:\there\n'
printf '\033[1;4mbold underline\033[0m \033[7minverse\033[0m \033[38;5;200mx256\033[0m\n'
printf '\033]2;seed title\007\033[?1h\033=\033[?1002h\033[?1006h\033[?25l'
printf '\033[3;5r\033[4;6H'
"#;
    let server = Server::start(60, 12, script);
    let mut model = check(&server, false);
    assert_eq!(model.title(), b"seed title");
    let s = model.screen();
    assert!(s.application_cursor() && s.application_keypad() && s.hide_cursor());
    assert_eq!(s.mouse_tracking(), 1002);
    assert_eq!(s.mouse_encoding(), 1006);
    assert!(
        model.scrollback_len() >= 30,
        "history came along: {}",
        model.scrollback_len()
    );
    // The attributes match capture-pane -e as well.
    assert_eq!(model.rows_ansi(), server.capture(&["-e"]));
    // And the seeded model survives a snapshot.
    let bytes = model.reset_bytes();
    let mut fresh =
        transcript::pane::PaneModel::with_profile(60, 12, 10_000, model.profile()).expect("size");
    fresh.feed(&bytes);
    assert_eq!(fresh.rows_ansi(), model.rows_ansi());
}

#[test]
fn seed_matches_real_tmux_alternate_screen() {
    let script = r#"
i=1; while [ $i -le 20 ]; do printf 'primary %d\n' $i; i=$((i+1)); done
printf 'saved cursor here'
printf '\033[?1049h\033[H\033[2J\033[44m full screen app \033[0m\033[5;3Hstatus\033[2;10H'
"#;
    let server = Server::start(40, 8, script);
    let mut model = check(&server, false);
    // Leaving the alternate screen shows tmux's saved primary screen
    // (`capture-pane -a`) and the cursor saved on entering it.
    let saved = server.display("#{alternate_saved_x},#{alternate_saved_y}");
    model.feed(b"\x1b[?1049l");
    assert_eq!(model.rows_text(), server.capture(&["-a"]));
    let (x, y) = model.cursor();
    assert_eq!(format!("{x},{y}"), saved);
    assert_eq!(model.rows_text()[7], "saved cursor here");
}
