//! Dev servers as the relay's API describes them (`/api/devservers`, the
//! `devserver` and `job` events of `/api/events`) and the words the page
//! shows for them, pure: no DOM, no fetch, no clock, so node's unit tests
//! run it. A dev server is a job (`../jobs`) with ports and events.

import { parseJob, type Job } from './jobs';

/** Events a dev server's row keeps (the relay sends at most 50 with it). */
export const EVENTS_KEPT = 50;

export type PortSource = 'socket' | 'output';

/** A port the dev server listens on, with the app-origin path that previews it. */
export interface DevPort {
  port: number;
  addr: string;
  source: PortSource;
  url: string;
}

export type DevEventKind = 'port-detected' | 'port-closed' | 'process-exited';

/** One `devserver` event (`DevserverEvent` of protocol.md §5). */
export interface DevEvent {
  id: string;
  job: string;
  idea: string;
  kind: DevEventKind;
  at: number;
  port: number | null;
  addr: string | null;
  source: PortSource | null;
  url: string | null;
  exit_code: number | null;
  signal: number | null;
}

export interface Devserver extends Job {
  ports: DevPort[];
  events: DevEvent[];
}

const KINDS: ReadonlySet<string> = new Set(['port-detected', 'port-closed', 'process-exited']);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const source = (v: unknown): PortSource | null => (v === 'socket' || v === 'output' ? v : null);
const validPort = (p: number | null): p is number => p !== null && Number.isInteger(p) && p > 0 && p < 65536;

/** The preview path of `port` of dev server `id` (the preview route's URL). */
export function previewUrl(id: string, port: number): string {
  return `/preview/${encodeURIComponent(id)}/${port}`;
}

/**
 * A preview link the page may put in an `href`: only the app-origin path
 * `/preview/{id}/{port}` of that dev server, whatever the relay sent.
 */
function safePreview(id: string, port: number, url: unknown): string {
  const want = previewUrl(id, port);
  return url === want ? url : want;
}

function parsePorts(id: string, v: unknown): DevPort[] {
  if (!Array.isArray(v)) return [];
  const out: DevPort[] = [];
  for (const raw of v) {
    if (!raw || typeof raw !== 'object') continue;
    const o = raw as Record<string, unknown>;
    const port = num(o.port);
    if (!validPort(port) || out.some((p) => p.port === port)) continue;
    out.push({ port, addr: str(o.addr) ?? '', source: source(o.source) ?? 'socket', url: safePreview(id, port, o.url) });
  }
  return out.sort((a, b) => a.port - b.port);
}

/** A dev server event from JSON the relay sent, or null when it is not one. */
export function parseDevEvent(v: unknown): DevEvent | null {
  if (!v || typeof v !== 'object') return null;
  const o = v as Record<string, unknown>;
  const id = typeof o.id === 'number' ? String(o.id) : str(o.id);
  const job = str(o.job);
  const kind = str(o.kind);
  if (!id || !job || !kind || !KINDS.has(kind)) return null;
  const port = num(o.port);
  if (kind !== 'process-exited' && !validPort(port)) return null;
  return {
    id,
    job,
    idea: str(o.idea) ?? '',
    kind: kind as DevEventKind,
    at: num(o.at) ?? 0,
    port: validPort(port) ? port : null,
    addr: str(o.addr),
    source: source(o.source),
    url: kind === 'port-detected' && validPort(port) ? safePreview(job, port, o.url) : null,
    exit_code: num(o.exit_code),
    signal: num(o.signal),
  };
}

/** A dev server from JSON (the API's Devserver, or a `job` event's Job of kind devserver), or null. */
export function parseDevserver(v: unknown): Devserver | null {
  const job = parseJob(v);
  if (!job) return null;
  const o = v as Record<string, unknown>;
  if (o.kind !== 'devserver') return null;
  const events = Array.isArray(o.events) ? o.events.map(parseDevEvent).filter((e): e is DevEvent => e !== null && e.job === job.id) : [];
  return { ...job, ports: parsePorts(job.id, o.ports), events: events.slice(-EVENTS_KEPT) };
}

/** Event order: by id (stored ids are increasing integers), else by time. */
const order = (a: DevEvent, b: DevEvent): number => {
  const na = Number(a.id);
  const nb = Number(b.id);
  if (Number.isFinite(na) && Number.isFinite(nb)) return na - nb;
  return a.at - b.at;
};

/**
 * The dev server with `ev` in its events (once, in id order, the newest
 * kept). Its ports follow the event: a detected port is added, a closed
 * one removed, an exit removes all. A `job` event (`mergeJob`) brings the
 * relay's whole list again.
 */
export function applyEvent(d: Devserver, ev: DevEvent): Devserver {
  if (ev.job !== d.id || d.events.some((e) => e.id === ev.id)) return d;
  const events = [...d.events, ev].sort(order).slice(-EVENTS_KEPT);
  // An event older than the newest we know says nothing about the ports now.
  const newest = events[events.length - 1] === ev;
  let ports = d.ports;
  if (newest) {
    if (ev.kind === 'port-detected' && ev.port !== null && !ports.some((p) => p.port === ev.port)) {
      ports = [...ports, { port: ev.port, addr: ev.addr ?? '', source: ev.source ?? 'socket', url: previewUrl(d.id, ev.port) }].sort((a, b) => a.port - b.port);
    } else if (ev.kind === 'port-closed') {
      ports = ports.filter((p) => p.port !== ev.port);
    } else if (ev.kind === 'process-exited') {
      ports = [];
    }
  }
  return { ...d, ports, events };
}

/** A `job` event's newer state of the dev server, keeping the events the page has. */
export function mergeJob(current: Devserver | undefined, incoming: Devserver): Devserver {
  if (!current) return incoming;
  const events = [...current.events];
  for (const e of incoming.events) if (!events.some((x) => x.id === e.id)) events.push(e);
  events.sort(order);
  return { ...incoming, events: events.slice(-EVENTS_KEPT) };
}

/** A few signal names by number (Linux); others show as their number. */
const SIGNALS: Record<number, string> = { 1: 'SIGHUP', 2: 'SIGINT', 9: 'SIGKILL', 15: 'SIGTERM' };

/** The event in words: `port 5173 detected on 127.0.0.1 (listening socket)`… */
export function eventText(ev: DevEvent): string {
  switch (ev.kind) {
    case 'port-detected':
      return `port ${ev.port ?? '?'} detected${ev.addr ? ` on ${ev.addr}` : ''} (${ev.source === 'output' ? 'URL it printed' : 'listening socket'})`;
    case 'port-closed':
      return `port ${ev.port ?? '?'} closed`;
    case 'process-exited':
      if (ev.signal !== null) return `process exited (${SIGNALS[ev.signal] ?? `signal ${ev.signal}`})`;
      if (ev.exit_code !== null) return `process exited with code ${ev.exit_code}`;
      return 'process exited (no status)';
  }
}
