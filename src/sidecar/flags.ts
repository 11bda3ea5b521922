// Flags of `promux sidecar`, compatible with the original multiplexer sidecar (short flags, long
// snake_case names) plus kebab-case spellings and PROMUX_* environment variables. Pure: argv and the
// environment in, options out. Hand-written rather than commander: this mode loads nothing it can avoid.

import { parseBytes, parseDurationMs } from '../config/duration.ts';
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

export type FlagsResult = { help: true } | { help: false; options: SidecarOptions };

export class FlagError extends Error {
  override name = 'FlagError';
}

interface FlagSpec {
  name: string;
  short?: string;
  /** Repeatable; each value may also be a comma-separated list. */
  list?: boolean;
  value: string;
  help: string;
  defaultText: string;
}

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

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function usage(): string {
  const rows = FLAGS.flatMap((f) => {
    const dflt = f.defaultText === '' ? '' : ` (default ${f.defaultText})`;
    const short = f.short === undefined ? '    ' : `-${f.short}, `;
    return [`  ${short}--${f.name} <${f.value}>`, `        ${f.help}${dflt}`];
  });
  return [
    'Usage: promux sidecar -m <container>:<port>[/<path>] [-m ...] [options]',
    '',
    'Scrapes every container of the pod on 127.0.0.1, adds the container label to every series,',
    'merges the metric families and serves them on one endpoint (plus /healthz and /readyz).',
    '',
    'Options (long names also in kebab-case, e.g. --export-to; each also from the environment as',
    'PROMUX_<NAME>, e.g. PROMUX_EXPORT_TO; flags win over the environment):',
    ...rows,
    '  -h, --help',
    '',
  ].join('\n');
}

function envName(spec: FlagSpec): string {
  return `PROMUX_${spec.name.toUpperCase()}`;
}

/** Values given for each flag name, command line only. */
function scanArgv(argv: readonly string[]): Map<string, string[]> {
  const byLong = new Map(FLAGS.map((f) => [f.name, f]));
  const byShort = new Map(FLAGS.filter((f) => f.short !== undefined).map((f) => [f.short, f]));
  const values = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    let spec: FlagSpec | undefined;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = (eq === -1 ? arg.slice(2) : arg.slice(2, eq)).replaceAll('-', '_');
      spec = byLong.get(name);
      if (spec === undefined) throw new FlagError(`unknown option '${eq === -1 ? arg : arg.slice(0, eq)}'`);
      if (eq !== -1) inline = arg.slice(eq + 1);
    } else if (arg.startsWith('-') && arg.length > 1) {
      spec = byShort.get(arg[1]!);
      if (spec === undefined) throw new FlagError(`unknown option '-${arg[1]}'`);
      if (arg.length > 2) inline = arg[2] === '=' ? arg.slice(3) : arg.slice(2);
    } else {
      throw new FlagError(`unexpected argument "${arg}" (targets go in -m <container>:<port>)`);
    }
    let value = inline;
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new FlagError(`--${spec.name} needs a value (${spec.value})`);
    }
    const seen = values.get(spec.name) ?? [];
    if (seen.length > 0 && spec.list !== true) throw new FlagError(`--${spec.name} given twice`);
    values.set(spec.name, [...seen, value]);
  }
  return values;
}

/** A lookup of each flag's value: command line first, then PROMUX_<NAME>, then the default. */
function valueLookup(argv: readonly string[], env: Readonly<Record<string, string | undefined>>) {
  const values = scanArgv(argv);
  return (name: string): { text: string; source: string } => {
    const spec = FLAGS.find((f) => f.name === name)!;
    const given = values.get(name);
    if (given !== undefined) return { text: given.join(','), source: `--${name}` };
    const fromEnv = env[envName(spec)];
    if (fromEnv !== undefined) return { text: fromEnv, source: envName(spec) };
    return { text: spec.defaultText, source: `--${name}` };
  };
}

function parsePort(text: string, source: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text.trim()) || port > 65535) throw new FlagError(`${source}: "${text}" is not a port (0-65535)`);
  return port;
}

/** --scrape_interval: a bare integer is milliseconds (the original sidecar's unit), else a duration. */
function parseInterval(text: string, source: string): number {
  const ms = /^\s*\d+\s*$/.test(text) ? Number(text) : parseDurationMs(text);
  if (ms === undefined) throw new FlagError(`${source}: "${text}" is not milliseconds or a duration (e.g. 15s)`);
  return ms;
}

/** Labels promux_target_* and promux_dropped_samples_total carry beside the container label. */
const OWN_LABELS = ['endpoint', 'reason'];

export function parseSidecarFlags(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): FlagsResult {
  if (argv.includes('-h') || argv.includes('--help')) return { help: true };
  const get = valueLookup(argv, env);

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

  const endpoint = get('endpoint');
  if (!endpoint.text.startsWith('/')) throw new FlagError(`${endpoint.source}: "${endpoint.text}" must start with "/"`);

  const label = get('container_label');
  if (!LABEL_NAME.test(label.text) || label.text.startsWith('__')) {
    throw new FlagError(`${label.source}: "${label.text}" is not a Prometheus label name`);
  }
  if (OWN_LABELS.includes(label.text)) {
    throw new FlagError(`${label.source}: "${label.text}" is a label of promux's own metrics; choose another name`);
  }

  const timeout = get('scrape_timeout');
  const scrapeTimeoutMs = parseDurationMs(timeout.text);
  if (scrapeTimeoutMs === undefined || scrapeTimeoutMs <= 0) {
    throw new FlagError(`${timeout.source}: "${timeout.text}" is not a positive duration (e.g. 10s)`);
  }

  const maxBytes = get('max_target_bytes');
  const maxTargetBytes = parseBytes(maxBytes.text);
  if (maxTargetBytes === undefined || maxTargetBytes <= 0) {
    throw new FlagError(`${maxBytes.source}: "${maxBytes.text}" is not a positive size (e.g. 32MiB)`);
  }

  const listen = get('listen_address');
  if (listen.text.trim() === '') throw new FlagError(`${listen.source}: empty address`);

  const port = get('export_to');
  const interval = get('scrape_interval');
  return {
    help: false,
    options: {
      targets,
      listenAddress: listen.text.trim(),
      port: parsePort(port.text, port.source),
      endpoint: endpoint.text,
      containerLabel: label.text,
      scrapeIntervalMs: parseInterval(interval.text, interval.source),
      scrapeTimeoutMs,
      maxTargetBytes,
    },
  };
}
