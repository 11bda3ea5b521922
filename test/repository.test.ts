// A clone of the repository stands on its own: no code, test, benchmark, example or doc may read a
// folder beside it (the project's planning folder is not part of a user's clone).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './helpers/tools.ts';

const ROOTS = ['src', 'test', 'bench', 'scripts', 'examples', 'docs', 'charts', 'manifests', 'bin', '.ci'];
const TOP_FILES = ['README.md', 'DEVELOPERS.md', 'BENCHMARKS.md', 'Dockerfile', 'package.json'];
// Spelled in pieces so that this file does not match itself.
const DOTS = '.'.repeat(2);
const OUTSIDE = [`${DOTS}/shared`, `'${DOTS}', 'shared'`];

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? filesUnder(join(dir, entry.name)) : [join(dir, entry.name)],
  );
}

test('no file of the repository reads a folder outside it', () => {
  const files = [...ROOTS.flatMap((root) => filesUnder(join(REPO_ROOT, root))), ...TOP_FILES.map((f) => join(REPO_ROOT, f))];
  assert.ok(files.length > 100, `only ${files.length} files found: the walk is wrong`);
  const offenders = files.flatMap((file) => {
    const text = readFileSync(file, 'latin1');
    return OUTSIDE.filter((needle) => text.includes(needle)).map((needle) => `${relative(REPO_ROOT, file)}: ${needle}`);
  });
  assert.deepEqual(offenders, []);
});
