// The webhook's bounds, over real HTTPS: caps on connections, reviews and body bytes in flight,
// shedding by deadline, and the timeouts that close slow or idle connections at their set time.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect as tcpConnect } from 'node:net';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { pino } from 'pino';
import { defaultConfig } from '../../src/config/defaults.ts';
import { injectPod } from '../../src/inject/index.ts';
import { reviewBudgetMs, reviewTimeoutMs, uidInHead } from '../../src/webhook/app.ts';
import { DEFAULT_MEMORY_LIMIT, effectiveLimits, limitsFor } from '../../src/webhook/limits.ts';
import type { ServingLimits } from '../../src/webhook/options.ts';
import type { Injector } from '../../src/webhook/review.ts';
import { startWebhook } from '../../src/webhook/server.ts';
import type { RunningWebhook } from '../../src/webhook/server.ts';
import {
  SERVER_NAME, createReview, fixturePods, httpsRequest, memoryLogger, postReview, tempDir, testBundle, writeKeyPair,
} from './helpers.ts';
import type { ReviewResponse } from './helpers.ts';

type Obj = Record<string, unknown>;
const bundle = testBundle();
const CA = bundle.ca.cert;
const MiB = 1024 * 1024;
const pod = fixturePods('shop')[0]!.pod;

async function webhook(
  t: TestContext, limits: Partial<ServingLimits> = {}, inject: Injector = injectPod, healthPort?: number,
): Promise<RunningWebhook & { lines: Record<string, unknown>[] }> {
  const files = writeKeyPair(tempDir(t), bundle.serving);
  const { log, lines } = memoryLogger();
  const running = await startWebhook(
    { port: 0, listenAddress: '127.0.0.1', logLevel: 'debug', tls: { mode: 'files', ...files }, limits,
      ...(healthPort === undefined ? {} : { healthPort }) },
    { config: defaultConfig(), inject, log },
  );
  t.after(() => running.close(500));
  return Object.assign(running, { lines });
}

/** A TLS connection to the webhook that has finished its handshake. */
function tlsSocket(port: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: SERVER_NAME, ca: CA }, () => resolve(socket));
    socket.on('error', reject);
  });
}

/** Resolves with the time (ms after `from`) at which the server closed the socket. */
function closedAfter(socket: Socket, from: number): Promise<number> {
  return new Promise((resolve) => {
    socket.on('error', () => {});
    socket.once('close', () => resolve(performance.now() - from));
  });
}

/** Reads one HTTP response (status and body, Content-Length framed) from a raw socket. */
function readResponse(socket: Socket): Promise<{ status: number; headers: string; body: string }> {
  return new Promise((resolve, reject) => {
    let data = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      data = Buffer.concat([data, chunk]);
      const end = data.indexOf('\r\n\r\n');
      if (end === -1) return;
      const headers = data.subarray(0, end).toString('latin1');
      const length = Number(/content-length: (\d+)/i.exec(headers)?.[1] ?? 0);
      if (data.length < end + 4 + length) return;
      socket.off('data', onData);
      resolve({ status: Number(headers.split(' ')[1]), headers, body: data.subarray(end + 4, end + 4 + length).toString('utf8') });
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

function metric(body: string, name: string): number {
  const m = new RegExp(`^${name.replace(/[{}]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(body);
  return m === null ? NaN : Number(m[1]);
}

async function metrics(server: RunningWebhook): Promise<string> {
  return (await httpsRequest(server.port, CA, { path: '/metrics' })).body;
}

const reviewBody = (over: Obj = {}): { body: string; uid: string } => {
  const review = createReview(structuredClone(pod), over);
  return { body: JSON.stringify(review), uid: String((review.request as Obj).uid) };
};

test('the caps are sized from the memory limit: the flag, else the cgroup, else 256 MiB', () => {
  const chart = limitsFor(256 * MiB);
  assert.deepEqual(chart, { maxConnections: 568, maxReviewsInFlight: 853, maxRequestBytesInFlight: 27_962_026 });
  // Twice the memory, more than twice the room: the reserve is fixed.
  assert.ok(limitsFor(512 * MiB).maxConnections > 2 * chart.maxConnections);
  assert.ok(limitsFor(64 * MiB).maxConnections > 0, 'a tiny limit still leaves a floor');
  assert.deepEqual(effectiveLimits({}, undefined), {
    memoryLimitBytes: DEFAULT_MEMORY_LIMIT, memorySource: 'default', ...chart,
    headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 120_000,
  });
  assert.equal(effectiveLimits({}, 512 * MiB).memorySource, 'cgroup');
  assert.equal(effectiveLimits({}, 512 * MiB).maxConnections, limitsFor(512 * MiB).maxConnections);
  const given = effectiveLimits({ memoryLimitBytes: 128 * MiB, maxConnections: 7 }, 512 * MiB);
  assert.deepEqual([given.memorySource, given.maxConnections, given.maxReviewsInFlight],
    ['flag', 7, limitsFor(128 * MiB).maxReviewsInFlight]);
});

test("the API server's timeout parameter: a Go duration, rounded up to seconds; answered a second early", () => {
  assert.equal(reviewTimeoutMs('/mutate?timeout=5s'), 5000);
  assert.equal(reviewTimeoutMs('/mutate?timeout=30s'), 30_000);
  assert.equal(reviewTimeoutMs('/mutate?timeout=1m0s'), 60_000);
  assert.equal(reviewTimeoutMs('/mutate?x=1&timeout=2s'), 2000);
  assert.equal(reviewTimeoutMs('/mutate'), 10_000, 'no parameter: the v1 default timeoutSeconds');
  assert.equal(reviewTimeoutMs('/mutate?timeout=soon'), 10_000);
  assert.equal(reviewBudgetMs(5000), 4000);
  assert.equal(reviewBudgetMs(1000), 500);
  const head = JSON.stringify(createReview(pod)).slice(0, 200);
  assert.match(uidInHead(head) ?? '', /^[0-9a-f-]{36}$/);
  assert.equal(uidInHead('{"kind":"AdmissionReview","request":{"kind":{}}}'), undefined);
});

test('an engine answer that is not usable (nothing, no decision, an unserializable patch) is allowed without a patch', async (t) => {
  const answers: unknown[] = [undefined, {}, { decision: 'inject', reason: 'x', targets: [], warnings: [], patch: [] },
    { decision: 'inject', reason: 'x', targets: [], warnings: [], patch: [{ op: 'add', path: '/x', value: 1n }] }];
  let next = 0;
  const server = await webhook(t, {}, (() => answers[next++]) as unknown as Injector);
  for (let i = 0; i < answers.length; i++) {
    const { body, uid } = reviewBody();
    const answer = await httpsRequest(server.port, CA, { method: 'POST', path: '/mutate', body });
    assert.equal(answer.status, 200, `answer ${i}`);
    assert.deepEqual((JSON.parse(answer.body) as ReviewResponse).response, { uid, allowed: true }, `answer ${i}`);
  }
  assert.equal(metric(await metrics(server), 'promux_webhook_reviews_total{result="error"}'), answers.length);
  assert.equal(server.lines.filter((l) => l.decision === 'error').length, answers.length);
});

test('a failure past the decision (here the log) still answers: allowed, with the uid from the body\'s first bytes; 500 without one', async (t) => {
  const files = writeKeyPair(tempDir(t), bundle.serving);
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, {
    write: (line: string) => {
      if (line.includes('"msg":"review"')) throw new Error('disk full');
      lines.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
  const server = await startWebhook({ port: 0, listenAddress: '127.0.0.1', logLevel: 'debug', tls: { mode: 'files', ...files } },
    { config: defaultConfig(), inject: injectPod, log });
  t.after(() => server.close(500));
  const { body, uid } = reviewBody();
  const answer = await httpsRequest(server.port, CA, { method: 'POST', path: '/mutate', body });
  assert.equal(answer.status, 200);
  assert.deepEqual((JSON.parse(answer.body) as ReviewResponse).response, { uid, allowed: true });
  assert.ok(lines.some((l) => l.msg === 'request failed' && l.level === 50));
  // The uid past the first 4096 bytes (the API server writes it first; this client did not): nothing to answer with.
  const late = JSON.stringify({ padding: 'x'.repeat(5000), ...JSON.parse(body) as Obj });
  const failed = await httpsRequest(server.port, CA, { method: 'POST', path: '/mutate', body: late });
  assert.equal(failed.status, 500);
  assert.deepEqual(JSON.parse(failed.body), { error: 'internal error' });
  const text = await metrics(server);
  assert.equal(metric(text, 'promux_webhook_reviews_total{result="error"}'), 2);
  assert.equal(metric(text, 'promux_webhook_reviews_total{result="injected"}'), 0);
});

test('a review that cannot be answered within the API server\'s timeout, or waited past 250 ms, is shed: allowed at once, a warning, counted', async (t) => {
  // Three reviews arrive together (pipelined on one connection, so all are read at once); the first
  // blocks the engine for 700 ms, the second has a 1 s timeout (answer within 500 ms): it is shed
  // instead of being answered late; so is the third, which has time but waited too long.
  let calls = 0;
  const slow: Injector = (p, c) => {
    if (calls++ === 0) {
      const until = performance.now() + 700;
      while (performance.now() < until) { /* the engine at work */ }
    }
    return injectPod(p, c);
  };
  const server = await webhook(t, {}, slow);
  const first = reviewBody();
  const second = reviewBody();
  const third = reviewBody();
  const socket = await tlsSocket(server.port);
  const post = (path: string, body: string): string =>
    `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const sent = performance.now();
  socket.write(post('/mutate?timeout=10s', first.body) + post('/mutate?timeout=1s', second.body) + post('/mutate?timeout=10s', third.body));
  const a = await readResponse(socket);
  const b = await readResponse(socket);
  const c = await readResponse(socket);
  const took = performance.now() - sent;
  // Having shed ordinary reviews for time, the webhook refuses new connections for a second; a
  // connection it has keeps working.
  await assert.rejects(httpsRequest(server.port, CA, { path: '/healthz' }), /ECONNRESET|socket disconnected/);
  socket.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
  const body = (await readResponse(socket)).body;
  socket.destroy();
  assert.equal((JSON.parse(a.body) as ReviewResponse).response.patchType, 'JSONPatch', 'the first is answered in full');
  const shed = (JSON.parse(b.body) as ReviewResponse).response;
  assert.equal(shed.uid, second.uid);
  assert.equal(shed.allowed, true);
  assert.equal(shed.patch, undefined);
  assert.match(shed.warnings?.[0] ?? '', /^promux: sidecar not injected: the webhook could not answer within the API server's timeout \(1s\)/);
  assert.ok(took < 1000, `answered within the timeout, not after ${took} ms`);
  // The third has time left (10 s), but waited past the webhook's own bound on waiting (250 ms).
  const overloaded = (JSON.parse(c.body) as ReviewResponse).response;
  assert.equal(overloaded.uid, third.uid);
  assert.match(overloaded.warnings?.[0] ?? '', /the webhook was overloaded \(the review would have waited over 250 ms\)/);
  assert.equal(metric(body, 'promux_webhook_shed_reviews_total{reason="deadline"}'), 1);
  assert.equal(metric(body, 'promux_webhook_shed_reviews_total{reason="overload"}'), 1);
  assert.equal(metric(body, 'promux_webhook_reviews_total{result="shed"}'), 2);
  assert.equal(metric(body, 'promux_webhook_connections_closed_total{reason="overload"}'), 1);
  assert.ok(server.lines.some((l) => l.decision === 'shed' && l.uid === second.uid && l.level === 40));
});

test('a body still arriving at the deadline is shed from its uid, and the connection closed', async (t) => {
  const server = await webhook(t);
  const { body, uid } = reviewBody();
  const socket = await tlsSocket(server.port);
  const started = performance.now();
  socket.write(`POST /mutate?timeout=2s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
  socket.write(body.slice(0, 300));
  const answer = await readResponse(socket);
  const took = performance.now() - started;
  assert.equal(answer.status, 200);
  assert.equal((JSON.parse(answer.body) as ReviewResponse).response.uid, uid);
  assert.match(answer.headers, /connection: close/i);
  assert.ok(took >= 950 && took < 1600, `shed at the 1 s budget of a 2 s timeout, not ${took} ms`);
  socket.destroy();
});

test('at the cap on reviews in flight or on body bytes, a new review is shed at once from its uid', async (t) => {
  const server = await webhook(t, { maxReviewsInFlight: 1, maxRequestBytesInFlight: 64 * 1024 });
  // One review holds the only slot: its body never completes.
  const holder = await tlsSocket(server.port);
  holder.write('POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{"kind":');
  await new Promise((resolve) => setTimeout(resolve, 100));
  const { body, uid } = reviewBody();
  const full = await httpsRequest(server.port, CA, { method: 'POST', path: '/mutate', body });
  const response = (JSON.parse(full.body) as ReviewResponse).response;
  assert.deepEqual({ uid: response.uid, patch: response.patch }, { uid, patch: undefined });
  assert.match(response.warnings?.[0] ?? '', /the webhook was full \(1 reviews in flight\)/);
  holder.destroy();
  await new Promise((resolve) => setTimeout(resolve, 100));

  // A body larger than the bytes left: shed as soon as its uid has arrived, without reading the rest.
  const big = createReview(structuredClone(pod));
  ((big.request as Obj).object as { metadata: Obj }).metadata.labels = { pad: 'x'.repeat(63) };
  ((big.request as Obj).object as Obj).padding = 'x'.repeat(100 * 1024);
  const answer = await httpsRequest(server.port, CA, { method: 'POST', path: '/mutate', body: JSON.stringify(big) });
  const bigResponse = (JSON.parse(answer.body) as ReviewResponse).response;
  assert.equal(bigResponse.uid, (big.request as Obj).uid);
  assert.match(bigResponse.warnings?.[0] ?? '', /the webhook was full \(65536 request bytes in flight\)/);
  // Still serving ordinary reviews.
  assert.equal((await postReview(server.port, CA, createReview(structuredClone(pod)))).json.response.patchType, 'JSONPatch');
  const text = await metrics(server);
  assert.equal(metric(text, 'promux_webhook_shed_reviews_total{reason="reviews-in-flight"}'), 1);
  assert.equal(metric(text, 'promux_webhook_shed_reviews_total{reason="bytes-in-flight"}'), 1);
  assert.equal(metric(text, 'promux_webhook_limit{limit="reviews_in_flight"}'), 1);
  assert.equal(metric(text, 'promux_webhook_reviews_in_flight'), 0);
  assert.equal(metric(text, 'promux_webhook_request_bytes_in_flight'), 0);
  assert.ok(server.lines.some((l) => l.level === 40 && /^shedding reviews: the webhook was full/.test(String(l.msg))));
});

test('connection cap: a new connection replaces one idle for a second; when all are busy it is refused at once', async (t) => {
  const server = await webhook(t, { maxConnections: 4 });
  const idle = await Promise.all(Array.from({ length: 4 }, () => tlsSocket(server.port)));
  const closed = idle.map((s) => closedAfter(s, performance.now()));
  // Fresh connections (less than a second old) are not evicted: the fifth is refused.
  const refused = await new Promise<string>((resolve) => {
    const socket = tcpConnect(server.port, '127.0.0.1');
    socket.on('error', (err) => resolve(err.message));
    socket.on('close', () => resolve('closed'));
  });
  assert.match(refused, /closed|ECONNRESET/);
  await new Promise((resolve) => setTimeout(resolve, 1100));
  // Now the oldest idle one makes room for a review.
  const { json } = await postReview(server.port, CA, createReview(structuredClone(pod)));
  assert.equal(json.response.patchType, 'JSONPatch');
  assert.ok((await Promise.race([closed[0]!, new Promise((r) => setTimeout(() => r('open'), 200))])) !== 'open',
    'the connection idle the longest was closed');
  const text = await metrics(server);
  assert.equal(metric(text, 'promux_webhook_connections_closed_total{reason="limit"}'), 1);
  assert.ok(metric(text, 'promux_webhook_connections_closed_total{reason="evicted"}') >= 1);
  assert.equal(metric(text, 'promux_webhook_limit{limit="connections"}'), 4);
  assert.ok(server.lines.some((l) => l.level === 40 && /^connection cap \(4\) reached/.test(String(l.msg))));
  for (const s of idle) s.destroy();
});

test('slow clients are cut at the configured time: TLS handshake, headers (slowloris), body, idle keep-alive', async (t) => {
  const server = await webhook(t, { headersTimeoutMs: 1000, requestTimeoutMs: 2000, keepAliveTimeoutMs: 1000 });
  const window = (ms: number, expected: number, what: string): void => {
    // Node looks for expired requests every 250 ms; the rest is a loaded machine's scheduling.
    assert.ok(ms >= expected - 50 && ms < expected + 750, `${what}: closed after ${Math.round(ms)} ms, expected ${expected}`);
  };

  // A TCP connection that never starts its TLS handshake.
  const raw = tcpConnect(server.port, '127.0.0.1');
  const rawClosed = closedAfter(raw, performance.now());

  // Slowloris: a header byte every 200 ms, never the end of the headers.
  const loris = await tlsSocket(server.port);
  const lorisStart = performance.now();
  const lorisClosed = closedAfter(loris, lorisStart);
  const drip = setInterval(() => loris.writable && loris.write('X'), 200);
  loris.write('POST /mutate HTTP/1.1\r\nHost: x\r\nX-Slow: ');

  // Headers complete, the body trickles (the review's own deadline is 4.5 s, so the request timeout cuts first).
  const trickle = await tlsSocket(server.port);
  const trickleClosed = closedAfter(trickle, performance.now());
  trickle.write('POST /mutate?timeout=30s HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n');
  const trickleDrip = setInterval(() => trickle.writable && trickle.write(' '), 200);

  // An idle keep-alive connection after one answered review.
  const idle = await tlsSocket(server.port);
  const { body } = reviewBody();
  idle.write(`POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  assert.equal((await readResponse(idle)).status, 200);
  const idleClosed = closedAfter(idle, performance.now());

  const [rawMs, lorisMs, trickleMs, idleMs] = await Promise.all([rawClosed, lorisClosed, trickleClosed, idleClosed]);
  clearInterval(drip);
  clearInterval(trickleDrip);
  window(rawMs, 1000, 'no TLS handshake');
  window(lorisMs, 1000, 'slowloris headers');
  window(trickleMs, 2000, 'trickling body');
  window(idleMs, 1000, 'idle keep-alive');
  const text = await metrics(server);
  assert.equal(metric(text, 'promux_webhook_connections_closed_total{reason="handshake-timeout"}'), 1);
  assert.equal(metric(text, 'promux_webhook_connections_closed_total{reason="request-timeout"}'), 2);
});

test('the health port answers /healthz and /readyz over plain HTTP, and only those, even with the HTTPS port full', async (t) => {
  const server = await webhook(t, { maxConnections: 2 }, injectPod, 0);
  assert.ok(server.healthPort !== undefined && server.healthPort !== server.port);
  const held = await Promise.all([tlsSocket(server.port), tlsSocket(server.port)]);
  const get = (path: string): Promise<{ status: number; body: string }> => new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: server.healthPort, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
  assert.deepEqual(await get('/healthz'), { status: 200, body: 'ok\n' });
  assert.deepEqual(await get('/readyz'), { status: 200, body: 'ok\n' });
  assert.equal((await get('/metrics')).status, 404);
  server.drain();
  assert.equal((await get('/readyz')).status, 503, 'not ready once shutdown began');
  for (const s of held) s.destroy();
});
