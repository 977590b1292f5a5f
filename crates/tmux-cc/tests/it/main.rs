//! Integration tests of tmux-cc: one binary, one module per topic.

mod fixtures;
mod parser_props;
