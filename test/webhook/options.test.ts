import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError, parseWebhookArgs } from '../../src/webhook/options.ts';
import type { WebhookOptions } from '../../src/webhook/options.ts';

const FILES = ['--tls-cert-file', '/tls/tls.crt', '--tls-private-key-file', '/tls/tls.key'];
const SELF = ['--self-managed-tls', '--tls-secret-name', 's', '--webhook-config-name', 'w', '--service-name', 'svc'];

function options(argv: string[], env: Record<string, string> = {}, nsFile?: string): WebhookOptions {
  const parsed = parseWebhookArgs(argv, env, () => nsFile);
  assert.ok('options' in parsed);
  return parsed.options;
}

function usageError(argv: string[], env: Record<string, string> = {}): string {
  try {
    parseWebhookArgs(argv, env);
  } catch (err) {
    assert.ok(err instanceof UsageError, String(err));
    return err.message;
  }
  assert.fail('expected a usage error');
}

test('files mode with the defaults', () => {
  assert.deepEqual(options(FILES), {
    port: 8443, listenAddress: '', logLevel: 'info', shutdownDelayMs: 5000,
    limits: { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 120_000 },
    tls: { mode: 'files', certFile: '/tls/tls.crt', keyFile: '/tls/tls.key' },
  });
});

test('every flag is also a PROMUX_ variable, and the command line wins', () => {
  const env = {
    PROMUX_PORT: '9443', PROMUX_CONFIG: '/etc/promux/config.yaml', PROMUX_LOG_LEVEL: 'debug',
    PROMUX_TLS_CERT_FILE: '/a.crt', PROMUX_TLS_PRIVATE_KEY_FILE: '/a.key', PROMUX_LISTEN_ADDRESS: '127.0.0.1',
    PROMUX_SHUTDOWN_DELAY: '1m30s', PROMUX_HEALTH_PORT: '8081', PROMUX_MEMORY_LIMIT: '512Mi', PROMUX_MAX_CONNECTIONS: '100',
    PROMUX_MAX_REVIEWS_IN_FLIGHT: '50', PROMUX_MAX_REQUEST_BYTES_IN_FLIGHT: '16MiB', PROMUX_HEADERS_TIMEOUT: '2s',
    PROMUX_REQUEST_TIMEOUT: '15s', PROMUX_KEEP_ALIVE_TIMEOUT: '1m',
  };
  assert.deepEqual(options([], env), {
    port: 9443, listenAddress: '127.0.0.1', healthPort: 8081, configFile: '/etc/promux/config.yaml', logLevel: 'debug',
    shutdownDelayMs: 90_000,
    limits: {
      headersTimeoutMs: 2000, requestTimeoutMs: 15_000, keepAliveTimeoutMs: 60_000, memoryLimitBytes: 512 * 1024 * 1024,
      maxConnections: 100, maxReviewsInFlight: 50, maxRequestBytesInFlight: 16 * 1024 * 1024,
    },
    tls: { mode: 'files', certFile: '/a.crt', keyFile: '/a.key' },
  });
  assert.equal(options(['--port', '10443'], env).port, 10443);
  assert.equal(options(['--shutdown-delay', '0'], env).shutdownDelayMs, 0);
  const self = options([], {
    PROMUX_SELF_MANAGED_TLS: 'true', PROMUX_TLS_SECRET_NAME: 's', PROMUX_WEBHOOK_CONFIG_NAME: 'w',
    PROMUX_SERVICE_NAME: 'svc', PROMUX_NAMESPACE: 'ns',
  });
  assert.deepEqual(self.tls, { mode: 'self-managed', secretName: 's', webhookConfigName: 'w', serviceName: 'svc', namespace: 'ns' });
});

test('self-managed namespace: the flag, else POD_NAMESPACE, else the service account file', () => {
  const ns = (o: WebhookOptions): string => (o.tls.mode === 'self-managed' ? o.tls.namespace : '');
  assert.equal(ns(options([...SELF, '--namespace', 'flag'], { POD_NAMESPACE: 'env' }, 'file')), 'flag');
  assert.equal(ns(options(SELF, { POD_NAMESPACE: 'env' }, 'file')), 'env');
  assert.equal(ns(options(SELF, {}, 'file\n')), 'file');
  assert.match(usageError(SELF), /--self-managed-tls needs --namespace/);
});

test('exactly one TLS source, with a clear error otherwise', () => {
  assert.match(usageError([]), /no TLS source: give --tls-cert-file and --tls-private-key-file, or --self-managed-tls/);
  assert.match(usageError(['--tls-cert-file', '/a']), /--tls-cert-file needs --tls-private-key-file/);
  assert.match(usageError(['--tls-private-key-file', '/a']), /--tls-private-key-file needs --tls-cert-file/);
  assert.match(usageError([...FILES, '--self-managed-tls']), /choose one TLS source/);
  assert.match(usageError(['--self-managed-tls', '--namespace', 'ns']), /needs --tls-secret-name, --webhook-config-name, --service-name/);
  assert.match(usageError([...FILES, '--tls-secret-name', 's']), /--tls-secret-name only applies with --self-managed-tls/);
  // A blanket environment may set self-managed variables in files mode.
  assert.equal(options(FILES, { PROMUX_NAMESPACE: 'ns' }).tls.mode, 'files');
});

test('bad values are usage errors that name the flag or variable', () => {
  assert.match(usageError([...FILES, '--port', 'https']), /--port "https": expected a port number/);
  assert.match(usageError([...FILES, '--port', '70000']), /--port "70000"/);
  assert.match(usageError([...FILES, '--log-level', 'loud']), /loud/);
  assert.match(usageError(FILES, { PROMUX_LOG_LEVEL: 'loud' }), /PROMUX_LOG_LEVEL="loud": expected one of/);
  assert.match(usageError(FILES, { PROMUX_SELF_MANAGED_TLS: 'maybe' }), /PROMUX_SELF_MANAGED_TLS="maybe": expected true or false/);
  assert.equal(options(FILES, { PROMUX_SELF_MANAGED_TLS: 'false' }).tls.mode, 'files');
  assert.match(usageError([...FILES, '--tls-cert']), /unknown option '--tls-cert'/);
  assert.match(usageError([...FILES, '--shutdown-delay', 'soon']), /--shutdown-delay "soon": expected a duration such as "5s"/);
  assert.match(usageError(FILES, { PROMUX_SHUTDOWN_DELAY: '-1s' }), /PROMUX_SHUTDOWN_DELAY="-1s": expected a duration/);
  assert.equal(options([...FILES, '--shutdown-delay', '500ms']).shutdownDelayMs, 500);
  assert.match(usageError([...FILES, '--health-port', 'x']), /--health-port "x": expected a port number/);
  assert.match(usageError([...FILES, '--max-connections', '0']), /--max-connections "0": expected a whole number above 0/);
  assert.match(usageError(FILES, { PROMUX_MAX_REVIEWS_IN_FLIGHT: '1.5' }), /PROMUX_MAX_REVIEWS_IN_FLIGHT="1.5": expected a whole number/);
  assert.match(usageError([...FILES, '--memory-limit', 'lots']), /--memory-limit "lots": expected a size such as "256Mi"/);
  assert.match(usageError([...FILES, '--max-request-bytes-in-flight', '0']), /expected a size such as "32Mi"/);
  assert.match(usageError([...FILES, '--keep-alive-timeout', '0']), /--keep-alive-timeout "0": must be more than 0/);
  assert.match(usageError([...FILES, '--headers-timeout', '1m']), /--headers-timeout "1m" is longer than --request-timeout "30s" \(the default\)/);
});

test('--help returns the usage text with every flag', () => {
  const parsed = parseWebhookArgs(['--help'], {});
  assert.ok('help' in parsed);
  for (const flag of ['--port', '--health-port', '--config', '--log-level', '--shutdown-delay', '--memory-limit', '--max-connections',
    '--max-reviews-in-flight', '--max-request-bytes-in-flight', '--headers-timeout', '--request-timeout', '--keep-alive-timeout',
    '--tls-cert-file', '--tls-private-key-file', '--self-managed-tls',
    '--tls-secret-name', '--webhook-config-name', '--service-name', '--namespace']) {
    assert.ok(parsed.help.includes(flag), flag);
  }
});
