// The page's pure modules under node: frame decoding, layout parsing and the
// guard's helpers. No browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeFrame, encodeFrame, encodeRecords, FRAME_BATCH, MAX_PAYLOAD, ProtocolError, REC_OUTPUT, REC_PANE_RESET, REC_TOPOLOGY, zstdContentSize } from '../build/test/protocol.js';
import { decompress } from 'fzstd';
import { parseLayout, windowGeometry } from '../build/test/layout.js';
import { parseOsc52, safeLinkTarget, sanitizePaste } from '../build/test/guard.js';
import { zstdRawFrame } from './support/fixture-relay.mjs';

const dec = (b) => new TextDecoder().decode(b);

test('frames round-trip through encode and decode', () => {
  const recs = [
    { kind: REC_TOPOLOGY, seq: 7, topology: { windows: [] } },
    { kind: REC_OUTPUT, seq: 8, time: 1_700_000_000_123, pane: '%12', bytes: 'hi\x1b[31m' },
    { kind: REC_PANE_RESET, seq: 9, pane: '%3', cols: 132, rows: 43, bytes: 'screen' },
  ];
  const f = decodeFrame(encodeFrame(FRAME_BATCH, 7, 9, recs));
  assert.equal(f.type, FRAME_BATCH);
  assert.equal(f.firstSeq, 7);
  assert.equal(f.lastSeq, 9);
  assert.deepEqual(f.records.map((r) => [r.kind, r.seq, r.pane]), [[2, 7, undefined], [1, 8, '%12'], [3, 9, '%3']]);
  assert.equal(dec(f.records[1].bytes), 'hi\x1b[31m');
  assert.deepEqual(f.records.map((r) => r.time), [0, 1_700_000_000_123, 0]);
  assert.deepEqual([f.records[2].cols, f.records[2].rows, dec(f.records[2].bytes)], [132, 43, 'screen']);
});

test('zstd frames decode', () => {
  const payload = zstdRawFrame(encodeRecords([{ kind: REC_OUTPUT, seq: 1, pane: '%0', bytes: 'x'.repeat(300_000) }]));
  const frame = encodeFrame(FRAME_BATCH, 1, 1, []);
  const whole = new Uint8Array(frame.length + payload.length);
  whole.set(frame);
  whole.set(payload, frame.length);
  whole[2] = 1;
  const f = decodeFrame(whole);
  assert.equal(f.records[0].bytes.length, 300_000);
});

const hex = (h) => Uint8Array.from(h.match(/../g), (b) => parseInt(b, 16));
/** A Batch frame header (flags: zstd) followed by `payload`. */
function zstdBatch(payload) {
  const head = encodeFrame(FRAME_BATCH, 1, 1, []);
  const whole = new Uint8Array(head.length + payload.length);
  whole.set(head);
  whole.set(payload, head.length);
  whole[2] = 1;
  return whole;
}
/** One zstd frame declaring `size` bytes, made of RLE blocks of zeros that really produce them. */
function rleFrame(size) {
  const blocks = [];
  for (let left = size; left > 0; ) {
    const n = Math.min(left, 128 * 1024);
    left -= n;
    const h = (n << 3) | (1 << 1) | (left === 0 ? 1 : 0);
    blocks.push(h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff, 0);
  }
  return Uint8Array.from([0x28, 0xb5, 0x2f, 0xfd, 0xa0, size & 0xff, (size >> 8) & 0xff, (size >> 16) & 0xff, (size >>> 24) & 0xff, ...blocks]);
}

test('issue 10: zstd content sizes are read from real frames without decompressing', () => {
  // Made by the zstd CLI: 66 bytes (1-byte size), and 300,000 zeros (4-byte size, checksum).
  const small = hex('28b52ffd20426d00003868656c6c6f200a010088548a');
  const zeros = hex('28b52ffda4e09304005400001000000100fbff39c00202001000039f04002d28de26');
  assert.equal(zstdContentSize(small), 66);
  assert.equal(zstdContentSize(zeros), 300_000);
  assert.equal(decompress(zeros).length, 300_000);
  assert.equal(zstdContentSize(rleFrame(1000)), 1000);
  assert.equal(decompress(rleFrame(1000)).length, 1000);
});

test('issue 10: a zstd frame above the limit or without a size is refused by its header', () => {
  // Declares (and would really inflate to) 1 MiB more than the limit, from 2 KiB.
  const bomb = rleFrame(MAX_PAYLOAD + (1 << 20));
  assert.ok(bomb.length < 4096);
  assert.throws(() => decodeFrame(zstdBatch(bomb)), (e) => e instanceof ProtocolError && /limit/.test(e.message));
  // Made by the zstd CLI from a pipe: no content size in the header.
  const unsized = hex('28b52ffd00586d00003868656c6c6f200a010088548a');
  assert.throws(() => decodeFrame(zstdBatch(unsized)), (e) => e instanceof ProtocolError && /declare/.test(e.message));
  // Two frames, or bytes after the frame.
  const one = rleFrame(100);
  for (const bad of [Uint8Array.from([...one, ...one]), Uint8Array.from([...one, 0]), one.subarray(0, one.length - 1)]) {
    assert.throws(() => decodeFrame(zstdBatch(bad)), (e) => e instanceof ProtocolError && !/^zstd: /.test(e.message));
  }
});

test('malformed frames are errors, not crashes', () => {
  const good = encodeFrame(FRAME_BATCH, 1, 1, [{ kind: REC_OUTPUT, seq: 1, pane: '%0', bytes: 'abc' }]);
  for (const bad of [good.subarray(0, 10), good.subarray(0, good.length - 1), Uint8Array.of(9, ...good.subarray(1))]) {
    assert.throws(() => decodeFrame(bad), ProtocolError);
  }
  const badTopo = encodeFrame(FRAME_BATCH, 1, 1, [{ kind: REC_TOPOLOGY, seq: 1, topology: { nope: 1 } }]);
  assert.throws(() => decodeFrame(badTopo), ProtocolError);
  const zbad = Uint8Array.from(good);
  zbad[2] = 1;
  assert.throws(() => decodeFrame(zbad), ProtocolError);
});

test('layout strings parse into pane rectangles', () => {
  assert.deepEqual(parseLayout('b25d,80x24,0,0,0'), { cols: 80, rows: 24, panes: [{ id: '%0', x: 0, y: 0, cols: 80, rows: 24 }], borders: [] });
  const l = parseLayout('bb62,159x48,0,0{79x48,0,0,79,79x48,80,0[79x24,80,0,80,79x23,80,25,81]}');
  assert.deepEqual(l.panes.map((p) => [p.id, p.x, p.y, p.cols, p.rows]), [['%79', 0, 0, 79, 48], ['%80', 80, 0, 79, 24], ['%81', 80, 25, 79, 23]]);
  // tmux 3.7: floating panes after the tree, signed offsets.
  const f = parseLayout('abcd,80x24,0,0{40x24,0,0,0,39x24,41,0,1}<20x10,-3,5,7,10x4,60,2,8>');
  assert.deepEqual(f.panes.map((p) => [p.id, p.x, p.y, !!p.floating]), [['%0', 0, 0, false], ['%1', 41, 0, false], ['%7', -3, 5, true], ['%8', 60, 2, true]]);
  assert.equal(parseLayout('abcd,80x24,0,0,0<>').panes.length, 1);
  for (const bad of ['', 'zz', 'b25d,80x24,0,0', 'b25d,80x24,0,0{', 'b25d,80x24,0,0,0,', 'b25d,80x24,0,0{1x1,0,0,1', 'abcd,80x24,0,0,0<', 'abcd,80x24,0,0,0<1x1,0,0,1']) {
    assert.equal(parseLayout(bad), null, bad);
  }
  // A zoomed window shows only what its visible layout holds.
  const g = windowGeometry({ layout: 'x,80x24,0,0{40x24,0,0,1,39x24,41,0,2}', visible_layout: 'x,80x24,0,0,2', panes: [] });
  assert.deepEqual(g.panes.map((p) => p.id), ['%2']);
  // Without a usable layout, the panes' own geometry is used.
  const h = windowGeometry({ layout: 'garbage', panes: [{ id: '%5', x: 0, y: 0, cols: 10, rows: 5 }, { id: '%6', x: 11, y: 0, cols: 9, rows: 5 }] });
  assert.deepEqual([h.cols, h.rows], [20, 5]);
});

test('links are http(s) only', () => {
  assert.equal(safeLinkTarget('https://example.invalid/a b'), 'https://example.invalid/a%20b');
  assert.equal(safeLinkTarget('http://x.invalid'), 'http://x.invalid/');
  for (const bad of ['javascript:alert(1)', 'JaVaScRiPt:alert(1)', 'data:text/html,x', 'file:///etc/passwd', 'vbscript:x', 'not a url']) {
    assert.equal(safeLinkTarget(bad), null, bad);
  }
});

test('a paste cannot end bracketed paste early', () => {
  assert.equal(sanitizePaste('\x1b[200~a\x1b[201~rm -rf ~\r\x1b[201~'), '\x1b[200~arm -rf ~\r\x1b[201~');
  assert.equal(sanitizePaste('plain text'), 'plain text');
});

test('OSC 52 bodies parse: reads are recognised, writes decoded', () => {
  assert.deepEqual(parseOsc52('c;?'), { read: true });
  assert.deepEqual(parseOsc52(`c;${Buffer.from('héllo').toString('base64')}`), { text: 'héllo' });
  assert.equal(parseOsc52('no-semicolon'), null);
  assert.equal(parseOsc52('c;!!!notbase64'), null);
});

test('jobs: parsing, badges, order, Retry-After and the words for refusals', async () => {
  const { badgeText, compareJobs, duration, newerJob, paneUrl, parseJob, retryAfterSeconds, startError } = await import('../build/test/jobs.js');
  const base = { id: 7, idea: 'a', command: 'make', state: 'failed', exit_code: 3, signal: null, session_id: 12, pane: '%3', created_at: 5 };
  const job = parseJob(base);
  assert.equal(job.id, '7');
  assert.equal(job.session_id, '12');
  assert.equal(job.cancel_requested, false);
  assert.equal(job.kind, 'job', 'a relay that sends no kind: a job');
  assert.equal(parseJob({ ...base, kind: 'devserver' }).kind, 'devserver');
  assert.equal(parseJob({ ...base, state: 'exploded' }), null);
  assert.equal(parseJob({ state: 'queued' }), null);
  assert.equal(parseJob('nope'), null);
  const b = (f) => badgeText({ state: 'failed', exit_code: null, signal: null, cancel_requested: false, ...f });
  assert.equal(b({ exit_code: 3 }), 'failed (exit 3)');
  assert.equal(b({ signal: 9 }), 'failed (SIGKILL)');
  assert.equal(b({ signal: 64 }), 'failed (signal 64)');
  assert.equal(b({}), 'failed');
  assert.equal(b({ state: 'running', cancel_requested: true }), 'cancelling');
  assert.equal(b({ state: 'succeeded', exit_code: 0 }), 'succeeded');
  assert.deepEqual(['1200', '5', '61000', '7500000'].map((ms) => duration(Number(ms))), ['1 s', '5 ms', '1 min 1 s', '2 h 5 min']);
  const list = [{ id: '2', created_at: 10 }, { id: '10', created_at: 10 }, { id: '3', created_at: 30 }].sort(compareJobs);
  assert.deepEqual(list.map((j) => j.id), ['3', '10', '2']);
  assert.equal(retryAfterSeconds('42', 0), 42);
  assert.equal(retryAfterSeconds(new Date(10_000).toUTCString(), 1_000), 9);
  assert.equal(retryAfterSeconds('soon', 0), null);
  assert.equal(retryAfterSeconds(null, 0), null);
  assert.equal(startError(429, null, 17), 'Too many jobs started in the last minute. Try again in 17 s.');
  assert.equal(startError(400, 'unknown idea.', null), 'The job was not started: unknown idea.');
  assert.equal(startError(404, 'no such runner', null), 'The job was not started: no such runner.');
  assert.match(startError(404, null, null), /no jobs \(update tmux-relay\)\.$/);
  assert.equal(startError(500, null, null), 'The job was not started: the relay answered HTTP 500.');
  assert.equal(paneUrl({ session_id: '12', pane: '%3' }), '/s/12?pane=%253');
  assert.equal(paneUrl({ session_id: null, pane: null }), null);
  // A listing fetched before an event never takes a job back.
  const running = { ...job, state: 'running' };
  const ended = { ...job, state: 'succeeded' };
  assert.equal(newerJob(ended, running), ended);
  assert.equal(newerJob(running, ended), ended);
  assert.equal(newerJob(undefined, running), running);
});

test('issue 12: agents from JSON, badges, arguments split like a shell, the idle title', async () => {
  const { agentBadge, idleTitle, isLive, parseAgent, parsePaneActivity, splitArgs } = await import('../build/test/agents.js');
  const a = parseAgent({ id: 'j1', idea: 'x', name: 'claude-code', kind: 'claude-code', args: ['-p', 3], state: 'idle', state_at: 5, idle_ms: 1500, session_id: 7, pane: '%3' });
  assert.equal(a.session_id, '7');
  assert.deepEqual(a.args, ['-p']);
  assert.equal(parseAgent({ id: 'j1', state: 'sleeping' }), null);
  assert.equal(parseAgent(null), null);
  assert.equal(isLive(a), true);
  assert.equal(agentBadge({ state: 'stopped', exit_code: 0, signal: null }), 'stopped (exit 0)');
  assert.equal(agentBadge({ state: 'stopped', exit_code: null, signal: 2 }), 'stopped (signal 2)');
  assert.equal(agentBadge({ state: 'errored', exit_code: null, signal: null }), 'errored');
  assert.deepEqual(parsePaneActivity({ session_id: '1', pane: '%0', idle: true, idea: 'x' }), { session_id: '1', pane: '%0', idle: true, idea: 'x', slot: null });
  assert.equal(parsePaneActivity({ session_id: '1', pane: '%0' }), null);
  assert.deepEqual(splitArgs(`--model o3  "fix the tests" it\\'s '' 'a "b"'`), ['--model', 'o3', 'fix the tests', "it's", '', 'a "b"']);
  assert.deepEqual(splitArgs('   '), []);
  assert.equal(idleTitle('jobs · x', []), 'jobs · x');
  assert.equal(idleTitle('jobs · x', ['a', 'b']), '(2) idle · b · jobs · x');
});
