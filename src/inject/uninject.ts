// Undoes an injection from the pod's status annotation: removes the sidecar and puts every
// annotation promux touched back as it was, in its place.
import type { PromuxConfig } from '../config/types.ts';
import { STATUS_ANNOTATION } from './annotations.ts';
import { isObject } from '../json.ts';
import { copyPod, describeValue, PodError } from './pod.ts';
import { diff } from './patch.ts';
import type { PodObject, PromuxStatus, UninjectResult } from './types.ts';


/** The status annotation's content, or a PodError saying what is wrong with it. */
export function parseStatus(text: string): PromuxStatus {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new PodError(`${STATUS_ANNOTATION} is not JSON`);
  }
  const bad = (what: string): PodError => new PodError(`${STATUS_ANNOTATION}: ${what}`);
  if (!isObject(value)) throw bad('not a JSON object');
  if (typeof value.sidecar !== 'string' || value.sidecar === '') throw bad('"sidecar" is not a container name');
  const isPosition = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 0;
  if (!isObject(value.original) || !Object.values(value.original).every((v) => v === null || typeof v === 'string')) {
    throw bad('"original" is not a mapping of annotations to strings or null');
  }
  if (value.removedAt !== undefined && !(isObject(value.removedAt) && Object.values(value.removedAt).every(isPosition))) {
    throw bad('"removedAt" is not a mapping of annotations to positions');
  }
  const env = value.removedEnv;
  if (env !== undefined && !(isObject(env) && typeof env.container === 'string' && isPosition(env.index) && isObject(env.entry))) {
    throw bad('"removedEnv" is not {container, index, entry}');
  }
  const args = value.originalArgs;
  if (args !== undefined && !(isObject(args) && Object.values(args).every((a) => Array.isArray(a) && a.every((s) => typeof s === 'string')))) {
    throw bad('"originalArgs" is not a mapping of containers to argument lists');
  }
  const secrets = value.addedImagePullSecrets;
  if (secrets !== undefined && !(Array.isArray(secrets) && secrets.every((s) => typeof s === 'string'))) {
    throw bad('"addedImagePullSecrets" is not a list of Secret names');
  }
  const removed = value.removedContainer;
  if (removed !== undefined && !(isObject(removed) && (removed.field === 'containers' || removed.field === 'initContainers')
    && isPosition(removed.index) && isObject(removed.container))) {
    throw bad('"removedContainer" is not {field, index, container}');
  }
  return value as unknown as PromuxStatus;
}

function restoreAnnotations(current: Record<string, string>, status: PromuxStatus): Record<string, string> {
  const original = new Map(Object.entries(status.original));
  const removedAt = new Map(Object.entries(status.removedAt ?? {}));
  const entries = Object.entries(current)
    .filter(([key]) => key !== STATUS_ANNOTATION && original.get(key) !== null && !removedAt.has(key))
    .map(([key, value]): [string, string] => [key, original.get(key) ?? value]);
  // In ascending order, each removed key lands where it was among the keys before it.
  for (const [key, position] of [...removedAt].sort((a, b) => a[1] - b[1])) {
    const value = original.get(key);
    if (typeof value === 'string') entries.splice(Math.min(position, entries.length), 0, [key, value]);
  }
  for (const [key, value] of original) {
    if (value !== null && !removedAt.has(key) && !Object.hasOwn(current, key)) entries.push([key, value]);
  }
  return Object.fromEntries(entries);
}

function withoutContainer(list: unknown, name: string): { list: unknown[]; found: boolean } | undefined {
  if (!Array.isArray(list)) return undefined;
  const kept = list.filter((c) => !(isObject(c) && c.name === name));
  return { list: kept, found: kept.length !== list.length };
}

/** The container named `name` in spec.containers or spec.initContainers. */
function findContainer(spec: Record<string, unknown>, name: string): Record<string, unknown> | undefined {
  for (const field of ['containers', 'initContainers'] as const) {
    const list = spec[field];
    if (!Array.isArray(list)) continue;
    const found = list.find((c) => isObject(c) && c.name === name);
    if (found !== undefined) return found as Record<string, unknown>;
  }
  return undefined;
}

/** Puts back what promux changed in other containers (on the copy); says what it did. */
function restoreContainers(spec: Record<string, unknown>, status: PromuxStatus): string[] {
  const done: string[] = [];
  const removed = status.removedContainer;
  if (removed !== undefined) {
    const list = Array.isArray(spec[removed.field]) ? spec[removed.field] as unknown[] : [];
    list.splice(Math.min(removed.index, list.length), 0, removed.container);
    spec[removed.field] = list;
    done.push(`put back the ${String(removed.container.name)} container`);
  }
  const env = status.removedEnv;
  if (env !== undefined) {
    const container = findContainer(spec, env.container);
    if (container === undefined) throw new PodError(`${STATUS_ANNOTATION}: no container "${env.container}" to put its env entry back into`);
    const list = Array.isArray(container.env) ? container.env : [];
    list.splice(Math.min(env.index, list.length), 0, env.entry);
    container.env = list;
    done.push(`restored ${env.container}'s env ${String(env.entry.name)}`);
  }
  for (const [name, args] of Object.entries(status.originalArgs ?? {})) {
    const container = findContainer(spec, name);
    if (container === undefined) throw new PodError(`${STATUS_ANNOTATION}: no container "${name}" to restore the args of`);
    container.args = args;
    done.push(`restored ${name}'s args`);
  }
  return done;
}

/** Takes out the image pull secrets promux appended (the last entry of each name), on the copy. */
function restorePullSecrets(spec: Record<string, unknown>, status: PromuxStatus): string[] {
  const added = status.addedImagePullSecrets;
  if (added === undefined || !Array.isArray(spec.imagePullSecrets)) return [];
  const list = spec.imagePullSecrets as unknown[];
  const removed = added.filter((name) => {
    const at = list.findLastIndex((entry) => isObject(entry) && entry.name === name);
    if (at !== -1) list.splice(at, 1);
    return at !== -1;
  });
  if (list.length === 0 && status.createdImagePullSecrets === true) delete spec.imagePullSecrets;
  return removed.length === 0 ? [] : [`removed imagePullSecrets ${removed.join(', ')}`];
}

function restore(input: PodObject): UninjectResult {
  const pod = copyPod(input);
  const metadata = pod.metadata;
  const annotations = isObject(metadata) ? metadata.annotations : undefined;
  const statusText = isObject(annotations) ? annotations[STATUS_ANNOTATION] : undefined;
  if (typeof statusText !== 'string') {
    return { changed: false, reason: `not injected (no ${STATUS_ANNOTATION} annotation)`, pod, patch: [] };
  }
  const status = parseStatus(statusText);
  if (!Object.values(annotations as object).every((v) => typeof v === 'string')) {
    throw new PodError('metadata.annotations has a value that is not a string');
  }
  const spec = pod.spec;
  if (!isObject(spec)) throw new PodError('spec is missing');
  let removedSidecar = false;
  for (const field of ['containers', 'initContainers'] as const) {
    const result = withoutContainer(spec[field], status.sidecar);
    if (result === undefined || !result.found) continue;
    removedSidecar = true;
    const emptied = field === 'initContainers' && result.list.length === 0;
    if (emptied && status.createdInitContainers === true) delete spec.initContainers;
    else spec[field] = result.list;
  }
  const others = [...restoreContainers(spec, status), ...restorePullSecrets(spec, status)];
  (metadata as Record<string, unknown>).annotations = restoreAnnotations(annotations as Record<string, string>, status);
  const restored = Object.keys(status.original).length;
  const sidecar = removedSidecar ? `removed the ${status.sidecar} container` : `found no ${status.sidecar} container`;
  return {
    changed: true,
    reason: `uninjected: ${sidecar}${others.map((o) => `, ${o}`).join('')} and restored ${restored} annotation${restored === 1 ? '' : 's'}`,
    pod,
    patch: diff(input, pod),
  };
}

/**
 * Undoes `injectPod` from the pod's `promux.io/status` annotation: uninject(inject(x)) is x, byte for
 * byte as JSON. A pod without the annotation is returned unchanged. Pure; never throws.
 */
export function uninjectPod(pod: unknown, _config: PromuxConfig): UninjectResult {
  if (!isObject(pod)) {
    return { changed: false, reason: `not a Pod: expected an object, got ${describeValue(pod)}`, pod: {}, patch: [] };
  }
  try {
    return restore(pod);
  } catch (err) {
    if (!(err instanceof PodError)) throw err;
    let copy: PodObject = {};
    try {
      copy = copyPod(pod);
    } catch {
      // not plain JSON: nothing to copy
    }
    return { changed: false, reason: `cannot uninject: ${err.message}`, pod: copy, patch: [] };
  }
}
