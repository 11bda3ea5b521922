// promux_dropped_samples_total{container,endpoint,reason}: samples promux did not serve, per target,
// counted across scrapes for as long as the sidecar runs (a Prometheus counter).

/**
 * duplicate_series: a series repeated within one target's body (the first sample is served);
 * type_conflict: a family another target (or earlier in the same body) declared with another type;
 * name_conflict: a family whose sample names collide with another family's (summary `foo` and
 * gauge `foo_count`), which strict parsers cannot tell apart.
 */
export const DROP_REASONS = ['duplicate_series', 'type_conflict', 'name_conflict'] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/** A target as its own metrics name it; one container may have several endpoints. */
export interface TargetKey {
  container: string;
  endpoint: string;
}

interface Counts {
  target: TargetKey;
  dropped: Record<DropReason, number>;
}

export class DropCounter {
  /** By container and endpoint ("\n" cannot occur in either). */
  private readonly counts = new Map<string, Counts>();

  /** Makes the target's series exist (at 0), so that rate() and absent() work from the first scrape. */
  track(target: TargetKey): Record<DropReason, number> {
    const key = `${target.container}\n${target.endpoint}`;
    let counts = this.counts.get(key);
    if (counts === undefined) {
      counts = { target: { container: target.container, endpoint: target.endpoint }, dropped: { duplicate_series: 0, type_conflict: 0, name_conflict: 0 } };
      this.counts.set(key, counts);
    }
    return counts.dropped;
  }

  add(target: TargetKey, reason: DropReason, samples: number): void {
    this.track(target)[reason] += samples;
  }

  get(target: TargetKey, reason: DropReason): number {
    return this.counts.get(`${target.container}\n${target.endpoint}`)?.dropped[reason] ?? 0;
  }

  /** Targets in the order they were first tracked. */
  targets(): TargetKey[] {
    return [...this.counts.values()].map((c) => c.target);
  }
}
