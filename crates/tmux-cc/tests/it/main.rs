//! Integration tests of tmux-cc: one binary, one module per topic.

mod encoder;
mod fixtures;
mod keys;
mod listing;
mod naming;
mod parser_props;
mod real_tmux;
mod state;
mod versions;
