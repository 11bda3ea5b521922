// The cipher suites the webhook accepts, asked by OpenSSL's own client: on TLS 1.2 only ECDHE key
// exchange with AEAD ciphers (no static RSA, no CBC), TLS 1.3 as it comes; with the RSA certificate
// of self-managed mode and the ECDSA one cert-manager issues in the chart's certManager mode.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { defaultConfig } from '../../src/config/defaults.ts';
import { injectPod } from '../../src/inject/index.ts';
import { startWebhook } from '../../src/webhook/server.ts';
import { requireTool } from '../helpers/tools.ts';
import { SERVER_NAME, memoryLogger, tempDir, testBundle, writeKeyPair } from './helpers.ts';

interface Handshake {
  ok: boolean;
  protocol: string;
  cipher: string;
}

/** One handshake by `openssl s_client` with the given version and suites. */
function sClient(openssl: string, port: number, args: string[]): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    // @SECLEVEL=0 so that a refusal is the server's, not the client's own policy.
    const child = spawn(openssl, ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', SERVER_NAME, '-brief', ...args],
      { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const protocol = /Protocol version: (\S+)/.exec(out)?.[1] ?? '';
      const cipher = /Ciphersuite: (\S+)/.exec(out)?.[1] ?? '';
      resolve({ ok: code === 0 && cipher !== '', protocol, cipher });
    });
  });
}

async function server(t: TestContext, material: { cert: string; key: string }): Promise<number> {
  const files = writeKeyPair(tempDir(t), material);
  const running = await startWebhook(
    { port: 0, listenAddress: '127.0.0.1', logLevel: 'info', tls: { mode: 'files', ...files } },
    { config: defaultConfig(), inject: injectPod, log: memoryLogger().log },
  );
  t.after(() => running.close(500));
  return running.port;
}

const tls12 = (cipher: string): string[] => ['-tls1_2', '-cipher', `${cipher}:@SECLEVEL=0`];

test('openssl s_client, RSA certificate: ECDHE with GCM or ChaCha20 and TLS 1.3 accepted; static RSA and CBC refused', async (t) => {
  const openssl = requireTool(t, 'openssl');
  if (openssl === undefined) return;
  const port = await server(t, testBundle().serving);
  for (const cipher of ['ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-CHACHA20-POLY1305']) {
    assert.deepEqual(await sClient(openssl, port, tls12(cipher)), { ok: true, protocol: 'TLSv1.2', cipher }, cipher);
  }
  for (const suite of ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']) {
    assert.deepEqual(await sClient(openssl, port, ['-tls1_3', '-ciphersuites', suite]), { ok: true, protocol: 'TLSv1.3', cipher: suite }, suite);
  }
  const refused = [
    'AES128-GCM-SHA256', 'AES256-GCM-SHA384', // static RSA key exchange: no forward secrecy
    'AES128-SHA', 'AES256-SHA256', 'ECDHE-RSA-AES128-SHA', 'ECDHE-RSA-AES256-SHA384', // CBC (with SHA-1 or SHA-2)
    'DHE-RSA-AES128-GCM-SHA256', // finite-field DHE: not offered
  ];
  for (const cipher of refused) assert.equal((await sClient(openssl, port, tls12(cipher))).ok, false, cipher);
  assert.equal((await sClient(openssl, port, ['-tls1_1', '-cipher', 'ALL:@SECLEVEL=0'])).ok, false, 'TLS 1.1');
  // What a client offering everything gets: the server's choice, ECDHE and AEAD.
  const preferred = await sClient(openssl, port, tls12('ALL'));
  assert.match(preferred.cipher, /^ECDHE-RSA-AES128-GCM-SHA256$/);
});

test('openssl s_client, ECDSA P-256 certificate (as cert-manager issues it): ECDHE-ECDSA with AEAD only', async (t) => {
  const openssl = requireTool(t, 'openssl');
  if (openssl === undefined) return;
  const dir = tempDir(t);
  const made = spawnSync(openssl, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', `/CN=${SERVER_NAME}`, '-addext', `subjectAltName=DNS:${SERVER_NAME}`,
    '-keyout', join(dir, 'ec.key'), '-out', join(dir, 'ec.crt')], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  const port = await server(t, { cert: readFileSync(join(dir, 'ec.crt'), 'utf8'), key: readFileSync(join(dir, 'ec.key'), 'utf8') });
  for (const cipher of ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305']) {
    assert.deepEqual(await sClient(openssl, port, tls12(cipher)), { ok: true, protocol: 'TLSv1.2', cipher }, cipher);
  }
  for (const cipher of ['ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA384']) {
    assert.equal((await sClient(openssl, port, tls12(cipher))).ok, false, cipher);
  }
  assert.equal((await sClient(openssl, port, ['-tls1_3'])).ok, true);
});
