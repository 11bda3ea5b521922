import assert from 'node:assert/strict';
import { test } from 'node:test';
import { injectPod, STATUS_ANNOTATION, uninjectPod } from '../../src/inject/index.ts';
import { kubectlPatchLocal } from '../helpers/k8s.ts';
import { annotationsOf, config, fixturePod, fixturePods, makePod } from './support.ts';

test('every fixture pod: uninject(inject(x)) is x byte for byte, and kubectl applies the uninject patch', (t) => {
  const cfg = config((c) => (c.kubernetesVersion = '1.30'));
  let injected = 0;
  for (const [key, pod] of fixturePods()) {
    const result = injectPod(pod, cfg);
    if (result.decision !== 'inject') continue;
    injected++;
    const restored = uninjectPod(result.pod, cfg);
    assert.equal(JSON.stringify(restored.pod), JSON.stringify(pod), key);
    const patched = kubectlPatchLocal(t, result.pod, restored.patch);
    if (patched !== undefined) assert.deepEqual(patched, pod, key);
  }
  assert.equal(injected, 15, 'every fixture pod but the two behind kube-rbac-proxy');
});

test('a pod without the status annotation is returned unchanged', () => {
  const pod = fixturePod('Deployment/gateway');
  const result = uninjectPod(pod, config());
  assert.deepEqual(result, { changed: false, reason: 'not injected (no promux.io/status annotation)', pod, patch: [] });
});

test('edits made after injection survive; promux\'s own changes are undone', () => {
  const input = makePod(
    { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8080', 'prometheus.io/param_a': '1', 'team': 'x' },
    [{ name: 'app', ports: [8080] }, 'proxy'],
  );
  const injected = injectPod(input, config()).pod;
  annotationsOf(injected).team = 'y';
  annotationsOf(injected)['added-later'] = 'z';
  const result = uninjectPod(injected, config());
  assert.equal(result.changed, true);
  assert.equal(result.reason, 'uninjected: removed the promux container and restored 2 annotations');
  assert.deepEqual(Object.entries(annotationsOf(result.pod)), [
    ['prometheus.io/scrape', 'true'],
    ['prometheus.io/port', '8080'],
    ['prometheus.io/param_a', '1'],
    ['team', 'y'],
    ['added-later', 'z'],
  ]);
});

test('a status annotation that cannot be read leaves the pod alone and says why', () => {
  const broken: [string, string][] = [
    ['{', 'cannot uninject: promux.io/status is not JSON'],
    ['[]', 'cannot uninject: promux.io/status: not a JSON object'],
    ['{"original":{}}', 'cannot uninject: promux.io/status: "sidecar" is not a container name'],
    ['{"sidecar":"promux","original":{"a":1}}', 'cannot uninject: promux.io/status: "original" is not a mapping of annotations to strings or null'],
    ['{"sidecar":"promux","original":{},"removedAt":{"a":-1}}', 'cannot uninject: promux.io/status: "removedAt" is not a mapping of annotations to positions'],
  ];
  for (const [status, reason] of broken) {
    const pod = makePod({ [STATUS_ANNOTATION]: status }, ['app', 'promux']);
    const result = uninjectPod(pod, config());
    assert.deepEqual(result, { changed: false, reason, pod, patch: [] });
  }
});

test('bad input: never a throw', () => {
  for (const input of [null, 'x', 42, [], {}, { metadata: { annotations: { [STATUS_ANNOTATION]: '{}' } } }]) {
    const result = uninjectPod(input, config());
    assert.equal(result.changed, false);
    assert.deepEqual(result.patch, []);
  }
  const noSpec = uninjectPod({ metadata: { annotations: { [STATUS_ANNOTATION]: '{"sidecar":"promux","original":{}}' } } }, config());
  assert.equal(noSpec.reason, 'cannot uninject: spec is missing');
});
