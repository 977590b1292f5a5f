//! What the page keeps across reloads: `tb:last_seq:<session>` in
//! localStorage, the sequence the tab resumes from, and in IndexedDB the
//! serialized screens plus topology at that seq, so a reload redraws at once
//! and asks only for what came after (the localStorage key is written after
//! the screens are stored, so it never points past them); the person's
//! preferences (font size, screen-reader mode, the tab they chose per
//! session; "fit tmux to this window" per browser tab in sessionStorage).
//! It does not decide when to save; the session view does.

import type { Topology } from './gen/protocol';

const DB_NAME = 'tmux-bridge';
const STORE = 'screens';
/** Upper bound for one session's saved state (characters of serialized screens). */
export const MAX_SAVED_CHARS = 8 * 1024 * 1024;

export function lastSeqKey(sessionId: string): string {
  return `tb:last_seq:${sessionId}`;
}

/** The seq this tab resumes from (0: none). */
export function readLastSeq(sessionId: string): number {
  try {
    const v = Number(localStorage.getItem(lastSeqKey(sessionId)));
    return Number.isSafeInteger(v) && v > 0 ? v : 0;
  } catch {
    return 0;
  }
}

export function writeLastSeq(sessionId: string, seq: number): void {
  try {
    localStorage.setItem(lastSeqKey(sessionId), String(seq));
  } catch {
    // Storage full or disabled: the next load starts from a snapshot.
  }
}

let dbPromise: Promise<IDBDatabase> | null = null;

function openDb(): Promise<IDBDatabase> {
  if (!dbPromise) {
    dbPromise = new Promise<IDBDatabase>((resolve, reject) => {
      if (typeof indexedDB === 'undefined') {
        reject(new Error('no IndexedDB'));
        return;
      }
      const req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    }).catch((e) => {
      dbPromise = null;
      throw e;
    });
  }
  return dbPromise;
}

function tx<T>(mode: IDBTransactionMode, fn: (st: IDBObjectStore) => IDBRequest<T> | null): Promise<T | undefined> {
  return openDb().then(
    (db) =>
      new Promise<T | undefined>((resolve, reject) => {
        const t = db.transaction(STORE, mode);
        const req = fn(t.objectStore(STORE));
        t.oncomplete = () => resolve(req ? req.result : undefined);
        t.onerror = () => reject(t.error);
        t.onabort = () => reject(t.error);
      }),
  );
}

/** One pane's saved screen. */
export interface SavedPane {
  cols: number;
  rows: number;
  data: string;
}

/** Saved state of one session. */
export interface SavedState {
  seq: number;
  /** The numbering epoch `seq` belongs to (`welcome.epoch`). */
  epoch?: string;
  topology: Topology;
  panes: Record<string, SavedPane>;
}

/**
 * Saved state: `{v: 1, seq, topology, panes: {"%N": {cols, rows, data}}}`.
 * Returns null when nothing usable is stored.
 */
export async function loadState(sessionId: string): Promise<SavedState | null> {
  try {
    const s = (await tx<(SavedState & { v?: number }) | undefined>('readonly', (st) => st.get(sessionId))) ?? null;
    if (!s || s.v !== 1 || !Number.isSafeInteger(s.seq) || s.seq <= 0 || !s.topology || !s.panes) return null;
    return s;
  } catch {
    return null;
  }
}

export async function saveState(sessionId: string, state: SavedState): Promise<boolean> {
  try {
    await tx('readwrite', (st) => st.put({ v: 1, ...state }, sessionId));
    return true;
  } catch {
    return false;
  }
}

export async function dropState(sessionId: string): Promise<void> {
  try {
    await tx('readwrite', (st) => st.delete(sessionId));
  } catch {
    // Nothing to drop.
  }
}

// ----- preferences ------------------------------------------------------

export const MIN_FONT = 6;
export const MAX_FONT = 32;

/** The person's settings (localStorage `tb:prefs`). */
export interface Prefs {
  /** Font size in CSS pixels the page renders at when tmux's size fits. */
  fontSize: number;
  /** xterm.js's screen-reader mode. */
  screenReader: boolean;
  /** Ctrl+V pastes (else it is sent to the pane as ^V). */
  ctrlVPastes: boolean;
}

export function defaultFontSize(): number {
  // Phones get a smaller default so 80 columns come closer to fitting.
  return typeof window !== 'undefined' && window.matchMedia?.('(max-width: 600px)').matches ? 12 : 14;
}

export function loadPrefs(): Prefs {
  const d: Prefs = { fontSize: defaultFontSize(), screenReader: false, ctrlVPastes: true };
  try {
    const raw: unknown = JSON.parse(localStorage.getItem('tb:prefs') || '{}');
    if (!raw || typeof raw !== 'object') return d;
    const r = raw as Partial<Record<keyof Prefs, unknown>>;
    return {
      fontSize: typeof r.fontSize === 'number' && r.fontSize >= MIN_FONT && r.fontSize <= MAX_FONT ? r.fontSize : d.fontSize,
      screenReader: typeof r.screenReader === 'boolean' ? r.screenReader : d.screenReader,
      ctrlVPastes: typeof r.ctrlVPastes === 'boolean' ? r.ctrlVPastes : d.ctrlVPastes,
    };
  } catch {
    return d;
  }
}

export function savePrefs(p: Prefs): void {
  try {
    localStorage.setItem('tb:prefs', JSON.stringify(p));
  } catch {
    // Storage disabled: settings last for this page only.
  }
}

/** The window (tab) the person chose for a session, remembered across reloads. */
export function readChosenWindow(sessionId: string): string | null {
  try {
    return localStorage.getItem(`tb:window:${sessionId}`);
  } catch {
    return null;
  }
}

export function writeChosenWindow(sessionId: string, windowId: string): void {
  try {
    localStorage.setItem(`tb:window:${sessionId}`, windowId);
  } catch {
    // Not remembered.
  }
}

/** Whether this browser tab asks tmux to fit it (per tab: sessionStorage). */
export function readFit(sessionId: string): boolean {
  try {
    return sessionStorage.getItem(`tb:fit:${sessionId}`) !== 'keep';
  } catch {
    return true;
  }
}

export function writeFit(sessionId: string, fit: boolean): void {
  try {
    sessionStorage.setItem(`tb:fit:${sessionId}`, fit ? 'fit' : 'keep');
  } catch {
    // Not remembered.
  }
}
