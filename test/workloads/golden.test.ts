// Golden files: every manifest in the shared fixtures and in examples/ has its expected yaml output,
// patch output and report under test/workloads/golden/. UPDATE_GOLDEN=1 rewrites them (then read
// the diff: a golden file is only as right as the person who accepted it). Around the golden files,
// the properties that must hold for any input: injecting twice changes nothing more, uninject gives
// the original objects back, every patch line applied by the real kubectl gives the yaml output's
// object, and every object written passes the Kubernetes schema.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { defaultConfig } from '../../src/config/defaults.ts';
import { injectPod } from '../../src/inject/index.ts';
import { kubectlPatchLocal, schemaProblems } from '../helpers/k8s.ts';
import { REPO_ROOT, FIXTURES } from '../helpers/tools.ts';
import { objectsOf, runInProcess, yamlValues } from './run.ts';

const GOLDEN = join(import.meta.dirname, 'golden');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

const manifestsIn = (dir: string) => readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f)).sort().map((f) => join(dir, f));
const MANIFESTS: [group: string, path: string][] = [
  ...manifestsIn(join(FIXTURES, 'manifests')).map((p) => ['fixtures', p] as [string, string]),
  ...manifestsIn(join(REPO_ROOT, 'examples')).map((p) => ['examples', p] as [string, string]),
];

function matchesGolden(file: string, actual: string): void {
  if (UPDATE) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  assert.ok(existsSync(file), `${file} is missing: run UPDATE_GOLDEN=1 npm run test:only -- test/workloads/golden.test.ts and review it`);
  assert.equal(actual, readFileSync(file, 'utf8'), `${file} differs (UPDATE_GOLDEN=1 rewrites it; review the diff)`);
}

const patchLines = (text: string) => text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as unknown[]);

test('the golden set covers every manifest and a bare Pod, a workload, a List and a pass-through kind', () => {
  assert.ok(MANIFESTS.length >= 6, MANIFESTS.map(([, p]) => p).join(', '));
  const kinds = new Set(MANIFESTS.flatMap(([, p]) => objectsOf(yamlValues(readFileSync(p, 'utf8'))).map((o) => o.kind)));
  for (const kind of ['Pod', 'Deployment', 'StatefulSet', 'DaemonSet', 'CronJob', 'Service']) assert.ok(kinds.has(kind), kind);
});

for (const [group, path] of MANIFESTS) {
  const name = basename(path).replace(/\.(ya?ml|json)$/, '');
  const golden = (suffix: string) => join(GOLDEN, group, `${name}.inject.${suffix}`);

  test(`${group}/${basename(path)}`, async (t: TestContext) => {
    const original = readFileSync(path, 'utf8');
    const originalObjects = objectsOf(yamlValues(original));
    const yaml = await runInProcess('inject', ['-f', path]);
    const patch = await runInProcess('inject', ['-f', path, '-o', 'patch']);
    const json = await runInProcess('inject', ['-f', path, '-o', 'json']);
    for (const r of [yaml, patch, json]) assert.equal(r.code, 0, r.stderr);

    await t.test('yaml output, patch output and report match the golden files', () => {
      matchesGolden(golden('yaml'), yaml.stdout);
      matchesGolden(golden('patch'), patch.stdout);
      matchesGolden(golden('report'), yaml.stderr);
    });

    const injected = objectsOf(yamlValues(yaml.stdout));
    const patches = patchLines(patch.stdout);

    await t.test('json output holds the same objects as yaml output', () => {
      const values = json.stdout.split(/\n(?=\{)/).filter((s) => s.trim() !== '').map((s) => JSON.parse(s) as Record<string, unknown>);
      assert.deepEqual(objectsOf(values), injected);
    });

    await t.test('one patch line per object; a bare Pod gets exactly the engine\'s patch', () => {
      assert.equal(patches.length, originalObjects.length);
      assert.equal(injected.length, originalObjects.length);
      originalObjects.forEach((o, i) => {
        if (o.kind === 'Pod') assert.deepEqual(patches[i], injectPod(structuredClone(o), defaultConfig()).patch);
      });
    });

    await t.test('every patch line applied by kubectl patch --local gives the yaml output\'s object', (st) => {
      for (const [i, before] of originalObjects.entries()) {
        if (patches[i]!.length === 0) {
          assert.deepEqual(injected[i], before, `object ${i} has no patch, so it must be unchanged`);
          continue;
        }
        const patched = kubectlPatchLocal(st, before, patches[i]!);
        if (patched === undefined) return;
        assert.deepEqual(patched, injected[i], `object ${i}`);
      }
    });

    await t.test('every object written passes the Kubernetes schema', () => {
      for (const o of injected) assert.deepEqual(schemaProblems(o), [], `${String(o.kind)} ${JSON.stringify(o.metadata)}`);
    });

    await t.test('injecting the output again changes nothing', async () => {
      const again = await runInProcess('inject', ['-f', '-'], yaml.stdout);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout, yaml.stdout);
      const againPatch = await runInProcess('inject', ['-f', '-', '-o', 'patch'], yaml.stdout);
      assert.ok(patchLines(againPatch.stdout).every((p) => p.length === 0), againPatch.stdout);
    });

    await t.test('uninject gives back the original objects, also through its patch', async (st) => {
      const restored = await runInProcess('uninject', ['-f', '-'], yaml.stdout);
      assert.equal(restored.code, 0, restored.stderr);
      assert.deepEqual(objectsOf(yamlValues(restored.stdout)), originalObjects);
      const restorePatch = await runInProcess('uninject', ['-f', '-', '-o', 'patch'], yaml.stdout);
      for (const [i, p] of patchLines(restorePatch.stdout).entries()) {
        if (p.length === 0) continue;
        const patched = kubectlPatchLocal(st, injected[i]!, p);
        if (patched === undefined) return;
        assert.deepEqual(patched, originalObjects[i], `object ${i}`);
      }
    });
  });
}
