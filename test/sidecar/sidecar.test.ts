// The sidecar as a child process (bin/promux.js sidecar) in front of real local servers: endpoints,
// fault handling, the shared fan-out, the background cache, shutdown and what the mode loads.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import {
  BIN, INJECTED_NODE_FLAGS, closedPort, containerSamples, fixture, get, OM_TYPE, PROMETHEUS_ACCEPT, samples, startServer, startSidecar, staticBody, targetValue,
  type TestServer,
} from './helpers.ts';

const TEXT_ACCEPT = { accept: 'text/plain;version=0.0.4' };
const NODE_FIXTURE = fixture('node-exporter.prom');
const NODE_SAMPLES = samples(NODE_FIXTURE.toString()).length;

async function servers(t: import('node:test').TestContext, ...handlers: Parameters<typeof startServer>[0][]) {
  const started: TestServer[] = await Promise.all(handlers.map((h) => startServer(h)));
  t.after(() => Promise.all(started.map((s) => s.close())));
  return started;
}

async function sidecar(t: import('node:test').TestContext, ...args: Parameters<typeof startSidecar>) {
  const s = await startSidecar(...args);
  t.after(() => s.stop());
  return s;
}

test('/healthz and /readyz answer, other paths 404, other methods 405', async (t) => {
  const [app] = await servers(t, staticBody('up 1\n'));
  const s = await sidecar(t, ['-m', `app:${app!.port}`, '--endpoint', '/merged']);
  assert.deepEqual([(await get(s.port, '/healthz')).status, (await get(s.port, '/readyz')).status], [200, 200]);
  assert.equal((await get(s.port, '/metrics')).status, 404);
  const post = await get(s.port, '/merged', {}, 'POST');
  assert.deepEqual([post.status, post.headers.allow], [405, 'GET']);
  assert.equal(app!.requests, 0, 'no scrape happened yet');
  const merged = await get(s.port, '/merged?x=1', TEXT_ACCEPT);
  assert.equal(merged.status, 200);
  assert.equal(merged.headers['transfer-encoding'], 'chunked', 'sent as it is written');
  assert.equal(targetValue(merged.body, 'promux_target_up', 'app'), 1);
  const listening = s.logs().find((l) => l.msg === 'listening');
  assert.deepEqual(listening?.targets, [`app:${app!.port}`]);
  assert.equal(listening?.mode, 'on-demand');
});

test('a port already in use is a logged error and exit code 1', async (t) => {
  const [busy] = await servers(t, staticBody('up 1\n'));
  const child = spawn(process.execPath, [BIN, 'sidecar', '-m', 'app:1', '--listen_address', '127.0.0.1', '-e', String(busy!.port)]);
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise((resolve) => child.on('exit', resolve));
  assert.equal(code, 1);
  const line = JSON.parse(stderr.trim()) as { level: string; msg: string };
  assert.equal(line.level, 'error');
  assert.match(line.msg, new RegExp(`^cannot listen on 127\\.0\\.0\\.1:${busy!.port}: .*EADDRINUSE`));
});

test('gzip output when the scraper asks for it', async (t) => {
  const [node] = await servers(t, staticBody(NODE_FIXTURE));
  const s = await sidecar(t, ['-m', `node:${node!.port}`]);
  const plain = await get(s.port, '/metrics', TEXT_ACCEPT);
  const zipped = await get(s.port, '/metrics', { ...TEXT_ACCEPT, 'accept-encoding': 'gzip' });
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.equal(zipped.headers['content-encoding'], 'gzip');
  assert.equal(zipped.headers['transfer-encoding'], 'chunked', 'gzipped as it is written');
  assert.ok(zipped.rawLength < Buffer.byteLength(plain.body) / 3);
  const timeless = (body: string): string => body.replace(/^promux_target_scrape_duration_seconds.*\n/gm, '');
  assert.ok(timeless(plain.body).length > NODE_FIXTURE.length);
  assert.ok(timeless(zipped.body) === timeless(plain.body), 'the same exposition, gzipped');
});

test('faults: hanging, mid-body close, 100 MiB, garbage and absent targets are down, the healthy ones all served', async (t) => {
  const huge = (_req: unknown, res: import('node:http').ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    const line = Buffer.from(`filler_metric{pad="${'x'.repeat(1000)}"} 1\n`);
    let sent = 0;
    const pump = (): void => {
      while (sent < 100 * 1024 * 1024 && !res.destroyed) {
        sent += line.length;
        if (!res.write(line)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  };
  const [node, worker, hang, midBody, big, garbage] = await servers(t,
    staticBody(NODE_FIXTURE),
    staticBody(fixture('python-worker.om'), OM_TYPE),
    () => {},
    (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4', 'content-length': '100000' });
      res.write('# TYPE half gauge\nhalf 1\n', () => res.socket?.destroy());
    },
    huge,
    staticBody('<html>502 Bad Gateway</html>\n{{{ not metrics\n'),
  );
  const absent = await closedPort();
  const timeoutSeconds = 2;
  const s = await sidecar(t, [
    '-m', `node:${node!.port},worker:${worker!.port},hang:${hang!.port},midbody:${midBody!.port}`,
    '-m', `big:${big!.port},garbage:${garbage!.port},absent:${absent}`,
    '--scrape_timeout', `${timeoutSeconds}s`,
  ], { nodeArgs: INJECTED_NODE_FLAGS });
  const started = performance.now();
  const r = await get(s.port, '/metrics', TEXT_ACCEPT);
  const elapsedSeconds = (performance.now() - started) / 1000;
  assert.equal(r.status, 200);
  // A functional bound, not a benchmark: without the timeout this scrape would never answer.
  assert.ok(elapsedSeconds < timeoutSeconds + 5, `answered after ${elapsedSeconds}s`);
  for (const up of ['node', 'worker']) assert.equal(targetValue(r.body, 'promux_target_up', up), 1, up);
  for (const down of ['hang', 'midbody', 'big', 'garbage', 'absent']) {
    assert.equal(targetValue(r.body, 'promux_target_up', down), 0, down);
    assert.deepEqual(containerSamples(r.body, down), [], `nothing of ${down} is served`);
  }
  assert.equal(containerSamples(r.body, 'node').length, NODE_SAMPLES);
  assert.ok(containerSamples(r.body, 'worker').some((l) => l.startsWith('jobs_processed_total{')));
  const reasons = Object.fromEntries(s.logs().filter((l) => l.msg === 'target down').map((l) => [l.container, l.reason]));
  assert.deepEqual(Object.keys(reasons).sort(), ['absent', 'big', 'garbage', 'hang', 'midbody']);
  assert.equal(reasons.hang, 'timeout after 2s');
  assert.equal(reasons.absent, 'connection refused');
  assert.equal(reasons.big, `body larger than ${32 * 1024 * 1024} bytes`);
});

test("the scraper's X-Prometheus-Scrape-Timeout-Seconds lowers the targets' timeout", async (t) => {
  const [node, hang] = await servers(t, staticBody(NODE_FIXTURE), () => {});
  const s = await sidecar(t, ['-m', `node:${node!.port},hang:${hang!.port}`, '--scrape_timeout', '60s']);
  const started = performance.now();
  const r = await get(s.port, '/metrics', { ...TEXT_ACCEPT, 'x-prometheus-scrape-timeout-seconds': '2' });
  assert.ok(performance.now() - started < 30_000, 'answered long before --scrape_timeout');
  assert.equal(targetValue(r.body, 'promux_target_up', 'node'), 1);
  assert.equal(targetValue(r.body, 'promux_target_up', 'hang'), 0);
  const down = s.logs().find((l) => l.msg === 'target down');
  assert.equal(down?.reason, 'timeout after 1.5s');
});

test('a target that comes back is logged up again', async (t) => {
  let healthy = false;
  const [flappy] = await servers(t, (_req, res) => {
    if (healthy) res.writeHead(200, { 'content-type': 'text/plain' }).end('flappy_up 1\n');
    else res.writeHead(500).end();
  });
  const s = await sidecar(t, ['-m', `flappy:${flappy!.port}`]);
  assert.equal(targetValue((await get(s.port, '/metrics')).body, 'promux_target_up', 'flappy'), 0);
  assert.equal(targetValue((await get(s.port, '/metrics')).body, 'promux_target_up', 'flappy'), 0);
  healthy = true;
  assert.equal(targetValue((await get(s.port, '/metrics')).body, 'promux_target_up', 'flappy'), 1);
  const changes = s.logs().filter((l) => l.container === 'flappy').map((l) => [l.msg, l.reason]);
  assert.deepEqual(changes, [['target down', 'HTTP 500'], ['target up', undefined]]);
});

test('concurrent scrapes share one fan-out: one request per target', async (t) => {
  const [slow, node] = await servers(t, staticBody('slow_metric 1\n', undefined, 300), staticBody(NODE_FIXTURE));
  const s = await sidecar(t, ['-m', `slow:${slow!.port},node:${node!.port}`]);
  await sleep(200);
  assert.deepEqual([slow!.requests, node!.requests], [0, 0], 'on demand: nothing is fetched while nobody scrapes');
  const responses = await Promise.all(Array.from({ length: 6 }, () => get(s.port, '/metrics', TEXT_ACCEPT)));
  assert.deepEqual([slow!.requests, node!.requests], [1, 1]);
  for (const r of responses) {
    assert.equal(containerSamples(r.body, 'slow').length, 1);
    assert.equal(containerSamples(r.body, 'node').length, NODE_SAMPLES);
  }
  await get(s.port, '/metrics', TEXT_ACCEPT);
  assert.deepEqual([slow!.requests, node!.requests], [2, 2], 'a later scrape fetches again');
});

test('cache mode (--scrape_interval > 0): refreshed in the background, every scraper gets full data', async (t) => {
  const [node] = await servers(t, staticBody(NODE_FIXTURE));
  const s = await sidecar(t, ['-m', `node:${node!.port}`, '--scrape_interval', '100']);
  assert.equal(s.logs().find((l) => l.msg === 'listening')?.mode, 'background');
  const first = await get(s.port, '/metrics', TEXT_ACCEPT);
  const second = await get(s.port, '/metrics', TEXT_ACCEPT);
  for (const r of [first, second]) assert.equal(containerSamples(r.body, 'node').length, NODE_SAMPLES);
  const fetched = node!.requests;
  for (let i = 0; i < 100 && node!.requests < fetched + 2; i++) await sleep(50);
  assert.ok(node!.requests >= fetched + 2, 'refreshes go on with nobody scraping');
  const gzip = { ...TEXT_ACCEPT, 'accept-encoding': 'gzip' };
  const concurrent = await Promise.all(Array.from({ length: 4 }, (_, i) => get(s.port, '/metrics', i % 2 ? gzip : TEXT_ACCEPT)));
  for (const r of concurrent) assert.equal(containerSamples(r.body, 'node').length, NODE_SAMPLES);
});

test('SIGTERM during a scrape: the scrape is finished and sent, then the sidecar exits 0', async (t) => {
  const [slow, node] = await servers(t, staticBody('slow_metric 1\n', undefined, 800), staticBody(NODE_FIXTURE));
  const s = await sidecar(t, ['-m', `slow:${slow!.port},node:${node!.port}`]);
  const scrape = get(s.port, '/metrics', TEXT_ACCEPT);
  for (let i = 0; i < 100 && slow!.requests === 0; i++) await sleep(20);
  assert.equal(slow!.requests, 1);
  s.child.kill('SIGTERM');
  const r = await scrape;
  assert.equal(r.status, 200);
  assert.equal(r.headers.connection, 'close');
  assert.equal(containerSamples(r.body, 'slow').length, 1);
  assert.equal(containerSamples(r.body, 'node').length, NODE_SAMPLES);
  assert.equal(await s.exited, 0);
  assert.deepEqual(s.logs().slice(-2).map((l) => l.msg), ['shutting down', 'stopped']);
});

test('the sidecar mode loads none of express, commander, yaml, pino, node-forge, @kubernetes/client-node, the injector, nor Node\'s undici', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'promux-loads-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const hook = join(dir, 'record-loads.mjs');
  const record = join(dir, 'loaded.txt');
  // Records every module the process loads (ESM and CommonJS), written out at exit.
  writeFileSync(hook, [
    "import { registerHooks } from 'node:module';",
    "import { writeFileSync } from 'node:fs';",
    'const loaded = new Set();',
    'registerHooks({ load(url, context, next) { loaded.add(url); return next(url, context); } });',
    // Node's own modules are not seen by hooks; its list of them tells whether undici (13 MiB) was loaded.
    "process.on('exit', () => {",
    '  for (const m of process.moduleLoadList) if (m.includes(\'undici\')) loaded.add(`moduleLoadList:${m}`);',
    `  writeFileSync(${JSON.stringify(record)}, [...loaded].join('\\n'));`,
    '});',
  ].join('\n'));
  const [node] = await servers(t, staticBody(NODE_FIXTURE));
  const s = await sidecar(t, ['-m', `node:${node!.port}`], { nodeArgs: ['--import', hook] });
  assert.equal(targetValue((await get(s.port, '/metrics', { 'accept-encoding': 'gzip' })).body, 'promux_target_up', 'node'), 1);
  assert.equal(await s.stop(), 0);
  const loaded = readFileSync(record, 'utf8').split('\n');
  assert.ok(loaded.some((u) => u.endsWith('/src/sidecar/main.ts')), 'the hook saw the sidecar load');
  assert.ok(loaded.some((u) => u.endsWith('/src/sidecar/server.ts')));
  const forbidden = ['express', 'commander', 'yaml', 'pino', 'node-forge', '@kubernetes/client-node'];
  const offending = loaded.filter((u) => forbidden.some((name) => u.includes(`/node_modules/${name}/`)));
  assert.deepEqual(offending, []);
  assert.ok(loaded.some((u) => u.endsWith('/src/target-map.ts')), 'the target map, the contract with the injector, is loaded');
  assert.deepEqual(loaded.filter((u) => u.includes('/src/inject/') || u.includes('/src/config/load')), [], 'nor the injector');
  assert.deepEqual(loaded.filter((u) => u.startsWith('moduleLoadList:')), [], 'Node\'s undici stays unloaded');
  assert.deepEqual(loaded.filter((u) => u.includes('/src/sidecar/exposition/protobuf/')), [], 'nor the protobuf exposition, which no scraper asked for');
});

test('each scraper gets a Content-Type it asked for, and UTF-8 names kept or escaped as it asked (a target asked as Prometheus 3 asks sends them)', async (t) => {
  const asked: string[] = [];
  const [utf8, plain] = await servers(t,
    (req, res) => {
      asked.push(req.headers.accept ?? '');
      // As client_golang answers: UTF-8 names only when the chosen range allows them.
      if (/application\/openmetrics-text;version=1\.0\.0;escaping=allow-utf-8/.test(req.headers.accept ?? '')) {
        res.writeHead(200, { 'content-type': `${OM_TYPE}; escaping=allow-utf-8` })
          .end('# HELP "http.requests" Requests.\n# TYPE "http.requests" counter\n{"http.requests_total","method.name"="get"} 3\n# EOF\n');
      } else {
        res.writeHead(200, { 'content-type': OM_TYPE }).end('# TYPE http_requests counter\nhttp_requests_total{method_name="get"} 3\n# EOF\n');
      }
    },
    staticBody('# TYPE queue_depth gauge\nqueue_depth 4\n# EOF\n', OM_TYPE));
  const s = await sidecar(t, ['-m', `utf8:${utf8!.port},plain:${plain!.port}`]);
  const scrape = (accept?: string) => get(s.port, '/metrics', accept === undefined ? {} : { accept });
  const prometheus3 = 'application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,' +
    'text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2';

  const kept = await scrape(prometheus3);
  assert.equal(kept.headers['content-type'], 'application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8');
  assert.match(kept.body, /^# TYPE "http\.requests" counter$/m);
  assert.match(kept.body, /^\{"http\.requests_total",container="utf8","method\.name"="get"\} 3$/m);
  assert.match(kept.body, /^queue_depth\{container="plain"\} 4$/m);
  assert.ok(asked.every((a) => a === prometheus3), `asked: ${asked.join(' | ')}`);

  const legacy = await scrape(prometheus3.replaceAll('allow-utf-8', 'underscores'));
  assert.equal(legacy.headers['content-type'], 'application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores');
  assert.match(legacy.body, /^http_requests_total\{container="utf8",method_name="get"\} 3$/m);
  const dots = await scrape('text/plain;version=1.0.0;escaping=dots');
  assert.equal(dots.headers['content-type'], 'text/plain; version=1.0.0; charset=utf-8; escaping=dots');
  assert.match(dots.body, /^http_dot_requests_total\{container="utf8",method_dot_name="get"\} 3$/m);
  const values = await scrape('text/plain;version=1.0.0;escaping=values');
  assert.match(values.body, /^U__http_2e_requests_total\{container="utf8",U__method_2e_name="get"\} 3$/m);
  const utf8Text = await scrape('text/plain;version=1.0.0;escaping=allow-utf-8');
  assert.equal(utf8Text.headers['content-type'], 'text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8');
  assert.match(utf8Text.body, /^\{"http\.requests_total",container="utf8","method\.name"="get"\} 3$/m);

  const prometheus2 = await scrape(PROMETHEUS_ACCEPT);
  assert.equal(prometheus2.headers['content-type'], 'application/openmetrics-text; version=1.0.0; charset=utf-8');
  assert.match(prometheus2.body, /^http_requests_total\{container="utf8",method_name="get"\} 3$/m);
  assert.equal((await scrape('application/openmetrics-text;version=0.0.1')).headers['content-type'], 'application/openmetrics-text; version=0.0.1; charset=utf-8');
  for (const accept of [undefined, '*/*', 'application/json']) {
    const text = await scrape(accept);
    assert.equal(text.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8', String(accept));
    assert.match(text.body, /^http_requests_total\{container="utf8",method_name="get"\} 3$/m);
  }
});
