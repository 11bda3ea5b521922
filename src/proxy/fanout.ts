// One scrape of every pod: at most `concurrency` at once, all done by one deadline (the per-pod
// timeout, counted from the start of the scrape: a pod still queued then is reported down rather
// than making the answer late), their bodies together under a cap. Scrapes arriving while one is
// in flight share it, as the sidecar's OnDemandScraper does.
import type { FetchedTarget } from '../sidecar/exposition/types.ts';
import { fetchedTargetKey, fetchTarget, ReceiveBuffer, type ByteBudget } from '../sidecar/fetch.ts';
import { freeReceiveBuffers, SharedFanOut, type Snapshot } from '../sidecar/scraper.ts';
import { targetKeyOf } from '../sidecar/exposition/index.ts';
import type { PodTarget } from './targets.ts';

export interface FanOutOptions {
  concurrency: number;
  maxTargetBytes: number;
  maxTotalBytes: number;
  /** Passed to fetchTarget: bodies are parsed as they arrive. */
  containerLabel: string;
}

export class PodFanOut {
  private readonly targets: () => readonly PodTarget[];
  private readonly options: FanOutOptions;
  private readonly flight = new SharedFanOut<PodTarget>();
  /**
   * By target (targetKeyOf), kept from one scrape to the next as the sidecar keeps its own (see
   * ReceiveBuffer); only the current targets' are kept.
   */
  private receive = new Map<string, ReceiveBuffer>();

  constructor(targets: () => readonly PodTarget[], options: FanOutOptions) {
    this.targets = targets;
    this.options = options;
  }

  scrape(timeoutMs: number): Promise<Snapshot & { done(): void }> {
    return this.flight.scrape(timeoutMs, this.targets, (targets) => this.fanOut(targets, timeoutMs));
  }

  /** Frees the pods' receive buffers now (the sidecar's rule: see Collector.sent), unless a fan-out writes into them or an answer reads them. */
  freeBuffers(): void {
    if (!this.flight.running && !this.flight.reading) freeReceiveBuffers(this.receive.values());
  }

  private fanOut(targets: readonly PodTarget[], timeoutMs: number): Promise<FetchedTarget>[] {
    const { concurrency, maxTargetBytes, maxTotalBytes, containerLabel } = this.options;
    const deadline = performance.now() + timeoutMs;
    const shared: ByteBudget = { remaining: maxTotalBytes, name: `the proxy's cap on them together (--max_total_bytes ${maxTotalBytes} bytes)` };
    const receive = new Map<string, ReceiveBuffer>();
    // An answer still reading the last fan-out's bodies keeps them: this one receives into new buffers.
    const kept = this.flight.reading ? new Map<string, ReceiveBuffer>() : this.receive;
    const buffers = targets.map((t) => {
      const key = targetKeyOf(fetchedTargetKey(t));
      const buffer = kept.get(key) ?? new ReceiveBuffer();
      receive.set(key, buffer);
      return buffer;
    });
    this.receive = receive;
    const results = targets.map(() => Promise.withResolvers<FetchedTarget>());
    let next = 0;
    const work = async (): Promise<void> => {
      while (next < targets.length) {
        const i = next++;
        const target = targets[i]!;
        const left = Math.floor(deadline - performance.now());
        if (left <= 0) {
          results[i]!.resolve({
            ...fetchedTargetKey(target), durationSeconds: 0,
            error: `not scraped: the scrape's ${timeoutMs / 1000}s were over before one of the ${concurrency} connections (--concurrency) was free`,
          });
          continue;
        }
        // fetchTarget never rejects; should it ever, the scrape still ends, with that pod down.
        results[i]!.resolve(await fetchTarget(target, { timeoutMs: left, maxBytes: maxTargetBytes, shared }, buffers[i], containerLabel)
          .catch((err: unknown) => ({ ...fetchedTargetKey(target), durationSeconds: 0, error: String(err) })));
      }
    };
    for (let w = 0; w < Math.min(concurrency, targets.length); w++) void work();
    return results.map((r) => r.promise);
  }
}
