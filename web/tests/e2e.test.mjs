// End to end in real Chromium: `tmux-bridge up` (embedded relay + bridge on a
// private tmux socket and a temp data dir) serves the built page; the test
// works in the page and in tmux and checks each side sees the other. Needs
// target/debug/tmux-bridge (scripts/web-test builds it) and tmux.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch, paneText, until, ROOT, ARTIFACTS } from './support/browser.mjs';

const BIN = process.env.TMUX_BRIDGE_BIN || join(ROOT, 'target', 'debug', 'tmux-bridge');

/** Why the e2e tests cannot run here, or null. Only a missing `up` subcommand skips. */
function unavailable() {
  if (!existsSync(BIN)) return `${BIN} is missing (scripts/web-test builds it)`;
  try {
    execFileSync(BIN, ['up', '--help'], { stdio: 'pipe', timeout: 10_000 });
  } catch {
    return '`tmux-bridge up` is not implemented yet';
  }
  return null;
}
const skip = unavailable();

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** The environment without the variables of an enclosing tmux (tests may run inside one). */
function withoutTmux(env) {
  const { TMUX: _t, TMUX_PANE: _p, ...rest } = env;
  return rest;
}

let n = 0;
/** Starts `tmux-bridge up` on its own socket and data dir; resolves once it printed its URL. */
async function startUp(t) {
  const socket = `tb-web-${process.pid}-${++n}`;
  const dir = mkdtempSync(join(tmpdir(), 'tb-web-'));
  const port = await freePort();
  const env = { ...withoutTmux(process.env), HOME: dir, SHELL: '/bin/bash', HISTFILE: '/dev/null', TERM: 'xterm-256color', RUST_LOG: process.env.RUST_LOG || 'info' };
  const child = spawn(BIN, ['up', '--listen', `127.0.0.1:${port}`, '--data-dir', join(dir, 'data'), '--tmux-socket', socket], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const tmux = (...args) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8', env, timeout: 10_000 });
  t.after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGINT');
      await Promise.race([new Promise((r) => child.once('exit', r)), new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    try {
      tmux('kill-server');
    } catch {
      // Already gone.
    }
    // The pane's shell may still be writing its history as it exits.
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    } catch (e) {
      console.warn(`could not remove ${dir}: ${e.message}`);
    }
  });
  const exited = new Promise((r) => child.once('exit', (code) => r(code)));
  const got = await Promise.race([
    until(() => /^Open:\s+(\S+)/m.test(stdout) && /^Attach:\s+(.+)$/m.test(stdout), 120_000, 'Open:/Attach: lines').then(() => true),
    exited.then((code) => {
      throw new Error(`tmux-bridge up exited (${code}) before printing its URL\nstdout: ${stdout}\nstderr: ${stderr}`);
    }),
  ]);
  assert.ok(got);
  const url = /^Open:\s+(\S+)/m.exec(stdout)[1];
  const attach = /^Attach:\s+(.+)$/m.exec(stdout)[1].trim();
  assert.match(url, /^http:\/\/127\.0\.0\.1:/);
  assert.match(attach, new RegExp(`tmux .*-L ${socket}.* attach`));
  return { url, attach, socket, tmux, logs: () => stderr, dataDir: join(dir, 'data'), env };
}

/** Binary frames the page receives, as seen on the network: `{phase, type, first, last, bytes}`. */
function watchFrames(page, log, phase) {
  page.on('websocket', (ws) => {
    ws.on('framereceived', (f) => {
      if (typeof f.payload !== 'string') {
        const b = Buffer.from(f.payload);
        log.push({ phase: phase.name, type: b[1], first: Number(b.readBigUInt64LE(4)), last: Number(b.readBigUInt64LE(12)), bytes: b.length });
      }
    });
  });
}

/** Logs in with the one-time URL and opens the first session; returns the page. */
async function openSession(browser, t, up, watch = null, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  t.after(() => context.close());
  const page = await context.newPage();
  if (watch) watchFrames(page, watch.log, watch.phase);
  await page.goto(up.url);
  // Issue 14, item 5: the login link opens the terminal, not the list.
  await page.waitForURL(/\/s\/[^/]+$/, { timeout: 30_000 });
  await until(() => page.evaluate(() => document.body.dataset.conn === 'live'), 20_000, 'live');
  await until(() => page.$('.pane .xterm-rows'), 20_000, 'a pane');
  return page;
}

const allPanes = (up) => up.tmux('list-panes', '-a', '-F', '#{pane_id}').trim().split('\n');
const capture = (up, pane) => up.tmux('capture-pane', '-p', '-J', '-t', pane);

async function typeLine(page, text) {
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
}

let browser;
before(async () => {
  if (!skip) browser = await launch();
});
after(async () => {
  await browser?.close();
});

test('type in the page, see the output, reload fetches only the missed deltas', { skip: skip || false, timeout: 180_000 }, async (t) => {
  const up = await startUp(t);
  const log = [];
  const phase = { name: 'first load' };
  const page = await openSession(browser, t, up, { log, phase });
  const [pane] = allPanes(up);
  assert.equal(await page.textContent('[data-testid="attach"]'), up.attach);

  // The page's typing runs in the shell (the shell computes 42) and shows in both places.
  await page.click(`.pane[data-pane="${pane}"]`);
  await typeLine(page, 'echo page-$((6*7))-ok');
  await until(async () => (await paneText(page, pane))?.includes('page-42-ok'), 20_000, 'output in the page');
  await until(() => capture(up, pane).includes('page-42-ok'), 10_000, 'output in capture-pane');
  await page.screenshot({ path: join(ARTIFACTS, 'e2e-typed.png') });

  // Let the page save its screens at its current seq, then leave.
  await until(() => page.evaluate(() => document.body.dataset.savedSeq === document.body.dataset.lastSeq && document.body.dataset.lastSeq !== '0'), 20_000, 'state saved');
  const saved = Number(await page.evaluate(() => document.body.dataset.savedSeq));
  const sessionPath = new URL(page.url()).pathname;
  await page.goto('about:blank');

  // Output the page misses while it is away.
  up.tmux('send-keys', '-t', pane, '-l', 'echo missed-$((2+3))');
  up.tmux('send-keys', '-t', pane, 'Enter');
  await until(() => capture(up, pane).includes('missed-5'), 10_000, 'missed output in tmux');

  // Watch the WebSocket from the network side while the page comes back.
  phase.name = 'reload';
  const t0 = Date.now();
  await page.goto(new URL(sessionPath, up.url).href);
  await until(() => page.evaluate(() => document.body.dataset.conn === 'live'), 20_000, 'live after reload');
  const liveMs = Date.now() - t0;
  // The screens saved when the page left (at least what it had saved before).
  const restored = Number(await page.evaluate(() => document.body.dataset.restoredSeq));
  assert.ok(restored >= saved, `restored the saved screens (${restored} >= ${saved})`);
  await until(async () => (await paneText(page, pane))?.includes('missed-5'), 20_000, 'missed output in the page');
  const shownMs = Date.now() - t0;
  const frames = log.filter((f) => f.phase === 'reload');
  const first = log.filter((f) => f.phase === 'first load');
  const sum = (fs) => fs.reduce((a, f) => a + f.bytes, 0);
  t.diagnostic(`first load: ${first.length} frames, ${sum(first)} bytes (snapshots: ${first.filter((f) => f.type === 2).map((f) => f.bytes).join(',') || 'none'})`);
  t.diagnostic(`reload: ${frames.length} frames, ${sum(frames)} bytes, seq ${restored + 1}..${frames.at(-1)?.last}; live after ${liveMs} ms, missed output shown after ${shownMs} ms`);
  assert.match(await paneText(page, pane), /page-42-ok[\s\S]*missed-5/, 'old screen kept, missed output added');
  assert.ok(frames.length > 0, 'frames arrived');
  assert.deepEqual(frames.filter((f) => f.type === 2), [], 'no snapshot was sent');
  assert.equal(frames[0].first, restored + 1, 'the first frame starts right after the restored seq');
  for (let i = 1; i < frames.length; i++) assert.equal(frames[i].first, frames[i - 1].last + 1, 'gap-free');
  await page.screenshot({ path: join(ARTIFACTS, 'e2e-after-reload.png') });
});

test('a split made in tmux shows side by side; typing goes both ways', { skip: skip || false, timeout: 180_000 }, async (t) => {
  const up = await startUp(t);
  const page = await openSession(browser, t, up);
  const [first] = allPanes(up);
  up.tmux('split-window', '-h', '-t', first);
  const panes = allPanes(up);
  assert.equal(panes.length, 2);
  const second = panes.find((p) => p !== first);
  await until(() => page.evaluate((ids) => ids.every((id) => document.querySelector(`.pane[data-pane="${id}"]:not([hidden]) .xterm-rows`)), panes), 20_000, 'two panes');
  const [a, b] = await page.evaluate((ids) => ids.map((id) => document.querySelector(`.pane[data-pane="${id}"]`).getBoundingClientRect().toJSON()), [first, second]);
  assert.ok(Math.abs(a.top - b.top) < 1, 'same top');
  assert.ok(b.left >= a.right, 'second pane right of the first');
  assert.ok(b.left - a.right < 20, 'separated by one cell');

  // Typing in tmux (as a local terminal would) appears in the page.
  up.tmux('send-keys', '-t', first, '-l', 'echo local-$((1+1))-typed');
  up.tmux('send-keys', '-t', first, 'Enter');
  await until(async () => (await paneText(page, first))?.includes('local-2-typed'), 20_000, 'local typing in the page');

  // Typing in the page's right pane lands in that tmux pane only.
  await page.click(`.pane[data-pane="${second}"]`);
  await typeLine(page, 'echo right-$((3*3))');
  await until(() => capture(up, second).includes('right-9'), 20_000, 'page typing in capture-pane');
  assert.ok(!capture(up, first).includes('right-9'));
  await page.screenshot({ path: join(ARTIFACTS, 'e2e-split.png') });
});

test('device-attribute and clipboard queries get no answer from the page', { skip: skip || false, timeout: 180_000 }, async (t) => {
  const up = await startUp(t);
  const [pane] = allPanes(up);
  // A probe prints the queries, then reads its stdin until 1.5 s of silence
  // and prints what it got. tmux answers DA itself; the page must add nothing.
  const probe = (tag) => `stty -icanon -echo min 0 time 15; printf '\\033[c\\033[>c\\033]52;c;?\\007\\033]11;?\\007'; r=$(cat | od -An -tx1 | tr -d ' \\n'); stty sane; echo "${tag}<$r>"`;
  const run = async (tag) => {
    up.tmux('send-keys', '-t', pane, '-l', probe(tag));
    up.tmux('send-keys', '-t', pane, 'Enter');
    const line = await until(() => new RegExp(`^${tag}<([0-9a-f]*)>`, 'm').exec(capture(up, pane)), 20_000, `${tag} probe`);
    return line[1];
  };
  // Baseline with no browser attached: tmux's own answers.
  const alone = await run('ALONE');
  const page = await openSession(browser, t, up);
  await page.click(`.pane[data-pane="${pane}"]`);
  const watched = await run('WATCHED');
  await until(async () => (await paneText(page, pane))?.includes('WATCHED<'), 20_000, 'probe visible in the page');
  assert.equal(watched, alone, 'the page sent nothing back into the pane');
  const dropped = Number(await page.evaluate(() => document.body.dataset.droppedReplies || 0));
  assert.ok(dropped > 0, `xterm.js produced replies that were dropped (${dropped})`);
});

test('a person attached in a terminal: typing there shows in the page, which renders at tmux size', { skip: skip || false, timeout: 180_000 }, async (t) => {
  const up = await startUp(t);
  const page = await openSession(browser, t, up);
  const [pane] = allPanes(up);
  // A real tmux client in a pty, started with the printed attach command, at 100x30.
  const client = spawn('script', ['-qfec', `stty cols 100 rows 30; exec ${up.attach}`, '/dev/null'], { stdio: ['pipe', 'ignore', 'ignore'], env: { ...withoutTmux(process.env), TERM: 'xterm-256color' } });
  t.after(() => {
    if (client.exitCode === null) client.kill('SIGKILL');
  });
  await until(() => up.tmux('list-clients', '-F', '#{client_width}x#{client_height}').includes('100x30'), 20_000, 'attached client');
  client.stdin.write('echo pty-$((4+4))-typed\r');
  await until(() => capture(up, pane).includes('pty-8-typed'), 20_000, 'pty typing in tmux');
  await until(async () => (await paneText(page, pane))?.includes('pty-8-typed'), 20_000, 'pty typing in the page');
  // The person's size wins; the page draws the pane at tmux's size.
  const size = up.tmux('display-message', '-p', '-t', pane, '#{pane_width}x#{pane_height}').trim();
  await until(() => page.evaluate((id) => document.querySelector(`.pane[data-pane="${id}"]`)?.dataset.size, pane).then((v) => v === size), 20_000, `page pane at tmux size ${size}`);
  const rows = await page.evaluate((id) => document.querySelectorAll(`.pane[data-pane="${id}"] .xterm-rows > div`).length, pane);
  assert.equal(rows, Number(size.split('x')[1]));
  await page.screenshot({ path: join(ARTIFACTS, 'e2e-attached-client.png') });
});

// ----- issue 14 against the real relay, runner and tmux ---------------------

const windowSize = (up) => up.tmux('display-message', '-p', '#{window_width}x#{window_height}').trim();

test('issue 14 item 5: tmux-bridge login-link logs a second browser in, straight to the terminal', { skip: skip || false, timeout: 180_000 }, async (t) => {
  const up = await startUp(t);
  const out = execFileSync(BIN, ['login-link', '--data-dir', up.dataDir], { encoding: 'utf8', env: up.env, timeout: 30_000 });
  const link = out.trim().split('\n').at(-1);
  assert.match(link, /^http:\/\/127\.0\.0\.1:\d+\/login\/once\?code=[^&]+&next=%2Ft%2Flocal%2Fprimary$/);
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  await page.goto(link);
  await page.waitForURL(/\/s\/[^/]+$/, { timeout: 30_000 });
  await until(() => page.evaluate(() => document.body.dataset.conn === 'live'), 20_000, 'live');
  // The link works once.
  const again = await (await context.newPage()).goto(link);
  assert.equal(again.status(), 400);
});

test('issue 14 item 2: two tabs, the big one closes, tmux follows the small one', { skip: skip || false, timeout: 180_000 }, async (t) => {
  const up = await startUp(t);
  const small = await openSession(browser, t, up, null, { width: 700, height: 420 });
  const smallSize = await until(() => {
    const s = windowSize(up);
    return s !== '120x32' && s;
  }, 20_000, 'tmux sized to the small tab');
  // A second tab of the same browser (same login), on a big screen.
  const big = await small.context().newPage();
  await big.setViewportSize({ width: 1600, height: 1000 });
  await big.goto(small.url());
  await until(() => big.evaluate(() => document.body.dataset.conn === 'live'), 20_000, 'big tab live');
  const bigSize = await until(() => {
    const s = windowSize(up);
    return s !== smallSize && s;
  }, 20_000, 'tmux sized to the big tab');
  const [bw] = bigSize.split('x').map(Number);
  const [sw] = smallSize.split('x').map(Number);
  assert.ok(bw > sw, `big ${bigSize} > small ${smallSize}`);
  // The big tab goes away: tmux takes the small tab's size again, and the
  // small tab draws at its own font size (no shrinking to a stale size).
  await big.close();
  await until(() => windowSize(up) === smallSize, 20_000, `back to ${smallSize} (now ${windowSize(up)})`);
  await until(() => small.evaluate(() => {
    const p = JSON.parse(localStorage.getItem('tb:prefs') || '{}');
    return Number(document.body.dataset.fontSize) === (p.fontSize || 14);
  }), 20_000, 'small tab at its own font size');
  // "Keep tmux's size" in the small tab: it stops sizing tmux.
  await small.click('[data-testid="fit"]');
  await small.setViewportSize({ width: 500, height: 300 });
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(windowSize(up), smallSize, 'a tab that keeps tmux\'s size does not resize it');
});

test('issue 14: a share link viewer watches read-only and is cut on revocation', { skip: skip || false, timeout: 180_000 }, async (t) => {
  const up = await startUp(t);
  const owner = await openSession(browser, t, up);
  const [pane] = allPanes(up);
  await owner.click('[data-action="share"]');
  await owner.fill('[data-testid="share-label"]', 'for carol');
  await owner.click('[data-testid="share-create"]');
  const link = await until(() => owner.textContent('[data-testid="share-url"]').catch(() => null), 10_000, 'share link');
  assert.match(link, /\/v#[A-Za-z0-9_-]+$/);
  // The viewer: another browser, no login.
  const vctx = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  t.after(() => vctx.close());
  const viewer = await vctx.newPage();
  await viewer.goto(link);
  await until(() => viewer.evaluate(() => document.body.dataset.conn === 'live'), 20_000, 'viewer live');
  assert.equal(await viewer.evaluate(() => document.body.dataset.readOnly), 'true');
  up.tmux('send-keys', '-t', pane, '-l', 'echo shared-$((5*5))');
  up.tmux('send-keys', '-t', pane, 'Enter');
  await until(async () => (await paneText(viewer, pane))?.includes('shared-25'), 20_000, 'viewer sees output');
  // Typing in the viewer reaches nothing.
  await viewer.click(`.pane[data-pane="${pane}"]`);
  await viewer.keyboard.type('echo viewer-typed');
  await viewer.keyboard.press('Enter');
  await new Promise((r) => setTimeout(r, 1000));
  assert.ok(!capture(up, pane).includes('viewer-typed'), 'the viewer cannot type');
  // The owner sees the viewer in presence.
  await until(async () => (await owner.getAttribute('[data-testid="presence"]', 'title'))?.includes('for carol'), 10_000, 'viewer in presence');
  // Revoked: the viewer is cut within a second.
  owner.once('dialog', (d) => d.accept());
  const cut = Date.now();
  await owner.click('[data-testid="share-revoke"]');
  await until(() => viewer.evaluate(() => document.body.dataset.conn === 'revoked'), 5_000, 'viewer cut');
  assert.ok(Date.now() - cut < 2_000, `cut after ${Date.now() - cut} ms`);
  await viewer.screenshot({ path: join(ARTIFACTS, 'e2e-share-revoked.png') });
});

test('issue 14 item 10: revoking the runner of up asks first and says it serves this page', { skip: skip || false, timeout: 180_000 }, async (t) => {
  const up = await startUp(t);
  const page = await openSession(browser, t, up);
  await page.goto(new URL('/runners', up.url).href);
  await page.click('tr[data-runner] button');
  await page.waitForSelector('#serves-this-page');
  assert.match(await page.textContent('#serves-this-page'), /serving this page/);
  // Not confirmed: the runner still serves.
  await page.click('text=Cancel');
  await page.waitForURL(/\/runners$/);
  assert.equal((await page.textContent('tr[data-runner] .state')).trim(), 'online');
});

test('issue 14 item 4: a prefix key makes a window (needs a runner that takes keys)', { skip: skip || false, timeout: 180_000 }, async (t) => {
  const up = await startUp(t);
  const page = await openSession(browser, t, up);
  const features = await page.evaluate(() => document.body.dataset.features || '');
  if (!features.split(' ').includes('keys')) {
    t.skip('the runner does not take keys from the page yet (runner side of issue 14 item 4)');
    return;
  }
  const before = up.tmux('list-windows', '-F', '#{window_id}').trim().split('\n').length;
  await page.click('.pane');
  await page.keyboard.press('Control+b');
  await page.keyboard.press('c');
  await until(() => up.tmux('list-windows', '-F', '#{window_id}').trim().split('\n').length === before + 1, 10_000, 'a new window');
  await page.click('[data-action="split-right"]');
  await until(() => allPanes(up).length === before + 2, 10_000, 'a split');
});

test('issue 11: a word printed in a terminal is found with the search box and played back from there', { skip: skip || false, timeout: 180_000 }, async (t) => {
  const up = await startUp(t);
  const page = await openSession(browser, t, up);
  const word = `needle${process.pid}x${Date.now() % 100000}`;
  // Printed by the shell, typed locally in tmux: the page did not have to see it.
  const [pane] = allPanes(up);
  up.tmux('send-keys', '-t', pane, `echo found-${word}-here`, 'Enter');
  await until(() => capture(up, pane).includes(`found-${word}-here\n`), 15_000, 'the echo in tmux');

  // The search box on the list, then the results page.
  await page.goto(new URL('/', up.url).toString());
  await page.fill('[data-testid="search-input"]', word);
  await page.press('[data-testid="search-input"]', 'Enter');
  await page.waitForURL(/\/search\?q=/);
  // Indexing trails the store by about a second: search again until found.
  await until(async () => {
    if ((await page.$$('[data-testid="search-hit"]')).length > 0) return true;
    await page.reload();
    await page.waitForSelector('[data-testid="search-status"]:not(:empty)');
    return (await page.$$('[data-testid="search-hit"]')).length > 0;
  }, 30_000, 'a search hit');
  const lines = await page.$$eval('[data-testid="search-line"]', (els) => els.map((e) => e.textContent));
  assert.ok(lines.includes(`found-${word}-here`), JSON.stringify(lines));
  // Query syntax is text, and an empty query says so.
  await page.goto(new URL(`/search?q=${encodeURIComponent('"NOT (' + word)}`, up.url).toString());
  await page.waitForSelector('[data-testid="search-status"]:not(:empty)');
  assert.doesNotMatch(await page.textContent('[data-testid="search-status"]'), /failed|error/i);

  // Play from the hit: the player shows the line.
  await page.goto(new URL(`/search?q=${word}`, up.url).toString());
  await page.waitForSelector('[data-testid="search-play"]');
  await page.click('[data-testid="search-play"]');
  await page.waitForURL(/\/play\/[^/?]+\?/);
  await until(async () => ((await page.textContent('[data-testid="player"]')) ?? '').includes(`found-${word}-here`), 20_000, 'the line in the player');
  // The download link serves asciicast v2.
  const href = await page.getAttribute('[data-testid="play-download"]', 'href');
  const cast = await page.evaluate(async (u) => (await fetch(u)).text(), href);
  const header = JSON.parse(cast.split('\n')[0]);
  assert.equal(header.version, 2);
  assert.ok(cast.includes(`found-${word}-here`));
});

test('issue 9: New terminal in the page makes a tmux session on the runner, live in the page and in tmux; closing it kills it', { skip: skip || false, timeout: 180_000 }, async (t) => {
  const up = await startUp(t);
  const page = await openSession(browser, t, up);
  const idea = `web${process.pid % 10000}`;
  await page.goto(new URL('/', up.url).toString());
  await page.fill('[data-testid="new-idea"]', idea);
  await page.click('[data-testid="new-idea-form"] button');
  // The runner creates it in tmux; the page opens its terminal.
  await page.waitForURL(/\/s\/[^/]+$/, { timeout: 30_000 });
  const name = `tb_${idea}__1`;
  await until(() => up.tmux('list-sessions', '-F', '#{session_name}').split('\n').includes(name), 10_000, `${name} in tmux`);
  await until(() => page.evaluate(() => document.body.dataset.conn === 'live'), 20_000, 'live');
  await until(() => page.$('.pane .xterm-rows'), 20_000, 'a pane');
  // Typed in the page, run by the new session's shell.
  await page.click('.pane .xterm-screen');
  await typeLine(page, `echo made-by-${idea}`);
  const [pane] = up.tmux('list-panes', '-t', `=${name}`, '-F', '#{pane_id}').trim().split('\n');
  await until(() => capture(up, pane).includes(`made-by-${idea}\n`), 15_000, 'the echo in tmux');
  // Closing from the list asks, then kills the tmux session; the list says closed.
  await page.goto(new URL('/', up.url).toString());
  const row = `.idea[data-idea="${idea}"] .session`;
  await until(() => page.$(row), 10_000, 'the session in the list');
  page.once('dialog', (d) => d.accept());
  await page.click(`${row} [data-testid="close-session"]`);
  await until(() => !up.tmux('list-sessions', '-F', '#{session_name}').split('\n').includes(name), 15_000, `${name} killed`);
  await until(async () => ((await page.textContent(`${row} [data-testid="state"]`)) ?? '') === 'closed', 15_000, 'closed in the list');
});

test('issue 11: jobs from the page: exit 3 is failed with code 3, a running sleep is cancelled, the log holds what the job printed', { skip: skip || false, timeout: 240_000 }, async (t) => {
  const up = await startUp(t);
  const page = await openSession(browser, t, up);
  // The session page links to its idea's jobs.
  await page.click('[data-testid="session-jobs"]');
  await page.waitForURL(/\/jobs\/[^/]+$/, { timeout: 10_000 });
  const jobsUrl = page.url();
  await until(() => page.evaluate(() => document.body.dataset.events === 'open'), 10_000, 'event stream open');
  const row = (command) => page.locator('[data-testid="job"]').filter({ has: page.locator('.job-command', { hasText: command }) });
  const badge = async (command) => ((await row(command).count()) ? (await row(command).locator('[data-testid="job-state"]').textContent()) ?? '' : '');
  const start = async (command) => {
    await page.fill('[data-testid="job-command"]', command);
    await page.click('[data-testid="job-start"]');
    const said = () => page.textContent('[data-testid="job-form-status"]');
    await until(async () => (await said()) === `Started “${command}”.` || /not started/.test((await said()) ?? ''), 15_000, `${command} started`);
    assert.equal(await said(), `Started “${command}”.`);
  };

  // A job that prints and exits 3: failed, with its code, without a reload.
  await start('echo hello-job; exit 3');
  await until(async () => (await badge('echo hello-job; exit 3')) === 'failed (exit 3)', 60_000, 'failed (exit 3)');
  assert.match(await row('echo hello-job; exit 3').locator('.job-meta').textContent(), /started .* · ended .* · took /);

  // A long job: running, in a pane of the local tmux; its live pane opens focused; then cancelled.
  await start('sleep 30');
  await until(async () => (await badge('sleep 30')) === 'running', 60_000, 'sleep running');
  const href = await until(async () => (await row('sleep 30').locator('[data-testid="job-pane"]').count()) && row('sleep 30').locator('[data-testid="job-pane"]').getAttribute('href'), 10_000, 'live pane link');
  const pane = new URL(href, up.url).searchParams.get('pane');
  assert.match(pane, /^%\d+$/);
  assert.ok(allPanes(up).includes(pane), `${pane} is a pane of the local tmux`);
  await row('sleep 30').locator('[data-testid="job-pane"]').click();
  await page.waitForURL(/\/s\/[^/?]+\?pane=/, { timeout: 10_000 });
  await until(() => page.evaluate((p) => document.body.dataset.focusedPane === p, pane), 20_000, `${pane} focused in the session page`);
  await page.goto(jobsUrl);
  await until(async () => (await badge('sleep 30')) === 'running', 15_000, 'back on the jobs, still running');
  await until(() => page.evaluate(() => document.body.dataset.events === 'open'), 10_000, 'event stream open again');
  await row('sleep 30').locator('[data-testid="job-cancel"]').click();
  await until(async () => (await badge('sleep 30')) === 'cancelled', 30_000, 'cancelled');
  assert.equal(await row('sleep 30').locator('[data-testid="job-cancel"]').count(), 0);

  // The first job's log: in place, and as the text page its link opens.
  await row('echo hello-job; exit 3').locator('[data-testid="job-log-toggle"]').click();
  await until(async () => ((await row('echo hello-job; exit 3').locator('[data-testid="job-log"]').textContent()) ?? '').includes('hello-job'), 15_000, 'hello-job in the log');
  const [logPage] = await Promise.all([page.context().waitForEvent('page'), row('echo hello-job; exit 3').locator('[data-testid="job-log-link"]').click()]);
  await logPage.waitForLoadState();
  const text = (await logPage.textContent('body')) ?? '';
  assert.match(text, /hello-job/);
  assert.doesNotMatch(text, /\x1b/, 'escape sequences removed');
  await page.screenshot({ path: join(ARTIFACTS, 'e2e-jobs.png') });
});

test('issue 12: a dev server from the page: its port appears with a preview link; stopped, it closes and exits', { skip: skip || false, timeout: 240_000 }, async (t) => {
  const up = await startUp(t);
  const page = await openSession(browser, t, up);
  await page.click('[data-testid="session-jobs"]');
  await page.waitForURL(/\/jobs\/[^/]+$/, { timeout: 10_000 });
  await until(() => page.evaluate(() => document.querySelector('.devserver-section')?.dataset.events === 'open'), 10_000, 'dev servers listening');
  const port = await freePort();
  const command = `python3 -m http.server ${port} --bind 127.0.0.1`;
  await page.fill('[data-testid="devserver-command"]', command);
  await page.fill('[data-testid="devserver-cwd"]', '/tmp');
  await page.click('[data-testid="devserver-start"]');
  const said = () => page.textContent('[data-testid="devserver-form-status"]');
  await until(async () => (await said()) === `Started “${command}”.` || /not started/.test((await said()) ?? ''), 15_000, 'dev server started');
  assert.equal(await said(), `Started “${command}”.`);
  const row = page.locator('[data-testid="devserver"]').filter({ has: page.locator('.job-command', { hasText: command }) });
  const id = await row.getAttribute('data-devserver');
  assert.match(id, /^j[0-9a-f]+$/);

  // Its port, live: a link to the preview path, in a new tab without an opener.
  const started = Date.now();
  const link = row.locator(`[data-testid="devserver-port"][data-port="${port}"] [data-testid="devserver-preview"]`);
  await until(async () => (await link.count()) === 1, 60_000, `port ${port} listed`);
  console.log(`dev server port ${port} shown in the page ${Date.now() - started} ms after the start was answered (python's start included)`);
  assert.equal(await link.getAttribute('href'), `/preview/${id}/${port}`);
  assert.equal(await link.getAttribute('target'), '_blank');
  assert.equal(await link.getAttribute('rel'), 'noopener');
  assert.equal(await link.textContent(), 'Open preview');
  assert.equal(await row.locator('[data-testid="devserver-state"]').textContent(), 'running');
  const eventTexts = async () => row.locator('[data-testid="devserver-event"] .devserver-event-text').allTextContents();
  assert.deepEqual(await eventTexts(), [`port ${port} detected on 127.0.0.1 (listening socket)`]);
  await page.screenshot({ path: join(ARTIFACTS, 'e2e-devserver-running.png') });

  // Stop: the port closes and the process exits, live, and a reload shows the same.
  await row.locator('[data-testid="devserver-stop"]').click();
  await until(async () => (await row.locator('[data-testid="devserver-state"]').textContent()) === 'cancelled', 30_000, 'stopped');
  await until(async () => (await eventTexts()).length === 3, 10_000, 'three events');
  const texts = await eventTexts();
  assert.deepEqual(texts.slice(0, 2), [`port ${port} detected on 127.0.0.1 (listening socket)`, `port ${port} closed`]);
  // How it ended is the runner's to say (SIGINT, or no status when tmux kept none).
  assert.match(texts[2], /^process exited /);
  console.log(`dev server stopped: ${texts[2]}; row: ${await row.textContent()}`);
  assert.equal(await row.locator('[data-testid="devserver-preview"]').count(), 0);
  assert.equal(await row.locator('[data-testid="devserver-stop"]').count(), 0);
  await page.reload();
  await until(async () => (await row.count()) === 1 && (await eventTexts()).length === 3, 15_000, 'listed after a reload');
  assert.equal(await row.locator('[data-testid="devserver-state"]').textContent(), 'cancelled');
  await page.screenshot({ path: join(ARTIFACTS, 'e2e-devserver-stopped.png') });
});

test('issue 12: a custom agent started from the page goes running → idle, the page notifies, typing in its pane makes it run again', { skip: skip || false, timeout: 240_000 }, async (t) => {
  const up = await startUp(t);
  const script = join(up.dataDir, '..', 'agent.sh');
  writeFileSync(script, '#!/bin/sh\necho agent-ready\nwhile read line; do echo "got: $line"; done\n');
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  t.after(() => context.close());
  await context.grantPermissions(['notifications'], { origin: new URL(up.url).origin });
  // Every Notification the page makes is recorded (and still made).
  await context.addInitScript(() => {
    window.__notes = [];
    const N = window.Notification;
    function Recorded(title, opts) {
      window.__notes.push({ title, body: opts && opts.body });
      try {
        return new N(title, opts);
      } catch {
        return new EventTarget();
      }
    }
    Object.defineProperty(Recorded, 'permission', { get: () => N.permission });
    Recorded.requestPermission = (...a) => N.requestPermission(...a);
    window.Notification = Recorded;
  });
  const page = await context.newPage();
  await page.goto(up.url);
  await page.waitForURL(/\/s\/[^/]+$/, { timeout: 30_000 });
  await page.click('[data-testid="session-jobs"]');
  await page.waitForURL(/\/jobs\/[^/]+$/, { timeout: 10_000 });
  await until(() => page.evaluate(() => document.body.dataset.notifier === 'open'), 10_000, 'notifier stream open');
  const badge = async () => ((await page.locator('[data-testid="agent"]').count()) ? (await page.locator('[data-testid="agent"] [data-testid="agent-state"]').first().textContent()) ?? '' : '');

  // Start a custom agent, idle after 1.5 s.
  await page.selectOption('[data-testid="agent-kind"]', 'custom');
  await page.fill('[data-testid="agent-command"]', `sh ${script}`);
  await page.fill('[data-testid="agent-idle"]', '1.5');
  await page.click('[data-testid="agent-start"]');
  await until(async () => /^Started/.test((await page.textContent('[data-testid="agent-form-status"]')) ?? ''), 15_000, 'agent started');
  const t0 = Date.now();
  const seen = [];
  await until(async () => {
    const b = await badge();
    if (seen[seen.length - 1] !== b) seen.push(b);
    return b === 'idle';
  }, 60_000, 'agent idle');
  console.log(`agent badges ${seen.join(' → ')}; idle ${Date.now() - t0} ms after the start was accepted`);
  assert.ok(seen.includes('running'), `running before idle: ${seen}`);
  await until(() => page.evaluate(() => window.__notes.length >= 1), 5_000, 'a notification');
  const notes = await page.evaluate(() => window.__notes);
  assert.equal(notes[0].title, 'custom is idle');
  assert.match(notes[0].body, /printed nothing for 2 s/);
  assert.match(await page.title(), /^\(1\) idle · custom · jobs · /);

  // Type into its pane from the page (a second tab on its live pane): it runs again, then idles again.
  const href = await page.getAttribute('[data-testid="agent-pane"]', 'href');
  const pane = new URL(href, up.url).searchParams.get('pane');
  const term = await context.newPage();
  await term.goto(new URL(href, up.url).toString());
  await until(() => term.evaluate((p) => document.body.dataset.focusedPane === p, pane), 20_000, `${pane} focused`);
  await until(() => term.evaluate(() => document.body.dataset.conn === 'live'), 20_000, 'live');
  await typeLine(term, 'hello agent');
  await until(async () => (await badge()) === 'running', 15_000, 'running again after typing');
  await until(async () => !/^\(\d+\) idle/.test(await page.title()), 5_000, 'title cleared');
  await until(async () => capture(up, pane).includes('got: hello agent'), 10_000, 'the agent read the line');
  await until(async () => (await badge()) === 'idle', 15_000, 'idle again');
  await until(() => page.evaluate(() => window.__notes.length >= 2), 5_000, 'notified again');
  // The notifier runs on every page: the session page's title says it too.
  await until(async () => /^\(1\) idle · custom · /.test(await term.title()), 5_000, 'the session page title');
  assert.match(await page.title(), /^\(1\) idle · custom/);
  const agentId = await page.getAttribute('[data-testid="agent"]', 'data-agent');
  const detail = await page.evaluate(async (id) => (await fetch(`/api/agents/${id}`)).json(), agentId);
  assert.deepEqual(detail.transitions.map((x) => x.state), ['starting', 'running', 'idle', 'running', 'idle']);

  // Watch an ordinary pane from its context menu.
  const shell = allPanes(up).find((p) => p !== pane);
  await term.goto(new URL(`/s/${detail.session_id}?pane=${encodeURIComponent(shell)}`, up.url).toString());
  await until(() => term.evaluate((p) => document.body.dataset.focusedPane === p, shell), 20_000, `${shell} focused`);
  await term.click(`.pane[data-pane="${shell}"]`, { button: 'right' }).catch(async () => term.click('.pane .xterm-screen', { button: 'right' }));
  await term.click('[data-testid="menu"] >> text=Watch for idle');
  await until(() => term.evaluate((p) => (document.body.dataset.watched ?? '').split(' ').includes(p), shell), 10_000, 'watched');
  const watches = await term.evaluate(async (sid) => (await fetch(`/api/sessions/${sid}/watches`)).json(), detail.session_id);
  assert.equal(watches.watches[0].pane, shell);

  // The session list shows the idea's live agent with its state.
  await term.goto(new URL('/', up.url).toString());
  await until(async () => ((await term.textContent('[data-testid="idea-agents"]').catch(() => '')) ?? '').includes('custom idle'), 15_000, 'agent badge in the list');

  // Stop the agent from the page.
  await page.click('[data-testid="agent-stop"]');
  await until(async () => /^stopped/.test(await badge()), 30_000, 'stopped');
  await page.screenshot({ path: join(ARTIFACTS, 'e2e-agents.png') });
});
