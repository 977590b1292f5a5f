//! The topology of a terminal session as the wire carries it (protocol §2):
//! the JSON body of a Topology record, sent whole on every change. Read by
//! the page (layout), the relay (which panes a session has) and tests.

use serde::{Deserialize, Serialize};
use tmux_cc::{PaneId, SessionId, WindowId};

/// The topology JSON of protocol §2 (sent whole on every change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Topology {
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub session: Option<SessionId>,
    pub name: String,
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub active_window: Option<WindowId>,
    pub windows: Vec<WindowInfo>,
}

/// One window in [`Topology`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct WindowInfo {
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub id: WindowId,
    pub index: Option<u32>,
    pub name: String,
    pub active: bool,
    pub layout: String,
    pub visible_layout: String,
    pub flags: String,
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub active_pane: Option<PaneId>,
    pub panes: Vec<PaneInfo>,
}

/// One pane in [`WindowInfo`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PaneInfo {
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub id: PaneId,
    pub x: i32,
    pub y: i32,
    pub cols: u16,
    pub rows: u16,
    pub title: String,
}

impl Topology {
    /// Whether `pane` is one of the session's panes.
    pub fn has_pane(&self, pane: PaneId) -> bool {
        self.windows
            .iter()
            .any(|w| w.panes.iter().any(|p| p.id == pane))
    }
}
