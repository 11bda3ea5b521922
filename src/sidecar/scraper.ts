// The fan-out over the targets: on demand with one shared in-flight fan-out (singleflight), or a
// background refresh into a cache that reads never empty.

import type { Target } from '../target-map.ts';
import { freeNow, type FetchedTarget } from './exposition/index.ts';
import { fetchedTargetKey, ReceiveBuffer, type FetchLimits, type ScrapeTarget } from './fetch.ts';

export type FetchFn = (target: Target, limits: FetchLimits, receive: ReceiveBuffer) => Promise<FetchedTarget>;

/** A set of fetched targets; `generation` changes whenever the set does (lets callers memoize). */
export interface Snapshot {
  generation: number;
  targets: FetchedTarget[];
}

/** The result of `fetched`, or a timeout of its own when it takes longer than `timeoutMs`. */
function within(fetched: Promise<FetchedTarget>, target: ScrapeTarget, timeoutMs: number): Promise<FetchedTarget> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<FetchedTarget>((resolve) => {
    timer = setTimeout(() => {
      const durationSeconds = Math.round((performance.now() - started) * 1000) / 1e6;
      resolve({ ...fetchedTargetKey(target), durationSeconds, error: `timeout after ${timeoutMs / 1000}s (shared scrape still running)` });
    }, timeoutMs);
  });
  return Promise.race([fetched, late]).finally(() => clearTimeout(timer));
}

/**
 * One fan-out at a time (singleflight): scrapes arriving while one is in flight share its fetches
 * (one request per target) and its generation: it is one snapshot, whose drops are counted once.
 * Each sharer's results are still bounded by its own timeout. A snapshot's bodies are read until its
 * reader calls `done` (its answer is written as it is sent): a fan-out that starts before then must
 * receive into buffers of its own (see `reading`).
 */
export class SharedFanOut<T extends ScrapeTarget> {
  private inFlight: { generation: number; targets: readonly T[]; fetches: Promise<FetchedTarget>[] } | undefined;
  private generation = 0;
  /** Snapshots handed out whose readers have not called `done` yet. */
  private readers = 0;

  /** Whether a fan-out is in flight (writing into its receive buffers). */
  get running(): boolean {
    return this.inFlight !== undefined;
  }

  /** Whether some reader still reads the bodies of an earlier snapshot. */
  get reading(): boolean {
    return this.readers > 0;
  }

  /** The in-flight fan-out's snapshot, or one of `start`'s fetches of `targets`. */
  async scrape(
    timeoutMs: number, targets: () => readonly T[], start: (targets: readonly T[]) => Promise<FetchedTarget>[],
  ): Promise<Snapshot & { done(): void }> {
    const shared = this.inFlight;
    if (shared !== undefined) {
      const bounded = shared.fetches.map((p, i) => within(p, shared.targets[i]!, timeoutMs));
      return this.lend(shared.generation, await Promise.all(bounded));
    }
    const list = targets();
    const own = { generation: ++this.generation, targets: list, fetches: start(list) };
    this.inFlight = own;
    try {
      return this.lend(own.generation, await Promise.all(own.fetches));
    } finally {
      this.inFlight = undefined;
    }
  }

  private lend(generation: number, targets: FetchedTarget[]): Snapshot & { done(): void } {
    this.readers++;
    let done = false;
    return {
      generation, targets, done: () => {
        if (!done) this.readers--;
        done = true;
      },
    };
  }
}

/** Frees the receive buffers now (detached: see freeNow) and forgets them. */
export function freeReceiveBuffers(receives: Iterable<ReceiveBuffer>): void {
  for (const receive of receives) {
    if (receive.buffer !== undefined) freeNow(receive.buffer);
    receive.buffer = undefined;
  }
}

/** Scrapes the sidecar's targets on request, one fan-out at a time (SharedFanOut). */
export class OnDemandScraper {
  private readonly flight = new SharedFanOut<Target>();
  private readonly targets: readonly Target[];
  private readonly maxBytes: number;
  private readonly fetch: FetchFn;
  /**
   * One per target, reused by the next fan-out; replaced by new ones when a fan-out starts while an
   * answer still reads the last one's bodies (SharedFanOut.reading).
   */
  private receive: ReceiveBuffer[];

  constructor(targets: readonly Target[], maxBytes: number, fetch: FetchFn) {
    this.targets = targets;
    this.receive = targets.map(() => new ReceiveBuffer());
    this.maxBytes = maxBytes;
    this.fetch = fetch;
  }

  /** A scrape that shares a fan-out in flight gets its answers, whether or not that one asked for protobuf: the merge takes any format. */
  scrape(timeoutMs: number, protobuf = false): Promise<Snapshot & { done(): void }> {
    return this.flight.scrape(timeoutMs, () => this.targets, () => {
      if (this.flight.reading) this.receive = this.targets.map(() => new ReceiveBuffer());
      return this.targets.map((t, i) => this.fetch(t, { timeoutMs, maxBytes: this.maxBytes, protobuf }, this.receive[i]!));
    });
  }

  /** Frees the receive buffers now (see freeScratch), unless a fan-out writes into them or an answer reads them. */
  freeBuffers(): void {
    if (!this.flight.running && !this.flight.reading) freeReceiveBuffers(this.receive);
  }
}

/**
 * Refreshes every `intervalMs` (measured from the end of the previous refresh, so refreshes never
 * overlap) and serves the latest complete snapshot to every reader; reads wait only for the first.
 */
export class BackgroundScraper {
  private latest: Snapshot | undefined;
  private readonly first: Promise<Snapshot>;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private generation = 0;
  private readonly targets: readonly Target[];
  private limits: FetchLimits;
  private readonly intervalMs: number;
  private readonly fetch: FetchFn;
  /** Two sets, alternating: readers merge the latest snapshot while the next refresh fills the other set. */
  private readonly receive: [ReceiveBuffer[], ReceiveBuffer[]];

  constructor(targets: readonly Target[], limits: FetchLimits, intervalMs: number, fetch: FetchFn) {
    this.targets = targets;
    this.receive = [targets.map(() => new ReceiveBuffer()), targets.map(() => new ReceiveBuffer())];
    this.limits = limits;
    this.intervalMs = intervalMs;
    this.fetch = fetch;
    this.first = this.refresh();
  }

  private async refresh(): Promise<Snapshot> {
    const receive = this.receive[this.generation % 2]!;
    const targets = await Promise.all(this.targets.map((t, i) => this.fetch(t, this.limits, receive[i]!)));
    this.latest = { generation: ++this.generation, targets };
    if (!this.stopped) this.timer = setTimeout(() => void this.refresh(), this.intervalMs);
    return this.latest;
  }

  /** From the next refresh on, targets are asked for protobuf first (a scraper asked for it; loadProtobuf has run). */
  askProtobuf(): void {
    if (this.limits.protobuf !== true) this.limits = { ...this.limits, protobuf: true };
  }

  async read(): Promise<Snapshot> {
    return this.latest ?? this.first;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
