// The lean HTTP side: node:http, the merged endpoint, /healthz, /readyz. The merged answer is sent
// as it is written (chunked, gzip streamed likewise), so that it is never held whole; a failure
// half-way cuts the connection, so a scraper never takes a cut-off body for a whole one. Every other
// response, and the background cache's answer, is sent whole with its Content-Length.

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { constants, createGzip, gzip, type ZlibOptions } from 'node:zlib';
import type { Collector } from './collector.ts';
import { recyclePiece, wholeAnswer } from './exposition/index.ts';
import type { AnyMergeOutput, MergeAnswer } from './exposition/types.ts';
import type { Log } from './log.ts';
import { acceptsGzip, negotiateOutput, targetTimeoutMs } from './negotiate.ts';

const gzipAsync = promisify(gzip);
/** The longest delay a Node timer takes (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2_147_483_647;
const IDLE_SOCKET_GRACE_MS = 30_000;
/**
 * How much of a streamed answer may wait in a response (and in its gzip stream) before the merge
 * waits for the connection: with Node's default of 16 KiB, below one piece of the merge, every piece
 * waited for a 'drain' (+16% CPU per scrape on bench/sidecar.ts's targets).
 */
const STREAM_HIGH_WATER_BYTES = 512 * 1024;
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
    this.server = http.createServer(
      { connectionsCheckingInterval: MAX_TIMER_MS, highWaterMark: STREAM_HIGH_WATER_BYTES },
      (req, res) => void this.handle(req, res),
    );
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
    let output: MergeAnswer | AnyMergeOutput;
    try {
      const timeoutHeader = req.headers['x-prometheus-scrape-timeout-seconds'];
      output = await this.collector.collect(
        negotiateOutput(req.headers.accept),
        targetTimeoutMs(this.options.scrapeTimeoutMs, Array.isArray(timeoutHeader) ? timeoutHeader[0] : timeoutHeader),
      );
    } catch (e) {
      this.failed(res, e);
      return;
    }
    const headers: Headers = { 'content-type': output.contentType, vary: 'Accept-Encoding' };
    const gzipped = acceptsGzip(req.headers['accept-encoding']);
    if (gzipped) headers['content-encoding'] = 'gzip';
    // Only once the body has been handed to the kernel ('finish'; not on a connection cut mid-write).
    res.once('finish', () => this.collector.sent());
    let body: Buffer;
    if (!('pieces' in output)) {
      body = output.body;
    } else if (req.httpVersion !== '1.0') {
      await this.stream(res, headers, output.pieces, gzipped);
      return;
    } else {
      // HTTP/1.0 has no chunks: a body ended by the connection's end could not be told from a cut one.
      try {
        body = wholeAnswer(output).body;
      } catch (e) {
        this.failed(res, e);
        return;
      }
    }
    if (gzipped) {
      let compressed = this.gzipped.get(body);
      if (compressed === undefined) {
        // Fastest level: the scrape's latency matters more than a few more bytes on the pod network.
        compressed = gzipAsync(body, { level: constants.Z_BEST_SPEED });
        this.gzipped.set(body, compressed);
      }
      try {
        body = await compressed;
      } catch (e) {
        this.failed(res, e);
        return;
      }
    }
    this.send(res, 200, headers, body);
  }

  /**
   * Sends the pieces as they are taken, chunked (gzipped at the fastest level, as a stream, when
   * asked), taking the next one only when the connection has room for it. The first piece is taken
   * before the status line: a merge that fails at once still gets a 500. Every path takes the pieces
   * to their end or ends them, which releases what the merge holds.
   */
  private async stream(res: ServerResponse, headers: Headers, pieces: Generator<Buffer, void, undefined>, gzipped: boolean): Promise<void> {
    try {
      let piece: IteratorResult<Buffer, void>;
      try {
        piece = pieces.next();
      } catch (e) {
        this.failed(res, e);
        return;
      }
      res.writeHead(200, { ...headers, ...(this.closing ? { connection: 'close' } : {}) });
      let sink: Writable = res;
      if (gzipped) {
        // zlib hands its options on to its Transform stream, which takes the high water mark.
        const options: ZlibOptions & { writableHighWaterMark: number } = {
          level: constants.Z_BEST_SPEED, chunkSize: 128 * 1024, writableHighWaterMark: STREAM_HIGH_WATER_BYTES,
        };
        const gzip = createGzip(options);
        gzip.on('error', (e) => this.cut(res, e));
        res.once('close', () => gzip.destroy());
        gzip.pipe(res);
        sink = gzip;
      }
      for (; piece.done !== true; piece = pieces.next()) {
        const written = piece.value;
        if (!sink.write(written, (e) => e == null && recyclePiece(written))) await drained(sink, res);
        if (res.destroyed) return; // the scraper went away (or the answer was cut)
      }
      sink.end();
    } catch (e) {
      this.cut(res, e);
    } finally {
      pieces.return();
    }
  }

  /** A failure once the status line is out: the connection is cut, so that the scrape fails rather than taking what came. */
  private cut(res: ServerResponse, e: unknown): void {
    this.log('error', 'scrape failed while its answer was being sent; connection closed', { error: (e as Error).stack ?? String(e) });
    res.destroy();
  }

  private failed(res: ServerResponse, e: unknown): void {
    this.log('error', 'scrape failed', { error: (e as Error).stack ?? String(e) });
    this.send(res, 500, { 'content-type': 'text/plain; charset=utf-8' }, 'promux: scrape failed, see its log\n');
  }
}

/** Resolves when `sink` takes writes again, or when the response is closed (it never will then). */
function drained(sink: Writable, res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      sink.off('drain', done);
      res.off('close', done);
      resolve();
    };
    sink.on('drain', done);
    res.on('close', done);
  });
}
