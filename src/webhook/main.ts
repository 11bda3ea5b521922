// `promux webhook`: flags and config in, the HTTPS webhook up until SIGTERM or SIGINT.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { ConfigError, loadConfig } from '../config/load.ts';
import type { PromuxConfig } from '../config/types.ts';
import { injectPod } from '../inject/index.ts';
import { batchedDestination, webhookLogger } from './log.ts';
import { SERVICE_ACCOUNT_NAMESPACE_FILE, UsageError, parseWebhookArgs } from './options.ts';
import type { WebhookOptions } from './options.ts';
import { startWebhook } from './server.ts';
import { usageError } from '../usage.ts';

/** One line on stderr: a multi-line message ("file: invalid configuration:\n  a: ...\n  b: ...") is joined. */
function fail(message: string): void {
  const line = message.replace(/:\n\s*/g, ': ').replace(/\n\s*/g, '; ');
  process.stderr.write(`promux webhook: ${line}\n`);
}

function readNamespaceFile(): string | undefined {
  try {
    return readFileSync(SERVICE_ACCOUNT_NAMESPACE_FILE, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Reviews take milliseconds; a connection still busy this long after the listener closed is cut.
 * With the default --shutdown-delay (5 s) shutdown ends well inside the pod's 30 s grace period.
 */
const IN_FLIGHT_GRACE_MS = 15_000;

/**
 * The first SIGTERM or SIGINT starts shutdown; a second one skips the rest of the drain delay.
 * The handlers stay installed, so a later signal never kills the process mid-shutdown.
 */
function watchSignals(): { first: Promise<NodeJS.Signals>; second: Promise<NodeJS.Signals> } {
  const resolvers: ((signal: NodeJS.Signals) => void)[] = [];
  const first = new Promise<NodeJS.Signals>((resolve) => resolvers.push(resolve));
  const second = new Promise<NodeJS.Signals>((resolve) => resolvers.push(resolve));
  const onSignal = (signal: NodeJS.Signals): void => resolvers.shift()?.(signal);
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return { first, second };
}

function seconds(ms: number): string {
  return `${ms / 1000}s`;
}

/**
 * The config with the cluster's Kubernetes version (whether it runs native sidecars, for Job pods):
 * as configured, else asked of the API server at start when running in a cluster. Unknown, promux
 * skips pods that would need a native sidecar, saying why.
 */
export async function withKubernetesVersion(
  config: PromuxConfig, log: Pick<Logger, 'info' | 'warn'>, read: () => Promise<string>, inCluster: boolean,
): Promise<PromuxConfig> {
  if (config.kubernetesVersion !== '') {
    log.info({ kubernetesVersion: config.kubernetesVersion }, 'Kubernetes version from the configuration');
    return config;
  }
  const unknown = 'pods whose restartPolicy is not Always are skipped (they need a native sidecar); set kubernetesVersion in the configuration';
  if (!inCluster) {
    log.warn(`Kubernetes version unknown (not running in a cluster): ${unknown}`);
    return config;
  }
  try {
    const version = await read();
    log.info({ kubernetesVersion: version }, 'Kubernetes version from the API server');
    return { ...config, kubernetesVersion: version };
  } catch (err) {
    log.warn({ err: (err as Error).message }, `cannot read the API server's /version: ${unknown}`);
    return config;
  }
}

export async function main(argv: string[]): Promise<number> {
  let options: WebhookOptions;
  let config: PromuxConfig;
  try {
    const parsed = parseWebhookArgs(argv, process.env, readNamespaceFile);
    if ('help' in parsed) {
      process.stdout.write(parsed.help);
      return 0;
    }
    options = parsed.options;
    config = loadConfig(options.configFile);
  } catch (err) {
    if (err instanceof UsageError) process.stderr.write(usageError('webhook', err.message));
    else if (err instanceof ConfigError) fail(err.message);
    else throw err;
    return 2;
  }

  const stdout = batchedDestination(1);
  process.on('exit', stdout.flushSync);
  const log = webhookLogger(options.logLevel, stdout);
  const signals = watchSignals();
  config = await withKubernetesVersion(config, log, async () => (await import('./tls/kube.ts')).readServerVersion(),
    process.env.KUBERNETES_SERVICE_HOST !== undefined);
  let webhook;
  try {
    webhook = await startWebhook(options, { config, inject: injectPod, log });
  } catch (err) {
    fail((err as Error).message);
    return 1;
  }
  // Kubernetes removes the pod from the Service's endpoints while it sends SIGTERM, and the API
  // server keeps calling until it notices: keep answering for a while, failing /readyz, then close.
  const signal = await signals.first;
  webhook.drain();
  log.info({ shutdownDelayMs: options.shutdownDelayMs },
    `${signal}: shutting down; /readyz fails, reviews are answered for ${seconds(options.shutdownDelayMs)} more`);
  if (options.shutdownDelayMs > 0) {
    const delay = new AbortController();
    const cutShort = await Promise.race([
      sleep(options.shutdownDelayMs, false, { signal: delay.signal }),
      signals.second.then(() => true),
    ]);
    delay.abort();
    if (cutShort) log.info('second signal: closing without waiting for the rest of the delay');
  }
  log.info('closing the listener; finishing reviews in flight');
  await webhook.close(IN_FLIGHT_GRACE_MS);
  log.info('stopped');
  return 0;
}
