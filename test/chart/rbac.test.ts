// The selfManaged Role grants exactly the verbs the webhook's code sends for its Secret: read from the
// requests a reconcile makes against the Kubernetes API stand-in (test/webhook/stand-in.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kubeApi } from '../../src/webhook/tls/kube.ts';
import { SelfManagedTls } from '../../src/webhook/tls/self-managed.ts';
import { memoryLogger } from '../webhook/helpers.ts';
import { KubeStandIn } from '../webhook/stand-in.ts';
import { one, render } from './render.ts';

const VERBS: Record<string, string> = { GET: 'get', POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };
const DAY = 86_400_000;

test('stand-in API: the selfManaged Role grants exactly the verbs the webhook uses on its Secret (create, renew, adopt)', async (t) => {
  const objects = render(t, {}, { namespace: 'metrics' });
  if (objects === undefined) return;
  const rules = one(objects, 'Role').rules as { resources: string[]; verbs: string[]; resourceNames?: string[] }[];
  const granted = new Set(rules.filter((r) => r.resources.includes('secrets')).flatMap((r) => r.verbs));
  const args = (one(objects, 'Deployment').spec as { template: { spec: { containers: { args: string[] }[] } } }).template.spec.containers[0]!.args;
  const flag = (name: string): string => args.find((a) => a.startsWith(`--${name}=`))!.split('=')[1]!;

  const api = await new KubeStandIn().start();
  t.after(() => api.close());
  api.addWebhookConfiguration(flag('webhook-config-name'), ['inject.promux.io']);
  const start = new Date();
  const replica = (now: Date): SelfManagedTls => new SelfManagedTls({
    kube: kubeApi(api.kubeConfig()), namespace: 'metrics', secretName: flag('tls-secret-name'),
    webhookConfigName: flag('webhook-config-name'), serviceName: flag('service-name'), log: memoryLogger().log, now: () => now,
  });
  await replica(start).reconcile(); // creates the Secret
  await replica(new Date(start.getTime() + 340 * DAY)).reconcile(); // renews it
  const secret = api.secrets.get(`metrics/${flag('tls-secret-name')}`)!;
  delete (secret.metadata as Record<string, unknown>).ownerReferences;
  await replica(new Date(start.getTime() + 340 * DAY)).reconcile(); // adopts it
  assert.deepEqual(api.problems, []);

  const used = new Set(api.requests.filter((r) => r.path.includes('/secrets')).map((r) => VERBS[r.method]!));
  assert.deepEqual([...used].sort(), ['create', 'get', 'update']);
  assert.deepEqual([...granted].sort(), [...used].sort());
  // Every named request is for the one Secret the Role names.
  const named = rules.find((r) => r.resourceNames !== undefined)!;
  for (const r of api.requests.filter((q) => q.path.includes('/secrets/'))) assert.equal(r.path.split('/').at(-1), named.resourceNames![0]);
});
