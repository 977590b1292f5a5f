// `tmux-bridge up` for page tests: the embedded relay and the runner on a
// private tmux socket and a temp data dir (the same way e2e.test.mjs
// starts it), and a page logged in to its session.
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until, ROOT } from './browser.mjs';

export const BIN = process.env.TMUX_BRIDGE_BIN || join(ROOT, 'target', 'debug', 'tmux-bridge');

/** Why page tests against `up` cannot run here, or null. */
export function unavailable() {
  if (!existsSync(BIN)) return `${BIN} is missing (scripts/web-test builds it)`;
  try {
    execFileSync(BIN, ['up', '--help'], { stdio: 'pipe', timeout: 10_000 });
  } catch {
    return '`tmux-bridge up` is not implemented yet';
  }
  return null;
}

export function freePort() {
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
export function withoutTmux(env) {
  const { TMUX: _t, TMUX_PANE: _p, ...rest } = env;
  return rest;
}

let n = 0;
/**
 * Starts `tmux-bridge up` (with `extra` arguments) on its own socket and
 * data dir; resolves once it printed its URL. Everything is stopped and
 * removed after the test `t`.
 */
export async function startUp(t, extra = []) {
  const socket = `tb-fid-${process.pid}-${++n}`;
  const dir = mkdtempSync(join(tmpdir(), 'tb-fid-'));
  const port = await freePort();
  const env = { ...withoutTmux(process.env), HOME: dir, SHELL: '/bin/bash', HISTFILE: '/dev/null', TERM: 'xterm-256color', LANG: 'C.UTF-8', RUST_LOG: process.env.RUST_LOG || 'info' };
  const child = spawn(BIN, ['up', '--listen', `127.0.0.1:${port}`, '--data-dir', join(dir, 'data'), '--tmux-socket', socket, ...extra], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const tmux = (...args) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8', env, timeout: 10_000, maxBuffer: 64 << 20 });
  // The tmux the runner starts (the first on PATH): panes' shells may set
  // their own PATH, so commands typed there name it by its full path.
  const tmuxPath = execFileSync('sh', ['-c', 'command -v tmux'], { encoding: 'utf8', env }).trim();
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
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    } catch (e) {
      console.warn(`could not remove ${dir}: ${e.message}`);
    }
  });
  const exited = new Promise((r) => child.once('exit', (code) => r(code)));
  await Promise.race([
    until(() => /^Open:\s+(\S+)/m.test(stdout), 120_000, 'the Open: line'),
    exited.then((code) => {
      throw new Error(`tmux-bridge up exited (${code}) before printing its URL\nstdout: ${stdout}\nstderr: ${stderr}`);
    }),
  ]);
  const url = /^Open:\s+(\S+)/m.exec(stdout)[1];
  assert.match(url, /^http:\/\/127\.0\.0\.1:/);
  const dataDir = join(dir, 'data');
  /** A new one-time login link (`tmux-bridge login-link`). */
  const loginLink = () => execFileSync(BIN, ['login-link', '--data-dir', dataDir], { encoding: 'utf8', env, timeout: 30_000 }).trim().split('\n').at(-1);
  return { url, socket, tmux, tmuxPath, logs: () => stderr, dataDir, dir, env, loginLink };
}

/**
 * A new browser context logged in with `link` (a one-time login URL) and
 * showing the session it opens; `init` runs in every page of the context
 * before the page's scripts. Returns `{ context, page }`.
 */
export async function loggedIn(browser, t, link, { viewport = { width: 1280, height: 800 }, init = null } = {}) {
  const context = await browser.newContext({ viewport });
  t.after(() => context.close());
  if (init) await context.addInitScript(init);
  const page = await context.newPage();
  await page.goto(link);
  await page.waitForURL(/\/s\/[^/]+$/, { timeout: 30_000 });
  await until(() => page.evaluate(() => document.body.dataset.conn === 'live'), 20_000, 'live');
  await until(() => page.$('.pane .xterm-rows'), 20_000, 'a pane');
  return { context, page };
}

/** Binary frames a page receives: `{ type, first, last, bytes }` pushed to `log`. */
export function watchFrames(page, log) {
  page.on('websocket', (ws) => {
    ws.on('framereceived', (f) => {
      if (typeof f.payload !== 'string') {
        const b = Buffer.from(f.payload);
        log.push({ type: b[1], first: Number(b.readBigUInt64LE(4)), last: Number(b.readBigUInt64LE(12)), bytes: b.length });
      }
    });
  });
}
