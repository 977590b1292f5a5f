//! Fuzz target `parser`: arbitrary bytes, split into chunks at offsets
//! taken from the input's first byte, must never panic, must keep the
//! parser's buffered memory within its limits, and must give the same
//! events as one whole push.
//!
//! `cargo +nightly fuzz run parser` from `fuzz/` (needs cargo-fuzz); seed
//! the corpus with `fixtures/tmux-cc/*.log`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tmux_cc::{Parser, ParserLimits};

fuzz_target!(|data: &[u8]| {
    let Some((&step, input)) = data.split_first() else {
        return;
    };
    let limits = ParserLimits {
        max_line_bytes: 256,
        max_block_bytes: 4096,
    };
    let step = usize::from(step) + 1;

    let mut chunked = Parser::with_limits(limits);
    let mut events = Vec::new();
    for c in input.chunks(step) {
        chunked.push(c);
        assert!(chunked.buffered_bytes() <= limits.max_line_bytes + limits.max_block_bytes);
        events.extend(chunked.by_ref());
    }
    chunked.finish();
    events.extend(chunked.by_ref());

    let mut whole = Parser::with_limits(limits);
    whole.push(input);
    whole.finish();
    assert_eq!(whole.collect::<Vec<_>>(), events);

    for e in &events {
        if let tmux_cc::Event::LayoutChange { layout, .. } = e {
            let _ = tmux_cc::Layout::parse(layout);
        }
        let _ = tmux_cc::json::event_to_json(e);
    }
});
