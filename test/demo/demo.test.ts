import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import type { Operation } from 'fast-json-patch';
import { admissionReview, localSidecarArgs, readPod, standInExposition, summarizePatch } from '../../src/demo.ts';
import { REPO_ROOT, requireTool } from '../helpers/tools.ts';

const PROMUX = join(REPO_ROOT, 'bin', 'promux.js');
const EXAMPLE = join(REPO_ROOT, 'examples', 'two-container-pod.yaml');

/** Child processes of `pid`, from /proc (Linux). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces) start at the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('promux demo: admits the example pod, serves the merge until SIGINT, then exits 0 leaving nothing behind', async (t) => {
  // Its own process group, so a failing test can kill the demo's children too, not only the demo.
  const demo = spawn(process.execPath, [PROMUX, 'demo'], {
    cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
  });
  const exited = new Promise<number | null>((resolve) => demo.once('exit', (code) => resolve(code)));
  t.after(() => {
    try {
      process.kill(-demo.pid!, 'SIGKILL');
    } catch {
      // the group is gone: nothing left behind
    }
  });
  let stderr = '';
  demo.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const lines: string[] = [];
  const ready = new Promise<void>((resolve, reject) => {
    createInterface({ input: demo.stdout }).on('line', (line) => {
      lines.push(line);
      if (line === 'Press Ctrl-C to stop.') resolve();
    });
    void exited.then((code) => reject(new Error(`demo exited (${code}) before it was ready:\n${lines.join('\n')}\n${stderr}`)));
  });
  await ready;
  const output = lines.join('\n');

  assert.match(output, /decision: allowed, injected/);
  assert.match(output, /add \/spec\/containers\/2: container promux/);
  assert.match(output, /replace annotation prometheus\.io\/port: "8080" -> "13434"/);
  assert.match(output, /promux sidecar --container_to_port_map app:8080,worker:8081/);
  // The merged metrics printed, then served at the printed URL.
  assert.match(output, /^ {5}http_requests_total\{container="app",code="200"\} \d+$/m);
  assert.match(output, /^ {5}http_requests_total\{container="worker",code="200"\} \d+$/m);
  const url = /^ {2}curl (http:\/\/127\.0\.0\.1:\d+\/metrics)$/m.exec(output)?.[1];
  assert.ok(url !== undefined, output);
  const scrape = await fetch(url);
  assert.equal(scrape.status, 200);
  const body = await scrape.text();
  assert.match(body, /^promux_target_up\{container="app",endpoint="\d+"\} 1$/m);
  assert.match(body, /^promux_target_up\{container="worker",endpoint="\d+"\} 1$/m);
  assert.equal(body.match(/^# TYPE http_requests_total /gm)?.length, 1, 'one TYPE line per family');
  const promtool = requireTool(t, 'promtool');
  if (promtool !== undefined) {
    const check = spawnSync(promtool, ['check', 'metrics'], { input: body, encoding: 'utf8' });
    assert.equal(check.status, 0, `${check.stdout}${check.stderr}`);
  }

  const tempDir = /generated in (\S+)\)/.exec(output)?.[1];
  assert.ok(tempDir !== undefined && existsSync(tempDir), 'the demo names its certificate folder');
  const children = childrenOf(demo.pid!);
  assert.equal(children.length, 2, 'the webhook and the sidecar run as child processes');

  demo.kill('SIGINT');
  assert.equal(await exited, 0, stderr);
  assert.deepEqual(children.filter(alive), [], 'no child process outlives the demo');
  assert.equal(existsSync(tempDir), false, 'the certificate folder is removed');
  assert.equal(stderr, '');
});

test('promux demo: a pod the webhook skips ends with the reason, exit 1, and no process left', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'promux-demo-test-'));
  try {
    const file = join(dir, 'single.yaml');
    writeFileSync(file, 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: solo\n  annotations:\n    prometheus.io/scrape: "true"\n' +
      '    prometheus.io/port: "8080"\nspec:\n  containers:\n    - name: app\n      image: app:1\n');
    const demo = spawn(process.execPath, [PROMUX, 'demo', '-f', file], { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '' } });
    let stdout = '';
    let stderr = '';
    demo.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    demo.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const seen = new Set<number>();
    const watch = setInterval(() => childrenOf(demo.pid!).forEach((p) => seen.add(p)), 20);
    const code = await new Promise<number | null>((resolve) => demo.once('exit', resolve));
    clearInterval(watch);
    assert.equal(code, 1, stdout);
    assert.match(stdout, /decision: allowed, skipped/);
    assert.match(stderr, /^promux demo: the webhook did not inject pod default\/solo/);
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace for a user error');
    assert.deepEqual([...seen].filter(alive), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('promux demo: --help, and clear errors for bad flags and files', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [PROMUX, 'demo', ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
  const help = run('--help');
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^Usage: promux demo/);
  const badPort = run('--port', 'http');
  assert.equal(badPort.status, 2);
  assert.match(badPort.stderr, /--port "http": expected a port number/);
  const unknown = run('--bogus');
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /bogus/);
  const missing = run('-f', '/nonexistent/pod.yaml');
  assert.equal(missing.status, 1);
  assert.equal(missing.stderr, 'promux demo: /nonexistent/pod.yaml: cannot read: no such file or directory\n');
});

test('readPod takes the first Pod of a file, or the pod template of its first workload, and names the file when there is none', () => {
  const pod = readPod(EXAMPLE);
  assert.equal(pod.metadata.name, 'shop');
  assert.deepEqual(pod.spec.containers.map((c) => c.name), ['app', 'worker']);
  const deployment = readPod(join(REPO_ROOT, 'examples', 'three-container-deployment.yaml'));
  assert.equal(deployment.metadata.name, 'checkout', 'the pod is named after its workload');
  assert.deepEqual(deployment.spec.containers.map((c) => c.name), ['api', 'payments', 'event-relay']);
  const dir = mkdtempSync(join(tmpdir(), 'promux-demo-test-'));
  try {
    const file = join(dir, 'svc.yaml');
    writeFileSync(file, 'apiVersion: v1\nkind: Service\nmetadata:\n  name: shop\n');
    assert.throws(() => readPod(file), { message: `${file}: no Pod, and no workload with a pod template, in the file` });
    const cronJob = join(dir, 'cron.yaml');
    writeFileSync(cronJob, 'apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\napiVersion: batch/v1\nkind: CronJob\nmetadata: {name: nightly, namespace: ops}\n'
      + 'spec:\n  schedule: "@daily"\n  jobTemplate:\n    spec:\n      template:\n        metadata: {annotations: {prometheus.io/scrape: "true"}}\n'
      + '        spec: {restartPolicy: Never, containers: [{name: job, image: j}, {name: pusher, image: p}]}\n');
    const fromCronJob = readPod(cronJob);
    assert.deepEqual(fromCronJob.metadata, { annotations: { 'prometheus.io/scrape': 'true' }, name: 'nightly', namespace: 'ops' });
    assert.deepEqual(fromCronJob.spec.containers.map((c) => c.name), ['job', 'pusher']);
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{"kind": "Pod",}');
    assert.throws(() => readPod(broken), { message: `${broken}: document 1 (line 1): not valid JSON: Expected double-quoted property name (line 1, column 16)` });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('admissionReview is a v1 CREATE review of the pod in its namespace', () => {
  const pod = readPod(EXAMPLE);
  const review = admissionReview(pod, 'u-1') as { apiVersion: string; request: Record<string, unknown> };
  assert.equal(review.apiVersion, 'admission.k8s.io/v1');
  assert.equal(review.request.uid, 'u-1');
  assert.equal(review.request.operation, 'CREATE');
  assert.equal(review.request.namespace, 'default');
  assert.deepEqual(review.request.resource, { group: '', version: 'v1', resource: 'pods' });
  assert.equal(review.request.object, pod);
});

test('summarizePatch describes each operation; localSidecarArgs points the targets at the stand-ins', () => {
  const before = { metadata: { annotations: { 'prometheus.io/port': '8080' } }, spec: { containers: [{ name: 'app' }] } };
  const ops: Operation[] = [
    { op: 'add', path: '/spec/containers/1', value: { name: 'promux', image: 'ghcr.io/promux/promux:0.1.0' } },
    { op: 'add', path: '/spec/initContainers', value: [{ name: 'promux' }] },
    { op: 'replace', path: '/metadata/annotations/prometheus.io~1port', value: '13434' },
    { op: 'remove', path: '/metadata/annotations/prometheus.io~1param_format' },
  ];
  assert.deepEqual(summarizePatch(ops, before), [
    'add /spec/containers/1: container promux (ghcr.io/promux/promux:0.1.0)',
    'add /spec/initContainers: containers promux',
    'replace annotation prometheus.io/port: "8080" -> "13434"',
    'remove annotation prometheus.io/param_format',
  ]);

  const args = ['sidecar', '--container_to_port_map', 'app:8080,worker:https:8081/stats', '--export_to', '13434', '--container_label', 'container'];
  assert.deepEqual(localSidecarArgs(args, new Map([['app', 40001], ['worker', 40002]]), 0), [
    'sidecar', '--container_to_port_map', 'app:40001,worker:https:40002/stats', '--export_to', '0', '--container_label', 'container',
    '--listen_address', '127.0.0.1',
  ]);
  assert.throws(() => localSidecarArgs(args, new Map([['app', 40001]]), 0), /no stand-in for container worker/);
});

test('standInExposition: valid text format whose counters move with each scrape', (t) => {
  const first = standInExposition('worker', 1, 1);
  const second = standInExposition('worker', 2, 1);
  assert.notEqual(first, second);
  const promtool = requireTool(t, 'promtool');
  if (promtool === undefined) return;
  for (const exposition of [standInExposition('app', 1, 0), second]) {
    const result: SpawnSyncReturns<string> = spawnSync(promtool, ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
    assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
  }
});
