//! tmux layout strings (`b25d,159x48,0,0{79x48,0,0,1,79x48,80,0,2}`) parsed
//! into pane rectangles in cells, the window's size, and the borders between
//! cells that a person can drag. Pure: no DOM.
//! It does not validate the checksum: the string comes from tmux via the relay.

import type { WindowInfo } from './gen/protocol';

export interface PaneRect {
  id: string;
  x: number;
  y: number;
  cols: number;
  rows: number;
  floating?: boolean;
}

/**
 * A separator between two cells of a split: `vertical` borders run top to
 * bottom at column `x` (between a left and a right cell), horizontal ones at
 * row `y`. Dragging moves the border by resizing `pane`, a pane of the cell
 * before it (left or above) that touches it.
 */
export interface Border {
  vertical: boolean;
  x: number;
  y: number;
  length: number;
  pane: string;
}

export interface Geometry {
  cols: number;
  rows: number;
  panes: PaneRect[];
  borders: Border[];
}

interface Cell {
  w: number;
  h: number;
  x: number;
  y: number;
}

interface Cursor {
  s: string;
  i: number;
}

/**
 * Parses a tmux layout string. Returns the window size, pane rectangles with
 * ids as `%N` (tiled panes first, then floating ones) and the draggable
 * borders, or null when the string is not a layout.
 */
export function parseLayout(text: unknown): Geometry | null {
  if (typeof text !== 'string') return null;
  const comma = text.indexOf(',');
  if (comma < 0) return null;
  const p: Cursor = { s: text, i: comma + 1 };
  const panes: PaneRect[] = [];
  const borders: Border[] = [];
  let root: Cell;
  try {
    root = cell(p, panes, borders, 0);
    // tmux 3.7+ appends floating panes as `<cell,cell,…>` after the tiled
    // tree (reference §5.1); they are drawn above the tiled panes.
    if (p.s[p.i] === '<') {
      p.i++;
      const floating: PaneRect[] = [];
      if (p.s[p.i] !== '>') {
        for (;;) {
          cell(p, floating, [], 0);
          if (p.s[p.i] === ',') {
            p.i++;
            continue;
          }
          break;
        }
      }
      expect(p, '>');
      for (const f of floating) panes.push({ ...f, floating: true });
    }
  } catch {
    return null;
  }
  if (p.i !== p.s.length) return null;
  return { cols: root.w, rows: root.h, panes, borders };
}

/** A signed offset: tmux 3.7 prints X and Y with `%d`. */
function signed(p: Cursor): number {
  if (p.s[p.i] === '-') {
    p.i++;
    return -num(p);
  }
  return num(p);
}

function num(p: Cursor): number {
  const start = p.i;
  while (p.i < p.s.length) {
    const c = p.s.charCodeAt(p.i);
    if (c < 48 || c > 57) break;
    p.i++;
  }
  if (p.i === start || p.i - start > 9) throw new Error('number');
  return Number(p.s.slice(start, p.i));
}

function expect(p: Cursor, ch: string): void {
  if (p.s[p.i] !== ch) throw new Error(`expected ${ch}`);
  p.i++;
}

function cell(p: Cursor, panes: PaneRect[], borders: Border[], depth: number): Cell {
  if (depth > 64) throw new Error('too deep');
  const w = num(p);
  expect(p, 'x');
  const h = num(p);
  expect(p, ',');
  const x = signed(p);
  expect(p, ',');
  const y = signed(p);
  const open = p.s[p.i];
  if (open === '{' || open === '[') {
    const vertical = open === '{';
    const close = vertical ? '}' : ']';
    p.i++;
    let prev: { cell: Cell; first: number } | null = null;
    for (;;) {
      const first = panes.length;
      const child = cell(p, panes, borders, depth + 1);
      if (prev) addBorder(borders, panes, prev.cell, prev.first, first, vertical, { w, h, x, y });
      prev = { cell: child, first };
      if (p.s[p.i] === ',') {
        p.i++;
        continue;
      }
      expect(p, close);
      break;
    }
  } else {
    expect(p, ',');
    const id = num(p);
    panes.push({ id: `%${id}`, x, y, cols: w, rows: h });
  }
  return { w, h, x, y };
}

/** The border after cell `before` (whose panes are `panes[from..to)`) in a split `parent`. */
function addBorder(borders: Border[], panes: PaneRect[], before: Cell, from: number, to: number, vertical: boolean, parent: Cell): void {
  const inside = panes.slice(from, to);
  const touching = vertical
    ? inside.find((q) => q.x + q.cols === before.x + before.w)
    : inside.find((q) => q.y + q.rows === before.y + before.h);
  const pane = touching ?? inside[inside.length - 1];
  if (!pane) return;
  if (vertical) borders.push({ vertical, x: before.x + before.w, y: parent.y, length: parent.h, pane: pane.id });
  else borders.push({ vertical, x: parent.x, y: before.y + before.h, length: parent.w, pane: pane.id });
}

/**
 * The rectangles to show for one topology window: the visible layout (which
 * accounts for a zoomed pane) when it parses, else the panes' own x/y/cols/rows.
 */
export function windowGeometry(win: Pick<WindowInfo, 'layout' | 'visible_layout'> & { panes?: WindowInfo['panes'] }): Geometry {
  const parsed = parseLayout(win.visible_layout) || parseLayout(win.layout);
  const panes = Array.isArray(win.panes) ? win.panes : [];
  if (parsed && parsed.panes.length > 0) return parsed;
  let cols = 0;
  let rows = 0;
  const rects: PaneRect[] = [];
  for (const pane of panes) {
    const r = {
      id: String(pane.id),
      x: int(pane.x),
      y: int(pane.y),
      cols: Math.max(1, int(pane.cols)),
      rows: Math.max(1, int(pane.rows)),
    };
    cols = Math.max(cols, r.x + r.cols);
    rows = Math.max(rows, r.y + r.rows);
    rects.push(r);
  }
  return { cols: Math.max(cols, 1), rows: Math.max(rows, 1), panes: rects, borders: [] };
}

function int(v: unknown): number {
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? Math.min(Math.floor(n), 10000) : 0;
}
