// Reads the parts of a Pod the engine decides on, checking each; anything unusable is a PodError,
// which the engine reports as an invalid-pod skip (never a throw out of the engine).
import { isObject } from '../json.ts';
import type { PodObject } from './types.ts';

export class PodError extends Error {
  override name = 'PodError';
}

/** An annotation promux reads that it cannot use; the message starts with the annotation's name. */
export class AnnotationError extends Error {
  override name = 'AnnotationError';
}

export interface PortView {
  name: string | undefined;
  containerPort: number;
}

export type ContainerField = 'containers' | 'initContainers' | 'ephemeralContainers';

export interface ContainerView {
  name: string;
  ports: PortView[];
  /** An init container with restartPolicy Always: runs beside the app containers. */
  nativeSidecar: boolean;
  /** Where it is: spec[field][index]. */
  field: ContainerField;
  index: number;
  /** The container object itself (read only: the engine never modifies its input). */
  spec: Record<string, unknown>;
}

export interface PodView {
  annotations: Record<string, string>;
  labels: Record<string, string>;
  /** spec.containers, then native-sidecar init containers: everything running while the pod serves. */
  running: ContainerView[];
  /** Every container: spec.containers, spec.initContainers, spec.ephemeralContainers, in that order. */
  containers: ContainerView[];
  allContainerNames: Set<string>;
  hostNetwork: boolean;
  restartPolicy: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;


/** A value as error messages name it: null, a list, a mapping, or its type and JSON. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'missing';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'a mapping' : `${typeof v} ${JSON.stringify(v)}`;
}

function stringMap(v: unknown, field: string): Record<string, string> {
  if (v === undefined) return {};
  if (!isObject(v)) throw new PodError(`${field} is ${describeValue(v)}, not a mapping`);
  for (const k in v) {
    const value = v[k];
    if (typeof value !== 'string') throw new PodError(`${field}["${k}"] is ${describeValue(value)}, not a string`);
  }
  return v as Record<string, string>;
}

function containerList(v: unknown, field: string): Record<string, unknown>[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new PodError(`${field} is ${describeValue(v)}, not a list`);
  v.forEach((c, i) => {
    if (!isObject(c)) throw new PodError(`${field}[${i}] is ${describeValue(c)}, not a container`);
  });
  return v as Record<string, unknown>[];
}

function readPorts(container: Record<string, unknown>, at: string): PortView[] {
  const ports = container.ports;
  if (ports === undefined) return [];
  if (!Array.isArray(ports)) throw new PodError(`${at}.ports is ${describeValue(ports)}, not a list`);
  return ports.map((p: unknown, i) => {
    if (!isObject(p)) throw new PodError(`${at}.ports[${i}] is ${describeValue(p)}, not a port`);
    const { containerPort, name } = p;
    if (!Number.isInteger(containerPort) || (containerPort as number) < 1 || (containerPort as number) > 65535) {
      throw new PodError(`${at}.ports[${i}].containerPort is ${describeValue(containerPort)}, not a port number`);
    }
    if (name !== undefined && typeof name !== 'string') {
      throw new PodError(`${at}.ports[${i}].name is ${describeValue(name)}, not a string`);
    }
    return { name, containerPort: containerPort as number };
  });
}

/** A pod's kind and metadata: what the first checks read (an injected, opted-out or unscraped pod is skipped on these alone). */
export interface PodMetadata {
  annotations: Record<string, string>;
  labels: Record<string, string>;
}

/** The pod's kind and metadata; throws PodError naming the field that is unusable. */
export function readMetadata(pod: unknown): PodMetadata {
  if (!isObject(pod)) throw new PodError(`expected a Pod object, got ${describeValue(pod)}`);
  if (pod.kind !== undefined && pod.kind !== 'Pod') {
    throw new PodError(`expected kind Pod, got ${describeValue(pod.kind)}`);
  }
  const metadata = pod.metadata ?? {};
  if (!isObject(metadata)) throw new PodError(`metadata is ${describeValue(metadata)}, not a mapping`);
  return {
    annotations: stringMap(metadata.annotations, 'metadata.annotations'),
    labels: stringMap(metadata.labels, 'metadata.labels'),
  };
}

/**
 * The pod's decision-relevant parts; throws PodError naming the field that is unusable. `metadata`:
 * what readMetadata already read of it (the engine reads the metadata first, the spec only when needed).
 */
export function readPod(pod: unknown, { annotations, labels }: PodMetadata = readMetadata(pod)): PodView {
  const spec = (pod as PodObject).spec;
  if (spec === undefined) throw new PodError('spec is missing');
  if (!isObject(spec)) throw new PodError(`spec is ${describeValue(spec)}, not a mapping`);
  const containers = containerList(spec.containers, 'spec.containers');
  if (containers.length === 0) throw new PodError('spec.containers is missing or empty');
  const initContainers = containerList(spec.initContainers, 'spec.initContainers');
  const ephemeral = containerList(spec.ephemeralContainers, 'spec.ephemeralContainers');

  const allContainerNames = new Set<string>();
  const running: ContainerView[] = [];
  const all: ContainerView[] = [];
  const groups = [
    ['containers', containers],
    ['initContainers', initContainers],
    ['ephemeralContainers', ephemeral],
  ] as const;
  for (const [field, list] of groups) {
    list.forEach((c, i) => {
      const at = `spec.${field}[${i}]`;
      if (c.name === undefined) throw new PodError(`${at} has no name`);
      if (typeof c.name !== 'string' || !DNS_LABEL.test(c.name)) {
        throw new PodError(`${at}.name is ${describeValue(c.name)}, not a container name (DNS label)`);
      }
      if (allContainerNames.has(c.name)) throw new PodError(`two containers are named "${c.name}"`);
      allContainerNames.add(c.name);
      const ports = readPorts(c, at);
      const nativeSidecar = field === 'initContainers' && c.restartPolicy === 'Always';
      const view: ContainerView = { name: c.name, ports, nativeSidecar, field, index: i, spec: c };
      all.push(view);
      if (field === 'containers' || nativeSidecar) running.push(view);
    });
  }
  if (spec.hostNetwork !== undefined && typeof spec.hostNetwork !== 'boolean') {
    throw new PodError(`spec.hostNetwork is ${describeValue(spec.hostNetwork)}, not a boolean`);
  }
  const restartPolicy = spec.restartPolicy ?? 'Always';
  if (typeof restartPolicy !== 'string') {
    throw new PodError(`spec.restartPolicy is ${describeValue(restartPolicy)}, not a string`);
  }
  return {
    annotations,
    labels,
    running,
    containers: all,
    allContainerNames,
    hostNetwork: spec.hostNetwork === true,
    restartPolicy,
  };
}

/** Deeper than any real object; a cycle runs into it. */
const MAX_DEPTH = 256;

/** Whether `v` is JSON data: null, booleans, numbers, strings, arrays and plain objects, no cycles. */
function isPlainJson(v: unknown, depth: number): boolean {
  if (v === null || v === undefined) return true;
  const type = typeof v;
  if (type === 'string' || type === 'number' || type === 'boolean') return true;
  if (type !== 'object' || depth > MAX_DEPTH) return false;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (!isPlainJson(v[i], depth + 1)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(v) as unknown;
  if (proto !== Object.prototype && proto !== null) return false;
  for (const key in v) if (!isPlainJson((v as Record<string, unknown>)[key], depth + 1)) return false;
  return true;
}

/** A PodError when the value is not plain JSON data; checks what copyPod() would, without copying. */
export function checkPlainJson(pod: PodObject): void {
  if (!isPlainJson(pod, 0)) throw new PodError('the object is not plain JSON data');
}

/** A JSON deep copy, or a PodError when the value is not plain JSON data. */
export function copyPod(pod: PodObject): PodObject {
  try {
    return structuredClone(pod);
  } catch {
    throw new PodError('the object is not plain JSON data');
  }
}
