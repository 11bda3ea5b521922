// The protobuf answer: every target's families (protobuf as served, text and OpenMetrics converted:
// from-text.ts) merged into one MetricFamily per name, promux's own families first, then the
// targets' in first-seen order (in target order), each family's metrics grouped by target in body
// order. A protobuf metric's fields other than its labels are copied byte for byte (native and
// classic histogram fields, exemplars, created timestamps, fields promux does not know); only its
// labels change: the target's labels added, an existing one renamed exported_<label>.
//
// A "sample" of a protobuf target is one Metric message (a histogram with all its buckets is one); a
// converted text metric counts the samples of the body it came from.

import {
  DROP_REASONS, EXEMPLAR_DROP_REASONS, targetLabelNames, targetLabels, type DropCounter, type DropReason,
} from '../drops.ts';
import { OWN_FAMILIES } from '../merge.ts';
import { ExpositionError, parseBody, releaseRecords, type ParsedBody } from '../parse.ts';
import type { FetchedTarget, AnyMergeOutput, MergeOptions, TargetLabels, TargetOutcome } from '../types.ts';
import {
  decodeFamilies, ProtobufError, PROTOBUF_CONTENT_TYPE, rawMetric, TYPE, Writer, writeFamily, type LabelPairs, type MetricFamily,
  type RawMetric,
} from './codec.ts';
import { familiesOfText } from './from-text.ts';
import { isProtobufContentType } from '../content-type.ts';

interface Item {
  metric: RawMetric;
  /** Samples of its target it holds (see the top of this file). */
  samples: number;
}

interface TargetFamily {
  name: string;
  help?: string;
  type?: number;
  unit?: string;
  unknown: Uint8Array[];
  items: Item[];
}

interface OutFamily extends MetricFamily<RawMetric> {
  /** Label sets served, to drop repeats. */
  seen: Set<string>;
}

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

function seriesKey(labels: LabelPairs): string {
  let key = '';
  for (const [n, v] of labels) key += `${n}\u0000${v}\u0001`;
  return key;
}

/** The families of one target, or why its body cannot be read. */
function familiesOf(target: FetchedTarget, containerLabel: string): { families: TargetFamily[]; parsed?: ParsedBody } {
  const body = target.body!;
  if (isProtobufContentType(target.contentType)) {
    return {
      families: decodeFamilies(body).map((f) => ({
        name: f.name, help: f.help, type: f.type, unit: f.unit, unknown: f.unknown, items: f.metrics.map((metric) => ({ metric, samples: 1 })),
      })),
    };
  }
  const parsed = target.parsed ?? parseBody(body, formatOf(target, body), targetLabelNames(target, containerLabel));
  target.parsed = undefined;
  if (parsed instanceof ExpositionError) throw parsed;
  const families = familiesOfText(parsed).map((f) => ({
    name: f.name, help: f.help, type: f.type, unit: f.unit, unknown: f.unknown,
    items: f.metrics.map((m, i) => ({ metric: rawMetric(m), samples: f.samples[i]! })),
  }));
  return { families, parsed };
}

function formatOf(target: FetchedTarget, body: Buffer): 'text' | 'openmetrics' {
  const mediaType = (target.contentType ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (mediaType === 'application/openmetrics-text') return 'openmetrics';
  if (mediaType === 'text/plain') return 'text';
  return body.toString('latin1', Math.max(0, body.length - 7)).trimEnd().endsWith('# EOF') ? 'openmetrics' : 'text';
}

/** Merges every target into one delimited protobuf body; see types.ts for the contract. */
export function mergeProtobuf(targets: FetchedTarget[], options: MergeOptions, drops: DropCounter): AnyMergeOutput {
  const label = options.containerLabel;
  const outcomes: TargetOutcome[] = [];
  const perTarget: TargetFamily[][] = [];
  for (const target of targets) {
    drops.track(target);
    const outcome: TargetOutcome = {
      container: target.container, endpoint: target.endpoint, ...(target.labels === undefined ? {} : { labels: target.labels }), up: false, samples: 0,
    };
    outcomes.push(outcome);
    perTarget.push([]);
    if (target.body === undefined) {
      outcome.error = target.error ?? 'no response';
      continue;
    }
    try {
      const { families, parsed } = familiesOf(target, label);
      perTarget[perTarget.length - 1] = families;
      outcome.up = true;
      outcome.samples = families.reduce((sum, f) => sum + f.items.reduce((s, i) => s + i.samples, 0), 0);
      if (parsed !== undefined) {
        // Samples the scan flagged dropped are counted as the text merge counts them.
        for (const [reason, n] of [['duplicate_series', parsed.duplicates], ['invalid_label', parsed.invalidLabels],
          ['invalid_timestamp', parsed.invalidTimestamps]] as Array<[DropReason, number]>) {
          if (n > 0) drops.add(target, reason, n);
        }
        releaseRecords(parsed.records);
      }
    } catch (e) {
      if (e instanceof ProtobufError) outcome.error = `invalid protobuf exposition: ${e.message}`;
      else if (e instanceof ExpositionError) outcome.error = `invalid text exposition: ${e.message}`;
      else throw e;
    }
  }
  drops.retain(targets);

  const out = new Map<string, OutFamily>();
  const add = (name: string, type: number | undefined, help: string | undefined, unit: string | undefined, unknown: Uint8Array[]): OutFamily => {
    const family: OutFamily = { name, type, help, unit, unknown, metrics: [], seen: new Set() };
    out.set(name, family);
    return family;
  };
  const own = {
    up: add(OWN_FAMILIES.up.name, TYPE.gauge, OWN_FAMILIES.up.help, undefined, []),
    duration: add(OWN_FAMILIES.duration.name, TYPE.gauge, OWN_FAMILIES.duration.help, OWN_FAMILIES.duration.unit, []),
    samples: add(OWN_FAMILIES.samples.name, TYPE.gauge, OWN_FAMILIES.samples.help, undefined, []),
    dropped: add(`${OWN_FAMILIES.dropped.name}_total`, TYPE.counter, OWN_FAMILIES.dropped.help, undefined, []),
    droppedExemplars: add(`${OWN_FAMILIES.droppedExemplars.name}_total`, TYPE.counter, OWN_FAMILIES.droppedExemplars.help, undefined, []),
  };
  const ownNames = new Set([...out.keys()]);

  for (let t = 0; t < targets.length; t++) {
    const target = targets[t]!;
    const outcome = outcomes[t]!;
    const added = targetLabels(target, label);
    const drop = (reason: DropReason, samples: number): void => {
      outcome.samples -= samples;
      drops.add(target, reason, samples);
    };
    for (const family of perTarget[t]!) {
      const type = family.type ?? TYPE.counter; // metrics.proto's default
      let served = out.get(family.name);
      if (served === undefined) served = add(family.name, type, family.help, family.unit, family.unknown);
      else if ((served.type ?? TYPE.counter) !== type || ownNames.has(family.name)) {
        drop('type_conflict', family.items.reduce((s, i) => s + i.samples, 0));
        continue;
      } else {
        served.help ??= family.help;
        served.unit ??= family.unit;
      }
      for (const item of family.items) {
        const labels = withTargetLabels(item.metric.labels, added);
        const key = seriesKey(labels);
        if (served.seen.has(key)) {
          drop('duplicate_series', item.samples);
          continue;
        }
        served.seen.add(key);
        served.metrics.push({ labels, fields: item.metric.fields });
      }
    }
  }

  const ownMetric = (labels: LabelPairs, value: number, counter: boolean): RawMetric =>
    rawMetric(counter ? { labels, counter: { value }, unknown: [] } : { labels, gauge: { value }, unknown: [] });
  targets.forEach((target, i) => {
    const labels = withTargetLabels([['endpoint', target.endpoint]], targetLabels(target, label));
    own.up.metrics.push(ownMetric(labels, outcomes[i]!.up ? 1 : 0, false));
    own.duration.metrics.push(ownMetric(labels, target.durationSeconds, false));
    own.samples.metrics.push(ownMetric(labels, outcomes[i]!.samples, false));
  });
  for (const target of drops.targets()) {
    const labels = withTargetLabels([['endpoint', target.endpoint]], targetLabels(target, label));
    for (const reason of DROP_REASONS) {
      own.dropped.metrics.push(ownMetric(withTargetLabels(labels, [['reason', reason]]), drops.get(target, reason), true));
    }
    for (const reason of EXEMPLAR_DROP_REASONS) {
      own.droppedExemplars.metrics.push(ownMetric(withTargetLabels(labels, [['reason', reason]]), drops.getExemplars(target, reason), true));
    }
  }

  const w = new Writer();
  for (const family of out.values()) if (family.metrics.length > 0) writeFamily(w, family);
  const bytes = w.finish();
  const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { body, buffer: body, contentType: PROTOBUF_CONTENT_TYPE, format: 'protobuf', targets: outcomes };
}
