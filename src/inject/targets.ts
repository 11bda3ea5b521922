// Which container endpoints the sidecar scrapes. In order: the explicit `promux.io/targets`; else
// the original multiplexer's map, when promux replaces one; else, per container, its port named
// metrics, http-metrics or *-metrics, and for the container that declares the port a scrape
// annotation names (kubectl.kubernetes.io/default-container, then the first container, where none
// declares it) that port. Where Istio's metrics merge moved the prometheus.io annotations, they are
// read from istio-proxy's env instead, and istio-proxy gets the agent's own endpoint.
import { DEFAULT_CONTAINER_ANNOTATION, TARGETS_ANNOTATION } from './annotations.ts';
import type { SchemeAnnotations, SchemeKey } from './annotations.ts';
import { MERGE_ENV, proxyTarget } from './istio.ts';
import type { IstioMerge } from './istio.ts';
import type { Multiplexer } from './multiplexer.ts';
import { AnnotationError } from './pod.ts';
import type { ContainerView, PodView } from './pod.ts';
import { DEFAULT_METRICS_PATH, formatTarget, parseTargetMap, TargetMapError } from '../target-map.ts';
import type { Target } from '../target-map.ts';

export interface DerivationContext {
  /** Istio's metrics merge, with the scheme whose annotations it moved. */
  istio: { merge: IstioMerge; scheme: SchemeAnnotations } | undefined;
  multiplexer: Multiplexer | undefined;
}

export interface Derivation {
  targets: Target[];
  /** annotation: promux.io/targets; multiplexer: the original multiplexer's map; derived: ports and scrape annotations. */
  source: 'annotation' | 'multiplexer' | 'derived';
  warnings: string[];
}

/** What a scheme's path, scheme and param_* annotations ask of the target they apply to. */
export interface ScrapeOptions {
  path: string | undefined;
  scheme: Target['scheme'] | undefined;
  query: string;
}

export function isMetricsPortName(name: string | undefined): boolean {
  return name !== undefined && (name === 'metrics' || name === 'http-metrics' || name.endsWith('-metrics'));
}

function first(key: SchemeKey): string {
  return key.keys[0]!;
}

/** encodeURIComponent, which throws on lone UTF-16 surrogates: an AnnotationError naming the annotation. */
function encode(text: string, key: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    throw new AnnotationError(`annotation ${key} is not valid Unicode text`);
  }
}

/**
 * A path as Prometheus requests it: the leading slash added, and what a request line cannot carry
 * percent-encoded (commas too, the target map's separator), so that pathProblem() holds.
 */
function normalizePath(text: string, from: string): string {
  const withSlash = text.startsWith('/') ? text : `/${text}`;
  return withSlash.replace(/[^\x21-\x2b\x2d-\x7e]/gu, (c) => encode(c, from));
}

export function scrapeOptions(s: SchemeAnnotations): ScrapeOptions {
  const { path, scheme } = s.values;
  if (scheme !== undefined && scheme.value !== 'http' && scheme.value !== 'https') {
    throw new AnnotationError(`annotation ${first(scheme)} is ${JSON.stringify(scheme.value)}, not http or https`);
  }
  const normalizedPath = path !== undefined && path.value.trim() !== '' ? normalizePath(path.value, first(path)) : undefined;
  const query = s.params.map((p) => `${encode(p.name, p.key)}=${encode(p.value, p.key)}`).join('&');
  return { path: normalizedPath, scheme: scheme?.value as Target['scheme'] | undefined, query };
}

function hasOptions(o: ScrapeOptions): boolean {
  return o.path !== undefined || o.scheme !== undefined || o.query !== '';
}

export function applyOptions(target: Target, o: ScrapeOptions): Target {
  const path = o.path ?? target.path;
  const query = o.query === '' ? '' : `${path.includes('?') ? '&' : '?'}${o.query}`;
  return { ...target, path: `${path}${query}`, scheme: o.scheme ?? target.scheme };
}

function parsePort(key: SchemeKey): number {
  const port = Number(key.value);
  if (!/^\d+$/.test(key.value) || port < 1 || port > 65535) {
    throw new AnnotationError(`annotation ${first(key)} is ${JSON.stringify(key.value)}, not a port number`);
  }
  return port;
}

function defaultContainer(view: PodView, candidates: ContainerView[], warnings: string[]): ContainerView {
  const named = view.annotations[DEFAULT_CONTAINER_ANNOTATION];
  if (named !== undefined) {
    const found = candidates.find((c) => c.name === named);
    if (found !== undefined) return found;
    warnings.push(
      `${DEFAULT_CONTAINER_ANNOTATION} names "${named}", which is not a running container; using the first container`,
    );
  }
  return candidates[0]!;
}

export interface Endpoint {
  /** What named it, for messages. */
  from: string;
  container: ContainerView;
  port: number;
  options: ScrapeOptions;
}

/** The container that serves `port`: the one declaring it, else the default container. */
function ownerOf(view: PodView, candidates: ContainerView[], port: number, warnings: string[]): ContainerView {
  return candidates.find((c) => c.ports.some((p) => p.containerPort === port)) ?? defaultContainer(view, candidates, warnings);
}

/** The container endpoints a scheme's port annotations point at (none when they name none). */
export function resolveEndpoints(
  view: PodView, candidates: ContainerView[], s: SchemeAnnotations, options: ScrapeOptions, warnings: string[],
): Endpoint[] {
  const { port, portName, container } = s.values;
  let owner: ContainerView | undefined;
  if (container !== undefined) {
    owner = candidates.find((c) => c.name === container.value);
    if (owner === undefined) {
      warnings.push(
        `annotation ${first(container)} names "${container.value}", which is not a running container; ignored`,
      );
      return [];
    }
  }
  if (port !== undefined) {
    const number = parsePort(port);
    owner ??= ownerOf(view, candidates, number, warnings);
    return [{ from: `annotation ${first(port)}`, container: owner, port: number, options }];
  }
  if (portName !== undefined) {
    for (const c of owner === undefined ? candidates : [owner]) {
      const declared = c.ports.find((p) => p.name === portName.value);
      if (declared !== undefined) return [{ from: `annotation ${first(portName)}`, container: c, port: declared.containerPort, options }];
    }
    warnings.push(
      `annotation ${first(portName)} names port "${portName.value}", which no running container declares; ignored`,
    );
  }
  return [];
}

/** The app endpoints Istio's merge moved into istio-proxy's env, with the scheme's other options. */
function mergedEndpoints(
  view: PodView, candidates: ContainerView[], merge: IstioMerge, options: ScrapeOptions, warnings: string[],
): Endpoint[] {
  const from = `${MERGE_ENV} (istio-proxy's env)`;
  return merge.app.map((e) => ({
    from,
    container: ownerOf(view, candidates, e.port, warnings),
    port: e.port,
    options: { ...options, path: normalizePath(e.path, from) },
  }));
}

function paramsWarning(active: SchemeAnnotations[], where: string): string[] {
  const ignored = active.flatMap((s) => s.params.map((p) => p.key));
  if (ignored.length === 0) return [];
  const named = ignored.length > 3 ? `${ignored.slice(0, 3).join(', ')} and ${ignored.length - 3} more` : ignored.join(', ');
  return [`${named} ${ignored.length === 1 ? 'is' : 'are'} not applied to ${where}; put the query in the target's path`];
}

/** The targets of a `promux.io/targets` annotation; an AnnotationError naming it when they cannot be read. */
export function parseTargetsAnnotation(text: string): Target[] {
  try {
    return parseTargetMap(text);
  } catch (err) {
    if (err instanceof TargetMapError) throw new AnnotationError(`annotation ${TARGETS_ANNOTATION}: ${err.message}`);
    throw err;
  }
}

function explicitTargets(
  view: PodView,
  text: string,
  active: SchemeAnnotations[],
  excluded: Set<string>,
  multiplexer: Multiplexer | undefined,
): Derivation {
  const listed = parseTargetsAnnotation(text);
  const warnings: string[] = [];
  for (const t of listed) {
    if (t.container === multiplexer?.container.name) {
      throw new AnnotationError(
        `annotation ${TARGETS_ANNOTATION} names container "${t.container}", the original multiplexer sidecar, which promux replaces`,
      );
    }
    if (!view.running.some((c) => c.name === t.container)) {
      throw new AnnotationError(
        `annotation ${TARGETS_ANNOTATION} names container "${t.container}", which is not a running container`,
      );
    }
    if (excluded.has(t.container)) {
      warnings.push(`${TARGETS_ANNOTATION} names the excluded container "${t.container}"; it is not scraped`);
    }
  }
  warnings.push(...paramsWarning(active, TARGETS_ANNOTATION));
  return { targets: listed.filter((t) => !excluded.has(t.container)), source: 'annotation', warnings };
}

function adoptedTargets(multiplexer: Multiplexer, active: SchemeAnnotations[], excluded: Set<string>): Derivation {
  const warnings: string[] = [];
  const name = multiplexer.container.name;
  const ownExclusions = new Set(multiplexer.excluded);
  const targets = multiplexer.targets.filter((t) => {
    if (t.container === name) {
      warnings.push(`the original multiplexer's map names the multiplexer itself ("${formatTarget(t)}"); not scraped`);
      return false;
    }
    if (ownExclusions.has(t.container)) {
      warnings.push(
        `the original multiplexer's -x excludes "${t.container}", which it scraped all the same (it never applied -x); ` +
          'promux does not scrape it',
      );
      return false;
    }
    if (excluded.has(t.container)) {
      warnings.push(`the original multiplexer's map names the excluded container "${t.container}"; it is not scraped`);
      return false;
    }
    return true;
  });
  warnings.push(...paramsWarning(active, 'the original multiplexer\'s map'));
  return { targets, source: 'multiplexer', warnings };
}

interface Placed {
  target: Target;
  /** A metrics-named port: one per container, and the annotated port of that container only when it is this one. */
  named: boolean;
  optionsApplied: boolean;
}

function derivedTargets(view: PodView, active: SchemeAnnotations[], excluded: Set<string>, ctx: DerivationContext): Derivation {
  const warnings: string[] = [];
  const candidates = view.running;
  const placed: Placed[] = [];
  for (const c of candidates) {
    if (excluded.has(c.name)) continue;
    const [chosen, ...others] = c.ports.filter((p) => isMetricsPortName(p.name));
    if (chosen === undefined) continue;
    const scheme = chosen.name === 'https-metrics' ? 'https' : 'http';
    placed.push({ target: { container: c.name, port: chosen.containerPort, path: DEFAULT_METRICS_PATH, scheme }, named: true, optionsApplied: false });
    for (const o of others) {
      warnings.push(`container "${c.name}": port ${o.name} (${o.containerPort}) is not scraped; its port ${chosen.name} is`);
    }
  }
  const namedOf = (name: string): Placed | undefined => placed.find((p) => p.named && p.target.container === name);

  // A scheme's path, scheme and param_* apply to the target of the port it annotates; a scheme
  // with no port annotation applied them to every port it scraped, so they go to every named target.
  for (const s of active) {
    const options = scrapeOptions(s);
    const endpoints = ctx.istio?.scheme === s
      ? mergedEndpoints(view, candidates, ctx.istio.merge, options, warnings)
      : resolveEndpoints(view, candidates, s, options, warnings);
    if (endpoints.length === 0 && hasOptions(options)) {
      for (const p of placed) {
        if (!p.named || p.optionsApplied) continue;
        p.target = applyOptions(p.target, options);
        p.optionsApplied = true;
      }
    }
    for (const endpoint of endpoints) {
      const name = endpoint.container.name;
      if (excluded.has(name)) {
        warnings.push(`${endpoint.from} points at port ${endpoint.port} of the excluded container "${name}"; not scraped`);
        continue;
      }
      const named = namedOf(name);
      if (named !== undefined && named.target.port !== endpoint.port) {
        warnings.push(
          `${endpoint.from} points at port ${endpoint.port} of container "${name}", ` +
            `which is scraped on port ${named.target.port} instead (its metrics-named port wins)`,
        );
        continue;
      }
      if (named !== undefined) {
        if (!named.optionsApplied) named.target = applyOptions(named.target, endpoint.options);
        named.optionsApplied = true;
        continue;
      }
      const target = applyOptions({ container: name, port: endpoint.port, path: DEFAULT_METRICS_PATH, scheme: 'http' }, endpoint.options);
      if (!placed.some((p) => formatTarget(p.target) === formatTarget(target))) placed.push({ target, named: false, optionsApplied: true });
    }
  }
  const order = view.running.map((c) => c.name);
  const targets = placed.map((p) => p.target);
  // Stable: a container's endpoints keep the order they were found in.
  targets.sort((a, b) => order.indexOf(a.container) - order.indexOf(b.container));
  return { targets, source: 'derived', warnings };
}

export function deriveTargets(view: PodView, active: SchemeAnnotations[], excluded: Set<string>, ctx: DerivationContext): Derivation {
  const explicit = view.annotations[TARGETS_ANNOTATION];
  let derivation: Derivation;
  if (explicit !== undefined) derivation = explicitTargets(view, explicit, active, excluded, ctx.multiplexer);
  else if (ctx.multiplexer !== undefined) derivation = adoptedTargets(ctx.multiplexer, active, excluded);
  else derivation = derivedTargets(view, active, excluded, ctx);
  if (ctx.istio !== undefined) {
    // The agent's endpoint keeps serving Envoy's and the agent's series (istio-proxy is excluded
    // from every other rule: it serves no app metrics of its own).
    const proxy = proxyTarget(ctx.istio.merge);
    if (!derivation.targets.some((t) => formatTarget(t) === formatTarget(proxy))) derivation.targets.push(proxy);
  }
  return derivation;
}
