// One merged exposition per scrape: fetched targets (on demand or from the background cache) in,
// the merged body out, with the target state changes logged.

import { DROP_REASONS, DropCounter } from './exposition/index.ts';
import type { FetchedTarget, MergeOutput, TargetOutcome } from './exposition/types.ts';
import type { Log } from './log.ts';
import type { BackgroundScraper, OnDemandScraper, Snapshot } from './scraper.ts';

/** `reuse`: see MergeOptions.reuse. */
export type Merge = (targets: FetchedTarget[], acceptOpenMetrics: boolean, drops: DropCounter, reuse?: Buffer) => MergeOutput;

export type Source =
  | { mode: 'on-demand'; scraper: OnDemandScraper }
  | { mode: 'background'; scraper: BackgroundScraper };

function copyOf(drops: DropCounter): DropCounter {
  const copy = new DropCounter();
  for (const target of drops.targets()) {
    for (const reason of DROP_REASONS) copy.add(target, reason, drops.get(target, reason));
  }
  return copy;
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
  /** Up or down as last logged, by container and endpoint; a target not yet seen counts as up, so only a failure is logged first. */
  private readonly up = new Map<string, boolean>();
  /** Last merge per output format: the background cache serves one snapshot to many readers. */
  private readonly merged = new Map<boolean, { generation: number; output: MergeOutput }>();
  /** On demand: the buffer of a merge whose response has been sent, for the next merge to write into. */
  private spare: Buffer | undefined;

  constructor(source: Source, merge: Merge, log: Log) {
    this.source = source;
    this.merge = merge;
    this.log = log;
  }

  async collect(acceptOpenMetrics: boolean, targetTimeoutMs: number): Promise<MergeOutput> {
    const snapshot: Snapshot = this.source.mode === 'on-demand'
      ? await this.source.scraper.scrape(targetTimeoutMs)
      : await this.source.scraper.read();
    const memo = this.merged.get(acceptOpenMetrics);
    if (memo !== undefined && memo.generation === snapshot.generation) return memo.output;
    let drops = this.drops;
    if (snapshot.generation === this.lastCounted) {
      drops = copyOf(this.dropsBefore); // counted already: this snapshot was merged in the other format
    } else {
      this.dropsBefore = copyOf(this.drops);
      this.lastCounted = snapshot.generation;
    }
    const reuse = this.spare;
    this.spare = undefined;
    const output = this.merge(snapshot.targets, acceptOpenMetrics, drops, reuse);
    if (this.source.mode === 'background') {
      this.merged.set(acceptOpenMetrics, { generation: snapshot.generation, output });
    }
    this.logChanges(output.targets);
    return output;
  }

  /**
   * The caller no longer reads output's body (its response is sent). On demand, its buffer is written
   * into by a later merge; the background cache keeps serving its merges, so they are never reused.
   */
  sent(output: MergeOutput): void {
    if (this.source.mode === 'on-demand') this.spare = output.buffer;
  }

  private logChanges(outcomes: readonly TargetOutcome[]): void {
    for (const t of outcomes) {
      const key = `${t.container}\n${t.endpoint}`;
      const wasUp = this.up.get(key) ?? true;
      this.up.set(key, t.up);
      if (t.up === wasUp) continue;
      if (t.up) this.log('info', 'target up', { container: t.container, endpoint: t.endpoint });
      else this.log('warn', 'target down', { container: t.container, endpoint: t.endpoint, reason: t.error ?? 'unknown' });
    }
  }
}
