//! tmux layout strings (being written: see issue 2).

use crate::ids::PaneId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub checksum: u16,
    pub root: LayoutCell,
    pub floating: Vec<LayoutCell>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutCell {
    pub width: u32,
    pub height: u32,
    pub x: i32,
    pub y: i32,
    pub node: LayoutNode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutNode {
    Pane(PaneId),
    LeftRight(Vec<LayoutCell>),
    TopBottom(Vec<LayoutCell>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid layout")]
pub struct LayoutError;
