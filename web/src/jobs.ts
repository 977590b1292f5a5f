//! Jobs as the relay's API describes them (`/api/jobs`, the `job` event of
//! `/api/events`) and the words the page shows for them, pure: no DOM, no
//! fetch, no clock (time is an argument), so node's unit tests run it.

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'lost';

/** One job, as `GET /api/jobs/{id}` answers it. Times are ms since the epoch. */
export interface Job {
  id: string;
  /** `job`, `agent` or `devserver` (issue 12); older relays send none: `job`. */
  kind: string;
  idea: string;
  slot: string | null;
  name: string | null;
  command: string;
  cwd: string | null;
  state: JobState;
  exit_code: number | null;
  signal: number | null;
  error: string | null;
  runner_id: string | null;
  session_id: string | null;
  pane: string | null;
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  log_bytes: number;
  cancel_requested: boolean;
}

const STATES: ReadonlySet<string> = new Set(['queued', 'running', 'succeeded', 'failed', 'cancelled', 'lost']);

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/**
 * A job from JSON the relay sent, or null when it is not one (no id, no
 * known state). Ids and session ids may come as numbers; they become strings.
 */
export function parseJob(v: unknown): Job | null {
  if (!v || typeof v !== 'object') return null;
  const o = v as Record<string, unknown>;
  const id = typeof o.id === 'number' ? String(o.id) : str(o.id);
  const state = str(o.state);
  if (!id || !state || !STATES.has(state)) return null;
  const sid = typeof o.session_id === 'number' ? String(o.session_id) : str(o.session_id);
  return {
    id,
    kind: str(o.kind) ?? 'job',
    idea: str(o.idea) ?? '',
    slot: str(o.slot),
    name: str(o.name),
    command: str(o.command) ?? '',
    cwd: str(o.cwd),
    state: state as JobState,
    exit_code: num(o.exit_code),
    signal: num(o.signal),
    error: str(o.error),
    runner_id: typeof o.runner_id === 'number' ? String(o.runner_id) : str(o.runner_id),
    session_id: sid,
    pane: str(o.pane),
    created_at: num(o.created_at) ?? 0,
    started_at: num(o.started_at),
    ended_at: num(o.ended_at),
    log_bytes: num(o.log_bytes) ?? 0,
    cancel_requested: o.cancel_requested === true,
  };
}

/** Whether the job has not ended yet (it can be cancelled). */
export function isActive(job: Pick<Job, 'state'>): boolean {
  return job.state === 'queued' || job.state === 'running';
}

/** A few signal names by number (Linux); others show as their number. */
const SIGNALS: Record<number, string> = { 1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 6: 'SIGABRT', 9: 'SIGKILL', 11: 'SIGSEGV', 13: 'SIGPIPE', 15: 'SIGTERM' };

/** The badge's words: `failed (exit 3)`, `failed (SIGKILL)`, `cancelling`… */
export function badgeText(job: Pick<Job, 'state' | 'exit_code' | 'signal' | 'cancel_requested'>): string {
  switch (job.state) {
    case 'queued':
      return job.cancel_requested ? 'queued, cancelling' : 'queued';
    case 'running':
      return job.cancel_requested ? 'cancelling' : 'running';
    case 'succeeded':
      return 'succeeded';
    case 'failed':
      if (job.signal !== null) return `failed (${SIGNALS[job.signal] ?? `signal ${job.signal}`})`;
      if (job.exit_code !== null) return `failed (exit ${job.exit_code})`;
      return 'failed';
    case 'cancelled':
      return 'cancelled';
    case 'lost':
      return 'lost';
  }
}

/** A duration in words: `850 ms`, `12 s`, `3 min 4 s`, `2 h 5 min`. */
export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  const m = Math.floor(s / 60);
  return `${Math.floor(m / 60)} h${m % 60 ? ` ${m % 60} min` : ''}`;
}

/** Newest first: by creation time, then by id (numeric ids as numbers). */
export function compareJobs(a: Job, b: Job): number {
  if (a.created_at !== b.created_at) return b.created_at - a.created_at;
  const na = Number(a.id);
  const nb = Number(b.id);
  if (Number.isFinite(na) && Number.isFinite(nb)) return nb - na;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/**
 * Seconds to wait from a `Retry-After` header (seconds, or an HTTP date
 * measured against `now`), or null when there is none or it is unreadable.
 */
export function retryAfterSeconds(header: string | null, now: number): number | null {
  if (header === null) return null;
  const h = header.trim();
  if (/^\d+$/.test(h)) return Number(h);
  const at = Date.parse(h);
  if (!Number.isFinite(at)) return null;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

/** What the person reads when starting a job failed with `status`. */
export function startError(status: number, error: string | null, retryAfter: number | null): string {
  // The relay's words end without a period, usually; never print two.
  const why = error ? error.trim().replace(/\.$/, '') : null;
  switch (status) {
    case 400:
      return `The job was not started: ${why ?? 'the relay refused the request'}.`;
    case 404:
      // The relay's 404 names the runner; a bare one is a relay without jobs.
      return `The job was not started: ${why ?? 'this relay does not know that runner, or has no jobs (update tmux-relay)'}.`;
    case 429:
      return retryAfter !== null
        ? `Too many jobs started in the last minute. Try again in ${retryAfter} s.`
        : 'Too many jobs started in the last minute. Try again in a minute.';
    default:
      return `The job was not started: ${why ?? `the relay answered HTTP ${status}`}.`;
  }
}

/** The session page showing the job's pane (`/s/{id}?pane=%N`), or null without a session. */
export function paneUrl(job: Pick<Job, 'session_id' | 'pane'>): string | null {
  if (!job.session_id) return null;
  const base = `/s/${encodeURIComponent(job.session_id)}`;
  return job.pane ? `${base}?${new URLSearchParams({ pane: job.pane }).toString()}` : base;
}

/** How far a job has come: queued, running, ended (a job never goes back). */
function progress(job: Pick<Job, 'state' | 'cancel_requested'>): number {
  const base = job.state === 'queued' ? 0 : job.state === 'running' ? 2 : 4;
  return base + (job.cancel_requested ? 1 : 0);
}

/**
 * Which of two copies of one job to keep: the one further along (a list
 * fetched before an event may arrive after it); `incoming` on a tie.
 */
export function newerJob(current: Job | undefined, incoming: Job): Job {
  if (!current) return incoming;
  return progress(incoming) >= progress(current) ? incoming : current;
}
