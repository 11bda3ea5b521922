// The chart's side of the webhook's hardening: the TLS key mounted owner-only and still readable,
// probes with timeouts on their own port, and (self-managed certificates) the ValidatingAdmissionPolicy
// that limits the webhook's rights on its own MutatingWebhookConfiguration to caBundle, its CEL
// evaluated with a CEL implementation (@bufbuild/cel) on the objects the API server would pass it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { run } from '@bufbuild/cel';
import type { CelInput } from '@bufbuild/cel';
import { schemaProblems } from '../helpers/k8s.ts';
import { REPO_ROOT } from '../helpers/tools.ts';
import { testBundle } from '../webhook/helpers.ts';
import { CHART, helm, one, parseObjects, render } from './render.ts';
import type { K8sObject } from './render.ts';

const VAP = 'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy';
type Obj = Record<string, unknown>;

function renderWith(t: Parameters<typeof helm>[0], values: object, apiVersions: string[]): K8sObject[] | undefined {
  const result = helm(t, ['template', 'promux', CHART, '--namespace', 'promux', ...apiVersions.flatMap((v) => ['--api-versions', v])], values);
  if (result === undefined) return undefined;
  assert.equal(result.status, 0, result.stderr);
  return parseObjects(result.stdout);
}

/** A JSON value as CEL sees a Kubernetes object: maps, lists, int64 for whole numbers. */
function toCel(value: unknown): CelInput {
  if (Array.isArray(value)) return value.map(toCel);
  if (value !== null && typeof value === 'object') return new Map(Object.entries(value).map(([k, v]) => [k, toCel(v)]));
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  return value as CelInput;
}

/** The MutatingWebhookConfiguration as the API server stores it: the chart's, with the defaults it fills in. */
function stored(objects: K8sObject[]): Obj {
  const mwc = structuredClone(one(objects, 'MutatingWebhookConfiguration')) as Obj;
  (mwc.metadata as Obj).resourceVersion = '1234';
  (mwc.metadata as Obj).managedFields = [{ manager: 'helm', operation: 'Update' }];
  return mwc;
}

test('the TLS key is mounted owner-only (0400), readable through fsGroup; probes on the health port with timeouts', (t) => {
  for (const mode of ['certManager', 'existingSecret']) {
    const values = mode === 'existingSecret'
      ? { certificates: { mode, secretName: 'tls', existingSecret: { caBundle: 'Q0E=' } } } : { certificates: { mode } };
    const objects = render(t, values);
    if (objects === undefined) return;
    const spec = (one(objects, 'Deployment').spec as { template: { spec: Obj } }).template.spec;
    const volume = (spec.volumes as Obj[]).find((v) => v.name === 'tls') as { secret: Obj };
    assert.equal(volume.secret.defaultMode, 0o400, mode);
    // Secret files belong to root; the kubelet gives the fsGroup read access (0400 becomes 0440,
    // group fsGroup), and the webhook runs in that group.
    const security = spec.securityContext as Obj;
    assert.equal(security.fsGroup, security.runAsGroup, mode);
    assert.notEqual(security.runAsUser, 0);
    const container = (spec.containers as Obj[])[0]!;
    assert.ok((container.args as string[]).includes('--health-port=8081'));
    for (const probe of ['readinessProbe', 'livenessProbe']) {
      const p = container[probe] as { httpGet: Obj; timeoutSeconds: number; periodSeconds: number };
      assert.equal(p.httpGet.port, 'health', probe);
      assert.equal(p.httpGet.scheme, undefined, `${probe}: plain HTTP`);
      assert.ok(p.timeoutSeconds >= 3 && p.timeoutSeconds < p.periodSeconds, `${probe}: a timeout, within the period`);
    }
    // The Service exposes only the webhook port.
    assert.deepEqual((one(objects, 'Service').spec as { ports: Obj[] }).ports.map((p) => p.targetPort), ['https']);
  }
});

test('the caBundle-only policy: rendered for self-managed certificates where the cluster serves ValidatingAdmissionPolicy', (t) => {
  const objects = renderWith(t, {}, [VAP]);
  if (objects === undefined) return;
  const policy = one(objects, 'ValidatingAdmissionPolicy');
  const binding = one(objects, 'ValidatingAdmissionPolicyBinding');
  for (const o of [policy, binding]) assert.deepEqual(schemaProblems(o), [], o.kind);
  assert.deepEqual(binding.spec, { policyName: policy.metadata.name, validationActions: ['Deny'] });
  const spec = policy.spec as { failurePolicy: string; matchConstraints: { resourceRules: Obj[] }; matchConditions: Obj[]; validations: Obj[] };
  assert.equal(spec.failurePolicy, 'Fail');
  assert.deepEqual(spec.matchConstraints.resourceRules, [{
    apiGroups: ['admissionregistration.k8s.io'], apiVersions: ['*'], operations: ['UPDATE'],
    resources: ['mutatingwebhookconfigurations'], resourceNames: [one(objects, 'MutatingWebhookConfiguration').metadata.name],
  }]);
  // Exactly the rights the webhook has on it (get, patch): the policy covers every write it can make.
  assert.deepEqual((one(objects, 'ClusterRole').rules as Obj[]).map((r) => r.verbs), [['get', 'patch']]);

  // Not rendered where the cluster lacks it (helm asks the cluster; before 1.30), nor outside self-managed mode.
  assert.ok(!render(t, {})!.some((o) => o.kind.startsWith('ValidatingAdmissionPolicy')));
  for (const values of [{ certificates: { mode: 'certManager' } }, { certificates: { mode: 'existingSecret', secretName: 'x', existingSecret: { caBundle: 'Q0E=' } } }]) {
    assert.ok(!renderWith(t, values, [VAP])!.some((o) => o.kind.startsWith('ValidatingAdmissionPolicy')));
  }
});

test('the caBundle-only policy\'s CEL: the webhook may set caBundle and nothing else; others are not matched', (t) => {
  const objects = renderWith(t, { serviceAccount: { name: 'promux-sa' } }, [VAP]);
  if (objects === undefined) return;
  const spec = one(objects, 'ValidatingAdmissionPolicy').spec as { matchConditions: { expression: string }[]; validations: { expression: string }[] };
  const old = stored(objects);
  const allowed = (change: (o: { metadata: Obj; webhooks: Obj[] }) => void): boolean[] => {
    const object = structuredClone(old) as { metadata: Obj; webhooks: Obj[] };
    change(object);
    (object.metadata as Obj).resourceVersion = '1235';
    (object.metadata as Obj).managedFields = [{ manager: 'helm' }, { manager: 'promux-webhook' }];
    return spec.validations.map((v) => run(v.expression, { object: toCel(object), oldObject: toCel(old) }) as boolean);
  };
  const ok = [true, true];
  const caBundle = (o: { webhooks: Obj[] }, value: string): void => {
    (o.webhooks[0]!.clientConfig as Obj).caBundle = value;
  };

  assert.deepEqual(allowed((o) => caBundle(o, 'Q0E=')), ok, 'setting caBundle');
  assert.deepEqual(allowed(() => {}), ok, 'no change');
  const withBundle = structuredClone(old) as { webhooks: Obj[] };
  caBundle(withBundle, 'T0xE');
  Object.assign(old, withBundle);
  assert.deepEqual(allowed((o) => caBundle(o, 'T0xEK05FVw==')), ok, 'replacing caBundle (a rollover)');

  const refusedByRules: [string, (o: { metadata: Obj; webhooks: Obj[] }) => void][] = [
    ['rules widened to Secrets', (o) => {
      o.webhooks[0]!.rules = [{ operations: ['*'], apiGroups: ['*'], apiVersions: ['*'], resources: ['secrets'], scope: '*' }];
    }],
    ['namespaceSelector dropped', (o) => delete o.webhooks[0]!.namespaceSelector],
    ['objectSelector changed', (o) => {
      o.webhooks[0]!.objectSelector = {};
    }],
    ['a matchCondition added', (o) => {
      o.webhooks[0]!.matchConditions = [{ name: 'x', expression: 'true' }];
    }],
    ['pointed at another service', (o) => {
      ((o.webhooks[0]!.clientConfig as Obj).service as Obj).name = 'elsewhere';
    }],
    ['pointed at a URL', (o) => {
      const config = o.webhooks[0]!.clientConfig as Obj;
      delete config.service;
      config.url = 'https://attacker.example.com/mutate';
    }],
    ['failurePolicy changed', (o) => {
      o.webhooks[0]!.failurePolicy = 'Fail';
    }],
    ['timeoutSeconds changed', (o) => {
      o.webhooks[0]!.timeoutSeconds = 30;
    }],
    ['sideEffects changed', (o) => {
      o.webhooks[0]!.sideEffects = 'NoneOnDryRun';
    }],
    ['reinvocationPolicy changed', (o) => {
      o.webhooks[0]!.reinvocationPolicy = 'Never';
    }],
    ['a second webhook', (o) => {
      o.webhooks.push({ ...structuredClone(o.webhooks[0]!), name: 'all.promux.io' });
    }],
    ['the webhook renamed', (o) => {
      o.webhooks[0]!.name = 'other.promux.io';
    }],
  ];
  for (const [what, change] of refusedByRules) assert.deepEqual(allowed(change), [false, true], what);
  const refusedByMetadata: [string, (o: { metadata: Obj }) => void][] = [
    ['a label', (o) => {
      o.metadata.labels = { ...(o.metadata.labels as Obj), extra: 'x' };
    }],
    ['an annotation', (o) => {
      o.metadata.annotations = { 'cert-manager.io/inject-ca-from': 'promux/evil' };
    }],
    ['a finalizer', (o) => {
      o.metadata.finalizers = ['example.com/keep'];
    }],
  ];
  for (const [what, change] of refusedByMetadata) assert.deepEqual(allowed(change), [true, false], what);

  const matches = (username: string): boolean =>
    run(spec.matchConditions[0]!.expression, { request: toCel({ userInfo: { username } }) }) as boolean;
  assert.equal(matches('system:serviceaccount:promux:promux-sa'), true);
  assert.equal(matches('system:serviceaccount:promux:default'), false);
  assert.equal(matches('kubernetes-admin'), false, 'helm upgrades by people are not this policy\'s business');
});

test('as the kubelet mounts it (0400 plus group read for fsGroup, owner root), the webhook running as 65532 reads its key; without fsGroup it could not', async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('needs root, to own files as root and run the webhook as uid 65532');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'promux-keymode-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  const material = testBundle().serving;
  const cert = join(dir, 'tls.crt');
  const key = join(dir, 'tls.key');
  writeFileSync(cert, material.cert, { mode: 0o444 });
  writeFileSync(key, material.key);
  const start = (): Promise<string> => new Promise((resolve) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'promux.js'), 'webhook', '--port', '0', '--listen-address', '127.0.0.1',
      '--tls-cert-file', cert, '--tls-private-key-file', key], { uid: 65532, gid: 65532, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const done = (what: string): void => {
      child.kill('SIGKILL');
      resolve(what);
    };
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('promux webhook listening')) done('listening');
    });
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', () => resolve(out));
  });
  // The kubelet with fsGroup 65532: owner root, group 65532, 0400 | 0440.
  chownSync(key, 0, 65532);
  chmodSync(key, 0o440);
  assert.equal(await start(), 'listening');
  // Without fsGroup the file stays root's alone.
  chownSync(key, 0, 0);
  chmodSync(key, 0o400);
  assert.match(await start(), /cannot read the TLS files: EACCES/);
});
