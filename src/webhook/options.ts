// Flags of `promux webhook`. Every flag can also be given as PROMUX_<UPPER_SNAKE> (--tls-cert-file is
// PROMUX_TLS_CERT_FILE); a flag on the command line wins. Pure: argv and the environment in, options out.
import { Command, CommanderError, Option } from 'commander';
import { parseBytes, parseDurationMs } from '../config/duration.ts';
import { DEFAULT_TIMEOUTS } from './limits.ts';

export type TlsMode =
  | { mode: 'files'; certFile: string; keyFile: string }
  | { mode: 'self-managed'; secretName: string; webhookConfigName: string; serviceName: string; namespace: string };

/**
 * What the server may hold at once and how long it waits for a client. Unset caps are sized from
 * the memory limit (limits.ts); unset memory limit: the cgroup's.
 */
export interface ServingLimits {
  memoryLimitBytes?: number;
  maxConnections?: number;
  maxReviewsInFlight?: number;
  maxRequestBytesInFlight?: number;
  /** A new connection's TLS handshake and request headers, and any request's headers, must arrive within this. */
  headersTimeoutMs: number;
  /** A whole request (headers and body) must arrive within this (a review's own deadline may be shorter). */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
}

export interface WebhookOptions {
  port: number;
  listenAddress: string;
  /** Plain-HTTP port answering only /healthz and /readyz (for the kubelet); undefined: none. */
  healthPort?: number;
  configFile?: string;
  logLevel: string;
  /** After SIGTERM: how long /readyz fails while reviews are still served, before the listener closes. */
  shutdownDelayMs: number;
  limits: ServingLimits;
  tls: TlsMode;
}

export type ParsedArgs = { help: string } | { options: WebhookOptions };

export class UsageError extends Error {
  override name = 'UsageError';
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
export const SERVICE_ACCOUNT_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

const SELF_MANAGED_FLAGS = ['tlsSecretName', 'webhookConfigName', 'serviceName', 'namespace'] as const;

function kebab(attribute: string): string {
  return attribute.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function envName(attribute: string): string {
  return `PROMUX_${attribute.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

function command(): Command {
  return new Command('promux webhook')
    .description('HTTPS admission webhook: injects the promux sidecar into opted-in pods.\n'
      + 'Every flag can also be set as PROMUX_<FLAG> (e.g. PROMUX_TLS_CERT_FILE).')
    .addOption(new Option('--port <port>', 'HTTPS port').default('8443'))
    .addOption(new Option('--listen-address <address>', 'address to listen on (default: all interfaces)'))
    .addOption(new Option('--health-port <port>', 'also serve /healthz and /readyz (only) over plain HTTP on this port, '
      + 'for the kubelet\'s probes (default: none)'))
    .addOption(new Option('--config <file>', 'promux configuration (YAML), as for promux inject --config'))
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
    .addOption(new Option('--shutdown-delay <duration>', 'after SIGTERM, keep answering reviews this long (with /readyz '
      + 'failing) while Kubernetes removes the pod from the Service, then stop').default('5s'))
    .addOption(new Option('--memory-limit <bytes>', 'memory the process may use, to size the caps below '
      + '(default: the cgroup\'s limit, else 256Mi)'))
    .addOption(new Option('--max-connections <n>', 'open connections at most (default: from the memory limit)'))
    .addOption(new Option('--max-reviews-in-flight <n>', 'reviews being read or waiting at most; more are '
      + 'answered at once without a patch (default: from the memory limit)'))
    .addOption(new Option('--max-request-bytes-in-flight <bytes>', 'request body bytes held at most; more are '
      + 'answered at once without a patch (default: from the memory limit)'))
    .addOption(new Option('--headers-timeout <duration>', 'a connection\'s TLS handshake and a request\'s headers '
      + 'must arrive within this').default(`${DEFAULT_TIMEOUTS.headersTimeoutMs / 1000}s`))
    .addOption(new Option('--request-timeout <duration>', 'a whole request must arrive within this')
      .default(`${DEFAULT_TIMEOUTS.requestTimeoutMs / 1000}s`))
    .addOption(new Option('--keep-alive-timeout <duration>', 'an idle connection is closed after this')
      .default(`${DEFAULT_TIMEOUTS.keepAliveTimeoutMs / 1000}s`))
    .addOption(new Option('--tls-cert-file <file>', 'serving certificate (PEM); reloaded when it changes'))
    .addOption(new Option('--tls-private-key-file <file>', 'its private key (PEM)'))
    .addOption(new Option('--self-managed-tls', 'generate a CA and serving certificate, kept in a Secret'))
    .addOption(new Option('--tls-secret-name <name>', 'self-managed: the Secret holding the CA and certificate'))
    .addOption(new Option('--webhook-config-name <name>', 'self-managed: MutatingWebhookConfiguration to patch caBundle in'))
    .addOption(new Option('--service-name <name>', "self-managed: the webhook's Service (certificate names)"))
    .addOption(new Option('--namespace <ns>', 'self-managed: namespace of the Secret and Service '
      + '(default: $POD_NAMESPACE, else the service account namespace)'))
    .helpOption('-h, --help', 'show this help')
    .exitOverride()
    .configureOutput({ writeOut: () => {}, writeErr: () => {} });
}

function boolFromEnv(name: string, value: string): boolean {
  if (/^(true|1|yes)$/i.test(value)) return true;
  if (/^(false|0|no|)$/i.test(value)) return false;
  throw new UsageError(`${name}=${JSON.stringify(value)}: expected true or false`);
}

/**
 * Options from argv and env. `readNamespaceFile` reads the service account's namespace (injected so
 * parsing stays pure); it returns undefined when the file is absent.
 */
export function parseWebhookArgs(
  argv: string[],
  env: Record<string, string | undefined>,
  readNamespaceFile: () => string | undefined = () => undefined,
): ParsedArgs {
  const cmd = command();
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError && err.code === 'commander.helpDisplayed') return { help: cmd.helpInformation() };
    if (err instanceof CommanderError) throw new UsageError(err.message.replace(/^error: /, ''));
    throw err;
  }
  const opts = cmd.opts<Record<string, string | boolean | undefined>>();
  const fromEnv = new Set<string>();
  for (const option of cmd.options) {
    const key = option.attributeName();
    const value = env[envName(key)];
    if (cmd.getOptionValueSource(key) === 'cli' || value === undefined || key === 'help') continue;
    fromEnv.add(key);
    if (option.isBoolean()) opts[key] = boolFromEnv(envName(key), value);
    else if (option.argChoices !== undefined && !option.argChoices.includes(value)) {
      throw new UsageError(`${envName(key)}=${JSON.stringify(value)}: expected one of ${option.argChoices.join(', ')}`);
    } else opts[key] = value;
  }
  const str = (key: string): string | undefined => (typeof opts[key] === 'string' && opts[key] !== '' ? opts[key] : undefined);

  const portText = str('port') ?? '';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) throw new UsageError(`--port ${JSON.stringify(portText)}: expected a port number (0-65535)`);

  /** How the user gave an option: `--flag "value"` or `PROMUX_FLAG="value"`, for error messages. */
  const given = (key: string): string => {
    const value = JSON.stringify(str(key) ?? '');
    if (fromEnv.has(key)) return `${envName(key)}=${value}`;
    return `--${kebab(key)} ${value}${cmd.getOptionValueSource(key) === 'cli' ? '' : ' (the default)'}`;
  };
  const duration = (key: string): number => {
    const ms = parseDurationMs(str(key) ?? '');
    if (ms === undefined) throw new UsageError(`${given(key)}: expected a duration such as "5s", "500ms" or 0`);
    return ms;
  };
  const positive = (key: string, parse: (text: string) => number | undefined, expected: string): number | undefined => {
    if (str(key) === undefined) return undefined;
    const n = parse(str(key)!);
    if (n === undefined || !Number.isSafeInteger(n) || n < 1) throw new UsageError(`${given(key)}: expected ${expected}`);
    return n;
  };
  const count = (text: string): number | undefined => (/^\d+$/.test(text) ? Number(text) : undefined);

  const healthPortText = str('healthPort');
  if (healthPortText !== undefined && (!/^\d+$/.test(healthPortText) || Number(healthPortText) > 65535)) {
    throw new UsageError(`${given('healthPort')}: expected a port number (0-65535)`);
  }
  const shutdownDelayMs = duration('shutdownDelay');
  const limits: ServingLimits = {
    headersTimeoutMs: duration('headersTimeout'),
    requestTimeoutMs: duration('requestTimeout'),
    keepAliveTimeoutMs: duration('keepAliveTimeout'),
  };
  for (const key of ['headersTimeout', 'requestTimeout', 'keepAliveTimeout'] as const) {
    if (limits[`${key}Ms`] === 0) throw new UsageError(`${given(key)}: must be more than 0`);
  }
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new UsageError(`${given('headersTimeout')} is longer than ${given('requestTimeout')}: headers are part of the request`);
  }
  const caps = {
    memoryLimitBytes: positive('memoryLimit', parseBytes, 'a size such as "256Mi"'),
    maxConnections: positive('maxConnections', count, 'a whole number above 0'),
    maxReviewsInFlight: positive('maxReviewsInFlight', count, 'a whole number above 0'),
    maxRequestBytesInFlight: positive('maxRequestBytesInFlight', parseBytes, 'a size such as "32Mi"'),
  };
  for (const [key, value] of Object.entries(caps)) if (value !== undefined) Object.assign(limits, { [key]: value });

  const certFile = str('tlsCertFile');
  const keyFile = str('tlsPrivateKeyFile');
  const selfManaged = opts.selfManagedTls === true;
  let tls: TlsMode;
  if (selfManaged && (certFile !== undefined || keyFile !== undefined)) {
    throw new UsageError('choose one TLS source: --tls-cert-file/--tls-private-key-file or --self-managed-tls, not both');
  } else if (selfManaged) {
    const namespace = str('namespace') ?? (env.POD_NAMESPACE || undefined) ?? readNamespaceFile()?.trim();
    const missing = SELF_MANAGED_FLAGS.filter((k) => (k === 'namespace' ? namespace : str(k)) === undefined)
      .map((k) => `--${kebab(k)}`);
    if (missing.length > 0) throw new UsageError(`--self-managed-tls needs ${missing.join(', ')}`);
    tls = {
      mode: 'self-managed',
      secretName: str('tlsSecretName')!,
      webhookConfigName: str('webhookConfigName')!,
      serviceName: str('serviceName')!,
      namespace: namespace!,
    };
  } else if (certFile !== undefined && keyFile !== undefined) {
    tls = { mode: 'files', certFile, keyFile };
  } else if (certFile !== undefined || keyFile !== undefined) {
    throw new UsageError(certFile === undefined ? '--tls-private-key-file needs --tls-cert-file' : '--tls-cert-file needs --tls-private-key-file');
  } else {
    throw new UsageError('no TLS source: give --tls-cert-file and --tls-private-key-file, or --self-managed-tls');
  }
  // Only on the command line: an environment may set PROMUX_NAMESPACE for every mode.
  const stray = selfManaged ? [] : SELF_MANAGED_FLAGS.filter((k) => cmd.getOptionValueSource(k) === 'cli');
  if (stray.length > 0) {
    throw new UsageError(`--${kebab(stray[0]!)} only applies with --self-managed-tls`);
  }
  return {
    options: {
      port,
      listenAddress: str('listenAddress') ?? '',
      ...(str('config') === undefined ? {} : { configFile: str('config') }),
      ...(healthPortText === undefined ? {} : { healthPort: Number(healthPortText) }),
      logLevel: str('logLevel') ?? 'info',
      shutdownDelayMs,
      limits,
      tls,
    },
  };
}
