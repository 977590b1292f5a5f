//! The session's WebSocket (docs/protocol.md §5): fetches a fresh browser
//! token for each attempt, connects with the subprotocol, says `hello` with
//! the seq the page has, and reconnects with capped backoff and jitter
//! (at once when the tab is shown again, restored from the bfcache, or back
//! online). It hands control messages and frames to its owner and never
//! interprets records. Sending goes through `send`, which reports whether
//! the socket took the message.

import { SUBPROTOCOL, type BrowserToRelay, type RelayToBrowser } from './protocol';

const BACKOFF_MIN_MS = 300;
const BACKOFF_MAX_MS = 10_000;
const TOKEN_TIMEOUT_MS = 10_000;

/** What a token request gave: a token, or a definite refusal to show. */
export type TokenResult = { token: string } | { refused: string; state: 'logged out' | 'no access' | 'revoked' };

export interface ConnectionHooks {
  /** A fresh token for this attempt; throws on a transient failure (retried). */
  token(signal: AbortSignal): Promise<TokenResult>;
  /** The seq to resume from (`hello.last_seq`). */
  lastSeq(): number;
  /** The numbering epoch that seq belongs to (`hello.epoch`), if known. */
  epoch(): string | null;
  onControl(msg: RelayToBrowser): void;
  onFrame(buf: ArrayBuffer): void;
  /** Connection state for the status badge: connecting, syncing, live, reconnecting in N s, or a stop reason. */
  onState(state: string): void;
  /** The connection stopped for good (logged out, no access, revoked). */
  onStop(state: string, message: string): void;
  /** The socket closed (before a reconnect): save what there is. */
  onClose(): void;
}

/** Close codes after which reconnecting cannot help. */
const FINAL_CLOSES: Record<number, [string, string]> = {
  4003: ['no access', 'The relay says this session is not yours.'],
  4403: ['revoked', 'This share link was revoked or has expired.'],
};

export class Connection {
  private ws: WebSocket | null = null;
  private gen = 0;
  private backoff = BACKOFF_MIN_MS;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private fetchingToken = false;
  private stopped = false;
  private lastClose = '';
  private readonly cleanup: Array<() => void> = [];

  constructor(private readonly sessionId: () => string, private readonly hooks: ConnectionHooks) {}

  start(): void {
    const on = <K extends keyof WindowEventMap>(target: Window, type: K, fn: (ev: WindowEventMap[K]) => void) => {
      target.addEventListener(type, fn);
      this.cleanup.push(() => target.removeEventListener(type, fn));
    };
    const vis = () => {
      if (document.visibilityState === 'visible') this.wake();
    };
    document.addEventListener('visibilitychange', vis);
    this.cleanup.push(() => document.removeEventListener('visibilitychange', vis));
    on(window, 'pageshow', (ev) => {
      if (ev.persisted) this.wake();
    });
    on(window, 'online', () => this.wake());
    void this.connect();
  }

  /** Whether a socket is open and past `welcome` is up to the owner; this says whether it is open. */
  get open(): boolean {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  get bufferedAmount(): number {
    return this.ws ? this.ws.bufferedAmount : 0;
  }

  send(msg: BrowserToRelay): boolean {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(msg));
      return true;
    }
    return false;
  }

  /** Reconnects at once if the socket is gone (tab shown again, bfcache, network back). */
  wake(): void {
    if (this.stopped) return;
    const alive = this.ws && (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING);
    if (!alive && !this.fetchingToken) {
      if (this.timer) clearTimeout(this.timer);
      this.backoff = BACKOFF_MIN_MS;
      void this.connect();
    }
  }

  /** The relay answered `welcome`: the next drop starts from a short backoff again. */
  welcomed(): void {
    this.backoff = BACKOFF_MIN_MS;
  }

  /** Drops the socket and connects again now (a gap). */
  reconnect(): void {
    void this.connect();
  }

  /** Drops the socket (closing it with 4000) and reconnects after the backoff (a bad frame). */
  failed(reason: string): void {
    if (this.stopped) return;
    this.gen++;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.onmessage = null;
      try {
        ws.close(4000, reason);
      } catch {
        // Already closed.
      }
    }
    this.lastClose = ` (${reason})`;
    this.scheduleReconnect();
  }

  async connect(): Promise<void> {
    if (this.stopped) return;
    const gen = ++this.gen;
    this.dropSocket('reconnecting');
    this.hooks.onState('connecting');
    let token: string;
    this.fetchingToken = true;
    // A request stuck on a dead network must not block reconnecting.
    const abort = new AbortController();
    const abortTimer = setTimeout(() => abort.abort(), TOKEN_TIMEOUT_MS);
    try {
      const r = await this.hooks.token(abort.signal);
      if (gen !== this.gen) return;
      if ('refused' in r) {
        this.stop(r.state, r.refused);
        return;
      }
      token = r.token;
      if (!/^[A-Za-z0-9._~+/=-]+$/.test(token)) throw new Error('token: bad body');
    } catch (e) {
      if (gen !== this.gen) return;
      console.warn('tmux-bridge: token', e);
      this.scheduleReconnect();
      return;
    } finally {
      clearTimeout(abortTimer);
      if (gen === this.gen) this.fetchingToken = false;
    }
    if (this.stopped) return;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const url = `${scheme}//${location.host}/api/ws/browser/${encodeURIComponent(this.sessionId())}`;
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, [SUBPROTOCOL, `bearer.${token}`]);
    } catch (e) {
      console.warn('tmux-bridge: websocket', e);
      this.scheduleReconnect();
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => {
      if (gen !== this.gen) return;
      this.hooks.onState('syncing');
      const lastSeq = this.hooks.lastSeq();
      const epoch = lastSeq > 0 ? this.hooks.epoch() : null;
      this.send(epoch === null ? { t: 'hello', last_seq: lastSeq } : { t: 'hello', last_seq: lastSeq, epoch });
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (gen !== this.gen) return;
      if (typeof ev.data === 'string') {
        let msg: unknown;
        try {
          msg = JSON.parse(ev.data);
        } catch {
          console.warn('tmux-bridge: bad control message');
          return;
        }
        if (msg && typeof msg === 'object' && typeof (msg as { t?: unknown }).t === 'string') this.hooks.onControl(msg as RelayToBrowser);
      } else if (ev.data instanceof ArrayBuffer) {
        this.hooks.onFrame(ev.data);
      }
    };
    ws.onclose = (ev: CloseEvent) => {
      if (gen !== this.gen) return;
      this.ws = null;
      const final = FINAL_CLOSES[ev.code];
      if (final) {
        this.stop(final[0], ev.reason ? `${final[1]} (${ev.reason})` : final[1]);
        return;
      }
      this.lastClose = ev.code ? ` (closed ${ev.code})` : '';
      this.hooks.onClose();
      this.scheduleReconnect();
    };
  }

  private dropSocket(reason: string): void {
    const old = this.ws;
    this.ws = null;
    if (old) {
      old.onclose = null;
      old.onmessage = null;
      old.onopen = null;
      try {
        old.close(1000, reason);
      } catch {
        // Already closed.
      }
    }
  }

  stop(state: string, message: string): void {
    if (this.stopped) return;
    this.stopped = true;
    this.gen++;
    if (this.timer) clearTimeout(this.timer);
    this.dropSocket('stopped');
    this.hooks.onStop(state, message);
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    // Capped exponential backoff with jitter; a hidden tab retries at the cap
    // (`visibilitychange` wakes it at once when it is shown again).
    const base = document.visibilityState === 'hidden' ? BACKOFF_MAX_MS : this.backoff;
    const delay = base * (0.5 + Math.random() * 0.5);
    this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
    this.hooks.onState(`reconnecting in ${Math.ceil(delay / 1000)} s${this.lastClose}`);
    this.timer = setTimeout(() => void this.connect(), delay);
  }

  /** Closes the socket and removes every listener (the view goes away). */
  dispose(): void {
    this.stopped = true;
    this.gen++;
    if (this.timer) clearTimeout(this.timer);
    this.dropSocket('leaving');
    for (const off of this.cleanup) off();
    this.cleanup.length = 0;
  }
}

/** The token source of a logged-in owner: `POST /api/sessions/{id}/token`. */
export async function ownerToken(sessionId: string, signal: AbortSignal): Promise<TokenResult> {
  const res = await fetch(`/api/sessions/${encodeURIComponent(sessionId)}/token`, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'X-Requested-With': 'tmux-bridge' },
    signal,
  });
  if (res.status === 401) return { refused: 'Your login expired: open a fresh login link (tmux-bridge login-link) or log in.', state: 'logged out' };
  if (res.status === 403 || res.status === 404) return { refused: 'This session does not exist, is not yours, or its runner was revoked.', state: 'no access' };
  if (!res.ok) throw new Error(`token: HTTP ${res.status}`);
  const body: unknown = await res.json();
  const token = body && typeof body === 'object' ? (body as { token?: unknown }).token : undefined;
  if (typeof token !== 'string') throw new Error('token: bad body');
  return { token };
}
