//! Shared helpers for the criterion benchmarks in this folder: loading the
//! recorded fixtures (decompressing `.zst` ones) and the plain baseline
//! loops the parser is compared with.

use std::path::{Path, PathBuf};

/// `fixtures/tmux-cc` at the workspace root.
pub fn tmux_cc_fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/tmux-cc")
}

/// The bytes of fixture `name` (`fixtures/tmux-cc/<name>.log`, or
/// `<name>.log.zst` decompressed).
pub fn tmux_cc_fixture(name: &str) -> std::io::Result<Vec<u8>> {
    let dir = tmux_cc_fixture_dir();
    let plain = dir.join(format!("{name}.log"));
    if plain.exists() {
        return std::fs::read(plain);
    }
    let compressed = std::fs::read(dir.join(format!("{name}.log.zst")))?;
    zstd::decode_all(&compressed[..])
}

/// The baseline the parser is measured against: split `input` into lines
/// with memchr and decode the octal escapes of every line into `out` (a
/// reused buffer) with a plain byte loop, with no grammar, no events and
/// no copies. Returns
/// the decoded byte count.
pub fn baseline_split_unescape(input: &[u8], out: &mut Vec<u8>) -> usize {
    let mut total = 0;
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', input) {
        let line = &input[start..nl];
        start = nl + 1;
        if memchr::memchr(b'\\', line).is_none() {
            total += line.len();
            continue;
        }
        // The same decoding loop as the parser's: a presized output
        // written as a slice, so the ratio measures everything else.
        out.clear();
        out.resize(line.len(), 0);
        let (mut i, mut o) = (0, 0);
        while i < line.len() {
            match line[i..] {
                [b'\\', a @ b'0'..=b'3', b @ b'0'..=b'7', c @ b'0'..=b'7', ..] => {
                    out[o] = ((a - b'0') << 6) | ((b - b'0') << 3) | (c - b'0');
                    i += 4;
                }
                [b, ..] => {
                    out[o] = b;
                    i += 1;
                }
                [] => break,
            }
            o += 1;
        }
        out.truncate(o);
        total += out.len();
    }
    total
}

/// Parses `input` with [`tmux_cc::Parser`] fed in `chunk`-byte pieces,
/// draining events after each push as a reader loop would; `owned` hands
/// each piece over as `Bytes` ([`tmux_cc::Parser::push_bytes`], what a
/// reader that reads into a `BytesMut` does) instead of copying it
/// ([`tmux_cc::Parser::push`]). Returns the number of events and of
/// decoded output bytes.
pub fn parse_chunked(input: &[u8], chunk: usize, owned: bool) -> (usize, usize) {
    let mut p = tmux_cc::Parser::new();
    let (mut events, mut bytes) = (0, 0);
    let mut count = |p: &mut tmux_cc::Parser| {
        for e in p.by_ref() {
            events += 1;
            if let tmux_cc::Event::Output { data, .. }
            | tmux_cc::Event::ExtendedOutput { data, .. } = &e
            {
                bytes += data.len();
            }
        }
    };
    for c in input.chunks(chunk) {
        if owned {
            // The copy stands for the read(2) into a fresh buffer.
            p.push_bytes(bytes::Bytes::copy_from_slice(c));
        } else {
            p.push(c);
        }
        count(&mut p);
    }
    p.finish();
    count(&mut p);
    (events, bytes)
}
