// Flags of `promux webhook`. Every flag can also be given as PROMUX_<UPPER_SNAKE> (--tls-cert-file is
// PROMUX_TLS_CERT_FILE); a flag on the command line wins. Pure: argv and the environment in, options out.
import { Command, CommanderError, Option } from 'commander';
import { parseDurationMs } from '../config/duration.ts';

export type TlsMode =
  | { mode: 'files'; certFile: string; keyFile: string }
  | { mode: 'self-managed'; secretName: string; webhookConfigName: string; serviceName: string; namespace: string };

export interface WebhookOptions {
  port: number;
  listenAddress: string;
  configFile?: string;
  logLevel: string;
  /** After SIGTERM: how long /readyz fails while reviews are still served, before the listener closes. */
  shutdownDelayMs: number;
  tls: TlsMode;
}

export type ParsedArgs = { help: string } | { options: WebhookOptions };

export class UsageError extends Error {
  override name = 'UsageError';
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
export const SERVICE_ACCOUNT_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

const SELF_MANAGED_FLAGS = ['tlsSecretName', 'webhookConfigName', 'serviceName', 'namespace'] as const;

function envName(attribute: string): string {
  return `PROMUX_${attribute.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

function command(): Command {
  return new Command('promux webhook')
    .description('HTTPS admission webhook: injects the promux sidecar into opted-in pods.\n'
      + 'Every flag can also be set as PROMUX_<FLAG> (e.g. PROMUX_TLS_CERT_FILE).')
    .addOption(new Option('--port <port>', 'HTTPS port').default('8443'))
    .addOption(new Option('--listen-address <address>', 'address to listen on (default: all interfaces)'))
    .addOption(new Option('--config <file>', 'promux configuration (YAML), as for promux inject --config'))
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
    .addOption(new Option('--shutdown-delay <duration>', 'after SIGTERM, keep answering reviews this long (with /readyz '
      + 'failing) while Kubernetes removes the pod from the Service, then stop').default('5s'))
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
  for (const option of cmd.options) {
    const key = option.attributeName();
    const fromEnv = env[envName(key)];
    if (cmd.getOptionValueSource(key) === 'cli' || fromEnv === undefined || key === 'help') continue;
    if (option.isBoolean()) opts[key] = boolFromEnv(envName(key), fromEnv);
    else if (option.argChoices !== undefined && !option.argChoices.includes(fromEnv)) {
      throw new UsageError(`${envName(key)}=${JSON.stringify(fromEnv)}: expected one of ${option.argChoices.join(', ')}`);
    } else opts[key] = fromEnv;
  }
  const str = (key: string): string | undefined => (typeof opts[key] === 'string' && opts[key] !== '' ? opts[key] : undefined);

  const portText = str('port') ?? '';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) throw new UsageError(`--port ${JSON.stringify(portText)}: expected a port number (0-65535)`);

  const delayText = str('shutdownDelay') ?? '';
  const shutdownDelayMs = parseDurationMs(delayText);
  if (shutdownDelayMs === undefined) {
    const given = cmd.getOptionValueSource('shutdownDelay') === 'cli'
      ? `--shutdown-delay ${JSON.stringify(delayText)}`
      : `${envName('shutdownDelay')}=${JSON.stringify(delayText)}`;
    throw new UsageError(`${given}: expected a duration such as "5s", "500ms" or 0`);
  }

  const certFile = str('tlsCertFile');
  const keyFile = str('tlsPrivateKeyFile');
  const selfManaged = opts.selfManagedTls === true;
  let tls: TlsMode;
  if (selfManaged && (certFile !== undefined || keyFile !== undefined)) {
    throw new UsageError('choose one TLS source: --tls-cert-file/--tls-private-key-file or --self-managed-tls, not both');
  } else if (selfManaged) {
    const namespace = str('namespace') ?? (env.POD_NAMESPACE || undefined) ?? readNamespaceFile()?.trim();
    const missing = SELF_MANAGED_FLAGS.filter((k) => (k === 'namespace' ? namespace : str(k)) === undefined)
      .map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
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
    throw new UsageError(`--${stray[0]!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} only applies with --self-managed-tls`);
  }
  return {
    options: {
      port,
      listenAddress: str('listenAddress') ?? '',
      ...(str('config') === undefined ? {} : { configFile: str('config') }),
      logLevel: str('logLevel') ?? 'info',
      shutdownDelayMs,
      tls,
    },
  };
}
