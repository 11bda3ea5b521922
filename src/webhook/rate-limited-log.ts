// A warning that can come thousands of times a second (a cap reached under a flood) is logged at
// most once per interval and key, with how often it happened since the last line.
import type { Logger } from 'pino';

const INTERVAL_MS = 10_000;

export class RateLimitedLog {
  private readonly log: Logger;
  private readonly intervalMs: number;
  private readonly last = new Map<string, { at: number; since: number; message: string; timer?: NodeJS.Timeout }>();

  constructor(log: Logger, intervalMs = INTERVAL_MS) {
    this.log = log;
    this.intervalMs = intervalMs;
  }

  /** Logs `message` (warn) now, or counts it towards the next line for `key`. */
  note(key: string, message: string): void {
    const now = Date.now();
    const entry = this.last.get(key);
    if (entry === undefined || now - entry.at >= this.intervalMs) {
      this.log.warn({ limit: key }, message);
      this.last.set(key, { at: now, since: 0, message });
      return;
    }
    entry.since += 1;
    entry.message = message;
    // Say how often it happened meanwhile once the interval is over, even if it stops now.
    entry.timer ??= setTimeout(() => this.flush(key), this.intervalMs - (now - entry.at)).unref();
  }

  private flush(key: string): void {
    const entry = this.last.get(key);
    if (entry === undefined || entry.since === 0) return;
    this.log.warn({ limit: key, times: entry.since }, `${entry.message} (${entry.since} more times in the last ${this.intervalMs / 1000}s)`);
    this.last.set(key, { at: Date.now(), since: 0, message: entry.message });
  }
}
