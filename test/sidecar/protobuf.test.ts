// The protobuf exposition over real HTTP: the sidecar child process, targets that answer protobuf
// only when asked for it (as client_golang does) beside text ones, scrapers with and without protobuf.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  decodeBody, encodeBody, PROTOBUF_CONTENT_TYPE, TYPE, type Histogram, type MetricFamily,
} from '../../src/sidecar/exposition/protobuf/codec.ts';
import { PROMETHEUS_PROTOBUF_ACCEPT } from './exposition/accept.ts';
import { fixture, PROMETHEUS_ACCEPT, samples, startServer, startSidecar, staticBody, targetValue, type Handler, type TestServer } from './helpers.ts';

const NATIVE: Histogram = {
  sampleCount: 12, sampleSum: -3.5, schema: 3, zeroThreshold: 2.938735877055719e-39, zeroCount: 2,
  negativeSpans: [{ offset: -2, length: 2 }], negativeDeltas: [3, -1], negativeCounts: [],
  positiveSpans: [{ offset: 0, length: 1 }, { offset: 4, length: 2 }], positiveDeltas: [1, 2, -3], positiveCounts: [],
  buckets: [], exemplars: [{ labels: [['trace_id', 'abc']], value: 0.25, timestamp: { seconds: 1700000000, nanos: 5 } }],
  createdTimestamp: { seconds: 1699999000, nanos: 0 },
};
const BOTH: Histogram = {
  ...NATIVE, buckets: [{ upperBound: 0, cumulativeCount: 4 }, { upperBound: 10, cumulativeCount: 12 }], exemplars: [],
};
const GO_FAMILIES: MetricFamily[] = [
  { name: 'rpc_duration_seconds', help: 'Native only.', type: TYPE.histogram, unit: 'seconds', metrics: [{ labels: [['method', 'GET']], histogram: NATIVE, unknown: [] }], unknown: [] },
  { name: 'temperature_celsius', help: 'Classic and native.', type: TYPE.histogram, metrics: [{ labels: [], histogram: BOTH, unknown: [] }], unknown: [] },
  { name: 'requests_total', type: TYPE.counter, metrics: [{ labels: [['container', 'inner']], counter: { value: 7 }, unknown: [] }], unknown: [] },
];
const GO_TEXT = '# TYPE requests_total counter\nrequests_total{container="inner"} 7\n';

/** As client_golang answers: protobuf when the Accept names it, text otherwise. */
function goTarget(asked: string[]): Handler {
  return (req, res) => {
    const accept = req.headers.accept ?? '';
    asked.push(accept);
    if (accept.includes('application/vnd.google.protobuf')) res.writeHead(200, { 'content-type': PROTOBUF_CONTENT_TYPE }).end(encodeBody(GO_FAMILIES));
    else res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(GO_TEXT);
  };
}

async function scrape(port: number, accept: string): Promise<{ contentType: string; body: Buffer }> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { accept }, signal: AbortSignal.timeout(10_000) });
  assert.equal(response.status, 200);
  return { contentType: response.headers.get('content-type') ?? '', body: Buffer.from(await response.arrayBuffer()) };
}

async function servers(t: import('node:test').TestContext, ...handlers: Handler[]): Promise<TestServer[]> {
  const started = await Promise.all(handlers.map((h) => startServer(h)));
  t.after(() => Promise.all(started.map((s) => s.close())));
  return started;
}

const NODE_FIXTURE = fixture('node-exporter.prom');

test('a scraper that takes protobuf gets one MetricFamily per name: native histograms kept exactly, the container label added, text targets converted', async (t) => {
  const asked: string[] = [];
  const [go, node] = await servers(t, goTarget(asked), staticBody(NODE_FIXTURE));
  const s = await startSidecar(['-m', `go:${go!.port},node:${node!.port}`]);
  t.after(() => s.stop());

  // A scraper without protobuf: the targets are not asked for it, the answer is text as before.
  const text = await scrape(s.port, PROMETHEUS_ACCEPT);
  assert.match(text.contentType, /^text\/plain|^application\/openmetrics-text/);
  assert.ok(asked.every((a) => !a.includes('protobuf')), asked.join(' | '));
  assert.match(text.body.toString(), /^requests_total\{container="go",exported_container="inner"\} 7$/m);

  const answer = await scrape(s.port, PROMETHEUS_PROTOBUF_ACCEPT);
  assert.equal(answer.contentType, PROTOBUF_CONTENT_TYPE);
  assert.match(asked.at(-1)!, /^application\/vnd\.google\.protobuf;proto=io\.prometheus\.client\.MetricFamily;encoding=delimited/);
  const families = decodeBody(new Uint8Array(answer.body));
  const byName = new Map(families.map((f) => [f.name, f]));
  assert.equal(byName.size, families.length, 'one family per name');
  const rpc = byName.get('rpc_duration_seconds')!;
  assert.equal(rpc.help, 'Native only.');
  assert.equal(rpc.unit, 'seconds');
  assert.deepEqual(rpc.metrics, [{ labels: [['container', 'go'], ['method', 'GET']], histogram: NATIVE, unknown: [] }]);
  assert.deepEqual(byName.get('temperature_celsius')!.metrics[0]!.histogram, BOTH);
  assert.deepEqual(byName.get('requests_total')!.metrics[0]!.labels, [['container', 'go'], ['exported_container', 'inner']]);
  // The text target, converted: its samples counted as metrics (a histogram's or summary's samples are one).
  const nodeMetrics = families.filter((f) => !f.name.startsWith('promux_')).flatMap((f) => f.metrics)
    .filter((m) => m.labels.some(([n, v]) => n === 'container' && v === 'node')).length;
  assert.ok(nodeMetrics > 400 && nodeMetrics < samples(NODE_FIXTURE.toString()).length, String(nodeMetrics));
  const nodeLoad = byName.get('node_load1')!;
  assert.equal(nodeLoad.type, TYPE.gauge);
  assert.deepEqual(nodeLoad.metrics[0]!.labels, [['container', 'node']]);
  const up = byName.get('promux_target_up')!;
  assert.deepEqual(up.metrics.map((m) => [m.labels.find(([n]) => n === 'container')![1], m.gauge!.value]), [['go', 1], ['node', 1]]);
  const served = byName.get('promux_target_samples')!.metrics.map((m) => m.gauge!.value);
  assert.deepEqual(served, [3, nodeMetrics]);
  const dropped = byName.get('promux_dropped_samples_total')!.metrics.reduce((n, m) => n + m.counter!.value!, 0);
  assert.equal(dropped, 0);
  // A scraper that takes protobuf alone, while no target serves it: text 0.0.4, as expfmt answers.
  const [plain] = await servers(t, staticBody('up 1\n'));
  const t2 = await startSidecar(['-m', `plain:${plain!.port}`]);
  t.after(() => t2.stop());
  const fallback = await scrape(t2.port, 'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited');
  assert.equal(fallback.contentType, 'text/plain; version=0.0.4; charset=utf-8');
  assert.match(fallback.body.toString(), /^up\{container="plain"\} 1$/m);
});

test('protobuf targets for a scraper without protobuf: classic buckets served, native histograms counted as native_histogram_unsupported_by_scraper', async (t) => {
  const asked: string[] = [];
  const [go] = await servers(t, goTarget(asked));
  // The background cache asks targets for protobuf once a scraper asked for it; others then get it converted.
  const s = await startSidecar(['-m', `go:${go!.port}`, '-i', '100']);
  t.after(() => s.stop());
  await scrape(s.port, PROMETHEUS_PROTOBUF_ACCEPT);
  const deadline = Date.now() + 10_000;
  let body = '';
  while (Date.now() < deadline) {
    body = (await scrape(s.port, 'text/plain;version=0.0.4')).body.toString();
    if (targetValue(body, 'promux_dropped_samples_total', 'go') !== undefined && /temperature_celsius_bucket/.test(body)) break;
    await sleep(100);
  }
  assert.ok(asked.at(-1)!.startsWith('application/vnd.google.protobuf'), asked.join(' | '));
  assert.match(body, /^temperature_celsius_bucket\{container="go",le="0"\} 4$/m);
  assert.match(body, /^temperature_celsius_bucket\{container="go",le="10"\} 12$/m);
  assert.match(body, /^temperature_celsius_bucket\{container="go",le="\+Inf"\} 12$/m);
  assert.match(body, /^temperature_celsius_count\{container="go"\} 12$/m);
  assert.doesNotMatch(body, /rpc_duration_seconds/);
  const line = samples(body).find((l) => l.includes('reason="native_histogram_unsupported_by_scraper"') && l.includes('container="go"'));
  // Counted on every refresh that fetched them: at least once for each of the two histograms.
  assert.ok(line !== undefined && Number(line.split(' ').at(-1)) >= 2, body);
});
