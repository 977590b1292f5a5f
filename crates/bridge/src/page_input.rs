//! The runner's side of "tmux from the browser" (docs/protocol.md §5.1):
//! turns the page's key presses (`keys`) and tmux actions (`tmux`) into
//! the command lines to send to tmux, as a state machine with no I/O and
//! no clock (time is an argument), for the session core to drive.
//!
//! Keys go through tmux's key tables like a terminal client's: on tmux 3.4
//! and later with `send-keys -K` to the runner's own control client; before
//! 3.4 through [`tmux_cc::keys`], resolved here from the `list-keys` output
//! and options the core feeds in. Typing in a pane that is not tmux's
//! active one first makes it active (as clicking it would with tmux's
//! mouse mode). Every pane and window named must be the session's (the
//! caller checks against its topology and passes the answer in
//! [`PaneContext`]).

use protocol::control::{SplitDirection, TmuxOp};
use tmux_cc::command::{self, CommandError, CommandLine};
use tmux_cc::keys::{KeyAction, KeyBindings, KeyOptions, KeyTables};
use tmux_cc::{PaneId, SessionId, WindowId};

/// Where a pane the page names stands in the session (from the topology).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaneContext {
    /// The pane's window.
    pub window: WindowId,
    /// The pane is the active pane of the session's current window.
    pub is_current: bool,
    /// The key table of the pane's mode (`copy-mode`, `copy-mode-vi`) when
    /// it is in one.
    pub mode_table: Option<String>,
}

/// Why a page message produced no command.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PageInputError {
    /// A pane or window that is not the session's.
    #[error("no such pane or window in this session")]
    Unknown,
    /// The key or name does not encode (control characters, empty).
    #[error(transparent)]
    Encode(#[from] CommandError),
    /// Keys before the runner learned how to resolve them (tmux < 3.4 and
    /// no `list-keys` yet).
    #[error("the key bindings are not loaded yet")]
    NotReady,
}

/// How keys reach tmux's key tables on this server.
#[derive(Debug, Clone)]
enum Route {
    /// tmux 3.4+: `send-keys -K -c CLIENT`.
    Client(String),
    /// tmux < 3.4: resolved here.
    Resolve {
        bindings: Option<KeyBindings>,
        state: KeyTables,
    },
}

/// One session's page input state.
#[derive(Debug, Clone)]
pub struct PageInput {
    session: SessionId,
    route: Route,
    opts: KeyOptions,
}

impl PageInput {
    /// For tmux 3.4 and later: keys go to the key table of `client`, the
    /// runner's own control client (`#{client_name}`).
    pub fn with_client(session: SessionId, client: String, opts: KeyOptions) -> Self {
        PageInput {
            session,
            route: Route::Client(client),
            opts,
        }
    }

    /// For tmux before 3.4: keys are resolved here once
    /// [`PageInput::set_bindings`] has the `list-keys` output.
    pub fn resolving(session: SessionId, opts: KeyOptions) -> Self {
        PageInput {
            session,
            route: Route::Resolve {
                bindings: None,
                state: KeyTables::default(),
            },
            opts,
        }
    }

    /// Loads (or reloads) `list-keys` output; returns the lines that did
    /// not parse (logged by the caller; the rest is used).
    pub fn set_bindings(&mut self, list_keys: &str) -> Vec<String> {
        let (parsed, errors) = KeyBindings::parse(list_keys);
        if let Route::Resolve { bindings, .. } = &mut self.route {
            *bindings = Some(parsed);
        }
        errors.into_iter().map(|e| e.line).collect()
    }

    /// The session options keys depend on (`prefix`, `prefix2`,
    /// `repeat-time`, `key-table`).
    pub fn set_options(&mut self, opts: KeyOptions) {
        self.opts = opts;
    }

    /// The commands for key presses typed in `pane` at `now_ms`.
    pub fn keys(
        &mut self,
        pane: PaneId,
        ctx: Option<&PaneContext>,
        keys: &[String],
        now_ms: u64,
    ) -> Result<Vec<CommandLine>, PageInputError> {
        let ctx = ctx.ok_or(PageInputError::Unknown)?;
        let mut out = Vec::new();
        if !ctx.is_current {
            out.push(command::select_pane(Some(ctx.window), pane));
        }
        match &mut self.route {
            Route::Client(client) => out.push(command::send_keys_to_client(client, keys)?),
            Route::Resolve { bindings, state } => {
                let bindings = bindings.as_ref().ok_or(PageInputError::NotReady)?;
                for key in keys {
                    match state.press(bindings, &self.opts, key, ctx.mode_table.as_deref(), now_ms)
                    {
                        KeyAction::Table(_) | KeyAction::Drop => {}
                        KeyAction::Run(cmd) => out.push(command::bound_command(&cmd)?),
                        KeyAction::Forward(k) => {
                            out.push(command::send_key_name(self.session, &k)?);
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// The commands for a tmux action. `pane_ctx` answers for the action's
    /// pane, `window_ok` whether its window (rename, select) is the session's.
    pub fn tmux(
        &mut self,
        op: &TmuxOp,
        pane_ctx: Option<&PaneContext>,
        window_ok: bool,
        now_ms: u64,
    ) -> Result<Vec<CommandLine>, PageInputError> {
        if op.pane().is_some() && pane_ctx.is_none() {
            return Err(PageInputError::Unknown);
        }
        Ok(match op {
            TmuxOp::NewWindow => vec![command::new_window_current(self.session)],
            TmuxOp::Split { pane, direction } => vec![command::split_window(
                *pane,
                matches!(direction, SplitDirection::Right),
            )],
            TmuxOp::KillPane { pane } => vec![command::kill_pane(*pane)],
            TmuxOp::RenameWindow { window, name } => {
                if !window_ok {
                    return Err(PageInputError::Unknown);
                }
                vec![command::rename_window(*window, name)?]
            }
            TmuxOp::Zoom { pane } => vec![command::zoom_pane(*pane)],
            TmuxOp::SelectPane { pane } => {
                let ctx = pane_ctx.ok_or(PageInputError::Unknown)?;
                vec![command::select_pane(Some(ctx.window), *pane)]
            }
            TmuxOp::SelectWindow { window } => {
                if !window_ok {
                    return Err(PageInputError::Unknown);
                }
                vec![command::select_window(*window)]
            }
            TmuxOp::ResizePane { pane, dx, dy } => command::resize_pane_by(*pane, *dx, *dy)
                .into_iter()
                .collect(),
            TmuxOp::CopyMode { pane } => vec![command::copy_mode(*pane)],
            TmuxOp::SendPrefix { pane } => {
                let prefix = self.opts.prefix.clone();
                return self.keys(*pane, pane_ctx, &[prefix], now_ms);
            }
            _ => Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(current: bool) -> PaneContext {
        PaneContext {
            window: WindowId(2),
            is_current: current,
            mode_table: None,
        }
    }

    fn texts(lines: Vec<CommandLine>) -> Vec<String> {
        lines.iter().map(|l| l.text().to_owned()).collect()
    }

    const LIST: &str = "bind-key -T prefix c new-window\nbind-key -T prefix % split-window -h\n\
                        bind-key -T copy-mode q send-keys -X cancel\n";

    #[test]
    fn keys_on_tmux_3_4_go_to_the_client_key_table() {
        let mut p = PageInput::with_client(SessionId(1), "client-9".into(), KeyOptions::default());
        let keys = vec!["C-b".to_owned(), "c".to_owned()];
        assert_eq!(
            texts(p.keys(PaneId(3), Some(&ctx(true)), &keys, 0).expect("ok")),
            vec!["send-keys -K -c 'client-9' -- 'C-b' 'c'"]
        );
        // A pane that is not tmux's active one is made active first.
        assert_eq!(
            texts(p.keys(PaneId(3), Some(&ctx(false)), &keys, 0).expect("ok")),
            vec![
                "select-window -t '@2' ; select-pane -t '%3'",
                "send-keys -K -c 'client-9' -- 'C-b' 'c'"
            ]
        );
        assert_eq!(
            p.keys(PaneId(3), None, &keys, 0),
            Err(PageInputError::Unknown)
        );
    }

    #[test]
    fn keys_before_3_4_are_resolved_from_list_keys() {
        let mut p = PageInput::resolving(SessionId(1), KeyOptions::default());
        let k = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            p.keys(PaneId(3), Some(&ctx(true)), &k(&["a"]), 0),
            Err(PageInputError::NotReady)
        );
        assert_eq!(p.set_bindings(LIST), Vec::<String>::new());
        assert_eq!(
            texts(
                p.keys(
                    PaneId(3),
                    Some(&ctx(true)),
                    &k(&["C-b", "c", "l", "s", "Enter"]),
                    0
                )
                .expect("ok")
            ),
            vec![
                "new-window",
                "send-keys -t '$1' -- 'l'",
                "send-keys -t '$1' -- 's'",
                "send-keys -t '$1' -- 'Enter'"
            ]
        );
        // In copy-mode the mode's table applies; unbound keys are dropped.
        let copy = PaneContext {
            mode_table: Some("copy-mode".into()),
            ..ctx(true)
        };
        assert_eq!(
            texts(
                p.keys(PaneId(3), Some(&copy), &k(&["x", "q"]), 10)
                    .expect("ok")
            ),
            vec!["send-keys -X cancel"]
        );
        // The key bar's prefix button, then %.
        p.tmux(
            &TmuxOp::SendPrefix { pane: PaneId(3) },
            Some(&ctx(true)),
            true,
            20,
        )
        .expect("prefix");
        assert_eq!(
            texts(
                p.keys(PaneId(3), Some(&ctx(true)), &k(&["%"]), 21)
                    .expect("ok")
            ),
            vec!["split-window -h"]
        );
    }

    #[test]
    fn tmux_actions_become_commands_for_the_session_only() {
        let mut p = PageInput::with_client(SessionId(1), "c".into(), KeyOptions::default());
        let c = ctx(true);
        let run =
            |p: &mut PageInput, op: TmuxOp| texts(p.tmux(&op, Some(&c), true, 0).expect("command"));
        assert_eq!(run(&mut p, TmuxOp::NewWindow), vec!["new-window -t '$1:'"]);
        assert_eq!(
            run(
                &mut p,
                TmuxOp::Split {
                    pane: PaneId(3),
                    direction: SplitDirection::Below
                }
            ),
            vec!["split-window -v -t '%3'"]
        );
        assert_eq!(
            run(&mut p, TmuxOp::KillPane { pane: PaneId(3) }),
            vec!["kill-pane -t '%3'"]
        );
        assert_eq!(
            run(
                &mut p,
                TmuxOp::RenameWindow {
                    window: WindowId(2),
                    name: "a#b".into()
                }
            ),
            vec!["rename-window -t '@2' -- 'a##b'"]
        );
        assert_eq!(
            run(
                &mut p,
                TmuxOp::ResizePane {
                    pane: PaneId(3),
                    dx: 2,
                    dy: 0
                }
            ),
            vec!["resize-pane -t '%3' -R 2"]
        );
        assert_eq!(
            run(&mut p, TmuxOp::SendPrefix { pane: PaneId(3) }),
            vec!["send-keys -K -c 'c' -- 'C-b'"]
        );
        // Another session's pane or window: refused, nothing runs.
        assert_eq!(
            p.tmux(&TmuxOp::KillPane { pane: PaneId(99) }, None, true, 0),
            Err(PageInputError::Unknown)
        );
        assert_eq!(
            p.tmux(
                &TmuxOp::SelectWindow {
                    window: WindowId(99)
                },
                None,
                false,
                0
            ),
            Err(PageInputError::Unknown)
        );
    }
}
