// Issue 14 in real Chromium against the fixture relay (tests/support): one
// test per item the page owns, each failing if its problem came back. The
// same items against the real relay, runner and tmux are in e2e.test.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { launch, paneText, until, DIST, ARTIFACTS } from './support/browser.mjs';
import { startFixtureRelay } from './support/fixture-relay.mjs';
import { decodePng } from './support/png.mjs';
import { REC_OUTPUT, REC_PANE_RESET, REC_TOPOLOGY } from '../build/test/protocol.js';

function win(id, index, name, panes, layout, active = false) {
  return { id, index, name, active, layout, visible_layout: layout, flags: active ? '*' : '', active_pane: panes[0].id, panes };
}

function topology({ windows, active = '@1' } = {}) {
  const ws = windows ?? [
    win('@1', 0, 'bash', [{ id: '%0', x: 0, y: 0, cols: 40, rows: 12, title: 'left' }, { id: '%1', x: 41, y: 0, cols: 39, rows: 12, title: 'right' }], 'abcd,80x12,0,0{40x12,0,0,0,39x12,41,0,1}', active === '@1'),
    win('@2', 1, 'logs', [{ id: '%2', x: 0, y: 0, cols: 80, rows: 12, title: '' }], 'ef01,80x12,0,0,2', active === '@2'),
  ];
  return { session: '$1', name: 'tb_local_primary', active_window: active, windows: ws };
}

const out = (pane, text) => ({ kind: REC_OUTPUT, pane, bytes: text });
const FEATURES = { features: ['keys', 'tmux'] };

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

async function open(t, { records, viewport = { width: 1200, height: 700 }, welcome = {}, contextOptions = {}, prefs } = {}) {
  const relay = await startFixtureRelay({ distDir: DIST });
  t.after(() => relay.close());
  relay.state.welcomeExtra = welcome;
  relay.append(records ?? [
    { kind: REC_TOPOLOGY, topology: topology() },
    { kind: REC_PANE_RESET, pane: '%0', cols: 40, rows: 12, bytes: 'left pane ready\r\n$ ' },
    { kind: REC_PANE_RESET, pane: '%1', cols: 39, rows: 12, bytes: 'right pane ready\r\n$ ' },
    { kind: REC_PANE_RESET, pane: '%2', cols: 80, rows: 12, bytes: 'logs\r\n' },
  ]);
  const context = await browser.newContext({ viewport, ...contextOptions });
  t.after(() => context.close());
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(relay.loginUrl);
  if (prefs) await page.evaluate((p) => localStorage.setItem('tb:prefs', JSON.stringify(p)), prefs);
  await page.goto(relay.sessionUrl);
  await until(() => page.evaluate(() => document.body.dataset.conn === 'live'), 10_000, 'live');
  await until(() => page.$('.pane[data-pane="%0"] .xterm-rows'), 10_000, 'pane %0');
  return { relay, page, context, errors };
}

/** Text the page sent for typing: input data, and keys spelled as tmux names. */
function keysSent(relay) {
  return relay.sent('keys').flatMap((m) => m.keys);
}

test('issue 14 item 1: underscores are visible at several font sizes (pixels of a screenshot)', async (t) => {
  const { relay, page } = await open(t);
  relay.append([out('%0', '\r\n____________\r\ncontainer_info.json\r\n')]);
  await until(async () => (await paneText(page, '%0'))?.includes('container_info.json'), 5000, 'underscores drawn');
  for (const size of [9, 11, 13, 14, 16, 20]) {
    await page.evaluate((s) => {
      const input = document.querySelector('[data-action="font-bigger"]');
      if (!input) throw new Error('no font control');
    }, size);
    // The font-size control (what a person uses) sets the size.
    while (Number(await page.evaluate(() => JSON.parse(localStorage.getItem('tb:prefs') || '{"fontSize":14}').fontSize)) !== size) {
      const now = Number(await page.evaluate(() => JSON.parse(localStorage.getItem('tb:prefs') || '{"fontSize":14}').fontSize));
      await page.click(now < size ? '[data-action="font-bigger"]' : '[data-action="font-smaller"]');
    }
    await until(() => page.evaluate((s) => Number(document.body.dataset.fontSize) === s, size), 5000, `font ${size}`);
    const box = await page.evaluate(() => {
      const rows = [...document.querySelectorAll('.pane[data-pane="%0"] .xterm-rows > div')];
      const row = rows.find((r) => r.textContent.startsWith('____________'));
      const r = row.getBoundingClientRect();
      const screen = document.querySelector('.pane[data-pane="%0"] .xterm-screen').getBoundingClientRect();
      return { x: r.left, y: r.top, w: (screen.width / 40) * 12, h: r.height };
    });
    const png = decodePng(await page.screenshot({ clip: { x: box.x, y: box.y, width: box.w, height: box.h } }));
    // Every underscore must leave ink: in each cell's column range some
    // pixel clearly differs from the background.
    const bg = [png.data[0], png.data[1], png.data[2]];
    const inked = (x0, x1) => {
      for (let y = 0; y < png.height; y++) {
        for (let x = x0; x < x1; x++) {
          const i = (y * png.width + x) * png.channels;
          const d = Math.abs(png.data[i] - bg[0]) + Math.abs(png.data[i + 1] - bg[1]) + Math.abs(png.data[i + 2] - bg[2]);
          if (d > 120) return true;
        }
      }
      return false;
    };
    const cw = png.width / 12;
    const missing = [];
    for (let c = 0; c < 12; c++) if (!inked(Math.floor(c * cw + cw * 0.2), Math.ceil(c * cw + cw * 0.8))) missing.push(c);
    await page.screenshot({ path: join(ARTIFACTS, `issue14-underscores-${size}px.png`), clip: { x: box.x, y: box.y - box.h, width: box.w * 2, height: box.h * 3 } });
    assert.deepEqual(missing, [], `underscores invisible at ${size}px in cells ${missing}`);
  }
});

test('issue 14 item 3: copy and paste keys never reach the shell as ^C or ^V; Ctrl+C without a selection still interrupts', async (t) => {
  const { relay, page, context } = await open(t, { welcome: FEATURES });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: relay.url });
  relay.append([out('%0', 'copyme123 tail\r\n')]);
  await until(async () => (await paneText(page, '%0'))?.includes('copyme123'), 5000, 'word drawn');
  const w = await page.evaluate(() => {
    const rows = [...document.querySelectorAll('.pane[data-pane="%0"] .xterm-rows > div')];
    const row = rows.findIndex((r) => r.textContent.includes('copyme123'));
    const screen = document.querySelector('.pane[data-pane="%0"] .xterm-screen').getBoundingClientRect();
    const col = rows[row].textContent.indexOf('copyme123');
    return [screen.left + (col + 3.5) * (screen.width / 40), screen.top + (row + 0.5) * (screen.height / 12)];
  });
  await page.mouse.dblclick(w[0], w[1]);
  // Ctrl+C with a selection copies it and sends nothing.
  await page.keyboard.press('Control+c');
  await until(async () => (await page.evaluate(() => navigator.clipboard.readText())) === 'copyme123', 3000, 'Ctrl+C copied');
  assert.deepEqual(keysSent(relay), [], 'no ^C with a selection');
  // Without a selection Ctrl+C is the shell's interrupt again.
  await page.keyboard.press('Control+c');
  await until(() => keysSent(relay).includes('C-c'), 3000, 'C-c sent');
  // Ctrl+V pastes (the browser's paste command), and no ^V goes to the shell.
  await page.evaluate(() => navigator.clipboard.writeText('pasted-text'));
  const cdp = await context.newCDPSession(page);
  await cdp.send('Input.dispatchKeyEvent', { type: 'rawKeyDown', key: 'v', code: 'KeyV', modifiers: 2, windowsVirtualKeyCode: 86, commands: ['paste'] });
  await cdp.send('Input.dispatchKeyEvent', { type: 'keyUp', key: 'v', code: 'KeyV', modifiers: 2, windowsVirtualKeyCode: 86 });
  await until(() => relay.inputs().some((m) => m.data.includes('pasted-text')), 3000, 'pasted');
  assert.ok(!keysSent(relay).includes('C-v'), 'no ^V');
  // Ctrl+Shift+C copies too; the help overlay lists the keys.
  await page.keyboard.press('Control+Shift+Slash');
  await until(() => page.$('[data-testid="help"]'), 3000, 'help overlay');
  assert.match(await page.textContent('[data-testid="help"]'), /Ctrl\+Shift\+C/);
  await page.keyboard.press('Escape');
  await until(async () => !(await page.$('[data-testid="help"]')), 3000, 'help closed');
});

test('issue 14 item 4 (page side): keys go as tmux key names, so the prefix reaches tmux; the controls send tmux actions', async (t) => {
  const { relay, page } = await open(t, { welcome: FEATURES });
  await page.click('.pane[data-pane="%1"]');
  // Clicking a pane selects it in tmux.
  await until(() => relay.sent('tmux').some((m) => m.op === 'select_pane' && m.pane === '%1'), 3000, 'select_pane');
  await page.keyboard.press('Control+b');
  await page.keyboard.press('c');
  await page.keyboard.type('ls');
  await page.keyboard.press('Enter');
  await page.keyboard.press('ArrowUp');
  await until(() => keysSent(relay).join(' ') === 'C-b c l s Enter Up', 3000, `keys (${keysSent(relay).join(' ')})`);
  assert.ok(relay.sent('keys').every((m) => m.pane === '%1'));
  assert.deepEqual(relay.inputs(), [], 'typing sends no raw bytes');
  await page.click('[data-action="split-right"]');
  await page.click('[data-action="split-below"]');
  await page.click('[data-action="new-window"]');
  await page.click('[data-action="zoom"]');
  page.once('dialog', (d) => d.accept());
  await page.click('[data-action="close-pane"]');
  await until(() => relay.sent('tmux').length >= 6, 3000, 'tmux actions');
  const ops = relay.sent('tmux').map((m) => [m.op, m.pane ?? '', m.direction ?? '']);
  assert.deepEqual(ops.slice(1), [['split', '%1', 'right'], ['split', '%1', 'below'], ['new_window', '', ''], ['zoom', '%1', ''], ['kill_pane', '%1', '']]);
  // Close pane asks first: declining sends nothing.
  page.once('dialog', (d) => d.dismiss());
  await page.click('[data-action="close-pane"]');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(relay.sent('tmux').filter((m) => m.op === 'kill_pane').length, 1);
  // Dragging the border between the panes resizes them in tmux.
  const h = await page.evaluate(() => document.querySelector('.border-handle.v').getBoundingClientRect().toJSON());
  const cellW = await page.evaluate(() => document.querySelector('.pane[data-pane="%0"] .xterm-screen').getBoundingClientRect().width / 40);
  await page.mouse.move(h.left + h.width / 2, h.top + 20);
  await page.mouse.down();
  await page.mouse.move(h.left + h.width / 2 + cellW * 5, h.top + 20, { steps: 5 });
  await page.mouse.up();
  await until(() => relay.sent('tmux').some((m) => m.op === 'resize_pane'), 3000, 'resize_pane');
  assert.deepEqual(relay.sent('tmux').find((m) => m.op === 'resize_pane'), { t: 'tmux', op: 'resize_pane', pane: '%0', dx: 5, dy: 0 });
  await page.screenshot({ path: join(ARTIFACTS, 'issue14-controls.png') });
});

test('issue 14 item 6: a window tmux switches to becomes the shown tab; a reload keeps the tab the person chose', async (t) => {
  const { relay, page } = await open(t);
  await page.click('.tab[data-window="@2"]');
  await until(() => page.evaluate(() => document.body.dataset.shownWindow === '@2'), 3000, 'tab @2 shown');
  await page.reload();
  await until(() => page.evaluate(() => document.body.dataset.conn === 'live'), 10_000, 'live after reload');
  await until(() => page.evaluate(() => document.body.dataset.shownWindow === '@2'), 5000, 'the chosen tab after a reload');
  // A window created in tmux (tmux makes it active): the page follows.
  const three = topology({ active: '@3', windows: [...topology().windows.map((w) => ({ ...w, active: false })), win('@3', 2, 'new', [{ id: '%3', x: 0, y: 0, cols: 80, rows: 12, title: '' }], 'aaaa,80x12,0,0,3', true)] });
  relay.append([{ kind: REC_TOPOLOGY, topology: three }, { kind: REC_PANE_RESET, pane: '%3', cols: 80, rows: 12, bytes: 'new window\r\n$ ' }]);
  await until(() => page.evaluate(() => document.body.dataset.shownWindow === '@3'), 5000, 'followed tmux to @3');
  await until(() => page.evaluate(() => document.body.dataset.focusedPane === '%3'), 5000, 'typing goes to the new window');
  await page.keyboard.type('q');
  await until(() => relay.inputs().some((m) => m.pane === '%3' && m.data === 'q'), 3000, 'typed into %3');
});

test('issue 14 item 7: the wheel scrolls by its delta; the scrollbar never covers a column', async (t) => {
  const lines = Array.from({ length: 200 }, (_, i) => `line ${i}`).join('\r\n');
  const { relay, page } = await open(t);
  relay.append([out('%0', `${lines}\r\n`)]);
  await until(async () => (await paneText(page, '%0'))?.includes('line 199'), 5000, 'history written');
  const top = async () => page.evaluate(() => {
    const rows = [...document.querySelectorAll('.pane[data-pane="%0"] .xterm-rows > div')];
    const m = /line (\d+)/.exec(rows[0].textContent);
    return m ? Number(m[1]) : null;
  });
  const box = await page.evaluate(() => document.querySelector('.pane[data-pane="%0"] .xterm-screen').getBoundingClientRect().toJSON());
  const cellH = box.height / 12;
  await page.mouse.move(box.left + 50, box.top + 50);
  const before0 = await top();
  // A small delta scrolls a little, a big one a lot: by delta, not 3 lines each.
  await page.mouse.wheel(0, -cellH * 2);
  await until(async () => (await top()) === before0 - 2, 3000, `2 lines up (${before0} → ${await top()})`);
  await page.mouse.wheel(0, -cellH * 10);
  await until(async () => (await top()) === before0 - 12, 3000, `10 more lines up (${await top()})`);
  // The scrollbar sits right of the pane's last column, in the separator.
  const geo = await page.evaluate(() => {
    const screen = document.querySelector('.pane[data-pane="%0"] .xterm-screen').getBoundingClientRect();
    const bar = document.querySelector('.pane[data-pane="%0"] .scrollbar.vertical').getBoundingClientRect();
    const right = document.querySelector('.pane[data-pane="%1"]').getBoundingClientRect();
    return { screenRight: screen.right, barLeft: bar.left, barRight: bar.right, barWidth: bar.width, nextLeft: right.left };
  });
  assert.ok(geo.barWidth > 0, 'a scrollbar is shown');
  assert.ok(geo.barLeft >= geo.screenRight - 0.5, `scrollbar (${geo.barLeft}) starts after the last column (${geo.screenRight})`);
  assert.ok(geo.barRight <= geo.nextLeft + 0.5, 'and does not cover the next pane');
  await page.screenshot({ path: join(ARTIFACTS, 'issue14-scrollbar.png') });
});

test('issue 14 item 8: on a phone (390x844) nothing overflows sideways and the key bar sends Esc, Ctrl, Tab, arrows and the prefix', async (t) => {
  const { relay, page } = await open(t, { viewport: { width: 390, height: 844 }, welcome: FEATURES, contextOptions: { isMobile: true, hasTouch: true, deviceScaleFactor: 2 } });
  const overflow = await page.evaluate(() => ({ doc: document.documentElement.scrollWidth, body: document.body.scrollWidth, inner: window.innerWidth }));
  assert.ok(overflow.doc <= overflow.inner && overflow.body <= overflow.inner, `no horizontal overflow: ${JSON.stringify(overflow)}`);
  assert.ok(await page.isVisible('[data-testid="keybar"]'), 'key bar shown');
  const bar = await page.evaluate(() => document.querySelector('[data-testid="keybar"]').getBoundingClientRect().toJSON());
  assert.ok(bar.right <= 390.5 && bar.bottom <= 844.5, 'key bar on screen');
  for (const k of ['Escape', 'Tab', 'Up', 'Left']) await page.tap(`.keybar [data-key="${k}"]`);
  await page.tap('.keybar [data-key="ctrl"]');
  await page.tap('.keybar [data-key="Right"]');
  await page.tap('.keybar [data-key="prefix"]');
  await until(() => keysSent(relay).join(' ') === 'Escape Tab Up Left C-Right', 3000, `keys (${keysSent(relay).join(' ')})`);
  await until(() => relay.sent('tmux').some((m) => m.op === 'send_prefix'), 3000, 'prefix');
  // Ctrl held on the bar, then a letter from the phone's keyboard: C-c.
  await page.tap('.keybar [data-key="ctrl"]');
  await page.keyboard.insertText('c');
  await until(() => keysSent(relay).at(-1) === 'C-c', 3000, 'sticky Ctrl + c');
  // The font size control is there too; the header wraps rather than overflowing.
  const header = await page.evaluate(() => document.querySelector('header.bar').getBoundingClientRect().toJSON());
  assert.ok(header.right <= 390.5);
  await page.screenshot({ path: join(ARTIFACTS, 'issue14-phone.png') });
});

test('issue 14 item 9: a reset after output never shows the output twice (writes and resets are ordered)', async (t) => {
  const { relay, page } = await open(t);
  const noise = 'x'.repeat(5000);
  // Output, then a reset of the same pane, in one frame: the output must
  // not be parsed into the freshly reset terminal.
  relay.append([out('%0', `OLD-PROMPT$ ${noise}\r\nOLD-PROMPT$ `), { kind: REC_PANE_RESET, pane: '%0', cols: 40, rows: 12, bytes: 'NEW-PROMPT$ ' }]);
  await until(async () => (await paneText(page, '%0'))?.includes('NEW-PROMPT$'), 5000, 'reset applied');
  const text = await paneText(page, '%0');
  assert.doesNotMatch(text, /OLD-PROMPT/, text);
  assert.equal(text.trim(), 'NEW-PROMPT$');
});

test('a share link viewer sees the session read-only: no typing, no controls, no size', async (t) => {
  const { relay, page } = await open(t, { welcome: { ...FEATURES, read_only: true } });
  await until(() => page.$('[data-testid="read-only"]'), 3000, 'read-only badge');
  await page.click('.pane[data-pane="%0"]');
  await page.keyboard.type('rm -rf /');
  await page.keyboard.press('Enter');
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(relay.inputs(), []);
  assert.deepEqual(relay.sent('keys'), []);
  assert.equal(relay.sent('tmux').length, 0);
  assert.equal(await page.isVisible('[data-action="split-right"]'), false);
});

test('presence: who views the session and how many terminals are attached', async (t) => {
  const { relay, page } = await open(t);
  relay.control({ t: 'presence', viewers: [{ name: 'local', read_only: false, tabs: 2 }, { name: 'demo link', read_only: true, tabs: 1 }], attached_clients: 1 });
  await until(() => page.evaluate(() => document.body.dataset.viewers === '3'), 3000, 'presence shown');
  assert.match(await page.textContent('[data-testid="presence"]'), /3 viewing · 1 terminal/);
  assert.match(await page.getAttribute('[data-testid="presence"]', 'title'), /demo link \(link\)/);
});

test('find in the terminal, font size and fit settings', async (t) => {
  const { relay, page } = await open(t);
  relay.append([out('%0', 'alpha beta needle gamma\r\n')]);
  await until(async () => (await paneText(page, '%0'))?.includes('needle'), 5000, 'text');
  await page.click('.pane[data-pane="%0"]');
  await page.keyboard.press('Control+Shift+F');
  await until(() => page.isVisible('[data-testid="findbar"]'), 3000, 'find bar');
  await page.fill('[data-testid="find-input"]', 'needle');
  await page.keyboard.press('Enter');
  await until(() => page.evaluate(() => document.querySelector('.pane[data-pane="%0"] .xterm-selection div, .pane[data-pane="%0"] .xterm-decoration-container *') !== null || window.getSelection().toString() !== ''), 3000, 'match highlighted');
  // "keep tmux's size" is sent as a view message; fit again resends.
  await page.click('[data-testid="fit"]');
  await until(() => relay.sent('view').some((m) => m.fit === false), 3000, 'keep size sent');
  await page.click('[data-testid="fit"]');
  await until(() => relay.sent('view').at(-1)?.fit === true, 3000, 'fit sent');
});

test('issue 9 (page side): sessions grouped by idea with badges; New terminal opens it; closing asks, then kills; activity pages; live updates', async (t) => {
  const relay = await startFixtureRelay({ distDir: DIST });
  t.after(() => relay.close());
  const now = Date.now();
  const s = (id, idea, slot, state, extra = {}) => ({ id, idea, slot, tmux_session: `tb_${idea}__${slot}`, attach: `tmux -L x attach -t '=tb_${idea}__${slot}'`, host: 'box', runner_online: state !== 'runner_offline', head_seq: 3, state, attached_clients: 1, viewers: 2, last_activity_at: now - 120_000, ...extra });
  relay.state.sessions = [s('1', 'alpha', '1', 'live'), s('2', 'alpha', '2', 'runner_offline'), s('3', 'beta', '1', 'closed', { runner_online: false }), s('4', 'beta', '2', 'starting')];
  relay.state.activity = Array.from({ length: 30 }, (_, i) => ({ id: `e${i}`, at: now - i * 60_000, kind: i % 2 ? 'session_created' : 'runner_connected', runner_name: 'local', idea: 'alpha', slot: String(i) }));
  relay.state.onCreate = (body) => ({ status: 201, body: { session: { id: relay.state.sessionId, idea: body.idea, slot: body.slot } } });
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  t.after(() => context.close());
  const page = await context.newPage();
  await page.goto(relay.loginUrl);
  await until(() => page.$('.idea[data-idea="beta"]'), 5000, 'grouped list');
  const groups = await page.evaluate(() => [...document.querySelectorAll('.idea')].map((g) => [g.dataset.idea, [...g.querySelectorAll('.session [data-testid="state"]')].map((b) => b.textContent)]));
  assert.deepEqual(groups, [['alpha', ['live', 'runner offline']], ['beta', ['closed', 'starting']]]);
  assert.match(await page.textContent('.session[data-session="1"]'), /1 terminal · 2 viewing/);
  assert.match(await page.textContent('.session[data-session="1"]'), /2 min ago/);
  assert.equal(await page.textContent('.session[data-session="1"] .attach'), "tmux -L x attach -t '=tb_alpha__1'");
  // Activity: 20 at first, 10 more on "older".
  await until(() => page.evaluate(() => document.querySelectorAll('[data-testid="activity"] li').length === 20), 5000, 'first page of activity');
  await page.click('[data-testid="activity-more"]');
  await until(() => page.evaluate(() => document.querySelectorAll('[data-testid="activity"] li').length === 30), 5000, 'second page');
  // Live: an SSE event makes the list refetch.
  await until(() => page.evaluate(() => document.body.dataset.events === 'open'), 5000, 'event stream open');
  relay.state.sessions = [...relay.state.sessions, s('5', 'gamma', '1', 'live')];
  relay.event('sessions', {});
  await until(() => page.$('.idea[data-idea="gamma"]'), 5000, 'new idea shown live');
  relay.event('activity', { id: 'new', at: Date.now(), kind: 'session_closed', runner_name: 'local', idea: 'beta', slot: '1' });
  await until(async () => (await page.textContent('[data-testid="activity"] li')).includes('session closed beta / 1'), 5000, 'live activity');
  // Closing asks first; declined sends nothing; accepted deletes.
  page.once('dialog', (d) => d.dismiss());
  await page.click('.session[data-session="1"] [data-testid="close-session"]');
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(relay.state.deletes, []);
  page.once('dialog', (d) => {
    assert.match(d.message(), /kills the tmux session tb_alpha__1/);
    d.accept();
  });
  await page.click('.session[data-session="1"] [data-testid="close-session"]');
  await until(() => relay.state.deletes.includes('1'), 3000, 'DELETE sent');
  await page.screenshot({ path: join(ARTIFACTS, 'issue9-list.png') });
  // New terminal for an idea: the next free slot, then the terminal opens.
  await page.click('.idea[data-idea="alpha"] [data-testid="new-terminal"]');
  await page.waitForURL(/\/s\/sess1$/, { timeout: 5000 });
  assert.deepEqual(relay.state.creates.at(-1), { idea: 'alpha', slot: '3' });
  await until(() => page.evaluate(() => document.body.dataset.conn === 'live'), 10_000, 'terminal live');
  // A new idea from the form; several runners online: the person picks one.
  await page.goto(relay.url + '/');
  relay.state.onCreate = (body) => (body.runner_id ? { status: 201, body: { session: { id: relay.state.sessionId } } } : { status: 409, body: { error: 'several runners', runners: [{ id: 'r1', name: 'laptop', host: 'a' }, { id: 'r2', name: 'server', host: 'b' }] } });
  await page.fill('[data-testid="new-idea"]', 'delta');
  await page.click('[data-testid="new-idea-form"] button');
  await page.click('.pick-runner:has-text("server")');
  await page.waitForURL(/\/s\/sess1$/, { timeout: 5000 });
  assert.deepEqual(relay.state.creates.at(-1), { idea: 'delta', slot: '1', runner_id: 'r2' });
});

test('the list fits a phone (390x844) without sideways overflow', async (t) => {
  const relay = await startFixtureRelay({ distDir: DIST, attach: "tmux -L a-very-long-socket-name attach -t '=tb_some_long_idea_name__primary'" });
  t.after(() => relay.close());
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  t.after(() => context.close());
  const page = await context.newPage();
  await page.goto(relay.loginUrl);
  await until(() => page.$('[data-testid="sessions"] a.open'), 5000, 'list');
  const w = await page.evaluate(() => ({ doc: document.documentElement.scrollWidth, inner: window.innerWidth }));
  assert.ok(w.doc <= w.inner, JSON.stringify(w));
  await page.screenshot({ path: join(ARTIFACTS, 'issue14-phone-list.png') });
});

test('terminals and their listeners go away with their panes', async (t) => {
  const { relay, page } = await open(t);
  await page.click('.tab[data-window="@2"]');
  await until(() => page.evaluate(() => document.querySelectorAll('.xterm').length === 3), 5000, 'three terminals opened');
  // tmux closes window @2 and pane %1: only %0 is left.
  const one = topology({ windows: [win('@1', 0, 'bash', [{ id: '%0', x: 0, y: 0, cols: 80, rows: 12, title: '' }], 'abcd,80x12,0,0,0', true)] });
  relay.append([{ kind: REC_TOPOLOGY, topology: one }]);
  await until(() => page.evaluate(() => document.querySelectorAll('.pane').length === 1), 5000, 'panes removed');
  assert.equal(await page.evaluate(() => document.querySelectorAll('.xterm, .xterm-helper-textarea').length), 2, 'one terminal (and its textarea) left');
  assert.equal(await page.evaluate(() => document.querySelectorAll('.stage').length), 1, 'the closed window\'s stage is gone');
  // Output for a pane that went away makes a hidden terminal only until the next topology.
  relay.append([out('%0', 'still here\r\n')]);
  await until(async () => (await paneText(page, '%0'))?.includes('still here'), 5000, 'the remaining pane works');
});
