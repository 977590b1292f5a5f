// Pairing end to end in real Chromium (issue 6): `tmux-relay serve` with a
// user made by `tmux-relay user add`, the real `tmux-bridge pair` CLI, login
// and approval on the relay's pages, `tmux-bridge connect` reusing the saved
// credentials until its session appears on the page, then revocation on the
// runners page: the runner is cut off, deletes its credentials, and the page
// shows it. Needs target/debug/tmux-relay and tmux-bridge (scripts/web-test
// builds both) and tmux.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch, until, ROOT, DIST, ARTIFACTS } from './support/browser.mjs';

const BRIDGE = process.env.TMUX_BRIDGE_BIN || join(ROOT, 'target', 'debug', 'tmux-bridge');
const RELAY = process.env.TMUX_RELAY_BIN || join(ROOT, 'target', 'debug', 'tmux-relay');

function unavailable() {
  for (const bin of [BRIDGE, RELAY]) if (!existsSync(bin)) return `${bin} is missing (scripts/web-test builds it)`;
  if (!existsSync(join(DIST, 'index.html'))) return 'web/dist is not built (scripts/web-build)';
  return null;
}
const skip = unavailable() ?? false;

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

/** A child process with its output collected. */
function run(bin, args, env, stdin = 'ignore') {
  const child = spawn(bin, args, { env, stdio: [stdin, 'pipe', 'pipe'] });
  const p = { child, stdout: '', stderr: '', exit: null };
  child.stdout.on('data', (d) => (p.stdout += d));
  child.stderr.on('data', (d) => (p.stderr += d));
  p.exited = new Promise((r) => child.once('exit', (code) => r((p.exit = code))));
  return p;
}

async function stop(p) {
  if (p && p.child.exitCode === null && p.child.signalCode === null) {
    p.child.kill('SIGINT');
    await Promise.race([p.exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (p.child.exitCode === null) p.child.kill('SIGKILL');
  }
}

test('pair a runner through the page, see its session, revoke it', { skip, timeout: 240_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tb-pair-'));
  const socket = `tb-webpair-${process.pid}`;
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = { ...process.env, HOME: dir, SHELL: '/bin/bash', TERM: 'xterm-256color', TMUX_BRIDGE_CONFIG_DIR: join(dir, 'cfg'), RUST_LOG: 'info' };
  delete env.TMUX_BRIDGE_RELAY;
  delete env.TMUX_BRIDGE_TOKEN;
  delete env.TMUX;
  const data = join(dir, 'relay-data');
  const procs = [];
  let browser;
  t.after(async () => {
    if (browser) await browser.close();
    for (const p of procs.reverse()) await stop(p);
    try {
      execFileSync('tmux', ['-L', socket, 'kill-server'], { stdio: 'ignore' });
    } catch {
      // Not started or already gone.
    }
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  });

  // The relay, and a user who logs in with a password.
  const relay = run(RELAY, ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', data, '--web-dir', DIST], env);
  procs.push(relay);
  await until(() => relay.stdout.includes('listening') || relay.exit !== null, 60_000, 'relay listening');
  assert.equal(relay.exit, null, `relay exited: ${relay.stderr}`);
  execFileSync(RELAY, ['user', 'add', 'alice', '--password-stdin', '--data-dir', data], { input: 'wonderland pass\n', env, timeout: 60_000 });

  // The runner asks for a code.
  const pair = run(BRIDGE, ['pair', '--relay', url, '--name', 'web-test-box'], env, 'pipe');
  procs.push(pair);
  const code = (await until(() => /^\s+([2-9A-HJ-NP-Z]{3}-[2-9A-HJ-NP-Z]{4})\s*$/m.exec(pair.stdout), 30_000, 'pairing code'))[1];
  assert.ok(pair.stdout.includes(`${url}/pair`), pair.stdout);

  // Log in on the page and approve the code.
  browser = await launch();
  const page = await browser.newPage();
  await page.goto(`${url}/pair`);
  assert.match(page.url(), /\/login\?next=\/pair$/, 'approving needs a login');
  await page.fill('input[name=name]', 'alice');
  await page.fill('input[name=password]', 'wrong');
  await page.click('form[action="/login"] button');
  assert.match(await page.textContent('.error'), /Wrong user name or password/);
  await page.fill('input[name=name]', 'alice');
  await page.fill('input[name=password]', 'wonderland pass');
  await Promise.all([page.waitForURL(`${url}/pair`), page.click('form[action="/login"] button')]);
  await page.fill('input[name=code]', code.toLowerCase());
  await page.click('form[action="/pair"] button');
  // First the page shows what the code would pair, then approves.
  await page.waitForSelector('#preview-name');
  assert.equal(await page.textContent('#preview-name'), 'web-test-box');
  assert.ok(!pair.stdout.includes('Approved by'), 'a preview approves nothing');
  await page.click('#approve');
  await page.waitForSelector('#runner-name');
  assert.equal(await page.textContent('#runner-name'), 'web-test-box');

  // The CLI names the account, asks, and saves credentials.
  await until(() => pair.stdout.includes('[y/N]'), 30_000, 'confirmation question');
  assert.ok(pair.stdout.includes('Approved by the account "alice"'), pair.stdout);
  pair.child.stdin.end('y\n');
  assert.equal(await pair.exited, 0, pair.stderr);
  const credsPath = join(dir, 'cfg', 'credentials.json');
  const creds = JSON.parse(readFileSync(credsPath, 'utf8'));
  assert.equal(creds.relay_url, url);
  assert.equal(statSync(credsPath).mode & 0o777, 0o600);

  // A later run needs no flags or user action: its session appears on the page.
  const connect = run(BRIDGE, ['connect', '--tmux-socket', socket, '--idea', 'webpair', '--slot', 'one', '--data-dir', join(dir, 'bridge-data')], env);
  procs.push(connect);
  await until(async () => {
    await page.goto(`${url}/`);
    try {
      await page.waitForSelector('[data-testid=sessions] .session', { timeout: 2_000 });
    } catch {
      return false;
    }
    const text = await page.textContent('[data-testid=sessions]');
    return text.includes('webpair / one') && text.includes('runner online');
  }, 60_000, 'the paired runner\'s session on the page');

  // The runners page shows it online; revoking cuts it off at once.
  await page.goto(`${url}/runners`);
  const row = `tr[data-runner="${creds.runner_id}"]`;
  assert.equal((await page.textContent(`${row} .state`)).trim(), 'online');
  assert.equal(await page.textContent(`${row} .host`), (await page.textContent(`${row} .host`)).trim());
  // Revoke asks first (issue 14, item 10), then cuts.
  await Promise.all([page.waitForURL(`${url}/runners/${creds.runner_id}/revoke?`), page.click(`${row} button`)]);
  assert.match(await page.textContent('h1'), /Revoke runner web-test-box/);
  assert.equal(await page.$('#serves-this-page'), null, 'a paired runner does not serve this page');
  const cutAt = Date.now();
  await Promise.all([page.waitForURL(`${url}/runners`), page.click('#confirm-revoke')]);
  assert.equal(await page.$(row), null, 'the revoked runner is gone from the page');
  const code2 = await Promise.race([connect.exited, new Promise((r) => setTimeout(() => r('timeout'), 20_000))]);
  assert.notEqual(code2, 'timeout', 'the revoked runner stops');
  assert.notEqual(code2, 0);
  assert.ok(Date.now() - cutAt < 20_000);
  assert.ok(connect.stderr.includes('deleted the saved credentials'), connect.stderr);
  assert.ok(!existsSync(credsPath), 'a definite rejection deletes the credentials');

  await page.goto(`${url}/`);
  await until(async () => {
    const text = await page.textContent('main');
    return !text.includes('runner online') && text;
  }, 20_000, 'the page shows the runner offline or gone');
  await page.screenshot({ path: join(ARTIFACTS, 'pairing-revoked.png') });
});
