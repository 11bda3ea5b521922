// One document's value in, every object in it edited out: a Pod goes to the engine as it is, a
// workload lends its pod template, a List has each item handled on its own, any other kind passes
// through. Pure: the pod edit (inject or uninject) is a parameter.
import type { Operation } from 'fast-json-patch';
import {
  describeObject, getPath, isList, podAsTemplate, templateAsPod, templatePath, withPath,
} from './kinds.ts';
import { diff } from '../inject/patch.ts';
import { isObject, type JsonObject } from '../json.ts';

export type PodStatus = 'injected' | 'skipped' | 'restored' | 'unchanged';
export type ObjectStatus = PodStatus | 'passed-through';

/** What the engine made of one pod, in the terms of the report. */
export interface PodOutcome {
  status: PodStatus;
  /** Shown after the status: the targets when injected, the reason otherwise. */
  detail: string;
  warnings: string[];
  /** The pod after the edit: new objects where it changed, the rest shared with the input (or the input itself). */
  pod: JsonObject;
  /** RFC 6902 patch from the pod given to `pod`. */
  patch: Operation[];
}

/** An edit of one pod; it never modifies the pod it is given (the engine's injectPod and uninjectPod are pure). */
export type PodEdit = (pod: JsonObject) => PodOutcome;

export interface ObjectOutcome {
  /** "Deployment openfaas/gateway". */
  description: string;
  status: ObjectStatus;
  detail: string;
  warnings: string[];
  before: JsonObject;
  after: JsonObject;
  /** RFC 6902 patch from `before` to `after`: pointers into /spec/template/... for a workload. */
  patch: Operation[];
}

export interface DocumentOutcome {
  /** The document's value before and after; null for an empty document. */
  before: unknown;
  after: unknown;
  /** Its objects in order: the document itself, or each item of a List. */
  objects: ObjectOutcome[];
}

/** Input that is not a Kubernetes object the way kubectl reads one; the message says where in the document. */
export class ManifestError extends Error {
  override name = 'ManifestError';
}

function describeValue(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  return `${typeof value} ${JSON.stringify(value)}`;
}

function transformObject(value: unknown, where: string, edit: PodEdit): { after: JsonObject; objects: ObjectOutcome[] } {
  if (!isObject(value)) {
    throw new ManifestError(`${where}expected a Kubernetes object (a mapping with apiVersion and kind), found ${describeValue(value)}`);
  }
  for (const key of ['apiVersion', 'kind']) {
    if (typeof value[key] !== 'string' || value[key] === '') {
      throw new ManifestError(`${where}not a Kubernetes object: "${key}" is ${value[key] === undefined ? 'missing' : 'not a string'}`);
    }
  }
  if (isList(value)) return transformList(value, where, edit);

  const description = describeObject(value);
  const path = templatePath(value);
  if (path === undefined) {
    const object = { description, status: 'passed-through' as const, detail: '', warnings: [], before: value, after: value, patch: [] };
    return { after: value, objects: [object] };
  }
  let outcome: PodOutcome;
  let after: JsonObject;
  let patch: Operation[];
  if (path.length === 0) {
    outcome = edit(value);
    after = outcome.pod;
    patch = outcome.patch;
  } else {
    const template = getPath(value, path);
    if (!isObject(template)) {
      throw new ManifestError(
        `${where}${description} has no pod template: ${path.join('.')} is ${template === undefined ? 'missing' : describeValue(template)}`,
      );
    }
    outcome = edit(templateAsPod(value, template));
    const changed = outcome.patch.length > 0;
    after = changed ? withPath(value, path, podAsTemplate(template, outcome.pod)) : value;
    patch = changed ? diff(value, after) : [];
  }
  const { status, detail, warnings } = outcome;
  return { after, objects: [{ description, status, detail, warnings, before: value, after, patch }] };
}

function transformList(list: JsonObject, where: string, edit: PodEdit): { after: JsonObject; objects: ObjectOutcome[] } {
  if (list.items === undefined || list.items === null) return { after: list, objects: [] };
  if (!Array.isArray(list.items)) throw new ManifestError(`${where}List: "items" is ${describeValue(list.items)}, not a list`);
  const objects: ObjectOutcome[] = [];
  const items = list.items.map((item: unknown, i) => {
    const result = transformObject(item, `${where}items[${i}]: `, edit);
    objects.push(...result.objects);
    return result.after;
  });
  const changed = objects.some((o) => o.patch.length > 0);
  return { after: changed ? { ...list, items } : list, objects };
}

/** Every object of one document's value, edited; throws a ManifestError for what is not an object. */
export function transformDocument(value: unknown, edit: PodEdit): DocumentOutcome {
  if (value === null || value === undefined) return { before: null, after: null, objects: [] };
  const { after, objects } = transformObject(value, '', edit);
  return { before: value, after, objects };
}
