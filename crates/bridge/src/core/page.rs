//! The page's keys and tmux actions (docs/protocol.md §5.1), through
//! [`crate::page_input`]: every pane and window named is checked against
//! this session's topology (else `error` `unknown_pane`), and the command
//! lines go to tmux with their failures reported back as `error` `tmux`.
//!
//! On tmux 3.4 and later keys go to our own control client's key table
//! (`client-<pid>`, the name tmux gives a control client); before, they are
//! resolved from `list-keys`, loaded at start and again when keys arrive
//! and the bindings are older than [`BINDINGS_MAX_AGE`].

use std::time::{Duration, Instant};

use protocol::control::TmuxOp;
use tmux_cc::keys::KeyOptions;
use tmux_cc::{PaneId, Reply, WindowId, command};
use tracing::{debug, warn};

use super::replies::Expect;
use super::{ErrorCode, Machine, ToRelay};
use crate::page_input::{PageInput, PageInputError, PaneContext};

/// Key bindings older than this are listed again when keys arrive.
const BINDINGS_MAX_AGE: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub(super) struct Page {
    keys_via_client: bool,
    own_pid: Option<u32>,
    /// Made once tmux said which session we are on.
    input: Option<PageInput>,
    /// `list-keys` output waiting for `input` (tmux before 3.4).
    bindings: Option<String>,
    /// When `list-keys` was last asked for.
    listed_at: Option<Instant>,
}

impl Page {
    pub(super) fn new(keys_via_client: bool, own_pid: Option<u32>) -> Self {
        Page {
            keys_via_client,
            own_pid,
            input: None,
            bindings: None,
            listed_at: None,
        }
    }
}

impl Machine {
    /// Asks tmux for its key bindings (tmux before 3.4 only).
    pub(super) fn load_key_bindings(&mut self) {
        if self.page.keys_via_client {
            return;
        }
        self.page.listed_at = Some(self.now);
        self.issue(command::list_keys(), Expect::Keys);
    }

    pub(super) fn key_bindings_reply(&mut self, reply: &Reply) {
        if !reply.success {
            warn!(error = %String::from_utf8_lossy(&reply.text()), "list-keys failed");
            return;
        }
        let text = String::from_utf8_lossy(&reply.text()).into_owned();
        match self.page.input.as_mut() {
            Some(input) => {
                let bad = input.set_bindings(&text);
                if !bad.is_empty() {
                    debug!(count = bad.len(), "list-keys lines not understood");
                }
            }
            None => self.page.bindings = Some(text),
        }
    }

    /// The page input state, made on first use once the session is known.
    fn page_input(&mut self) -> Option<&mut PageInput> {
        if self.page.input.is_none() {
            let session = self.model.topology().session?;
            let mut input = match (self.page.keys_via_client, self.page.own_pid) {
                (true, Some(pid)) => {
                    PageInput::with_client(session, format!("client-{pid}"), KeyOptions::default())
                }
                _ => PageInput::resolving(session, KeyOptions::default()),
            };
            if let Some(text) = self.page.bindings.take() {
                input.set_bindings(&text);
            }
            self.page.input = Some(input);
        }
        self.page.input.as_mut()
    }

    /// Where `pane` stands in this session, if it is one of its panes.
    fn pane_context(&self, pane: PaneId) -> Option<PaneContext> {
        let topo = self.model.topology();
        let window = topo
            .windows
            .iter()
            .find(|w| w.panes.iter().any(|p| p.id == pane))?;
        Some(PaneContext {
            window: window.id,
            is_current: topo.active_window == Some(window.id) && window.active_pane == Some(pane),
            mode_table: None,
        })
    }

    fn window_is_ours(&self, window: WindowId) -> bool {
        self.model.topology().windows.iter().any(|w| w.id == window)
    }

    pub(super) fn page_keys(&mut self, pane: PaneId, keys: &[String]) {
        if !self.page.keys_via_client
            && self
                .page
                .listed_at
                .is_none_or(|at| self.now.duration_since(at) > BINDINGS_MAX_AGE)
        {
            self.load_key_bindings();
        }
        let ctx = self.pane_context(pane);
        let now_ms = self.wall_ms;
        let result = match self.page_input() {
            Some(input) => input.keys(pane, ctx.as_ref(), keys, now_ms),
            None => Err(PageInputError::NotReady),
        };
        self.page_commands(result, Some(pane));
    }

    pub(super) fn page_tmux(&mut self, op: &TmuxOp) {
        let ctx = op.pane().and_then(|p| self.pane_context(p));
        let window_ok = match op {
            TmuxOp::RenameWindow { window, .. } | TmuxOp::SelectWindow { window } => {
                self.window_is_ours(*window)
            }
            _ => true,
        };
        let now_ms = self.wall_ms;
        let result = match self.page_input() {
            Some(input) => input.tmux(op, ctx.as_ref(), window_ok, now_ms),
            None => Err(PageInputError::NotReady),
        };
        self.page_commands(result, op.pane());
    }

    fn page_commands(
        &mut self,
        result: Result<Vec<command::CommandLine>, PageInputError>,
        pane: Option<PaneId>,
    ) {
        match result {
            Ok(lines) => {
                for line in lines {
                    self.issue(line, Expect::Page);
                }
            }
            Err(err) => {
                let code = match err {
                    PageInputError::Unknown => ErrorCode::UnknownPane,
                    PageInputError::Encode(_) => ErrorCode::Invalid,
                    PageInputError::NotReady => ErrorCode::NotReady,
                };
                let message = match (code, pane) {
                    (ErrorCode::UnknownPane, Some(p)) => format!("pane {p} is not in this session"),
                    _ => err.to_string(),
                };
                warn!(%code, "a page command refused");
                self.text(|generation| ToRelay::Error {
                    generation,
                    code,
                    message,
                });
            }
        }
    }
}
