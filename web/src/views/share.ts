//! Read-only share links, the owner's side: a dialog that creates a link
//! for the session (it expires; anyone with it can watch, nobody can type),
//! lists the session's links and revokes them (open viewers are cut within
//! a second). The link's secret is in the URL's fragment, which browsers
//! never send to a server. The viewer's side is `mountShared` in main.ts.

import { api, button, copyText, el } from '../dom';
import type { Controls } from './controls';

export interface Share {
  id: string;
  session_id: string;
  label: string;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
}

const LIFETIMES: Array<[string, number]> = [
  ['1 hour', 3600],
  ['8 hours', 8 * 3600],
  ['1 day', 86400],
  ['7 days', 7 * 86400],
];

export function openShareDialog(controls: Controls, sessionId: string): void {
  document.querySelector('.dialog')?.remove();
  const list = el('ul', { class: 'shares', 'data-testid': 'shares' });
  const out = el('div', { class: 'share-new' });
  const lifetime = el('select', { 'data-testid': 'share-lifetime' }, ...LIFETIMES.map(([label, s]) => el('option', { value: s }, label)));
  const label = el('input', { type: 'text', placeholder: 'label (who it is for)', maxlength: 100, 'data-testid': 'share-label' });
  const close = () => dialog.remove();
  const dialog = el('div', { class: 'overlay dialog', role: 'dialog', 'aria-label': 'Share', 'data-testid': 'share-dialog' },
    el('div', { class: 'overlay-box' },
      el('h2', {}, 'Share a read-only link'),
      el('p', {}, 'Anyone with the link can watch this session until it expires or you revoke it; nobody can type through it.'),
      el('div', { class: 'row' }, label, lifetime, button('Create link', { 'data-testid': 'share-create' }, () => void create())),
      out, list,
      button('Close', { class: 'close' }, close)));
  dialog.addEventListener('click', (ev) => {
    if (ev.target === dialog) close();
  });
  document.body.append(dialog);

  async function refresh(): Promise<void> {
    const res = await api(`/api/sessions/${encodeURIComponent(sessionId)}/shares`).catch(() => null);
    if (!res || !res.ok) {
      list.replaceChildren(el('li', { class: 'error' }, `Could not list links${res ? ` (HTTP ${res.status})` : ''}.`));
      return;
    }
    const body = (await res.json().catch(() => ({}))) as { shares?: Share[] };
    const shares = Array.isArray(body.shares) ? body.shares : [];
    list.replaceChildren(...shares.map((s) => el('li', { 'data-share': s.id },
      el('span', {}, `${s.label || 'link'} · expires ${new Date(s.expires_at).toLocaleString()}`),
      button('Revoke', { 'data-testid': 'share-revoke' }, () => void revoke(s.id)))));
    if (shares.length === 0) list.append(el('li', { class: 'muted' }, 'No active links.'));
  }

  async function create(): Promise<void> {
    const res = await api(`/api/sessions/${encodeURIComponent(sessionId)}/shares`, {
      method: 'POST',
      body: JSON.stringify({ expires_in_s: Number(lifetime.value), label: label.value.trim() }),
    }).catch(() => null);
    if (!res || !res.ok) {
      controls.notify(`Could not create a link${res ? ` (HTTP ${res.status})` : ''}.`);
      return;
    }
    const body = (await res.json()) as { url?: string };
    const url = String(body.url || '');
    const code = el('code', { class: 'share-url', 'data-testid': 'share-url' }, url);
    out.replaceChildren(code, button('copy', {}, () => void copyText(url).then((ok) => controls.notify(ok ? 'Link copied.' : 'Copy failed: select the link by hand.'))));
    await refresh();
  }

  async function revoke(id: string): Promise<void> {
    if (!window.confirm('Revoke this link? Anyone watching through it is cut off at once.')) return;
    const res = await api(`/api/shares/${encodeURIComponent(id)}`, { method: 'DELETE' }).catch(() => null);
    if (!res || (!res.ok && res.status !== 404)) controls.notify('Could not revoke the link.');
    await refresh();
  }

  void refresh();
}
