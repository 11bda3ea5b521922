// The pod-discovery stand-in against what Prometheus's discovery/kubernetes/pod.go produces.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import test from 'node:test';
import fc from 'fast-check';
import { FIXTURES } from '../helpers/tools.ts';
import { asRunningPod, podTargetGroups, sanitizeLabelName } from './pod-sd.ts';
import { movePorts, podOf, readManifest } from './pods.ts';

const M = '__meta_kubernetes_';

test('the vault-agent pod: a target per declared port, a port-less one per container without ports, init marked', () => {
  const manifest = readManifest(join(FIXTURES, 'manifests', 'vault-agent-pod.yaml'));
  const pod = asRunningPod(manifest, { podIP: '10.1.2.3' });
  const groups = podTargetGroups(pod);
  assert.deepEqual(
    groups.map((g) => [
      g.targets,
      g.labels[`${M}pod_container_name`],
      g.labels[`${M}pod_container_init`],
      g.labels[`${M}pod_container_port_name`],
      g.labels[`${M}pod_container_port_number`],
      g.labels[`${M}pod_container_port_protocol`],
    ]),
    [
      [['10.1.2.3:3500'], 'my-service', 'false', 'http', '3500', 'TCP'],
      [['10.1.2.3'], 'vault-agent', 'false', undefined, undefined, undefined],
      [['10.1.2.3'], 'vault-agent-init', 'true', undefined, undefined, undefined],
    ],
  );
  const labels = groups[0]!.labels;
  assert.equal(labels[`${M}namespace`], 'my-namespace');
  assert.equal(labels[`${M}pod_name`], 'my-service-7d9c8b6f5-x2l9q');
  assert.equal(labels[`${M}pod_ip`], '10.1.2.3');
  assert.equal(labels[`${M}pod_phase`], 'Running');
  assert.equal(labels[`${M}pod_ready`], 'true');
  assert.equal(labels[`${M}pod_container_image`], 'registry.example.com/my-service:2.3.1');
  assert.match(labels[`${M}pod_container_id`] ?? '', /^containerd:\/\//);
  assert.equal(labels[`${M}pod_label_app`], 'my-service');
  assert.equal(labels[`${M}pod_labelpresent_app`], 'true');
  assert.equal(labels[`${M}pod_annotation_k8s_grafana_com_metrics_portNumber`], '3500');
  assert.equal(labels[`${M}pod_annotationpresent_k8s_grafana_com_scrape`], 'true');
  assert.equal(labels[`${M}pod_controller_kind`], undefined, 'a bare pod has no controller');
});

test("a Deployment's pod names its ReplicaSet as controller; moved ports reach the annotations and the target map", () => {
  const manifest = readManifest(join(FIXTURES, 'manifests', 'openfaas-gateway.yaml'));
  const pod = movePorts(podOf(manifest), new Map([[8080, 18080], [8081, 18081], [8082, 18082]]));
  const annotations = (pod.metadata as Record<string, Record<string, string>>).annotations!;
  assert.equal(annotations['prometheus.io/port'], '18082');
  assert.equal(annotations['promux.io/targets'], 'gateway:18082,faas-netes:18081');
  const groups = podTargetGroups(asRunningPod(pod, { podIP: '127.0.0.1' }));
  assert.deepEqual(groups.map((g) => g.targets[0]), ['127.0.0.1:18080', '127.0.0.1:18081']);
  assert.equal(groups[0]!.labels[`${M}pod_controller_kind`], 'ReplicaSet');
  assert.equal(groups[0]!.labels[`${M}pod_controller_name`], 'gateway-7c9f8d6b5');
  assert.equal(groups[0]!.labels[`${M}pod_annotation_promux_io_targets`], 'gateway:18082,faas-netes:18081');
});

test('no target while the pod has no IP; a native sidecar counts as an init container; IPv6 is bracketed', () => {
  const pod = {
    metadata: { name: 'p', namespace: 'n' },
    spec: {
      containers: [{ name: 'app', ports: [{ containerPort: 80 }] }],
      initContainers: [
        { name: 'proxy', restartPolicy: 'Always', ports: [{ name: 'metrics', containerPort: 15090 }] },
      ],
    },
  };
  assert.deepEqual(podTargetGroups(pod), []);
  const groups = podTargetGroups(asRunningPod(pod, { podIP: 'fd00::1' }));
  assert.deepEqual(groups.map((g) => g.targets[0]), ['[fd00::1]:80', '[fd00::1]:15090']);
  assert.equal(groups[1]!.labels[`${M}pod_container_init`], 'true');
  assert.equal(groups[0]!.labels[`${M}pod_container_port_name`], '');
});

test('label names are sanitized the way Prometheus does', () => {
  assert.equal(sanitizeLabelName('k8s.grafana.com/metrics.portNumber'), 'k8s_grafana_com_metrics_portNumber');
  assert.equal(sanitizeLabelName('app.kubernetes.io/name'), 'app_kubernetes_io_name');
  assert.equal(sanitizeLabelName('prometheus-io/port'), 'prometheus_io_port');
});

const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/);
const container = fc.record({
  name,
  ports: fc.array(
    fc.record({ containerPort: fc.integer({ min: 1, max: 65535 }), name: fc.option(name, { nil: undefined }) }),
    { maxLength: 3 },
  ),
});
const key = fc.stringMatching(/^[a-z0-9]([a-z0-9./-]{0,20}[a-z0-9])?$/);

test('any pod: one target per port, else one per container, every label name valid, init exactly for init containers', () => {
  fc.assert(
    fc.property(
      fc.array(container, { minLength: 1, maxLength: 4 }),
      fc.array(container, { maxLength: 3 }),
      fc.dictionary(key, fc.string()),
      fc.dictionary(key, fc.string()),
      (containers, initContainers, labels, annotations) => {
        const pod = asRunningPod(
          { metadata: { name: 'p', namespace: 'n', labels, annotations }, spec: { containers, initContainers } },
          { podIP: '127.0.0.1' },
        );
        const groups = podTargetGroups(pod);
        const all = [...containers, ...initContainers];
        assert.equal(groups.length, all.reduce((n, c) => n + Math.max(1, c.ports.length), 0));
        let i = 0;
        all.forEach((c, index) => {
          for (let p = 0; p < Math.max(1, c.ports.length); p++, i++) {
            const group = groups[i]!;
            assert.equal(group.targets.length, 1);
            assert.equal(group.labels[`${M}pod_container_name`], c.name);
            assert.equal(group.labels[`${M}pod_container_init`], String(index >= containers.length));
            for (const labelName of Object.keys(group.labels)) assert.match(labelName, /^[a-zA-Z_][a-zA-Z0-9_]*$/);
          }
        });
      },
    ),
    { numRuns: 100 },
  );
});
