// The page's dev server model (src/devservers.ts) under node: parsing what
// the relay sends (hostile fields refused or neutralised), events moving the
// ports, job events merged without losing events, the words shown. No browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyEvent, eventText, mergeJob, parseDevEvent, parseDevserver, previewUrl, EVENTS_KEPT } from '../build/test/devservers.js';

const base = {
  id: 'jab12', kind: 'devserver', idea: 'web', slot: 'primary', name: 'python3', command: 'python3 -m http.server 8123',
  cwd: null, state: 'running', exit_code: null, signal: null, error: null, runner_id: 'r1', session_id: '7', pane: '%3',
  created_at: 1000, started_at: 1001, ended_at: null, log_bytes: 0, cancel_requested: false,
};
const ev = (id, kind, fields = {}) => ({ id: String(id), job: 'jab12', idea: 'web', kind, at: 2000 + id, ...fields });

test('a devserver parses with its ports and preview paths; other kinds do not', () => {
  const d = parseDevserver({ ...base, ports: [{ port: 8123, addr: '127.0.0.1', source: 'socket', url: '/preview/jab12/8123' }], events: [ev(1, 'port-detected', { port: 8123, addr: '127.0.0.1', source: 'socket', url: '/preview/jab12/8123' })] });
  assert.deepEqual(d.ports, [{ port: 8123, addr: '127.0.0.1', source: 'socket', url: '/preview/jab12/8123' }]);
  assert.equal(d.events.length, 1);
  assert.equal(parseDevserver({ ...base, kind: 'job' }), null);
  assert.equal(parseDevserver({ ...base, kind: undefined }), null);
  assert.equal(parseDevserver({ ...base, state: 'weird' }), null);
  assert.equal(parseDevserver(null), null);
});

test('hostile URLs and ports never become links', () => {
  const d = parseDevserver({ ...base, ports: [
    { port: 8123, addr: 'x', source: 'socket', url: 'javascript:alert(1)' },
    { port: 70000, addr: 'x', source: 'socket' },
    { port: '80', addr: 'x' },
    { port: 8123, addr: 'dup', source: 'socket' },
    { port: 3000, addr: '::1', source: 'evil', url: 'https://evil.example/' },
  ] });
  assert.deepEqual(d.ports.map((p) => [p.port, p.url, p.source]), [[3000, '/preview/jab12/3000', 'socket'], [8123, '/preview/jab12/8123', 'socket']]);
  const e = parseDevEvent(ev(1, 'port-detected', { port: 8123, url: '//evil.example/x' }));
  assert.equal(e.url, '/preview/jab12/8123');
  assert.equal(previewUrl('a/b', 1), '/preview/a%2Fb/1');
  assert.equal(parseDevEvent(ev(1, 'port-detected', { port: 0 })), null);
  assert.equal(parseDevEvent(ev(1, 'rm -rf', { port: 1 })), null);
  assert.equal(parseDevEvent({ id: '1', kind: 'port-closed', port: 1 }), null, 'no job');
});

test('events move the ports: detected adds, closed removes, exit clears; repeats and old events change nothing', () => {
  let d = parseDevserver({ ...base, ports: [], events: [] });
  d = applyEvent(d, parseDevEvent(ev(1, 'port-detected', { port: 8123, addr: '127.0.0.1', source: 'socket' })));
  d = applyEvent(d, parseDevEvent(ev(2, 'port-detected', { port: 9000, addr: 'localhost', source: 'output' })));
  assert.deepEqual(d.ports.map((p) => p.port), [8123, 9000]);
  const same = applyEvent(d, parseDevEvent(ev(2, 'port-detected', { port: 9000 })));
  assert.equal(same, d, 'an event seen already');
  d = applyEvent(d, parseDevEvent(ev(4, 'port-closed', { port: 8123 })));
  assert.deepEqual(d.ports.map((p) => p.port), [9000]);
  // Arriving late (id 3 < 4): kept in order, the ports stay as the newest says.
  d = applyEvent(d, parseDevEvent(ev(3, 'port-detected', { port: 7000 })));
  assert.deepEqual(d.events.map((e) => e.id), ['1', '2', '3', '4']);
  assert.deepEqual(d.ports.map((p) => p.port), [9000]);
  d = applyEvent(d, parseDevEvent(ev(5, 'process-exited', { exit_code: null, signal: 2 })));
  assert.deepEqual(d.ports, []);
  // Another dev server's event is not this one's.
  assert.equal(applyEvent(d, parseDevEvent({ ...ev(6, 'port-closed', { port: 1 }), job: 'other' })), d);
});

test('events are bounded; a job event keeps the events the page has', () => {
  let d = parseDevserver({ ...base, ports: [], events: [] });
  for (let i = 1; i <= EVENTS_KEPT + 20; i++) d = applyEvent(d, parseDevEvent(ev(i, i % 2 ? 'port-detected' : 'port-closed', { port: 8000 })));
  assert.equal(d.events.length, EVENTS_KEPT);
  assert.equal(d.events[d.events.length - 1].id, String(EVENTS_KEPT + 20));
  const job = parseDevserver({ ...base, state: 'cancelled', cancel_requested: true, ports: [] });
  const merged = mergeJob(d, job);
  assert.equal(merged.state, 'cancelled');
  assert.equal(merged.events.length, EVENTS_KEPT);
});

test('events in words', () => {
  const w = (kind, f) => eventText(parseDevEvent(ev(1, kind, f)));
  assert.equal(w('port-detected', { port: 8123, addr: '127.0.0.1', source: 'socket' }), 'port 8123 detected on 127.0.0.1 (listening socket)');
  assert.equal(w('port-detected', { port: 5173, addr: 'localhost', source: 'output' }), 'port 5173 detected on localhost (URL it printed)');
  assert.equal(w('port-closed', { port: 8123 }), 'port 8123 closed');
  assert.equal(w('process-exited', { exit_code: 0, signal: null }), 'process exited with code 0');
  assert.equal(w('process-exited', { exit_code: null, signal: 2 }), 'process exited (SIGINT)');
  assert.equal(w('process-exited', { exit_code: null, signal: 64 }), 'process exited (signal 64)');
  assert.equal(w('process-exited', {}), 'process exited (no status)');
});
