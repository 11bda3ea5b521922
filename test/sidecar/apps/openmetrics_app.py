"""A real prometheus_client application serving OpenMetrics (with exemplars) for the integration test.

Prints its port on the first line of stdout, then serves every path until killed.
"""
from http.server import BaseHTTPRequestHandler, HTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST, generate_latest

registry = CollectorRegistry()
jobs = Counter('jobs_processed', 'Jobs processed by the worker.', ['queue'], registry=registry)
jobs.labels('default').inc(43, exemplar={'trace_id': 'abc123def456'})
jobs.labels('priority').inc(7)
duration = Histogram('job_duration_seconds', 'Time spent on one job.', ['queue'], registry=registry)
duration.labels('default').observe(0.07, exemplar={'trace_id': 'f00dbabe'})
Gauge('queue_depth', 'Jobs waiting.', ['queue'], registry=registry).labels('default').set(3)
Info('build', 'Build information.', registry=registry).info({'version': '1.4.2', 'revision': 'a1b2c3'})


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = generate_latest(registry)
        self.send_response(200)
        self.send_header('Content-Type', CONTENT_TYPE_LATEST)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = HTTPServer(('127.0.0.1', 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
