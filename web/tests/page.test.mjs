// The page in real Chromium against the fixture relay (tests/support): the
// protocol handling, layout, resume, reconnect and hostile-output defences,
// with frames composed by the test so every case is exact. The same page
// against the real relay and bridge is e2e.test.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { launch, paneText, until, DIST, ARTIFACTS } from './support/browser.mjs';
import { startFixtureRelay, zstdRawFrame } from './support/fixture-relay.mjs';
import { encodeRecords, FRAME_BATCH, FRAME_VERSION, REC_OUTPUT, REC_PANE_RESET, REC_TOPOLOGY } from '../build/test/protocol.js';

const XSS_NAME = '<img src=x onerror="window.__xss=1">';

function topology({ split = true, name = 'bash' } = {}) {
  const panes = split
    ? [
        { id: '%0', x: 0, y: 0, cols: 40, rows: 12, title: 'left' },
        { id: '%1', x: 41, y: 0, cols: 39, rows: 12, title: XSS_NAME },
      ]
    : [{ id: '%0', x: 0, y: 0, cols: 80, rows: 12, title: 'only' }];
  const layout = split ? 'abcd,80x12,0,0{40x12,0,0,0,39x12,41,0,1}' : 'abcd,80x12,0,0,0';
  return {
    session: '$1',
    name: 'tb_local_primary',
    active_window: '@1',
    windows: [
      { id: '@1', index: 0, name, active: true, layout, visible_layout: layout, flags: '*', active_pane: '%0', panes },
      { id: '@2', index: 1, name: 'logs', active: false, layout: 'ef01,80x12,0,0,2', visible_layout: 'ef01,80x12,0,0,2', flags: '', active_pane: '%2', panes: [{ id: '%2', x: 0, y: 0, cols: 80, rows: 12, title: '' }] },
    ],
  };
}

const out = (pane, text) => ({ kind: REC_OUTPUT, pane, bytes: text });

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

/** A fresh relay and a logged-in page showing its session. */
async function open(t, { records } = {}) {
  const relay = await startFixtureRelay({ distDir: DIST });
  t.after(() => relay.close());
  relay.append(records ?? [
    { kind: REC_TOPOLOGY, topology: topology({ name: XSS_NAME }) },
    { kind: REC_PANE_RESET, pane: '%0', cols: 40, rows: 12, bytes: 'left pane ready\r\n$ ' },
    { kind: REC_PANE_RESET, pane: '%1', cols: 39, rows: 12, bytes: 'right pane ready\r\n$ ' },
    { kind: REC_PANE_RESET, pane: '%2', cols: 80, rows: 12, bytes: 'logs\r\n' },
  ]);
  const context = await browser.newContext({ viewport: { width: 1200, height: 700 } });
  t.after(() => context.close());
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto(relay.loginUrl);
  await page.goto(relay.sessionUrl);
  await until(() => page.evaluate(() => document.body.dataset.conn === 'live'), 10_000, 'live');
  return { relay, page, context, errors };
}

test('panes are laid out as tmux lays them out, names render as text', async (t) => {
  const { relay, page, errors } = await open(t);
  relay.append([out('%1', 'hello from the right\r\n')]);
  await until(async () => (await paneText(page, '%1'))?.includes('hello from the right'), 5000, 'output in %1');
  assert.match(await paneText(page, '%0'), /left pane ready/);

  const boxes = await page.evaluate(() => {
    const stage = document.querySelector('.stage:not([hidden])').getBoundingClientRect();
    const r = (id) => document.querySelector(`.pane[data-pane="${id}"]`).getBoundingClientRect();
    const term = document.querySelector('.pane[data-pane="%0"] .xterm-screen').getBoundingClientRect();
    return { stage: stage.toJSON(), left: r('%0').toJSON(), right: r('%1').toJSON(), cellW: term.width / 40, logsShown: !!document.querySelector('.pane[data-pane="%2"]')?.offsetParent };
  });
  const { stage, left, right, cellW } = boxes;
  // Side by side, same top, with tmux's one-cell separator between them.
  assert.equal(Math.round(left.top), Math.round(right.top));
  assert.ok(Math.abs(left.left - stage.left) < 1, 'left pane at x=0');
  assert.ok(Math.abs(right.left - stage.left - 41 * cellW) < 1.5, `right pane at x=41 cells (${right.left - stage.left} vs ${41 * cellW})`);
  assert.ok(Math.abs(left.width - 40 * cellW) < 1.5, 'left pane 40 cells wide');
  // 80 cells, plus the column on the right where the last pane's scrollbar lives.
  assert.ok(stage.width - 80 * cellW > -0.5 && stage.width - 80 * cellW <= cellW + 1, `window 80 cells wide (+ scrollbar): ${stage.width} vs ${80 * cellW}`);
  assert.equal(boxes.logsShown, false, 'the other window is not shown');

  // Window names are text, never markup.
  const tabs = await page.evaluate(() => [...document.querySelectorAll('.tab')].map((b) => b.textContent));
  assert.deepEqual(tabs, [`0: ${XSS_NAME}`, '1: logs']);
  assert.equal(await page.evaluate(() => document.querySelectorAll('img').length), 0);
  assert.equal(await page.evaluate(() => window.__xss), undefined);

  // Tabs switch the shown window locally and send nothing.
  await page.click('.tab[data-window="@2"]');
  await until(async () => (await paneText(page, '%2'))?.includes('logs'), 5000, 'window @2 shown');
  assert.equal(await page.evaluate(() => !!document.querySelector('.pane[data-pane="%0"]').offsetParent), false);
  await page.click('.tab[data-window="@1"]');
  await page.screenshot({ path: join(ARTIFACTS, 'page-fixture-split.png') });
  assert.deepEqual(relay.inputs(), []);
  // After a tab click, typing goes to the shown window's focused pane.
  await page.keyboard.type('z');
  await until(() => relay.inputs().some((m) => m.pane === '%0' && m.data === 'z'), 5000, 'typing after a tab click');
  assert.deepEqual(errors, []);
});

test('a window larger than the viewport is scaled down by font size and letterboxed', async (t) => {
  const { relay, page } = await open(t);
  await page.setViewportSize({ width: 420, height: 300 });
  await until(() => page.evaluate(() => {
    const s = document.querySelector('.stage:not([hidden])').getBoundingClientRect();
    return s.right <= window.innerWidth && s.width > 0;
  }), 5000, 'stage fits');
  const g = await page.evaluate(() => {
    const stage = document.querySelector('.stage:not([hidden])').getBoundingClientRect();
    const screen = document.querySelector('.pane[data-pane="%0"] .xterm-screen').getBoundingClientRect();
    const right = document.querySelector('.pane[data-pane="%1"]').getBoundingClientRect();
    return { stage: stage.toJSON(), cellW: screen.width / 40, rightLeft: right.left - stage.left, font: parseFloat(getComputedStyle(document.querySelector('.pane[data-pane="%0"] .xterm-rows')).fontSize) };
  });
  assert.ok(g.font < 14, `font shrank (${g.font})`);
  assert.ok(g.stage.width - 80 * g.cellW > -0.5 && g.stage.width - 80 * g.cellW <= g.cellW + 1, 'stage is 80 cells of the new size (+ scrollbar column)');
  assert.ok(Math.abs(g.rightLeft - 41 * g.cellW) < 1.5, 'right pane still at x=41 cells');
  // The page asked tmux for the cells it has room for at the base font size.
  const lastResize = () => relay.state.received.filter((r) => r.msg.t === 'resize').at(-1)?.msg;
  await until(() => lastResize()?.cols < 60, 5000, 'smaller resize sent');
  const { cols, rows } = lastResize();
  assert.ok(cols >= 30 && rows >= 5 && rows < 20, `resize ${cols}x${rows}`);
  await page.screenshot({ path: join(ARTIFACTS, 'page-fixture-scaled.png') });
});

test('automatic replies to queries never reach the pane; typing does', async (t) => {
  const { relay, page } = await open(t);
  const queries = [
    '\x1b[c', // DA1
    '\x1b[>c', // DA2
    '\x1b[5n', // DSR status
    '\x1b[6n', // cursor position report
    '\x1b[?6n',
    '\x1b]10;?\x07', // foreground colour query
    '\x1b]11;?\x1b\\', // background colour query
    '\x1b]52;c;?\x07', // clipboard read
    '\x1b[21t', // title report
    '\x1b[14t', // window size report
    '\x1b[?2004$p', // DECRQM
    '\x1bP$qm\x1b\\', // DECRQSS
    '\x1b[>q', // XTVERSION
  ].join('');
  relay.append([out('%0', `${queries}after queries\r\n`)]);
  await until(async () => (await paneText(page, '%0'))?.includes('after queries'), 5000, 'output parsed');
  // xterm.js did produce replies (so the check below can fail), and they were dropped.
  const dropped = await until(() => page.evaluate(() => Number(document.body.dataset.droppedReplies || 0)), 3000, 'replies dropped');
  assert.ok(dropped >= 5, `xterm.js answered several queries (${dropped})`);
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(relay.inputs(), [], 'no reply was sent as input');
  // A title set by the pane is shown as text.
  relay.append([out('%0', '\x1b]2;<b onclick=x>pwned</b>\x07')]);
  await until(async () => (await page.textContent('[data-testid="pane-title"]')).includes('<b onclick=x>pwned</b>'), 5000, 'title as text');
  assert.equal(await page.evaluate(() => document.querySelectorAll('header b').length), 0);
  // The clipboard read was denied visibly.
  assert.match(await page.textContent('.notices'), /read your clipboard; denied/);

  // Real typing still goes to the focused pane, and clicking moves focus.
  await page.click('.pane[data-pane="%1"]');
  await page.keyboard.type('ls');
  await page.keyboard.press('Enter');
  await until(() => relay.inputs().map((m) => m.data).join('') === 'ls\r', 5000, 'typed input');
  assert.ok(relay.inputs().every((m) => m.pane === '%1'));
  await page.click('.pane[data-pane="%0"]');
  await page.keyboard.type('x');
  await until(() => relay.inputs().some((m) => m.pane === '%0' && m.data === 'x'), 5000, 'input to %0');
});

test('mouse reports and bracketed paste pass the filter; a paste cannot end the bracket early', async (t) => {
  const { relay, page, context } = await open(t);
  // The pane's app turned on SGR mouse reporting and bracketed paste.
  relay.append([out('%0', '\x1b[?1000h\x1b[?1006h\x1b[?2004hmouse app\r\n')]);
  await until(async () => (await paneText(page, '%0'))?.includes('mouse app'), 5000, 'modes on');
  const box = await page.evaluate(() => document.querySelector('.pane[data-pane="%0"] .xterm-screen').getBoundingClientRect().toJSON());
  await page.mouse.click(box.left + (box.width / 40) * 2.5, box.top + (box.height / 12) * 3.5);
  await until(() => relay.inputs().some((m) => m.pane === '%0' && /^\x1b\[<0;3;4M/.test(m.data)), 5000, 'SGR mouse press at 3;4');

  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: relay.url });
  await page.evaluate(() => navigator.clipboard.writeText('safe\x1b[201~rm -rf ~\n'));
  const before = relay.inputs().length;
  // A real paste with Ctrl+Shift+V (Ctrl+V alone is the terminal's literal-next): Chromium runs its paste command.
  const cdp = await context.newCDPSession(page);
  await cdp.send('Input.dispatchKeyEvent', { type: 'rawKeyDown', key: 'V', code: 'KeyV', modifiers: 10, windowsVirtualKeyCode: 86, commands: ['paste'] });
  await cdp.send('Input.dispatchKeyEvent', { type: 'keyUp', key: 'V', code: 'KeyV', modifiers: 10, windowsVirtualKeyCode: 86 });
  await until(() => relay.inputs().slice(before).map((m) => m.data).join('').includes('\x1b[201~'), 5000, 'paste sent');
  const pasted = relay.inputs().slice(before).map((m) => m.data).join('');
  assert.ok(pasted.endsWith('\x1b[200~safe[201~rm -rf ~\r\x1b[201~') || pasted.endsWith('\x1b[200~saferm -rf ~\r\x1b[201~'), JSON.stringify(pasted));
  assert.equal(pasted.split('\x1b[201~').length, 2, 'exactly one end marker');
});

test('OSC 52 writes ask first and links are http(s) only', async (t) => {
  const { relay, page } = await open(t);
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: relay.url });
  await page.evaluate(() => navigator.clipboard.writeText('untouched'));
  const b64 = Buffer.from('rm -rf ~').toString('base64');
  relay.append([out('%0', `\x1b]52;c;${b64}\x07done\r\n`)]);
  await until(() => page.$('[data-testid="osc52-prompt"]'), 5000, 'OSC 52 prompt');
  assert.match(await page.textContent('[data-testid="osc52-prompt"]'), /copy 8 characters.*rm -rf ~/);
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), 'untouched', 'nothing written without consent');
  await page.click('[data-testid="osc52-prompt"] button:has-text("Allow copy")');
  await until(async () => (await page.evaluate(() => navigator.clipboard.readText())) === 'rm -rf ~', 3000, 'clipboard written after consent');

  // Copy: a double-click selects a word, Ctrl+Shift+C copies it and types nothing.
  relay.append([out('%0', 'copyme123 tail\r\n')]);
  await until(async () => (await paneText(page, '%0'))?.includes('copyme123'), 5000, 'word drawn');
  const w = await page.evaluate(() => {
    const rows = [...document.querySelectorAll('.pane[data-pane="%0"] .xterm-rows > div')];
    const row = rows.findIndex((r) => r.textContent.includes('copyme123'));
    const screen = document.querySelector('.pane[data-pane="%0"] .xterm-screen').getBoundingClientRect();
    const col = rows[row].textContent.indexOf('copyme123');
    return [screen.left + (col + 3.5) * (screen.width / 40), screen.top + (row + 0.5) * (screen.height / 12)];
  });
  const inputsBefore = relay.inputs().length;
  await page.mouse.dblclick(w[0], w[1]);
  await page.keyboard.press('Control+Shift+C');
  await until(async () => (await page.evaluate(() => navigator.clipboard.readText())) === 'copyme123', 3000, 'selection copied');
  assert.equal(relay.inputs().length, inputsBefore, 'copying typed nothing');

  // OSC 8 link to javascript: is refused without asking; https asks and shows the target.
  relay.append([out('%0', '\x1b]8;;javascript:alert(1)\x1b\\EVIL\x1b]8;;\x1b\\ \x1b]8;;https://example.invalid/x\x1b\\GOOD\x1b]8;;\x1b\\\r\n')]);
  await until(async () => (await paneText(page, '%0'))?.includes('EVIL GOOD'), 5000, 'links drawn');
  const dialogs = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    d.dismiss();
  });
  const pos = await page.evaluate(() => {
    const rows = [...document.querySelectorAll('.pane[data-pane="%0"] .xterm-rows > div')];
    const row = rows.findIndex((r) => r.textContent.includes('EVIL GOOD'));
    const screen = document.querySelector('.pane[data-pane="%0"] .xterm-screen').getBoundingClientRect();
    const cw = screen.width / 40;
    const ch = screen.height / 12;
    const col = rows[row].textContent.indexOf('EVIL');
    return { evil: [screen.left + (col + 1.5) * cw, screen.top + (row + 0.5) * ch], good: [screen.left + (col + 6.5) * cw, screen.top + (row + 0.5) * ch] };
  });
  await page.mouse.move(pos.evil[0], pos.evil[1]);
  await page.mouse.click(pos.evil[0], pos.evil[1]);
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(dialogs, [], 'no prompt for a javascript: link');
  await page.mouse.move(pos.good[0], pos.good[1]);
  await page.mouse.click(pos.good[0], pos.good[1]);
  await until(() => dialogs.length > 0, 3000, 'confirm for https link');
  assert.match(dialogs[0], /https:\/\/example\.invalid\/x/);
  assert.equal(page.context().pages().length, 1, 'declined: no tab opened');
});

test('a reload restores the screens and fetches only the missed records', async (t) => {
  const { relay, page } = await open(t);
  relay.append([out('%0', 'before reload\r\n')]);
  const n = relay.state.records.length;
  await until(() => page.evaluate((s) => document.body.dataset.savedSeq === String(s), n), 5000, 'state saved');
  assert.equal(await page.evaluate((k) => localStorage.getItem(k), `tb:last_seq:${relay.state.sessionId}`), String(n));

  const framesBefore = relay.state.binaryFrames.length;
  await page.reload();
  await until(() => page.evaluate(() => document.body.dataset.conn === 'live'), 10_000, 'live after reload');
  assert.equal(relay.state.hellos.at(-1).last_seq, n, 'resumed from the saved seq');
  assert.match(await paneText(page, '%0'), /before reload/, 'screen restored from the saved state');
  assert.equal(relay.state.binaryFrames.length, framesBefore, 'nothing re-sent');

  // Records that arrive while the tab is gone are the only ones sent after it comes back.
  await page.goto('about:blank');
  await until(() => relay.state.conns.every((c) => !c.live), 5000, 'tab gone');
  relay.append([out('%0', 'while away\r\n')]);
  await page.goto(relay.sessionUrl);
  await until(async () => (await paneText(page, '%0'))?.includes('while away'), 10_000, 'missed output');
  const after = relay.state.binaryFrames.slice(framesBefore);
  assert.deepEqual(after.map((f) => [f.firstSeq, f.lastSeq]), [[n + 1, n + 1]]);
  assert.match(await paneText(page, '%0'), /before reload[\s\S]*while away/);
});

test('network drops reconnect with a fresh token, keep queued typing, and a gap resyncs', async (t) => {
  const { relay, page } = await open(t);
  await page.click('.pane[data-pane="%0"]');
  relay.state.rejectTokens = true;
  const tokensBefore = relay.state.tokenRequests;
  relay.dropBrowsers(1001);
  await until(() => page.evaluate(() => document.body.dataset.conn !== 'live'), 5000, 'drop noticed');
  await page.keyboard.type('queued');
  relay.append([out('%0', 'during the gap\r\n')]);
  // Two refused token requests: the page keeps retrying with backoff.
  await until(() => relay.state.tokenRequests >= tokensBefore + 2, 10_000, 'retries');
  relay.state.rejectTokens = false;
  await until(() => page.evaluate(() => document.body.dataset.conn === 'live'), 15_000, 'reconnected');
  assert.ok(relay.state.tokenRequests >= tokensBefore + 3, 'a fresh token per attempt');
  await until(() => relay.inputs().map((m) => m.data).join('') === 'queued', 5000, 'queued typing delivered');
  await until(async () => (await paneText(page, '%0'))?.includes('during the gap'), 5000, 'missed output after reconnect');

  // A batch that skips ahead makes the page reconnect with hello from what it has.
  const have = relay.state.records.length;
  const hellos = relay.state.hellos.length;
  relay.sendRaw(new Uint8Array(encodeGapFrame(have + 5)), { type: FRAME_BATCH, firstSeq: have + 5, lastSeq: have + 5 });
  await until(() => relay.state.hellos.length > hellos, 5000, 'hello after gap');
  assert.equal(relay.state.hellos.at(-1).last_seq, have);

  // Runner state is shown.
  relay.setRunner(false);
  await until(() => page.evaluate(() => document.body.dataset.runner === 'offline'), 5000, 'runner offline');
  assert.equal(await page.textContent('[data-testid="runner"]'), 'runner offline');
});

test('the browser going offline and back reconnects without a reload', async (t) => {
  const { relay, page, context } = await open(t);
  await page.click('.pane[data-pane="%0"]');
  await page.evaluate(() => {
    window.__loaded = true;
  });
  const hellos = relay.state.hellos.length;
  await context.setOffline(true);
  // Chromium drops the socket when the network goes; the relay side notices too.
  relay.dropBrowsers(1001);
  await until(() => page.evaluate(() => document.body.dataset.conn !== 'live'), 5000, 'offline noticed');
  await page.keyboard.type('hi');
  relay.append([out('%0', 'while offline\r\n')]);
  await new Promise((r) => setTimeout(r, 1500));
  await context.setOffline(false);
  await until(() => page.evaluate(() => document.body.dataset.conn === 'live'), 15_000, 'back online');
  assert.equal(await page.evaluate(() => window.__loaded), true, 'same page, no reload');
  assert.ok(relay.state.hellos.length > hellos);
  await until(async () => (await paneText(page, '%0'))?.includes('while offline'), 5000, 'missed output');
  await until(() => relay.inputs().map((m) => m.data).join('') === 'hi', 5000, 'queued typing');
});

test('a relay that lost history makes the page start over from what it has', async (t) => {
  const { relay, page } = await open(t);
  relay.append([out('%0', 'old history\r\n'), out('%0', 'more\r\n')]);
  const n = relay.state.records.length;
  await until(() => page.evaluate((s) => document.body.dataset.lastSeq === String(s), n), 5000, 'applied');
  // The relay comes back with only its first record: a topology with a single pane.
  relay.state.records.length = 0;
  relay.append([{ kind: REC_TOPOLOGY, topology: topology({ split: false }) }, { kind: REC_PANE_RESET, pane: '%0', cols: 80, rows: 12, bytes: 'fresh start\r\n' }]);
  relay.dropBrowsers(1001);
  await until(async () => (await paneText(page, '%0'))?.includes('fresh start'), 15_000, 'redrawn from the relay');
  assert.doesNotMatch(await paneText(page, '%0'), /old history/);
  assert.equal(await page.evaluate(() => document.body.dataset.lastSeq), '2');
  assert.equal(await page.evaluate(() => document.querySelector('.pane[data-pane="%1"]')), null);
});

test('issue 16: the page resumes in its numbering epoch and starts over when its records are not the relay\'s', async (t) => {
  const { relay, page } = await open(t);
  // A runner that numbered over: the page keeps the new epoch for its next hello.
  relay.rebase('e1');
  const n = relay.append([out('%0', 'kept\r\n')]);
  await until(() => page.evaluate((s) => document.body.dataset.savedSeq === String(s), n), 5000, 'state saved');
  const framesBefore = relay.state.binaryFrames.length;
  await page.reload();
  await until(() => page.evaluate(() => document.body.dataset.conn === 'live'), 10_000, 'live after reload');
  assert.deepEqual([relay.state.hellos.at(-1).last_seq, relay.state.hellos.at(-1).epoch], [n, 'e1']);
  assert.equal(relay.state.binaryFrames.length, framesBefore, 'same epoch: nothing re-sent');

  // The relay sent a record it never stored, then the runner numbered over:
  // the page drops its screens and comes back from seq 0.
  relay.append([out('%0', 'never stored\r\n')]);
  await until(async () => (await paneText(page, '%0'))?.includes('never stored'), 5000, 'early record shown');
  relay.state.records.length = n;
  const hellos = relay.state.hellos.length;
  relay.rebase('e2', { reset: true });
  await until(() => relay.state.hellos.length > hellos && relay.state.hellos.at(-1).last_seq === 0, 10_000, 'hello from 0');
  relay.append([out('%0', 'renumbered\r\n')]);
  await until(async () => (await paneText(page, '%0'))?.includes('renumbered'), 10_000, 'new records');
  assert.doesNotMatch(await paneText(page, '%0'), /never stored/);
  assert.match(await paneText(page, '%0'), /kept/);

  // Away while the runner numbered over again: the saved records are of an
  // older epoch, so the welcome says reset and the page starts over.
  const m = relay.state.records.length;
  await until(() => page.evaluate((s) => document.body.dataset.savedSeq === String(s), m), 5000, 'saved in e2');
  await page.goto('about:blank');
  await until(() => relay.state.conns.every((c) => !c.live), 5000, 'tab gone');
  relay.state.records.length = 0;
  relay.state.epoch = 'e3';
  relay.append([
    { kind: REC_TOPOLOGY, topology: topology({ split: false }) },
    { kind: REC_PANE_RESET, pane: '%0', cols: 80, rows: 12, bytes: 'epoch three\r\n' },
  ]);
  relay.append(Array.from({ length: m }, () => out('%0', '.')));
  await page.goto(relay.sessionUrl);
  await until(async () => (await paneText(page, '%0'))?.includes('epoch three'), 10_000, 'redrawn');
  assert.deepEqual([relay.state.hellos.at(-1).last_seq, relay.state.hellos.at(-1).epoch], [m, 'e2']);
  assert.doesNotMatch(await paneText(page, '%0'), /kept|renumbered/);
  assert.equal(await page.evaluate(() => document.querySelector('.pane[data-pane="%1"]')), null);
});

function encodeGapFrame(seq) {
  const body = encodeRecords([{ kind: REC_OUTPUT, seq, pane: '%0', bytes: 'never shown' }]);
  const frame = new Uint8Array(20 + body.length);
  const dv = new DataView(frame.buffer);
  dv.setUint8(0, FRAME_VERSION);
  dv.setUint8(1, FRAME_BATCH);
  dv.setBigUint64(4, BigInt(seq), true);
  dv.setBigUint64(12, BigInt(seq), true);
  frame.set(body, 20);
  return frame;
}

test('zstd frames decode, snapshots replace state, large input is chunked', async (t) => {
  const { relay, page } = await open(t);
  // A Snapshot at m: one Topology and one PaneReset per pane, all with seq m, zstd-compressed.
  const m = relay.state.records.length + 3;
  const recs = [
    { kind: REC_TOPOLOGY, seq: m, topology: topology({ split: false }) },
    { kind: REC_PANE_RESET, seq: m, pane: '%0', cols: 80, rows: 12, bytes: 'snapshot screen\r\n$ ' },
    { kind: REC_PANE_RESET, seq: m, pane: '%2', cols: 80, rows: 12, bytes: 'logs again\r\n' },
  ];
  const payload = zstdRawFrame(encodeRecords(recs));
  const frame = new Uint8Array(20 + payload.length);
  const dv = new DataView(frame.buffer);
  dv.setUint8(0, FRAME_VERSION);
  dv.setUint8(1, 2);
  dv.setUint8(2, 1);
  dv.setBigUint64(4, BigInt(m), true);
  dv.setBigUint64(12, BigInt(m), true);
  frame.set(payload, 20);
  relay.sendRaw(frame, { type: 2, firstSeq: m, lastSeq: m });
  await until(async () => (await paneText(page, '%0'))?.includes('snapshot screen'), 5000, 'snapshot applied');
  assert.equal(await page.evaluate(() => document.querySelector('.pane[data-pane="%1"]')), null, 'pane gone with the snapshot');
  assert.equal(await page.evaluate(() => document.body.dataset.lastSeq), String(m));

  // 200 KB typed at once goes out in chunks of at most 16 Ki characters, in order.
  await page.click('.pane[data-pane="%0"]');
  const big = 'abcdefghij'.repeat(20_000);
  await page.keyboard.insertText(big);
  await until(() => relay.inputs().reduce((a, m2) => a + m2.data.length, 0) >= big.length, 15_000, 'big input');
  const msgs = relay.inputs();
  assert.equal(msgs.map((x) => x.data).join(''), big);
  assert.ok(msgs.length >= 13, `chunked (${msgs.length} messages)`);
  assert.ok(msgs.every((x) => x.data.length <= 16 * 1024 && x.pane === '%0'));
});

test('the session list shows sessions as text with links', async (t) => {
  const relay = await startFixtureRelay({ distDir: DIST, attach: "tmux -L x attach -t '=<b>tb</b>'" });
  t.after(() => relay.close());
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  await page.goto(relay.url + '/');
  await until(() => page.textContent('main').then((s) => s.includes('Not logged in')), 5000, 'logged-out notice');
  await page.goto(relay.loginUrl);
  await until(() => page.$('[data-testid="sessions"] a.open'), 5000, 'list');
  assert.equal(await page.getAttribute('[data-testid="sessions"] a.open', 'href'), `/s/${relay.state.sessionId}`);
  assert.equal(await page.textContent('.attach'), "tmux -L x attach -t '=<b>tb</b>'");
  assert.equal(await page.evaluate(() => document.querySelectorAll('main b').length), 0);
});
