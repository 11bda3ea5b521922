// The proxy's fan-out over pods: bounded in connections, in time (one deadline for the whole scrape)
// and in bytes (the bodies together); scrapes arriving together share one fan-out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PodFanOut, type FanOutOptions } from '../../src/proxy/fanout.ts';
import type { PodTarget } from '../../src/proxy/targets.ts';
import { podServer } from './helpers.ts';

const OPTIONS: FanOutOptions = { concurrency: 4, maxTargetBytes: 1024 * 1024, maxTotalBytes: 64 * 1024 * 1024, containerLabel: 'container' };

function pods(count: number, port: (i: number) => number): PodTarget[] {
  return Array.from({ length: count }, (_, i) => ({
    container: '', port: port(i), path: `/metrics?pod=${i}`, scheme: 'http', host: '127.0.0.1',
    labels: [['namespace', 'shop'], ['pod', `web-${i}`]],
  }));
}

test('at most --concurrency pods are scraped at once, and every pod is', async (t) => {
  let open = 0;
  let most = 0;
  const port = await podServer(t, () => '', (_req, res) => {
    open++;
    most = Math.max(most, open);
    setTimeout(() => {
      open--;
      res.writeHead(200, { 'content-type': 'text/plain' }).end('up_total 1\n');
    }, 30);
  });
  const fanOut = new PodFanOut(() => pods(12, () => port), { ...OPTIONS, concurrency: 3 });
  const snapshot = await fanOut.scrape(5000);
  assert.equal(snapshot.targets.filter((x) => x.body !== undefined).length, 12);
  assert.equal(most, 3);
});

test('one deadline for the whole scrape: pods still waiting for a connection when it passes are down, saying why', async (t) => {
  const hanging = await podServer(t, () => '', () => undefined);
  const healthy = await podServer(t, () => 'up_total 1\n');
  const fanOut = new PodFanOut(() => pods(4, (i) => (i < 2 ? hanging : healthy)), { ...OPTIONS, concurrency: 1 });
  const started = performance.now();
  const snapshot = await fanOut.scrape(400);
  const took = performance.now() - started;
  assert.ok(took < 1400, `the scrape took ${took} ms for a 400 ms timeout`);
  assert.match(snapshot.targets[0]!.error!, /^timeout after 0\.(39\d|4)s/);
  for (const late of snapshot.targets.slice(1)) {
    assert.match(late.error!, /not scraped: the scrape's 0\.4s were over before one of the 1 connections \(--concurrency\) was free/);
  }
  assert.deepEqual(snapshot.targets[3]!.labels, [['namespace', 'shop'], ['pod', 'web-3']]);
});

test('the bodies of one scrape together stay under --max_total_bytes: the pods past it are down, the others served', async (t) => {
  const body = `${'x'.repeat(99)}\n`.repeat(1000); // 100 kB
  const port = await podServer(t, () => body);
  const fanOut = new PodFanOut(() => pods(4, () => port), { ...OPTIONS, concurrency: 1, maxTotalBytes: 250_000 });
  const snapshot = await fanOut.scrape(5000);
  assert.deepEqual(snapshot.targets.map((x) => x.body?.length ?? x.error), [
    100_000, 100_000,
    'the bodies of this scrape reached the proxy\'s cap on them together (--max_total_bytes 250000 bytes)',
    'the bodies of this scrape reached the proxy\'s cap on them together (--max_total_bytes 250000 bytes)',
  ]);
  // The cap is per scrape: the next one starts afresh.
  assert.equal((await fanOut.scrape(5000)).targets.filter((x) => x.body !== undefined).length, 2);
});

test('scrapes arriving together share one fan-out: one request per pod', async (t) => {
  let requests = 0;
  const port = await podServer(t, () => '', (_req, res) => {
    requests++;
    setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('up_total 1\n'), 100);
  });
  const fanOut = new PodFanOut(() => pods(5, () => port), OPTIONS);
  const [a, b, c] = await Promise.all([fanOut.scrape(5000), fanOut.scrape(5000), fanOut.scrape(5000)]);
  assert.equal(requests, 5);
  assert.equal(a.generation, b.generation);
  assert.equal(b.generation, c.generation);
  assert.equal(c.targets.filter((x) => x.body !== undefined).length, 5);
});

test('freeBuffers() gives the pods\' receive buffers back (the bodies they held are detached); called while bodies are half read, the scrape still gets every body whole', async (t) => {
  let gate = Promise.resolve();
  let arrived = 0;
  const port = await podServer(t, () => '', (req, res) => {
    arrived++;
    // Half the body at once, the rest when the gate opens: the fetch is writing into its buffer meanwhile.
    res.writeHead(200, { 'content-type': 'text/plain' }).write(`up_total{at="${req.url}"}`);
    void gate.then(() => res.end(' 1\n'));
  });
  const fanOut = new PodFanOut(() => pods(3, () => port), OPTIONS);
  const first = await fanOut.scrape(5000);
  const bodies = first.targets.map((x) => x.body!.toString());
  assert.equal(new Set(bodies).size, 3);
  fanOut.freeBuffers();
  assert.equal(first.targets[0]!.body!.length, bodies[0]!.length, 'kept while its reader reads it');
  first.done();
  fanOut.freeBuffers();
  assert.deepEqual(first.targets.map((x) => x.body!.length), [0, 0, 0], 'detached');

  const opened = Promise.withResolvers<void>();
  gate = opened.promise;
  const second = fanOut.scrape(5000);
  while (arrived < 6) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 50)); // the first halves are in the buffers
  fanOut.freeBuffers();
  opened.resolve();
  const snapshot = await second;
  assert.deepEqual(snapshot.targets.map((x) => x.body?.toString()), bodies);
  snapshot.done();
  fanOut.freeBuffers();
  assert.deepEqual(snapshot.targets.map((x) => x.body!.length), [0, 0, 0], 'detached after the scrape');
});
