//! Integration tests of tmux-cc: one binary, one module per topic.

mod fixtures;
mod parser_props;
mod encoder;
mod real_tmux;
mod naming;
mod state;
mod versions;
