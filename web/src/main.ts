//! Entry point: routes `/` to the session list, `/s/{id}` to a session and
//! `/v` (a read-only share link, its secret in the URL's fragment) to the
//! shared session.

import { mountList } from './views/list';
import { mountSession } from './views/session';
import type { TokenResult } from './connection';

const root = document.getElementById('app');
if (root) route(root);

function route(root: HTMLElement): void {
  const m = /^\/s\/([^/]+)\/?$/.exec(location.pathname);
  if (m && m[1]) {
    mountSession(root, decodeURIComponent(m[1]));
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
