// A text or OpenMetrics body, as parse.ts scanned it, converted into MetricFamily messages for a
// protobuf answer, as Prometheus' parsers read the same samples: a histogram's `_bucket`, `_count`,
// `_sum` and `_created` samples become one Histogram, a summary's quantiles one Summary, an
// OpenMetrics counter `foo` the counter family `foo_total` with its created timestamp, info `foo` the
// gauge `foo_info`, a stateset a gauge; exemplars and timestamps kept.

import {
  F_DROPPED, F_HAS_TARGET_LABEL, Part, PART_MASK, PART_SHIFT, R_END, R_EXEMPLAR_START, R_FLAGS, R_LABELS_END, R_LABELS_START, R_REST, R_TS_END,
  R_TS_START, R_VALUE_END, RECORD_SIZE, servedLabels, splitLabels, unescapeLabelValue, type MetricType, type ParsedBody,
} from '../parse.ts';
import { TYPE, type Exemplar, type LabelPairs, type Metric, type MetricFamily, type Timestamp } from './codec.ts';

/** A converted family; `samples[i]` is how many of the body's samples metrics[i] holds. */
export interface ConvertedFamily extends MetricFamily {
  samples: number[];
}

const PROTO_TYPE: Record<MetricType, number> = {
  counter: TYPE.counter, gauge: TYPE.gauge, untyped: TYPE.untyped, histogram: TYPE.histogram, summary: TYPE.summary,
  gaugehistogram: TYPE.gaugeHistogram, stateset: TYPE.gauge, info: TYPE.gauge,
};

/** A sample value or label number as Go's strconv.ParseFloat reads it (Inf and NaN in any case, signed). */
export function parseFloat64(s: string): number {
  const n = Number(s);
  if (!Number.isNaN(n) || s === '') return n;
  const lower = s.toLowerCase();
  const sign = lower.startsWith('-') ? -1 : 1;
  const unsigned = lower.replace(/^[+-]/, '');
  if (unsigned === 'inf' || unsigned === 'infinity') return sign * Infinity;
  if (unsigned === 'nan') return NaN;
  return Number(s);
}

function secondsToTimestamp(seconds: number): Timestamp {
  const whole = Math.floor(seconds);
  return { seconds: whole, nanos: Math.round((seconds - whole) * 1e9) };
}

function timestampMsOf(buf: Buffer, record: Int32Array, r: number, openMetrics: boolean): number | undefined {
  const start = record[r + R_TS_START]!;
  if (start < 0) return undefined;
  const raw = buf.toString('latin1', start, record[r + R_TS_END]);
  // OpenMetrics timestamps are seconds; Prometheus truncates them to milliseconds.
  return openMetrics ? Math.trunc(parseFloat64(raw) * 1000) : Number(raw);
}

/** `# {a="b"} 1 1.5` into an Exemplar. */
function exemplarOf(buf: Buffer, start: number, end: number): Exemplar | undefined {
  if (start < 0) return undefined;
  const open = buf.indexOf(0x7b, start);
  let close = open + 1;
  while (close < end && buf[close] !== 0x7d) close += buf[close] === 0x22 ? quotedLength(buf, close) : 1;
  const labels: LabelPairs = splitLabels(buf, open + 1, close).map(([n, v]) => [n, unescapeLabelValue(v)]);
  const [value, ts] = buf.toString('latin1', close + 1, end).trim().split(/[ \t]+/);
  const exemplar: Exemplar = { labels, value: parseFloat64(value ?? 'NaN') };
  if (ts !== undefined) exemplar.timestamp = secondsToTimestamp(parseFloat64(ts));
  return exemplar;
}

function quotedLength(buf: Buffer, p: number): number {
  let q = p + 1;
  while (buf[q] !== 0x22) q += buf[q] === 0x5c ? 2 : 1;
  return q + 1 - p;
}

function isInteger(v: number): boolean {
  return Number.isSafeInteger(v) && v >= 0;
}

/** Every family of a parsed body (its samples flagged F_DROPPED left out), with the target's labels not yet added. */
export function familiesOfText(parsed: ParsedBody): ConvertedFamily[] {
  const out: ConvertedFamily[] = [];
  const buf = parsed.body;
  const records = parsed.records;
  const openMetrics = parsed.format === 'openmetrics';
  for (const family of parsed.families) {
    const type = family.type;
    if (type === undefined) continue;
    const name = !openMetrics ? family.name
      : type === 'counter' ? `${family.name}_total` : type === 'info' ? `${family.name}_info` : family.name;
    const converted: ConvertedFamily = {
      name, type: PROTO_TYPE[type], metrics: [], samples: [], unknown: [],
      ...(family.help === undefined ? {} : { help: family.help }),
      ...(family.unit === undefined ? {} : { unit: family.unit }),
    };
    /** Metrics by their labels (without `le` or `quantile`), for the types whose samples make one metric. */
    const grouped = new Map<string, number>();
    /** The metric of the sample before: a histogram's or summary's samples mostly follow each other. */
    let last: number | undefined;
    const groups = type === 'histogram' || type === 'gaugehistogram' || type === 'summary' || (openMetrics && type === 'counter');
    for (let run = 0; run < family.runs.length; run += 2) {
      for (let s = family.runs[run]!; s < family.runs[run + 1]!; s++) {
        const r = s * RECORD_SIZE;
        const flags = records[r + R_FLAGS]!;
        if ((flags & F_DROPPED) !== 0) continue;
        const part = (flags >> PART_SHIFT) & PART_MASK;
        const all = labelsOf(buf, records[r + R_LABELS_START]!, records[r + R_LABELS_END]!, flags, parsed.targetLabels);
        const special = type === 'summary' ? 'quantile' : type === 'histogram' || type === 'gaugehistogram' ? 'le' : undefined;
        const labels = special === undefined ? all : all.filter(([n]) => n !== special);
        const value = parseFloat64(buf.toString('latin1', records[r + R_REST]!, records[r + R_VALUE_END]!).trim());
        const timestampMs = timestampMsOf(buf, records, r, openMetrics);
        const exemplar = exemplarOf(buf, records[r + R_EXEMPLAR_START]!, records[r + R_END]!);
        let index: number | undefined;
        if (groups && last !== undefined && sameLabels(labels, converted.metrics[last]!.labels)) index = last;
        else if (groups) {
          const key = groupKey(labels);
          index = grouped.get(key);
          if (index === undefined) {
            index = converted.metrics.length;
            grouped.set(key, index);
            converted.metrics.push(emptyMetric(type, labels));
            converted.samples.push(0);
          }
          last = index;
        } else {
          index = converted.metrics.length;
          converted.metrics.push(emptyMetric(type, labels));
          converted.samples.push(0);
        }
        const metric = converted.metrics[index]!;
        converted.samples[index]!++;
        if (timestampMs !== undefined && metric.timestampMs === undefined) metric.timestampMs = timestampMs;
        fill(metric, part, value, all.find(([n]) => n === special)?.[1], exemplar);
      }
    }
    if (converted.metrics.length > 0) out.push(converted);
  }
  return out;
}

/** The same labels in the same order. */
function sameLabels(a: LabelPairs, b: LabelPairs): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i]![0] !== b[i]![0] || a[i]![1] !== b[i]![1]) return false;
  return true;
}

/**
 * A label set as a string, the same for any order of its labels: names and values joined in name
 * order. A scan's labels are nearly always in name order already: sorted only when not.
 */
function groupKey(labels: LabelPairs): string {
  let ordered = true;
  for (let i = 1; i < labels.length && ordered; i++) ordered = labels[i - 1]![0] < labels[i]![0];
  const sorted = ordered ? labels : [...labels].sort((a, b) => (a[0] !== b[0] ? (a[0] < b[0] ? -1 : 1) : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  let key = '';
  for (let i = 0; i < sorted.length; i++) key += `${i === 0 ? '' : '\u0001'}${sorted[i]![0]}\u0000${sorted[i]![1]}`;
  return key;
}

/** A sample's labels, unescaped; one of the names promux adds renamed exported_<name> (servedLabels). */
function labelsOf(buf: Buffer, start: number, end: number, flags: number, targetLabels: readonly string[]): LabelPairs {
  const raw = (flags & F_HAS_TARGET_LABEL) !== 0 ? servedLabels(buf, start, end, targetLabels) : splitLabels(buf, start, end);
  for (const pair of raw) if (pair[1].includes('\\')) pair[1] = unescapeLabelValue(pair[1]);
  return raw;
}

function emptyMetric(type: MetricType, labels: LabelPairs): Metric {
  const m: Metric = { labels, unknown: [] };
  switch (type) {
    case 'counter': m.counter = {}; break;
    case 'histogram': case 'gaugehistogram':
      m.histogram = {
        buckets: [], negativeSpans: [], negativeDeltas: [], negativeCounts: [], positiveSpans: [], positiveDeltas: [], positiveCounts: [],
        exemplars: [],
      };
      break;
    case 'summary': m.summary = { quantiles: [] }; break;
    case 'untyped': m.untyped = {}; break;
    default: m.gauge = {};
  }
  return m;
}

function fill(m: Metric, part: number, value: number, special: string | undefined, exemplar: Exemplar | undefined): void {
  if (m.counter !== undefined) {
    if (part === Part.created) m.counter.createdTimestamp = secondsToTimestamp(value);
    else {
      m.counter.value = value;
      if (exemplar !== undefined) m.counter.exemplar = exemplar;
    }
  } else if (m.histogram !== undefined) {
    const h = m.histogram;
    if (part === Part.bucket) {
      h.buckets.push({
        upperBound: parseFloat64(special ?? 'NaN'),
        ...(isInteger(value) ? { cumulativeCount: value } : { cumulativeCountFloat: value }),
        ...(exemplar === undefined ? {} : { exemplar }),
      });
    } else if (part === Part.count || part === Part.gcount) {
      if (isInteger(value)) h.sampleCount = value;
      else h.sampleCountFloat = value;
    } else if (part === Part.sum || part === Part.gsum) h.sampleSum = value;
    else if (part === Part.created) h.createdTimestamp = secondsToTimestamp(value);
  } else if (m.summary !== undefined) {
    const s = m.summary;
    if (part === Part.count) s.sampleCount = isInteger(value) ? value : Math.trunc(value);
    else if (part === Part.sum) s.sampleSum = value;
    else if (part === Part.created) s.createdTimestamp = secondsToTimestamp(value);
    else s.quantiles.push({ quantile: parseFloat64(special ?? 'NaN'), value });
  } else if (m.untyped !== undefined) m.untyped.value = value;
  else m.gauge!.value = value;
}
