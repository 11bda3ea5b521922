import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DropCounter, mergeAnyFormat, type FetchedTarget } from '../../../src/sidecar/exposition/index.ts';
import { loadProtobuf } from '../../../src/sidecar/exposition/any-format.ts';
import { decodeBody, decodeFamilies, encodeBody, TYPE, type Metric } from '../../../src/sidecar/exposition/protobuf/codec.ts';
import { ACCEPT } from './accept.ts';
import { whole } from './checkers.ts';

await loadProtobuf();

const OM = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

function mergeOne(body: string, contentType: string): ReturnType<typeof decodeBody> {
  // A protobuf target beside it makes the answer protobuf.
  const go: FetchedTarget = {
    container: 'go', endpoint: '1', durationSeconds: 0, contentType: 'application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited',
    body: Buffer.from(encodeBody([{ name: 'go_up', type: TYPE.gauge, metrics: [{ labels: [], gauge: { value: 1 }, unknown: [] }], unknown: [] }])),
  };
  const app: FetchedTarget = { container: 'app', endpoint: '2', durationSeconds: 0, contentType, body: Buffer.from(body) };
  const output = whole(mergeAnyFormat([go, app], { containerLabel: 'container', accept: ACCEPT.protobuf }, new DropCounter()));
  assert.equal(output.format, 'protobuf');
  // Labels sorted, as Prometheus reads them (the target's come first in the answer).
  return decodeBody(new Uint8Array(output.body)).filter((f) => !f.name.startsWith('promux_') && f.name !== 'go_up')
    .map((f) => ({ ...f, metrics: f.metrics.map((m) => ({ ...m, labels: m.labels.toSorted(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) })) }));
}

const C = ['container', 'app'] as [string, string];

describe('text and OpenMetrics targets in a protobuf answer', () => {
  test('OpenMetrics: counters with _created and exemplars, histograms, summaries, timestamps, info and stateset, as Prometheus reads them', () => {
    const families = mergeOne([
      '# TYPE http_requests counter', '# HELP http_requests Requests.',
      'http_requests_total{code="200"} 10 1700000000.5 # {trace_id="t1"} 1 1699999999.25',
      'http_requests_created{code="200"} 1699990000.125 1700000000.5',
      '# TYPE latency_seconds histogram', '# UNIT latency_seconds seconds',
      'latency_seconds_bucket{le="0.1"} 2 # {trace_id="t2"} 0.05', 'latency_seconds_bucket{le="+Inf"} 3',
      'latency_seconds_count 3', 'latency_seconds_sum 1.5', 'latency_seconds_created 1699990000',
      '# TYPE rpc summary', 'rpc{quantile="0.5"} NaN', 'rpc_count 4', 'rpc_sum +Inf',
      '# TYPE build info', 'build_info{version="1.2"} 1',
      '# TYPE feature stateset', 'feature{feature="a"} 1', 'feature{feature="b"} 0',
      '# TYPE queue gaugehistogram', 'queue_bucket{le="1"} 1.5', 'queue_bucket{le="+Inf"} 2', 'queue_gcount 2', 'queue_gsum 3',
      '# EOF', '',
    ].join('\n'), OM);
    const byName = new Map(families.map((f) => [f.name, f]));
    assert.deepEqual([...byName.keys()], ['http_requests_total', 'latency_seconds', 'rpc', 'build_info', 'feature', 'queue']);
    const counter = byName.get('http_requests_total')!;
    assert.equal(counter.type, TYPE.counter);
    assert.equal(counter.help, 'Requests.');
    assert.deepEqual(counter.metrics, [{
      labels: [['code', '200'], C], timestampMs: 1700000000500, unknown: [],
      counter: {
        value: 10, exemplar: { labels: [['trace_id', 't1']], value: 1, timestamp: { seconds: 1699999999, nanos: 250_000_000 } },
        createdTimestamp: { seconds: 1699990000, nanos: 125_000_000 },
      },
    } satisfies Metric]);
    const histogram = byName.get('latency_seconds')!;
    assert.equal(histogram.unit, 'seconds');
    assert.deepEqual(histogram.metrics[0]!.histogram, {
      sampleCount: 3, sampleSum: 1.5, createdTimestamp: { seconds: 1699990000, nanos: 0 },
      buckets: [
        { upperBound: 0.1, cumulativeCount: 2, exemplar: { labels: [['trace_id', 't2']], value: 0.05 } },
        { upperBound: Infinity, cumulativeCount: 3 },
      ],
      negativeSpans: [], negativeDeltas: [], negativeCounts: [], positiveSpans: [], positiveDeltas: [], positiveCounts: [], exemplars: [],
    });
    assert.deepEqual(byName.get('rpc')!.metrics[0]!.summary, { sampleCount: 4, sampleSum: Infinity, quantiles: [{ quantile: 0.5, value: NaN }] });
    assert.deepEqual(byName.get('build_info')!.metrics.map((m) => [m.labels, m.gauge]), [[[C, ['version', '1.2']], { value: 1 }]]);
    assert.equal(byName.get('feature')!.type, TYPE.gauge);
    assert.equal(byName.get('feature')!.metrics.length, 2);
    const queue = byName.get('queue')!;
    assert.equal(queue.type, TYPE.gaugeHistogram);
    assert.deepEqual(queue.metrics[0]!.histogram!.buckets, [{ upperBound: 1, cumulativeCountFloat: 1.5 }, { upperBound: Infinity, cumulativeCount: 2 }]);
    assert.equal(queue.metrics[0]!.histogram!.sampleSum, 3);
  });

  test('text 0.0.4: names kept (a counter is its _total name), label escapes undone, an existing container label moved to exported_container', () => {
    const families = mergeOne([
      '# HELP jobs_total Jobs \\\\ done.', '# TYPE jobs_total counter', 'jobs_total{container="x",path="a\\"b\\\\c\\nd"} 3 1700000000000',
      'untyped_thing 5', '',
    ].join('\n'), 'text/plain; version=0.0.4');
    assert.deepEqual(families.map((f) => [f.name, f.type, f.help]), [['jobs_total', TYPE.counter, 'Jobs \\ done.'], ['untyped_thing', TYPE.untyped, undefined]]);
    assert.deepEqual(families[0]!.metrics[0], {
      labels: [C, ['exported_container', 'x'], ['path', 'a"b\\c\nd']], counter: { value: 3 }, timestampMs: 1700000000000, unknown: [],
    });
  });

  test('a type clash and a repeated series between a protobuf and a text target: the first wins, the rest counted', () => {
    const drops = new DropCounter();
    const go: FetchedTarget = {
      container: 'go', endpoint: '1', durationSeconds: 0, contentType: 'application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited',
      body: Buffer.from(encodeBody([{ name: 'shared', type: TYPE.gauge, metrics: [{ labels: [], gauge: { value: 1 }, unknown: [] }, { labels: [], gauge: { value: 2 }, unknown: [] }], unknown: [] }])),
    };
    const app: FetchedTarget = { container: 'app', endpoint: '2', durationSeconds: 0, contentType: 'text/plain', body: Buffer.from('# TYPE shared counter\nshared 3\n') };
    const output = whole(mergeAnyFormat([go, app], { containerLabel: 'container', accept: ACCEPT.protobuf }, drops));
    const shared = decodeBody(new Uint8Array(output.body)).find((f) => f.name === 'shared')!;
    assert.deepEqual(shared.metrics.map((m) => m.gauge?.value), [1]);
    assert.equal(drops.get(go, 'duplicate_series'), 1);
    assert.equal(drops.get(app, 'type_conflict'), 1);
  });

  test('a body that is not protobuf marks its target down, naming where; the others are served', () => {
    const drops = new DropCounter();
    const bad: FetchedTarget = {
      container: 'bad', endpoint: '1', durationSeconds: 0, contentType: 'application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited',
      body: Buffer.from([0x0a, 0x05, 0x0a, 0x09, 0x61]),
    };
    const good: FetchedTarget = { container: 'good', endpoint: '2', durationSeconds: 0, contentType: 'text/plain', body: Buffer.from('ok 1\n') };
    const output = whole(mergeAnyFormat([bad, good], { containerLabel: 'container', accept: ACCEPT.protobuf }, drops));
    assert.equal(output.targets[0]!.up, false);
    assert.match(output.targets[0]!.error!, /^invalid protobuf exposition: MetricFamily at byte 0: /);
    assert.ok(decodeBody(new Uint8Array(output.body)).some((f) => f.name === 'ok'));
  });

  test('unknown fields of a MetricFamily and of a Metric pass through the merge untouched', () => {
    const unknownFamilyField = Uint8Array.of(0x32, 0x02, 0x68, 0x69); // field 6, bytes "hi"
    const unknownMetricField = Uint8Array.of(0xf8, 0x06, 0x2a); // field 111, varint 42
    const body = Buffer.from(encodeBody([{ name: 'x', type: TYPE.gauge, metrics: [{ labels: [], gauge: { value: 1 }, unknown: [unknownMetricField] }], unknown: [unknownFamilyField] }]));
    const target: FetchedTarget = { container: 'c', endpoint: '1', durationSeconds: 0, contentType: 'application/vnd.google.protobuf', body };
    const output = whole(mergeAnyFormat([target], { containerLabel: 'container', accept: ACCEPT.protobuf }, new DropCounter()));
    const x = decodeFamilies(new Uint8Array(output.body)).find((f) => f.name === 'x')!;
    assert.deepEqual(x.unknown, [unknownFamilyField]);
    assert.deepEqual(decodeBody(new Uint8Array(output.body)).find((f) => f.name === 'x')!.metrics[0]!.unknown, [unknownMetricField]);
  });
});

describe('UTF-8 names in a protobuf answer', () => {
  const PROTOBUF = 'application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited';
  const gauge = (labels: Array<[string, string]>, value: number, unknown: Uint8Array[] = []): Metric => ({ labels, gauge: { value }, unknown });
  const unknownMetricField = Uint8Array.of(0xf8, 0x06, 0x2a); // field 111, varint 42
  function targets(): FetchedTarget[] {
    const go: FetchedTarget = {
      container: 'go', endpoint: '1', durationSeconds: 0, contentType: PROTOBUF,
      body: Buffer.from(encodeBody([
        { name: 'http.requests', type: TYPE.gauge, metrics: [gauge([['code', '200']], 1), gauge([['http.method', 'GET']], 2)], unknown: [] },
        // Escaped, http.requests{code="200"} is this one's first series.
        { name: 'http_requests', type: TYPE.gauge, metrics: [gauge([['code', '200']], 3), gauge([['code', '500']], 4)], unknown: [] },
        { name: 'legacy', type: TYPE.gauge, metrics: [gauge([['a', '1']], 5, [unknownMetricField])], unknown: [] },
        { name: 'clash', type: TYPE.gauge, metrics: [gauge([['a.b', '1'], ['a_b', '2']], 6), gauge([['a_c', '1']], 7)], unknown: [] },
        { name: 'dup', type: TYPE.gauge, metrics: [gauge([['x', '1']], 8), gauge([['x', '1']], 9)], unknown: [] },
      ])),
    };
    const app: FetchedTarget = {
      container: 'app', endpoint: '2', durationSeconds: 0, contentType: 'text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8',
      body: Buffer.from('# TYPE "my.metric" gauge\n{"my.metric","lé"="v"} 10\n'),
    };
    return [go, app];
  }
  const served = (body: Buffer): Array<[string, Array<[string, string]>, number | undefined]> => decodeBody(new Uint8Array(body))
    .filter((f) => !f.name.startsWith('promux_'))
    .flatMap((f) => f.metrics.map((m): [string, Array<[string, string]>, number | undefined] => [
      f.name, m.labels.toSorted(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)), m.gauge?.value,
    ]));

  test('Prometheus 2.42 (no escaping in its protobuf Accept): names escaped with underscores, what escaping makes equal dropped as escaping_conflict', () => {
    const drops = new DropCounter();
    const [go, app] = targets();
    const output = whole(mergeAnyFormat([go!, app!], { containerLabel: 'container', accept: ACCEPT.protobuf }, drops));
    assert.equal(output.format, 'protobuf');
    assert.deepEqual(served(output.body), [
      ['http_requests', [['code', '200'], ['container', 'go']], 1],
      ['http_requests', [['container', 'go'], ['http_method', 'GET']], 2],
      ['http_requests', [['code', '500'], ['container', 'go']], 4],
      ['legacy', [['a', '1'], ['container', 'go']], 5],
      ['clash', [['a_c', '1'], ['container', 'go']], 7],
      ['dup', [['container', 'go'], ['x', '1']], 8],
      ['my_metric', [['container', 'app'], ['l_', 'v']], 10],
    ]);
    assert.equal(drops.get(go!, 'escaping_conflict'), 2); // http_requests{code="200"}, clash{a.b, a_b}
    assert.equal(drops.get(go!, 'duplicate_series'), 1); // dup{x="1"} as served
    assert.deepEqual(output.targets.map((t) => t.samples), [6, 1]); // 9 metrics in, 3 dropped
    // Metrics without a label name to escape are copied byte for byte, in a renamed family too.
    const input = decodeFamilies(new Uint8Array(go!.body!));
    for (const name of ['legacy', 'http.requests']) {
      const fields = input.find((f) => f.name === name)!.metrics[0]!.fields;
      for (const field of fields) assert.notEqual(output.body.indexOf(field), -1, name);
    }
  });

  test('Prometheus 3 (escaping=allow-utf-8 in its protobuf Accept): names served as the targets wrote them', () => {
    const drops = new DropCounter();
    const [go, app] = targets();
    const output = whole(mergeAnyFormat([go!, app!], { containerLabel: 'container', accept: ACCEPT.prometheus3Protobuf }, drops));
    assert.deepEqual(served(output.body), [
      ['http.requests', [['code', '200'], ['container', 'go']], 1],
      ['http.requests', [['container', 'go'], ['http.method', 'GET']], 2],
      ['http_requests', [['code', '200'], ['container', 'go']], 3],
      ['http_requests', [['code', '500'], ['container', 'go']], 4],
      ['legacy', [['a', '1'], ['container', 'go']], 5],
      ['clash', [['a.b', '1'], ['a_b', '2'], ['container', 'go']], 6],
      ['clash', [['a_c', '1'], ['container', 'go']], 7],
      ['dup', [['container', 'go'], ['x', '1']], 8],
      ['my.metric', [['container', 'app'], ['lé', 'v']], 10],
    ]);
    assert.equal(drops.get(go!, 'escaping_conflict'), 0);
    assert.equal(drops.get(go!, 'duplicate_series'), 1);
  });

  test('a family whose escaped name is another family of another type: escaping_conflict, not type_conflict', () => {
    const drops = new DropCounter();
    const go: FetchedTarget = {
      container: 'go', endpoint: '1', durationSeconds: 0, contentType: PROTOBUF,
      body: Buffer.from(encodeBody([
        { name: 'a_b', type: TYPE.gauge, metrics: [gauge([], 1)], unknown: [] },
        { name: 'a.b', type: TYPE.counter, metrics: [{ labels: [], counter: { value: 2 }, unknown: [] }], unknown: [] },
        { name: 'a_b', type: TYPE.untyped, metrics: [{ labels: [], untyped: { value: 3 }, unknown: [] }], unknown: [] },
      ])),
    };
    const output = whole(mergeAnyFormat([go], { containerLabel: 'container', accept: ACCEPT.protobuf }, drops));
    assert.deepEqual(served(output.body), [['a_b', [['container', 'go']], 1]]);
    assert.equal(drops.get(go, 'escaping_conflict'), 1);
    assert.equal(drops.get(go, 'type_conflict'), 1);
  });
});
