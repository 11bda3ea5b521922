// Wires the webhook together: TLS source, HTTPS server, express app, metrics, and the bounds on
// what clients may hold (connections, time; reviews and bytes are app.ts's). The HTTPS server serves
// everything; an optional plain-HTTP health port answers /healthz and /readyz only. A new
// certificate is swapped in with setSecureContext, so the next TLS handshake gets it and open
// connections are not disturbed.
import { X509Certificate } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, ServerResponse, Server as HttpServer } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { PromuxConfig } from '../config/types.ts';
import { VERSION } from '../version.ts';
import { createHandler } from './app.ts';
import { ConnectionGuard } from './connections.ts';
import { effectiveLimits } from './limits.ts';
import { LoopLag } from './loop-lag.ts';
import type { EffectiveLimits } from './limits.ts';
import { createMetrics } from './metrics.ts';
import type { WebhookMetrics } from './metrics.ts';
import type { WebhookOptions } from './options.ts';
import type { Injector } from './review.ts';
import type { KeyPairPem } from './tls/certs.ts';
import { FileTlsSource } from './tls/files.ts';
import type { KubeApi } from './tls/kube.ts';

/**
 * TLS 1.2 and 1.3 only. On TLS 1.2, only ECDHE key exchange (forward secrecy) with AEAD ciphers
 * (GCM, ChaCha20-Poly1305): no static-RSA key exchange, no CBC. TLS 1.3's suites are all of that
 * kind. Go's TLS client (the API server's) offers every one of these.
 */
export const TLS_OPTIONS = {
  minVersion: 'TLSv1.2',
  ciphers: [
    'TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256',
    'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256',
    'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
    'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
  ].join(':'),
  honorCipherOrder: true,
} as const;
/**
 * How often Node looks for connections past the headers or request timeout: the timeouts fire at
 * most this late (Node's default, 30 s, would let a slow client stay up to 30 s longer).
 */
const TIMEOUT_CHECK_MS = 250;
/** The health port serves the kubelet: a handful of connections, short timeouts. */
const HEALTH_MAX_CONNECTIONS = 16;
const HEALTH_TIMEOUT_MS = 5000;
/**
 * The process has more work than CPU when its event loop keeps running this late, or when it shed an
 * ordinary (small) review for time in the last OVERLOAD_HOLD_MS: new connections are refused meanwhile
 * (each would cost a TLS handshake, as much CPU as several reviews, and its review would wait behind
 * the rest). Large reviews shed for time say only that large reviews are queued, not that all are.
 */
const OVERLOAD_LAG_MS = 200;
const OVERLOAD_HOLD_MS = 1000;

/** What the server needs of the flags (the shutdown delay is main()'s business); unset limits take their defaults. */
export type ServerOptions = Omit<WebhookOptions, 'shutdownDelayMs' | 'limits'> & { limits?: Partial<WebhookOptions['limits']> };

export interface WebhookDeps {
  config: PromuxConfig;
  inject: Injector;
  log: Logger;
  /** Self-managed mode's API client; default: from the KubeConfig (in-cluster, or $KUBECONFIG). */
  kube?: KubeApi;
  now?: () => Date;
  /** Files mode: periodic re-read, in case a file system drops change events. */
  filePollMs?: number;
  /** Self-managed mode: period of the Secret and caBundle check. */
  selfManagedCheckMs?: number;
  /** Self-managed mode: the pace of a CA rollover. */
  selfManagedRollover?: { rolloverPollMs?: number; rolloverOverlapMs?: number };
}

export interface RunningWebhook {
  port: number;
  /** The plain-HTTP health port, when one was asked for. */
  healthPort?: number;
  metrics: WebhookMetrics;
  limits: EffectiveLimits;
  isReady(): boolean;
  /**
   * Begins shutdown while still serving: /readyz answers 503 and every answer asks the client to
   * close its connection, so the API server's next reviews go through the Service to other replicas.
   */
  drain(): void;
  /** Stops accepting, lets in-flight reviews finish (cut after `graceMs`), stops the TLS source. */
  close(graceMs?: number): Promise<void>;
}

interface TlsSourceEvents {
  onChange: (material: KeyPairPem, from: string) => void;
  onProblem: (problem: string) => void;
  /** Self-managed mode: whether the webhook configuration trusts the certificate served. */
  onTrust: (trusted: boolean) => void;
}

/** Where certificates come from: the first pair, then every change until close(). */
interface TlsSource {
  initial: KeyPairPem;
  /** False while `initial` is a placeholder (or not yet known to be trusted). */
  ready: boolean;
  start(events: TlsSourceEvents): void;
  close(): void;
}

async function tlsSource(options: ServerOptions, deps: WebhookDeps): Promise<TlsSource> {
  if (options.tls.mode === 'files') {
    const files = new FileTlsSource(options.tls.certFile, options.tls.keyFile, { pollMs: deps.filePollMs });
    return {
      initial: await files.load(),
      ready: true,
      start: (events) => files.watch({
        onChange: (material) => events.onChange(material, 'the TLS files'),
        onInvalid: (problem) => events.onProblem(`${problem}; still serving the previous certificate`),
      }),
      close: () => files.close(),
    };
  }
  const { generateBundle } = await import('./tls/certs.ts');
  const { SelfManagedTls } = await import('./tls/self-managed.ts');
  const kube = deps.kube ?? (await import('./tls/kube.ts')).kubeApi();
  const tls = options.tls;
  const selfManaged = new SelfManagedTls({
    kube,
    namespace: tls.namespace,
    secretName: tls.secretName,
    webhookConfigName: tls.webhookConfigName,
    serviceName: tls.serviceName,
    log: deps.log,
    ...(deps.now === undefined ? {} : { now: deps.now }),
    ...(deps.selfManagedCheckMs === undefined ? {} : { checkIntervalMs: deps.selfManagedCheckMs }),
    ...(deps.selfManagedRollover ?? {}),
  });
  return {
    // Until the Secret is read, a throwaway certificate lets /healthz answer; /readyz stays 503.
    initial: generateBundle(['promux-webhook-not-ready'], new Date()).serving,
    ready: false,
    start: (events) => selfManaged.start({
      onChange: (material) => events.onChange(material, `Secret ${tls.namespace}/${tls.secretName}`),
      onTrust: events.onTrust,
      onError: events.onProblem,
    }),
    close: () => selfManaged.close(),
  };
}

/**
 * Counts the connections closed for being too slow or malformed, and closes them: an HTTP error
 * (a request past its headers or request timeout, unparsable HTTP) gets Node's answer (408, 431 or
 * 400); a TLS one (a handshake past its timeout, a client that went away) is just closed.
 * The https server passes TLS handshake errors here too.
 */
function onClientError(metrics: WebhookMetrics, log: Logger) {
  return (err: NodeJS.ErrnoException, socket: Socket): void => {
    const code = err.code ?? '';
    if (!code.startsWith('HPE_') && !code.startsWith('ERR_HTTP_')) {
      if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') metrics.connectionsClosed.inc({ reason: 'handshake-timeout' });
      log.debug({ err: err.message, code }, 'TLS handshake failed');
      socket.destroy();
      return;
    }
    const timeout = code === 'ERR_HTTP_REQUEST_TIMEOUT';
    metrics.connectionsClosed.inc({ reason: timeout ? 'request-timeout' : 'bad-request' });
    if (socket.writable) {
      const status = timeout ? '408 Request Timeout' : code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    }
    socket.destroySoon();
  };
}

function listen(server: HttpServer, port: number, address: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    const onListening = (): void => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    };
    if (address === '') server.listen(port, onListening);
    else server.listen(port, address, onListening);
  });
}

/** The kubelet's probes: /healthz and /readyz over plain HTTP, nothing else, on their own listener. */
function healthServer(isReady: () => boolean): HttpServer {
  const server = createHttpServer({ connectionsCheckingInterval: TIMEOUT_CHECK_MS }, (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?')[0];
    const [status, text] = req.method !== 'GET' && req.method !== 'HEAD' ? [405, 'method not allowed\n']
      : path === '/healthz' ? [200, 'ok\n']
        : path === '/readyz' ? (isReady() ? [200, 'ok\n'] : [503, 'not ready\n'])
          : [404, 'not found: only /healthz and /readyz here\n'];
    res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) });
    res.end(req.method === 'HEAD' ? undefined : text);
  });
  server.maxConnections = HEALTH_MAX_CONNECTIONS;
  server.headersTimeout = HEALTH_TIMEOUT_MS;
  server.requestTimeout = HEALTH_TIMEOUT_MS;
  server.keepAliveTimeout = HEALTH_TIMEOUT_MS;
  return server;
}

export async function startWebhook(options: ServerOptions, deps: WebhookDeps): Promise<RunningWebhook> {
  const { log } = deps;
  const metrics = createMetrics();
  const limits = effectiveLimits(options.limits);
  const source = await tlsSource(options, deps);
  // Ready once the certificate served is real and (self-managed) the webhook configuration trusts it.
  let serving = source.ready;
  let trusted = source.ready;
  let ready = source.ready;
  let closing = false;

  const recordExpiry = (material: KeyPairPem): X509Certificate => {
    const cert = new X509Certificate(material.cert);
    metrics.certificateExpiry.set(Math.floor(new Date(cert.validTo).getTime() / 1000));
    return cert;
  };
  for (const [limit, value] of [['reviews_in_flight', limits.maxReviewsInFlight],
    ['request_bytes_in_flight', limits.maxRequestBytesInFlight], ['memory_bytes', limits.memoryLimitBytes]] as const) {
    metrics.limits.set({ limit }, value);
  }
  const lag = new LoopLag();
  let shedForTimeAt = -Infinity;
  // The guard watches the server the handler is part of: made once the server exists.
  const connections: { guard?: ConnectionGuard } = {};
  const handler = createHandler({
    config: deps.config, inject: deps.inject, metrics, log, limits, isReady: () => ready, isClosing: () => closing,
    arrivedAt: (req, seen) => Math.min(connections.guard?.firstArrival(req.socket as TLSSocket) ?? seen, seen - lag.recent()),
    onShed: (reason, small) => {
      if (small && (reason === 'overload' || reason === 'deadline')) shedForTimeAt = performance.now();
    },
  });
  const server = createServer({
    cert: source.initial.cert, key: source.initial.key, ...TLS_OPTIONS,
    // A connection that has not finished its TLS handshake by then is closed (Node's default: 120 s).
    handshakeTimeout: limits.headersTimeoutMs,
    connectionsCheckingInterval: TIMEOUT_CHECK_MS,
  }, handler);
  if (ready) recordExpiry(source.initial);
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  // Node keeps an idle connection a second past keepAliveTimeout, against a client reusing it as it
  // closes; ours (120 s) already outlasts the API server's idle timeout (90 s), so close on time.
  Object.assign(server, { keepAliveTimeoutBuffer: 0 });
  server.requestTimeout = limits.requestTimeoutMs;
  server.headersTimeout = limits.headersTimeoutMs;
  connections.guard = new ConnectionGuard(server, {
    maxConnections: limits.maxConnections, metrics, log,
    overloaded: () => lag.sustained() > OVERLOAD_LAG_MS || performance.now() - shedForTimeAt < OVERLOAD_HOLD_MS,
  });
  const onChange = (material: KeyPairPem, from: string): void => {
    server.setSecureContext({ cert: material.cert, key: material.key, ...TLS_OPTIONS });
    const cert = recordExpiry(material);
    metrics.tlsReloads.inc({ outcome: 'success' });
    log.info({ subject: cert.subject, notAfter: cert.validTo, fingerprint256: cert.fingerprint256 },
      `serving a new certificate from ${from}`);
    serving = true;
    ready = serving && trusted;
  };
  const onTrust = (now: boolean): void => {
    if (now !== trusted) {
      if (now) log.info('the webhook configuration\'s caBundle holds the CA of the certificate served: ready');
      else log.warn('the webhook configuration\'s caBundle does not hold the CA of the certificate served: not ready');
    }
    trusted = now;
    ready = serving && trusted;
  };
  const onProblem = (problem: string): void => {
    metrics.tlsReloads.inc({ outcome: 'failure' });
    log.error(problem);
  };
  const port = await listen(server, options.port, options.listenAddress);
  server.on('error', (err) => log.error({ err }, 'server error'));
  server.on('clientError', onClientError(metrics, log));
  const health = options.healthPort === undefined ? undefined : healthServer(() => ready && !closing);
  const healthPort = health === undefined ? undefined : await listen(health, options.healthPort!, options.listenAddress);
  source.start({ onChange, onProblem, onTrust });
  const { memoryLimitBytes, memorySource, maxConnections, maxReviewsInFlight, maxRequestBytesInFlight } = limits;
  log.info({
    version: VERSION, port, ...(healthPort === undefined ? {} : { healthPort }), tls: options.tls.mode,
    configFile: options.configFile ?? null,
    limits: { memoryLimitBytes, memorySource, maxConnections, maxReviewsInFlight, maxRequestBytesInFlight,
      headersTimeoutMs: limits.headersTimeoutMs, requestTimeoutMs: limits.requestTimeoutMs, keepAliveTimeoutMs: limits.keepAliveTimeoutMs },
  }, 'promux webhook listening');

  return {
    port,
    ...(healthPort === undefined ? {} : { healthPort }),
    metrics,
    limits,
    isReady: () => ready,
    drain() {
      closing = true;
    },
    async close(graceMs = 25_000) {
      closing = true;
      source.close();
      lag.close();
      health?.close();
      health?.closeAllConnections();
      await new Promise<void>((resolve) => {
        const cut = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clearTimeout(cut);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}
