import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { schemaProblems } from '../helpers/k8s.ts';
import { psaRestrictedProblems } from '../helpers/psa.ts';
import { REPO_ROOT, requireTool } from '../helpers/tools.ts';
import { parseObjects } from './render.ts';

const MANIFEST = join(REPO_ROOT, 'manifests', 'promux.yaml');

test('manifests/promux.yaml is the chart rendered by scripts/render-manifests.sh (re-run it after a chart change)', (t) => {
  const helm = requireTool(t, 'helm');
  if (helm === undefined) return;
  const result = spawnSync('bash', [join(REPO_ROOT, 'scripts', 'render-manifests.sh'), '-'], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', HELM: helm },
    timeout: 60_000,
  });
  assert.equal(result.status, 0, result.stderr);
  assert.ok(result.stdout.includes('kind: MutatingWebhookConfiguration'));
  assert.equal(readFileSync(MANIFEST, 'utf8'), result.stdout, 'manifests/promux.yaml is out of date: run scripts/render-manifests.sh');
});

test('manifests/promux.yaml: a restricted namespace first, then valid objects all in it', () => {
  const objects = parseObjects(readFileSync(MANIFEST, 'utf8'));
  const [namespace, ...rest] = objects;
  assert.deepEqual(namespace?.metadata, {
    name: 'promux',
    labels: { 'pod-security.kubernetes.io/enforce': 'restricted', 'app.kubernetes.io/part-of': 'promux' },
  });
  for (const obj of objects) assert.deepEqual(schemaProblems(obj), [], `${obj.kind}/${obj.metadata.name}`);
  const clusterScoped = new Set(['ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
  for (const obj of rest) {
    assert.equal(obj.metadata.namespace, clusterScoped.has(obj.kind) ? undefined : 'promux', `${obj.kind}/${obj.metadata.name}`);
  }
  const deployment = rest.find((o) => o.kind === 'Deployment')!;
  assert.deepEqual(psaRestrictedProblems((deployment.spec as { template: { spec: object } }).template.spec), []);
});
