// Integration: the sidecar (child process) in front of real exporters (node_exporter, a prom-client
// app, a Python OpenMetrics app) and the shared fixture bodies, scraped by a real Prometheus 2.42.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { test, type TestContext } from 'node:test';
import { requireTool } from '../helpers/tools.ts';
import { PROMETHEUS_ACCEPT, INJECTED_NODE_FLAGS, closedPort, fixture, get, OM_TYPE, samples, startServer, startSidecar, staticBody } from './helpers.ts';

/** Spawns a long-running process, killed when the test ends. */
function run(t: TestContext, command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  child.on('exit', (code, signal) => {
    if (signal !== 'SIGKILL' && signal !== 'SIGTERM') t.diagnostic(`${command} exited ${code}: ${stderr}`);
  });
  return child;
}

/** An app that prints its port as the first line of stdout. */
async function portOf(child: ChildProcess): Promise<number> {
  const lines = createInterface({ input: child.stdout! });
  for await (const line of lines) return Number(line);
  throw new Error('the app exited before printing its port');
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, explain = async () => ''): Promise<T> {
  for (let i = 0; i < 120; i++) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await sleep(250);
  }
  throw new Error(`gave up waiting for ${what} ${await explain().catch(String)}`);
}

/** A Prometheus scraping 127.0.0.1:<port> every second for each job; resolves with its web port. */
async function startPrometheus(t: TestContext, prometheus: string, jobs: Record<string, number>): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'promux-prometheus-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'prometheus.yml'), [
    'global: { scrape_interval: 1s, scrape_timeout: 1s }',
    'scrape_configs:',
    ...Object.entries(jobs).map(([job, port]) => `  - { job_name: ${job}, static_configs: [{ targets: ['127.0.0.1:${port}'] }] }`),
  ].join('\n'));
  const webPort = await closedPort();
  run(t, prometheus, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${webPort}`, '--log.level=warn']);
  return webPort;
}

interface Vector {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(prometheusPort: number, promql: string): Promise<Vector[]> {
  const r = await get(prometheusPort, `/api/v1/query?query=${encodeURIComponent(promql)}`);
  const parsed = JSON.parse(r.body) as { status: string; data: { result: Vector[] } };
  assert.equal(parsed.status, 'success', r.body);
  return parsed.data.result;
}

test('a real Prometheus scrapes node_exporter, prom-client, Python OpenMetrics and fixtures through the sidecar', async (t) => {
  const prometheus = requireTool(t, 'prometheus');
  const nodeExporter = requireTool(t, 'prometheus-node-exporter');
  const python = requireTool(t, 'python3');
  if (prometheus === undefined || nodeExporter === undefined || python === undefined) return;

  const nodePort = await closedPort();
  run(t, nodeExporter, [`--web.listen-address=127.0.0.1:${nodePort}`, '--collector.disable-defaults',
    '--collector.loadavg', '--collector.meminfo', '--collector.cpu']);
  const appPort = await portOf(run(t, process.execPath, [join(import.meta.dirname, 'apps', 'prom-client-app.ts')]));
  const workerPort = await portOf(run(t, python, [join(import.meta.dirname, 'apps', 'openmetrics_app.py')]));
  const fixtures = {
    'fixture-node': await startServer(staticBody(fixture('node-exporter.prom'))),
    'fixture-app': await startServer(staticBody(fixture('prom-client-app.prom'))),
    'fixture-worker': await startServer(staticBody(fixture('python-worker.om'), OM_TYPE)),
  };
  t.after(() => Promise.all(Object.values(fixtures).map((s) => s.close())));
  await waitFor('node_exporter', async () => ((await get(nodePort, '/metrics')).status === 200 ? true : undefined));

  const containers = ['node', 'app', 'worker', ...Object.keys(fixtures)];
  const map = [`node:${nodePort}`, `app:${appPort}`, `worker:${workerPort}`,
    ...Object.entries(fixtures).map(([name, s]) => `${name}:${s.port}`)];
  const sidecar = await startSidecar(['-m', map.join(',')], { nodeArgs: INJECTED_NODE_FLAGS });
  t.after(() => sidecar.stop());

  const webPort = await startPrometheus(t, prometheus, { promux: sidecar.port });

  const up = await waitFor('promux_target_up of every container', async () => {
    const result = await query(webPort, 'promux_target_up{job="promux"}');
    return result.length === containers.length ? result : undefined;
  }, async () => (await get(webPort, '/api/v1/targets')).body);
  assert.deepEqual(
    Object.fromEntries(up.map((v) => [v.metric.container, v.value[1]])),
    Object.fromEntries(containers.map((c) => [c, '1'])),
  );

  const targets = JSON.parse((await get(webPort, '/api/v1/targets')).body) as {
    data: { activeTargets: { health: string; lastError: string; scrapePool: string }[] };
  };
  const promuxTargets = targets.data.activeTargets.filter((a) => a.scrapePool === 'promux');
  assert.equal(promuxTargets.length, 1);
  assert.deepEqual([promuxTargets[0]!.health, promuxTargets[0]!.lastError], ['up', '']);

  const expected: Record<string, string> = {
    node: 'node_load1',
    app: 'http_requests_total',
    worker: 'jobs_processed_total',
    'fixture-node': 'node_load1',
    'fixture-app': 'process_cpu_seconds_total',
    'fixture-worker': 'jobs_processed_total',
  };
  for (const [container, metric] of Object.entries(expected)) {
    const series = await query(webPort, `${metric}{job="promux",container="${container}"}`);
    assert.ok(series.length > 0, `${metric} of ${container}`);
  }
  assert.deepEqual((await query(webPort, 'http_requests_total{container="app"}')).map((v) => [v.metric.code, v.value[1]]).sort(),
    [['200', '42'], ['500', '3']]);
  // Every series of a text fixture arrives with its container label, nothing lost or added.
  for (const name of ['fixture-node', 'fixture-app']) {
    const file = name === 'fixture-node' ? 'node-exporter.prom' : 'prom-client-app.prom';
    const stored = await query(webPort, `count({job="promux",container="${name}",__name__!~"promux_.*"})`);
    assert.equal(Number(stored[0]?.value[1]), samples(fixture(file).toString()).length, name);
  }
  const withoutLabel = await query(webPort, 'count({job="promux",container="",__name__!~"up|scrape_.*"})');
  assert.deepEqual(withoutLabel.map((v) => v.value[1]), [], 'no series of the targets lacks the container label');
});

/** A container that serves everything that used to sink the merged answer, beside valid series. */
const POISONED_OPENMETRICS = [
  '# TYPE poison_ok gauge', 'poison_ok 1',
  '# TYPE named gauge', 'named{__name__="x"} 1', 'named{a="1"} 2',
  '# TYPE waiting gauge', '# UNIT waiting seconds', 'waiting 3 # {trace_id="on-a-gauge"} 1',
  '# TYPE h histogram', 'h_bucket{le="abc"} 1', 'h_bucket{le="+Inf"} 1', 'h_count 1', 'h_sum 1',
  '# EOF', '',
].join('\n');
/** The same with what breaks OpenMetrics' rules (which Prometheus 2.42 ingests): the answer is text. */
const POISONED_RULES = POISONED_OPENMETRICS.replace('# EOF\n', '# TYPE debt counter\ndebt_total -5\n# TYPE stamped gauge\nstamped 4 -1\n# EOF\n');

test('a real Prometheus 2.42 ingests the healthy series beside a poisoned container; promux_target_up and the drop counters tell what happened', async (t) => {
  const prometheus = requireTool(t, 'prometheus');
  if (prometheus === undefined) return;
  const servers = {
    app: await startServer(staticBody(fixture('prom-client-app.prom'))),
    worker: await startServer(staticBody(fixture('python-worker.om'), OM_TYPE)),
    poison: await startServer(staticBody(POISONED_OPENMETRICS, OM_TYPE)),
    rules: await startServer(staticBody(POISONED_RULES, OM_TYPE)),
    garbage: await startServer(staticBody('<html><body>502 Bad Gateway</body></html>', 'text/html')),
  };
  t.after(() => Promise.all(Object.values(servers).map((s) => s.close())));
  // Two pods: one whose containers all answer OpenMetrics (the answer stays OpenMetrics), one with a
  // text container, a container whose families break OpenMetrics' rules and one that answers garbage.
  const openMetricsPod = await startSidecar(['-m', `worker:${servers.worker.port},poison:${servers.poison.port}`]);
  t.after(() => openMetricsPod.stop());
  const mixedPod = await startSidecar(['-m', ['app', 'worker', 'poison', 'rules', 'garbage']
    .map((c) => `${c}:${servers[c as keyof typeof servers].port}`).join(',')]);
  t.after(() => mixedPod.stop());
  for (const [pod, format] of [[openMetricsPod, 'application/openmetrics-text'], [mixedPod, 'text/plain']] as const) {
    const answer = await get(pod.port, '/metrics', { accept: PROMETHEUS_ACCEPT });
    assert.ok(answer.headers['content-type']?.startsWith(format), answer.headers['content-type']);
  }

  const webPort = await startPrometheus(t, prometheus, { openmetrics: openMetricsPod.port, mixed: mixedPod.port });

  const up = await waitFor('promux_target_up of every container of both pods', async () => {
    const result = await query(webPort, 'promux_target_up');
    return result.length === 7 ? result : undefined;
  }, async () => (await get(webPort, '/api/v1/targets')).body);
  assert.deepEqual(
    Object.fromEntries(up.map((v) => [`${v.metric.job}/${v.metric.container}`, v.value[1]])),
    {
      'openmetrics/worker': '1', 'openmetrics/poison': '1',
      'mixed/app': '1', 'mixed/worker': '1', 'mixed/poison': '1', 'mixed/rules': '1', 'mixed/garbage': '0',
    },
  );
  const targets = JSON.parse((await get(webPort, '/api/v1/targets')).body) as {
    data: { activeTargets: { health: string; lastError: string; scrapePool: string }[] };
  };
  assert.deepEqual(targets.data.activeTargets.map((a) => [a.scrapePool, a.health, a.lastError]).sort(),
    [['mixed', 'up', ''], ['openmetrics', 'up', '']], 'Prometheus accepted both answers whole');

  // Every series of the healthy containers, and the valid series of the poisoned ones.
  const appSeries = await query(webPort, 'count({job="mixed",container="app",__name__!~"promux_.*"})');
  assert.equal(Number(appSeries[0]?.value[1]), samples(fixture('prom-client-app.prom').toString()).length);
  for (const job of ['openmetrics', 'mixed']) {
    assert.ok((await query(webPort, `jobs_processed_total{job="${job}",container="worker"}`)).length > 0, job);
    assert.deepEqual((await query(webPort, `poison_ok{job="${job}",container="poison"}`)).map((v) => v.value[1]), ['1'], job);
    assert.deepEqual((await query(webPort, `named{job="${job}",container="poison"}`)).map((v) => v.metric.a), ['1'], job);
    assert.deepEqual((await query(webPort, `h_bucket{job="${job}",container="poison"}`)).map((v) => v.metric.le), ['+Inf'], job);
    const dropped = await query(webPort, `promux_dropped_samples_total{job="${job}",container="poison",reason="invalid_label"}`);
    assert.ok(Number(dropped[0]?.value[1]) >= 2, `${job}: the __name__ and le="abc" samples counted`);
  }
  assert.deepEqual((await query(webPort, 'debt_total{container="rules"}')).map((v) => v.value[1]), ['-5'], 'served whole, as text');
  const timestamps = await query(webPort, 'promux_dropped_samples_total{container="rules",reason="invalid_timestamp"}');
  assert.ok(Number(timestamps[0]?.value[1]) >= 1, 'the negative timestamp text cannot carry, counted');
  const exemplars = await query(webPort, 'promux_dropped_exemplars_total{job="openmetrics",container="poison",reason="not_allowed"}');
  assert.ok(Number(exemplars[0]?.value[1]) >= 1, 'the exemplar on a gauge, counted');
});
