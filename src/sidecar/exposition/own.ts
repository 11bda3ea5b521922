// promux's own series (promux_target_up, its duration and samples, the drop counters), built once
// here from the targets, their outcomes and the drop counter; the text/OpenMetrics merge (merge.ts)
// and the protobuf merge (protobuf/merge.ts) each encode this list.

import { DROP_REASONS, EXEMPLAR_DROP_REASONS, targetLabels, type DropCounter } from './drops.ts';
import type { FetchedTarget, TargetOutcome } from './types.ts';

export interface OwnFamily {
  /** A counter's name without _total: OpenMetrics names the family so, text and protobuf with it (its samples always). */
  name: string;
  type: 'gauge' | 'counter';
  help: string;
  unit?: string;
}

export const OWN_FAMILIES = {
  up: {
    name: 'promux_target_up', type: 'gauge',
    help: '1 when promux fetched and parsed the target\'s metrics (a container\'s endpoint) on this scrape, 0 when it served none of them.',
  },
  duration: {
    name: 'promux_target_scrape_duration_seconds', type: 'gauge', unit: 'seconds',
    help: 'How long fetching the target\'s metrics took on this scrape.',
  },
  samples: { name: 'promux_target_samples', type: 'gauge', help: 'Samples of the target served on this scrape.' },
  dropped: {
    name: 'promux_dropped_samples', type: 'counter',
    help: `Samples of the target not served, by reason: ${DROP_REASONS.join(', ')}.`,
  },
  droppedExemplars: {
    name: 'promux_dropped_exemplars', type: 'counter',
    help: `Exemplars of the target not served, by reason: ${EXEMPLAR_DROP_REASONS.join(', ')}.`,
  },
} as const satisfies Record<string, OwnFamily>;

/**
 * In output order, OWN_FAMILIES' own (before every target's family, so that a target's family of the
 * same name joins them).
 */
export const OWN_FAMILY_LIST: readonly OwnFamily[] = Object.values(OWN_FAMILIES);

/** The name of the family's samples, and of the family itself in text and protobuf: a counter's with _total. */
export function totalName(family: OwnFamily): string {
  return family.type === 'counter' ? `${family.name}_total` : family.name;
}

export interface OwnSample {
  /** The target's labels (targetLabels), endpoint, and reason for the drop counters, in that order. */
  labels: Array<readonly [string, string]>;
  value: number;
}

export interface OwnSeries {
  family: OwnFamily;
  samples: OwnSample[];
}

/**
 * promux's own series: each of OWN_FAMILY_LIST, in its order, with its samples: up, duration and samples per target (in
 * target order), the drop counters per target the counter tracks (in the order it first tracked
 * them) and reason (in DROP_REASONS / EXEMPLAR_DROP_REASONS order).
 */
export function ownSeries(
  targets: ReadonlyArray<Pick<FetchedTarget, 'container' | 'endpoint' | 'labels' | 'durationSeconds'>>,
  outcomes: ReadonlyArray<Pick<TargetOutcome, 'up' | 'samples'>>, drops: DropCounter, containerLabel: string,
): OwnSeries[] {
  const up: OwnSample[] = [];
  const duration: OwnSample[] = [];
  const samples: OwnSample[] = [];
  for (let i = 0; i < targets.length; i++) {
    const target = targets[i]!;
    const outcome = outcomes[i]!;
    const labels = [...targetLabels(target, containerLabel), ['endpoint', target.endpoint] as const];
    up.push({ labels, value: outcome.up ? 1 : 0 });
    duration.push({ labels, value: target.durationSeconds });
    samples.push({ labels, value: outcome.samples });
  }
  const dropped: OwnSample[] = [];
  const droppedExemplars: OwnSample[] = [];
  for (const target of drops.targets()) {
    const labels = [...targetLabels(target, containerLabel), ['endpoint', target.endpoint] as const];
    for (const reason of DROP_REASONS) {
      dropped.push({ labels: [...labels, ['reason', reason]], value: drops.get(target, reason) });
    }
    for (const reason of EXEMPLAR_DROP_REASONS) {
      droppedExemplars.push({ labels: [...labels, ['reason', reason]], value: drops.getExemplars(target, reason) });
    }
  }
  return [
    { family: OWN_FAMILIES.up, samples: up },
    { family: OWN_FAMILIES.duration, samples: duration },
    { family: OWN_FAMILIES.samples, samples },
    { family: OWN_FAMILIES.dropped, samples: dropped },
    { family: OWN_FAMILIES.droppedExemplars, samples: droppedExemplars },
  ];
}
