// Decisions taken from the scraper's request headers. Pure functions.

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

/** The Accept header takes OpenMetrics 1.0 (what the merger writes): unversioned or version=1.0.0, q > 0. */
export function acceptsOpenMetrics(accept: string | undefined): boolean {
  if (accept === undefined) return false;
  return parseList(accept).some((r) => {
    if (r.type !== 'application/openmetrics-text' || r.q <= 0) return false;
    const version = r.params.get('version');
    return version === undefined || version === '1.0.0';
  });
}

/** The Accept-Encoding header takes gzip (named or through "*") with q > 0. */
export function acceptsGzip(acceptEncoding: string | undefined): boolean {
  if (acceptEncoding === undefined) return false;
  const ranges = parseList(acceptEncoding);
  const gzip = ranges.find((r) => r.type === 'gzip' || r.type === 'x-gzip');
  if (gzip !== undefined) return gzip.q > 0;
  return ranges.some((r) => r.type === '*' && r.q > 0);
}
