//! Light and dark terminal colours following the OS setting
//! (`prefers-color-scheme`); the page's own colours follow it in app.css.

import type { ITheme } from '@xterm/xterm';

const DARK: ITheme = {
  background: '#101010',
  foreground: '#dcdcdc',
  cursor: '#dcdcdc',
  selectionBackground: '#3a5a80',
};

const LIGHT: ITheme = {
  background: '#fbfbfb',
  foreground: '#1e1e1e',
  cursor: '#1e1e1e',
  cursorAccent: '#fbfbfb',
  selectionBackground: '#b4d0f0',
  // The ANSI colours of xterm.js's default palette are made for a dark
  // background; these keep "white" and "yellow" text readable on light.
  black: '#1e1e1e',
  white: '#6b6b6b',
  brightWhite: '#4a4a4a',
  yellow: '#9a7a00',
  brightYellow: '#7a6200',
};

function query(): MediaQueryList | null {
  return typeof window !== 'undefined' && window.matchMedia ? window.matchMedia('(prefers-color-scheme: light)') : null;
}

/** The terminal theme for the OS's current setting. */
export function themeFor(): ITheme {
  return query()?.matches ? LIGHT : DARK;
}

/** Calls `fn` when the OS switches between light and dark; returns the unsubscribe. */
export function watchTheme(fn: () => void): () => void {
  const q = query();
  if (!q) return () => {};
  q.addEventListener('change', fn);
  return () => q.removeEventListener('change', fn);
}
