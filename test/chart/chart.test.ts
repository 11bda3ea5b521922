import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse, parseDocument } from 'yaml';
import { defaultConfig } from '../../src/config/defaults.ts';
import { configFrom } from '../../src/config/load.ts';
import { injectPod } from '../../src/inject/index.ts';
import { parseWebhookArgs } from '../../src/webhook/options.ts';
import { schemaProblems } from '../helpers/k8s.ts';
import { psaRestrictedProblems } from '../helpers/psa.ts';
import { REPO_ROOT } from '../helpers/tools.ts';
import { crdProblems } from './crd-fields.ts';
import { CHART, helm, kinds, one, render, renderText, type K8sObject } from './render.ts';

const CA_BUNDLE = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString('base64');

/** Value sets covering each certificate mode and the optional parts. */
const COMBINATIONS: Record<string, object> = {
  'defaults (selfManaged)': {},
  'certManager with the chart-made CA, a NetworkPolicy': { certificates: { mode: 'certManager' }, networkPolicy: { enabled: true } },
  'certManager with an existing ClusterIssuer': {
    certificates: { mode: 'certManager', secretName: 'webhook-cert', certManager: { issuerRef: { name: 'corp-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' } } },
  },
  existingSecret: { certificates: { mode: 'existingSecret', secretName: 'my-tls', existingSecret: { caBundle: CA_BUNDLE } } },
  'monitors, digest, native sidecar, custom opt-in label, no PDB, existing service account': {
    image: { repository: 'registry.example.com/promux', digest: `sha256:${'a'.repeat(64)}` },
    metrics: {
      serviceMonitor: { enabled: true, interval: '30s', labels: { release: 'kube-prometheus-stack' } },
      podMonitor: { enabled: true, scrapeTimeout: '5s', relabelings: [{ action: 'labeldrop', regex: 'pod_template_hash' }] },
      prometheusRule: { enabled: true, labels: { release: 'kube-prometheus-stack' } },
      grafanaDashboard: { enabled: true, annotations: { grafana_folder: 'promux' } },
    },
    sidecar: { nativeSidecar: 'always', port: 19090, containerLabel: 'source_container', resources: { requests: { cpu: '5m', memory: '32Mi' }, limits: { memory: '64Mi' } } },
    webhook: { namespaceLabel: { key: 'monitoring.example.com/promux', value: 'on' }, failurePolicy: 'Fail', timeoutSeconds: 3, matchConditions: false },
    podDisruptionBudget: { enabled: false },
    networkPolicy: {
      enabled: true,
      ingressFrom: [{ ipBlock: { cidr: '10.0.0.0/8' } }],
      apiServer: { cidrs: ['172.20.0.10/32'], ports: [443] },
      extraEgress: [{ to: [{ namespaceSelector: {}, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }], ports: [{ port: 53, protocol: 'UDP' }] }],
    },
    serviceAccount: { create: false, name: 'promux-sa' },
    replicaCount: 3,
    tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'infra', effect: 'NoSchedule' }],
    nodeSelector: { 'kubernetes.io/os': 'linux' },
    podAnnotations: { 'example.com/team': 'platform' },
  },
};

function podSpecs(objects: K8sObject[]): [string, object][] {
  return objects
    .filter((o) => o.kind === 'Deployment' || o.kind === 'Pod')
    .map((o) => [`${o.kind}/${o.metadata.name}`, o.kind === 'Pod' ? o.spec as object : (o.spec as { template: { spec: object } }).template.spec]);
}

function deploymentContainer(objects: K8sObject[]): Record<string, unknown> & { args: string[] } {
  const spec = (one(objects, 'Deployment').spec as { template: { spec: { containers: (Record<string, unknown> & { args: string[] })[] } } });
  return spec.template.spec.containers[0]!;
}

function webhookOf(objects: K8sObject[]): Record<string, unknown> {
  const config = one(objects, 'MutatingWebhookConfiguration');
  const webhooks = config.webhooks as Record<string, unknown>[];
  assert.equal(webhooks.length, 1);
  return webhooks[0]!;
}

function injectorConfig(objects: K8sObject[]): unknown {
  const data = one(objects, 'ConfigMap', 'promux').data as Record<string, string>;
  return parse(data['config.yaml']!);
}

test('helm lint --strict is clean for every certificate mode', (t) => {
  for (const [name, values] of Object.entries(COMBINATIONS)) {
    const result = helm(t, ['lint', '--strict', CHART], values);
    if (result === undefined) return;
    assert.equal(result.status, 0, `${name}: ${result.stdout}${result.stderr}`);
    assert.doesNotMatch(result.stdout, /\[(WARNING|ERROR)\]/, name);
  }
});

test('every rendered object, helm test hooks included, passes schema validation (kubernetes-models, unknown fields, CRD fields)', (t) => {
  for (const [name, values] of Object.entries(COMBINATIONS)) {
    const objects = render(t, values, { tests: true });
    if (objects === undefined) return;
    assert.ok(objects.length >= 6, name);
    for (const obj of objects) {
      const crd = crdProblems(obj);
      const problems = crd ?? schemaProblems(obj);
      assert.deepEqual(problems, [], `${name}: ${obj.kind}/${obj.metadata.name}`);
      assert.equal(obj.metadata.labels?.['app.kubernetes.io/name'], 'promux', `${name}: ${obj.kind} labels`);
      assert.equal(obj.metadata.labels?.['app.kubernetes.io/instance'], 'promux');
      assert.equal(obj.metadata.labels?.['app.kubernetes.io/managed-by'], 'Helm');
    }
  }
});

test('every container the chart creates meets the PSA restricted profile (the webhook\'s and the helm test\'s)', (t) => {
  for (const [name, values] of Object.entries(COMBINATIONS)) {
    const objects = render(t, values, { tests: true });
    if (objects === undefined) return;
    const specs = podSpecs(objects);
    assert.equal(specs.length, 2, name);
    for (const [where, spec] of specs) assert.deepEqual(psaRestrictedProblems(spec), [], `${name}: ${where}`);
  }
});

test('the webhook configuration: pods CREATE, opt-in namespaces minus system ones, fail open', (t) => {
  const objects = render(t, {}, { namespace: 'observability' });
  if (objects === undefined) return;
  const webhook = webhookOf(objects);
  assert.deepEqual(webhook.rules, [
    { operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' },
  ]);
  assert.deepEqual(webhook.namespaceSelector, {
    matchLabels: { 'promux.io/inject': 'enabled' },
    matchExpressions: [{
      key: 'kubernetes.io/metadata.name',
      operator: 'NotIn',
      values: ['kube-system', 'kube-public', 'kube-node-lease', 'observability'],
    }],
  });
  assert.deepEqual(webhook.objectSelector, {
    matchExpressions: [{ key: 'promux.io/inject', operator: 'NotIn', values: ['false'] }],
  });
  assert.equal(webhook.failurePolicy, 'Ignore');
  assert.equal(webhook.sideEffects, 'None');
  assert.equal(webhook.timeoutSeconds, 5);
  assert.equal(webhook.reinvocationPolicy, 'IfNeeded');
  assert.equal(webhook.matchPolicy, 'Equivalent');
  assert.deepEqual(webhook.admissionReviewVersions, ['v1']);
  const service = one(objects, 'Service');
  assert.deepEqual((webhook.clientConfig as Record<string, unknown>).service, {
    name: service.metadata.name, namespace: 'observability', path: '/mutate', port: 443,
  });
  assert.deepEqual((service.spec as { ports: unknown[] }).ports, [{ name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' }]);
  const container = deploymentContainer(objects);
  assert.deepEqual(container.ports, [{ name: 'https', containerPort: 8443, protocol: 'TCP' }, { name: 'health', containerPort: 8081, protocol: 'TCP' }]);
});

test('the webhook settings are all overridable in values', (t) => {
  const objects = render(t, {
    webhook: {
      failurePolicy: 'Fail', timeoutSeconds: 10, reinvocationPolicy: 'Never', matchPolicy: 'Exact', sideEffects: 'NoneOnDryRun',
      namespaceLabel: { key: 'team.example.com/metrics', value: 'promux' },
      excludedNamespaces: ['kube-system', 'promux'],
      podOptOutLabel: { key: 'metrics.example.com/skip', value: 'yes' },
      objectSelector: {
        matchLabels: { 'metrics.example.com/merge': 'yes' },
        matchExpressions: [{ key: 'tier', operator: 'In', values: ['web'] }],
      },
      port: 9443,
    },
  });
  if (objects === undefined) return;
  const webhook = webhookOf(objects);
  assert.equal(webhook.failurePolicy, 'Fail');
  assert.equal(webhook.timeoutSeconds, 10);
  assert.equal(webhook.reinvocationPolicy, 'Never');
  assert.equal(webhook.matchPolicy, 'Exact');
  assert.equal(webhook.sideEffects, 'NoneOnDryRun');
  // The release namespace, listed already, appears once.
  assert.deepEqual(webhook.namespaceSelector, {
    matchLabels: { 'team.example.com/metrics': 'promux' },
    matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'promux'] }],
  });
  assert.deepEqual(webhook.objectSelector, {
    matchLabels: { 'metrics.example.com/merge': 'yes' },
    matchExpressions: [
      { key: 'metrics.example.com/skip', operator: 'NotIn', values: ['yes'] },
      { key: 'tier', operator: 'In', values: ['web'] },
    ],
  });
  const container = deploymentContainer(objects);
  assert.ok(container.args.includes('--port=9443'));
  assert.deepEqual(container.ports, [{ name: 'https', containerPort: 9443, protocol: 'TCP' }, { name: 'health', containerPort: 8081, protocol: 'TCP' }]);

  // An empty opt-in key matches every namespace that is not excluded; an empty opt-out key, every pod.
  const everywhere = render(t, { webhook: { namespaceLabel: { key: '', value: '' }, podOptOutLabel: { key: '', value: '' } } })!;
  assert.deepEqual(webhookOf(everywhere).namespaceSelector, {
    matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kube-public', 'kube-node-lease', 'promux'] }],
  });
  assert.equal(webhookOf(everywhere).objectSelector, undefined);
  assert.deepEqual(schemaProblems(one(everywhere, 'MutatingWebhookConfiguration')), []);
});

test('the Deployment: two replicas spread across nodes, a PDB, probes on https, resources', (t) => {
  const objects = render(t, {});
  if (objects === undefined) return;
  const deployment = one(objects, 'Deployment');
  const spec = deployment.spec as { replicas: number; selector: { matchLabels: object }; template: { metadata: { labels: object; annotations: Record<string, string> }; spec: Record<string, unknown> } };
  assert.equal(spec.replicas, 2);
  assert.deepEqual(spec.template.spec.topologySpreadConstraints, [{
    maxSkew: 1,
    topologyKey: 'kubernetes.io/hostname',
    whenUnsatisfiable: 'ScheduleAnyway',
    labelSelector: { matchLabels: spec.selector.matchLabels },
    matchLabelKeys: ['pod-template-hash'],
  }]);
  const pdb = one(objects, 'PodDisruptionBudget');
  assert.deepEqual(pdb.spec, { minAvailable: 1, unhealthyPodEvictionPolicy: 'AlwaysAllow', selector: { matchLabels: spec.selector.matchLabels } });
  for (const [key, value] of Object.entries(spec.selector.matchLabels)) {
    assert.equal((spec.template.metadata.labels as Record<string, string>)[key], value);
  }
  const container = deploymentContainer(objects);
  assert.deepEqual(container.readinessProbe, { httpGet: { path: '/readyz', port: 'health' }, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 2 });
  assert.deepEqual(container.livenessProbe, { httpGet: { path: '/healthz', port: 'health' }, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 });
  assert.deepEqual(container.resources, { requests: { cpu: '20m', memory: '96Mi' }, limits: { memory: '256Mi' } });
  assert.equal(container.image, 'ghcr.io/promux/promux:0.1.0');
  assert.deepEqual(container.args.slice(0, 4), ['webhook', '--port=8443', '--config=/etc/promux/config/config.yaml', '--log-level=info']);
});

test('PodDisruptionBudget: none with one replica (it could only block drains); never one that forbids every eviction', (t) => {
  const single = render(t, { replicaCount: 1 });
  if (single === undefined) return;
  assert.deepEqual(single.filter((o) => o.kind === 'PodDisruptionBudget'), []);
  assert.equal((one(single, 'Deployment').spec as { replicas: number }).replicas, 1);
  assert.deepEqual((one(render(t, { replicaCount: 3, podDisruptionBudget: { minAvailable: '50%' } })!, 'PodDisruptionBudget').spec as { minAvailable: unknown }).minAvailable, '50%');
  for (const [values, shown] of [[{ replicaCount: 2, podDisruptionBudget: { minAvailable: 2 } }, '2'], [{ podDisruptionBudget: { minAvailable: '100%' } }, '100%']] as const) {
    const result = helm(t, ['template', 'promux', CHART], values)!;
    assert.notEqual(result.status, 0, JSON.stringify(values));
    assert.match(result.stderr, new RegExp(`podDisruptionBudget\\.minAvailable \\(${shown}\\) must be below replicaCount`));
  }
  assert.equal(helm(t, ['template', 'promux', CHART], { replicaCount: 1, podDisruptionBudget: { minAvailable: 1 } })!.status, 0);
});

test('hostNetwork: the webhook listens on the node, with cluster DNS kept', (t) => {
  const values = { hostNetwork: true, webhook: { port: 10260, healthPort: 10261 } };
  const objects = render(t, values);
  if (objects === undefined) return;
  const lint = helm(t, ['lint', '--strict', CHART], values)!;
  assert.equal(lint.status, 0, lint.stdout);
  const spec = (one(objects, 'Deployment').spec as { template: { spec: Record<string, unknown> } }).template.spec;
  assert.equal(spec.hostNetwork, true);
  assert.equal(spec.dnsPolicy, 'ClusterFirstWithHostNet');
  assert.deepEqual(deploymentContainer(objects).ports, [
    { name: 'https', containerPort: 10260, protocol: 'TCP' }, { name: 'health', containerPort: 10261, protocol: 'TCP' },
  ]);
  assert.deepEqual(schemaProblems(one(objects, 'Deployment')), []);
  const plain = (one(render(t, {})!, 'Deployment').spec as { template: { spec: Record<string, unknown> } }).template.spec;
  assert.equal(plain.hostNetwork, undefined);
});

test('NetworkPolicy: the webhook port in; out only to the API server, and only in selfManaged mode', (t) => {
  const objects = render(t, { networkPolicy: { enabled: true } });
  if (objects === undefined) return;
  assert.deepEqual(render(t, {})!.filter((o) => o.kind === 'NetworkPolicy'), []);
  const policy = one(objects, 'NetworkPolicy').spec as Record<string, unknown>;
  const deployment = one(objects, 'Deployment').spec as { selector: unknown; template: { spec: { containers: { ports: { name: string }[] }[] } } };
  assert.deepEqual(policy.podSelector, deployment.selector);
  assert.deepEqual(policy.policyTypes, ['Ingress', 'Egress']);
  assert.deepEqual(policy.ingress, [{ ports: [{ port: 'https', protocol: 'TCP' }] }]);
  assert.equal(deployment.template.spec.containers[0]!.ports[0]!.name, 'https', 'the named port exists');
  assert.deepEqual(policy.egress, [{
    to: [{ ipBlock: { cidr: '0.0.0.0/0' } }, { ipBlock: { cidr: '::/0' } }],
    ports: [{ port: 443, protocol: 'TCP' }, { port: 6443, protocol: 'TCP' }],
  }]);
  for (const mode of ['certManager', 'existingSecret']) {
    const other = render(t, { networkPolicy: { enabled: true }, certificates: { mode, secretName: 'tls', existingSecret: { caBundle: CA_BUNDLE } } })!;
    assert.deepEqual((one(other, 'NetworkPolicy').spec as Record<string, unknown>).egress, [], mode);
  }
  const custom = one(render(t, COMBINATIONS['monitors, digest, native sidecar, custom opt-in label, no PDB, existing service account'])!, 'NetworkPolicy').spec as Record<string, unknown>;
  assert.deepEqual(custom.ingress, [{ ports: [{ port: 'https', protocol: 'TCP' }], from: [{ ipBlock: { cidr: '10.0.0.0/8' } }] }]);
  assert.deepEqual(custom.egress, [
    { to: [{ ipBlock: { cidr: '172.20.0.10/32' } }], ports: [{ port: 443, protocol: 'TCP' }] },
    { to: [{ namespaceSelector: {}, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }], ports: [{ port: 53, protocol: 'UDP' }] },
  ]);
});

test('the config checksum on the pod template changes with the injector config, and only then', (t) => {
  const checksum = (values: object): string => {
    const objects = render(t, values)!;
    const spec = one(objects, 'Deployment').spec as { template: { metadata: { annotations: Record<string, string> } } };
    return spec.template.metadata.annotations['checksum/config']!;
  };
  const base = checksum({});
  if (base === undefined) return;
  assert.match(base, /^[0-9a-f]{64}$/);
  assert.equal(checksum({ replicaCount: 3 }), base);
  assert.notEqual(checksum({ sidecar: { scrapeTimeout: '5s' } }), base);
  assert.notEqual(checksum({ excludeContainers: [] }), base);
});

test('TLS: each certificate mode passes the webhook the matching flags and mounts', (t) => {
  const selfManaged = render(t, {}, { namespace: 'metrics' });
  if (selfManaged === undefined) return;
  const selfArgs = deploymentContainer(selfManaged).args;
  assert.deepEqual(selfArgs.slice(5), [
    '--self-managed-tls', '--tls-secret-name=promux-tls', '--webhook-config-name=promux', '--service-name=promux', '--namespace=$(POD_NAMESPACE)',
  ]);
  assert.deepEqual(deploymentContainer(selfManaged).env, [{ name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } }]);
  const mwc = one(selfManaged, 'MutatingWebhookConfiguration');
  assert.equal((webhookOf(selfManaged).clientConfig as Record<string, unknown>).caBundle, undefined);
  assert.equal(mwc.metadata.annotations, undefined);

  const certManager = render(t, { certificates: { mode: 'certManager' } }, { namespace: 'metrics' })!;
  assert.deepEqual(deploymentContainer(certManager).args.slice(5), [
    '--tls-cert-file=/etc/promux/tls/tls.crt', '--tls-private-key-file=/etc/promux/tls/tls.key',
  ]);
  const podSpec = (one(certManager, 'Deployment').spec as { template: { spec: { volumes: unknown[] } } }).template.spec;
  assert.deepEqual(podSpec.volumes[1], { name: 'tls', secret: { secretName: 'promux-tls', defaultMode: 0o400 } });
  assert.equal(one(certManager, 'MutatingWebhookConfiguration').metadata.annotations?.['cert-manager.io/inject-ca-from'], 'metrics/promux');
  const serving = one(certManager, 'Certificate', 'promux');
  const servingSpec = serving.spec as Record<string, unknown>;
  assert.equal(servingSpec.secretName, 'promux-tls');
  assert.deepEqual(servingSpec.dnsNames, ['promux', 'promux.metrics', 'promux.metrics.svc', 'promux.metrics.svc.cluster.local']);
  assert.deepEqual(servingSpec.issuerRef, { name: 'promux-ca', kind: 'Issuer', group: 'cert-manager.io' });
  // The chain: self-signed Issuer -> CA Certificate -> CA Issuer -> serving Certificate.
  const ca = one(certManager, 'Certificate', 'promux-ca').spec as Record<string, unknown>;
  assert.equal(ca.isCA, true);
  assert.deepEqual(ca.issuerRef, { name: 'promux-selfsigned', kind: 'Issuer', group: 'cert-manager.io' });
  assert.deepEqual(one(certManager, 'Issuer', 'promux-selfsigned').spec, { selfSigned: {} });
  assert.deepEqual(one(certManager, 'Issuer', 'promux-ca').spec, { ca: { secretName: ca.secretName } });

  const external = render(t, COMBINATIONS['certManager with an existing ClusterIssuer'])!;
  assert.deepEqual(kinds(external).filter((k) => k.startsWith('Issuer') || k.startsWith('Certificate')), ['Certificate/promux']);
  assert.deepEqual((one(external, 'Certificate').spec as Record<string, unknown>).issuerRef, { name: 'corp-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' });

  const existing = render(t, COMBINATIONS.existingSecret)!;
  assert.equal((webhookOf(existing).clientConfig as Record<string, unknown>).caBundle, CA_BUNDLE);
  const existingSpec = (one(existing, 'Deployment').spec as { template: { spec: { volumes: unknown[] } } }).template.spec;
  assert.deepEqual(existingSpec.volumes[1], { name: 'tls', secret: { secretName: 'my-tls', defaultMode: 0o400 } });
  assert.ok(!existing.some((o) => o.apiVersion.startsWith('cert-manager.io')));
});

test("the webhook's own parser accepts the chart's args in every certificate mode", (t) => {
  const expected: Record<string, unknown> = {
    'defaults (selfManaged)': { mode: 'self-managed', secretName: 'promux-tls', webhookConfigName: 'promux', serviceName: 'promux', namespace: 'metrics' },
    'certManager with the chart-made CA, a NetworkPolicy': { mode: 'files', certFile: '/etc/promux/tls/tls.crt', keyFile: '/etc/promux/tls/tls.key' },
    existingSecret: { mode: 'files', certFile: '/etc/promux/tls/tls.crt', keyFile: '/etc/promux/tls/tls.key' },
  };
  for (const [name, tls] of Object.entries(expected)) {
    const objects = render(t, COMBINATIONS[name], { namespace: 'metrics' });
    if (objects === undefined) return;
    const container = deploymentContainer(objects);
    const env = { POD_NAMESPACE: 'metrics' };
    // The kubelet expands $(VAR) from the container's env before the process sees its args.
    const [mode, ...args] = container.args.map((a) => a.replace(/\$\((\w+)\)/g, (_, v: string) => env[v as keyof typeof env]));
    assert.equal(mode, 'webhook');
    const parsed = parseWebhookArgs(args, env);
    assert.ok('options' in parsed, name);
    assert.equal(parsed.options.port, 8443, name);
    assert.equal(parsed.options.configFile, '/etc/promux/config/config.yaml', name);
    assert.equal(parsed.options.logLevel, 'info', name);
    assert.deepEqual(parsed.options.tls, tls, name);
  }
});

test('RBAC: Secrets in its own namespace and its own webhook configuration, only when self-managed', (t) => {
  const objects = render(t, {}, { namespace: 'metrics' });
  if (objects === undefined) return;
  const role = one(objects, 'Role');
  assert.equal(role.metadata.namespace, 'metrics');
  assert.deepEqual(role.rules, [
    { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
    { apiGroups: [''], resources: ['secrets'], resourceNames: ['promux-tls'], verbs: ['get', 'update'] },
  ]);
  assert.deepEqual(one(objects, 'ClusterRole').rules, [
    { apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations'], resourceNames: ['promux'], verbs: ['get', 'patch'] },
  ]);
  assert.equal(one(objects, 'MutatingWebhookConfiguration').metadata.name, 'promux');
  for (const kind of ['RoleBinding', 'ClusterRoleBinding']) {
    const binding = one(objects, kind);
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'promux', namespace: 'metrics' }]);
    assert.equal((binding.roleRef as { name: string }).name, kind === 'RoleBinding' ? role.metadata.name : 'promux');
  }
  const podSpec = (one(objects, 'Deployment').spec as { template: { spec: Record<string, unknown> } }).template.spec;
  assert.equal(podSpec.automountServiceAccountToken, true);
  assert.equal(podSpec.serviceAccountName, 'promux');

  for (const mode of ['certManager', 'existingSecret']) {
    const others = render(t, mode === 'certManager' ? COMBINATIONS['certManager with the chart-made CA, a NetworkPolicy'] : COMBINATIONS.existingSecret)!;
    assert.deepEqual(others.filter((o) => o.apiVersion.startsWith('rbac.')), [], mode);
    const spec = (one(others, 'Deployment').spec as { template: { spec: Record<string, unknown> } }).template.spec;
    assert.equal(spec.automountServiceAccountToken, false, mode);
  }
});

test('the ConfigMap is a valid injector config; with default values it is the built-in config', (t) => {
  const objects = render(t, {});
  if (objects === undefined) return;
  const config = configFrom(injectorConfig(objects), 'chart ConfigMap');
  const image = deploymentContainer(objects).image;
  assert.deepEqual(config, { ...defaultConfig(), sidecar: { ...defaultConfig().sidecar, image } });
});

test('sidecar values reach the injector config; the sidecar image follows the chart image', (t) => {
  const objects = render(t, COMBINATIONS['monitors, digest, native sidecar, custom opt-in label, no PDB, existing service account']);
  if (objects === undefined) return;
  const config = configFrom(injectorConfig(objects), 'chart ConfigMap');
  assert.equal(config.sidecar.image, `registry.example.com/promux@sha256:${'a'.repeat(64)}`);
  assert.equal(config.sidecar.image, deploymentContainer(objects).image);
  assert.equal(config.sidecar.nativeSidecar, 'always');
  assert.equal(config.sidecar.port, 19090);
  assert.equal(config.sidecar.containerLabel, 'source_container');
  assert.deepEqual(config.sidecar.resources, { requests: { cpu: '5m', memory: '32Mi' }, limits: { memory: '64Mi' } });

  const own = render(t, {
    image: { tag: '9.9.9' },
    sidecar: { image: { repository: 'mirror.example.com/promux', pullPolicy: 'Always' }, scrapeInterval: '15s', scrapeTimeout: '2s', maxTargetBytes: '8MiB' },
    excludeContainers: ['envoy'],
    minContainers: 3,
    schemes: [{ name: 'custom', prefix: 'metrics.example.com', keys: { scrape: 'scrape', port: 'port', path: 'path', scheme: 'scheme', paramPrefix: 'param_' } }],
  })!;
  const ownConfig = configFrom(injectorConfig(own), 'chart ConfigMap');
  assert.equal(ownConfig.sidecar.image, 'mirror.example.com/promux:9.9.9');
  assert.equal(ownConfig.sidecar.imagePullPolicy, 'Always');
  assert.equal(ownConfig.sidecar.scrapeInterval, '15s');
  assert.equal(ownConfig.sidecar.scrapeTimeout, '2s');
  assert.equal(ownConfig.sidecar.maxTargetBytes, '8MiB');
  assert.deepEqual(ownConfig.excludeContainers, ['envoy']);
  assert.equal(ownConfig.minContainers, 3);
  assert.deepEqual(ownConfig.schemes, [{ name: 'custom', prefix: 'metrics.example.com', keys: { scrape: 'scrape', port: 'port', path: 'path', scheme: 'scheme', paramPrefix: 'param_', portName: '', container: '' } }]);
  assert.equal(deploymentContainer(own).image, 'ghcr.io/promux/promux:9.9.9');
});

test('a pod injected with the chart\'s config gets a restricted, schema-valid sidecar running the chart\'s image', (t) => {
  const example = parseDocument(readFileSync(join(REPO_ROOT, 'examples', 'two-container-pod.yaml'), 'utf8')).toJS() as object;
  for (const nativeSidecar of ['never', 'always']) {
    const objects = render(t, { sidecar: { nativeSidecar } });
    if (objects === undefined) return;
    const config = configFrom(injectorConfig(objects), 'chart ConfigMap');
    const result = injectPod(structuredClone(example), config);
    assert.equal(result.decision, 'inject', result.reason);
    assert.deepEqual(schemaProblems(result.pod), [], nativeSidecar);
    const spec = (result.pod as { spec: { containers: { name: string; image: string }[]; initContainers?: { name: string; image: string }[] } }).spec;
    const list = nativeSidecar === 'always' ? spec.initContainers ?? [] : spec.containers;
    const sidecar = list.find((c) => c.name === 'promux');
    assert.ok(sidecar !== undefined, nativeSidecar);
    assert.equal(sidecar.image, deploymentContainer(objects).image);
    // Only the sidecar is promux's: the example's own containers are the user's business.
    const only = nativeSidecar === 'always' ? { initContainers: [sidecar], containers: [] } : { containers: [sidecar] };
    assert.deepEqual(psaRestrictedProblems(only), [], nativeSidecar);
  }
});

test('values.schema.json rejects unknown keys and invalid values, naming the key', (t) => {
  const cases: [object, RegExp][] = [
    [{ webhook: { failurePolicy: 'Ignored' } }, /webhook\/failurePolicy/],
    [{ webhook: { timeoutSeconds: 31 } }, /webhook\/timeoutSeconds/],
    [{ sidecar: { port: 70000 } }, /sidecar\/port/],
    [{ sidecar: { scrapeTimeout: 'ten seconds' } }, /sidecar\/scrapeTimeout/],
    [{ sidecar: { resources: { requests: { cpu: 1 } } } }, /sidecar\/resources\/requests\/cpu/],
    [{ sidecar: { nativeSidecar: 'yes' } }, /sidecar\/nativeSidecar/],
    [{ sidecar: { contianerName: 'x' } }, /contianerName/],
    [{ certificates: { mode: 'manual' } }, /certificates\/mode/],
    [{ certificates: { certManager: { issuerRef: { kind: 'ClusterIssuer' } } } }, /issuerRef/],
    [{ replicas: 2 }, /replicas/],
    [{ webhook: { matchConditions: 'yes' } }, /webhook\/matchConditions/],
    [{ networkPolicy: { apiServer: { cidrs: ['anywhere'] } } }, /networkPolicy\/apiServer\/cidrs/],
    [{ tests: { enable: true } }, /enable/],
    [{ podDisruptionBudget: { minAvailable: 'half' } }, /podDisruptionBudget\/minAvailable/],
  ];
  for (const [values, expected] of cases) {
    const result = helm(t, ['template', 'promux', CHART], values);
    if (result === undefined) return;
    assert.notEqual(result.status, 0, JSON.stringify(values));
    assert.match(result.stderr, expected, JSON.stringify(values));
  }
  const missing = helm(t, ['template', 'promux', CHART], { certificates: { mode: 'existingSecret', secretName: 'tls' } })!;
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr, /certificates\.existingSecret\.caBundle is required/);
});

test('rendering is stable: no certificate or random value is generated at render time', (t) => {
  for (const [name, values] of Object.entries(COMBINATIONS)) {
    const first = renderText(t, values);
    if (first === undefined) return;
    assert.equal(renderText(t, values), first, name);
    const objects = render(t, values)!;
    assert.deepEqual(objects.filter((o) => o.kind === 'Secret'), [], `${name}: the chart renders no Secret`);
    assert.doesNotMatch(first, /BEGIN (CERTIFICATE|PRIVATE KEY|EC PRIVATE KEY|RSA PRIVATE KEY)/, name);
  }
});

test('Chart.yaml version and appVersion follow package.json', () => {
  const chart = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as { version: string; appVersion: string };
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(chart.version, pkg.version);
  assert.equal(chart.appVersion, pkg.version);
});

test('NOTES.txt tells how to opt a namespace in and check a pod', (t) => {
  const result = helm(t, ['install', 'promux', CHART, '--dry-run=client', '--namespace', 'metrics']);
  if (result === undefined) return;
  assert.equal(result.status, 0, result.stderr);
  const notes = result.stdout.slice(result.stdout.indexOf('NOTES:'));
  assert.match(notes, /kubectl label namespace NAMESPACE promux\.io\/inject=enabled/);
  assert.match(notes, /promux\\\.io\/status/);
  assert.match(notes, /kube-system, kube-public, kube-node-lease, metrics/);
});
