// The browser shows what tmux shows (issue 13): each workload
// (support/workloads.mjs: the 3.3a fixtures' pane output, a slice of the
// flood capture, and one stream per xterm.js divergence issue 13 lists) is
// played with `cat` into a real pane served by `tmux-bridge up`, and the
// page's xterm.js buffer (`window.tmuxBridgeDebug`, web/src/pane.ts) is
// compared with tmux's own view of the pane (support/screen.mjs: rows as
// `capture-pane -p -N`, cursor as `#{cursor_x} #{cursor_y}`, attributes as
// `capture-pane -p -e -N`):
//
// - LIVE: in a page that is open while the workload plays (the raw stream);
// - RESTORE: in that tab reloaded, which redraws the screens it saved
//   (IndexedDB, from xterm.js's serialize addon) and takes the records after
//   them (what a person's reload does);
// - RELOAD: in a page opened afresh afterwards, with no saved screens, so
//   it starts from the relay's latest snapshot (the PaneReset bytes of
//   crates/transcript/src/snapshot.rs) taken after the workload, plus the
//   records after it. The runner takes a snapshot every second here
//   (`up --snapshot-every 1`); the test waits for one at or after the live
//   page's sequence.
//
// One `up`, one live page; the pane is pinned to 80x24 (the fixtures'
// size); each workload starts from `ESC \` (ends a string tmux may still be
// swallowing), `?1049l`, RIS and `CSI 3 J`. Every mismatch is printed as a
// per-row diff and written to test-artifacts/fidelity-report.md.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch, until, ARTIFACTS } from './support/browser.mjs';
import { startUp, loggedIn, watchFrames, unavailable } from './support/up.mjs';
import { allWorkloads } from './support/workloads.mjs';
import { tmuxScreen, pageScreen, compareScreens } from './support/screen.mjs';

const skip = unavailable();
const FRAME_SNAPSHOT = 2;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let browser;
before(async () => {
  if (!skip) browser = await launch();
});
after(async () => {
  await browser?.close();
});

/** tmux's view of `pane` once it stopped changing (three equal reads 100 ms apart). */
async function quietTmux(up, pane) {
  let last = null;
  let same = 0;
  for (let i = 0; i < 100; i++) {
    const s = tmuxScreen(up.tmux, pane);
    const key = JSON.stringify(s);
    same = key === last ? same + 1 : 0;
    last = key;
    if (same >= 2) return s;
    await sleep(100);
  }
  throw new Error(`pane ${pane} never went quiet`);
}

/**
 * The page's screen of `pane` once it equals `want`, or once it stopped
 * changing for 800 ms (then compared as it is), within `ms`.
 */
async function settledPage(page, pane, want, ms = 10_000) {
  const end = Date.now() + ms;
  let last = null;
  let since = Date.now();
  let got = null;
  while (Date.now() < end) {
    got = await pageScreen(page, pane);
    const seq = await page.evaluate(() => document.body.dataset.lastSeq);
    if (got && compareScreens(want, got).ok) return got;
    const key = JSON.stringify([got, seq]);
    if (key !== last) {
      last = key;
      since = Date.now();
    } else if (Date.now() - since >= 800) {
      return got;
    }
    await sleep(100);
  }
  return got;
}

/** Types a command line into the pane (as keys) and runs it. */
function run(up, pane, line) {
  up.tmux('send-keys', '-t', pane, '-l', line);
  up.tmux('send-keys', '-t', pane, 'Enter');
}

/** Waits (up to a minute) for `tmux wait-for -S <channel>` from the pane. */
function waitSignal(up, channel) {
  // Each `wait-for` gives up after the tmux helper's 10 s; try again.
  const end = Date.now() + 60_000;
  for (;;) {
    try {
      up.tmux('wait-for', channel);
      return;
    } catch (e) {
      if (Date.now() > end) throw new Error(`no ${channel} signal from the pane: ${e.message}`);
    }
  }
}

test('fidelity: the page shows what tmux shows, live and after a reload, for every workload', { skip: skip || false, timeout: 300_000 }, async (t) => {
  const started = Date.now();
  const up = await startUp(t, ['--size', '80x24', '--snapshot-every', '1']);
  const [pane, win] = up.tmux('list-panes', '-a', '-F', '#{pane_id} #{window_id}').trim().split('\n')[0].split(' ');
  // The fixtures' size, whatever size the pages would like.
  up.tmux('resize-window', '-t', win, '-x', '80', '-y', '24');

  const workloads = allWorkloads();
  const dir = join(up.dir, 'workloads');
  mkdirSync(dir, { recursive: true });
  for (const w of workloads) writeFileSync(join(dir, `${w.name}.bin`), w.bytes);

  const live = await loggedIn(browser, t, up.url);
  const sessionUrl = live.page.url();
  // A second context for the reloads: every page it opens forgets the
  // resume point first, so it starts from the relay's snapshot.
  const reloadCtx = await loggedIn(browser, t, up.loginLink(), {
    init: () => {
      for (const k of Object.keys(localStorage)) if (k.startsWith('tb:last_seq:')) localStorage.removeItem(k);
    },
  });
  await reloadCtx.page.close();

  // `w NAME` plays a workload from a clean terminal, then signals.
  run(up, pane, `PS1='$ '; w() { printf '\\033\\\\\\033[?1049l\\033c\\033[3J'; stty -opost; cat "${dir}/$1.bin"; stty opost; '${up.tmuxPath}' wait-for -S "fid-$1"; }`);
  // Output that makes the stored frames outweigh any snapshot, so a fresh
  // page is always sent the snapshot (the relay sends the smaller).
  run(up, pane, `head -c 300000 /dev/urandom | base64 -w 78; '${up.tmuxPath}' wait-for -S fid-warm`);
  waitSignal(up, 'fid-warm');

  const results = [];
  for (const w of workloads) {
    const t0 = Date.now();
    run(up, pane, `w ${w.name}`);
    waitSignal(up, `fid-${w.name}`);
    const want = await quietTmux(up, pane);
    const liveGot = await settledPage(live.page, pane, want);
    const liveCmp = compareScreens(want, liveGot);
    const liveSeq = Number(await live.page.evaluate(() => document.body.dataset.lastSeq));

    // The same tab reloaded: the screens it saved (IndexedDB, written by
    // xterm.js's serialize addon) and the records after them.
    let restoreCmp = null;
    const saved = await until(() => live.page.evaluate(() => document.body.dataset.savedSeq === document.body.dataset.lastSeq && Number(document.body.dataset.savedSeq)), 20_000, 'screens saved').catch(() => null);
    if (saved) {
      await live.page.reload();
      await until(() => live.page.evaluate(() => document.body.dataset.conn === 'live'), 20_000, 'live after the reload');
      const restored = Number(await live.page.evaluate(() => document.body.dataset.restoredSeq));
      if (restored >= saved) restoreCmp = compareScreens(want, await settledPage(live.page, pane, want));
    }

    // A fresh page, from a snapshot taken after the workload.
    let reloadCmp = null;
    let snapAt = null;
    for (let attempt = 0; attempt < 8 && !reloadCmp; attempt++) {
      const frames = [];
      const page = await reloadCtx.context.newPage();
      watchFrames(page, frames);
      await page.goto(sessionUrl);
      await until(() => page.evaluate(() => document.body.dataset.conn === 'live'), 20_000, 'reload live');
      await until(() => frames.some((f) => f.type === FRAME_SNAPSHOT) || null, 5_000, 'a snapshot frame').catch(() => null);
      const snap = frames.find((f) => f.type === FRAME_SNAPSHOT);
      if (snap && snap.last >= liveSeq) {
        snapAt = snap.last;
        reloadCmp = compareScreens(want, await settledPage(page, pane, want));
      }
      await page.close();
      if (!reloadCmp) await sleep(700);
    }
    const wantAgain = tmuxScreen(up.tmux, pane);
    const r = { name: w.name, what: w.what, want, live: liveCmp, restore: restoreCmp, reload: reloadCmp, snapAt, liveSeq, ms: Date.now() - t0, changed: JSON.stringify(wantAgain) !== JSON.stringify(want) };
    results.push(r);
    const word = (c) => (!c ? 'NOT RUN' : c.ok ? 'ok' : `FAIL (${[!c.text && 'rows', !c.cursor && 'cursor', !c.attrs && 'attrs'].filter(Boolean).join(', ') || 'size/screen'})`);
    console.log(`${w.name}: live ${word(liveCmp)}, restore ${word(restoreCmp)}, reload ${word(reloadCmp)} (snapshot at ${snapAt ?? '-'} >= ${liveSeq}; ${r.ms} ms)`);
    if (want.parserMismatch) console.log(`  capture -e parse differs from capture -p: ${JSON.stringify(want.parserMismatch)}`);
    if (liveCmp && !liveCmp.ok) console.log(indent(`live ${w.name}:\n${liveCmp.report}`));
    if (restoreCmp && !restoreCmp.ok) console.log(indent(`restore ${w.name}:\n${restoreCmp.report}`));
    if (reloadCmp && !reloadCmp.ok) console.log(indent(`reload ${w.name}:\n${reloadCmp.report}`));
  }

  const report = writeReport(results, Date.now() - started);
  console.log(`report: ${report}; total ${Math.round((Date.now() - started) / 1000)} s`);
  const failed = results.flatMap((r) => [!r.live.ok && `${r.name} (live)`, !r.restore?.ok && `${r.name} (restore)`, !r.reload?.ok && `${r.name} (reload)`].filter(Boolean));
  assert.deepEqual(failed, [], `workloads where the page differs from tmux (diffs above and in ${report})`);
});

const indent = (s) => s.split('\n').map((l) => `  ${l}`).join('\n');

function writeReport(results, ms) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, 'fidelity-report.md');
  const word = (c) => (!c ? 'not run' : c.ok ? 'ok' : [!c.text && 'rows', !c.cursor && 'cursor', !c.attrs && 'attrs'].filter(Boolean).join('+') || 'screen');
  const lines = [
    `# Fidelity: page vs tmux (web/tests/fidelity.test.mjs)`,
    '',
    `Run ${new Date().toISOString()}, ${Math.round(ms / 1000)} s. Live: the page open while the workload plays. Restore: that tab reloaded (its saved screens + records after them). Reload: a fresh page (the relay's snapshot taken after the workload + records after it).`,
    '',
    '| workload | live | restore | reload | what |',
    '|---|---|---|---|---|',
  ];
  for (const r of results) lines.push(`| ${r.name} | ${word(r.live)} | ${word(r.restore)} | ${word(r.reload)} | ${r.what.replace(/\|/g, '\\|')} |`);
  for (const r of results) {
    if (r.live.ok && r.restore?.ok && r.reload?.ok) continue;
    lines.push('', `## ${r.name}`, '', r.what, '');
    if (r.changed) lines.push('(tmux\'s screen changed while the pages were read: the workload was still running?)', '');
    if (!r.live.ok) lines.push('Live:', '', '```', r.live.report, '```', '');
    if (r.restore && !r.restore.ok) lines.push('Restore (same tab reloaded: saved screens + deltas):', '', '```', r.restore.report, '```', '');
    if (!r.restore) lines.push('Restore: the tab did not save or restore its screens.', '');
    if (r.reload && !r.reload.ok) lines.push('Reload (fresh page: snapshot + deltas):', '', '```', r.reload.report, '```', '');
    if (!r.reload) lines.push('Reload: no snapshot at or after the live sequence arrived.', '');
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}
