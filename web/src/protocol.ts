//! Wire protocol (frame version 2) for the browser (docs/protocol.md, sections 2, 3 and 5):
//! decodes binary frames into records. Pure: no DOM, no network, no clock.
//! It does not decide what to do with records; records.ts orders them and
//! the session view applies them. The JSON control messages' types are
//! generated from the Rust crate (gen/protocol.ts).

import { decompress } from 'fzstd';
import type { Topology } from './gen/protocol';

export type { BrowserToRelay, RelayToBrowser, SessionInfo, Topology, WindowInfo, PaneInfo, TmuxOp, Viewer } from './gen/protocol';
import type { SessionInfo } from './gen/protocol';

/** A session's state in the list (docs/protocol.md §5, HTTP API of the page). */
export type SessionState = 'starting' | 'live' | 'runner_offline' | 'closed';

/**
 * `GET /api/sessions`'s item: `SessionInfo` plus the fields protocol.md's
 * session API adds (the relay's Rust type grows them in issue 9's relay
 * work; until then they may be missing, and the page copes).
 */
export type Session = SessionInfo & {
  runner_id?: string;
  runner_name?: string;
  state?: SessionState;
  attached_clients?: number;
  viewers?: number;
  created_at?: number;
  last_activity_at?: number | null;
  closed_at?: number | null;
};

export const SUBPROTOCOL = 'tmux-bridge.v1';
export const FRAME_BATCH = 1;
export const FRAME_SNAPSHOT = 2;
export const REC_OUTPUT = 1;
export const REC_TOPOLOGY = 2;
export const REC_PANE_RESET = 3;
export const FRAME_VERSION = 2;
const HEADER = 20;
const RECORD_HEADER = 21;
const FLAG_ZSTD = 1;
/** Largest decoded payload of one frame (protocol §3: `MAX_PAYLOAD`, 64 MiB). */
export const MAX_PAYLOAD = 64 * 1024 * 1024;

export class ProtocolError extends Error {}

export type OutputRecord = { kind: typeof REC_OUTPUT; seq: number; time: number; pane: string; bytes: Uint8Array };
export type TopologyRecord = { kind: typeof REC_TOPOLOGY; seq: number; time: number; topology: Topology };
export type PaneResetRecord = { kind: typeof REC_PANE_RESET; seq: number; time: number; pane: string; cols: number; rows: number; bytes: Uint8Array };
export type UnknownRecord = { kind: number; seq: number; time: number; unknown: true };
export type Rec = OutputRecord | TopologyRecord | PaneResetRecord | UnknownRecord;

export interface Frame {
  type: number;
  firstSeq: number;
  lastSeq: number;
  records: Rec[];
}

/**
 * Decodes one binary frame. Pane ids come back as `%N` strings. Throws
 * ProtocolError on anything malformed (the caller reconnects).
 */
export function decodeFrame(buf: ArrayBuffer | Uint8Array): Frame {
  const u8 = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
  if (u8.length < HEADER) throw new ProtocolError('short frame');
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  const version = dv.getUint8(0);
  if (version !== FRAME_VERSION) throw new ProtocolError(`frame version ${version}`);
  const type = dv.getUint8(1);
  if (type !== FRAME_BATCH && type !== FRAME_SNAPSHOT) throw new ProtocolError(`frame type ${type}`);
  const flags = dv.getUint8(2);
  const firstSeq = toSeq(dv.getBigUint64(4, true));
  const lastSeq = toSeq(dv.getBigUint64(12, true));
  if (lastSeq < firstSeq) throw new ProtocolError('frame seq range reversed');
  let payload = u8.subarray(HEADER);
  if (flags & FLAG_ZSTD) payload = inflate(payload);
  return { type, firstSeq, lastSeq, records: decodeRecords(payload) };
}

/**
 * Decompresses one zstd frame, refusing by its header, before fzstd
 * allocates what it declares, a frame above MAX_PAYLOAD or one that does
 * not declare its size (the sec engineer's bound, issue 10).
 */
function inflate(payload: Uint8Array): Uint8Array {
  const size = zstdContentSize(payload);
  if (size > MAX_PAYLOAD) throw new ProtocolError(`zstd frame declares ${size} bytes (limit ${MAX_PAYLOAD})`);
  let out: Uint8Array;
  try {
    out = decompress(payload);
  } catch (e) {
    throw new ProtocolError(`zstd: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (out.length !== size) throw new ProtocolError('zstd frame size differs from its header');
  return out;
}

/**
 * The content size one zstd frame declares in its header (RFC 8878 §3.1.1),
 * checking that `u8` is exactly one frame by walking its block headers; no
 * block is decompressed. Throws ProtocolError for anything else, including a
 * frame that does not declare its size.
 */
export function zstdContentSize(u8: Uint8Array): number {
  const at = (i: number): number => u8[i] ?? 0;
  if (u8.length < 5 || at(0) !== 0x28 || at(1) !== 0xb5 || at(2) !== 0x2f || at(3) !== 0xfd) {
    throw new ProtocolError('not a zstd frame');
  }
  const fhd = at(4);
  if (fhd & 8) throw new ProtocolError('zstd frame header reserved bit set');
  const fcsFlag = fhd >> 6;
  const single = (fhd >> 5) & 1;
  let off = 5 + (single ? 0 : 1) + ([0, 1, 2, 4][fhd & 3] ?? 0);
  const fcsLen = fcsFlag ? 1 << fcsFlag : single;
  if (!fcsLen) throw new ProtocolError('zstd frame does not declare its content size');
  if (u8.length < off + fcsLen) throw new ProtocolError('truncated zstd frame header');
  let size = 0;
  for (let i = fcsLen - 1; i >= 0; i--) size = size * 256 + at(off + i);
  if (fcsLen === 2) size += 256;
  off += fcsLen;
  for (;;) {
    if (u8.length < off + 3) throw new ProtocolError('truncated zstd block');
    const h = at(off) | (at(off + 1) << 8) | (at(off + 2) << 16);
    const type = (h >> 1) & 3;
    if (type === 3) throw new ProtocolError('reserved zstd block type');
    off += 3 + (type === 1 ? 1 : h >>> 3);
    if (h & 1) break;
  }
  if ((fhd >> 2) & 1) off += 4;
  if (off !== u8.length) throw new ProtocolError('zstd payload is not exactly one frame');
  return size;
}

/** Splits a frame payload into records (`kind:u8 seq:u64 time:u64 len:u32 body`). */
export function decodeRecords(u8: Uint8Array): Rec[] {
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  const out: Rec[] = [];
  let off = 0;
  while (off < u8.length) {
    if (u8.length - off < RECORD_HEADER) throw new ProtocolError('truncated record header');
    const kind = dv.getUint8(off);
    const seq = toSeq(dv.getBigUint64(off + 1, true));
    const time = Number(dv.getBigUint64(off + 9, true));
    const len = dv.getUint32(off + 17, true);
    const start = off + RECORD_HEADER;
    const end = start + len;
    if (end > u8.length) throw new ProtocolError('truncated record body');
    const body = u8.subarray(start, end);
    const bdv = new DataView(body.buffer, body.byteOffset, body.byteLength);
    off = end;
    switch (kind) {
      case REC_OUTPUT:
        if (body.length < 4) throw new ProtocolError('short output record');
        out.push({ kind, seq, time, pane: `%${bdv.getUint32(0, true)}`, bytes: body.subarray(4) });
        break;
      case REC_TOPOLOGY: {
        let topology: unknown;
        try {
          topology = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
        } catch (e) {
          throw new ProtocolError(`topology: ${e instanceof Error ? e.message : String(e)}`);
        }
        if (!isTopology(topology)) throw new ProtocolError('topology without windows');
        out.push({ kind, seq, time, topology });
        break;
      }
      case REC_PANE_RESET: {
        if (body.length < 8) throw new ProtocolError('short pane reset record');
        const cols = bdv.getUint16(4, true);
        const rows = bdv.getUint16(6, true);
        out.push({ kind, seq, time, pane: `%${bdv.getUint32(0, true)}`, cols, rows, bytes: body.subarray(8) });
        break;
      }
      default:
        // Unknown record kinds from a newer bridge are skipped, not fatal:
        // their seq still counts as received.
        out.push({ kind, seq, time, unknown: true });
    }
  }
  return out;
}

/** A topology the page can lay out: an object with a windows array whose items carry panes arrays. */
function isTopology(v: unknown): v is Topology {
  if (!v || typeof v !== 'object') return false;
  const windows = (v as { windows?: unknown }).windows;
  if (!Array.isArray(windows)) return false;
  return windows.every((w) => !!w && typeof w === 'object' && Array.isArray((w as { panes?: unknown }).panes));
}

function toSeq(big: bigint): number {
  if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtocolError('seq beyond 2^53');
  return Number(big);
}

/** A record to encode (tests and the fixture relay). */
export interface RecordInput {
  kind: number;
  seq: number;
  time?: number;
  pane?: string;
  bytes?: string | Uint8Array;
  topology?: unknown;
  cols?: number;
  rows?: number;
}

/** Encodes a frame (raw, uncompressed). Used by the tests' fixture relay. */
export function encodeFrame(type: number, firstSeq: number, lastSeq: number, records: RecordInput[], flags = 0): Uint8Array {
  const payload = encodeRecords(records);
  const out = new Uint8Array(HEADER + payload.length);
  const dv = new DataView(out.buffer);
  dv.setUint8(0, FRAME_VERSION);
  dv.setUint8(1, type);
  dv.setUint8(2, flags);
  dv.setBigUint64(4, BigInt(firstSeq), true);
  dv.setBigUint64(12, BigInt(lastSeq), true);
  out.set(payload, HEADER);
  return out;
}

/** Encodes records given as `{kind, seq, pane, bytes|topology, cols, rows}`. */
export function encodeRecords(records: RecordInput[]): Uint8Array {
  const enc = new TextEncoder();
  const parts = records.map((r) => {
    let body: Uint8Array;
    const paneNum = r.pane === undefined ? 0 : Number(String(r.pane).replace('%', ''));
    const bytes = typeof r.bytes === 'string' ? enc.encode(r.bytes) : r.bytes || new Uint8Array();
    if (r.kind === REC_OUTPUT) {
      body = new Uint8Array(4 + bytes.length);
      new DataView(body.buffer).setUint32(0, paneNum, true);
      body.set(bytes, 4);
    } else if (r.kind === REC_TOPOLOGY) {
      body = enc.encode(JSON.stringify(r.topology));
    } else {
      body = new Uint8Array(8 + bytes.length);
      const dv = new DataView(body.buffer);
      dv.setUint32(0, paneNum, true);
      dv.setUint16(4, r.cols ?? 80, true);
      dv.setUint16(6, r.rows ?? 24, true);
      body.set(bytes, 8);
    }
    const rec = new Uint8Array(RECORD_HEADER + body.length);
    const dv = new DataView(rec.buffer);
    dv.setUint8(0, r.kind);
    dv.setBigUint64(1, BigInt(r.seq), true);
    dv.setBigUint64(9, BigInt(r.time || 0), true);
    dv.setUint32(17, body.length, true);
    rec.set(body, RECORD_HEADER);
    return rec;
  });
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
