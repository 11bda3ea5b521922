// `helm test`: the hook objects the chart renders, and the test pod's script run as the pod would run
// it, against a stand-in for the API server (there is none here) that does what the real one does
// with a dry-run Pod create: evaluates the chart's matchConditions (real CEL), sends the
// AdmissionReview to a real promux webhook over HTTPS, applies its patch and relays its warnings.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import jsonPatch, { type Operation } from 'fast-json-patch';
import { parse as parseYaml } from 'yaml';
import { configFrom } from '../../src/config/load.ts';
import { injectPod } from '../../src/inject/index.ts';
import { startWebhook } from '../../src/webhook/server.ts';
import { psaRestrictedProblems } from '../helpers/psa.ts';
import { createReview, memoryLogger, postReview, tempDir, testBundle, writeKeyPair } from '../webhook/helpers.ts';
import { matchConditionsEvaluator, type MatchCondition } from './cel.ts';
import { CHART, kinds, one, render, type K8sObject } from './render.ts';

type Obj = Record<string, unknown>;
const TOKEN = 'helm-test-token';

function hooks(objects: K8sObject[]): K8sObject[] {
  return objects.filter((o) => o.metadata.annotations?.['helm.sh/hook'] === 'test');
}

test('helm test: a temporary opted-in namespace, a pod allowed only to create pods there, restricted, never behind the webhook Service', (t) => {
  const objects = render(t, {}, { namespace: 'metrics', tests: true });
  if (objects === undefined) return;
  const tests = hooks(objects);
  assert.deepEqual(kinds(tests), ['ConfigMap/promux-test', 'Namespace/promux-test', 'Pod/promux-test', 'Role/promux-test', 'RoleBinding/promux-test', 'ServiceAccount/promux-test']);
  const namespace = one(tests, 'Namespace');
  assert.equal(namespace.metadata.labels?.['promux.io/inject'], 'enabled');
  assert.equal(namespace.metadata.annotations?.['helm.sh/hook-weight'], '-10', 'the namespace exists before its Role');
  for (const obj of tests) {
    assert.equal(obj.metadata.annotations?.['helm.sh/hook-delete-policy'], 'before-hook-creation,hook-succeeded', obj.kind);
    assert.equal(obj.metadata.labels?.['app.kubernetes.io/component'], 'test', `${obj.kind}: not selected by the webhook's Service, PDB or NetworkPolicy`);
  }
  const role = one(tests, 'Role');
  assert.equal(role.metadata.namespace, 'promux-test');
  assert.deepEqual(role.rules, [{ apiGroups: [''], resources: ['pods'], verbs: ['create'] }]);
  assert.deepEqual(one(tests, 'RoleBinding').subjects, [{ kind: 'ServiceAccount', name: 'promux-test', namespace: 'metrics' }]);
  const pod = one(tests, 'Pod');
  assert.equal(pod.metadata.namespace, 'metrics');
  const spec = pod.spec as { serviceAccountName: string; containers: { image: string; command: string[] }[] };
  assert.equal(spec.serviceAccountName, 'promux-test');
  assert.deepEqual(psaRestrictedProblems(spec), []);
  assert.equal(spec.containers[0]!.image, 'ghcr.io/promux/promux:0.1.0', 'the chart\'s own image: nothing else to pull');
  assert.deepEqual(spec.containers[0]!.command, ['/nodejs/bin/node', '/etc/promux-test/helm-test.mjs']);
  assert.equal((one(tests, 'ConfigMap').data as Record<string, string>)['helm-test.mjs'], readFileSync(join(CHART, 'files', 'helm-test.mjs'), 'utf8'));

  const custom = hooks(render(t, { webhook: { namespaceLabel: { key: 'team.example.com/metrics', value: 'on' }, objectSelector: { matchLabels: { tier: 'web' } } } }, { tests: true })!);
  assert.equal(one(custom, 'Namespace').metadata.labels?.['team.example.com/metrics'], 'on');
  const env = (one(custom, 'Pod').spec as { containers: { env: { name: string; value: string }[] }[] }).containers[0]!.env;
  assert.equal(env.find((e) => e.name === 'PROMUX_TEST_LABELS')!.value, '{"tier":"web"}');
  assert.deepEqual(hooks(render(t, { tests: { enabled: false } }, { tests: true })!), []);
});

interface StandIn {
  url: string;
  requests: string[];
  problems: string[];
}

/**
 * The API server's handling of `POST .../pods?dryRun=All`, for one namespace: the first
 * `settingUp` requests fail as they do while a new namespace has no default service account yet.
 */
async function dryRunApi(t: TestContext, webhookPort: number, ca: string, conditions: MatchCondition[], settingUp = 0): Promise<StandIn> {
  const sent = matchConditionsEvaluator(conditions);
  const state: StandIn = { url: '', requests: [], problems: [] };
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://stand-in');
    state.requests.push(`${req.method} ${url.pathname}${url.search}`);
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
    };
    const match = /^\/api\/v1\/namespaces\/([a-z0-9-]+)\/pods$/.exec(url.pathname);
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return reply(401, { message: 'Unauthorized' });
    if (req.method !== 'POST' || match === null) return reply(404, { message: `no ${req.method} ${url.pathname}` });
    if (url.searchParams.get('dryRun') !== 'All') state.problems.push('a pod created without dryRun=All');
    if (settingUp-- > 0) {
      return reply(403, { message: `pods "x" is forbidden: error looking up service account ${match[1]}/default: serviceaccount "default" not found` });
    }
    const pod = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Obj;
    const metadata = pod.metadata as Obj;
    Object.assign(metadata, { namespace: match[1], name: `${String(metadata.generateName)}${randomBytes(3).toString('hex')}` });
    delete metadata.generateName;
    if (!sent(pod).sent) return reply(201, pod);
    const { json } = await postReview(webhookPort, ca, createReview(pod, { dryRun: true }));
    const patched = json.response.patch === undefined
      ? pod
      : jsonPatch.applyPatch(pod, JSON.parse(Buffer.from(json.response.patch, 'base64').toString('utf8')) as Operation[], true, false).newDocument;
    const warnings = (json.response.warnings ?? []).map((w) => `299 - ${JSON.stringify(w)}`).join(', ');
    reply(201, patched, warnings === '' ? {} : { warning: warnings });
  };
  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

/** Runs the rendered test pod's script with the rendered pod's environment, against `api`. */
function runTestPod(t: TestContext, tests: K8sObject[], api: string, timeoutSeconds = 20): Promise<{ code: number | null; output: string }> {
  const dir = tempDir(t);
  const script = join(dir, 'helm-test.mjs');
  writeFileSync(script, (one(tests, 'ConfigMap').data as Record<string, string>)['helm-test.mjs']!);
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
  const env = Object.fromEntries((one(tests, 'Pod').spec as { containers: { env: { name: string; value: string }[] }[] }).containers[0]!.env.map((e) => [e.name, e.value]));
  delete env.NODE_EXTRA_CA_CERTS; // the stand-in speaks plain HTTP
  const child = spawn(process.execPath, [script], {
    env: { ...env, PROMUX_TEST_API_URL: api, PROMUX_TEST_TOKEN_FILE: join(dir, 'token'), PROMUX_TEST_TIMEOUT_SECONDS: String(timeoutSeconds) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, output })));
}

async function installed(t: TestContext, values: object): Promise<{ tests: K8sObject[]; webhookPort: number; ca: string; conditions: MatchCondition[] } | undefined> {
  const objects = render(t, values, { tests: true });
  if (objects === undefined) return undefined;
  const config = configFrom(parseYaml((one(objects, 'ConfigMap', 'promux').data as Record<string, string>)['config.yaml']!), 'chart ConfigMap');
  const bundle = testBundle();
  const running = await startWebhook(
    { port: 0, listenAddress: '127.0.0.1', logLevel: 'info', tls: { mode: 'files', ...writeKeyPair(tempDir(t), bundle.serving) } },
    { config, inject: injectPod, log: memoryLogger().log },
  );
  t.after(() => running.close(1000));
  const conditions = (one(objects, 'MutatingWebhookConfiguration').webhooks as { matchConditions?: MatchCondition[] }[])[0]!.matchConditions ?? [];
  return { tests: hooks(objects), webhookPort: running.port, ca: bundle.ca.cert, conditions };
}

test('stand-in API: helm test passes when the webhook injects the dry-run pod (after waiting for a new namespace\'s service account)', async (t) => {
  const setup = await installed(t, {});
  if (setup === undefined) return;
  const api = await dryRunApi(t, setup.webhookPort, setup.ca, setup.conditions, 2);
  const { code, output } = await runTestPod(t, setup.tests, api.url);
  assert.equal(code, 0, output);
  assert.match(output, /^OK: the webhook injected promux \(port 13434, targets app:9100,worker:9101\)\.$/m);
  assert.deepEqual(api.problems, []);
  assert.equal(api.requests.length, 3);
  assert.match(api.requests[0]!, /^POST \/api\/v1\/namespaces\/promux-test\/pods\?dryRun=All/);
});

test('stand-in API: helm test fails, saying what to check, when the pod comes back without the sidecar', async (t) => {
  // minContainers 3: the matchConditions keep the two-container test pod away from the webhook.
  const setup = await installed(t, { minContainers: 3 });
  if (setup === undefined) return;
  const api = await dryRunApi(t, setup.webhookPort, setup.ca, setup.conditions);
  const { code, output } = await runTestPod(t, setup.tests, api.url);
  assert.equal(code, 1, output);
  assert.match(output, /^FAIL: the pod came back without the promux sidecar: the webhook did not inject it\./m);
  assert.match(output, /caBundle/);
  // Without matchConditions the webhook sees the pod, skips it and says why: the script prints it.
  const unfiltered = await installed(t, { minContainers: 3, webhook: { matchConditions: false } });
  const api2 = await dryRunApi(t, unfiltered!.webhookPort, unfiltered!.ca, unfiltered!.conditions);
  const second = await runTestPod(t, unfiltered!.tests, api2.url);
  assert.equal(second.code, 1, second.output);
  assert.doesNotMatch(second.output, /warning from the API server/, 'a quiet skip (too few containers) gives no warning');
});

test('stand-in API: helm test fails with the API server\'s answer when it may not create the pod, or cannot reach it', async (t) => {
  const setup = await installed(t, {});
  if (setup === undefined) return;
  const server = createServer((_req, res) => {
    res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({
      message: 'pods is forbidden: User "system:serviceaccount:promux:promux-test" cannot create resource "pods" in the namespace "promux-test"',
    }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const forbidden = await runTestPod(t, setup.tests, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  assert.equal(forbidden.code, 1);
  assert.match(forbidden.output, /^FAIL: creating a dry-run pod in namespace promux-test: HTTP 403: pods is forbidden: User/m);

  const unreachable = await runTestPod(t, setup.tests, 'http://127.0.0.1:9', 1);
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.output, /^FAIL: cannot reach the API server at http:\/\/127\.0\.0\.1:9: /m);
});
