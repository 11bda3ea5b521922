// Which container ports the sidecar scrapes. In order: the explicit `promux.io/targets`; else, per
// container, its port named metrics, http-metrics or *-metrics; else, for the container that
// declares the port a scrape annotation names (kubectl.kubernetes.io/default-container, then the
// first container, where none declares it), that port. A container has at most one target.
import { DEFAULT_CONTAINER_ANNOTATION, TARGETS_ANNOTATION } from './annotations.ts';
import type { SchemeAnnotations, SchemeKey } from './annotations.ts';
import { PodError } from './pod.ts';
import type { ContainerView, PodView } from './pod.ts';
import { DEFAULT_METRICS_PATH, parseTargetMap, TargetMapError } from '../target-map.ts';
import type { Target } from '../target-map.ts';

export interface Derivation {
  targets: Target[];
  /** Whether the targets came from `promux.io/targets` rather than ports and scrape annotations. */
  explicit: boolean;
  warnings: string[];
}

/** What a scheme's path, scheme and param_* annotations ask of the target they apply to. */
interface ScrapeOptions {
  path: string | undefined;
  scheme: Target['scheme'] | undefined;
  query: string;
}

function isMetricsPortName(name: string | undefined): boolean {
  return name !== undefined && (name === 'metrics' || name === 'http-metrics' || name.endsWith('-metrics'));
}

function first(key: SchemeKey): string {
  return key.keys[0]!;
}

/** encodeURIComponent, which throws on lone UTF-16 surrogates: a PodError naming the annotation. */
function encode(text: string, key: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    throw new PodError(`annotation ${key} is not valid Unicode text`);
  }
}

function scrapeOptions(s: SchemeAnnotations): ScrapeOptions {
  const { path, scheme } = s.values;
  if (scheme !== undefined && scheme.value !== 'http' && scheme.value !== 'https') {
    throw new PodError(`annotation ${first(scheme)} is ${JSON.stringify(scheme.value)}, not http or https`);
  }
  let normalizedPath: string | undefined;
  if (path !== undefined && path.value.trim() !== '') {
    // Prometheus adds the leading slash itself and percent-encodes what a request line cannot carry;
    // so does the injector (and commas, the target map's separator), so that pathProblem() holds.
    const withSlash = path.value.startsWith('/') ? path.value : `/${path.value}`;
    normalizedPath = withSlash.replace(/[^\x21-\x2b\x2d-\x7e]/gu, (c) => encode(c, first(path)));
  }
  const query = s.params.map((p) => `${encode(p.name, p.key)}=${encode(p.value, p.key)}`).join('&');
  return { path: normalizedPath, scheme: scheme?.value as Target['scheme'] | undefined, query };
}

function hasOptions(o: ScrapeOptions): boolean {
  return o.path !== undefined || o.scheme !== undefined || o.query !== '';
}

function applyOptions(target: Target, o: ScrapeOptions): Target {
  const path = o.path ?? target.path;
  const query = o.query === '' ? '' : `${path.includes('?') ? '&' : '?'}${o.query}`;
  return { ...target, path: `${path}${query}`, scheme: o.scheme ?? target.scheme };
}

function parsePort(key: SchemeKey): number {
  const port = Number(key.value);
  if (!/^\d+$/.test(key.value) || port < 1 || port > 65535) {
    throw new PodError(`annotation ${first(key)} is ${JSON.stringify(key.value)}, not a port number`);
  }
  return port;
}

function defaultContainer(view: PodView, warnings: string[]): ContainerView {
  const named = view.annotations[DEFAULT_CONTAINER_ANNOTATION];
  if (named !== undefined) {
    const found = view.running.find((c) => c.name === named);
    if (found !== undefined) return found;
    warnings.push(
      `${DEFAULT_CONTAINER_ANNOTATION} names "${named}", which is not a running container; using the first container`,
    );
  }
  return view.running[0]!;
}

interface Endpoint {
  /** The annotation that named it, for messages. */
  from: string;
  container: ContainerView;
  port: number;
}

/** The container and port a scheme's port annotations point at; undefined when they name none. */
function resolveEndpoint(view: PodView, s: SchemeAnnotations, warnings: string[]): Endpoint | undefined {
  const { port, portName, container } = s.values;
  let owner: ContainerView | undefined;
  if (container !== undefined) {
    owner = view.running.find((c) => c.name === container.value);
    if (owner === undefined) {
      warnings.push(
        `annotation ${first(container)} names "${container.value}", which is not a running container; ignored`,
      );
      return undefined;
    }
  }
  if (port !== undefined) {
    const number = parsePort(port);
    owner ??= view.running.find((c) => c.ports.some((p) => p.containerPort === number));
    owner ??= defaultContainer(view, warnings);
    return { from: first(port), container: owner, port: number };
  }
  if (portName !== undefined) {
    for (const c of owner === undefined ? view.running : [owner]) {
      const declared = c.ports.find((p) => p.name === portName.value);
      if (declared !== undefined) return { from: first(portName), container: c, port: declared.containerPort };
    }
    warnings.push(
      `annotation ${first(portName)} names port "${portName.value}", which no running container declares; ignored`,
    );
  }
  return undefined;
}

function explicitTargets(
  view: PodView,
  text: string,
  active: SchemeAnnotations[],
  excluded: Set<string>,
): Derivation {
  let listed: Target[];
  try {
    listed = parseTargetMap(text);
  } catch (err) {
    if (err instanceof TargetMapError) throw new PodError(`annotation ${TARGETS_ANNOTATION}: ${err.message}`);
    throw err;
  }
  const warnings: string[] = [];
  for (const t of listed) {
    if (!view.running.some((c) => c.name === t.container)) {
      throw new PodError(
        `annotation ${TARGETS_ANNOTATION} names container "${t.container}", which is not a running container`,
      );
    }
    if (excluded.has(t.container)) {
      warnings.push(`${TARGETS_ANNOTATION} names the excluded container "${t.container}"; it is not scraped`);
    }
  }
  const ignored = active.flatMap((s) => s.params.map((p) => p.key));
  if (ignored.length > 0) {
    const named = ignored.length > 3 ? `${ignored.slice(0, 3).join(', ')} and ${ignored.length - 3} more` : ignored.join(', ');
    warnings.push(`${named} ${ignored.length === 1 ? 'is' : 'are'} not applied to ${TARGETS_ANNOTATION}; put the query in the target's path`);
  }
  return { targets: listed.filter((t) => !excluded.has(t.container)), explicit: true, warnings };
}

export function deriveTargets(view: PodView, active: SchemeAnnotations[], excluded: Set<string>): Derivation {
  const explicit = view.annotations[TARGETS_ANNOTATION];
  if (explicit !== undefined) return explicitTargets(view, explicit, active, excluded);

  const warnings: string[] = [];
  const byContainer = new Map<string, Target>();
  const fromNamedPort = new Set<string>();
  for (const c of view.running) {
    if (excluded.has(c.name)) continue;
    const [chosen, ...others] = c.ports.filter((p) => isMetricsPortName(p.name));
    if (chosen === undefined) continue;
    const scheme = chosen.name === 'https-metrics' ? 'https' : 'http';
    byContainer.set(c.name, { container: c.name, port: chosen.containerPort, path: DEFAULT_METRICS_PATH, scheme });
    fromNamedPort.add(c.name);
    for (const o of others) {
      warnings.push(`container "${c.name}": port ${o.name} (${o.containerPort}) is not scraped; its port ${chosen.name} is`);
    }
  }

  // A scheme's path, scheme and param_* apply to the target of the port it annotates; a scheme
  // with no port annotation applied them to every port it scraped, so they go to every target.
  const optionsApplied = new Set<string>();
  const apply = (name: string, o: ScrapeOptions): void => {
    if (optionsApplied.has(name) || !fromNamedPort.has(name)) return;
    byContainer.set(name, applyOptions(byContainer.get(name)!, o));
    optionsApplied.add(name);
  };
  for (const s of active) {
    const options = scrapeOptions(s);
    const endpoint = resolveEndpoint(view, s, warnings);
    if (endpoint === undefined) {
      if (hasOptions(options)) for (const name of fromNamedPort) apply(name, options);
      continue;
    }
    const name = endpoint.container.name;
    if (excluded.has(name)) {
      warnings.push(
        `annotation ${endpoint.from} points at port ${endpoint.port} of the excluded container "${name}"; not scraped`,
      );
      continue;
    }
    const existing = byContainer.get(name);
    if (existing === undefined) {
      const base: Target = { container: name, port: endpoint.port, path: DEFAULT_METRICS_PATH, scheme: 'http' };
      byContainer.set(name, applyOptions(base, options));
      optionsApplied.add(name);
    } else if (existing.port === endpoint.port) {
      apply(name, options);
    } else {
      warnings.push(
        `annotation ${endpoint.from} points at port ${endpoint.port} of container "${name}", ` +
          `which is scraped on port ${existing.port} instead (one target per container)`,
      );
    }
  }
  const order = view.running.map((c) => c.name);
  const targets = [...byContainer.values()].sort((a, b) => order.indexOf(a.container) - order.indexOf(b.container));
  return { targets, explicit: false, warnings };
}
