//! `tmux_cc::keys` and the key commands against every installed tmux (the
//! one on PATH and each /opt/tmux-*/bin/tmux): `list-keys` of a default
//! server parses without a bad line; `C-b %` resolves to the binding's
//! command, which tmux runs as given (a split appears); unbound keys after
//! the prefix are dropped. Each server is private (`tb-keys-<pid>-<n>`) and
//! killed at the end.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use tmux_cc::command::{bound_command, new_window_current, send_key_name, split_window, zoom_pane};
use tmux_cc::keys::{KeyAction, KeyBindings, KeyOptions, KeyTables};
use tmux_cc::{PaneId, SessionId};

use crate::versions::{binaries, version};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

struct Server<'a> {
    bin: &'a Path,
    socket: String,
}

impl Server<'_> {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new(self.bin)
            .args(["-u", "-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a command line as the control client would send it: through
    /// tmux's own parser (`source-file`).
    fn run_line(&self, line: &str, dir: &Path) {
        let file = dir.join("line.conf");
        std::fs::write(&file, line).expect("write");
        self.run(&["source-file", file.to_str().expect("utf-8 path")]);
    }

    fn panes(&self) -> usize {
        self.run(&["list-panes", "-a", "-F", "#{pane_id}"])
            .lines()
            .count()
    }
}

impl Drop for Server<'_> {
    fn drop(&mut self) {
        let _ = Command::new(self.bin)
            .args(["-L", &self.socket, "kill-server"])
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn list_keys_resolve_and_run_on_every_tmux() {
    for bin in binaries() {
        let (_, _, name) = version(&bin);
        let dir = tempfile::tempdir().expect("tempdir");
        let server = Server {
            bin: &bin,
            socket: format!(
                "tb-keys-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::SeqCst)
            ),
        };
        server.run(&["new-session", "-d", "-s", "k", "-x", "80", "-y", "24"]);
        let (bindings, errors) = KeyBindings::parse(&server.run(&["list-keys"]));
        assert_eq!(errors, vec![], "{name}: every list-keys line parses");
        assert!(
            bindings.table_len("prefix") > 40,
            "{name}: the default prefix table"
        );
        let opts = KeyOptions {
            prefix: server.run(&["show", "-gv", "prefix"]).trim().to_owned(),
            prefix2: None,
            repeat_time_ms: server
                .run(&["show", "-gv", "repeat-time"])
                .trim()
                .parse()
                .expect("repeat-time"),
            default_table: "root".into(),
        };
        assert_eq!(opts.prefix, "C-b", "{name}");
        let mut st = KeyTables::default();
        assert_eq!(
            st.press(&bindings, &opts, "C-b", None, 0),
            KeyAction::Table("prefix".into())
        );
        let KeyAction::Run(cmd) = st.press(&bindings, &opts, "%", None, 1) else {
            panic!("{name}: C-b % is bound");
        };
        assert_eq!(cmd, "split-window -h", "{name}");
        let before = server.panes();
        server.run_line(bound_command(&cmd).expect("line").text(), dir.path());
        assert_eq!(
            server.panes(),
            before + 1,
            "{name}: the binding's command ran"
        );
        for key in ["\"", ";", "$", "{", "~"] {
            assert!(
                bindings.get("prefix", key).is_some(),
                "{name}: prefix {key:?} is bound"
            );
        }
        st.press(&bindings, &opts, "C-b", None, 2);
        assert_eq!(
            st.press(&bindings, &opts, "F9", None, 3),
            KeyAction::Drop,
            "{name}"
        );
        assert_eq!(
            st.press(&bindings, &opts, "x", None, 4),
            KeyAction::Forward("x".into())
        );
        // The encoder's lines for the page's controls run on this version.
        server.run_line(split_window(PaneId(0), false).text(), dir.path());
        assert_eq!(server.panes(), before + 2, "{name}: split below");
        server.run_line(zoom_pane(PaneId(0)).text(), dir.path());
        let flags = server.run(&["display-message", "-p", "-t", "%0", "#{window_zoomed_flag}"]);
        assert_eq!(flags.trim(), "1", "{name}: zoomed");
        server.run_line(
            send_key_name(SessionId(0), "Enter").expect("line").text(),
            dir.path(),
        );
        let windows = || {
            server
                .run(&["list-windows", "-F", "#{window_id}"])
                .lines()
                .count()
        };
        let before = windows();
        server.run_line(new_window_current(SessionId(0)).text(), dir.path());
        assert_eq!(windows(), before + 1, "{name}: a new window");
    }
}

#[test]
fn key_commands_quote_every_name() {
    use tmux_cc::command::{resize_pane_by, select_pane, send_keys_to_client};
    let keys = vec![
        "C-b".to_owned(),
        "'".to_owned(),
        "#".to_owned(),
        ";".to_owned(),
    ];
    assert_eq!(
        send_keys_to_client("client-42", &keys)
            .expect("line")
            .text(),
        r"send-keys -K -c 'client-42' -- 'C-b' ''\''' '##' ';'"
    );
    assert!(send_keys_to_client("c", &["\u{1b}[A".to_owned()]).is_err());
    assert!(send_keys_to_client("c", &[]).is_err());
    assert!(send_key_name(SessionId(1), "a\nb").is_err());
    assert_eq!(
        send_key_name(SessionId(1), "#").expect("line").text(),
        "send-keys -t '$1' -- '#'"
    );
    assert!(bound_command("kill-server\nnew-session").is_err());
    assert_eq!(
        resize_pane_by(PaneId(2), -3, 4).expect("line").text(),
        "resize-pane -t '%2' -L 3 ; resize-pane -t '%2' -D 4"
    );
    assert_eq!(resize_pane_by(PaneId(2), 0, 0), None);
    assert_eq!(
        select_pane(Some(tmux_cc::WindowId(1)), PaneId(2)).text(),
        "select-window -t '@1' ; select-pane -t '%2'"
    );
}
