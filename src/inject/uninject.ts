// Undoes an injection from the pod's status annotation: removes the sidecar and puts every
// annotation promux touched back as it was, in its place.
import jsonPatch from 'fast-json-patch';
import type { PromuxConfig } from '../config/types.ts';
import { STATUS_ANNOTATION } from './annotations.ts';
import { isObject } from '../json.ts';
import { copyPod, describeValue, PodError } from './pod.ts';
import type { PodObject, PromuxStatus, UninjectResult } from './types.ts';

const { compare } = jsonPatch;

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
  (metadata as Record<string, unknown>).annotations = restoreAnnotations(annotations as Record<string, string>, status);
  const restored = Object.keys(status.original).length;
  const sidecar = removedSidecar ? `removed the ${status.sidecar} container` : `found no ${status.sidecar} container`;
  return {
    changed: true,
    reason: `uninjected: ${sidecar} and restored ${restored} annotation${restored === 1 ? '' : 's'}`,
    pod,
    patch: compare(input, pod),
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
