#!/usr/bin/env node
// The repository's entry point: runs the TypeScript sources directly (Node 24 strips types).
// The container image runs the esbuild bundle in dist/ instead (see scripts/build.js).
const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  process.stderr.write(
    `promux: needs Node.js 24 or newer, this is ${process.version} (${process.execPath}).\n` +
      'Run it through npm (npx promux, npm run ...), which puts the Node 24 from devDependencies first on PATH.\n',
  );
  process.exit(1);
}
const { main } = await import('../src/cli.ts');
process.exitCode = await main(process.argv.slice(2));
