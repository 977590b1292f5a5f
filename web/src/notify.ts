//! The page's global notifier: one `/api/events` stream shared by the
//! views that want live notices ([`events`]), and the idle notices built on
//! it. When an agent (`agent` event, state `idle`) or a watched pane
//! (`pane_activity`, `idle: true`) goes idle, it shows a Notification (when
//! the person allowed them; [`askNotifications`] asks, and only from a
//! click or key press) and prefixes the tab title with
//! `(N) idle · <name>`; a notice is cleared when its agent or pane runs
//! again, and all are when the tab gets the focus. It never shows pane
//! text, and names go in as text. No polling: a page without the stream
//! simply gets no notices.

import { idleTitle, parseAgent, parsePaneActivity } from './agents';

let source: EventSource | null = null;

/** The shared event stream (opened on first use), or null where there is none. */
export function events(): EventSource | null {
  if (source) return source;
  if (typeof EventSource === 'undefined') return null;
  source = new EventSource('/api/events', { withCredentials: true });
  source.addEventListener('open', () => {
    document.body.dataset.notifier = 'open';
  });
  return source;
}

/** What a view does around the shared stream's life. */
export interface StreamHooks {
  /** The stream is open (now, or when it opens). */
  opened?: () => void;
  /** It opened again after a break: events may have been missed. */
  reopened?: () => void;
  /** It never opened (a relay without it, or no EventSource): poll instead. */
  unavailable?: () => void;
}

/**
 * Listens on the shared stream: `handlers` by event name, `hooks` around
 * its life. One stream serves every view of the page (browsers give a
 * host six HTTP/1.1 connections, and a stream per view ran a few tabs out
 * of them). Returns what removes the listeners; the stream stays for the
 * others.
 */
export function subscribe(handlers: Record<string, (ev: MessageEvent<string>) => void>, hooks: StreamHooks = {}): () => void {
  const src = events();
  if (!src) {
    hooks.unavailable?.();
    return () => {};
  }
  let opened = src.readyState === EventSource.OPEN;
  let gaveUp = false;
  const onOpen = (): void => {
    if (opened) hooks.reopened?.();
    opened = true;
    hooks.opened?.();
  };
  const onError = (): void => {
    if (!opened && !gaveUp) {
      gaveUp = true;
      hooks.unavailable?.();
    }
  };
  const listeners: [string, EventListener][] = [
    ['open', onOpen],
    ['error', onError],
    ...Object.entries(handlers).map(([name, h]): [string, EventListener] => [name, (ev) => h(ev as MessageEvent<string>)]),
  ];
  for (const [name, l] of listeners) src.addEventListener(name, l);
  if (opened) hooks.opened?.();
  return () => {
    for (const [name, l] of listeners) src.removeEventListener(name, l);
  };
}

/** Closes the shared stream (the login ended: it would only be refused again). */
export function closeEvents(): void {
  source?.close();
  source = null;
}

/** Asks for the permission to notify; call it from a user gesture. */
export async function askNotifications(): Promise<NotificationPermission | 'unsupported'> {
  if (typeof Notification === 'undefined') return 'unsupported';
  if (Notification.permission !== 'default') return Notification.permission;
  try {
    return await Notification.requestPermission();
  } catch {
    return 'denied';
  }
}

/** What is idle now, by key (`agent:ID`, `pane:SESSION:%N`), in the order it went idle. */
const idle = new Map<string, string>();
/** The title as the view set it, and the one we last wrote. */
let base = '';
let written: string | null = null;

function render(): void {
  if (written === null || document.title !== written) base = document.title;
  written = idleTitle(base, [...idle.values()]);
  if (document.title !== written) document.title = written;
  document.body.dataset.idle = String(idle.size);
}

function wentIdle(key: string, name: string, body: string): void {
  if (idle.has(key)) return;
  idle.set(key, name);
  render();
  if (typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
  try {
    const n = new Notification(`${name} is idle`, { body, tag: key });
    n.addEventListener('click', () => {
      window.focus();
      n.close();
    });
  } catch {
    // Some browsers only notify through a service worker: the title says it.
  }
}

function active(key: string): void {
  if (idle.delete(key)) render();
}

let installed = false;

/** Starts the notifier (once per page). */
export function installNotifier(): void {
  if (installed) return;
  installed = true;
  const src = events();
  if (!src) return;
  src.addEventListener('agent', (ev) => {
    let a = null;
    try {
      a = parseAgent(JSON.parse((ev as MessageEvent<string>).data));
    } catch {
      return;
    }
    if (!a) return;
    const key = `agent:${a.id}`;
    if (a.state === 'idle') wentIdle(key, a.name, `The agent ${a.name} of ${a.idea} printed nothing for ${Math.round(a.idle_ms / 1000)} s: it may be waiting for you.`);
    else active(key);
  });
  src.addEventListener('pane_activity', (ev) => {
    let p = null;
    try {
      p = parsePaneActivity(JSON.parse((ev as MessageEvent<string>).data));
    } catch {
      return;
    }
    if (!p) return;
    const key = `pane:${p.session_id}:${p.pane}`;
    const where = p.idea ? `${p.idea}${p.slot && p.slot !== 'primary' ? `/${p.slot}` : ''} ${p.pane}` : p.pane;
    if (p.idle) wentIdle(key, where, `Pane ${where} printed nothing for a while.`);
    else active(key);
  });
  // A view that sets its title meanwhile keeps the prefix.
  if (typeof MutationObserver !== 'undefined') {
    new MutationObserver(() => {
      if (idle.size > 0 && document.title !== written) render();
    }).observe(document.head, { childList: true, subtree: true, characterData: true });
  }
  // The person is here: the notices have done their job.
  const seen = () => {
    if (idle.size === 0) return;
    idle.clear();
    render();
  };
  window.addEventListener('focus', seen);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') seen();
  });
}
