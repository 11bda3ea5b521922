// The injection decision and mutation: a pod in, the decision, the mutated pod and its patch out.
import jsonPatch from 'fast-json-patch';
import type { PromuxConfig } from '../config/types.ts';
import { VERSION } from '../version.ts';
import {
  EXCLUDE_ANNOTATION, INJECT_KEY, readSchemes, scrapeKeyOf, STATUS_ANNOTATION,
} from './annotations.ts';
import type { SchemeAnnotations } from './annotations.ts';
import { isObject } from '../json.ts';
import { checkPlainJson, describeValue, PodError, readPod } from './pod.ts';
import type { PodView } from './pod.ts';
import { choosePort, sidecarContainer } from './sidecar.ts';
import { DEFAULT_METRICS_PATH, formatTarget, formatTargetMap } from '../target-map.ts';
import { deriveTargets } from './targets.ts';
import type { InjectResult, PodObject, PromuxStatus, SkipCode, Target } from './types.ts';

const { compare } = jsonPatch;

/** Where the sidecar serves (its --endpoint default, which the injector leaves alone). */
const SIDECAR_PATH = DEFAULT_METRICS_PATH;
const GRAFANA = 'grafana';

class Skip extends Error {
  code: SkipCode;
  warnings: string[];
  constructor(code: SkipCode, message: string, warnings: string[] = []) {
    super(message);
    this.code = code;
    this.warnings = warnings;
  }
}

function skipResult(code: SkipCode, reason: string, pod: PodObject, warnings: string[] = []): InjectResult {
  return { decision: 'skip', skipCode: code, reason, targets: [], pod, patch: [], warnings };
}

/** Skips that do not depend on the scrape annotations. */
function checkEligible(view: PodView, config: PromuxConfig): void {
  if (view.annotations[STATUS_ANNOTATION] !== undefined) {
    throw new Skip('already-injected', `already injected (${STATUS_ANNOTATION} is set)`);
  }
  if (view.allContainerNames.has(config.sidecar.containerName)) {
    throw new Skip('already-injected', `already has a container named "${config.sidecar.containerName}"`);
  }
  for (const [where, values] of [['label', view.labels], ['annotation', view.annotations]] as const) {
    if (values[INJECT_KEY] === 'false') throw new Skip('opted-out', `opted out: ${where} ${INJECT_KEY} is "false"`);
  }
  if (view.hostNetwork) {
    throw new Skip('host-network',
      'uses hostNetwork: the sidecar would open its port on the node and could clash there');
  }
}

/** The schemes asking for a scrape, or a skip saying why none does. */
function activeSchemes(view: PodView, config: PromuxConfig): SchemeAnnotations[] {
  const found = readSchemes(view.annotations, config.schemes);
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
 *   which is what the sidecar serves, so adding them would change nothing but the pod.
 * - param_* are removed (the sidecar passes them on to its target instead).
 * Added keys use the pod's own spelling of the scheme's prefix (from its scrape key).
 */
function rewriteAnnotations(
  annotations: Record<string, string>,
  active: SchemeAnnotations[],
  port: number,
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
    set(s, 'port', String(port), true);
    set(s, 'portName', config.sidecar.portName, true);
    set(s, 'container', config.sidecar.containerName, true);
    set(s, 'path', SIDECAR_PATH, false);
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

function decide(input: PodObject, config: PromuxConfig): InjectResult {
  const view = readPod(input);
  checkPlainJson(input);
  checkEligible(view, config);
  const active = activeSchemes(view, config);
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
  const excluded = excludedContainers(view, config);
  const derivation = deriveTargets(view, active, excluded);
  warnings.push(...derivation.warnings);
  const { targets } = derivation;
  if (targets.length === 0) {
    const why = derivation.explicit
      ? 'every container in promux.io/targets is excluded'
      : 'no container outside the excluded ones has a port named metrics, http-metrics or *-metrics, ' +
        'and no port annotation points at one';
    throw new Skip('no-target', `no target to scrape: ${why}`, warnings);
  }

  const targetMap = formatTargetMap(targets);
  if (Buffer.byteLength(targetMap) > MAX_TARGET_MAP_BYTES) {
    throw new Skip('too-large',
      `the target map would be ${Buffer.byteLength(targetMap)} bytes, over promux's limit of ${MAX_TARGET_MAP_BYTES} ` +
        '(long param_* or path annotations?): the sidecar\'s argument would be too long', warnings);
  }

  const used = new Set([...view.declaredPorts, ...targets.map((t) => t.port)]);
  const port = choosePort(config.sidecar.port, used);
  if (port !== config.sidecar.port) {
    warnings.push(`port ${config.sidecar.port} is taken in this pod; the sidecar serves on ${port}`);
  }
  const mode = config.sidecar.nativeSidecar;
  const native = mode === 'always' || (mode === 'auto' && view.restartPolicy !== 'Always');
  if (!native && view.restartPolicy !== 'Always') {
    warnings.push(
      `restartPolicy is ${view.restartPolicy}: the sidecar keeps running after the other containers ` +
        'finish, so the pod (and a Job running it) never completes; ' +
        'sidecar.nativeSidecar "auto" runs it as a native sidecar',
    );
  }
  if (native && active.some((s) => s.scheme.name === GRAFANA)) {
    warnings.push(
      'the sidecar is a native sidecar (an init container), and Grafana k8s-monitoring annotation ' +
        'autodiscovery drops init containers: Grafana will not scrape this pod',
    );
  }

  // New objects only where the pod changes: itself, its metadata (new annotations) and its spec (a
  // new container list). The rest is shared with the input, which is never modified, so nothing is
  // deep-copied and compare() below skips the shared subtrees (the webhook's hottest path).
  const pod: PodObject = { ...input, metadata: { ...(input.metadata as object) }, spec: { ...(input.spec as object) } };
  const spec = pod.spec as Record<string, unknown>;
  const container = sidecarContainer(config.sidecar, port, targetMap, native);
  const createdInitContainers = native && spec.initContainers === undefined;
  if (native) spec.initContainers = [...((spec.initContainers as unknown[] | undefined) ?? []), container];
  else spec.containers = [...(spec.containers as unknown[]), container];

  const rewrite = rewriteAnnotations(view.annotations, active, port, config);
  const status: PromuxStatus = {
    version: VERSION,
    sidecar: config.sidecar.containerName,
    port,
    targets: targetMap,
    original: rewrite.original,
    ...(Object.keys(rewrite.removedAt).length > 0 ? { removedAt: rewrite.removedAt } : {}),
    ...(createdInitContainers ? { createdInitContainers: true as const } : {}),
  };
  rewrite.annotations[STATUS_ANNOTATION] = JSON.stringify(status);
  const annotationBytes = sizeOfAnnotations(rewrite.annotations);
  if (annotationBytes > MAX_ANNOTATION_BYTES) {
    throw new Skip('too-large',
      `the pod's annotations would be ${annotationBytes} bytes with promux's, over Kubernetes' limit of ` +
        `${MAX_ANNOTATION_BYTES} (256 KiB): the API server would refuse the pod`, warnings);
  }
  (pod.metadata as Record<string, unknown>).annotations = rewrite.annotations;

  return {
    decision: 'inject',
    reason: `injected: the sidecar serves port ${port} and scrapes ${describeTargets(targets)}`,
    targets,
    pod,
    patch: compare(input, pod),
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
export function injectPod(pod: unknown, config: PromuxConfig): InjectResult {
  if (!isObject(pod)) {
    return skipResult('invalid-pod', `not a valid Pod: expected an object, got ${describeValue(pod)}`, {});
  }
  try {
    return decide(pod, config);
  } catch (err) {
    if (err instanceof Skip) return skipResult(err.code, err.message, pod, err.warnings);
    if (err instanceof PodError) return skipResult('invalid-pod', `not a valid Pod: ${err.message}`, pod);
    throw err;
  }
}
