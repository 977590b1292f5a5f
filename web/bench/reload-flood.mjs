// Measures the page against `tmux-bridge up` in headless Chromium: a flood
// (`seq 1 N`) until its last line shows in the page, the frames and bytes it
// took, the page's save of its screens, then a reload: time until the
// screen is back and what was fetched. Run after scripts/web-build and
// `cargo build -p tmux-bridge`:
//
//     node web/bench/reload-flood.mjs [N=200000]
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch, until, paneText, ROOT } from '../tests/support/browser.mjs';

const N = Number(process.argv[2] || 200000);
const sock = `tb-web-bench-${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), 'tb-web-bench-'));
const { TMUX: _t, TMUX_PANE: _p, ...env } = process.env;
const child = spawn(process.env.TMUX_BRIDGE_BIN || join(ROOT, 'target', 'debug', 'tmux-bridge'),
  ['up', '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data'), '--tmux-socket', sock],
  { stdio: ['ignore', 'pipe', 'ignore'], env: { ...env, HOME: dir, HISTFILE: '/dev/null' } });
const tmux = (...a) => execFileSync('tmux', ['-L', sock, ...a], { encoding: 'utf8' });
let browser;
try {
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  await until(() => /Open:\s+(\S+)/.test(out), 60_000, 'Open: line');
  browser = await launch();
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  const log = [];
  let phase = 'load';
  page.on('websocket', (ws) => ws.on('framereceived', (f) => {
    if (typeof f.payload !== 'string') log.push({ phase, type: Buffer.from(f.payload)[1], bytes: f.payload.length });
  }));
  await page.goto(/Open:\s+(\S+)/.exec(out)[1]);
  await (await until(() => page.$('a.open'), 20_000, 'session link')).click();
  await until(() => page.evaluate(() => document.body.dataset.conn === 'live'), 20_000, 'live');
  const pane = tmux('list-panes', '-a', '-F', '#{pane_id}').trim().split('\n')[0];
  const frames = (p) => log.filter((f) => f.phase === p);
  const bytes = (p) => frames(p).reduce((a, f) => a + f.bytes, 0);

  phase = 'flood';
  const t0 = Date.now();
  tmux('send-keys', '-t', pane, '-l', `seq 1 ${N}; echo flood-done`);
  tmux('send-keys', '-t', pane, 'Enter');
  await until(async () => /^flood-done/m.test((await paneText(page, pane)) || ''), 300_000, 'flood end');
  const floodMs = Date.now() - t0;
  await until(() => page.evaluate(() => document.body.dataset.savedSeq === document.body.dataset.lastSeq), 60_000, 'saved');
  const d = await page.evaluate(() => ({ ...document.body.dataset }));
  console.log(`seq 1 ${N}: last line in the page after ${floodMs} ms; ${frames('flood').length} frames, ${bytes('flood')} bytes (${frames('flood').filter((f) => f.type === 2).length} snapshots)`);
  console.log(`save of the screens: ${d.saveMs} ms, ${d.saveChars} characters`);

  phase = 'reload';
  const t1 = Date.now();
  await page.reload();
  await until(async () => /flood-done/.test((await paneText(page, pane)) || ''), 60_000, 'screen back');
  const shownMs = Date.now() - t1;
  await until(() => page.evaluate(() => document.body.dataset.conn === 'live'), 20_000, 'live again');
  const r = await page.evaluate(() => ({ ...document.body.dataset }));
  console.log(`reload: screen back after ${shownMs} ms (restored at ${r.restoredMs} ms, live at ${r.liveMs} ms after navigation); fetched ${frames('reload').length} frames, ${bytes('reload')} bytes`);
} finally {
  await browser?.close();
  child.kill('SIGINT');
  await new Promise((res) => setTimeout(res, 1500));
  try {
    tmux('kill-server');
  } catch {
    // Already gone.
  }
  rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
}
