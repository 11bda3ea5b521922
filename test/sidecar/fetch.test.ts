import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import type { Target } from '../../src/target-map.ts';
import { ExpositionError } from '../../src/sidecar/exposition/index.ts';
import { fetchTarget, ReceiveBuffer } from '../../src/sidecar/fetch.ts';
import { freeReceiveBuffers } from '../../src/sidecar/scraper.ts';
import { PROMETHEUS_3_ACCEPT } from './exposition/accept.ts';
import { requireTool } from '../helpers/tools.ts';
import { closedPort, OM_TYPE, startServer, TEXT_TYPE, type Handler } from './helpers.ts';

const BODY = '# TYPE up gauge\nup 1\n';
const limits = { timeoutMs: 2000, maxBytes: 1024 * 1024 };

function target(port: number, path = '/metrics'): Target {
  return { container: 'app', port, path, scheme: 'http' };
}

async function fetchFrom(t: import('node:test').TestContext, handler: Handler, options = limits) {
  const server = await startServer(handler);
  t.after(() => server.close());
  return fetchTarget(target(server.port), options);
}

test('fetches the body and content type, asking like Prometheus does', async (t) => {
  let headers: Record<string, unknown> = {};
  const result = await fetchFrom(t, (req, res) => {
    headers = req.headers;
    res.writeHead(200, { 'content-type': OM_TYPE }).end(BODY);
  });
  assert.equal(result.error, undefined);
  assert.equal(result.body?.toString(), BODY);
  assert.equal(result.contentType, OM_TYPE);
  assert.equal(result.container, 'app');
  assert.ok(result.durationSeconds >= 0);
  assert.equal(headers.accept, PROMETHEUS_3_ACCEPT, 'asked as Prometheus 3 asks, so that a target with UTF-8 names sends them');
  assert.equal(headers['accept-encoding'], 'identity', 'compression on loopback would only cost CPU');
  assert.equal(headers['x-prometheus-scrape-timeout-seconds'], '2');
});

test('reads chunked bodies written in many pieces, gzip or not', async (t) => {
  const lines = Array.from({ length: 2000 }, (_, i) => `metric_${i} ${i}\n`);
  for (const gzip of [false, true]) {
    const result = await fetchFrom(t, (_req, res) => {
      res.writeHead(200, { 'content-type': TEXT_TYPE, ...(gzip ? { 'content-encoding': 'gzip' } : {}) });
      if (gzip) return void res.end(gzipSync(lines.join('')));
      for (const line of lines) res.write(line); // no Content-Length: Node frames it chunked
      res.end();
    });
    assert.equal(result.error, undefined);
    assert.equal(result.body?.toString(), lines.join(''), `gzip: ${gzip}`);
  }
});

/** A raw TCP target that sends `response` in pieces of `piece` bytes with a pause between them. */
async function rawTarget(t: import('node:test').TestContext, response: Buffer, piece: number): Promise<number> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    void (async () => {
      for (let p = 0; p < response.length && !socket.destroyed; p += piece) {
        socket.write(response.subarray(p, p + piece));
        await sleep(1);
      }
      socket.end();
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  return (server.address() as AddressInfo).port;
}

test('concurrent fetches arriving in interleaved small pieces each get exactly their own body', async (t) => {
  const bodies = ['a', 'b', 'c'].map((c, i) => Buffer.from(Array.from({ length: 300 }, (_, n) => `${c}_metric{n="${n}"} ${i}\n`).join('')));
  const framings = [
    (b: Buffer) => Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${b.length}\r\n\r\n`), b]),
    (b: Buffer) => Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'),
      Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n0\r\n\r\n')]),
    (b: Buffer) => Buffer.concat([Buffer.from('HTTP/1.0 200 OK\r\n\r\n'), b]), // to the end of the connection
  ];
  const ports = await Promise.all(bodies.map((b, i) => rawTarget(t, framings[i]!(b), 997 + i * 211)));
  const results = await Promise.all(ports.map((port) => fetchTarget(target(port), limits, new ReceiveBuffer())));
  results.forEach((result, i) => {
    assert.equal(result.error, undefined);
    assert.ok(result.body?.equals(bodies[i]!), `body ${i} intact`);
  });
});

test('with a container label, a body whose Content-Type names its format is parsed as it arrives', async (t) => {
  const lines = Array.from({ length: 3000 }, (_, i) => `metric_${i % 7}{n="${i}"} ${i}\n`);
  const server = await startServer((req, res) => {
    const type = req.url === '/unknown' ? {} : { 'content-type': req.url === '/om' ? OM_TYPE : TEXT_TYPE };
    const gzip = req.url === '/gzip' ? { 'content-encoding': 'gzip' } : {};
    res.writeHead(200, { ...type, ...gzip });
    if (req.url === '/gzip') return void res.end(gzipSync(lines.join('')));
    if (req.url === '/om') return void res.end('# TYPE up gauge\nup 1\n'); // no # EOF
    for (const line of lines) res.write(line);
    res.end();
  });
  t.after(() => server.close());
  const fetchPath = (path: string) => fetchTarget({ container: 'app', port: server.port, path, scheme: 'http' }, limits, new ReceiveBuffer(), 'container');
  for (const path of ['/text', '/gzip']) {
    const { parsed, body } = await fetchPath(path);
    assert.ok(parsed !== undefined && !(parsed instanceof ExpositionError), path);
    assert.equal(parsed.samples, lines.length);
    assert.equal(parsed.families.length, 7);
    assert.equal(parsed.body.buffer, body!.buffer, 'parsed over the very bytes the fetch returns');
    assert.ok(parsed.body.equals(body!));
  }
  const om = await fetchPath('/om');
  assert.ok(om.parsed instanceof ExpositionError);
  assert.match(om.parsed.message, /# EOF/);
  assert.equal((await fetchPath('/unknown')).parsed, undefined, 'without a known Content-Type the merge decides from the body');
  assert.equal((await fetchTarget(target(server.port), limits)).parsed, undefined, 'without a container label: no parse');
});

test('gunzips a gzip body', async (t) => {
  const result = await fetchFrom(t, (_req, res) => {
    res.writeHead(200, { 'content-type': TEXT_TYPE, 'content-encoding': 'gzip' }).end(gzipSync(BODY));
  });
  assert.equal(result.body?.toString(), BODY);
});

test('the size cap applies to the gunzipped body: a small gzip that inflates past it is an error', async (t) => {
  const bomb = gzipSync(Buffer.alloc(4 * 1024 * 1024, 'a'));
  assert.ok(bomb.length < limits.maxBytes);
  const result = await fetchFrom(t, (_req, res) => {
    res.writeHead(200, { 'content-type': TEXT_TYPE, 'content-encoding': 'gzip' }).end(bomb);
  });
  assert.equal(result.body, undefined);
  assert.equal(result.error, `body larger than ${limits.maxBytes} bytes`);
});

test('a declared Content-Length over the cap fails before reading', async (t) => {
  const result = await fetchFrom(t, (_req, res) => {
    res.writeHead(200, { 'content-type': TEXT_TYPE, 'content-length': String(limits.maxBytes + 1) });
    res.write('x');
  });
  assert.match(result.error ?? '', /^body larger than 1048576 bytes \(Content-Length 1048577\)$/);
});

test('a streamed body over the cap is cut off at the cap', async (t) => {
  let sent = 0;
  const result = await fetchFrom(t, (_req, res) => {
    res.writeHead(200, { 'content-type': TEXT_TYPE });
    const chunk = Buffer.alloc(64 * 1024, 'a');
    const pump = (): void => {
      while (sent < 100 * 1024 * 1024 && !res.destroyed) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  assert.equal(result.error, `body larger than ${limits.maxBytes} bytes`);
  assert.ok(sent < 100 * 1024 * 1024, `the target was stopped, not read to the end (${sent} bytes sent)`);
});

test('HTTP errors, bad encodings and refused connections are errors, not exceptions', async (t) => {
  assert.equal((await fetchFrom(t, (_req, res) => res.writeHead(503).end('busy'))).error, 'HTTP 503');
  const brotli = await fetchFrom(t, (_req, res) => res.writeHead(200, { 'content-encoding': 'br' }).end('x'));
  assert.equal(brotli.error, 'unsupported Content-Encoding "br"');
  const badGzip = await fetchFrom(t, (_req, res) => res.writeHead(200, { 'content-encoding': 'gzip' }).end('not gzip'));
  assert.match(badGzip.error ?? '', /^invalid gzip body: /);
  assert.equal((await fetchTarget(target(await closedPort()), limits)).error, 'connection refused');
});

test('a target that hangs times out after the limit', async (t) => {
  const result = await fetchFrom(t, () => {}, { timeoutMs: 300, maxBytes: limits.maxBytes });
  assert.equal(result.error, 'timeout after 0.3s');
  assert.ok(result.durationSeconds >= 0.29);
});

test('a connection closed mid-body, or before any response, is an error', async (t) => {
  const midBody = await fetchFrom(t, (_req, res) => {
    res.writeHead(200, { 'content-type': TEXT_TYPE, 'content-length': '100000' });
    res.write(BODY, () => res.socket?.destroy());
  });
  assert.equal(midBody.error, 'connection closed mid-body');
  const noResponse = await fetchFrom(t, (req) => req.socket.destroy());
  assert.equal(noResponse.error, 'connection closed without a response');
});

test('https targets are fetched without certificate verification (localhost)', async (t) => {
  const openssl = requireTool(t, 'openssl');
  if (openssl === undefined) return;
  const dir = mkdtempSync(join(tmpdir(), 'promux-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const made = spawnSync(openssl, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost']);
  assert.equal(made.status, 0, made.stderr?.toString());
  const server = https.createServer(
    { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
    (_req, res) => res.writeHead(200, { 'content-type': TEXT_TYPE }).end(BODY),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const result = await fetchTarget({ container: 'tls', port, path: '/metrics', scheme: 'https' }, limits);
  assert.equal(result.error, undefined);
  assert.equal(result.body?.toString(), BODY);
});

test('a ReceiveBuffer is reused from one fetch to the next, grown when a body outgrows it', async (t) => {
  let body = Buffer.alloc(200_000, 'a');
  let gzip = false;
  const server = await startServer((_req, res) => {
    res.writeHead(200, gzip ? { 'content-encoding': 'gzip' } : {}).end(gzip ? gzipSync(body) : body);
  });
  t.after(() => server.close());
  const receive = new ReceiveBuffer();
  const first = await fetchTarget(target(server.port), limits, receive);
  assert.ok(first.body?.equals(body));
  body = Buffer.alloc(150_000, 'b');
  const second = await fetchTarget(target(server.port), limits, receive);
  assert.ok(second.body?.equals(body));
  assert.equal(second.body?.buffer, first.body?.buffer, 'the same memory');
  body = Buffer.alloc(500_000, 'c');
  gzip = true; // no Content-Length for the gunzipped size: grown as it arrives
  const third = await fetchTarget(target(server.port), limits, receive);
  assert.ok(third.body?.equals(body));
  assert.notEqual(third.body?.buffer, first.body?.buffer);
  body = Buffer.alloc(10, 'd');
  gzip = false;
  assert.ok((await fetchTarget(target(server.port), limits, receive)).body?.equals(body));
  assert.equal(receive.buffer, undefined, 'a buffer far larger than the body is let go');
});

test('a freed ReceiveBuffer starts the next body of unknown length at the last body\'s size, not grown to it by doubling', async (t) => {
  const body = Buffer.alloc(300_000, 'a');
  const server = await startServer((_req, res) => {
    res.writeHead(200); // chunked: no Content-Length
    res.write(body.subarray(0, 100_000));
    res.end(body.subarray(100_000));
  });
  t.after(() => server.close());
  const receive = new ReceiveBuffer();
  assert.ok((await fetchTarget(target(server.port), limits, receive)).body?.equals(body));
  assert.equal(receive.buffer?.length, 512 * 1024, 'grown from 64 KiB by doubling');
  freeReceiveBuffers([receive]);
  assert.equal(receive.lastSize, body.length);
  const again = await fetchTarget(target(server.port), limits, receive);
  assert.ok(again.body?.equals(body));
  assert.equal(again.body?.buffer.byteLength, body.length, 'one buffer of the last body\'s size, not a new one grown to 512 KiB');
});
