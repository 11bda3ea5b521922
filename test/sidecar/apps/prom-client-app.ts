// A real prom-client application for the integration test: prints its port, serves /metrics.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import client from 'prom-client';

const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry });
const requests = new client.Counter({
  name: 'http_requests_total',
  help: 'Requests served.',
  labelNames: ['code'],
  registers: [registry],
});
requests.inc({ code: '200' }, 42);
requests.inc({ code: '500' }, 3);
const latency = new client.Histogram({ name: 'http_request_duration_seconds', help: 'Request latency.', registers: [registry] });
latency.observe(0.12);

const server = http.createServer((_req, res) => {
  void registry.metrics().then((body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body));
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
