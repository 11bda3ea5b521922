// Reads the YAML config file over the built-in defaults. Every key is checked: an unknown key or a
// wrong type fails with the file and the key's path, so a typo never silently falls back to a default.
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { isObject, jsonSyntaxProblem, looksLikeJson } from '../json.ts';
import { fileErrorReason } from '../usage.ts';
import { defaultConfig } from './defaults.ts';
import { parseBytes, parseDurationMs } from './duration.ts';
import { parseKubernetesVersion } from './kubernetes-version.ts';
import { limitsBelowRequests, quantityExpectation } from './quantity.ts';
import type { ResourceName } from './quantity.ts';
import type { PromuxConfig } from './types.ts';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Check = (value: unknown) => string | undefined;

const string: Check = (v) => (typeof v === 'string' ? undefined : 'a string');
const nonEmpty: Check = (v) => (typeof v === 'string' && v.trim() !== '' ? undefined : 'a non-empty string');
const oneOf = (...allowed: string[]): Check => (v) =>
  typeof v === 'string' && allowed.includes(v) ? undefined : `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`;
const intIn = (min: number, max: number): Check => (v) =>
  Number.isInteger(v) && (v as number) >= min && (v as number) <= max ? undefined : `an integer from ${min} to ${max}`;
const duration: Check = (v) =>
  typeof v === 'string' && parseDurationMs(v) !== undefined ? undefined : 'a duration such as "10s" or "500ms"';
const bytes: Check = (v) => (typeof v === 'string' && parseBytes(v) !== undefined ? undefined : 'a size such as "32MiB"');
const dnsLabel: Check = (v) =>
  typeof v === 'string' && /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(v) ? undefined : 'a DNS label (lower case, digits, "-")';
const portName: Check = (v) =>
  typeof v === 'string' && /^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$/.test(v) && /[a-z]/.test(v) && !v.includes('--')
    ? undefined
    : 'a port name (IANA_SVC_NAME: at most 15 lower-case letters, digits and "-")';
const labelName: Check = (v) =>
  typeof v === 'string' && /^[a-zA-Z_][a-zA-Z0-9_]*$/.test(v) && !v.startsWith('__') && v !== 'endpoint' && v !== 'reason'
    ? undefined
    : 'a Prometheus label name other than endpoint and reason (promux\'s own metrics use those)';
const cpu: Check = (v) => quantityExpectation('cpu', v);
const memory: Check = (v) => quantityExpectation('memory', v);
const MAX_ID = 2147483647;
const uid: Check = (v) =>
  v === null || (Number.isInteger(v) && (v as number) >= 1 && (v as number) <= MAX_ID)
    ? undefined
    : `an integer from 1 to ${MAX_ID} (never 0: the sidecar does not run as root), or null to leave it to the platform`;
const gid: Check = (v) =>
  v === null || (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= MAX_ID)
    ? undefined
    : `an integer from 0 to ${MAX_ID}, or null to leave it to the platform`;
const secretName: Check = (v) =>
  typeof v === 'string' && v.length <= 253 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(v)
    ? undefined
    : 'a Secret name (lower case, digits, "-" and ".")';

const kubernetesVersion: Check = (v) =>
  typeof v === 'string' && (v === '' || parseKubernetesVersion(v) !== undefined)
    ? undefined
    : 'a Kubernetes version as a quoted string such as "1.31" ("" for unknown)';

interface Shape {
  [key: string]: Check | Shape | ListOf;
}
interface ListOf {
  listOf: Check | Shape;
}

const resources: Shape = { cpu, memory };
const schemeShape: Shape = {
  name: nonEmpty,
  prefix: nonEmpty,
  keys: {
    scrape: nonEmpty, port: nonEmpty, path: nonEmpty, scheme: nonEmpty, paramPrefix: nonEmpty,
    portName: string, container: string,
  },
};

const SHAPE: Shape = {
  sidecar: {
    image: nonEmpty,
    imagePullPolicy: oneOf('Always', 'IfNotPresent', 'Never'),
    imagePullSecrets: { listOf: secretName },
    containerName: dnsLabel,
    port: intIn(1, 65535),
    portName,
    containerLabel: labelName,
    scrapeTimeout: duration,
    scrapeInterval: duration,
    maxTargetBytes: bytes,
    resources: { requests: resources, limits: resources },
    runAsUser: uid,
    runAsGroup: gid,
    nativeSidecar: oneOf('never', 'always', 'auto'),
  },
  kubernetesVersion: kubernetesVersion,
  excludeContainers: { listOf: nonEmpty },
  minContainers: intIn(1, 1000),
  schemes: { listOf: schemeShape },
};

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** Problems in `value` against `shape`, each as "path: expected X, got Y". Optional keys: all of them. */
function check(value: unknown, shape: Check | Shape | ListOf, path: string, out: string[]): void {
  if (typeof shape === 'function') {
    const expected = shape(value);
    if (expected !== undefined) out.push(`${path}: expected ${expected}, got ${describe(value)}`);
    return;
  }
  if ('listOf' in shape && typeof shape.listOf !== 'undefined' && Object.keys(shape).length === 1) {
    if (!Array.isArray(value)) {
      out.push(`${path}: expected a list, got ${describe(value)}`);
      return;
    }
    value.forEach((item, i) => check(item, (shape as ListOf).listOf, `${path}[${i}]`, out));
    return;
  }
  if (!isObject(value)) {
    out.push(`${path || '(top level)'}: expected a mapping, got ${describe(value)}`);
    return;
  }
  for (const [key, v] of Object.entries(value)) {
    const sub = (shape as Shape)[key];
    const at = path === '' ? key : `${path}.${key}`;
    if (sub === undefined) {
      out.push(`${at}: unknown key (known here: ${Object.keys(shape).join(', ')})`);
      continue;
    }
    check(v, sub, at, out);
  }
}

/** Deep merge: mappings merge key by key, lists and scalars replace. */
function merge(base: unknown, over: unknown): unknown {
  if (!isObject(base) || !isObject(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = merge(base[k], v);
  return out;
}

/** Merges an already-parsed override into the defaults; `source` names it in errors. */
export function configFrom(override: unknown, source: string): PromuxConfig {
  if (override === null || override === undefined) return defaultConfig();
  const problems: string[] = [];
  check(override, SHAPE, '', problems);
  if (isObject(override) && Array.isArray(override.schemes)) {
    override.schemes.forEach((s, i) => {
      // A scheme in the file stands alone (lists replace), so each must be complete.
      if (isObject(s)) {
        for (const k of ['name', 'prefix', 'keys']) if (!(k in s)) problems.push(`schemes[${i}].${k}: missing`);
        if (isObject(s.keys))
          for (const k of Object.keys(schemeShape.keys as Shape))
            if (!(k in s.keys) && k !== 'portName' && k !== 'container') problems.push(`schemes[${i}].keys.${k}: missing`);
      }
    });
  }
  if (problems.length > 0) throw invalid(source, problems);
  const merged = merge(defaultConfig(), override) as PromuxConfig;
  merged.schemes = merged.schemes.map((s) => ({
    ...s,
    keys: { ...s.keys, portName: s.keys.portName ?? '', container: s.keys.container ?? '' },
  }));
  const belowRequest = limitsBelowRequests(merged.sidecar.resources);
  if (belowRequest.length > 0) throw invalid(source, belowRequest.map((name) => limitProblem(name, merged, override)));
  return merged;
}

function invalid(source: string, problems: string[]): ConfigError {
  return new ConfigError(`${source}: invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
}

/** A limit below its request, naming both keys and saying which value is the built-in default. */
function limitProblem(name: ResourceName, merged: PromuxConfig, override: unknown): string {
  const { requests, limits } = merged.sidecar.resources;
  const given = (list: 'requests' | 'limits'): boolean => {
    const sidecar = isObject(override) ? override.sidecar : undefined;
    const resources = isObject(sidecar) ? sidecar.resources : undefined;
    const values = isObject(resources) ? resources[list] : undefined;
    return isObject(values) && name in values;
  };
  const value = (list: 'requests' | 'limits', v: string): string => (given(list) ? v : `${v} (the built-in default)`);
  return `sidecar.resources.limits.${name}: ${value('limits', limits[name]!)} is below sidecar.resources.requests.${name} ` +
    `${value('requests', requests[name]!)}: the API server would refuse every pod promux injects`;
}

/** The defaults, overridden by the YAML file when one is given. */
export function loadConfig(file?: string): PromuxConfig {
  if (file === undefined) return defaultConfig();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${file}: cannot read: ${fileErrorReason(err)}`);
  }
  // JSON is YAML, but a JSON file's mistakes are best told in JSON's terms.
  const json = file.toLowerCase().endsWith('.json') || looksLikeJson(text) ? jsonSyntaxProblem(text) : undefined;
  if (json !== undefined) throw new ConfigError(`${file}: not valid JSON: ${json}`);
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(`${file}: not valid YAML: ${doc.errors[0]!.message}`);
  }
  return configFrom(doc.toJS(), file);
}
