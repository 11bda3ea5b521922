// The express application: POST /mutate, GET /healthz, /readyz, /metrics. Decisions are made by
// review(); this file reads bodies, writes answers, logs one line per review and counts.
import express from 'express';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import type { PromuxConfig } from '../config/types.ts';
import type { WebhookMetrics } from './metrics.ts';
import { review } from './review.ts';
import type { Injector } from './review.ts';

/** The API server itself refuses requests over 3 MiB, so no genuine review is larger. */
export const MAX_REVIEW_BYTES = 3 * 1024 * 1024;

export interface AppOptions {
  config: PromuxConfig;
  inject: Injector;
  metrics: WebhookMetrics;
  log: Logger;
  /** True once real TLS material is served. */
  isReady: () => boolean;
  /** True once shutdown began: answers ask clients to close the connection. */
  isClosing: () => boolean;
}

const START = Symbol('reviewStart');
type TimedRequest = Request & { [START]?: bigint };

function secondsSince(start: bigint | undefined): number {
  return start === undefined ? 0 : Number(process.hrtime.bigint() - start) / 1e9;
}

export function createApp(options: AppOptions): express.Express {
  const { config, inject, metrics, log } = options;
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');

  app.use((_req, res, next) => {
    if (options.isClosing()) res.setHeader('Connection', 'close');
    next();
  });

  app.post(
    '/mutate',
    (req: TimedRequest, _res, next) => {
      req[START] = process.hrtime.bigint();
      next();
    },
    jsonBody(MAX_REVIEW_BYTES),
    (req: TimedRequest, res: Response) => {
      const outcome = review(req.body, config, inject);
      const seconds = secondsSince(req[START]);
      metrics.reviewDuration.observe(seconds);
      if (!outcome.ok) {
        metrics.reviews.inc({ result: 'rejected' });
        log.warn({ status: outcome.status, error: outcome.error }, 'rejected a request that is not an AdmissionReview');
        res.status(outcome.status).json({ error: outcome.error });
        return;
      }
      const { summary } = outcome;
      metrics.reviews.inc({ result: summary.decision });
      if (summary.decision === 'injected') metrics.injections.inc();
      if (summary.skipCode !== undefined) metrics.skips.inc({ reason: summary.skipCode });
      const line = { ...summary, durationMs: Math.round(seconds * 1e6) / 1e3 };
      if (summary.decision === 'error') log.error(line, 'review');
      else log.info(line, 'review');
      const payload = JSON.stringify(outcome.review);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
      res.end(payload);
    },
  );

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

  app.use((err: unknown, req: TimedRequest, res: Response, _next: NextFunction) => {
    const status = err instanceof HttpError ? err.status : 500;
    const clientError = status < 500;
    const message = clientError ? (err as Error).message : 'internal error';
    if (req.path === '/mutate') {
      metrics.reviews.inc({ result: clientError ? 'rejected' : 'error' });
      metrics.reviewDuration.observe(secondsSince(req[START]));
    }
    if (clientError) log.warn({ status, error: message }, 'rejected a request that is not an AdmissionReview');
    else log.error({ err }, 'request failed');
    res.status(clientError ? status : 500).json({ error: message });
  });
  return app;
}

class HttpError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/**
 * Reads the body as JSON into req.body (undefined when empty), whatever the content type: the API
 * server sends application/json, and anything else fails as JSON anyway. Smaller than express.json
 * and all a review needs: no charsets (JSON is UTF-8), no compression (the API server sends none).
 */
function jsonBody(limit: number): RequestHandler {
  return (req, _res, next) => {
    const tooLarge = (): HttpError => new HttpError(413, `request body over ${limit} bytes`);
    if (Number(req.headers['content-length']) > limit) {
      next(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      next(err);
    };
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) finish(tooLarge());
      else if (!done) chunks.push(chunk);
    });
    req.on('error', (err) => finish(new HttpError(400, `reading the request body failed: ${err.message}`)));
    req.on('end', () => {
      if (done) return;
      const text = Buffer.concat(chunks, size).toString('utf8');
      try {
        req.body = text === '' ? undefined : JSON.parse(text);
      } catch (err) {
        finish(new HttpError(400, `request body is not JSON: ${(err as Error).message}`));
        return;
      }
      finish();
    });
  };
}
