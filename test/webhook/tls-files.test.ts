// Certificates rotated on disk reach the next connection without a restart.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { defaultConfig } from '../../src/config/defaults.ts';
import { injectPod } from '../../src/inject/index.ts';
import { startWebhook } from '../../src/webhook/server.ts';
import type { RunningWebhook } from '../../src/webhook/server.ts';
import { generateServing, serviceDnsNames } from '../../src/webhook/tls/certs.ts';
import type { KeyPairPem } from '../../src/webhook/tls/certs.ts';
import { NAMESPACE, SERVICE, httpsRequest, memoryLogger, tempDir, testBundle, waitFor, writeKeyPair } from './helpers.ts';

const bundle = testBundle();
const CA = bundle.ca.cert;
const nextServing = (): KeyPairPem => generateServing(bundle.ca, serviceDnsNames(SERVICE, NAMESPACE), new Date());
const fingerprintOf = (material: KeyPairPem): string => new X509Certificate(material.cert).fingerprint256;

async function start(t: TestContext, certFile: string, keyFile: string): Promise<RunningWebhook & { lines: Record<string, unknown>[] }> {
  const { log, lines } = memoryLogger();
  const running = await startWebhook(
    { port: 0, listenAddress: '127.0.0.1', logLevel: 'debug', tls: { mode: 'files', certFile, keyFile } },
    { config: defaultConfig(), inject: injectPod, log },
  );
  t.after(() => running.close(1000));
  return Object.assign(running, { lines });
}

/** The fingerprint a new connection is served. */
async function served(port: number): Promise<string> {
  return (await httpsRequest(port, CA, { path: '/healthz' })).fingerprint256;
}

test('a Secret volume update (the ..data symlink swap) is served to the next connection', async (t) => {
  const dir = tempDir(t);
  const first = bundle.serving;
  const second = nextServing();
  // The layout the kubelet writes: timestamped directories, ..data pointing at the current one.
  mkdirSync(join(dir, '..2026_01_01_00_00_00.000000001'));
  writeKeyPair(join(dir, '..2026_01_01_00_00_00.000000001'), first);
  symlinkSync('..2026_01_01_00_00_00.000000001', join(dir, '..data'));
  symlinkSync('..data/tls.crt', join(dir, 'tls.crt'));
  symlinkSync('..data/tls.key', join(dir, 'tls.key'));
  const server = await start(t, join(dir, 'tls.crt'), join(dir, 'tls.key'));
  assert.equal(await served(server.port), fingerprintOf(first));

  mkdirSync(join(dir, '..2026_02_01_00_00_00.000000002'));
  writeKeyPair(join(dir, '..2026_02_01_00_00_00.000000002'), second);
  symlinkSync('..2026_02_01_00_00_00.000000002', join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));

  await waitFor('the new certificate', async () => ((await served(server.port)) === fingerprintOf(second) ? true : undefined));
  const metrics = await httpsRequest(server.port, CA, { path: '/metrics' });
  assert.match(metrics.body, /^promux_webhook_tls_reloads_total\{outcome="success"\} 1$/m);
  assert.ok(server.lines.some((l) => l.msg === 'serving a new certificate from the TLS files' && l.fingerprint256 === fingerprintOf(second)));
});

test('files rewritten in place: a half-written pair is refused and the old certificate kept until the key arrives', async (t) => {
  const dir = tempDir(t);
  const { certFile, keyFile } = writeKeyPair(dir, bundle.serving);
  const server = await start(t, certFile, keyFile);
  const before = await served(server.port);
  assert.equal(before, fingerprintOf(bundle.serving));

  const next = nextServing();
  writeFileSync(certFile, next.cert);
  await waitFor('the refusal in the log', () => server.lines.find((l) => /do not make a usable pair/.test(String(l.msg))));
  assert.equal(await served(server.port), before, 'still the old certificate');
  writeFileSync(keyFile, 'not a key');
  writeFileSync(keyFile, next.key);
  await waitFor('the new certificate', async () => ((await served(server.port)) === fingerprintOf(next) ? true : undefined));

  const metrics = await httpsRequest(server.port, CA, { path: '/metrics' });
  assert.match(metrics.body, /^promux_webhook_tls_reloads_total\{outcome="failure"\} [1-9]/m);
  assert.match(metrics.body, /^promux_webhook_tls_reloads_total\{outcome="success"\} 1$/m);
});

test('unreadable or mismatched TLS files at start are an error naming the files', async (t) => {
  const dir = tempDir(t);
  const { certFile, keyFile } = writeKeyPair(dir, { cert: bundle.serving.cert, key: bundle.ca.key });
  const { log } = memoryLogger();
  const options = { port: 0, listenAddress: '127.0.0.1', logLevel: 'info' };
  const deps = { config: defaultConfig(), inject: injectPod, log };
  await assert.rejects(startWebhook({ ...options, tls: { mode: 'files', certFile, keyFile } }, deps),
    new RegExp(`${certFile} and ${keyFile} are not a usable certificate and key`));
  await assert.rejects(startWebhook({ ...options, tls: { mode: 'files', certFile: join(dir, 'absent.crt'), keyFile } }, deps),
    /cannot read the TLS files: .*absent\.crt/);
});
