// Wires the webhook together: TLS source, HTTPS server, express app, metrics. The HTTPS server is
// the only listener (no plaintext port). A new certificate is swapped in with setSecureContext, so
// the next TLS handshake gets it and open connections are not disturbed.
import { X509Certificate } from 'node:crypto';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { PromuxConfig } from '../config/types.ts';
import { VERSION } from '../version.ts';
import { createHandler } from './app.ts';
import { createMetrics } from './metrics.ts';
import type { WebhookMetrics } from './metrics.ts';
import type { WebhookOptions } from './options.ts';
import type { Injector } from './review.ts';
import type { KeyPairPem } from './tls/certs.ts';
import { FileTlsSource } from './tls/files.ts';
import type { KubeApi } from './tls/kube.ts';

const MIN_TLS_VERSION = 'TLSv1.2';
/**
 * Longer than the idle timeout of the API server's Go HTTP client (90 s), so the client always
 * closes an idle connection first; otherwise a review sent as the server closes would fail.
 */
const KEEP_ALIVE_TIMEOUT_MS = 120_000;
/** The API server waits at most 30 s for a webhook; no review takes longer than that. */
const REQUEST_TIMEOUT_MS = 30_000;

/** What the server needs of the flags (the shutdown delay is main()'s business). */
export type ServerOptions = Omit<WebhookOptions, 'shutdownDelayMs'>;

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
}

export interface RunningWebhook {
  port: number;
  metrics: WebhookMetrics;
  isReady(): boolean;
  /**
   * Begins shutdown while still serving: /readyz answers 503 and every answer asks the client to
   * close its connection, so the API server's next reviews go through the Service to other replicas.
   */
  drain(): void;
  /** Stops accepting, lets in-flight reviews finish (cut after `graceMs`), stops the TLS source. */
  close(graceMs?: number): Promise<void>;
}

/** Where certificates come from: the first pair, then every change until close(). */
interface TlsSource {
  initial: KeyPairPem;
  /** False while `initial` is a placeholder. */
  ready: boolean;
  start(onChange: (material: KeyPairPem, from: string) => void, onProblem: (problem: string) => void): void;
  close(): void;
}

async function tlsSource(options: ServerOptions, deps: WebhookDeps): Promise<TlsSource> {
  if (options.tls.mode === 'files') {
    const files = new FileTlsSource(options.tls.certFile, options.tls.keyFile, { pollMs: deps.filePollMs });
    return {
      initial: await files.load(),
      ready: true,
      start: (onChange, onProblem) => files.watch({
        onChange: (material) => onChange(material, 'the TLS files'),
        onInvalid: (problem) => onProblem(`${problem}; still serving the previous certificate`),
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
  });
  return {
    // Until the Secret is read, a throwaway certificate lets /healthz answer; /readyz stays 503.
    initial: generateBundle(['promux-webhook-not-ready'], new Date()).serving,
    ready: false,
    start: (onChange, onProblem) => selfManaged.start({
      onChange: (material) => onChange(material, `Secret ${tls.namespace}/${tls.secretName}`),
      onError: onProblem,
    }),
    close: () => selfManaged.close(),
  };
}

export async function startWebhook(options: ServerOptions, deps: WebhookDeps): Promise<RunningWebhook> {
  const { log } = deps;
  const metrics = createMetrics();
  const source = await tlsSource(options, deps);
  let ready = source.ready;
  let closing = false;

  const recordExpiry = (material: KeyPairPem): X509Certificate => {
    const cert = new X509Certificate(material.cert);
    metrics.certificateExpiry.set(Math.floor(new Date(cert.validTo).getTime() / 1000));
    return cert;
  };
  const handler = createHandler({
    config: deps.config, inject: deps.inject, metrics, log, isReady: () => ready, isClosing: () => closing,
  });
  const server = createServer({ cert: source.initial.cert, key: source.initial.key, minVersion: MIN_TLS_VERSION }, handler);
  if (ready) recordExpiry(source.initial);
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = REQUEST_TIMEOUT_MS;
  const onChange = (material: KeyPairPem, from: string): void => {
    server.setSecureContext({ cert: material.cert, key: material.key, minVersion: MIN_TLS_VERSION });
    const cert = recordExpiry(material);
    metrics.tlsReloads.inc({ outcome: 'success' });
    log.info({ subject: cert.subject, notAfter: cert.validTo, fingerprint256: cert.fingerprint256 },
      `serving a new certificate from ${from}`);
    ready = true;
  };
  const onProblem = (problem: string): void => {
    metrics.tlsReloads.inc({ outcome: 'failure' });
    log.error(problem);
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const onListening = (): void => {
      server.off('error', reject);
      resolve();
    };
    if (options.listenAddress === '') server.listen(options.port, onListening);
    else server.listen(options.port, options.listenAddress, onListening);
  });
  server.on('error', (err) => log.error({ err }, 'server error'));
  server.on('tlsClientError', (err) => log.debug({ err: err.message }, 'TLS handshake failed'));
  source.start(onChange, onProblem);
  const port = (server.address() as AddressInfo).port;
  log.info({ version: VERSION, port, tls: options.tls.mode, configFile: options.configFile ?? null }, 'promux webhook listening');

  return {
    port,
    metrics,
    isReady: () => ready,
    drain() {
      closing = true;
    },
    async close(graceMs = 25_000) {
      closing = true;
      source.close();
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
