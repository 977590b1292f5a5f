// Screens compared by the fidelity test: what tmux shows of a pane
// (`capture-pane`, `display -p`) against what the page's xterm.js holds
// (`window.tmuxBridgeDebug.screen`, web/src/pane.ts), in one shape:
//
//   { lines: string[], cursor: {x, y}, alternate: bool, attrs: runs[][] }
//
// - lines: each visible row, trailing blanks trimmed (a TAB that tmux
//   3.7+'s capture keeps matches one or more spaces, see `sameRow`).
//   tmux's come from
//   `capture-pane -p -e -N` with the SGR codes removed, so that a cell drawn
//   with the DEC line-drawing set (tmux keeps `q` and the charset flag,
//   shown by SO/SI in `-e` output; xterm.js keeps `─`) reads the way a
//   terminal draws it; they are checked against plain `capture-pane -p -N`
//   (the same rows once those cells are mapped back).
// - cursor: tmux's `#{cursor_x} #{cursor_y}` and xterm.js's
//   `buffer.active.cursorX/Y`. Both keep x == width while a wrap is pending
//   (after the last column was printed, before the next character), so
//   they are compared as they are: equal or not.
// - attrs: each row as runs of `[attributes, text]` (see `DebugScreen` in
//   web/src/pane.ts for the canonical attribute string); tmux's parsed from
//   `capture-pane -p -e -N` with its SGR state carried across rows as tmux
//   writes it. Underline styles (4:2..4:5, 21) all count as underline (the
//   public xterm.js API does not expose the style); 38;5;N and 30-37/90-97
//   are the same palette colours; underline colours (58) are not compared.
//   Trailing blanks with default attributes are trimmed on both sides.

/** DEC Special Graphics, as xterm.js maps `ESC ( 0` (and tmux draws through acsc). */
export const DEC_GRAPHICS = {
  '`': '\u25c6', a: '\u2592', b: '\u2409', c: '\u240c', d: '\u240d', e: '\u240a', f: '\u00b0', g: '\u00b1',
  h: '\u2424', i: '\u240b', j: '\u2518', k: '\u2510', l: '\u250c', m: '\u2514', n: '\u253c', o: '\u23ba',
  p: '\u23bb', q: '\u2500', r: '\u23bc', s: '\u23bd', t: '\u251c', u: '\u2524', v: '\u2534', w: '\u252c',
  x: '\u2502', y: '\u2264', z: '\u2265', '{': '\u03c0', '|': '\u2260', '}': '\u00a3', '~': '\u00b7',
};

function blankPen() {
  return { bold: false, dim: false, italic: false, under: false, blink: false, inverse: false, invisible: false, strike: false, over: false, fg: null, bg: null };
}

/** The canonical attribute string (same order as web/src/pane.ts `cellAttrs`). */
export function penKey(p) {
  const out = [];
  if (p.bold) out.push('1');
  if (p.dim) out.push('2');
  if (p.italic) out.push('3');
  if (p.under) out.push('4');
  if (p.blink) out.push('5');
  if (p.inverse) out.push('7');
  if (p.invisible) out.push('8');
  if (p.strike) out.push('9');
  if (p.over) out.push('53');
  if (p.fg) out.push(`fg=${p.fg}`);
  if (p.bg) out.push(`bg=${p.bg}`);
  return out.join(';');
}

const hex = (r, g, b) => `#${[r, g, b].map((v) => (Number(v) & 255).toString(16).padStart(2, '0')).join('')}`;

/** Applies one SGR parameter string (`1;31`, `38;2;1;2;3`, `4:3`) to `p`. */
export function applySgr(p, params) {
  const list = params === '' ? ['0'] : params.split(';');
  for (let i = 0; i < list.length; i++) {
    const sub = list[i].split(':');
    const code = Number(sub[0] || 0);
    // 38/48/58: a colour, in colon or semicolon form.
    if (code === 38 || code === 48 || code === 58) {
      let colour = null;
      if (sub.length > 1) {
        if (sub[1] === '5') colour = `p${Number(sub[2])}`;
        else if (sub[1] === '2') colour = hex(...sub.slice(-3));
      } else if (list[i + 1] === '5') {
        colour = `p${Number(list[i + 2])}`;
        i += 2;
      } else if (list[i + 1] === '2') {
        colour = hex(list[i + 2], list[i + 3], list[i + 4]);
        i += 4;
      }
      if (code === 38) p.fg = colour;
      else if (code === 48) p.bg = colour;
      continue;
    }
    if (code === 0) Object.assign(p, blankPen());
    else if (code === 1) p.bold = true;
    else if (code === 2) p.dim = true;
    else if (code === 3) p.italic = true;
    else if (code === 4) p.under = sub.length > 1 ? Number(sub[1]) !== 0 : true;
    else if (code === 5 || code === 6) p.blink = true;
    else if (code === 7) p.inverse = true;
    else if (code === 8) p.invisible = true;
    else if (code === 9) p.strike = true;
    else if (code === 21) p.under = true;
    else if (code === 22) p.bold = p.dim = false;
    else if (code === 23) p.italic = false;
    else if (code === 24) p.under = false;
    else if (code === 25) p.blink = false;
    else if (code === 27) p.inverse = false;
    else if (code === 28) p.invisible = false;
    else if (code === 29) p.strike = false;
    else if (code === 53) p.over = true;
    else if (code === 55) p.over = false;
    else if (code >= 30 && code <= 37) p.fg = `p${code - 30}`;
    else if (code === 39) p.fg = null;
    else if (code >= 40 && code <= 47) p.bg = `p${code - 40}`;
    else if (code === 49) p.bg = null;
    else if (code >= 90 && code <= 97) p.fg = `p${code - 82}`;
    else if (code >= 100 && code <= 107) p.bg = `p${code - 92}`;
  }
}

/** Drops trailing spaces of default attributes (and runs left empty). */
export function trimRuns(runs) {
  const out = runs.map(([k, t]) => [k, t]);
  while (out.length) {
    const last = out[out.length - 1];
    if (last[0] !== '') break;
    last[1] = last[1].replace(/ +$/, '');
    if (last[1] !== '') break;
    out.pop();
  }
  return out;
}

function pushRun(runs, key, text) {
  const last = runs[runs.length - 1];
  if (last && last[0] === key) last[1] += text;
  else runs.push([key, text]);
}

/**
 * Parses `capture-pane -p -e -N` output: per row, the runs and the text
 * as drawn (line-drawing cells mapped), plus the raw text (as plain
 * `capture-pane -p` prints it).
 */
export function parseCapture(ansi, rows) {
  const lines = ansi.split('\n').slice(0, rows);
  while (lines.length < rows) lines.push('');
  const pen = blankPen();
  let acs = false;
  return lines.map((line) => {
    const runs = [];
    let drawn = '';
    let raw = '';
    const chars = [...line];
    for (let i = 0; i < chars.length; i++) {
      const ch = chars[i];
      if (ch === '\x1b' && chars[i + 1] === '[') {
        let j = i + 2;
        while (j < chars.length && /[0-9;:]/.test(chars[j])) j++;
        if (chars[j] === 'm') applySgr(pen, chars.slice(i + 2, j).join(''));
        i = j;
        continue;
      }
      if (ch === '\x0e') {
        acs = true;
        continue;
      }
      if (ch === '\x0f') {
        acs = false;
        continue;
      }
      const shown = acs && DEC_GRAPHICS[ch] ? DEC_GRAPHICS[ch] : ch;
      raw += ch;
      drawn += shown;
      pushRun(runs, penKey(pen), shown);
    }
    return { runs: trimRuns(runs), drawn: drawn.replace(/ +$/, ''), raw: raw.replace(/ +$/, '') };
  });
}

/** What tmux shows of `pane`: `tmux(...args)` runs a tmux command and returns its stdout. */
export function tmuxScreen(tmux, pane) {
  const info = tmux('display-message', '-p', '-t', pane, '#{cursor_x} #{cursor_y} #{pane_width} #{pane_height} #{alternate_on}').trim().split(' ').map(Number);
  const [x, y, cols, rows, alt] = info;
  const plain = tmux('capture-pane', '-p', '-N', '-t', pane).split('\n').slice(0, rows);
  while (plain.length < rows) plain.push('');
  const parsed = parseCapture(tmux('capture-pane', '-p', '-e', '-N', '-t', pane), rows);
  // The -e rows without codes are the plain rows (a check of the parser).
  const parserMismatch = parsed.findIndex((r, i) => r.raw !== plain[i].replace(/ +$/, ''));
  return {
    cols,
    rows,
    alternate: alt === 1,
    cursor: { x, y },
    lines: parsed.map((r) => r.drawn),
    attrs: parsed.map((r) => r.runs),
    parserMismatch: parserMismatch < 0 ? null : { row: parserMismatch, plain: plain[parserMismatch], parsed: parsed[parserMismatch].raw },
  };
}

/** The page's screen of `pane` (after its queued writes are parsed). */
export async function pageScreen(page, pane) {
  return page.evaluate(async (id) => {
    const dbg = window.tmuxBridgeDebug;
    if (!dbg || !(await dbg.flushed(id))) return null;
    return dbg.screen(id, { attrs: true });
  }, pane);
}

/**
 * Whether the page's row shows tmux's: equal, or, where tmux 3.7+'s
 * capture keeps a TAB for a tab cell (it has no flag to expand them, and
 * the stops may be custom), one or more spaces there.
 */
export function sameRow(tmuxRow, pageRow) {
  if (tmuxRow === pageRow) return true;
  if (!tmuxRow.includes('\t')) return false;
  const pattern = tmuxRow.split('\t').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join(' +');
  return new RegExp(`^${pattern}$`, 'u').test(pageRow);
}

const show = (s) => JSON.stringify(s);
const showRuns = (runs) => runs.map(([k, t]) => `{${k}}${t}`).join('');

/**
 * Compares two screens; returns `{ ok, text, attrs, cursor, report }`:
 * whether rows, cursor and attributes match, and a per-row diff to print.
 */
export function compareScreens(want, got) {
  const out = [];
  if (!got) return { ok: false, text: false, attrs: false, cursor: false, report: 'the page has no such pane' };
  if (want.cols !== got.cols || want.rows !== got.rows) out.push(`size: tmux ${want.cols}x${want.rows}, page ${got.cols}x${got.rows}`);
  if (want.alternate !== got.alternate) out.push(`alternate screen: tmux ${want.alternate}, page ${got.alternate}`);
  const rows = Math.max(want.lines.length, got.lines.length);
  let text = true;
  for (let r = 0; r < rows; r++) {
    const a = (want.lines[r] ?? '').replace(/ +$/, '');
    const b = (got.lines[r] ?? '').replace(/ +$/, '');
    if (!sameRow(a, b)) {
      text = false;
      out.push(`row ${String(r).padStart(2)} tmux: ${show(a)}`);
      out.push(`       page: ${show(b)}`);
    }
  }
  const cursor = want.cursor.x === got.cursor.x && want.cursor.y === got.cursor.y;
  if (!cursor) out.push(`cursor: tmux (${want.cursor.x},${want.cursor.y}), page (${got.cursor.x},${got.cursor.y})`);
  let attrs = true;
  const attrRows = [];
  for (let r = 0; r < rows; r++) {
    const a = showRuns(trimRuns(want.attrs[r] ?? []));
    const b = showRuns(trimRuns(got.attrs?.[r] ?? []));
    if (!sameRow(a, b)) {
      attrs = false;
      // Rows whose text differs are listed above; their attributes only
      // when the text is the same.
      const ta = (want.lines[r] ?? '').replace(/ +$/, '');
      const tb = (got.lines[r] ?? '').replace(/ +$/, '');
      if (sameRow(ta, tb)) {
        attrRows.push(`attrs row ${String(r).padStart(2)} tmux: ${show(a)}`);
        attrRows.push(`             page: ${show(b)}`);
      }
    }
  }
  out.push(...attrRows);
  const ok = text && cursor && attrs && want.cols === got.cols && want.rows === got.rows && want.alternate === got.alternate;
  return { ok, text, attrs, cursor, report: out.join('\n') };
}
