//! What a tab keeps across reloads: `tb:last_seq:<session>` in localStorage,
//! the sequence the tab resumes from, and in IndexedDB the serialized screens
//! plus topology at that seq, so a reload redraws at once and asks only for
//! what came after. The localStorage key is written after the screens are
//! stored, so it never points past them. It does not decide when to save;
//! session.js does.

const DB_NAME = 'tmux-bridge';
const STORE = 'screens';
/** Upper bound for one session's saved state (characters of serialized screens). */
export const MAX_SAVED_CHARS = 8 * 1024 * 1024;

export function lastSeqKey(sessionId) {
  return `tb:last_seq:${sessionId}`;
}

/** The seq this tab resumes from (0: none). */
export function readLastSeq(sessionId) {
  try {
    const v = Number(localStorage.getItem(lastSeqKey(sessionId)));
    return Number.isSafeInteger(v) && v > 0 ? v : 0;
  } catch {
    return 0;
  }
}

export function writeLastSeq(sessionId, seq) {
  try {
    localStorage.setItem(lastSeqKey(sessionId), String(seq));
  } catch {
    // Storage full or disabled: the next load starts from a snapshot.
  }
}

let dbPromise = null;

function openDb() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve, reject) => {
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

function tx(mode, fn) {
  return openDb().then(
    (db) =>
      new Promise((resolve, reject) => {
        const t = db.transaction(STORE, mode);
        const req = fn(t.objectStore(STORE));
        t.oncomplete = () => resolve(req && req.result);
        t.onerror = () => reject(t.error);
        t.onabort = () => reject(t.error);
      }),
  );
}

/**
 * Saved state: `{v: 1, seq, topology, panes: {"%N": {cols, rows, data}}}`.
 * Returns null when nothing usable is stored.
 */
export async function loadState(sessionId) {
  try {
    const s = await tx('readonly', (st) => st.get(sessionId));
    if (!s || s.v !== 1 || !Number.isSafeInteger(s.seq) || s.seq <= 0 || !s.topology || !s.panes) return null;
    return s;
  } catch {
    return null;
  }
}

export async function saveState(sessionId, state) {
  try {
    await tx('readwrite', (st) => st.put({ v: 1, ...state }, sessionId));
    return true;
  } catch {
    return false;
  }
}

export async function dropState(sessionId) {
  try {
    await tx('readwrite', (st) => st.delete(sessionId));
  } catch {
    // Nothing to drop.
  }
}
