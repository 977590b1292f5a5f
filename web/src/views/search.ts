//! `/search?q=…`: full-text search over everything the account's terminals
//! printed, its jobs' logs and lines other tools sent (`GET /api/search`).
//! Each result shows its line with the lines around it and opens the
//! recording at that moment (`/play/{id}`) or the live session; a job's
//! line opens its log and its idea's jobs. Everything from panes goes in as
//! text, never as HTML.

import { api, ago, el } from '../dom';

/** One hit of `GET /api/search` (docs/protocol.md, HTTP API of the page):
 *  a terminal's line (`kind` "session"). */
export interface SearchHit {
  kind?: 'session';
  session_id: string;
  idea: string;
  slot: string;
  pane: string;
  seq: number;
  at: number;
  line: string;
  before: string[];
  after: string[];
}

/** A line of a job's log (`kind` "job") or one another tool sent ("log"). */
export interface LogHit {
  kind: 'job' | 'log';
  idea: string | null;
  job_id?: string;
  source: string;
  at: number;
  line: string;
  before: string[];
  after: string[];
}

export type AnyHit = SearchHit | LogHit;

/** The URL that plays `hit`'s pane from a little before its line. */
export function playUrl(hit: Pick<SearchHit, 'session_id' | 'pane' | 'at'>): string {
  const q = new URLSearchParams({ pane: hit.pane, at: String(hit.at) });
  return `/play/${encodeURIComponent(hit.session_id)}?${q.toString()}`;
}

/** A search form; submitting goes to `/search?q=…`. */
export function searchForm(initial = ''): HTMLFormElement {
  const input = el('input', { type: 'search', name: 'q', placeholder: 'Search all output', maxlength: 256, 'data-testid': 'search-input', autocomplete: 'off', 'aria-label': 'Search all terminal output' });
  input.value = initial;
  return el('form', { class: 'search', method: 'get', action: '/search', role: 'search', 'data-testid': 'search-form' }, input);
}

export function mountSearch(root: HTMLElement): void {
  const q = new URLSearchParams(location.search).get('q') ?? '';
  const status = el('p', { class: 'status', 'data-testid': 'search-status' });
  const results = el('ol', { class: 'results', 'data-testid': 'search-results' });
  root.replaceChildren(
    el('header', { class: 'bar' }, el('a', { href: '/', class: 'home' }, 'sessions'), el('span', { class: 'spacer' }), searchForm(q)),
    el('main', { class: 'search-page' }, el('h2', {}, q ? `Output matching “${q}”` : 'Search'), status, results),
  );
  if (q.trim()) void run(q, status, results);
  else status.textContent = 'Type words to find in everything your terminals printed.';
}

async function run(q: string, status: HTMLElement, results: HTMLElement): Promise<void> {
  status.textContent = 'Searching…';
  const res = await api(`/api/search?${new URLSearchParams({ q, limit: '50' }).toString()}`).catch(() => null);
  if (!res) {
    status.textContent = 'The relay did not answer; try again.';
    return;
  }
  if (res.status === 401) {
    location.replace(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    return;
  }
  const body = (await res.json().catch(() => ({}))) as { results?: AnyHit[]; error?: string };
  if (!res.ok) {
    status.textContent = body.error ?? `Search failed (HTTP ${res.status}).`;
    return;
  }
  const hits = body.results ?? [];
  status.textContent = hits.length === 0 ? 'Nothing found.' : `${hits.length} line${hits.length === 1 ? '' : 's'}, newest first.`;
  results.replaceChildren(...hits.map(hitItem));
}

function isLog(hit: AnyHit): hit is LogHit {
  return hit.kind === 'job' || hit.kind === 'log';
}

function hitItem(hit: AnyHit): HTMLElement {
  return isLog(hit) ? logItem(hit) : sessionItem(hit);
}

function contextOf(hit: AnyHit): HTMLElement {
  return el('pre', { class: 'context' },
    ...hit.before.map((l) => el('span', { class: 'around' }, l + '\n')),
    el('mark', { 'data-testid': 'search-line' }, hit.line),
    ...hit.after.map((l) => el('span', { class: 'around' }, '\n' + l)));
}

function logItem(hit: LogHit): HTMLElement {
  const when = el('time', { datetime: new Date(hit.at).toISOString(), title: new Date(hit.at).toLocaleString() }, ago(hit.at));
  const where = hit.kind === 'job' && hit.job_id
    ? [el('strong', {}, `${hit.idea ?? ''} · job`), ' · ', when,
      ' · ', el('a', { href: `/api/jobs/${encodeURIComponent(hit.job_id)}/log`, 'data-testid': 'search-job-log' }, 'job log'),
      ...(hit.idea ? [' · ', el('a', { href: `/jobs/${encodeURIComponent(hit.idea)}` }, 'jobs of this idea')] : [])]
    : [el('strong', {}, `${hit.idea ?? 'no idea'} · ${hit.source}`), ' · ', when];
  return el('li', { class: 'hit', 'data-testid': 'search-hit' }, el('div', { class: 'where' }, ...where), contextOf(hit));
}

function sessionItem(hit: SearchHit): HTMLElement {
  const context = contextOf(hit);
  return el('li', { class: 'hit', 'data-testid': 'search-hit' },
    el('div', { class: 'where' },
      el('strong', {}, `${hit.idea} / ${hit.slot}`), ` · pane ${hit.pane} · `,
      el('time', { datetime: new Date(hit.at).toISOString(), title: new Date(hit.at).toLocaleString() }, ago(hit.at)),
      ' · ', el('a', { href: playUrl(hit), 'data-testid': 'search-play' }, 'play from here'),
      ' · ', el('a', { href: `/s/${encodeURIComponent(hit.session_id)}` }, 'open session')),
    context);
}
