// Shared by the engine's tests: fixture pods, a small pod builder and the checks every injection
// must pass (patch applies with fast-json-patch and the real kubectl, schema, PSA, round trip).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import jsonPatch from 'fast-json-patch';
import { parseAllDocuments } from 'yaml';
import { defaultConfig } from '../../src/config/defaults.ts';
import type { PromuxConfig } from '../../src/config/types.ts';
import { injectPod, uninjectPod, STATUS_ANNOTATION } from '../../src/inject/index.ts';
import type { InjectResult, PodObject, PromuxStatus } from '../../src/inject/index.ts';
import { kubectlPatchLocal, schemaProblems } from '../helpers/k8s.ts';
import { psaRestrictedProblems } from '../helpers/psa.ts';
import { FIXTURES } from '../helpers/tools.ts';

type Obj = Record<string, unknown>;

/** A workload's pod template as the Pod it stamps out. */
export function podFromTemplate(name: string, namespace: string | undefined, template: Obj): PodObject {
  const metadata = { name, ...(namespace === undefined ? {} : { namespace }), ...(template.metadata as Obj) };
  return { apiVersion: 'v1', kind: 'Pod', metadata, spec: template.spec };
}

function templateOf(doc: Obj): Obj | undefined {
  const spec = doc.spec as Obj | undefined;
  if (doc.kind === 'CronJob') return ((spec?.jobTemplate as Obj).spec as Obj).template as Obj;
  return spec?.template as Obj | undefined;
}

/** Every pod in the fixture manifests (test/fixtures/manifests/*.yaml), keyed "Kind/name" (templates wrapped as Pods). */
export function fixturePods(): Map<string, PodObject> {
  const pods = new Map<string, PodObject>();
  const add = (doc: Obj): void => {
    if (doc.kind === 'List') {
      for (const item of doc.items as Obj[]) add(item);
      return;
    }
    const metadata = doc.metadata as Obj;
    const key = `${String(doc.kind)}/${String(metadata.name)}`;
    if (doc.kind === 'Pod') pods.set(key, doc);
    const template = templateOf(doc);
    if (template === undefined) return;
    pods.set(key, podFromTemplate(String(metadata.name), metadata.namespace as string | undefined, template));
  };
  for (const file of readdirSync(join(FIXTURES, 'manifests')).filter((f) => f.endsWith('.yaml')).sort()) {
    const text = readFileSync(join(FIXTURES, 'manifests', file), 'utf8');
    for (const doc of parseAllDocuments(text)) add(doc.toJS() as Obj);
  }
  return pods;
}

export function fixturePod(key: string): PodObject {
  const pod = fixturePods().get(key);
  assert.ok(pod, `fixture ${key} not found`);
  return pod;
}

export interface ContainerSpec {
  name: string;
  /** [name, port] or a bare port. */
  ports?: ([string, number] | number)[];
}

/** A Pod with the given annotations and containers (image "example/<name>:1"). */
export function makePod(
  annotations: Record<string, string>,
  containers: (ContainerSpec | string)[],
  spec: Obj = {},
): PodObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'app', namespace: 'default', annotations },
    spec: {
      containers: containers.map((c) => {
        const { name, ports } = typeof c === 'string' ? { name: c, ports: undefined } : c;
        const container: Obj = { name, image: `example/${name}:1` };
        if (ports !== undefined) {
          container.ports = ports.map((p) =>
            typeof p === 'number' ? { containerPort: p } : { name: p[0], containerPort: p[1] });
        }
        return container;
      }),
      ...spec,
    },
  };
}

export function config(change: (c: PromuxConfig) => void = () => {}): PromuxConfig {
  const c = defaultConfig();
  change(c);
  return c;
}

export function annotationsOf(pod: PodObject): Record<string, string> {
  return ((pod.metadata as Obj).annotations ?? {}) as Record<string, string>;
}

export function statusOf(pod: PodObject): PromuxStatus {
  const text = annotationsOf(pod)[STATUS_ANNOTATION];
  assert.ok(text !== undefined, 'no status annotation');
  return JSON.parse(text) as PromuxStatus;
}

/** The injected container (regular or native sidecar). */
export function sidecarOf(pod: PodObject, name = 'promux'): Obj {
  const spec = pod.spec as Obj;
  const all = [...((spec.containers as Obj[]) ?? []), ...((spec.initContainers as Obj[] | undefined) ?? [])];
  const found = all.find((c) => c.name === name);
  assert.ok(found, `no ${name} container`);
  return found;
}

export function argsOf(pod: PodObject): string[] {
  return sidecarOf(pod).args as string[];
}

/** The value after `flag` in the sidecar's args. */
export function flagOf(pod: PodObject, flag: string): string | undefined {
  const args = argsOf(pod);
  const i = args.indexOf(flag);
  return i === -1 ? undefined : args[i + 1];
}

/** What every injection must satisfy; `kubectl` false leaves the real kubectl out (property runs). */
export function checkInjection(t: TestContext | undefined, input: PodObject, result: InjectResult, cfg: PromuxConfig): void {
  assert.equal(result.decision, 'inject', result.reason);
  const inputCopy = structuredClone(input);
  const applied = jsonPatch.applyPatch(structuredClone(input), structuredClone(result.patch), true, false).newDocument;
  assert.deepEqual(applied, result.pod, 'fast-json-patch applyPatch gives the mutated pod');
  if (t !== undefined) {
    const patched = kubectlPatchLocal(t, input, result.patch);
    if (patched !== undefined) assert.deepEqual(patched, result.pod, 'kubectl patch --local gives the mutated pod');
  }
  assert.deepEqual(schemaProblems(result.pod), [], 'the mutated pod is a valid Pod');
  const sidecar = sidecarOf(result.pod, cfg.sidecar.containerName);
  assert.deepEqual(psaRestrictedProblems({ containers: [sidecar] }), [], 'the sidecar is PSA restricted');
  assert.deepEqual(input, inputCopy, 'the input is not modified');

  const again = injectPod(result.pod, cfg);
  assert.equal(again.decision, 'skip');
  assert.equal(again.skipCode, 'already-injected');
  assert.deepEqual(again.patch, []);
  const restored = uninjectPod(result.pod, cfg);
  assert.equal(restored.changed, true, restored.reason);
  assert.equal(JSON.stringify(restored.pod), JSON.stringify(input), 'uninject restores the pod exactly');
  const unpatched = jsonPatch.applyPatch(structuredClone(result.pod), structuredClone(restored.patch), true, false)
    .newDocument;
  assert.deepEqual(unpatched, restored.pod, 'the uninject patch applies');
}

export function inject(t: TestContext, input: PodObject, cfg: PromuxConfig = config()): InjectResult {
  const result = injectPod(input, cfg);
  checkInjection(t, input, result, cfg);
  return result;
}

/** A skip: the reason's code, an empty patch and the pod given back unchanged. */
export function skip(input: unknown, cfg: PromuxConfig = config()): InjectResult {
  const before = JSON.stringify(input);
  const result = injectPod(input, cfg);
  assert.equal(result.decision, 'skip', result.reason);
  assert.deepEqual(result.patch, []);
  assert.deepEqual(result.targets, []);
  assert.equal(JSON.stringify(input), before, 'the input is not modified');
  if (typeof input === 'object' && input !== null && !Array.isArray(input)) assert.deepEqual(result.pod, input);
  return result;
}
