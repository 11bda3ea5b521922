// An Istio-merged pod end to end: the pod as Istio's injector leaves it (test/fixtures/manifests/
// istio-pods.yaml, the classic shape), injected by the real `promux inject`, its app played by a
// real prom-client exporter, the real sidecar, and a real Prometheus scraping what pod discovery
// makes of the injected pod. istio-proxy's endpoints are stand-ins on their real ports (this file
// alone binds 15020 and 15090): Envoy's 15090/stats/prometheus, and pilot-agent's
// 15020/stats/prometheus, which, as pilot/cmd/pilot-agent/status/server.go does, serves the agent's
// series and Envoy's, and appends the app's while ISTIO_PROMETHEUS_ANNOTATIONS is set.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import test from 'node:test';
import { FIXTURES, requireTool } from '../helpers/tools.ts';
import { MARKER, startPromClientExporter } from './exporters.ts';
import { asRunningPod, podTargetGroups } from './pod-sd.ts';
import { movePorts, podOf, readManifest } from './pods.ts';
import { freePort } from './processes.ts';
import { prometheusDir, startPrometheus, waitForScrapes } from './prometheus.ts';
import { injectWithCli, sidecarContainer, startSidecar } from './promux.ts';
import { prometheusConfig, promuxRecommended } from './scrape-configs.ts';

type Json = Record<string, unknown>;

const AGENT_PORT = 15020;
const ENVOY_PORT = 15090;
const MERGE_ENV = 'ISTIO_PROMETHEUS_ANNOTATIONS';
const TEXT = 'text/plain; version=0.0.4; charset=utf-8';

const ENVOY_BODY = [
  '# TYPE envoy_server_live gauge', 'envoy_server_live 1',
  '# TYPE istio_requests_total counter',
  'istio_requests_total{response_code="200",source_workload="frontend",destination_workload="payments"} 7',
  `# TYPE ${MARKER} gauge`, `${MARKER}{exporter="envoy"} 1`, '',
].join('\n');
const AGENT_BODY = [
  '# TYPE istio_agent_xds_proxy_requests gauge', 'istio_agent_xds_proxy_requests 3',
  `# TYPE ${MARKER} gauge`, `${MARKER}{exporter="pilot-agent"} 1`, '',
].join('\n');

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
}

async function body(url: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return response.ok ? response.text() : '';
}

/** pilot-agent's merge, as it runs: its own series, Envoy's, then the app's when the env names it. */
function agentStandIn(env: () => string | undefined): Server {
  return createServer((req, res) => {
    void (async () => {
      let text = AGENT_BODY + (await body(`http://127.0.0.1:${ENVOY_PORT}/stats/prometheus`));
      const merge = env();
      if (merge !== undefined) {
        const { port, path } = JSON.parse(merge) as { port: string; path: string };
        text += await body(`http://127.0.0.1:${port}${path}`);
      }
      res.writeHead(req.url === '/stats/prometheus' ? 200 : 404, { 'content-type': TEXT });
      res.end(text);
    })();
  });
}

function istioProxyEnv(pod: Json): string | undefined {
  const spec = pod.spec as { containers: Json[] };
  const proxy = spec.containers.find((c) => c.name === 'istio-proxy')!;
  return ((proxy.env as Json[]).find((e) => e.name === MERGE_ENV)?.value as string | undefined);
}

test('real Prometheus 2.42 scrapes an Istio-merged pod through promux: the app, Envoy and the agent each once, with their true container (stand-ins for istio-proxy on 15020 and 15090; pod discovery: file_sd stand-in)', async (t) => {
  const prometheusBinary = requireTool(t, 'prometheus');
  if (prometheusBinary === undefined) return;
  const cleanups: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  const app = await startPromClientExporter('payments', '/actuator/prometheus');
  cleanups.push(() => app.close());
  const envoy = createServer((req, res) => {
    res.writeHead(req.url === '/stats/prometheus' ? 200 : 404, { 'content-type': TEXT });
    res.end(ENVOY_BODY);
  });
  await listen(envoy, ENVOY_PORT);
  cleanups.push(() => new Promise((resolve) => { envoy.closeAllConnections(); envoy.close(() => resolve()); }));

  const pod = movePorts(podOf(readManifest(join(FIXTURES, 'manifests', 'istio-pods.yaml'))),
    new Map([[8080, app.port], [ENVOY_PORT, ENVOY_PORT], [AGENT_PORT, AGENT_PORT]]));
  const proxyEnv = ((pod.spec as { containers: Json[] }).containers[1]!.env as Json[]).at(-1)!;
  proxyEnv.value = (proxyEnv.value as string).replace('"8080"', `"${app.port}"`);

  let agentEnv = istioProxyEnv(pod);
  const agent = agentStandIn(() => agentEnv);
  await listen(agent, AGENT_PORT);
  cleanups.push(() => new Promise((resolve) => { agent.closeAllConnections(); agent.close(() => resolve()); }));
  const merged = await body(`http://127.0.0.1:${AGENT_PORT}/stats/prometheus`);
  assert.match(merged, /^e2e_exporter_info\{exporter="payments"\} 1$/m, 'before promux, 15020 carries the app\'s series, unlabelled');

  const port = await freePort();
  const injected = await injectWithCli(pod, { sidecar: { port } });
  assert.equal(injected.report.split('\n')[0],
    `Pod shop/payments-7c9f8d6b54-q2x7w: injected (payments:${app.port}/actuator/prometheus, istio-proxy:15020/stats/prometheus)`);
  agentEnv = istioProxyEnv(injected.pod);
  assert.equal(agentEnv, undefined, 'the agent no longer merges the app');
  const sidecar = await startSidecar(sidecarContainer(injected.pod, 'promux'), 'promux-metrics');
  cleanups.push(() => sidecar.child.stop());

  const dir = prometheusDir();
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const configuration = promuxRecommended('promux-metrics');
  const jobName = 'promux/istio';
  const groups = podTargetGroups(asRunningPod(injected.pod, { podIP: '127.0.0.1' }));
  const file = join(dir, 'istio.json');
  writeFileSync(file, JSON.stringify(groups));
  const prometheus = await startPrometheus(prometheusBinary, dir, prometheusConfig([{ jobName, configuration, file }], '2s'));
  cleanups.push(() => prometheus.stop());
  const targets = await waitForScrapes(prometheus, new Map([[jobName, { discovered: groups.length, jobLabel: jobName }]]), 60_000);
  const active = targets.activeTargets.filter((a) => a.scrapePool === jobName);
  assert.deepEqual(active.map((a) => [a.health, a.scrapeUrl]), [['up', `http://127.0.0.1:${port}/metrics`]], 'one target: the sidecar');

  const seriesOf = async (promql: string): Promise<string[]> =>
    (await prometheus.query(promql)).map((s) => `${s.metric.exporter ?? s.metric.__name__}@${s.metric.container}`).sort();
  assert.deepEqual(await seriesOf(`${MARKER}{job="${jobName}"}`), ['envoy@istio-proxy', 'payments@payments', 'pilot-agent@istio-proxy'],
    'each source once, labelled with the container it comes from');
  assert.deepEqual(await seriesOf(`{job="${jobName}",__name__=~"istio_requests_total|envoy_server_live|istio_agent_xds_proxy_requests"}`),
    ['envoy_server_live@istio-proxy', 'istio_agent_xds_proxy_requests@istio-proxy', 'istio_requests_total@istio-proxy']);
  assert.deepEqual(await seriesOf(`http_requests_total{job="${jobName}"}`), ['http_requests_total@payments']);
  const up = await prometheus.query(`promux_target_up{job="${jobName}"}`);
  assert.deepEqual(up.map((s) => `${s.metric.container} ${s.metric.endpoint}=${s.value[1]}`).sort(),
    ['istio-proxy 15020/stats/prometheus=1', `payments ${app.port}/actuator/prometheus=1`]);
  const [duplicates] = await prometheus.query(`count(count by (__name__, container, exporter) ({job="${jobName}",__name__=~"${MARKER}|http_requests_total"}) > 1)`);
  assert.equal(duplicates, undefined, 'no series twice');
});
