// The protobuf answer: every target's families (protobuf as served; text and OpenMetrics converted
// by from-text.ts, then read the same way) merged into one MetricFamily per name, promux's own
// families first, then the targets' in first-seen order (in target order), each family's metrics
// grouped by target in body order. A metric is copied byte for byte from its body (native and
// classic histogram fields, exemplars, created timestamps, fields promux does not know), the
// target's labels written before its own (Prometheus sorts a metric's labels); only a metric that
// has a label of the same name is read and written anew, that label renamed exported_<label>.
// No object per metric: a family's metrics are offsets into their body.
//
// For a scraper that takes no UTF-8 names (Prometheus 2.x rejects a whole scrape for one), names
// outside the legacy set are escaped as in text (escapeName): a family's name costs nothing (it is
// not in its metrics' bytes), a metric with such a label name is read and written anew; a metric
// that escaping makes repeat another, or whose label names it makes equal, is dropped and counted
// escaping_conflict.
//
// A "sample" of a target here is one Metric message (a histogram with all its buckets is one; a text
// target's samples, converted, are counted the same way).

import { targetLabelNames, targetLabels, type DropCounter, type DropReason } from '../drops.ts';
import { isProtobufContentType } from '../content-type.ts';
import { detectFormat, ExpositionError, parseBody, releaseRecords } from '../parse.ts';
import { escapeName } from '../names.ts';
import { ownSeries, OWN_FAMILY_LIST, totalName } from '../own.ts';
import type { AnyMergeOutput, Escaping, FetchedTarget, MergeOptions, TargetLabels, TargetOutcome } from '../types.ts';
import {
  encodeBody, labelHash, metricLabelsHash, ProtobufError, PROTOBUF_CONTENT_TYPE, rawMetric, rawMetricAt, scanFamilies, TYPE, Writer,
  type LabelPairs, type RawMetric,
} from './codec.ts';
import { familiesOfText } from './from-text.ts';

/** A target's metrics of one family: offsets into its body. */
interface Source {
  target: number;
  /** The family's name as the target served it (before escaping). */
  served: string;
  body: Uint8Array;
  /** [start, end) of each metric served, two numbers per metric. */
  metrics: number[];
  /** Metrics (by their index in `metrics` / 2) whose labels are written anew. */
  rewritten: Map<number, Rewritten> | undefined;
}

interface Rewritten extends RawMetric {
  /** A label name was escaped. */
  escaped: boolean;
}

interface OutFamily {
  name: string;
  type: number;
  help?: string;
  unit?: string;
  unknown: Uint8Array[];
  sources: Source[];
  /** promux's own metrics. */
  own: RawMetric[];
  /** Label set hashes served (labels promux adds included), with the metrics that have them, to find repeats. */
  seen: Map<number, Array<[Source, number]>>;
  /** The names the targets served this family as (more than one when escaping made them equal). */
  served: Set<string>;
}

const utf8 = new TextEncoder();

/** The labels of a metric as served: the target's added, an existing one of those names renamed exported_<name> (again while taken). */
export function withTargetLabels(labels: LabelPairs, added: TargetLabels): LabelPairs {
  if (added.length === 0) return labels;
  const names = new Set(labels.map(([n]) => n));
  const out: LabelPairs = labels.map(([name, value]) => {
    if (!added.some(([a]) => a === name)) return [name, value];
    let exported = `exported_${name}`;
    while (names.has(exported)) exported = `exported_${exported}`;
    return [exported, value];
  });
  for (const [name, value] of added) out.push([name, value]);
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

function labelsHash(labels: ReadonlyArray<readonly [string, string]>): number {
  let sum = 0;
  for (const [name, value] of labels) sum = (sum + labelHash(utf8.encode(name), utf8.encode(value))) >>> 0;
  return sum;
}

function sameLabels(a: LabelPairs, b: LabelPairs): boolean {
  const key = (l: LabelPairs): string => JSON.stringify([...l].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0)));
  return key(a) === key(b);
}

/** The target's body as protobuf: as served, or its text converted (with the drops its scan counted). */
function protobufBodyOf(target: FetchedTarget, containerLabel: string, drops: DropCounter): Uint8Array {
  const body = target.body!;
  if (isProtobufContentType(target.contentType)) return body;
  const parsed = target.parsed ?? parseBody(body, detectFormat(target.contentType, body), targetLabelNames(target, containerLabel));
  target.parsed = undefined;
  if (parsed instanceof ExpositionError) throw parsed;
  for (const [reason, n] of [['duplicate_series', parsed.duplicates], ['invalid_label', parsed.invalidLabels],
    ['invalid_timestamp', parsed.invalidTimestamps]] as Array<[DropReason, number]>) {
    if (n > 0) drops.add(target, reason, n);
  }
  // Labels promux adds were renamed by the scan already (servedLabels): they come back as exported_<name>.
  const converted = encodeBody(familiesOfText(parsed));
  releaseRecords(parsed.records);
  return converted;
}

/** Merges every target into one delimited protobuf body; see types.ts for the contract. */
export function mergeProtobuf(targets: FetchedTarget[], options: MergeOptions, drops: DropCounter): AnyMergeOutput {
  const label = options.containerLabel;
  const escaping = options.accept.protobufEscaping;
  const escapeLabels = escaping !== 'allow-utf-8';
  const outcomes: TargetOutcome[] = [];
  const out = new Map<string, OutFamily>();
  const add = (name: string, type: number, help: string | undefined, unit: string | undefined, unknown: Uint8Array[]): OutFamily => {
    const family: OutFamily = { name, type, help, unit, unknown, sources: [], own: [], seen: new Map(), served: new Set() };
    out.set(name, family);
    return family;
  };
  const own = OWN_FAMILY_LIST.map((f) => add(totalName(f), f.type === 'counter' ? TYPE.counter : TYPE.gauge, f.help, f.unit, []));
  const ownNames = new Set(out.keys());
  for (const family of out.values()) family.served.add(family.name);
  /** Per target: its labels as encoded LabelPair fields, written before each of its metrics. */
  const labelFields: Uint8Array[] = [];
  let bytes = 0;

  for (let t = 0; t < targets.length; t++) {
    const target = targets[t]!;
    drops.track(target);
    const outcome: TargetOutcome = {
      container: target.container, endpoint: target.endpoint, ...(target.labels === undefined ? {} : { labels: target.labels }), up: false, samples: 0,
    };
    outcomes.push(outcome);
    const added = targetLabels(target, label);
    const fields = new Writer(256);
    for (const [name, value] of added) {
      fields.message(1, () => {
        fields.string(1, name);
        fields.string(2, value);
      });
    }
    labelFields.push(fields.finish());
    if (target.body === undefined) {
      outcome.error = target.error ?? 'no response';
      continue;
    }
    let body: Uint8Array;
    let families;
    try {
      body = protobufBodyOf(target, label, drops);
      families = scanFamilies(body);
    } catch (e) {
      if (e instanceof ProtobufError) outcome.error = `invalid protobuf exposition: ${e.message}`;
      else if (e instanceof ExpositionError) outcome.error = `invalid ${detectFormat(target.contentType, target.body)} exposition: ${e.message}`;
      else throw e;
      continue;
    }
    outcome.up = true;
    bytes += body.length;
    const names = added.map(([name]) => utf8.encode(name));
    const addedHash = labelsHash(added);
    const drop = (reason: DropReason, samples: number): void => {
      outcome.samples -= samples;
      drops.add(target, reason, samples);
    };
    for (const family of families) {
      const count = family.metrics.length / 2;
      outcome.samples += count;
      const type = family.type ?? TYPE.counter; // metrics.proto's default
      const name = escapeName(family.name, escaping, true);
      let served = out.get(name);
      if (served === undefined) {
        served = add(name, type, family.help, family.unit, family.unknown);
        served.served.add(family.name);
      } else if (served.type !== type || ownNames.has(name)) {
        drop(served.served.has(family.name) ? 'type_conflict' : 'escaping_conflict', count);
        continue;
      } else {
        served.served.add(family.name);
        served.help ??= family.help;
        served.unit ??= family.unit;
      }
      const source: Source = { target: t, served: family.name, body, metrics: [], rewritten: undefined };
      served.sources.push(source);
      const metrics = family.metrics;
      for (let i = 0; i < metrics.length; i += 2) {
        const start = metrics[i]!;
        const end = metrics[i + 1]!;
        let hash = metricLabelsHash(body, start, end, names, escapeLabels);
        let rewritten: Rewritten | undefined;
        if (Number.isNaN(hash)) {
          const raw = rawMetricAt(body, start, end);
          const escaped = escapedLabels(raw.labels, escaping);
          if (escaped === undefined) {
            drop('escaping_conflict', 1);
            continue;
          }
          rewritten = { labels: withTargetLabels(escaped, added), fields: raw.fields, escaped: escaped !== raw.labels };
          hash = labelsHash(rewritten.labels);
        } else {
          hash = (hash + addedHash) >>> 0;
        }
        const index = source.metrics.length / 2;
        const same = served.seen.get(hash);
        if (same !== undefined) {
          const labels = rewritten?.labels ?? withTargetLabels(rawMetricAt(body, start, end).labels, added);
          const repeated = same.find(([s, k]) => sameLabels(labels, labelsOf(s, k, targets, label)));
          if (repeated !== undefined) {
            // A repeat of what the target served is a duplicate; one that escaping made is a conflict.
            const [s, k] = repeated;
            const asServed = s.served === source.served && rewritten?.escaped !== true && s.rewritten?.get(k)?.escaped !== true;
            drop(asServed ? 'duplicate_series' : 'escaping_conflict', 1);
            continue;
          }
          same.push([source, index]);
        } else {
          served.seen.set(hash, [[source, index]]);
        }
        source.metrics.push(start, end);
        if (rewritten !== undefined) (source.rewritten ??= new Map()).set(index, rewritten);
      }
    }
  }
  drops.retain(targets);

  const series = ownSeries(targets, outcomes, drops, label);
  for (let f = 0; f < series.length; f++) {
    const counter = series[f]!.family.type === 'counter';
    for (const { labels, value } of series[f]!.samples) {
      // Sorted, as Prometheus sorts a metric's labels (withTargetLabels adds them to none).
      const sorted = withTargetLabels([], labels);
      own[f]!.own.push(rawMetric(counter ? { labels: sorted, counter: { value }, unknown: [] } : { labels: sorted, gauge: { value }, unknown: [] }));
    }
  }

  const served = outcomes.reduce((n, o) => n + o.samples, 0);
  const w = new Writer(bytes + served * (labelFields.reduce((n, f) => Math.max(n, f.length), 0) + 4) + 64 * 1024);
  for (const family of out.values()) {
    if (family.own.length === 0 && family.sources.every((s) => s.metrics.length === 0)) continue;
    w.message(0, () => {
      w.string(1, family.name);
      w.string(2, family.help);
      w.uint(3, family.type);
      for (const m of family.own) writeMetric(w, m);
      for (const source of family.sources) {
        const { body, metrics, rewritten } = source;
        const fields = labelFields[source.target]!;
        for (let i = 0; i < metrics.length; i += 2) {
          const kept = rewritten?.get(i / 2);
          if (kept !== undefined) writeMetric(w, kept);
          else {
            w.message(4, () => {
              w.bytes(fields);
              w.bytes(body.subarray(metrics[i]!, metrics[i + 1]!));
            });
          }
        }
      }
      w.string(5, family.unit);
      for (const u of family.unknown) w.bytes(u);
    });
  }
  const result = w.finish();
  const body = Buffer.from(result.buffer, result.byteOffset, result.byteLength);
  return { body, contentType: PROTOBUF_CONTENT_TYPE, format: 'protobuf', targets: outcomes };
}

/**
 * The labels with their names escaped for the scraper (the same array when none changes), or
 * undefined when escaping makes two of them equal.
 */
function escapedLabels(labels: LabelPairs, escaping: Escaping): LabelPairs | undefined {
  if (escaping === 'allow-utf-8') return labels;
  let changed = false;
  const escaped = labels.map(([name, value]): [string, string] => {
    const written = escapeName(name, escaping, false);
    if (written !== name) changed = true;
    return [written, value];
  });
  if (!changed) return labels;
  return new Set(escaped.map(([name]) => name)).size === escaped.length ? escaped : undefined;
}

/** The labels of a served metric (a source's index-th), as served. */
function labelsOf(source: Source, index: number, targets: FetchedTarget[], containerLabel: string): LabelPairs {
  const kept = source.rewritten?.get(index);
  if (kept !== undefined) return kept.labels;
  const raw = rawMetricAt(source.body, source.metrics[index * 2]!, source.metrics[index * 2 + 1]!);
  return withTargetLabels(raw.labels, targetLabels(targets[source.target]!, containerLabel));
}

function writeMetric(w: Writer, m: RawMetric): void {
  w.message(4, () => {
    for (const [name, value] of m.labels) {
      w.message(1, () => {
        w.string(1, name);
        w.string(2, value);
      });
    }
    for (const field of m.fields) w.bytes(field);
  });
}
