// No Docker engine here: these check that the Dockerfile, .dockerignore and scripts/build.js agree
// (what the build stage copies exists and is in the context; the entrypoint is the bundle's entry).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { defaultConfig, IMAGE_UID } from '../../src/config/defaults.ts';
import { REPO_ROOT } from '../helpers/tools.ts';

const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'))
  .map((l) => l.trim());

/** The allow-list of .dockerignore ("*" then "!path" lines), as paths. */
function contextAllowList(): string[] {
  const lines = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  assert.equal(lines[0], '*', '.dockerignore starts by excluding everything');
  return lines.slice(1).map((l) => {
    assert.ok(l.startsWith('!'), `.dockerignore: ${l} should be an exception (!path)`);
    return l.slice(1).replace(/\/$/, '');
  });
}

test('the build stage copies only files that exist and that .dockerignore lets into the context', () => {
  const allowed = contextAllowList();
  const copies = instructions.filter((l) => l.startsWith('COPY ') && !l.includes('--from='));
  assert.ok(copies.length >= 3);
  for (const copy of copies) {
    const sources = copy.split(/\s+/).slice(1, -1);
    for (const source of sources) {
      const path = source.replace(/\/$/, '');
      assert.ok(existsSync(join(REPO_ROOT, path)), `${copy}: ${path} does not exist`);
      assert.ok(allowed.some((a) => path === a || path.startsWith(`${a}/`)), `${copy}: ${path} is excluded by .dockerignore`);
    }
  }
  for (const a of allowed) assert.ok(existsSync(join(REPO_ROOT, a)), `.dockerignore allows ${a}, which does not exist`);
});

test('two stages: Node 24 build, distroless Node 24 runtime as a numeric non-root user; the entrypoint is promux', () => {
  const froms = instructions.filter((l) => l.startsWith('FROM '));
  assert.equal(froms.length, 2);
  assert.match(froms[0]!, /^FROM node:24[-.\w]* AS build$/);
  assert.match(froms[1]!, /^FROM gcr\.io\/distroless\/nodejs24-debian12:nonroot$/);
  const runtime = instructions.slice(instructions.indexOf(froms[1]!));
  assert.ok(runtime.includes('COPY --from=build /src/dist/ /app/'), 'the runtime gets dist/ only');
  assert.ok(runtime.includes('USER 65532:65532'));
  const entrypoint = runtime.find((l) => l.startsWith('ENTRYPOINT '));
  // --no-memory-reducer: an idle sidecar uses no CPU (NODE_OPTIONS cannot carry it; bench/sidecar.ts).
  assert.deepEqual(JSON.parse(entrypoint!.slice('ENTRYPOINT '.length)), ['/nodejs/bin/node', '--no-memory-reducer', '/app/promux.mjs']);
  // scripts/build.js writes that entry (test/build/build.test.ts runs it from an empty folder).
  assert.match(readFileSync(join(REPO_ROOT, 'scripts', 'build.js'), 'utf8'), /entryPoints: \{ promux: /);
  assert.ok(instructions.includes('RUN node scripts/build.js'));
});

test("the image's user is the chart's runAsUser and the injected sidecar's", () => {
  assert.equal(IMAGE_UID, 65532);
  assert.equal(defaultConfig().sidecar.runAsUser, IMAGE_UID);
  assert.equal(defaultConfig().sidecar.runAsGroup, IMAGE_UID);
  const values = readFileSync(join(REPO_ROOT, 'charts', 'promux', 'values.yaml'), 'utf8');
  assert.match(values, /^ {2}runAsUser: 65532$/m);
  assert.match(values, /^ {2}runAsGroup: 65532$/m);
});
