// What the Dockerfile packages: dist/ from `npm run build`, run from a folder with no node_modules.
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { generateBundle } from '../../src/webhook/tls/certs.ts';
import { REPO_ROOT } from '../helpers/tools.ts';
import { buildBundle, outputFor, runBundle, startBundle, staticClosure, type Bundle } from './bundle.ts';

let bundle: Bundle;
before(() => {
  bundle = buildBundle();
});
after(() => bundle?.remove());

const MODES = ['webhook', 'sidecar', 'proxy', 'inject', 'uninject', 'demo'];

test('the bundle runs each mode from a folder with no node_modules: --help', () => {
  const top = runBundle(bundle, ['--help']);
  assert.equal(top.status, 0, top.stderr);
  for (const mode of MODES) assert.match(top.stdout, new RegExp(`^  ${mode} `, 'm'));
  for (const mode of MODES) {
    const result = runBundle(bundle, [mode, '--help']);
    assert.equal(result.status, 0, `${mode} --help: ${result.stderr}`);
    assert.match(result.stdout, new RegExp(`^Usage: promux ${mode}`, 'm'), mode);
  }
  const version = runBundle(bundle, ['--version']);
  assert.match(version.stdout, /^promux \d+\.\d+\.\d+/);
});

test('inject -f on the example pod, from the bundle', () => {
  copyFileSync(join(REPO_ROOT, 'examples', 'two-container-pod.yaml'), join(bundle.root, 'pod.yaml'));
  const result = runBundle(bundle, ['inject', '-f', 'pod.yaml', '-o', 'json']);
  assert.equal(result.status, 0, result.stderr);
  const pod = JSON.parse(result.stdout) as { metadata: { annotations: Record<string, string> }; spec: { containers: { name: string; args?: string[] }[] } };
  assert.deepEqual(pod.spec.containers.map((c) => c.name), ['app', 'worker', 'promux']);
  assert.ok(pod.metadata.annotations['promux.io/status'] !== undefined);
});

test('the sidecar from the bundle serves a merged scrape of a local target', async (t) => {
  const target: Server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    res.end('# HELP shop_orders_total Orders taken.\n# TYPE shop_orders_total counter\nshop_orders_total 42\n');
  });
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  t.after(() => target.close());
  const port = (target.address() as AddressInfo).port;
  const sidecar = startBundle(bundle, ['sidecar', '-m', `app:${port}`, '-e', '0', '--listen_address', '127.0.0.1']);
  t.after(() => sidecar.stop());
  const address = await sidecar.waitFor((line) => (line.msg === 'listening' ? String(line.address) : undefined));
  const response = await fetch(`http://${address}/metrics`);
  assert.equal(response.status, 200);
  const body = await response.text();
  assert.match(body, /^shop_orders_total\{container="app"\} 42$/m);
  assert.match(body, /^promux_target_up\{container="app",endpoint="\d+"\} 1$/m);
  assert.equal(await sidecar.stop(), 0);
});

function httpsGet(url: string, ca: string, servername: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, servername, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: timed out`))).on('error', reject).end();
  });
}

test('the webhook from the bundle starts on a TLS file pair and answers /healthz', async (t) => {
  const certs = generateBundle(['localhost'], new Date());
  writeFileSync(join(bundle.root, 'tls.crt'), certs.serving.cert);
  writeFileSync(join(bundle.root, 'tls.key'), certs.serving.key, { mode: 0o600 });
  const webhook = startBundle(bundle, [
    'webhook', '--port', '0', '--listen-address', '127.0.0.1', '--tls-cert-file', 'tls.crt', '--tls-private-key-file', 'tls.key',
  ]);
  t.after(() => webhook.stop());
  const port = await webhook.waitFor((line) => (line.msg === 'promux webhook listening' ? Number(line.port) : undefined));
  const health = await httpsGet(`https://127.0.0.1:${port}/healthz`, certs.ca.cert, 'localhost');
  assert.equal(health.status, 200, health.body);
  assert.equal(await webhook.stop(), 0, webhook.output());
});

test('the demo from the bundle finds its example pod, gets ready and stops on SIGINT', async (t) => {
  const demo = spawn(process.execPath, [bundle.entry, 'demo'], { cwd: bundle.root, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => demo.once('exit', (code) => resolve(code)));
  t.after(() => {
    if (demo.exitCode === null) demo.kill('SIGKILL');
  });
  const lines: string[] = [];
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: demo.stdout }).on('line', (line) => {
      lines.push(line);
      if (line === 'Press Ctrl-C to stop.') resolve();
    });
    void exited.then((code) => reject(new Error(`demo exited (${code}) before it was ready:\n${lines.join('\n')}`)));
  });
  assert.ok(lines.some((l) => l.includes(join(bundle.root, 'dist', 'examples', 'two-container-pod.yaml'))), lines.join('\n'));
  assert.ok(lines.some((l) => /^ {5}http_requests_total\{container="worker",code="200"\} \d+$/.test(l)), lines.join('\n'));
  demo.kill('SIGINT');
  assert.equal(await exited, 0);
});

test('mode isolation: the sidecar loads no express, node-forge, yaml or @kubernetes/client-node code; the proxy only the latter', () => {
  const heavy = /node_modules\/(express|node-forge|yaml|@kubernetes\/client-node)\//;
  const inputsOf = (outputs: string[]): string[] => outputs.flatMap((o) => Object.keys(bundle.metafile.outputs[o]!.inputs));
  const entry = Object.keys(bundle.metafile.outputs).find((o) => o.endsWith('/promux.mjs'))!;
  const sidecar = staticClosure(bundle.metafile, outputFor(bundle.metafile, 'src/sidecar/main.ts'));
  const sidecarInputs = inputsOf([...staticClosure(bundle.metafile, entry), ...sidecar]);
  assert.ok(sidecarInputs.some((i) => i.startsWith('src/sidecar/')), 'the sidecar chunk holds the sidecar code');
  assert.deepEqual(sidecarInputs.filter((i) => heavy.test(i)), []);
  // The check sees dependencies where they are: the webhook's chunks do hold them.
  const webhookInputs = inputsOf(staticClosure(bundle.metafile, outputFor(bundle.metafile, 'src/webhook/main.ts')));
  for (const pkg of ['express', 'yaml']) {
    assert.ok(webhookInputs.some((i) => i.includes(`node_modules/${pkg}/`)), `webhook chunks hold ${pkg}`);
  }
  // The proxy needs the Kubernetes client, and nothing else heavy.
  const proxyInputs = inputsOf(staticClosure(bundle.metafile, outputFor(bundle.metafile, 'src/proxy/main.ts')));
  assert.ok(proxyInputs.some((i) => i.includes('node_modules/@kubernetes/client-node/')), 'proxy chunks hold the Kubernetes client');
  assert.deepEqual(proxyInputs.filter((i) => /node_modules\/(express|node-forge|yaml|pino)\//.test(i)), []);
});
