// A protocol-level stand-in for the relay, for the page's own tests: it
// serves web/dist with the relay's CSP, answers the HTTP API the page uses
// (cookie login, session list, browser tokens) and speaks the browser side
// of docs/protocol.md over a real WebSocket, sending frames the test
// composes. It checks what the page sends (subprotocol, bearer token,
// Origin, message shapes) and records every message for the test to assert
// on. The end-to-end tests (e2e.test.mjs) run the real relay and bridge.
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { WebSocketServer } from 'ws';
import { encodeFrame, FRAME_BATCH, FRAME_SNAPSHOT } from '../../build/test/protocol.js';

// The relay's CSP (crates/relay/src/http/static_files.rs), so the page is tested under it.
export const CSP = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.map': 'application/json', '.txt': 'text/plain', '.svg': 'image/svg+xml', '.woff2': 'font/woff2', '.woff': 'font/woff' };

export async function startFixtureRelay({ distDir, sessionId = 'sess1', attach = "tmux -L x attach -t '=tb_local_primary'" } = {}) {
  const cookie = `tb_fixture=${Math.random().toString(36).slice(2)}`;
  const tokens = new Set();
  const state = {
    sessionId,
    records: [], // every record ever appended, seq = index + 1
    received: [], // every JSON message from any browser: {conn, msg}
    hellos: [],
    binaryFrames: [], // per send: {conn, firstSeq, lastSeq, type}
    conns: [],
    runnerOnline: true,
    sessions: null, // a list to answer GET /api/sessions with (default: the one session)
    creates: [],
    deletes: [],
    onCreate: null,
    runners: [{ id: 'r1', name: 'local', host: 'box', embedded: true, online: true, createdAt: 0, lastSeenAt: null }],
    activity: [],
    sse: [],
    welcomeExtra: {}, // fields merged into welcome (features, read_only)
    epoch: '', // the session's numbering epoch (welcome.epoch; see rebase())
    tokenRequests: 0,
    rejectTokens: false,
    jobs: [], // the jobs API's jobs (fields as the relay's Job JSON)
    jobCreates: [], // every POST /api/jobs body
    onJobCreate: null, // (body) => {status, body, headers} instead of making a queued job
    jobCancels: [], // ids of every POST /api/jobs/{id}/cancel
    jobLogs: {}, // id -> the text GET /api/jobs/{id}/log answers
  };
  let nextJob = 1;
  let origin = '';

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    const authed = (req.headers.cookie || '').split(/;\s*/).includes(cookie);
    if (url.pathname === '/login') {
      res.writeHead(303, { 'Set-Cookie': `${cookie}; Path=/; HttpOnly; SameSite=Strict`, Location: '/' });
      return res.end();
    }
    if (url.pathname === '/api/sessions' && req.method === 'GET') {
      if (!authed) return json(res, 401, { error: 'login' });
      return json(res, 200, { sessions: state.sessions ?? [{ id: sessionId, idea: 'local', slot: 'primary', tmux_session: 'tb_local_primary', attach, runner_online: state.runnerOnline, head_seq: state.records.length }] });
    }
    if (url.pathname.startsWith('/api/') && !authed && !url.pathname.startsWith('/api/sessions/')) return json(res, 401, { error: 'login' });
    if (url.pathname === '/api/sessions' && req.method === 'POST') {
      const body = JSON.parse((await readBody(req)) || '{}');
      state.creates.push(body);
      const answer = state.onCreate ? state.onCreate(body) : { status: 201, body: { session: { id: sessionId, idea: body.idea, slot: body.slot } } };
      return json(res, answer.status, answer.body);
    }
    const dm = /^\/api\/sessions\/([^/]+)$/.exec(url.pathname);
    if (dm && req.method === 'DELETE') {
      if (!authed) return json(res, 401, { error: 'login' });
      state.deletes.push(decodeURIComponent(dm[1]));
      res.writeHead(204);
      return res.end();
    }
    if (url.pathname === '/api/runners') return json(res, 200, { runners: state.runners });
    if (url.pathname === '/api/activity') {
      const before = url.searchParams.get('before');
      const limit = Number(url.searchParams.get('limit') || 50);
      const from = before ? state.activity.findIndex((e) => e.id === before) + 1 : 0;
      const events = state.activity.slice(from, from + limit);
      const next = from + limit < state.activity.length ? events.at(-1)?.id ?? null : null;
      return json(res, 200, { events, next_before: next });
    }
    if (url.pathname === '/api/events') {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
      res.write(': hello\n\n');
      state.sse.push(res);
      req.on('close', () => {
        state.sse = state.sse.filter((r) => r !== res);
      });
      return;
    }
    if (url.pathname === '/api/devservers' && req.method === 'GET') {
      // Issue 12: the jobs page lists dev servers too; this relay has none.
      return json(res, 200, { devservers: [] });
    }
    // Agents and pane watches (issue 12): none here (tests/e2e.test.mjs has the real ones).
    if (url.pathname === '/api/agents' && req.method === 'GET') return json(res, 200, { agents: [] });
    if (/^\/api\/sessions\/[^/]+\/watches$/.test(url.pathname)) return json(res, 200, { watches: [] });
    if (url.pathname === '/api/jobs' && req.method === 'GET') {
      const idea = url.searchParams.get('idea');
      const jobs = state.jobs.filter((j) => idea === null || j.idea === idea).sort((a, b) => b.created_at - a.created_at);
      return json(res, 200, { jobs });
    }
    if (url.pathname === '/api/jobs' && req.method === 'POST') {
      if (req.headers['x-requested-with'] !== 'tmux-bridge') return json(res, 403, { error: 'csrf' });
      const body = JSON.parse((await readBody(req)) || '{}');
      state.jobCreates.push(body);
      if (state.onJobCreate) {
        const answer = state.onJobCreate(body);
        res.writeHead(answer.status, { 'Content-Type': 'application/json', ...(answer.headers ?? {}) });
        return res.end(JSON.stringify(answer.body));
      }
      const job = makeJob({ idea: body.idea, command: body.command, cwd: body.cwd ?? null });
      state.jobs.push(job);
      return json(res, 201, job);
    }
    const jm = /^\/api\/jobs\/([^/]+)(\/cancel|\/log)?$/.exec(url.pathname);
    if (jm) {
      const job = state.jobs.find((j) => j.id === decodeURIComponent(jm[1]));
      if (!job) return json(res, 404, { error: 'no such job' });
      if (jm[2] === '/cancel' && req.method === 'POST') {
        if (req.headers['x-requested-with'] !== 'tmux-bridge') return json(res, 403, { error: 'csrf' });
        state.jobCancels.push(job.id);
        if (!['queued', 'running'].includes(job.state)) return json(res, 409, { error: 'the job already ended' });
        job.cancel_requested = true;
        return json(res, 200, job);
      }
      if (jm[2] === '/log') {
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
        return res.end(state.jobLogs[job.id] ?? '');
      }
      return json(res, 200, job);
    }
    const tm = /^\/api\/sessions\/([^/]+)\/token$/.exec(url.pathname);
    if (tm && req.method === 'POST') {
      state.tokenRequests++;
      if (!authed) return json(res, 401, { error: 'login' });
      if (req.headers['x-requested-with'] !== 'tmux-bridge') return json(res, 403, { error: 'csrf' });
      if (decodeURIComponent(tm[1]) !== sessionId) return json(res, 404, { error: 'no such session' });
      if (state.rejectTokens) return json(res, 503, { error: 'try later' });
      const token = `tok.${Math.random().toString(36).slice(2)}`;
      tokens.add(token);
      return json(res, 200, { token, expires_in: 300 });
    }
    // Static files; the page's routes get index.html.
    let file = url.pathname === '/' || url.pathname === '/v' || url.pathname.startsWith('/s/') || url.pathname.startsWith('/jobs/') ? '/index.html' : url.pathname;
    file = normalize(file).replace(/^(\.\.[/\\])+/, '');
    try {
      const body = await readFile(join(distDir, file));
      res.writeHead(200, { 'Content-Type': TYPES[extname(file)] || 'application/octet-stream', 'Content-Security-Policy': CSP, 'X-Content-Type-Options': 'nosniff' });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end('not found');
    }
  });

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: 1024 * 1024,
    handleProtocols: (protocols) => (protocols.has('tmux-bridge.v1') ? 'tmux-bridge.v1' : false),
  });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url, 'http://x');
    const m = /^\/api\/ws\/browser\/([^/]+)$/.exec(url.pathname);
    const protos = String(req.headers['sec-websocket-protocol'] || '').split(',').map((s) => s.trim());
    const bearer = protos.find((p) => p.startsWith('bearer.'));
    const token = bearer && bearer.slice('bearer.'.length);
    if (!m || decodeURIComponent(m[1]) !== sessionId || !protos.includes('tmux-bridge.v1') || !token || !tokens.has(token) || req.headers.origin !== origin) {
      socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    // Tokens are single-use here, which also checks that the page fetches a fresh one per connection.
    tokens.delete(token);
    wss.handleUpgrade(req, socket, head, (ws) => onBrowser(ws));
  });

  function onBrowser(ws) {
    const conn = { ws, id: state.conns.length, hello: null, live: false };
    state.conns.push(conn);
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        ws.close(4000, 'binary from browser');
        return;
      }
      let msg;
      try {
        msg = JSON.parse(String(data));
      } catch {
        ws.close(4000, 'malformed json');
        return;
      }
      state.received.push({ conn: conn.id, msg });
      if (msg.t === 'hello' && !conn.hello) {
        conn.hello = msg;
        state.hellos.push(msg);
        let k = Number(msg.last_seq) || 0;
        // Like the relay: a browser ahead of the store, or resuming another
        // numbering epoch's records, is served from scratch.
        const otherEpoch = k > 0 && typeof msg.epoch === 'string' && msg.epoch !== state.epoch;
        const reset = otherEpoch || k > state.records.length;
        if (reset) k = 0;
        const extra = { ...(state.epoch ? { epoch: state.epoch } : {}), ...(otherEpoch ? { reset: true } : {}) };
        ws.send(JSON.stringify({ t: 'welcome', session: { id: sessionId, idea: 'local', slot: 'primary', tmux_session: 'tb_local_primary', attach }, head_seq: state.records.length, runner_online: state.runnerOnline, ...extra, ...state.welcomeExtra }));
        const missed = state.records.slice(k);
        if (missed.length) sendFrame(conn, encodeFrame(FRAME_BATCH, k + 1, state.records.length, missed), FRAME_BATCH, k + 1, state.records.length);
        conn.live = true;
      }
    });
    ws.on('close', () => {
      conn.live = false;
    });
  }

  function sendFrame(conn, bytes, type, firstSeq, lastSeq) {
    state.binaryFrames.push({ conn: conn.id, type, firstSeq, lastSeq, bytes: bytes.length });
    conn.ws.send(bytes);
  }

  /** A job as the relay's API shows it: queued now, unless `fields` say otherwise. */
  function makeJob(fields = {}) {
    const now = Date.now();
    return {
      id: String(nextJob++), idea: 'local', slot: null, name: null, command: 'true', cwd: null, state: 'queued',
      exit_code: null, signal: null, error: null, runner_id: 'r1', session_id: null, pane: null,
      created_at: now, started_at: null, ended_at: null, log_bytes: 0, cancel_requested: false, ...fields,
    };
  }

  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  origin = `http://127.0.0.1:${port}`;

  return {
    url: origin,
    loginUrl: `${origin}/login`,
    sessionUrl: `${origin}/s/${encodeURIComponent(sessionId)}`,
    state,
    /** Appends records (seq assigned here) and sends them to live browsers as one Batch. */
    append(records) {
      const first = state.records.length + 1;
      const withSeq = records.map((r, i) => ({ ...r, seq: first + i }));
      state.records.push(...withSeq);
      const bytes = encodeFrame(FRAME_BATCH, first, state.records.length, withSeq);
      for (const c of state.conns) if (c.live) sendFrame(c, bytes, FRAME_BATCH, first, state.records.length);
      return state.records.length;
    },
    /** Sends a hand-made frame to live browsers (gaps, snapshots, compressed frames). */
    sendRaw(bytes, meta = {}) {
      for (const c of state.conns) if (c.live) sendFrame(c, bytes, meta.type ?? FRAME_SNAPSHOT, meta.firstSeq ?? 0, meta.lastSeq ?? 0);
    },
    /** The runner numbers over: a new epoch; with `reset`, browsers hold records never stored. */
    rebase(epoch, { reset = false } = {}) {
      state.epoch = epoch;
      for (const c of state.conns) if (c.live) c.ws.send(JSON.stringify(reset ? { t: 'epoch', epoch, reset } : { t: 'epoch', epoch }));
    },
    setRunner(online) {
      state.runnerOnline = online;
      for (const c of state.conns) if (c.live) c.ws.send(JSON.stringify({ t: 'runner', online }));
    },
    /** Closes every browser socket with a code (network drop, relay restart). */
    dropBrowsers(code = 1001) {
      for (const c of state.conns) if (c.live) c.ws.close(code, 'test drop');
    },
    inputs() {
      return state.received.filter((r) => r.msg.t === 'input').map((r) => r.msg);
    },
    /** Every message of type `t` the browsers sent. */
    sent(t) {
      return state.received.filter((r) => r.msg.t === t).map((r) => r.msg);
    },
    /** Sends a JSON control message to live browsers. */
    control(msg) {
      for (const c of state.conns) if (c.live) c.ws.send(JSON.stringify(msg));
    },
    /** Adds a job (see makeJob) to the jobs API without telling anyone; returns it. */
    addJob(fields) {
      const job = makeJob(fields);
      state.jobs.push(job);
      return job;
    },
    /** Changes a job (or adds it) and sends it as a `job` event, like the relay on every change. */
    updateJob(id, fields) {
      let job = state.jobs.find((j) => j.id === id);
      if (!job) {
        job = makeJob({ id });
        state.jobs.push(job);
      }
      Object.assign(job, fields);
      this.event('job', job);
      return job;
    },
    /** Pushes a Server-Sent Event to every open /api/events stream. */
    event(name, data) {
      for (const r of state.sse) r.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
    },
    async close() {
      for (const c of state.conns) c.ws.terminate();
      for (const r of state.sse) r.end();
      wss.close();
      const closed = new Promise((r) => server.close(r));
      // Keep-alive connections too: a page's EventSource reconnects over
      // them every few seconds, so they never go idle and close() would
      // wait forever (Node 18 does not close them itself).
      server.closeAllConnections();
      await closed;
    },
  };
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.on('data', (d) => {
      data += d;
      if (data.length > 65536) req.destroy();
    });
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });
}

function json(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** A zstd frame holding `data` in raw blocks: valid zstd that needs no compressor. */
export function zstdRawFrame(data) {
  // Magic, FHD (4-byte content size, single segment: the window is the
  // content size), content size: every frame declares its size (protocol §3).
  const n = data.length;
  const parts = [Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0xa0, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff)];
  const MAX = 128 * 1024;
  let off = 0;
  do {
    const n = Math.min(MAX, data.length - off);
    const last = off + n >= data.length ? 1 : 0;
    const h = (n << 3) | (0 << 1) | last; // Raw block
    parts.push(Uint8Array.of(h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff), data.subarray(off, off + n));
    off += n;
  } while (off < data.length);
  const total = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
