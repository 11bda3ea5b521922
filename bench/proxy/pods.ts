// The pods of the proxy benchmark, in a process of their own: `node pods.ts <count> <series>` serves
// one generated exposition per pod (replicas of one app: the same families, other values), each on
// its own port of 127.0.0.1, and logs {"msg":"listening","address":...,"ports":[...]} on stderr.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateExposition } from '../sidecar/generate.ts';

const [count, series] = process.argv.slice(2).map(Number) as [number, number];
const servers = await Promise.all(Array.from({ length: count }, async (_, i) => {
  const body = Buffer.from(generateExposition('web', series, i + 1).body);
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}));
const ports = servers.map((s) => (s.address() as AddressInfo).port);
process.stderr.write(`${JSON.stringify({ msg: 'listening', address: `127.0.0.1:${ports[0]}`, ports })}\n`);
process.on('SIGTERM', () => process.exit(0));
