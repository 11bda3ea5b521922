// examples/proxy/promux-proxy.yaml, the manifest the README gives for `promux proxy`: valid objects, the
// restricted Pod Security profile, least RBAC, and a command line the proxy accepts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseProxyFlags, type ProxyOptions } from '../../src/proxy/flags.ts';
import { VERSION } from '../../src/version.ts';
import { one, parseObjects } from '../chart/render.ts';
import { schemaProblems } from '../helpers/k8s.ts';
import { psaRestrictedProblems } from '../helpers/psa.ts';
import { REPO_ROOT } from '../helpers/tools.ts';

type Obj = Record<string, unknown>;

const objects = parseObjects(readFileSync(join(REPO_ROOT, 'examples', 'proxy', 'promux-proxy.yaml'), 'utf8'));

test('examples/proxy/promux-proxy.yaml: valid objects, all in one namespace; the pod restricted', () => {
  assert.deepEqual(objects.map((o) => o.kind), ['ServiceAccount', 'Role', 'RoleBinding', 'Deployment', 'Service']);
  for (const obj of objects) {
    assert.deepEqual(schemaProblems(obj), [], `${obj.kind}/${obj.metadata.name}`);
    assert.equal(obj.metadata.namespace, 'shop', `${obj.kind}/${obj.metadata.name}`);
  }
  const template = (one(objects, 'Deployment').spec as { template: { metadata: Obj; spec: Obj } }).template;
  assert.deepEqual(psaRestrictedProblems(template.spec), []);
  assert.equal(template.spec.serviceAccountName, 'promux-proxy');
  // The proxy is the scrape target itself: were its pod annotated, Kubernetes discovery would scrape it too.
  assert.equal(template.metadata.annotations, undefined);
});

test('examples/proxy/promux-proxy.yaml: RBAC is list and watch of pods, in the namespace only, for the proxy\'s service account', () => {
  assert.deepEqual(one(objects, 'Role').rules, [{ apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] }]);
  const binding = one(objects, 'RoleBinding') as unknown as { roleRef: Obj; subjects: Obj[] };
  assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'promux-proxy' });
  assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'promux-proxy', namespace: 'shop' }]);
});

test('examples/proxy/promux-proxy.yaml: the container runs a command line the proxy accepts, serves the port its Service and probes name', () => {
  const spec = (one(objects, 'Deployment').spec as { template: { spec: { containers: Obj[] } } }).template.spec;
  const [container] = spec.containers as [{ image: string; args: string[]; ports: Obj[]; env: Obj[]; readinessProbe: Obj; livenessProbe: Obj }];
  assert.equal(container.image, `ghcr.io/promux/promux:${VERSION}`);
  assert.equal(container.args[0], 'proxy');
  const parsed = parseProxyFlags(container.args.slice(1), {});
  assert.equal(parsed.help, false);
  const options = (parsed as { options: ProxyOptions }).options;
  assert.equal(options.selector, 'app=web');
  assert.equal(options.namespaces, undefined, 'the namespace watched is the pod\'s own, from POD_NAMESPACE');
  assert.deepEqual(container.env, [{ name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } }]);
  assert.deepEqual(container.ports, [{ name: 'metrics', containerPort: options.port }]);
  assert.deepEqual((container.readinessProbe.httpGet as Obj), { path: '/readyz', port: 'metrics' });
  assert.deepEqual((container.livenessProbe.httpGet as Obj), { path: '/healthz', port: 'metrics' });
  const service = one(objects, 'Service').spec as { selector: Obj; ports: Obj[] };
  assert.deepEqual(service.ports, [{ name: 'metrics', port: options.port, targetPort: 'metrics' }]);
  assert.deepEqual(service.selector, (one(objects, 'Deployment').spec as { selector: { matchLabels: Obj } }).selector.matchLabels);
});

/** The fenced yaml blocks of the README's proxy section. */
function readmeYamlBlocks(): string[] {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Proxy: `promux proxy`\n');
  assert.notEqual(start, -1);
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  return [...section.matchAll(/\n```yaml\n([\s\S]*?)\n```/g)].map((m) => m[1]!);
}

test('README, proxy section: its scrape config points at the example\'s Service and port; its ClusterRole for -A grants what the example\'s Role does, to its service account', () => {
  const [scrape, rbac, ...others] = readmeYamlBlocks();
  assert.equal(others.length, 0, 'two yaml blocks: the scrape config and the ClusterRole');
  const service = one(objects, 'Service');
  const port = (service.spec as { ports: Array<{ port: number }> }).ports[0]!.port;
  const config = parseObjects(scrape!)[0] as unknown as { scrape_configs: Array<{ static_configs: Array<{ targets: string[] }> }> };
  assert.deepEqual(config.scrape_configs[0]!.static_configs[0]!.targets, [`${service.metadata.name}.${service.metadata.namespace}.svc:${port}`]);
  assert.equal(port, (parseProxyFlags(['-l', 'a=b'], {}) as { options: ProxyOptions }).options.port, 'the default port');

  const cluster = parseObjects(rbac!);
  assert.deepEqual(cluster.map((o) => o.kind), ['ClusterRole', 'ClusterRoleBinding']);
  for (const obj of cluster) assert.deepEqual(schemaProblems(obj), [], `${obj.kind}/${obj.metadata.name}`);
  assert.deepEqual(one(cluster, 'ClusterRole').rules, one(objects, 'Role').rules);
  const binding = one(cluster, 'ClusterRoleBinding') as unknown as { roleRef: Obj; subjects: Obj[] };
  assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: one(cluster, 'ClusterRole').metadata.name });
  assert.deepEqual(binding.subjects, (one(objects, 'RoleBinding') as unknown as { subjects: Obj[] }).subjects);
});
