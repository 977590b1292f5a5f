// Headless Chromium for the tests: Debian's /usr/bin/chromium driven by
// playwright-core (a downloaded browser cannot be fetched here or on CI).
import { chromium } from 'playwright-core';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const DIST = join(ROOT, 'web', 'dist');
export const ARTIFACTS = join(ROOT, 'test-artifacts');

export async function launch() {
  await mkdir(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}

/** Text of a pane's visible rows, as xterm.js's DOM renderer shows them. */
export async function paneText(page, paneId) {
  return page.evaluate((id) => {
    const p = document.querySelector(`.pane[data-pane="${id}"] .xterm-rows`);
    return p ? [...p.children].map((r) => r.textContent.replace(/\u00a0/g, ' ').trimEnd()).join('\n') : null;
  }, paneId);
}

/** Polls `fn` until it returns a truthy value, or throws after `ms`. */
export async function until(fn, ms = 10_000, what = 'condition') {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}
