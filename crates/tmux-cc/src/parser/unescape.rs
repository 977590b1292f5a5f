//! Decoding of the octal escapes tmux writes in `%output` payloads.
//!
//! tmux writes every byte below 0x20 and the backslash as `\` plus exactly
//! three octal digits and everything else raw (reference §4). This module
//! only turns such a payload back into the pane's bytes; it does not know
//! about lines or notifications.
//!
//! A backslash that is not followed by three octal digits with a value below
//! 0o400 is never written by tmux. When one appears anyway, the backslash is
//! kept as a literal byte and decoding goes on after it: pane output must
//! never be lost, and a wrong byte on screen is better than a missing line.

use bytes::{Bytes, BytesMut};

/// Size of each buffer that unescaped payloads are carved from.
const SCRATCH_BYTES: usize = 64 << 10;

/// Decodes `payload`, which is `line[start..]`. Without a backslash the
/// result is a zero-copy slice of `line`; otherwise the bytes are decoded
/// into `scratch` (a reused buffer, so most lines cost no allocation) and
/// split off it.
pub(crate) fn decode_payload(line: &Bytes, start: usize, scratch: &mut BytesMut) -> Bytes {
    let payload = &line[start..];
    let Some(first) = memchr::memchr(b'\\', payload) else {
        return line.slice(start..);
    };
    if scratch.capacity() < payload.len() {
        // Carve many payloads out of one allocation (and allocate nothing
        // for a stream without escapes).
        scratch.reserve(payload.len().max(SCRATCH_BYTES));
    }
    decode_into(payload, first, scratch);
    scratch.split().freeze()
}

/// Appends the decoding of `payload` to `out`; `first` is the index of the
/// first backslash in `payload` (the caller already found it).
pub(crate) fn decode_into(payload: &[u8], first: usize, out: &mut BytesMut) {
    // The decoded form is never longer than the escaped one: size the
    // output once and write into it as a plain slice. Escapes are dense in
    // real output (`\015\012` every line), so runs between them are found
    // with a simple loop rather than a memchr call per escape.
    let base = out.len();
    out.resize(base + payload.len(), 0);
    let dst = &mut out[base..];
    dst[..first].copy_from_slice(&payload[..first]);
    let (mut i, mut o) = (first, first);
    let n = payload.len();
    while i < n {
        let b = payload[i];
        if b == b'\\'
            && let Some(v) = octal3(&payload[i + 1..])
        {
            dst[o] = v;
            o += 1;
            i += 4;
            continue;
        }
        dst[o] = b;
        o += 1;
        i += 1;
    }
    out.truncate(base + o);
}

/// The byte encoded by three octal digits at the start of `b`, if they are
/// there and encode a value below 256.
#[inline]
pub(crate) fn octal3(b: &[u8]) -> Option<u8> {
    match b {
        [a @ b'0'..=b'3', c @ b'0'..=b'7', d @ b'0'..=b'7', ..] => {
            Some(((a - b'0') << 6) | ((c - b'0') << 3) | (d - b'0'))
        }
        _ => None,
    }
}

/// Encodes bytes the way tmux's `control_append_data` does: bytes below
/// 0x20 and the backslash as `\ooo`, everything else raw. Used by tests and
/// benchmarks to build `%output` lines.
pub fn encode_output(data: &[u8], out: &mut Vec<u8>) {
    for &b in data {
        if b < 0x20 || b == b'\\' {
            out.extend_from_slice(&[
                b'\\',
                b'0' + (b >> 6),
                b'0' + ((b >> 3) & 7),
                b'0' + (b & 7),
            ]);
        } else {
            out.push(b);
        }
    }
}
