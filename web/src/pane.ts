//! One tmux pane in the page: an xterm.js terminal with its addons, and the
//! queue that feeds it. Writes go through xterm.js's write callback one at a
//! time (back-pressure: at most one chunk is inside xterm.js, the rest waits
//! here), and resets and resizes are queued behind the writes before them,
//! so a reset never lands under output that was written earlier but not yet
//! parsed (issue 14, item 9: a prompt shown twice after a resize). It owns
//! every listener it adds; `dispose()` removes them and the terminal.

import { Terminal, type IDisposable, type ITheme } from '@xterm/xterm';
import { SerializeAddon } from '@xterm/addon-serialize';
import { Unicode11Addon } from '@xterm/addon-unicode11';
import { WebLinksAddon } from '@xterm/addon-web-links';
import { SearchAddon } from '@xterm/addon-search';
import { el } from './dom';

export const FONT_FAMILY = '"JetBrains Mono", "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace';
const SCROLLBACK = 10000;
/** Bytes handed to xterm.js in one write; larger chunks are split. */
const WRITE_CHUNK = 64 * 1024;

type Op =
  | { kind: 'write'; data: Uint8Array | string }
  | { kind: 'reset'; cols: number; rows: number }
  | { kind: 'resize'; cols: number; rows: number }
  | { kind: 'barrier'; done: () => void };

export interface PaneHooks {
  /** Terminal data the pane emitted (typing, paste, mouse reports, replies). */
  onData(data: string): void;
  /** A key press; return false to keep it from xterm.js. */
  onKey(ev: KeyboardEvent): boolean;
  onWheel(ev: WheelEvent): boolean;
  onTitle(title: string): void;
  onOsc52(body: string): void;
  openLink(uri: string): void;
  onFocus(): void;
}

export interface PaneOptions {
  cols: number;
  rows: number;
  fontSize: number;
  screenReader: boolean;
  theme: ITheme;
}

export function clampSize(n: unknown): number {
  const v = Math.floor(Number(n));
  return Number.isFinite(v) ? Math.min(Math.max(v, 2), 1000) : 80;
}

export class Pane {
  readonly id: string;
  readonly term: Terminal;
  readonly serialize = new SerializeAddon();
  readonly search = new SearchAddon();
  readonly el: HTMLDivElement;
  readonly host: HTMLDivElement;
  opened = false;
  /** Output changed the screen since it was last serialized. */
  dirty = true;
  saved: { cols: number; rows: number; data: string } | null = null;
  /** The pane's own title (OSC 0/2). */
  osTitle = '';
  /** tmux's pane title. */
  title = '';
  private queue: Op[] = [];
  private busy = false;
  private disposed = false;
  private readonly subs: IDisposable[] = [];
  private readonly domSubs: Array<() => void> = [];

  constructor(id: string, opts: PaneOptions, hooks: PaneHooks) {
    this.id = id;
    this.term = new Terminal({
      cols: clampSize(opts.cols),
      rows: clampSize(opts.rows),
      scrollback: SCROLLBACK,
      fontFamily: FONT_FAMILY,
      fontSize: opts.fontSize,
      // Underscores sit at the bottom of the cell: a line height of 1
      // clips them at some sizes (issue 14, item 1).
      lineHeight: 1.15,
      allowProposedApi: true,
      screenReaderMode: opts.screenReader,
      // Title reports and window manipulation are a "terminal types back" attack.
      windowOptions: {},
      // OSC 8 hyperlinks: http(s) only, after showing the target.
      linkHandler: {
        activate: (_ev, uri) => hooks.openLink(uri),
        allowNonHttpProtocols: false,
      },
      cursorBlink: false,
      macOptionIsMeta: true,
      rightClickSelectsWord: false,
      theme: opts.theme,
    });
    this.term.loadAddon(this.serialize);
    this.term.loadAddon(this.search);
    this.term.loadAddon(new Unicode11Addon());
    this.term.unicode.activeVersion = '11';
    this.term.loadAddon(new WebLinksAddon((_ev, uri) => hooks.openLink(uri)));
    this.subs.push(
      this.term.onData((d) => hooks.onData(d)),
      this.term.onBinary((d) => hooks.onData(d)),
      this.term.onTitleChange((t) => {
        this.osTitle = String(t).slice(0, 200);
        hooks.onTitle(this.osTitle);
      }),
      this.term.parser.registerOscHandler(52, (body) => {
        hooks.onOsc52(body);
        return true;
      }),
      this.term.onResize(({ cols, rows }) => {
        this.el.dataset.size = `${cols}x${rows}`;
      }),
    );
    this.term.attachCustomKeyEventHandler((ev) => hooks.onKey(ev));
    this.host = el('div', { class: 'term-host' });
    this.el = el('div', { class: 'pane', 'data-pane': id }, this.host);
    this.el.dataset.size = `${this.term.cols}x${this.term.rows}`;
    const focus = () => hooks.onFocus();
    this.el.addEventListener('mousedown', focus, true);
    this.domSubs.push(() => this.el.removeEventListener('mousedown', focus, true));
    // The wheel is caught before xterm.js's own scrolling (a fixed few lines
    // per event) sees it; `onWheel` returns true to let xterm.js have it
    // (mouse reports for a program that asked for them).
    const wheel = (ev: WheelEvent) => {
      if (hooks.onWheel(ev)) return;
      ev.preventDefault();
      ev.stopPropagation();
    };
    this.el.addEventListener('wheel', wheel, { capture: true, passive: false });
    this.domSubs.push(() => this.el.removeEventListener('wheel', wheel, { capture: true }));
  }

  /** Opens the terminal in its element (once it is in the document). */
  open(): void {
    if (this.opened || this.disposed) return;
    this.term.open(this.host);
    this.opened = true;
  }

  write(data: Uint8Array | string): void {
    if (typeof data === 'string' || data.length <= WRITE_CHUNK) this.push({ kind: 'write', data });
    else for (let i = 0; i < data.length; i += WRITE_CHUNK) this.push({ kind: 'write', data: data.subarray(i, i + WRITE_CHUNK) });
    this.dirty = true;
  }

  /** Resets the terminal to `cols x rows` after everything queued before. */
  reset(cols: number, rows: number): void {
    this.push({ kind: 'reset', cols: clampSize(cols), rows: clampSize(rows) });
    this.dirty = true;
  }

  /** Resizes after everything queued before. */
  resize(cols: number, rows: number): void {
    this.push({ kind: 'resize', cols: clampSize(cols), rows: clampSize(rows) });
  }

  /** The size the terminal will have once the queue is applied. */
  pendingSize(): { cols: number; rows: number } {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const op = this.queue[i];
      if (op && (op.kind === 'reset' || op.kind === 'resize')) return { cols: op.cols, rows: op.rows };
    }
    return { cols: this.term.cols, rows: this.term.rows };
  }

  /** Resolves once everything queued so far is in the terminal's buffer. */
  flushed(): Promise<void> {
    return new Promise((resolve) => this.push({ kind: 'barrier', done: resolve }));
  }

  /** Operations waiting (for tests and diagnostics). */
  get queued(): number {
    return this.queue.length + (this.busy ? 1 : 0);
  }

  private push(op: Op): void {
    if (this.disposed) {
      if (op.kind === 'barrier') op.done();
      return;
    }
    this.queue.push(op);
    if (!this.busy) this.drain();
  }

  private drain(): void {
    while (!this.disposed) {
      const op = this.queue.shift();
      if (!op) {
        this.busy = false;
        return;
      }
      switch (op.kind) {
        case 'write':
          this.busy = true;
          // xterm.js calls back once it parsed this chunk; the next waits.
          this.term.write(op.data, () => this.drain());
          return;
        case 'reset':
          this.term.reset();
          if (this.term.cols !== op.cols || this.term.rows !== op.rows) this.term.resize(op.cols, op.rows);
          break;
        case 'resize':
          if (this.term.cols !== op.cols || this.term.rows !== op.rows) this.term.resize(op.cols, op.rows);
          break;
        case 'barrier':
          op.done();
          break;
      }
    }
  }

  setFontSize(px: number): void {
    if (this.term.options.fontSize !== px) this.term.options.fontSize = px;
  }

  setScreenReader(on: boolean): void {
    this.term.options.screenReaderMode = on;
  }

  setTheme(theme: ITheme): void {
    this.term.options.theme = theme;
  }

  /** Removes the terminal, its addons and every listener; pending barriers resolve. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const op of this.queue) if (op.kind === 'barrier') op.done();
    this.queue = [];
    for (const s of this.subs) s.dispose();
    for (const off of this.domSubs) off();
    this.term.dispose();
    this.el.remove();
  }

  get isDisposed(): boolean {
    return this.disposed;
  }
}
