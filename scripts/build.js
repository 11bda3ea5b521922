// Bundles the one binary for the container image: dist/promux.mjs plus one chunk per mode, loaded
// only when that mode runs (src/cli.ts imports modes lazily; splitting keeps them apart), so the
// sidecar never loads the webhook's dependencies. Dependencies are bundled: the image has no
// node_modules. Usage: node scripts/build.js [--outdir DIR] [--metafile FILE]
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import * as esbuild from 'esbuild';

const root = join(import.meta.dirname, '..');
const { values: options } = parseArgs({
  options: { outdir: { type: 'string', default: join(root, 'dist') }, metafile: { type: 'string' } },
});
const outdir = options.outdir;

// The bundle's entry: what bin/promux.js does for the sources, without the Node version check
// (the image's Node is 24).
const entry = {
  name: 'promux-entry',
  setup(build) {
    build.onResolve({ filter: /^promux-entry$/ }, () => ({ path: 'promux-entry', namespace: 'promux-entry' }));
    build.onLoad({ filter: /.*/, namespace: 'promux-entry' }, () => ({
      contents: "import { main } from './src/cli.ts';\nprocess.exitCode = await main(process.argv.slice(2));\n",
      resolveDir: root,
      loader: 'ts',
    }));
  },
};

rmSync(outdir, { recursive: true, force: true });
const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: { promux: 'promux-entry' },
  plugins: [entry],
  outdir,
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'esm',
  splitting: true,
  outExtension: { '.js': '.mjs' },
  entryNames: '[name]',
  chunkNames: 'chunks/[name]-[hash]',
  // Some bundled dependencies are CommonJS and call require() for Node built-ins.
  banner: { js: "import { createRequire as __promuxCreateRequire } from 'node:module'; const require = __promuxCreateRequire(import.meta.url);" },
  // Whitespace and syntax only: identifiers stay readable in stack traces; the maps resolve lines
  // (NODE_OPTIONS=--enable-source-maps; off by default as it costs memory in every sidecar).
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: 'linked',
  sourcesContent: false,
  metafile: options.metafile !== undefined,
  logLevel: 'warning',
}).catch(() => process.exit(1)); // esbuild has printed the errors with their source lines
// The demo reads the example pods next to its chunk (dist/chunks/../examples), as from src/.
cpSync(join(root, 'examples'), join(outdir, 'examples'), { recursive: true });
if (options.metafile !== undefined) {
  mkdirSync(dirname(options.metafile), { recursive: true });
  writeFileSync(options.metafile, JSON.stringify(result.metafile));
}
