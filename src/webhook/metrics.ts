// The webhook's own metrics, in a registry of its own (nothing global), all prefixed promux_webhook_.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ReviewDecision } from './review.ts';

const PREFIX = 'promux_webhook_';

export interface WebhookMetrics {
  registry: Registry;
  reviews: Counter<'result'>;
  reviewDuration: Histogram;
  injections: Counter;
  skips: Counter<'reason'>;
  tlsReloads: Counter<'outcome'>;
  certificateExpiry: Gauge;
  shed: Counter<'reason'>;
  connectionsClosed: Counter<'reason'>;
  /** The caps in force, by limit (set once at start). */
  limits: Gauge<'limit'>;
  /** Read by the gauges of what is in flight at each scrape; set by whoever holds the figure. */
  inFlight: { connections: () => number; reviews: () => number; requestBytes: () => number };
}

/**
 * `result` of reviews_total: how reviews were answered; "shed" is allowed without a patch because
 * the webhook could not answer in time or was full; "rejected" is a 4xx (not an AdmissionReview, too big).
 */
export type ReviewResult = ReviewDecision | 'shed' | 'rejected';
export const REVIEW_RESULTS: readonly ReviewResult[] = ['injected', 'skipped', 'error', 'shed', 'rejected'];
/**
 * Why a review was shed: it could not be answered within the API server's timeout (deadline) or
 * within the webhook's own bound on waiting (overload), or a cap on what the webhook holds was reached.
 */
export type ShedReason = 'deadline' | 'overload' | 'reviews-in-flight' | 'bytes-in-flight';
export const SHED_REASONS: readonly ShedReason[] = ['deadline', 'overload', 'reviews-in-flight', 'bytes-in-flight'];
/**
 * Why the webhook closed a connection: refused at the connection cap or while overloaded, evicted
 * (idle, closed to make room for a new one), or too slow (TLS handshake, request headers or body);
 * bad-request: unparsable HTTP.
 */
export type CloseReason = 'limit' | 'overload' | 'evicted' | 'handshake-timeout' | 'request-timeout' | 'bad-request';
export const CLOSE_REASONS: readonly CloseReason[] = ['limit', 'overload', 'evicted', 'handshake-timeout', 'request-timeout', 'bad-request'];

export function createMetrics(): WebhookMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: PREFIX });
  const reviews = new Counter({
    name: `${PREFIX}reviews_total`,
    help: 'Admission reviews answered, by result (injected, skipped; error and shed: allowed without a patch; rejected: 4xx).',
    labelNames: ['result'],
    registers: [registry],
  });
  for (const result of REVIEW_RESULTS) reviews.inc({ result }, 0);
  const shed = new Counter({
    name: `${PREFIX}shed_reviews_total`,
    help: 'Reviews answered at once, allowed without a patch, by reason: deadline (could not be answered within '
      + "the API server's timeout), overload (would have waited over 250 ms), reviews-in-flight or bytes-in-flight "
      + '(that cap was reached).',
    labelNames: ['reason'],
    registers: [registry],
  });
  for (const reason of SHED_REASONS) shed.inc({ reason }, 0);
  const connectionsClosed = new Counter({
    name: `${PREFIX}connections_closed_total`,
    help: 'Connections the webhook closed, by reason: limit (refused at the connection cap), overload (refused while '
      + 'the event loop ran late), evicted (idle, closed to make room), handshake-timeout, request-timeout (headers '
      + 'or body too slow), bad-request.',
    labelNames: ['reason'],
    registers: [registry],
  });
  for (const reason of CLOSE_REASONS) connectionsClosed.inc({ reason }, 0);
  const inFlight: WebhookMetrics['inFlight'] = { connections: () => 0, reviews: () => 0, requestBytes: () => 0 };
  const gauges: [string, string, () => number][] = [
    ['connections', 'Open connections on the webhook port.', () => inFlight.connections()],
    ['reviews_in_flight', 'Reviews being read or waiting to be answered.', () => inFlight.reviews()],
    ['request_bytes_in_flight', 'Request body bytes held by reviews in flight.', () => inFlight.requestBytes()],
  ];
  for (const [name, help, read] of gauges) {
    new Gauge({
      name: `${PREFIX}${name}`, help, registers: [registry],
      collect() {
        this.set(read());
      },
    });
  }
  return {
    registry,
    reviews,
    reviewDuration: new Histogram({
      name: `${PREFIX}review_duration_seconds`,
      help: 'Time to answer a request to /mutate: reading its body, deciding, logging (rejected requests included).',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    injections: new Counter({
      name: `${PREFIX}injections_total`,
      help: 'Pods the sidecar was injected into (dry runs included).',
      registers: [registry],
    }),
    skips: new Counter({
      name: `${PREFIX}skips_total`,
      help: 'Reviews answered without a patch, by reason code.',
      labelNames: ['reason'],
      registers: [registry],
    }),
    tlsReloads: new Counter({
      name: `${PREFIX}tls_reloads_total`,
      help: 'Serving certificate changes picked up (success) or refused and the old one kept (failure).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    certificateExpiry: new Gauge({
      name: `${PREFIX}tls_certificate_expiry_timestamp_seconds`,
      help: 'Expiry (notAfter) of the serving certificate in use, in seconds since the epoch.',
      registers: [registry],
    }),
    shed,
    connectionsClosed,
    limits: new Gauge({
      name: `${PREFIX}limit`,
      help: 'Caps in force: connections, reviews_in_flight, request_bytes_in_flight (sized from memory_bytes).',
      labelNames: ['limit'],
      registers: [registry],
    }),
    inFlight,
  };
}
