import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { DROP_REASONS, DropCounter, mergeAnyFormat, type FetchedTarget } from '../../../src/sidecar/exposition/index.ts';
import { loadProtobuf } from '../../../src/sidecar/exposition/any-format.ts';
import {
  decodeBody, encodeBody, PROTOBUF_CONTENT_TYPE, TYPE, type Exemplar, type Histogram, type Metric, type MetricFamily, type Timestamp,
} from '../../../src/sidecar/exposition/protobuf/codec.ts';
import { withTargetLabels } from '../../../src/sidecar/exposition/protobuf/merge.ts';
import { isNative } from '../../../src/sidecar/exposition/protobuf/to-openmetrics.ts';
import { escapeName, isLegacyLabelName, isLegacyMetricName } from '../../../src/sidecar/exposition/names.ts';
import { ACCEPT } from './accept.ts';
import { readExposition, whole } from './checkers.ts';

const PROTOBUF = ACCEPT.protobuf;

await loadProtobuf();

const double = fc.oneof(
  { weight: 4, arbitrary: fc.double({ noDefaultInfinity: false, noNaN: false }) },
  { weight: 1, arbitrary: fc.constantFrom(NaN, Infinity, -Infinity, 0) },
).map((v) => (Object.is(v, -0) ? 0 : v));
const count = fc.nat({ max: 1_000_000 });
const timestamp: fc.Arbitrary<Timestamp> = fc.record({ seconds: fc.integer({ min: 0, max: 4_000_000_000 }), nanos: fc.integer({ min: 0, max: 999_999_999 }) }).map((t) => ({ ...t }));
// UTF-8 names among them, and legacy names that escaping (underscores) makes them equal to.
/** Legacy names that escaping with underscores makes of UTF-8 names the generators draw. */
const LEGACY_TWINS = new Set(['m_tier', 'x_y', 'a_b']);
const labelName = fc.constantFrom('a', 'b', 'le', 'container', 'exported_container', 'path', 'métier', 'm_tier', 'x.y', 'x_y');
const labelValue = fc.string({ maxLength: 6, unit: fc.constantFrom('a', 'b', '"', '\\', '\n', 'é', ' ') });
const labels = fc.uniqueArray(fc.tuple(labelName, labelValue), { maxLength: 3, selector: ([n]) => n })
  .map((l) => l.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
/** The object without its undefined keys (absent fields, as decoded). */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
const exemplar: fc.Arbitrary<Exemplar> = fc.record({ labels, value: double, timestamp: fc.option(timestamp, { nil: undefined }) }).map(defined);
const spans = fc.array(fc.record({ offset: fc.integer({ min: -5, max: 5 }), length: fc.nat({ max: 4 }) }).map((x) => ({ ...x })), { maxLength: 3 });

const histogram: fc.Arbitrary<Histogram> = fc.record({
  classic: fc.boolean(), native: fc.boolean(), float: fc.boolean(), sampleCount: count, sampleSum: double, schema: fc.integer({ min: -4, max: 8 }),
  zeroThreshold: fc.double({ min: 0, max: 1, noNaN: true }), zeroCount: count, negativeSpans: spans, positiveSpans: spans,
  bounds: fc.uniqueArray(fc.double({ noNaN: true }), { maxLength: 4 }), created: fc.option(timestamp, { nil: undefined }),
  exemplars: fc.array(exemplar, { maxLength: 2 }),
}).chain((h) => {
  const lengthOf = (s: typeof h.negativeSpans): number => s.reduce((n, x) => n + x.length, 0);
  const buckets = (n: number): fc.Arbitrary<number[]> => (h.float ? fc.array(fc.double({ min: 0, max: 1e6, noNaN: true }), { minLength: n, maxLength: n })
    : fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: n, maxLength: n }));
  return fc.tuple(buckets(lengthOf(h.negativeSpans)), buckets(lengthOf(h.positiveSpans)), fc.option(exemplar, { nil: undefined })).map(([neg, pos, bucketExemplar]) => {
    const out: Histogram = {
      buckets: [], negativeSpans: [], negativeDeltas: [], negativeCounts: [], positiveSpans: [], positiveDeltas: [], positiveCounts: [], exemplars: [],
      sampleSum: h.sampleSum,
    };
    if (h.float) out.sampleCountFloat = h.sampleCount + 0.5;
    else out.sampleCount = h.sampleCount;
    if (h.classic || !h.native) {
      out.buckets = [...h.bounds].sort((a, b) => a - b).map((upperBound, i) => ({
        upperBound, cumulativeCount: i * 2, ...(i === 0 && bucketExemplar !== undefined ? { exemplar: bucketExemplar } : {}),
      }));
    }
    if (h.native) {
      out.schema = h.schema;
      out.zeroThreshold = h.zeroThreshold;
      if (h.float) out.zeroCountFloat = h.zeroCount + 0.25;
      else out.zeroCount = h.zeroCount;
      out.negativeSpans = h.negativeSpans;
      out.positiveSpans = h.positiveSpans;
      // A native histogram with no bucket at all still has a span (client_golang's no-op span).
      if (out.negativeSpans.length === 0 && out.positiveSpans.length === 0) out.positiveSpans = [{ offset: 0, length: 0 }];
      if (h.float) {
        out.negativeCounts = neg;
        out.positiveCounts = pos;
      } else {
        out.negativeDeltas = neg;
        out.positiveDeltas = pos;
      }
      out.exemplars = h.exemplars;
    }
    if (h.created !== undefined) out.createdTimestamp = h.created;
    return out;
  });
});

const UNKNOWN_FIELD = Uint8Array.of(99 << 3 & 0x7f | 0x80, 99 >> 4, 42); // field 99, varint 42

function metricOf(type: number): fc.Arbitrary<Metric> {
  const base = fc.record({ labels, timestampMs: fc.option(fc.integer({ min: -1e12, max: 4e12 }), { nil: undefined }), unknown: fc.boolean() });
  const value: fc.Arbitrary<Partial<Metric>> = type === TYPE.counter
    ? fc.record({ value: double, exemplar: fc.option(exemplar, { nil: undefined }), createdTimestamp: fc.option(timestamp, { nil: undefined }) })
      .map((c) => ({ counter: defined(c) }))
    : type === TYPE.gauge ? double.map((v) => ({ gauge: { value: v } }))
      : type === TYPE.untyped ? double.map((v) => ({ untyped: { value: v } }))
        : type === TYPE.summary
          ? fc.record({ sampleCount: count, sampleSum: double, quantiles: fc.array(fc.record({ quantile: fc.double({ min: 0, max: 1, noNaN: true }), value: double }).map((q) => ({ ...q })), { maxLength: 3 }) })
            .map((summary) => ({ summary: { ...summary } }))
          : histogram.map((h) => ({ histogram: h }));
  return fc.tuple(base, value).map(([b, v]) => {
    const m: Metric = { labels: b.labels, ...v, unknown: b.unknown ? [UNKNOWN_FIELD] : [] };
    if (b.timestampMs !== undefined) m.timestampMs = b.timestampMs;
    return m;
  });
}

const family: fc.Arbitrary<MetricFamily> = fc.record({
  name: fc.constantFrom('http_requests_total', 'latency_seconds', 'temperature', 'rpc', 'a.b', 'a_b', 'température'),
  type: fc.constantFrom(TYPE.counter, TYPE.gauge, TYPE.summary, TYPE.untyped, TYPE.histogram, TYPE.gaugeHistogram),
  help: fc.option(fc.string({ maxLength: 8 }), { nil: undefined }),
  unit: fc.option(fc.constantFrom('seconds', 'bytes'), { nil: undefined }),
}, { requiredKeys: ['name', 'type'] }).chain((f) => fc.array(metricOf(f.type), { minLength: 1, maxLength: 4 }).map((metrics) => ({
  ...Object.fromEntries(Object.entries(f).filter(([, v]) => v !== undefined)) as Pick<MetricFamily, 'name' | 'type' | 'help' | 'unit'>,
  metrics, unknown: [],
})));

const targetBodies = fc.array(fc.array(family, { maxLength: 4 }), { minLength: 1, maxLength: 3 });

function fetched(bodies: MetricFamily[][]): FetchedTarget[] {
  return bodies.map((families, i) => ({
    container: `c${i}`, endpoint: String(8080 + i), body: Buffer.from(encodeBody(families)), contentType: PROTOBUF_CONTENT_TYPE, durationSeconds: 0.001,
  }));
}

function seriesKey(labels: ReadonlyArray<readonly [string, string]>): string {
  return JSON.stringify(labels);
}

describe('protobuf exposition (property)', () => {
  test('any MetricFamily messages round-trip through the codec', () => {
    fc.assert(fc.property(fc.array(family, { maxLength: 5 }), (families) => {
      assert.deepEqual(decodeBody(encodeBody(families)), families);
    }), { numRuns: 300 });
  });

  for (const [scraper, accept] of [['Prometheus 3, UTF-8 names', ACCEPT.prometheus3Protobuf], ['Prometheus 2.42, legacy names', PROTOBUF]] as const) {
  const escaping = accept.protobufEscaping;
  test(`${scraper}: merged across targets, every metric served once with its container label, names escaped as the scraper asks, first type wins; in = out + counted drops`, () => {
    fc.assert(fc.property(targetBodies, (bodies) => {
      const drops = new DropCounter();
      const targets = fetched(bodies);
      const output = whole(mergeAnyFormat(targets, { containerLabel: 'container', accept }, drops));
      assert.equal(output.format, 'protobuf');
      assert.equal(output.contentType, PROTOBUF_CONTENT_TYPE);
      const served = decodeBody(new Uint8Array(output.body)).filter((f) => !f.name.startsWith('promux_'));
      // The expected answer, built from the inputs: one family per (escaped) name, its first type, each
      // series once, a metric whose label names escaping makes equal left out.
      const expected = new Map<string, MetricFamily>();
      let dropped = 0;
      bodies.forEach((families, i) => {
        for (const f of families) {
          const name = escapeName(f.name, escaping, true);
          let e = expected.get(name);
          if (e === undefined) expected.set(name, e = { name, type: f.type, help: f.help, unit: f.unit, metrics: [], unknown: [] });
          else if (e.type !== f.type) {
            dropped += f.metrics.length;
            continue;
          }
          e.help ??= f.help;
          e.unit ??= f.unit;
          for (const m of f.metrics) {
            const escaped = m.labels.map(([n, v]): [string, string] => [escapeName(n, escaping, false), v]);
            if (new Set(escaped.map(([n]) => n)).size !== escaped.length) {
              dropped++;
              continue;
            }
            const labels = withTargetLabels(escaped, [['container', `c${i}`]]);
            if (e.metrics.some((x) => seriesKey(x.labels) === seriesKey(labels))) dropped++;
            else e.metrics.push({ ...m, labels });
          }
        }
      });
      // A family left without metrics is not served.
      for (const [name, f] of expected) if (f.metrics.length === 0) expected.delete(name);
      assert.deepEqual(served.map((f) => f.name), [...expected.values()].map((f) => f.name));
      for (const f of served) {
        const e = expected.get(f.name)!;
        assert.equal(f.type, e.type);
        assert.equal(f.help, e.help);
        assert.equal(f.unit, e.unit);
        // Labels in any order (Prometheus sorts them): the target's come first.
        const sorted = (m: Metric): Metric => ({ ...m, labels: m.labels.toSorted(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) });
        assert.deepStrictEqual(f.metrics.map(sorted), e.metrics.map((m) => sorted({ ...m, unknown: m.unknown.map((u) => new Uint8Array(u)) })));
        for (const m of f.metrics) assert.equal(m.labels.filter(([n]) => n === 'container').length, 1);
        if (escaping !== 'allow-utf-8') {
          assert.ok(isLegacyMetricName(f.name), f.name);
          for (const m of f.metrics) for (const [n] of m.labels) assert.ok(isLegacyLabelName(n), n);
        }
      }
      const counted = targets.reduce((sum, t) => sum + DROP_REASONS.reduce((s, r) => s + drops.get(t, r), 0), 0);
      const inCount = bodies.flat().reduce((n, f) => n + f.metrics.length, 0);
      const outCount = served.reduce((n, f) => n + f.metrics.length, 0);
      assert.equal(counted, dropped);
      assert.equal(inCount, outCount + counted);
      // promux_target_samples says the same per target.
      const samples = decodeBody(output.body).find((f) => f.name === 'promux_target_samples')!;
      const perTarget = samples.metrics.map((m) => m.gauge!.value!);
      assert.equal(perTarget.reduce((a, b) => a + b, 0), outCount);
    }), { numRuns: 200 });
  });
  }

  test('for a scraper without protobuf: classic buckets served, native histograms counted as native_histogram_unsupported_by_scraper', () => {
    fc.assert(fc.property(targetBodies, (bodies) => {
      // Timestamps before 1970, which text cannot carry, are the text merge's business (merge.property.test.ts).
      for (const m of bodies.flat().flatMap((f) => f.metrics)) if (m.timestampMs !== undefined) m.timestampMs = Math.abs(m.timestampMs);
      // So are names that escaping makes equal: the legacy twins of the UTF-8 names drawn are left out.
      // And series that repeat another only once `container` is served as exported_container: each of
      // their samples is a repeat or not (as Prometheus counts its own exported_ labels), so such a
      // histogram is served in part, which the count of buckets below does not model.
      bodies = bodies.map((body) => body.filter((f) => !LEGACY_TWINS.has(f.name)).map((f) => ({
        ...f, metrics: f.metrics.map((m) => ({ ...m, labels: m.labels.filter(([n]) => !LEGACY_TWINS.has(n) && n !== 'exported_container') })),
      })));
      const drops = new DropCounter();
      const targets = fetched(bodies);
      const output = whole(mergeAnyFormat(targets, { containerLabel: 'container', accept: ACCEPT.prometheus2 }, drops));
      assert.notEqual(output.format, 'protobuf');
      const families = readExposition(output.body.toString(), output.format as 'text' | 'openmetrics');
      // Each body as the conversion serves it: families of one name joined (a later type dropped), each series once.
      const converted = bodies.map((body) => {
        const byName = new Map<string, MetricFamily>();
        for (const f of body) {
          const first = byName.get(f.name);
          if (first === undefined) byName.set(f.name, { ...f, metrics: [...f.metrics] });
          else if (first.type === f.type) first.metrics.push(...f.metrics);
        }
        return [...byName.values()].map((f) => ({
          ...f, metrics: f.metrics.filter((m, k, all) => !all.slice(0, k).some((e) => seriesKey(e.labels) === seriesKey(m.labels))),
        }));
      });
      converted.forEach((body, i) => {
        const native = body.flatMap((f) => f.metrics)
          .filter((m) => m.histogram !== undefined && isNative(m.histogram) && !m.labels.some(([n]) => n === 'le')).length;
        assert.equal(drops.get(targets[i]!, 'native_histogram_unsupported_by_scraper'), native);
      });
      // What the conversion serves of each body: no histogram with only native buckets or an `le` label
      // (a family left without metrics is not served, and declares no type).
      const servable = converted.map((body) => body.map((f) => ({
        ...f,
        metrics: f.metrics.filter((m) => m.histogram === undefined ||
          (!m.labels.some(([n]) => n === 'le') && !(m.histogram.buckets.length === 0 && isNative(m.histogram)))),
      })).filter((f) => f.metrics.length > 0));
      // Every classic bucket (and the implicit +Inf one) of every histogram served, by container: those
      // of a type clash, a repeated series or an `le` label left out.
      const firstType = new Map<string, number | undefined>();
      servable.forEach((body, i) => {
        let expected = 0;
        for (const f of body) {
          // Served as text, a gauge histogram is a histogram of its buckets (and _gcount, _gsum gauges).
          const type = output.format === 'text' && f.type === TYPE.gaugeHistogram ? TYPE.histogram : f.type;
          if (!firstType.has(f.name)) firstType.set(f.name, type);
          if (firstType.get(f.name) !== type || (type !== TYPE.histogram && type !== TYPE.gaugeHistogram)) continue;
          for (const m of f.metrics) {
            const h = m.histogram!;
            if (m.labels.some(([n]) => n === 'le') || (h.buckets.length === 0 && isNative(h))) continue;
            expected += h.buckets.length + (h.buckets.some((b) => b.upperBound === Infinity) ? 0 : 1);
          }
        }
        const served = families.filter((f) => f.type === 'histogram' || f.type === 'gaugehistogram').flatMap((f) => f.samples)
          .filter((s) => s.name.endsWith('_bucket') && s.labels.some(([n, v]) => n === 'container' && v === `c${i}`)).length;
        assert.equal(served, expected, output.body.toString());
      });
    }), { numRuns: 100 });
  });
});
