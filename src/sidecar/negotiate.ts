// Decisions taken from the scraper's request headers. Pure functions.

import { PROTOBUF_MEDIA_TYPE } from './exposition/content-type.ts';
import type { Accepted, Escaping, ExpositionFormat, OutputFormat } from './exposition/types.ts';

/**
 * The per-target timeout of one scrape. Prometheus sends its own timeout in
 * X-Prometheus-Scrape-Timeout-Seconds; the merged answer must reach it before that, so the targets
 * get 10% less (at least 0.5 s less, to merge and send; yet never less than half of it).
 */
export function targetTimeoutMs(configuredMs: number, scraperTimeoutHeader: string | undefined): number {
  if (scraperTimeoutHeader === undefined) return configuredMs;
  const scraperMs = Number(scraperTimeoutHeader) * 1000;
  if (!Number.isFinite(scraperMs) || scraperMs <= 0) return configuredMs;
  const margin = Math.min(Math.max(500, scraperMs * 0.1), scraperMs / 2);
  return Math.max(1, Math.round(Math.min(configuredMs, scraperMs - margin)));
}

interface MediaRange {
  type: string;
  params: Map<string, string>;
  q: number;
}

function parseList(header: string): MediaRange[] {
  return header.split(',').map((part) => {
    const [type = '', ...rawParams] = part.split(';');
    const params = new Map<string, string>();
    for (const p of rawParams) {
      const eq = p.indexOf('=');
      if (eq === -1) continue;
      params.set(p.slice(0, eq).trim().toLowerCase(), p.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1'));
    }
    const q = params.has('q') ? Number(params.get('q')) : 1;
    return { type: type.trim().toLowerCase(), params, q: Number.isFinite(q) ? q : 0 };
  });
}

const ESCAPINGS: readonly string[] = ['allow-utf-8', 'underscores', 'dots', 'values'] satisfies Escaping[];
/** The versions promux writes, per format; the first is what an unversioned range gets. */
const VERSIONS: Record<ExpositionFormat, readonly string[]> = { text: ['0.0.4', '1.0.0'], openmetrics: ['1.0.0', '0.0.1'] };
const MEDIA_TYPES: Record<ExpositionFormat, string> = { text: 'text/plain', openmetrics: 'application/openmetrics-text' };

interface Candidate {
  output: OutputFormat;
  q: number;
}

/** The range's `escaping` when it names one promux knows. */
function namedEscaping(range: MediaRange | undefined): Escaping | undefined {
  const named = range?.params.get('escaping');
  return named !== undefined && ESCAPINGS.includes(named) ? named as Escaping : undefined;
}

/** How names are written without the `escaping` parameter (prometheus/common's default). */
const DEFAULT_ESCAPING: Escaping = 'underscores';

function escapingOf(range: MediaRange | undefined): Escaping {
  return namedEscaping(range) ?? DEFAULT_ESCAPING;
}

function candidate(format: ExpositionFormat, range: MediaRange): Candidate | undefined {
  const version = range.params.get('version') ?? VERSIONS[format][0]!;
  if (!VERSIONS[format].includes(version)) return undefined;
  const escaping = namedEscaping(range);
  return {
    q: range.q,
    output: {
      format,
      contentType: `${MEDIA_TYPES[format]}; version=${version}; charset=utf-8${escaping === undefined ? '' : `; escaping=${escaping}`}`,
      escaping: escaping ?? DEFAULT_ESCAPING,
    },
  };
}

/**
 * The formats promux may answer a scraper with, from its Accept header, as Prometheus 3 asks
 * (`application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,...,text/plain;version=0.0.4;q=0.3,*\/*;q=0.2`)
 * and as expfmt answers: per format the range with the highest q (the first of equals) decides the
 * version and the escaping of names; unknown versions and escapings are ignored; `*\/*` and `text/*`
 * take text 0.0.4; a header naming nothing promux writes (or none at all) gets text 0.0.4.
 */
export function negotiateOutput(accept: string | undefined): Accepted {
  let openMetrics: Candidate | undefined;
  let text: Candidate | undefined;
  let protobuf: MediaRange | undefined;
  for (const range of parseList(accept ?? '')) {
    if (range.q <= 0) continue;
    if (range.type === PROTOBUF_MEDIA_TYPE && range.params.get('proto') === 'io.prometheus.client.MetricFamily' &&
      range.params.get('encoding') === 'delimited' && (protobuf === undefined || range.q > protobuf.q)) protobuf = range;
    if (range.type === 'application/openmetrics-text') {
      const c = candidate('openmetrics', range);
      if (c !== undefined && (openMetrics === undefined || c.q > openMetrics.q)) openMetrics = c;
    } else if (range.type === 'text/plain' || range.type === 'text/*' || range.type === '*/*') {
      const c = candidate('text', range.type === 'text/plain' ? range : { ...range, params: new Map() });
      if (c !== undefined && (text === undefined || c.q > text.q)) text = c;
    }
  }
  if (openMetrics === undefined && text === undefined) text = candidate('text', { type: 'text/plain', params: new Map(), q: 1 });
  const preferText = openMetrics !== undefined && text !== undefined && text.q > openMetrics.q;
  const protobufEscaping = escapingOf(protobuf);
  return {
    openMetrics: openMetrics?.output,
    text: text?.output,
    preferText,
    protobuf: protobuf !== undefined,
    protobufEscaping,
    key: `${openMetrics?.output.contentType}|${text?.output.contentType}|${preferText}|${protobuf !== undefined && protobufEscaping}`,
  };
}

/** The Accept-Encoding header takes gzip (named or through "*") with q > 0. */
export function acceptsGzip(acceptEncoding: string | undefined): boolean {
  if (acceptEncoding === undefined) return false;
  const ranges = parseList(acceptEncoding);
  const gzip = ranges.find((r) => r.type === 'gzip' || r.type === 'x-gzip');
  if (gzip !== undefined) return gzip.q > 0;
  return ranges.some((r) => r.type === '*' && r.q > 0);
}
