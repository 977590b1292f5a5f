// The workloads of the fidelity test (fidelity.test.mjs): byte streams to
// play into a real tmux pane with `cat`. Two kinds:
//
// - fixture workloads: every byte a recorded 3.3a pane printed
//   (fixtures/tmux-cc/<name>.log), decoded from its `%output %N …` lines
//   (and `%extended-output %N age … : …`), whose octal escapes `\ooo` are
//   undone; the flood capture is zstd-compressed (`zstd -dc`) and only a
//   slice of its `ls -laR --color=always` part is played;
// - targeted workloads: short streams for each xterm.js divergence issue 13
//   lists, laid out for an 80x24 pane (the size the test pins). The DCS
//   ones use DECUDK's final (`|`), which no tmux acts on (a `q` would be a
//   sixel image to a tmux built with sixel support, as Debian's 3.7 is).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'fixtures', 'tmux-cc');

/** Undoes tmux's control-mode escaping: `\ooo` is one byte, the rest as is. */
export function unescapeOutput(buf, start, end) {
  const out = Buffer.allocUnsafe(end - start);
  let n = 0;
  for (let i = start; i < end; i++) {
    const b = buf[i];
    if (b === 0x5c && i + 3 < end && isOctal(buf[i + 1]) && isOctal(buf[i + 2]) && isOctal(buf[i + 3])) {
      out[n++] = ((buf[i + 1] - 48) << 6) | ((buf[i + 2] - 48) << 3) | (buf[i + 3] - 48);
      i += 3;
    } else {
      out[n++] = b;
    }
  }
  return out.subarray(0, n);
}

const isOctal = (b) => b >= 0x30 && b <= 0x37;

/**
 * The bytes pane `pane` printed in a control-mode log, in order. Lines
 * end with `\n` (`\r\n` in `-CC` mode: the `\r` is dropped).
 */
export function paneOutput(log, pane = '%0') {
  const plain = Buffer.from(`%output ${pane} `);
  const extended = Buffer.from(`%extended-output ${pane} `);
  const parts = [];
  let i = 0;
  while (i < log.length) {
    let end = log.indexOf(0x0a, i);
    if (end < 0) end = log.length;
    let lineEnd = end;
    if (lineEnd > i && log[lineEnd - 1] === 0x0d) lineEnd--;
    if (startsWith(log, i, plain)) {
      parts.push(unescapeOutput(log, i + plain.length, lineEnd));
    } else if (startsWith(log, i, extended)) {
      // `%extended-output %N age ... : data`
      const colon = log.indexOf(Buffer.from(' : '), i);
      if (colon >= 0 && colon < lineEnd) parts.push(unescapeOutput(log, colon + 3, lineEnd));
    }
    i = end + 1;
  }
  return Buffer.concat(parts);
}

function startsWith(buf, at, prefix) {
  if (at + prefix.length > buf.length) return false;
  for (let k = 0; k < prefix.length; k++) if (buf[at + k] !== prefix[k]) return false;
  return true;
}

/** Pane %0's bytes of the 3.3a fixture `name`. */
export function fixtureWorkload(name) {
  return paneOutput(readFileSync(join(FIXTURES, `${name}.log`)));
}

/**
 * `size` bytes of the flood capture's `ls -laR --color=always /usr` part,
 * from the start of a line some way into it (`seq`'s numbers before it are
 * plain digits, nothing a terminal can get wrong).
 */
export function floodSlice(size = 192 * 1024) {
  const log = execFileSync('zstd', ['-dc', join(FIXTURES, 'flood.log.zst')], { maxBuffer: 1 << 30 });
  const all = paneOutput(log);
  const ls = all.indexOf(Buffer.from('\x1b[0m'));
  if (ls < 0) throw new Error('flood capture: no coloured listing found');
  // A quarter of a megabyte in, at a line start.
  const from = all.indexOf(0x0a, ls + 256 * 1024) + 1;
  let to = all.indexOf(0x0a, from + size);
  to = to < 0 ? all.length : to + 1;
  // Close whatever colour a line left open, as `ls` does at its end.
  return Buffer.concat([all.subarray(from, to), Buffer.from('\x1b[0m')]);
}

const esc = '\x1b';
const csi = `${esc}[`;
const b = (...parts) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));
const row = (r, c = 1) => `${csi}${r};${c}H`;
const wide = '日本語日本語';
/** A `#` at column 40, then a new line: shows where the row's cells ended up. */
const nl = `${csi}40G#\r\n`;

/** The targeted workloads, `{ name, what, bytes }`, for an 80x24 pane. */
export function targetedWorkloads() {
  return [
    {
      name: 'cht-cbt',
      what: 'CSI I (CHT) and CSI Z (CBT), with default and custom tab stops, and at the right margin',
      bytes: b(
        'a', `${csi}I`, 'b', `${csi}2I`, 'c', `${csi}Z`, 'd', `${csi}3Z`, 'e\r\n',
        `${csi}70G`, `${csi}5I`, 'R', `${csi}10Z`, 'L\r\n',
        `${csi}3g`, `${csi}5G${esc}H${csi}13G${esc}H`, '\r', `${csi}I`, 'x', `${csi}I`, 'y', `${csi}Z`, 'z', `${csi}I`, 'q\r\n',
        `${esc}c`,
        'after RIS: ', `${csi}I`, 'tab\r\n',
      ),
    },
    {
      name: 'esc-k-title',
      what: 'ESC k … ESC \\ (tmux: window name, prints nothing), also with BEL and spanning a CR LF',
      bytes: b('before ', `${esc}kmy-title${esc}\\`, 'after\r\n', 'two ', `${esc}kline\r\nname${esc}\\`, 'still on row 2\r\n', 'bel ', `${esc}kbelname\x07`, 'visible?', `${esc}\\`, ' end\r\n'),
    },
    {
      name: 'wide-half-erase',
      what: 'EL, ECH, DCH, ICH and an overwrite at the second half of a CJK character, and at its first half',
      bytes: b(
        `${row(1)}${wide}|`, `${row(1, 4)}${csi}K`,
        `${row(2)}${wide}|`, `${row(2, 4)}${csi}X`,
        `${row(3)}${wide}|`, `${row(3, 4)}${csi}P`,
        `${row(4)}${wide}|`, `${row(4, 4)}${csi}@`,
        `${row(5)}${wide}|`, `${row(5, 4)}x`,
        `${row(6)}${wide}|`, `${row(6, 3)}${csi}1K`,
        `${row(7)}${wide}|`, `${row(7, 3)}${csi}2X`,
        `${row(8)}${wide}|`, `${row(8, 3)}${csi}3P`,
        `${row(9)}${wide}|`, `${row(9, 3)}${csi}@`,
        `${row(10)}${wide}|`, `${row(10, 3)}y`,
        `${row(11)}${wide}|`, `${row(11, 5)}${csi}1K`,
        `${row(12, 79)}日`, `${row(13, 80)}日`, '<\r\n',
      ),
    },
    {
      name: 'zwj-family',
      what: 'ZWJ emoji sequences (family, rainbow flag, skin tone), VS16, and the cursor after them',
      bytes: b('[', '👨\u200d👩\u200d👧\u200d👦', ']', nl, '[', '🏳\ufe0f\u200d🌈', ']', nl, '[', '👍🏽', ']', nl, '[', '❤\ufe0f', ']', nl, '[', '👩\u200d💻', '] tail', nl, '[', '👩\u200d💻', '] tail'),
    },
    {
      name: 'combining-many',
      what: 'more combining marks on one cell than tmux keeps, and marks at the start of a row',
      bytes: b('a', '\u0301'.repeat(3), 'b', '\u0300\u0301\u0302\u0303\u0304\u0306\u0307\u0308\u030a\u030b\u030c\u0323\u0324\u0325', 'c|', nl, '\u0301x', nl, 'e\u0301\u0302\u0303\u0304\u0305\u0306\u0307\u0308\u0309\u030a\u030b\u030c\u030d\u030e\u030f\u0310\u0311\u0312\u0313\u0314\u0315', 'end', nl),
    },
    {
      name: 'invalid-utf8',
      what: 'invalid and truncated UTF-8: stray continuation and 0xff, truncated 2/3/4-byte sequences, overlong, surrogate, past U+10FFFF',
      bytes: b('A', [0xff], 'B', [0x80], 'C', [0xc3], 'D', [0xe2, 0x82], 'E', [0xf0, 0x9f, 0x98], 'F', [0xc0, 0xaf], 'G', [0xed, 0xa0, 0x80], 'H', [0xf4, 0x90, 0x80, 0x80], 'I', [0xe2, 0x82, 0xe2, 0x82, 0xac], 'J', nl, 'wide then bad: ', [0xe6, 0x97], '日', [0xe6], nl, 'end', nl),
    },
    {
      name: 'dcs-can',
      what: 'an unfinished DCS "ended" by CAN (tmux keeps swallowing until ESC \\)',
      bytes: b('before ', `${esc}P1;1|17/61`, '\x18', 'after-can\r\n', 'line2\r\n'),
    },
    {
      name: 'dcs-sub',
      what: 'an unfinished DCS "ended" by SUB',
      bytes: b('before ', `${esc}P1$r`, '\x1a', 'after-sub\r\n', 'line2\r\n'),
    },
    {
      name: 'dcs-st',
      what: 'a DCS ended by ESC \\ and one by BEL (which does not end a DCS)',
      bytes: b('before ', `${esc}P1;1|data${esc}\\`, 'after-st\r\n', 'x ', `${esc}P1;1|zz\x07`, 'after-bel\r\n', `${esc}\\`, 'end\r\n'),
    },
    {
      name: 'tab-pending-wrap',
      what: 'TAB while the cursor waits to wrap (after 80 columns, and after a wide character in the last two)',
      bytes: b('x'.repeat(80), '\t', 'Y\r\n', 'z'.repeat(78), '日', '\t', 'W\r\n', 'q'.repeat(79), '\t', 'T\r\n', 'p'.repeat(80), `${csi}I`, 'C\r\n'),
    },
    {
      name: 'decaln',
      what: 'DECALN (ESC # 8): screen filled with E, cursor home, margins reset; then text over it',
      bytes: b(`${csi}5;10r`, `${csi}3;3H`, `${csi}41m`, `${esc}#8`, 'top', `${csi}12;40H`, `${csi}0m`, 'middle', `${csi}K`),
    },
    {
      name: 'ind-nel',
      what: 'IND (ESC D) and NEL (ESC E), inside a scroll region and at the bottom margin',
      bytes: b(
        'one', `${esc}D`, 'two', `${esc}E`, 'three\r\n',
        `${csi}10;14r`, `${csi}14;5H`, 'r14', `${esc}D`, 'ind', `${esc}E`, 'nel', `${esc}D${esc}D`, 'twice',
        `${csi}r`, `${csi}24;1H`, 'bottom', `${esc}D`, 'scrolled', `${esc}E`, 'nel-bottom',
      ),
    },
  ];
}

/** Every workload: the 3.3a fixtures, a flood slice, then the targeted ones. */
export function allWorkloads() {
  const fixtures = ['colors', 'unicode', 'altscreen', 'scroll', 'binary'].map((name) => ({
    name,
    what: `fixtures/tmux-cc/${name}.log, pane %0's output`,
    bytes: fixtureWorkload(name),
  }));
  return [...fixtures, { name: 'flood-slice', what: 'a slice of the flood capture (ls -laR --color=always)', bytes: floodSlice() }, ...targetedWorkloads()];
}
