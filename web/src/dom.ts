//! Small DOM helpers. Every string goes in as text (`textContent` / text
//! nodes), never as HTML: names and titles come from panes and are hostile.

type Child = Node | string | number | null | undefined | false;

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | number | boolean | null | undefined> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** A button that runs `run` on click. */
export function button(label: string, attrs: Record<string, string | number | boolean | null | undefined>, run: (ev: MouseEvent) => void): HTMLButtonElement {
  const b = el('button', { type: 'button', ...attrs }, label);
  b.addEventListener('click', run);
  return b;
}

/** Copies text to the clipboard; resolves to whether it worked. */
export async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Insecure context or no permission: fall back to a selected textarea.
    const ta = el('textarea', { 'aria-hidden': 'true' });
    ta.value = text;
    ta.style.position = 'fixed';
    ta.style.opacity = '0';
    document.body.append(ta);
    ta.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
    ta.remove();
    return ok;
  }
}

/** Whether the page runs on macOS or iOS (Cmd is the copy and paste modifier there). */
export function isMac(): boolean {
  const nav = navigator as Navigator & { userAgentData?: { platform?: string } };
  const platform = nav.userAgentData?.platform || navigator.platform || '';
  return /mac|iphone|ipad/i.test(platform);
}

/** A relative time ("12 s ago", "3 min ago", "2 h ago", or a date). */
export function ago(ms: number | null | undefined, now = Date.now()): string {
  if (!ms || !Number.isFinite(ms)) return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(ms).toISOString().slice(0, 10);
}

/** A JSON API call with the CSRF header; rejects on network errors only. */
export function api(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('X-Requested-With', 'tmux-bridge');
  if (init.body !== undefined && !headers.has('Content-Type')) headers.set('Content-Type', 'application/json');
  return fetch(path, { credentials: 'same-origin', ...init, headers });
}

/** A time of day (with the date when not today), for `<time>` elements. */
export function clock(ms: number, now = Date.now()): HTMLTimeElement {
  const d = new Date(ms);
  const today = new Date(now).toDateString() === d.toDateString();
  return el('time', { datetime: d.toISOString(), title: d.toLocaleString() }, today ? d.toLocaleTimeString() : d.toLocaleString());
}

/** The command-and-directory form of the jobs and dev servers sections. */
export interface CommandForm {
  form: HTMLFormElement;
  command: HTMLInputElement;
  cwd: HTMLInputElement;
  submit: HTMLButtonElement;
  /** Where the form tells what became of the last submission. */
  status: HTMLElement;
}

/**
 * Builds a `CommandForm` whose ids and test ids start with `prefix`
 * (`job-command`, `devserver-start`, …); `onSubmit` runs instead of a
 * page load.
 */
export function commandForm(prefix: string, placeholder: string, label: string, onSubmit: () => void): CommandForm {
  const command = el('input', { id: `${prefix}-command`, name: 'command', required: true, maxlength: 16384, autocomplete: 'off', spellcheck: 'false', placeholder, 'data-testid': `${prefix}-command` });
  const cwd = el('input', { id: `${prefix}-cwd`, name: 'cwd', maxlength: 4096, autocomplete: 'off', spellcheck: 'false', placeholder: 'the session’s directory', 'data-testid': `${prefix}-cwd` });
  const submit = el('button', { type: 'submit', 'data-testid': `${prefix}-start` }, label);
  const status = el('p', { class: 'status', role: 'status', 'aria-live': 'polite', 'data-testid': `${prefix}-form-status` });
  const form = el('form', { class: 'job-form', 'data-testid': `${prefix}-form` },
    el('label', { for: `${prefix}-command` }, 'Command'), command,
    el('label', { for: `${prefix}-cwd` }, 'Working directory (optional)'), cwd,
    el('div', { class: 'job-form-actions' }, submit),
    status);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    onSubmit();
  });
  return { form, command, cwd, submit, status };
}
