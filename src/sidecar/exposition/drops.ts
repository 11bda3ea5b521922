// promux_dropped_samples_total{container,reason}: samples promux did not serve, counted across
// scrapes for as long as the sidecar runs (a Prometheus counter).

/**
 * duplicate_series: a series repeated within one target's body (the first sample is served);
 * type_conflict: a family another target (or earlier in the same body) declared with another type;
 * name_conflict: a family whose sample names collide with another family's (summary `foo` and
 * gauge `foo_count`), which strict parsers cannot tell apart.
 */
export const DROP_REASONS = ['duplicate_series', 'type_conflict', 'name_conflict'] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export class DropCounter {
  private readonly counts = new Map<string, Record<DropReason, number>>();

  /** Makes the container's series exist (at 0), so that rate() and absent() work from the first scrape. */
  track(container: string): Record<DropReason, number> {
    let counts = this.counts.get(container);
    if (counts === undefined) {
      counts = { duplicate_series: 0, type_conflict: 0, name_conflict: 0 };
      this.counts.set(container, counts);
    }
    return counts;
  }

  add(container: string, reason: DropReason, samples: number): void {
    this.track(container)[reason] += samples;
  }

  get(container: string, reason: DropReason): number {
    return this.counts.get(container)?.[reason] ?? 0;
  }

  /** Containers in the order they were first tracked. */
  containers(): string[] {
    return [...this.counts.keys()];
  }
}
