// A protobuf body converted to OpenMetrics for a scraper that does not take protobuf, so that the text
// merge serves it like any OpenMetrics target: no series renamed (a counter `foo_total` is the
// OpenMetrics counter `foo`; a counter without that suffix, and untyped, are `unknown`), exemplars,
// timestamps and created timestamps kept, classic histogram buckets kept (with the `+Inf` bucket
// protobuf leaves implicit). Native histogram buckets have no text form: a histogram with only them
// is dropped (one sample), one with classic buckets too is served with them and its native part
// counted dropped (one sample), both as `native_histogram_unsupported_by_scraper`.

import { escapeHelp, escapeLabelValue } from '../merge.ts';
import { isLegacyLabelName, isLegacyMetricName, quoteName } from '../names.ts';
import {
  decodeBody, TYPE, type Exemplar, type Histogram, type LabelPairs, type Metric, type MetricFamily, type Timestamp,
} from './codec.ts';

export interface ConvertedBody {
  body: Buffer;
  /** Native histograms left out (see the top of this file). */
  nativeDropped: number;
  /** Histograms with an `le` label, summaries with a `quantile` label: text cannot tell it from the bucket's or quantile's. */
  invalidLabels: number;
  /** Metrics repeating an earlier metric's labels in their family: only the first is served, whole. */
  duplicates: number;
  /** Metrics of a family that repeats an earlier family's name with another type. */
  typeConflicts: number;
}

function formatNumber(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function seconds(t: Timestamp): string {
  return formatNumber(t.seconds + t.nanos / 1e9);
}

/** Has any of the fields Prometheus reads as a native histogram. */
export function isNative(h: Histogram): boolean {
  return h.positiveSpans.length > 0 || h.negativeSpans.length > 0 || (h.zeroThreshold ?? 0) > 0 ||
    (h.zeroCount ?? 0) > 0 || (h.zeroCountFloat ?? 0) > 0;
}

function labelText(labels: LabelPairs): string {
  return labels.map(([n, v]) => `${isLegacyLabelName(n) ? n : quoteName(n)}="${escapeLabelValue(v)}"`).join(',');
}

/** `name{labels}` (a UTF-8 name quoted inside the braces). */
function series(name: string, labels: LabelPairs): string {
  const text = labelText(labels);
  if (isLegacyMetricName(name)) return text === '' ? name : `${name}{${text}}`;
  return `{${quoteName(name)}${text === '' ? '' : `,${text}`}}`;
}

function exemplarText(e: Exemplar | undefined): string {
  if (e === undefined) return '';
  return ` # {${labelText(e.labels)}} ${formatNumber(e.value ?? 0)}${e.timestamp === undefined ? '' : ` ${seconds(e.timestamp)}`}`;
}

export function protobufToOpenMetrics(protobuf: Buffer): ConvertedBody {
  let out = '';
  let nativeDropped = 0;
  let invalidLabels = 0;
  let duplicates = 0;
  let typeConflicts = 0;
  // Families of one name are one family (their metrics joined), as in the protobuf merge.
  const byName = new Map<string, MetricFamily>();
  for (const family of decodeBody(protobuf)) {
    const first = byName.get(family.name);
    if (first === undefined) byName.set(family.name, family);
    else if ((first.type ?? TYPE.counter) !== (family.type ?? TYPE.counter)) typeConflicts += family.metrics.length;
    else first.metrics.push(...family.metrics);
  }
  for (const family of byName.values()) {
    const type = family.type ?? TYPE.counter;
    let name = family.name;
    let omType: string;
    switch (type) {
      case TYPE.counter:
        omType = name.endsWith('_total') && name.length > 6 ? 'counter' : 'unknown';
        if (omType === 'counter') name = name.slice(0, -6);
        break;
      case TYPE.gauge: omType = 'gauge'; break;
      case TYPE.summary: omType = 'summary'; break;
      case TYPE.histogram: omType = 'histogram'; break;
      case TYPE.gaugeHistogram: omType = 'gaugehistogram'; break;
      default: omType = 'unknown';
    }
    let lines = '';
    const seen = new Set<string>();
    for (const m of family.metrics) {
      const key = JSON.stringify(m.labels.toSorted(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
      if (seen.has(key)) {
        duplicates++;
        continue;
      }
      seen.add(key);
      const ts = m.timestampMs === undefined ? '' : ` ${formatNumber(m.timestampMs / 1000)}`;
      const sample = (suffix: string, labels: LabelPairs, value: number, exemplar?: Exemplar): void => {
        lines += `${series(name + suffix, labels)} ${formatNumber(value)}${ts}${exemplarText(exemplar)}\n`;
      };
      if (omType === 'counter' || (type === TYPE.counter && m.counter !== undefined)) {
        const c = m.counter ?? {};
        sample(omType === 'counter' ? '_total' : '', m.labels, c.value ?? 0, omType === 'counter' ? c.exemplar : undefined);
        if (omType === 'counter' && c.createdTimestamp !== undefined) lines += `${series(`${name}_created`, m.labels)} ${seconds(c.createdTimestamp)}${ts}\n`;
      } else if (type === TYPE.summary && m.summary !== undefined) {
        const s = m.summary;
        if (m.labels.some(([n]) => n === 'quantile')) {
          invalidLabels++;
          continue;
        }
        for (const q of s.quantiles) sample('', [...m.labels, ['quantile', formatNumber(q.quantile ?? 0)]], q.value ?? 0);
        sample('_sum', m.labels, s.sampleSum ?? 0);
        sample('_count', m.labels, s.sampleCount ?? 0);
        if (s.createdTimestamp !== undefined) sample('_created', m.labels, Number(seconds(s.createdTimestamp)));
      } else if ((type === TYPE.histogram || type === TYPE.gaugeHistogram) && m.histogram !== undefined) {
        const h = m.histogram;
        if (m.labels.some(([n]) => n === 'le')) {
          invalidLabels++;
          continue;
        }
        if (h.buckets.length === 0 && isNative(h)) {
          nativeDropped++;
          continue;
        }
        if (isNative(h)) nativeDropped++;
        writeHistogram(m, h, type === TYPE.gaugeHistogram, sample);
      } else {
        sample('', m.labels, m.gauge?.value ?? m.untyped?.value ?? m.counter?.value ?? NaN);
      }
    }
    if (lines === '') continue;
    const head = isLegacyMetricName(name) ? name : quoteName(name);
    out += `# TYPE ${head} ${omType}\n`;
    if (family.help !== undefined && family.help !== '') out += `# HELP ${head} ${escapeHelp(family.help, true)}\n`;
    if (family.unit !== undefined && family.unit !== '') out += `# UNIT ${head} ${family.unit}\n`;
    out += lines;
  }
  out += '# EOF\n';
  return { body: Buffer.from(out, 'utf8'), nativeDropped, invalidLabels, duplicates, typeConflicts };
}

function writeHistogram(
  m: Metric, h: Histogram, gauge: boolean, sample: (suffix: string, labels: LabelPairs, value: number, exemplar?: Exemplar) => void,
): void {
  const count = h.sampleCountFloat !== undefined && h.sampleCountFloat > 0 ? h.sampleCountFloat : h.sampleCount ?? 0;
  let inf = false;
  for (const b of h.buckets) {
    const bound = b.upperBound ?? 0;
    if (bound === Infinity) inf = true;
    const cumulative = b.cumulativeCountFloat !== undefined && b.cumulativeCountFloat > 0 ? b.cumulativeCountFloat : b.cumulativeCount ?? 0;
    sample('_bucket', [...m.labels, ['le', formatNumber(bound)]], cumulative, b.exemplar);
  }
  if (!inf) sample('_bucket', [...m.labels, ['le', '+Inf']], count);
  sample(gauge ? '_gcount' : '_count', m.labels, count);
  sample(gauge ? '_gsum' : '_sum', m.labels, h.sampleSum ?? 0);
  if (!gauge && h.createdTimestamp !== undefined) sample('_created', m.labels, h.createdTimestamp.seconds + h.createdTimestamp.nanos / 1e9);
}
