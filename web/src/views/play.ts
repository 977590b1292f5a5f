//! `/play/{id}?pane=%N&at=MS`: a stored pane played back with
//! asciinema-player (bundled from npm, no CDN) from the relay's asciicast
//! export (`GET /api/sessions/{id}/asciicast`), starting a few seconds
//! before `at` (a search hit's time) when given; a link downloads the
//! `.cast` file for `asciinema play`.

import * as AsciinemaPlayer from 'asciinema-player';
import { api, el } from '../dom';

/** Seconds into a recording whose header says `timestamp` (s) for a moment `at` (ms), a little before it. */
export function startAt(timestamp: number, at: number | null, lead = 3): number {
  if (at === null || !Number.isFinite(at) || !Number.isFinite(timestamp)) return 0;
  return Math.max(0, at / 1000 - timestamp - lead);
}

export function mountPlay(root: HTMLElement, sessionId: string): void {
  const params = new URLSearchParams(location.search);
  const pane = params.get('pane') ?? '';
  const atRaw = params.get('at');
  const at = atRaw === null ? null : Number(atRaw);
  const castUrl = `/api/sessions/${encodeURIComponent(sessionId)}/asciicast${pane ? `?pane=${encodeURIComponent(pane)}` : ''}`;
  const status = el('p', { class: 'status', 'data-testid': 'play-status' }, 'Loading the recording…');
  const stage = el('div', { class: 'player', 'data-testid': 'player' });
  root.replaceChildren(
    el('header', { class: 'bar' },
      el('a', { href: '/', class: 'home' }, 'sessions'),
      el('span', { class: 'name' }, ` · recording of session ${sessionId}${pane ? ` pane ${pane}` : ''}`),
      el('span', { class: 'spacer' }),
      el('a', { href: castUrl, download: '', 'data-testid': 'play-download' }, 'download .cast'),
      ' ', el('a', { href: `/s/${encodeURIComponent(sessionId)}` }, 'open live')),
    el('main', { class: 'play' }, status, stage));
  void load(castUrl, at, status, stage);
}

async function load(url: string, at: number | null, status: HTMLElement, stage: HTMLElement): Promise<void> {
  const res = await api(url).catch(() => null);
  if (!res) {
    status.textContent = 'The relay did not answer; reload to try again.';
    return;
  }
  if (res.status === 401) {
    location.replace(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    return;
  }
  if (!res.ok) {
    status.textContent = res.status === 404 ? 'No such session.' : `The recording could not be loaded (HTTP ${res.status}).`;
    return;
  }
  const text = await res.text();
  const firstLine = text.slice(0, text.indexOf('\n') >>> 0);
  let timestamp = 0;
  try {
    const header = JSON.parse(firstLine) as { timestamp?: unknown };
    if (typeof header.timestamp === 'number') timestamp = header.timestamp;
  } catch {
    status.textContent = 'The recording is not valid asciicast.';
    return;
  }
  const events = text.split('\n').length - 2;
  status.textContent = events > 0 ? '' : 'Nothing was printed in this pane.';
  AsciinemaPlayer.create({ data: text }, stage, {
    startAt: startAt(timestamp, at),
    autoPlay: true,
    fit: 'width',
    terminalFontFamily: "'JetBrains Mono', 'DejaVu Sans Mono', monospace",
  });
}
