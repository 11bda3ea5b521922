// The merged answer as SidecarServer sends it: streamed with backpressure, cut rather than cut short.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import type { Collector } from '../../src/sidecar/collector.ts';
import type { MergeAnswer } from '../../src/sidecar/exposition/types.ts';
import type { Log } from '../../src/sidecar/log.ts';
import { SidecarServer } from '../../src/sidecar/server.ts';

// Random: gzip cannot shrink it, so that the gzipped answer fills the connection as the plain one does.
const PIECE = randomBytes(64 * 1024);

/** A server over a collector whose every answer is `pieces()`; counts the pieces taken and whether they were ended. */
async function serverOf(t: import('node:test').TestContext, pieces: () => Generator<Buffer, void, undefined>) {
  const state = { taken: 0, ended: 0, logs: [] as string[] };
  const counted = function* (): Generator<Buffer, void, undefined> {
    try {
      for (const piece of pieces()) {
        state.taken++;
        yield piece;
      }
    } finally {
      state.ended++;
    }
  };
  const collector = {
    collect: async (): Promise<MergeAnswer> => ({ pieces: counted(), contentType: 'text/plain; version=0.0.4', format: 'text', targets: [] }),
    sent: () => {},
  } as unknown as Collector;
  const log: Log = (_level, msg) => state.logs.push(msg);
  const server = new SidecarServer({ listenAddress: '127.0.0.1', port: 0, endpoint: '/metrics', scrapeTimeoutMs: 5000 }, collector, log);
  const { port } = await server.listen() as AddressInfo;
  t.after(() => server.close());
  return { port, state };
}

function get(port: number, headers: Record<string, string> = {}): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics', headers, agent: false }, resolve).on('error', reject);
  });
}

function readAll(res: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('aborted')));
    res.resume();
  });
}

test('a scraper that does not read holds up the answer: pieces are taken only as the connection takes them', async (t) => {
  const count = 600; // 37.5 MiB, far more than the connection's buffers take
  const { port, state } = await serverOf(t, function* () {
    for (let i = 0; i < count; i++) yield PIECE;
  });
  for (const headers of [{}, { 'accept-encoding': 'gzip' }] as Array<Record<string, string>>) {
    state.taken = 0;
    const res = await get(port, headers);
    res.pause();
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(state.taken < 300, `${state.taken} of ${count} pieces taken while the scraper read nothing`);
    const body = await readAll(res);
    const plain = 'content-encoding' in res.headers ? gunzipSync(body) : body;
    assert.equal(plain.length, count * PIECE.length);
    assert.equal(state.taken, count);
  }
  assert.equal(state.ended, 2);
});

test('a merge that fails half-way cuts the connection: the scraper never gets a short body as a whole one', async (t) => {
  const { port, state } = await serverOf(t, function* () {
    yield PIECE;
    yield PIECE;
    throw new Error('broken merge');
  });
  for (const headers of [{}, { 'accept-encoding': 'gzip' }] as Array<Record<string, string>>) {
    // Cut before or after the status line reached the scraper: either way, no answer it could take whole.
    await assert.rejects(get(port, headers).then(readAll));
  }
  assert.equal(state.ended, 2);
  assert.equal(state.logs.filter((m) => m.startsWith('scrape failed while its answer was being sent')).length, 2);
});

test('a merge that fails before its first piece answers 500', async (t) => {
  // eslint-disable-next-line require-yield -- a merge that fails at its first piece
  const { port, state } = await serverOf(t, function* () {
    throw new Error('broken merge');
  });
  const res = await get(port);
  assert.equal(res.statusCode, 500);
  await readAll(res);
  assert.deepEqual(state.logs, ['scrape failed']);
});

test('a scraper that goes away mid-answer ends the pieces (what the merge holds is released)', async (t) => {
  const { port, state } = await serverOf(t, function* () {
    for (let i = 0; i < 2000; i++) yield PIECE;
  });
  const res = await get(port);
  res.pause();
  await new Promise((r) => setTimeout(r, 100));
  res.destroy();
  for (let i = 0; i < 100 && state.ended === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(state.ended, 1);
  assert.ok(state.taken < 2000);
});

test('an HTTP/1.0 scraper, which cannot be sent chunks, gets the answer whole with its Content-Length', async (t) => {
  const { port, state } = await serverOf(t, function* () {
    for (let i = 0; i < 10; i++) yield PIECE;
  });
  const answer = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(port, '127.0.0.1', () => socket.write('GET /metrics HTTP/1.0\r\n\r\n'));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
  });
  const headEnd = answer.indexOf('\r\n\r\n');
  const head = answer.subarray(0, headEnd).toString();
  assert.match(head, /^HTTP\/1\.1 200 /);
  assert.match(head, new RegExp(`^content-length: ${10 * PIECE.length}$`, 'im'));
  assert.doesNotMatch(head, /transfer-encoding/i);
  assert.equal(answer.length - headEnd - 4, 10 * PIECE.length);
  assert.equal(state.ended, 1);
});
