// The npm package, exactly as a user gets the CLI outside a clone: `npm pack` (which builds the bundle
// first), `npm install -g` of the packed file into an empty prefix with no registry (--offline: the
// package has no dependencies, the bundle holds them), then the installed `promux` run from a folder
// outside the repository on Node 24.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../helpers/tools.ts';

let dir: string;
let tarball: string;
let prefix: string;
/** PATH with this Node 24 first, so the installed `#!/usr/bin/env node` finds it; no node_modules/.bin. */
const PATH = [dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':');

function run(command: string, args: string[], options: { cwd: string; input?: string; env?: NodeJS.ProcessEnv }): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 * 1024 * 1024, ...options });
  if (result.error !== undefined) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

before(() => {
  dir = realpathSync(mkdtempSync(join(tmpdir(), 'promux-package-')));
  const packed = run('npm', ['pack', '--pack-destination', dir, '--json'], { cwd: REPO_ROOT });
  assert.equal(packed.status, 0, packed.stderr);
  const [info] = JSON.parse(packed.stdout) as { filename: string }[];
  tarball = join(dir, info!.filename);
  prefix = join(dir, 'prefix');
  const home = join(dir, 'home');
  mkdirSync(home);
  const installed = run('npm', ['install', '--global', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', tarball], {
    cwd: dir,
    // An empty cache and config: whatever the machine has cached cannot help the install.
    env: { PATH: process.env.PATH ?? '', HOME: home, npm_config_cache: join(home, 'cache'), npm_config_userconfig: join(home, 'npmrc') },
  });
  assert.equal(installed.status, 0, `${installed.stdout}${installed.stderr}`);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('npm pack: the bundle and the command, no sources, tests or dependencies', () => {
  const listed = run('tar', ['-tzf', tarball], { cwd: dir }).stdout.split('\n').filter((l) => l !== '').map((l) => l.replace(/^package\//, ''));
  assert.ok(listed.includes('bin/promux.js'));
  assert.ok(listed.includes('dist/promux.mjs'));
  assert.ok(listed.some((f) => /^dist\/chunks\/.+\.mjs$/.test(f)));
  assert.deepEqual(listed.filter((f) => /^(src|test|bench|charts|scripts)\//.test(f) || f.endsWith('.ts')), []);
  const pkg = JSON.parse(readFileSync(join(prefix, 'lib', 'node_modules', 'promux', 'package.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(pkg.dependencies, undefined, 'everything the CLI runs is in the bundle');
  assert.deepEqual(pkg.engines, { node: '>=24' });
  assert.deepEqual(readdirSync(join(prefix, 'lib', 'node_modules', 'promux')).sort(), ['README.md', 'bin', 'dist', 'package.json']);
});

test('npm install -g of the packed file: `promux inject -f -` works from any folder on Node 24', () => {
  const promux = join(prefix, 'bin', 'promux');
  const elsewhere = mkdtempSync(join(dir, 'work-'));
  const version = run(promux, ['--version'], { cwd: elsewhere, env: { PATH } });
  assert.equal(version.stdout, `promux ${(JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version}\n`);
  const pod = readFileSync(join(REPO_ROOT, 'examples', 'three-container-deployment.yaml'), 'utf8');
  const injected = run(promux, ['inject', '-f', '-'], { cwd: elsewhere, input: pod, env: { PATH } });
  assert.equal(injected.status, 0, injected.stderr);
  assert.match(injected.stderr, /: injected \(/);
  const [deployment] = parseAllDocuments(injected.stdout).map((d) => d.toJS() as { spec: { template: { spec: { containers: { name: string }[] } } } });
  assert.ok(deployment!.spec.template.spec.containers.some((c) => c.name === 'promux'));
  const restored = run(promux, ['uninject', '-f', '-'], { cwd: elsewhere, input: injected.stdout, env: { PATH } });
  assert.equal(restored.status, 0, restored.stderr);
  assert.equal(restored.stdout, pod);
  for (const mode of ['webhook', 'sidecar', 'demo']) assert.equal(run(promux, [mode, '--help'], { cwd: elsewhere, env: { PATH } }).status, 0, mode);
});

test('the installed command on an older Node says what it needs', () => {
  // An older Node, as far as the version check can tell.
  const older = 'data:text/javascript,Object.defineProperty(process.versions,"node",{value:"20.11.0"});Object.defineProperty(process,"version",{value:"v20.11.0"})';
  const result = run(process.execPath, ['--import', older, join(prefix, 'bin', 'promux'), '--version'], { cwd: dir, env: { PATH } });
  assert.equal(result.status, 1);
  assert.match(result.stderr, /^promux: needs Node\.js 24 or newer, this is v20\.11\.0 \(/);
  assert.doesNotMatch(result.stderr, /npx/, 'no advice meant for a clone');
});
