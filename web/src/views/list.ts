//! The home page `/`: the account's terminal sessions grouped by idea
//! (`GET /api/sessions`), each with its state (live, starting, runner
//! offline, closed), attached terminals and viewers, last activity and the
//! copyable attach command; "New terminal" per idea and for a new idea
//! (`POST /api/sessions`, then the terminal opens); closing a session
//! (asks first; `DELETE /api/sessions/{id}` kills it in tmux); a link to
//! each idea's jobs (`/jobs/{idea}`) and its live agents' badges; the runners
//! and the activity feed (`GET /api/activity`, paged). Live updates come
//! from `GET /api/events` (Server-Sent Events); a relay without it is
//! polled. Everything from the relay goes in as text.

import type { Session as SessionInfo, SessionState } from '../protocol';
import { ago, api, button, copyText, el } from '../dom';
import { subscribe } from '../notify';
import { searchForm } from './search';
import { IdeaAgentBadges } from './agents';

const POLL_MS = 10_000;

interface RunnerRow {
  id: string;
  name: string;
  host: string;
  embedded?: boolean;
  online: boolean;
  lastSeenAt?: number | null;
}

interface ActivityEvent {
  id: string;
  at: number;
  kind: string;
  runner_id?: string;
  runner_name?: string;
  session_id?: string;
  idea?: string;
  slot?: string;
  detail?: string;
}

const STATE_LABEL: Record<SessionState, string> = {
  live: 'live',
  starting: 'starting',
  runner_offline: 'runner offline',
  closed: 'closed',
};

const KIND_LABEL: Record<string, string> = {
  runner_paired: 'paired',
  runner_connected: 'connected',
  runner_disconnected: 'disconnected',
  runner_revoked: 'revoked',
  session_created: 'session created',
  session_closed: 'session closed',
};

export function stateOf(s: Partial<SessionInfo>): SessionState {
  if (s.state && s.state in STATE_LABEL) return s.state;
  return s.runner_online ? 'live' : 'runner_offline';
}

/** The smallest positive number not yet used as a slot of the idea. */
export function nextSlot(slots: string[]): string {
  const used = new Set(slots);
  for (let n = 1; ; n++) if (!used.has(String(n))) return String(n);
}

export function mountList(root: HTMLElement): ListView {
  const v = new ListView(root);
  void v.start();
  return v;
}

export class ListView {
  /** Live agents per idea (issue 12). */
  private readonly agentBadges = new IdeaAgentBadges();
  private readonly main: HTMLElement;
  private readonly sessionsEl: HTMLElement;
  private readonly runnersEl: HTMLElement;
  private readonly activityEl: HTMLElement;
  private readonly statusEl: HTMLElement;
  private sessions: SessionInfo[] = [];
  private runners: RunnerRow[] = [];
  private nextBefore: string | null = null;
  private unsubscribe: (() => void) | null = null;
  private poll: ReturnType<typeof setInterval> | null = null;
  private loggedOut = false;

  constructor(root: HTMLElement) {
    const idea = el('input', { name: 'idea', placeholder: 'idea', required: true, maxlength: 64, 'data-testid': 'new-idea', autocomplete: 'off' });
    const slot = el('input', { name: 'slot', placeholder: 'slot (optional)', maxlength: 64, 'data-testid': 'new-slot', autocomplete: 'off' });
    const form = el('form', { class: 'new-idea', 'data-testid': 'new-idea-form' }, idea, slot, el('button', { type: 'submit' }, 'New terminal'));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const i = idea.value.trim();
      if (!i) return;
      void this.create(i, slot.value.trim() || nextSlot(this.sessions.filter((s) => s.idea === i).map((s) => s.slot)));
    });
    this.statusEl = el('p', { class: 'status', 'data-testid': 'list-status' }, 'Loading…');
    this.sessionsEl = el('div', { class: 'ideas', 'data-testid': 'sessions' });
    this.runnersEl = el('ul', { class: 'runners', 'data-testid': 'runners' });
    this.activityEl = el('ul', { class: 'activity', 'data-testid': 'activity' });
    const more = button('older', { class: 'more', 'data-testid': 'activity-more' }, () => void this.loadActivity(true));
    this.main = el('main', { class: 'list' },
      this.statusEl,
      el('section', { class: 'new' }, el('h2', {}, 'New terminal'), form),
      this.sessionsEl,
      el('section', { class: 'side' },
        el('h2', {}, 'Runners'), this.runnersEl,
        el('p', { class: 'account-links' }, el('a', { href: '/pair' }, 'Pair a runner'), ' · ', el('a', { href: '/runners' }, 'Manage runners')),
        el('h2', {}, 'Activity'), this.activityEl, more));
    const logout = el('form', { method: 'post', action: '/logout', class: 'logout' }, el('button', { type: 'submit', class: 'link' }, 'Log out'));
    root.replaceChildren(el('header', { class: 'bar' }, el('span', { class: 'name' }, 'tmux-bridge · sessions'), el('span', { class: 'spacer' }), searchForm(), logout), this.main);
  }

  async start(): Promise<void> {
    await this.refresh();
    if (this.loggedOut) return;
    void this.loadRunners();
    void this.loadActivity(false);
    this.listen();
  }

  dispose(): void {
    this.unsubscribe?.();
    if (this.poll) clearInterval(this.poll);
  }

  /** Live updates from `/api/events`; polling when the relay has no event stream. */
  private listen(): void {
    this.unsubscribe = subscribe(
      {
        sessions: () => void this.refresh(),
        runner: () => {
          void this.loadRunners();
          void this.refresh();
        },
        activity: (ev) => {
          try {
            const e = JSON.parse(ev.data) as ActivityEvent;
            this.activityEl.prepend(this.activityRow(e));
          } catch {
            // A malformed event: the next page load shows it.
          }
        },
      },
      {
        opened: () => {
          document.body.dataset.events = 'open';
        },
        // Never opened: the relay has no event stream (or refused it). Poll.
        unavailable: () => this.startPolling(),
      },
    );
  }

  private startPolling(): void {
    if (this.poll) return;
    this.poll = setInterval(() => {
      if (document.visibilityState === 'visible') {
        void this.refresh();
        void this.loadRunners();
      }
    }, POLL_MS);
  }

  private async refresh(): Promise<void> {
    let res: Response;
    try {
      res = await api('/api/sessions');
    } catch {
      this.status('The relay is unreachable.', true);
      return;
    }
    if (res.status === 401) {
      this.loggedOut = true;
      this.statusEl.replaceChildren('Not logged in. Open the login link that ', el('code', {}, 'tmux-bridge up'), ' or ', el('code', {}, 'tmux-bridge login-link'), ' printed, or ', el('a', { href: '/login' }, 'log in'), '.');
      this.sessionsEl.replaceChildren();
      return;
    }
    if (!res.ok) {
      this.status(`Could not list sessions (HTTP ${res.status}).`, true);
      return;
    }
    let body: { sessions?: unknown };
    try {
      body = (await res.json()) as { sessions?: unknown };
    } catch {
      this.status('The relay sent a malformed session list.', true);
      return;
    }
    this.sessions = Array.isArray(body.sessions) ? (body.sessions as SessionInfo[]) : [];
    this.render();
  }

  private status(text: string, error = false): void {
    this.statusEl.className = `status${error ? ' error' : ''}`;
    this.statusEl.textContent = text;
  }

  private render(): void {
    if (this.sessions.length === 0) {
      this.status('No sessions yet: start one below, or run tmux-bridge up (or tmux-bridge new IDEA) on your machine.');
    } else {
      this.status('');
    }
    const ideas = new Map<string, SessionInfo[]>();
    for (const s of this.sessions) {
      const list = ideas.get(String(s.idea)) ?? [];
      list.push(s);
      ideas.set(String(s.idea), list);
    }
    const groups = [...ideas.entries()].map(([idea, sessions]) => {
      const add = button('New terminal', { class: 'new-terminal', 'data-testid': 'new-terminal', title: `A new terminal for ${idea}` }, () => void this.create(idea, nextSlot(sessions.map((s) => String(s.slot)))));
      const jobs = el('a', { href: `/jobs/${encodeURIComponent(idea)}`, class: 'jobs-link', 'data-testid': 'idea-jobs', title: `Jobs of ${idea}` }, 'jobs');
      return el('section', { class: 'idea', 'data-idea': idea },
        el('h2', {}, el('span', { class: 'idea-name' }, idea), add, jobs, this.agentBadges.badge(idea)),
        el('ul', { class: 'sessions' }, ...sessions.map((s) => this.row(s))));
    });
    this.sessionsEl.replaceChildren(...groups);
  }

  private row(s: SessionInfo): HTMLElement {
    const id = String(s.id ?? '');
    const state = stateOf(s);
    const attach = String(s.attach ?? '');
    const copy = button('copy', { class: 'copy', title: 'Copy the attach command' }, () => void copyText(attach));
    const close = state === 'closed'
      ? button('remove', { class: 'close-session', 'data-testid': 'remove-session', title: 'Remove the closed session and its history' }, () => void this.remove(s, false))
      : button('close', { class: 'close-session', 'data-testid': 'close-session', title: 'Kill the session in tmux (asks first)' }, () => void this.remove(s, true));
    const counts: string[] = [];
    if (typeof s.attached_clients === 'number') counts.push(`${s.attached_clients} terminal${s.attached_clients === 1 ? '' : 's'}`);
    if (typeof s.viewers === 'number') counts.push(`${s.viewers} viewing`);
    return el('li', { class: `session state-${state}`, 'data-session': id },
      el('a', { href: `/s/${encodeURIComponent(id)}`, class: 'open' }, `${s.idea ?? '?'} / ${s.slot ?? '?'}`),
      el('span', { class: `badge state-${state}`, 'data-testid': 'state' }, STATE_LABEL[state]),
      // The runner's state when the badge does not say it already.
      state === 'live' || state === 'starting' ? el('span', { class: 'runner online' }, 'runner online') : null,
      el('span', { class: 'host' }, s.host ? `on ${s.host}` : ''),
      el('span', { class: 'counts' }, counts.join(' · ')),
      el('span', { class: 'activity-at', title: 'last activity' }, s.last_activity_at ? ago(s.last_activity_at) : ''),
      el('span', { class: 'tmux-name' }, String(s.tmux_session ?? '')),
      el('span', { class: 'seq' }, `seq ${Number(s.head_seq ?? 0)}`),
      el('span', { class: 'attach-box' }, el('code', { class: 'attach' }, attach), copy),
      close);
  }

  /** Asks a runner for a session and opens it (`POST /api/sessions`). */
  async create(idea: string, slot: string, runnerId?: string): Promise<void> {
    this.status(`Starting ${idea} / ${slot}…`);
    let res: Response;
    try {
      res = await api('/api/sessions', { method: 'POST', body: JSON.stringify(runnerId ? { idea, slot, runner_id: runnerId } : { idea, slot }) });
    } catch {
      this.status('The relay is unreachable.', true);
      return;
    }
    const body = (await res.json().catch(() => ({}))) as { session?: SessionInfo; error?: string; runners?: RunnerRow[] };
    if ((res.status === 201 || res.status === 200) && body.session) {
      location.assign(`/s/${encodeURIComponent(String(body.session.id))}`);
      return;
    }
    if (res.status === 409 && Array.isArray(body.runners)) {
      // Several runners online: the person picks one.
      this.statusEl.replaceChildren(`Which machine should run ${idea} / ${slot}? `, ...body.runners.map((r) => button(`${r.name} (${r.host})`, { class: 'pick-runner' }, () => void this.create(idea, slot, r.id))));
      return;
    }
    this.status(body.error ? `Could not start it: ${body.error}` : `Could not start it (HTTP ${res.status}).`, true);
  }

  private async remove(s: SessionInfo, kill: boolean): Promise<void> {
    const q = kill
      ? `Close ${s.idea} / ${s.slot}? This kills the tmux session ${s.tmux_session} and everything running in it.`
      : `Remove ${s.idea} / ${s.slot} and its history from the list?`;
    if (!window.confirm(q)) return;
    let res: Response;
    try {
      res = await api(`/api/sessions/${encodeURIComponent(String(s.id))}`, { method: 'DELETE' });
    } catch {
      this.status('The relay is unreachable.', true);
      return;
    }
    if (res.status === 204 || res.status === 404) {
      await this.refresh();
      return;
    }
    const body = (await res.json().catch(() => ({}))) as { error?: string };
    this.status(res.status === 503 ? 'Its runner is offline: start it again to close the session.' : `Could not close it: ${body.error ?? `HTTP ${res.status}`}`, true);
  }

  private async loadRunners(): Promise<void> {
    const res = await api('/api/runners').catch(() => null);
    if (!res || !res.ok) return;
    const body = (await res.json().catch(() => ({}))) as { runners?: RunnerRow[] };
    this.runners = Array.isArray(body.runners) ? body.runners : [];
    this.runnersEl.replaceChildren(...this.runners.map((r) => el('li', { 'data-runner': r.id },
      el('span', { class: 'name' }, r.name), ' ',
      el('span', { class: 'host' }, r.host ? `on ${r.host}` : ''), ' ',
      el('span', { class: `runner ${r.online ? 'online' : 'offline'}` }, r.online ? 'online' : 'offline'), ' ',
      el('span', { class: 'seen' }, r.online ? '' : `seen ${ago(r.lastSeenAt)}`))));
    if (this.runners.length === 0) this.runnersEl.append(el('li', { class: 'muted' }, 'No runners yet.'));
  }

  private async loadActivity(older: boolean): Promise<void> {
    const q = older && this.nextBefore ? `?before=${encodeURIComponent(this.nextBefore)}&limit=20` : '?limit=20';
    const res = await api(`/api/activity${q}`).catch(() => null);
    if (!res || !res.ok) {
      if (!older) this.activityEl.replaceChildren(el('li', { class: 'muted' }, 'No activity feed on this relay.'));
      return;
    }
    const body = (await res.json().catch(() => ({}))) as { events?: ActivityEvent[]; next_before?: string | null };
    const rows = (Array.isArray(body.events) ? body.events : []).map((e) => this.activityRow(e));
    if (older) this.activityEl.append(...rows);
    else this.activityEl.replaceChildren(...rows);
    this.nextBefore = body.next_before ?? null;
    const more = this.main.querySelector<HTMLButtonElement>('[data-testid="activity-more"]');
    if (more) more.hidden = !this.nextBefore;
  }

  private activityRow(e: ActivityEvent): HTMLElement {
    const what = KIND_LABEL[e.kind] ?? e.kind;
    const sess = e.idea ? ` ${e.idea} / ${e.slot ?? ''}` : '';
    return el('li', { 'data-kind': e.kind }, el('span', { class: 'when' }, ago(e.at)), ' ', `${e.runner_name ?? 'runner'}: ${what}${sess}`, e.detail ? ` (${e.detail})` : '');
  }
}
