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
import { PROPOSED_NODE_FLAGS, closedPort, fixture, get, OM_TYPE, samples, startServer, startSidecar, staticBody } from './helpers.ts';

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
  const sidecar = await startSidecar(['-m', map.join(',')], { nodeArgs: PROPOSED_NODE_FLAGS });
  t.after(() => sidecar.stop());

  const dir = mkdtempSync(join(tmpdir(), 'promux-prometheus-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'prometheus.yml'), [
    'global: { scrape_interval: 1s, scrape_timeout: 1s }',
    'scrape_configs:',
    '  - job_name: promux',
    `    static_configs: [{ targets: ['127.0.0.1:${sidecar.port}'] }]`,
  ].join('\n'));
  const webPort = await closedPort();
  run(t, prometheus, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${webPort}`, '--log.level=warn']);

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
