// README.md is the user's reference: its configuration block must be the code's defaults.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { defaultConfig } from '../src/config/defaults.ts';
import { configFrom } from '../src/config/load.ts';
import { REPO_ROOT } from './helpers/tools.ts';

const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');

function sectionAfter(heading: string): string {
  const start = readme.indexOf(`\n## ${heading}\n`);
  assert.notEqual(start, -1, `README.md has no "## ${heading}" section`);
  const next = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, next === -1 ? undefined : next);
}

test('the README configuration block spells out exactly the built-in defaults', () => {
  const section = sectionAfter('Configuration');
  const block = /```yaml\n([\s\S]*?)```/.exec(section);
  assert.ok(block, 'no yaml block in the Configuration section');
  const documented = parse(block[1]!) as unknown;
  assert.deepEqual(configFrom(documented, 'README.md'), defaultConfig());
  assert.deepEqual(Object.keys(documented as object).sort(), Object.keys(defaultConfig()).sort());
  const sidecar = (documented as { sidecar: object }).sidecar;
  assert.deepEqual(Object.keys(sidecar).sort(), Object.keys(defaultConfig().sidecar).sort(), 'every sidecar key is spelled out');
});

test('the README quick start has exactly a run command and a test command, and the test command is what CI runs', () => {
  const commands = sectionAfter('Quick start')
    .split('\n')
    .filter((l) => l.startsWith('    '))
    .map((l) => l.trim());
  assert.equal(commands.length, 2, commands.join('\n'));
  const ci = readFileSync(join(REPO_ROOT, '.ci', 'run'), 'utf8');
  for (const step of commands[1]!.split('&&').map((s) => s.trim())) assert.ok(ci.includes(step), `.ci/run lacks "${step}"`);
});
