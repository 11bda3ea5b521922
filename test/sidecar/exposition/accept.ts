// What scrapers ask for, negotiated as the sidecar's server does, for merges in tests.
import type { Accepted } from '../../../src/sidecar/exposition/index.ts';
import { negotiateOutput } from '../../../src/sidecar/negotiate.ts';
import { PROMETHEUS_ACCEPT } from '../helpers.ts';

/** Prometheus 3's default Accept (scrape/scrape.go acceptHeader over config.DefaultScrapeProtocols, UTF-8 names allowed). */
export const PROMETHEUS_3_ACCEPT =
  'application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,' +
  'text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2';

/** Prometheus 2.42 started with --enable-feature=native-histograms (scrape/scrape.go scrapeAcceptHeaderWithProtobuf). */
export const PROMETHEUS_PROTOBUF_ACCEPT =
  'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,' +
  'application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

/** Prometheus 3 with native histograms (PrometheusProto first in scrape_protocols: its range names Prometheus 3's escaping too). */
export const PROMETHEUS_3_PROTOBUF_ACCEPT =
  'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;escaping=allow-utf-8;q=0.6,' +
  PROMETHEUS_3_ACCEPT.replace('*/*;q=0.2', '*/*;q=0.1');

export const ACCEPT = {
  /** curl, or a scraper that takes text 0.0.4 only. */
  text: negotiateOutput('text/plain;version=0.0.4'),
  /** Prometheus 2.42. */
  prometheus2: negotiateOutput(PROMETHEUS_ACCEPT),
  prometheus3: negotiateOutput(PROMETHEUS_3_ACCEPT),
  /** Prometheus 3 with metric_name_validation_scheme: legacy (metric_name_escaping_scheme: underscores). */
  prometheus3Legacy: negotiateOutput(PROMETHEUS_3_ACCEPT.replaceAll('allow-utf-8', 'underscores')),
  /** Prometheus 2.42 with native histograms: no UTF-8 names (escaped with underscores). */
  protobuf: negotiateOutput(PROMETHEUS_PROTOBUF_ACCEPT),
  /** Prometheus 3 with native histograms, UTF-8 names allowed. */
  prometheus3Protobuf: negotiateOutput(PROMETHEUS_3_PROTOBUF_ACCEPT),
  /** A scraper that takes OpenMetrics only, with UTF-8 names. */
  openMetricsOnly: negotiateOutput('application/openmetrics-text;version=1.0.0;escaping=allow-utf-8'),
} satisfies Record<string, Accepted>;
