import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import type { Target } from '../../src/target-map.ts';
import { fetchTarget } from '../../src/sidecar/fetch.ts';
import { BackgroundScraper, OnDemandScraper } from '../../src/sidecar/scraper.ts';
import { startServer, staticBody } from './helpers.ts';

const BODY = '# TYPE up gauge\nup 1\n';
const MAX_BYTES = 1024 * 1024;

function targetsOn(...ports: number[]): Target[] {
  return ports.map((port, i) => ({ container: `c${i}`, port, path: '/metrics', scheme: 'http' }));
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100 && !condition(); i++) await sleep(50);
  assert.ok(condition(), what);
}

test('concurrent on-demand scrapes share one request per target; the next scrape fetches again', async (t) => {
  const slow = await startServer(staticBody(BODY, undefined, 200));
  const fast = await startServer(staticBody(BODY));
  t.after(() => Promise.all([slow.close(), fast.close()]));
  const scraper = new OnDemandScraper(targetsOn(slow.port, fast.port), MAX_BYTES, fetchTarget);
  const snapshots = await Promise.all(Array.from({ length: 5 }, () => scraper.scrape(2000)));
  assert.deepEqual([slow.requests, fast.requests], [1, 1]);
  for (const s of snapshots) assert.deepEqual(s.targets.map((r) => r.body?.toString()), [BODY, BODY]);
  await scraper.scrape(2000);
  assert.deepEqual([slow.requests, fast.requests], [2, 2]);
});

test('a scrape joining a shared fan-out still gets its answer within its own, shorter timeout', async (t) => {
  const hang = await startServer(() => {});
  t.after(() => hang.close());
  const scraper = new OnDemandScraper(targetsOn(hang.port), MAX_BYTES, fetchTarget);
  const leader = scraper.scrape(600);
  const joiner = await scraper.scrape(100);
  assert.match(joiner.targets[0]?.error ?? '', /^timeout after 0\.1s \(shared scrape still running\)$/);
  assert.equal(hang.requests, 1);
  assert.equal((await leader).targets[0]?.error, 'timeout after 0.6s');
});

test('the background cache serves full data to every reader and refreshes without readers', async (t) => {
  const target = await startServer(staticBody(BODY));
  t.after(() => target.close());
  const scraper = new BackgroundScraper(targetsOn(target.port), { timeoutMs: 1000, maxBytes: MAX_BYTES }, 50, fetchTarget);
  t.after(() => scraper.stop());
  const first = await scraper.read();
  const second = await scraper.read();
  for (const s of [first, second]) assert.equal(s.targets[0]?.body?.toString(), BODY);
  await until(() => target.requests >= 3, 'refreshes go on without reads');
  assert.ok((await scraper.read()).generation > first.generation);
  scraper.stop();
  await sleep(100); // a refresh in flight when stopping may still land
  const afterStop = target.requests;
  await sleep(200);
  assert.equal(target.requests, afterStop, 'no refresh after stop()');
});
