// Kubernetes checks for tests: schema validation of objects and the real `kubectl patch --local`.
//
// kubernetes-models validates types, required fields and formats, but its generated schemas allow
// additional properties, so a misspelled field (`securityContxt`) passes. A second walk over the
// object, guided by the attribute maps of @kubernetes/client-node's generated models (the same
// OpenAPI definitions), reports every field the API server would reject as unknown.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import * as clientNode from '@kubernetes/client-node';
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import {
  MutatingWebhookConfiguration, ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding, ValidatingWebhookConfiguration,
} from 'kubernetes-models/admissionregistration.k8s.io/v1';
import { DaemonSet, Deployment, ReplicaSet, StatefulSet } from 'kubernetes-models/apps/v1';
import { CronJob, Job } from 'kubernetes-models/batch/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import {
  ConfigMap, Namespace, Pod, ReplicationController, Secret, Service, ServiceAccount,
} from 'kubernetes-models/v1';
import { isObject } from '../../src/json.ts';
import { requireTool } from './tools.ts';

interface ModelClass {
  new (data: object): { validate(): void };
}

/** apiVersion/kind -> kubernetes-models class and the client-node model that lists its fields. */
const KINDS: Record<string, { model: ModelClass; fields: string }> = {};
// `model` is unknown because each class's constructor takes its own interface.
function register(apiVersion: string, kind: string, model: unknown, fields = `V1${kind}`): void {
  KINDS[`${apiVersion}/${kind}`] = { model: model as ModelClass, fields };
}
register('v1', 'Pod', Pod);
register('v1', 'ReplicationController', ReplicationController);
register('v1', 'Service', Service);
register('v1', 'ConfigMap', ConfigMap);
register('v1', 'Secret', Secret);
register('v1', 'ServiceAccount', ServiceAccount);
register('v1', 'Namespace', Namespace);
register('apps/v1', 'Deployment', Deployment);
register('apps/v1', 'StatefulSet', StatefulSet);
register('apps/v1', 'DaemonSet', DaemonSet);
register('apps/v1', 'ReplicaSet', ReplicaSet);
register('batch/v1', 'Job', Job);
register('batch/v1', 'CronJob', CronJob);
register('rbac.authorization.k8s.io/v1', 'Role', Role);
register('rbac.authorization.k8s.io/v1', 'RoleBinding', RoleBinding);
register('rbac.authorization.k8s.io/v1', 'ClusterRole', ClusterRole);
register('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', ClusterRoleBinding);
register('admissionregistration.k8s.io/v1', 'MutatingWebhookConfiguration', MutatingWebhookConfiguration);
register('admissionregistration.k8s.io/v1', 'ValidatingWebhookConfiguration', ValidatingWebhookConfiguration);
register('admissionregistration.k8s.io/v1', 'ValidatingAdmissionPolicy', ValidatingAdmissionPolicy);
register('admissionregistration.k8s.io/v1', 'ValidatingAdmissionPolicyBinding', ValidatingAdmissionPolicyBinding);
register('policy/v1', 'PodDisruptionBudget', PodDisruptionBudget);
register('networking.k8s.io/v1', 'NetworkPolicy', NetworkPolicy);

const LIST_FIELDS = new Set(['apiVersion', 'kind', 'metadata', 'items']);
const SCALAR_TYPES = new Set(['string', 'number', 'boolean', 'Date', 'any', 'object', 'IntOrString']);

interface AttributeType {
  baseName: string;
  type: string;
}
type FieldModel = { getAttributeTypeMap(): AttributeType[] };

function fieldModel(typeName: string): FieldModel | undefined {
  const candidate = (clientNode as unknown as Record<string, unknown>)[typeName];
  return typeof candidate === 'function' && 'getAttributeTypeMap' in candidate ? (candidate as FieldModel) : undefined;
}

/** Unknown fields in `value`, read as the client-node model type `type` (e.g. "Array<V1Container>"). */
function unknownFields(value: unknown, type: string, path: string, out: string[]): void {
  if (value === null || value === undefined || SCALAR_TYPES.has(type)) return;
  const array = /^Array<(.+)>$/.exec(type);
  if (array !== null) {
    if (Array.isArray(value)) value.forEach((item, i) => unknownFields(item, array[1]!, `${path}/${i}`, out));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map !== null) {
    if (isObject(value)) {
      for (const [k, v] of Object.entries(value)) unknownFields(v, map[1]!, `${path}/${escapePointer(k)}`, out);
    }
    return;
  }
  const model = fieldModel(type);
  if (model === undefined) {
    out.push(`${path || '/'}: no field list for type ${type} (extend test/helpers/k8s.ts)`);
    return;
  }
  if (!isObject(value)) return; // a type error, which kubernetes-models reports
  const attributes = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value)) {
    const fieldType = attributes.get(k);
    if (fieldType === undefined) out.push(`${path}/${escapePointer(k)}: unknown field "${k}" in ${type}`);
    else unknownFields(v, fieldType, `${path}/${escapePointer(k)}`, out);
  }
}

function escapePointer(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}

interface AjvError {
  instancePath?: string;
  message?: string;
  params?: Record<string, unknown>;
}

function validationProblems(model: ModelClass, obj: object, path: string): string[] {
  try {
    new model(obj).validate();
    return [];
  } catch (err) {
    const errors = (err as { errors?: AjvError[] }).errors;
    if (!Array.isArray(errors)) return [`${path || '/'}: ${(err as Error).message}`];
    return errors.map((e) => {
      const extra = e.params?.allowedValues === undefined ? '' : ` (${JSON.stringify(e.params.allowedValues)})`;
      return `${path}${e.instancePath || '/'}: ${e.message ?? 'invalid'}${extra}`;
    });
  }
}

function problemsAt(obj: unknown, path: string): string[] {
  if (!isObject(obj)) return [`${path || '/'}: not an object`];
  const key = `${String(obj.apiVersion)}/${String(obj.kind)}`;
  if (obj.apiVersion === 'v1' && obj.kind === 'List') {
    const out: string[] = [];
    for (const k of Object.keys(obj)) if (!LIST_FIELDS.has(k)) out.push(`${path}/${k}: unknown field "${k}" in List`);
    if (!Array.isArray(obj.items)) out.push(`${path}/items: expected a list`);
    else obj.items.forEach((item, i) => out.push(...problemsAt(item, `${path}/items/${i}`)));
    return out;
  }
  const kind = KINDS[key];
  if (kind === undefined) return [`${path || '/'}: unknown kind ${key} (not in test/helpers/k8s.ts)`];
  const out = validationProblems(kind.model, obj, path);
  unknownFields(obj, kind.fields, path, out);
  return out;
}

/** Schema problems of a Kubernetes object (or List), each as "<JSON pointer>: <problem>"; [] when valid. */
export function schemaProblems(obj: object): string[] {
  return problemsAt(obj, '');
}

/**
 * Applies an RFC 6902 patch with the real `kubectl patch --local` (the API server's JSON-patch
 * library) and returns the patched object; undefined when the test was skipped for want of kubectl.
 * An empty kubeconfig keeps kubectl off any cluster the machine may be configured for.
 */
export function kubectlPatchLocal(t: TestContext, obj: object, patch: unknown[]): object | undefined {
  const kubectl = requireTool(t, 'kubectl');
  if (kubectl === undefined) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'promux-kubectl-'));
  try {
    const file = join(dir, 'object.json');
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(file, JSON.stringify(obj));
    writeFileSync(kubeconfig, '');
    const result = spawnSync(
      kubectl,
      ['patch', '--local', '-f', file, '--type=json', '-p', JSON.stringify(patch), '-o', 'json'],
      { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', HOME: dir, KUBECONFIG: kubeconfig }, timeout: 30_000 },
    );
    if (result.error !== undefined) throw result.error;
    if (result.status !== 0) {
      throw new Error(`kubectl patch --local failed (exit ${result.status}): ${result.stderr.trim()}`);
    }
    return JSON.parse(result.stdout) as object;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
