// The injection rules, one example each, on the shared fixture pods and small hand-made pods.
// Every injection also goes through checkInjection: the patch applied by fast-json-patch and by
// the real `kubectl patch --local` gives the mutated pod, which passes the schema and PSA checks,
// injects no second time and uninjects back to the input byte for byte.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { STATUS_ANNOTATION } from '../../src/inject/index.ts';
import { parseTargetMap } from '../../src/target-map.ts';
import {
  annotationsOf, config, fixturePod, flagOf, inject, makePod, sidecarOf, skip, statusOf,
} from './support.ts';

describe('fixture pods', () => {
  test('vault-agent pod (Grafana annotations): only the app is scraped, Grafana keeps only the sidecar', (t) => {
    const input = fixturePod('Pod/my-service-7d9c8b6f5-x2l9q');
    const result = inject(t, input);
    assert.deepEqual(result.targets, [{ container: 'my-service', port: 3500, path: '/metrics', scheme: 'http' }]);
    assert.match(result.reason, /scrapes my-service:3500/);
    assert.deepEqual(result.warnings, []);
    const annotations = annotationsOf(result.pod);
    assert.equal(annotations['k8s.grafana.com/metrics.portNumber'], '13434');
    assert.equal(annotations['k8s.grafana.com/metrics.portName'], 'promux-metrics');
    assert.equal(annotations['k8s.grafana.com/metrics.container'], 'promux');
    assert.equal(annotations['k8s.grafana.com/metrics.path'], '/metrics', 'already the sidecar path: untouched');
    assert.equal(annotations['k8s.grafana.com/metrics.scrapeInterval'], '30s', 'other Grafana keys untouched');
    assert.equal(
      annotations[STATUS_ANNOTATION],
      '{"version":"0.1.0","sidecar":"promux","port":13434,"targets":"my-service:3500",' +
        '"original":{"k8s.grafana.com/metrics.portNumber":"3500","k8s.grafana.com/metrics.portName":null,' +
        '"k8s.grafana.com/metrics.container":null}}',
    );
    const containers = (result.pod.spec as { containers: { name: string }[] }).containers.map((c) => c.name);
    assert.deepEqual(containers, ['my-service', 'vault-agent', 'promux']);
  });

  test('OpenFaaS gateway: the explicit promux.io/targets map goes to the sidecar as given', (t) => {
    const result = inject(t, fixturePod('Deployment/gateway'));
    assert.equal(flagOf(result.pod, '--container_to_port_map'), 'gateway:8082,faas-netes:8081');
    assert.equal(annotationsOf(result.pod)['prometheus.io/port'], '13434');
    assert.deepEqual(statusOf(result.pod).original, { 'prometheus.io/port': '8082' });
  });

  test('orders StatefulSet: ports named http-metrics and metrics; the port annotation is added', (t) => {
    const result = inject(t, fixturePod('StatefulSet/orders'));
    assert.equal(flagOf(result.pod, '--container_to_port_map'), 'orders:9090,outbox-relay:9100');
    // Without prometheus.io/port, Prometheus would scrape every declared port: it must point at the sidecar.
    assert.equal(annotationsOf(result.pod)['prometheus.io/port'], '13434');
    assert.deepEqual(statusOf(result.pod).original, { 'prometheus.io/port': null });
  });

  test('log-shipper DaemonSet: dotted spelling kept; the annotated unnamed port and a *-metrics port', (t) => {
    const result = inject(t, fixturePod('DaemonSet/log-shipper'));
    assert.equal(flagOf(result.pod, '--container_to_port_map'), 'fluent-bit:2020,config-reloader:9533');
    const annotations = annotationsOf(result.pod);
    assert.equal(annotations['prometheus.io.port'], '13434');
    assert.equal(annotations['prometheus.io/port'], undefined, 'no second spelling added');
  });

  test('nightly-report CronJob on a cluster of unknown version: skipped, never a regular sidecar that keeps the Job running', () => {
    const result = skip(fixturePod('CronJob/nightly-report'));
    assert.equal(result.skipCode, 'needs-native-sidecar');
    assert.equal(result.reason, 'restartPolicy is OnFailure: a regular sidecar keeps running after the other containers finish, ' +
      'so the pod (and a Job running it) would never complete; promux runs in such pods as a native sidecar, but native ' +
      'sidecars need Kubernetes 1.29 or newer, and the cluster\'s version is unknown: set kubernetesVersion in promux\'s ' +
      'configuration (the webhook asks the API server at start; promux inject takes --kubernetes-version)');
  });

  test('nightly-report CronJob on Kubernetes 1.29 (nativeSidecar auto, the default): an init container that keeps running', (t) => {
    const cfg = config((c) => (c.kubernetesVersion = 'v1.29.4-eks-036c24b'));
    const result = inject(t, fixturePod('CronJob/nightly-report'), cfg);
    const spec = result.pod.spec as { initContainers: { name: string; restartPolicy: string }[]; containers: unknown[] };
    assert.deepEqual(spec.initContainers.map((c) => [c.name, c.restartPolicy]), [['promux', 'Always']]);
    assert.equal(spec.containers.length, 2);
    assert.equal(statusOf(result.pod).createdInitContainers, true);
    assert.deepEqual(result.warnings, []);
  });
});

describe('native sidecar mode', () => {
  const twoContainers = (restartPolicy?: string) =>
    makePod({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8080' }, [{ name: 'app', ports: [8080] }, 'proxy'],
      restartPolicy === undefined ? {} : { restartPolicy });

  test('auto keeps a regular container for restartPolicy Always (the default)', (t) => {
    const cfg = config((c) => (c.sidecar.nativeSidecar = 'auto'));
    const result = inject(t, twoContainers(), cfg);
    assert.equal((result.pod.spec as { initContainers?: unknown }).initContainers, undefined);
  });

  test('always appends to existing init containers after them', (t) => {
    const cfg = config((c) => (c.sidecar.nativeSidecar = 'always'));
    const input = twoContainers();
    (input.spec as { initContainers: unknown[] }).initContainers = [{ name: 'migrate', image: 'example/migrate:1' }];
    const result = inject(t, input, cfg);
    const names = (result.pod.spec as { initContainers: { name: string }[] }).initContainers.map((c) => c.name);
    assert.deepEqual(names, ['migrate', 'promux']);
    assert.equal(statusOf(result.pod).createdInitContainers, undefined);
  });

  test('a native sidecar on a Grafana-scraped pod warns that Grafana drops init containers', (t) => {
    const cfg = config((c) => (c.sidecar.nativeSidecar = 'always'));
    const result = inject(t, fixturePod('Pod/my-service-7d9c8b6f5-x2l9q'), cfg);
    assert.equal(result.warnings.length, 1);
    assert.match(result.warnings[0]!, /Grafana .* drops init containers/);
  });
});

describe('scrape schemes', () => {
  test('every spelling Prometheus sanitizes alike is one key; added keys follow the pod\'s spelling', (t) => {
    const input = makePod(
      { 'prometheus-io/scrape': 'true', 'prometheus.io.path': '/stats', 'other/x': 'y' },
      [{ name: 'app', ports: [['metrics', 9000]] }, 'proxy'],
    );
    const result = inject(t, input);
    const annotations = annotationsOf(result.pod);
    assert.equal(annotations['prometheus-io/port'], '13434');
    assert.equal(annotations['prometheus.io.path'], '/metrics');
    assert.equal(flagOf(result.pod, '--container_to_port_map'), 'app:9000/stats');
    assert.deepEqual(statusOf(result.pod).original, { 'prometheus-io/port': null, 'prometheus.io.path': '/stats' });
  });

  test('two spellings of one key with the same value are both rewritten', (t) => {
    const input = makePod(
      { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8080', 'prometheus.io.port': '8080' },
      [{ name: 'app', ports: [8080] }, 'proxy'],
    );
    const annotations = annotationsOf(inject(t, input).pod);
    assert.equal(annotations['prometheus.io/port'], '13434');
    assert.equal(annotations['prometheus.io.port'], '13434');
  });

  test('path, scheme and param_* go to the annotated container\'s target and leave the annotations', (t) => {
    const input = makePod(
      {
        'prometheus.io/param_module': 'http 2xx',
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': '8443',
        'prometheus.io/path': 'probe',
        'prometheus.io/scheme': 'https',
        'prometheus.io.param_target': 'a,b',
        'team': 'core',
      },
      [{ name: 'api', ports: [['https', 8443]] }, { name: 'worker', ports: [['metrics', 9100]] }],
    );
    const result = inject(t, input);
    assert.deepEqual(result.targets, [
      { container: 'api', port: 8443, path: '/probe?module=http%202xx&target=a%2Cb', scheme: 'https' },
      { container: 'worker', port: 9100, path: '/metrics', scheme: 'http' },
    ]);
    const map = flagOf(result.pod, '--container_to_port_map')!;
    assert.deepEqual(parseTargetMap(map), result.targets, 'the sidecar reads back the same targets');
    assert.deepEqual(annotationsOf(result.pod), {
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': '13434',
      'prometheus.io/path': '/metrics',
      'prometheus.io/scheme': 'http',
      'team': 'core',
      [STATUS_ANNOTATION]: annotationsOf(result.pod)[STATUS_ANNOTATION],
    });
    const status = statusOf(result.pod);
    assert.deepEqual(status.removedAt, { 'prometheus.io/param_module': 0, 'prometheus.io.param_target': 5 });
    assert.equal(status.original['prometheus.io/param_module'], 'http 2xx');
  });

  test('a path annotation is percent-encoded where a request line cannot carry it, as Prometheus requests it', (t) => {
    const input = makePod(
      { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9000', 'prometheus.io/path': '/指标 a,b\u00e9' },
      [{ name: 'a', ports: [['http', 9000]] }, 'b'],
    );
    const result = inject(t, input);
    assert.deepEqual(result.targets, [{ container: 'a', port: 9000, path: '/%E6%8C%87%E6%A0%87%20a%2Cb%C3%A9', scheme: 'http' }]);
    assert.deepEqual(parseTargetMap(flagOf(result.pod, '--container_to_port_map')!), result.targets);
  });

  test('without a port annotation, path and scheme apply to every target (as the scraper did)', (t) => {
    const input = makePod(
      { 'prometheus.io/scrape': 'true', 'prometheus.io/path': '/m' },
      [{ name: 'a', ports: [['metrics', 9000]] }, { name: 'b', ports: [['https-metrics', 9001]] }],
    );
    assert.deepEqual(inject(t, input).targets, [
      { container: 'a', port: 9000, path: '/m', scheme: 'http' },
      { container: 'b', port: 9001, path: '/m', scheme: 'https' },
    ]);
  });

  test('Grafana metrics.portName finds the port by name', (t) => {
    const input = makePod(
      { 'k8s.grafana.com/scrape': 'true', 'k8s.grafana.com/metrics.portName': 'admin' },
      [{ name: 'web', ports: [['http', 8080]] }, { name: 'envoy', ports: [['admin', 9901]] }],
    );
    const result = inject(t, input);
    assert.equal(flagOf(result.pod, '--container_to_port_map'), 'envoy:9901');
    assert.equal(annotationsOf(result.pod)['k8s.grafana.com/metrics.portName'], 'promux-metrics');
    assert.equal(annotationsOf(result.pod)['k8s.grafana.com/metrics.portNumber'], '13434');
  });

  test('a scheme whose scrape annotation is "false" is left alone while another scheme scrapes', (t) => {
    const input = makePod(
      {
        'prometheus.io/scrape': 'false',
        'prometheus.io/port': '8080',
        'k8s.grafana.com/scrape': 'true',
        'k8s.grafana.com/metrics.portNumber': '8080',
      },
      [{ name: 'app', ports: [8080] }, 'proxy'],
    );
    const annotations = annotationsOf(inject(t, input).pod);
    assert.equal(annotations['prometheus.io/port'], '8080');
    assert.equal(annotations['k8s.grafana.com/metrics.portNumber'], '13434');
  });

  test('a configured scheme with other key names (a Grafana remap) is read instead', (t) => {
    const cfg = config((c) => {
      c.schemes = [{ ...c.schemes[1]!, prefix: 'metrics.example.com', keys: { ...c.schemes[1]!.keys, scrape: 'enabled' } }];
    });
    const input = makePod(
      { 'metrics.example.com/enabled': 'true', 'metrics.example.com/metrics.portNumber': '7000', 'prometheus.io/port': '7000' },
      [{ name: 'app', ports: [7000] }, 'proxy'],
    );
    const annotations = annotationsOf(inject(t, input, cfg).pod);
    assert.equal(annotations['metrics.example.com/metrics.portNumber'], '13434');
    assert.equal(annotations['prometheus.io/port'], '7000', 'not a configured scheme: untouched');
  });
});

describe('target derivation', () => {
  test('the annotated port undeclared by any container: kubectl.kubernetes.io/default-container', (t) => {
    const input = makePod(
      { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8082', 'kubectl.kubernetes.io/default-container': 'gateway' },
      ['sidecar', 'gateway'],
    );
    assert.equal(flagOf(inject(t, input).pod, '--container_to_port_map'), 'gateway:8082');
  });

  test('the annotated port undeclared and no default-container: the first container', (t) => {
    const input = makePod({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8082' }, ['gateway', 'faas-netes']);
    assert.equal(flagOf(inject(t, input).pod, '--container_to_port_map'), 'gateway:8082');
  });

  test('a default-container that does not exist warns and falls back to the first container', (t) => {
    const input = makePod(
      { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8082', 'kubectl.kubernetes.io/default-container': 'gone' },
      ['gateway', 'faas-netes'],
    );
    const result = inject(t, input);
    assert.equal(flagOf(result.pod, '--container_to_port_map'), 'gateway:8082');
    assert.match(result.warnings.join('\n'), /"gone", which is not a running container/);
  });

  test('the annotated port declared by the second container goes to that container', (t) => {
    const input = makePod({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9000' }, ['a', { name: 'b', ports: [9000] }]);
    assert.equal(flagOf(inject(t, input).pod, '--container_to_port_map'), 'b:9000');
  });

  test('a container\'s metrics-named port wins over the port annotation for that container (with a warning)', (t) => {
    const input = makePod(
      { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8080' },
      [{ name: 'app', ports: [['http', 8080], ['metrics', 9090], ['admin-metrics', 9091]] }, 'proxy'],
    );
    const result = inject(t, input);
    assert.equal(flagOf(result.pod, '--container_to_port_map'), 'app:9090');
    assert.match(result.warnings.join('\n'), /port admin-metrics \(9091\) is not scraped/);
    assert.match(result.warnings.join('\n'), /port 8080 of container "app", which is scraped on port 9090 instead \(its metrics-named port wins\)/);
  });

  test('configured and annotated exclusions: never scraped, not even through the port annotation', (t) => {
    const input = makePod(
      { 'prometheus.io/scrape': 'true', 'promux.io/exclude': ' audit , ', 'prometheus.io/port': '9102' },
      [
        { name: 'app', ports: [['metrics', 9100]] },
        { name: 'istio-proxy', ports: [['http-envoy-prom', 15090], ['proxy-metrics', 15020]] },
        { name: 'audit', ports: [['metrics', 9101], 9102] },
      ],
    );
    const result = inject(t, input);
    assert.equal(flagOf(result.pod, '--container_to_port_map'), 'app:9100');
    assert.match(result.warnings.join('\n'), /port 9102 of the excluded container "audit"/);
  });

  test('excluded containers named in promux.io/targets are dropped with a warning', (t) => {
    const input = makePod(
      { 'prometheus.io/scrape': 'true', 'promux.io/targets': 'app:8080,vault-agent:8200' },
      [{ name: 'app', ports: [8080] }, 'vault-agent'],
    );
    const result = inject(t, input);
    assert.equal(flagOf(result.pod, '--container_to_port_map'), 'app:8080');
    assert.match(result.warnings.join('\n'), /excluded container "vault-agent"/);
  });

  test('promux.io/targets with https: and a path', (t) => {
    const input = makePod(
      { 'prometheus.io/scrape': 'true', 'promux.io/targets': 'api:https:8443/custom/metrics,worker:9100' },
      ['api', 'worker'],
    );
    assert.deepEqual(inject(t, input).targets, [
      { container: 'api', port: 8443, path: '/custom/metrics', scheme: 'https' },
      { container: 'worker', port: 9100, path: '/metrics', scheme: 'http' },
    ]);
  });

  test('native-sidecar init containers count as running containers and can be targets', (t) => {
    const input = makePod({ 'prometheus.io/scrape': 'true' }, [{ name: 'app', ports: [['metrics', 9000]] }], {
      initContainers: [
        { name: 'proxy', image: 'example/proxy:1', restartPolicy: 'Always', ports: [{ name: 'proxy-metrics', containerPort: 9001 }] },
      ],
    });
    assert.equal(flagOf(inject(t, input).pod, '--container_to_port_map'), 'app:9000,proxy:9001');
  });
});

describe('the sidecar container', () => {
  test('name, image, args in the sidecar\'s flag syntax, Node heap limits, named port, probes, resources', (t) => {
    const cfg = config((c) => {
      c.sidecar.scrapeInterval = '30s';
      c.sidecar.containerLabel = 'source_container';
      c.sidecar.image = 'registry.example.com/promux:test';
    });
    const result = inject(t, fixturePod('Deployment/gateway'), cfg);
    assert.deepEqual(sidecarOf(result.pod), {
      name: 'promux',
      image: 'registry.example.com/promux:test',
      imagePullPolicy: 'IfNotPresent',
      args: [
        'sidecar', '--container_to_port_map', 'gateway:8082,faas-netes:8081', '--export_to', '13434',
        '--container_label', 'source_container', '--scrape_timeout', '10s', '--max_target_bytes', '32MiB',
        '--scrape_interval', '30000',
      ],
      env: [{ name: 'NODE_OPTIONS', value: '--max-old-space-size=48 --max-semi-space-size=1 --expose-gc' }, { name: 'MALLOC_ARENA_MAX', value: '2' },
        { name: 'MALLOC_MMAP_THRESHOLD_', value: '131072' }],
      ports: [{ name: 'promux-metrics', containerPort: 13434, protocol: 'TCP' }],
      resources: { requests: { cpu: '10m', memory: '48Mi' }, limits: { memory: '128Mi' } },
      readinessProbe: { httpGet: { path: '/readyz', port: 'promux-metrics' } },
      livenessProbe: { httpGet: { path: '/healthz', port: 'promux-metrics' } },
      securityContext: {
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        runAsUser: 65532,
        runAsGroup: 65532,
        seccompProfile: { type: 'RuntimeDefault' },
      },
    });
  });

  test('the port moves past ports declared by containers and used by targets', (t) => {
    const input = makePod(
      { 'prometheus.io/scrape': 'true', 'promux.io/targets': 'app:13435,proxy:8080' },
      [{ name: 'app', ports: [13434] }, { name: 'proxy', ports: [['admin', 13436]] }],
    );
    const result = inject(t, input);
    assert.deepEqual(sidecarOf(result.pod).ports, [{ name: 'promux-metrics', containerPort: 13437, protocol: 'TCP' }]);
    assert.equal(flagOf(result.pod, '--export_to'), '13437');
    assert.equal(annotationsOf(result.pod)['prometheus.io/port'], '13437');
    assert.equal(statusOf(result.pod).port, 13437);
    assert.match(result.warnings.join('\n'), /port 13434 is taken in this pod; the sidecar serves on 13437/);
  });

  test('configured name, port, port name and resources without limits', (t) => {
    const cfg = config((c) => {
      c.sidecar.containerName = 'metrics-mux';
      c.sidecar.port = 9999;
      c.sidecar.portName = 'mux';
      c.sidecar.resources = { requests: { cpu: '5m' }, limits: {} };
    });
    const input = makePod(
      { 'k8s.grafana.com/scrape': 'true', 'k8s.grafana.com/metrics.portNumber': '8080' },
      [{ name: 'app', ports: [8080] }, 'proxy'],
    );
    const result = inject(t, input, cfg);
    const sidecar = sidecarOf(result.pod, 'metrics-mux');
    assert.deepEqual(sidecar.resources, { requests: { cpu: '5m' } });
    assert.deepEqual(sidecar.ports, [{ name: 'mux', containerPort: 9999, protocol: 'TCP' }]);
    const annotations = annotationsOf(result.pod);
    assert.equal(annotations['k8s.grafana.com/metrics.container'], 'metrics-mux');
    assert.equal(annotations['k8s.grafana.com/metrics.portName'], 'mux');
    assert.equal(statusOf(result.pod).sidecar, 'metrics-mux');
  });

  test('promux.io/inject "true" injects a single-container pod', (t) => {
    const input = makePod(
      { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8080', 'promux.io/inject': 'true' },
      [{ name: 'app', ports: [8080] }],
    );
    assert.equal(flagOf(inject(t, input).pod, '--container_to_port_map'), 'app:8080');
  });

  test('an unknown promux.io/inject value warns', (t) => {
    const input = makePod(
      { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8080', 'promux.io/inject': 'yes' },
      [{ name: 'app', ports: [8080] }, 'b'],
    );
    assert.match(inject(t, input).warnings.join('\n'), /promux.io\/inject is "yes"/);
  });
});
