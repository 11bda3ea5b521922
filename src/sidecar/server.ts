// The lean HTTP side: node:http, the merged endpoint, /healthz, /readyz. A response is built fully
// and sent with its Content-Length: a scraper never sees a half-written body.

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { constants, gzip } from 'node:zlib';
import type { Collector } from './collector.ts';
import type { Log } from './log.ts';
import { acceptsGzip, negotiateOutput, targetTimeoutMs } from './negotiate.ts';

const gzipAsync = promisify(gzip);
/** The longest delay a Node timer takes (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2_147_483_647;
const IDLE_SOCKET_GRACE_MS = 30_000;
// node:http taken with process.getBuiltinModule rather than an ES import: an ES import of node:http
// reads every export, and its lazy `WebSocket` getter loads Node's bundled undici, which costs every
// sidecar 13 MiB of RSS (a bare server: 60 MiB against 47) for a client it never uses.
const http = process.getBuiltinModule('node:http');

export interface ServerOptions {
  listenAddress: string;
  port: number;
  endpoint: string;
  scrapeTimeoutMs: number;
  /**
   * Why the server cannot answer scrapes yet (`promux proxy`: its pods are not known), or undefined:
   * then /readyz and the endpoint answer 503 with it. The sidecar has none: it is ready once listening.
   */
  notReady?: () => string | undefined;
}

type Headers = Record<string, string>;

export class SidecarServer {
  private readonly server: Server;
  private readonly options: ServerOptions;
  private readonly collector: Collector;
  private readonly log: Log;
  private closing = false;
  /** A merged body served many times (the background cache) is compressed once. */
  private readonly gzipped = new WeakMap<Buffer, Promise<Buffer>>();

  constructor(options: ServerOptions, collector: Collector, log: Log) {
    this.options = options;
    this.collector = collector;
    this.log = log;
    // Node checks every connection's request and header timeouts every 30 s, even with none open, and
    // that wake-up costs ~20 ms of CPU each time (its code is recompiled after V8 flushed it): a
    // sidecar must cost nothing while nobody scrapes. Instead, a socket idle for longer than a scrape
    // can take is closed, by a timer that exists only while the socket does.
    this.server = http.createServer({ connectionsCheckingInterval: MAX_TIMER_MS }, (req, res) => void this.handle(req, res));
    this.server.timeout = options.scrapeTimeoutMs + IDLE_SOCKET_GRACE_MS;
  }

  /** Resolves with the bound address once listening. */
  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.listenAddress, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** Stops accepting, lets the scrapes in flight finish and be sent, resolves when every connection is closed. */
  async close(): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    // A client that keeps a busy connection and sends more requests after ours: cut it eventually.
    setTimeout(() => this.server.closeAllConnections(), this.options.scrapeTimeoutMs + 5000).unref();
    await closed;
  }

  private send(res: ServerResponse, status: number, headers: Headers, body: Buffer | string): void {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    res.writeHead(status, {
      ...headers,
      'content-length': String(bytes.length),
      // Sockets of scrapes finished during shutdown close instead of idling until keep-alive ends.
      ...(this.closing ? { connection: 'close' } : {}),
    });
    res.end(bytes);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0];
    const plain = { 'content-type': 'text/plain; charset=utf-8' };
    if (path !== this.options.endpoint && path !== '/healthz' && path !== '/readyz') {
      this.send(res, 404, plain, 'not found\n');
      return;
    }
    if (req.method !== 'GET') {
      this.send(res, 405, { ...plain, allow: 'GET' }, 'method not allowed\n');
      return;
    }
    const notReady = path === '/healthz' ? undefined : this.options.notReady?.();
    if (notReady !== undefined) {
      this.send(res, 503, plain, `not ready: ${notReady}\n`);
    } else if (path === this.options.endpoint) {
      await this.serveMetrics(req, res);
    } else if (path === '/readyz' && this.closing) {
      this.send(res, 503, plain, 'shutting down\n');
    } else {
      this.send(res, 200, plain, 'ok\n');
    }
  }

  private async serveMetrics(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const timeoutHeader = req.headers['x-prometheus-scrape-timeout-seconds'];
      const output = await this.collector.collect(
        negotiateOutput(req.headers.accept),
        targetTimeoutMs(this.options.scrapeTimeoutMs, Array.isArray(timeoutHeader) ? timeoutHeader[0] : timeoutHeader),
      );
      const headers: Headers = { 'content-type': output.contentType, vary: 'Accept-Encoding' };
      let body = output.body;
      if (acceptsGzip(req.headers['accept-encoding'])) {
        let compressed = this.gzipped.get(body);
        if (compressed === undefined) {
          // Fastest level: the scrape's latency matters more than a few more bytes on the pod network.
          compressed = gzipAsync(body, { level: constants.Z_BEST_SPEED });
          this.gzipped.set(body, compressed);
        }
        body = await compressed;
        headers['content-encoding'] = 'gzip';
      }
      // Only once the body has been handed to the kernel ('finish'; not on a connection cut mid-write).
      res.once('finish', () => this.collector.sent(output));
      this.send(res, 200, headers, body);
    } catch (e) {
      this.log('error', 'scrape failed', { error: (e as Error).stack ?? String(e) });
      this.send(res, 500, { 'content-type': 'text/plain; charset=utf-8' }, 'promux: scrape failed, see its log\n');
    }
  }
}
