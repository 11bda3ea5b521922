import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { defaultConfig } from '../../src/config/defaults.ts';
import { injectPod } from '../../src/inject/index.ts';
import { startWebhook } from '../../src/webhook/server.ts';
import { dnsNamesOf, generateBundle, generateCa, generateServing, serviceDnsNames } from '../../src/webhook/tls/certs.ts';
import { kubeApi } from '../../src/webhook/tls/kube.ts';
import { SelfManagedTls, bundleToSecretData, caBundlePatch, certificatesIn } from '../../src/webhook/tls/self-managed.ts';
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

/** The CA certificates in a PEM bundle (normalized). */
const cas = (pem: string): string[] => certificatesIn(pem);
/** The CAs each webhook's caBundle trusts. */
const trusted = (api: KubeStandIn): string[][] => api.caBundles(MWC).map(cas);

/** "VERB path status" of each request the stand-in saw since `from`. */
function calls(api: KubeStandIn, from = 0): string[] {
  return api.requests.slice(from).map((r) => `${r.method} ${r.path} ${r.status}`);
}

test('stand-in API: the first replica creates the Secret and patches caBundle into every webhook', async (t) => {
  const api = await standIn(t);
  const { serving } = await replica(api).reconcile();

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
  assert.deepEqual(trusted(api), [cas(stored['ca.crt']!), cas(stored['ca.crt']!)]);

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
  const first = (await replica(api).reconcile()).serving;
  const seen = api.requests.length;
  const second = (await replica(api).reconcile()).serving;

  assert.deepEqual(second, first);
  assert.deepEqual(calls(api, seen), [`GET ${MWC_PATH} 200`, `GET ${SECRET_PATH}/${SECRET} 200`]);
  assert.deepEqual(api.problems, []);
});

test('stand-in API: a replica losing the create race reads and serves the winner\'s Secret', async (t) => {
  const api = await standIn(t);
  const winner = generateBundle(serviceDnsNames(SERVICE, NAMESPACE), new Date());
  api.beforeCreate = (namespace, name) => api.putSecret(namespace, name, bundleToSecretData(winner), MWC);

  const { serving } = await replica(api).reconcile();

  assert.deepEqual(serving, winner.serving);
  assert.deepEqual(calls(api), [
    `GET ${MWC_PATH} 200`,
    `GET ${SECRET_PATH}/${SECRET} 404`,
    `POST ${SECRET_PATH} 409`,
    `GET ${SECRET_PATH}/${SECRET} 200`,
    `PATCH ${MWC_PATH} 200`,
  ]);
  assert.deepEqual(trusted(api), [cas(winner.ca.cert), cas(winner.ca.cert)]);
  assert.deepEqual(api.problems, []);
});

test('stand-in API: two replicas starting together end up serving one certificate', async (t) => {
  const api = await standIn(t);
  const [{ serving: a }, { serving: b }] = await Promise.all([replica(api).reconcile(), replica(api).reconcile()]);
  assert.equal(a.cert, b.cert);
  assert.equal(api.requests.filter((r) => r.method === 'POST' && r.status === 201).length, 1);
  assert.equal(api.secretData(NAMESPACE, SECRET)!['tls.crt'], a.cert);
  assert.deepEqual(api.problems, []);
});

test('stand-in API: near expiry the serving certificate is renewed from the same CA and written back with resourceVersion', async (t) => {
  const api = await standIn(t);
  const start = new Date();
  const first = (await replica(api, () => start).reconcile()).serving;
  const before = structuredClone(api.secrets.get(`${NAMESPACE}/${SECRET}`)!) as { metadata: { resourceVersion: string } };
  const seen = api.requests.length;

  const later = new Date(start.getTime() + 340 * DAY);
  const renewed = (await replica(api, () => later).reconcile()).serving;

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

  const { serving } = await replica(api, () => later).reconcile();

  assert.equal(serving.cert, renewedByThem.cert);
  assert.deepEqual(calls(api, seen), [
    `GET ${MWC_PATH} 200`,
    `GET ${SECRET_PATH}/${SECRET} 200`,
    `PUT ${SECRET_PATH}/${SECRET} 409`,
    `GET ${SECRET_PATH}/${SECRET} 200`,
  ]);
  assert.deepEqual(api.problems, []);
});

test('stand-in API: a Secret without the CA key gets a new CA; caBundle trusts it, and the old CA for the overlap', async (t) => {
  const api = await standIn(t, ['pods.promux.io']);
  const old = generateBundle(serviceDnsNames(SERVICE, NAMESPACE), new Date());
  const { 'ca.key': _dropped, ...partial } = bundleToSecretData(old);
  api.putSecret(NAMESPACE, SECRET, partial);

  const { serving } = await replica(api).reconcile();

  const stored = api.secretData(NAMESPACE, SECRET)!;
  assert.ok(stored['ca.key']);
  assert.notEqual(stored['ca.crt'], old.ca.cert);
  assert.equal(serving.cert, stored['tls.crt']);
  // The old CA signed what other replicas may still serve: it stays trusted until ca-previous-until.
  assert.deepEqual(trusted(api), [[...cas(stored['ca.crt']!), ...cas(old.ca.cert)].sort()]);
  assert.equal(stored['ca-previous.crt'], old.ca.cert);
  assert.ok(Date.parse(stored['ca-previous-until']!) > Date.now() + 19 * 60_000, 'twice the 10-minute pass');
  assert.equal(stored['ca-next.crt'], undefined);
  assert.deepEqual(api.problems, []);
});

test('stand-in API: a Secret without the owner reference (from an older promux) is adopted, its certificates unchanged', async (t) => {
  const api = await standIn(t);
  const old = generateBundle(serviceDnsNames(SERVICE, NAMESPACE), new Date());
  api.putSecret(NAMESPACE, SECRET, bundleToSecretData(old));

  const { serving } = await replica(api).reconcile();

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
  assert.deepEqual(trusted(api), [cas(ca)]);

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

test('stand-in API: ready only while caBundle holds the CA of the certificate served (a refused caBundle patch keeps it unready)', async (t) => {
  const api = await standIn(t, ['pods.promux.io']);
  api.forbidPatches = true;
  const { log, lines } = memoryLogger();
  const server = await startWebhook(
    { port: 0, listenAddress: '127.0.0.1', logLevel: 'debug',
      tls: { mode: 'self-managed', secretName: SECRET, webhookConfigName: MWC, serviceName: SERVICE, namespace: NAMESPACE } },
    { config: defaultConfig(), inject: injectPod, log, kube: kubeApi(api.kubeConfig()), selfManagedCheckMs: 200 },
  );
  t.after(() => server.close(500));
  await waitFor('the Secret', () => api.secretData(NAMESPACE, SECRET));
  const ca = api.secretData(NAMESPACE, SECRET)!['ca.crt']!;
  // The certificate is loaded, but the API server would not trust it: not ready.
  await waitFor('the Secret\'s certificate served', async () => {
    const answer = await httpsRequest(server.port, '', { path: '/healthz', insecure: true });
    return answer.fingerprint256 === new X509Certificate(api.secretData(NAMESPACE, SECRET)!['tls.crt']!).fingerprint256 ? true : undefined;
  });
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal((await httpsRequest(server.port, ca, { path: '/readyz' })).status, 503);
  assert.equal(server.isReady(), false);

  api.forbidPatches = false;
  await waitFor('readiness', () => (server.isReady() ? true : undefined));
  assert.equal((await httpsRequest(server.port, ca, { path: '/readyz' })).status, 200);
  assert.deepEqual(trusted(api), [cas(ca)]);
  assert.ok(lines.some((l) => /caBundle holds the CA of the certificate served: ready/.test(String(l.msg))));

  // Someone resets caBundle (a re-applied manifest): unready until the next pass restores it.
  const config = api.webhookConfigurations.get(MWC) as { webhooks: { clientConfig: { caBundle?: string } }[] };
  api.forbidPatches = true;
  delete config.webhooks[0]!.clientConfig.caBundle;
  await waitFor('unreadiness', () => (server.isReady() ? undefined : true));
  api.forbidPatches = false;
  await waitFor('readiness again', () => (server.isReady() ? true : undefined));
});

test('stand-in API: CA rollover with two replicas: both CAs trusted until both serve the new certificate, never a call the API server would refuse', async (t) => {
  const api = await standIn(t, ['pods.promux.io']);
  // A CA with half a year left, and a serving certificate from it, as a year-old install has.
  const real = Date.now();
  const oldCa = generateCa(new Date(real - 9.5 * 365 * DAY));
  const oldServing = generateServing(oldCa, serviceDnsNames(SERVICE, NAMESPACE), new Date(real));
  api.putSecret(NAMESPACE, SECRET, bundleToSecretData({ ca: oldCa, serving: oldServing }));
  // The replicas' clock runs a year behind (the CA is fine), then jumps to now (it must be replaced).
  let behind = 365 * DAY;
  const replicas = await Promise.all([0, 1].map(async () => {
    const server = await startWebhook(
      { port: 0, listenAddress: '127.0.0.1', logLevel: 'debug',
        tls: { mode: 'self-managed', secretName: SECRET, webhookConfigName: MWC, serviceName: SERVICE, namespace: NAMESPACE } },
      { config: defaultConfig(), inject: injectPod, log: memoryLogger().log, kube: kubeApi(api.kubeConfig()), now: () => new Date(Date.now() - behind),
        selfManagedCheckMs: 1500, selfManagedRollover: { rolloverPollMs: 100 } },
    );
    t.after(() => server.close(500));
    return server;
  }));
  await waitFor('both replicas ready', () => (replicas.every((r) => r.isReady()) ? true : undefined));
  const fingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256;
  const served = async (port: number): Promise<string> => (await httpsRequest(port, '', { path: '/healthz', insecure: true })).fingerprint256;
  for (const r of replicas) assert.equal(await served(r.port), fingerprint(oldServing.cert));

  // As the API server calls: trusting exactly the caBundle of the moment, every replica, every 20 ms.
  const refused: string[] = [];
  let calls = 0;
  let probing = true;
  const probe = (async () => {
    while (probing) {
      const bundle = api.caBundles(MWC)[0]!;
      for (const [i, r] of replicas.entries()) {
        try {
          await httpsRequest(r.port, bundle, { path: '/healthz' });
          calls += 1;
        } catch (err) {
          refused.push(`replica ${i}: ${(err as Error).message}`);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();

  behind = 0;
  let done: Record<string, string>;
  try {
    done = await waitFor('the rollover to finish', () => {
      const data = api.secretData(NAMESPACE, SECRET)!;
      const finished = data['ca.crt'] !== oldCa.cert && data['ca-previous.crt'] === undefined && data['ca-next.crt'] === undefined
        && cas(api.caBundles(MWC)[0]!).length === 1;
      return finished ? data : undefined;
    }, 30_000);
  } finally {
    probing = false;
    await probe;
  }

  assert.deepEqual(refused, [], 'no replica was ever untrusted');
  assert.ok(calls > 50, `probed throughout (${calls} calls)`);
  assert.deepEqual(trusted(api), [cas(done['ca.crt']!)]);
  for (const r of replicas) {
    const cert = new X509Certificate((await httpsRequest(r.port, done['ca.crt']!, { path: '/healthz' })).fingerprint256 === fingerprint(done['tls.crt']!)
      ? done['tls.crt']! : '');
    assert.ok(cert.verify(new X509Certificate(done['ca.crt']!).publicKey), 'serving the new CA\'s certificate');
  }
  // Ready again at the latest after each replica's next pass (the rollover's last step may be another's).
  await waitFor('both replicas ready after the rollover', () => (replicas.every((r) => r.isReady()) ? true : undefined), 2 * 1500 + 1000);
  // The protocol, as the API server saw it: caBundle old, then old + new, then new alone.
  const bundles = api.requests.filter((r) => r.method === 'PATCH' && r.status === 200)
    .map((r) => (r.body as { op: string; value: string }[]).filter((op) => op.op === 'add').map((op) => cas(Buffer.from(op.value, 'base64').toString()).length));
  // (Both replicas may set the first caBundle at start, to the same value: consecutive repeats are one step.)
  assert.deepEqual(bundles.map((b) => b[0]).filter((n, i, all) => n !== all[i - 1]), [1, 2, 1]);
  assert.deepEqual(api.problems, []);
});
