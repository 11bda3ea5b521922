// The injection decision and mutation: a pod in, the decision, the mutated pod and its patch out.
import type { PromuxConfig } from '../config/types.ts';
import { VERSION } from '../version.ts';
import {
  EXCLUDE_ANNOTATION, INJECT_KEY, readSchemes, scrapeKeyOf, STATUS_ANNOTATION, TARGETS_ANNOTATION,
} from './annotations.ts';
import type { SchemeAnnotations } from './annotations.ts';
import { isObject } from '../json.ts';
import { NATIVE_SIDECAR_VERSION, nativeSidecarSupport } from '../config/kubernetes-version.ts';
import {
  EXCLUDE_INBOUND_ANNOTATION, istioInitArgs, readIstioMerge, withExcludedPort,
} from './istio.ts';
import { findMultiplexer, MultiplexerError } from './multiplexer.ts';
import type { Multiplexer } from './multiplexer.ts';
import { AnnotationError, checkPlainJson, describeValue, PodError, readMetadata, readPod } from './pod.ts';
import { diff } from './patch.ts';
import type { ContainerView, PodMetadata, PodView } from './pod.ts';
import { behindProxy, findRbacProxies } from './rbac-proxy.ts';
import type { RbacProxy } from './rbac-proxy.ts';
import { sidecarResources } from './resources.ts';
import { choosePort, sidecarContainer } from './sidecar.ts';
import type { SidecarServing } from './sidecar.ts';
import { DEFAULT_METRICS_PATH, formatTarget, formatTargetMap } from '../target-map.ts';
import { deriveTargets } from './targets.ts';
import type { Derivation } from './targets.ts';
import type { InjectOptions, InjectResult, PodObject, PromuxStatus, SkipCode, Target } from './types.ts';


const GRAFANA = 'grafana';
/** The scheme whose annotations Istio's metrics merge moves (Istio knows no other). */
const ISTIO_SCHEME_PREFIX = 'prometheus.io';

/**
 * Thrown to end the decision with a skip. Not an Error: a skip is an answer, most pods get one, and
 * the stack trace an Error captures cost more than the checks that skip them (4-10 µs per pod).
 */
class Skip {
  code: SkipCode;
  message: string;
  warnings: string[];
  constructor(code: SkipCode, message: string, warnings: string[] = []) {
    this.code = code;
    this.message = message;
    this.warnings = warnings;
  }
}

function skipResult(code: SkipCode, reason: string, pod: PodObject, warnings: string[] = []): InjectResult {
  return { decision: 'skip', skipCode: code, reason, targets: [], pod, patch: [], warnings };
}

/** Pods promux never touches, whatever they ask for: injected already, or opted out. */
function checkEligible({ annotations, labels }: PodMetadata): void {
  if (annotations[STATUS_ANNOTATION] !== undefined) {
    throw new Skip('already-injected', `already injected (${STATUS_ANNOTATION} is set)`);
  }
  if (labels[INJECT_KEY] === 'false') throw new Skip('opted-out', `opted out: label ${INJECT_KEY} is "false"`);
  if (annotations[INJECT_KEY] === 'false') throw new Skip('opted-out', `opted out: annotation ${INJECT_KEY} is "false"`);
}

/** The schemes asking for a scrape, or a skip saying why none does. */
function activeSchemes(annotations: Record<string, string>, config: PromuxConfig): SchemeAnnotations[] {
  const found = readSchemes(annotations, config.schemes);
  if (found.length === 0) {
    const keys = config.schemes.map((s) => `${s.prefix}/${s.keys.scrape}`).join(' or ');
    const why = `no scrape annotation (${keys || 'no schemes configured'}): nothing scrapes this pod`;
    throw new Skip('no-scrape-annotation', why);
  }
  const active = found.filter((s) => s.scrape === 'true');
  if (active.length === 0) {
    const said = found.map((s) => `${scrapeKeyOf(s)} is ${JSON.stringify(s.scrape)}`).join(', ');
    throw new Skip('scrape-false', `${said}: the pod does not ask to be scraped`);
  }
  return active;
}

interface Rewrite {
  annotations: Record<string, string>;
  original: Record<string, string | null>;
  removedAt: Record<string, number>;
}

/**
 * Points every scheme that scrapes the pod at the sidecar. Keys are written only where leaving
 * them would let the scraper reach another port:
 * - port (and Grafana's portName and container) are always written, added when absent: without
 *   them Prometheus scrapes every declared container port and Grafana keeps every container.
 * - path and scheme are rewritten only when present: absent, the scraper uses /metrics over http,
 *   which is what the sidecar serves (unless it took over another path), so adding them would
 *   change nothing but the pod.
 * - param_* are removed (the sidecar passes them on to its target instead).
 * Added keys use the pod's own spelling of the scheme's prefix (from its scrape key).
 */
function rewriteAnnotations(
  annotations: Record<string, string>,
  active: SchemeAnnotations[],
  serving: SidecarServing,
  config: PromuxConfig,
): Rewrite {
  const out = { ...annotations };
  const original: Record<string, string | null> = {};
  const removedAt: Record<string, number> = {};
  const position = new Map(Object.keys(annotations).map((key, i) => [key, i]));
  type Role = 'port' | 'portName' | 'container' | 'path' | 'scheme';
  const set = (s: SchemeAnnotations, role: Role, value: string, addWhenAbsent: boolean): void => {
    const configured = s.scheme.keys[role];
    if (configured === '') return;
    const present = s.values[role];
    if (present === undefined) {
      if (!addWhenAbsent) return;
      const key = `${s.spelling}${configured}`;
      original[key] = null;
      out[key] = value;
      return;
    }
    for (const key of present.keys) {
      if (annotations[key] === value) continue;
      original[key] = annotations[key]!;
      out[key] = value;
    }
  };
  for (const s of active) {
    set(s, 'port', String(serving.port), true);
    set(s, 'portName', serving.portName, true);
    set(s, 'container', config.sidecar.containerName, true);
    set(s, 'path', serving.endpoint, serving.endpoint !== DEFAULT_METRICS_PATH);
    set(s, 'scheme', 'http', false);
    for (const p of s.params) {
      original[p.key] = annotations[p.key]!;
      removedAt[p.key] = position.get(p.key)!;
      delete out[p.key];
    }
  }
  return { annotations: out, original, removedAt };
}

/** Kubernetes refuses an object whose annotations' keys and values add up to more (TotalAnnotationSizeLimitB). */
export const MAX_ANNOTATION_BYTES = 256 * 1024;
/**
 * The target map is one argument of the sidecar (and part of its status annotation); Linux refuses
 * to start a process with an argument over 128 KiB, and no real pod needs more than a few hundred bytes.
 */
const MAX_TARGET_MAP_BYTES = 32 * 1024;

/** Annotation size as the API server counts it: UTF-8 bytes of every key and value. */
function sizeOfAnnotations(annotations: Record<string, string>): number {
  let bytes = 0;
  for (const key in annotations) bytes += Buffer.byteLength(key) + Buffer.byteLength(annotations[key]!);
  return bytes;
}

function excludedContainers(view: PodView, config: PromuxConfig): Set<string> {
  const fromPod = (view.annotations[EXCLUDE_ANNOTATION] ?? '').split(',').map((n) => n.trim()).filter((n) => n !== '');
  return new Set([...config.excludeContainers, ...fromPod]);
}

function describeTargets(targets: readonly Target[]): string {
  return targets.map(formatTarget).join(', ');
}

function describePorts(containers: readonly ContainerView[]): string {
  return containers
    .map((c) => `${c.name} ${c.ports.map((p) => (p.name === undefined ? String(p.containerPort) : `${p.name} (${p.containerPort})`)).join(', ')}`)
    .join('; ');
}

/** Why no target resolved, and which annotation would make one. */
function noTargetReason(derivation: Derivation, view: PodView, active: SchemeAnnotations[], excluded: Set<string>): string {
  if (derivation.source === 'annotation') return `every container in ${TARGETS_ANNOTATION} is excluded`;
  if (derivation.source === 'multiplexer') return 'every container in the original multiplexer\'s map is excluded';
  const withPorts = view.running.filter((c) => !excluded.has(c.name) && c.ports.length > 0);
  const scheme = active[0]!;
  const portKey = `${scheme.spelling}${scheme.scheme.keys.port}`;
  const fix = `annotate ${portKey} with the port that serves metrics, or ${TARGETS_ANNOTATION}: "<container>:<port>[/<path>]" (several, comma-separated)`;
  if (withPorts.length === 0) {
    return `no container outside the excluded ones declares a port, and no port annotation names one: ${fix}`;
  }
  return 'no container outside the excluded ones has a port named metrics, http-metrics or *-metrics, ' +
    `and no port annotation points at one; the ports are ${describePorts(withPorts)}: ${fix}`;
}

/** Running containers that declare ports yet get no target: their metrics, if any, stay unscraped. */
function unscrapedWarning(view: PodView, targets: readonly Target[], excluded: Set<string>): string[] {
  const unscraped = view.running.filter((c) => !excluded.has(c.name) && c.ports.length > 0 && !targets.some((t) => t.container === c.name));
  if (unscraped.length === 0) return [];
  return [`not scraped: ${describePorts(unscraped)} (no port named *-metrics, and no port annotation); ` +
    `if ${unscraped.length === 1 ? 'it serves' : 'they serve'} metrics, list every target in ${TARGETS_ANNOTATION}`];
}

/** Skips (by default) or warns about targets behind kube-rbac-proxy. */
function checkAuthenticated(derivation: Derivation, proxies: readonly RbacProxy[], port: number): string[] {
  const warnings: string[] = [];
  for (const t of derivation.targets) {
    const proxy = behindProxy(proxies, t.port);
    if (proxy === undefined) continue;
    const where = `the metrics at ${formatTarget(t)} are behind kube-rbac-proxy (container "${proxy.container}")`;
    if (derivation.source === 'derived') {
      throw new Skip('authenticated-metrics',
        `${where}: they are authenticated, and promux would serve them without authentication to anyone who reaches ` +
          `its port; to inject anyway, name the targets in ${TARGETS_ANNOTATION}`);
    }
    warnings.push(`${where}: promux serves them without authentication on port ${port}, as ${TARGETS_ANNOTATION} asks`);
  }
  return warnings;
}

/** Where the sidecar runs: a native sidecar (init container), a regular container, or nowhere (a skip). */
function placement(view: PodView, config: PromuxConfig): boolean {
  const mode = config.sidecar.nativeSidecar;
  const support = nativeSidecarSupport(config.kubernetesVersion);
  const { major, minor } = NATIVE_SIDECAR_VERSION;
  const tooOld = `native sidecars need Kubernetes ${major}.${minor} or newer, and ` + (support === 'unknown'
    ? 'the cluster\'s version is unknown: set kubernetesVersion in promux\'s configuration (the webhook asks the API ' +
      'server at start; promux inject takes --kubernetes-version)'
    : `the cluster runs ${config.kubernetesVersion}`);
  if (mode === 'always') {
    if (support === 'no') {
      throw new Skip('needs-native-sidecar',
        `sidecar.nativeSidecar is "always", but ${tooOld}: the API server would drop the init container's restartPolicy ` +
          'and the pod would never leave Init');
    }
    return true;
  }
  if (view.restartPolicy === 'Always') return false;
  const job = `restartPolicy is ${view.restartPolicy}: a regular sidecar keeps running after the other containers finish, ` +
    'so the pod (and a Job running it) would never complete; promux runs in such pods as a native sidecar';
  if (mode === 'never') {
    throw new Skip('needs-native-sidecar', `${job} only with sidecar.nativeSidecar "auto" (Kubernetes ${major}.${minor}+), and it is "never"`);
  }
  if (support !== 'yes') throw new Skip('needs-native-sidecar', `${job}, but ${tooOld}`);
  return true;
}

/** The sidecar's port, port name, path and label: its own, or the original multiplexer's where free. */
function chooseServing(view: PodView, config: PromuxConfig, targets: readonly Target[], mux: Multiplexer | undefined, warnings: string[]): SidecarServing {
  const others = view.containers.filter((c) => c !== mux?.container);
  const used = new Set([...others.flatMap((c) => c.ports.map((p) => p.containerPort)), ...targets.map((t) => t.port)]);
  const preferred = mux !== undefined && !used.has(mux.port) ? mux.port : config.sidecar.port;
  const port = choosePort(preferred, used);
  if (mux !== undefined && mux.port !== port) {
    warnings.push(`the original multiplexer's port ${mux.port} is used by a target or another container; the sidecar serves on ${port}`);
  } else if (mux === undefined && port !== config.sidecar.port) {
    warnings.push(`port ${config.sidecar.port} is taken in this pod; the sidecar serves on ${port}`);
  }
  const names = new Set(others.flatMap((c) => c.ports.map((p) => p.name)));
  const portName = mux?.portName !== undefined && !names.has(mux.portName) ? mux.portName : config.sidecar.portName;
  return {
    port,
    portName,
    endpoint: mux?.endpoint ?? DEFAULT_METRICS_PATH,
    containerLabel: mux?.containerLabel ?? config.sidecar.containerLabel,
  };
}

/**
 * With sidecar.runAsUser null the sidecar takes the pod's runAsUser; where that is 0, its
 * runAsNonRoot makes the kubelet refuse to start it, and the pod would never be ready.
 */
function checkUser(spec: Record<string, unknown>, config: PromuxConfig): void {
  if (config.sidecar.runAsUser !== null) return;
  const context = spec.securityContext;
  if (!isObject(context) || context.runAsUser !== 0) return;
  throw new Skip('runs-as-root',
    'the pod\'s securityContext.runAsUser is 0 and sidecar.runAsUser is null in promux\'s configuration: the sidecar ' +
      'would run as root, which its runAsNonRoot forbids, so the kubelet would not start it and the pod would never be ' +
      'ready; set runAsUser on the pod\'s containers instead of the pod, or sidecar.runAsUser');
}

/**
 * The pod's spec.imagePullSecrets with the configured ones it lacks appended, and their names; the
 * list is unchanged (and `added` empty) when it has them all.
 */
function withPullSecrets(spec: Record<string, unknown>, names: readonly string[]): { list: unknown[]; added: string[] } {
  const current = spec.imagePullSecrets === undefined ? [] : spec.imagePullSecrets;
  if (!Array.isArray(current)) throw new PodError(`spec.imagePullSecrets is ${describeValue(current)}, not a list`);
  const present = new Set(current.map((entry, i) => {
    if (!isObject(entry)) throw new PodError(`spec.imagePullSecrets[${i}] is ${describeValue(entry)}, not a reference to a Secret`);
    return entry.name;
  }));
  const added = [...new Set(names)].filter((name) => !present.has(name));
  return { list: added.length === 0 ? current : [...current, ...added.map((name) => ({ name }))], added };
}

type Field = 'containers' | 'initContainers';

/** Copies of the pod's container lists, made the first time one changes; the input's are never modified. */
class ContainerLists {
  private readonly spec: Record<string, unknown>;
  constructor(spec: Record<string, unknown>) {
    this.spec = spec;
  }

  list(field: Field): unknown[] {
    const current = this.spec[field];
    return Array.isArray(current) ? current : [];
  }

  private copy(field: Field): unknown[] {
    const copied = [...this.list(field)];
    this.spec[field] = copied;
    return copied;
  }

  change(field: Field, index: number, edit: (c: Record<string, unknown>) => Record<string, unknown>): void {
    const list = this.copy(field);
    list[index] = edit(list[index] as Record<string, unknown>);
  }

  remove(field: Field, index: number): void {
    this.copy(field).splice(index, 1);
  }

  append(field: Field, container: Record<string, unknown>): void {
    this.copy(field).push(container);
  }
}

function decide(input: PodObject, config: PromuxConfig, options: InjectOptions): InjectResult {
  // The checks most pods fail come first, on the metadata alone: a pod that is skipped costs little,
  // and its spec is not even read.
  const metadata = readMetadata(input);
  checkEligible(metadata);
  const active = activeSchemes(metadata.annotations, config);
  const view = readPod(input, metadata);
  if (view.allContainerNames.has(config.sidecar.containerName)) {
    throw new Skip('already-injected', `already has a container named "${config.sidecar.containerName}"`);
  }
  if (options.parsedJson !== true) checkPlainJson(input);
  const inputSpec = input.spec as Record<string, unknown>;
  const pullSecrets = config.sidecar.imagePullSecrets.length === 0 ? undefined : withPullSecrets(inputSpec, config.sidecar.imagePullSecrets);
  if (view.hostNetwork) {
    throw new Skip('host-network',
      'uses hostNetwork: the sidecar would open its port on the node and could clash there');
  }
  const warnings: string[] = [];
  const injectValue = view.annotations[INJECT_KEY];
  const force = injectValue === 'true';
  if (injectValue !== undefined && injectValue !== 'true' && injectValue !== 'false') {
    warnings.push(`annotation ${INJECT_KEY} is ${JSON.stringify(injectValue)}; only "true" and "false" mean something`);
  }
  if (view.running.length < config.minContainers && !force) {
    const count = view.running.length === 1 ? '1 container runs' : `${view.running.length} containers run`;
    throw new Skip(
      'too-few-containers',
      `only ${count} (promux injects from ${config.minContainers}); annotate ${INJECT_KEY}: "true" to inject anyway`,
    );
  }
  const problem = active.flatMap((s) => s.problems)[0];
  if (problem !== undefined) throw new AnnotationError(problem);
  const resources = sidecarResources(view.annotations, config.sidecar.resources);
  const excluded = excludedContainers(view, config);
  let mux: Multiplexer | undefined;
  try {
    mux = findMultiplexer(view);
  } catch (err) {
    if (err instanceof MultiplexerError) throw new Skip('no-target', err.message, warnings);
    throw err;
  }
  const prometheus = active.find((s) => s.scheme.prefix === ISTIO_SCHEME_PREFIX);
  const merge = prometheus === undefined ? undefined : readIstioMerge(view, prometheus.values.port?.value);
  const derivation = deriveTargets(view, active, excluded, {
    istio: merge === undefined ? undefined : { merge, scheme: prometheus! },
    multiplexer: mux,
  });
  warnings.push(...derivation.warnings);
  const { targets } = derivation;
  if (targets.length === 0) {
    throw new Skip('no-target', `no target to scrape: ${noTargetReason(derivation, view, active, excluded)}`, warnings);
  }
  if (derivation.source === 'derived') warnings.push(...unscrapedWarning(view, targets, excluded));

  const targetMap = formatTargetMap(targets);
  if (Buffer.byteLength(targetMap) > MAX_TARGET_MAP_BYTES) {
    throw new Skip('too-large',
      `the target map would be ${Buffer.byteLength(targetMap)} bytes, over promux's limit of ${MAX_TARGET_MAP_BYTES} ` +
        '(long param_* or path annotations?): the sidecar\'s argument would be too long', warnings);
  }
  const servingWarnings: string[] = [];
  const serving = chooseServing(view, config, targets, mux, servingWarnings);
  warnings.push(...checkAuthenticated(derivation, findRbacProxies(view), serving.port), ...servingWarnings);
  const native = placement(view, config);
  checkUser(inputSpec, config);
  if (native && active.some((s) => s.scheme.name === GRAFANA)) {
    warnings.push(
      'the sidecar is a native sidecar (an init container), and Grafana k8s-monitoring annotation ' +
        'autodiscovery drops init containers: Grafana will not scrape this pod',
    );
  }

  // New objects only where the pod changes: itself, its metadata (new annotations), its spec and the
  // container lists and containers it edits. The rest is shared with the input, which is never
  // modified, so nothing is deep-copied and diff() below skips the shared subtrees (the webhook's
  // hottest path).
  const pod: PodObject = { ...input, metadata: { ...(input.metadata as object) }, spec: { ...(input.spec as object) } };
  const spec = pod.spec as Record<string, unknown>;
  const lists = new ContainerLists(spec);
  const status: PromuxStatus = {
    version: VERSION,
    sidecar: config.sidecar.containerName,
    port: serving.port,
    targets: targetMap,
    original: {},
  };
  const rewrite = rewriteAnnotations(view.annotations, active, serving, config);
  if (merge !== undefined) {
    // The agent stops merging the app's metrics into its endpoint (promux scrapes the app itself),
    // and Prometheus reaches promux's port in plain HTTP as it reaches the agent's, even under STRICT mTLS.
    const { proxy, envIndex } = merge;
    const env = proxy.spec.env as Record<string, unknown>[];
    status.removedEnv = { container: proxy.name, index: envIndex, entry: env[envIndex]! };
    lists.change(proxy.field as Field, proxy.index, (c) => ({ ...c, env: env.filter((_, i) => i !== envIndex) }));
    const current = view.annotations[EXCLUDE_INBOUND_ANNOTATION];
    const excludedPorts = withExcludedPort(current, serving.port);
    if (excludedPorts !== current) {
      rewrite.original[EXCLUDE_INBOUND_ANNOTATION] = current ?? null;
      rewrite.annotations[EXCLUDE_INBOUND_ANNOTATION] = excludedPorts;
    }
    const init = istioInitArgs(view, serving.port);
    if (init !== undefined) {
      status.originalArgs = { [init.container.name]: init.container.spec.args as string[] };
      lists.change('initContainers', init.container.index, (c) => ({ ...c, args: init.args }));
    }
  }
  if (mux !== undefined) {
    const field = mux.container.field as Field;
    status.removedContainer = { field, index: mux.container.index, container: mux.container.spec };
    lists.remove(field, mux.container.index);
  }
  const container = sidecarContainer(config.sidecar, serving, targetMap, native, resources);
  const createdInitContainers = native && spec.initContainers === undefined;
  lists.append(native ? 'initContainers' : 'containers', container);

  status.original = rewrite.original;
  if (Object.keys(rewrite.removedAt).length > 0) status.removedAt = rewrite.removedAt;
  if (createdInitContainers) status.createdInitContainers = true;
  if (pullSecrets !== undefined && pullSecrets.added.length > 0) {
    status.addedImagePullSecrets = pullSecrets.added;
    if (spec.imagePullSecrets === undefined) status.createdImagePullSecrets = true;
    spec.imagePullSecrets = pullSecrets.list;
  }
  rewrite.annotations[STATUS_ANNOTATION] = JSON.stringify(status);
  const annotationBytes = sizeOfAnnotations(rewrite.annotations);
  if (annotationBytes > MAX_ANNOTATION_BYTES) {
    throw new Skip('too-large',
      `the pod's annotations would be ${annotationBytes} bytes with promux's, over Kubernetes' limit of ` +
        `${MAX_ANNOTATION_BYTES} (256 KiB): the API server would refuse the pod`, warnings);
  }
  (pod.metadata as Record<string, unknown>).annotations = rewrite.annotations;

  const replaced = mux === undefined ? '' : ` (replacing the original multiplexer "${mux.container.name}")`;
  return {
    decision: 'inject',
    reason: `injected: the sidecar serves port ${serving.port} and scrapes ${describeTargets(targets)}${replaced}`,
    targets,
    pod,
    patch: diff(input, pod),
    warnings,
  };
}

/**
 * Decides whether to inject the promux sidecar into `pod` and, when so, returns the mutated pod
 * (new objects where it changed, unchanged parts shared with the input) and the RFC 6902 patch to
 * it; when skipped, `pod` is the input itself (a copy would cost more than the decision, and most
 * pods a webhook sees are skipped). Pure: the input is never modified; never throws: unusable
 * input is an invalid-pod skip.
 */
export function injectPod(pod: unknown, config: PromuxConfig, options: InjectOptions = {}): InjectResult {
  if (!isObject(pod)) {
    return skipResult('invalid-pod', `not a valid Pod: expected an object, got ${describeValue(pod)}`, {});
  }
  try {
    return decide(pod, config, options);
  } catch (err) {
    if (err instanceof Skip) return skipResult(err.code, err.message, pod, err.warnings);
    if (err instanceof AnnotationError) return skipResult('invalid-annotation', err.message, pod);
    if (err instanceof PodError) return skipResult('invalid-pod', `not a valid Pod: ${err.message}`, pod);
    throw err;
  }
}
