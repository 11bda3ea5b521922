// Property tests over generated pods: containers with arbitrary names and ports, scrape annotations
// in every spelling, other annotation keys full of "/" and "~" (JSON Pointer's escapes), all
// three native-sidecar modes and cluster versions; and the same pods reshaped the way other tools
// leave them: Istio's metrics merge (regular or native istio-proxy, istio-init or istio-validation),
// the original multiplexer (long or short flags), kube-rbac-proxy (by image or by flags). Pods carry
// their own pull secrets, a pod-level uid and promux.io/sidecar-* resources (some not quantities, some
// limits below their requests); the configuration adds pull secrets, a uid and gid or null.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import jsonPatch from 'fast-json-patch';
import type { PromuxConfig } from '../../src/config/types.ts';
import { injectPod, STATUS_ANNOTATION, uninjectPod } from '../../src/inject/index.ts';
import type { PodObject, PromuxStatus } from '../../src/inject/index.ts';
import { limitsBelowRequests } from '../../src/config/quantity.ts';
import { parseTargetMap } from '../../src/target-map.ts';
import { kubectlPatchLocal, schemaProblems } from '../helpers/k8s.ts';
import { psaRestrictedProblems } from '../helpers/psa.ts';
import { annotationsOf, config, sidecarOf } from './support.ts';

type Obj = Record<string, unknown>;

const PORT_NAMES = ['metrics', 'http-metrics', 'https-metrics', 'admin-metrics', 'http', 'grpc'];
const FAVOURITE_PORTS = [13434, 13435, 13436, 8080, 9090];

const portArb = fc.oneof(fc.constantFrom(...FAVOURITE_PORTS), fc.integer({ min: 1, max: 65535 }));
const containerArb = fc.record({
  name: fc.oneof(fc.stringMatching(/^[a-z]([-a-z0-9]{0,6}[a-z0-9])?$/), fc.constantFrom('vault-agent', 'istio-proxy', 'app')),
  ports: fc.uniqueArray(
    fc.record({ name: fc.option(fc.constantFrom(...PORT_NAMES), { nil: undefined }), containerPort: portArb }),
    { maxLength: 3, selector: (p) => p.name ?? `#${p.containerPort}` },
  ),
  nativeSidecar: fc.boolean(),
});

const spellingArb = fc.constantFrom(
  { name: 'prometheus', prefix: 'prometheus.io/' },
  { name: 'prometheus', prefix: 'prometheus.io.' },
  { name: 'prometheus', prefix: 'prometheus-io/' },
  { name: 'grafana', prefix: 'k8s.grafana.com/' },
  { name: 'grafana', prefix: 'k8s-grafana-com/' },
);

/** Keys outside every scheme, with the characters JSON Pointer escapes. */
const otherKeyArb = fc.oneof(
  fc.stringMatching(/^[a-z~/.]{1,10}$/).map((k) => `example.com/${k}`),
  fc.stringMatching(/^[a-z]{1,5}~[01]?[a-z]{0,3}$/),
  fc.constantFrom('1', '42'), // integer-like keys, which JavaScript orders first
);

/** Mostly absent: every value that is not a quantity skips the pod. */
const rarely = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> =>
  fc.oneof({ arbitrary: fc.constant(undefined), weight: 9 }, { arbitrary: arb, weight: 1 });
const cpuArb = fc.constantFrom('5m', '10m', '0.1', '250m', '1', '2e-1', 'lots');
const memoryArb = fc.constantFrom('16Mi', '64Mi', '100M', '0.25Gi', '1Gi', '64m');
const RESOURCE_KEYS = {
  cpuRequest: 'promux.io/sidecar-cpu-request',
  memoryRequest: 'promux.io/sidecar-memory-request',
  cpuLimit: 'promux.io/sidecar-cpu-limit',
  memoryLimit: 'promux.io/sidecar-memory-limit',
} as const;
const PULL_SECRETS = ['registry-credentials', 'mirror', 'team'];

const podArb = fc
  .record({
    containers: fc.uniqueArray(containerArb, { minLength: 1, maxLength: 4, selector: (c) => c.name }),
    schemes: fc.uniqueArray(
      fc.record({
        spelling: spellingArb,
        scrape: fc.constantFrom('true', 'true', 'false'),
        port: fc.option(fc.oneof(portArb, fc.constant(-1)), { nil: undefined }), // -1: a declared port
        path: fc.option(fc.constantFrom('/metrics', '/stats', 'probe', '/a,b c'), { nil: undefined }),
        scheme: fc.option(fc.constantFrom('http', 'https'), { nil: undefined }),
        params: fc.uniqueArray(
          fc.tuple(fc.constantFrom('module', 'target', 'format'), fc.string({ maxLength: 6 })),
          { maxLength: 2, selector: (p) => p[0] },
        ),
      }),
      { maxLength: 2, selector: (s) => s.spelling.name },
    ),
    others: fc.dictionary(otherKeyArb, fc.string({ maxLength: 8 }), { maxKeys: 4 }),
    explicitTargets: fc.boolean(),
    exclude: fc.option(fc.constantFrom('app', 'app, sidecar', ''), { nil: undefined }),
    restartPolicy: fc.option(fc.constantFrom('Always', 'OnFailure', 'Never'), { nil: undefined }),
    force: fc.boolean(),
    order: fc.nat(),
    resources: fc.record({ cpuRequest: rarely(cpuArb), memoryRequest: rarely(memoryArb), cpuLimit: rarely(cpuArb), memoryLimit: rarely(memoryArb) }),
    pullSecrets: fc.option(fc.subarray(PULL_SECRETS), { nil: undefined }),
    podUser: fc.option(fc.constantFrom(0, 0, 1000680000), { nil: undefined, freq: 2 }),
  })
  .map((g): PodObject => {
    const annotations: Record<string, string> = {};
    const declared = g.containers.flatMap((c) => c.ports.map((p) => p.containerPort));
    const entries: [string, string][] = [];
    for (const s of g.schemes) {
      const { name, prefix } = s.spelling;
      const key = (k: string) => `${prefix}${k}`;
      entries.push([key('scrape'), s.scrape]);
      const portKey = name === 'grafana' ? 'metrics.portNumber' : 'port';
      if (s.port !== undefined) entries.push([key(portKey), String(s.port === -1 ? (declared[0] ?? 8080) : s.port)]);
      if (s.path !== undefined) entries.push([key(name === 'grafana' ? 'metrics.path' : 'path'), s.path]);
      if (s.scheme !== undefined) entries.push([key(name === 'grafana' ? 'metrics.scheme' : 'scheme'), s.scheme]);
      for (const [param, value] of s.params) {
        entries.push([key(name === 'grafana' ? `metrics.param_${param}` : `param_${param}`), value]);
      }
    }
    entries.push(...Object.entries(g.others));
    // Interleave scheme and other keys so removed params sit between keys that stay.
    const cut = entries.length === 0 ? 0 : g.order % entries.length;
    const rotated = [...entries.slice(cut), ...entries.slice(0, cut)];
    for (const [k, v] of rotated) annotations[k] = v;
    if (g.explicitTargets) {
      const map = g.containers.map((c, i) => `${c.name}:${c.ports[0]?.containerPort ?? 9100 + i}`);
      annotations['promux.io/targets'] = map.join(',');
    }
    if (g.exclude !== undefined) annotations['promux.io/exclude'] = g.exclude;
    if (g.force) annotations['promux.io/inject'] = 'true';
    for (const [name, key] of Object.entries(RESOURCE_KEYS)) {
      const value = g.resources[name as keyof typeof RESOURCE_KEYS];
      if (value !== undefined) annotations[key] = value;
    }
    const toContainer = (c: (typeof g.containers)[number]): Obj => ({
      name: c.name,
      image: `example/${c.name}:1`,
      ...(c.nativeSidecar ? { restartPolicy: 'Always' } : {}),
      ...(c.ports.length > 0
        ? { ports: c.ports.map((p) => (p.name === undefined ? { containerPort: p.containerPort } : { name: p.name, containerPort: p.containerPort })) }
        : {}),
    });
    const [main, ...rest] = g.containers;
    const sidecars = rest.filter((c) => c.nativeSidecar);
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'generated', annotations },
      spec: {
        ...(sidecars.length > 0 ? { initContainers: sidecars.map(toContainer) } : {}),
        containers: [main!, ...rest.filter((c) => !c.nativeSidecar)].map((c) => {
          const { restartPolicy: _ignored, ...container } = toContainer(c);
          return container;
        }),
        ...(g.restartPolicy === undefined ? {} : { restartPolicy: g.restartPolicy }),
        ...(g.pullSecrets === undefined ? {} : { imagePullSecrets: g.pullSecrets.map((name) => ({ name })) }),
        ...(g.podUser === undefined ? {} : { securityContext: { runAsUser: g.podUser } }),
      },
    };
  });

/** What another tool added to the pod before promux saw it. */
const extraArb = fc.oneof(
  fc.record({
    kind: fc.constant('istio' as const),
    native: fc.boolean(),
    init: fc.constantFrom('istio-init', 'istio-validation', undefined),
    scrape: fc.constantFrom('true', 'true', 'false'),
    port: fc.option(portArb, { nil: undefined }), // undefined: a declared port
    path: fc.constantFrom('', '/metrics', '/actuator/prometheus'),
    targets: fc.boolean(),
    excludeInbound: fc.option(fc.constantFrom('', '9443', '9443,13434'), { nil: undefined }),
  }),
  fc.record({
    kind: fc.constant('multiplexer' as const),
    long: fc.boolean(),
    endpoint: fc.constantFrom(undefined, '/prom'),
    port: fc.constantFrom(undefined, 13434, 9999, 8080),
    exclude: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('rbac-proxy' as const), byImage: fc.boolean(), upstreamFirst: fc.boolean(), annotate: fc.boolean() }),
);
type Extra = typeof extraArb extends fc.Arbitrary<infer T> ? T : never;

function addContainer(pod: PodObject, field: 'containers' | 'initContainers', container: Obj, first = false): boolean {
  const spec = pod.spec as Record<string, Obj[] | undefined>;
  const all = [...(spec.containers ?? []), ...(spec.initContainers ?? [])];
  if (all.some((c) => c.name === container.name)) return false;
  const list = spec[field] ?? [];
  spec[field] = first ? [container, ...list] : [...list, container];
  return true;
}

function reshape(pod: PodObject, extra: Extra): PodObject {
  const annotations = annotationsOf(pod);
  const spec = pod.spec as { containers: Obj[] };
  const declared = spec.containers.flatMap((c) => ((c.ports as Obj[] | undefined) ?? []).map((p) => p.containerPort as number));
  const entries = spec.containers.map((c, i) => `${c.name as string}:${(c.ports as Obj[] | undefined)?.[0]?.containerPort ?? 9100 + i}`);
  const setPort = (port: string): void => {
    // The pod's own prometheus.io keys give way to the tool's (Istio clears every spelling too).
    for (const key of Object.keys(annotations)) if (/^prometheus[._-]io[/.]/.test(key)) delete annotations[key];
    Object.assign(annotations, { 'prometheus.io/scrape': 'true', 'prometheus.io/port': port });
  };
  if (extra.kind === 'istio') {
    const app = String(extra.port ?? declared[0] ?? 8080);
    const env = { scrape: extra.scrape, path: extra.path, port: app, ...(extra.targets ? { targets: [{ port: app, path: extra.path }, { port: '9404', path: '' }] } : {}) };
    const proxy: Obj = {
      name: 'istio-proxy', image: 'docker.io/istio/proxyv2:1.24.2', args: ['proxy', 'sidecar'],
      env: [{ name: 'PILOT_CERT_PROVIDER', value: 'istiod' }, { name: 'ISTIO_PROMETHEUS_ANNOTATIONS', value: JSON.stringify(env) }],
      ports: [{ name: 'http-envoy-prom', containerPort: 15090, protocol: 'TCP' }],
      ...(extra.native ? { restartPolicy: 'Always' } : {}),
    };
    if (extra.init !== undefined) {
      addContainer(pod, 'initContainers', { name: extra.init, image: 'docker.io/istio/proxyv2:1.24.2', args: ['istio-iptables', '-b', '*', '-d', '15090,15021,15020'] }, true);
    }
    if (!addContainer(pod, extra.native ? 'initContainers' : 'containers', proxy)) return pod;
    setPort('15020');
    annotations['prometheus.io/path'] = '/stats/prometheus';
    if (extra.excludeInbound !== undefined) annotations['traffic.sidecar.istio.io/excludeInboundPorts'] = extra.excludeInbound;
  } else if (extra.kind === 'multiplexer') {
    const port = extra.port ?? 13434;
    const flags = extra.long
      ? [...entries.map((e) => `--container_to_port_map=${e}`), ...(extra.endpoint === undefined ? [] : [`--endpoint=${extra.endpoint}`]), `--export_to=${port}`]
      : ['-e', String(port), ...entries.flatMap((e) => ['-m', e]), ...(extra.endpoint === undefined ? [] : ['-p', extra.endpoint])];
    if (extra.exclude) flags.push('-x', (spec.containers[0]!.name as string));
    const mux = { name: 'prom-multiplexer-sidecar', image: 'registry.example.com/prometheus-multiplexer-sidecar:0.1.0',
      command: ['/metrics-multiplexer-sidecar', ...flags], ports: [{ name: 'mux-metrics', containerPort: port }] };
    if (addContainer(pod, 'containers', mux)) setPort(String(port));
  } else {
    const upstream = extra.upstreamFirst ? declared[0] ?? 8081 : 8081;
    addContainer(pod, 'containers', {
      name: 'kube-rbac-proxy',
      image: extra.byImage ? 'quay.io/brancz/kube-rbac-proxy:v0.18.1' : 'registry.example.com/authn:1',
      args: ['--secure-listen-address=:8443', `--upstream=http://127.0.0.1:${upstream}/`],
      ports: [{ name: 'https-main', containerPort: 8443 }],
    });
    if (extra.annotate) setPort('8443');
  }
  return pod;
}

const shapedPodArb = fc.oneof(podArb, fc.tuple(podArb, extraArb).map(([pod, extra]) => reshape(pod, extra)));

const configArb = fc
  .record({
    mode: fc.constantFrom<PromuxConfig['sidecar']['nativeSidecar'][]>('never', 'always', 'auto'),
    version: fc.constantFrom('', '1.27', 'v1.29.3-eks-1', '1.33'),
    pullSecrets: fc.subarray(PULL_SECRETS.slice(0, 2)),
    user: fc.constantFrom(65532, null, null, 1000680000),
    group: fc.constantFrom(65532, null, 0),
  })
  .map(({ mode, version, pullSecrets, user, group }) => config((c) => {
    c.sidecar.nativeSidecar = mode;
    c.kubernetesVersion = version;
    c.sidecar.imagePullSecrets = pullSecrets;
    c.sidecar.runAsUser = user;
    c.sidecar.runAsGroup = group;
  }));

function declaredPorts(pod: PodObject, except: string): number[] {
  const spec = pod.spec as Obj;
  return [...((spec.containers as Obj[]) ?? []), ...((spec.initContainers as Obj[] | undefined) ?? [])]
    .filter((c) => c.name !== except)
    .flatMap((c) => ((c.ports as Obj[] | undefined) ?? []).map((p) => p.containerPort as number));
}

/** Nothing scraped twice, nothing that needs what the pod cannot give: what every injected pod must show. */
function checkShape(input: PodObject, pod: PodObject, targets: readonly { container: string; port: number; path: string }[], cfg: PromuxConfig): void {
  const spec = pod.spec as { containers: Obj[]; initContainers?: Obj[]; restartPolicy?: string };
  const all = [...spec.containers, ...(spec.initContainers ?? [])].filter((c) => c.name !== cfg.sidecar.containerName);
  assert.ok(!all.some((c) => JSON.stringify([c.image, c.command, c.args]).includes('multiplexer-sidecar')), 'the original multiplexer is gone');
  const proxy = all.find((c) => c.name === 'istio-proxy');
  if (targets.some((t) => t.container === 'istio-proxy' && t.port === 15020)) {
    assert.ok(!JSON.stringify(proxy?.env ?? []).includes('ISTIO_PROMETHEUS_ANNOTATIONS'), 'the agent no longer merges the app into 15020');
  }
  const sidecar = sidecarOf(pod, cfg.sidecar.containerName);
  if ((spec.restartPolicy ?? 'Always') !== 'Always') assert.equal(sidecar.restartPolicy, 'Always', 'a Job pod gets a native sidecar or none');
  const explicit = annotationsOf(input)['promux.io/targets'] !== undefined;
  const rbac = all.find((c) => c.name === 'kube-rbac-proxy');
  if (rbac !== undefined && !explicit && !JSON.stringify(input).includes('multiplexer-sidecar')) {
    const upstream = Number(/127\.0\.0\.1:(\d+)/.exec(JSON.stringify(rbac.args))![1]);
    assert.ok(!targets.some((t) => t.port === 8443 || t.port === upstream), 'nothing behind kube-rbac-proxy unless the user listed it');
  }
}

/** What the configuration and the pod's platform settings say the sidecar and the pod get. */
function checkPodSettings(input: PodObject, pod: PodObject, cfg: PromuxConfig): void {
  const sidecar = sidecarOf(pod, cfg.sidecar.containerName);
  const context = sidecar.securityContext as Obj;
  assert.equal(context.runAsNonRoot, true);
  assert.equal(context.runAsUser, cfg.sidecar.runAsUser ?? undefined);
  assert.equal(context.runAsGroup, cfg.sidecar.runAsGroup ?? undefined);
  const annotations = annotationsOf(input);
  const resources = (sidecar.resources ?? {}) as { requests?: Record<string, string>; limits?: Record<string, string> };
  for (const list of ['requests', 'limits'] as const) {
    for (const name of ['cpu', 'memory'] as const) {
      const key = `promux.io/sidecar-${name}-${list === 'requests' ? 'request' : 'limit'}`;
      assert.equal(resources[list]?.[name], annotations[key] ?? cfg.sidecar.resources[list][name], key);
    }
  }
  assert.deepEqual(limitsBelowRequests({ requests: resources.requests ?? {}, limits: resources.limits ?? {} }), []);
  const before = ((input.spec as Obj).imagePullSecrets ?? []) as Obj[];
  const after = ((pod.spec as Obj).imagePullSecrets ?? []) as Obj[];
  assert.deepEqual(after.slice(0, before.length), before, 'the pod\'s own pull secrets first, unchanged');
  const names = after.map((s) => s.name);
  for (const name of cfg.sidecar.imagePullSecrets) assert.ok(names.includes(name), `pull secret ${name}`);
  assert.equal(after.length - before.length, cfg.sidecar.imagePullSecrets.filter((n) => !before.some((s) => s.name === n)).length, 'none twice');
}

test('property: injection is consistent, idempotent and undone exactly by uninject', () => {
  let injected = 0;
  const seen = {
    istioMerge: 0, multiplexer: 0, authenticated: 0, nativeJob: 0, needsNative: 0,
    pullSecretsAdded: 0, resourceAnnotations: 0, badResources: 0, runsAsRoot: 0, platformUser: 0,
  };
  fc.assert(
    fc.property(shapedPodArb, configArb, (input, cfg) => {
      const before = JSON.stringify(input);
      const result = injectPod(input, cfg);
      assert.equal(JSON.stringify(input), before, 'input untouched');
      // The webhook's call: the pod as JSON.parse made it, not walked again (parsedJson).
      assert.equal(JSON.stringify(injectPod(JSON.parse(before), cfg, { parsedJson: true })), JSON.stringify(result), 'the same as parsed JSON');
      if (result.skipCode === 'authenticated-metrics') seen.authenticated++;
      if (result.skipCode === 'needs-native-sidecar') seen.needsNative++;
      if (result.skipCode === 'runs-as-root') seen.runsAsRoot++;
      if (result.skipCode === 'invalid-annotation' && result.reason.startsWith('annotation promux.io/sidecar-')) seen.badResources++;
      if (result.decision === 'skip') {
        assert.deepEqual(result.patch, []);
        assert.deepEqual(result.pod, input);
        return;
      }
      injected++;
      const applied = jsonPatch.applyPatch(structuredClone(input), structuredClone(result.patch), true, false).newDocument;
      assert.deepEqual(applied, result.pod, 'the patch applies');

      const sidecar = sidecarOf(result.pod, cfg.sidecar.containerName);
      const port = ((sidecar.ports as Obj[])[0]!.containerPort) as number;
      assert.ok(!declaredPorts(result.pod, cfg.sidecar.containerName).includes(port), `port ${port} collides with a container`);
      assert.ok(!result.targets.some((t) => t.port === port), `port ${port} collides with a target`);
      const args = sidecar.args as string[];
      assert.deepEqual(parseTargetMap(args[args.indexOf('--container_to_port_map') + 1]!), result.targets);
      assert.deepEqual(psaRestrictedProblems({ containers: [sidecar] }), []);
      assert.deepEqual(schemaProblems(result.pod), []);
      checkShape(input, result.pod, result.targets, cfg);
      checkPodSettings(input, result.pod, cfg);
      const written = JSON.parse(annotationsOf(result.pod)[STATUS_ANNOTATION]!) as PromuxStatus;
      if (written.removedEnv !== undefined) seen.istioMerge++;
      if (written.removedContainer !== undefined) seen.multiplexer++;
      if (((input.spec as Obj).restartPolicy ?? 'Always') !== 'Always') seen.nativeJob++;
      if (written.addedImagePullSecrets !== undefined) seen.pullSecretsAdded++;
      if (Object.keys(annotationsOf(input)).some((k) => k.startsWith('promux.io/sidecar-'))) seen.resourceAnnotations++;
      if (cfg.sidecar.runAsUser === null) seen.platformUser++;

      const inputAnnotations = annotationsOf(input);
      const status = JSON.parse(annotationsOf(result.pod)[STATUS_ANNOTATION]!) as { original: Obj };
      for (const [key, value] of Object.entries(inputAnnotations)) {
        if (!(key in status.original)) assert.equal(annotationsOf(result.pod)[key], value, `annotation ${key} survives`);
      }

      const again = injectPod(result.pod, cfg);
      assert.equal(again.skipCode, 'already-injected');
      assert.deepEqual(again.patch, []);
      const restored = uninjectPod(result.pod, cfg);
      assert.equal(JSON.stringify(restored.pod), before, 'uninject restores the pod exactly');
    }),
    { numRuns: 700 },
  );
  assert.ok(injected > 100, `only ${injected} of 700 generated pods were injected`);
  for (const [shape, count] of Object.entries(seen)) assert.ok(count >= 5, `only ${count} generated pods of shape ${shape}`);
});

test('property: kubectl patch --local applies the patch of a sample of generated pods', (t) => {
  const all = fc
    .sample(fc.tuple(shapedPodArb, configArb), { numRuns: 200, seed: 7 })
    .map(([pod, cfg]) => ({ pod, result: injectPod(pod, cfg) }))
    .filter(({ result }) => result.decision === 'inject');
  const pullSecrets = ({ pod, result }: (typeof all)[number], created: boolean): boolean =>
    result.patch.some((op) => op.path.startsWith('/spec/imagePullSecrets')) && ((pod.spec as Obj).imagePullSecrets === undefined) === created;
  // Also one that appends to the pod's own pull secrets, and one that creates the list.
  const injected = [
    ...all.slice(0, 6),
    ...all.filter((a) => pullSecrets(a, false)).slice(0, 1),
    ...all.filter((a) => pullSecrets(a, true)).slice(0, 1),
  ];
  assert.equal(injected.length, 8);
  for (const { pod, result } of injected) {
    const patched = kubectlPatchLocal(t, pod, result.patch);
    if (patched === undefined) return;
    assert.deepEqual(patched, result.pod);
  }
});

/** Every [parent, key] inside a JSON value, to replace one of them. */
function slots(value: unknown, out: [Obj | unknown[], string | number][] = []): [Obj | unknown[], string | number][] {
  if (typeof value !== 'object' || value === null) return out;
  for (const [k, v] of Object.entries(value)) {
    out.push([value as Obj, Array.isArray(value) ? Number(k) : k]);
    slots(v, out);
  }
  return out;
}

test('property: a valid pod with any one value replaced by arbitrary JSON never makes the engine throw', () => {
  fc.assert(
    fc.property(shapedPodArb, fc.jsonValue(), fc.nat(), configArb, (generated, replacement, pick, cfg) => {
      // A copy: fast-check hands the same generated value to later runs while it shrinks, and a
      // replacement put into it once would be walked (and put into itself) the next time.
      const pod = structuredClone(generated);
      const all = slots(pod);
      const [parent, key] = all[pick % all.length]!;
      (parent as Record<string | number, unknown>)[key] = replacement;
      const result = injectPod(pod, cfg);
      if (result.decision === 'inject') {
        const applied = jsonPatch.applyPatch(structuredClone(pod), structuredClone(result.patch), true, false).newDocument;
        // Compared as JSON, as the API server sees both: a -0 the replacement put in the pod is 0 once
        // applyPatch has copied the document through JSON (seed -835346035 found one).
        assert.deepEqual(applied, JSON.parse(JSON.stringify(result.pod)));
        assert.equal(JSON.stringify(uninjectPod(result.pod, cfg).pod), JSON.stringify(pod));
      } else {
        assert.deepEqual(result.patch, []);
      }
    }),
    { numRuns: 300 },
  );
});

test('property: arbitrary JSON never makes the engine throw', () => {
  const shaped = fc.record({
    metadata: fc.oneof(
      fc.jsonValue(),
      fc.record({ annotations: fc.oneof(fc.jsonValue(), fc.dictionary(fc.string(), fc.jsonValue())) }),
    ),
    spec: fc.oneof(fc.jsonValue(), fc.record({ containers: fc.oneof(fc.jsonValue(), fc.array(fc.jsonValue())) })),
  });
  fc.assert(
    fc.property(fc.oneof(fc.jsonValue(), shaped), (input) => {
      const result = injectPod(input, config());
      assert.ok(result.decision === 'skip' || result.patch.length > 0);
      const undone = uninjectPod(input, config());
      assert.equal(typeof undone.reason, 'string');
    }),
    { numRuns: 300 },
  );
});
