//! Encoder of the commands the bridge sends to tmux (being written: see issue 2).
