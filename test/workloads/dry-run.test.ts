// The dry run's output formats, report and problem handling, with a stand-in pod edit (the engine
// runs in golden.test.ts and cli.test.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import jsonpatch from 'fast-json-patch';
import { parseAllDocuments } from 'yaml';
import { dryRun } from '../../src/workloads/dry-run.ts';
import type { PodEdit } from '../../src/workloads/transform.ts';

/** Stand-in for the engine: pods annotated "edit: me" get a second annotation. */
const standInEdit: PodEdit = (pod) => {
  const meta = pod.metadata as { annotations?: Record<string, string> };
  if (meta.annotations?.edit !== 'me') return { status: 'skipped', detail: 'not asked', warnings: [], pod, patch: [] };
  const after = structuredClone(pod);
  (after.metadata as { annotations: Record<string, string> }).annotations.edited = 'yes';
  return { status: 'injected', detail: 'a:1, b:2', warnings: ['mind the gap'], pod: after, patch: jsonpatch.compare(pod, after) };
};

const stream = `# services first
apiVersion: v1
kind: Service
metadata: {name: web}   # untouched
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  template:
    metadata:
      annotations:
        edit: me # keep this comment
    spec:
      containers: [{name: a}]
---
apiVersion: v1
kind: List
items:
  - {apiVersion: v1, kind: Pod, metadata: {name: p1}, spec: {containers: []}}
  - {apiVersion: v1, kind: Pod, metadata: {name: p2, annotations: {edit: me}}, spec: {containers: []}}
`;
const sources = [{ name: 'a.yaml', text: stream }, { name: 'b.yaml', text: '---\n# nothing here\n' }];

test('yaml output: untouched documents as given, edited ones with their comments, in input order', () => {
  const { output, problems } = dryRun(sources, standInEdit, 'yaml');
  assert.deepEqual(problems, []);
  const [service, deployment, list] = stream.split('---\n');
  assert.ok(output.startsWith(`${service}---\n`), output);
  assert.ok(!output.includes(deployment!) && !output.includes(list!));
  assert.match(output, /edit: me # keep this comment\n\s+edited: "yes"\n/);
  assert.ok(output.endsWith('---\n# nothing here\n'));
  const values = parseAllDocuments(output).map((d) => d.toJS());
  assert.equal(values.length, 4);
  assert.equal(values[1].spec.template.metadata.annotations.edited, 'yes');
  assert.deepEqual(values[2].items.map((p: { metadata: { annotations?: object } }) => p.metadata.annotations), [undefined, { edit: 'me', edited: 'yes' }]);
});

test('a pod the edit skips is written back as given, even when the edit hands back a copy', () => {
  const pod = 'apiVersion: v1\nkind: Pod\nmetadata: { name: p }   # spaced as written\nspec:\n  containers: [ {name: a} ]\n';
  const copying: PodEdit = (p) => ({ ...standInEdit(p), pod: structuredClone(p) });
  assert.equal(dryRun([{ name: 'p.yaml', text: pod }], copying, 'yaml').output, pod);
});

test('json output: one object per non-empty document, a List kept whole', () => {
  const { output } = dryRun(sources, standInEdit, 'json');
  const objects = output.split(/\n(?=\{)/).map((text) => JSON.parse(text));
  assert.deepEqual(objects.map((o) => o.kind), ['Service', 'Deployment', 'List']);
  assert.equal(objects[1].spec.template.metadata.annotations.edited, 'yes');
  assert.ok(output.endsWith('}\n'));
});

test('patch output: one line per object in input order, List items one by one, [] when unchanged', () => {
  const { output } = dryRun(sources, standInEdit, 'patch');
  const lines = output.split('\n');
  assert.equal(lines.pop(), '');
  assert.deepEqual(lines.map((l) => JSON.parse(l)), [
    [],
    [{ op: 'add', path: '/spec/template/metadata/annotations/edited', value: 'yes' }],
    [],
    [{ op: 'add', path: '/metadata/annotations/edited', value: 'yes' }],
  ]);
});

test('the report has a line per object, its warnings, and a summary', () => {
  const { report } = dryRun(sources, standInEdit, 'yaml');
  assert.deepEqual(report, [
    'Service web: passed through',
    'Deployment shop/web: injected (a:1, b:2)',
    'Deployment shop/web: warning: mind the gap',
    'Pod p1: skipped: not asked',
    'Pod p2: injected (a:1, b:2)',
    'Pod p2: warning: mind the gap',
    '4 objects in 2 files: 2 injected, 1 skipped, 1 passed through',
  ]);
});

test('problems anywhere leave the output empty and name every file and document', () => {
  const bad = [
    { name: 'ok.yaml', text: 'apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {edit: me}}\nspec: {containers: []}\n' },
    { name: 'broken.yaml', text: 'kind: A\n---\nkind: [\n' },
    { name: 'scalar.yaml', text: 'apiVersion: v1\nkind: Service\n---\n\n"just text"\n' },
    { name: 'deploy.yaml', text: 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: 1}\n' },
  ];
  for (const format of ['yaml', 'json', 'patch'] as const) {
    const result = dryRun(bad, standInEdit, format);
    assert.equal(result.output, '');
    assert.deepEqual(result.report, []);
    // Documents are read one after the other: the one before broken YAML is checked too.
    assert.equal(result.problems.length, 4);
    assert.equal(result.problems[0], 'broken.yaml: document 1 (line 1): not a Kubernetes object: "apiVersion" is missing');
    assert.match(result.problems[1]!, /^broken\.yaml: document 2 \(line 3\): not valid YAML: .+ \(line \d+, column \d+\)$/);
    assert.equal(result.problems[2], 'scalar.yaml: document 2 (line 5): expected a Kubernetes object (a mapping with apiVersion and kind), found string "just text"');
    assert.equal(result.problems[3], 'deploy.yaml: document 1 (line 1): Deployment d has no pod template: spec.template is missing');
  }
});

test('a document whose aliases expand without bound is a problem, not a crash', () => {
  const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 8; i++) levels.push(`${'abcdefgh'[i]}: &${'abcdefgh'[i]} [${Array(10).fill(`*${'abcdefgh'[i - 1]}`).join(', ')}]`);
  const text = `apiVersion: v1\nkind: ConfigMap\n${levels.join('\n')}\n`;
  const result = dryRun([{ name: 'lol.yaml', text }], standInEdit, 'yaml');
  assert.equal(result.output, '');
  assert.match(result.problems[0] ?? '', /^lol\.yaml: document 1 \(line 1\): .*alias/i);
});
