import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import jsonpatch from 'fast-json-patch';
import { stringify } from 'yaml';
import { documentValue, editDocument, parseManifests, renderYaml } from '../../src/workloads/documents.ts';
import { InputError } from '../../src/workloads/input.ts';
import { FIXTURES } from '../helpers/tools.ts';

const unchanged = (name: string, text: string) =>
  renderYaml(parseManifests({ name, text }).map((document) => ({ document, changed: false })));

function edited(text: string, edit: (value: Record<string, unknown>) => Record<string, unknown>): string {
  const docs = parseManifests({ name: 'x.yaml', text });
  return renderYaml(
    docs.map((document) => {
      const before = documentValue(document) as Record<string, unknown>;
      const after = edit(structuredClone(before));
      editDocument(document, jsonpatch.compare(before, after), after);
      return { document, changed: true };
    }),
  );
}

test('untouched documents come back byte for byte: comments, markers, quoting, key order', () => {
  const text = [
    '# Licensed under the Apache License',
    'apiVersion: v1   # core',
    'kind: ConfigMap',
    'data: {b: "2", a: \'1\'}',
    '# closing comment',
    '---',
    '# second',
    'apiVersion: v1',
    'kind: Service',
    '...',
    '# after the end marker',
    '--- !!map',
    'apiVersion: v1',
    'kind: Secret',
    'stringData:',
    '  script: |',
    '    #!/bin/sh',
    '    echo "---"',
    '---',
    '# a document with nothing but a comment (helm writes these)',
    '',
  ].join('\n');
  assert.equal(unchanged('a.yaml', text), text);
});

test('every shared fixture comes back unchanged when nothing is edited', () => {
  const dir = join(FIXTURES, 'manifests');
  for (const name of readdirSync(dir)) {
    const text = readFileSync(join(dir, name), 'utf8');
    assert.equal(unchanged(name, text), text, name);
  }
});

test('documents from several files are separated by a marker, and a missing final newline is added', () => {
  const docs = [
    ...parseManifests({ name: 'a.yaml', text: 'kind: A' }),
    ...parseManifests({ name: 'b.json', text: '{"kind": "B"}' }),
  ];
  assert.equal(renderYaml(docs.map((document) => ({ document, changed: false }))), 'kind: A\n---\n{"kind": "B"}\n');
});

test('any stream of objects and comments survives unedited', () => {
  const scalar = fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null));
  const object = fc.dictionary(fc.string({ minLength: 1 }), fc.oneof(scalar, fc.array(scalar, { maxLength: 3 })), { maxKeys: 4 });
  const comment = fc.stringMatching(/^[ -~]{0,20}$/).map((c) => `# ${c}\n`);
  const doc = fc.tuple(fc.option(comment), object, fc.boolean()).map(([c, o, flow]) =>
    `${c ?? ''}${flow ? JSON.stringify(o) + '\n' : stringify(o)}`,
  );
  fc.assert(
    fc.property(fc.array(doc, { minLength: 1, maxLength: 4 }), (docs) => {
      const text = docs.join('---\n');
      const rendered = unchanged('p.yaml', text);
      assert.equal(rendered, text);
      const values = parseManifests({ name: 'p.yaml', text }).map(documentValue);
      assert.deepEqual(parseManifests({ name: 'q.yaml', text: rendered }).map(documentValue), values);
    }),
    { numRuns: 100 },
  );
});

test('an edit rewrites only the changed nodes: comments elsewhere and the quoting of other values stay', () => {
  const text = [
    'apiVersion: apps/v1 # the group',
    'kind: Deployment',
    'spec:',
    '  template:',
    '    metadata:',
    "      labels: {app: 'web'}",
    '      annotations:',
    '        prometheus.io/port: "8080" # the app',
    '    spec:',
    '      containers:',
    '        # the app itself',
    '        - name: app',
    '          image: "registry.example.com/app:1"',
    '',
  ].join('\n');
  const out = edited(text, (d) => {
    const tpl = (d.spec as { template: { metadata: { annotations: Record<string, string> }; spec: { containers: object[] } } }).template;
    tpl.metadata.annotations['prometheus.io/port'] = '13434';
    tpl.metadata.annotations['promux.io/status'] = JSON.stringify({ version: '0.1.0', note: 'x'.repeat(120) });
    tpl.spec.containers.push({ name: 'promux', ports: [{ name: 'promux-metrics', containerPort: 13434 }] });
    return d;
  });
  for (const kept of ['# the group', '# the app itself', '# the app', 'image: "registry.example.com/app:1"']) {
    assert.ok(out.includes(kept), `${kept} kept in:\n${out}`);
  }
  assert.match(out, /prometheus\.io\/port: "13434" # the app/);
  // A long annotation stays on one line, as people read and grep it.
  assert.match(out, /^ {8}promux\.io\/status: '\{"version":"0\.1\.0","note":"x{120}"\}'$/m);
  assert.match(out, /^ {8}- name: promux\n {10}ports:\n {12}- name: promux-metrics\n {14}containerPort: 13434$/m);
});

test('edited values are quoted where YAML 1.1 (kubectl, the API server) would read them as other than strings', () => {
  const strings = { a: 'yes', b: 'on', c: 'Y', d: '0755', e: '1:20', f: '8082', g: 'true', h: 'plain' };
  const out = edited('kind: ConfigMap\n', (d) => ({ ...d, data: strings }));
  for (const [key, value] of Object.entries(strings)) {
    assert.match(out, new RegExp(`^  ${key}: ${value === 'plain' ? 'plain' : `"${value}"`}$`, 'm'), out);
  }
});

test('metadata added to a template goes before its spec', () => {
  const text = 'kind: Deployment\nspec:\n  template:\n    spec:\n      containers: []\n';
  const out = edited(text, (d) => {
    (d.spec as { template: Record<string, unknown> }).template = { metadata: { annotations: { a: 'b' } }, spec: { containers: [] } };
    return d;
  });
  assert.equal(out, 'kind: Deployment\nspec:\n  template:\n    metadata:\n      annotations:\n        a: b\n    spec:\n      containers: []\n');
});

test('an edited JSON document is written as block YAML with the same value', () => {
  const text = '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"8080": "yes"}}, "spec": {"containers": [{"name": "a"}]}}';
  let after: unknown;
  const out = edited(text, (d) => {
    (d.metadata as Record<string, unknown>).annotations = { 'prometheus.io/port': '8080' };
    after = d;
    return d;
  });
  assert.doesNotMatch(out, /[{}]/);
  assert.match(out, /^apiVersion: v1\nkind: Pod\nmetadata:\n {2}name: p\n/);
  assert.deepEqual(parseManifests({ name: 'o.yaml', text: out }).map(documentValue), [after]);
});

test('a patch the YAML nodes do not take as JSON would (aliases, numeric keys) still yields the right value', () => {
  const text = [
    'kind: Deployment',
    'x-common: &labels {app: web}',
    'spec:',
    '  template:',
    '    metadata:',
    '      labels: *labels',
    '  ports:',
    '    80: http',
    '',
  ].join('\n');
  let after: unknown;
  const out = edited(text, (d) => {
    const spec = d.spec as { template: { metadata: { labels: Record<string, string> } }; ports: Record<string, string> };
    spec.template.metadata.labels.tier = 'front';
    spec.ports['80'] = 'web';
    after = d;
    return d;
  });
  assert.deepEqual(parseManifests({ name: 'o.yaml', text: out }).map(documentValue), [after]);
});

test('bad YAML names the file, the document, the line and the problem', () => {
  const cases: [string, RegExp][] = [
    ['kind: A\n---\nkind: B\n  bad: indent\n', /^x\.yaml: document 2 \(line 3\): not valid YAML: .+ \(line 3, column 7\)$/],
    ['kind: A\nkind: B\n', /^x\.yaml: document 1 \(line 1\): not valid YAML: Map keys must be unique \(line 2, column 1\)$/],
    ['a: [1, 2\n', /^x\.yaml: document 1 \(line 1\): not valid YAML: Flow sequence .+ \(line 2, column 1\)$/],
    ['kind: A\n---\n\n\tkind: B\n', /^x\.yaml: document 2 \(line 4\): not valid YAML: Tabs are not allowed .+ \(line 4, column 1\)$/],
  ];
  for (const [text, expected] of cases) {
    assert.throws(() => parseManifests({ name: 'x.yaml', text }), (err: unknown) => {
      assert.ok(err instanceof InputError);
      assert.match(err.message, expected);
      return true;
    });
  }
});

test('an empty or comment-only file has no documents; an empty document has the value null', () => {
  assert.deepEqual(parseManifests({ name: 'e.yaml', text: '' }), []);
  assert.deepEqual(parseManifests({ name: 'c.yaml', text: '# only a comment\n' }), []);
  assert.deepEqual(parseManifests({ name: 'c.yaml', text: '---\n# only a comment\n' }).map(documentValue), [null]);
  assert.deepEqual(parseManifests({ name: 'm.yaml', text: 'kind: A\n---\n' }).map(documentValue), [{ kind: 'A' }, null]);
});
