// The real `promux webhook` as a child process: flags, environment, TLS files, SIGTERM and the drain.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { REPO_ROOT } from '../helpers/tools.ts';
import { createReview, fixturePods, httpsRequest, postReview, tempDir, testBundle, writeKeyPair } from './helpers.ts';

const BIN = join(REPO_ROOT, 'bin', 'promux.js');
const bundle = testBundle();

interface RunningCli {
  port: number;
  /** The JSON log lines so far. */
  lines: Record<string, unknown>[];
  exited: Promise<number | null>;
  stderr: () => string;
  /** Resolves with the first log line (so far or later) whose msg matches. */
  logged: (msg: RegExp) => Promise<Record<string, unknown>>;
  kill: (signal: NodeJS.Signals) => void;
}

/** `promux webhook` as a child process, up once it logged that it listens. */
async function startCli(t: TestContext, args: string[], env: Record<string, string>): Promise<RunningCli> {
  const child = spawn(process.execPath, [BIN, 'webhook', '--port', '0', ...args], {
    env: { PATH: process.env.PATH ?? '', PROMUX_LISTEN_ADDRESS: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines: Record<string, unknown>[] = [];
  const waiting: { msg: RegExp; resolve: (line: Record<string, unknown>) => void }[] = [];
  createInterface({ input: child.stdout }).on('line', (text) => {
    const line = JSON.parse(text) as Record<string, unknown>;
    lines.push(line);
    for (const w of waiting.filter((x) => x.msg.test(String(line.msg)))) w.resolve(line);
  });
  const logged = (msg: RegExp): Promise<Record<string, unknown>> => {
    const seen = lines.find((l) => msg.test(String(l.msg)));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      waiting.push({ msg, resolve });
      void exited.then((code) => reject(new Error(`exited ${code} before logging ${msg}: ${stderr}`)));
    });
  };
  const listening = await logged(/^promux webhook listening$/);
  return { port: listening.port as number, lines, exited, stderr: () => stderr, logged, kill: (signal) => child.kill(signal) };
}

test('promux webhook serves reviews with TLS files and config from flags and env, and exits 0 on SIGTERM', async (t) => {
  const dir = tempDir(t);
  const { certFile, keyFile } = writeKeyPair(dir, bundle.serving);
  const configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, 'sidecar:\n  port: 14000\n');
  const cli = await startCli(t, ['--config', configFile, '--tls-cert-file', certFile],
    { PROMUX_TLS_PRIVATE_KEY_FILE: keyFile, PROMUX_SHUTDOWN_DELAY: '200ms' });

  const { pod } = fixturePods('shop')[0]!;
  const { json } = await postReview(cli.port, bundle.ca.cert, createReview(pod));
  assert.equal(json.response.patchType, 'JSONPatch');
  const patch = JSON.parse(Buffer.from(json.response.patch!, 'base64').toString()) as { value?: unknown }[];
  assert.match(JSON.stringify(patch), /"containerPort":14000/, 'the config file was read');
  assert.equal((await httpsRequest(cli.port, bundle.ca.cert, { path: '/readyz' })).status, 200);

  cli.kill('SIGTERM');
  assert.equal(await cli.exited, 0, cli.stderr());
  assert.equal(cli.stderr(), '');
  const review = cli.lines.find((l) => l.msg === 'review');
  assert.equal(review?.uid, json.response.uid);
  assert.equal(review?.name, 'promux-webhook');
  // One line per review with these fields (what dashboards and a person at 3 a.m. read), the time in ISO 8601.
  assert.deepEqual(Object.keys(review!), ['level', 'time', 'pid', 'hostname', 'name', 'uid', 'namespace', 'pod', 'operation',
    'dryRun', 'decision', 'reason', 'targets', 'durationMs', 'msg']);
  assert.match(String(review!.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(cli.lines.filter((l) => l.msg === 'review').length, 1);
  assert.deepEqual(cli.lines.slice(-3).map((l) => l.msg), [
    'SIGTERM: shutting down; /readyz fails, reviews are answered for 0.2s more',
    'closing the listener; finishing reviews in flight',
    'stopped',
  ]);
});

test('after SIGTERM, /readyz fails at once while reviews are still answered; a second signal ends the delay, exit 0', async (t) => {
  const { certFile, keyFile } = writeKeyPair(tempDir(t), bundle.serving);
  // Far longer than the test: only the second signal can end the drain.
  const cli = await startCli(t, ['--tls-cert-file', certFile, '--tls-private-key-file', keyFile, '--shutdown-delay', '10m'], {});
  assert.equal((await httpsRequest(cli.port, bundle.ca.cert, { path: '/readyz' })).status, 200);

  cli.kill('SIGTERM');
  const draining = await cli.logged(/^SIGTERM: shutting down/);
  assert.equal(draining.shutdownDelayMs, 600_000);
  const readyz = await httpsRequest(cli.port, bundle.ca.cert, { path: '/readyz' });
  assert.equal(readyz.status, 503);
  assert.equal(readyz.body, 'not ready\n');
  const { pod } = fixturePods('shop')[0]!;
  const { answer, json } = await postReview(cli.port, bundle.ca.cert, createReview(pod));
  assert.equal(answer.status, 200);
  assert.equal(json.response.patchType, 'JSONPatch', 'a review during the delay is still injected');
  assert.equal(answer.headers.connection, 'close', 'the client is asked to reconnect (through the Service, elsewhere)');
  assert.equal(cli.lines.some((l) => l.msg === 'stopped'), false, 'still running during the delay');

  cli.kill('SIGTERM');
  assert.equal(await cli.exited, 0, cli.stderr());
  assert.equal(cli.stderr(), '');
  assert.deepEqual(cli.lines.slice(-3).map((l) => l.msg), [
    'second signal: closing without waiting for the rest of the delay',
    'closing the listener; finishing reviews in flight',
    'stopped',
  ]);
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
  assert.equal(none.stderr, 'promux webhook: no TLS source: give --tls-cert-file and --tls-private-key-file, or --self-managed-tls (see \'promux webhook --help\')\n');

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
