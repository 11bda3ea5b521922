// What the pod's platform decides about the sidecar: its image pull secrets, its uid and gid
// (OpenShift assigns its own), and its resources per pod (promux.io/sidecar-*). Every injection goes
// through checkInjection: kubectl applies the patch, the pod is schema-valid and PSA restricted, a
// second injection changes nothing and uninject gives back the input byte for byte.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { STATUS_ANNOTATION, uninjectPod } from '../../src/inject/index.ts';
import type { PodObject } from '../../src/inject/index.ts';
import { config, inject, makePod, sidecarOf, skip, statusOf } from './support.ts';

type Obj = Record<string, unknown>;

const scraped = { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8080' };
const pod = (annotations: Record<string, string> = {}, spec: Obj = {}): PodObject =>
  makePod({ ...scraped, ...annotations }, [{ name: 'app', ports: [8080] }, 'proxy'], spec);
const pullSecretsOf = (p: PodObject): unknown => (p.spec as Obj).imagePullSecrets;

describe('sidecar.imagePullSecrets', () => {
  const cfg = config((c) => (c.sidecar.imagePullSecrets = ['registry-credentials', 'mirror']));

  test('a pod without pull secrets gets the configured ones; uninject takes the list away again', (t) => {
    const result = inject(t, pod(), cfg);
    assert.deepEqual(pullSecretsOf(result.pod), [{ name: 'registry-credentials' }, { name: 'mirror' }]);
    const status = statusOf(result.pod);
    assert.deepEqual(status.addedImagePullSecrets, ['registry-credentials', 'mirror']);
    assert.equal(status.createdImagePullSecrets, true);
    assert.deepEqual(result.patch.filter((op) => op.path.startsWith('/spec/imagePullSecrets')),
      [{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: 'registry-credentials' }, { name: 'mirror' }] }]);
  });

  test('the pod\'s own come first and are never repeated: only the missing ones are appended', (t) => {
    const input = pod({}, { imagePullSecrets: [{ name: 'mirror' }, { name: 'team-registry' }] });
    const result = inject(t, input, cfg);
    assert.deepEqual(pullSecretsOf(result.pod), [{ name: 'mirror' }, { name: 'team-registry' }, { name: 'registry-credentials' }]);
    assert.deepEqual(statusOf(result.pod).addedImagePullSecrets, ['registry-credentials']);
    assert.equal(statusOf(result.pod).createdImagePullSecrets, undefined);
  });

  test('a pod that has them all is left as it is, and the status says nothing of them', (t) => {
    const input = pod({}, { imagePullSecrets: [{ name: 'registry-credentials' }, { name: 'mirror' }] });
    const result = inject(t, input, cfg);
    assert.equal(pullSecretsOf(result.pod), pullSecretsOf(input));
    assert.equal(statusOf(result.pod).addedImagePullSecrets, undefined);
    assert.ok(!result.patch.some((op) => op.path.startsWith('/spec/imagePullSecrets')));
  });

  test('none configured (the default): the pod\'s list is not even read', (t) => {
    const result = inject(t, pod(), config());
    assert.equal(pullSecretsOf(result.pod), undefined);
    assert.ok(!(annotationsStatus(result.pod).includes('ImagePullSecrets')));
  });

  test('a pull secret list that is not one is an invalid pod, named', () => {
    assert.equal(skip(pod({}, { imagePullSecrets: 'registry-credentials' }), cfg).reason,
      'not a valid Pod: spec.imagePullSecrets is string "registry-credentials", not a list');
    assert.equal(skip(pod({}, { imagePullSecrets: null }), cfg).reason, 'not a valid Pod: spec.imagePullSecrets is null, not a list');
    assert.equal(skip(pod({}, { imagePullSecrets: ['mirror'] }), cfg).reason,
      'not a valid Pod: spec.imagePullSecrets[0] is string "mirror", not a reference to a Secret');
  });

  test('uninject takes out what promux added and keeps what was added after it', (t) => {
    const injected = inject(t, pod({}, { imagePullSecrets: [{ name: 'mirror' }] }), cfg).pod;
    ((injected.spec as Obj).imagePullSecrets as Obj[]).push({ name: 'added-later' });
    const result = uninjectPod(injected, cfg);
    assert.deepEqual(pullSecretsOf(result.pod), [{ name: 'mirror' }, { name: 'added-later' }]);
    assert.equal(result.reason, 'uninjected: removed the promux container, removed imagePullSecrets registry-credentials and restored 1 annotation');
  });

  test('a status whose addedImagePullSecrets is not a list of names leaves the pod alone', () => {
    const status = JSON.stringify({ sidecar: 'promux', original: {}, addedImagePullSecrets: [{ name: 'mirror' }] });
    const broken = makePod({ [STATUS_ANNOTATION]: status }, ['app', 'promux']);
    assert.equal(uninjectPod(broken, cfg).reason, 'cannot uninject: promux.io/status: "addedImagePullSecrets" is not a list of Secret names');
  });
});

function annotationsStatus(p: PodObject): string {
  return ((p.metadata as Obj).annotations as Record<string, string>)[STATUS_ANNOTATION]!;
}

describe('sidecar.runAsUser and runAsGroup', () => {
  test('null leaves both to the platform; runAsNonRoot stays, and the sidecar is still PSA restricted', (t) => {
    const cfg = config((c) => {
      c.sidecar.runAsUser = null;
      c.sidecar.runAsGroup = null;
    });
    const result = inject(t, pod({}, { securityContext: { runAsUser: 1000680000, fsGroup: 1000680000 } }), cfg);
    assert.deepEqual(sidecarOf(result.pod).securityContext, {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  test('a configured uid and gid (gid 0, OpenShift\'s convention, is allowed)', (t) => {
    const cfg = config((c) => {
      c.sidecar.runAsUser = 1000680000;
      c.sidecar.runAsGroup = 0;
    });
    const context = sidecarOf(inject(t, pod(), cfg).pod).securityContext as Obj;
    assert.equal(context.runAsUser, 1000680000);
    assert.equal(context.runAsGroup, 0);
  });

  test('a pod running as root: the sidecar would inherit uid 0, which its runAsNonRoot forbids: skipped', () => {
    const cfg = config((c) => (c.sidecar.runAsUser = null));
    const result = skip(pod({}, { securityContext: { runAsUser: 0 } }), cfg);
    assert.equal(result.skipCode, 'runs-as-root');
    assert.equal(result.reason,
      'the pod\'s securityContext.runAsUser is 0 and sidecar.runAsUser is null in promux\'s configuration: the sidecar ' +
        'would run as root, which its runAsNonRoot forbids, so the kubelet would not start it and the pod would never be ' +
        'ready; set runAsUser on the pod\'s containers instead of the pod, or sidecar.runAsUser');
  });

  test('with a configured uid the pod\'s own does not matter', (t) => {
    const result = inject(t, pod({}, { securityContext: { runAsUser: 0 } }));
    assert.equal((sidecarOf(result.pod).securityContext as Obj).runAsUser, 65532);
  });
});

describe('promux.io/sidecar-* resources', () => {
  const resourcesOf = (p: PodObject): unknown => sidecarOf(p).resources;

  test('all four annotations', (t) => {
    const result = inject(t, pod({
      'promux.io/sidecar-cpu-request': '50m', 'promux.io/sidecar-memory-request': '128Mi',
      'promux.io/sidecar-cpu-limit': '0.5', 'promux.io/sidecar-memory-limit': '1Gi',
    }));
    assert.deepEqual(resourcesOf(result.pod), { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '1Gi', cpu: '0.5' } });
    assert.deepEqual(statusOf(result.pod).original, { 'prometheus.io/port': '8080' }, 'the annotations are read, never changed');
  });

  test('one annotation replaces one value: the configured others stay', (t) => {
    const result = inject(t, pod({ 'promux.io/sidecar-memory-limit': '512Mi' }));
    assert.deepEqual(resourcesOf(result.pod), { requests: { cpu: '10m', memory: '48Mi' }, limits: { memory: '512Mi' } });
    const cpu = inject(t, pod({ 'promux.io/sidecar-cpu-limit': '10m' }));
    assert.deepEqual(resourcesOf(cpu.pod), { requests: { cpu: '10m', memory: '48Mi' }, limits: { memory: '128Mi', cpu: '10m' } });
  });

  test('a value that is not a quantity skips the pod, naming the annotation', () => {
    const cases: [Record<string, string>, string][] = [
      [{ 'promux.io/sidecar-cpu-request': 'lots' },
        'annotation promux.io/sidecar-cpu-request is "lots", not a Kubernetes quantity such as "10m" or "0.5"'],
      [{ 'promux.io/sidecar-memory-limit': '512MB' },
        'annotation promux.io/sidecar-memory-limit is "512MB", not a Kubernetes quantity such as "64Mi" or "1G"'],
      [{ 'promux.io/sidecar-memory-request': '128m' },
        'annotation promux.io/sidecar-memory-request is "128m", not a whole number of bytes such as "64Mi" (the suffix m means thousandths: "64m" is 0.064 bytes)'],
      [{ 'promux.io/sidecar-cpu-limit': '' }, 'annotation promux.io/sidecar-cpu-limit is "", not a Kubernetes quantity such as "10m" or "0.5"'],
      [{ 'promux.io/sidecar-cpu-limit': '-1' }, 'annotation promux.io/sidecar-cpu-limit is "-1", not a Kubernetes quantity such as "10m" or "0.5"'],
    ];
    for (const [annotations, reason] of cases) {
      const result = skip(pod(annotations));
      assert.equal(result.skipCode, 'invalid-annotation');
      assert.equal(result.reason, reason);
    }
  });

  test('a limit below its request is refused as the API server would refuse the pod', () => {
    const cases: [Record<string, string>, string][] = [
      [{ 'promux.io/sidecar-memory-limit': '32Mi' },
        'annotation promux.io/sidecar-memory-limit is "32Mi", below the sidecar\'s memory request of 48Mi ' +
          '(sidecar.resources.requests.memory in promux\'s configuration): the API server would refuse the pod ' +
          '(a memory request must not exceed its limit); set promux.io/sidecar-memory-request too'],
      [{ 'promux.io/sidecar-memory-request': '256Mi' },
        'annotation promux.io/sidecar-memory-request is "256Mi", above the sidecar\'s memory limit of 128Mi ' +
          '(sidecar.resources.limits.memory in promux\'s configuration): the API server would refuse the pod ' +
          '(a memory request must not exceed its limit); set promux.io/sidecar-memory-limit too'],
      [{ 'promux.io/sidecar-cpu-request': '0.2', 'promux.io/sidecar-cpu-limit': '199m' },
        'annotation promux.io/sidecar-cpu-limit is "199m", below promux.io/sidecar-cpu-request ("0.2"): the API server ' +
          'would refuse the pod (a cpu request must not exceed its limit)'],
    ];
    for (const [annotations, reason] of cases) assert.equal(skip(pod(annotations)).reason, reason);
  });

  test('a limit equal to its request, however spelled, and a request raised with its limit', (t) => {
    const result = inject(t, pod({ 'promux.io/sidecar-cpu-request': '0.25', 'promux.io/sidecar-cpu-limit': '250m' }));
    assert.deepEqual(resourcesOf(result.pod), { requests: { cpu: '0.25', memory: '48Mi' }, limits: { memory: '128Mi', cpu: '250m' } });
    const both = inject(t, pod({ 'promux.io/sidecar-memory-request': '256Mi', 'promux.io/sidecar-memory-limit': '0.25Gi' }));
    assert.deepEqual(resourcesOf(both.pod), { requests: { cpu: '10m', memory: '256Mi' }, limits: { memory: '0.25Gi' } });
  });

  test('a limit without a configured request is fine: the API server sets the request to it', (t) => {
    const cfg = config((c) => (c.sidecar.resources = { requests: {}, limits: {} }));
    const result = inject(t, pod({ 'promux.io/sidecar-memory-limit': '16Mi' }), cfg);
    assert.deepEqual(resourcesOf(result.pod), { limits: { memory: '16Mi' } });
  });
});
