// The floor for the sidecar benchmark: fetches the same targets in parallel on each request and
// concatenates their bodies, no parsing, no labels; gzipped at the fastest level (as the sidecar does)
// when the request takes gzip. `node concat-proxy.ts [--concurrency=N] <port>...` (at most N fetched
// at once, as the proxy's --concurrency; all by default); logs its address the way the sidecar does.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { constants, gzip } from 'node:zlib';

const gzipAsync = promisify(gzip);

const args = process.argv.slice(2);
const concurrencyArg = args[0]?.startsWith('--concurrency=') ? args.shift()! : undefined;
const ports = args.map(Number);
const concurrency = concurrencyArg === undefined ? ports.length : Number(concurrencyArg.slice('--concurrency='.length));

function fetchBody(port: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** Every port's body, in order, with at most `concurrency` fetches at a time. */
async function fetchAll(): Promise<Buffer[]> {
  const bodies: Buffer[] = new Array<Buffer>(ports.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < ports.length; i = next++) bodies[i] = await fetchBody(ports[i]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, ports.length) }, worker));
  return bodies;
}

const server = http.createServer((req, res) => {
  const gzipped = /\bgzip\b/.test(req.headers['accept-encoding'] ?? '');
  void fetchAll().then(
    async (bodies) => {
      const concatenated = Buffer.concat(bodies);
      const body = gzipped ? await gzipAsync(concatenated, { level: constants.Z_BEST_SPEED }) : concatenated;
      res.writeHead(200, {
        'content-type': 'text/plain; version=0.0.4',
        'content-length': body.length,
        ...(gzipped ? { 'content-encoding': 'gzip' } : {}),
      }).end(body);
    },
    (e: Error) => res.writeHead(502).end(e.message),
  );
});
server.listen(0, '127.0.0.1', () => {
  process.stderr.write(`${JSON.stringify({ msg: 'listening', address: `127.0.0.1:${(server.address() as AddressInfo).port}` })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
