import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { VERSION } from '../src/version.ts';
import { REPO_ROOT } from './helpers/tools.ts';

const bin = join(REPO_ROOT, 'bin', 'promux.js');

test('promux --help lists every mode and exits 0', () => {
  const r = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  for (const mode of ['webhook', 'sidecar', 'inject', 'uninject', 'demo']) assert.match(r.stdout, new RegExp(`^  ${mode} `, 'm'));
});

test('an unknown command names itself and exits 2', () => {
  const r = spawnSync(process.execPath, [bin, 'injekt'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command 'injekt'/);
});

test('the version in src/version.ts is the one in package.json', () => {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(VERSION, pkg.version);
});
