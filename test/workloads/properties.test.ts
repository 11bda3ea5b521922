// Property tests over generated manifests of every kind, through the real engine: the patch lines
// and the yaml output agree, injecting twice changes nothing more, uninject restores, and documents
// nothing changed come back byte for byte. (kubectl applies the patches in golden.test.ts; here the
// RFC 6902 library does, so that hundreds of cases stay fast.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import jsonpatch from 'fast-json-patch';
import { stringify } from 'yaml';
import { defaultConfig } from '../../src/config/defaults.ts';
import { dryRun } from '../../src/workloads/dry-run.ts';
import { injectEdit, uninjectEdit } from '../../src/workloads/edits.ts';
import { objectsOf, yamlValues } from './run.ts';

type Json = Record<string, unknown>;

const container = (name: string) =>
  fc.record({
    name: fc.constant(name),
    image: fc.constantFrom('registry.example.com/a:1', 'b:2'),
    ports: fc.array(
      fc.record({ name: fc.constantFrom('metrics', 'http', 'http-metrics', `${name.slice(0, 6)}-metrics`), containerPort: fc.integer({ min: 1, max: 65535 }) }),
      { maxLength: 2 },
    ).map((ports) => ports.filter((p, i) => ports.findIndex((q) => q.name === p.name) === i)),
  });

const podTemplate = fc.record({
  annotations: fc.record(
    {
      'prometheus.io/scrape': fc.constantFrom('true', 'true', 'false'),
      'prometheus.io/port': fc.integer({ min: 1, max: 65535 }).map(String),
      'promux.io/exclude': fc.constant('b'),
      'odd/key~with/slashes': fc.constant('kept'),
    },
    { requiredKeys: [] },
  ),
  containers: fc.uniqueArray(fc.constantFrom('a', 'b', 'cache', 'worker'), { minLength: 1, maxLength: 4 })
    .chain((names) => fc.tuple(...names.map(container))),
  withMetadata: fc.boolean(),
});

type Template = { annotations: Record<string, string>; containers: Json[]; withMetadata: boolean };

function wrap(kind: string, t: Template, i: number): Json {
  const template: Json = { spec: { containers: t.containers } };
  if (t.withMetadata || Object.keys(t.annotations).length > 0) template.metadata = { labels: { app: 'x' }, annotations: t.annotations };
  const meta = { name: `obj-${i}`, namespace: 'ns' };
  switch (kind) {
    case 'Pod':
      return { apiVersion: 'v1', kind, metadata: { ...meta, ...(template.metadata as Json | undefined) }, spec: template.spec };
    case 'CronJob':
      return { apiVersion: 'batch/v1', kind, metadata: meta, spec: { schedule: '@daily', jobTemplate: { spec: { template } } } };
    case 'Job':
      return { apiVersion: 'batch/v1', kind, metadata: meta, spec: { template } };
    case 'ReplicationController':
      return { apiVersion: 'v1', kind, metadata: meta, spec: { template } };
    default:
      return { apiVersion: 'apps/v1', kind, metadata: meta, spec: { selector: { matchLabels: { app: 'x' } }, template } };
  }
}

const KINDS = ['Pod', 'Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'ReplicationController', 'Job', 'CronJob'];
const manifest = fc.array(fc.tuple(fc.constantFrom(...KINDS), podTemplate, fc.boolean()), { minLength: 1, maxLength: 4 });

test('over generated manifests of every kind: patch and output agree, inject is idempotent, uninject restores', () => {
  const config = defaultConfig();
  let injectedObjects = 0;
  fc.assert(
    fc.property(manifest, (entries) => {
      const docs = entries.map(([kind, t, inList], i) => {
        const obj = wrap(kind, t as Template, i);
        return `# document ${i}\n${stringify(inList ? { apiVersion: 'v1', kind: 'List', items: [obj] } : obj)}`;
      });
      const text = docs.join('---\n');
      const sources = [{ name: 'gen.yaml', text }];
      const originals = objectsOf(yamlValues(text));

      const yaml = dryRun(sources, injectEdit(config), 'yaml');
      const patches = dryRun(sources, injectEdit(config), 'patch').output.trimEnd().split('\n').map((l) => JSON.parse(l));
      assert.deepEqual(yaml.problems, []);
      const injected = objectsOf(yamlValues(yaml.output));
      injectedObjects += patches.filter((p) => p.length > 0).length;
      assert.equal(injected.length, originals.length);
      originals.forEach((o, i) => {
        assert.deepEqual(jsonpatch.applyPatch(structuredClone(o), patches[i], true, false).newDocument, injected[i]);
      });
      // Documents with nothing injected are written exactly as given.
      const outDocs = yaml.output.split(/^---\n/m);
      patches.forEach((p, i) => {
        if (p.length === 0) assert.equal(outDocs[i], docs[i]);
      });

      const again = dryRun([{ name: 'out.yaml', text: yaml.output }], injectEdit(config), 'yaml');
      assert.equal(again.output, yaml.output);
      const restored = dryRun([{ name: 'out.yaml', text: yaml.output }], uninjectEdit(config), 'yaml');
      assert.deepEqual(objectsOf(yamlValues(restored.output)), originals);
    }),
    { numRuns: 60 },
  );
  // The generator must reach injection, not only skips.
  assert.ok(injectedObjects >= 10, `only ${injectedObjects} objects injected`);
});
