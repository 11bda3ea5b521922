// promux's own annotations, and the scrape schemes' annotations read the way scrapers read them.
import type { AnnotationScheme } from '../config/types.ts';

export const STATUS_ANNOTATION = 'promux.io/status';
export const TARGETS_ANNOTATION = 'promux.io/targets';
export const EXCLUDE_ANNOTATION = 'promux.io/exclude';
/** Label or annotation: "false" opts a pod out; as an annotation, "true" forces injection. */
export const INJECT_KEY = 'promux.io/inject';
export const DEFAULT_CONTAINER_ANNOTATION = 'kubectl.kubernetes.io/default-container';
/** Per-pod overrides of the sidecar's configured resources (sidecar.resources), one value each. */
export const RESOURCE_ANNOTATIONS = [
  { key: 'promux.io/sidecar-cpu-request', list: 'requests', resource: 'cpu' },
  { key: 'promux.io/sidecar-memory-request', list: 'requests', resource: 'memory' },
  { key: 'promux.io/sidecar-cpu-limit', list: 'limits', resource: 'cpu' },
  { key: 'promux.io/sidecar-memory-limit', list: 'limits', resource: 'memory' },
] as const;

/**
 * An annotation name as Prometheus (and Alloy) turn it into a meta label: every character outside
 * [a-zA-Z0-9_] becomes "_". Names equal after this are one key to the scraper. The mapping keeps
 * the length, which lets a pod's own spelling of a prefix be cut out of any key that matches.
 */
export function sanitizeAnnotationName(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, '_');
}

type KeyRole = 'port' | 'path' | 'scheme' | 'portName' | 'container';

/** One scrape key as the pod spells it: every spelling present (all with the same value). */
export interface SchemeKey {
  keys: string[];
  value: string;
}

/** A scheme's annotations on one pod. */
export interface SchemeAnnotations {
  scheme: AnnotationScheme;
  /** The scrape annotation's value: "true" when any spelling says so (a scrape is asked for). */
  scrape: string;
  /** The pod's spelling of "<prefix>/", taken from its scrape key (e.g. "prometheus.io." ). */
  spelling: string;
  values: Partial<Record<KeyRole, SchemeKey>>;
  /** Query parameters (`param_<name>`), in annotation order; `name` as the scraper sanitizes it. */
  params: { key: string; name: string; value: string }[];
  /** Spellings of one key that disagree (read only for a scheme asking for a scrape). */
  problems: string[];
}

/** The pod's annotation keys by their sanitized name, in annotation order. */
type KeysByName = Map<string, string[]>;

function keysByName(names: readonly { key: string; sanitized: string }[]): KeysByName {
  const byName: KeysByName = new Map();
  for (const { key, sanitized } of names) {
    const keys = byName.get(sanitized);
    if (keys === undefined) byName.set(sanitized, [key]);
    else keys.push(key);
  }
  return byName;
}

/**
 * Every spelling of the key whose sanitized name is `name` among the pod's annotations, with the first
 * one's value; spellings that disagree are added to `problems` (the engine reports them once it knows
 * the pod is otherwise one it would inject: a pod that promux leaves alone anyway hears nothing of them).
 */
function lookup(
  annotations: Record<string, string>, byName: KeysByName, name: string, problems: string[],
): SchemeKey | undefined {
  const keys = byName.get(name);
  if (keys === undefined) return undefined;
  const value = annotations[keys[0]!]!;
  const other = keys.find((k) => annotations[k] !== value);
  if (other !== undefined) {
    problems.push(
      `annotations ${keys[0]} (${JSON.stringify(value)}) and ${other} (${JSON.stringify(annotations[other])}) ` +
        'are the same key to Prometheus but disagree',
    );
  }
  return { keys, value };
}

const ROLES = ['port', 'path', 'scheme', 'portName', 'container'] as const;

/** A scheme's keys as the scraper names them (sanitized): its scrape key, each configured role's, its param_ prefix. */
interface SchemeNames {
  scrape: string;
  roles: [KeyRole, string][];
  paramPrefix: string;
}

// Schemes are configuration, never changed once loaded: their names are sanitized once, not for every pod.
const schemeNamesCache = new WeakMap<AnnotationScheme, SchemeNames>();

function schemeNames(scheme: AnnotationScheme): SchemeNames {
  let names = schemeNamesCache.get(scheme);
  if (names === undefined) {
    const sanitized = (key: string): string => sanitizeAnnotationName(`${scheme.prefix}/${key}`);
    names = {
      scrape: sanitized(scheme.keys.scrape),
      roles: ROLES.filter((role) => scheme.keys[role] !== '').map((role) => [role, sanitized(scheme.keys[role])]),
      paramPrefix: sanitized(scheme.keys.paramPrefix),
    };
    schemeNamesCache.set(scheme, names);
  }
  return names;
}

/**
 * Annotation keys sanitized before: pods carry mostly the same few keys (prometheus.io/scrape,
 * kubectl.kubernetes.io/default-container, ...), and reading the scrape annotations, a regular
 * expression for each key of each pod, was an eighth of the engine's time in a profile of the webhook.
 * Bounded: emptied when full (a cluster with more distinct keys than this pays the regular expression,
 * as before, and nothing grows without bound).
 */
const sanitizedKeys = new Map<string, string>();
const MAX_SANITIZED_KEYS = 4096;

function sanitizedKey(key: string): string {
  let sanitized = sanitizedKeys.get(key);
  if (sanitized === undefined) {
    if (sanitizedKeys.size >= MAX_SANITIZED_KEYS) sanitizedKeys.clear();
    sanitized = sanitizeAnnotationName(key);
    sanitizedKeys.set(key, sanitized);
  }
  return sanitized;
}

/** The schemes whose scrape annotation the pod carries, in configuration order. */
export function readSchemes(
  annotations: Record<string, string>,
  schemes: readonly AnnotationScheme[],
): SchemeAnnotations[] {
  const found: SchemeAnnotations[] = [];
  // Each key sanitized once, not once per lookup: this runs for every pod the webhook sees.
  const names = Object.keys(annotations).map((key) => ({ key, sanitized: sanitizedKey(key) }));
  const byName = keysByName(names);
  for (const scheme of schemes) {
    const own = schemeNames(scheme);
    const problems: string[] = [];
    const scrape = lookup(annotations, byName, own.scrape, problems);
    if (scrape === undefined) continue;
    const scrapeKey = scrape.keys[0]!;
    const spelling = scrapeKey.slice(0, scrapeKey.length - scheme.keys.scrape.length);
    // A scheme none of whose spellings says "true" does not ask for a scrape, whatever else its
    // annotations say: its other keys are never read, as the chart's matchConditions never send
    // such a pod. One that does (even among spellings that disagree) is read whole.
    if (!scrape.keys.some((k) => annotations[k] === 'true')) {
      found.push({ scheme, scrape: scrape.value, spelling, values: {}, params: [], problems: [] });
      continue;
    }
    const values: SchemeAnnotations['values'] = {};
    for (const [role, name] of own.roles) {
      const value = lookup(annotations, byName, name, problems);
      if (value !== undefined) values[role] = value;
    }
    const paramPrefix = own.paramPrefix;
    const params = names
      .filter(({ sanitized }) => sanitized.startsWith(paramPrefix) && sanitized.length > paramPrefix.length)
      .map(({ key, sanitized }) => ({ key, name: sanitized.slice(paramPrefix.length), value: annotations[key]! }));
    found.push({ scheme, scrape: 'true', spelling, values, params, problems });
  }
  return found;
}

/** "prometheus.io/scrape" as the pod spells it, for messages. */
export function scrapeKeyOf(s: SchemeAnnotations): string {
  return `${s.spelling}${s.scheme.keys.scrape}`;
}
