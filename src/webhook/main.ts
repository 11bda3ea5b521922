// `promux webhook`: flags and config in, the HTTPS webhook up until SIGTERM or SIGINT.
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { ConfigError, loadConfig } from '../config/load.ts';
import type { PromuxConfig } from '../config/types.ts';
import { injectPod } from '../inject/index.ts';
import { SERVICE_ACCOUNT_NAMESPACE_FILE, UsageError, parseWebhookArgs } from './options.ts';
import type { WebhookOptions } from './options.ts';
import { startWebhook } from './server.ts';

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

function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve(signal);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
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
    if (!(err instanceof UsageError || err instanceof ConfigError)) throw err;
    fail(err.message);
    return 2;
  }

  const log = pino({ name: 'promux-webhook', level: options.logLevel, timestamp: pino.stdTimeFunctions.isoTime });
  const signal = waitForSignal();
  let webhook;
  try {
    webhook = await startWebhook(options, { config, inject: injectPod, log });
  } catch (err) {
    fail((err as Error).message);
    return 1;
  }
  log.info(`${await signal}: shutting down`);
  await webhook.close();
  log.info('stopped');
  return 0;
}
