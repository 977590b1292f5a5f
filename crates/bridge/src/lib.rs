//! The runner `tmux-bridge` (issue 4).
