// Builds the page into web/dist/ with esbuild after a strict type check
// (tsc --noEmit): app-<hash>.js and app-<hash>.css (xterm.css, the page's
// rules and the JetBrains Mono web font files, also hashed), index.html
// naming them, and next to every file a .br and a .gz made ahead of time.
// Hashed names are cached forever by the relay; index.html never is.
// No inline scripts or styles (the relay's CSP is `script-src 'self'`),
// nothing from a CDN. `node build.mjs --no-check` skips the type check.
// It also bundles the pure modules the node unit tests import into
// build/test/ (plain JavaScript, not served).
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, readdir, rm, writeFile, copyFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, gzipSync, constants } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');

if (!process.argv.includes('--no-check')) {
  execFileSync(process.execPath, [join(here, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(here, 'tsconfig.json')], { stdio: 'inherit' });
}

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });

const result = await build({
  entryPoints: { app: join(here, 'src/main.ts'), style: join(here, 'src/app.css') },
  bundle: true,
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16'],
  outdir: dist,
  entryNames: '[name]-[hash]',
  assetNames: 'assets/[name]-[hash]',
  loader: { '.woff2': 'file', '.woff': 'file' },
  minify: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  metafile: true,
  logLevel: 'warning',
});

// The entry outputs, by entry name, for index.html.
const outputs = {};
for (const [file, meta] of Object.entries(result.metafile.outputs)) {
  if (!meta.entryPoint) continue;
  const name = basename(file);
  if (name.endsWith('.js')) outputs.js = name;
  else if (name.endsWith('.css')) outputs.css = name;
}
if (!outputs.js || !outputs.css) throw new Error(`build: missing outputs ${JSON.stringify(outputs)}`);
const html = (await readFile(join(here, 'src/index.html'), 'utf8'))
  .replace('/app.css', `/${outputs.css}`)
  .replace('/app.js', `/${outputs.js}`);
await writeFile(join(dist, 'index.html'), html);
await copyFile(join(here, 'src/favicon.svg'), join(dist, 'favicon.svg'));

// Compressed copies of every text file (fonts are compressed already).
async function* walk(dir) {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else yield p;
  }
}
let total = 0;
for await (const file of walk(dist)) {
  if (!/\.(js|css|html|svg|map|txt|json)$/.test(file)) continue;
  const body = await readFile(file);
  total += body.length;
  if (body.length < 512) continue;
  await writeFile(`${file}.br`, brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } }));
  await writeFile(`${file}.gz`, gzipSync(body, { level: 9 }));
}

// The pure modules for the node unit tests.
await build({
  entryPoints: ['protocol', 'layout', 'guard', 'keys', 'records', 'jobs', 'devservers', 'agents'].map((m) => join(here, 'src', `${m}.ts`)),
  bundle: true,
  format: 'esm',
  platform: 'node',
  outdir: join(here, 'build', 'test'),
  logLevel: 'warning',
});

console.log(`web: built ${dist} (${outputs.js}, ${outputs.css}; ${(total / 1024).toFixed(0)} KiB before compression)`);
