// How late the event loop runs: data that arrives while the loop is busy waits, unseen, until the
// next turn. The webhook takes a review to have arrived this much before it saw it, so that under
// CPU starvation (more work than the CPU allotted, a long GC) reviews that already waited are shed
// rather than answered after the API server gave up, and new connections are refused rather than
// each costing a TLS handshake the process has no time for.
const TICK_MS = 20;
/** Sustained lateness: every one of this many ticks (at least 200 ms) ran late. */
const WINDOW_TICKS = 10;

export class LoopLag {
  private readonly lags = new Float64Array(WINDOW_TICKS);
  private next = 0;
  private last = performance.now();
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.timer = setInterval(() => {
      const now = performance.now();
      this.lags[this.next] = Math.max(0, now - this.last - TICK_MS);
      this.next = (this.next + 1) % WINDOW_TICKS;
      this.last = now;
    }, TICK_MS);
    this.timer.unref();
  }

  /**
   * How long something that arrived just now may have waited unseen (ms): how late the last tick
   * ran, or the next one already is.
   */
  recent(): number {
    const latest = this.lags[(this.next + WINDOW_TICKS - 1) % WINDOW_TICKS]!;
    return Math.max(0, latest, performance.now() - this.last - TICK_MS);
  }

  /** The least lateness of the last ticks (ms): high only while the loop keeps running late, not after one long task. */
  sustained(): number {
    let min = Infinity;
    for (const lag of this.lags) if (lag < min) min = lag;
    return min;
  }

  close(): void {
    clearInterval(this.timer);
  }
}
