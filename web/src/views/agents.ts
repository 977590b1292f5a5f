//! The agents section of an idea's page (`/jobs/{idea}`, mounted by the
//! jobs view): the idea's agents (`GET /api/agents?idea=…`) with a badge
//! per state (starting, running, idle, stopped, errored), the time of
//! their last change, their error in words, a link to their live pane and
//! a stop button (`POST /api/agents/{id}/stop`); a form starts one
//! (`POST /api/agents`: a kind, arguments, a command for `custom`, an idle
//! time) and asks for the permission to notify on that click. Rows follow
//! the `agent` events of the shared event stream in place. Everything from
//! the relay goes in as text.

import { api, button, el } from '../dom';
import { AGENT_KINDS, agentBadge, isLive, parseAgent, splitArgs, type Agent } from '../agents';
import { paneUrl, retryAfterSeconds, startError } from '../jobs';
import { askNotifications, subscribe } from '../notify';

export function mountAgents(parent: HTMLElement, idea: string): AgentsView {
  const v = new AgentsView(parent, idea);
  void v.load();
  return v;
}

export class AgentsView {
  private readonly agents = new Map<string, Agent>();
  private readonly rows = new Map<string, HTMLLIElement>();
  private readonly listEl: HTMLOListElement;
  private readonly statusEl: HTMLElement;
  private readonly formStatusEl: HTMLElement;
  private readonly kind: HTMLSelectElement;
  private readonly args: HTMLInputElement;
  private readonly command: HTMLInputElement;
  private readonly commandBox: HTMLElement;
  private readonly idleSecs: HTMLInputElement;
  private readonly submit: HTMLButtonElement;

  constructor(parent: HTMLElement, private readonly idea: string) {
    this.kind = el('select', { id: 'agent-kind', name: 'kind', 'data-testid': 'agent-kind' });
    for (const k of AGENT_KINDS) this.kind.append(el('option', { value: k }, k));
    this.command = el('input', { id: 'agent-command', name: 'command', maxlength: 16384, autocomplete: 'off', spellcheck: 'false', placeholder: './my-agent.sh', 'data-testid': 'agent-command' });
    this.commandBox = el('div', { class: 'agent-command', hidden: true }, el('label', { for: 'agent-command' }, 'Command (custom)'), this.command);
    this.args = el('input', { id: 'agent-args', name: 'args', autocomplete: 'off', spellcheck: 'false', placeholder: '--model o3 "fix the tests"', 'data-testid': 'agent-args' });
    this.idleSecs = el('input', { id: 'agent-idle', name: 'idle', type: 'number', min: 1, max: 86400, step: 'any', placeholder: 'account default', 'data-testid': 'agent-idle' });
    this.submit = el('button', { type: 'submit', 'data-testid': 'agent-start' }, 'Start agent');
    this.formStatusEl = el('p', { class: 'status', role: 'status', 'aria-live': 'polite', 'data-testid': 'agent-form-status' });
    this.kind.addEventListener('change', () => {
      this.commandBox.hidden = this.kind.value !== 'custom';
    });
    const form = el('form', { class: 'job-form agent-form', 'data-testid': 'agent-form' },
      el('label', { for: 'agent-kind' }, 'Agent'), this.kind,
      this.commandBox,
      el('label', { for: 'agent-args' }, 'Arguments (optional)'), this.args,
      el('label', { for: 'agent-idle' }, 'Idle after (seconds without output)'), this.idleSecs,
      el('div', { class: 'job-form-actions' }, this.submit),
      this.formStatusEl);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void askNotifications();
      void this.create();
    });
    this.statusEl = el('p', { class: 'status', role: 'status', 'aria-live': 'polite', 'data-testid': 'agents-status' }, 'Loading…');
    this.listEl = el('ol', { class: 'jobs agents', 'data-testid': 'agents', 'aria-label': `Agents of ${idea}` });
    const section = el('section', { class: 'agents-section', 'aria-label': 'Agents', 'data-testid': 'agents-section' },
      el('h2', {}, 'Agents'),
      el('p', { class: 'hint' }, 'An agent that prints nothing for its idle time is probably waiting for you: this page tells you (a notification, and the tab title). ',
        button('Enable notifications', { 'data-testid': 'agent-notify' }, () => void askNotifications().then((p) => this.status(p === 'granted' ? 'Notifications are on.' : p === 'unsupported' ? 'This browser cannot notify; the tab title will tell you.' : 'Notifications are off; the tab title will tell you.')))),
      form, this.statusEl, this.listEl);
    // Above the jobs: the first section of the page after its title.
    const h1 = parent.querySelector('h1');
    if (h1) h1.after(section);
    else parent.prepend(section);
    subscribe(
      {
        agent: (ev) => {
          let a: Agent | null = null;
          try {
            a = parseAgent(JSON.parse(ev.data));
          } catch {
            return;
          }
          if (a && a.idea === this.idea) this.upsert(a);
        },
      },
      // A reconnect may have missed events: list again.
      { reopened: () => void this.load() },
    );
  }

  async load(): Promise<void> {
    const res = await api(`/api/agents?${new URLSearchParams({ idea: this.idea }).toString()}`).catch(() => null);
    if (!res) return this.status('The relay is unreachable; agents will show when it answers.', true);
    if (res.status === 401) return this.status('Not logged in.', true);
    if (!res.ok) return this.status(res.status === 404 ? 'This relay has no agents (update tmux-relay).' : `Could not list the agents (HTTP ${res.status}).`, true);
    const body = (await res.json().catch(() => null)) as { agents?: unknown } | null;
    for (const raw of Array.isArray(body?.agents) ? body.agents : []) {
      const a = parseAgent(raw);
      if (a) this.upsert(a);
    }
    this.renderEmpty();
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
    if (this.agents.size === 0) this.status(`No agents for ${this.idea} yet.`);
    else if (!this.statusEl.classList.contains('error')) this.status('');
  }

  private async create(): Promise<void> {
    const kind = this.kind.value;
    const command = this.command.value.trim();
    if (kind === 'custom' && !command) {
      this.formStatus('Type the command a custom agent runs.', true);
      this.command.focus();
      return;
    }
    const body: Record<string, unknown> = { idea: this.idea, kind, args: splitArgs(this.args.value) };
    if (kind === 'custom') body.command = command;
    const secs = this.idleSecs.value.trim();
    if (secs) {
      const ms = Math.round(Number(secs) * 1000);
      if (!Number.isFinite(ms) || ms < 1000 || ms > 86_400_000) {
        this.formStatus('The idle time is 1 s to 1 day.', true);
        return;
      }
      body.idle_ms = ms;
    }
    this.submit.disabled = true;
    this.formStatus('Starting…');
    const res = await api('/api/agents', { method: 'POST', body: JSON.stringify(body) }).catch(() => null);
    this.submit.disabled = false;
    if (!res) return this.formStatus('The relay is unreachable; the agent was not started.', true);
    const answer = (await res.json().catch(() => null)) as Record<string, unknown> | null;
    if (res.ok) {
      const a = parseAgent(answer);
      if (a) this.upsert(a);
      this.renderEmpty();
      this.formStatus(a ? `Started ${a.name}.` : 'Started.');
      return;
    }
    const error = answer && typeof answer.error === 'string' ? answer.error : null;
    this.formStatus(startError(res.status, error, retryAfterSeconds(res.headers.get('Retry-After'), Date.now())).replace(/job/g, 'agent'), true);
  }

  private async stop(a: Agent): Promise<void> {
    const res = await api(`/api/agents/${encodeURIComponent(a.id)}/stop`, { method: 'POST' }).catch(() => null);
    if (!res) return this.status(`The relay is unreachable; ${a.name} was not stopped.`, true);
    const answer = parseAgent(await res.json().catch(() => null));
    if (answer) this.upsert(answer);
    if (res.status === 409) this.status(`${a.name} had stopped already.`);
    else if (!res.ok) this.status(`Could not stop ${a.name} (HTTP ${res.status}).`, true);
  }

  private upsert(a: Agent): void {
    const before = this.agents.get(a.id);
    // Events may pass a listing: keep the newer state.
    if (before && before.state_at > a.state_at) return;
    this.agents.set(a.id, a);
    let li = this.rows.get(a.id);
    if (!li) {
      li = el('li', { class: 'job agent', 'data-agent': a.id, 'data-testid': 'agent' });
      this.rows.set(a.id, li);
      const newer = [...this.agents.values()].filter((x) => x.created_at > a.created_at).length;
      this.listEl.insertBefore(li, this.listEl.children[newer] ?? null);
    }
    li.dataset.state = a.state;
    const since = new Date(a.state_at);
    const actions: HTMLElement[] = [];
    if (isLive(a)) actions.push(button('stop', { 'data-testid': 'agent-stop', 'aria-label': `Stop ${a.name}` }, () => void this.stop(a)));
    const pane = paneUrl(a);
    if (pane && isLive(a)) actions.push(el('a', { href: pane, 'data-testid': 'agent-pane' }, 'open live pane'));
    li.replaceChildren(
      el('div', { class: 'job-head' },
        el('span', { class: `badge job-state agent-state-${a.state}`, 'data-testid': 'agent-state' }, agentBadge(a)),
        el('code', { class: 'job-command', title: [a.command, ...a.args].join(' ') }, a.name),
        el('span', { class: 'job-meta' }, a.kind, a.args.length ? ` ${a.args.join(' ')}` : '', ` · idle after ${Math.round(a.idle_ms / 100) / 10} s · ${a.state} since `,
          el('time', { datetime: since.toISOString(), title: since.toLocaleString() }, since.toLocaleTimeString())),
        a.error ? el('span', { class: 'job-error', 'data-testid': 'agent-error' }, a.error) : null,
        el('span', { class: 'job-actions' }, ...actions)));
  }
}

/**
 * Per-idea agent badges for the session list: `GET /api/agents` once, then
 * the `agent` events; [`badge`](IdeaAgentBadges.badge) gives one element per
 * idea, kept up to date in place (`claude-code idle`, `2 agents running`…),
 * empty while the idea has no live agent.
 */
export class IdeaAgentBadges {
  private readonly agents = new Map<string, Agent>();
  private readonly els = new Map<string, HTMLElement>();

  constructor() {
    subscribe({
      agent: (ev) => {
        try {
          const a = parseAgent(JSON.parse(ev.data));
          if (a) this.put(a);
        } catch {
          // A malformed event: the next load shows it.
        }
      },
    });
    void this.load();
  }

  private async load(): Promise<void> {
    const res = await api('/api/agents').catch(() => null);
    if (!res || !res.ok) return;
    const body = (await res.json().catch(() => null)) as { agents?: unknown } | null;
    for (const raw of Array.isArray(body?.agents) ? body.agents : []) {
      const a = parseAgent(raw);
      if (a) this.put(a);
    }
  }

  private put(a: Agent): void {
    const before = this.agents.get(a.id);
    if (before && before.state_at > a.state_at) return;
    this.agents.set(a.id, a);
    this.render(a.idea);
  }

  /** The badge element of `idea`. */
  badge(idea: string): HTMLElement {
    let e = this.els.get(idea);
    if (!e) {
      e = el('a', { href: `/jobs/${encodeURIComponent(idea)}`, class: 'idea-agents', 'data-testid': 'idea-agents' });
      this.els.set(idea, e);
      this.render(idea);
    }
    return e;
  }

  private render(idea: string): void {
    const e = this.els.get(idea);
    if (!e) return;
    const live = [...this.agents.values()].filter((a) => a.idea === idea && isLive(a));
    const idle = live.filter((a) => a.state === 'idle');
    e.replaceChildren(...live.map((a) => el('span', { class: `badge agent-state-${a.state}`, title: `${a.name}: ${a.state}` }, `${a.name} ${a.state}`)));
    e.hidden = live.length === 0;
    e.dataset.idle = String(idle.length);
  }
}
