// The command line of `promux sidecar` and `promux proxy`, both drop-in replacements of tools with
// snake_case flags: short flags, long snake_case names, their kebab-case spellings, --name=value,
// and each flag also from the environment (PROMUX_<NAME>, then the names the original tool read).
// Pure: argv and the environment in, values out. Hand-written rather than commander: the sidecar
// loads nothing it can avoid. Node built-ins only.

import { parseBytes, parseDurationMs } from './config/duration.ts';

/** What a mode's flags read to: --help, or its options. */
export type FlagsOf<O> = { help: true } | { help: false; options: O };

export class FlagError extends Error {
  override name = 'FlagError';
}

export interface FlagSpec {
  /** The long name, snake_case. */
  name: string;
  short?: string;
  /** Other long names (the original tool's). */
  aliases?: string[];
  /** Repeatable; each value may also be a comma-separated list. */
  list?: boolean;
  /** Takes no value: given means "true" (--name=false also works). */
  boolean?: boolean;
  /** Variables read after PROMUX_<NAME>, in order (the original tool's names). */
  env?: string[];
  value: string;
  help: string;
  defaultText: string;
}

/** A flag's value and where it came from, for error messages: "--port", "PORT". */
export interface FlagValue {
  text: string;
  source: string;
}

export function envNames(spec: FlagSpec): string[] {
  return [`PROMUX_${spec.name.toUpperCase()}`, ...(spec.env ?? [])];
}

/** The usage lines of the flags: spelling, then the help, default and variables. */
export function flagRows(flags: readonly FlagSpec[]): string[] {
  return flags.flatMap((f) => {
    const dflt = f.defaultText === '' ? '' : ` (default ${f.defaultText})`;
    const short = f.short === undefined ? '    ' : `-${f.short}, `;
    const value = f.boolean === true ? '' : ` <${f.value}>`;
    const aliases = (f.aliases ?? []).map((a) => `, --${a}`).join('');
    const env = f.env === undefined ? '' : `; also ${f.env.join(', ')}`;
    return [`  ${short}--${f.name}${aliases}${value}`, `        ${f.help}${dflt}${env}`];
  });
}

/** Values given for each flag name, command line only. `positional` says where a bare argument belongs. */
function scanArgv(flags: readonly FlagSpec[], argv: readonly string[], positional: string): Map<string, string[]> {
  const byLong = new Map(flags.flatMap((f) => [f.name, ...(f.aliases ?? [])].map((n) => [n, f] as const)));
  const byShort = new Map(flags.filter((f) => f.short !== undefined).map((f) => [f.short, f]));
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
      throw new FlagError(`unexpected argument "${arg}" (${positional})`);
    }
    let value = inline;
    if (value === undefined && spec.boolean === true) value = 'true';
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

/**
 * A lookup of each flag's value: command line first, then PROMUX_<NAME> and the flag's other
 * variables, then the default.
 */
export function readFlags(
  flags: readonly FlagSpec[], argv: readonly string[], env: Readonly<Record<string, string | undefined>>, positional: string,
): (name: string) => FlagValue {
  const values = scanArgv(flags, argv, positional);
  return (name) => {
    const spec = flags.find((f) => f.name === name)!;
    const given = values.get(name);
    if (given !== undefined) return { text: given.join(','), source: `--${name}` };
    for (const variable of envNames(spec)) {
      const fromEnv = env[variable];
      if (fromEnv !== undefined) return { text: fromEnv, source: variable };
    }
    return { text: spec.defaultText, source: `--${name}` };
  };
}

export function parsePort(value: FlagValue, min = 0): number {
  const port = Number(value.text);
  if (!/^\d+$/.test(value.text.trim()) || port < min || port > 65535) {
    throw new FlagError(`${value.source}: "${value.text}" is not a port (${min}-65535)`);
  }
  return port;
}

/** A boolean flag's value: true, false (or 1, 0). */
export function parseBoolean(value: FlagValue): boolean {
  const text = value.text.trim().toLowerCase();
  if (text === 'true' || text === '1') return true;
  if (text === 'false' || text === '0' || text === '') return false;
  throw new FlagError(`${value.source}: "${value.text}" is not true or false`);
}

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label name promux adds to every series: a Prometheus label name, not reserved, none of `reserved`. */
export function parseLabelName(value: FlagValue, reserved: readonly string[]): string {
  if (!LABEL_NAME.test(value.text) || value.text.startsWith('__')) {
    throw new FlagError(`${value.source}: "${value.text}" is not a Prometheus label name`);
  }
  if (reserved.includes(value.text)) {
    throw new FlagError(`${value.source}: "${value.text}" is a label of promux's own metrics; choose another name`);
  }
  return value.text;
}

export function parsePositiveDuration(value: FlagValue): number {
  const ms = parseDurationMs(value.text);
  if (ms === undefined || ms <= 0) throw new FlagError(`${value.source}: "${value.text}" is not a positive duration (e.g. 10s)`);
  return ms;
}

export function parsePositiveSize(value: FlagValue): number {
  const bytes = parseBytes(value.text);
  if (bytes === undefined || bytes <= 0) throw new FlagError(`${value.source}: "${value.text}" is not a positive size (e.g. 32MiB)`);
  return bytes;
}

/** The path served. */
export function parseEndpoint(value: FlagValue): string {
  if (!value.text.startsWith('/')) throw new FlagError(`${value.source}: "${value.text}" must start with "/"`);
  return value.text;
}

export function parseAddress(value: FlagValue): string {
  if (value.text.trim() === '') throw new FlagError(`${value.source}: empty address`);
  return value.text.trim();
}
