//! tmux layout strings (`b25d,159x48,0,0{79x48,0,0,1,79x48,80,0,2}`) parsed
//! into pane rectangles in cells, and the window's size. Pure: no DOM.
//! It does not validate the checksum: the string comes from tmux via the relay.

/**
 * Parses a tmux layout string. Returns `{cols, rows, panes: [{id, x, y, cols, rows, floating?}]}`
 * with pane ids as `%N` (tiled panes first, then floating ones), or null when
 * the string is not a layout.
 */
export function parseLayout(text) {
  if (typeof text !== 'string') return null;
  const comma = text.indexOf(',');
  if (comma < 0) return null;
  const p = { s: text, i: comma + 1 };
  const panes = [];
  let root;
  try {
    root = cell(p, panes, 0);
    // tmux 3.7+ appends floating panes as `<cell,cell,…>` after the tiled
    // tree (reference §5.1); they are drawn above the tiled panes.
    if (p.s[p.i] === '<') {
      p.i++;
      const floating = [];
      if (p.s[p.i] !== '>') {
        for (;;) {
          cell(p, floating, 0);
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
  return { cols: root.w, rows: root.h, panes };
}

/** A signed offset: tmux 3.7 prints X and Y with `%d`. */
function signed(p) {
  if (p.s[p.i] === '-') {
    p.i++;
    return -num(p);
  }
  return num(p);
}

function num(p) {
  const start = p.i;
  while (p.i < p.s.length && p.s[p.i] >= '0' && p.s[p.i] <= '9') p.i++;
  if (p.i === start || p.i - start > 9) throw new Error('number');
  return Number(p.s.slice(start, p.i));
}

function expect(p, ch) {
  if (p.s[p.i] !== ch) throw new Error(`expected ${ch}`);
  p.i++;
}

function cell(p, panes, depth) {
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
    const close = open === '{' ? '}' : ']';
    p.i++;
    for (;;) {
      cell(p, panes, depth + 1);
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
  return { w, h };
}

/**
 * The rectangles to show for one topology window: the visible layout (which
 * accounts for a zoomed pane) when it parses, else the panes' own x/y/cols/rows.
 */
export function windowGeometry(win) {
  const parsed = parseLayout(win.visible_layout) || parseLayout(win.layout);
  const panes = Array.isArray(win.panes) ? win.panes : [];
  if (parsed && parsed.panes.length > 0) return parsed;
  let cols = 0;
  let rows = 0;
  const rects = [];
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
  return { cols: Math.max(cols, 1), rows: Math.max(rows, 1), panes: rects };
}

function int(v) {
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? Math.min(Math.floor(n), 10000) : 0;
}
