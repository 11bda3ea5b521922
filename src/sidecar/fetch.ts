// Fetching one target on 127.0.0.1 (the pod's shared network namespace). Never rejects: any failure
// (refused, timeout, HTTP error, too large, bad gzip, closed mid-body) comes back as `error`, and the
// merger reports that target down while the others are served.

import http from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
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
  if (error.code === 'ECONNRESET') return during === 'body' ? 'connection closed mid-body' : 'connection closed without a response';
  return error.message;
}

/**
 * A body as it arrives. With a known length it is copied into one buffer as it comes, so the
 * socket's chunks are garbage at once and nothing is copied twice (memory is the sidecar's cost).
 */
class BodyBuffer {
  size = 0;
  private readonly whole: Buffer | undefined;
  private readonly chunks: Buffer[] = [];

  constructor(expectedLength: number | undefined) {
    this.whole = expectedLength === undefined ? undefined : Buffer.allocUnsafe(expectedLength);
  }

  append(chunk: Buffer): void {
    // Node's parser holds the body to its Content-Length, so `whole` never overflows.
    if (this.whole !== undefined) chunk.copy(this.whole, this.size);
    else this.chunks.push(chunk);
    this.size += chunk.length;
  }

  contents(): Buffer {
    return this.whole !== undefined ? this.whole.subarray(0, this.size) : Buffer.concat(this.chunks, this.size);
  }
}

function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))}s`;
}

export async function fetchTarget(target: Target, limits: FetchLimits): Promise<FetchedTarget> {
  const transport = await transportFor(target);
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const settle = (outcome: Pick<FetchedTarget, 'body' | 'contentType' | 'error'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (outcome.error !== undefined) request?.destroy();
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
        const gunzip = createGunzip();
        gunzip.on('error', (e) => fail(`invalid gzip body: ${e.message}`));
        body = response.pipe(gunzip);
      } else if (encoding !== 'identity') {
        fail(`unsupported Content-Encoding "${encoding}"`);
        return;
      } else if (declared > limits.maxBytes) {
        fail(`body larger than ${limits.maxBytes} bytes (Content-Length ${declared})`);
        return;
      }
      const collected = new BodyBuffer(body === response && Number.isSafeInteger(declared) ? declared : undefined);
      body.on('data', (chunk: Buffer) => {
        if (collected.size + chunk.length > limits.maxBytes) {
          fail(`body larger than ${limits.maxBytes} bytes`);
          body.destroy();
          return;
        }
        collected.append(chunk);
      });
      body.on('end', () => settle({ body: collected.contents(), contentType: response.headers['content-type'] }));
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
