// The Jobs view (/jobs/{idea}) in real Chromium against the fixture relay's
// jobs API (tests/support/fixture-relay.mjs): badges for every state, live
// `job` events updating rows in place, starting a job and the API's refusals
// told in words (400, 429 with Retry-After), cancelling from the keyboard,
// the log, the live pane link focusing the job's pane in the session page,
// the links to it from the list and the session page, a phone's width. The
// same view against the real relay and runner is in e2e.test.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { launch, until, DIST, ARTIFACTS } from './support/browser.mjs';
import { startFixtureRelay } from './support/fixture-relay.mjs';
import { REC_PANE_RESET, REC_TOPOLOGY } from '../build/test/protocol.js';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

const XSS = '<img src=x onerror="window.__xss=1">';

/** A fixture relay with jobs of every state for idea `local`, and a logged-in page on its Jobs view. */
async function open(t, { viewport = { width: 1200, height: 800 }, contextOptions = {} } = {}) {
  const relay = await startFixtureRelay({ distDir: DIST });
  t.after(() => relay.close());
  const now = Date.now();
  const at = (ago) => now - ago * 1000;
  relay.addJob({ id: '1', command: 'make', slot: 'primary', name: 'make', state: 'succeeded', exit_code: 0, created_at: at(600), started_at: at(599), ended_at: at(540) });
  relay.addJob({ id: '2', command: 'exit 3', state: 'failed', exit_code: 3, created_at: at(500), started_at: at(499), ended_at: at(498) });
  relay.addJob({ id: '3', command: 'sleep 99', state: 'failed', signal: 9, created_at: at(400), started_at: at(399), ended_at: at(300) });
  relay.addJob({ id: '4', command: 'yes', state: 'cancelled', signal: 2, created_at: at(300), started_at: at(299), ended_at: at(290) });
  relay.addJob({ id: '5', command: 'cargo test', state: 'lost', error: 'runner offline', created_at: at(200), started_at: at(199), ended_at: at(100) });
  relay.addJob({ id: '6', command: XSS, state: 'running', session_id: 'sess1', pane: '%2', created_at: at(50), started_at: at(49) });
  relay.addJob({ id: '7', command: 'npm ci', state: 'queued', created_at: at(10) });
  relay.addJob({ id: '8', idea: 'other', command: 'not mine', state: 'running', created_at: at(5) });
  const context = await browser.newContext({ viewport, ...contextOptions });
  t.after(() => context.close());
  // Every EventSource the page opens is counted.
  await context.addInitScript(() => {
    const ES = window.EventSource;
    window.__streams = 0;
    window.EventSource = class extends ES {
      constructor(...a) {
        super(...a);
        window.__streams += 1;
      }
    };
  });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto(relay.loginUrl);
  await page.goto(`${relay.url}/jobs/local`);
  await until(() => page.evaluate(() => document.querySelectorAll('[data-testid="job"]').length === 7), 5000, 'seven jobs listed');
  await until(() => page.evaluate(() => document.body.dataset.events === 'open'), 5000, 'event stream open');
  return { relay, page, errors };
}

const rows = (page) => page.evaluate(() => [...document.querySelectorAll('[data-testid="job"]')].map((li) => [li.dataset.job, li.querySelector('[data-testid="job-state"]').textContent]));

test('jobs of an idea: a badge per state, newest first, names as text; job events update rows in place', async (t) => {
  const { relay, page, errors } = await open(t);
  assert.deepEqual(await rows(page), [
    ['7', 'queued'], ['6', 'running'], ['5', 'lost'], ['4', 'cancelled'], ['3', 'failed (SIGKILL)'], ['2', 'failed (exit 3)'], ['1', 'succeeded'],
  ]);
  assert.equal(await page.textContent('[data-job="6"] .job-command'), XSS);
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  assert.equal(await page.textContent('[data-job="5"] [data-testid="job-error"]'), 'runner offline');
  assert.match(await page.textContent('[data-job="1"] .job-meta'), /^local \/ primary, window make · started .* · ended .* · took 59 s$/);
  assert.match(await page.textContent('[data-job="7"] .job-meta'), /queued /);
  // Cancel only where it can be; the live pane where there is a session.
  assert.deepEqual(await page.evaluate(() => [...document.querySelectorAll('[data-testid="job-cancel"]')].map((b) => b.closest('li').dataset.job)), ['7', '6']);
  assert.equal(await page.getAttribute('[data-job="6"] [data-testid="job-pane"]', 'href'), '/s/sess1?pane=%252');
  assert.equal(await page.textContent('[data-job="6"] [data-testid="job-pane"]'), 'open live pane');
  assert.equal(await page.getAttribute('[data-job="2"] [data-testid="job-log-link"]', 'href'), '/api/jobs/2/log');
  // Jobs, dev servers, agents and the notifier share one event stream (a
  // browser gives a host six connections; a stream per view ran a few tabs out).
  assert.equal(await page.evaluate(() => window.__streams), 1);

  // Live: the queued job starts, then fails; the row is the same element, updated in place.
  await page.evaluate(() => {
    document.querySelector('[data-job="7"]').__mark = 'same';
  });
  relay.updateJob('7', { state: 'running', started_at: Date.now(), session_id: 'sess1', pane: '%0' });
  await until(async () => (await rows(page))[0]?.[1] === 'running', 5000, 'job 7 running');
  relay.updateJob('7', { state: 'failed', exit_code: 127, ended_at: Date.now() });
  await until(async () => (await rows(page))[0]?.[1] === 'failed (exit 127)', 5000, 'job 7 failed');
  assert.equal(await page.evaluate(() => document.querySelector('[data-job="7"]').__mark), 'same');
  assert.equal(await page.$('[data-job="7"] [data-testid="job-cancel"]'), null);
  assert.equal(await page.textContent('[data-job="7"] [data-testid="job-pane"]'), 'open session');
  // A new job arrives on top; another idea's job never shows.
  relay.updateJob('9', { command: 'echo new', state: 'queued', created_at: Date.now() });
  relay.updateJob('8', { state: 'succeeded', exit_code: 0, ended_at: Date.now() });
  await until(async () => (await rows(page))[0]?.[0] === '9', 5000, 'job 9 on top');
  assert.equal((await rows(page)).length, 8);
  assert.equal(await page.$('[data-job="8"]'), null);
  await page.screenshot({ path: join(ARTIFACTS, 'jobs-list.png') });
  assert.deepEqual(errors, []);
});

test('starting a job: the form posts command and directory; 400 and 429 (Retry-After) are told in words', async (t) => {
  const { relay, page } = await open(t);
  await page.fill('[data-testid="job-command"]', 'make check');
  await page.fill('[data-testid="job-cwd"]', '/srv/app');
  await page.press('[data-testid="job-cwd"]', 'Enter');
  await until(() => relay.state.jobCreates.length === 1, 3000, 'POST /api/jobs');
  assert.deepEqual(relay.state.jobCreates[0], { idea: 'local', command: 'make check', cwd: '/srv/app' });
  await until(async () => (await rows(page))[0]?.[1] === 'queued' && (await page.textContent('[data-testid="job"] .job-command')) === 'make check', 5000, 'new job listed');
  assert.equal(await page.textContent('[data-testid="job-form-status"]'), 'Started “make check”.');
  assert.equal(await page.inputValue('[data-testid="job-command"]'), '');
  assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), 'job-command');
  // Without a directory, none is sent.
  await page.fill('[data-testid="job-cwd"]', '');
  await page.fill('[data-testid="job-command"]', 'ls');
  await page.click('[data-testid="job-start"]');
  await until(() => relay.state.jobCreates.length === 2, 3000, 'second POST');
  assert.deepEqual(relay.state.jobCreates[1], { idea: 'local', command: 'ls' });

  relay.state.onJobCreate = () => ({ status: 400, body: { error: 'command is longer than 16384 bytes' } });
  await page.fill('[data-testid="job-command"]', 'x');
  await page.click('[data-testid="job-start"]');
  await until(async () => (await page.textContent('[data-testid="job-form-status"]')) === 'The job was not started: command is longer than 16384 bytes.', 3000, '400 in words');
  assert.equal(await page.getAttribute('[data-testid="job-form-status"]', 'class'), 'status error');

  relay.state.onJobCreate = () => ({ status: 429, headers: { 'Retry-After': '3' }, body: { error: 'too many jobs' } });
  await page.click('[data-testid="job-start"]');
  await until(async () => /Too many jobs started in the last minute\. Try again in [23] s\./.test(await page.textContent('[data-testid="job-form-status"]')), 3000, '429 in words');
  assert.equal(await page.isDisabled('[data-testid="job-start"]'), true);
  // The button comes back when the wait is over.
  await until(() => page.isEnabled('[data-testid="job-start"]'), 6000, 'start enabled again');
  assert.equal(await page.textContent('[data-testid="job-form-status"]'), 'You can start jobs again.');
  await page.screenshot({ path: join(ARTIFACTS, 'jobs-form.png') });
});

test('cancel from the keyboard keeps the focus on the row; a job that already ended says so; the log shows in place', async (t) => {
  const { relay, page } = await open(t);
  // Tab to job 6's cancel button and press Enter.
  await page.focus('[data-job="7"] [data-testid="job-cancel"]');
  for (let i = 0; i < 8; i++) {
    const on = await page.evaluate(() => [document.activeElement?.closest('li')?.dataset.job, document.activeElement?.dataset.action]);
    if (on[0] === '6' && on[1] === 'cancel') break;
    await page.keyboard.press('Tab');
  }
  assert.deepEqual(await page.evaluate(() => [document.activeElement?.closest('li')?.dataset.job, document.activeElement?.dataset.action]), ['6', 'cancel']);
  await page.keyboard.press('Enter');
  await until(() => relay.state.jobCancels.includes('6'), 3000, 'POST cancel');
  await until(async () => (await page.textContent('[data-job="6"] [data-testid="job-state"]')) === 'cancelling', 3000, 'cancelling');
  assert.equal(await page.evaluate(() => document.activeElement?.dataset.job), '6', 'focus stays on the row');
  relay.updateJob('6', { state: 'cancelled', signal: 2, ended_at: Date.now() });
  await until(async () => (await page.textContent('[data-job="6"] [data-testid="job-state"]')) === 'cancelled', 3000, 'cancelled');

  // The relay says 409: the job ended meanwhile.
  relay.state.jobs.find((j) => j.id === '7').state = 'succeeded';
  await page.click('[data-job="7"] [data-testid="job-cancel"]');
  await until(async () => (await page.textContent('[data-testid="jobs-status"]')) === '“npm ci” had already ended.', 3000, '409 in words');
  await until(async () => (await page.textContent('[data-job="7"] [data-testid="job-state"]')) === 'succeeded', 3000, 'job 7 refreshed');

  // The log, in place and as text.
  relay.state.jobLogs['2'] = `hello-job\n${XSS}\n`;
  await page.click('[data-job="2"] [data-testid="job-log-toggle"]');
  await until(async () => (await page.textContent('[data-job="2"] [data-testid="job-log"]')) === `hello-job\n${XSS}\n`, 3000, 'log shown');
  assert.equal(await page.getAttribute('[data-job="2"] [data-testid="job-log-toggle"]', 'aria-expanded'), 'true');
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  const text = await page.evaluate(() => fetch('/api/jobs/2/log').then((r) => r.text()));
  assert.match(text, /hello-job/);
  await page.click('[data-job="2"] [data-testid="job-log-toggle"]');
  assert.equal(await page.isVisible('[data-job="2"] [data-testid="job-log"]'), false);
});

test('the live pane link opens the session on the job\'s window with its pane focused; the list and the session link to jobs', async (t) => {
  const { relay, page } = await open(t);
  const layout1 = 'abcd,80x12,0,0,0';
  const layout2 = 'ef01,80x12,0,0,2';
  relay.append([
    { kind: REC_TOPOLOGY, topology: { session: '$1', name: 'tb_local__primary', active_window: '@1', windows: [
      { id: '@1', index: 0, name: 'bash', active: true, layout: layout1, visible_layout: layout1, flags: '*', active_pane: '%0', panes: [{ id: '%0', x: 0, y: 0, cols: 80, rows: 12, title: '' }] },
      { id: '@2', index: 1, name: 'job-6', active: false, layout: layout2, visible_layout: layout2, flags: '', active_pane: '%2', panes: [{ id: '%2', x: 0, y: 0, cols: 80, rows: 12, title: '' }] },
    ] } },
    { kind: REC_PANE_RESET, pane: '%0', cols: 80, rows: 12, bytes: '$ ' },
    { kind: REC_PANE_RESET, pane: '%2', cols: 80, rows: 12, bytes: 'job running\r\n' },
  ]);
  await page.click('[data-job="6"] [data-testid="job-pane"]');
  await page.waitForURL(/\/s\/sess1\?pane=%252$/, { timeout: 5000 });
  await until(() => page.evaluate(() => document.body.dataset.shownWindow === '@2' && document.body.dataset.focusedPane === '%2'), 5000, 'job window shown, its pane focused');
  // The session page links to the idea's jobs.
  assert.equal(await page.getAttribute('[data-testid="session-jobs"]', 'href'), '/jobs/local');
  await page.click('[data-testid="session-jobs"]');
  await page.waitForURL(/\/jobs\/local$/, { timeout: 5000 });
  await until(() => page.$('[data-job="6"]'), 5000, 'jobs again');
  // The list links each idea to its jobs.
  await page.goto(`${relay.url}/`);
  assert.equal(await page.getAttribute('.idea[data-idea="local"] [data-testid="idea-jobs"]', 'href'), '/jobs/local');
});

test('the Jobs view fits a phone (390x844) without sideways overflow', async (t) => {
  const { relay, page } = await open(t, { viewport: { width: 390, height: 844 }, contextOptions: { isMobile: true, hasTouch: true } });
  relay.updateJob('10', { command: `printf '%s\\n' ${'very-long-argument-'.repeat(12)}`, cwd: `/home/someone/${'deep/'.repeat(20)}`, state: 'running', session_id: 'sess1', pane: '%5', created_at: Date.now(), started_at: Date.now() });
  relay.state.jobLogs['10'] = 'x'.repeat(400);
  await until(() => page.$('[data-job="10"]'), 5000, 'long job listed');
  await page.tap('[data-job="10"] [data-testid="job-log-toggle"]');
  await until(() => page.isVisible('[data-job="10"] [data-testid="job-log"]'), 3000, 'log open');
  const w = await page.evaluate(() => ({ doc: document.documentElement.scrollWidth, main: document.querySelector('main.jobs-page').scrollWidth, inner: window.innerWidth }));
  assert.ok(w.doc <= w.inner && w.main <= w.inner, JSON.stringify(w));
  const form = await page.evaluate(() => document.querySelector('[data-testid="job-form"]').getBoundingClientRect().toJSON());
  assert.ok(form.right <= 390.5, JSON.stringify(form));
  await page.screenshot({ path: join(ARTIFACTS, 'jobs-phone.png'), fullPage: true });
});
