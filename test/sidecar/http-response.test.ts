import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ResponseReader, type ResponseHead } from '../../src/sidecar/http-response.ts';

interface Read {
  head?: ResponseHead;
  body: Buffer[];
  done: number;
  failures: string[];
}

/** Feeds the response in the given pieces (then the connection's end, unless open), the way fetch.ts does. */
function read(response: Buffer, cuts: number[] = [], { endConnection = true, wantHead = true } = {}): Read {
  const result: Read = { body: [], done: 0, failures: [] };
  const reader = new ResponseReader({
    head: (head) => ((result.head = head), wantHead),
    // Copied: the bytes are only valid during the call (fetch.ts reuses its read buffer).
    body: (buf, start, end) => (result.body.push(Buffer.from(buf.subarray(start, end))), true),
    done: () => result.done++,
    fail: (reason) => result.failures.push(reason),
  });
  const points = [...new Set(cuts.map((c) => Math.min(c, response.length)))].sort((a, b) => a - b);
  let from = 0;
  for (const point of [...points, response.length]) {
    // Each piece in a scratch buffer that is overwritten after the call, like the shared read buffer.
    const piece = Buffer.from(response.subarray(from, point));
    reader.push(piece, 0, piece.length);
    piece.fill(0x58);
    from = point;
  }
  if (endConnection) reader.end();
  return result;
}

const body = (r: Read): string => Buffer.concat(r.body).toString('latin1');

function chunked(payload: Buffer, sizes: number[], extension: string): Buffer {
  const parts: Buffer[] = [];
  let p = 0;
  for (const size of sizes) {
    if (p >= payload.length) break;
    const piece = payload.subarray(p, p + Math.max(1, size));
    parts.push(Buffer.from(`${piece.length.toString(16)}${extension}\r\n`), piece, Buffer.from('\r\n'));
    p += piece.length;
  }
  if (p < payload.length) parts.push(Buffer.from(`${(payload.length - p).toString(16)}\r\n`), payload.subarray(p), Buffer.from('\r\n'));
  parts.push(Buffer.from('0\r\nX-Trailer: yes\r\n\r\n'));
  return Buffer.concat(parts);
}

test('for any body, framing and split into pieces, exactly the body arrives and done is called once', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)),
      fc.constantFrom('length', 'chunked', 'close'),
      fc.array(fc.nat({ max: 80 }), { maxLength: 12 }),
      fc.constantFrom('', ';name=value', ' ;x'),
      fc.array(fc.nat({ max: 900 }), { maxLength: 10 }),
      fc.boolean(),
      (payload, framing, sizes, extension, cuts, lfOnly) => {
        const eol = lfOnly ? '\n' : '\r\n';
        const headers = [
          'HTTP/1.1 200 OK',
          'Content-Type: text/plain; version=0.0.4',
          ...(framing === 'length' ? [`Content-Length: ${payload.length}`] : framing === 'chunked' ? ['Transfer-Encoding: chunked'] : []),
        ];
        const framed = framing === 'chunked' ? chunked(payload, sizes, extension) : payload;
        const response = Buffer.concat([Buffer.from(headers.join(eol) + eol + eol), framed]);
        const result = read(response, cuts);
        assert.deepEqual(result.failures, []);
        assert.equal(result.head?.status, 200);
        assert.equal(result.head?.headers.get('content-type'), 'text/plain; version=0.0.4');
        assert.equal(result.head?.bodyLength, framing === 'length' ? payload.length : undefined);
        assert.equal(body(result), payload.toString('latin1'));
        assert.equal(result.done, 1);
      },
    ),
    { numRuns: 400 },
  );
});

test('a body framed by length or chunks is done before the connection ends; extra bytes are ignored', () => {
  const length = read(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcEXTRA'), [], { endConnection: false });
  assert.equal(body(length), 'abc');
  assert.equal(length.done, 1);
  const chunks = read(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'), [], { endConnection: false });
  assert.equal(body(chunks), 'abc');
  assert.equal(chunks.done, 1);
  const empty = read(Buffer.from('HTTP/1.0 204 No Content\r\nContent-Length: 0\r\n\r\n'), [], { endConnection: false });
  assert.equal(empty.head?.status, 204);
  assert.equal(empty.done, 1);
});

test('repeated headers are joined; names are lower-cased; blank lines before the status line are skipped', () => {
  const result = read(Buffer.from('\r\nHTTP/1.1 200 OK\r\nX-A: 1\r\nx-a:  2 \r\nContent-Length: 0\r\n\r\n'));
  assert.equal(result.head?.headers.get('x-a'), '1, 2');
  assert.equal(result.done, 1);
});

test('a head the sink refuses stops reading', () => {
  const result = read(Buffer.from('HTTP/1.1 500 Oops\r\nContent-Length: 3\r\n\r\nabc'), [], { wantHead: false });
  assert.equal(result.head?.status, 500);
  assert.deepEqual([result.body.length, result.done, result.failures], [0, 0, []]);
});

test('broken responses fail with the reason, once, and deliver no more body', () => {
  const cases: Array<[string, string]> = [
    ['', 'connection closed without a response'],
    ['HTTP/1.1 200 OK\r\nContent-Le', 'connection closed in the response headers'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc', 'connection closed mid-body'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab', 'connection closed mid-body'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n', 'connection closed mid-body'],
    ['SSH-2.0-OpenSSH_9.2\r\n\r\n', 'not an HTTP/1.x response: "SSH-2.0-OpenSSH_9.2"'],
    ['HTTP/2 200\r\n\r\n', 'not an HTTP/1.x response: "HTTP/2 200"'],
    ['HTTP/1.1 200 OK\r\nno colon here\r\n\r\n', 'invalid HTTP response header "no colon here"'],
    ['HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n', 'invalid HTTP response header "Bad Name: x"'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n', 'invalid Content-Length "1, 2"'],
    ['HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', 'invalid Content-Length "-1"'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 'unsupported Transfer-Encoding "gzip, chunked"'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 'invalid chunked body: chunk size line "zz"'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n', 'invalid chunked body: no line end after a chunk'],
    [`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(70_000)}\r\n\r\n`, 'response headers larger than 65536 bytes'],
    [`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${'e'.repeat(2000)}\r\n`, 'invalid chunked body: line too long'],
  ];
  for (const [response, reason] of cases) {
    for (const cuts of [[], [1, 7, 20, 33, 41, 47]]) {
      const result = read(Buffer.from(response), cuts);
      assert.deepEqual(result.failures, [reason], `${JSON.stringify(response.slice(0, 50))} cut at ${cuts.join(',')}`);
      assert.equal(result.done, 0);
    }
  }
  // Endless headers are cut off as they arrive, without waiting for their end.
  const endless = read(Buffer.from(`HTTP/1.1 200 OK\r\n${'X-Pad: 0123456789\r\n'.repeat(5000)}`), [], { endConnection: false });
  assert.deepEqual(endless.failures, ['response headers larger than 65536 bytes']);
});
