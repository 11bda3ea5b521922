// The express application: POST /mutate, GET /healthz, /readyz, /metrics. Decisions are made by
// review(); this file reads bodies, writes answers, logs one line per review and counts.
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
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
    // Any content type: the API server sends application/json, and anything else fails as JSON anyway.
    express.json({ limit: MAX_REVIEW_BYTES, strict: true, type: () => true }),
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
      metrics.reviews.inc({ result: summary.result });
      if (summary.result === 'injected') metrics.injections.inc();
      if (summary.skipCode !== undefined) metrics.skips.inc({ reason: summary.skipCode });
      const line = { ...summary, durationMs: Math.round(seconds * 1e6) / 1e3 };
      if (summary.result === 'error') log.error(line, 'review');
      else log.info(line, 'review');
      res.json(outcome.review);
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

  // Body-parser errors carry the HTTP status to answer (400 bad JSON, 413 too large, 415 charset).
  app.use((err: unknown, req: TimedRequest, res: Response, _next: NextFunction) => {
    const status = (err as { status?: unknown }).status;
    const clientError = typeof status === 'number' && status >= 400 && status < 500;
    const message = clientError ? bodyErrorMessage(err) : 'internal error';
    if (req.path === '/mutate') {
      metrics.reviews.inc({ result: 'rejected' });
      metrics.reviewDuration.observe(secondsSince(req[START]));
    }
    if (clientError) log.warn({ status, error: message }, 'rejected a request that is not an AdmissionReview');
    else log.error({ err }, 'request failed');
    res.status(clientError ? status : 500).json({ error: message });
  });
  return app;
}

function bodyErrorMessage(err: unknown): string {
  const type = (err as { type?: unknown }).type;
  if (type === 'entity.too.large') return `request body over ${MAX_REVIEW_BYTES} bytes`;
  if (type === 'entity.parse.failed') return `request body is not JSON: ${(err as Error).message}`;
  return (err as Error).message;
}
