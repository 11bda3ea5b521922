// promux's alerts and dashboard: the rule file tested with promtool (check rules, test rules), the
// chart shipping both as they are in the repository, and every dashboard query checked twice: parsed
// by promtool (as recording rules) and run against a real Prometheus scraping a real promux sidecar
// and webhook, where each must return data.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse as parseYaml } from 'yaml';
import { defaultConfig } from '../../src/config/defaults.ts';
import { injectPod } from '../../src/inject/index.ts';
import { WARN_ON_SKIP } from '../../src/webhook/review.ts';
import { startWebhook } from '../../src/webhook/server.ts';
import { freePort } from '../helpers/ports.ts';
import { REPO_ROOT, requireTool } from '../helpers/tools.ts';
import { prometheusDir, startPrometheus } from '../e2e/prometheus.ts';
import { startChild, waitForHttp } from '../e2e/processes.ts';
import { createReview, httpsRequest, memoryLogger, postReview, tempDir, testBundle, writeKeyPair } from '../webhook/helpers.ts';
import { CHART, one, render } from './render.ts';

const RULES = join(CHART, 'files', 'prometheus-rules.yaml');
const RULE_TESTS = join(REPO_ROOT, 'test', 'chart', 'prometheus-rules.promtool.yaml');
const DASHBOARD = join(CHART, 'files', 'grafana-dashboard.json');

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const ruleFile = (): { groups: { name: string; rules: Rule[] }[] } => parseYaml(readFileSync(RULES, 'utf8')) as { groups: { name: string; rules: Rule[] }[] };

function promtool(t: TestContext, args: string[]): { status: number | null; output: string } | undefined {
  const bin = requireTool(t, 'promtool');
  if (bin === undefined) return undefined;
  const result = spawnSync(bin, args, { encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** GitHub's anchor for a Markdown heading. */
function anchor(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-');
}

test('alerts: promtool check rules and promtool test rules pass', (t) => {
  const check = promtool(t, ['check', 'rules', RULES]);
  if (check === undefined) return;
  assert.equal(check.status, 0, check.output);
  assert.match(check.output, /SUCCESS: 7 rules found/);
  const run = promtool(t, ['test', 'rules', RULE_TESTS])!;
  assert.equal(run.status, 0, run.output);
  assert.match(run.output, /SUCCESS/);
});

test('PromuxPodsNotInjected watches exactly the skips the webhook warns kubectl users about', () => {
  const rule = ruleFile().groups.flatMap((g) => g.rules).find((r) => r.alert === 'PromuxPodsNotInjected');
  const reasons = /reason=~"([^"]+)"/.exec(rule?.expr ?? '')?.[1]?.split('|');
  assert.deepEqual(reasons, [...WARN_ON_SKIP].sort());
});

test('alerts: each fires in a promtool test, has a severity, a summary, a description and a runbook that exists', () => {
  const tests = parseYaml(readFileSync(RULE_TESTS, 'utf8')) as {
    tests: { alert_rule_test: { alertname: string; exp_alerts: { exp_labels: Record<string, string> }[] }[] }[];
  };
  const fired = new Set(tests.tests.flatMap((c) => c.alert_rule_test.flatMap((a) => a.exp_alerts.map((e) => `${a.alertname}/${e.exp_labels.severity}`))));
  const headings = new Set(readFileSync(join(REPO_ROOT, 'docs', 'troubleshooting.md'), 'utf8').split('\n')
    .filter((l) => /^#{2,4} /.test(l)).map((l) => anchor(l.replace(/^#+ /, ''))));
  const alerts = ruleFile().groups.flatMap((g) => g.rules).filter((r) => r.alert !== undefined);
  assert.equal(alerts.length, 7);
  for (const rule of alerts) {
    const name = `${rule.alert}/${rule.labels?.severity}`;
    assert.match(rule.labels?.severity ?? '', /^(critical|warning|info)$/, name);
    assert.ok(fired.has(name), `${name}: no promtool test case expects it to fire`);
    for (const key of ['summary', 'description', 'runbook_url']) assert.ok(rule.annotations?.[key], `${name}: ${key}`);
    const [page, fragment] = rule.annotations!.runbook_url!.replace('https://github.com/promux/promux/blob/main/', '').split('#');
    assert.equal(page, 'docs/troubleshooting.md', name);
    assert.ok(headings.has(fragment!), `${name}: docs/troubleshooting.md has no heading #${fragment}`);
  }
});

test('the chart ships the rule file and the dashboard as they are in the repository', (t) => {
  const objects = render(t, { metrics: { prometheusRule: { enabled: true, labels: { release: 'monitoring' } }, grafanaDashboard: { enabled: true } } });
  if (objects === undefined) return;
  const rule = one(objects, 'PrometheusRule');
  assert.equal(rule.metadata.labels?.release, 'monitoring');
  assert.deepEqual(rule.spec, ruleFile());
  const dashboard = one(objects, 'ConfigMap', 'promux-dashboard');
  assert.equal(dashboard.metadata.labels?.grafana_dashboard, '1');
  assert.equal((dashboard.data as Record<string, string>)['promux.json'], readFileSync(DASHBOARD, 'utf8').trimEnd());
  const off = render(t, {})!;
  assert.deepEqual(off.filter((o) => o.kind === 'PrometheusRule' || o.metadata.name === 'promux-dashboard'), []);
});

interface Target {
  refId: string;
  expr: string;
  datasource: { uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { uid: string };
  targets?: Target[];
}
interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown; datasource?: { uid: string } }[] };
}
const dashboard = (): Dashboard => JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;

/** Each panel query with the dashboard's variables as Grafana would fill them for "All" namespaces. */
function dashboardQueries(rateInterval: string, range: string): { where: string; expr: string }[] {
  const d = dashboard();
  const queries = d.panels.flatMap((p) => (p.targets ?? []).map((target) => ({ where: `panel "${p.title}" ${target.refId}`, expr: target.expr })));
  for (const v of d.templating.list.filter((v) => v.type === 'query')) {
    const labelValues = /^label_values\((\w+), (\w+)\)$/.exec((v.query as { query: string }).query);
    assert.ok(labelValues !== null, `variable ${v.name}: a label_values(metric, label) query`);
    queries.push({ where: `variable ${v.name}`, expr: `group by (${labelValues[2]}) (${labelValues[1]})` });
  }
  return queries.map((q) => ({ ...q, expr: q.expr.replaceAll('$namespace', '.*').replaceAll('$__rate_interval', rateInterval).replaceAll('$__range', range) }));
}

test('dashboard: well-formed Grafana JSON, every query on the chosen data source, every variable defined', () => {
  const d = dashboard();
  const ids = d.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  const variables = new Set(d.templating.list.map((v) => v.name));
  assert.ok(variables.has('datasource'));
  for (const panel of d.panels.filter((p) => p.type !== 'row')) {
    assert.equal(panel.datasource?.uid, '${datasource}', panel.title);
    assert.ok((panel.targets ?? []).length > 0, `${panel.title}: a query`);
    for (const target of panel.targets!) {
      assert.equal(target.datasource.uid, '${datasource}', panel.title);
      for (const [, name] of target.expr.matchAll(/\$(\w+)/g)) assert.ok(variables.has(name!) || name!.startsWith('__'), `${panel.title}: $${name} is not defined`);
    }
  }
  const titles = d.panels.map((p) => p.title).join(' | ');
  for (const needed of [/Reviews by result/, /Skips by reason/, /latency/, /Containers down/, /fetch time/, /dropped by reason/]) assert.match(titles, needed);
});

test('dashboard: promtool parses every query', (t) => {
  const rules = { groups: [{ name: 'promux-dashboard', rules: dashboardQueries('5m', '1h').map((q, i) => ({ record: `promux_dashboard:query_${i}`, expr: q.expr })) }] };
  const file = join(tempDir(t), 'dashboard-queries.yaml');
  writeFileSync(file, JSON.stringify(rules));
  const check = promtool(t, ['check', 'rules', file]);
  if (check === undefined) return;
  assert.equal(check.status, 0, check.output);
});

function serve(t: TestContext, body: () => string): Promise<number> {
  const server: Server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(body()));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

test('dashboard: every query returns data from a real Prometheus scraping a real promux sidecar and webhook', async (t) => {
  const prometheusBin = requireTool(t, 'prometheus');
  if (prometheusBin === undefined) return;
  // The pod's containers: api (a series twice: duplicate_series), worker (a family api declares as a
  // counter, as a gauge: type_conflict) and cache, which is down.
  let scrapes = 0;
  const api = await serve(t, () => `# TYPE jobs_total counter\njobs_total ${++scrapes}\n# TYPE queue gauge\nqueue 1\nqueue 2\n`);
  const worker = await serve(t, () => '# TYPE jobs_total gauge\njobs_total 3\n# TYPE worker_busy gauge\nworker_busy 1\n');
  const down = await freePort();
  const sidecarPort = await freePort();
  const sidecar = startChild('promux sidecar', process.execPath, [
    join(REPO_ROOT, 'bin', 'promux.js'), 'sidecar', '-m', `api:${api},worker:${worker},cache:${down}`, '-e', String(sidecarPort), '--listen_address', '127.0.0.1',
  ]);
  t.after(() => sidecar.stop());
  await waitForHttp(`http://127.0.0.1:${sidecarPort}/readyz`, 20_000, sidecar);

  const bundle = testBundle();
  const webhook = await startWebhook(
    { port: 0, listenAddress: '127.0.0.1', logLevel: 'warn', tls: { mode: 'files', ...writeKeyPair(tempDir(t), bundle.serving) } },
    { config: defaultConfig(), inject: injectPod, log: memoryLogger().log },
  );
  t.after(() => webhook.close(1000));
  const example = parseYaml(readFileSync(join(REPO_ROOT, 'examples', 'two-container-pod.yaml'), 'utf8')) as Record<string, unknown>;
  const pods = [
    { ...example, metadata: { ...(example.metadata as object), namespace: 'shop' } },
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'plain', namespace: 'shop' }, spec: { containers: [{ name: 'a', image: 'a' }] } },
    { ...example, metadata: { ...(example.metadata as object), namespace: 'shop' }, spec: { ...(example.spec as object), hostNetwork: true } },
  ];
  for (const pod of pods) assert.equal((await postReview(webhook.port, bundle.ca.cert, createReview(pod))).answer.status, 200);
  assert.equal((await httpsRequest(webhook.port, bundle.ca.cert, { method: 'POST', path: '/mutate', body: '{"kind":"Nope"}' })).status, 400);

  const dir = prometheusDir();
  const prometheus = await startPrometheus(prometheusBin, dir, [
    'global: {scrape_interval: 1s, scrape_timeout: 900ms}',
    'scrape_configs:',
    '  - job_name: promux',
    '    honor_labels: true',
    `    static_configs: [{targets: ["127.0.0.1:${sidecarPort}"], labels: {namespace: shop, pod: checkout-1}}]`,
    '  - job_name: promux-webhook',
    '    scheme: https',
    '    tls_config: {insecure_skip_verify: true}',
    `    static_configs: [{targets: ["127.0.0.1:${webhook.port}"], labels: {namespace: promux, pod: promux-a}}]`,
    '',
  ].join('\n'));
  t.after(() => prometheus.stop());
  // Enough scrapes for rate() over 5s and increase() over 1m to have two samples of everything.
  const deadline = Date.now() + 30_000;
  while ((await prometheus.query('count_over_time(promux_webhook_reviews_total{result="injected"}[1m])')).some((s) => Number(s.value[1]) >= 6) === false) {
    assert.ok(Date.now() < deadline, `Prometheus did not scrape promux in time\n${prometheus.output()}`);
    await sleep(500);
  }
  while ((await prometheus.query('count_over_time(promux_target_up[1m])')).every((s) => Number(s.value[1]) >= 6) === false) {
    assert.ok(Date.now() < deadline, `Prometheus did not scrape the sidecar in time\n${prometheus.output()}`);
    await sleep(500);
  }
  // Only the API server exports this one; promux's Prometheus here does not scrape an API server.
  const fromApiServer = /apiserver_admission_webhook_fail_open_count/;
  for (const { where, expr } of dashboardQueries('5s', '1m')) {
    const result = await prometheus.query(expr);
    if (fromApiServer.test(expr)) continue;
    assert.ok(result.length > 0, `${where}: no data for ${expr}`);
  }
  // And the numbers mean what the panels say.
  const value = async (expr: string): Promise<number> => Number((await prometheus.query(expr))[0]?.value[1]);
  const [containersDown] = dashboardQueries('5s', '1m').filter((q) => q.where.startsWith('panel "Containers down"'));
  assert.equal(await value(containersDown!.expr), 1);
  assert.deepEqual((await prometheus.query('sum by (reason) (rate(promux_dropped_samples_total[5s])) > 0')).map((s) => s.metric.reason).sort(), ['duplicate_series', 'type_conflict']);
});
