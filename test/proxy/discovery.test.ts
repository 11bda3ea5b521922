// `promux proxy` in front of a stand-in for the API server (none runs here: see stand-in.ts) and pods
// played by servers on 127.0.0.1: pods coming, changing and going while scrapes run; watches that
// end, break, hang or lose their history; RBAC refusing the proxy.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { samples } from '../sidecar/helpers.ts';
import { podServer, podsWith, scrapeOn, startHarness, until, upOf, type Harness } from './helpers.ts';

const WEB = { app: 'web' };

/** Scrapes until the test says stop, every answer checked: 200, and each pod's series once. */
function scrapeAll(h: Harness): { stop(): Promise<number> } {
  let running = true;
  let scrapes = 0;
  const loop = (async () => {
    while (running) {
      const r = await h.get('/metrics');
      assert.equal(r.status, 200, r.body);
      const pods = podsWith(r.body, 'web_requests_total');
      assert.equal(new Set(pods).size, pods.length, `each pod once: ${pods.join(' ')}`);
      scrapes++;
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return scrapes;
    },
  };
}

async function answer(h: Harness, check: (body: string) => boolean, what: string): Promise<string> {
  return until(what, async () => {
    const r = await h.get('/metrics');
    return r.status === 200 && check(r.body) ? r.body : undefined;
  });
}

test('stand-in API: pods appear, change IP, go NotReady, stop matching and disappear while scrapes run', async (t) => {
  const h = await startHarness(t);
  const port = await podServer(t, () => 'web_requests_total{code="200"} 1\n');
  h.api.put('shop', 'web-1', { ip: '127.0.0.1', labels: WEB, annotations: scrapeOn(port) });
  h.api.put('shop', 'web-2', { ip: '127.0.0.1', labels: WEB, annotations: scrapeOn(port) });
  h.api.put('shop', 'db-1', { ip: '127.0.0.1', labels: { app: 'db' }, annotations: scrapeOn(port) });
  h.api.put('shop', 'web-3', { phase: 'Pending', labels: WEB, annotations: scrapeOn(port) });
  await until('ready', async () => ((await h.get('/readyz')).status === 200 ? true : undefined));
  const scrapes = scrapeAll(h);

  let body = await answer(h, (b) => podsWith(b, 'web_requests_total').length === 2, 'the two running web pods');
  assert.deepEqual(podsWith(body, 'web_requests_total'), ['web-1', 'web-2'], 'not the db pod, not the pending one');
  assert.ok(samples(body).includes('web_requests_total{namespace="shop",pod="web-1",code="200"} 1'));

  // A new IP where nothing listens: the pod is down, the other served; back to the old one: up.
  h.api.put('shop', 'web-1', { ip: '127.0.0.2', labels: WEB, annotations: scrapeOn(port) });
  body = await answer(h, (b) => upOf(b, 'web-1') === 0, 'web-1 down at its new IP');
  assert.equal(upOf(body, 'web-2'), 1);
  h.api.put('shop', 'web-1', { ip: '127.0.0.1', labels: WEB, annotations: scrapeOn(port) });
  await answer(h, (b) => upOf(b, 'web-1') === 1, 'web-1 up again');

  // Not ready: still scraped, as Prometheus' pod discovery does. Pending, then running: scraped.
  h.api.put('shop', 'web-2', { ip: '127.0.0.1', ready: false, labels: WEB, annotations: scrapeOn(port) });
  h.api.put('shop', 'web-3', { ip: '127.0.0.1', labels: WEB, annotations: scrapeOn(port) });
  body = await answer(h, (b) => podsWith(b, 'web_requests_total').length === 3, 'web-3 once running');
  assert.equal(upOf(body, 'web-2'), 1, 'the pod that is not ready is scraped');

  // Labels that no longer match: the watch says DELETED. Deleted: gone.
  h.api.put('shop', 'web-2', { ip: '127.0.0.1', labels: { app: 'other' }, annotations: scrapeOn(port) });
  h.api.delete('shop', 'web-3');
  body = await answer(h, (b) => podsWith(b, 'web_requests_total').join() === 'web-1', 'only web-1 left');
  assert.equal(upOf(body, 'web-2'), undefined);
  assert.equal(upOf(body, 'web-3'), undefined);
  assert.ok(!body.includes('pod="web-3"'), 'no promux_dropped_* series of a pod that is gone either');

  assert.ok(await scrapes.stop() > 5);
  const logged = h.logs.map((l) => `${String(l.msg)} ${String(l.pod ?? '')}`);
  for (const line of ['pod scraped web-1', 'pod not scraped web-3', 'pod scraped web-3', 'pod gone web-2', 'pod gone web-3']) {
    assert.ok(logged.includes(line), `logged "${line}": ${logged.join('; ')}`);
  }
  assert.ok(h.logs.some((l) => l.msg === 'target down' && l.pod === 'web-1' && /connection refused/.test(String(l.reason))));
  assert.deepEqual(h.api.problems, []);
});

test('stand-in API: watches that end or break are resumed from their resourceVersion; history lost (410 Gone) is relisted', async (t) => {
  const h = await startHarness(t);
  const port = await podServer(t, () => 'web_requests_total 1\n');
  h.api.put('shop', 'web-1', { ip: '127.0.0.1', labels: WEB, annotations: scrapeOn(port) });
  await answer(h, (b) => podsWith(b, 'web_requests_total').length === 1, 'web-1');
  const scrapes = scrapeAll(h);
  const listsBefore = h.api.lists().length;

  h.api.endWatches();
  h.api.put('shop', 'web-2', { ip: '127.0.0.1', labels: WEB, annotations: scrapeOn(port) });
  await answer(h, (b) => podsWith(b, 'web_requests_total').length === 2, 'web-2 after a watch ended');
  h.api.cutWatches();
  h.api.put('shop', 'web-3', { ip: '127.0.0.1', labels: WEB, annotations: scrapeOn(port) });
  await answer(h, (b) => podsWith(b, 'web_requests_total').length === 3, 'web-3 after a watch was cut');

  // The watch hears nothing while the pods change and the API server compacts its history: the
  // next watch, from the version the proxy knows, is 410 Gone, and a relist brings it up to date.
  h.api.stalled = true;
  h.api.delete('shop', 'web-1');
  h.api.put('shop', 'web-4', { ip: '127.0.0.1', labels: WEB, annotations: scrapeOn(port) });
  h.api.compact();
  h.api.endWatches();
  const body = await answer(h, (b) => podsWith(b, 'web_requests_total').join() === 'web-2,web-3,web-4', 'the relisted pods');
  assert.equal(upOf(body, 'web-1'), undefined);
  assert.ok(await scrapes.stop() > 0);
  assert.ok(h.api.lists().length > listsBefore, 'a relist after 410 Gone');
  const watches = h.api.requests.filter((r) => r.includes('watch=true'));
  assert.ok(watches.every((r) => /[?&]timeoutSeconds=\d+/.test(r) && /[?&]labelSelector=app%3Dweb/.test(r) && /[?&]allowWatchBookmarks=true/.test(r)));
  assert.ok(watches.slice(1).every((r) => /[?&]resourceVersion=\d+/.test(r)), 'each watch resumes from a resourceVersion');
  assert.deepEqual(h.api.problems, []);
});

test('stand-in API: RBAC refusing the list is a clear error and a non-ready /readyz (and /metrics), until it is granted', async (t) => {
  const api = { denied: ['shop'] };
  const h = await startHarness(t, { namespaces: ['shop', 'pay'] });
  for (const ns of api.denied) h.api.denied.add(ns);
  const port = await podServer(t, () => 'web_requests_total 1\n');
  h.api.put('pay', 'web-1', { ip: '127.0.0.1', labels: WEB, annotations: scrapeOn(port) });

  const readyz = await until('a refusal', async () => {
    const r = await h.get('/readyz');
    return r.status === 503 && r.body.includes('access denied') ? r : undefined;
  });
  assert.match(readyz.body, /^not ready: namespace shop: access denied: HTTP 403: pods is forbidden: User "system:serviceaccount:monitoring:promux-proxy" cannot list resource "pods" in API group "" in the namespace "shop"/);
  const metrics = await h.get('/metrics');
  assert.equal(metrics.status, 503);
  assert.match(metrics.body, /access denied/);
  assert.equal((await h.get('/healthz')).status, 200, 'alive all the same');
  const logged = h.logs.find((l) => l.level === 'error' && String(l.msg).includes('forbidden'));
  assert.ok(logged !== undefined, JSON.stringify(h.logs));
  assert.match(String(logged.msg), /needs list and watch on pods in shop/);
  assert.equal(logged.scope, 'namespace shop');

  h.api.denied.clear();
  await until('ready once granted', async () => ((await h.get('/readyz')).status === 200 ? true : undefined));
  await answer(h, (b) => upOf(b, 'web-1') === 1, 'the pod of the namespace that was listed all along');
  assert.ok(h.logs.some((l) => l.msg === 'pod discovery works again' && l.scope === 'namespace shop'));
});

test('stand-in API: --all-namespaces without a ClusterRole is refused at the cluster scope, and said so', async (t) => {
  const h = await startHarness(t, { namespaces: undefined, allNamespaces: true });
  h.api.clusterWide = false;
  const readyz = await until('a refusal', async () => {
    const r = await h.get('/readyz');
    return r.status === 503 && r.body.includes('access denied') ? r : undefined;
  });
  assert.match(readyz.body, /all namespaces: access denied: .*cannot list resource "pods" in API group "" at the cluster scope/);
  assert.ok(h.logs.some((l) => l.level === 'error' && /every namespace \(a ClusterRole\)/.test(String(l.msg))));
  h.api.clusterWide = true;
  const port = await podServer(t, () => 'web_requests_total 1\n');
  h.api.put('a', 'web-1', { ip: '127.0.0.1', labels: WEB, annotations: scrapeOn(port) });
  h.api.put('b', 'web-1', { ip: '127.0.0.1', labels: WEB, annotations: scrapeOn(port) });
  const body = await answer(h, (b) => podsWith(b, 'web_requests_total').length === 2, 'a pod of each namespace');
  assert.ok(samples(body).includes('web_requests_total{namespace="a",pod="web-1"} 1'));
  assert.ok(samples(body).includes('web_requests_total{namespace="b",pod="web-1"} 1'));
});

test('stand-in API: a watch refused while lists are allowed is logged as such and retried with a growing backoff', async (t) => {
  const h = await startHarness(t);
  h.api.denyWatches = true;
  await until('the refusal logged', () => (h.logs.some((l) => /HTTP 403 Forbidden/.test(String(l.msg))) ? true : undefined));
  const lists = h.api.lists().length;
  await new Promise((resolve) => setTimeout(resolve, 1000));
  // 50 ms doubling to 400 ms: a few attempts a second, not a flood.
  assert.ok(h.api.lists().length - lists < 8, `${h.api.lists().length - lists} lists in a second`);
  h.api.denyWatches = false;
  const port = await podServer(t, () => 'web_requests_total 1\n');
  h.api.put('shop', 'web-1', { ip: '127.0.0.1', labels: WEB, annotations: scrapeOn(port) });
  await answer(h, (b) => upOf(b, 'web-1') === 1, 'web-1 once watches are allowed');
});

test('stand-in API: a watch that falls silent is replaced; an API server that ends every watch at once is backed off from', async (t) => {
  const h = await startHarness(t);
  const port = await podServer(t, () => 'web_requests_total 1\n');
  await until('ready', async () => ((await h.get('/readyz')).status === 200 ? true : undefined));
  h.api.stalled = true; // no events, and the watch is never ended: only the proxy can notice
  h.api.put('shop', 'web-1', { ip: '127.0.0.1', labels: WEB, annotations: scrapeOn(port) });
  await answer(h, (b) => upOf(b, 'web-1') === 1, 'web-1, listed by the informer that replaced the silent one');
  assert.ok(h.logs.some((l) => l.msg === 'pod watch silent, reconnecting'));

  h.api.stalled = false;
  h.api.endWatchesAtOnce = true;
  h.api.endWatches();
  await until('the backoff', () => (h.logs.some((l) => /ends every watch at once/.test(String(l.msg))) ? true : undefined));
  const watches = (): number => h.api.requests.filter((r) => r.includes('watch=true')).length;
  const before = watches();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  assert.ok(watches() - before < 30, `${watches() - before} watches in a second`);
  assert.equal((await h.get('/readyz')).status, 200, 'pods listed; the proxy stays ready');
});
