//! Unit tests of the session core, one module per job: tmux events and
//! relay messages go in at a fabricated `now`, and the effects (command
//! lines, frames and their sequence ranges, snapshots, messages) are
//! checked. No tmux, no sockets, no sleeping: time is an argument.

mod flood;
mod hidden;
mod idle;
mod input;
mod looping;
mod page;
mod replies;
mod resize;
mod resync;
mod sequence;
mod snapshot;
mod topology;

use std::time::{Duration, Instant};

use bytes::Bytes;
use protocol::wire::{Frame, FrameKind, RecordBody};
use tmux_cc::{Event, PaneId, Reply, SessionId, WindowId};

use super::{CoreConfig, Effect, Input, Machine, Now, RelayMsg, ToRelay};
use crate::unacked::Unacked;

/// Our control client's pid in the fabricated `list-clients` replies.
const OWN_PID: u32 = 100;
/// The wall clock at `t0`.
const WALL0: u64 = 1_700_000_000_000;
/// One pane filling an 80x24 window.
const ONE_PANE: &str = "b25d,80x24,0,0,0";
/// Panes %0 and %1 side by side.
const TWO_PANES: &str = "8205,80x24,0,0{40x24,0,0,0,39x24,41,0,1}";

/// A machine, a fabricated clock and a spill directory.
struct H {
    m: Machine,
    t0: Instant,
    now: Instant,
    _dir: tempfile::TempDir,
}

impl H {
    fn new() -> H {
        H::with(CoreConfig::default())
    }

    fn with(cfg: CoreConfig) -> H {
        let dir = tempfile::tempdir().expect("tempdir");
        let unacked = Unacked::new(
            cfg.unacked_memory_bytes,
            cfg.unacked_max_bytes,
            dir.path().to_path_buf(),
        );
        // The only clock read: where the fabricated timeline starts.
        let t0 = Instant::now();
        H {
            m: Machine::new(&cfg, unacked, Some(OWN_PID), t0),
            t0,
            now: t0,
            _dir: dir,
        }
    }

    /// A session on tmux session `$0` with window `@0` holding pane `%0`
    /// (80x24, resynced), served on relay connection 1 from seq 0, every
    /// command answered and every effect consumed; the clock at 1 s.
    fn ready() -> H {
        H::ready_with(CoreConfig::default())
    }

    fn ready_with(cfg: CoreConfig) -> H {
        let mut h = H::with(cfg);
        let e = h.input(Input::Start);
        assert_eq!(
            cmds(&e),
            ["list-clients -F '#{client_control_mode} #{client_pid} #{session_id} #{client_tty}'"]
        );
        h.clients(&[]);
        let e = h.ev(Event::SessionChanged {
            session: SessionId(0),
            name: Bytes::from_static(b"s"),
        });
        assert!(cmds(&e)[0].starts_with("list-windows -t '$0'"), "{e:?}");
        h.reply(true, &[&format!("@0 0 {ONE_PANE} {ONE_PANE} * 1 shell")]);
        let e = h.drained();
        assert_eq!(bundles(&e), [(PaneId(0), 10_000, false)], "{e:?}");
        h.answer_resync(PaneId(0), &["$ "], false);
        h.drained();
        h.at(1000);
        let e = h.input(Input::RelayOpened {
            generation: 1,
            last_seq: 0,
        });
        let f = frames(&e);
        assert_eq!(f.len(), 2, "a reset batch and a snapshot: {e:?}");
        h
    }

    /// Sets the clock to `ms` after the start.
    fn at(&mut self, ms: u64) -> &mut H {
        self.now = self.t0 + Duration::from_millis(ms);
        self
    }

    /// Moves the clock on by `ms`.
    fn advance(&mut self, ms: u64) -> &mut H {
        self.now += Duration::from_millis(ms);
        self
    }

    /// Milliseconds since the start.
    fn ms(&self) -> u64 {
        u64::try_from((self.now - self.t0).as_millis()).expect("ms")
    }

    fn input(&mut self, input: Input) -> Vec<Effect> {
        let wall_ms = WALL0 + self.ms();
        self.m.handle(
            input,
            Now {
                at: self.now,
                wall_ms,
            },
        )
    }

    fn ev(&mut self, ev: Event) -> Vec<Effect> {
        self.input(Input::Tmux(ev))
    }

    fn drained(&mut self) -> Vec<Effect> {
        self.input(Input::Drained)
    }

    fn tick(&mut self) -> Vec<Effect> {
        self.input(Input::Tick)
    }

    fn relay(&mut self, msg: RelayMsg) -> Vec<Effect> {
        self.input(Input::Relay(msg))
    }

    /// `%output` for `pane`.
    fn output(&mut self, pane: u32, data: &[u8]) -> Vec<Effect> {
        self.ev(Event::Output {
            pane: PaneId(pane),
            data: Bytes::copy_from_slice(data),
        })
    }

    /// `%layout-change` for `window`.
    fn layout(&mut self, window: u32, layout: &str) -> Vec<Effect> {
        self.ev(Event::LayoutChange {
            window: WindowId(window),
            layout: Bytes::copy_from_slice(layout.as_bytes()),
            visible_layout: None,
            flags: None,
        })
    }

    /// The next reply to one of our commands.
    fn reply(&mut self, success: bool, lines: &[&str]) -> Vec<Effect> {
        self.ev(Event::Reply(reply(success, lines)))
    }

    /// Answers `list-clients`: our control client plus a terminal per pid
    /// in `ttys`, all on session `$0`.
    fn clients(&mut self, ttys: &[u32]) -> Vec<Effect> {
        let mut lines = vec![format!("1 {OWN_PID} $0 ")];
        lines.extend(ttys.iter().map(|p| format!("0 {p} $0 /dev/pts/{p}")));
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        self.reply(true, &lines)
    }

    /// Answers a resync bundle for `pane` (80x24) whose screen shows `rows`.
    fn answer_resync(&mut self, pane: PaneId, rows: &[&str], continue_after: bool) -> Vec<Effect> {
        let mut out = self.reply(true, rows);
        out.extend(self.reply(true, &[]));
        out.extend(self.reply(true, &[&state_line(pane, 0)]));
        out.extend(self.reply(true, &[]));
        if continue_after {
            out.extend(self.reply(true, &[]));
        }
        out
    }
}

fn reply(success: bool, lines: &[&str]) -> Reply {
    Reply {
        time: 0,
        number: 0,
        flags: 1,
        success,
        lines: lines
            .iter()
            .map(|l| Bytes::copy_from_slice(l.as_bytes()))
            .collect(),
        truncated: false,
    }
}

/// A pane-state line (`tmux_cc::state::PANE_STATE_FORMAT`) of an 80x24
/// pane with `history` lines of history.
fn state_line(pane: PaneId, history: u32) -> String {
    format!(
        "pane_id={pane} window_id=@0 pane_width=80 pane_height=24 cursor_x=2 cursor_y=0 cursor_flag=1 insert_flag=0 keypad_cursor_flag=0 keypad_flag=0 wrap_flag=1 origin_flag=0 mouse_standard_flag=0 mouse_button_flag=0 mouse_any_flag=0 mouse_all_flag=0 mouse_utf8_flag=0 mouse_sgr_flag=0 alternate_on=0 alternate_saved_x=0 alternate_saved_y=0 scroll_region_upper=0 scroll_region_lower=23 pane_tabs=8,16,24 history_size={history} history_limit=10000 pane_in_mode=0 pane_dead=0 bracket_paste_flag= synchronized_output_flag= pane_title=t"
    )
}

/// The command lines sent, without their newline.
fn cmds(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Tmux(line) => Some(line.text().trim_end().to_owned()),
            _ => None,
        })
        .collect()
}

/// The resync bundles sent: (pane, history lines, with `continue`).
fn bundles(effects: &[Effect]) -> Vec<(PaneId, u32, bool)> {
    cmds(effects)
        .iter()
        .filter(|c| c.starts_with("capture-pane") && c.contains(" -S -"))
        .map(|c| {
            let pane = c
                .split("-t '")
                .nth(1)
                .and_then(|r| r.split('\'').next())
                .and_then(|p| p.parse::<PaneId>().ok())
                .expect("pane");
            let history = c
                .split(" -S -")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse().ok())
                .expect("history");
            (pane, history, c.contains(":continue'"))
        })
        .collect()
}

/// The frames sent, decoded, with their connection generation.
fn frames(effects: &[Effect]) -> Vec<(u64, Frame)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Relay(ToRelay::Frame { generation, bytes }) => {
                Some((*generation, Frame::decode(bytes).expect("a valid frame")))
            }
            _ => None,
        })
        .collect()
}

/// The Batch frames' (first, last) sequence ranges.
fn batches(effects: &[Effect]) -> Vec<(u64, u64)> {
    frames(effects)
        .into_iter()
        .filter(|(_, f)| f.kind == FrameKind::Batch)
        .map(|(_, f)| (f.first_seq, f.last_seq))
        .collect()
}

/// The Snapshot frames' sequence numbers.
fn snapshots(effects: &[Effect]) -> Vec<u64> {
    frames(effects)
        .into_iter()
        .filter(|(_, f)| f.kind == FrameKind::Snapshot)
        .map(|(_, f)| f.first_seq)
        .collect()
}

/// The Output bytes of `pane` in the frames sent.
fn output_of(effects: &[Effect], pane: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for (_, f) in frames(effects) {
        for r in f.records {
            if let RecordBody::Output { pane: p, bytes } = r.body
                && p == PaneId(pane)
            {
                out.extend_from_slice(&bytes);
            }
        }
    }
    out
}

/// The PaneResets in Batch frames, by pane.
fn resets(effects: &[Effect]) -> Vec<PaneId> {
    frames(effects)
        .into_iter()
        .filter(|(_, f)| f.kind == FrameKind::Batch)
        .flat_map(|(_, f)| f.records)
        .filter_map(|r| match r.body {
            RecordBody::PaneReset { pane, .. } => Some(pane),
            _ => None,
        })
        .collect()
}

/// Whether the effects say `rebase` (with the generation) before every
/// frame they send; `None` when they do not say it.
fn rebase_first(effects: &[Effect]) -> Option<(u64, bool)> {
    let at = effects
        .iter()
        .position(|e| matches!(e, Effect::Relay(ToRelay::Rebase { .. })))?;
    let Effect::Relay(ToRelay::Rebase { generation }) = effects[at] else {
        return None;
    };
    let first_frame = effects
        .iter()
        .position(|e| matches!(e, Effect::Relay(ToRelay::Frame { .. })));
    Some((generation, first_frame.is_none_or(|f| at < f)))
}

/// The text messages for the relay.
fn texts(effects: &[Effect]) -> Vec<ToRelay> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Relay(m @ (ToRelay::Status { .. } | ToRelay::Error { .. })) => Some(m.clone()),
            _ => None,
        })
        .collect()
}
