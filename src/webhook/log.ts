// The webhook's log: pino, one JSON line per event (one per review), on stdout, where Kubernetes
// collects it. At saturation the log line was a tenth of a review's CPU: most of it the write(2), the
// rest pino's serializing and the ISO timestamp. Both below keep what a reader gets and cut the cost.
import { pino } from 'pino';
import type { DestinationStream, Logger } from 'pino';

/**
 * pino's `time` field as Date.toISOString writes it ("2026-12-01T03:04:05.678Z"): what a person
 * reads at 3 a.m. without converting epoch milliseconds, and what every log store parses. Formatting
 * a Date for each line cost more than the rest of the field; here the text up to the second is made
 * once a second and only the milliseconds per line.
 */
export function isoTimeField(clock: () => number = Date.now): () => string {
  let second = NaN;
  let prefix = '';
  return () => {
    const now = clock();
    const ms = now % 1000;
    if (now - ms !== second) {
      second = now - ms;
      prefix = `,"time":"${new Date(second).toISOString().slice(0, -4)}`;
    }
    return `${prefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z"`;
  };
}

export interface BatchedDestination extends DestinationStream {
  /** Writes the lines not yet written, now. */
  flushSync(): void;
  /** pino's logger.flush(). */
  flush(done: (err?: Error) => void): void;
}

/**
 * Lines to a file descriptor with synchronous writes (a line is never left in a buffer for later,
 * and one write(2) costs less than handing lines to libuv's thread pool, pino's default), but one
 * write(2) for all the lines logged in one callback of the event loop, made as that callback ends
 * (a microtask): a turn that answers several reviews (about 6 at saturation) writes their lines at
 * once. The caller flushes on process exit, so a crash loses none.
 */
export function batchedDestination(fd: number): BatchedDestination {
  const sink = pino.destination({ dest: fd, sync: true });
  let pending = '';
  const flushSync = (): void => {
    if (pending === '') return;
    const lines = pending;
    pending = '';
    sink.write(lines);
  };
  return {
    write(line: string): void {
      if (pending === '') queueMicrotask(flushSync);
      pending += line;
    },
    flushSync,
    flush(done) {
      flushSync();
      done();
    },
  };
}

/** The webhook's logger on `destination` (stdout's, in a pod). */
export function webhookLogger(level: string, destination: DestinationStream): Logger {
  return pino({ name: 'promux-webhook', level, timestamp: isoTimeField() }, destination);
}
