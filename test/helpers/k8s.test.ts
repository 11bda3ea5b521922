import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kubectlPatchLocal, schemaProblems } from './k8s.ts';
import { requireTool } from './tools.ts';

function pod(container: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web', annotations: { 'prometheus.io/port': '8080' } },
    spec: {
      containers: [
        {
          name: 'web',
          image: 'nginx:1.27',
          ports: [{ name: 'http', containerPort: 8080 }],
          securityContext: { runAsNonRoot: true, capabilities: { drop: ['ALL'] } },
          ...container,
        },
      ],
    },
  };
}

test('schemaProblems: a well-formed Pod, Deployment and List have none', () => {
  assert.deepEqual(schemaProblems(pod()), []);
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web' },
    spec: { selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: pod().spec } },
  };
  assert.deepEqual(schemaProblems(deployment), []);
  assert.deepEqual(schemaProblems({ apiVersion: 'v1', kind: 'List', items: [pod(), deployment] }), []);
});

test('schemaProblems: a misspelled field is reported with its path', () => {
  const problems = schemaProblems(pod({ securityContxt: { runAsNonRoot: true } }));
  assert.deepEqual(problems, ['/spec/containers/0/securityContxt: unknown field "securityContxt" in V1Container']);
});

test('schemaProblems: unknown fields are found in nested maps and list items', () => {
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web' },
    spec: {
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: { ...pod({ resources: { limits: { memory: '1Gi' }, limitz: {} } }).spec as object, hostNetwrk: true },
      },
    },
  };
  assert.deepEqual(schemaProblems({ apiVersion: 'v1', kind: 'List', items: [deployment] }).sort(), [
    '/items/0/spec/template/spec/containers/0/resources/limitz: unknown field "limitz" in V1ResourceRequirements',
    '/items/0/spec/template/spec/hostNetwrk: unknown field "hostNetwrk" in V1PodSpec',
  ]);
});

test('schemaProblems: wrong types, missing required fields and unknown kinds are reported', () => {
  const badPort = pod({ ports: [{ containerPort: '8080' }] });
  assert.deepEqual(schemaProblems(badPort), ['/spec/containers/0/ports/0/containerPort: must be integer']);
  const nameless = pod();
  delete ((nameless.spec as { containers: Record<string, unknown>[] }).containers[0]!).name;
  assert.deepEqual(schemaProblems(nameless), ['/spec/containers/0: must have required property name']);
  assert.deepEqual(schemaProblems({ apiVersion: 'example.com/v1', kind: 'Widget' }), [
    '/: unknown kind example.com/v1/Widget (not in test/helpers/k8s.ts)',
  ]);
});

test('kubectlPatchLocal applies an RFC 6902 patch with the real kubectl', (t) => {
  const original = pod();
  const patched = kubectlPatchLocal(t, original, [
    { op: 'add', path: '/metadata/annotations/example.com~1a~0b', value: 'x' },
    { op: 'replace', path: '/spec/containers/0/image', value: 'nginx:1.28' },
  ]);
  if (patched === undefined) return;
  type Shape = { metadata: { annotations: Record<string, string> }; spec: { containers: { image: string }[] } };
  const expected = structuredClone(original) as Shape;
  expected.metadata.annotations['example.com/a~b'] = 'x';
  expected.spec.containers[0]!.image = 'nginx:1.28';
  assert.deepEqual(patched, expected);
});

test('kubectlPatchLocal fails on a patch that does not apply', (t) => {
  if (requireTool(t, 'kubectl') === undefined) return;
  assert.throws(
    () => kubectlPatchLocal(t, pod(), [{ op: 'replace', path: '/spec/nothing/here', value: 1 }]),
    /kubectl patch --local failed/,
  );
});
