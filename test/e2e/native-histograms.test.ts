// Native histograms through the sidecar: a real client_golang target that serves them (only in the
// protobuf exposition: test/fixtures/native-histogram-target) and a Python OpenMetrics container
// behind the real `promux sidecar`, scraped by a real Prometheus 2.42 started with
// --enable-feature=native-histograms (which asks for protobuf first), beside the same Go target
// scraped directly in another job of the same Prometheus. A third container serves protobuf with
// UTF-8 names, which Prometheus 2.42 rejects a whole scrape for: escaped, it costs nothing.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import test from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_ROOT, requireTool } from '../helpers/tools.ts';
import { MARKER, startPythonExporter, type Exporter } from './exporters.ts';
import { freePort, startChild, waitForHttp, type Child } from './processes.ts';
import { prometheusDir, startPrometheus, type PrometheusServer } from './prometheus.ts';
import { encodeBody, PROTOBUF_CONTENT_TYPE, TYPE } from '../../src/sidecar/exposition/protobuf/codec.ts';

/** A target that answers protobuf with a UTF-8 metric name and a UTF-8 label name (as client_golang does with them, asked for allow-utf-8). */
const UTF8_BODY = encodeBody([
  { name: 'orders.processed_total', type: TYPE.counter, metrics: [{ labels: [['shop.region', 'eu']], counter: { value: 42 }, unknown: [] }], unknown: [] },
  { name: 'orders_queue', type: TYPE.gauge, metrics: [{ labels: [], gauge: { value: 3 }, unknown: [] }], unknown: [] },
]);

interface HistogramSample {
  metric: Record<string, string>;
  histogram?: [number, { count: string; sum: string; buckets?: unknown[] }];
  value?: [number, string];
}

async function query(prometheus: PrometheusServer, promql: string): Promise<HistogramSample[]> {
  const response = await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(promql)}`, { signal: AbortSignal.timeout(10_000) });
  const body = (await response.json()) as { status: string; data: { result: HistogramSample[] }; error?: string };
  if (body.status !== 'success') throw new Error(`${promql}: ${body.error}`);
  return body.data.result;
}

/** Polls until `promql` returns at least `count` series (bounded). */
async function waitForSeries(prometheus: PrometheusServer, promql: string, count: number, outputs: () => string): Promise<HistogramSample[]> {
  const deadline = Date.now() + 60_000;
  let last: HistogramSample[] = [];
  while (Date.now() < deadline) {
    last = await query(prometheus, promql);
    if (last.length >= count) return last;
    await sleep(250);
  }
  throw new Error(`${promql}: ${last.length} series, wanted ${count}\n${outputs()}`);
}

test('real Prometheus 2.42 with native histograms: the native histograms of a Go target behind the sidecar, labelled, quantiles as scraped directly', { timeout: 180_000 }, async (t) => {
  const prometheusBinary = requireTool(t, 'prometheus');
  const target = requireTool(t, 'native-histogram-target');
  const python = requireTool(t, 'python3');
  if (prometheusBinary === undefined || target === undefined || python === undefined) return;
  const children: Child[] = [];
  let python3: Exporter | undefined;
  let prometheus: PrometheusServer | undefined;
  const dir = prometheusDir();
  const utf8 = createServer((req, res) => {
    if ((req.headers.accept ?? '').includes('application/vnd.google.protobuf')) res.writeHead(200, { 'content-type': PROTOBUF_CONTENT_TYPE }).end(UTF8_BODY);
    else res.writeHead(406).end();
  });
  try {
    await new Promise<void>((resolve) => utf8.listen(0, '127.0.0.1', resolve));
    const utf8Port = (utf8.address() as AddressInfo).port;
    const go = startChild('native-histogram-target', target, ['-listen', '127.0.0.1:0']);
    children.push(go);
    const goAddress = (await go.line(/^listening on /, 15_000)).slice('listening on '.length).trim();
    python3 = await startPythonExporter(python, 'worker');
    const sidecarPort = await freePort();
    const sidecar = startChild('promux sidecar', process.execPath, [
      join(REPO_ROOT, 'bin', 'promux.js'), 'sidecar',
      '-m', `app:${goAddress.split(':').pop()},worker:${python3.port},shop:${utf8Port}`, '-e', String(sidecarPort),
    ], { ...process.env, PROMUX_LISTEN_ADDRESS: '127.0.0.1' });
    children.push(sidecar);
    await waitForHttp(`http://127.0.0.1:${sidecarPort}/healthz`, 20_000, sidecar);
    const config = [
      'global:', '  scrape_interval: 1s', '  scrape_timeout: 1s', 'scrape_configs:',
      '  - job_name: promux', '    static_configs:', `      - targets: ['127.0.0.1:${sidecarPort}']`,
      '  - job_name: direct', '    static_configs:', `      - targets: ['${goAddress}']`, '',
    ].join('\n');
    prometheus = await startPrometheus(prometheusBinary, dir, config, ['--enable-feature=native-histograms']);
    const outputs = (): string => [prometheus!.output(), ...children.map((c) => c.output())].join('\n');

    // Native only (no classic buckets): without protobuf through the merge these would be lost.
    const merged = await waitForSeries(prometheus, 'nht_request_duration_seconds{job="promux"}', 2, outputs);
    const direct = await waitForSeries(prometheus, 'nht_request_duration_seconds{job="direct"}', 2, outputs);
    for (const series of merged) {
      assert.equal(series.metric.container, 'app', JSON.stringify(series.metric));
      assert.ok(series.histogram !== undefined, `a native histogram: ${JSON.stringify(series)}`);
      const same = direct.find((d) => d.metric.method === series.metric.method)!;
      assert.deepEqual(series.histogram[1], same.histogram![1], `method ${series.metric.method}`);
    }
    for (const name of ['nht_request_duration_seconds', 'nht_temperature_celsius']) {
      for (const q of [0.5, 0.9, 0.99]) {
        const through = await waitForSeries(prometheus, `histogram_quantile(${q}, ${name}{job="promux"})`, 1, outputs);
        const straight = await waitForSeries(prometheus, `histogram_quantile(${q}, ${name}{job="direct"})`, 1, outputs);
        assert.equal(through.length, straight.length, `${name} ${q}`);
        for (const s of through) {
          assert.equal(s.metric.container, 'app');
          const d = straight.find((x) => x.metric.method === s.metric.method)!;
          assert.ok(Number.isFinite(Number(s.value![1])), `${name} q${q}: ${s.value![1]}`);
          assert.equal(s.value![1], d.value![1], `${name} q${q} method ${s.metric.method}`);
        }
      }
    }
    // The OpenMetrics container beside it, converted into the protobuf answer, and promux's own metrics.
    const marker = await waitForSeries(prometheus, `${MARKER}{job="promux"}`, 1, outputs);
    assert.equal(marker[0]!.metric.container, 'worker');
    const up = await waitForSeries(prometheus, 'promux_target_up{job="promux"} == 1', 3, outputs);
    assert.deepEqual(up.map((s) => s.metric.container).sort(), ['app', 'shop', 'worker']);
    // The UTF-8 names, escaped with underscores (2.42 names no escaping): the scrape accepted whole.
    const orders = await waitForSeries(prometheus, 'orders_processed_total{job="promux"}', 1, outputs);
    assert.deepEqual([orders[0]!.metric.container, orders[0]!.metric.shop_region, orders[0]!.value![1]], ['shop', 'eu', '42']);
    assert.equal((await waitForSeries(prometheus, 'orders_queue{job="promux"}', 1, outputs))[0]!.metric.container, 'shop');
    const scrapes = await query(prometheus, 'up{job="promux"}');
    assert.equal(scrapes[0]?.value?.[1], '1', outputs());
    const counter = await waitForSeries(prometheus, 'nht_requests_total{job="promux"}', 1, outputs);
    assert.equal(counter[0]!.value![1], '1000');
    const dropped = await query(prometheus, 'sum(promux_dropped_samples_total{job="promux"})');
    assert.equal(dropped[0]?.value?.[1], '0', outputs());
  } finally {
    await prometheus?.stop();
    await python3?.close();
    for (const c of children.reverse()) await c.stop();
    await new Promise((resolve) => utf8.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
});
