//! Which records of a frame the page applies (docs/protocol.md §1, §3, §5):
//! a Batch that skips past the page's seq is a gap (reconnect with `hello`),
//! records the page has already are skipped, a Snapshot older than the page
//! is ignored and a newer one replaces everything. Pure: the session view
//! applies what this returns.

import { FRAME_BATCH, FRAME_SNAPSHOT, type Frame, type Rec } from './protocol';

export type Plan =
  | { action: 'gap'; have: number; next: number }
  | { action: 'skip' }
  | { action: 'apply'; records: Rec[]; lastSeq: number; snapshot: boolean };

export function planFrame(lastSeq: number, frame: Frame): Plan {
  if (frame.type === FRAME_BATCH && frame.firstSeq > lastSeq + 1) {
    return { action: 'gap', have: lastSeq, next: frame.firstSeq };
  }
  if (frame.type === FRAME_SNAPSHOT) {
    if (frame.lastSeq <= lastSeq) return { action: 'skip' };
    // A snapshot replaces everything: its topology record removes the
    // panes it does not name.
    return { action: 'apply', records: frame.records, lastSeq: frame.lastSeq, snapshot: true };
  }
  const fresh = frame.records.filter((r) => r.seq > lastSeq);
  if (fresh.length === 0) return { action: 'skip' };
  const last = fresh[fresh.length - 1];
  return { action: 'apply', records: fresh, lastSeq: Math.max(lastSeq, last ? last.seq : lastSeq), snapshot: false };
}
