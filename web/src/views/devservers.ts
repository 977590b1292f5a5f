//! The dev servers section of `/jobs/{idea}` (issue 12): the idea's dev
//! servers (`GET /api/devservers?idea=…`, newest first), each with its
//! state, the ports the runner detected, each with an "Open preview" link
//! to its app-origin preview path `/preview/{id}/{port}` (a new tab,
//! `rel=noopener`), its recent events (port detected, port closed,
//! process exited) and a stop button while it runs
//! (`POST /api/devservers/{id}/stop`); a form starts one
//! (`POST /api/devservers`). Live from the `devserver` and `job` events of
//! `/api/events`; polled when the relay has no event stream. Everything
//! from the relay and from the dev server goes in as text; links are only
//! ever the preview paths the page builds itself. It does not serve or
//! check previews (the preview route does) nor show logs (the jobs list
//! does: a dev server is a job there too).

import { api, button, clock, commandForm, el } from '../dom';
import { closeEvents, subscribe } from '../notify';
import { applyEvent, eventText, mergeJob, parseDevEvent, parseDevserver, type DevEvent, type Devserver } from '../devservers';
import { badgeText, compareJobs, isActive, paneUrl, retryAfterSeconds } from '../jobs';

const POLL_MS = 5_000;
/** Events shown under a dev server (its newest). */
const EVENTS_SHOWN = 8;

/** A dev server in a sentence: its command, quoted, shortened when long. */
function label(d: Pick<Devserver, 'command'>): string {
  const c = d.command.replace(/\s+/g, ' ').trim();
  return `“${c.length > 60 ? `${c.slice(0, 59)}…` : c}”`;
}

/** What the person reads when starting a dev server failed with `status`. */
function startError(status: number, error: string | null, wait: number | null): string {
  const why = error ? error.trim().replace(/\.$/, '') : null;
  if (status === 429) return `Too many jobs and dev servers started in the last minute. Try again in ${wait ?? 60} s.`;
  if (status === 404 && !why) return 'The dev server was not started: this relay has no dev servers (update tmux-relay).';
  return `The dev server was not started: ${why ?? `the relay answered HTTP ${status}`}.`;
}

/** Mounts the section into `main` (after its heading); returns the view. */
export function mountDevservers(main: HTMLElement, idea: string): DevserversView {
  const v = new DevserversView(main, idea);
  void v.start();
  return v;
}

export class DevserversView {
  private readonly servers = new Map<string, Devserver>();
  private readonly rows = new Map<string, HTMLLIElement>();
  private readonly section: HTMLElement;
  private readonly listEl: HTMLOListElement;
  private readonly statusEl: HTMLElement;
  private readonly formStatusEl: HTMLElement;
  private readonly command: HTMLInputElement;
  private readonly cwd: HTMLInputElement;
  private readonly submit: HTMLButtonElement;
  private unsubscribe: (() => void) | null = null;
  private poll: ReturnType<typeof setInterval> | null = null;
  private loggedOut = false;

  constructor(main: HTMLElement, private readonly idea: string) {
    const f = commandForm('devserver', 'npm run dev', 'Start dev server', () => void this.create());
    this.command = f.command;
    this.cwd = f.cwd;
    this.submit = f.submit;
    this.formStatusEl = f.status;
    const form = f.form;
    this.statusEl = el('p', { class: 'status', role: 'status', 'aria-live': 'polite', 'data-testid': 'devservers-status' }, 'Loading…');
    this.listEl = el('ol', { class: 'jobs devservers', 'data-testid': 'devservers', 'aria-label': `Dev servers of ${idea}` });
    this.section = el('section', { class: 'devserver-section', 'aria-label': 'Dev servers' },
      el('h2', {}, 'Dev servers'),
      form,
      this.statusEl,
      this.listEl);
    const heading = main.querySelector('h1');
    if (heading) heading.after(this.section);
    else main.append(this.section);
  }

  async start(): Promise<void> {
    // Listen first, then list: nothing is lost between the two.
    this.listen();
    await this.load();
  }

  dispose(): void {
    this.unsubscribe?.();
    if (this.poll) clearInterval(this.poll);
  }

  // ----- data -------------------------------------------------------------

  private async load(): Promise<void> {
    const res = await api(`/api/devservers?${new URLSearchParams({ idea: this.idea }).toString()}`).catch(() => null);
    if (!res) {
      this.status('The relay is unreachable; the dev servers will refresh when it answers.', true);
      return;
    }
    if (res.status === 401) {
      this.loggedOut = true;
      this.unsubscribe?.();
      closeEvents();
      this.status('Not logged in.', true);
      return;
    }
    const body = (await res.json().catch(() => null)) as { devservers?: unknown; error?: unknown } | null;
    if (!res.ok) {
      const why = body && typeof body.error === 'string' ? body.error : `HTTP ${res.status}`;
      this.status(res.status === 404 ? 'This relay has no dev servers yet (update tmux-relay).' : `Could not list the dev servers: ${why}.`, true);
      return;
    }
    const list = body && Array.isArray(body.devservers) ? body.devservers : [];
    for (const raw of list) {
      const d = parseDevserver(raw);
      if (d) this.upsert(mergeJob(this.servers.get(d.id), d));
    }
    this.renderEmpty();
  }

  private listen(): void {
    this.unsubscribe = subscribe(
      {
        job: (ev) => {
          const d = this.parse(ev, parseDevserver);
          if (d && d.idea === this.idea) {
            // A job event has no events list: keep the page's.
            const cur = this.servers.get(d.id);
            this.upsert(mergeJob(cur, { ...d, events: cur?.events ?? [] }));
            this.renderEmpty();
          }
        },
        devserver: (ev) => {
          const e = this.parse(ev, parseDevEvent);
          if (!e || e.idea !== this.idea) return;
          const cur = this.servers.get(e.job);
          if (cur) this.upsert(applyEvent(cur, e));
          else void this.load();
        },
      },
      {
        opened: () => {
          this.section.dataset.events = 'open';
        },
        reopened: () => void this.load(),
        unavailable: () => {
          if (!this.loggedOut) this.startPolling();
        },
      },
    );
  }

  private parse<T>(ev: MessageEvent<string>, parse: (v: unknown) => T | null): T | null {
    try {
      return parse(JSON.parse(ev.data));
    } catch {
      // A malformed event: the next listing shows the dev server.
      return null;
    }
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
    if (this.servers.size === 0) this.status(`No dev servers for ${this.idea} yet: start one above.`);
    else if (!this.statusEl.classList.contains('error')) this.status('');
  }

  // ----- actions ----------------------------------------------------------

  private async create(): Promise<void> {
    const command = this.command.value.trim();
    if (!command) {
      this.formStatus('Type the command that starts the dev server.', true);
      this.command.focus();
      return;
    }
    const cwd = this.cwd.value.trim();
    this.submit.disabled = true;
    this.formStatus('Starting…');
    const res = await api('/api/devservers', { method: 'POST', body: JSON.stringify(cwd ? { idea: this.idea, command, cwd } : { idea: this.idea, command }) }).catch(() => null);
    this.submit.disabled = false;
    if (!res) {
      this.formStatus('The relay is unreachable; the dev server was not started.', true);
      return;
    }
    if (res.status === 401) {
      location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
      return;
    }
    const body = (await res.json().catch(() => null)) as Record<string, unknown> | null;
    if (res.ok) {
      const d = parseDevserver(body);
      if (d) this.upsert(mergeJob(this.servers.get(d.id), d));
      this.renderEmpty();
      this.formStatus(d ? `Started ${label(d)}.` : 'Started.');
      this.command.value = '';
      return;
    }
    const error = body && typeof body.error === 'string' ? body.error : null;
    this.formStatus(startError(res.status, error, retryAfterSeconds(res.headers.get('Retry-After'), Date.now())), true);
  }

  private async stop(d: Devserver): Promise<void> {
    const res = await api(`/api/devservers/${encodeURIComponent(d.id)}/stop`, { method: 'POST' }).catch(() => null);
    if (!res) {
      this.status(`The relay is unreachable; ${label(d)} was not stopped.`, true);
      return;
    }
    const body = (await res.json().catch(() => null)) as unknown;
    const answered = parseDevserver(body);
    if (answered) this.upsert(mergeJob(this.servers.get(d.id), answered));
    if (res.ok) {
      this.status('');
    } else if (res.status === 409) {
      this.status(`${label(d)} had already ended.`);
    } else {
      const o = body as { error?: unknown } | null;
      this.status(`Could not stop ${label(d)}: ${o && typeof o.error === 'string' ? o.error : `HTTP ${res.status}`}.`, true);
    }
  }

  // ----- rows -------------------------------------------------------------

  private upsert(d: Devserver): void {
    this.servers.set(d.id, d);
    let li = this.rows.get(d.id);
    if (!li) {
      li = el('li', { class: 'job devserver', tabindex: -1, title: `dev server ${d.id}`, 'data-devserver': d.id, 'data-testid': 'devserver' });
      this.rows.set(d.id, li);
    }
    this.render(li, d);
    const sorted = [...this.servers.values()].sort(compareJobs);
    const next = sorted[sorted.indexOf(d) + 1];
    const nextEl = next ? this.rows.get(next.id) ?? null : null;
    if (li.parentNode !== this.listEl || li.nextSibling !== nextEl) this.listEl.insertBefore(li, nextEl);
  }

  private render(li: HTMLLIElement, d: Devserver): void {
    const active = document.activeElement;
    const focused = active instanceof HTMLElement && li.contains(active) ? active.dataset.action ?? null : null;
    li.dataset.state = d.state;
    li.className = `job devserver job-${d.state}`;
    const actions: HTMLElement[] = [];
    if (isActive(d) && !d.cancel_requested) {
      actions.push(button('stop', { 'data-action': 'stop', 'data-testid': 'devserver-stop', 'aria-label': `Stop ${label(d)}` }, () => void this.stop(d)));
    }
    const pane = paneUrl(d);
    if (pane) actions.push(el('a', { href: pane, 'data-action': 'pane', 'data-testid': 'devserver-pane' }, isActive(d) ? 'open live pane' : 'open session'));
    const head = el('div', { class: 'job-head' },
      el('span', { class: `badge job-state job-state-${d.state}`, 'data-testid': 'devserver-state' }, badgeText(d)),
      el('code', { class: 'job-command', title: d.command }, d.command),
      el('span', { class: 'job-meta' }, d.cwd ? `in ${d.cwd} · ` : '', d.started_at !== null ? 'started ' : 'queued ', clock(d.started_at ?? d.created_at)),
      d.error ? el('span', { class: 'job-error', 'data-testid': 'devserver-error' }, d.error) : null,
      el('span', { class: 'job-actions' }, ...actions));
    const ports = el('ul', { class: 'devserver-ports', 'data-testid': 'devserver-ports', 'aria-label': `Ports of ${label(d)}` },
      ...d.ports.map((p) => el('li', { 'data-testid': 'devserver-port', 'data-port': p.port },
        el('span', { class: 'devserver-port' }, `${p.addr || 'localhost'}:${p.port}`),
        p.source === 'output' ? el('span', { class: 'job-meta' }, ' (from a URL it printed) ') : ' ',
        el('a', { href: p.url, target: '_blank', rel: 'noopener', 'data-action': `preview-${p.port}`, 'data-testid': 'devserver-preview' }, 'Open preview'))));
    if (d.ports.length === 0 && isActive(d)) ports.append(el('li', { class: 'job-meta' }, 'no port detected yet'));
    const events = el('ol', { class: 'devserver-events', 'data-testid': 'devserver-events', 'aria-label': `Events of ${label(d)}` },
      ...d.events.slice(-EVENTS_SHOWN).map((e: DevEvent) => el('li', { 'data-kind': e.kind, 'data-testid': 'devserver-event' }, clock(e.at), ' ', el('span', { class: 'devserver-event-text' }, eventText(e)))));
    li.replaceChildren(head, ports, events);
    if (focused) {
      const again = li.querySelector<HTMLElement>(`[data-action="${focused}"]`);
      (again ?? li).focus();
    }
  }
}
