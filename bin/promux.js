#!/usr/bin/env node
// The promux command. In a clone it runs the TypeScript sources directly (Node 24 strips types); in
// the npm package (`npm pack`), which carries no sources, it runs the esbuild bundle in dist/ (Node
// does not strip types under node_modules, and the bundle holds every dependency).
import { existsSync } from 'node:fs';

const fromSources = existsSync(new URL('../src/cli.ts', import.meta.url));
const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  process.stderr.write(
    `promux: needs Node.js 24 or newer, this is ${process.version} (${process.execPath}).\n` +
      (fromSources
        ? 'Run it through npm (npx promux, npm run ...), which puts the Node 24 from devDependencies first on PATH.\n'
        : ''),
  );
  process.exit(1);
}
if (fromSources) {
  const { main } = await import('../src/cli.ts');
  process.exitCode = await main(process.argv.slice(2));
} else {
  await import('../dist/promux.mjs');
}
