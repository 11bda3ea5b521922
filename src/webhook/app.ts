// The webhook's request handling. POST /mutate, the hot path the API server calls for every pod,
// is answered by a plain node:http handler (a review is one route with one body: express's router
// and request wrapping cost more than the decision itself); GET /healthz, /readyz, /metrics and
// every other request go to an express app. Decisions are made by review(); this file reads
// bodies, writes answers, logs one line per review and counts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type { PromuxConfig } from '../config/types.ts';
import { REVIEW_RESULTS } from './metrics.ts';
import type { ReviewResult, WebhookMetrics } from './metrics.ts';
import { review } from './review.ts';
import type { Injector, SkipReason } from './review.ts';

/** The API server itself refuses requests over 3 MiB, so no genuine review is larger. */
export const MAX_REVIEW_BYTES = 3 * 1024 * 1024;

export interface AppOptions {
  config: PromuxConfig;
  inject: Injector;
  metrics: WebhookMetrics;
  log: Logger;
  /** True once real TLS material is served. */
  isReady: () => boolean;
  /** True once shutdown began: /readyz fails and answers ask clients to close the connection. */
  isClosing: () => boolean;
}

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

class HttpError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

function sendJson(res: ServerResponse, status: number, payload: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
  res.end(payload);
}

/** The path of a request target: the API server calls /mutate?timeout=5s. */
function pathOf(url: string | undefined): string {
  const query = url?.indexOf('?') ?? -1;
  return query === -1 ? (url ?? '') : url!.slice(0, query);
}

/**
 * Reads the body as JSON (undefined when empty), whatever the content type: the API server sends
 * application/json, and anything else fails as JSON anyway. No charsets (JSON is UTF-8), no
 * compression (the API server sends none).
 */
function readJsonBody(req: IncomingMessage, limit: number, done: (err: HttpError | undefined, body?: unknown) => void): void {
  const tooLarge = (): HttpError => new HttpError(413, `request body over ${limit} bytes`);
  if (Number(req.headers['content-length']) > limit) {
    done(tooLarge());
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  const finish = (err?: HttpError, body?: unknown): void => {
    if (finished) return;
    finished = true;
    done(err, body);
  };
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > limit) finish(tooLarge());
    else if (!finished) chunks.push(chunk);
  });
  req.on('error', (err) => finish(new HttpError(400, `reading the request body failed: ${err.message}`)));
  req.on('end', () => {
    if (finished) return;
    const text = chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks, size).toString('utf8');
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch (err) {
      finish(new HttpError(400, `request body is not JSON: ${(err as Error).message}`));
      return;
    }
    finish(undefined, body);
  });
}

function mutateHandler(options: AppOptions): RequestListener {
  const { config, inject, metrics, log } = options;
  // Counter children made once: inc() on a child skips hashing the label set on every review.
  const reviewsBy = new Map(REVIEW_RESULTS.map((result) => [result, metrics.reviews.labels({ result })]));
  const countReview = (result: ReviewResult): void => reviewsBy.get(result)!.inc();
  const skipsBy = new Map<SkipReason, Counter.Internal>();
  const countSkip = (reason: SkipReason): void => {
    let child = skipsBy.get(reason);
    if (child === undefined) skipsBy.set(reason, (child = metrics.skips.labels({ reason })));
    child.inc();
  };

  const reject = (res: ServerResponse, start: bigint, status: number, error: string): void => {
    metrics.reviewDuration.observe(Number(process.hrtime.bigint() - start) / 1e9);
    countReview('rejected');
    log.warn({ status, error }, 'rejected a request that is not an AdmissionReview');
    sendJson(res, status, JSON.stringify({ error }));
  };

  const answer = (res: ServerResponse, start: bigint, body: unknown): void => {
    const outcome = review(body, config, inject);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (!outcome.ok) {
      reject(res, start, outcome.status, outcome.error);
      return;
    }
    metrics.reviewDuration.observe(seconds);
    const { summary } = outcome;
    countReview(summary.decision);
    if (summary.decision === 'injected') metrics.injections.inc();
    if (summary.skipCode !== undefined) countSkip(summary.skipCode);
    const line = { ...summary, durationMs: Math.round(seconds * 1e6) / 1e3 };
    if (summary.decision === 'error') log.error(line, 'review');
    else log.info(line, 'review');
    sendJson(res, 200, JSON.stringify(outcome.review));
  };

  return (req, res) => {
    const start = process.hrtime.bigint();
    readJsonBody(req, MAX_REVIEW_BYTES, (err, body) => {
      try {
        if (err === undefined) answer(res, start, body);
        else reject(res, start, err.status, err.message);
      } catch (unexpected) {
        // review() answers every AdmissionReview itself; this is a bug, not the pod's fault.
        metrics.reviewDuration.observe(Number(process.hrtime.bigint() - start) / 1e9);
        countReview('error');
        log.error({ err: unexpected }, 'request failed');
        if (!res.headersSent) sendJson(res, 500, JSON.stringify({ error: 'internal error' }));
        else res.destroy();
      }
    });
  };
}

/** express for everything but POST /mutate: probes, metrics, and JSON 404s for anything else. */
function createApp(options: AppOptions): express.Express {
  const { metrics, log } = options;
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });
  app.get('/readyz', (_req, res) => {
    const ready = options.isReady() && !options.isClosing();
    res.status(ready ? 200 : 503).type('text/plain').send(ready ? 'ok\n' : 'not ready\n');
  });
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.use((req, res) => {
    res.status(404).json({ error: `no route ${req.method} ${req.path}` });
  });
  app.use((err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    log.error({ err }, 'request failed');
    res.status(500).json({ error: 'internal error' });
  });
  return app;
}

/** The HTTPS server's request listener. */
export function createHandler(options: AppOptions): RequestListener {
  const mutate = mutateHandler(options);
  const app = createApp(options);
  return (req, res) => {
    if (options.isClosing()) res.setHeader('Connection', 'close');
    if (req.method === 'POST' && pathOf(req.url) === '/mutate') mutate(req, res);
    else app(req, res);
  };
}
