// The webhook's request handling. POST /mutate, the hot path the API server calls for every pod,
// is answered by a plain node:http handler (a review is one route with one body: express's router
// and request wrapping cost more than the decision itself); GET /healthz, /readyz, /metrics and
// every other request go to an express app. Decisions are made by review(); this file reads
// bodies, decides which reviews are answered and when, writes answers, logs one line per review
// and counts.
//
// Reviews are answered from a queue, small bodies before large ones, so that a few huge pods never
// hold up the ordinary ones. A review that cannot be answered within the API server's timeout, or
// that arrives while the reviews or body bytes in flight are at their cap, is shed: answered at
// once as allowed without a patch, with a warning, from its uid alone (found in the first bytes of
// the body, where the API server writes it), so shedding costs no parsing.
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import { parseDurationMs } from '../config/duration.ts';
import type { PromuxConfig } from '../config/types.ts';
import type { EffectiveLimits } from './limits.ts';
import { REVIEW_RESULTS } from './metrics.ts';
import type { ReviewResult, ShedReason, WebhookMetrics } from './metrics.ts';
import { ADMISSION_API_VERSION, answerJson, review, shedReview } from './review.ts';
import type { Injector, SkipReason } from './review.ts';
import { RateLimitedLog } from './rate-limited-log.ts';

export interface AppOptions {
  config: PromuxConfig;
  inject: Injector;
  metrics: WebhookMetrics;
  log: Logger;
  /** True once real TLS material is served. */
  isReady: () => boolean;
  /** True once shutdown began: /readyz fails and answers ask clients to close the connection. */
  isClosing: () => boolean;
  limits: Pick<EffectiveLimits, 'maxReviewsInFlight' | 'maxRequestBytesInFlight' | 'requestTimeoutMs'>;
  /**
   * When a review most likely reached the process (ms, performance.now()): earlier than its headers
   * were read when its connection was accepted just for it, or when the event loop runs late.
   */
  arrivedAt?: (req: IncomingMessage, seen: number) => number;
  /** Told of every review shed, with why, and whether its body was small (an ordinary pod). */
  onShed?: (reason: ShedReason, small: boolean) => void;
  /** Milliseconds on a monotonic clock. */
  now?: () => number;
}

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/** The API server itself refuses requests over 3 MiB, so no genuine review is larger. */
export const MAX_REVIEW_BYTES = 3 * 1024 * 1024;
/** A webhook's timeoutSeconds defaults to 10 in admissionregistration.k8s.io/v1. */
const DEFAULT_REVIEW_TIMEOUT_MS = 10_000;
/**
 * The longest a review waits to be answered, whatever the API server's timeout: past it the webhook
 * is overloaded, and answering at once without a patch beats making every pod creation wait.
 */
export const MAX_QUEUE_MS = 250;
/** Bodies up to this size are answered before any larger one (a pod is usually a few KiB). */
const SMALL_BODY_BYTES = 64 * 1024;
/** A shed review's uid is looked for in this many first bytes of its body; only these are kept. */
const HEAD_BYTES = 4096;
/** The API server writes `{"kind":..,"apiVersion":..,"request":{"uid":"..."`: the uid comes first. */
const UID_IN_HEAD = /"request"\s*:\s*\{\s*"uid"\s*:\s*"([^"\\]{1,256})"/;

/** The uid of a review from the first bytes of its body, without parsing the rest. */
export function uidInHead(head: string): string | undefined {
  return UID_IN_HEAD.exec(head)?.[1];
}

/**
 * How long the API server waits for this review: its `timeout` query parameter (a Go duration, the
 * webhook's timeoutSeconds or what is left of the request's own deadline, rounded up to a second).
 */
export function reviewTimeoutMs(url: string | undefined): number {
  const query = url?.indexOf('?') ?? -1;
  if (query === -1) return DEFAULT_REVIEW_TIMEOUT_MS;
  const given = new URLSearchParams(url!.slice(query + 1)).get('timeout');
  const ms = given === null ? undefined : parseDurationMs(given);
  return ms === undefined || ms <= 0 ? DEFAULT_REVIEW_TIMEOUT_MS : ms;
}

/**
 * The time by which a review must be answered. The API server rounds what is left of its timeout
 * up to a whole second, so up to a second of the timeout may be gone before the request is sent:
 * the answer must be out a second early (half the timeout when that is 2 s or less).
 */
export function reviewBudgetMs(timeoutMs: number): number {
  return timeoutMs - Math.min(1000, timeoutMs / 2);
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

/** One review from its arrival to its answer. */
interface Review {
  req: IncomingMessage;
  res: ServerResponse;
  /** When its headers were read (ms, on the `now` clock). */
  start: number;
  /** When it must be answered by: the API server's timeout from when it most likely arrived. */
  deadline: number;
  timeoutMs: number;
  chunks: Buffer[];
  /** Body bytes received so far (all of them, held or not). */
  size: number;
  /** Bytes counted against the cap (held, or reserved by Content-Length). */
  held: number;
  /** Once the body is dropped (the review is shed), its first HEAD_BYTES as latin1, to find the uid in. */
  head: string;
  /** Set once the review is shed: the rest of its body is read and dropped. */
  shed?: ShedReason;
  state: 'reading' | 'queued' | 'answered';
  timer?: NodeJS.Timeout;
}

function mutateHandler(options: AppOptions): RequestListener {
  const { config, inject, metrics, log, limits } = options;
  const now = options.now ?? (() => performance.now());
  // Counter children made once: inc() on a child skips hashing the label set on every review.
  const reviewsBy = new Map(REVIEW_RESULTS.map((result) => [result, metrics.reviews.labels({ result })]));
  const countReview = (result: ReviewResult): void => reviewsBy.get(result)!.inc();
  const skipsBy = new Map<SkipReason, Counter.Internal>();
  const countSkip = (reason: SkipReason): void => {
    let child = skipsBy.get(reason);
    if (child === undefined) skipsBy.set(reason, (child = metrics.skips.labels({ reason })));
    child.inc();
  };
  const limitLog = new RateLimitedLog(log);

  let inFlight = 0;
  let bytesInFlight = 0;
  metrics.inFlight.reviews = () => inFlight;
  metrics.inFlight.requestBytes = () => bytesInFlight;
  const small: Review[] = [];
  const large: Review[] = [];
  let scheduled = false;
  // Measured costs of answering (EWMA), to shed at once a review that would wait past its deadline.
  let smallMs = 0.2;
  let largeMsPerByte = 30 / MAX_REVIEW_BYTES;

  const seconds = (r: Review): number => (now() - r.start) / 1000;

  // The API server calls the same URL (with its timeout) for every review: read once.
  let lastUrl: string | undefined;
  let lastTimeoutMs = 0;
  const timeoutOf = (url: string | undefined): number => {
    if (url !== lastUrl) {
      lastUrl = url;
      lastTimeoutMs = Math.min(reviewTimeoutMs(url), limits.requestTimeoutMs);
    }
    return lastTimeoutMs;
  };

  /** The first HEAD_BYTES of the body received so far, as latin1. */
  const headOf = (r: Review): string => {
    let head = r.head;
    for (const chunk of r.chunks) {
      if (head.length >= HEAD_BYTES) break;
      head += chunk.toString('latin1', 0, Math.min(chunk.length, HEAD_BYTES - head.length));
    }
    return head;
  };

  const release = (r: Review): void => {
    if (r.timer !== undefined) clearTimeout(r.timer);
    if (r.state !== 'answered') inFlight -= 1;
    r.state = 'answered';
    bytesInFlight -= r.held;
    r.held = 0;
    r.chunks = [];
  };

  const reject = (r: Review, status: number, error: string): void => {
    release(r);
    metrics.reviewDuration.observe(seconds(r));
    countReview('rejected');
    log.warn({ status, error }, 'rejected a request that is not an AdmissionReview');
    sendJson(r.res, status, JSON.stringify({ error }));
  };

  const shedDetail = (r: Review, reason: ShedReason): string => {
    switch (reason) {
      case 'deadline': return `the webhook could not answer within the API server's timeout (${r.timeoutMs / 1000}s)`;
      case 'reviews-in-flight': return `the webhook was full (${limits.maxReviewsInFlight} reviews in flight)`;
      case 'bytes-in-flight': return `the webhook was full (${limits.maxRequestBytesInFlight} request bytes in flight)`;
      case 'overload': return `the webhook was overloaded (the review would have waited over ${MAX_QUEUE_MS} ms)`;
    }
  };

  /** Answers a shed review from its uid: at once when the uid is known, else when the body ends. */
  const shed = (r: Review, reason: ShedReason, bodyDone: boolean): void => {
    if (r.state === 'answered') return;
    r.shed ??= reason;
    // Keep only the head; the rest is read and dropped.
    r.head = headOf(r);
    bytesInFlight -= r.held;
    r.held = 0;
    r.chunks = [];
    const uid = uidInHead(r.head);
    if (uid === undefined && !bodyDone) return;
    release(r);
    metrics.reviewDuration.observe(seconds(r));
    metrics.shed.inc({ reason: r.shed });
    options.onShed?.(r.shed, r.size <= SMALL_BODY_BYTES);
    const detail = shedDetail(r, r.shed);
    limitLog.note(r.shed, `shedding reviews: ${detail}; each is allowed without a patch`);
    if (uid === undefined) {
      countReview('rejected');
      log.warn({ shed: r.shed }, `${detail}, and the request's uid is not in its first ${HEAD_BYTES} bytes`);
      sendJson(r.res, 503, JSON.stringify({ error: `${detail}; no uid in the first ${HEAD_BYTES} bytes to answer with` }));
      return;
    }
    countReview('shed');
    log.warn({ uid, decision: 'shed', reason: detail, shed: r.shed, durationMs: Math.round(seconds(r) * 1e6) / 1e3 }, 'review');
    // The body may still be arriving: close the connection after the answer rather than read it all.
    if (!bodyDone) r.res.setHeader('Connection', 'close');
    sendJson(r.res, 200, shedReview(uid, detail));
  };

  const decideAndSend = (r: Review, body: Buffer): void => {
    let parsed: unknown;
    try {
      parsed = r.size === 0 ? undefined : JSON.parse(body.toString('utf8'));
    } catch (err) {
      reject(r, 400, `request body is not JSON: ${(err as Error).message}`);
      return;
    }
    const outcome = review(parsed, config, inject);
    if (!outcome.ok) {
      reject(r, outcome.status, outcome.error);
      return;
    }
    const elapsed = seconds(r);
    const { summary } = outcome;
    const line = { ...summary, durationMs: Math.round(elapsed * 1e6) / 1e3 };
    if (summary.decision === 'error') log.error(line, 'review');
    else log.info(line, 'review');
    // Counted once logged: a review whose log line fails is answered (and counted) as an error.
    metrics.reviewDuration.observe(elapsed);
    countReview(summary.decision);
    if (summary.decision === 'injected') metrics.injections.inc();
    if (summary.skipCode !== undefined) countSkip(summary.skipCode);
    sendJson(r.res, 200, answerJson(outcome.review));
  };

  /** Answers a review whose body is complete, never throwing. */
  const answer = (r: Review): void => {
    const body = r.chunks.length === 1 ? r.chunks[0]! : Buffer.concat(r.chunks, r.size);
    release(r);
    try {
      decideAndSend(r, body);
    } catch (unexpected) {
      // review() answers every AdmissionReview itself; this is a bug, not the pod's fault: fail open.
      metrics.reviewDuration.observe(seconds(r));
      countReview('error');
      log.error({ err: unexpected }, 'request failed');
      const uid = uidInHead(body.toString('latin1', 0, HEAD_BYTES));
      if (r.res.headersSent) r.res.destroy();
      else if (uid !== undefined) sendJson(r.res, 200, JSON.stringify({ apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response: { uid, allowed: true } }));
      else sendJson(r.res, 500, JSON.stringify({ error: 'internal error' }));
    }
  };

  /** Why a review that would start at `at` must be shed instead, or undefined when it may wait. */
  const tooLate = (r: Review, at: number): ShedReason | undefined => {
    if (at >= r.deadline) return 'deadline';
    if (at - r.start > MAX_QUEUE_MS) return 'overload';
    return undefined;
  };

  /** Answers one queued review (or sheds it when it waited too long), never throwing. */
  const run = (r: Review): void => {
    const late = tooLate(r, now());
    if (late !== undefined) {
      shed(r, late, true);
      return;
    }
    const began = now();
    answer(r);
    const took = now() - began;
    if (r.size <= SMALL_BODY_BYTES) smallMs += (took - smallMs) / 16;
    else largeMsPerByte += (took / r.size - largeMsPerByte) / 4;
  };

  // Small reviews all at once; large ones one per turn of the event loop, so that reviews and probes
  // arriving meanwhile are read (and small ones answered) between two large ones.
  const drain = (): void => {
    scheduled = false;
    while (small.length > 0) run(small.shift()!);
    const next = large.shift();
    if (next !== undefined) run(next);
    if (small.length + large.length > 0) schedule();
  };
  const schedule = (): void => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(drain);
  };

  /** Queues a review whose body is complete, or sheds it at once when it would wait past its deadline. */
  const enqueue = (r: Review): void => {
    if (r.timer !== undefined) clearTimeout(r.timer);
    const isSmall = r.size <= SMALL_BODY_BYTES;
    let wait = small.length * smallMs;
    if (!isSmall) wait += large.reduce((sum, q) => sum + q.size, 0) * largeMsPerByte + r.size * largeMsPerByte;
    else wait += smallMs;
    const late = tooLate(r, now() + wait);
    if (late !== undefined) {
      shed(r, late, true);
      return;
    }
    r.state = 'queued';
    (isSmall ? small : large).push(r);
    schedule();
  };

  return (req, res) => {
    const start = now();
    const arrived = options.arrivedAt?.(req, start) ?? start;
    const timeoutMs = timeoutOf(req.url);
    const r: Review = {
      req, res, start, deadline: arrived + reviewBudgetMs(timeoutMs), timeoutMs,
      chunks: [], size: 0, held: 0, head: '', state: 'reading',
    };
    inFlight += 1;
    const declared = Number(req.headers['content-length']);
    if (declared > MAX_REVIEW_BYTES) {
      reject(r, 413, `request body over ${MAX_REVIEW_BYTES} bytes`);
      return;
    }
    if (inFlight > limits.maxReviewsInFlight) r.shed = 'reviews-in-flight';
    else if (declared > 0) {
      if (bytesInFlight + declared > limits.maxRequestBytesInFlight) r.shed = 'bytes-in-flight';
      else {
        r.held = declared;
        bytesInFlight += declared;
      }
    }
    // Not answered by its deadline while its body is still arriving: shed (nobody waits any longer).
    // Whole milliseconds (rounded up: never before the deadline): Node keeps one list per distinct
    // duration, so reviews arriving together share one rather than each making (and, cleared,
    // removing) a list of its own in the timers' heap.
    r.timer = setTimeout(() => shed(r, 'deadline', false), Math.max(0, Math.ceil(r.deadline - now())));
    r.timer.unref();
    req.on('data', (chunk: Buffer) => {
      if (r.state === 'answered') return;
      r.size += chunk.length;
      if (r.size > MAX_REVIEW_BYTES) {
        reject(r, 413, `request body over ${MAX_REVIEW_BYTES} bytes`);
        return;
      }
      r.chunks.push(chunk);
      if (r.shed !== undefined) {
        shed(r, r.shed, false);
        return;
      }
      if (r.size > r.held) {
        // No Content-Length (chunked), or more than it said: count as it comes.
        const more = r.size - r.held;
        if (bytesInFlight + more > limits.maxRequestBytesInFlight) {
          shed(r, 'bytes-in-flight', false);
          return;
        }
        bytesInFlight += more;
        r.held = r.size;
      }
    });
    req.on('error', (err) => {
      if (r.state === 'reading') reject(r, 400, `reading the request body failed: ${err.message}`);
    });
    req.on('end', () => {
      if (r.state !== 'reading') return;
      if (r.shed !== undefined) shed(r, r.shed, true);
      else enqueue(r);
    });
    // The client went away before its answer: nothing to answer.
    res.on('close', () => {
      if (r.state === 'reading') release(r);
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
