// One merged exposition per scrape: fetched targets (on demand or from the background cache) in,
// the merged answer out (on demand written as it is sent; the background cache's whole), with the
// target state changes logged.

import { getHeapStatistics } from 'node:v8';
import { DropCounter, freePieces, freeScratch, loadProtobuf, targetKeyOf, wholeAnswer } from './exposition/index.ts';
import type { Accepted, AnyMergeOutput, FetchedTarget, MergeAnswer, TargetOutcome } from './exposition/types.ts';
import type { Log } from './log.ts';
import type { BackgroundScraper, Snapshot } from './scraper.ts';

/** The answer streamed (mergeStreamed), or whole (which reads no target's body once it has returned). */
export type Merge = (targets: FetchedTarget[], accept: Accepted, drops: DropCounter) => MergeAnswer | AnyMergeOutput;

/** Fans out on each request (OnDemandScraper; `promux proxy`'s over pods). */
export interface OnDemandSource {
  /**
   * `protobuf`: ask targets for the protobuf exposition first. The snapshot's bodies stay its
   * reader's until it calls `done` (see SharedFanOut).
   */
  scrape(timeoutMs: number, protobuf: boolean): Promise<Snapshot & { done(): void }>;
  /** Frees the buffers kept for the next scrape, unless a scrape is writing into them. */
  freeBuffers(): void;
}

export type Source =
  | { mode: 'on-demand'; scraper: OnDemandSource }
  | { mode: 'background'; scraper: BackgroundScraper };

const MAX_MEMOIZED = 4;
/**
 * On demand, the buffers kept for the next scrape are freed once none has followed for this long.
 * Scrapers come every 10-60 s, so a buffer kept until the next one is memory the pod pays for all
 * the time: freed (and the garbage collected, collectionsOf), bench/sidecar.ts's sidecar
 * keeps 16-20 MiB private between scrapes 15 s apart instead of 34-39. The price is CPU: a scrape
 * into fresh buffers, with its collection, costs 50-80 ms more than one into kept buffers (median
 * 120-150 against 70-80 ms, 15 s apart; BENCHMARKS.md). Scrapes back to back keep them.
 */
const FREE_AFTER_MS = 1000;

/**
 * Full garbage collections run by the collector, when Node exposes gc (the injector's NODE_OPTIONS
 * has --expose-gc; without it, as when `promux sidecar` is run by hand, V8 schedules them alone).
 */
export interface Collections {
  /** An on-demand scrape starts. */
  beforeScrape(): void;
  /** The buffers kept for the next scrape have been freed: none is under way. */
  whenIdle(): void;
}

/**
 * How far the V8 heap may grow past what the last collection left before a scrape collects first.
 * Alone, V8 lets the heap grow 6-7 MB past what lives (to 12-14 MB, committing 16) before it
 * collects: scrapes of 3 x 16.8k series back to back (2-3 MB each) reach that every fourth or fifth
 * scrape, and their garbage piles up to the peak. Collecting at the start of a scrape, when the last
 * one's objects are dead and only ~7 MB lives, keeps that peak 4-6 MiB lower (29.5-33.6 MiB against
 * 34.9-38.1), for 6-18% more CPU per scrape back to back: the collection marks atomically, 7-9 ms
 * and as much on helper threads, where V8 marks incrementally (BENCHMARKS.md). A scrape that follows
 * an idle collection finds the heap as that left it, and does not collect: scraped 1 s or more
 * apart, the sidecar costs what it did.
 */
const SCRAPE_GROWTH_BYTES = 2 * 1024 * 1024;

/**
 * Before a scrape, a full collection once the heap has grown SCRAPE_GROWTH_BYTES. When idle, the
 * "last-resort" flavour, the one that gives back the pages V8 keeps in its pool (~6 MiB): the image
 * runs Node with --no-memory-reducer, so an idle sidecar never collects on its own, and a scrape's
 * garbage and the pool would stay until the next scrape. 16-20 MiB private between scrapes instead of
 * 25-29, for 20-50 ms of CPU once per scrape that no other follows within 1 s (the collection, and
 * the pages it gave back faulted in again; BENCHMARKS.md). Optimized code survives collections only
 * because the classes a scrape builds keep their last instance (keepLastInstance).
 */
export function collectionsOf(gc: (options: NodeJS.GCOptions) => void, usedHeapBytes: () => number): Collections {
  let usedAfterLast = usedHeapBytes();
  const collect = (options: NodeJS.GCOptions): void => {
    gc(options);
    usedAfterLast = usedHeapBytes();
  };
  return {
    beforeScrape: () => {
      if (usedHeapBytes() - usedAfterLast > SCRAPE_GROWTH_BYTES) collect({ type: 'major' });
    },
    whenIdle: () => collect({ type: 'major', flavor: 'last-resort' }),
  };
}

/** collectionsOf Node's gc, or undefined when Node does not expose it. */
export function exposedCollections(): Collections | undefined {
  const gc = globalThis.gc;
  return gc === undefined ? undefined : collectionsOf(gc, () => getHeapStatistics().used_heap_size);
}

export class Collector {
  private readonly source: Source;
  private readonly merge: Merge;
  private readonly log: Log;
  /** promux_dropped_samples_total: every fetched snapshot's drops counted once. */
  private readonly drops = new DropCounter();
  /** The drops before the latest snapshot, for merging that snapshot again in the other format. */
  private dropsBefore = new DropCounter();
  private lastCounted = -1;
  /**
   * Up or down as last logged, by target (targetKeyOf), for the targets of the last merge; a target
   * not seen then counts as up, so only a failure is logged first.
   */
  private up = new Map<string, boolean>();
  /** Last merge per negotiated answer (Accepted.key): the background cache serves one snapshot to many readers. */
  private readonly merged = new Map<string, { generation: number; output: AnyMergeOutput }>();
  /** MergeOutput.servedAsText of the last merge, logged when it changes. */
  private servedAsText: string | undefined;
  private freeTimer: NodeJS.Timeout | undefined;
  private readonly collections: Collections | undefined;

  constructor(source: Source, merge: Merge, log: Log, collections = exposedCollections()) {
    this.source = source;
    this.merge = merge;
    this.log = log;
    this.collections = collections;
  }

  /**
   * On demand, the answer is written as its pieces are taken, and the caller must take them all or end
   * them (`pieces.return()`): the snapshot's bodies are held until then. The background cache's is whole.
   */
  async collect(accept: Accepted, targetTimeoutMs: number): Promise<MergeAnswer | AnyMergeOutput> {
    if (accept.protobuf) {
      // Loaded before any target is asked for protobuf: the merge of their answers needs it.
      await loadProtobuf();
      if (this.source.mode === 'background') this.source.scraper.askProtobuf();
    }
    if (this.source.mode === 'on-demand') this.collections?.beforeScrape();
    const snapshot: Snapshot & { done?(): void } = this.source.mode === 'on-demand'
      ? await this.source.scraper.scrape(targetTimeoutMs, accept.protobuf)
      : await this.source.scraper.read();
    const memo = this.merged.get(accept.key);
    if (memo !== undefined && memo.generation === snapshot.generation) return memo.output;
    let drops = this.drops;
    if (snapshot.generation === this.lastCounted) {
      drops = this.dropsBefore.clone(); // counted already: this snapshot was merged for another format
    } else {
      this.dropsBefore = this.drops.clone();
      this.lastCounted = snapshot.generation;
    }
    let output: MergeAnswer | AnyMergeOutput;
    try {
      output = this.merge(snapshot.targets, accept, drops);
    } catch (e) {
      snapshot.done?.();
      throw e;
    }
    if (!('pieces' in output)) {
      snapshot.done?.(); // a whole answer reads no body once the merge has returned
    } else if (snapshot.done === undefined) {
      output = wholeAnswer(output);
    } else {
      output.pieces = releasedAfter(output.pieces, snapshot.done);
    }
    if (this.source.mode === 'background' && !('pieces' in output)) {
      // A few kinds of scrapers at most: each merge held is a whole exposition.
      if (this.merged.size >= MAX_MEMOIZED && !this.merged.has(accept.key)) this.merged.delete(this.merged.keys().next().value!);
      this.merged.set(accept.key, { generation: snapshot.generation, output });
    }
    this.logChanges(output.targets);
    if (output.servedAsText !== this.servedAsText) {
      this.servedAsText = output.servedAsText;
      if (output.servedAsText !== undefined) this.log('info', 'serving text instead of OpenMetrics', { reason: output.servedAsText });
    }
    return output;
  }

  /** An answer has been sent: on demand, the buffers kept for the next scrape are freed if none follows soon. */
  sent(): void {
    if (this.source.mode !== 'on-demand') return;
    const scraper = this.source.scraper;
    clearTimeout(this.freeTimer);
    this.freeTimer = setTimeout(() => {
      freeScratch();
      freePieces();
      scraper.freeBuffers();
      this.collections?.whenIdle();
    }, FREE_AFTER_MS).unref();
  }

  private logChanges(outcomes: readonly TargetOutcome[]): void {
    // A new map each time: targets that are gone (pods, for the proxy) are forgotten.
    const up = new Map<string, boolean>();
    for (const t of outcomes) {
      const key = targetKeyOf(t);
      const wasUp = this.up.get(key) ?? true;
      up.set(key, t.up);
      if (t.up === wasUp) continue;
      const target = t.labels === undefined ? { container: t.container } : Object.fromEntries(t.labels);
      if (t.up) this.log('info', 'target up', { ...target, endpoint: t.endpoint });
      else this.log('warn', 'target down', { ...target, endpoint: t.endpoint, reason: t.error ?? 'unknown' });
    }
    this.up = up;
  }
}

/** The pieces, then `done` once they are all taken or the taker ends them early. */
function* releasedAfter(pieces: Generator<Buffer, void, undefined>, done: () => void): Generator<Buffer, void, undefined> {
  try {
    yield* pieces;
  } finally {
    done();
  }
}
