// Issue 12, previews as a user meets them, in real Chromium against
// `tmux-bridge up` (embedded relay with its preview listener + runner on a
// private tmux socket): start dev servers from the page, follow "Open
// preview" to the preview's own *.localhost origin, use the page and a
// WebSocket there, see the app's API refuse the preview page, stop the dev
// server and see the preview end. Needs target/debug/tmux-bridge, tmux,
// python3 and node's `ws` (web/node_modules).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch, until, ROOT, ARTIFACTS } from './support/browser.mjs';

const BIN = process.env.TMUX_BRIDGE_BIN || join(ROOT, 'target', 'debug', 'tmux-bridge');
const skip = existsSync(BIN) ? false : `${BIN} is missing (scripts/web-test builds it)`;

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

/** Starts `tmux-bridge up` on its own socket and data dir; resolves once it printed its URLs. */
async function startUp(t) {
  const socket = `tb-preview-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'tb-preview-'));
  const port = await freePort();
  const { TMUX: _t, TMUX_PANE: _p, ...base } = process.env;
  const env = { ...base, HOME: dir, SHELL: '/bin/bash', HISTFILE: '/dev/null', TERM: 'xterm-256color', RUST_LOG: process.env.RUST_LOG || 'info' };
  const child = spawn(BIN, ['up', '--listen', `127.0.0.1:${port}`, '--data-dir', join(dir, 'data'), '--tmux-socket', socket], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  t.after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGINT');
      await Promise.race([new Promise((r) => child.once('exit', r)), new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    try {
      execFileSync('tmux', ['-L', socket, 'kill-server'], { env, timeout: 10_000, stdio: 'ignore' });
    } catch {
      // Already gone.
    }
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  });
  const exited = new Promise((r) => child.once('exit', (code) => r(code)));
  await Promise.race([
    until(() => /^Open:\s+(\S+)/m.test(stdout) && /^Previews of dev servers are served on (\S+)/m.test(stdout), 120_000, 'Open:/Previews lines'),
    exited.then((code) => {
      throw new Error(`tmux-bridge up exited (${code})\nstdout: ${stdout}\nstderr: ${stderr}`);
    }),
  ]);
  return {
    url: /^Open:\s+(\S+)/m.exec(stdout)[1],
    app: `http://127.0.0.1:${port}`,
    previews: /^Previews of dev servers are served on (\S+)/m.exec(stdout)[1],
    dir,
  };
}

/** Starts `command` from the dev servers section; returns its row. */
async function startDevServer(page, command, cwd) {
  await page.fill('[data-testid="devserver-command"]', command);
  await page.fill('[data-testid="devserver-cwd"]', cwd);
  await page.click('[data-testid="devserver-start"]');
  const said = () => page.textContent('[data-testid="devserver-form-status"]');
  await until(async () => /^Started|not started/.test((await said()) ?? ''), 15_000, 'dev server started').catch(async (e) => {
    throw new Error(`${e.message}; the form says ${JSON.stringify(await said())}`);
  });
  assert.equal(await said(), `Started “${command}”.`);
  return page.locator('[data-testid="devserver"]').filter({ has: page.locator('.job-command', { hasText: command }) });
}

/** Clicks a row's "Open preview" for `port`; returns the new tab once loaded. */
async function openPreview(context, row, port) {
  const link = row.locator(`[data-testid="devserver-port"][data-port="${port}"] [data-testid="devserver-preview"]`);
  await until(async () => (await link.count()) === 1, 60_000, `port ${port} listed`);
  const [tab] = await Promise.all([context.waitForEvent('page'), link.click()]);
  await tab.waitForLoadState('load');
  return tab;
}

let browser;
before(async () => {
  if (!skip) browser = await launch();
});
after(async () => {
  await browser?.close();
});

test('issue 12: a dev server previewed from the page: its own origin, a WebSocket through it, the app refuses it, it ends with the dev server', { skip, timeout: 240_000 }, async (t) => {
  const up = await startUp(t);
  assert.match(up.previews, /^http:\/\/<id>\.localhost:\d+$/);
  const site = join(up.dir, 'site');
  execFileSync('mkdir', ['-p', site]);
  writeFileSync(join(site, 'index.html'), '<!doctype html><title>dev</title><h1>served by the dev server</h1>');
  writeFileSync(
    join(up.dir, 'echo.cjs'),
    `const http = require('http');
const { WebSocketServer } = require(${JSON.stringify(join(ROOT, 'web', 'node_modules', 'ws'))});
const server = http.createServer((req, res) => res.end('ws echo'));
new WebSocketServer({ server }).on('connection', (ws) => ws.on('message', (m, binary) => ws.send(m, { binary })));
server.listen(Number(process.argv[2]), '127.0.0.1');
`,
  );

  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  await page.goto(up.url);
  await page.waitForURL(/\/s\/[^/]+$/, { timeout: 30_000 });
  await page.click('[data-testid="session-jobs"]');
  await page.waitForURL(/\/jobs\/[^/]+$/, { timeout: 10_000 });
  await until(() => page.evaluate(() => document.querySelector('.devserver-section')?.dataset.events === 'open'), 10_000, 'dev servers listening');

  // An HTTP dev server: "Open preview" lands on its own origin, at `/`.
  const httpPort = await freePort();
  const httpRow = await startDevServer(page, `python3 -m http.server ${httpPort} --bind 127.0.0.1`, site);
  const tab = await openPreview(context, httpRow, httpPort);
  const origin = new URL(tab.url()).origin;
  assert.match(origin, /^http:\/\/[0-9a-f]{32}\.localhost:\d+$/);
  assert.equal(new URL(tab.url()).pathname, '/');
  assert.equal(await tab.textContent('h1'), 'served by the dev server');
  assert.equal(await tab.evaluate(() => document.cookie), '', 'the preview cookie is HttpOnly');
  assert.equal(await tab.evaluate(() => window.opener), null, 'no opener back to the app');
  await tab.screenshot({ path: join(ARTIFACTS, 'preview-http.png') });

  // The preview page calling the app's API with the user's cookie.
  const probe = await tab.evaluate(async (app) => {
    const out = {};
    try {
      const r = await fetch(`${app}/api/sessions`, { credentials: 'include' });
      out.get = r.status;
    } catch (e) {
      out.get = String(e);
    }
    try {
      const r = await fetch(`${app}/api/devservers`, {
        method: 'POST',
        credentials: 'include',
        headers: { 'content-type': 'application/json', 'x-requested-with': 'tmux-bridge' },
        body: JSON.stringify({ idea: 'pwned', command: 'true' }),
      });
      out.post = r.status;
    } catch (e) {
      out.post = String(e);
    }
    return out;
  }, up.app);
  assert.match(String(probe.get), /TypeError/, `GET /api/sessions from the preview: ${probe.get}`);
  assert.match(String(probe.post), /TypeError/, `POST /api/devservers from the preview: ${probe.post}`);
  const listed = await page.evaluate(async () => (await (await fetch('/api/devservers')).json()).devservers.map((d) => d.idea));
  assert.ok(!listed.includes('pwned'), `a preview page started a dev server: ${listed}`);

  // A WebSocket dev server, through its own preview.
  const wsPort = await freePort();
  const wsRow = await startDevServer(page, `node echo.cjs ${wsPort}`, up.dir);
  const wsTab = await openPreview(context, wsRow, wsPort);
  const wsOrigin = new URL(wsTab.url()).origin;
  assert.notEqual(wsOrigin, origin, 'every preview is its own origin');
  assert.equal(await wsTab.textContent('body'), 'ws echo');
  const echoes = await wsTab.evaluate(async () => {
    const ws = new WebSocket(`ws://${location.host}/`);
    await new Promise((ok, fail) => {
      ws.onopen = ok;
      ws.onerror = () => fail(new Error('websocket error'));
    });
    const got = [];
    for (const m of ['one', 'two', 'three']) {
      const back = new Promise((ok) => (ws.onmessage = (e) => ok(e.data)));
      ws.send(m);
      got.push(await back);
    }
    ws.close();
    return got;
  });
  assert.deepEqual(echoes, ['one', 'two', 'three']);

  // Stop the HTTP dev server: its preview ends.
  await httpRow.locator('[data-testid="devserver-stop"]').click();
  await until(async () => (await httpRow.locator('[data-testid="devserver-state"]').textContent()) === 'cancelled', 30_000, 'stopped');
  await until(async () => (await tab.reload()).status() === 404, 15_000, 'the preview answers 404');
  await tab.screenshot({ path: join(ARTIFACTS, 'preview-ended.png') });
});
