// Drives real Chromium through dev server previews for the Rust test
// crates/bridge/tests/it/preview.rs (which starts tmux, the relay with its
// preview listener, the runner and the dev servers, then runs this). Input
// in the environment: LOGIN_URL (the one-time login link), APP (the app's
// origin), HTTP_JOB/HTTP_PORT (a python http.server with index.html and
// big.bin), WS_JOB/WS_PORT (a node `ws` echo), BIG (big.bin's size). Prints
// one JSON line per step (`{"step":…}`) so the Rust side can watch the
// relay's memory during the download, and a final `{"done":…}` line.
import { launch } from './browser.mjs';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const say = (o) => console.log(JSON.stringify(o));

const browser = await launch();
const out = {};
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  // Log in on the app's origin (the cookie stays there).
  await page.goto(env('LOGIN_URL'));
  const app = env('APP');

  // Open the HTTP preview as the dev servers page links it.
  const resp = await page.goto(`${app}/preview/${env('HTTP_JOB')}/${env('HTTP_PORT')}`);
  const url = new URL(page.url());
  out.http_status = resp.status();
  out.http_origin = url.origin;
  out.http_path = url.pathname + url.search;
  out.http_text = await page.textContent('h1');
  // The preview cookie is HttpOnly; the app's cookie is not here at all.
  out.document_cookie = await page.evaluate(() => document.cookie);
  out.preview_cookies = (await context.cookies(url.origin)).map((c) => ({
    name: c.name,
    domain: c.domain,
    httpOnly: c.httpOnly,
  }));
  say({ step: 'loaded' });

  // A preview page calling the app's API with the user's cookie.
  out.app_get = await page.evaluate(async (app) => {
    try {
      const r = await fetch(`${app}/api/sessions`, { credentials: 'include' });
      return { status: r.status, body: (await r.text()).slice(0, 200) };
    } catch (e) {
      return { error: String(e) };
    }
  }, app);
  out.app_post = await page.evaluate(async (app) => {
    try {
      const r = await fetch(`${app}/api/sessions`, {
        method: 'POST',
        credentials: 'include',
        headers: { 'content-type': 'application/json', 'x-requested-with': 'tmux-bridge' },
        body: JSON.stringify({ idea: 'pwned', slot: 'x' }),
      });
      return { status: r.status };
    } catch (e) {
      return { error: String(e) };
    }
  }, app);
  // A form post (no preflight possible) with the user's cookie.
  out.app_form = await page.evaluate(async (app) => {
    try {
      const r = await fetch(`${app}/api/jobs`, {
        method: 'POST',
        mode: 'no-cors',
        credentials: 'include',
        headers: { 'content-type': 'text/plain' },
        body: JSON.stringify({ idea: 'pwned', command: 'touch /tmp/pwned' }),
      });
      return { type: r.type };
    } catch (e) {
      return { error: String(e) };
    }
  }, app);
  say({ step: 'app-probed' });

  // The large download, streamed through the page at the browser's pace.
  say({ step: 'download-start' });
  out.download = await page.evaluate(async () => {
    const t = performance.now();
    const r = await fetch('/big.bin');
    const reader = r.body.getReader();
    let n = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      n += value.length;
    }
    return { status: r.status, bytes: n, ms: performance.now() - t };
  });
  say({ step: 'download-done' });

  // The WebSocket echo, through its own preview.
  await page.goto(`${app}/preview/${env('WS_JOB')}/${env('WS_PORT')}`);
  out.ws_origin = new URL(page.url()).origin;
  out.ws = await page.evaluate(async () => {
    const ws = new WebSocket(`ws://${location.host}/`);
    await new Promise((ok, fail) => {
      ws.onopen = ok;
      ws.onerror = () => fail(new Error('websocket error'));
    });
    const echoes = [];
    for (let i = 0; i < 5; i++) {
      const back = new Promise((ok) => (ws.onmessage = (e) => ok(e.data)));
      ws.send(`hello ${i}`);
      echoes.push(await back);
    }
    ws.close();
    return echoes;
  });
  // The first preview's cookie does not open the second one's origin.
  out.ws_cookies = (await context.cookies(out.ws_origin)).map((c) => c.domain);
  say({ step: 'ws-done' });
} catch (e) {
  out.error = String(e && e.stack ? e.stack : e);
} finally {
  await browser.close();
}
say({ done: out });
