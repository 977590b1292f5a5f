// Bundles the page into web/dist/ (index.html, app.js, app.css) with esbuild.
// No inline scripts or styles: the relay serves the page with a strict CSP
// (`script-src 'self'`), and everything comes from dist/, never a CDN.
import { build } from 'esbuild';
import { mkdir, copyFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');
await mkdir(dist, { recursive: true });

await build({
  entryPoints: { app: join(here, 'src/main.js') },
  bundle: true,
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16'],
  outdir: dist,
  minify: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  logLevel: 'warning',
});
// The CSS entry pulls xterm.css in beside our own rules into dist/app.css.
await build({
  entryPoints: { app: join(here, 'src/app.css') },
  bundle: true,
  outdir: dist,
  minify: true,
  logLevel: 'warning',
});
for (const f of ['index.html', 'favicon.svg']) await copyFile(join(here, 'src', f), join(dist, f));
console.log(`web: built ${dist}`);
