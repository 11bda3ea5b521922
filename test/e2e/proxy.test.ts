// A real Prometheus 2.42 scrapes the real `promux proxy` (a child process, as the image runs it) with
// a static target, as a scraper without Kubernetes discovery does; the proxy finds 50 pods through
// a stand-in for the API server (none runs here: test/proxy/stand-in.ts) in two namespaces. The pods
// are real exporters on 127.0.0.1: prom-client services, the real node_exporter, an injected pod
// whose real `promux sidecar` fronts two containers; one pod hangs, one is down.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { REPO_ROOT, requireTool } from '../helpers/tools.ts';
import { PodsStandIn } from '../proxy/stand-in.ts';
import { MARKER, startNodeExporter, startPromClientExporter, type Exporter } from './exporters.ts';
import { freePort, startChild, waitForHttp, type Child } from './processes.ts';
import { prometheusDir, startPrometheus, type PrometheusServer } from './prometheus.ts';

const PROMUX = join(REPO_ROOT, 'bin', 'promux.js');
const PODS = 50;
const WEB = { app: 'web' };

function scrapeOn(port: number): Record<string, string> {
  return { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(port) };
}

/** Polls a PromQL query (bounded) until `check` accepts its result. */
async function queryUntil(prometheus: PrometheusServer, promql: string, check: (n: number) => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const result = await prometheus.query(promql);
    const value = result.length === 0 ? Number.NaN : Number(result[0]!.value[1]);
    if (check(value)) return;
    last = JSON.stringify(result);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${promql}: ${last}\n${prometheus.output()}`);
}

test('real Prometheus 2.42 scrapes promux proxy in front of 50 pods (stand-in API): each pod\'s series once, labelled; up per pod; a hanging and a down pod cost nothing else', async (t) => {
  const prometheusBinary = requireTool(t, 'prometheus');
  const nodeExporterBinary = requireTool(t, 'prometheus-node-exporter');
  if (prometheusBinary === undefined || nodeExporterBinary === undefined) return;
  const cleanups: Array<() => Promise<unknown> | void> = [];
  t.after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });
  const dir = mkdtempSync(join(tmpdir(), 'promux-e2e-proxy-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));

  const api = await new PodsStandIn().start();
  cleanups.push(() => api.close());
  const exporters: Exporter[] = [];
  const exporter = async (start: Promise<Exporter>): Promise<Exporter> => {
    const e = await start;
    cleanups.push(() => e.close());
    exporters.push(e);
    return e;
  };

  // 46 prom-client services and the real node_exporter, over two namespaces.
  for (let i = 0; i < 46; i++) {
    const e = await exporter(startPromClientExporter(`web-${i}`));
    api.put(i % 2 === 0 ? 'shop' : 'pay', e.container, { ip: '127.0.0.1', labels: WEB, annotations: scrapeOn(e.port) });
  }
  const node = await exporter(startNodeExporter(nodeExporterBinary, 'node-0'));
  api.put('shop', 'node-0', { ip: '127.0.0.1', labels: WEB, annotations: scrapeOn(node.port) });

  // An injected pod: its sidecar (the real one) scrapes its two containers; the proxy scrapes the sidecar.
  const app = await exporter(startPromClientExporter('app'));
  const worker = await exporter(startPromClientExporter('worker'));
  const sidecarPort = await freePort();
  const sidecar: Child = startChild('promux sidecar', process.execPath, [
    PROMUX, 'sidecar', '-m', `app:${app.port},worker:${worker.port}`, '-e', String(sidecarPort), '--listen_address', '127.0.0.1',
  ]);
  cleanups.push(() => sidecar.stop());
  await waitForHttp(`http://127.0.0.1:${sidecarPort}/readyz`, 20_000, sidecar);
  const status = JSON.stringify({ version: '0.1.0', sidecar: 'promux', port: sidecarPort, targets: `app:${app.port},worker:${worker.port}`, original: {} });
  api.put('shop', 'injected-0', {
    ip: '127.0.0.1', labels: WEB, annotations: { ...scrapeOn(sidecarPort), 'promux.io/status': status },
    containers: [{ name: 'app' }, { name: 'worker' }, { name: 'promux' }],
  });

  // One pod hangs (accepts, never answers); one is down (nothing listens).
  const hanging = http.createServer(() => undefined);
  await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => {
    hanging.closeAllConnections();
    hanging.close(() => resolve());
  }));
  api.put('pay', 'hanging-0', { ip: '127.0.0.1', labels: WEB, annotations: scrapeOn((hanging.address() as AddressInfo).port) });
  api.put('pay', 'down-0', { ip: '127.0.0.1', labels: WEB, annotations: scrapeOn(await freePort()) });
  assert.equal(api.pods.size, PODS);
  // Not selected, or not asking to be scraped: never scraped.
  api.put('shop', 'db-0', { ip: '127.0.0.1', labels: { app: 'db' }, annotations: scrapeOn(node.port) });
  api.put('shop', 'quiet-0', { ip: '127.0.0.1', labels: WEB });

  const kubeconfig = join(dir, 'kubeconfig');
  api.writeKubeConfig(kubeconfig);
  const proxyPort = await freePort();
  const proxy = startChild('promux proxy', process.execPath, [
    PROMUX, 'proxy', '--kubeconfig', kubeconfig, '-l', 'app=web', '-n', 'shop,pay', '--port', String(proxyPort), '--listen_address', '127.0.0.1',
  ]);
  cleanups.push(() => proxy.stop());
  await waitForHttp(`http://127.0.0.1:${proxyPort}/readyz`, 20_000, proxy);

  const prometheus = await startPrometheus(prometheusBinary, prometheusDir(), [
    'global:',
    '  scrape_interval: 2s',
    '  scrape_timeout: 2s',
    'scrape_configs:',
    '  - job_name: proxy',
    '    static_configs:',
    `      - targets: ['127.0.0.1:${proxyPort}']`,
  ].join('\n'));
  cleanups.push(() => prometheus.stop());

  // Two scrapes stored: the counts below are of one scrape's worth of series.
  await queryUntil(prometheus, 'count(count_over_time(up{job="proxy"}[1m]) >= 2) or vector(0)', (n) => n === 1);
  const target = (await prometheus.targets()).activeTargets.find((x) => x.scrapePool === 'proxy')!;
  assert.equal(target.health, 'up', `${target.lastError}\n${proxy.output()}`);
  assert.equal(Number((await prometheus.query('up{job="proxy"}'))[0]!.value[1]), 1, 'the hanging pod did not make the scrape fail');
  const duration = Number((await prometheus.query('scrape_duration_seconds{job="proxy"}'))[0]!.value[1]);
  assert.ok(duration < 2, `the scrape took ${duration} s, within Prometheus' timeout`);

  // Up per pod: 48 up, the hanging one and the down one down; nothing of the pods not selected or not asking.
  const ups = await prometheus.query('promux_target_up{job="proxy"}');
  const upByPod = new Map(ups.filter((s) => s.metric.container === undefined).map((s) => [`${s.metric.namespace}/${s.metric.pod}`, Number(s.value[1])]));
  assert.equal(upByPod.size, PODS, [...upByPod.keys()].join(' '));
  assert.deepEqual([...upByPod].filter(([, v]) => v === 0).map(([k]) => k).sort(), ['pay/down-0', 'pay/hanging-0']);
  assert.ok(!upByPod.has('shop/db-0') && !upByPod.has('shop/quiet-0'));

  // Each exporter's marker once, on the pod that serves it (the injected pod's two containers keep
  // the container label their sidecar gave them).
  const markers = await prometheus.query(`${MARKER}{job="proxy"}`);
  const seen = markers.map((s) => `${s.metric.pod}|${s.metric.container ?? ''}|${s.metric.exporter}`).sort();
  const expected = exporters.map((e) => (e.container === 'app' || e.container === 'worker'
    ? `injected-0|${e.container}|${e.container}` : `${e.container}||${e.container}`)).sort();
  assert.deepEqual(seen, expected);
  for (const s of markers) assert.equal(s.metric.namespace, s.metric.pod === 'injected-0' || s.metric.pod === 'node-0' || Number(s.metric.pod?.split('-')[1]) % 2 === 0 ? 'shop' : 'pay');
  // The pods' own series, each pod's once: prom-client's counter of each service, node_exporter's load.
  await queryUntil(prometheus, 'count(count by (namespace, pod, container) (http_requests_total{job="proxy"}))', (n) => n === 48);
  await queryUntil(prometheus, 'max(count by (namespace, pod, container, code, method) (http_requests_total{job="proxy"}))', (n) => n === 1);
  await queryUntil(prometheus, 'count(node_load1{job="proxy",pod="node-0",namespace="shop"})', (n) => n === 1);
  // The sidecar's own promux_target_up joined the proxy's family, labelled with its pod.
  await queryUntil(prometheus, 'count(promux_target_up{job="proxy",pod="injected-0",container!=""} == 1)', (n) => n === 2);
  // No sample Prometheus had to drop.
  const appended = await prometheus.query('scrape_samples_post_metric_relabeling{job="proxy"}');
  const scraped = await prometheus.query('scrape_samples_scraped{job="proxy"}');
  assert.equal(appended[0]!.value[1], scraped[0]!.value[1]);
  assert.deepEqual(api.problems, []);
});
