import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { mock, test } from 'node:test';
import { endpointOf, type Target } from '../../src/target-map.ts';
import { Collector, type Merge } from '../../src/sidecar/collector.ts';
import { mergeTargets } from '../../src/sidecar/exposition/index.ts';
import { negotiateOutput } from '../../src/sidecar/negotiate.ts';
import type { FetchedTarget } from '../../src/sidecar/exposition/types.ts';
import type { Log } from '../../src/sidecar/log.ts';
import { fetchTarget } from '../../src/sidecar/fetch.ts';
import { BackgroundScraper, OnDemandScraper, type FetchFn } from '../../src/sidecar/scraper.ts';
import { startServer, staticBody, targetValue } from './helpers.ts';

// One duplicated series per fetch: one duplicate_series drop per snapshot.
const DUPLICATED = Buffer.from('# TYPE jobs gauge\njobs{q="a"} 1\njobs{q="a"} 2\n');
const TARGETS: Target[] = [{ container: 'app', port: 1, path: '/metrics', scheme: 'http' }];
const merge: Merge = (targets, accept, drops, reuse) =>
  mergeTargets(targets, { containerLabel: 'container', accept, reuse }, drops);
const TEXT = negotiateOutput('text/plain');
const OPENMETRICS = negotiateOutput('application/openmetrics-text,text/plain;q=0.5');
const quiet: Log = () => {};

/** Fetches in memory (the unit under test is the collector, not the network). */
function fetchCounting(delayMs = 0): { fetch: FetchFn; count: () => number } {
  let count = 0;
  const fetch: FetchFn = async (target) => {
    count++;
    await sleep(delayMs);
    const fetched: FetchedTarget = { container: target.container, endpoint: endpointOf(target), body: DUPLICATED, contentType: 'text/plain', durationSeconds: 0.001 };
    return fetched;
  };
  return { fetch, count: () => count };
}

function dropped(body: Buffer): number | undefined {
  const line = body.toString().split('\n').find((l) => l.startsWith('promux_dropped_samples_total') && l.includes('duplicate_series'));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

test('on demand: each scrape counts its drops once; scrapes sharing a fan-out count them once together', async () => {
  const { fetch, count } = fetchCounting(50);
  const collector = new Collector({ mode: 'on-demand', scraper: new OnDemandScraper(TARGETS, 1 << 20, fetch) }, merge, quiet);
  const shared = await Promise.all([collector.collect(TEXT, 1000), collector.collect(TEXT, 1000), collector.collect(OPENMETRICS, 1000)]);
  assert.equal(count(), 1);
  assert.deepEqual(shared.map((o) => dropped(o.body)), [1, 1, 1]);
  assert.equal(dropped((await collector.collect(TEXT, 1000)).body), 2);
  assert.equal(targetValue((await collector.collect(TEXT, 1000)).body.toString(), 'promux_target_up', 'app'), 1);
});

test('background: a snapshot merged for many readers and both formats counts its drops once', async (t) => {
  const { fetch, count } = fetchCounting();
  const scraper = new BackgroundScraper(TARGETS, { timeoutMs: 1000, maxBytes: 1 << 20 }, 3_600_000, fetch);
  t.after(() => scraper.stop());
  const collector = new Collector({ mode: 'background', scraper }, merge, quiet);
  const text = await collector.collect(TEXT, 1000);
  const openMetrics = await collector.collect(OPENMETRICS, 1000);
  const textAgain = await collector.collect(TEXT, 1000);
  assert.equal(count(), 1);
  assert.equal(textAgain, text, 'the memoized merge');
  assert.deepEqual([dropped(text.body), dropped(openMetrics.body)], [1, 1]);
  assert.equal(openMetrics.format, 'text', 'a text target keeps the output in text');
});

test('on demand: a merge writes into the buffer of a response already sent, never into one still in use', async () => {
  const { fetch } = fetchCounting();
  const collector = new Collector({ mode: 'on-demand', scraper: new OnDemandScraper(TARGETS, 1 << 20, fetch) }, merge, quiet);
  const first = await collector.collect(TEXT, 1000);
  const expected = Buffer.from(first.body);
  const unsent = await collector.collect(TEXT, 1000);
  assert.notEqual(unsent.buffer.buffer, first.buffer.buffer, 'the first response is not sent yet');
  assert.deepEqual(first.body, expected);
  collector.sent(first);
  const reusing = await collector.collect(TEXT, 1000);
  assert.equal(reusing.buffer, first.buffer);
  assert.equal(dropped(reusing.body), 3, 'the third snapshot, merged whole');
  const again = await collector.collect(TEXT, 1000);
  assert.notEqual(again.buffer, first.buffer, 'handed out once per sent()');
});

test('on demand: 75 s after the last scrape its buffers are freed, and the next scrape merges whole into new ones', async (t) => {
  const series = Array.from({ length: 2000 }, (_, i) => `jobs{q="${i}"} ${i}\n`).join('');
  const servers = await Promise.all(['app', 'db'].map(() => startServer(staticBody(`# TYPE jobs gauge\n${series}`))));
  t.after(() => Promise.all(servers.map((s) => s.close())));
  const targets: Target[] = servers.map((s, i) => ({ container: ['app', 'db'][i]!, port: s.port, path: '/metrics', scheme: 'http' }));
  const fetch: FetchFn = (target, limits, receive) => fetchTarget(target, limits, receive, 'container');
  const collector = new Collector({ mode: 'on-demand', scraper: new OnDemandScraper(targets, 1 << 20, fetch) }, merge, quiet);
  const first = await collector.collect(TEXT, 1000);
  const expected = first.body.toString();
  mock.timers.enable({ apis: ['setTimeout'] });
  t.after(() => mock.timers.reset());
  collector.sent(first);
  mock.timers.tick(74_999);
  assert.equal(first.body.toString(), expected, 'kept while scrapes may follow');
  mock.timers.tick(1);
  assert.equal(first.buffer.length, 0, 'the merged answer\'s buffer is freed');
  mock.timers.reset();
  const next = await collector.collect(TEXT, 1000);
  assert.equal(next.body.toString().replace(/^promux_.*\n/gm, ''), expected.replace(/^promux_.*\n/gm, ''));
  assert.equal(next.body.toString().split('\n').filter((l) => l.startsWith('jobs{')).length, 4000);
});

test('background: merges served to many readers are never written over', async (t) => {
  const { fetch } = fetchCounting();
  const scraper = new BackgroundScraper(TARGETS, { timeoutMs: 1000, maxBytes: 1 << 20 }, 3_600_000, fetch);
  t.after(() => scraper.stop());
  const collector = new Collector({ mode: 'background', scraper }, merge, quiet);
  const text = await collector.collect(TEXT, 1000);
  collector.sent(text);
  const openMetrics = await collector.collect(OPENMETRICS, 1000);
  assert.notEqual(openMetrics.buffer, text.buffer);
});

test('target state changes are logged: down with the reason, then up again', async () => {
  let healthy = false;
  const fetch: FetchFn = async (target) =>
    healthy
      ? { container: target.container, endpoint: endpointOf(target), body: Buffer.from('ok 1\n'), contentType: 'text/plain', durationSeconds: 0 }
      : { container: target.container, endpoint: endpointOf(target), error: 'connection refused', durationSeconds: 0 };
  const lines: [string, string, Record<string, unknown> | undefined][] = [];
  const collector = new Collector({ mode: 'on-demand', scraper: new OnDemandScraper(TARGETS, 1 << 20, fetch) }, merge,
    (level, msg, fields) => lines.push([level, msg, fields]));
  await collector.collect(TEXT, 1000);
  await collector.collect(TEXT, 1000);
  healthy = true;
  await collector.collect(TEXT, 1000);
  await collector.collect(TEXT, 1000);
  assert.deepEqual(lines, [
    ['warn', 'target down', { container: 'app', endpoint: '1', reason: 'connection refused' }],
    ['info', 'target up', { container: 'app', endpoint: '1' }],
  ]);
});

test('two endpoints of one container: each has its own state, its own log lines and its own series', async () => {
  const targets: Target[] = [
    { container: 'ksm', port: 8080, path: '/metrics', scheme: 'http' },
    { container: 'ksm', port: 8081, path: '/metrics', scheme: 'http' },
  ];
  let healthy = false;
  const fetch: FetchFn = async (target) =>
    healthy || target.port === 8080
      ? { container: target.container, endpoint: endpointOf(target), body: Buffer.from(`up_${target.port} 1\n`), contentType: 'text/plain', durationSeconds: 0 }
      : { container: target.container, endpoint: endpointOf(target), error: 'connection refused', durationSeconds: 0 };
  const lines: [string, string, Record<string, unknown> | undefined][] = [];
  const collector = new Collector({ mode: 'on-demand', scraper: new OnDemandScraper(targets, 1 << 20, fetch) }, merge,
    (level, msg, fields) => lines.push([level, msg, fields]));
  const down = (await collector.collect(TEXT, 1000)).body.toString();
  assert.match(down, /^promux_target_up\{container="ksm",endpoint="8080"\} 1$/m);
  assert.match(down, /^promux_target_up\{container="ksm",endpoint="8081"\} 0$/m);
  assert.match(down, /^promux_dropped_samples_total\{container="ksm",endpoint="8081",reason="duplicate_series"\} 0$/m);
  healthy = true;
  await collector.collect(TEXT, 1000);
  assert.deepEqual(lines, [
    ['warn', 'target down', { container: 'ksm', endpoint: '8081', reason: 'connection refused' }],
    ['info', 'target up', { container: 'ksm', endpoint: '8081' }],
  ]);
});

test('an answer served as text because a family breaks OpenMetrics rules is logged once, with why, until that changes', async () => {
  let body = '# TYPE debt counter\ndebt_total -5\n# EOF\n';
  const fetch: FetchFn = async (target) =>
    ({ container: target.container, endpoint: endpointOf(target), body: Buffer.from(body), contentType: 'application/openmetrics-text; version=1.0.0', durationSeconds: 0 });
  const lines: [string, string, Record<string, unknown> | undefined][] = [];
  const scraper = new OnDemandScraper(TARGETS, 1 << 20, fetch);
  const collector = new Collector({ mode: 'on-demand', scraper }, merge, (level, msg, fields) => lines.push([level, msg, fields]));
  assert.equal((await collector.collect(OPENMETRICS, 1000)).format, 'text');
  await collector.collect(OPENMETRICS, 1000);
  body = '# TYPE debt counter\ndebt_total 5\n# EOF\n';
  assert.equal((await collector.collect(OPENMETRICS, 1000)).format, 'openmetrics');
  body = '# TYPE debt counter\ndebt_total NaN\n# EOF\n';
  await collector.collect(OPENMETRICS, 1000);
  assert.deepEqual(lines, [
    ['info', 'serving text instead of OpenMetrics', { reason: 'container app, family debt: a negative counter' }],
    ['info', 'serving text instead of OpenMetrics', { reason: 'container app, family debt: a NaN counter' }],
  ]);
});
