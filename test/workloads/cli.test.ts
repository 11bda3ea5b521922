// `promux inject` and `promux uninject` as users run them: bin/promux.js in a child process, with
// real files, folders and stdin; exit codes, what reaches stdout and stderr.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { REPO_ROOT, FIXTURES } from '../helpers/tools.ts';
import { objectsOf, runCli, yamlValues, type Run } from './run.ts';

const GOLDEN = join(import.meta.dirname, 'golden');
const EXAMPLES = join(REPO_ROOT, 'examples');
const OPENFAAS = join(FIXTURES, 'manifests', 'openfaas-gateway.yaml');

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'promux-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function assertNoStackTrace(r: Run): void {
  assert.doesNotMatch(r.stderr, /^\s+at .+:\d+:\d+\)?$/m, r.stderr);
}

test('inject -f examples/ prints every example injected, in file order, and reports each object', () => {
  const r = runCli(['inject', '-f', 'examples/']);
  assert.equal(r.code, 0, r.stderr);
  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml')).sort();
  const expected = files.map((f) => readFileSync(join(GOLDEN, 'examples', f.replace(/\.yaml$/, '.inject.yaml')), 'utf8'));
  assert.equal(r.stdout, expected.join('---\n'));
  assert.match(r.stderr, /^Pod default\/shop: injected \(app:8080, worker:8081\)$/m);
  assert.match(r.stderr, new RegExp(`^${files.length} objects in ${files.length} files: ${files.length} injected\\n$`, 'm'));
  assertNoStackTrace(r);
});

test('-f - reads stdin; -o patch and -o json print the same objects as files do', () => {
  const text = readFileSync(OPENFAAS, 'utf8');
  const yaml = runCli(['inject', '-f', '-'], text);
  assert.equal(yaml.code, 0, yaml.stderr);
  assert.equal(yaml.stdout, readFileSync(join(GOLDEN, 'fixtures', 'openfaas-gateway.inject.yaml'), 'utf8'));
  const patch = runCli(['inject', '-o', 'patch', '-f', '-'], text);
  assert.equal(patch.stdout, readFileSync(join(GOLDEN, 'fixtures', 'openfaas-gateway.inject.patch'), 'utf8'));
  const json = runCli(['inject', '--output=json', '--filename', OPENFAAS]);
  assert.deepEqual([JSON.parse(json.stdout)], yamlValues(yaml.stdout));
});

test('uninject restores what inject wrote, through a pipe as users chain them', () => {
  const originals = objectsOf(yamlValues(readFileSync(join(FIXTURES, 'manifests', 'workloads.yaml'), 'utf8')));
  const injected = runCli(['inject', '-f', join(FIXTURES, 'manifests', 'workloads.yaml'), '--kubernetes-version', '1.30']);
  const restored = runCli(['uninject', '-f', '-'], injected.stdout);
  assert.equal(restored.code, 0, restored.stderr);
  assert.deepEqual(objectsOf(yamlValues(restored.stdout)), originals);
  assert.match(restored.stderr, /^StatefulSet orders: uninjected: .*promux/m);
  assert.match(restored.stderr, /: 3 restored, 1 passed through\n$/);
  assert.match(restored.stderr, /^Service orders: passed through$/m);
});

test('--config changes what is injected; a bad configuration fails naming the file and the key', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'good.yaml'), 'sidecar:\n  port: 14000\n  image: registry.example.com/promux:dev\n');
  writeFileSync(join(dir, 'bad.yaml'), 'sidecar:\n  prot: 14000\n');
  const good = runCli(['inject', '-f', OPENFAAS, '--config', join(dir, 'good.yaml')]);
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /containerPort: 14000/);
  assert.match(good.stdout, /image: registry\.example\.com\/promux:dev/);
  const bad = runCli(['inject', '-f', OPENFAAS, '--config', join(dir, 'bad.yaml')]);
  assert.equal(bad.code, 1);
  assert.equal(bad.stdout, '');
  assert.match(bad.stderr, /bad\.yaml: invalid configuration:\n\s+sidecar\.prot: unknown key/);
  assertNoStackTrace(bad);
});

test('--kubernetes-version (or the configuration\'s kubernetesVersion) decides whether Job pods get a native sidecar', (t) => {
  const jobs = join(FIXTURES, 'manifests', 'jobs.yaml');
  const unknown = runCli(['inject', '-f', jobs, '-o', 'patch']);
  assert.equal(unknown.code, 0, unknown.stderr);
  assert.match(unknown.stderr, /^Job shop\/db-migrate: skipped: restartPolicy is Never: .* the cluster's version is unknown: set kubernetesVersion/m);
  const known = runCli(['inject', '-f', jobs, '--kubernetes-version', 'v1.30.2']);
  assert.equal(known.code, 0, known.stderr);
  assert.match(known.stderr, /^Job shop\/db-migrate: injected \(migrate:9091, cloud-sql-proxy:9801\)$/m);
  assert.match(known.stderr, /^CronJob billing\/invoice-run: injected \(invoicer:8080, pdf-renderer:9100\)$/m);
  assert.match(known.stdout, /initContainers:\n\s+- name: promux\n[^]*?restartPolicy: Always/);
  const dir = tempDir(t);
  writeFileSync(join(dir, 'old.yaml'), 'kubernetesVersion: "1.28"\n');
  const old = runCli(['inject', '-f', jobs, '--config', join(dir, 'old.yaml')]);
  assert.match(old.stderr, /^Job shop\/db-migrate: skipped: .* and the cluster runs 1\.28$/m);
  const bad = runCli(['inject', '-f', jobs, '--kubernetes-version', 'latest']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'promux inject: --kubernetes-version: "latest" is not a Kubernetes version such as 1.31 (see \'promux inject --help\')\n');
});

test('unreadable input fails with the file, document and problem, and nothing on stdout', (t) => {
  const dir = tempDir(t);
  const write = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const good = write('good.yaml', readFileSync(OPENFAAS, 'utf8'));
  mkdirSync(join(dir, 'empty'));
  const cases: [string, string[], RegExp][] = [
    ['broken YAML', [write('broken.yaml', 'apiVersion: v1\nkind: Service\n---\nmetadata:\n  name: [x\n')],
      /broken\.yaml: document 2 \(line 4\): not valid YAML: .+ \(line \d+, column \d+\)\n/],
    ['a duplicate key', [write('dup.yaml', 'apiVersion: v1\nkind: Pod\nkind: Service\n')],
      /dup\.yaml: document 1 \(line 1\): not valid YAML: Map keys must be unique \(line 3, column 1\)\n/],
    ['a non-object document', [write('list.yaml', '- apiVersion: v1\n  kind: Pod\n')],
      /list\.yaml: document 1 \(line 1\): expected a Kubernetes object \(a mapping with apiVersion and kind\), found a list\n/],
    ['a document without kind', [write('nokind.json', '{"apiVersion": "v1", "metadata": {"name": "x"}}')],
      /nokind\.json: document 1 \(line 1\): not a Kubernetes object: "kind" is missing\n/],
    ['a Deployment without template', [write('deploy.yaml', 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n')],
      /deploy\.yaml: document 1 \(line 1\): Deployment web has no pod template: spec\.template is missing\n/],
    ['a missing file, after a good one', [good, join(dir, 'missing.yaml')], /missing\.yaml: cannot read: no such file or directory\n/],
    ['a folder without manifests', [join(dir, 'empty')], /no \*\.yaml, \*\.yml, \*\.json files in this folder\n/],
  ];
  for (const [what, files, expected] of cases) {
    const r = runCli(['inject', ...files.flatMap((f) => ['-f', f])]);
    assert.equal(r.code, 1, `${what}: ${r.stderr}`);
    assert.equal(r.stdout, '', what);
    assert.match(r.stderr, new RegExp(`^promux inject: .*${expected.source}`, 'm'), what);
    assertNoStackTrace(r);
  }
  // Problems in several documents are all named at once.
  const r = runCli(['inject', '-f', join(dir, 'deploy.yaml'), '-f', join(dir, 'list.yaml'), '-f', good]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /deploy\.yaml.*\n.*list\.yaml.*\npromux inject: nothing written: fix the 2 problems above\n$/);
});

test('pods the engine cannot use are skipped with the reason, and the run still succeeds', (t) => {
  const dir = tempDir(t);
  const pod = (name: string, annotations: string, spec: string) =>
    `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n  annotations:\n${annotations}${spec}`;
  const scrape = '    prometheus.io/scrape: "true"\n';
  const twoContainers = 'spec:\n  containers:\n    - {name: a, image: a, ports: [{name: metrics, containerPort: 9090}]}\n    - {name: b, image: b}\n';
  const file = join(dir, 'pods.yaml');
  writeFileSync(file, [
    pod('no-spec', scrape, ''),
    pod('same-names', scrape, 'spec:\n  containers:\n    - {name: a, image: a}\n    - {name: a, image: b}\n'),
    pod('numeric-port', `${scrape}    prometheus.io/port: 9090\n`, twoContainers),
  ].join('---\n'));
  const r = runCli(['inject', '-f', file, '-o', 'patch']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '[]\n[]\n[]\n');
  assert.match(r.stderr, /^Pod no-spec: skipped: .*spec/m);
  assert.match(r.stderr, /^Pod same-names: skipped: .*"a"/m);
  assert.match(r.stderr, /^Pod numeric-port: skipped: .*prometheus\.io\/port.*not a string/m);
  assert.match(r.stderr, /3 objects in 1 file: 3 skipped\n$/);
  assertNoStackTrace(r);
});

test('a command line that cannot be understood exits 2 and says why; --help exits 0', () => {
  const cases: [string[], RegExp][] = [
    [['inject'], /^promux inject: no input: give -f FILE, -f FOLDER or -f - \(standard input\)/],
    [['inject', '-f', OPENFAAS, '-o', 'xml'], /argument 'xml' is invalid\. Allowed choices are yaml, json, patch/],
    [['uninject', '-f', OPENFAAS, '--dry-run'], /unknown option '--dry-run'/],
    [['inject', OPENFAAS], /too many arguments/],
  ];
  for (const [args, expected] of cases) {
    const r = runCli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, expected);
    assertNoStackTrace(r);
  }
  const help = runCli(['inject', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: promux inject \[options\]/);
  assert.match(help.stdout, /-f, --filename <path>/);
  assert.match(help.stdout, /-o, --output <format>/);
});
