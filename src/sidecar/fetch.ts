// Fetching one target on 127.0.0.1 (the pod's shared network namespace; `promux proxy` gives pod IPs
// instead). Never rejects: any failure
// (refused, timeout, HTTP error, too large, bad gzip, closed mid-body) comes back as `error`, and the
// merger reports that target down while the others are served.
//
// A small HTTP/1.1 client (http-response.ts reads the response) instead of node:http's: node:http
// reads every piece of a body into a fresh 64 KiB buffer, and at a few megabytes per scrape that
// garbage outside V8's heap made V8 run a full mark-compact on nearly every scrape. Here a plain
// connection reads into one buffer shared by every fetch (each read is consumed before its callback
// returns), and a body is copied once, into its ReceiveBuffer. One request per connection: no pool
// to keep, and a localhost connect is cheap.

import net from 'node:net';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { createGunzip, type Gunzip } from 'node:zlib';
import { endpointOf, type Target } from '../target-map.ts';
import { VERSION } from '../version.ts';
import {
  BodyParser, ExpositionError, formatOfContentType, targetLabelNames, type FetchedTarget, type TargetLabels,
} from './exposition/index.ts';
import { ResponseReader, type ResponseHead } from './http-response.ts';

export interface FetchLimits {
  timeoutMs: number;
  /** Cap on the body, applied after gunzip too (a small gzip can inflate to gigabytes). */
  maxBytes: number;
  /** A cap shared with the other fetches of one fan-out (`promux proxy`'s total): the bytes received are taken from it. */
  shared?: ByteBudget;
  /** Ask for the protobuf exposition first (the scraper takes it; loadProtobuf has run). */
  protobuf?: boolean;
}

export interface ByteBudget {
  /** Bytes the fetches sharing it may still receive. */
  remaining: number;
  /** Says, in the error of the target that found the budget spent, which cap it was. */
  name: string;
}

/** A target and where it is: on 127.0.0.1, unless `host` says otherwise. */
export interface ScrapeTarget extends Target {
  /** An IPv4 or IPv6 address (a pod's IP). */
  host?: string;
  /** See FetchedTarget.labels. */
  labels?: TargetLabels;
}

/** The fields of a FetchedTarget that name the target. */
export function fetchedTargetKey(target: ScrapeTarget): Pick<FetchedTarget, 'container' | 'endpoint' | 'labels'> {
  const key = { container: target.container, endpoint: endpointOf(target) };
  return target.labels === undefined ? key : { ...key, labels: target.labels };
}

/**
 * What Prometheus 3 asks for by default (scrape/scrape.go acceptHeader over its default scrape
 * protocols, UTF-8 names allowed): OpenMetrics preferred, text taken, UTF-8 names kept, so that a
 * target that has them sends them; the merge converts and escapes them as each scraper asks.
 */
const TARGET_ACCEPT =
  'application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,' +
  'text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2';

/**
 * What Prometheus 3 asks for with native histograms on (scrape_protocols with PrometheusProto first,
 * each q a step lower); Prometheus 2.42 with `--enable-feature=native-histograms` asks protobuf first
 * too. The merge converts whatever each target answers (protobuf, OpenMetrics, text).
 */
const TARGET_ACCEPT_PROTOBUF =
  'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;escaping=allow-utf-8;q=0.6,' +
  'application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,' +
  'text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1';

/** Where every plain-TCP fetch reads into; see the top of this file. */
const READ_BUFFER = Buffer.allocUnsafeSlow(64 * 1024);

type TlsConnect = (options: ConnectionOptions) => TLSSocket;
let tlsConnect: Promise<TlsConnect> | undefined;

/** node:tls is loaded only when a target needs it. */
function loadTls(): Promise<TlsConnect> {
  tlsConnect ??= import('node:tls').then((m) => m.connect);
  return tlsConnect;
}

function describe(error: NodeJS.ErrnoException, started: boolean): string {
  if (error.code === 'ECONNREFUSED') return 'connection refused';
  if (error.code !== 'ECONNRESET' && error.code !== 'EPIPE') return error.message;
  return started ? 'connection closed mid-body' : 'connection closed without a response';
}

/** The request (the target's path was checked by parseTarget: visible ASCII only). */
function requestFor(target: Target, host: string, limits: FetchLimits): string {
  return `GET ${target.path} HTTP/1.1\r\n` +
    `Host: ${host.includes(':') ? `[${host}]` : host}:${target.port}\r\n` +
    `Accept: ${limits.protobuf === true ? TARGET_ACCEPT_PROTOBUF : TARGET_ACCEPT}\r\n` +
    // Compression on loopback only costs CPU, the target's and ours; a gzip answer is still read.
    'Accept-Encoding: identity\r\n' +
    `User-Agent: promux/${VERSION}\r\n` +
    `X-Prometheus-Scrape-Timeout-Seconds: ${limits.timeoutMs / 1000}\r\n` +
    'Connection: close\r\n\r\n';
}

/**
 * Where a target's body is received, kept from one fetch to the next: a scrape's bodies are garbage
 * once merged, and fresh multi-megabyte buffers on every scrape are what makes V8's heap (and the
 * pod's memory) grow. Only one fetch at a time may use a given ReceiveBuffer, and the body it
 * returned is overwritten by the next fetch into it.
 */
export class ReceiveBuffer {
  buffer: Buffer | undefined;
  /** The size of the last body received here: a fresh buffer for a body of unknown length starts there rather than growing to it. */
  lastSize = 0;
}

const MIN_CAPACITY = 64 * 1024;

/** A body as it arrives, copied straight into one (reused or growing) buffer. */
class BodyWriter {
  size = 0;
  /** Holds the body so far in [0, size); replaced by a larger copy when it grows. */
  buffer: Buffer;
  private readonly receive: ReceiveBuffer | undefined;
  private readonly maxBytes: number;

  constructor(receive: ReceiveBuffer | undefined, expectedLength: number | undefined, maxBytes: number) {
    this.receive = receive;
    this.maxBytes = maxBytes;
    const wanted = Math.max(expectedLength ?? receive?.lastSize ?? 0, MIN_CAPACITY);
    const kept = receive?.buffer;
    this.buffer = kept !== undefined && kept.length >= wanted ? kept : Buffer.allocUnsafeSlow(Math.min(wanted, maxBytes));
  }

  /** Appends bytes[start, end), or returns false when the body would exceed maxBytes. */
  append(bytes: Buffer, start: number, end: number): boolean {
    const needed = this.size + end - start;
    if (needed > this.maxBytes) return false;
    if (needed > this.buffer.length) {
      const grown = Buffer.allocUnsafeSlow(Math.min(Math.max(needed, this.buffer.length * 2), this.maxBytes));
      this.buffer.copy(grown, 0, 0, this.size);
      this.buffer = grown;
    }
    bytes.copy(this.buffer, this.size, start, end);
    this.size = needed;
    return true;
  }

  contents(): Buffer {
    // Keep the buffer for the next fetch, unless this body has shrunk far below it.
    const oversized = this.buffer.length > 4 * this.size + MIN_CAPACITY;
    if (this.receive !== undefined) {
      this.receive.buffer = oversized ? undefined : this.buffer;
      this.receive.lastSize = this.size;
    }
    return this.buffer.subarray(0, this.size);
  }
}

function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))}s`;
}

/**
 * Fetches one target; with `receive`, into that reused buffer (see ReceiveBuffer). With
 * `containerLabel`, a body whose Content-Type names its format is also parsed as it arrives, so that
 * parsing overlaps with waiting for the rest (FetchedTarget.parsed).
 */
export async function fetchTarget(
  target: ScrapeTarget, limits: FetchLimits, receive?: ReceiveBuffer, containerLabel?: string,
): Promise<FetchedTarget> {
  const started = performance.now();
  const host = target.host ?? '127.0.0.1';
  const request = requestFor(target, host, limits);
  // https targets are the pod's own containers on localhost (or pods, by IP: no name to check a
  // certificate against, as Prometheus' pod discovery needs insecure_skip_verify): nothing to verify.
  const connectTls = target.scheme === 'https' ? await loadTls() : undefined;
  return new Promise((resolve) => {
    let settled = false;
    let socket: net.Socket | undefined;
    let gunzip: Gunzip | undefined;
    let writer: BodyWriter | undefined;
    let parser: BodyParser | undefined;
    let contentType: string | undefined;
    const settle = (outcome: Pick<FetchedTarget, 'body' | 'contentType' | 'parsed' | 'error'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket?.destroy();
      if (outcome.error !== undefined) {
        gunzip?.destroy();
        parser?.abandon();
      }
      const durationSeconds = Math.round((performance.now() - started) * 1000) / 1e6; // microseconds
      resolve({ ...fetchedTargetKey(target), durationSeconds, ...outcome });
    };
    const fail = (error: string): void => settle({ error });
    const append = (bytes: Buffer, start: number, end: number): boolean => {
      if (settled) return false; // e.g. gunzip output after a timeout: the buffer may be another fetch's now
      if (!writer!.append(bytes, start, end)) {
        fail(`body larger than ${limits.maxBytes} bytes`);
        return false;
      }
      const shared = limits.shared;
      if (shared !== undefined && (shared.remaining -= end - start) < 0) {
        fail(`the bodies of this scrape reached ${shared.name}`);
        return false;
      }
      parser?.feed(writer!.buffer, writer!.size);
      return true;
    };
    const finished = (): void => {
      const body = writer!.contents();
      if (parser === undefined) return settle({ body, contentType });
      let parsed;
      try {
        parsed = parser.finish(body, body.length);
      } catch (e) {
        if (!(e instanceof ExpositionError)) throw e;
        parsed = e;
      }
      settle({ body, contentType, parsed });
    };

    const onHead = ({ status, headers, bodyLength }: ResponseHead): boolean => {
      if (status < 200 || status > 299) {
        fail(`HTTP ${status}`);
        return false;
      }
      contentType = headers.get('content-type');
      const encoding = (headers.get('content-encoding') ?? 'identity').toLowerCase();
      if (encoding === 'gzip' || encoding === 'x-gzip') {
        gunzip = createGunzip();
        gunzip.on('data', (chunk: Buffer) => append(chunk, 0, chunk.length));
        gunzip.on('error', (e) => fail(`invalid gzip body: ${e.message}`));
        gunzip.on('end', () => !settled && finished());
      } else if (encoding !== 'identity') {
        fail(`unsupported Content-Encoding "${encoding}"`);
        return false;
      } else if (bodyLength !== undefined && bodyLength > limits.maxBytes) {
        fail(`body larger than ${limits.maxBytes} bytes (Content-Length ${bodyLength})`);
        return false;
      }
      writer = new BodyWriter(receive, gunzip === undefined ? bodyLength : undefined, limits.maxBytes);
      const format = formatOfContentType(contentType);
      if (containerLabel !== undefined && format !== undefined) parser = new BodyParser(format, targetLabelNames(target, containerLabel));
      return true;
    };
    const reader = new ResponseReader({
      head: onHead,
      // zlib works on its input later: it gets a copy, not the shared read buffer.
      body: (bytes, start, end) => (gunzip === undefined ? append(bytes, start, end) : (gunzip.write(Buffer.from(bytes.subarray(start, end))), !settled)),
      done: () => (gunzip === undefined ? finished() : gunzip.end()),
      fail,
    });

    const timer = setTimeout(() => fail(`timeout after ${formatSeconds(limits.timeoutMs)}`), limits.timeoutMs);
    if (connectTls === undefined) {
      socket = net.connect({
        host,
        port: target.port,
        onread: { buffer: READ_BUFFER, callback: (length) => (reader.push(READ_BUFFER, 0, length), !settled) },
      });
    } else {
      socket = connectTls({ host, port: target.port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
      socket.on('data', (chunk: Buffer) => reader.push(chunk, 0, chunk.length));
    }
    socket.on('end', () => reader.end());
    socket.on('error', (e) => fail(describe(e, reader.started)));
    // Not end(): a half-closed connection reads to some servers (Go's among them) as a client gone.
    socket.write(request);
  });
}
