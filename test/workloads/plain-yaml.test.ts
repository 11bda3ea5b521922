// The block-style fast road (src/workloads/plain-yaml.ts) against yaml itself, the reference: for
// generated documents in every style yaml can write them (and near misses of them), whatever the fast
// reader takes, yaml reads without error and to the same value; every edit of such a document is
// written to the same bytes as yaml's Document writes it; and a stream cut at its "---" lines gives
// the same documents (text, number, line, value, errors) as yaml's stream reader.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import jsonpatch from 'fast-json-patch';
import { Document, parseDocument, Scalar, visit } from 'yaml';
import { looksLikeJson } from '../../src/json.ts';
import {
  documentValue, editDocument, readManifests, readYamlStream, renderYamlDocument, type ManifestDocument,
} from '../../src/workloads/documents.ts';
import { PARSE_OPTIONS, PlainDocument, readPlainDocument, writeString, yamlWrites } from '../../src/workloads/plain-yaml.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

// Strings that YAML reads (or YAML 1.1 readers read) as something else, or that need quoting.
const TRICKY = [
  'yes', 'No', 'on', 'OFF', 'y', 'N', 'true', 'False', 'null', 'NULL', '~', '', ' ', '8080', '-1', '+1', '0755', '0o17',
  '0x1F', '1_000', '1:20', '.5', '1e3', '.inf', '-.Inf', '.nan', '2001-12-14', 'a: b', 'a:b', 'x:', 'a #b', 'a#b', '#a',
  '- a', '-', '-a', '--export_to', '? x', '?x', ':x', '[a]', 'a[0]', '{a}', 'a,b', '*a', '&a', '!a', '|', '>', "it's",
  'say "hi"', 'back\\slash', '%p', '@a', '`a`', 'a  b', ' lead', 'trail ', 'tab\tx', 'new\nline', 'é', '日本', '---',
  '--- x', '...', '<<', 'app:8080,worker:8081', '$(POD_NAMESPACE).svc', '/metrics', 'example/app:1.0', '10m', '64Mi',
  '{"a":1}', 'a=b c', 'x'.repeat(90), 'k8s.io/x y', '\u0007', '\u00a0', '30s', '5m0s', '1.0.0', '1Gi', '-1x', '+', '~x', '.5x',
  '--listen=:8443', 'http://127.0.0.1:8081/', 'a:', ':a', 'a:b:c', '12:30:00', '0b101', '1.', '-.5', '1e', '1e+3', 'e3', 'E-2',
];
const KEYS = [
  'apiVersion', 'kind', 'metadata', 'spec', 'name', 'containers', 'image', 'ports', 'annotations', 'prometheus.io/port',
  'a b', 'yes', '8080', 'x: y', "it's", 'a#b', '-x', '__proto__', 'é', '"q"', '',
];
const scalar: fc.Arbitrary<Json> = fc.oneof(
  { arbitrary: fc.constantFrom(...TRICKY), weight: 1 },
  { arbitrary: fc.stringMatching(/^[a-z][a-z0-9./:= -]{0,14}$/), weight: 4 },
  { arbitrary: fc.string({ maxLength: 8 }), weight: 1 },
  { arbitrary: fc.integer({ min: -100000, max: 100000 }), weight: 2 },
  { arbitrary: fc.constantFrom(0, 1.5, -0.25, 1e21, 2 ** 53), weight: 1 },
  { arbitrary: fc.boolean(), weight: 1 },
  { arbitrary: fc.constant(null), weight: 1 },
);
const key = fc.oneof(
  { arbitrary: fc.constantFrom(...KEYS), weight: 1 },
  { arbitrary: fc.stringMatching(/^[a-z][a-zA-Z0-9./_-]{0,10}$/), weight: 4 },
);
const dictionary = <T>(value: fc.Arbitrary<T>, minKeys: number, maxKeys: number) =>
  fc.dictionary(key, value, { minKeys, maxKeys, noNullPrototype: true });
const { json } = fc.letrec<{ json: Json }>((tie) => ({
  json: fc.oneof(
    { maxDepth: 4, depthSize: 'small' },
    scalar,
    fc.array(tie('json'), { maxLength: 3 }),
    dictionary(tie('json'), 0, 4),
  ),
}));
const top = dictionary(json, 1, 5);

/** A random source of choices, so that one generated value can be written in many styles. */
const choices = fc.array(fc.nat(99), { minLength: 32, maxLength: 32 });
function chooser(list: number[]): (n: number) => number {
  let i = 0;
  return (n) => list[i++ % list.length]! % n;
}

const STYLES = [Scalar.PLAIN, Scalar.QUOTE_DOUBLE, Scalar.QUOTE_SINGLE, Scalar.BLOCK_LITERAL] as const;

/** The value written by yaml in a style picked by `pick`: flow or block collections, quoting, indentation, a head. */
function written(value: Json, pick: (n: number) => number): string {
  const doc = new Document(value);
  const decorate = pick(3) === 0;
  visit(doc, {
    Collection(_, node) {
      if (pick(4) === 0) node.flow = true;
    },
    Scalar(_, node) {
      if (typeof node.value === 'string' && pick(3) === 0) node.type = STYLES[pick(STYLES.length)];
    },
    Node(_, node) {
      // Comments before and after nodes, and blank lines, as people write them.
      if (!decorate) return;
      if (pick(6) === 0) node.commentBefore = [' note', ' a: b', '#', ''][pick(4)];
      if (pick(6) === 0) node.comment = [' why', ' - x', ''][pick(3)];
      if (pick(6) === 0) node.spaceBefore = true;
    },
  });
  const body = doc.toString({
    indent: [2, 4, 3][pick(3)],
    indentSeq: pick(2) === 0,
    lineWidth: [0, 0, 40, 80][pick(4)],
    flowCollectionPadding: pick(2) === 0,
  });
  const head = ['', '---\n', '---\n# Source: chart/templates/x.yaml\n', '# c\n#\n', '---\n#no space\n# two  \n'][pick(5)]!;
  const tail = ['', '', '\n', '\n  \n'][pick(4)]!;
  return head + body + tail;
}

/** Near misses: one character inserted or removed, or a line repeated. */
function nearMiss(text: string, pick: (n: number) => number): string {
  const at = pick(text.length + 1);
  switch (pick(3)) {
    case 0:
      return text.slice(0, at) + ' :-#"\'[]{},\n\tx!&*|>'[pick(20)] + text.slice(at);
    case 1:
      return text.slice(0, at) + text.slice(at + 1);
    default: {
      const lines = text.split('\n');
      const i = pick(lines.length);
      lines.splice(i, 0, lines[i]!);
      return lines.join('\n');
    }
  }
}

const counts = { read: 0, taken: 0, edited: 0, editedPlain: 0 };

test('every string is written as yaml writes it, as a key or a value, in block or flow, in any quoting', () => {
  const alphabet = ' aeyEnoslu0159._-/:#,[]{}\'"\\$@~=+()!&*|>%`?<\t\né'.split('');
  const string = fc.oneof(
    fc.constantFrom(...TRICKY),
    fc.string({ unit: fc.constantFrom(...alphabet), maxLength: 8 }),
    fc.stringMatching(/^[a-zA-Z_/$][a-zA-Z0-9./:=+@~,()$ -]{0,10}$/),
  );
  const style = fc.constantFrom(undefined, 'PLAIN', 'QUOTE_DOUBLE', 'QUOTE_SINGLE') as fc.Arbitrary<'PLAIN' | undefined>;
  const outcome = (write: () => string) => {
    try {
      return write();
    } catch (err) {
      return (err as Error).name;
    }
  };
  fc.assert(
    fc.property(string, style, fc.boolean(), fc.boolean(), (value, quoting, key, flow) => {
      if (value === '<<') return; // never written here (see writeString)
      assert.equal(outcome(() => writeString(value, quoting, key, flow)), outcome(() => yamlWrites(value, quoting, key, flow)));
    }),
    { numRuns: 5000 },
  );
});

test('what the fast reader takes, yaml reads without error and to the same value', () => {
  fc.assert(
    fc.property(top, choices, fc.boolean(), (value, list, miss) => {
      const pick = chooser(list);
      let text = written(value, pick);
      if (miss) text = nearMiss(text, pick);
      counts.read++;
      const plain = readPlainDocument(text);
      if (plain === undefined) return;
      counts.taken++;
      const doc = parseDocument(text, PARSE_OPTIONS);
      assert.deepEqual(doc.errors, [], text);
      assert.deepEqual(plain.toJS(), doc.toJS(), text);
    }),
    { numRuns: 3000 },
  );
  // Not vacuous: enough of what yaml writes is in the subset (the rest: multi-line and block
  // scalars, floats, nested sequences, near misses...).
  assert.ok(counts.taken > 300, `${counts.taken} of ${counts.read} taken`);
});

/** A random edit of a JSON value, the way the engine's are: set, add or remove values anywhere. */
function mutated(value: Json, pick: (n: number) => number, replacement: Json): Json {
  const copy = structuredClone(value);
  const walk = (node: Json, depth: number): void => {
    if (node === null || typeof node !== 'object') return;
    const keys = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
    for (const k of keys) {
      if (pick(3) === 0) walk((node as Record<string | number, Json>)[k]!, depth + 1);
    }
    switch (pick(depth === 0 ? 4 : 8)) {
      case 0:
        if (Array.isArray(node)) node.splice(pick(node.length + 1), 0, replacement);
        else node[pick(2) === 0 && 'spec' in node ? 'metadata' : `new-${pick(5)}`] = replacement;
        break;
      case 1:
        if (keys.length > 0) {
          const k = keys[pick(keys.length)]!;
          if (Array.isArray(node)) node.splice(k as number, 1);
          else delete node[k as string];
        }
        break;
      case 2:
        if (keys.length > 0) (node as Record<string | number, Json>)[keys[pick(keys.length)]!] = replacement;
        break;
      case 3: {
        // A string set to another string keeps its quoting: the common edit (an annotation's new value).
        const k = keys.find((x) => typeof (node as Record<string | number, Json>)[x] === 'string');
        if (k !== undefined) (node as Record<string | number, Json>)[k] = typeof replacement === 'string' ? replacement : '13434';
        break;
      }
    }
  };
  walk(copy, 0);
  return copy;
}

/** The document as yaml's reader gives it, for the reference edit. */
function yamlTwin(d: ManifestDocument): ManifestDocument {
  return { ...d, doc: parseDocument(d.raw, PARSE_OPTIONS) };
}

test('an edited document is written as yaml writes it, byte for byte', () => {
  fc.assert(
    fc.property(top, choices, json, (value, list, replacement) => {
      const pick = chooser(list);
      const text = written(value, pick);
      // Read as JSON, or (with an indent of 3 and indentSeq off, yaml writes what it cannot read back) not YAML.
      if (text.startsWith('{') || parseDocument(text).errors.length > 0) return;
      const [d, ...rest] = [...readManifests({ name: 'g.yaml', text })];
      assert.equal(rest.length, 0);
      if (!(d!.doc instanceof PlainDocument)) return;
      const before = documentValue(d!) as Json;
      const after = mutated(before, pick, replacement);
      const patch = jsonpatch.compare(before as object, after as object);
      if (patch.length === 0) return;
      counts.edited++;
      const twin = yamlTwin(d!);
      editDocument(d!, patch, after);
      editDocument(twin, patch, after);
      if (d!.doc instanceof PlainDocument) counts.editedPlain++;
      assert.equal(renderYamlDocument(d!, true, false), renderYamlDocument(twin, true, false), d!.raw);
    }),
    { numRuns: 3000 },
  );
  assert.ok(counts.editedPlain > 300, `${counts.editedPlain} of ${counts.edited} edits written by the fast road`);
});

test('metadata added after a spec that the same patch added goes before it, on the fast road as in yaml', () => {
  // Found by the property above: yaml keeps a key set by an earlier operation as a string, not a Scalar.
  const [d] = [...readManifests({ name: 'g.yaml', text: 'kind: Pod\ntemplate: {}\n' })];
  assert.ok(d!.doc instanceof PlainDocument);
  const after = { kind: 'Pod', template: { spec: { a: 1 }, metadata: { b: 2 } } };
  const patch = jsonpatch.compare(documentValue(d!) as object, after);
  assert.deepEqual(patch.map((op) => op.path), ['/template/spec', '/template/metadata']);
  const twin = yamlTwin(d!);
  editDocument(d!, patch, after);
  editDocument(twin, patch, after);
  assert.ok(d!.doc instanceof PlainDocument);
  const expected = '---\nkind: Pod\ntemplate: {metadata: {b: 2}, spec: {a: 1}}\n';
  assert.equal(renderYamlDocument(twin, true, false), expected);
  assert.equal(renderYamlDocument(d!, true, false), expected);
});

test('edits like the engine\'s stay on the fast road and come out as yaml writes them', () => {
  const text = [
    '---',
    '# Source: shop/templates/deployment.yaml',
    'apiVersion: apps/v1',
    'kind: Deployment',
    'metadata: {name: web, labels: {app: web}}',
    'spec:',
    '  template:',
    '    metadata:',
    '      annotations:',
    "        prometheus.io/port: '8080'",
    '        prometheus.io/scrape: "true"',
    '    spec:',
    '      containers:',
    '      - name: web',
    '        image: "registry.example.com/web:1"',
    '        args: [--port, "8080", --verbose]',
    '        ports: [{name: http-metrics, containerPort: 8080}]',
    '',
  ].join('\n');
  const [d] = [...readManifests({ name: 'd.yaml', text })];
  assert.ok(d!.doc instanceof PlainDocument);
  const before = documentValue(d!) as { spec: { template: { metadata: { annotations: Record<string, string> }; spec: { containers: Json[] } } } };
  const after = structuredClone(before);
  after.spec.template.metadata.annotations['prometheus.io/port'] = '13434';
  after.spec.template.metadata.annotations['promux.io/status'] = '{"version":"0.1.0","targets":"web:8080"}';
  after.spec.template.spec.containers.push({
    name: 'promux', args: ['sidecar', '--export_to', '13434', '--flag', 'yes'], env: [{ name: 'NODE_OPTIONS', value: '--max-old-space-size=48 --x=1' }],
    resources: { requests: { cpu: '10m' }, limits: {} }, securityContext: { capabilities: { drop: ['ALL'] }, runAsUser: 65532, readOnlyRootFilesystem: true },
  });
  const patch = jsonpatch.compare(before, after);
  const twin = yamlTwin(d!);
  editDocument(d!, patch, after);
  editDocument(twin, patch, after);
  assert.ok(d!.doc instanceof PlainDocument, 'the edit stayed on the fast road');
  const out = renderYamlDocument(d!, true, true);
  assert.equal(out, renderYamlDocument(twin, true, true));
  assert.match(out, /^---\n# Source: shop\/templates\/deployment\.yaml\napiVersion: apps\/v1\n/);
  assert.match(out, /prometheus\.io\/port: '13434'\n/);
  assert.match(out, /- --export_to\n {12}- "13434"\n/);
  assert.match(out, /limits: \{\}\n/);
});

/** Streams of documents of every sort, cut and joined the ways files are. */
const piece = fc.oneof(
  fc.tuple(top, choices).map(([value, list]) => written(value, chooser(list))),
  fc.constantFrom(
    'a: |\n  block\n  ---\n', 'a: &x 1\nb: *x\n', 'a: 1 # c\n', 'a: 1\n\nb: 2\n', 'a: 1\n# trailing\n', '# only\n', '',
    '\n', 'a: [1,\n  2]\n', "a: 'x\n", 'a: 1\na: 2\n', '  a: 1\n', '- a\n', 'a: 1\n...\n', '%YAML 1.2\n---\na: 1\n',
    '--- # c\na: 1\n', 'a:\tb\n', 'a: 1\r\nb: 2\r\n', '{"a": 1}\n', 'a: !!str 1\n', '--- |\n  x\n',
  ),
);
const stream = fc.tuple(fc.array(piece, { minLength: 1, maxLength: 5 }), fc.array(fc.constantFrom('---\n', '\n---\n', '---\n\n', '---\n# c\n'), { minLength: 5, maxLength: 5 }))
  .map(([pieces, seps]) => pieces.map((p, i) => (i === 0 ? p : seps[i]! + p)).join(''));

function described(read: () => ManifestDocument[]): unknown {
  try {
    return read().map((d) => ({ index: d.index, line: d.line, raw: d.raw, hasMarker: d.hasMarker, value: documentValue(d) }));
  } catch (err) {
    return (err as Error).message;
  }
}

test('a stream cut at its "---" lines gives the documents, lines and errors of yaml\'s stream reader', () => {
  let plain = 0;
  fc.assert(
    fc.property(stream, (text) => {
      if (looksLikeJson(text)) return;
      const source = { name: 's.yaml', text };
      const expected = described(() => [...readYamlStream(source)]);
      const actual = described(() => {
        const docs = [...readManifests(source)];
        plain += docs.filter((d) => d.doc instanceof PlainDocument).length;
        return docs;
      });
      assert.deepEqual(actual, expected, JSON.stringify(text));
    }),
    { numRuns: 2000 },
  );
  assert.ok(plain > 500, `${plain} documents read by the fast road`);
});

test('what the fast road leaves to yaml: block scalars, anchors, tags, tabs, floats, nulls, multi-line values', () => {
  for (const text of [
    'a: |\n  x\n', 'a: &x 1\nb: *x\n', 'a: !!str 1\n', 'a:\tb\n', 'a: 1.5\n', 'a: 0x1F\n', 'a: ~\n', 'a:\n', 'a: 1\na: 2\n',
    '<<: {a: 1}\n', 'a: "\\x41"\n', '- a\n', 'a: b\n  c\n', 'a: [1,\n  2]\n', '{a: 1}\n', 'a: {b: 1}: c\n', 'a: "b"# c\n',
    '- - a\n', 'a:\n- # c\n',
  ]) {
    assert.equal(readPlainDocument(text), undefined, JSON.stringify(text));
  }
});

test('comments and blank lines inside a document are read past; an edit of such a document is left to yaml', () => {
  const text = 'kind: A # the kind\n\nspec:\n  # the replicas\n  replicas: 1   \n  selector: {app: a}  # c\n# the end\n';
  const [d] = [...readManifests({ name: 'c.yaml', text })];
  assert.ok(d!.doc instanceof PlainDocument);
  assert.deepEqual(documentValue(d!), { kind: 'A', spec: { replicas: 1, selector: { app: 'a' } } });
  const after = { kind: 'A', spec: { replicas: 2, selector: { app: 'a' } } };
  editDocument(d!, [{ op: 'replace', path: '/spec/replicas', value: 2 }], after);
  assert.ok(!(d!.doc instanceof PlainDocument));
  assert.equal(renderYamlDocument(d!, true, true), 'kind: A # the kind\n\nspec:\n  # the replicas\n  replicas: 2\n  selector: {app: a} # c\n\n# the end\n');
});

test('the shapes kubectl and helm write are read by the fast road, to what yaml reads', () => {
  for (const [text, value] of [
    ['a: b\n', { a: 'b' }],
    ['"a b": \'c\'\'d\'\n', { 'a b': "c'd" }],
    ['a:\n- 1\n- {b: [x, "y"]}\n', { a: [1, { b: ['x', 'y'] }] }],
    ['a:\n  - b: 1\n    c:\n    - d\n', { a: [{ b: 1, c: ['d'] }] }],
    ['a: "x\\"y\\u00e9"\n', { a: 'x"yé' }],
    ['a: {}\nb: []\nc: null\nd: true\ne: -12\n', { a: {}, b: [], c: null, d: true, e: -12 }],
  ] as const) {
    const plain = readPlainDocument(text);
    assert.ok(plain !== undefined, text);
    assert.deepEqual(plain.toJS(), value);
    assert.deepEqual(parseDocument(text, PARSE_OPTIONS).toJS(), value);
  }
});
