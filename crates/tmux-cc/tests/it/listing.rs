//! `tmux_cc::listing` against every installed tmux (the `tmux` on `PATH`
//! and each `/opt/tmux-*/bin/tmux`, as in `versions`): the `list-windows`
//! reply of a session with a zoomed split window named with spaces and
//! non-ASCII parses into the windows tmux has, `list-clients` tells our
//! control client from a person's terminal attached through `script(1)`
//! (both on session `$0`), and the window size a terminal must have to
//! leave the window as it is equals that terminal's size.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tmux_cc::listing::{self, ClientLine, TerminalSize, WindowLine};
use tmux_cc::{Layout, PaneId, SessionId, WindowId};

use crate::real_tmux::Tmux;
use crate::versions::{binaries, version};

const NAME: &str = "two  words café";

fn windows(t: &mut Tmux) -> Vec<WindowLine> {
    let line = listing::list_windows(SessionId(0)).expect("list-windows line");
    let replies = t.ok(&line);
    assert_eq!(replies.len(), 1);
    replies[0]
        .lines
        .iter()
        .map(|l| WindowLine::parse(l).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

fn clients(t: &mut Tmux) -> Vec<ClientLine> {
    let line = listing::list_clients().expect("list-clients line");
    let replies = t.ok(&line);
    replies[0]
        .lines
        .iter()
        .map(|l| ClientLine::parse(l).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

fn terminal_size(t: &mut Tmux) -> TerminalSize {
    let replies = t.ok(&listing::window_size(SessionId(0)));
    TerminalSize::parse(&replies[0].lines[0]).unwrap_or_else(|e| panic!("{e}"))
}

/// A person's terminal: `tmux attach` in a pty made by `script(1)`.
struct TtyClient(Child);

impl TtyClient {
    fn attach(bin: &Path, socket: &str) -> TtyClient {
        let cmd = format!(
            "stty cols 80 rows 24; exec {} -u -L {socket} -f /dev/null attach -t =t",
            bin.display()
        );
        let child = Command::new("script")
            .args(["-qfec", &cmd, "/dev/null"])
            .env("TERM", "xterm-256color")
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting script(1)");
        TtyClient(child)
    }
}

impl Drop for TtyClient {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn check(bin: &Path) {
    let mut t = Tmux::start_with(bin, |_| "cat".to_owned());
    let ok = |out: std::process::Output, what: &str| {
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ok(
        t.plain(&["new-window", "-d", "-n", NAME, "cat"]),
        "new-window",
    );
    ok(
        t.plain(&["split-window", "-d", "-t", "@1", "cat"]),
        "split-window",
    );
    ok(
        t.plain(&["resize-pane", "-Z", "-t", "%1"]),
        "resize-pane -Z",
    );

    let w = windows(&mut t);
    assert_eq!(w.len(), 2, "{w:?}");
    assert_eq!((w[0].window, w[0].index), (WindowId(0), 0));
    assert_eq!((w[1].window, w[1].index), (WindowId(1), 1));
    assert!(w[0].active && !w[1].active, "{w:?}");
    assert_eq!(&w[1].name[..], NAME.as_bytes());
    assert!(w[1].flags.contains(&b'Z'), "zoomed: {w:?}");
    let full = Layout::parse(&w[1].layout).expect("layout");
    let visible = Layout::parse(&w[1].visible_layout).expect("visible layout");
    let panes = |l: &Layout| l.panes().iter().map(|p| p.pane).collect::<Vec<_>>();
    assert_eq!(panes(&full), vec![PaneId(1), PaneId(2)]);
    assert_eq!(panes(&visible), vec![PaneId(1)]);
    assert_eq!(
        panes(&Layout::parse(&w[0].layout).expect("layout")),
        [PaneId(0)]
    );

    // Only our control client, then a person's terminal too.
    let c = clients(&mut t);
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(c[0].control && c[0].pid == t.client_pid(), "{c:?}");
    assert_eq!(c[0].session, Some(SessionId(0)), "{c:?}");
    let tty = TtyClient::attach(bin, &t.socket);
    let deadline = Instant::now() + Duration::from_secs(20);
    let person = loop {
        let c = clients(&mut t);
        if let Some(p) = c.iter().find(|c| !c.control) {
            assert_eq!(c.len(), 2, "{c:?}");
            break p.clone();
        }
        assert!(Instant::now() < deadline, "no tty client appeared: {c:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    // script(1) runs the client as its child: another process than ours.
    assert!(
        person.pid != t.client_pid() && person.pid != 0,
        "{person:?}"
    );
    assert!(person.tty.starts_with(b"/dev/"), "{person:?}");
    assert_eq!(person.session, Some(SessionId(0)), "{person:?}");
    // The 80x24 terminal is the latest client: the window is 80x23 under
    // its status line, and the terminal size for it is the terminal's.
    let want = TerminalSize { cols: 80, rows: 24 };
    let deadline = Instant::now() + Duration::from_secs(20);
    while terminal_size(&mut t) != want {
        assert!(
            Instant::now() < deadline,
            "terminal size {:?}",
            terminal_size(&mut t)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(tty);
    t.assert_alive();
}

#[test]
fn listings_parse_on_every_installed_tmux() {
    let mut checked = Vec::new();
    for bin in binaries() {
        let (_, _, text) = version(&bin);
        check(&bin);
        checked.push(text);
    }
    eprintln!("checked: {checked:?}");
    assert!(!checked.is_empty());
}
