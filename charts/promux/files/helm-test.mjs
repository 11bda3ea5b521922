// `helm test`: creates a Pod with a server-side dry run (nothing is stored or run) in a namespace
// opted in to promux, the way a user checks an install, and checks that the webhook injected the
// sidecar. Runs in the promux image (plain Node, no dependencies); talks to the API server with the
// pod's service account, which may only create pods in that namespace.
// Settings (environment): PROMUX_TEST_NAMESPACE, PROMUX_TEST_SIDECAR (the injected container's name),
// PROMUX_TEST_LABELS (JSON: labels the webhook's objectSelector asks for), PROMUX_TEST_IMAGE;
// PROMUX_TEST_API_URL and PROMUX_TEST_TOKEN_FILE default to the in-cluster API server and token.
import { readFileSync } from 'node:fs';

const env = process.env;
const namespace = env.PROMUX_TEST_NAMESPACE;
const sidecar = env.PROMUX_TEST_SIDECAR ?? 'promux';
const api = env.PROMUX_TEST_API_URL ?? `https://${env.KUBERNETES_SERVICE_HOST}:${env.KUBERNETES_SERVICE_PORT}`;
const tokenFile = env.PROMUX_TEST_TOKEN_FILE ?? '/var/run/secrets/kubernetes.io/serviceaccount/token';
const deadline = Date.now() + Number(env.PROMUX_TEST_TIMEOUT_SECONDS ?? 60) * 1000;

function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exit(1);
}

const restricted = {
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  runAsNonRoot: true,
  seccompProfile: { type: 'RuntimeDefault' },
};
const testPod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    generateName: 'promux-helm-test-',
    labels: { 'app.kubernetes.io/name': 'promux-helm-test', ...JSON.parse(env.PROMUX_TEST_LABELS || '{}') },
    annotations: { 'prometheus.io/scrape': 'true' },
  },
  spec: {
    containers: ['app', 'worker'].map((name, i) => ({
      name,
      image: env.PROMUX_TEST_IMAGE ?? 'registry.k8s.io/pause:3.10',
      ports: [{ name: 'metrics', containerPort: 9100 + i }],
      securityContext: restricted,
    })),
  },
};

/** The Warning headers of an answer: what kubectl prints as "Warning: ...". */
function warnings(response) {
  const header = response.headers.get('warning') ?? '';
  return [...header.matchAll(/\d{3} \S+ "((?:[^"\\]|\\.)*)"/g)].map((m) => m[1].replaceAll('\\"', '"'));
}

/** POST the dry-run Pod; retried while the namespace or its service account is still being set up. */
async function createDryRun() {
  const url = `${api}/api/v1/namespaces/${namespace}/pods?dryRun=All&fieldManager=promux-helm-test`;
  for (;;) {
    let response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${readFileSync(tokenFile, 'utf8').trim()}`, 'content-type': 'application/json' },
        body: JSON.stringify(testPod),
        signal: AbortSignal.timeout(15_000),
      });
    } catch (err) {
      if (Date.now() > deadline) fail(`cannot reach the API server at ${api}: ${err.cause?.message ?? err.message}`);
      await new Promise((resolve) => setTimeout(resolve, 2000));
      continue;
    }
    const body = await response.json().catch(() => ({}));
    if (response.ok) return { pod: body, warnings: warnings(response) };
    // A new namespace gets its default service account a moment after it exists.
    const settingUp = response.status === 404 || /serviceaccount "[^"]*" not found/.test(body.message ?? '');
    if (!settingUp || Date.now() > deadline) {
      fail(`creating a dry-run pod in namespace ${namespace}: HTTP ${response.status}: ${body.message ?? JSON.stringify(body)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

if (!namespace) fail('PROMUX_TEST_NAMESPACE is not set');
console.log(`Creating a dry-run pod (two containers, prometheus.io/scrape: "true") in namespace ${namespace}...`);
const { pod, warnings: said } = await createDryRun();
for (const w of said) console.log(`warning from the API server: ${w}`);
const status = pod.metadata?.annotations?.['promux.io/status'];
const containers = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
const injected = containers.find((c) => c.name === sidecar);
if (status === undefined || injected === undefined) {
  fail(
    `the pod came back without the ${sidecar} sidecar: the webhook did not inject it.\n` +
      (said.length > 0 ? '' : 'The API server gave no warning, so the webhook was probably not called or could not be reached ' +
        '(failurePolicy Ignore admits the pod unchanged). ') +
      'Check: the webhook pods are ready (kubectl -n NAMESPACE get pods), the MutatingWebhookConfiguration has a caBundle, ' +
      'the API server can reach the webhook Service on its port (private clusters: a firewall rule), and the webhook logs. ' +
      'See docs/troubleshooting.md.',
  );
}
const { targets, port } = JSON.parse(status);
console.log(`OK: the webhook injected ${sidecar} (port ${port}, targets ${targets}).`);
