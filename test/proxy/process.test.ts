// `promux proxy` as the image runs it (bin/promux.js, a process of its own): what it does with a
// kubeconfig it cannot use or a port it cannot have, and how it stops; and the scraper's timeout
// header bounding a scrape, as the sidecar's does.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { get } from '../sidecar/helpers.ts';
import { REPO_ROOT } from '../helpers/tools.ts';
import { podServer, scrapeOn, startHarness, until, upOf } from './helpers.ts';
import { PodsStandIn } from './stand-in.ts';

const BIN = join(REPO_ROOT, 'bin', 'promux.js');
/** The original proxy's variables out of the way: these tests give flags. */
const ENV = { PATH: process.env.PATH ?? '', HOME: '/nonexistent' };

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'promux-proxy-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The JSON lines a run wrote on stderr. */
function logLines(stderr: string): Array<Record<string, unknown>> {
  return stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('promux proxy with a kubeconfig it cannot use exits 1 at once, naming the file and what is wrong', (t) => {
  const dir = tempDir(t);
  const noCluster = join(dir, 'empty.yaml');
  writeFileSync(noCluster, 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n');
  const cases: Array<[string, RegExp]> = [
    [join(dir, 'missing.yaml'), /^cannot load the kubeconfig .*missing\.yaml: ENOENT/],
    [noCluster, /^the kubeconfig .*empty\.yaml names no cluster for its current context/],
  ];
  for (const [file, message] of cases) {
    // A process that kept running would be cut by the timeout: status null.
    const r = spawnSync(process.execPath, [BIN, 'proxy', '-l', 'app=web', '--port', '0', '--kubeconfig', file], { encoding: 'utf8', env: ENV, timeout: 15_000, killSignal: 'SIGKILL' });
    assert.equal(r.status, 1, `${file}: ${r.stderr}`);
    const errors = logLines(r.stderr).filter((l) => l.level === 'error');
    assert.equal(errors.length, 1, r.stderr);
    assert.match(String(errors[0]!.msg), message);
  }
});

test('stand-in API: promux proxy as a process: a port already taken exits 1 saying so; SIGTERM stops watching and exits 0', async (t) => {
  const dir = tempDir(t);
  const api = await new PodsStandIn().start();
  t.after(() => api.close());
  const kubeconfig = join(dir, 'kubeconfig');
  api.writeKubeConfig(kubeconfig, 'shop');
  const pod = await podServer(t, () => 'web_requests_total 1\n');
  api.put('shop', 'web-1', { ip: '127.0.0.1', labels: { app: 'web' }, annotations: scrapeOn(pod) });

  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => taken.close(() => resolve())));
  const port = (taken.address() as AddressInfo).port;
  const args = ['proxy', '-l', 'app=web', '--kubeconfig', kubeconfig, '--listen_address', '127.0.0.1', '--port'];
  const busy = spawnSync(process.execPath, [BIN, ...args, String(port)], { encoding: 'utf8', env: ENV, timeout: 15_000, killSignal: 'SIGKILL' });
  assert.equal(busy.status, 1, busy.stderr);
  assert.match(String(logLines(busy.stderr).find((l) => l.level === 'error')?.msg), /^cannot listen on 127\.0\.0\.1:\d+: listen EADDRINUSE/);

  await new Promise<void>((resolve) => taken.close(() => resolve()));
  const child = spawn(process.execPath, [BIN, ...args, String(port)], { stdio: ['ignore', 'ignore', 'pipe'], env: ENV });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => void (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(() => void (child.exitCode === null && child.kill('SIGKILL')));
  // The namespace watched is the kubeconfig context's: shop.
  await until('web-1 scraped', async () => {
    const r = await get(port, '/metrics').catch(() => undefined);
    return r?.status === 200 && upOf(r.body, 'web-1') === 1 ? true : undefined;
  }, 20_000);
  const watching = api.watchCount;
  assert.ok(watching > 0, 'a watch is open');
  child.kill('SIGTERM');
  assert.equal(await exited, 0, stderr);
  await until('the watch closed', () => (api.watchCount === 0 ? true : undefined));
  const messages = logLines(stderr).map((l) => l.msg);
  assert.deepEqual(messages.slice(-2), ['shutting down', 'stopped']);
  assert.deepEqual(logLines(stderr).find((l) => l.msg === 'listening')?.namespaces, ['shop']);
  assert.deepEqual(api.problems, []);
});

test('stand-in API: the scraper\'s X-Prometheus-Scrape-Timeout-Seconds bounds the scrape, less the sidecar\'s margin; a hanging pod is down, the others served', async (t) => {
  const h = await startHarness(t, { scrapeTimeoutMs: 5000 });
  const healthy = await podServer(t, () => 'web_requests_total 1\n');
  const hanging = await podServer(t, () => '', () => undefined);
  h.api.put('shop', 'web-1', { ip: '127.0.0.1', labels: { app: 'web' }, annotations: scrapeOn(healthy) });
  await until('web-1 served', async () => {
    const r = await h.get('/metrics');
    return r.status === 200 && upOf(r.body, 'web-1') === 1 ? true : undefined;
  });
  h.api.put('shop', 'web-2', { ip: '127.0.0.1', labels: { app: 'web' }, annotations: scrapeOn(hanging) });
  await until('web-2 known', () => (h.logs.some((l) => l.msg === 'pod scraped' && l.pod === 'web-2') ? true : undefined));
  // 1.5 s asked: 1.5 s less 0.5 s (10%, at least half a second) = 1 s, not the 5 s of --scrape_timeout.
  const started = performance.now();
  const r = await get(h.proxy.address.port, '/metrics', { 'x-prometheus-scrape-timeout-seconds': '1.5' });
  const took = performance.now() - started;
  assert.equal(r.status, 200);
  assert.ok(took >= 950 && took < 4000, `answered after ${Math.round(took)} ms`);
  assert.equal(upOf(r.body, 'web-1'), 1);
  assert.equal(upOf(r.body, 'web-2'), 0);
  assert.ok(r.body.includes('web_requests_total{namespace="shop",pod="web-1"} 1'));
  const down = h.logs.filter((l) => l.msg === 'target down' && l.pod === 'web-2').map((l) => String(l.reason));
  assert.equal(down.length, 1, down.join('; '));
  assert.match(down[0]!, /^timeout after (0\.99\d|1)s$/);
});
