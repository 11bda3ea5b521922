// Pods as other injectors and real projects shape them (test/fixtures/manifests, each file says what
// it is shaped after): Istio (classic, CNI, native sidecar, merge off), Linkerd, the original
// multiplexer, kube-rbac-proxy, Jobs. Every injection goes through checkInjection: the patch applied
// by fast-json-patch and the real `kubectl patch --local`, schema and PSA checks, injected once,
// uninjected back to the input byte for byte.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PodObject } from '../../src/inject/index.ts';
import { parseTargetMap } from '../../src/target-map.ts';
import { annotationsOf, config, fixturePod, flagOf, inject, sidecarOf, skip, statusOf } from './support.ts';

type Obj = Record<string, unknown>;

function container(pod: PodObject, name: string): Obj {
  const spec = pod.spec as { containers: Obj[]; initContainers?: Obj[] };
  const found = [...spec.containers, ...(spec.initContainers ?? [])].find((c) => c.name === name);
  assert.ok(found, `no container ${name}`);
  return found;
}

function envNames(pod: PodObject, name: string): string[] {
  return ((container(pod, name).env as Obj[] | undefined) ?? []).map((e) => e.name as string);
}

const MERGE_ENV = 'ISTIO_PROMETHEUS_ANNOTATIONS';

describe('Istio', () => {
  test('classic (istio-init): the app from the merge env, istio-proxy on the agent\'s endpoint, the env removed, 13434 excluded from capture', (t) => {
    const input = fixturePod('Pod/payments-7c9f8d6b54-q2x7w');
    const result = inject(t, input);
    assert.equal(flagOf(result.pod, '--container_to_port_map'), 'payments:8080/actuator/prometheus,istio-proxy:15020/stats/prometheus');
    assert.equal(result.reason, 'injected: the sidecar serves port 13434 and scrapes payments:8080/actuator/prometheus, istio-proxy:15020/stats/prometheus');
    assert.deepEqual(result.warnings, []);
    assert.ok(envNames(input, 'istio-proxy').includes(MERGE_ENV));
    assert.deepEqual(envNames(result.pod, 'istio-proxy'), ['PILOT_CERT_PROVIDER', 'CA_ADDR', 'POD_NAME', 'ISTIO_META_APP_CONTAINERS'],
      'the agent no longer merges the app\'s metrics into 15020: promux scrapes them, once');
    const annotations = annotationsOf(result.pod);
    assert.equal(annotations['prometheus.io/port'], '13434');
    assert.equal(annotations['prometheus.io/path'], '/metrics');
    assert.equal(annotations['traffic.sidecar.istio.io/excludeInboundPorts'], '13434');
    const args = container(result.pod, 'istio-init').args as string[];
    assert.equal(args[args.indexOf('-d') + 1], '15090,15021,15020,13434');
    const status = statusOf(result.pod);
    assert.deepEqual(status.removedEnv, {
      container: 'istio-proxy', index: 4,
      entry: { name: MERGE_ENV, value: '{"scrape":"true","path":"/actuator/prometheus","port":"8080"}' },
    });
    assert.deepEqual(status.original['traffic.sidecar.istio.io/excludeInboundPorts'], null);
    assert.equal(status.originalArgs!['istio-init']!.at(-2), '15090,15021,15020');
  });

  test('CNI (istio-validation): the env\'s targets list, the pod\'s own exclusion kept, no iptables args touched', (t) => {
    const input = fixturePod('Pod/catalog-6b8d9f7c5-m4k2p');
    const result = inject(t, input);
    assert.deepEqual(result.targets, [
      { container: 'catalog', port: 8080, path: '/metrics', scheme: 'http' },
      { container: 'jmx-exporter', port: 9404, path: '/metrics', scheme: 'http' },
      { container: 'istio-proxy', port: 15020, path: '/stats/prometheus', scheme: 'http' },
    ]);
    assert.equal(annotationsOf(result.pod)['traffic.sidecar.istio.io/excludeInboundPorts'], '9443,13434');
    assert.equal(statusOf(result.pod).original['traffic.sidecar.istio.io/excludeInboundPorts'], '9443');
    assert.deepEqual(container(result.pod, 'istio-validation'), container(input, 'istio-validation'));
    assert.equal(statusOf(result.pod).originalArgs, undefined);
    assert.deepEqual(envNames(result.pod, 'istio-proxy'), ['ISTIO_META_APP_CONTAINERS']);
  });

  test('native sidecar: istio-proxy in initContainers is found, the app\'s *-metrics port is the merged one', (t) => {
    const result = inject(t, fixturePod('Pod/checkout-5d7b9c8f6-h8j3n'));
    assert.equal(flagOf(result.pod, '--container_to_port_map'), 'checkout:9090,outbox-relay:9100,istio-proxy:15020/stats/prometheus');
    assert.deepEqual(envNames(result.pod, 'istio-proxy'), ['ISTIO_META_APP_CONTAINERS']);
    assert.equal(statusOf(result.pod).removedEnv!.index, 0);
    assert.equal(container(result.pod, 'istio-proxy').restartPolicy, 'Always');
    const spec = result.pod.spec as { containers: Obj[] };
    assert.equal(spec.containers.at(-1)!.name, 'promux', 'a regular container: the pod\'s restartPolicy is Always');
  });

  test('merge off (annotations point at the app): istio-proxy stays out and nothing of Istio\'s changes', (t) => {
    const input = fixturePod('Pod/search-84c6d5b7f9-t6r1z');
    const result = inject(t, input);
    assert.equal(flagOf(result.pod, '--container_to_port_map'), 'search:8080');
    assert.equal(annotationsOf(result.pod)['traffic.sidecar.istio.io/excludeInboundPorts'], undefined);
    assert.deepEqual(container(result.pod, 'istio-init'), container(input, 'istio-init'));
    assert.deepEqual(container(result.pod, 'istio-proxy'), container(input, 'istio-proxy'));
  });

  test('scrape "false" in the env: only istio-proxy, whose endpoint no longer merges anything', (t) => {
    const input = structuredClone(fixturePod('Pod/payments-7c9f8d6b54-q2x7w'));
    const env = container(input, 'istio-proxy').env as Obj[];
    env.at(-1)!.value = '{"scrape":"false","path":"","port":""}';
    assert.equal(flagOf(inject(t, input).pod, '--container_to_port_map'), 'istio-proxy:15020/stats/prometheus');
  });

  test('an empty port in the env is pilot-agent\'s 80; an env that is not JSON is a pod pilot-agent would not start', (t) => {
    const input = structuredClone(fixturePod('Pod/payments-7c9f8d6b54-q2x7w'));
    const env = container(input, 'istio-proxy').env as Obj[];
    env.at(-1)!.value = '{"scrape":"true","path":"","port":""}';
    assert.equal(flagOf(inject(t, input).pod, '--container_to_port_map'), 'payments:80,istio-proxy:15020/stats/prometheus');
    env.at(-1)!.value = '{scrape';
    const broken = skip(input);
    assert.equal(broken.skipCode, 'invalid-pod');
    assert.equal(broken.reason, 'not a valid Pod: container istio-proxy: env ISTIO_PROMETHEUS_ANNOTATIONS is not a JSON object (pilot-agent would not start)');
  });
});

describe('Linkerd', () => {
  test('linkerd-proxy (first container, admin port 4191) stays out; the annotated app port is the target', (t) => {
    const input = fixturePod('Pod/web-7d8b5c9f64-zx9vq');
    const result = inject(t, input);
    assert.equal(flagOf(result.pod, '--container_to_port_map'), 'web-svc:8801');
    assert.deepEqual(result.warnings, []);
    assert.deepEqual(container(result.pod, 'linkerd-init'), container(input, 'linkerd-init'));
    assert.deepEqual(container(result.pod, 'linkerd-proxy'), container(input, 'linkerd-proxy'));
  });
});

describe('the original multiplexer', () => {
  test('long flags in command: replaced, its map adopted, its port and port name kept, restored whole by uninject', (t) => {
    const input = fixturePod('Deployment/ledger');
    const result = inject(t, input);
    assert.equal(result.reason, 'injected: the sidecar serves port 13434 and scrapes ledger:8080, reconciler:8081 ' +
      '(replacing the original multiplexer "prom-multiplexer-sidecar")');
    const names = (result.pod.spec as { containers: Obj[] }).containers.map((c) => c.name);
    assert.deepEqual(names, ['ledger', 'reconciler', 'promux'], 'nothing scraped twice: the old sidecar is gone');
    assert.deepEqual(sidecarOf(result.pod).ports, [{ name: 'mux-metrics', containerPort: 13434, protocol: 'TCP' }]);
    assert.deepEqual(sidecarOf(result.pod).readinessProbe, { httpGet: { path: '/readyz', port: 'mux-metrics' } });
    const removed = statusOf(result.pod).removedContainer!;
    assert.equal(removed.field, 'containers');
    assert.equal(removed.index, 2);
    assert.deepEqual(removed.container, container(input, 'prom-multiplexer-sidecar'));
    assert.deepEqual(result.warnings, []);
  });

  test('short flags in args (-m twice and attached, -p, -e, -n, -x): path, port, name and label adopted, -x applied', (t) => {
    const result = inject(t, fixturePod('StatefulSet/matcher'));
    assert.deepEqual(parseTargetMap(flagOf(result.pod, '--container_to_port_map')!), [
      { container: 'engine', port: 9000, path: '/prom', scheme: 'http' },
      { container: 'gateway', port: 9001, path: '/prom', scheme: 'http' },
    ]);
    assert.equal(flagOf(result.pod, '--endpoint'), '/prom');
    assert.equal(flagOf(result.pod, '--export_to'), '9999');
    assert.equal(flagOf(result.pod, '--container_label'), 'source_container');
    assert.deepEqual(sidecarOf(result.pod).ports, [{ name: 'prom', containerPort: 9999, protocol: 'TCP' }]);
    assert.equal(annotationsOf(result.pod)['prometheus.io/path'], '/prom', 'already the path promux serves');
    assert.deepEqual(result.warnings, [
      'the original multiplexer\'s -x excludes "audit", which it scraped all the same (it never applied -x); promux does not scrape it',
    ]);
  });

  test('its port taken by a target: promux moves, says so; its port name taken by another container: promux\'s own', (t) => {
    const input = structuredClone(fixturePod('Deployment/ledger'));
    const mux = container(input, 'prom-multiplexer-sidecar');
    (mux.command as string[]).push('--container_to_port_map=cache:13434');
    (input.spec as { containers: Obj[] }).containers.push({ name: 'cache', image: 'example/cache:1', ports: [{ name: 'mux-metrics', containerPort: 6379 }] });
    const result = inject(t, input);
    assert.deepEqual(sidecarOf(result.pod).ports, [{ name: 'promux-metrics', containerPort: 13435, protocol: 'TCP' }]);
    assert.match(result.warnings.join('\n'), /the original multiplexer's port 13434 is used by a target or another container; the sidecar serves on 13435/);
  });

  test('recognised by its image but with flags promux cannot read: skipped, saying what to do', () => {
    const input = structuredClone(fixturePod('Deployment/ledger'));
    container(input, 'prom-multiplexer-sidecar').command = ['/metrics-multiplexer-sidecar', '--container_to_port_map=ledger'];
    const result = skip(input);
    assert.equal(result.skipCode, 'no-target');
    assert.match(result.reason, /^container "prom-multiplexer-sidecar" runs the original multiplexer sidecar, but its -m\/--container_to_port_map flags could not be read \("ledger"\).*name the targets in promux.io\/targets$/);
  });
});

describe('kube-rbac-proxy', () => {
  test('by image (kube-prometheus\'s kube-state-metrics): skipped, the metrics are authenticated', () => {
    const result = skip(fixturePod('Deployment/kube-state-metrics'));
    assert.equal(result.skipCode, 'authenticated-metrics');
    assert.equal(result.reason, 'the metrics at kube-rbac-proxy-main:https:8443 are behind kube-rbac-proxy (container "kube-rbac-proxy-main"): ' +
      'they are authenticated, and promux would serve them without authentication to anyone who reaches its port; ' +
      'to inject anyway, name the targets in promux.io/targets');
  });

  test('by its flags under another image: the upstream port is behind it too', () => {
    const result = skip(fixturePod('Deployment/widget-operator'));
    assert.equal(result.skipCode, 'authenticated-metrics');
    assert.match(result.reason, /^the metrics at manager:8080 are behind kube-rbac-proxy \(container "auth-proxy"\)/);
  });

  test('an explicit map is the user\'s call: injected, with a warning; two endpoints of one container', (t) => {
    const result = inject(t, fixturePod('Deployment/kube-state-metrics-open'));
    assert.equal(flagOf(result.pod, '--container_to_port_map'), 'kube-state-metrics:8081,kube-state-metrics:8082');
    assert.deepEqual(result.warnings, [
      'the metrics at kube-state-metrics:8081 are behind kube-rbac-proxy (container "kube-rbac-proxy-main"): ' +
        'promux serves them without authentication on port 13434, as promux.io/targets asks',
    ]);
  });
});

describe('Jobs and CronJobs', () => {
  const version = (v: string) => config((c) => (c.kubernetesVersion = v));

  test('Kubernetes 1.29+: a native sidecar (restartPolicy Always in initContainers), so the Job completes', (t) => {
    for (const key of ['Job/db-migrate', 'CronJob/invoice-run']) {
      const result = inject(t, fixturePod(key), version('v1.31.2'));
      const spec = result.pod.spec as { initContainers: Obj[]; containers: Obj[] };
      assert.deepEqual(spec.initContainers.map((c) => [c.name, c.restartPolicy]), [['promux', 'Always']], key);
      assert.ok(!spec.containers.some((c) => c.name === 'promux'), key);
    }
    assert.equal(flagOf(inject(t, fixturePod('Job/db-migrate'), version('1.29')).pod, '--container_to_port_map'), 'migrate:9091,cloud-sql-proxy:9801');
  });

  test('before 1.29, or of unknown version: skipped with the reason; never a regular sidecar', () => {
    const old = skip(fixturePod('Job/db-migrate'), version('v1.28.9'));
    assert.equal(old.skipCode, 'needs-native-sidecar');
    assert.match(old.reason, /^restartPolicy is Never: .* would never complete; promux runs in such pods as a native sidecar, but native sidecars need Kubernetes 1.29 or newer, and the cluster runs v1.28.9$/);
    assert.equal(skip(fixturePod('CronJob/invoice-run')).skipCode, 'needs-native-sidecar');
    const never = skip(fixturePod('Job/db-migrate'), config((c) => { c.sidecar.nativeSidecar = 'never'; c.kubernetesVersion = '1.33'; }));
    assert.match(never.reason, /promux runs in such pods as a native sidecar only with sidecar.nativeSidecar "auto" \(Kubernetes 1.29\+\), and it is "never"$/);
  });

  test('nativeSidecar "always" on a cluster known to be older than 1.29: skipped (the pod would never leave Init)', () => {
    const cfg = config((c) => { c.sidecar.nativeSidecar = 'always'; c.kubernetesVersion = '1.27'; });
    const result = skip(fixturePod('Deployment/ledger'), cfg);
    assert.equal(result.skipCode, 'needs-native-sidecar');
    assert.match(result.reason, /^sidecar.nativeSidecar is "always", but native sidecars need Kubernetes 1.29 or newer, and the cluster runs 1.27/);
  });
});
