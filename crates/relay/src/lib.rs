//! The relay server `tmux-relay` (issue 4).
