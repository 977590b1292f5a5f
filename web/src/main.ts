//! Entry point: routes `/` to the session list, `/s/{id}` to a session
//! (`?pane=%N` shows and focuses that pane, the Jobs view's live link),
//! `/search` to full-text search over all output, `/play/{id}` to a
//! recording's playback, `/jobs/{idea}` to an idea's jobs,
//! `/t/{idea}/{slot}` to the newest open session of that name (the link
//! `tmux-bridge up` prints opens the terminal, not the list) and `/v` (a
//! read-only share link, its secret in the URL's fragment) to the shared
//! session.

import { mountList } from './views/list';
import { mountSession } from './views/session';
import { mountSearch } from './views/search';
import { mountPlay } from './views/play';
import { mountJobs } from './views/jobs';
import { installNotifier } from './notify';
import type { TokenResult } from './connection';
import type { Session } from './protocol';
import { api, el } from './dom';

/**
 * `/t/{idea}/{slot}`: waits (up to 30 s: `up` prints the link before its
 * runner has opened the session) for the session of that name and opens
 * it, replacing the URL so Back goes where the person came from.
 */
async function openByName(root: HTMLElement, idea: string, slot: string): Promise<void> {
  const status = el('p', { class: 'status', 'data-testid': 'list-status' }, `Opening ${idea} / ${slot}…`);
  root.replaceChildren(el('header', { class: 'bar' }, el('a', { href: '/', class: 'home' }, 'sessions')), el('main', { class: 'list' }, status));
  const until = Date.now() + 30_000;
  while (Date.now() < until) {
    const res = await api('/api/sessions').catch(() => null);
    if (res && res.status === 401) {
      location.replace(`/login?next=${encodeURIComponent(location.pathname)}`);
      return;
    }
    if (res && res.ok) {
      const body = (await res.json().catch(() => ({}))) as { sessions?: Session[] };
      const match = (body.sessions ?? []).filter((s) => s.idea === idea && s.slot === slot && s.state !== 'closed');
      const best = match.sort((a, b) => Number(b.runner_online) - Number(a.runner_online) || Number(b.id) - Number(a.id))[0];
      if (best) {
        location.replace(`/s/${encodeURIComponent(String(best.id))}`);
        return;
      }
    }
    status.textContent = `Waiting for the runner to open ${idea} / ${slot}…`;
    await new Promise((r) => setTimeout(r, 500));
  }
  status.replaceChildren(`No terminal ${idea} / ${slot} is open. `, el('a', { href: '/' }, 'All sessions'));
}

const root = document.getElementById('app');
if (root) route(root);

function route(root: HTMLElement): void {
  if (!/^\/v\/?$/.test(location.pathname)) installNotifier();
  const m = /^\/s\/([^/]+)\/?$/.exec(location.pathname);
  const play = /^\/play\/([^/]+)\/?$/.exec(location.pathname);
  const jobs = /^\/jobs\/([^/]+)\/?$/.exec(location.pathname);
  if (m && m[1]) {
    mountSession(root, decodeURIComponent(m[1]), { pane: new URLSearchParams(location.search).get('pane') });
  } else if (play && play[1]) {
    mountPlay(root, decodeURIComponent(play[1]));
  } else if (jobs && jobs[1]) {
    mountJobs(root, decodeURIComponent(jobs[1]));
  } else if (/^\/search\/?$/.test(location.pathname)) {
    mountSearch(root);
  } else if (/^\/t\/([^/]+)\/([^/]+)\/?$/.test(location.pathname)) {
    const t = /^\/t\/([^/]+)\/([^/]+)\/?$/.exec(location.pathname);
    void openByName(root, decodeURIComponent(t?.[1] ?? ''), decodeURIComponent(t?.[2] ?? ''));
  } else if (/^\/v\/?$/.test(location.pathname)) {
    void mountShared(root);
  } else {
    mountList(root);
  }
}

/**
 * A share link's viewer: the secret comes from the fragment (never sent to
 * a server by the browser); `POST /api/view/token` turns it into a
 * short-lived read-only token for the session's socket, fresh each attempt.
 */
async function mountShared(root: HTMLElement): Promise<void> {
  const secret = decodeURIComponent(location.hash.slice(1));
  const token = async (signal: AbortSignal): Promise<TokenResult & { session?: string }> => {
    const res = await fetch('/api/view/token', {
      method: 'POST',
      credentials: 'omit',
      headers: { 'X-Requested-With': 'tmux-bridge', 'Content-Type': 'application/json' },
      body: JSON.stringify({ secret }),
      signal,
    });
    if (res.status === 404 || res.status === 401 || res.status === 403) return { refused: 'This share link was revoked or has expired.', state: 'revoked' };
    if (!res.ok) throw new Error(`view token: HTTP ${res.status}`);
    const body = (await res.json()) as { token?: unknown; session_id?: unknown };
    if (typeof body.token !== 'string' || typeof body.session_id !== 'string') throw new Error('view token: bad body');
    view.sessionId = body.session_id;
    return { token: body.token };
  };
  const view = mountSession(root, 'shared', { readOnly: true, token });
}
