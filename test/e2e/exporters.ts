// Real exporters playing a pod's containers on 127.0.0.1: prom-client (a Node.js service), Python's
// prometheus_client (Debian's, which also speaks OpenMetrics) and the real node_exporter. Every one
// serves `e2e_exporter_info{exporter="<container>"} 1`, so a query can tell which container a
// series came from, and compare that with the `container` label it arrived with.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { freePort, startChild, waitForHttp } from './processes.ts';

export const MARKER = 'e2e_exporter_info';

export interface Exporter {
  /** The container it plays. */
  container: string;
  port: number;
  close(): Promise<void>;
}

function marker(registry: Registry, container: string): void {
  new Gauge({
    name: MARKER,
    help: 'Which container of the test pod serves this endpoint.',
    labelNames: ['exporter'],
    registers: [registry],
  }).set({ exporter: container }, 1);
}

/** A Node.js service's metrics from prom-client: default process metrics plus a few of its own. */
export async function startPromClientExporter(container: string, path = '/metrics'): Promise<Exporter> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  marker(registry, container);
  new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests served.',
    labelNames: ['code', 'method'],
    registers: [registry],
  }).inc({ code: '200', method: 'GET' }, 42);
  new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency.',
    labelNames: ['method'],
    buckets: [0.01, 0.1, 1],
    registers: [registry],
  }).observe({ method: 'GET' }, 0.05);
  const server = createServer((request, response) => {
    if (request.url?.split('?')[0] !== path) {
      response.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (body) => response.writeHead(200, { 'Content-Type': registry.contentType }).end(body),
      (err: Error) => response.writeHead(500).end(err.message),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    container,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const PYTHON_WORKER = `
import sys
from wsgiref.simple_server import make_server, WSGIRequestHandler
from prometheus_client import Counter, Gauge, Histogram, make_wsgi_app

container = sys.argv[1]
Gauge('${MARKER}', 'Which container of the test pod serves this endpoint.', ['exporter']).labels(container).set(1)
jobs = Counter('jobs_processed', 'Jobs processed by the worker.', ['queue'])
jobs.labels('default').inc(43)
jobs.labels('priority').inc(7)
Histogram('job_duration_seconds', 'Time spent on one job.', ['queue']).labels('default').observe(0.07)

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

server = make_server('127.0.0.1', 0, make_wsgi_app(), handler_class=Quiet)
print('listening', server.server_port, flush=True)
server.serve_forever()
`;

/** A Python worker's /metrics from prometheus_client (text or OpenMetrics, as the scraper asks). */
export async function startPythonExporter(python: string, container: string): Promise<Exporter> {
  const child = startChild(`python exporter ${container}`, python, ['-c', PYTHON_WORKER, container]);
  try {
    const line = await child.line(/^listening \d+$/, 15_000);
    const port = Number(line.split(' ')[1]);
    await waitForHttp(`http://127.0.0.1:${port}/metrics`, 10_000, child);
    return { container, port, close: () => child.stop() };
  } catch (err) {
    await child.stop();
    throw err;
  }
}

/** The real node_exporter, with only the loadavg and textfile collectors (the marker is a textfile). */
export async function startNodeExporter(binary: string, container: string, path = '/metrics'): Promise<Exporter> {
  const dir = mkdtempSync(join(tmpdir(), 'promux-e2e-textfile-'));
  writeFileSync(
    join(dir, 'marker.prom'),
    `# HELP ${MARKER} Which container of the test pod serves this endpoint.\n# TYPE ${MARKER} gauge\n` +
      `${MARKER}{exporter="${container}"} 1\n`,
  );
  const port = await freePort();
  const child = startChild(`node_exporter ${container}`, binary, [
    `--web.listen-address=127.0.0.1:${port}`,
    '--collector.disable-defaults',
    '--collector.loadavg',
    '--collector.textfile',
    `--collector.textfile.directory=${dir}`,
    `--web.telemetry-path=${path}`,
  ]);
  const close = async () => {
    await child.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForHttp(`http://127.0.0.1:${port}${path}`, 15_000, child);
    return { container, port, close };
  } catch (err) {
    await close();
    throw err;
  }
}
