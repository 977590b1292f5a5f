//! The session page `/s/{id}` (and a share link's read-only view): one
//! xterm.js terminal per tmux pane, laid out as tmux lays the window out,
//! fed by the relay's frames, resumed by sequence across reconnects and
//! reloads. It wires the parts together: the socket (connection.ts), the
//! frame plan (records.ts), the terminals (pane.ts), typing (input.ts,
//! keys.ts), saving (persistence.ts) and the page's controls (controls.ts).
//! It owns the panes and disposes them (and every listener it added) when a
//! pane goes away or the view is left.

import { decodeFrame, REC_OUTPUT, REC_PANE_RESET, REC_TOPOLOGY, type Rec, type RelayToBrowser, type SessionInfo, type TmuxOp, type Topology, type Viewer, type WindowInfo } from '../protocol';
import { windowGeometry, type Geometry } from '../layout';
import { planFrame } from '../records';
import { acceptTerminalData, openLink, parseOsc52, sanitizePaste, watchComposition } from '../guard';
import {
  dropState, loadPrefs, loadState, MAX_FONT, MAX_SAVED_CHARS, MIN_FONT, readChosenWindow, readFit, readLastSeq, saveState, savePrefs,
  writeChosenWindow, writeFit, writeLastSeq, defaultFontSize, type Prefs, type SavedState,
} from '../persistence';
import { Connection, ownerToken, type TokenResult } from '../connection';
import { InputQueue } from '../input';
import { pageAction, tmuxKeyName } from '../keys';
import { Pane } from '../pane';
import { copyText, el, isMac } from '../dom';
import { Controls } from './controls';
import { themeFor, watchTheme } from './theme';

const SAVE_INTERVAL_MS = 1000;
const RESIZE_DEBOUNCE_MS = 250;
/** Smallest font the page shrinks to when tmux's window does not fit. */
const FIT_MIN_FONT = 6;

export interface SessionViewOptions {
  /** A share link's viewer: nothing typed or sent, no controls. */
  readOnly?: boolean;
  /** The token source (owners: the cookie endpoint; viewers: the share link). */
  token?: (signal: AbortSignal) => Promise<TokenResult>;
  /** A pane to show and focus once the topology has it (`/s/{id}?pane=%N`, a job's pane). */
  pane?: string | null;
}

export function mountSession(root: HTMLElement, sessionId: string, opts: SessionViewOptions = {}): SessionView {
  const view = new SessionView(root, sessionId, opts);
  void view.start();
  return view;
}

export class SessionView {
  sessionId: string;
  /** A share link's viewer (or the relay said so in `welcome`): nothing is sent but `hello`. */
  readOnly: boolean;
  lastSeq = 0;
  /** The numbering epoch of `lastSeq` (from `welcome` or `epoch`; null: unknown). */
  epoch: string | null = null;
  savedSeq = 0;
  topology: Topology | null = null;
  shownWindow: string | null = null;
  tmuxActiveWindow: string | null = null;
  focusedPane: string | null = null;
  /** What the runner can do beyond input (from `welcome.features`). */
  features = new Set<string>();
  readonly panes = new Map<string, Pane>();
  readonly stages = new Map<string, HTMLDivElement>();
  prefs: Prefs;
  fit: boolean;
  /** The font size the terminals are drawn at (the preference, or smaller to fit tmux's size). */
  fontSize: number;
  live = false;
  private conn: Connection;
  private input: InputQueue;
  private chain: Promise<void> = Promise.resolve();
  private saveTimer: ReturnType<typeof setTimeout> | null = null;
  private resizeTimer: ReturnType<typeof setTimeout> | null = null;
  private lastResizeSent: string | null = null;
  private lastViewSent: string | null = null;
  /** Cell size in CSS pixels at `fontSize`. */
  private cell: { w: number; h: number } | null = null;
  private wheelRest = new Map<string, number>();
  private readonly cleanup: Array<() => void> = [];
  private firstTopology = true;
  readonly controls: Controls;
  private droppedReplies = 0;
  /** The pane asked for in the URL, until a topology shows it (or it is given up). */
  private wantPane: string | null;
  private wantPaneTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(root: HTMLElement, sessionId: string, opts: SessionViewOptions) {
    this.sessionId = sessionId;
    this.readOnly = !!opts.readOnly;
    this.prefs = loadPrefs();
    this.fit = this.readOnly ? false : readFit(sessionId);
    this.fontSize = this.prefs.fontSize;
    this.wantPane = opts.pane || null;
    this.controls = new Controls(root, this);
    this.input = new InputQueue({
      live: () => this.live && !this.readOnly,
      bufferedAmount: () => this.conn.bufferedAmount,
      send: (m) => this.conn.send(m),
      notify: (t) => this.notify(t),
    });
    const token = opts.token ?? ((signal: AbortSignal) => ownerToken(this.sessionId, signal));
    this.conn = new Connection(() => this.sessionId, {
      token,
      lastSeq: () => this.lastSeq,
      epoch: () => this.epoch,
      onControl: (m) => this.onControl(m),
      onFrame: (b) => this.onBinary(b),
      onState: (s) => this.controls.setConn(s),
      onStop: (state, message) => {
        this.live = false;
        this.controls.setConn(state);
        this.controls.stopped(state, message);
      },
      onClose: () => {
        this.live = false;
        this.saveSoon(0);
      },
    });
    document.body.dataset.lastSeq = '0';
    document.body.dataset.savedSeq = '0';
    document.body.dataset.fit = this.fit ? 'fit' : 'keep';
    document.body.dataset.fontSize = String(this.fontSize);
    if (this.readOnly) document.body.dataset.readOnly = 'true';
  }

  /** A visible, dismissable message; text only. */
  notify(text: string, actions: Array<{ label: string; run: () => void }> = []): HTMLElement {
    return this.controls.notify(text, actions);
  }

  // ----- lifecycle ------------------------------------------------------

  async start(): Promise<void> {
    watchComposition(document);
    this.controls.setConn('restoring');
    await document.fonts?.load(`${this.fontSize}px "JetBrains Mono"`).catch(() => undefined);
    // Resume from the seq in localStorage, with the screens IndexedDB holds
    // for exactly that seq; if either is missing, start from a snapshot.
    if (!this.readOnly) {
      const resumeSeq = readLastSeq(this.sessionId);
      const saved = resumeSeq > 0 ? await loadState(this.sessionId) : null;
      if (saved && saved.seq === resumeSeq) this.restore(saved);
    }
    document.body.dataset.restoredMs = String(Math.round(performance.now()));
    const onResize = () => this.onViewportResize();
    window.addEventListener('resize', onResize);
    this.cleanup.push(() => window.removeEventListener('resize', onResize));
    const onVis = () => {
      if (document.visibilityState === 'hidden') this.saveSoon(0);
      this.sendView();
    };
    document.addEventListener('visibilitychange', onVis);
    this.cleanup.push(() => document.removeEventListener('visibilitychange', onVis));
    const onHide = () => {
      this.saveSoon(0);
      // Leaving (or entering the bfcache): tmux's size must stop counting this tab now.
      this.sendView(false);
    };
    window.addEventListener('pagehide', onHide);
    this.cleanup.push(() => window.removeEventListener('pagehide', onHide));
    this.cleanup.push(watchTheme(() => this.applyTheme()));
    this.conn.start();
  }

  /** Leaves the view: closes the socket, disposes every terminal and listener. */
  dispose(): void {
    this.conn.dispose();
    this.input.dispose();
    for (const id of [...this.panes.keys()]) this.removePane(id);
    for (const off of this.cleanup) off();
    this.cleanup.length = 0;
    if (this.saveTimer) clearTimeout(this.saveTimer);
    if (this.resizeTimer) clearTimeout(this.resizeTimer);
    this.controls.dispose();
  }

  private restore(saved: SavedState): void {
    try {
      this.applyTopology(saved.topology);
      for (const [id, p] of Object.entries(saved.panes)) {
        const pane = this.ensurePane(id, p.cols, p.rows);
        pane.reset(p.cols, p.rows);
        pane.write(String(p.data));
        pane.saved = p;
        pane.dirty = false;
      }
      this.setLastSeq(saved.seq);
      this.epoch = typeof saved.epoch === 'string' ? saved.epoch : null;
      this.savedSeq = saved.seq;
      document.body.dataset.savedSeq = String(this.savedSeq);
      document.body.dataset.restoredSeq = String(saved.seq);
    } catch (e) {
      console.warn('tmux-bridge: saved state unusable', e);
      this.clearAll();
    }
  }

  private clearAll(): void {
    for (const id of [...this.panes.keys()]) this.removePane(id);
    for (const st of this.stages.values()) st.remove();
    this.stages.clear();
    this.topology = null;
    this.setLastSeq(0);
    this.savedSeq = 0;
    document.body.dataset.savedSeq = '0';
    if (!this.readOnly) writeLastSeq(this.sessionId, 0);
  }

  private setLastSeq(seq: number): void {
    this.lastSeq = seq;
    document.body.dataset.lastSeq = String(seq);
  }

  // ----- messages -------------------------------------------------------

  private onControl(msg: RelayToBrowser): void {
    switch (msg.t) {
      case 'welcome':
        this.chain = this.chain.then(() => this.onWelcome(msg));
        break;
      case 'epoch':
        this.chain = this.chain.then(() => this.onEpoch(msg));
        break;
      case 'runner':
        this.controls.setRunner(!!msg.online);
        break;
      case 'presence':
        this.controls.setPresence(Array.isArray(msg.viewers) ? msg.viewers : [], Number(msg.attached_clients) || 0);
        break;
      case 'error':
        this.notify(`The relay refused that: ${String(msg.message || msg.code)}`);
        break;
      default:
        // Newer relays may add messages; ignore them.
        break;
    }
  }

  private onWelcome(msg: Extract<RelayToBrowser, { t: 'welcome' }>): void {
    const s: Partial<SessionInfo> = msg.session && typeof msg.session === 'object' ? msg.session : {};
    this.controls.setSession(s);
    this.controls.setRunner(!!msg.runner_online);
    const features = (msg as { features?: unknown }).features;
    this.features = new Set(Array.isArray(features) ? features.filter((f): f is string => typeof f === 'string') : []);
    document.body.dataset.features = [...this.features].join(' ');
    if (msg.read_only) {
      this.readOnly = true;
      document.body.dataset.readOnly = 'true';
    }
    this.controls.setFeatures(this.features, this.readOnly);
    const head = Number(msg.head_seq);
    if (msg.reset || (Number.isSafeInteger(head) && head < this.lastSeq)) {
      // The relay has less than we showed (a new data dir, lost data), or
      // our records are of an earlier numbering (the runner started over):
      // our screens are not its screens. It serves this socket from
      // scratch (a snapshot, then batches), so start over from seq 0 here.
      this.startOver();
    }
    this.epoch = typeof msg.epoch === 'string' ? msg.epoch : '';
    this.live = true;
    this.conn.welcomed();
    if (!document.body.dataset.liveMs) document.body.dataset.liveMs = String(Math.round(performance.now()));
    this.controls.setConn('live');
    this.lastResizeSent = null;
    this.lastViewSent = null;
    this.sendView();
    this.sendResizeNow();
    void this.input.pump();
  }

  /** The runner started numbering over; with `reset`, we hold records the relay never stored. */
  private onEpoch(msg: Extract<RelayToBrowser, { t: 'epoch' }>): void {
    this.epoch = String(msg.epoch);
    if (!msg.reset) return;
    this.live = false;
    this.startOver();
    this.conn.reconnect();
  }

  /** Our screens are not the relay's: say so, and drop them and their saved copy. */
  private startOver(): void {
    this.notify('The relay lost part of this history; redrawing the screens.');
    this.clearAll();
    void dropState(this.sessionId);
  }

  private onBinary(buf: ArrayBuffer): void {
    let frame;
    try {
      frame = decodeFrame(buf);
    } catch (e) {
      // A frame that does not decode (malformed, or a zstd frame above the
      // protocol's size limit) is a protocol error: drop this socket and our
      // screens and start over from a snapshot, after the usual backoff (an
      // immediate retry would fetch the same frame in a loop).
      console.warn('tmux-bridge: bad frame', e);
      this.live = false;
      this.clearAll();
      void dropState(this.sessionId);
      this.conn.failed('bad frame');
      return;
    }
    const f = frame;
    this.chain = this.chain
      .then(() => {
        const plan = planFrame(this.lastSeq, f);
        if (plan.action === 'gap') {
          console.warn('tmux-bridge: gap', plan.have, plan.next);
          this.conn.reconnect();
          return;
        }
        if (plan.action === 'skip') return;
        for (const r of plan.records) this.applyRecord(r);
        this.setLastSeq(plan.lastSeq);
        this.saveSoon(SAVE_INTERVAL_MS);
      })
      .catch((e) => console.error('tmux-bridge: applying frame', e));
  }

  private applyRecord(r: Rec): void {
    if ('unknown' in r) return;
    switch (r.kind) {
      case REC_OUTPUT:
        this.ensurePane(r.pane).write(r.bytes);
        break;
      case REC_TOPOLOGY:
        this.applyTopology(r.topology);
        break;
      case REC_PANE_RESET: {
        const pane = this.ensurePane(r.pane, r.cols, r.rows);
        pane.reset(r.cols, r.rows);
        pane.write(r.bytes);
        this.layoutShown();
        break;
      }
      default:
        break;
    }
  }

  // ----- sending --------------------------------------------------------

  /** Sends a tmux action from the page's controls, if the runner takes them. */
  tmux(op: TmuxOp): boolean {
    if (this.readOnly) return false;
    if (!this.features.has('tmux')) {
      this.notify('This runner does not take tmux commands from the page (update tmux-bridge on that machine).');
      return false;
    }
    if (!this.live) {
      this.notify('Not connected: try again once the session is live.');
      return false;
    }
    return this.conn.send({ t: 'tmux', ...op });
  }

  /** Sends tmux key names (the key bar, the keyboard when the runner takes keys). */
  sendKeys(keys: string[]): void {
    const pane = this.focusedPane;
    if (this.readOnly || !pane) return;
    if (this.features.has('keys')) {
      this.input.keys(pane, keys);
      return;
    }
    // An older runner: the bytes a terminal sends for these keys.
    const bytes = keys.map((k) => keyBytes(k, this.panes.get(pane)?.term.modes.applicationCursorKeysMode ?? false)).join('');
    if (bytes) this.input.input(pane, bytes);
  }

  /** Pastes text into a pane as the terminal would (bracketed when the program asked for it). */
  pasteText(paneId: string, text: string): void {
    if (this.readOnly) return;
    const pane = this.panes.get(paneId);
    const body = text.replace(/\r?\n/g, '\r');
    const data = pane?.term.modes.bracketedPasteMode ? sanitizePaste(`\x1b[200~${body}\x1b[201~`) : body;
    this.input.input(paneId, data);
  }

  /** Tells the relay whether this tab is shown and whether tmux should fit it. */
  sendView(visible = document.visibilityState === 'visible'): void {
    if (!this.live || this.readOnly) return;
    const key = `${visible}:${this.fit}`;
    if (key === this.lastViewSent) return;
    if (this.conn.send({ t: 'view', visible, fit: this.fit })) this.lastViewSent = key;
  }

  private onViewportResize(): void {
    if (this.resizeTimer) clearTimeout(this.resizeTimer);
    this.resizeTimer = setTimeout(() => {
      this.layoutShown();
      this.sendResizeNow();
    }, RESIZE_DEBOUNCE_MS);
  }

  /** The cell size at the preferred font size (what the person wants to see). */
  private baseCell(): { w: number; h: number } | null {
    this.measureCell();
    if (!this.cell) return null;
    const k = this.prefs.fontSize / this.fontSize;
    return { w: this.cell.w * k, h: this.cell.h * k };
  }

  /** Tells the relay how many cells fit at the preferred font size. */
  sendResizeNow(): void {
    if (!this.live || this.readOnly) return;
    const base = this.baseCell();
    if (!base || !(base.w > 0 && base.h > 0)) return;
    const wrap = this.controls.wrapEl;
    // One column less than fits: the last pane's scrollbar takes one.
    const cols = Math.max(1, Math.min(1000, Math.floor(wrap.clientWidth / base.w) - 1));
    const rows = Math.max(1, Math.min(1000, Math.floor(wrap.clientHeight / base.h)));
    const key = `${cols}x${rows}`;
    if (key === this.lastResizeSent) return;
    if (this.conn.send({ t: 'resize', cols, rows })) this.lastResizeSent = key;
  }

  // ----- settings -------------------------------------------------------

  setFontSize(px: number): void {
    const v = Math.max(MIN_FONT, Math.min(MAX_FONT, Math.round(px)));
    this.prefs.fontSize = v;
    savePrefs(this.prefs);
    this.cell = null;
    this.applyFont(v);
    this.layoutShown();
    this.lastResizeSent = null;
    this.sendResizeNow();
  }

  bumpFont(delta: number): void {
    this.setFontSize(delta === 0 ? defaultFontSize() : this.prefs.fontSize + delta);
  }

  setFit(fit: boolean): void {
    this.fit = fit;
    writeFit(this.sessionId, fit);
    document.body.dataset.fit = fit ? 'fit' : 'keep';
    this.sendView();
    this.lastResizeSent = null;
    this.sendResizeNow();
  }

  setScreenReader(on: boolean): void {
    this.prefs.screenReader = on;
    savePrefs(this.prefs);
    for (const p of this.panes.values()) p.setScreenReader(on);
  }

  setCtrlVPastes(on: boolean): void {
    this.prefs.ctrlVPastes = on;
    savePrefs(this.prefs);
  }

  private applyTheme(): void {
    const theme = themeFor();
    for (const p of this.panes.values()) p.setTheme(theme);
  }

  private applyFont(px: number): void {
    if (px === this.fontSize) return;
    this.fontSize = px;
    document.body.dataset.fontSize = String(px);
    for (const pane of this.panes.values()) pane.setFontSize(px);
    this.cell = null;
  }

  // ----- panes and layout -----------------------------------------------

  private ensurePane(id: string, cols?: number, rows?: number): Pane {
    const existing = this.panes.get(id);
    if (existing) return existing;
    const pane: Pane = new Pane(id, { cols: cols || 80, rows: rows || 24, fontSize: this.fontSize, screenReader: this.prefs.screenReader, theme: themeFor() }, {
      onData: (data) => {
        if (this.readOnly) return;
        const ok = acceptTerminalData(data);
        if (ok === null) {
          document.body.dataset.droppedReplies = String(++this.droppedReplies);
          return;
        }
        // Ctrl or Alt held on the phone key bar: the typed character is that key.
        const sticky = this.controls.stickyKey(ok);
        if (sticky) this.sendKeys([sticky]);
        else this.input.input(id, ok);
      },
      onKey: (ev) => this.onKey(pane, ev),
      onWheel: (ev) => this.onWheel(pane, ev),
      onTitle: () => {
        if (this.focusedPane === id) this.controls.showTitle(pane);
      },
      onOsc52: (body) => this.onOsc52(id, body),
      openLink: (uri) => void openLink(uri, (t) => this.notify(t)),
      onFocus: () => this.focusPane(id, false, true),
    });
    this.panes.set(id, pane);
    return pane;
  }

  private removePane(id: string): void {
    const pane = this.panes.get(id);
    if (!pane) return;
    this.panes.delete(id);
    this.wheelRest.delete(id);
    pane.dispose();
    if (this.focusedPane === id) this.focusedPane = null;
  }

  /** Key presses in a terminal: the page's own keys, then tmux keys, else xterm.js. */
  private onKey(pane: Pane, ev: KeyboardEvent): boolean {
    const mac = isMac();
    const action = pageAction(ev, { mac, hasSelection: pane.term.hasSelection(), ctrlVPastes: this.prefs.ctrlVPastes });
    if (action) {
      if (ev.type !== 'keydown') return false;
      switch (action) {
        case 'copy': {
          ev.preventDefault();
          const sel = pane.term.getSelection();
          if (sel) {
            void copyText(sel).then((ok) => {
              if (!ok) this.notify('Copy failed: the browser refused the clipboard.');
            });
            // Ctrl+C with a selection copies once; the next Ctrl+C interrupts.
            if (ev.ctrlKey && !ev.shiftKey) pane.term.clearSelection();
          }
          return false;
        }
        case 'paste':
          // The browser fires its paste event, which xterm.js turns into a
          // (bracketed) paste; nothing is sent for the key itself.
          return false;
        case 'find':
          ev.preventDefault();
          this.controls.openFind();
          return false;
        case 'help':
          ev.preventDefault();
          this.controls.toggleHelp();
          return false;
        case 'font-bigger':
          ev.preventDefault();
          this.bumpFont(1);
          return false;
        case 'font-smaller':
          ev.preventDefault();
          this.bumpFont(-1);
          return false;
        case 'font-reset':
          ev.preventDefault();
          this.bumpFont(0);
          return false;
        case 'menu':
          ev.preventDefault();
          this.controls.openMenuAt(pane.el.getBoundingClientRect().left + 20, pane.el.getBoundingClientRect().top + 20, pane.id);
          return false;
      }
    }
    if (this.readOnly) return false;
    if (!this.features.has('keys')) return true;
    let name = tmuxKeyName(ev);
    if (name === null) return true;
    if (ev.type === 'keydown') {
      if ([...name].length === 1) name = this.controls.stickyKey(name) ?? name;
      ev.preventDefault();
      if (ev.isTrusted) this.input.keys(pane.id, [name]);
      pane.term.scrollToBottom();
    }
    return false;
  }

  /**
   * The mouse wheel scrolls by its delta (pixels, lines or pages), not a
   * fixed three lines: the history in the normal screen, arrow keys in the
   * alternate screen (less, vim), and the program itself when it asked for
   * mouse reports (xterm.js sends those).
   */
  private onWheel(pane: Pane, ev: WheelEvent): boolean {
    if (pane.term.modes.mouseTrackingMode !== 'none') return true;
    if (ev.ctrlKey) return true;
    this.measureCell();
    const cellH = this.cell?.h || 16;
    const px = ev.deltaMode === 1 ? ev.deltaY * cellH : ev.deltaMode === 2 ? ev.deltaY * cellH * pane.term.rows : ev.deltaY;
    const total = (this.wheelRest.get(pane.id) ?? 0) + px / cellH;
    const lines = Math.trunc(total);
    this.wheelRest.set(pane.id, total - lines);
    ev.preventDefault();
    if (lines === 0) return false;
    if (pane.term.buffer.active.type === 'alternate') {
      if (this.readOnly) return false;
      const key = lines < 0 ? 'Up' : 'Down';
      this.sendKeys(new Array(Math.min(Math.abs(lines), 50)).fill(key));
    } else {
      pane.term.scrollLines(lines);
    }
    return false;
  }

  private onOsc52(id: string, body: string): void {
    const req = parseOsc52(body);
    if (!req) return;
    if ('read' in req && req.read) {
      // Clipboard reads are denied, silently to the pane: nothing is sent back.
      this.notify(`Pane ${id} asked to read your clipboard; denied.`);
      return;
    }
    if (!('text' in req)) return;
    const text = req.text;
    const preview = text.length > 200 ? `${text.slice(0, 200)}…` : text;
    this.notify(`Pane ${id} wants to copy ${text.length} characters to your clipboard: “${preview}”`, [
      { label: 'Allow copy', run: () => void copyText(text) },
      { label: 'Deny', run: () => {} },
    ]).dataset.testid = 'osc52-prompt';
  }

  private applyTopology(topo: Topology): void {
    if (!topo || !Array.isArray(topo.windows)) return;
    const prevActive = this.tmuxActiveWindow;
    const prevActivePanes = new Map((this.topology?.windows ?? []).map((w) => [String(w.id), w.active_pane]));
    this.topology = topo;
    const live = new Set<string>();
    const liveWindows = new Set<string>();
    for (const win of topo.windows) {
      const wid = String(win.id);
      liveWindows.add(wid);
      let stage = this.stages.get(wid);
      if (!stage) {
        stage = el('div', { class: 'stage', 'data-window': wid });
        this.stages.set(wid, stage);
        this.controls.wrapEl.append(stage);
      }
      for (const p of Array.isArray(win.panes) ? win.panes : []) {
        const pid = String(p.id);
        live.add(pid);
        const pane = this.ensurePane(pid, p.cols, p.rows);
        const want = pane.pendingSize();
        if (want.cols !== p.cols || want.rows !== p.rows) pane.resize(p.cols, p.rows);
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
    if (this.firstTopology) {
      // A reload shows the tab the person had, if it still exists.
      const chosen = this.readOnly ? null : readChosenWindow(this.sessionId);
      this.shownWindow = chosen && liveWindows.has(chosen) ? chosen : active && liveWindows.has(active) ? active : String(topo.windows[0]?.id ?? '');
      this.firstTopology = false;
    } else if (!this.shownWindow || !liveWindows.has(this.shownWindow) || (active && active !== prevActive)) {
      // Follow tmux when its active window changes (a new window, prefix+n,
      // a terminal switching); tabs switch locally otherwise.
      this.shownWindow = active && liveWindows.has(active) ? active : String(topo.windows[0]?.id ?? '');
    }
    this.tmuxActiveWindow = active;
    const wanted = this.takeWantedPane(topo);
    if (this.shownWindow && !this.readOnly) writeChosenWindow(this.sessionId, this.shownWindow);
    // Follow tmux's active pane of the shown window when it changes.
    const shown = this.currentWindow();
    if (shown && shown.active_pane && prevActivePanes.get(String(shown.id)) !== shown.active_pane) {
      this.focusedPane = null;
    }
    this.controls.renderTabs();
    this.layoutShown();
    if (wanted) this.focusPane(wanted, true, false);
  }

  /**
   * The pane the URL asked for, once `topo` has it: its window becomes the
   * shown one. A pane that is not there 5 s after the first topology (its
   * window closed, or the job ended) is given up with a notice.
   */
  private takeWantedPane(topo: Topology): string | null {
    const want = this.wantPane;
    if (!want) return null;
    const win = topo.windows.find((w) => Array.isArray(w.panes) && w.panes.some((p) => String(p.id) === want));
    if (win) {
      this.wantPane = null;
      this.shownWindow = String(win.id);
      this.focusedPane = null;
      return want;
    }
    if (!this.wantPaneTimer) {
      this.wantPaneTimer = setTimeout(() => {
        if (this.wantPane !== want) return;
        this.wantPane = null;
        this.notify(`Pane ${want} is not open any more (its window closed); showing the session.`);
      }, 5000);
      this.cleanup.push(() => clearTimeout(this.wantPaneTimer ?? undefined));
    }
    return null;
  }

  /** Shows window `wid` (a tab click); remembered across reloads. */
  showWindow(wid: string): void {
    this.shownWindow = wid;
    if (!this.readOnly) writeChosenWindow(this.sessionId, wid);
    this.focusedPane = null;
    this.controls.renderTabs();
    this.layoutShown();
  }

  currentWindow(): WindowInfo | null {
    if (!this.topology) return null;
    return this.topology.windows.find((w) => String(w.id) === this.shownWindow) || null;
  }

  /** The shown window's geometry (for the controls' border handles). */
  currentGeometry(): Geometry | null {
    const win = this.currentWindow();
    return win ? windowGeometry(win) : null;
  }

  cellSize(): { w: number; h: number } | null {
    this.measureCell();
    return this.cell;
  }

  /** Positions the shown window's panes by the layout, at tmux's size, scaled to fit. */
  layoutShown(): void {
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
      if (visible) pane.open();
    }
    this.measureCell();
    if (!this.cell) return;
    if (this.live && this.lastResizeSent === null) this.sendResizeNow();
    // Fit by font size, not by CSS transform: xterm.js maps mouse and
    // selection through its own cell size, which a transform would break.
    const wrap = this.controls.wrapEl;
    const availW = wrap.clientWidth;
    const availH = wrap.clientHeight;
    const base = this.baseCell();
    if (!base) return;
    const ratio = Math.min(1, availW / ((geom.cols + 1) * base.w), availH / (geom.rows * base.h));
    const font = Math.max(FIT_MIN_FONT, Math.floor(this.prefs.fontSize * ratio * 2) / 2);
    if (font !== this.fontSize) {
      this.applyFont(font);
      this.measureCell();
      if (!this.cell) return;
    }
    const { w, h } = this.cell;
    // The scrollbar lives in the separator column right of each pane (and in
    // one extra column after the last), never over the pane's own cells.
    const sb = Math.max(3, Math.min(10, Math.floor(w)));
    stage.style.setProperty('--sb', `${sb}px`);
    stage.style.width = `${geom.cols * w + sb}px`;
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
    this.controls.renderBorders(stage, geom, w, h);
    const tmuxActive = win.active_pane ? String(win.active_pane) : null;
    const want = this.focusedPane && rects.has(this.focusedPane) ? this.focusedPane : tmuxActive && rects.has(tmuxActive) ? tmuxActive : geom.panes[0]?.id;
    if (want && want !== this.focusedPane) this.focusPane(want, true, false);
    document.body.dataset.shownWindow = String(win.id);
  }

  /** Cell size in CSS pixels as xterm.js renders it at the current font size. */
  private measureCell(): void {
    if (this.cell) return;
    for (const pane of this.panes.values()) {
      if (!pane.opened || pane.el.hidden) continue;
      const screen = pane.term.element?.querySelector('.xterm-screen');
      if (!screen) continue;
      const r = screen.getBoundingClientRect();
      if (r.width > 0 && r.height > 0) {
        this.cell = { w: r.width / pane.term.cols, h: r.height / pane.term.rows };
        return;
      }
    }
  }

  /**
   * Focuses pane `id`. `fromClick`: the person clicked it, so tmux selects
   * it too (like a click with tmux's mouse mode).
   */
  focusPane(id: string, moveFocus: boolean, fromClick: boolean): void {
    const prev = this.focusedPane ? this.panes.get(this.focusedPane) : undefined;
    if (prev && prev.id !== id) prev.el.classList.remove('focused');
    this.focusedPane = id;
    const pane = this.panes.get(id);
    if (!pane) return;
    pane.el.classList.add('focused');
    document.body.dataset.focusedPane = id;
    this.controls.showTitle(pane);
    if (moveFocus && pane.opened && !this.controls.modalOpen()) pane.term.focus();
    if (fromClick && !this.readOnly && this.features.has('tmux') && this.live) {
      const win = this.currentWindow();
      const isActive = win && String(win.active_pane) === id && String(win.id) === this.tmuxActiveWindow;
      if (!isActive) this.conn.send({ t: 'tmux', op: 'select_pane', pane: id });
    }
  }

  focusedTerm(): Pane | null {
    return (this.focusedPane && this.panes.get(this.focusedPane)) || null;
  }

  // ----- persistence ----------------------------------------------------

  private saveSoon(delay: number): void {
    if (this.readOnly) return;
    if (delay === 0) {
      if (this.saveTimer) clearTimeout(this.saveTimer);
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
  private async save(): Promise<void> {
    if (!this.topology || this.lastSeq === 0 || this.lastSeq === this.savedSeq) return;
    const seq = this.lastSeq;
    const epoch = this.epoch ?? undefined;
    const started = performance.now();
    const panes = [...this.panes.values()];
    await Promise.all(panes.map((p) => p.flushed()));
    const out: Record<string, { cols: number; rows: number; data: string }> = {};
    let total = 0;
    for (const p of panes) {
      if (p.isDisposed) continue;
      if (p.dirty || !p.saved) {
        let data = p.serialized();
        if (data.length > MAX_SAVED_CHARS / 4) data = p.serialized(500);
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
    if (await saveState(this.sessionId, { seq, epoch, topology: this.topology, panes: out })) {
      writeLastSeq(this.sessionId, seq);
      this.savedSeq = seq;
      document.body.dataset.savedSeq = String(seq);
      // How long the last save took and how big it was, for diagnostics.
      document.body.dataset.saveMs = String(Math.round(performance.now() - started));
      document.body.dataset.saveChars = String(total);
    }
  }

  /** Viewers from the last presence message (for the controls). */
  static viewerLabel(v: Viewer): string {
    return `${v.name}${v.read_only ? ' (read-only link)' : ''}${v.tabs > 1 ? ` ×${v.tabs}` : ''}`;
  }
}

/** The bytes a terminal sends for a tmux key name (for runners without key support). */
export function keyBytes(name: string, appCursor: boolean): string {
  const ctrl = name.startsWith('C-');
  const rest = ctrl ? name.slice(2) : name;
  const alt = rest.startsWith('M-');
  const base = alt ? rest.slice(2) : rest;
  const arrows: Record<string, string> = { Up: 'A', Down: 'B', Right: 'C', Left: 'D' };
  let out: string;
  const arrow = arrows[base];
  if (arrow) out = `\x1b${appCursor ? 'O' : '['}${arrow}`;
  else if (base === 'Escape') out = '\x1b';
  else if (base === 'Tab') out = '\t';
  else if (base === 'BTab') out = '\x1b[Z';
  else if (base === 'Enter') out = '\r';
  else if (base === 'BSpace') out = '\x7f';
  else if (base === 'Space') out = ctrl ? '\x00' : ' ';
  else if (base === 'PPage') out = '\x1b[5~';
  else if (base === 'NPage') out = '\x1b[6~';
  else if (base === 'Home') out = '\x1b[H';
  else if (base === 'End') out = '\x1b[F';
  else if (base === 'DC') out = '\x1b[3~';
  else if ([...base].length === 1) {
    const c = base.toLowerCase();
    out = ctrl && c >= 'a' && c <= 'z' ? String.fromCharCode(c.charCodeAt(0) - 96) : base;
  } else return '';
  return alt ? `\x1b${out}` : out;
}
