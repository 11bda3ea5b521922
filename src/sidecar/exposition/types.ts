// Contract between the sidecar's HTTP side (fetching targets, serving) and the exposition merger.

import type { ExpositionError, ParsedBody } from './parse.ts';

export type ExpositionFormat = 'text' | 'openmetrics';

/**
 * How names outside Prometheus' legacy character set are served (the `escaping` parameter of
 * Prometheus 3's Accept header, as prometheus/common model names them): `allow-utf-8` keeps them,
 * quoted; the others rewrite them into legacy names.
 */
export type Escaping = 'allow-utf-8' | 'underscores' | 'dots' | 'values';

/** One format the scraper takes, as promux would answer it. */
export interface OutputFormat {
  format: ExpositionFormat;
  /** Content-Type of the answer: the media type and version the scraper asked for (and its escaping, when it named one). */
  contentType: string;
  escaping: Escaping;
}

/** What the scraper's Accept header takes (see negotiateOutput in negotiate.ts). */
export interface Accepted {
  openMetrics: OutputFormat | undefined;
  /** Set whenever openMetrics is not: a scraper that names no format promux writes gets text 0.0.4. */
  text: OutputFormat | undefined;
  /** Both are taken, text with a higher q. */
  preferText: boolean;
  /** The protobuf exposition (delimited MetricFamily messages) is taken, at any q: answered when a target served it. */
  protobuf: boolean;
  /**
   * How the protobuf answer writes names outside the legacy set: the protobuf range's `escaping`
   * (Prometheus 3 sends its scheme, `allow-utf-8` by default), `underscores` without one (Prometheus 2.x).
   */
  protobufEscaping: Escaping;
  /** Equal for two negotiations that answer alike. */
  key: string;
}

/** Labels promux adds to every series of a target, as [name, value], in order. */
export type TargetLabels = ReadonlyArray<readonly [string, string]>;

/** One target as fetched on this scrape. */
export interface FetchedTarget {
  container: string;
  /** The map entry without its container (target-map's endpointOf): "8080", "https:8443/custom". */
  endpoint: string;
  /**
   * The labels added to the target's series instead of `<containerLabel>="<container>"`: `promux
   * proxy`'s namespace and pod (and container, where the pod's map names one; `container` is then
   * that name, else "").
   */
  labels?: TargetLabels;
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
  /**
   * Label added to every series ("container") of a target without labels of its own; an existing
   * one is kept as exported_<label> (as are existing labels of a target's own label names).
   */
  containerLabel: string;
  /** The formats the scraper takes. */
  accept: Accepted;
}

export interface TargetOutcome {
  container: string;
  endpoint: string;
  /** The target's labels, when it has its own (FetchedTarget.labels). */
  labels?: TargetLabels;
  /** Fetched and parsed; false when the fetch failed or the body did not parse (nothing of it served). */
  up: boolean;
  /** Samples of this target served. */
  samples: number;
  /** Why the target is down. */
  error?: string;
}

/**
 * The answer of one merge, whole (mergeTargets; the protobuf merge). `F`: the formats the merge
 * answers in (text or OpenMetrics; the sidecar's merge: protobuf too).
 */
export interface MergeOutput<F extends string = ExpositionFormat> extends MergeHead<F> {
  body: Buffer;
}

/**
 * The answer of one merge, written as it is read (mergeStreamed): `pieces` gives the body in order, a
 * piece at a time, each written only when it is taken; the targets' bodies are read until the last
 * piece is taken, or until the caller ends it early with `pieces.return()`. Taken once. A piece is
 * never written again once taken: the taker may hand it back with recyclePiece once it is sent.
 */
export interface MergeAnswer extends MergeHead {
  pieces: Generator<Buffer, void, undefined>;
}

/** What a merge tells before its body. */
export interface MergeHead<F extends string = ExpositionFormat> {
  /** Content-Type of the body, one the scraper asked for (see OutputFormat). */
  contentType: string;
  format: F;
  targets: TargetOutcome[];
  /**
   * Why the answer is text though the scraper preferred OpenMetrics and every target answered it:
   * the first family found that breaks OpenMetrics' rules.
   */
  servedAsText?: string;
}

/** What the sidecar's merge (mergeAnyFormat) answers. */
export type AnyMergeOutput = MergeOutput<ExpositionFormat | 'protobuf'>;
