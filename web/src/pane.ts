//! One tmux pane in the page: an xterm.js terminal with its addons, and the
//! queue that feeds it. Writes go through xterm.js's write callback one at a
//! time (back-pressure: at most one chunk is inside xterm.js, the rest waits
//! here), and resets and resizes are queued behind the writes before them,
//! so a reset never lands under output that was written earlier but not yet
//! parsed (issue 14, item 9: a prompt shown twice after a resize). It owns
//! every listener it adds; `dispose()` removes them and the terminal.
//!
//! It also keeps the page's live panes in one registry, read through
//! `window.tmuxBridgeDebug` (see `DebugScreen`): a read-only view of what
//! each terminal holds, for the fidelity test (web/tests/fidelity.test.mjs)
//! and for debugging from the console.

import { Terminal, type IBufferCell, type IDisposable, type ITheme, type IUnicodeVersionProvider } from '@xterm/xterm';
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

/**
 * What `window.tmuxBridgeDebug.screen(pane)` returns: the visible rows of
 * the pane's active buffer (normal or alternate), as xterm.js holds them.
 */
export interface DebugScreen {
  cols: number;
  rows: number;
  /** The alternate screen is shown. */
  alternate: boolean;
  /** Cursor in the viewport; `x` may equal `cols` while a wrap is pending. */
  cursor: { x: number; y: number };
  /** Each visible row, `translateToString(true)` (trailing blanks trimmed). */
  lines: string[];
  /**
   * With `{ attrs: true }`: each row as runs of `[attributes, text]`, the
   * text of the cells with those attributes (a wide character once, its
   * padding cell skipped; an empty cell as a space), trailing blank cells
   * with default attributes left out. `attributes` is a canonical string:
   * SGR-like codes in this order, `;`-separated, empty for the default:
   * 1 bold, 2 dim, 3 italic, 4 underline (any style), 5 blink, 7 inverse,
   * 8 invisible, 9 strikethrough, 53 overline, `fg=`/`bg=` followed by
   * `pN` (palette index 0-255) or `#rrggbb`.
   */
  attrs?: Array<Array<[string, string]>>;
}

/** The canonical attribute string of one cell (see `DebugScreen.attrs`). */
function cellAttrs(c: IBufferCell): string {
  const out: string[] = [];
  if (c.isBold()) out.push('1');
  if (c.isDim()) out.push('2');
  if (c.isItalic()) out.push('3');
  if (c.isUnderline()) out.push('4');
  if (c.isBlink()) out.push('5');
  if (c.isInverse()) out.push('7');
  if (c.isInvisible()) out.push('8');
  if (c.isStrikethrough()) out.push('9');
  if (c.isOverline()) out.push('53');
  const colour = (palette: boolean, rgb: boolean, v: number): string | null =>
    palette ? `p${v}` : rgb ? `#${v.toString(16).padStart(6, '0')}` : null;
  const fg = colour(c.isFgPalette(), c.isFgRGB(), c.getFgColor());
  if (fg) out.push(`fg=${fg}`);
  const bg = colour(c.isBgPalette(), c.isBgRGB(), c.getBgColor());
  if (bg) out.push(`bg=${bg}`);
  return out.join(';');
}

const ZWJ = 0x200d;
/** Our state bit in xterm.js's character properties: the last character was a ZWJ. */
const AFTER_ZWJ = 1;
/**
 * The private OSC of the reset bytes around a cell of several characters
 * (crates/transcript/src/snapshot.rs, `CLUSTER_OSC`): `7761;W` before it,
 * `7761` after.
 */
export const CLUSTER_OSC = 7761;
/** Characters one forced cluster takes at most (a tmux cell holds 32 bytes at most). */
const MAX_CLUSTER = 32;

/** A width provider for one terminal, and its cluster switch. */
interface TmuxUnicode extends IUnicodeVersionProvider {
  /** From the next character until `cluster(0)`: one cell of `width` columns. */
  cluster(width: number): void;
}

/**
 * Unicode 11 widths (the addon's own provider) with tmux's rule for a
 * zero width joiner: the character after a ZWJ joins the cell before it,
 * whatever its width, so `👨‍👩‍👧` is one cell of two columns as in tmux
 * (Unicode 11 alone lays each emoji of the sequence in a cell of its
 * own). Between `cluster(W)` and `cluster(0)` (the reset bytes' private
 * OSC), every character goes into one cell of W columns: tmux's width for
 * what its version joins (skin tones, VS16 sequences in 3.5+). Null if the
 * addon did not hand over its provider.
 */
function tmuxUnicode(): TmuxUnicode | null {
  const caught: IUnicodeVersionProvider[] = [];
  // The addon registers its provider when activated: catch it there.
  const catcher = { unicode: { register: (p: IUnicodeVersionProvider) => caught.push(p) } };
  new Unicode11Addon().activate(catcher as unknown as Terminal);
  const u11 = caught[0];
  if (!u11) return null;
  // xterm.js's property value: state << 3 | width << 1 | joins.
  const value = (state: number, width: number, join: boolean) => ((state & 0xffffff) << 3) | ((width & 3) << 1) | (join ? 1 : 0);
  let forced = 0;
  let joined = -1;
  return {
    version: 'tmux',
    wcwidth: (cp) => u11.wcwidth(cp),
    charProperties(cp, preceding) {
      // A cluster no tmux cell could hold ends by itself (a stray OSC
      // from a program must not glue the rest of its output together).
      if (forced && joined < MAX_CLUSTER) {
        joined++;
        return value(0, forced, joined > 0);
      }
      const width = (preceding >> 1) & 3;
      if ((preceding >> 3) & AFTER_ZWJ && width > 0) return value(cp === ZWJ ? AFTER_ZWJ : 0, width, true);
      const v = u11.charProperties(cp, preceding);
      return cp === ZWJ ? v | (AFTER_ZWJ << 3) : v;
    },
    cluster(width) {
      forced = width === 1 || width === 2 ? width : 0;
      joined = -1;
    },
  };
}

/** The live panes by id (the last one made for an id wins). */
const registry = new Map<string, Pane>();

function debugScreen(pane: Pane, attrs: boolean): DebugScreen {
  const term = pane.term;
  const buf = term.buffer.active;
  const lines: string[] = [];
  const runs: Array<Array<[string, string]>> = [];
  const cell = buf.getNullCell();
  for (let y = 0; y < term.rows; y++) {
    const line = buf.getLine(buf.viewportY + y);
    lines.push(line ? line.translateToString(true) : '');
    if (!attrs) continue;
    const row: Array<[string, string]> = [];
    let end = 0;
    if (line) {
      // The end of the row: after the last cell with text or attributes.
      for (let x = 0; x < line.length; x++) {
        const c = line.getCell(x, cell);
        if (c && (c.getChars() !== '' || !c.isAttributeDefault() || c.getWidth() === 0)) end = x + 1;
      }
      for (let x = 0; x < end; x++) {
        const c = line.getCell(x, cell);
        if (!c || c.getWidth() === 0) continue;
        const key = cellAttrs(c);
        const text = c.getChars() || ' ';
        const last = row[row.length - 1];
        if (last && last[0] === key) last[1] += text;
        else row.push([key, text]);
      }
    }
    runs.push(row);
  }
  const out: DebugScreen = {
    cols: term.cols,
    rows: term.rows,
    alternate: buf.type === 'alternate',
    cursor: { x: buf.cursorX, y: buf.cursorY },
    lines,
  };
  if (attrs) out.attrs = runs;
  return out;
}

/**
 * `window.tmuxBridgeDebug`: read-only access to the page's terminals.
 * `panes()` lists the pane ids; `flushed(id)` resolves (true) once every
 * write queued for that pane so far is parsed (false: no such pane);
 * `screen(id, { attrs })` returns its `DebugScreen`, or null.
 */
export interface BridgeDebug {
  panes(): string[];
  flushed(id: string): Promise<boolean>;
  screen(id: string, opts?: { attrs?: boolean }): DebugScreen | null;
}

const debugApi: BridgeDebug = {
  panes: () => [...registry.keys()],
  flushed: async (id) => {
    const p = registry.get(id);
    if (!p) return false;
    await p.flushed();
    return true;
  },
  screen: (id, opts) => {
    const p = registry.get(id);
    return p && p.opened ? debugScreen(p, !!opts?.attrs) : null;
  },
};

if (typeof window !== 'undefined') {
  Object.defineProperty(window, 'tmuxBridgeDebug', { value: Object.freeze(debugApi), configurable: false, enumerable: false, writable: false });
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
  /** The terminal's width provider (null: plain Unicode 11). */
  private readonly unicode: TmuxUnicode | null;
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
    const unicode = tmuxUnicode();
    this.unicode = unicode;
    if (unicode) {
      this.term.unicode.register(unicode);
      this.term.unicode.activeVersion = unicode.version;
      this.subs.push(
        this.term.parser.registerOscHandler(CLUSTER_OSC, (data) => {
          unicode.cluster(data === '' ? 0 : Number(data));
          return true;
        }),
      );
    } else {
      this.term.loadAddon(new Unicode11Addon());
      this.term.unicode.activeVersion = '11';
    }
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
    registry.set(id, this);
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

  /**
   * The screen as the serialize addon writes it, then the cursor put back
   * where it is: the addon moves it back relative to where its output
   * ended, which lands a column short when the last row it wrote is full
   * (the wrap waiting there is undone by the first CUB). A cursor waiting
   * to wrap itself is left to the addon. Its `CSI 0 C` and `CSI 0 D` (a
   * move of zero columns, which terminals take as one) are dropped: it
   * writes them for a wrapped row left blank before a wide character
   * that did not fit, and a `-` of its own then stayed on the screen.
   */
  serialized(scrollback?: number): string {
    const raw = scrollback === undefined ? this.serialize.serialize() : this.serialize.serialize({ scrollback });
    // Cell text never holds ESC: every ESC here is the addon's.
    const data = raw.replace(/\x1b\[0[CD]/g, '');
    const b = this.term.buffer.active;
    if (b.cursorX >= this.term.cols) return data;
    return `${data}\x1b[${b.cursorY + 1};${b.cursorX + 1}H`;
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
          this.unicode?.cluster(0);
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
    if (registry.get(this.id) === this) registry.delete(this.id);
  }

  get isDisposed(): boolean {
    return this.disposed;
  }
}
