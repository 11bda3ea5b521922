// Flags of `promux sidecar`, compatible with the original multiplexer sidecar (short flags, long
// snake_case names) plus kebab-case spellings and PROMUX_* environment variables (see
// command-flags.ts). Pure: argv and the environment in, options out.

import {
  FlagError, flagRows, parseAddress, parseEndpoint, parseLabelName, parsePort, parsePositiveDuration, parsePositiveSize,
  readFlags, type FlagSpec, type FlagsOf,
} from '../command-flags.ts';
import { parseDurationMs } from '../config/duration.ts';
import { parseTargetMap, TargetMapError, type Target } from '../target-map.ts';

export interface SidecarOptions {
  /** Targets in map order, excluded containers already removed. */
  targets: Target[];
  listenAddress: string;
  /** Port served; 0 picks a free one (reported in the start log line). */
  port: number;
  endpoint: string;
  containerLabel: string;
  /** 0: scrape on demand; otherwise the background refresh period. */
  scrapeIntervalMs: number;
  scrapeTimeoutMs: number;
  maxTargetBytes: number;
}

export type FlagsResult = FlagsOf<SidecarOptions>;

export { FlagError };

const FLAGS: FlagSpec[] = [
  { name: 'container_to_port_map', short: 'm', list: true, value: 'name:port[/path]', defaultText: '',
    help: '<container>:[https:]<port>[/<path>]; repeatable or comma-separated' },
  { name: 'export_to', short: 'e', value: 'port', defaultText: '13434', help: 'port served (0: any free port)' },
  { name: 'endpoint', short: 'p', value: 'path', defaultText: '/metrics', help: 'path served' },
  { name: 'container_label', short: 'n', value: 'label', defaultText: 'container',
    help: 'label added to every series' },
  { name: 'scrape_interval', short: 'i', value: 'ms|duration', defaultText: '0',
    help: '0: scrape the targets on each request; else (ms, or 15s) refresh a cache in the background' },
  { name: 'exclude_containers', short: 'x', list: true, value: 'names', defaultText: '',
    help: 'containers of the map not to scrape; repeatable or comma-separated' },
  { name: 'scrape_timeout', value: 'duration', defaultText: '10s',
    help: "per-target timeout, lowered below the scraper's own (X-Prometheus-Scrape-Timeout-Seconds)" },
  { name: 'max_target_bytes', value: 'size', defaultText: '32MiB',
    help: 'a target answering more (after gunzip) is marked down' },
  { name: 'listen_address', value: 'address', defaultText: '0.0.0.0', help: 'address to listen on' },
];

export function usage(): string {
  return [
    'Usage: promux sidecar -m <container>:<port>[/<path>] [-m ...] [options]',
    '',
    'Scrapes every container of the pod on 127.0.0.1, adds the container label to every series,',
    'merges the metric families and serves them on one endpoint (plus /healthz and /readyz).',
    '',
    'Options (long names also in kebab-case, e.g. --export-to; each also from the environment as',
    'PROMUX_<NAME>, e.g. PROMUX_EXPORT_TO; flags win over the environment):',
    ...flagRows(FLAGS),
    '  -h, --help',
    '',
  ].join('\n');
}

/** --scrape_interval: a bare integer is milliseconds (the original sidecar's unit), else a duration. */
function parseInterval(text: string, source: string): number {
  const ms = /^\s*\d+\s*$/.test(text) ? Number(text) : parseDurationMs(text);
  if (ms === undefined) throw new FlagError(`${source}: "${text}" is not milliseconds or a duration (e.g. 15s)`);
  return ms;
}

/** Labels promux_target_* and promux_dropped_samples_total carry beside the container label, which it cannot be. */
export const OWN_LABELS = ['endpoint', 'reason'];

export function parseSidecarFlags(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): FlagsResult {
  if (argv.includes('-h') || argv.includes('--help')) return { help: true };
  const get = readFlags(FLAGS, argv, env, 'targets go in -m <container>:<port>');

  const map = get('container_to_port_map');
  let targets: Target[];
  try {
    targets = parseTargetMap(map.text);
  } catch (e) {
    if (e instanceof TargetMapError) throw new FlagError(`${map.source}: ${e.message}`);
    throw e;
  }
  if (targets.length === 0) {
    throw new FlagError('no targets: give at least one -m <container>:<port> (or PROMUX_CONTAINER_TO_PORT_MAP)');
  }
  const excluded = new Set(get('exclude_containers').text.split(',').map((s) => s.trim()).filter((s) => s !== ''));
  targets = targets.filter((t) => !excluded.has(t.container));
  if (targets.length === 0) throw new FlagError('no targets left: --exclude_containers excludes every container of the map');

  const interval = get('scrape_interval');
  return {
    help: false,
    options: {
      targets,
      listenAddress: parseAddress(get('listen_address')),
      port: parsePort(get('export_to')),
      endpoint: parseEndpoint(get('endpoint')),
      containerLabel: parseLabelName(get('container_label'), OWN_LABELS),
      scrapeIntervalMs: parseInterval(interval.text, interval.source),
      scrapeTimeoutMs: parsePositiveDuration(get('scrape_timeout')),
      maxTargetBytes: parsePositiveSize(get('max_target_bytes')),
    },
  };
}
