// promux_dropped_samples_total{container,endpoint,reason} and
// promux_dropped_exemplars_total{container,endpoint,reason}: what promux did not serve, per target,
// counted across scrapes for as long as the sidecar runs (Prometheus counters).

import type { TargetLabels } from './types.ts';

/**
 * duplicate_series: a series repeated within one target's body (the first sample is served);
 * type_conflict: a family another target (or earlier in the same body) declared with another type;
 * name_conflict: a family whose sample names collide with another family's (summary `foo` and
 * gauge `foo_count`), which strict parsers cannot tell apart;
 * invalid_label: a `__name__` label inside the braces, or an `le` (histogram) or `quantile`
 * (summary) label that is not a number: strict parsers reject the whole exposition for it;
 * invalid_timestamp: a timestamp the served format cannot carry (text: negative, signed, or beyond
 * int64 milliseconds, which Prometheus' text parser rejects);
 * openmetrics_violation: a family that breaks OpenMetrics' rules on values and structure (a negative
 * counter, a histogram without +Inf bucket...), when the scraper takes OpenMetrics only;
 * escaping_conflict: names that became equal once escaped for a scraper that does not take UTF-8
 * names (`a.b` and `a_b`);
 * native_histogram_unsupported_by_scraper: a native histogram of a protobuf target, for a scraper
 * that does not take protobuf (text has no native buckets; its classic buckets, if any, are served).
 */
export const DROP_REASONS = [
  'duplicate_series', 'type_conflict', 'name_conflict', 'invalid_label', 'invalid_timestamp',
  'openmetrics_violation', 'escaping_conflict', 'native_histogram_unsupported_by_scraper',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/**
 * text_output: the answer is text, which has no exemplars; not_allowed: OpenMetrics allows exemplars
 * on counter `_total` and histogram `_bucket` samples only; invalid: labels over 128 characters, an
 * escape strict parsers reject, or a quoted (UTF-8) label name; sample_dropped: its sample was
 * dropped (and counted in promux_dropped_samples_total).
 */
export const EXEMPLAR_DROP_REASONS = ['text_output', 'not_allowed', 'invalid', 'sample_dropped'] as const;
export type ExemplarDropReason = (typeof EXEMPLAR_DROP_REASONS)[number];

/**
 * A target as its own metrics name it: its container and endpoint (one container may have several
 * endpoints), or the labels it has of its own (FetchedTarget.labels) and endpoint.
 */
export interface TargetKey {
  container: string;
  endpoint: string;
  labels?: TargetLabels;
}

/** The labels promux adds to every series of the target. */
export function targetLabels(target: Pick<TargetKey, 'container' | 'labels'>, containerLabel: string): TargetLabels {
  return target.labels ?? [[containerLabel, target.container]];
}

/** The names of targetLabels(), for parsing the target's body (see BodyParser). */
export function targetLabelNames(target: Pick<TargetKey, 'container' | 'labels'>, containerLabel: string): string[] {
  return target.labels === undefined ? [containerLabel] : target.labels.map(([name]) => name);
}

/** One string per target: by container and endpoint ("\n" cannot occur in either), or labels and endpoint. */
export function targetKeyOf(target: TargetKey): string {
  return target.labels === undefined ? `${target.container}\n${target.endpoint}` : JSON.stringify([target.labels, target.endpoint]);
}

interface Counts {
  target: TargetKey;
  samples: Record<DropReason, number>;
  exemplars: Record<ExemplarDropReason, number>;
}

function zeros<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
}


export class DropCounter {
  private readonly counts = new Map<string, Counts>();

  /** Makes the target's series exist (at 0), so that rate() and absent() work from the first scrape. */
  track(target: TargetKey): Counts {
    const key = targetKeyOf(target);
    let counts = this.counts.get(key);
    if (counts === undefined) {
      counts = {
        target: { container: target.container, endpoint: target.endpoint, ...(target.labels === undefined ? {} : { labels: target.labels }) },
        samples: zeros(DROP_REASONS),
        exemplars: zeros(EXEMPLAR_DROP_REASONS),
      };
      this.counts.set(key, counts);
    }
    return counts;
  }

  add(target: TargetKey, reason: DropReason, samples: number): void {
    this.track(target).samples[reason] += samples;
  }

  addExemplars(target: TargetKey, reason: ExemplarDropReason, exemplars: number): void {
    this.track(target).exemplars[reason] += exemplars;
  }

  get(target: TargetKey, reason: DropReason): number {
    return this.counts.get(targetKeyOf(target))?.samples[reason] ?? 0;
  }

  getExemplars(target: TargetKey, reason: ExemplarDropReason): number {
    return this.counts.get(targetKeyOf(target))?.exemplars[reason] ?? 0;
  }

  /** Forgets every target but these (a pod `promux proxy` no longer scrapes: its counters end). */
  retain(targets: readonly TargetKey[]): void {
    if (targets.length === this.counts.size) return; // the same targets, tracked: nothing to forget
    const kept = new Set(targets.map(targetKeyOf));
    for (const key of this.counts.keys()) if (!kept.has(key)) this.counts.delete(key);
  }

  /** Targets in the order they were first tracked. */
  targets(): TargetKey[] {
    return [...this.counts.values()].map((c) => c.target);
  }

  clone(): DropCounter {
    const copy = new DropCounter();
    for (const [key, counts] of this.counts) {
      copy.counts.set(key, { target: counts.target, samples: { ...counts.samples }, exemplars: { ...counts.exemplars } });
    }
    return copy;
  }
}
