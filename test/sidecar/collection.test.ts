// The sidecar as injected collects its garbage once a scrape is over and none follows, and before a
// scrape that follows others once the heap has grown (collector.ts). The code V8 optimized for the
// scanner, the writer and the protobuf reader must survive those collections (last-instances.ts), or
// every scrape after one would compile them again at 2-3 times the CPU. A real sidecar child
// process, read through V8's own trace.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { encodeBody, PROTOBUF_CONTENT_TYPE, TYPE, type MetricFamily } from '../../src/sidecar/exposition/protobuf/codec.ts';
import { PROMETHEUS_PROTOBUF_ACCEPT } from './exposition/accept.ts';
import { INJECTED_NODE_FLAGS, PROMETHEUS_ACCEPT, get, startServer, startSidecar, staticBody } from './helpers.ts';

const SERIES = 5000;

/** Many families, as real targets have: each one's objects are what a scrape leaves to collect. */
function textExposition(app: string): string {
  const lines: string[] = [];
  for (let f = 0; f < SERIES / 20; f++) {
    lines.push(`# HELP http_requests_${f}_total Requests handled by handler ${f}.`, `# TYPE http_requests_${f}_total counter`);
    for (let i = 0; i < 20; i++) lines.push(`http_requests_${f}_total{app="${app}",path="/p${i % 7}",code="${200 + (i % 5)}",n="${i}"} ${i * 3}`);
  }
  return `${lines.join('\n')}\n`;
}

function protobufExposition(app: string): Buffer {
  const families: MetricFamily[] = [];
  for (let f = 0; f < SERIES / 50; f++) {
    const metrics = Array.from({ length: 50 }, (_, i) => ({ labels: [['app', app], ['n', String(i)]] as [string, string][], counter: { value: f * i }, unknown: [] }));
    families.push({ name: `jobs_${f}_total`, help: 'Jobs done.', type: TYPE.counter, metrics, unknown: [] });
  }
  return Buffer.from(encodeBody(families));
}

async function assertCodeSurvives(t: import('node:test').TestContext, bodies: Buffer[], contentType: string, accept: string, watched: string[]): Promise<void> {
  const apps = await Promise.all(bodies.map((body) => startServer(staticBody(body, contentType))));
  t.after(() => Promise.all(apps.map((a) => a.close())));
  const sidecar = await startSidecar(['-m', apps.map((a, i) => `c${i}:${a.port}`).join(',')],
    { nodeArgs: [...INJECTED_NODE_FLAGS, '--trace-opt', '--trace-deopt', '--trace-gc'] });
  t.after(() => sidecar.stop());
  let trace = '';
  sidecar.child.stdout.on('data', (chunk: Buffer) => { trace += chunk.toString(); });
  const headers = { accept, 'accept-encoding': 'gzip' };
  const scrapeAfterQuiet = async (): Promise<void> => {
    await sleep(1500); // the buffers are freed and the garbage collected 1 s after the last answer
    assert.equal((await get(sidecar.port, '/metrics', headers)).status, 200);
  };
  for (let i = 0; i < 40; i++) assert.equal((await get(sidecar.port, '/metrics', headers)).status, 200);
  // The first collections may still drop code that Node's streams optimized for one scrape's objects.
  await scrapeAfterQuiet();
  await scrapeAfterQuiet();
  const settled = trace.length;
  await scrapeAfterQuiet();
  await scrapeAfterQuiet();
  const backToBack = trace.length;
  for (let i = 0; i < 40; i++) assert.equal((await get(sidecar.port, '/metrics', headers)).status, 200);
  assert.match(trace.slice(backToBack), /Mark-Compact \d[^\n]*testing/, 'scrapes back to back collected before one of them (gc(), not V8\'s own)');
  await sleep(1500);
  const before = trace.slice(0, settled);
  const after = trace.slice(settled);
  for (const name of watched) assert.match(before, new RegExp(`completed compiling .*<JSFunction ${name} .*(TURBOFAN|MAGLEV)`), `${name} was optimized`);
  assert.ok((after.match(/Mark-Compact \(reduce\)/g) ?? []).length >= 2, 'the sidecar collected its garbage after each later scrape');
  const dropped = after.split('\n').filter((l) => l.includes('embedded weak objects cleared') && watched.some((n) => l.includes(`<SharedFunctionInfo ${n}>`)));
  assert.deepEqual(dropped, []);
}

test('text: the collections (after a scrape, and before one that follows others) keep the optimized scanner and writer (no "embedded weak objects cleared" deoptimization)', async (t) => {
  const bodies = ['shop', 'pay'].map((app) => Buffer.from(textExposition(app)));
  await assertCodeSurvives(t, bodies, 'text/plain; version=0.0.4', PROMETHEUS_ACCEPT, ['sample', 'scan', 'writeSamples']);
});

test('protobuf: the collections (after a scrape, and before one that follows others) keep the optimized protobuf reader (no "embedded weak objects cleared" deoptimization)', async (t) => {
  const bodies = ['shop', 'pay'].map((app) => protobufExposition(app));
  await assertCodeSurvives(t, bodies, PROTOBUF_CONTENT_TYPE, PROMETHEUS_PROTOBUF_ACCEPT, ['scanFamily', 'metricLabelsHash']);
});
