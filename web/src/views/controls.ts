//! The session page's chrome: the header (name, pane title, presence,
//! connection and runner state, attach command), the toolbar (tmux controls,
//! find, font size, "fit tmux to this window", settings, share, help), the
//! window tabs, the phone key bar, the find bar, the `?` overlay, the
//! context menu (with "watch for idle" per pane, issue 12), the draggable
//! borders between panes, and notices. Text
//! from panes and the relay only ever goes in as text. It owns its DOM
//! listeners; `dispose()` removes the global ones.

import type { SessionInfo, Viewer } from '../protocol';
import type { Geometry } from '../layout';
import type { Pane } from '../pane';
import { MAX_FONT, MIN_FONT } from '../persistence';
import { barKeyName, pageKeyList, tmuxKeyName } from '../keys';
import { api, button, copyText, el, isMac } from '../dom';
import { askNotifications } from '../notify';
import type { SessionView } from './session';
import { openShareDialog } from './share';

interface MenuItem {
  label: string;
  run: () => void;
  disabled?: boolean;
}

export class Controls {
  readonly wrapEl: HTMLElement;
  private readonly connEl: HTMLElement;
  private readonly runnerEl: HTMLElement;
  private readonly nameEl: HTMLElement;
  private readonly jobsEl: HTMLAnchorElement;
  private readonly titleEl: HTMLElement;
  private readonly attachEl: HTMLElement;
  private readonly presenceEl: HTMLElement;
  private readonly tabsEl: HTMLElement;
  private readonly toolbarEl: HTMLElement;
  private readonly noticesEl: HTMLElement;
  private readonly keybarEl: HTMLElement;
  private readonly findEl: HTMLElement;
  private readonly findInput: HTMLInputElement;
  private readonly fontLabel: HTMLElement;
  private readonly fitBox: HTMLInputElement;
  private helpEl: HTMLElement | null = null;
  private menuEl: HTMLElement | null = null;
  private readonly sticky = { ctrl: false, alt: false };
  private readonly stickyEls: Record<'ctrl' | 'alt', HTMLElement>;
  private readonly cleanup: Array<() => void> = [];
  private readOnly = false;
  /** Panes of this session watched for idleness (`null`: not known yet). */
  private watched: Set<string> | null = null;

  constructor(root: HTMLElement, private readonly view: SessionView) {
    root.replaceChildren();
    this.connEl = el('span', { class: 'conn', 'data-testid': 'conn' }, 'connecting');
    this.runnerEl = el('span', { class: 'runner', 'data-testid': 'runner' }, 'runner ?');
    this.nameEl = el('span', { class: 'name' });
    this.jobsEl = el('a', { class: 'jobs-link', 'data-testid': 'session-jobs', hidden: true }, 'jobs');
    this.titleEl = el('span', { class: 'pane-title', 'data-testid': 'pane-title' });
    this.attachEl = el('code', { class: 'attach', 'data-testid': 'attach' });
    this.presenceEl = el('span', { class: 'presence', 'data-testid': 'presence', hidden: true });
    const copyBtn = button('copy', { class: 'copy', title: 'Copy the attach command' }, () => {
      void copyText(this.attachEl.textContent || '').then((ok) => this.notify(ok ? 'Attach command copied.' : 'Copy failed: select the command by hand.'));
    });
    const bar = el('header', { class: 'bar' },
      el('a', { href: '/', class: 'home' }, 'sessions'),
      this.nameEl, this.jobsEl, this.titleEl,
      el('span', { class: 'spacer' }),
      this.presenceEl, this.connEl, this.runnerEl,
      el('span', { class: 'attach-box' }, this.attachEl, copyBtn));

    this.fontLabel = el('span', { class: 'font-size', 'data-testid': 'font-size', title: 'Font size' }, `${view.prefs.fontSize}px`);
    this.fitBox = el('input', { type: 'checkbox', 'data-testid': 'fit' });
    this.fitBox.checked = view.fit;
    this.fitBox.addEventListener('change', () => view.setFit(this.fitBox.checked));
    const tool = (label: string, action: string, title: string, run: (ev: MouseEvent) => void) => button(label, { class: 'tool', 'data-action': action, title, 'aria-label': title }, run);
    this.toolbarEl = el('nav', { class: 'toolbar', 'data-testid': 'toolbar', 'aria-label': 'tmux controls' },
      tool('+ window', 'new-window', 'New window', () => this.newWindow()),
      tool('split ┃', 'split-right', 'Split right', () => this.split('right')),
      tool('split ━', 'split-below', 'Split below', () => this.split('below')),
      tool('zoom', 'zoom', 'Zoom the pane (again to unzoom)', () => this.zoom()),
      tool('rename', 'rename-window', 'Rename the window', () => this.renameWindow()),
      tool('close pane', 'close-pane', 'Close the pane (asks first)', () => this.closePane()),
      el('span', { class: 'sep' }),
      tool('find', 'find', 'Find in the terminal (Ctrl+Shift+F)', () => this.openFind()),
      tool('A−', 'font-smaller', 'Smaller font (Ctrl+Shift+-)', () => view.bumpFont(-1)),
      this.fontLabel,
      tool('A+', 'font-bigger', 'Bigger font (Ctrl+Shift+=)', () => view.bumpFont(1)),
      el('label', { class: 'fit', title: 'Offer tmux this window\'s size; unchecked: keep tmux\'s size and scale to fit' }, this.fitBox, ' fit tmux to this window'),
      tool('settings', 'settings', 'Settings', (ev) => this.openSettings(ev)),
      tool('share', 'share', 'Share a read-only link', () => openShareDialog(this, view.sessionId)),
      tool('?', 'help', 'Keys (Ctrl+?)', () => this.toggleHelp()));

    this.tabsEl = el('nav', { class: 'tabs', 'data-testid': 'tabs' });
    this.noticesEl = el('div', { class: 'notices', 'aria-live': 'polite' });
    this.wrapEl = el('main', { class: 'stage-wrap' });
    this.findInput = el('input', { type: 'search', placeholder: 'Find', 'aria-label': 'Find in the terminal', 'data-testid': 'find-input' });
    this.findEl = el('div', { class: 'findbar', hidden: true, 'data-testid': 'findbar' },
      this.findInput,
      button('↑', { title: 'Previous (Shift+Enter)' }, () => this.find(false)),
      button('↓', { title: 'Next (Enter)' }, () => this.find(true)),
      el('span', { class: 'find-count', 'data-testid': 'find-count' }),
      button('×', { title: 'Close (Escape)' }, () => this.closeFind()));
    this.findInput.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') {
        ev.preventDefault();
        this.find(!ev.shiftKey);
      } else if (ev.key === 'Escape') {
        ev.preventDefault();
        this.closeFind();
      }
    });
    this.findInput.addEventListener('input', () => this.find(true, true));

    const ctrl = button('Ctrl', { class: 'key sticky', 'data-key': 'ctrl', 'aria-pressed': 'false' }, () => this.toggleSticky('ctrl'));
    const alt = button('Alt', { class: 'key sticky', 'data-key': 'alt', 'aria-pressed': 'false' }, () => this.toggleSticky('alt'));
    this.stickyEls = { ctrl, alt };
    const key = (label: string, name: string, title = name) => {
      const b = button(label, { class: 'key', 'data-key': name, title }, () => this.barKey(name));
      // Keep the terminal's focus (and the phone's keyboard) while tapping.
      b.addEventListener('mousedown', (ev) => ev.preventDefault());
      return b;
    };
    const prefix = button('prefix', { class: 'key', 'data-key': 'prefix', title: 'tmux prefix' }, () => this.sendPrefix());
    prefix.addEventListener('mousedown', (ev) => ev.preventDefault());
    for (const b of [ctrl, alt]) b.addEventListener('mousedown', (ev) => ev.preventDefault());
    this.keybarEl = el('div', { class: 'keybar', 'data-testid': 'keybar', role: 'toolbar', 'aria-label': 'Keys' },
      key('Esc', 'Escape'), ctrl, alt, key('Tab', 'Tab'),
      key('←', 'Left'), key('↑', 'Up'), key('↓', 'Down'), key('→', 'Right'),
      prefix, key('PgUp', 'PPage'), key('PgDn', 'NPage'),
      button('A−', { class: 'key', title: 'Smaller font' }, () => view.bumpFont(-1)),
      button('A+', { class: 'key', title: 'Bigger font' }, () => view.bumpFont(1)));

    root.append(bar, this.toolbarEl, this.tabsEl, this.findEl, this.noticesEl, this.wrapEl, this.keybarEl);

    const onMenu = (ev: MouseEvent) => {
      const target = ev.target instanceof Element ? ev.target.closest('.pane') : null;
      if (!target || ev.shiftKey) return;
      ev.preventDefault();
      this.openMenuAt(ev.clientX, ev.clientY, (target as HTMLElement).dataset.pane || '');
    };
    this.wrapEl.addEventListener('contextmenu', onMenu);
    const onDocDown = (ev: MouseEvent) => {
      if (this.menuEl && !(ev.target instanceof Node && this.menuEl.contains(ev.target))) this.closeMenu();
    };
    document.addEventListener('mousedown', onDocDown, true);
    this.cleanup.push(() => document.removeEventListener('mousedown', onDocDown, true));
    const onEsc = (ev: KeyboardEvent) => {
      if (ev.key !== 'Escape') return;
      if (this.menuEl) this.closeMenu();
      else if (this.helpEl) this.toggleHelp();
    };
    document.addEventListener('keydown', onEsc);
    this.cleanup.push(() => document.removeEventListener('keydown', onEsc));
  }

  dispose(): void {
    for (const off of this.cleanup) off();
    this.cleanup.length = 0;
    this.closeMenu();
  }

  // ----- state ----------------------------------------------------------

  setConn(state: string): void {
    this.connEl.textContent = state;
    const word = state.split(' ')[0] || state;
    this.connEl.className = `conn conn-${word}`;
    document.body.dataset.conn = word;
  }

  setRunner(online: boolean): void {
    this.runnerEl.textContent = online ? 'runner online' : 'runner offline';
    this.runnerEl.className = `runner ${online ? 'online' : 'offline'}`;
    document.body.dataset.runner = online ? 'online' : 'offline';
  }

  setSession(s: Partial<SessionInfo>): void {
    this.attachEl.textContent = String(s.attach || '');
    this.nameEl.textContent = String(s.tmux_session || [s.idea, s.slot].filter(Boolean).join('/') || this.view.sessionId);
    document.title = `${this.nameEl.textContent} · tmux-bridge`;
    // The idea's jobs, for the owner (a share link's viewer has no account).
    const idea = typeof s.idea === 'string' ? s.idea : '';
    this.jobsEl.hidden = !idea || this.view.readOnly;
    if (idea) {
      this.jobsEl.href = `/jobs/${encodeURIComponent(idea)}`;
      this.jobsEl.title = `Jobs of ${idea}`;
    }
  }

  /** Shows which controls work: tmux commands need a runner that takes them; a share viewer gets none. */
  setFeatures(features: Set<string>, readOnly: boolean): void {
    this.readOnly = readOnly;
    document.body.classList.toggle('read-only', readOnly);
    for (const b of this.toolbarEl.querySelectorAll<HTMLButtonElement>('button[data-action]')) {
      const a = b.dataset.action || '';
      const tmuxOp = ['new-window', 'split-right', 'split-below', 'zoom', 'rename-window', 'close-pane'].includes(a);
      b.hidden = readOnly && (tmuxOp || a === 'share');
      b.disabled = tmuxOp && !features.has('tmux');
      if (b.disabled) b.title = 'This runner does not take tmux commands from the page yet (update tmux-bridge there)';
    }
    this.fitBox.disabled = readOnly;
    if (readOnly) this.jobsEl.hidden = true;
    this.keybarEl.hidden = readOnly;
    if (readOnly && !this.connEl.parentElement?.querySelector('.ro')) {
      this.connEl.before(el('span', { class: 'ro', 'data-testid': 'read-only' }, 'read-only'));
    }
  }

  setPresence(viewers: Viewer[], attached: number): void {
    const names = viewers.map((v) => `${v.name}${v.read_only ? ' (link)' : ''}${v.tabs > 1 ? ` ×${v.tabs}` : ''}`);
    const count = viewers.reduce((n, v) => n + Math.max(1, v.tabs), 0);
    this.presenceEl.hidden = false;
    this.presenceEl.textContent = `${count} viewing · ${attached} terminal${attached === 1 ? '' : 's'}`;
    this.presenceEl.title = `In browsers: ${names.join(', ') || 'nobody'}\nTerminals attached to tmux: ${attached}`;
    document.body.dataset.viewers = String(count);
    document.body.dataset.terminals = String(attached);
  }

  showTitle(pane: Pane): void {
    const title = pane.osTitle || pane.title || '';
    this.titleEl.textContent = title ? `— ${title}` : '';
    this.fontLabel.textContent = `${this.view.prefs.fontSize}px`;
  }

  /** The connection stopped for good: say why and what to do. */
  stopped(state: string, message: string): void {
    const actions = state === 'logged out' ? [{ label: 'Log in', run: () => location.assign(`/login?next=${encodeURIComponent(location.pathname)}`) }] : state === 'no access' ? [{ label: 'Sessions', run: () => location.assign('/') }] : [];
    this.notify(message, actions).dataset.testid = 'stopped';
  }

  /** A visible, dismissable message; text only. */
  notify(text: string, actions: Array<{ label: string; run: () => void }> = []): HTMLElement {
    const box = el('div', { class: 'notice', role: 'status' }, el('span', {}, text));
    const close = () => box.remove();
    for (const a of actions) {
      box.append(button(a.label, {}, () => {
        close();
        a.run();
      }));
    }
    box.append(button('×', { class: 'dismiss', title: 'Dismiss' }, close));
    this.noticesEl.append(box);
    while (this.noticesEl.children.length > 5) this.noticesEl.firstChild?.remove();
    if (actions.length === 0) setTimeout(close, 8000);
    return box;
  }

  modalOpen(): boolean {
    return !!this.helpEl || !!this.menuEl || !this.findEl.hidden || !!document.querySelector('.dialog');
  }

  // ----- tabs and borders -----------------------------------------------

  renderTabs(): void {
    const v = this.view;
    const tabs = (v.topology ? v.topology.windows : []).map((win) => {
      const wid = String(win.id);
      const b = el('button', {
        type: 'button',
        class: `tab${wid === v.shownWindow ? ' shown' : ''}${win.active ? ' tmux-active' : ''}`,
        'data-window': wid,
        title: `window ${win.index ?? ''}${win.active ? ' (tmux shows this one)' : ''}`,
      });
      // Names come from the pane (rename-window, automatic-rename): text only.
      b.textContent = `${win.index ?? ''}: ${win.name ?? ''}${/Z/.test(win.flags || '') ? ' (zoom)' : ''}`;
      b.addEventListener('click', () => {
        v.showWindow(wid);
        // Keep typing going to a terminal, not to the tab button.
        v.focusedTerm()?.term.focus();
      });
      b.addEventListener('dblclick', () => this.renameWindow(wid));
      return b;
    });
    this.tabsEl.replaceChildren(...tabs);
  }

  /** Handles over the separators of the shown window; dragging one resizes the panes in tmux. */
  renderBorders(stage: HTMLElement, geom: Geometry, w: number, h: number): void {
    for (const old of stage.querySelectorAll('.border-handle')) old.remove();
    if (this.readOnly) return;
    for (const b of geom.borders) {
      const handle = el('div', { class: `border-handle ${b.vertical ? 'v' : 'h'}`, 'data-pane': b.pane, title: 'Drag to resize' });
      Object.assign(handle.style, b.vertical
        ? { left: `${b.x * w}px`, top: `${b.y * h}px`, width: `${w}px`, height: `${b.length * h}px` }
        : { left: `${b.x * w}px`, top: `${b.y * h}px`, width: `${b.length * w}px`, height: `${h}px` });
      handle.addEventListener('pointerdown', (ev) => this.dragBorder(ev, handle, b.vertical, b.pane, w, h));
      stage.append(handle);
    }
  }

  private dragBorder(ev: PointerEvent, handle: HTMLElement, vertical: boolean, pane: string, w: number, h: number): void {
    ev.preventDefault();
    handle.setPointerCapture(ev.pointerId);
    const start = vertical ? ev.clientX : ev.clientY;
    const size = vertical ? w : h;
    const origin = parseFloat(vertical ? handle.style.left : handle.style.top);
    handle.classList.add('dragging');
    const move = (e: PointerEvent) => {
      const cells = Math.round(((vertical ? e.clientX : e.clientY) - start) / size);
      handle.style[vertical ? 'left' : 'top'] = `${origin + cells * size}px`;
    };
    const up = (e: PointerEvent) => {
      handle.removeEventListener('pointermove', move);
      handle.removeEventListener('pointerup', up);
      handle.removeEventListener('pointercancel', up);
      handle.classList.remove('dragging');
      const cells = Math.round(((vertical ? e.clientX : e.clientY) - start) / size);
      if (cells !== 0) this.view.tmux({ op: 'resize_pane', pane, dx: vertical ? cells : 0, dy: vertical ? 0 : cells });
      else handle.style[vertical ? 'left' : 'top'] = `${origin}px`;
    };
    handle.addEventListener('pointermove', move);
    handle.addEventListener('pointerup', up);
    handle.addEventListener('pointercancel', up);
  }

  // ----- tmux actions ---------------------------------------------------

  private pane(): string | null {
    return this.view.focusedPane;
  }

  newWindow(): void {
    this.view.tmux({ op: 'new_window' });
  }

  split(direction: 'right' | 'below'): void {
    const pane = this.pane();
    if (pane) this.view.tmux({ op: 'split', pane, direction });
  }

  zoom(): void {
    const pane = this.pane();
    if (pane) this.view.tmux({ op: 'zoom', pane });
  }

  closePane(): void {
    const pane = this.pane();
    if (!pane || !this.view.features.has('tmux')) {
      this.view.tmux({ op: 'kill_pane', pane: pane || '' });
      return;
    }
    const p = this.view.panes.get(pane);
    const what = p ? p.osTitle || p.title || pane : pane;
    if (window.confirm(`Close pane ${pane} (${what})? Whatever runs in it is killed.`)) this.view.tmux({ op: 'kill_pane', pane });
  }

  renameWindow(wid = this.view.shownWindow || ''): void {
    if (!wid || this.readOnly) return;
    const win = this.view.topology?.windows.find((w) => String(w.id) === wid);
    const name = window.prompt('New window name', win?.name ?? '');
    if (name !== null && name.trim()) this.view.tmux({ op: 'rename_window', window: wid, name: name.trim().slice(0, 200) });
  }

  sendPrefix(): void {
    const pane = this.pane();
    if (!pane || this.readOnly) return;
    if (this.view.features.has('tmux')) this.view.tmux({ op: 'send_prefix', pane });
    else this.view.sendKeys(['C-b']);
    this.view.focusedTerm()?.term.focus();
  }

  // ----- key bar --------------------------------------------------------

  private toggleSticky(which: 'ctrl' | 'alt'): void {
    this.sticky[which] = !this.sticky[which];
    this.stickyEls[which].classList.toggle('on', this.sticky[which]);
    this.stickyEls[which].setAttribute('aria-pressed', String(this.sticky[which]));
    this.view.focusedTerm()?.term.focus();
  }

  private clearSticky(): void {
    for (const w of ['ctrl', 'alt'] as const) {
      this.sticky[w] = false;
      this.stickyEls[w].classList.remove('on');
      this.stickyEls[w].setAttribute('aria-pressed', 'false');
    }
  }

  private barKey(name: string): void {
    this.view.sendKeys([barKeyName(name, this.sticky.ctrl, this.sticky.alt)]);
    this.clearSticky();
    this.view.focusedTerm()?.term.focus();
  }

  /**
   * With Ctrl or Alt held on the key bar, the next character typed (a
   * phone's keyboard sends text, not key presses) becomes that key; returns
   * the tmux key name, or null when no modifier is held.
   */
  stickyKey(data: string): string | null {
    if (!this.sticky.ctrl && !this.sticky.alt) return null;
    if ([...data].length !== 1) return null;
    const name = tmuxKeyName({ key: data, code: '', ctrlKey: this.sticky.ctrl, altKey: this.sticky.alt, shiftKey: false, metaKey: false });
    this.clearSticky();
    return name;
  }

  // ----- find -----------------------------------------------------------

  openFind(): void {
    this.findEl.hidden = false;
    const sel = this.view.focusedTerm()?.term.getSelection();
    if (sel && !sel.includes('\n')) this.findInput.value = sel;
    this.findInput.focus();
    this.findInput.select();
  }

  closeFind(): void {
    this.findEl.hidden = true;
    this.view.focusedTerm()?.search.clearDecorations();
    this.view.focusedTerm()?.term.focus();
  }

  private find(next: boolean, incremental = false): void {
    const pane = this.view.focusedTerm();
    const q = this.findInput.value;
    if (!pane || !q) return;
    const opts = {
      incremental,
      decorations: { matchOverviewRuler: '#888', activeMatchColorOverviewRuler: '#fc0', matchBackground: '#665500', activeMatchBackground: '#aa7700' },
    };
    const found = next ? pane.search.findNext(q, opts) : pane.search.findPrevious(q, opts);
    const count = this.findEl.querySelector('.find-count');
    if (count) count.textContent = found ? '' : 'not found';
  }

  // ----- help, settings, menu -------------------------------------------

  toggleHelp(): void {
    if (this.helpEl) {
      this.helpEl.remove();
      this.helpEl = null;
      this.view.focusedTerm()?.term.focus();
      return;
    }
    const rows = pageKeyList(isMac()).map(([k, what]) => el('tr', {}, el('td', {}, el('kbd', {}, k)), el('td', {}, what)));
    const close = button('Close', { class: 'close' }, () => this.toggleHelp());
    this.helpEl = el('div', { class: 'overlay', role: 'dialog', 'aria-label': 'Keys', 'data-testid': 'help' },
      el('div', { class: 'overlay-box' }, el('h2', {}, 'Keys'), el('table', {}, ...rows), close));
    this.helpEl.addEventListener('click', (ev) => {
      if (ev.target === this.helpEl) this.toggleHelp();
    });
    document.body.append(this.helpEl);
    close.focus();
  }

  private openSettings(ev: MouseEvent): void {
    const v = this.view;
    const sr = el('input', { type: 'checkbox', 'data-testid': 'screen-reader' });
    sr.checked = v.prefs.screenReader;
    sr.addEventListener('change', () => v.setScreenReader(sr.checked));
    const cv = el('input', { type: 'checkbox', 'data-testid': 'ctrl-v' });
    cv.checked = v.prefs.ctrlVPastes;
    cv.addEventListener('change', () => v.setCtrlVPastes(cv.checked));
    const size = el('input', { type: 'number', min: MIN_FONT, max: MAX_FONT, value: v.prefs.fontSize, 'data-testid': 'font-input' });
    size.addEventListener('change', () => v.setFontSize(Number(size.value)));
    this.openMenu(ev.clientX, ev.clientY + 10, [], el('div', { class: 'settings', 'data-testid': 'settings' },
      el('label', {}, sr, ' screen-reader mode'),
      el('label', {}, cv, ' Ctrl+V pastes (else it goes to the program)'),
      el('label', {}, 'font size ', size, ' px')));
  }

  /** The context menu of a pane. */
  openMenuAt(x: number, y: number, paneId: string): void {
    const v = this.view;
    if (paneId && paneId !== v.focusedPane) v.focusPane(paneId, true, true);
    const pane = v.focusedTerm();
    const ro = this.readOnly;
    const tmux = v.features.has('tmux') && !ro;
    const items: MenuItem[] = [
      { label: 'Copy', disabled: !pane?.term.hasSelection(), run: () => void copyText(pane?.term.getSelection() || '') },
      { label: 'Paste', disabled: ro, run: () => void this.pasteFromClipboard() },
      { label: 'Select all', run: () => pane?.term.selectAll() },
      { label: 'Find…', run: () => this.openFind() },
      { label: 'Split right', disabled: !tmux, run: () => this.split('right') },
      { label: 'Split below', disabled: !tmux, run: () => this.split('below') },
      { label: 'New window', disabled: !tmux, run: () => this.newWindow() },
      { label: 'Zoom', disabled: !tmux, run: () => this.zoom() },
      { label: 'Rename window…', disabled: !tmux, run: () => this.renameWindow() },
      { label: 'Close pane…', disabled: !tmux, run: () => this.closePane() },
      { label: pane && this.watched?.has(pane.id) ? 'Stop watching for idle' : 'Watch for idle', disabled: ro || !pane, run: () => void this.toggleWatch(pane?.id ?? '') },
      { label: 'Keys (?)', run: () => this.toggleHelp() },
    ];
    if (this.watched === null && !ro) void this.loadWatches();
    this.openMenu(x, y, items);
  }

  /** The watched panes of this session (`GET /api/sessions/{id}/watches`). */
  private async loadWatches(): Promise<void> {
    const res = await api(`/api/sessions/${encodeURIComponent(this.view.sessionId)}/watches`).catch(() => null);
    if (!res || !res.ok) return;
    const body = (await res.json().catch(() => null)) as { watches?: Array<{ pane?: unknown }> } | null;
    this.watched = new Set((body?.watches ?? []).map((w) => w.pane).filter((p): p is string => typeof p === 'string'));
  }

  /** Watches a pane for idleness with the account's idle time, or stops. */
  private async toggleWatch(paneId: string): Promise<void> {
    if (!paneId) return;
    // A click: the moment the browser lets us ask to notify.
    void askNotifications();
    const on = !(this.watched?.has(paneId) ?? false);
    let idleMs: number | null = null;
    if (on) {
      const s = await api('/api/settings').catch(() => null);
      const body = s && s.ok ? ((await s.json().catch(() => null)) as { agent_idle_ms?: unknown; default_idle_ms?: unknown } | null) : null;
      const pick = typeof body?.agent_idle_ms === 'number' ? body.agent_idle_ms : typeof body?.default_idle_ms === 'number' ? body.default_idle_ms : 30_000;
      idleMs = pick;
    }
    const path = `/api/sessions/${encodeURIComponent(this.view.sessionId)}/panes/${encodeURIComponent(paneId)}/watch`;
    const res = await api(path, { method: 'POST', body: JSON.stringify({ idle_ms: idleMs }) }).catch(() => null);
    if (!res || !res.ok) {
      this.notify(res ? `Could not change the watch (HTTP ${res.status}).` : 'The relay is unreachable.');
      return;
    }
    this.watched ??= new Set();
    if (on) this.watched.add(paneId);
    else this.watched.delete(paneId);
    document.body.dataset.watched = [...this.watched].join(' ');
    this.notify(on ? `Watching ${paneId}: you will be told when it prints nothing for ${Math.round((idleMs ?? 0) / 1000)} s.` : `Stopped watching ${paneId}.`);
  }

  private async pasteFromClipboard(): Promise<void> {
    const pane = this.view.focusedTerm();
    if (!pane) return;
    try {
      const text = await navigator.clipboard.readText();
      // term.paste applies bracketed paste; the guard sees no user event
      // here, so the text goes in directly, sanitised the same way.
      if (text) this.view.pasteText(pane.id, text);
    } catch {
      this.notify('The browser did not allow reading the clipboard: use Ctrl+Shift+V (Cmd+V).');
    }
  }

  private openMenu(x: number, y: number, items: MenuItem[], extra?: HTMLElement): void {
    this.closeMenu();
    const list = el('ul', { class: 'menu', role: 'menu', 'data-testid': 'menu' });
    for (const it of items) {
      const b = button(it.label, { role: 'menuitem', disabled: !!it.disabled }, () => {
        this.closeMenu();
        it.run();
      });
      list.append(el('li', {}, b));
    }
    if (extra) list.append(el('li', {}, extra));
    list.style.left = `${Math.max(0, Math.min(x, window.innerWidth - 240))}px`;
    list.style.top = `${Math.max(0, Math.min(y, window.innerHeight - 40 * Math.max(1, items.length) - 20))}px`;
    document.body.append(list);
    this.menuEl = list;
  }

  closeMenu(): void {
    this.menuEl?.remove();
    this.menuEl = null;
  }
}
