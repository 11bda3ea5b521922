import assert from 'node:assert/strict';
import { test } from 'node:test';
import { podTargets, type LabelNames, type PodScrape } from '../../src/proxy/targets.ts';

const NAMES: LabelNames = { namespace: 'namespace', pod: 'pod', container: 'container' };

function pod(annotations: Record<string, string>, more: { ip?: string; phase?: string; containers?: unknown[] } = {}): unknown {
  return {
    metadata: { name: 'web-1', namespace: 'shop', annotations },
    spec: { containers: more.containers ?? [{ name: 'app', ports: [{ name: 'http', containerPort: 8080 }] }] },
    status: { phase: more.phase ?? 'Running', podIP: more.ip ?? '10.1.2.3' },
  };
}

/** The targets as host:port/path (scheme) [labels], or the reason. */
function show(scrape: PodScrape): string[] | string {
  if (!scrape.scraped) return scrape.reason;
  return scrape.targets.map((t) => `${t.scheme}://${t.host}:${t.port}${t.path} ${t.labels.map(([n, v]) => `${n}=${v}`).join(',')}`);
}

const POD_LABELS = 'namespace=shop,pod=web-1';

test('prometheus.io annotations: port, path, scheme and param_* of the one target; no container label', () => {
  assert.deepEqual(show(podTargets(pod({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9102' }), NAMES)),
    [`http://10.1.2.3:9102/metrics ${POD_LABELS}`]);
  assert.deepEqual(show(podTargets(pod({
    'prometheus.io/scrape': 'true', 'prometheus.io/port': '8443', 'prometheus.io/path': 'stats', 'prometheus.io/scheme': 'https',
    'prometheus.io/param_format': 'prometheus',
  }), NAMES)), [`https://10.1.2.3:8443/stats?format=prometheus ${POD_LABELS}`]);
  // Every spelling Prometheus sanitizes alike.
  assert.deepEqual(show(podTargets(pod({ 'prometheus.io.scrape': 'true', 'prometheus-io/port': '9102' }), NAMES)),
    [`http://10.1.2.3:9102/metrics ${POD_LABELS}`]);
});

test('Grafana annotations: metrics.portName through the containers\' ports', () => {
  const containers = [{ name: 'app', ports: [{ name: 'prom', containerPort: 9400 }] }];
  assert.deepEqual(show(podTargets(pod({ 'k8s.grafana.com/scrape': 'true', 'k8s.grafana.com/metrics.portName': 'prom' }, { containers }), NAMES)),
    [`http://10.1.2.3:9400/metrics ${POD_LABELS}`]);
});

test('no port annotated: the first metrics-named port, else 80 (as the original proxy and Prometheus)', () => {
  const containers = [{ name: 'app', ports: [{ name: 'http', containerPort: 8080 }] }, { name: 'exp', ports: [{ name: 'https-metrics', containerPort: 9443 }] }];
  assert.deepEqual(show(podTargets(pod({ 'prometheus.io/scrape': 'true' }, { containers }), NAMES)), [`https://10.1.2.3:9443/metrics ${POD_LABELS}`]);
  assert.deepEqual(show(podTargets(pod({ 'prometheus.io/scrape': 'true', 'prometheus.io/path': '/m' }), NAMES)), [`http://10.1.2.3:80/m ${POD_LABELS}`]);
});

test('two schemes naming two ports: scraped once, on the first, with a warning', () => {
  const scrape = podTargets(pod({
    'prometheus.io/scrape': 'true', 'prometheus.io/port': '9102', 'k8s.grafana.com/scrape': 'true', 'k8s.grafana.com/metrics.portNumber': '9103',
  }), NAMES);
  assert.deepEqual(show(scrape), [`http://10.1.2.3:9102/metrics ${POD_LABELS}`]);
  assert.ok(scrape.scraped && /9103, not scraped/.test(scrape.warnings.join()));
});

test('an injected pod: its sidecar\'s port only, once, whatever its map names (the sidecar\'s series carry their container)', () => {
  const status = JSON.stringify({ version: '0.1.0', sidecar: 'promux', port: 13435, targets: 'app:8080,worker:9000', original: {} });
  assert.deepEqual(show(podTargets(pod({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '13435', 'promux.io/status': status }), NAMES)),
    [`http://10.1.2.3:13435/metrics ${POD_LABELS}`]);
  const broken = podTargets(pod({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '13434', 'promux.io/status': 'nope' }), NAMES);
  assert.deepEqual(show(broken), [`http://10.1.2.3:13434/metrics ${POD_LABELS}`]);
  assert.ok(broken.scraped && /not promux's status/.test(broken.warnings.join()));
});

test('promux.io/targets on a pod not injected: each entry on the pod\'s IP, labelled with its container; promux.io/exclude honoured', () => {
  const containers = [{ name: 'gateway' }, { name: 'provider' }, { name: 'vault-agent' }];
  const annotations = { 'prometheus.io/scrape': 'true', 'promux.io/targets': 'gateway:8082,provider:https:8081/m,vault-agent:8200', 'promux.io/exclude': 'vault-agent' };
  assert.deepEqual(show(podTargets(pod(annotations, { containers, ip: 'fd00::7' }), { namespace: 'k8s_namespace', pod: 'k8s_pod_name', container: 'ctr' })), [
    'http://fd00::7:8082/metrics k8s_namespace=shop,k8s_pod_name=web-1,ctr=gateway',
    'https://fd00::7:8081/m k8s_namespace=shop,k8s_pod_name=web-1,ctr=provider',
  ]);
  assert.match(show(podTargets(pod({ ...annotations, 'promux.io/targets': 'ghost:1' }, { containers }), NAMES)) as string,
    /promux.io\/targets names container "ghost", which is not a running container/);
  assert.match(show(podTargets(pod({ ...annotations, 'promux.io/targets': 'gateway:http' }, { containers }), NAMES)) as string,
    /annotation promux.io\/targets: .*not a port number/);
});

test('not scraped, with the reason: not running, no IP, no scrape annotation, scrape not "true", an unusable annotation', () => {
  const asks = { 'prometheus.io/scrape': 'true' };
  assert.equal(show(podTargets(pod(asks, { phase: 'Pending' }), NAMES)), 'phase is Pending, not Running');
  assert.equal(show(podTargets(pod(asks, { phase: 'Succeeded' }), NAMES)), 'phase is Succeeded, not Running');
  assert.equal(show(podTargets(pod(asks, { ip: '' }), NAMES)), 'no pod IP yet');
  assert.match(show(podTargets(pod({}), NAMES)) as string, /^no scrape annotation/);
  assert.equal(show(podTargets(pod({ 'prometheus.io/scrape': 'false' }), NAMES)), 'prometheus.io/scrape is "false", not "true"');
  assert.match(show(podTargets(pod({ ...asks, 'prometheus.io/port': 'http' }), NAMES)) as string, /annotation prometheus.io\/port is "http", not a port number/);
  assert.match(show(podTargets(pod({ ...asks, 'prometheus.io/scheme': 'ftp' }), NAMES)) as string, /not http or https/);
  assert.match(show(podTargets({ metadata: {} }, NAMES)) as string, /not a pod/);
});
