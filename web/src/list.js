//! The home page `/`: the user's sessions from `GET /api/sessions`, each
//! with its runner state, head seq, attach command and a link to `/s/{id}`.

import { el, copyText } from './dom.js';

const REFRESH_MS = 10_000;

export async function mountList(root) {
  root.replaceChildren(el('header', { class: 'bar' }, el('span', { class: 'name' }, 'tmux-bridge · sessions')));
  const main = el('main', { class: 'list' }, el('p', {}, 'Loading…'));
  root.append(main);
  // Runner states change: refresh while the tab is shown.
  const again = await render(main);
  if (again) {
    setInterval(() => {
      if (document.visibilityState === 'visible') render(main);
    }, REFRESH_MS);
  }
}

/** Renders the list into `main`; returns whether refreshing makes sense. */
async function render(main) {
  let res;
  try {
    res = await fetch('/api/sessions', { credentials: 'same-origin', headers: { 'X-Requested-With': 'tmux-bridge' } });
  } catch {
    main.replaceChildren(el('p', { class: 'error' }, 'The relay is unreachable.'));
    return true;
  }
  if (res.status === 401) {
    main.replaceChildren(el('p', {}, 'Not logged in. Open the login link that ', el('code', {}, 'tmux-bridge up'), ' printed, or ', el('a', { href: '/login' }, 'log in'), '.'));
    return false;
  }
  if (!res.ok) {
    main.replaceChildren(el('p', { class: 'error' }, `Could not list sessions (HTTP ${res.status}).`));
    return true;
  }
  let body;
  try {
    body = await res.json();
  } catch {
    main.replaceChildren(el('p', { class: 'error' }, 'The relay sent a malformed session list.'));
    return true;
  }
  const sessions = Array.isArray(body && body.sessions) ? body.sessions : [];
  if (sessions.length === 0) {
    main.replaceChildren(el('p', {}, 'No sessions yet. Run ', el('code', {}, 'tmux-bridge up'), ' on your machine.'), accountLinks());
    return true;
  }
  const rows = sessions.map((s) => {
    const id = String(s.id ?? '');
    const online = !!s.runner_online;
    const attach = String(s.attach ?? '');
    const copy = el('button', { type: 'button', class: 'copy' }, 'copy');
    copy.addEventListener('click', () => copyText(attach));
    return el('li', { class: 'session' },
      el('a', { href: `/s/${encodeURIComponent(id)}`, class: 'open' },
        `${s.idea ?? '?'} / ${s.slot ?? '?'}`),
      el('span', { class: 'tmux-name' }, String(s.tmux_session ?? '')),
      el('span', { class: 'host' }, s.host ? `on ${s.host}` : ''),
      el('span', { class: `runner ${online ? 'online' : 'offline'}` }, online ? 'runner online' : 'runner offline'),
      el('span', { class: 'seq' }, `seq ${Number(s.head_seq ?? 0)}`),
      el('span', { class: 'attach-box' }, el('code', { class: 'attach' }, attach), copy));
  });
  main.replaceChildren(el('ul', { class: 'sessions', 'data-testid': 'sessions' }, ...rows), accountLinks());
  return true;
}

/** Links to pair a runner and to manage runners (pages the relay renders). */
function accountLinks() {
  return el('p', { class: 'account-links' },
    el('a', { href: '/pair' }, 'Pair a runner'), ' · ',
    el('a', { href: '/runners' }, 'Runners'));
}
