//! Pane output is hostile (shared/reference/security-notes.md). This module
//! owns the page's defences: which terminal data counts as the user's typing,
//! how links open, and what OSC 52 may do. It does no networking.
//!
//! Why the input filter works this way: xterm.js answers queries in the
//! output (DA, DSR, OSC 10/11 colours, DECRQM, window reports…) through
//! `onData`, the same event as keystrokes, and tmux has already answered
//! them, so such replies must never reach the pane. Rather than listing
//! every query xterm.js may answer (a deny-list that misses the next one),
//! the page accepts terminal data only while a trusted user event (a key,
//! paste, mouse or composition event) is being dispatched: xterm.js emits
//! keystrokes synchronously inside those handlers, while it parses output
//! later in its own timer, where no user event is current, so every
//! automatic reply is dropped whatever query produced it. The one place
//! xterm.js emits user text outside the event is the end of an IME
//! composition (a zero-delay timer after `compositionend`); that is let
//! through only within 100 ms of a composition event and only if it holds no
//! ESC or other control character, which no reply lacks.

const USER_EVENTS = new Set([
  'keydown', 'keypress', 'keyup', 'beforeinput', 'input', 'paste', 'drop',
  'compositionstart', 'compositionupdate', 'compositionend',
  'mousedown', 'mouseup', 'mousemove', 'wheel', 'click', 'dblclick', 'auxclick', 'contextmenu',
  'pointerdown', 'pointerup', 'pointermove', 'touchstart', 'touchmove', 'touchend',
]);
const COMPOSITION_GRACE_MS = 100;
let lastComposition = -Infinity;

/** Call once: remembers when the user last composed text (IME). */
export function watchComposition(doc: Document): void {
  for (const type of ['compositionend', 'compositionupdate', 'input']) {
    doc.addEventListener(type, (e) => {
      const ev = e as InputEvent;
      if (ev.isTrusted && (type !== 'input' || ev.isComposing || ev.inputType === 'insertCompositionText')) {
        lastComposition = performance.now();
      }
    }, true);
  }
}

/**
 * The user event being dispatched right now, or null. `window.event` is the
 * DOM's "current event": set only while a listener runs.
 */
function currentUserEvent(): Event | null {
  const ev = typeof window !== 'undefined' ? (window as { event?: Event }).event : undefined;
  if (ev && ev.isTrusted && USER_EVENTS.has(ev.type)) return ev;
  return null;
}

/**
 * Decides whether data from xterm.js's `onData`/`onBinary` is the user's.
 * Returns the data to send (paste sanitised), or null to drop it.
 */
export function acceptTerminalData(data: string): string | null {
  const ev = currentUserEvent();
  if (ev) return ev.type === 'paste' || ev.type === 'drop' ? sanitizePaste(data) : data;
  if (performance.now() - lastComposition < COMPOSITION_GRACE_MS && !/[\x00-\x1f\x7f-\x9f]/.test(data)) {
    return data;
  }
  return null;
}

/**
 * A paste must not end bracketed paste early: strip any `ESC[201~` that the
 * pasted text carries inside xterm.js's own `ESC[200~ … ESC[201~` wrapper.
 */
export function sanitizePaste(data: string): string {
  const start = '\x1b[200~';
  const end = '\x1b[201~';
  if (data.startsWith(start) && data.endsWith(end)) {
    const inner = data.slice(start.length, data.length - end.length).split(end).join('').split(start).join('');
    return start + inner + end;
  }
  return data;
}

/** http(s) only; returns the normalised URL or null. */
export function safeLinkTarget(uri: string): string | null {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return null;
  }
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
}

/** Opens a link from pane output after showing the target and asking. */
export function openLink(uri: string, notify: (text: string) => void): boolean {
  const target = safeLinkTarget(uri);
  if (!target) {
    notify(`Blocked a link that is not http(s): ${String(uri).slice(0, 200)}`);
    return false;
  }
  // The target is shown in full: a pane can make link text say anything.
  if (!window.confirm(`Open this link from the terminal?\n\n${target}`)) return false;
  const w = window.open(target, '_blank', 'noopener,noreferrer');
  if (w) w.opener = null;
  return true;
}

/**
 * Parses an OSC 52 body (`c;BASE64` or `c;?`). Returns `{read: true}` for a
 * clipboard read, `{text}` for a write, or null when malformed.
 */
export function parseOsc52(body: string): { read: true } | { read?: false; text: string } | null {
  const semi = body.indexOf(';');
  if (semi < 0) return null;
  const payload = body.slice(semi + 1);
  if (payload === '?') return { read: true as const };
  if (payload.length > 1024 * 1024) return null;
  try {
    const bin = atob(payload);
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    return { text: new TextDecoder().decode(bytes) };
  } catch {
    return null;
  }
}
