// The sidecar as injected collects its garbage once a scrape is over and none follows (collector.ts).
// The code V8 optimized for the scanner and the writer must survive that collection
// (keepLastInstance), or every scrape after one would compile them again at 2-3 times the CPU.
// A real sidecar child process, read through V8's own trace.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { INJECTED_NODE_FLAGS, PROMETHEUS_ACCEPT, get, startServer, startSidecar, staticBody } from './helpers.ts';

/** The scanner's and the writer's hottest functions. */
const WATCHED = ['sample', 'scan', 'writeSamples'];
const SCRAPE = { accept: PROMETHEUS_ACCEPT, 'accept-encoding': 'gzip' };

function exposition(app: string, series: number): string {
  const lines = ['# HELP http_requests_total Requests handled.', '# TYPE http_requests_total counter'];
  for (let i = 0; i < series; i++) lines.push(`http_requests_total{app="${app}",path="/p${i % 97}",code="${200 + (i % 5)}",n="${i}"} ${i * 3}`);
  return `${lines.join('\n')}\n`;
}

test('the collection after a scrape keeps the optimized scanner and writer: no "embedded weak objects cleared" deoptimization', async (t) => {
  const apps = await Promise.all(['shop', 'pay'].map((app) => startServer(staticBody(exposition(app, 5000)))));
  t.after(() => Promise.all(apps.map((a) => a.close())));
  const sidecar = await startSidecar(['-m', apps.map((a, i) => `c${i}:${a.port}`).join(',')],
    { nodeArgs: [...INJECTED_NODE_FLAGS, '--trace-opt', '--trace-deopt', '--trace-gc'] });
  t.after(() => sidecar.stop());
  let trace = '';
  sidecar.child.stdout.on('data', (chunk: Buffer) => { trace += chunk.toString(); });
  const scrapeAfterQuiet = async (): Promise<void> => {
    await sleep(1500); // the buffers are freed and the garbage collected 1 s after the last answer
    assert.equal((await get(sidecar.port, '/metrics', SCRAPE)).status, 200);
  };
  for (let i = 0; i < 40; i++) assert.equal((await get(sidecar.port, '/metrics', SCRAPE)).status, 200);
  // The first collections may still drop code that Node's streams optimized for one scrape's objects.
  await scrapeAfterQuiet();
  await scrapeAfterQuiet();
  const settled = trace.length;
  await scrapeAfterQuiet();
  await scrapeAfterQuiet();
  await sleep(1500);
  const before = trace.slice(0, settled);
  const after = trace.slice(settled);
  for (const name of WATCHED) assert.match(before, new RegExp(`completed compiling .*<JSFunction ${name} .*TURBOFAN`), `${name} was optimized`);
  assert.ok((after.match(/Mark-Compact \(reduce\)/g) ?? []).length >= 2, 'the sidecar collected its garbage after each later scrape');
  const dropped = after.split('\n').filter((l) => l.includes('embedded weak objects cleared') && WATCHED.some((n) => l.includes(`<SharedFunctionInfo ${n}>`)));
  assert.deepEqual(dropped, []);
});
