import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { mock, test } from 'node:test';
import { endpointOf, type Target } from '../../src/target-map.ts';
import { Collector, collectionsOf, type Merge } from '../../src/sidecar/collector.ts';
import { mergeStreamed, mergeTargets } from '../../src/sidecar/exposition/index.ts';
import { negotiateOutput } from '../../src/sidecar/negotiate.ts';
import type { AnyMergeOutput, FetchedTarget, MergeAnswer } from '../../src/sidecar/exposition/types.ts';
import { whole } from './exposition/checkers.ts';
import type { Log } from '../../src/sidecar/log.ts';
import { fetchTarget } from '../../src/sidecar/fetch.ts';
import { BackgroundScraper, OnDemandScraper, type FetchFn } from '../../src/sidecar/scraper.ts';
import { startServer, targetValue } from './helpers.ts';

// One duplicated series per fetch: one duplicate_series drop per snapshot.
const DUPLICATED = Buffer.from('# TYPE jobs gauge\njobs{q="a"} 1\njobs{q="a"} 2\n');
const TARGETS: Target[] = [{ container: 'app', port: 1, path: '/metrics', scheme: 'http' }];
const merge: Merge = (targets, accept, drops) => mergeStreamed(targets, { containerLabel: 'container', accept }, drops);
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

function bodyOf(output: MergeAnswer | AnyMergeOutput): Buffer {
  return whole(output).body;
}

function dropped(output: MergeAnswer | AnyMergeOutput): number | undefined {
  const body = bodyOf(output);
  const line = body.toString().split('\n').find((l) => l.startsWith('promux_dropped_samples_total') && l.includes('duplicate_series'));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

test('on demand: each scrape counts its drops once; scrapes sharing a fan-out count them once together', async () => {
  const { fetch, count } = fetchCounting(50);
  const collector = new Collector({ mode: 'on-demand', scraper: new OnDemandScraper(TARGETS, 1 << 20, fetch) }, merge, quiet);
  const shared = await Promise.all([collector.collect(TEXT, 1000), collector.collect(TEXT, 1000), collector.collect(OPENMETRICS, 1000)]);
  assert.equal(count(), 1);
  assert.deepEqual(shared.map((o) => dropped(o)), [1, 1, 1]);
  assert.equal(dropped(await collector.collect(TEXT, 1000)), 2);
  assert.equal(targetValue(bodyOf(await collector.collect(TEXT, 1000)).toString(), 'promux_target_up', 'app'), 1);
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
  assert.ok('body' in text && 'body' in openMetrics, 'whole answers, served to many readers');
  assert.deepEqual([dropped(text), dropped(openMetrics)], [1, 1]);
  assert.equal(openMetrics.format, 'text', 'a text target keeps the output in text');
});

/** Two targets of 2000 series on 127.0.0.1 whose values change on every request, fetched into kept receive buffers. */
async function countingTargets(t: { after(fn: () => unknown): void }): Promise<{ fetch: FetchFn; targets: Target[]; bodies: Buffer[] }> {
  let requests = 0;
  const servers = await Promise.all(['app', 'db'].map(() => startServer((_req, res) => {
    requests++;
    const series = Array.from({ length: 2000 }, (_, i) => `jobs{q="${i}"} ${requests}\n`).join('');
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(`# TYPE jobs gauge\n${series}`);
  })));
  t.after(() => Promise.all(servers.map((s) => s.close())));
  const targets: Target[] = servers.map((s, i) => ({ container: ['app', 'db'][i]!, port: s.port, path: '/metrics', scheme: 'http' }));
  const bodies: Buffer[] = [];
  const fetch: FetchFn = async (target, limits, receive) => {
    const fetched = await fetchTarget(target, limits, receive, 'container');
    bodies.push(fetched.body!);
    return fetched;
  };
  return { fetch, targets, bodies };
}

/** The values of the jobs series of one container in the answer, as a set. */
function jobValues(body: Buffer, container: string): Set<string> {
  return new Set(body.toString().split('\n').filter((l) => l.startsWith(`jobs{container="${container}"`)).map((l) => l.split(' ').pop()!));
}

test('on demand: a scrape that starts while an answer is still being written fetches into new buffers, never into its bodies', async (t) => {
  const { fetch, targets } = await countingTargets(t);
  const collector = new Collector({ mode: 'on-demand', scraper: new OnDemandScraper(targets, 1 << 20, fetch) }, merge, quiet);
  const first = await collector.collect(TEXT, 1000);
  const second = await collector.collect(TEXT, 1000);
  const firstBody = bodyOf(first);
  assert.deepEqual([...jobValues(firstBody, 'app')], ['1'], 'the first answer has the first fetch\'s values only');
  assert.equal(firstBody.toString().split('\n').filter((l) => l.startsWith('jobs{')).length, 4000);
  assert.equal(jobValues(bodyOf(second), 'app').size, 1);
  assert.notDeepEqual(jobValues(bodyOf(second), 'app'), jobValues(firstBody, 'app'));
});

test('on demand: 1 s after the last answer was sent the receive buffers are freed, then the garbage collected, and the next scrape fetches into new ones', async (t) => {
  const { fetch, targets, bodies } = await countingTargets(t);
  const collections: number[] = []; // the length of the first body when each idle collection ran
  let scrapes = 0;
  const collector = new Collector({ mode: 'on-demand', scraper: new OnDemandScraper(targets, 1 << 20, fetch) }, merge, quiet,
    { beforeScrape: () => scrapes++, whenIdle: () => collections.push(bodies[2]!.length) });
  const first = bodyOf(await collector.collect(TEXT, 1000)).toString();
  bodyOf(await collector.collect(TEXT, 1000));
  assert.equal(bodies[2]!.buffer, bodies[0]!.buffer, 'an answer taken whole leaves its receive buffers to the next scrape');
  mock.timers.enable({ apis: ['setTimeout'] });
  t.after(() => mock.timers.reset());
  assert.equal(scrapes, 2, 'each scrape\'s start is told to the collections');
  collector.sent();
  mock.timers.tick(999);
  assert.ok(bodies[2]!.length > 0, 'kept while scrapes may follow');
  assert.deepEqual(collections, []);
  mock.timers.tick(1);
  assert.equal(bodies[2]!.length, 0, 'the receive buffer is freed');
  assert.deepEqual(collections, [0], 'one collection, after the buffers were freed');
  mock.timers.reset();
  const next = bodyOf(await collector.collect(TEXT, 1000)).toString();
  assert.equal(next.split('\n').filter((l) => l.startsWith('jobs{')).length, 4000);
  assert.equal(next.replace(/^(promux_|jobs).*\n/gm, ''), first.replace(/^(promux_|jobs).*\n/gm, ''));
});

test('collections: a scrape collects first only once the heap has grown 2 MiB past the last collection; idle, the collection gives V8\'s pool back', () => {
  const MiB = 1024 * 1024;
  let used = 10 * MiB;
  let lives = 6 * MiB; // what a collection leaves
  const runs: NodeJS.GCOptions[] = [];
  const collections = collectionsOf((options) => {
    runs.push(options);
    used = lives;
  }, () => used);
  used = 12 * MiB;
  collections.beforeScrape();
  assert.equal(runs.length, 0, '2 MiB grown since the start: not yet');
  used = 12 * MiB + 1;
  collections.beforeScrape();
  assert.deepEqual(runs, [{ type: 'major' }]);
  used = 8 * MiB;
  collections.beforeScrape();
  assert.equal(runs.length, 1, '2 MiB past what the collection left: not yet');
  lives = 4 * MiB;
  collections.whenIdle();
  assert.deepEqual(runs, [{ type: 'major' }, { type: 'major', flavor: 'last-resort' }]);
  used = 6 * MiB + 1;
  collections.beforeScrape();
  assert.deepEqual(runs.at(-1), { type: 'major' }, 'measured from what the idle collection left');
});

test('on demand, a merge that answers whole (no pieces) releases its snapshot at once: the next scrape reuses the receive buffers', async (t) => {
  const { fetch, targets, bodies } = await countingTargets(t);
  const whole: Merge = (fetched, accept, drops) => mergeTargets(fetched, { containerLabel: 'container', accept }, drops);
  const collector = new Collector({ mode: 'on-demand', scraper: new OnDemandScraper(targets, 1 << 20, fetch) }, whole, quiet);
  const first = await collector.collect(TEXT, 1000);
  assert.ok('body' in first);
  await collector.collect(TEXT, 1000);
  assert.equal(bodies[2]!.buffer, bodies[0]!.buffer);
});

test('background: merges served to many readers are never written over', async (t) => {
  const { fetch } = fetchCounting();
  const scraper = new BackgroundScraper(TARGETS, { timeoutMs: 1000, maxBytes: 1 << 20 }, 3_600_000, fetch);
  t.after(() => scraper.stop());
  const collector = new Collector({ mode: 'background', scraper }, merge, quiet);
  const text = bodyOf(await collector.collect(TEXT, 1000));
  const copy = Buffer.from(text);
  collector.sent();
  bodyOf(await collector.collect(OPENMETRICS, 1000));
  assert.equal(bodyOf(await collector.collect(TEXT, 1000)), text, 'the memoized answer');
  assert.deepEqual(text, copy);
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
  const down = bodyOf(await collector.collect(TEXT, 1000)).toString();
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
