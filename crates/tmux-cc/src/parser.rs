//! The streaming control-mode parser (being written: see issue 2).

use std::collections::VecDeque;

use crate::event::Event;

/// Bounds that keep the parser's memory finite on hostile input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParserLimits {
    /// Longest line kept; longer lines are cut and reported.
    pub max_line_bytes: usize,
    /// Most bytes kept for one `%begin` block; the rest is dropped and the
    /// reply is marked truncated.
    pub max_block_bytes: usize,
}

impl Default for ParserLimits {
    fn default() -> Self {
        ParserLimits { max_line_bytes: 16 << 20, max_block_bytes: 256 << 20 }
    }
}

/// Streaming parser: [`push`](Parser::push) bytes, pull events.
#[derive(Debug, Default)]
pub struct Parser {
    #[allow(dead_code)]
    limits: ParserLimits,
    events: VecDeque<Event>,
}

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_limits(limits: ParserLimits) -> Self {
        Parser { limits, ..Self::default() }
    }

    pub fn push(&mut self, _bytes: &[u8]) {}

    pub fn next_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}
