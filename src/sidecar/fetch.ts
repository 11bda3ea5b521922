// Fetching one target on 127.0.0.1 (the pod's shared network namespace). Never rejects: any failure
// (refused, timeout, HTTP error, too large, bad gzip, closed mid-body) comes back as `error`, and the
// merger reports that target down while the others are served.

import http from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { createGunzip, type Gunzip } from 'node:zlib';
import type { Target } from '../inject/target-map.ts';
import { VERSION } from '../version.ts';
import type { FetchedTarget } from './exposition/types.ts';

export interface FetchLimits {
  timeoutMs: number;
  /** Cap on the body, applied after gunzip too (a small gzip can inflate to gigabytes). */
  maxBytes: number;
}

/** What Prometheus 2.x asks for: OpenMetrics preferred, text 0.0.4 accepted; the merger converts. */
export const TARGET_ACCEPT =
  'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,' +
  'text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

type Transport = Pick<typeof http, 'get'>;
let httpsTransport: Promise<Transport> | undefined;

/** node:https (and with it tls) is loaded only when a target needs it. */
function transportFor(target: Target): Transport | Promise<Transport> {
  if (target.scheme === 'http') return http;
  httpsTransport ??= import('node:https').then((m) => m.default);
  return httpsTransport;
}

function describe(error: NodeJS.ErrnoException, during: 'request' | 'body'): string {
  if (error.code === 'ECONNREFUSED') return 'connection refused';
  if (error.code !== 'ECONNRESET') return error.message;
  return during === 'body' ? 'connection closed mid-body' : 'connection closed without a response';
}

/**
 * Where a target's body is received, kept from one fetch to the next: a scrape's bodies are garbage
 * once merged, and fresh multi-megabyte buffers on every scrape are what makes V8's heap (and the
 * pod's memory) grow. Only one fetch at a time may use a given ReceiveBuffer, and the body it
 * returned is overwritten by the next fetch into it.
 */
export class ReceiveBuffer {
  buffer: Buffer | undefined;
}

const MIN_CAPACITY = 64 * 1024;

/** A body as it arrives, copied straight into one (reused or growing) buffer. */
class BodyWriter {
  size = 0;
  private buffer: Buffer;
  private readonly receive: ReceiveBuffer | undefined;
  private readonly maxBytes: number;

  constructor(receive: ReceiveBuffer | undefined, expectedLength: number | undefined, maxBytes: number) {
    this.receive = receive;
    this.maxBytes = maxBytes;
    const wanted = Math.max(expectedLength ?? 0, MIN_CAPACITY);
    const kept = receive?.buffer;
    this.buffer = kept !== undefined && kept.length >= wanted ? kept : Buffer.allocUnsafeSlow(Math.min(wanted, maxBytes));
  }

  /** Appends, or returns false when the body would exceed maxBytes. */
  append(chunk: Buffer): boolean {
    const needed = this.size + chunk.length;
    if (needed > this.maxBytes) return false;
    if (needed > this.buffer.length) {
      const grown = Buffer.allocUnsafeSlow(Math.min(Math.max(needed, this.buffer.length * 2), this.maxBytes));
      this.buffer.copy(grown, 0, 0, this.size);
      this.buffer = grown;
    }
    chunk.copy(this.buffer, this.size);
    this.size = needed;
    return true;
  }

  contents(): Buffer {
    // Keep the buffer for the next fetch, unless this body has shrunk far below it.
    const oversized = this.buffer.length > 4 * this.size + MIN_CAPACITY;
    if (this.receive !== undefined) this.receive.buffer = oversized ? undefined : this.buffer;
    return this.buffer.subarray(0, this.size);
  }
}

function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))}s`;
}

/** Fetches one target; with `receive`, into that reused buffer (see ReceiveBuffer). */
export async function fetchTarget(target: Target, limits: FetchLimits, receive?: ReceiveBuffer): Promise<FetchedTarget> {
  const transport = await transportFor(target);
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    let gunzip: Gunzip | undefined;
    const settle = (outcome: Pick<FetchedTarget, 'body' | 'contentType' | 'error'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (outcome.error !== undefined) {
        request?.destroy();
        gunzip?.destroy();
      }
      const durationSeconds = Math.round((performance.now() - started) * 1000) / 1e6; // microseconds
      resolve({ container: target.container, durationSeconds, ...outcome });
    };
    const fail = (error: string): void => settle({ error });

    const onResponse = (response: IncomingMessage): void => {
      const status = response.statusCode ?? 0;
      if (status < 200 || status > 299) {
        response.resume();
        fail(`HTTP ${status}`);
        return;
      }
      const encoding = (response.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
      const declared = Number(response.headers['content-length'] ?? NaN);
      let body: Readable = response;
      if (encoding === 'gzip' || encoding === 'x-gzip') {
        gunzip = createGunzip();
        gunzip.on('error', (e) => fail(`invalid gzip body: ${e.message}`));
        body = response.pipe(gunzip);
      } else if (encoding !== 'identity') {
        fail(`unsupported Content-Encoding "${encoding}"`);
        return;
      } else if (declared > limits.maxBytes) {
        fail(`body larger than ${limits.maxBytes} bytes (Content-Length ${declared})`);
        return;
      }
      const expected = body === response && Number.isSafeInteger(declared) ? declared : undefined;
      const collected = new BodyWriter(receive, expected, limits.maxBytes);
      body.on('data', (chunk: Buffer) => {
        if (settled) return; // e.g. gunzip output after a timeout: the buffer may be another fetch's now
        if (!collected.append(chunk)) fail(`body larger than ${limits.maxBytes} bytes`);
      });
      body.on('end', () => {
        if (!settled) settle({ body: collected.contents(), contentType: response.headers['content-type'] });
      });
      response.on('error', (e) => fail(describe(e, 'body')));
    };

    let request: http.ClientRequest | undefined;
    const timer = setTimeout(() => fail(`timeout after ${formatSeconds(limits.timeoutMs)}`), limits.timeoutMs);
    const options: http.RequestOptions & { rejectUnauthorized?: boolean } = {
      host: '127.0.0.1',
      port: target.port,
      path: target.path,
      headers: {
        accept: TARGET_ACCEPT,
        'accept-encoding': 'gzip',
        'user-agent': `promux/${VERSION}`,
        'x-prometheus-scrape-timeout-seconds': String(limits.timeoutMs / 1000),
      },
    };
    // https targets are the pod's own containers on localhost: nothing to verify them against.
    if (target.scheme === 'https') options.rejectUnauthorized = false;
    try {
      request = transport.get(options, onResponse);
    } catch (e) {
      fail((e as Error).message); // e.g. a path with characters HTTP does not allow
      return;
    }
    request.on('error', (e) => fail(describe(e, 'request')));
  });
}
