// The real `promux webhook` as a child process: flags, environment, TLS files, SIGTERM.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers/tools.ts';
import { createReview, fixturePods, httpsRequest, postReview, tempDir, testBundle, writeKeyPair } from './helpers.ts';

const BIN = join(REPO_ROOT, 'bin', 'promux.js');
const bundle = testBundle();

test('promux webhook serves reviews with TLS files and config from flags and env, and exits 0 on SIGTERM', async (t) => {
  const dir = tempDir(t);
  const { certFile, keyFile } = writeKeyPair(dir, bundle.serving);
  const configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, 'sidecar:\n  port: 14000\n');
  const child = spawn(process.execPath, [BIN, 'webhook', '--port', '0', '--config', configFile, '--tls-cert-file', certFile], {
    env: { PATH: process.env.PATH ?? '', PROMUX_TLS_PRIVATE_KEY_FILE: keyFile, PROMUX_LISTEN_ADDRESS: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines: Record<string, unknown>[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      lines.push(entry);
      if (entry.msg === 'promux webhook listening') resolve(entry.port as number);
    });
    void exited.then((code) => reject(new Error(`exited ${code} before listening: ${stderr}`)));
  });

  const { pod } = fixturePods('shop')[0]!;
  const { json } = await postReview(port, bundle.ca.cert, createReview(pod));
  assert.equal(json.response.patchType, 'JSONPatch');
  const patch = JSON.parse(Buffer.from(json.response.patch!, 'base64').toString()) as { value?: unknown }[];
  assert.match(JSON.stringify(patch), /"containerPort":14000/, 'the config file was read');
  assert.equal((await httpsRequest(port, bundle.ca.cert, { path: '/readyz' })).status, 200);

  child.kill('SIGTERM');
  assert.equal(await exited, 0, stderr);
  assert.equal(stderr, '');
  const review = lines.find((l) => l.msg === 'review');
  assert.equal(review?.uid, json.response.uid);
  assert.equal(review?.name, 'promux-webhook');
  assert.deepEqual(lines.slice(-2).map((l) => l.msg), ['SIGTERM: shutting down', 'stopped']);
});

test('promux webhook: usage and config errors are one line on stderr, exit 2', (t) => {
  const dir = tempDir(t);
  const { certFile, keyFile } = writeKeyPair(dir, bundle.serving);
  const badConfig = join(dir, 'config.yaml');
  writeFileSync(badConfig, 'sidecar:\n  port: "eighty"\n  imagePullPolicy: Sometimes\n');
  const run = (...args: string[]): { status: number | null; stderr: string; stdout: string } =>
    spawnSync(process.execPath, [BIN, 'webhook', ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });

  const none = run();
  assert.equal(none.status, 2);
  assert.equal(none.stderr, 'promux webhook: no TLS source: give --tls-cert-file and --tls-private-key-file, or --self-managed-tls\n');

  const config = run('--tls-cert-file', certFile, '--tls-private-key-file', keyFile, '--config', badConfig);
  assert.equal(config.status, 2);
  assert.equal(config.stderr.split('\n').length, 2, 'one line');
  assert.match(config.stderr, new RegExp(`^promux webhook: ${badConfig}: invalid configuration: sidecar.port: expected an integer`));
  assert.match(config.stderr, /sidecar.imagePullPolicy/);
  assert.doesNotMatch(config.stderr, /\bat \S+:\d+:\d+/, 'no stack trace');

  const missing = run('--tls-cert-file', join(dir, 'nope.crt'), '--tls-private-key-file', keyFile, '--port', '0');
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /^promux webhook: cannot read the TLS files: .*nope\.crt/);
  assert.equal(missing.stderr.split('\n').length, 2);

  const help = run('--help');
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--self-managed-tls/);
});
