//! Properties of the parser: chunking never changes the events, arbitrary
//! bytes never panic and keep memory within the limits, and `%output`
//! escaping round-trips. Case counts are modest so `cargo test` stays fast.

use proptest::prelude::*;
use tmux_cc::parser::encode_output;
use tmux_cc::{Event, PaneId, Parser, ParserLimits};

use crate::fixtures::{fixtures, parse_all};

fn parse_chunked(input: &[u8], sizes: &[usize]) -> Vec<Event> {
    let mut p = Parser::new();
    let mut out = Vec::new();
    let mut rest = input;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].min(rest.len());
        // Odd chunks are handed over owned, even ones copied.
        if i % 2 == 1 {
            p.push_bytes(bytes::Bytes::copy_from_slice(&rest[..n]));
        } else {
            p.push(&rest[..n]);
        }
        out.extend(p.by_ref());
        rest = &rest[n..];
        i += 1;
    }
    p.finish();
    out.extend(p.by_ref());
    out
}

#[test]
fn every_fixture_byte_by_byte() {
    for (name, bytes) in fixtures() {
        assert_eq!(parse_chunked(&bytes, &[1]), parse_all(&bytes), "{name}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_chunking_of_any_fixture_gives_the_same_events(
        which in any::<prop::sample::Index>(),
        sizes in prop::collection::vec(1usize..300, 1..20),
    ) {
        let all = fixtures();
        let (name, bytes) = &all[which.index(all.len())];
        prop_assert_eq!(parse_chunked(bytes, &sizes), parse_all(bytes), "{}", name);
    }
}

/// Byte soup with the protocol's interesting pieces mixed in.
fn soup() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"%begin 1 2 1\n".to_vec()),
        Just(b"%end 1 2 1\n".to_vec()),
        Just(b"%error 1 2 1\n".to_vec()),
        Just(b"%pause %0\n".to_vec()),
        Just(b"%output %1 ".to_vec()),
        Just(b"%extended-output %1 5 : ".to_vec()),
        Just(b"\\0".to_vec()),
        Just(b"\\134".to_vec()),
        Just(b"%exit\n\x1b\\".to_vec()),
        Just(b"\x1bP1000p".to_vec()),
        Just(vec![b'x'; 100]),
    ];
    prop::collection::vec(piece, 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(
        input in soup(),
        sizes in prop::collection::vec(1usize..64, 1..8),
    ) {
        let limits = ParserLimits { max_line_bytes: 64, max_block_bytes: 512 };
        let mut p = Parser::with_limits(limits);
        let mut events = Vec::new();
        let mut rest = &input[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes[i % sizes.len()].min(rest.len());
            p.push(&rest[..n]);
            prop_assert!(p.buffered_bytes() <= limits.max_line_bytes + limits.max_block_bytes);
            events.extend(p.by_ref());
            rest = &rest[n..];
            i += 1;
        }
        p.finish();
        events.extend(p.by_ref());
        prop_assert_eq!(p.buffered_bytes(), 0);
        // Chunking does not matter even with tiny limits.
        let mut whole = Parser::with_limits(limits);
        whole.push(&input);
        whole.finish();
        prop_assert_eq!(whole.collect::<Vec<_>>(), events);
    }

    #[test]
    fn output_escaping_round_trips(data in prop::collection::vec(any::<u8>(), 0..600), pane in 0u32..100_000) {
        let mut line = format!("%output %{pane} ").into_bytes();
        encode_output(&data, &mut line);
        line.push(b'\n');
        let mut p = Parser::new();
        p.push(&line);
        prop_assert_eq!(p.next_event(), Some(Event::Output { pane: PaneId(pane), data: data.into() }));
        prop_assert_eq!(p.next_event(), None);
    }
}
