// Contract between the sidecar's HTTP side (fetching targets, serving) and the exposition merger.

import type { ExpositionError, ParsedBody } from './parse.ts';

export type ExpositionFormat = 'text' | 'openmetrics';

/** One target as fetched on this scrape. */
export interface FetchedTarget {
  container: string;
  /** The map entry without its container (target-map's endpointOf): "8080", "https:8443/custom". */
  endpoint: string;
  /** The response body, already gunzipped; undefined when the fetch failed. */
  body?: Buffer;
  /** The target's Content-Type header (decides text 0.0.4 or OpenMetrics parsing). */
  contentType?: string;
  /**
   * What a BodyParser made of `body` while it arrived (set only with `body`, and only when the
   * Content-Type named the format: see formatOfContentType); without it the merge parses `body`.
   * mergeTargets consumes it (and clears it): its records are reused after that merge.
   */
  parsed?: ParsedBody | ExpositionError;
  /** Why the fetch failed (timeout, refused, too large, HTTP 500, ...); the target is down. */
  error?: string;
  /** Wall time of the fetch. */
  durationSeconds: number;
}

export interface MergeOptions {
  /** Label added to every series ("container"); an existing one is kept as exported_<label>. */
  containerLabel: string;
  /** The scraper's Accept allows OpenMetrics 1.0. */
  acceptOpenMetrics: boolean;
  /**
   * A previous MergeOutput's `buffer` whose body nobody reads any more: written into when it fits, so
   * that a scrape does not leave a multi-megabyte buffer behind for the garbage collector.
   */
  reuse?: Buffer;
}

export interface TargetOutcome {
  container: string;
  endpoint: string;
  /** Fetched and parsed; false when the fetch failed or the body did not parse (nothing of it served). */
  up: boolean;
  /** Samples of this target served. */
  samples: number;
  /** Why the target is down. */
  error?: string;
}

export interface MergeOutput {
  /** A view of `buffer`. */
  body: Buffer;
  /** The whole buffer the body was written into, for `MergeOptions.reuse` once the body is sent. */
  buffer: Buffer;
  /** Content-Type of the body: text/plain; version=0.0.4; charset=utf-8, or application/openmetrics-text; version=1.0.0; charset=utf-8 */
  contentType: string;
  format: ExpositionFormat;
  targets: TargetOutcome[];
}
