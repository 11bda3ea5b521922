import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { defaultConfig } from '../../src/config/defaults.ts';
import { injectPod } from '../../src/inject/index.ts';
import { startWebhook } from '../../src/webhook/server.ts';
import { dnsNamesOf, generateBundle, generateServing, serviceDnsNames } from '../../src/webhook/tls/certs.ts';
import { kubeApi } from '../../src/webhook/tls/kube.ts';
import { SelfManagedTls, bundleToSecretData, caBundlePatch } from '../../src/webhook/tls/self-managed.ts';
import { NAMESPACE, SERVICE, httpsRequest, memoryLogger, waitFor } from './helpers.ts';
import { KubeStandIn } from './stand-in.ts';

const SECRET = 'promux-webhook-tls';
const MWC = 'promux-webhook';
const DAY = 86_400_000;
const SECRET_PATH = `/api/v1/namespaces/${NAMESPACE}/secrets`;
const MWC_PATH = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${MWC}`;

async function standIn(t: TestContext, webhooks = ['pods.promux.io', 'pods-again.promux.io']): Promise<KubeStandIn> {
  const api = await new KubeStandIn().start();
  t.after(() => api.close());
  api.addWebhookConfiguration(MWC, webhooks);
  return api;
}

function replica(api: KubeStandIn, now: () => Date = () => new Date()): SelfManagedTls {
  return new SelfManagedTls({
    kube: kubeApi(api.kubeConfig()),
    namespace: NAMESPACE,
    secretName: SECRET,
    webhookConfigName: MWC,
    serviceName: SERVICE,
    log: memoryLogger().log,
    now,
  });
}

/** "VERB path status" of each request the stand-in saw since `from`. */
function calls(api: KubeStandIn, from = 0): string[] {
  return api.requests.slice(from).map((r) => `${r.method} ${r.path} ${r.status}`);
}

test('stand-in API: the first replica creates the Secret and patches caBundle into every webhook', async (t) => {
  const api = await standIn(t);
  const serving = await replica(api).reconcile();

  assert.deepEqual(api.problems, []);
  assert.deepEqual(calls(api), [
    `GET ${MWC_PATH} 200`,
    `GET ${SECRET_PATH}/${SECRET} 404`,
    `POST ${SECRET_PATH} 201`,
    `PATCH ${MWC_PATH} 200`,
  ]);
  // Owned by the webhook configuration: deleting it (helm uninstall) deletes the Secret.
  const owners = (api.secrets.get(`${NAMESPACE}/${SECRET}`)!.metadata as { ownerReferences: unknown }).ownerReferences;
  const uid = (api.webhookConfigurations.get(MWC)!.metadata as { uid: string }).uid;
  assert.deepEqual(owners, [{ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', name: MWC, uid }]);
  const stored = api.secretData(NAMESPACE, SECRET)!;
  assert.deepEqual(Object.keys(stored).sort(), ['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
  assert.equal(serving.cert, stored['tls.crt']);
  assert.equal(serving.key, stored['tls.key']);
  assert.deepEqual(api.caBundles(MWC), [stored['ca.crt'], stored['ca.crt']]);

  const ca = new X509Certificate(stored['ca.crt']!);
  const cert = new X509Certificate(serving.cert);
  assert.ok(ca.ca && !cert.ca);
  assert.ok(cert.verify(ca.publicKey));
  assert.deepEqual(dnsNamesOf(cert), serviceDnsNames(SERVICE, NAMESPACE));
  const now = Date.now();
  assert.ok(new Date(cert.validFrom).getTime() <= now && new Date(cert.validTo).getTime() > now + 360 * DAY);
});

test('stand-in API: a second replica reuses the Secret and leaves an up-to-date caBundle alone', async (t) => {
  const api = await standIn(t);
  const first = await replica(api).reconcile();
  const seen = api.requests.length;
  const second = await replica(api).reconcile();

  assert.deepEqual(second, first);
  assert.deepEqual(calls(api, seen), [`GET ${MWC_PATH} 200`, `GET ${SECRET_PATH}/${SECRET} 200`]);
  assert.deepEqual(api.problems, []);
});

test('stand-in API: a replica losing the create race reads and serves the winner\'s Secret', async (t) => {
  const api = await standIn(t);
  const winner = generateBundle(serviceDnsNames(SERVICE, NAMESPACE), new Date());
  api.beforeCreate = (namespace, name) => api.putSecret(namespace, name, bundleToSecretData(winner), MWC);

  const serving = await replica(api).reconcile();

  assert.deepEqual(serving, winner.serving);
  assert.deepEqual(calls(api), [
    `GET ${MWC_PATH} 200`,
    `GET ${SECRET_PATH}/${SECRET} 404`,
    `POST ${SECRET_PATH} 409`,
    `GET ${SECRET_PATH}/${SECRET} 200`,
    `PATCH ${MWC_PATH} 200`,
  ]);
  assert.deepEqual(api.caBundles(MWC), [winner.ca.cert, winner.ca.cert]);
  assert.deepEqual(api.problems, []);
});

test('stand-in API: two replicas starting together end up serving one certificate', async (t) => {
  const api = await standIn(t);
  const [a, b] = await Promise.all([replica(api).reconcile(), replica(api).reconcile()]);
  assert.equal(a.cert, b.cert);
  assert.equal(api.requests.filter((r) => r.method === 'POST' && r.status === 201).length, 1);
  assert.equal(api.secretData(NAMESPACE, SECRET)!['tls.crt'], a.cert);
  assert.deepEqual(api.problems, []);
});

test('stand-in API: near expiry the serving certificate is renewed from the same CA and written back with resourceVersion', async (t) => {
  const api = await standIn(t);
  const start = new Date();
  const first = await replica(api, () => start).reconcile();
  const before = structuredClone(api.secrets.get(`${NAMESPACE}/${SECRET}`)!) as { metadata: { resourceVersion: string } };
  const seen = api.requests.length;

  const later = new Date(start.getTime() + 340 * DAY);
  const renewed = await replica(api, () => later).reconcile();

  assert.notEqual(renewed.cert, first.cert);
  assert.deepEqual(calls(api, seen), [
    `GET ${MWC_PATH} 200`,
    `GET ${SECRET_PATH}/${SECRET} 200`,
    `PUT ${SECRET_PATH}/${SECRET} 200`,
  ], 'the CA did not change, so caBundle is not patched again');
  const put = api.requests[seen + 2]!.body as { metadata: { resourceVersion: string } };
  assert.equal(put.metadata.resourceVersion, before.metadata.resourceVersion);
  const stored = api.secretData(NAMESPACE, SECRET)!;
  assert.equal(stored['tls.crt'], renewed.cert);
  const cert = new X509Certificate(renewed.cert);
  assert.ok(cert.verify(new X509Certificate(stored['ca.crt']!).publicKey));
  assert.ok(new Date(cert.validFrom).getTime() <= later.getTime());
  assert.ok(new Date(cert.validTo).getTime() > later.getTime() + 360 * DAY);
  assert.deepEqual(api.problems, []);
});

test('stand-in API: a renewal that loses to another replica\'s (409 on resourceVersion) adopts theirs', async (t) => {
  const api = await standIn(t);
  const start = new Date();
  await replica(api, () => start).reconcile();
  const later = new Date(start.getTime() + 340 * DAY);
  const stored = api.secretData(NAMESPACE, SECRET)!;
  // Another replica renewed from the same CA between our read and our write.
  const renewedByThem = generateServing({ cert: stored['ca.crt']!, key: stored['ca.key']! }, serviceDnsNames(SERVICE, NAMESPACE), later);
  const theirData = { ...stored, 'tls.crt': renewedByThem.cert, 'tls.key': renewedByThem.key };
  api.beforeReplace = (namespace, name) => {
    api.beforeReplace = undefined;
    api.putSecret(namespace, name, theirData, MWC);
  };
  const seen = api.requests.length;

  const serving = await replica(api, () => later).reconcile();

  assert.equal(serving.cert, renewedByThem.cert);
  assert.deepEqual(calls(api, seen), [
    `GET ${MWC_PATH} 200`,
    `GET ${SECRET_PATH}/${SECRET} 200`,
    `PUT ${SECRET_PATH}/${SECRET} 409`,
    `GET ${SECRET_PATH}/${SECRET} 200`,
  ]);
  assert.deepEqual(api.problems, []);
});

test('stand-in API: a Secret without the CA key is replaced, and caBundle follows the new CA', async (t) => {
  const api = await standIn(t, ['pods.promux.io']);
  const old = generateBundle(serviceDnsNames(SERVICE, NAMESPACE), new Date());
  const { 'ca.key': _dropped, ...partial } = bundleToSecretData(old);
  api.putSecret(NAMESPACE, SECRET, partial);

  const serving = await replica(api).reconcile();

  const stored = api.secretData(NAMESPACE, SECRET)!;
  assert.ok(stored['ca.key']);
  assert.notEqual(stored['ca.crt'], old.ca.cert);
  assert.equal(serving.cert, stored['tls.crt']);
  assert.deepEqual(api.caBundles(MWC), [stored['ca.crt']]);
  assert.deepEqual(api.problems, []);
});

test('stand-in API: a Secret without the owner reference (from an older promux) is adopted, its certificates unchanged', async (t) => {
  const api = await standIn(t);
  const old = generateBundle(serviceDnsNames(SERVICE, NAMESPACE), new Date());
  api.putSecret(NAMESPACE, SECRET, bundleToSecretData(old));

  const serving = await replica(api).reconcile();

  assert.deepEqual(serving, old.serving);
  assert.deepEqual(api.secretData(NAMESPACE, SECRET), bundleToSecretData(old));
  const owners = (api.secrets.get(`${NAMESPACE}/${SECRET}`)!.metadata as { ownerReferences: { name: string }[] }).ownerReferences;
  assert.deepEqual(owners.map((o) => o.name), [MWC]);
  const seen = api.requests.length;
  await replica(api).reconcile();
  assert.deepEqual(calls(api, seen), [`GET ${MWC_PATH} 200`, `GET ${SECRET_PATH}/${SECRET} 200`], 'adopted once');
  assert.deepEqual(api.problems, []);
});

test('stand-in API: no Secret is created while the webhook configuration does not exist', async (t) => {
  const api = await new KubeStandIn().start();
  t.after(() => api.close());
  await assert.rejects(replica(api).reconcile(), /HTTP 404|not found/);
  assert.deepEqual(calls(api), [`GET ${MWC_PATH} 404`]);
  assert.equal(api.secrets.size, 0);
});

test('caBundlePatch guards each webhook by name and skips those already set', () => {
  const patch = caBundlePatch([{ name: 'a', caBundle: 'Q0E=' }, { name: 'b', caBundle: '' }], 'Q0E=');
  assert.deepEqual(patch, [
    { op: 'test', path: '/webhooks/1/name', value: 'b' },
    { op: 'add', path: '/webhooks/1/clientConfig/caBundle', value: 'Q0E=' },
  ]);
  assert.deepEqual(caBundlePatch([{ name: 'a', caBundle: 'Q0E=' }], 'Q0E='), []);
});

test('stand-in API: the webhook in self-managed mode is ready once it serves the Secret\'s certificate, and renews it near expiry', async (t) => {
  const api = await new KubeStandIn().start();
  t.after(() => api.close());
  const { log, lines } = memoryLogger();
  // The webhook's clock starts 340 days back, so its first certificate is 25 days from expiry once
  // the clock moves to the present (where the test's TLS client checks validity).
  let now = new Date(Date.now() - 340 * DAY);
  const server = await startWebhook(
    {
      port: 0, listenAddress: '127.0.0.1', logLevel: 'debug',
      tls: { mode: 'self-managed', secretName: SECRET, webhookConfigName: MWC, serviceName: SERVICE, namespace: NAMESPACE },
    },
    { config: defaultConfig(), inject: injectPod, log, kube: kubeApi(api.kubeConfig()), now: () => now, selfManagedCheckMs: 200 },
  );
  t.after(() => server.close(1000));

  // The MutatingWebhookConfiguration does not exist yet: the pass fails, /healthz answers, /readyz does not.
  await waitFor('a failed pass', () => lines.find((l) => /mutatingwebhookconfigurations .* not found/.test(String(l.msg))));
  assert.equal((await httpsRequest(server.port, '', { path: '/healthz', insecure: true })).status, 200);
  assert.equal((await httpsRequest(server.port, '', { path: '/readyz', insecure: true })).status, 503);

  api.addWebhookConfiguration(MWC, ['pods.promux.io']);
  await waitFor('readiness', () => (server.isReady() ? true : undefined));
  const stored = api.secretData(NAMESPACE, SECRET)!;
  const ca = stored['ca.crt']!;
  const ready = await httpsRequest(server.port, ca, { path: '/readyz' });
  assert.equal(ready.status, 200);
  assert.equal(ready.fingerprint256, new X509Certificate(stored['tls.crt']!).fingerprint256);
  assert.deepEqual(api.caBundles(MWC), [ca]);

  now = new Date();
  const renewed = await waitFor('the renewed certificate', async () => {
    const answer = await httpsRequest(server.port, ca, { path: '/healthz' });
    return answer.fingerprint256 === ready.fingerprint256 ? undefined : answer.fingerprint256;
  });
  assert.equal(renewed, new X509Certificate(api.secretData(NAMESPACE, SECRET)!['tls.crt']!).fingerprint256);
  assert.ok(api.requests.some((r) => r.method === 'PUT' && r.status === 200));
  const notFound = `GET ${MWC_PATH}: mutatingwebhookconfigurations "${MWC}" not found`;
  assert.deepEqual(api.problems.filter((p) => p !== notFound), [], 'only the 404s this test arranged');
});
