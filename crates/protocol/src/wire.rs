//! Records and frames exactly as `docs/protocol.md` §2–§3 specifies them:
//! encoding, and bounds-checked decoding.
//!
//! This module owns the byte layout of the transcript on the wire and in
//! storage. It does not assign sequence numbers (see
//! `transcript::session::SessionModel`), does not choose what to
//! compress (see [`codec`](crate::codec)) and does no I/O.
//!
//! Decoding never panics and never allocates more than the input (or, for a
//! compressed payload, [`MAX_PAYLOAD`]) justifies: a truncated, oversized or
//! inconsistent frame is a typed [`WireError`].

use bytes::{BufMut, Bytes, BytesMut};
use tmux_cc::PaneId;

use crate::codec;

/// Protocol version carried in every frame header (2: records carry a time).
pub const VERSION: u8 = 2;
/// Length of a frame header: version, type, flags, reserved, first and last seq.
pub const FRAME_HEADER_LEN: usize = 20;
/// Length of a record header: kind, seq, time, len.
pub const RECORD_HEADER_LEN: usize = 21;
/// Largest decoded payload accepted (four times the 16 MiB message limit: a
/// compressed frame may expand, a bigger one is refused).
pub const MAX_PAYLOAD: usize = 64 << 20;
/// Payloads shorter than this are sent raw: zstd's frame overhead would make
/// them bigger.
pub const COMPRESS_MIN: usize = 64;

const FLAG_ZSTD: u8 = 1;

/// A record kind byte.
const KIND_OUTPUT: u8 = 1;
const KIND_TOPOLOGY: u8 = 2;
const KIND_PANE_RESET: u8 = 3;

/// Why bytes are not a valid record or frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    #[error("truncated {what}: need {need} bytes, have {have}")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    #[error("unknown record kind {0}")]
    UnknownRecordKind(u8),
    #[error("unknown frame type {0}")]
    UnknownFrameType(u8),
    #[error("unsupported frame version {0}")]
    BadVersion(u8),
    #[error("unknown frame flags {0:#04x}")]
    BadFlags(u8),
    #[error("payload larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("zstd payload does not decode: {0}")]
    Zstd(String),
    /// A zstd frame whose header does not declare its content size: it
    /// could expand to anything, so it is refused unread (protocol §3).
    #[error("zstd frame does not declare its content size")]
    NoContentSize,
    #[error("topology record is not UTF-8 JSON")]
    BadTopology,
    #[error("pane size {cols}x{rows} out of range 1..=1000")]
    BadSize { cols: u16, rows: u16 },
    #[error("record seq {got} where {want} was expected")]
    SeqMismatch { want: u64, got: u64 },
    #[error("frame first_seq {first} > last_seq {last}")]
    BadRange { first: u64, last: u64 },
    #[error("snapshot must start with one topology record")]
    SnapshotShape,
}

/// What a record carries (protocol §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordBody {
    /// Raw pane bytes, as tmux's `%output` decoded them.
    Output { pane: PaneId, bytes: Bytes },
    /// The whole topology as UTF-8 JSON (see [`crate::topology::Topology`]).
    Topology(Bytes),
    /// Reset the pane to `cols x rows`, then write `bytes`.
    PaneReset {
        pane: PaneId,
        cols: u16,
        rows: u16,
        bytes: Bytes,
    },
}

/// One sequence-numbered record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    /// When the runner made the record, in milliseconds since the Unix
    /// epoch (0: unknown). Playback and export read it; screens ignore it.
    pub time: u64,
    pub body: RecordBody,
}

impl Record {
    fn kind(&self) -> u8 {
        match self.body {
            RecordBody::Output { .. } => KIND_OUTPUT,
            RecordBody::Topology(_) => KIND_TOPOLOGY,
            RecordBody::PaneReset { .. } => KIND_PANE_RESET,
        }
    }

    fn body_len(&self) -> usize {
        match &self.body {
            RecordBody::Output { bytes, .. } => 4 + bytes.len(),
            RecordBody::Topology(json) => json.len(),
            RecordBody::PaneReset { bytes, .. } => 8 + bytes.len(),
        }
    }

    /// Encoded length: header plus body.
    pub fn encoded_len(&self) -> usize {
        RECORD_HEADER_LEN + self.body_len()
    }

    /// A record made at an unknown time (0); the runner stamps real ones.
    pub fn new(seq: u64, body: RecordBody) -> Record {
        Record { seq, time: 0, body }
    }

    /// Appends `kind:u8 seq:u64 time:u64 len:u32 body` to `out`.
    ///
    /// A body longer than `u32::MAX` cannot exist here: pane output arrives
    /// in `%output` lines far below that, and resets are bounded by the
    /// scrollback limit.
    pub fn encode_into(&self, out: &mut BytesMut) {
        out.reserve(self.encoded_len());
        out.put_u8(self.kind());
        out.put_u64_le(self.seq);
        out.put_u64_le(self.time);
        out.put_u32_le(u32::try_from(self.body_len()).unwrap_or(u32::MAX));
        match &self.body {
            RecordBody::Output { pane, bytes } => {
                out.put_u32_le(pane.0);
                out.put_slice(bytes);
            }
            RecordBody::Topology(json) => out.put_slice(json),
            RecordBody::PaneReset {
                pane,
                cols,
                rows,
                bytes,
            } => {
                out.put_u32_le(pane.0);
                out.put_u16_le(*cols);
                out.put_u16_le(*rows);
                out.put_slice(bytes);
            }
        }
    }

    /// The record alone, encoded.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out.freeze()
    }

    /// Decodes one record from the front of `buf`, returning it and the
    /// number of bytes it used. `buf` is a `Bytes` so bodies share its memory.
    pub fn decode(buf: &Bytes) -> Result<(Record, usize), WireError> {
        if buf.len() < RECORD_HEADER_LEN {
            return Err(WireError::Truncated {
                what: "record header",
                need: RECORD_HEADER_LEN,
                have: buf.len(),
            });
        }
        let kind = buf[0];
        let seq = read_u64(&buf[1..9]);
        let time = read_u64(&buf[9..17]);
        let len = read_u32(&buf[17..21]) as usize;
        let end = RECORD_HEADER_LEN
            .checked_add(len)
            .ok_or(WireError::TooLarge { limit: usize::MAX })?;
        if buf.len() < end {
            return Err(WireError::Truncated {
                what: "record body",
                need: end,
                have: buf.len(),
            });
        }
        let body = buf.slice(RECORD_HEADER_LEN..end);
        let body = match kind {
            KIND_OUTPUT => {
                if body.len() < 4 {
                    return Err(WireError::Truncated {
                        what: "output body",
                        need: 4,
                        have: body.len(),
                    });
                }
                RecordBody::Output {
                    pane: PaneId(read_u32(&body[..4])),
                    bytes: body.slice(4..),
                }
            }
            KIND_TOPOLOGY => {
                if std::str::from_utf8(&body).is_err() {
                    return Err(WireError::BadTopology);
                }
                RecordBody::Topology(body)
            }
            KIND_PANE_RESET => {
                if body.len() < 8 {
                    return Err(WireError::Truncated {
                        what: "pane reset body",
                        need: 8,
                        have: body.len(),
                    });
                }
                let cols = read_u16(&body[4..6]);
                let rows = read_u16(&body[6..8]);
                if !(1..=1000).contains(&cols) || !(1..=1000).contains(&rows) {
                    return Err(WireError::BadSize { cols, rows });
                }
                RecordBody::PaneReset {
                    pane: PaneId(read_u32(&body[..4])),
                    cols,
                    rows,
                    bytes: body.slice(8..),
                }
            }
            other => return Err(WireError::UnknownRecordKind(other)),
        };
        Ok((Record { seq, time, body }, end))
    }
}

/// Frame type (protocol §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Records `first_seq..=last_seq`, gap-free.
    Batch = 1,
    /// A checkpoint at `m`: one Topology then one PaneReset per pane, all
    /// with seq `m`.
    Snapshot = 2,
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: FrameKind,
    pub first_seq: u64,
    pub last_seq: u64,
    pub records: Vec<Record>,
}

impl Frame {
    /// A batch of consecutive records. `None` when `records` is empty or not
    /// gap-free and increasing.
    pub fn batch(records: Vec<Record>) -> Option<Frame> {
        let first = records.first()?.seq;
        for (i, r) in records.iter().enumerate() {
            if r.seq != first.checked_add(i as u64)? {
                return None;
            }
        }
        let last = first + records.len() as u64 - 1;
        Some(Frame {
            kind: FrameKind::Batch,
            first_seq: first,
            last_seq: last,
            records,
        })
    }

    /// A snapshot frame at `m`. Every record must carry seq `m` and the first
    /// must be a Topology; `None` otherwise.
    pub fn snapshot(m: u64, records: Vec<Record>) -> Option<Frame> {
        match records.first() {
            Some(Record {
                body: RecordBody::Topology(_),
                ..
            }) => {}
            _ => return None,
        }
        if records.iter().any(|r| r.seq != m) {
            return None;
        }
        Some(Frame {
            kind: FrameKind::Snapshot,
            first_seq: m,
            last_seq: m,
            records,
        })
    }

    /// The records' encoding, concatenated (the uncompressed payload).
    pub fn payload(&self) -> Bytes {
        let len = self.records.iter().map(Record::encoded_len).sum();
        let mut out = BytesMut::with_capacity(len);
        for r in &self.records {
            r.encode_into(&mut out);
        }
        out.freeze()
    }

    /// Encodes the frame; with `compress`, a payload of at least
    /// [`COMPRESS_MIN`] bytes becomes one independent zstd frame (flag bit 0).
    pub fn encode(&self, compress: bool) -> Bytes {
        let payload = self.payload();
        let (flags, body): (u8, Bytes) = if compress && payload.len() >= COMPRESS_MIN {
            match codec::compress(&payload) {
                Ok(z) if z.len() < payload.len() => (FLAG_ZSTD, Bytes::from(z)),
                // Incompressible (or, impossibly, a zstd failure): raw is
                // always valid.
                _ => (0, payload),
            }
        } else {
            (0, payload)
        };
        let mut out = BytesMut::with_capacity(FRAME_HEADER_LEN + body.len());
        out.put_u8(VERSION);
        out.put_u8(self.kind as u8);
        out.put_u8(flags);
        out.put_u8(0);
        out.put_u64_le(self.first_seq);
        out.put_u64_le(self.last_seq);
        out.put_slice(&body);
        out.freeze()
    }

    /// Reads only the header: `(kind, first_seq, last_seq, compressed)`.
    /// The relay uses this to store and forward frames without decoding them.
    pub fn peek_header(buf: &[u8]) -> Result<(FrameKind, u64, u64, bool), WireError> {
        if buf.len() < FRAME_HEADER_LEN {
            return Err(WireError::Truncated {
                what: "frame header",
                need: FRAME_HEADER_LEN,
                have: buf.len(),
            });
        }
        if buf[0] != VERSION {
            return Err(WireError::BadVersion(buf[0]));
        }
        let kind = match buf[1] {
            1 => FrameKind::Batch,
            2 => FrameKind::Snapshot,
            other => return Err(WireError::UnknownFrameType(other)),
        };
        if buf[2] & !FLAG_ZSTD != 0 {
            return Err(WireError::BadFlags(buf[2]));
        }
        let first = read_u64(&buf[4..12]);
        let last = read_u64(&buf[12..20]);
        if first > last || (kind == FrameKind::Snapshot && first != last) {
            return Err(WireError::BadRange { first, last });
        }
        Ok((kind, first, last, buf[2] & FLAG_ZSTD != 0))
    }

    /// Decodes and validates a whole frame: header, payload (its zstd
    /// header's content size checked against [`MAX_PAYLOAD`] before
    /// decompressing), records, and their sequence numbers.
    pub fn decode(buf: &[u8]) -> Result<Frame, WireError> {
        let mut records = Vec::new();
        let v = Self::walk(buf, |r| records.push(r))?;
        Ok(Frame {
            kind: v.kind,
            first_seq: v.first_seq,
            last_seq: v.last_seq,
            records,
        })
    }

    /// Checks a whole frame exactly as [`Frame::decode`] does (header, the
    /// zstd content size before anything is inflated, every record's bounds
    /// and kind, sequence numbers matching the header without a gap, the
    /// snapshot shape) without keeping the records. For a relay that stores
    /// and forwards the original bytes: `Ok` means every browser can decode
    /// them.
    pub fn validate(buf: &[u8]) -> Result<Validated, WireError> {
        Self::walk(buf, |_| {})
    }

    fn walk(buf: &[u8], mut each: impl FnMut(Record)) -> Result<Validated, WireError> {
        let (kind, first_seq, last_seq, compressed) = Self::peek_header(buf)?;
        let raw = &buf[FRAME_HEADER_LEN..];
        if raw.len() > MAX_PAYLOAD {
            return Err(WireError::TooLarge { limit: MAX_PAYLOAD });
        }
        let payload = if compressed {
            Bytes::from(codec::decompress(raw, MAX_PAYLOAD)?)
        } else {
            Bytes::copy_from_slice(raw)
        };
        let mut count = 0u64;
        let mut first_is_topology = false;
        let mut at = 0;
        while at < payload.len() {
            let (r, used) = Record::decode(&payload.slice(at..))?;
            at += used;
            let want = match kind {
                FrameKind::Batch => first_seq.saturating_add(count),
                FrameKind::Snapshot => first_seq,
            };
            if r.seq != want || (kind == FrameKind::Batch && r.seq > last_seq) {
                return Err(WireError::SeqMismatch { want, got: r.seq });
            }
            if count == 0 {
                first_is_topology = matches!(r.body, RecordBody::Topology(_));
            }
            count += 1;
            each(r);
        }
        match kind {
            FrameKind::Batch => {
                let got = first_seq.saturating_add(count);
                if count == 0 || got - 1 != last_seq {
                    return Err(WireError::SeqMismatch {
                        want: last_seq,
                        got: got.saturating_sub(1),
                    });
                }
            }
            FrameKind::Snapshot => {
                if !first_is_topology {
                    return Err(WireError::SnapshotShape);
                }
            }
        }
        Ok(Validated {
            kind,
            first_seq,
            last_seq,
            records: count,
            payload_len: payload.len(),
        })
    }
}

/// What [`Frame::validate`] found in a valid frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validated {
    pub kind: FrameKind,
    pub first_seq: u64,
    pub last_seq: u64,
    /// Number of records.
    pub records: u64,
    /// Length of the (decompressed) payload.
    pub payload_len: usize,
}

fn read_u16(b: &[u8]) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[..2]);
    u16::from_le_bytes(a)
}

fn read_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn read_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests;
