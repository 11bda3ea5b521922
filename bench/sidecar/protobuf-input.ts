// The sidecar benchmark's expositions in the protobuf format, as client_golang would serve them: the
// text body converted by promux's own conversion (parse.ts and protobuf/from-text.ts), plus native
// histograms (one per 50 series, with negative and positive spans and a zero bucket), which only
// protobuf carries.
import { parseBody } from '../../src/sidecar/exposition/parse.ts';
import { encodeBody, TYPE, type Metric, type MetricFamily } from '../../src/sidecar/exposition/protobuf/codec.ts';
import { familiesOfText } from '../../src/sidecar/exposition/protobuf/from-text.ts';

function nativeHistogram(seed: number): Metric['histogram'] {
  const deltas = (n: number): number[] => Array.from({ length: n }, (_, i) => ((seed * 7 + i * 13) % 9) - 4);
  return {
    sampleCount: 1000 + seed, sampleSum: seed * 0.37, schema: 3, zeroThreshold: 2.938735877055719e-39, zeroCount: seed % 5,
    negativeSpans: [{ offset: -3, length: 2 }], negativeDeltas: deltas(2), negativeCounts: [],
    positiveSpans: [{ offset: 1, length: 8 }, { offset: 3, length: 6 }], positiveDeltas: deltas(14), positiveCounts: [],
    buckets: [], exemplars: [], createdTimestamp: { seconds: 1700000000, nanos: 0 },
  };
}

/** `text` (text 0.0.4) as a delimited MetricFamily body, with native histograms added. */
export function protobufExposition(app: string, text: string): Buffer {
  const parsed = parseBody(Buffer.from(text), 'text', ['container']);
  const families: MetricFamily[] = familiesOfText(parsed);
  const natives = Math.ceil(parsed.samples / 50);
  families.push({
    name: `${app}_rpc_native_seconds`, help: 'RPC latency, native buckets.', type: TYPE.histogram, unknown: [],
    metrics: Array.from({ length: natives }, (_, i) => ({
      labels: [['method', `m${i % 40}`], ['peer', `p${Math.floor(i / 40)}`]], histogram: nativeHistogram(i), unknown: [],
    })),
  });
  return Buffer.from(encodeBody(families));
}
