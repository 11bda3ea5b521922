// The transform layer with a stand-in pod edit (the engine has its own tests; golden.test.ts runs
// the two together): what reaches the edit, and how its result is put back into each kind.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import jsonpatch from 'fast-json-patch';
import { defaultConfig } from '../../src/config/defaults.ts';
import type { JsonObject } from '../../src/json.ts';
import { injectEdit, uninjectEdit } from '../../src/workloads/edits.ts';
import { describeObject } from '../../src/workloads/kinds.ts';
import { ManifestError, transformDocument, type PodEdit } from '../../src/workloads/transform.ts';

/** Stand-in for the engine: pods annotated "edit: me" get an annotation and a container. */
function standInEdit(seen: JsonObject[] = []): PodEdit {
  return (pod) => {
    seen.push(structuredClone(pod));
    const annotations = (pod.metadata as { annotations?: Record<string, string> }).annotations ?? {};
    if (annotations.edit !== 'me') return { status: 'skipped', detail: 'not asked', warnings: [], pod, patch: [] };
    const after = structuredClone(pod) as { metadata: { annotations?: Record<string, string> }; spec: { containers: object[] } };
    after.metadata.annotations = { ...annotations, 'stand-in/edited': 'yes' };
    after.spec.containers.push({ name: 'extra', image: 'extra:1' });
    return { status: 'injected', detail: 'a:1', warnings: ['w'], pod: after, patch: jsonpatch.compare(pod, after) };
  };
}

const podSpec = () => ({ containers: [{ name: 'a', image: 'a:1' }] });
const template = (annotations?: Record<string, string>) =>
  annotations === undefined ? { spec: podSpec() } : { metadata: { labels: { app: 'x' }, annotations }, spec: podSpec() };

function applied(obj: unknown, patch: jsonpatch.Operation[]): unknown {
  return jsonpatch.applyPatch(structuredClone(obj), patch, true, false).newDocument;
}

test('a bare Pod gets exactly the edit\'s pod and patch', () => {
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', annotations: { edit: 'me' } }, spec: podSpec() };
  const seen: JsonObject[] = [];
  const { after, objects } = transformDocument(pod, standInEdit(seen));
  assert.deepEqual(seen, [pod]);
  const [o] = objects;
  assert.equal(o?.status, 'injected');
  assert.deepEqual(o.after, after);
  assert.deepEqual(o.patch, jsonpatch.compare(pod, after as object));
  assert.deepEqual(applied(pod, o.patch), after);
});

test('each workload kind lends its template as a Pod named after it, and gets the change back at its own path', () => {
  const kinds: [string, string, (tpl: object) => JsonObject, string][] = [
    ['apps/v1', 'Deployment', (t) => ({ replicas: 2, template: t }), '/spec/template/'],
    ['apps/v1', 'StatefulSet', (t) => ({ serviceName: 's', template: t }), '/spec/template/'],
    ['apps/v1', 'DaemonSet', (t) => ({ template: t }), '/spec/template/'],
    ['apps/v1', 'ReplicaSet', (t) => ({ template: t }), '/spec/template/'],
    ['v1', 'ReplicationController', (t) => ({ template: t }), '/spec/template/'],
    ['batch/v1', 'Job', (t) => ({ template: t }), '/spec/template/'],
    ['batch/v1', 'CronJob', (t) => ({ schedule: '* * * * *', jobTemplate: { spec: { template: t } } }), '/spec/jobTemplate/spec/template/'],
  ];
  for (const [apiVersion, kind, spec, prefix] of kinds) {
    const obj = { apiVersion, kind, metadata: { name: 'w', namespace: 'ns' }, spec: spec(template({ edit: 'me' })) };
    const seen: JsonObject[] = [];
    const { after, objects } = transformDocument(obj, standInEdit(seen));
    assert.deepEqual(seen[0], {
      apiVersion: 'v1', kind: 'Pod', metadata: { labels: { app: 'x' }, annotations: { edit: 'me' }, name: 'w', namespace: 'ns' }, spec: podSpec(),
    }, kind);
    const [o] = objects;
    assert.equal(o?.description, `${kind} ns/w`);
    assert.ok(o.patch.length > 0 && o.patch.every((op) => op.path.startsWith(prefix)), `${kind}: ${JSON.stringify(o.patch)}`);
    assert.deepEqual(applied(obj, o.patch), after, kind);
    // The borrowed identity does not stay in the template.
    assert.doesNotMatch(JSON.stringify(o.patch), /"name":"w"|namespace/, kind);
  }
});

test('a template without metadata gets only what the edit added', () => {
  const obj = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'w' }, spec: { template: { spec: podSpec() } } };
  const edit: PodEdit = (pod) => {
    const after = structuredClone(pod);
    (after.metadata as JsonObject).annotations = { added: 'yes' };
    return { status: 'injected', detail: '', warnings: [], pod: after, patch: jsonpatch.compare(pod, after) };
  };
  const { after, objects } = transformDocument(obj, edit);
  assert.deepEqual((after as { spec: unknown }).spec, { template: { metadata: { annotations: { added: 'yes' } }, spec: podSpec() } });
  assert.deepEqual(objects[0]?.patch, [{ op: 'add', path: '/spec/template/metadata', value: { annotations: { added: 'yes' } } }]);
});

test('a skipped pod leaves the very same object and an empty patch', () => {
  const obj = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'w' }, spec: { template: template({}) } };
  const { before, after, objects } = transformDocument(obj, standInEdit());
  assert.equal(after, before);
  assert.deepEqual(objects.map((o) => [o.status, o.detail, o.patch]), [['skipped', 'not asked', []]]);
});

test('the document value is never modified: the engine gets it as it is, without a copy', () => {
  const deepFreeze = (v: unknown): unknown => {
    if (v !== null && typeof v === 'object') for (const x of Object.values(Object.freeze(v))) deepFreeze(x);
    return v;
  };
  const config = defaultConfig();
  const pod = (name: string) => ({
    metadata: { name, annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8080' } },
    spec: { containers: [{ name: 'app', ports: [{ name: 'metrics', containerPort: 8080 }] }, { name: 'worker', ports: [{ name: 'metrics', containerPort: 8081 }] }] },
  });
  const list = {
    apiVersion: 'v1',
    kind: 'List',
    items: [
      { apiVersion: 'v1', kind: 'Pod', ...pod('p') },
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: { template: pod('t') } },
      { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'skipped' }, spec: podSpec() },
    ],
  };
  const frozen = deepFreeze(structuredClone(list));
  // Writing to a frozen object throws in a module (strict mode): any modification would fail here.
  const injected = transformDocument(frozen, injectEdit(config));
  assert.deepEqual(injected.objects.map((o) => o.status), ['injected', 'injected', 'skipped']);
  assert.deepEqual(transformDocument(deepFreeze(injected.after), uninjectEdit(config)).after, list);
  assert.deepEqual(frozen, list);
});

test('a List has each item handled on its own and stays a List', () => {
  const list = {
    apiVersion: 'v1',
    kind: 'List',
    items: [
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' } },
      { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', annotations: { edit: 'me' } }, spec: podSpec() },
      { apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'j' }, spec: { template: template({ edit: 'me' }) } }] },
    ],
  };
  const { after, objects } = transformDocument(list, standInEdit());
  assert.deepEqual(objects.map((o) => [o.description, o.status]), [
    ['Service s', 'passed-through'], ['Pod p', 'injected'], ['Job j', 'injected'],
  ]);
  const items = (after as { items: unknown[] }).items;
  assert.equal((after as JsonObject).kind, 'List');
  objects.forEach((o, i) => assert.deepEqual(applied(o.before, o.patch), o.after, `item ${i}`));
  assert.deepEqual(items[1], objects[1]?.after);
  assert.deepEqual((items[2] as { items: unknown[] }).items[0], objects[2]?.after);
});

test('other kinds pass through, custom resources that reuse a workload kind name included', () => {
  for (const obj of [
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: {} },
    { apiVersion: 'batch.volcano.sh/v1alpha1', kind: 'Job', metadata: { name: 'v' }, spec: { tasks: [] } },
    { apiVersion: 'example.com/v1', kind: 'List', items: 'not ours to read' },
  ]) {
    const { before, after, objects } = transformDocument(obj, standInEdit());
    assert.equal(after, before);
    assert.deepEqual(objects.map((o) => o.status), ['passed-through']);
  }
});

test('an empty document has no objects', () => {
  assert.deepEqual(transformDocument(null, standInEdit()), { before: null, after: null, objects: [] });
});

test('what is not a Kubernetes object, or a workload without a template, is a ManifestError saying where', () => {
  const cases: [unknown, RegExp][] = [
    ['just a string', /^expected a Kubernetes object \(a mapping with apiVersion and kind\), found string "just a string"$/],
    [[1, 2], /found a list$/],
    [{ apiVersion: 'v1', metadata: {} }, /^not a Kubernetes object: "kind" is missing$/],
    [{ apiVersion: 1, kind: 'Pod' }, /^not a Kubernetes object: "apiVersion" is not a string$/],
    [{ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd', namespace: 'n' }, spec: { replicas: 1 } },
      /^Deployment n\/d has no pod template: spec\.template is missing$/],
    [{ apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'c' }, spec: { jobTemplate: { spec: { template: [] } } } },
      /^CronJob c has no pod template: spec\.jobTemplate\.spec\.template is a list$/],
    [{ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 's' } }, /^StatefulSet s has no pod template: spec\.template is missing$/],
    [{ apiVersion: 'v1', kind: 'List', items: { a: 1 } }, /^List: "items" is object \{"a":1\}, not a list$/],
    [{ apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'v1', kind: 'Service' }, 42] }, /^items\[1\]: expected a Kubernetes object .* found number 42$/],
  ];
  for (const [value, expected] of cases) {
    assert.throws(() => transformDocument(value, standInEdit()), (err: unknown) => {
      assert.ok(err instanceof ManifestError, String(err));
      assert.match(err.message, expected);
      return true;
    });
  }
});

test('objects are described the way kubectl users name them', () => {
  assert.equal(describeObject({ kind: 'Deployment', metadata: { name: 'gateway', namespace: 'openfaas' } }), 'Deployment openfaas/gateway');
  assert.equal(describeObject({ kind: 'Service', metadata: { name: 'orders' } }), 'Service orders');
  assert.equal(describeObject({ kind: 'Pod', metadata: { generateName: 'web-' } }), 'Pod web-*');
  assert.equal(describeObject({ kind: 'Pod' }), 'Pod (unnamed)');
});
