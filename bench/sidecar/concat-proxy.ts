// The floor for the sidecar benchmark: fetches the same targets in parallel on each request and
// concatenates their bodies, no parsing, no labels; gzipped at the fastest level (as the sidecar does)
// when the request takes gzip. `node concat-proxy.ts <port>...`; logs its address the way the sidecar does.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { constants, gzip } from 'node:zlib';

const gzipAsync = promisify(gzip);

const ports = process.argv.slice(2).map(Number);

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

const server = http.createServer((req, res) => {
  const gzipped = /\bgzip\b/.test(req.headers['accept-encoding'] ?? '');
  void Promise.all(ports.map(fetchBody)).then(
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
