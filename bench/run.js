// Runs the benchmarks on demand (never part of npm test): `npm run bench` runs every bench/<name>.ts,
// `npm run bench -- sidecar` only bench/sidecar.ts. bench/webhook.ts, bench/sidecar.ts, bench/inject.ts and
// bench/proxy.ts write their own sections of BENCHMARKS.md; bench/exposition.ts, a micro-benchmark for work on the merger, only
// prints. Needs Node 24 (npm puts the devDependency's Node first on PATH).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  console.error(`benchmarks need Node.js 24 (this is ${process.version}); run them with npm run bench`);
  process.exit(1);
}
const dir = import.meta.dirname;
const available = readdirSync(dir).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3)).sort();
const names = process.argv.length > 2 ? process.argv.slice(2) : available;
const unknown = names.filter((n) => !available.includes(n));
if (unknown.length > 0) {
  console.error(`no benchmark named ${unknown.join(', ')}; available: ${available.join(', ')}`);
  process.exit(2);
}
let failed = 0;
for (const name of names) {
  console.log(`== bench/${name}.ts`);
  const result = spawnSync(process.execPath, [join(dir, `${name}.ts`)], { stdio: 'inherit' });
  if (result.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
