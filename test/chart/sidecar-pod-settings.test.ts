// The chart's values for what injected pods get from their platform: sidecar.imagePullSecrets and
// the sidecar's uid and gid (null for OpenShift), through the rendered injector config into a pod.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse, parseDocument } from 'yaml';
import { configFrom } from '../../src/config/load.ts';
import type { PromuxConfig } from '../../src/config/types.ts';
import { injectPod } from '../../src/inject/index.ts';
import { schemaProblems } from '../helpers/k8s.ts';
import { psaRestrictedProblems } from '../helpers/psa.ts';
import { REPO_ROOT } from '../helpers/tools.ts';
import { CHART, helm, one, render } from './render.ts';
import type { K8sObject } from './render.ts';

type Obj = Record<string, unknown>;

function configText(objects: K8sObject[]): string {
  return (one(objects, 'ConfigMap').data as Record<string, string>)['config.yaml']!;
}

function injectorConfig(objects: K8sObject[]): PromuxConfig {
  return configFrom(parse(configText(objects)), 'chart ConfigMap');
}

function injectExample(config: PromuxConfig): { pod: Obj; sidecar: Obj } {
  const example = parseDocument(readFileSync(join(REPO_ROOT, 'examples', 'two-container-pod.yaml'), 'utf8')).toJS() as Obj;
  const result = injectPod(example, config);
  assert.equal(result.decision, 'inject', result.reason);
  const sidecar = (result.pod.spec as { containers: Obj[] }).containers.find((c) => c.name === 'promux')!;
  assert.deepEqual(schemaProblems(result.pod), []);
  assert.deepEqual(psaRestrictedProblems({ containers: [sidecar] }), []);
  return { pod: result.pod, sidecar };
}

test('OpenShift: runAsUser and runAsGroup null reach the injector config as null, and the sidecar asks for no uid', (t) => {
  const values = { sidecar: { runAsUser: null, runAsGroup: null } };
  const lint = helm(t, ['lint', '--strict', CHART], values);
  if (lint === undefined) return;
  assert.equal(lint.status, 0, lint.stdout + lint.stderr);
  // Helm deletes a value set to null before the templates see it: the template writes null for a missing key.
  const config = injectorConfig(render(t, values)!);
  assert.equal(config.sidecar.runAsUser, null);
  assert.equal(config.sidecar.runAsGroup, null);
  const { sidecar } = injectExample(config);
  const context = sidecar.securityContext as Obj;
  assert.equal(context.runAsNonRoot, true);
  assert.ok(!('runAsUser' in context) && !('runAsGroup' in context), JSON.stringify(context));
  // The same through --set, as docs and README tell it.
  const set = helm(t, ['template', 'promux', CHART, '--set', 'sidecar.runAsUser=null,sidecar.runAsGroup=null'])!;
  assert.equal(set.status, 0, set.stderr);
  assert.match(set.stdout, /^ {6}runAsUser: null\n {6}runAsGroup: null$/m);
});

test('a uid from a values file stays an integer (Helm reads numbers there as floats: 1.00068e+09)', (t) => {
  const objects = render(t, { sidecar: { runAsUser: 1000680000, runAsGroup: 0 } });
  if (objects === undefined) return;
  assert.match(configText(objects), /^ {2}runAsUser: 1000680000$/m);
  const config = injectorConfig(objects);
  assert.equal(config.sidecar.runAsUser, 1000680000);
  assert.equal(config.sidecar.runAsGroup, 0);
  const context = injectExample(config).sidecar.securityContext as Obj;
  assert.deepEqual([context.runAsUser, context.runAsGroup], [1000680000, 0]);
});

test('sidecar.imagePullSecrets reach the injector config and the injected pod', (t) => {
  const objects = render(t, { sidecar: { imagePullSecrets: ['registry-credentials', 'mirror.example.com'] } });
  if (objects === undefined) return;
  const config = injectorConfig(objects);
  assert.deepEqual(config.sidecar.imagePullSecrets, ['registry-credentials', 'mirror.example.com']);
  assert.deepEqual((injectExample(config).pod.spec as Obj).imagePullSecrets, [{ name: 'registry-credentials' }, { name: 'mirror.example.com' }]);
  assert.deepEqual(injectorConfig(render(t, {})!).sidecar.imagePullSecrets, [], 'none by default');
});

test('values.schema.json refuses pull secrets as objects, a root uid and memory in thousandths of a byte', (t) => {
  const cases: [object, RegExp][] = [
    [{ sidecar: { imagePullSecrets: [{ name: 'registry-credentials' }] } }, /sidecar\/imagePullSecrets\/0/],
    [{ sidecar: { imagePullSecrets: ['Registry_Credentials'] } }, /sidecar\/imagePullSecrets\/0/],
    [{ sidecar: { runAsUser: 0 } }, /sidecar\/runAsUser/],
    [{ sidecar: { runAsUser: '65532' } }, /sidecar\/runAsUser/],
    [{ sidecar: { runAsGroup: -1 } }, /sidecar\/runAsGroup/],
    [{ sidecar: { resources: { limits: { memory: '256m' } } } }, /sidecar\/resources\/limits\/memory/],
  ];
  for (const [values, expected] of cases) {
    const result = helm(t, ['template', 'promux', CHART], values);
    if (result === undefined) return;
    assert.notEqual(result.status, 0, JSON.stringify(values));
    assert.match(result.stderr, expected, JSON.stringify(values));
  }
  const fine = helm(t, ['template', 'promux', CHART], { sidecar: { resources: { requests: { cpu: '0.05', memory: '100M' }, limits: { cpu: '1', memory: '0.5Gi' } } } })!;
  assert.equal(fine.status, 0, fine.stderr);
});
