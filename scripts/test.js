// Runs the test suite with node's built-in runner on Node 24 (npm puts the devDependency's
// Node 24 first on PATH; this refuses to run on anything older).
import { spawnSync } from 'node:child_process';

const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  console.error(`tests need Node.js 24 (this is ${process.version}); run them with npm test`);
  process.exit(1);
}
const patterns = process.argv.length > 2 ? process.argv.slice(2) : ['test/**/*.test.ts'];
const result = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...patterns], { stdio: 'inherit' });
process.exit(result.status ?? 1);
