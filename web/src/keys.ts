//! Keys: which key presses are the page's own (copy, paste, find, help, font
//! size) and the tmux key name of every other key press, so the page sends
//! keys rather than bytes and tmux runs them through its key tables like a
//! terminal client's (the prefix and every binding work). Pure: it reads
//! only the fields of the event it is given.

/** The fields of a KeyboardEvent this module reads. */
export interface KeyLike {
  key: string;
  code: string;
  ctrlKey: boolean;
  altKey: boolean;
  shiftKey: boolean;
  metaKey: boolean;
  isComposing?: boolean;
}

export type PageAction = 'copy' | 'paste' | 'find' | 'help' | 'font-bigger' | 'font-smaller' | 'font-reset' | 'menu';

export interface KeyContext {
  /** macOS or iOS: Cmd+C and Cmd+V copy and paste. */
  mac: boolean;
  /** The focused terminal has a selection. */
  hasSelection: boolean;
  /** Ctrl+V pastes (else it goes to the pane as ^V). */
  ctrlVPastes: boolean;
}

/** The page keys, for the `?` overlay: [keys, what they do]. */
export function pageKeyList(mac: boolean): Array<[string, string]> {
  const mod = mac ? 'Cmd' : 'Ctrl+Shift';
  return [
    [`${mod}+C${mac ? '' : ', Ctrl+Insert, Ctrl+C with a selection'}`, 'copy the selection'],
    [`${mod}+V${mac ? '' : ', Shift+Insert, Ctrl+V'}`, 'paste'],
    ['Ctrl+Shift+F', 'find in the terminal'],
    ['Ctrl+Shift+= / Ctrl+Shift+- / Ctrl+Shift+0', 'font bigger, smaller, default'],
    ['Ctrl+Shift+/ (Ctrl+?)', 'this list'],
    ['right click', 'the menu: copy, paste, split, new window, zoom, close pane'],
    ['your tmux prefix (e.g. Ctrl+B) and bindings', 'go to tmux as from a terminal'],
    ['drag a border between panes', 'resize the panes in tmux'],
    ['click a pane', 'select it in tmux'],
    ['mouse wheel', 'scroll the history (or the program, if it uses the mouse)'],
  ];
}

/** The page action a key press asks for, or null when it belongs to the terminal. */
export function pageAction(ev: KeyLike, ctx: KeyContext): PageAction | null {
  const k = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
  const ctrlShift = ev.ctrlKey && ev.shiftKey && !ev.altKey && !ev.metaKey;
  const cmd = ctx.mac && ev.metaKey && !ev.ctrlKey && !ev.altKey;
  if ((ctrlShift && ev.code === 'KeyC') || (cmd && ev.code === 'KeyC')) return 'copy';
  if ((ctrlShift && ev.code === 'KeyV') || (cmd && ev.code === 'KeyV')) return 'paste';
  if (ev.ctrlKey && !ev.shiftKey && !ev.altKey && !ev.metaKey && k === 'Insert') return 'copy';
  if (ev.shiftKey && !ev.ctrlKey && !ev.altKey && !ev.metaKey && k === 'Insert') return 'paste';
  const plainCtrl = ev.ctrlKey && !ev.shiftKey && !ev.altKey && !ev.metaKey;
  if (plainCtrl && ev.code === 'KeyC' && ctx.hasSelection) return 'copy';
  if (plainCtrl && ev.code === 'KeyV' && ctx.ctrlVPastes) return 'paste';
  if (ctrlShift && ev.code === 'KeyF') return 'find';
  if (ev.ctrlKey && !ev.altKey && !ev.metaKey && (ev.code === 'Slash' || k === '?')) return 'help';
  if (ctrlShift && (ev.code === 'Equal' || ev.code === 'NumpadAdd')) return 'font-bigger';
  if (ctrlShift && (ev.code === 'Minus' || ev.code === 'NumpadSubtract')) return 'font-smaller';
  if (ctrlShift && (ev.code === 'Digit0' || ev.code === 'Numpad0')) return 'font-reset';
  if (k === 'ContextMenu' && !ev.ctrlKey && !ev.altKey && !ev.metaKey) return 'menu';
  return null;
}

const NAMED: Record<string, string> = {
  Enter: 'Enter',
  Tab: 'Tab',
  Backspace: 'BSpace',
  Escape: 'Escape',
  Delete: 'DC',
  Insert: 'IC',
  Home: 'Home',
  End: 'End',
  PageUp: 'PPage',
  PageDown: 'NPage',
  ArrowUp: 'Up',
  ArrowDown: 'Down',
  ArrowLeft: 'Left',
  ArrowRight: 'Right',
};

/**
 * The tmux key name (as `send-keys` and `bind-key` spell it) of a key
 * press, or null when the key press is not a key for tmux (a lone modifier,
 * a dead key, IME composition, Cmd combinations): xterm.js then handles it
 * (composition text reaches the pane as input).
 */
export function tmuxKeyName(ev: KeyLike): string | null {
  if (ev.isComposing || ev.key === 'Dead' || ev.key === 'Process' || ev.key === 'Unidentified') return null;
  if (ev.metaKey) return null;
  let base: string | undefined;
  let shiftInName = true;
  if (ev.key === ' ' || ev.code === 'Space') base = 'Space';
  else if (ev.key in NAMED) base = NAMED[ev.key];
  else if (/^F([1-9]|1[0-2])$/.test(ev.key)) base = ev.key;
  else if ([...ev.key].length === 1) {
    // A character: Shift is already in it ('A', '?'); Ctrl takes the
    // lower-case letter as tmux names it (C-a), not C-A.
    base = ev.key;
    shiftInName = false;
    if (ev.ctrlKey && /^[A-Z]$/.test(base)) base = base.toLowerCase();
  } else return null;
  if (base === undefined) return null;
  if (base === 'Tab' && ev.shiftKey && !ev.ctrlKey && !ev.altKey) return 'BTab';
  // AltGr (Ctrl+Alt on some layouts) typing a character: the character itself.
  if (!shiftInName && ev.ctrlKey && ev.altKey && !/^[a-z]$/i.test(base)) return base;
  let mods = '';
  if (ev.ctrlKey) mods += 'C-';
  if (ev.altKey) mods += 'M-';
  if (ev.shiftKey && shiftInName) mods += 'S-';
  return mods + base;
}

/** The tmux key name for a key of the phone key bar with its sticky modifiers. */
export function barKeyName(base: string, ctrl: boolean, alt: boolean): string {
  let b = base;
  if (ctrl && /^[A-Z]$/.test(b)) b = b.toLowerCase();
  return `${ctrl ? 'C-' : ''}${alt ? 'M-' : ''}${b}`;
}
