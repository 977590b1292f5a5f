//! `/jobs/{idea}`: the idea's jobs (`GET /api/jobs?idea=…`, newest first),
//! each with its state badge, times, working directory, a cancel button
//! while it is queued or running (`POST /api/jobs/{id}/cancel`), its log
//! (`GET /api/jobs/{id}/log`, shown in place or as a text page) and a link
//! to its live pane in the session page (`/s/{session}?pane=%N`); a form
//! starts a job (`POST /api/jobs`). The `job` event of `/api/events`
//! updates rows in place, without a reload; a relay without the event
//! stream is polled. Errors are told in words; everything from the relay
//! and from panes goes in as text.

import { api, button, clock, commandForm, el } from '../dom';
import { closeEvents, subscribe } from '../notify';
import { mountDevservers } from './devservers';
import { mountAgents } from './agents';
import { badgeText, compareJobs, duration, isActive, newerJob, paneUrl, parseJob, retryAfterSeconds, startError, type Job } from '../jobs';

const POLL_MS = 5_000;
/** The largest log shown in place; the text link has all of it. */
const LOG_SHOWN = 256 * 1024;

interface Row {
  li: HTMLLIElement;
  head: HTMLDivElement;
  log: HTMLPreElement;
  logOpen: boolean;
}

/** A job in a sentence: its command, quoted, shortened when long. */
function label(job: Pick<Job, 'command'>): string {
  const c = job.command.replace(/\s+/g, ' ').trim();
  return `“${c.length > 60 ? `${c.slice(0, 59)}…` : c}”`;
}

export function mountJobs(root: HTMLElement, idea: string): JobsView {
  const v = new JobsView(root, idea);
  void v.start();
  mountDevservers(root.querySelector('main') ?? root, idea);
  return v;
}

export class JobsView {
  private readonly jobs = new Map<string, Job>();
  private readonly rows = new Map<string, Row>();
  private readonly listEl: HTMLOListElement;
  private readonly statusEl: HTMLElement;
  private readonly formStatusEl: HTMLElement;
  private readonly command: HTMLInputElement;
  private readonly cwd: HTMLInputElement;
  private readonly submit: HTMLButtonElement;
  private unsubscribe: (() => void) | null = null;
  private poll: ReturnType<typeof setInterval> | null = null;
  private retryTimer: ReturnType<typeof setInterval> | null = null;
  private loggedOut = false;

  constructor(root: HTMLElement, private readonly idea: string) {
    const f = commandForm('job', 'make test', 'Start job', () => void this.create());
    this.command = f.command;
    this.cwd = f.cwd;
    this.submit = f.submit;
    this.formStatusEl = f.status;
    const form = f.form;
    this.statusEl = el('p', { class: 'status', role: 'status', 'aria-live': 'polite', 'data-testid': 'jobs-status' }, 'Loading…');
    this.listEl = el('ol', { class: 'jobs', 'data-testid': 'jobs', 'aria-label': `Jobs of ${idea}` });
    root.replaceChildren(
      el('header', { class: 'bar' },
        el('a', { href: '/', class: 'home' }, 'sessions'),
        el('span', { class: 'name' }, `jobs · ${idea}`)),
      el('main', { class: 'jobs-page' },
        el('h1', {}, `Jobs of ${idea}`),
        el('section', { class: 'new-job', 'aria-label': 'Start a job' }, el('h2', {}, 'Start a job'), form),
        el('section', { class: 'job-list' }, el('h2', {}, 'Jobs'), this.statusEl, this.listEl)));
    document.title = `jobs · ${idea} · tmux-bridge`;
    mountAgents(root.querySelector<HTMLElement>('main.jobs-page') ?? root, idea);
  }

  async start(): Promise<void> {
    // Listen first, then list: an event that arrives while the list is on
    // its way is kept (newerJob), never lost between the two.
    this.listen();
    await this.load();
  }

  dispose(): void {
    this.unsubscribe?.();
    if (this.poll) clearInterval(this.poll);
    if (this.retryTimer) clearInterval(this.retryTimer);
  }

  // ----- data -------------------------------------------------------------

  private async load(): Promise<void> {
    // Agents and dev servers are jobs too; they have their own sections.
    const res = await api(`/api/jobs?${new URLSearchParams({ idea: this.idea, kind: 'job' }).toString()}`).catch(() => null);
    if (!res) {
      this.status('The relay is unreachable; the list will refresh when it answers.', true);
      return;
    }
    if (res.status === 401) {
      this.loggedOut = true;
      this.unsubscribe?.();
      closeEvents();
      this.statusEl.className = 'status error';
      this.statusEl.replaceChildren('Not logged in. ', el('a', { href: `/login?next=${encodeURIComponent(location.pathname)}` }, 'Log in'), ' to see the jobs.');
      return;
    }
    const body = (await res.json().catch(() => null)) as { jobs?: unknown; error?: unknown } | null;
    if (!res.ok) {
      const why = body && typeof body.error === 'string' ? body.error : `HTTP ${res.status}`;
      this.status(res.status === 404 ? 'This relay has no jobs yet (update tmux-relay).' : `Could not list the jobs: ${why}.`, true);
      return;
    }
    const list = body && Array.isArray(body.jobs) ? body.jobs : [];
    for (const raw of list) {
      const job = parseJob(raw);
      if (job) this.upsert(job);
    }
    this.renderEmpty();
  }

  /** Live updates from `/api/events`; polling when the relay has no event stream. */
  private listen(): void {
    this.unsubscribe = subscribe(
      {
        job: (ev) => {
          let job: Job | null = null;
          try {
            job = parseJob(JSON.parse(ev.data));
          } catch {
            // A malformed event: the next listing shows the job.
          }
          if (job && job.idea === this.idea && job.kind === 'job') {
            this.upsert(job);
            this.renderEmpty();
          }
        },
      },
      {
        opened: () => {
          document.body.dataset.events = 'open';
        },
        // A reconnect may have missed events: list again.
        reopened: () => void this.load(),
        unavailable: () => {
          if (!this.loggedOut) this.startPolling();
        },
      },
    );
  }

  private startPolling(): void {
    if (this.poll) return;
    this.poll = setInterval(() => {
      if (document.visibilityState === 'visible' && !this.loggedOut) void this.load();
    }, POLL_MS);
  }

  private status(text: string, error = false): void {
    this.statusEl.className = `status${error ? ' error' : ''}`;
    this.statusEl.textContent = text;
  }

  private formStatus(text: string, error = false): void {
    this.formStatusEl.className = `status${error ? ' error' : ''}`;
    this.formStatusEl.textContent = text;
  }

  private renderEmpty(): void {
    if (this.jobs.size === 0) this.status(`No jobs for ${this.idea} yet: start one above.`);
    else if (!this.statusEl.classList.contains('error')) this.status('');
  }

  // ----- actions ----------------------------------------------------------

  /** `POST /api/jobs` with the form's command and directory. */
  private async create(): Promise<void> {
    const command = this.command.value.trim();
    if (!command) {
      this.formStatus('Type the command to run.', true);
      this.command.focus();
      return;
    }
    const cwd = this.cwd.value.trim();
    this.submit.disabled = true;
    this.formStatus('Starting…');
    const res = await api('/api/jobs', { method: 'POST', body: JSON.stringify(cwd ? { idea: this.idea, command, cwd } : { idea: this.idea, command }) }).catch(() => null);
    this.submit.disabled = false;
    if (!res) {
      this.formStatus('The relay is unreachable; the job was not started.', true);
      return;
    }
    if (res.status === 401) {
      location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
      return;
    }
    const body = (await res.json().catch(() => null)) as Record<string, unknown> | null;
    if (res.ok) {
      const job = parseJob(body && 'job' in body ? body.job : body);
      if (job) this.upsert(job);
      this.renderEmpty();
      this.formStatus(job ? `Started ${label(job)}.` : 'Started.');
      this.command.value = '';
      this.command.focus();
      return;
    }
    const error = body && typeof body.error === 'string' ? body.error : null;
    const wait = retryAfterSeconds(res.headers.get('Retry-After'), Date.now());
    if (res.status === 429 && wait !== null && wait > 0) this.holdFor(wait, error);
    else this.formStatus(startError(res.status, error, wait), true);
  }

  /** After a 429: says how long to wait, counting down, with the button off until then. */
  private holdFor(seconds: number, error: string | null): void {
    if (this.retryTimer) clearInterval(this.retryTimer);
    const until = Date.now() + seconds * 1000;
    const tick = () => {
      const left = Math.ceil((until - Date.now()) / 1000);
      if (left <= 0) {
        if (this.retryTimer) clearInterval(this.retryTimer);
        this.retryTimer = null;
        this.submit.disabled = false;
        this.formStatus('You can start jobs again.');
        return;
      }
      this.submit.disabled = true;
      this.formStatus(startError(429, error, left), true);
    };
    tick();
    this.retryTimer = setInterval(tick, 1000);
  }

  private async cancel(job: Job): Promise<void> {
    const res = await api(`/api/jobs/${encodeURIComponent(job.id)}/cancel`, { method: 'POST' }).catch(() => null);
    if (!res) {
      this.status(`The relay is unreachable; ${label(job)} was not cancelled.`, true);
      return;
    }
    const body = (await res.json().catch(() => null)) as Record<string, unknown> | null;
    const answered = parseJob(body && 'job' in body ? body.job : body);
    if (answered) this.upsert(answered);
    if (res.ok) {
      this.status('');
      return;
    }
    if (res.status === 409) {
      this.status(`${label(job)} had already ended.`);
      if (!answered) void this.refreshOne(job.id);
      return;
    }
    const error = body && typeof body.error === 'string' ? body.error : `HTTP ${res.status}`;
    this.status(`Could not cancel ${label(job)}: ${error}.`, true);
  }

  private async refreshOne(id: string): Promise<void> {
    const res = await api(`/api/jobs/${encodeURIComponent(id)}`).catch(() => null);
    if (!res || !res.ok) return;
    const job = parseJob(await res.json().catch(() => null));
    if (job) this.upsert(job);
  }

  /** Shows or hides the job's log (text, escape sequences removed) below its row. */
  private async toggleLog(id: string): Promise<void> {
    const row = this.rows.get(id);
    if (!row) return;
    row.logOpen = !row.logOpen;
    row.log.hidden = !row.logOpen;
    const toggle = row.head.querySelector<HTMLButtonElement>('[data-action="log"]');
    toggle?.setAttribute('aria-expanded', String(row.logOpen));
    if (toggle) toggle.textContent = row.logOpen ? 'hide log' : 'show log';
    if (row.logOpen) await this.loadLog(id);
  }

  private async loadLog(id: string): Promise<void> {
    const row = this.rows.get(id);
    if (!row) return;
    if (!row.log.textContent) row.log.textContent = 'Loading the log…';
    const res = await api(`/api/jobs/${encodeURIComponent(id)}/log`).catch(() => null);
    if (!res) {
      row.log.textContent = 'The relay did not answer; try again.';
      return;
    }
    if (!res.ok) {
      row.log.textContent = res.status === 404 ? 'No log for this job.' : `The log could not be loaded (HTTP ${res.status}).`;
      return;
    }
    const text = await res.text();
    row.log.textContent = text.length === 0
      ? '(nothing printed yet)'
      : text.length > LOG_SHOWN ? `…(the first ${text.length - LOG_SHOWN} characters are in the text log)\n${text.slice(-LOG_SHOWN)}` : text;
  }

  // ----- rows -------------------------------------------------------------

  /** Adds or updates a job's row in place, keeping its open log and the keyboard focus. */
  private upsert(incoming: Job): void {
    const job = newerJob(this.jobs.get(incoming.id), incoming);
    const before = this.jobs.get(job.id);
    this.jobs.set(job.id, job);
    let row = this.rows.get(job.id);
    if (!row) {
      const head = el('div', { class: 'job-head' });
      const log = el('pre', { class: 'job-log', id: `job-log-${job.id}`, hidden: true, tabindex: 0, 'data-testid': 'job-log', 'aria-label': `Log of ${label(job)}` });
      const li = el('li', { class: 'job', tabindex: -1, title: `job ${job.id}`, 'data-job': job.id, 'data-testid': 'job' }, head, log);
      row = { li, head, log, logOpen: false };
      this.rows.set(job.id, row);
    }
    this.renderHead(row, job);
    this.place(row.li, job);
    // An open log follows the job while it runs and once more when it ends.
    if (row.logOpen && (!before || before.state !== job.state || before.log_bytes !== job.log_bytes)) void this.loadLog(job.id);
  }

  /** Puts the row where newest-first order wants it (moving it only when needed). */
  private place(li: HTMLLIElement, job: Job): void {
    const sorted = [...this.jobs.values()].sort(compareJobs);
    const next = sorted[sorted.indexOf(job) + 1];
    const nextEl = next ? this.rows.get(next.id)?.li ?? null : null;
    if (li.parentNode === this.listEl && li.nextSibling === nextEl) return;
    const hadFocus = li.contains(document.activeElement);
    const focused = document.activeElement;
    this.listEl.insertBefore(li, nextEl);
    if (hadFocus && focused instanceof HTMLElement) focused.focus();
  }

  private renderHead(row: Row, job: Job): void {
    const active = document.activeElement;
    const focusedAction = active instanceof HTMLElement && row.head.contains(active) ? active.dataset.action ?? null : null;
    row.li.dataset.state = job.state;
    row.li.className = `job job-${job.state}`;
    const times: Array<Node | string> = [];
    if (job.started_at !== null) times.push('started ', clock(job.started_at));
    else times.push('queued ', clock(job.created_at));
    if (job.ended_at !== null) {
      times.push(' · ended ', clock(job.ended_at));
      if (job.started_at !== null) times.push(` · took ${duration(job.ended_at - job.started_at)}`);
    }
    const actions: HTMLElement[] = [];
    if (isActive(job) && !job.cancel_requested) {
      actions.push(button('cancel', { class: 'job-cancel', 'data-action': 'cancel', 'data-testid': 'job-cancel', 'aria-label': `Cancel ${label(job)}` }, () => void this.cancel(job)));
    }
    actions.push(button(row.logOpen ? 'hide log' : 'show log', { 'data-action': 'log', 'data-testid': 'job-log-toggle', 'aria-expanded': String(row.logOpen), 'aria-controls': row.log.id }, () => void this.toggleLog(job.id)));
    actions.push(el('a', { href: `/api/jobs/${encodeURIComponent(job.id)}/log`, target: '_blank', rel: 'noopener', 'data-action': 'log-text', 'data-testid': 'job-log-link' }, 'log (text)'));
    const pane = paneUrl(job);
    if (pane) {
      actions.push(el('a', { href: pane, 'data-action': 'pane', 'data-testid': 'job-pane' }, isActive(job) ? 'open live pane' : 'open session'));
    }
    const parts: HTMLElement[] = [
      el('span', { class: `badge job-state job-state-${job.state}`, 'data-testid': 'job-state' }, badgeText(job)),
      el('code', { class: 'job-command', title: job.command }, job.command),
      el('span', { class: 'job-meta' },
        job.slot ? `${this.idea} / ${job.slot}` : this.idea,
        job.name ? `, window ${job.name}` : '',
        job.cwd ? ` · in ${job.cwd}` : '',
        ' · ', ...times),
    ];
    if (job.error) parts.push(el('span', { class: 'job-error', 'data-testid': 'job-error' }, job.error));
    parts.push(el('span', { class: 'job-actions' }, ...actions));
    row.head.replaceChildren(...parts);
    if (focusedAction) {
      // The button pressed may be gone (cancel): keep the keyboard on the row.
      const again = row.head.querySelector<HTMLElement>(`[data-action="${focusedAction}"]`);
      (again ?? row.li).focus();
    }
  }
}
