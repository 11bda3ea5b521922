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
}

/** `result` of reviews_total: how reviews were answered; "rejected" is a 4xx (not an AdmissionReview, too big). */
export type ReviewResult = ReviewDecision | 'rejected';
export const REVIEW_RESULTS: readonly ReviewResult[] = ['injected', 'skipped', 'error', 'rejected'];

export function createMetrics(): WebhookMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: PREFIX });
  const reviews = new Counter({
    name: `${PREFIX}reviews_total`,
    help: 'Admission reviews answered, by result (injected, skipped, error: allowed without a patch, rejected: 4xx).',
    labelNames: ['result'],
    registers: [registry],
  });
  for (const result of REVIEW_RESULTS) reviews.inc({ result }, 0);
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
  };
}
