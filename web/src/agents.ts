//! Agents as the relay's API describes them (`/api/agents`, the `agent`
//! event of `/api/events`), watched panes (the `pane_activity` event), the
//! words the page shows for them and the tab title while some are idle;
//! pure: no DOM, no fetch, no clock, so node's unit tests run it.

export type AgentState = 'starting' | 'running' | 'idle' | 'stopped' | 'errored';
export const AGENT_KINDS = ['claude-code', 'codex', 'cursor', 'custom'] as const;
export type AgentKind = (typeof AGENT_KINDS)[number];

/** One agent, as `GET /api/agents/{id}` answers it. Times are ms since the epoch. */
export interface Agent {
  id: string;
  idea: string;
  slot: string | null;
  name: string;
  kind: string;
  args: string[];
  command: string;
  state: AgentState;
  state_at: number;
  idle_ms: number;
  exit_code: number | null;
  signal: number | null;
  error: string | null;
  session_id: string | null;
  pane: string | null;
  created_at: number;
}

/** A watched pane's activity, as the `pane_activity` event carries it. */
export interface PaneActivity {
  session_id: string;
  pane: string;
  idle: boolean;
  idea: string | null;
  slot: string | null;
}

const STATES: ReadonlySet<string> = new Set(['starting', 'running', 'idle', 'stopped', 'errored']);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const id = (v: unknown): string | null => (typeof v === 'number' ? String(v) : str(v));

/** An agent from JSON the relay sent, or null when it is not one. */
export function parseAgent(v: unknown): Agent | null {
  if (!v || typeof v !== 'object') return null;
  const o = v as Record<string, unknown>;
  const aid = id(o.id);
  const state = str(o.state);
  if (!aid || !state || !STATES.has(state)) return null;
  return {
    id: aid,
    idea: str(o.idea) ?? '',
    slot: str(o.slot),
    name: str(o.name) ?? str(o.kind) ?? 'agent',
    kind: str(o.kind) ?? 'custom',
    args: Array.isArray(o.args) ? o.args.filter((a): a is string => typeof a === 'string') : [],
    command: str(o.command) ?? '',
    state: state as AgentState,
    state_at: num(o.state_at) ?? 0,
    idle_ms: num(o.idle_ms) ?? 30_000,
    exit_code: num(o.exit_code),
    signal: num(o.signal),
    error: str(o.error),
    session_id: id(o.session_id),
    pane: str(o.pane),
    created_at: num(o.created_at) ?? 0,
  };
}

/** A `pane_activity` event's data, or null. */
export function parsePaneActivity(v: unknown): PaneActivity | null {
  if (!v || typeof v !== 'object') return null;
  const o = v as Record<string, unknown>;
  const sid = id(o.session_id);
  const pane = str(o.pane);
  if (!sid || !pane || typeof o.idle !== 'boolean') return null;
  return { session_id: sid, pane, idle: o.idle, idea: str(o.idea), slot: str(o.slot) };
}

/** Whether the agent still runs (it can be stopped). */
export function isLive(a: Pick<Agent, 'state'>): boolean {
  return a.state === 'starting' || a.state === 'running' || a.state === 'idle';
}

/** The badge's words: `idle`, `stopped (exit 0)`, `errored`… */
export function agentBadge(a: Pick<Agent, 'state' | 'exit_code' | 'signal'>): string {
  if (a.state === 'stopped') {
    if (a.signal !== null) return `stopped (signal ${a.signal})`;
    if (a.exit_code !== null) return `stopped (exit ${a.exit_code})`;
  }
  return a.state;
}

/**
 * Arguments typed in one line, split like a shell would split plain words:
 * spaces separate, single or double quotes keep spaces, a backslash keeps
 * the next character. Nothing is expanded (the runner quotes each one).
 */
export function splitArgs(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let any = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] ?? '';
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < line.length) cur += line[++i] ?? '';
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      any = true;
    } else if (c === '\\' && i + 1 < line.length) {
      cur += line[++i] ?? '';
      any = true;
    } else if (/\s/.test(c)) {
      if (any || cur) out.push(cur);
      cur = '';
      any = false;
    } else {
      cur += c;
    }
  }
  if (any || cur) out.push(cur);
  return out;
}

/** The tab title while `idle` names are idle (newest last): `(2) idle · name · base`. */
export function idleTitle(base: string, idle: readonly string[]): string {
  const last = idle[idle.length - 1];
  return last === undefined ? base : `(${idle.length}) idle · ${last} · ${base}`;
}
