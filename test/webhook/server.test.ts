// The webhook over real HTTPS, with node:https trusting the test CA as the API server trusts caBundle.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { defaultConfig } from '../../src/config/defaults.ts';
import { injectPod } from '../../src/inject/index.ts';
import { startWebhook } from '../../src/webhook/server.ts';
import type { RunningWebhook } from '../../src/webhook/server.ts';
import type { Injector } from '../../src/webhook/review.ts';
import { kubectlPatchLocal, schemaProblems } from '../helpers/k8s.ts';
import { requireTool } from '../helpers/tools.ts';
import {
  SERVER_NAME, createReview, decodePatch, fixturePods, httpsRequest, memoryLogger, postReview, tempDir, testBundle,
  writeKeyPair,
} from './helpers.ts';

const bundle = testBundle();
const CA = bundle.ca.cert;

async function webhook(t: TestContext, inject: Injector = injectPod): Promise<RunningWebhook & { lines: Record<string, unknown>[] }> {
  const files = writeKeyPair(tempDir(t), bundle.serving);
  const { log, lines } = memoryLogger();
  const running = await startWebhook(
    { port: 0, listenAddress: '127.0.0.1', logLevel: 'debug', tls: { mode: 'files', ...files } },
    { config: { ...defaultConfig(), kubernetesVersion: '1.30' }, inject, log },
  );
  t.after(() => running.close(1000));
  return Object.assign(running, { lines });
}

type Obj = Record<string, unknown>;
/** Every container's name, init containers included (a Job pod's sidecar is a native one), sorted. */
const containerNames = (pod: Obj): string[] => ['containers', 'initContainers']
  .flatMap((field) => ((pod.spec as Obj)[field] as Obj[] | undefined) ?? []).map((c) => String(c.name)).sort();

test('fixture pods: reviews answered over HTTPS, patches applied by kubectl, results schema-valid', async (t) => {
  const server = await webhook(t);
  const pods = fixturePods('shop');
  assert.ok(pods.length >= 5);
  for (const { source, pod } of pods) {
    const review = createReview(pod);
    const uid = (review.request as Obj).uid;
    const { answer, json } = await postReview(server.port, CA, review);
    assert.equal(answer.status, 200, source);
    assert.match(String(answer.headers['content-type']), /^application\/json/);
    assert.equal(json.apiVersion, 'admission.k8s.io/v1');
    assert.equal(json.kind, 'AdmissionReview');
    assert.equal(json.response.uid, uid);
    assert.equal(json.response.allowed, true);
    assert.equal(json.response.patchType, 'JSONPatch', `${source} is injected`);
    const patched = kubectlPatchLocal(t, pod, decodePatch(json));
    if (patched === undefined) return;
    assert.deepEqual(schemaProblems(patched), [], source);
    assert.deepEqual(containerNames(patched as Obj), [...containerNames(pod), 'promux'].sort(), source);
    assert.match(json.response.auditAnnotations?.injected ?? '', /^[a-z0-9-]+:\d+/, source);

    const line = server.lines.find((l) => l.uid === uid);
    const metadata = pod.metadata as Obj;
    assert.deepEqual(
      { ns: line?.namespace, pod: line?.pod, op: line?.operation, decision: line?.decision, msg: line?.msg },
      { ns: 'shop', pod: metadata.name ?? metadata.generateName, op: 'CREATE', decision: 'injected', msg: 'review' },
    );
    assert.equal(typeof line?.durationMs, 'number');
    assert.equal(typeof line?.reason, 'string');
  }
});

test('a pod the engine skips is allowed without a patch; a skip the user should know about is a warning', async (t) => {
  const server = await webhook(t);
  const { pod } = fixturePods('shop')[0]!;
  const quiet = structuredClone(pod);
  ((quiet.metadata as Obj).annotations as Obj)['promux.io/inject'] = 'false';
  const { json: skipped } = await postReview(server.port, CA, createReview(quiet));
  assert.deepEqual(Object.keys(skipped.response).sort(), ['allowed', 'uid']);

  const hostNetwork = structuredClone(pod);
  (hostNetwork.spec as Obj).hostNetwork = true;
  const { json: warned } = await postReview(server.port, CA, createReview(hostNetwork));
  assert.equal(warned.response.allowed, true);
  assert.equal(warned.response.patch, undefined);
  assert.equal(warned.response.warnings?.length, 1);
  assert.match(warned.response.warnings![0]!, /^promux: sidecar not injected: .*host ?network/i);
  assert.ok(warned.response.warnings![0]!.length <= 200);

  const skips = await httpsRequest(server.port, CA, { path: '/metrics' });
  assert.match(skips.body, /^promux_webhook_skips_total\{reason="opted-out"\} 1$/m);
  assert.match(skips.body, /^promux_webhook_skips_total\{reason="host-network"\} 1$/m);
});

test('a dry-run review gets the same answer', async (t) => {
  const server = await webhook(t);
  const { pod } = fixturePods('shop')[0]!;
  const { json: real } = await postReview(server.port, CA, createReview(pod));
  const { json: dry } = await postReview(server.port, CA, createReview(pod, { dryRun: true }));
  assert.equal(dry.response.patch, real.response.patch);
  assert.ok(server.lines.some((l) => l.dryRun === true && l.decision === 'injected'));
});

test('an engine that throws: the pod is allowed without a patch, and the error is logged and counted', async (t) => {
  const server = await webhook(t, () => {
    throw new TypeError('engine bug');
  });
  const { pod } = fixturePods('shop')[0]!;
  const review = createReview(pod);
  const { answer, json } = await postReview(server.port, CA, review);
  assert.equal(answer.status, 200);
  assert.deepEqual(json.response, { uid: (review.request as Obj).uid, allowed: true });
  const line = server.lines.find((l) => l.uid === json.response.uid);
  assert.equal(line?.level, 50);
  assert.match(String(line?.error), /engine bug/);
  const metrics = await httpsRequest(server.port, CA, { path: '/metrics' });
  assert.match(metrics.body, /^promux_webhook_reviews_total\{result="error"\} 1$/m);
});

test('/healthz, /readyz and /metrics; the metrics pass promtool', async (t) => {
  const server = await webhook(t);
  assert.equal((await httpsRequest(server.port, CA, { path: '/healthz' })).status, 200);
  assert.equal((await httpsRequest(server.port, CA, { path: '/readyz' })).status, 200);
  for (const { pod } of fixturePods('shop').slice(0, 2)) await postReview(server.port, CA, createReview(pod));
  const metrics = await httpsRequest(server.port, CA, { path: '/metrics' });
  assert.equal(metrics.status, 200);
  assert.match(metrics.body, /^promux_webhook_reviews_total\{result="injected"\} 2$/m);
  assert.match(metrics.body, /^promux_webhook_reviews_total\{result="rejected"\} 0$/m);
  assert.match(metrics.body, /^promux_webhook_injections_total 2$/m);
  assert.match(metrics.body, /^promux_webhook_review_duration_seconds_count 2$/m);
  assert.match(metrics.body, /^promux_webhook_process_resident_memory_bytes \d+/m);
  const expiry = Number(/^promux_webhook_tls_certificate_expiry_timestamp_seconds (\d+)/m.exec(metrics.body)?.[1]);
  assert.equal(expiry, Math.floor(new Date(new X509Certificate(bundle.serving.cert).validTo).getTime() / 1000));
  const names = [...metrics.body.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!);
  assert.deepEqual(names.filter((n) => !n.startsWith('promux_webhook_')), []);

  const promtool = requireTool(t, 'promtool');
  if (promtool === undefined) return;
  const check = spawnSync(promtool, ['check', 'metrics'], { input: metrics.body, encoding: 'utf8' });
  // prom-client's default gauges nodejs_active_{handles,requests,resources}_total break a naming lint
  // rule; the exposition parses, and promux's own metrics must be lint-clean.
  const findings = `${check.stdout}${check.stderr}`.split('\n').filter((l) => l.trim() !== '');
  const upstream = /^promux_webhook_nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/;
  assert.deepEqual(findings.filter((l) => !upstream.test(l)), []);
});

test('TLS 1.1 is refused; TLS 1.2 and 1.3 are served', async (t) => {
  const server = await webhook(t);
  const handshake = (version: 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3'): Promise<string> => new Promise((resolve) => {
    const socket = connect({
      host: '127.0.0.1', port: server.port, servername: SERVER_NAME, ca: CA, minVersion: version, maxVersion: version,
    }, () => {
      resolve(socket.getProtocol() ?? '');
      socket.end();
    });
    socket.on('error', (err) => resolve(`error: ${err.message}`));
  });
  assert.match(await handshake('TLSv1.1'), /^error/);
  assert.equal(await handshake('TLSv1.2'), 'TLSv1.2');
  assert.equal(await handshake('TLSv1.3'), 'TLSv1.3');
});

test('close() lets an in-flight review finish, then refuses new connections', async (t) => {
  const server = await webhook(t);
  const { pod } = fixturePods('shop')[0]!;
  const body = JSON.stringify(createReview(pod));
  const { request } = await import('node:https');
  let closing: Promise<void> | undefined;
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port: server.port, servername: SERVER_NAME, ca: CA, method: 'POST', path: '/mutate',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, agent: false,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    // Half the body, then shutdown begins, then the rest: the review is in flight during close().
    req.write(body.slice(0, 100));
    req.on('socket', (socket) => socket.once('secureConnect', () => {
      closing = server.close(5000);
      setImmediate(() => req.end(body.slice(100)));
    }));
  });
  await closing;
  assert.equal(answer.status, 200);
  assert.equal(JSON.parse(answer.body).response.allowed, true);
  await assert.rejects(httpsRequest(server.port, CA, { path: '/healthz' }), /ECONNREFUSED/);
});
