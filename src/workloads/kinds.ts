// Where each kind keeps its pod template, and how a template travels to the engine and back.
// The engine works on Pods; a template is lent to it as a Pod (its metadata and spec, plus the
// owner's name and namespace so the engine's messages can name it) and put back where it changed.

import { isObject, type JsonObject } from '../json.ts';

/** The API group of an apiVersion ("apps/v1" -> "apps", "v1" -> ""). */
function groupOf(apiVersion: unknown): string | undefined {
  if (typeof apiVersion !== 'string') return undefined;
  const slash = apiVersion.indexOf('/');
  return slash === -1 ? '' : apiVersion.slice(0, slash);
}

/**
 * Path from the object to its pod template, by API group and kind; [] for a Pod itself. Matching the
 * group too keeps custom resources that reuse a name (a Volcano "Job", say) out.
 */
const TEMPLATE_PATHS: Record<string, readonly string[]> = {
  '/Pod': [],
  '/ReplicationController': ['spec', 'template'],
  'apps/Deployment': ['spec', 'template'],
  'apps/StatefulSet': ['spec', 'template'],
  'apps/DaemonSet': ['spec', 'template'],
  'apps/ReplicaSet': ['spec', 'template'],
  'batch/Job': ['spec', 'template'],
  'batch/CronJob': ['spec', 'jobTemplate', 'spec', 'template'],
};

export const POD_KINDS = Object.keys(TEMPLATE_PATHS).map((k) => k.slice(k.indexOf('/') + 1));

/** The template path for this object's kind, or undefined when it has no pods. */
export function templatePath(obj: JsonObject): readonly string[] | undefined {
  return TEMPLATE_PATHS[`${groupOf(obj.apiVersion)}/${String(obj.kind)}`];
}

export function isList(obj: JsonObject): boolean {
  return obj.kind === 'List' && groupOf(obj.apiVersion) === '';
}

/** "Deployment openfaas/gateway", "Pod web-*" (generateName), "Service orders" (no namespace given). */
export function describeObject(obj: JsonObject): string {
  const meta = isObject(obj.metadata) ? obj.metadata : {};
  const name =
    typeof meta.name === 'string' ? meta.name
    : typeof meta.generateName === 'string' ? `${meta.generateName}*`
    : '(unnamed)';
  const namespace = typeof meta.namespace === 'string' && meta.namespace !== '' ? `${meta.namespace}/` : '';
  return `${typeof obj.kind === 'string' ? obj.kind : '(no kind)'} ${namespace}${name}`;
}

export function getPath(obj: JsonObject, path: readonly string[]): unknown {
  let at: unknown = obj;
  for (const key of path) at = isObject(at) ? at[key] : undefined;
  return at;
}

/** A copy of `obj` with the value at `path` (whose parents exist) replaced. */
export function withPath(obj: JsonObject, path: readonly string[], value: unknown): JsonObject {
  const [key, ...rest] = path;
  if (key === undefined) return value as JsonObject;
  return { ...obj, [key]: withPath(obj[key] as JsonObject, rest, value) };
}

const IDENTITY_KEYS = ['name', 'namespace'] as const;

/** The template as a Pod for the engine, carrying the owner's name and namespace where it has none. */
export function templateAsPod(owner: JsonObject, template: JsonObject): JsonObject {
  const ownerMeta = isObject(owner.metadata) ? owner.metadata : {};
  const metadata: JsonObject = isObject(template.metadata) ? { ...template.metadata } : {};
  for (const key of IDENTITY_KEYS) if (metadata[key] === undefined && ownerMeta[key] !== undefined) metadata[key] = ownerMeta[key];
  const pod: JsonObject = { apiVersion: 'v1', kind: 'Pod', metadata };
  if (template.spec !== undefined) pod.spec = template.spec;
  return pod;
}

/** The template with the engine's Pod put back: its metadata (without the borrowed identity) and spec. */
export function podAsTemplate(template: JsonObject, pod: JsonObject): JsonObject {
  const metadata: JsonObject = isObject(pod.metadata) ? { ...pod.metadata } : {};
  const original = isObject(template.metadata) ? template.metadata : {};
  for (const key of IDENTITY_KEYS) if (!(key in original)) delete metadata[key];
  const result: JsonObject = {};
  // Keeps the template's own key order; metadata the template lacked goes first.
  if (!('metadata' in template) && Object.keys(metadata).length > 0) result.metadata = metadata;
  for (const [key, value] of Object.entries(template)) {
    if (key === 'metadata') result.metadata = metadata;
    else if (key === 'spec') result.spec = pod.spec;
    else result[key] = value;
  }
  if (!('spec' in template) && pod.spec !== undefined) result.spec = pod.spec;
  return result;
}
