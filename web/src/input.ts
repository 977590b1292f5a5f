//! What the person types, on its way to the relay: keys and input are
//! queued in order, input is cut into chunks of at most 16 Ki UTF-16 units
//! (JSON stays far below the relay's 1 MiB), and sending waits while the
//! socket holds more than 256 KiB. While disconnected, up to 64 KiB typed
//! within 10 s is kept and sent after the reconnect; beyond that it is
//! dropped with a notice. No DOM; the clock is read through `now`.

import type { BrowserToRelay } from './protocol';

/** Largest `data` in one input message (UTF-16 units). */
export const INPUT_CHUNK = 16 * 1024;
/** Stop sending while the socket holds more than this. */
export const HIGH_WATER = 256 * 1024;
/** Typing kept while disconnected: at most this much, for at most QUEUE_MS. */
export const QUEUE_BYTES = 64 * 1024;
export const QUEUE_MS = 10_000;

export interface Sink {
  /** Whether the session is live (welcomed); only then is anything sent. */
  live(): boolean;
  bufferedAmount(): number;
  send(msg: BrowserToRelay): boolean;
  notify(text: string): void;
}

interface Item {
  msg: BrowserToRelay;
  cost: number;
  at: number;
}

export class InputQueue {
  private items: Item[] = [];
  private bytes = 0;
  private pumping = false;
  private staleTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly sink: Sink, private readonly now: () => number = () => performance.now()) {}

  /** Queues bytes for a pane (paste, IME text, mouse reports, or typing without key support). */
  input(pane: string, data: string): void {
    const at = this.now();
    if (!this.admit(data.length)) return;
    for (let i = 0; i < data.length;) {
      let end = Math.min(i + INPUT_CHUNK, data.length);
      // Never split a surrogate pair across two messages.
      if (end < data.length && isHighSurrogate(data.charCodeAt(end - 1))) end -= 1;
      const chunk = data.slice(i, end);
      this.items.push({ msg: { t: 'input', pane, data: chunk }, cost: chunk.length, at });
      this.bytes += chunk.length;
      i = end;
    }
    void this.pump();
  }

  /** Queues tmux key names typed in a pane. */
  keys(pane: string, keys: string[]): void {
    const cost = keys.reduce((n, k) => n + k.length + 3, 0);
    if (!this.admit(cost)) return;
    const last = this.items[this.items.length - 1];
    // Consecutive keys for the same pane travel in one message.
    if (last && last.msg.t === 'keys' && last.msg.pane === pane && !this.pumping && last.msg.keys.length < 256) {
      last.msg.keys.push(...keys);
      last.cost += cost;
    } else {
      this.items.push({ msg: { t: 'keys', pane, keys: [...keys] }, cost, at: this.now() });
    }
    this.bytes += cost;
    void this.pump();
  }

  /** Bytes waiting (for tests and diagnostics). */
  get pending(): number {
    return this.bytes;
  }

  private admit(cost: number): boolean {
    this.dropStale();
    if (!this.sink.live() && this.bytes + cost > QUEUE_BYTES) {
      this.sink.notify('Not connected: typing was dropped (more than 64 KiB queued).');
      return false;
    }
    return true;
  }

  private dropStale(): void {
    if (this.sink.live()) return;
    const now = this.now();
    let dropped = 0;
    while (this.items.length && now - (this.items[0]?.at ?? now) > QUEUE_MS) {
      const m = this.items.shift();
      if (!m) break;
      this.bytes -= m.cost;
      dropped += m.cost;
    }
    if (dropped) this.sink.notify('Not connected for more than 10 s: queued typing was dropped.');
  }

  /** Sends what is queued while the session is live and the socket is not backed up. */
  async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.sink.live() && this.items.length) {
        if (this.sink.bufferedAmount() > HIGH_WATER) {
          await new Promise((r) => setTimeout(r, 10));
          continue;
        }
        const m = this.items[0];
        if (!m || !this.sink.send(m.msg)) break;
        this.items.shift();
        this.bytes -= m.cost;
      }
    } finally {
      this.pumping = false;
    }
    if (!this.sink.live() && this.items.length && !this.staleTimer) {
      this.staleTimer = setTimeout(() => {
        this.staleTimer = null;
        this.dropStale();
      }, QUEUE_MS + 50);
    }
  }

  dispose(): void {
    if (this.staleTimer) clearTimeout(this.staleTimer);
    this.items = [];
    this.bytes = 0;
  }
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}
