//! The session page `/s/{id}`: one xterm.js terminal per tmux pane, laid out
//! as tmux lays the window out, fed by the relay's frames (docs/protocol.md),
//! resumed by sequence across reconnects and reloads. It owns the WebSocket,
//! the terminals and the page's chrome; decoding is protocol.js, persistence
//! store.js, and the hostile-output defences guard.js.

import { Terminal } from '@xterm/xterm';
import { SerializeAddon } from '@xterm/addon-serialize';
import { Unicode11Addon } from '@xterm/addon-unicode11';
import { WebLinksAddon } from '@xterm/addon-web-links';
import {
  decodeFrame, FRAME_BATCH, FRAME_SNAPSHOT, REC_OUTPUT, REC_PANE_RESET, REC_TOPOLOGY, SUBPROTOCOL,
} from './protocol.js';
import { windowGeometry } from './layout.js';
import { acceptTerminalData, openLink, parseOsc52, watchComposition } from './guard.js';
import { dropState, loadState, MAX_SAVED_CHARS, readLastSeq, saveState, writeLastSeq } from './store.js';
import { el, copyText } from './dom.js';

const BASE_FONT = 14;
const MIN_FONT = 6;
const FONT_FAMILY = '"DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace';
const SCROLLBACK = 10000;
/** Largest `data` in one input message (UTF-16 units; JSON stays far below the relay's 1 MiB). */
const INPUT_CHUNK = 16 * 1024;
/** Stop sending while the socket holds more than this. */
const HIGH_WATER = 256 * 1024;
/** Keystrokes kept while disconnected: at most this much, for at most QUEUE_MS. */
const QUEUE_BYTES = 64 * 1024;
const QUEUE_MS = 10_000;
const RESIZE_DEBOUNCE_MS = 250;
const SAVE_INTERVAL_MS = 1000;
const BACKOFF_MIN_MS = 300;
const BACKOFF_MAX_MS = 10_000;

export function mountSession(root, sessionId) {
  const view = new SessionView(root, sessionId);
  view.start();
  return view;
}

class SessionView {
  constructor(root, sessionId) {
    this.sessionId = sessionId;
    this.lastSeq = 0;
    this.savedSeq = 0;
    this.topology = null;
    this.shownWindow = null;
    this.tmuxActiveWindow = null;
    this.focusedPane = null;
    /** pane id -> {term, serialize, el, host, opened, dirty, saved} */
    this.panes = new Map();
    /** window id -> stage element */
    this.stages = new Map();
    this.ws = null;
    this.gen = 0;
    this.live = false;
    this.stopped = false;
    this.backoff = BACKOFF_MIN_MS;
    this.reconnectTimer = null;
    this.chain = Promise.resolve();
    this.saveTimer = null;
    this.outQueue = [];
    this.outBytes = 0;
    this.pumping = false;
    this.lastResizeSent = null;
    this.resizeTimer = null;
    this.cell = null;
    this.baseCell = null;
    this.fontSize = BASE_FONT;
    this.buildChrome(root);
  }

  // ----- chrome ---------------------------------------------------------

  buildChrome(root) {
    root.replaceChildren();
    this.connEl = el('span', { class: 'conn', 'data-testid': 'conn' }, 'connecting');
    this.runnerEl = el('span', { class: 'runner', 'data-testid': 'runner' }, 'runner ?');
    this.nameEl = el('span', { class: 'name' });
    this.titleEl = el('span', { class: 'pane-title', 'data-testid': 'pane-title' });
    this.attachEl = el('code', { class: 'attach', 'data-testid': 'attach' });
    const copyBtn = el('button', { type: 'button', class: 'copy', title: 'Copy the attach command' }, 'copy');
    copyBtn.addEventListener('click', () => {
      copyText(this.attachEl.textContent).then(
        (ok) => this.notify(ok ? 'Attach command copied.' : 'Copy failed: select the command by hand.'),
      );
    });
    const bar = el('header', { class: 'bar' },
      el('a', { href: '/', class: 'home' }, 'sessions'),
      this.nameEl, this.titleEl,
      el('span', { class: 'spacer' }),
      this.connEl, this.runnerEl,
      el('span', { class: 'attach-box' }, this.attachEl, copyBtn));
    this.tabsEl = el('nav', { class: 'tabs', 'data-testid': 'tabs' });
    this.noticesEl = el('div', { class: 'notices', 'aria-live': 'polite' });
    this.wrapEl = el('main', { class: 'stage-wrap' });
    root.append(bar, this.tabsEl, this.noticesEl, this.wrapEl);
    document.body.dataset.lastSeq = '0';
    document.body.dataset.savedSeq = '0';
  }

  setConn(state) {
    this.connEl.textContent = state;
    this.connEl.className = `conn conn-${state.split(' ')[0]}`;
    document.body.dataset.conn = state.split(' ')[0];
  }

  setRunner(online) {
    this.runnerEl.textContent = online ? 'runner online' : 'runner offline';
    this.runnerEl.className = `runner ${online ? 'online' : 'offline'}`;
    document.body.dataset.runner = online ? 'online' : 'offline';
  }

  /** A visible, dismissable message; text only. */
  notify(text, actions = []) {
    const box = el('div', { class: 'notice', role: 'status' }, el('span', {}, text));
    const close = () => box.remove();
    for (const a of actions) {
      const b = el('button', { type: 'button' }, a.label);
      b.addEventListener('click', () => {
        close();
        a.run();
      });
      box.append(b);
    }
    const x = el('button', { type: 'button', class: 'dismiss', title: 'Dismiss' }, '×');
    x.addEventListener('click', close);
    box.append(x);
    this.noticesEl.append(box);
    while (this.noticesEl.children.length > 5) this.noticesEl.firstChild.remove();
    if (actions.length === 0) setTimeout(close, 8000);
    return box;
  }

  // ----- lifecycle ------------------------------------------------------

  async start() {
    watchComposition(document);
    this.setConn('restoring');
    // Resume from the seq in localStorage, with the screens IndexedDB holds
    // for exactly that seq; if either is missing, start from a snapshot.
    const resumeSeq = readLastSeq(this.sessionId);
    const saved = resumeSeq > 0 ? await loadState(this.sessionId) : null;
    if (saved && saved.seq === resumeSeq) this.restore(saved);
    document.body.dataset.restoredMs = String(Math.round(performance.now()));
    window.addEventListener('resize', () => this.onViewportResize());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'hidden') this.saveSoon(0);
      else this.wake();
    });
    window.addEventListener('pagehide', () => this.saveSoon(0));
    window.addEventListener('pageshow', (ev) => {
      if (ev.persisted) this.wake();
    });
    window.addEventListener('online', () => this.wake());
    this.connect();
  }

  /** Reconnects at once if the socket is gone (tab shown again, bfcache, network back). */
  wake() {
    if (this.stopped) return;
    const open = this.ws && (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING);
    if (!open && !this.fetchingToken) {
      clearTimeout(this.reconnectTimer);
      this.backoff = BACKOFF_MIN_MS;
      this.connect();
    }
  }

  restore(saved) {
    try {
      this.applyTopology(saved.topology);
      for (const [id, p] of Object.entries(saved.panes)) {
        const pane = this.ensurePane(id, p.cols, p.rows);
        pane.term.reset();
        pane.term.resize(clampSize(p.cols), clampSize(p.rows));
        pane.term.write(String(p.data));
        pane.saved = p;
        pane.dirty = false;
      }
      this.lastSeq = saved.seq;
      this.savedSeq = saved.seq;
      document.body.dataset.lastSeq = String(this.lastSeq);
      document.body.dataset.savedSeq = String(this.savedSeq);
      document.body.dataset.restoredSeq = String(saved.seq);
    } catch (e) {
      console.warn('tmux-bridge: saved state unusable', e);
      this.clearAll();
    }
  }

  clearAll() {
    for (const id of [...this.panes.keys()]) this.removePane(id);
    for (const st of this.stages.values()) st.remove();
    this.stages.clear();
    this.topology = null;
    this.lastSeq = 0;
    this.savedSeq = 0;
    document.body.dataset.lastSeq = '0';
    document.body.dataset.savedSeq = '0';
    writeLastSeq(this.sessionId, 0);
  }

  // ----- connection -----------------------------------------------------

  async connect() {
    if (this.stopped) return;
    const gen = ++this.gen;
    this.live = false;
    if (this.ws) {
      const old = this.ws;
      this.ws = null;
      try {
        old.close(1000, 'reconnecting');
      } catch {
        // Already closed.
      }
    }
    this.setConn('connecting');
    let token;
    this.fetchingToken = true;
    // A request stuck on a dead network must not block reconnecting.
    const abort = new AbortController();
    const abortTimer = setTimeout(() => abort.abort(), 10_000);
    try {
      const res = await fetch(`/api/sessions/${encodeURIComponent(this.sessionId)}/token`, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'X-Requested-With': 'tmux-bridge' },
        signal: abort.signal,
      });
      if (res.status === 401) return this.stop('logged out', 'Your login expired: open the login link again.');
      if (res.status === 403 || res.status === 404) return this.stop('no access', 'This session does not exist or is not yours.');
      if (!res.ok) throw new Error(`token: HTTP ${res.status}`);
      const body = await res.json();
      token = body && body.token;
      if (typeof token !== 'string' || !/^[A-Za-z0-9._~+/=-]+$/.test(token)) throw new Error('token: bad body');
    } catch (e) {
      if (gen !== this.gen) return;
      console.warn('tmux-bridge: token', e);
      return this.scheduleReconnect();
    } finally {
      clearTimeout(abortTimer);
      if (gen === this.gen) this.fetchingToken = false;
    }
    if (gen !== this.gen || this.stopped) return;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const url = `${scheme}//${location.host}/api/ws/browser/${encodeURIComponent(this.sessionId)}`;
    let ws;
    try {
      ws = new WebSocket(url, [SUBPROTOCOL, `bearer.${token}`]);
    } catch (e) {
      console.warn('tmux-bridge: websocket', e);
      return this.scheduleReconnect();
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => {
      if (gen !== this.gen) return;
      this.setConn('syncing');
      this.sendJson({ t: 'hello', last_seq: this.lastSeq });
    };
    ws.onmessage = (ev) => {
      if (gen !== this.gen) return;
      if (typeof ev.data === 'string') this.onControl(ev.data, gen);
      else this.onBinary(ev.data, gen);
    };
    ws.onclose = (ev) => {
      if (gen !== this.gen) return;
      this.live = false;
      this.ws = null;
      if (ev.code === 4003) return this.stop('no access', 'The relay says this session is not yours.');
      this.lastClose = ev.code ? ` (closed ${ev.code})` : '';
      this.saveSoon(0);
      this.scheduleReconnect();
    };
  }

  stop(state, message) {
    this.stopped = true;
    this.live = false;
    this.setConn(state);
    this.notify(message);
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000);
  }

  scheduleReconnect() {
    if (this.stopped) return;
    clearTimeout(this.reconnectTimer);
    // Capped exponential backoff with jitter; a hidden tab retries at the cap
    // (`visibilitychange` wakes it at once when it is shown again).
    const base = document.visibilityState === 'hidden' ? BACKOFF_MAX_MS : this.backoff;
    const delay = base * (0.5 + Math.random() * 0.5);
    this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
    this.setConn(`reconnecting in ${Math.ceil(delay / 1000)} s${this.lastClose || ''}`);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  onControl(text, gen) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      console.warn('tmux-bridge: bad control message');
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    switch (msg.t) {
      case 'welcome':
        this.chain = this.chain.then(() => this.onWelcome(msg, gen));
        break;
      case 'runner':
        this.setRunner(!!msg.online);
        break;
      default:
        // Newer relays may add messages; ignore them.
        break;
    }
  }

  onWelcome(msg, gen) {
    if (gen !== this.gen) return;
    const s = msg.session && typeof msg.session === 'object' ? msg.session : {};
    this.attachEl.textContent = String(s.attach || '');
    this.nameEl.textContent = String(s.tmux_session || [s.idea, s.slot].filter(Boolean).join('/') || this.sessionId);
    document.title = `${this.nameEl.textContent} · tmux-bridge`;
    this.setRunner(!!msg.runner_online);
    const head = Number(msg.head_seq);
    if (Number.isSafeInteger(head) && head < this.lastSeq) {
      // The relay has less than we showed (a new data dir, lost data): our
      // screens are not its screens. It serves this socket from scratch
      // (a snapshot, then batches), so start over from seq 0 here.
      this.notify('The relay lost part of this history; redrawing the screens.');
      this.clearAll();
      dropState(this.sessionId);
    }
    this.live = true;
    this.backoff = BACKOFF_MIN_MS;
    if (!document.body.dataset.liveMs) document.body.dataset.liveMs = String(Math.round(performance.now()));
    this.setConn('live');
    this.lastResizeSent = null;
    this.sendResizeNow();
    this.pump();
  }

  onBinary(buf, gen) {
    let frame;
    try {
      frame = decodeFrame(buf);
    } catch (e) {
      // A frame that does not decode (malformed, or a zstd frame above the
      // protocol's size limit) is a protocol error: close this socket, drop
      // our screens and start over from a snapshot, after the usual backoff
      // (an immediate retry would fetch the same frame in a loop).
      console.warn('tmux-bridge: bad frame', e);
      this.gen++;
      const ws = this.ws;
      this.ws = null;
      this.live = false;
      try {
        if (ws) ws.close(4000, 'bad frame');
      } catch {
        // Already closed.
      }
      this.clearAll();
      dropState(this.sessionId);
      this.lastClose = ' (bad frame)';
      this.scheduleReconnect();
      return;
    }
    this.chain = this.chain.then(() => this.applyFrame(frame, gen)).catch((e) => {
      console.error('tmux-bridge: applying frame', e);
    });
  }

  applyFrame(frame, gen) {
    if (gen !== this.gen) return;
    if (frame.type === FRAME_BATCH && frame.firstSeq > this.lastSeq + 1) {
      console.warn('tmux-bridge: gap', this.lastSeq, frame.firstSeq);
      this.connect();
      return;
    }
    if (frame.type === FRAME_SNAPSHOT) {
      if (frame.lastSeq <= this.lastSeq) return;
      // A snapshot replaces everything: its topology record removes the
      // panes it does not name.
      for (const r of frame.records) this.applyRecord(r);
      this.lastSeq = frame.lastSeq;
    } else {
      for (const r of frame.records) {
        if (r.seq <= this.lastSeq) continue;
        this.applyRecord(r);
        this.lastSeq = r.seq;
      }
    }
    document.body.dataset.lastSeq = String(this.lastSeq);
    this.saveSoon(SAVE_INTERVAL_MS);
  }

  applyRecord(r) {
    switch (r.kind) {
      case REC_OUTPUT: {
        const pane = this.ensurePane(r.pane);
        pane.term.write(r.bytes);
        pane.dirty = true;
        break;
      }
      case REC_TOPOLOGY:
        this.applyTopology(r.topology);
        break;
      case REC_PANE_RESET: {
        const pane = this.ensurePane(r.pane, r.cols, r.rows);
        pane.term.reset();
        pane.term.resize(clampSize(r.cols), clampSize(r.rows));
        pane.term.write(r.bytes);
        pane.dirty = true;
        this.layoutShown();
        break;
      }
      default:
        break;
    }
  }

  // ----- sending --------------------------------------------------------

  sendJson(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(obj));
      return true;
    }
    return false;
  }

  /** Queues input for a pane; chunks it and sends with back-pressure. */
  sendInput(pane, data) {
    const now = performance.now();
    this.dropStaleInput(now);
    if (!this.live && this.outBytes + data.length > QUEUE_BYTES) {
      this.notify('Not connected: typing was dropped (more than 64 KiB queued).');
      return;
    }
    for (let i = 0; i < data.length;) {
      let end = Math.min(i + INPUT_CHUNK, data.length);
      // Never split a surrogate pair across two messages.
      if (end < data.length && isHighSurrogate(data.charCodeAt(end - 1))) end -= 1;
      const chunk = data.slice(i, end);
      this.outQueue.push({ pane, data: chunk, at: now });
      this.outBytes += chunk.length;
      i = end;
    }
    this.pump();
  }

  dropStaleInput(now) {
    if (this.live) return;
    let dropped = 0;
    while (this.outQueue.length && now - this.outQueue[0].at > QUEUE_MS) {
      const m = this.outQueue.shift();
      this.outBytes -= m.data.length;
      dropped += m.data.length;
    }
    if (dropped) this.notify('Not connected for more than 10 s: queued typing was dropped.');
  }

  async pump() {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.live && this.outQueue.length) {
        const ws = this.ws;
        if (!ws || ws.readyState !== WebSocket.OPEN) break;
        if (ws.bufferedAmount > HIGH_WATER) {
          await sleep(10);
          continue;
        }
        const m = this.outQueue.shift();
        this.outBytes -= m.data.length;
        ws.send(JSON.stringify({ t: 'input', pane: m.pane, data: m.data }));
      }
    } finally {
      this.pumping = false;
    }
    if (!this.live && this.outQueue.length) {
      setTimeout(() => this.dropStaleInput(performance.now()), QUEUE_MS + 50);
    }
  }

  onViewportResize() {
    clearTimeout(this.resizeTimer);
    this.resizeTimer = setTimeout(() => {
      this.layoutShown();
      this.sendResizeNow();
    }, RESIZE_DEBOUNCE_MS);
  }

  /** Tells the relay how many cells fit at the base font size. */
  sendResizeNow() {
    if (!this.live) return;
    // xterm.js's own cell size at the base font, once a terminal is
    // open (measured at the base font before any scaling). Until a terminal
    // is open nothing is sent: layoutShown sends once it has measured.
    this.measureCell();
    const base = this.baseCell || (this.cell && { w: (this.cell.w * BASE_FONT) / this.fontSize, h: (this.cell.h * BASE_FONT) / this.fontSize });
    if (!base) return;
    const cw = base.w;
    const ch = base.h;
    if (!(cw > 0 && ch > 0)) return;
    const cols = Math.max(1, Math.min(1000, Math.floor(this.wrapEl.clientWidth / cw)));
    const rows = Math.max(1, Math.min(1000, Math.floor(this.wrapEl.clientHeight / ch)));
    const key = `${cols}x${rows}`;
    if (key === this.lastResizeSent) return;
    if (this.sendJson({ t: 'resize', cols, rows })) this.lastResizeSent = key;
  }

  // ----- panes and layout -----------------------------------------------

  /** How many automatic terminal replies were kept from the pane (shown for tests and debugging). */
  get droppedReplies() {
    return Number(document.body.dataset.droppedReplies || 0);
  }

  set droppedReplies(n) {
    document.body.dataset.droppedReplies = String(n);
  }

  ensurePane(id, cols, rows) {
    let pane = this.panes.get(id);
    if (pane) return pane;
    const term = new Terminal({
      cols: clampSize(cols || 80),
      rows: clampSize(rows || 24),
      scrollback: SCROLLBACK,
      fontFamily: FONT_FAMILY,
      fontSize: this.fontSize,
      allowProposedApi: true,
      // Title reports and window manipulation are a "terminal types back" attack.
      windowOptions: {},
      // OSC 8 hyperlinks: http(s) only, after showing the target.
      linkHandler: {
        activate: (_ev, uri) => openLink(uri, (t) => this.notify(t)),
        allowNonHttpProtocols: false,
      },
      cursorBlink: false,
      macOptionIsMeta: true,
      theme: { background: '#101010' },
    });
    const serialize = new SerializeAddon();
    term.loadAddon(serialize);
    term.loadAddon(new Unicode11Addon());
    term.unicode.activeVersion = '11';
    term.loadAddon(new WebLinksAddon((_ev, uri) => openLink(uri, (t) => this.notify(t))));
    const send = (data) => {
      const ok = acceptTerminalData(data);
      if (ok !== null) this.sendInput(id, ok);
      else this.droppedReplies += 1;
    };
    term.onData(send);
    term.onBinary(send);
    term.onTitleChange((title) => {
      // The pane's own title (OSC 0/2): shown as text only, never reported back.
      const p = this.panes.get(id);
      if (p) p.osTitle = String(title).slice(0, 200);
      if (this.focusedPane === id) this.showTitle(id);
    });
    term.parser.registerOscHandler(52, (body) => {
      this.onOsc52(id, body);
      return true;
    });
    term.attachCustomKeyEventHandler((ev) => this.onKey(term, ev));
    const host = el('div', { class: 'term-host' });
    const paneEl = el('div', { class: 'pane', 'data-pane': id }, host);
    paneEl.addEventListener('mousedown', () => this.focusPane(id, false), true);
    paneEl.dataset.size = `${term.cols}x${term.rows}`;
    term.onResize(({ cols: c, rows: r }) => {
      paneEl.dataset.size = `${c}x${r}`;
    });
    pane = { id, term, serialize, el: paneEl, host, opened: false, dirty: true, saved: null };
    this.panes.set(id, pane);
    return pane;
  }

  removePane(id) {
    const pane = this.panes.get(id);
    if (!pane) return;
    this.panes.delete(id);
    pane.term.dispose();
    pane.el.remove();
    if (this.focusedPane === id) this.focusedPane = null;
  }

  onKey(term, ev) {
    if (ev.type !== 'keydown') return true;
    const mod = ev.ctrlKey && ev.shiftKey && !ev.altKey && !ev.metaKey;
    if (mod && ev.code === 'KeyC') {
      const sel = term.getSelection();
      if (sel) copyText(sel);
      return false;
    }
    if (mod && ev.code === 'KeyV') {
      // Let the browser fire its paste event, which xterm.js turns into a paste.
      return false;
    }
    return true;
  }

  onOsc52(id, body) {
    const req = parseOsc52(body);
    if (!req) return;
    if (req.read) {
      // Clipboard reads are denied, silently to the pane: nothing is sent back.
      this.notify(`Pane ${id} asked to read your clipboard; denied.`);
      return;
    }
    const preview = req.text.length > 200 ? `${req.text.slice(0, 200)}…` : req.text;
    this.notify(`Pane ${id} wants to copy ${req.text.length} characters to your clipboard: “${preview}”`, [
      { label: 'Allow copy', run: () => copyText(req.text) },
      { label: 'Deny', run: () => {} },
    ]).dataset.testid = 'osc52-prompt';
  }

  applyTopology(topo) {
    if (!topo || !Array.isArray(topo.windows)) return;
    this.topology = topo;
    const live = new Set();
    const liveWindows = new Set();
    for (const win of topo.windows) {
      const wid = String(win.id);
      liveWindows.add(wid);
      let stage = this.stages.get(wid);
      if (!stage) {
        stage = el('div', { class: 'stage', 'data-window': wid });
        this.stages.set(wid, stage);
        this.wrapEl.append(stage);
      }
      for (const p of Array.isArray(win.panes) ? win.panes : []) {
        const pid = String(p.id);
        live.add(pid);
        const pane = this.ensurePane(pid, p.cols, p.rows);
        const cols = clampSize(p.cols);
        const rows = clampSize(p.rows);
        if (pane.term.cols !== cols || pane.term.rows !== rows) pane.term.resize(cols, rows);
        pane.title = typeof p.title === 'string' ? p.title : '';
        if (pane.el.parentNode !== stage) stage.append(pane.el);
      }
    }
    for (const id of [...this.panes.keys()]) if (!live.has(id)) this.removePane(id);
    for (const [wid, stage] of this.stages) {
      if (!liveWindows.has(wid)) {
        stage.remove();
        this.stages.delete(wid);
      }
    }
    const active = topo.active_window ? String(topo.active_window) : null;
    if (!this.shownWindow || !liveWindows.has(this.shownWindow) || (active && active !== this.tmuxActiveWindow)) {
      // Follow tmux when its active window changes; tabs switch locally otherwise.
      this.shownWindow = active && liveWindows.has(active) ? active : String(topo.windows[0]?.id ?? '');
    }
    this.tmuxActiveWindow = active;
    this.renderTabs();
    this.layoutShown();
  }

  renderTabs() {
    const tabs = [];
    for (const win of this.topology ? this.topology.windows : []) {
      const wid = String(win.id);
      const b = el('button', {
        type: 'button',
        class: `tab${wid === this.shownWindow ? ' shown' : ''}${win.active ? ' tmux-active' : ''}`,
        'data-window': wid,
        title: `window ${win.index}`,
      });
      // Names come from the pane (rename-window, automatic-rename): text only.
      b.textContent = `${win.index}: ${win.name ?? ''}`;
      b.addEventListener('click', () => {
        this.shownWindow = wid;
        this.renderTabs();
        this.layoutShown();
        // Keep typing going to a terminal, not to the tab button.
        const focused = this.panes.get(this.focusedPane);
        if (focused && focused.opened) focused.term.focus();
      });
      tabs.push(b);
    }
    this.tabsEl.replaceChildren(...tabs);
  }

  currentWindow() {
    if (!this.topology) return null;
    return this.topology.windows.find((w) => String(w.id) === this.shownWindow) || null;
  }

  /** Positions the shown window's panes by the layout, at tmux's size, scaled to fit. */
  layoutShown() {
    const win = this.currentWindow();
    for (const [wid, stage] of this.stages) stage.hidden = wid !== this.shownWindow;
    if (!win) return;
    const stage = this.stages.get(String(win.id));
    if (!stage) return;
    const geom = windowGeometry(win);
    const rects = new Map(geom.panes.map((r) => [r.id, r]));
    for (const p of win.panes || []) {
      const pane = this.panes.get(String(p.id));
      if (!pane) continue;
      const visible = rects.has(pane.id);
      pane.el.hidden = !visible;
      if (visible && !pane.opened) {
        pane.term.open(pane.host);
        pane.opened = true;
      }
    }
    this.measureCell();
    if (!this.cell) return;
    if (this.live && this.lastResizeSent === null) this.sendResizeNow();
    // Fit by font size, not by CSS transform: xterm.js maps mouse and
    // selection through its own cell size, which a transform would break.
    const availW = this.wrapEl.clientWidth;
    const availH = this.wrapEl.clientHeight;
    const baseW = (this.cell.w * BASE_FONT) / this.fontSize;
    const baseH = (this.cell.h * BASE_FONT) / this.fontSize;
    const ratio = Math.min(1, availW / (geom.cols * baseW), availH / (geom.rows * baseH));
    const font = Math.max(MIN_FONT, Math.floor(BASE_FONT * ratio * 2) / 2);
    if (font !== this.fontSize) {
      this.fontSize = font;
      for (const pane of this.panes.values()) pane.term.options.fontSize = font;
      this.cell = null;
      this.measureCell();
      if (!this.cell) return;
    }
    const { w, h } = this.cell;
    stage.style.width = `${geom.cols * w}px`;
    stage.style.height = `${geom.rows * h}px`;
    for (const r of geom.panes) {
      const pane = this.panes.get(r.id);
      if (!pane) continue;
      pane.el.classList.toggle('floating', !!r.floating);
      Object.assign(pane.el.style, {
        left: `${r.x * w}px`,
        top: `${r.y * h}px`,
        width: `${r.cols * w}px`,
        height: `${r.rows * h}px`,
      });
    }
    const want = this.focusedPane && rects.has(this.focusedPane) ? this.focusedPane : String(win.active_pane || geom.panes[0]?.id || '');
    if (want && want !== this.focusedPane) this.focusPane(want, true);
  }

  /** Cell size in CSS pixels as xterm.js renders it at the current font size. */
  measureCell() {
    if (this.cell) return;
    for (const pane of this.panes.values()) {
      if (!pane.opened || pane.el.hidden) continue;
      const screen = pane.term.element && pane.term.element.querySelector('.xterm-screen');
      if (!screen) continue;
      const r = screen.getBoundingClientRect();
      if (r.width > 0 && r.height > 0) {
        this.cell = { w: r.width / pane.term.cols, h: r.height / pane.term.rows };
        if (this.fontSize === BASE_FONT) this.baseCell = this.cell;
        return;
      }
    }
  }

  focusPane(id, moveFocus) {
    const prev = this.panes.get(this.focusedPane);
    if (prev) prev.el.classList.remove('focused');
    this.focusedPane = id;
    const pane = this.panes.get(id);
    if (!pane) return;
    pane.el.classList.add('focused');
    document.body.dataset.focusedPane = id;
    this.showTitle(id);
    if (moveFocus && pane.opened) pane.term.focus();
  }

  showTitle(id) {
    const pane = this.panes.get(id);
    const title = pane ? pane.osTitle || pane.title || '' : '';
    this.titleEl.textContent = title ? `— ${title}` : '';
  }

  // ----- persistence ----------------------------------------------------

  saveSoon(delay) {
    if (delay === 0) {
      clearTimeout(this.saveTimer);
      this.saveTimer = null;
      this.chain = this.chain.then(() => this.save());
      return;
    }
    if (this.saveTimer) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = null;
      this.chain = this.chain.then(() => this.save());
    }, delay);
  }

  /**
   * Saves every pane's serialized screen with the seq it corresponds to. Runs
   * on the frame chain, so no record applies between flushing and serializing.
   */
  async save() {
    if (!this.topology || this.lastSeq === 0 || this.lastSeq === this.savedSeq) return;
    const seq = this.lastSeq;
    const started = performance.now();
    const panes = [...this.panes.values()];
    await Promise.all(panes.map((p) => new Promise((resolve) => p.term.write('', resolve))));
    const out = {};
    let total = 0;
    for (const p of panes) {
      if (p.dirty || !p.saved) {
        let data = p.serialize.serialize();
        if (data.length > MAX_SAVED_CHARS / 4) data = p.serialize.serialize({ scrollback: 500 });
        p.saved = { cols: p.term.cols, rows: p.term.rows, data };
        p.dirty = false;
      }
      out[p.id] = p.saved;
      total += p.saved.data.length;
    }
    if (total > MAX_SAVED_CHARS) {
      // Too big to keep: a reload will start from a snapshot instead.
      await dropState(this.sessionId);
      return;
    }
    if (await saveState(this.sessionId, { seq, topology: this.topology, panes: out })) {
      writeLastSeq(this.sessionId, seq);
      this.savedSeq = seq;
      document.body.dataset.savedSeq = String(seq);
      // How long the last save took and how big it was, for diagnostics.
      document.body.dataset.saveMs = String(Math.round(performance.now() - started));
      document.body.dataset.saveChars = String(total);
    }
  }
}

function clampSize(n) {
  const v = Math.floor(Number(n));
  return Number.isFinite(v) ? Math.min(Math.max(v, 2), 1000) : 80;
}

function isHighSurrogate(c) {
  return c >= 0xd800 && c <= 0xdbff;
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
