// The webhook's matchConditions, as the chart renders them, evaluated by a real CEL implementation
// (see cel.ts). The rule: a pod the conditions keep out is one the webhook would skip without a word.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { parse as parseYaml } from 'yaml';
import { configFrom } from '../../src/config/load.ts';
import type { PromuxConfig } from '../../src/config/types.ts';
import { INJECT_KEY, sanitizeAnnotationName } from '../../src/inject/annotations.ts';
import { injectPod } from '../../src/inject/index.ts';
import { review } from '../../src/webhook/review.ts';
import { FIXTURES, REPO_ROOT } from '../helpers/tools.ts';
import { matchConditionsEvaluator as evaluator, type MatchCondition } from './cel.ts';
import { CHART, helm, one, parseObjects, type K8sObject } from './render.ts';

/** The chart rendered for a cluster of `kubeVersion`: its matchConditions and its injector config. */
function renderFor(t: TestContext, values: object = {}, kubeVersion = '1.30.0'): { conditions: MatchCondition[] | undefined; config: PromuxConfig } | undefined {
  const result = helm(t, ['template', 'promux', CHART, '--namespace', 'promux', '--kube-version', kubeVersion, '--skip-tests'], values);
  if (result === undefined) return undefined;
  assert.equal(result.status, 0, result.stderr);
  const objects = parseObjects(result.stdout);
  const webhooks = one(objects, 'MutatingWebhookConfiguration').webhooks as { matchConditions?: MatchCondition[] }[];
  const data = (one(objects, 'ConfigMap') as K8sObject & { data: Record<string, string> }).data;
  return { conditions: webhooks[0]!.matchConditions, config: configFrom(parseYaml(data['config.yaml']!), 'chart ConfigMap') };
}

function admissionReview(pod: object): object {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: 'shop', object: pod },
  };
}

/** What the webhook answers: whether it patched, and the warnings kubectl would print. */
function webhookAnswer(pod: object, config: PromuxConfig): { injected: boolean; warnings: string[] } {
  const outcome = review(admissionReview(pod), config, injectPod);
  assert.ok(outcome.ok);
  return { injected: outcome.review.response.patch !== undefined, warnings: outcome.review.response.warnings ?? [] };
}

const container = (name: string, port?: number, portName?: string): object => ({
  name, image: 'example/app', ...(port === undefined ? {} : { ports: [{ containerPort: port, ...(portName === undefined ? {} : { name: portName }) }] }),
});
const pod = (annotations: Record<string, string>, containers: object[], extra: { labels?: Record<string, string>; initContainers?: object[] } = {}): object => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'p', namespace: 'shop', ...(Object.keys(annotations).length > 0 ? { annotations } : {}), ...(extra.labels ? { labels: extra.labels } : {}) },
  spec: { containers, ...(extra.initContainers ? { initContainers: extra.initContainers } : {}) },
});
const two = [container('app', 8080, 'metrics'), container('worker', 9090, 'http-metrics')];

test('matchConditions are rendered on Kubernetes 1.30+ only, and can be turned off', (t) => {
  const modern = renderFor(t);
  if (modern === undefined) return;
  assert.deepEqual(modern.conditions!.map((c) => c.name), ['not-opted-out', 'asks-to-be-scraped', 'enough-containers']);
  for (const c of modern.conditions!) assert.match(c.name, /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'a qualified name');
  assert.equal(renderFor(t, {}, '1.29.4')!.conditions, undefined);
  assert.equal(renderFor(t, { webhook: { matchConditions: false } })!.conditions, undefined);
  // With minContainers 1 every pod has enough containers: no condition for it.
  assert.deepEqual(renderFor(t, { minContainers: 1 })!.conditions!.map((c) => c.name), ['not-opted-out', 'asks-to-be-scraped']);
});

test('matchConditions (real CEL): the pods that are sent, and those kept out', (t) => {
  const rendered = renderFor(t);
  if (rendered === undefined) return;
  const sent = evaluator(rendered.conditions!);
  const cases: [string, object, boolean][] = [
    ['prometheus.io/scrape "true", two containers', pod({ 'prometheus.io/scrape': 'true' }, two), true],
    ['prometheus.io.scrape (another spelling)', pod({ 'prometheus.io.scrape': 'true' }, two), true],
    ['prometheus-io/scrape (another spelling)', pod({ 'prometheus-io/scrape': 'true' }, two), true],
    ['k8s.grafana.com/scrape', pod({ 'k8s.grafana.com/scrape': 'true' }, two), true],
    ['one scheme false, the other true', pod({ 'prometheus.io/scrape': 'false', 'k8s.grafana.com/scrape': 'true' }, two), true],
    ['one container and a native sidecar', pod({ 'prometheus.io/scrape': 'true' }, [two[0]!], { initContainers: [{ ...container('proxy'), restartPolicy: 'Always' }] }), true],
    ['one container, forced by promux.io/inject "true"', pod({ 'prometheus.io/scrape': 'true', [INJECT_KEY]: 'true' }, [two[0]!]), true],
    ['forced without a scrape annotation (the webhook warns)', pod({ [INJECT_KEY]: 'true' }, two), true],
    ['no annotations at all', pod({}, two), false],
    ['scrape "false"', pod({ 'prometheus.io/scrape': 'false' }, two), false],
    ['scrape "True" (not exactly "true")', pod({ 'prometheus.io/scrape': 'True' }, two), false],
    ['a near miss: prometheus.io/scraped', pod({ 'prometheus.io/scraped': 'true' }, two), false],
    ['a near miss: xprometheus.io/scrape', pod({ 'xprometheus.io/scrape': 'true' }, two), false],
    ['upper case is another key: Prometheus.io/scrape', pod({ 'Prometheus.io/scrape': 'true' }, two), false],
    ['one container', pod({ 'prometheus.io/scrape': 'true' }, [two[0]!]), false],
    ['one container and a plain init container', pod({ 'prometheus.io/scrape': 'true' }, [two[0]!], { initContainers: [container('setup')] }), false],
    ['opted out by label', pod({ 'prometheus.io/scrape': 'true' }, two, { labels: { [INJECT_KEY]: 'false' } }), false],
    ['opted out by annotation', pod({ 'prometheus.io/scrape': 'true', [INJECT_KEY]: 'false' }, two), false],
  ];
  for (const [name, p, expected] of cases) {
    assert.equal(sent(p).sent, expected, `${name}: ${JSON.stringify(sent(p).failed)}`);
    if (!expected) {
      const answer = webhookAnswer(p, rendered.config);
      assert.deepEqual(answer, { injected: false, warnings: [] }, `${name}: kept out, so the webhook must have nothing to do or say`);
    }
  }
  // Every pod the examples and fixtures inject is sent.
  for (const file of [join(REPO_ROOT, 'examples', 'two-container-pod.yaml'), join(REPO_ROOT, 'examples', 'pod-with-sidecar.yaml'), join(FIXTURES, 'manifests', 'vault-agent-pod.yaml')]) {
    const example = parseYaml(readFileSync(file, 'utf8')) as object;
    assert.equal(injectPod(example, rendered.config).decision, 'inject', file);
    assert.equal(sent(example).sent, true, file);
  }
});

test('matchConditions follow the configured schemes and minContainers', (t) => {
  const rendered = renderFor(t, {
    minContainers: 3,
    schemes: [{ name: 'custom', prefix: 'metrics.example.com', keys: { scrape: 'enabled', port: 'port', path: 'path', scheme: 'scheme', paramPrefix: 'param_' } }],
  });
  if (rendered === undefined) return;
  const sent = evaluator(rendered.conditions!);
  const three = [...two, container('sidecar', 9102, 'sidecar-metrics')];
  assert.equal(sent(pod({ 'metrics.example.com/enabled': 'true' }, three)).sent, true);
  assert.equal(sent(pod({ 'metrics-example-com/enabled': 'true' }, three)).sent, true);
  assert.equal(sent(pod({ 'metrics.example.com/enabled': 'true' }, two)).sent, false, 'two containers, minContainers 3');
  assert.equal(sent(pod({ 'prometheus.io/scrape': 'true' }, three)).sent, false, 'not a configured scheme any more');
  assert.equal(injectPod(pod({ 'metrics.example.com/enabled': 'true' }, three), rendered.config).decision, 'inject');
});

// Annotation keys built from the pieces of the configured scrape keys, so that spellings, near misses
// and other keys all come up; values from what people write.
const keyPiece = fc.constantFrom('prometheus', 'io', 'scrape', 'k8s', 'grafana', 'com', 'promux', 'inject', 'Prometheus', 'scrapes', 'x');
const separator = fc.constantFrom('.', '/', '-', '_');
const annotationKey = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom('prometheus.io/scrape', 'prometheus.io.scrape', 'k8s-grafana-com/scrape') },
  fc.constantFrom('prometheus.io/scrape', 'k8s.grafana.com/scrape', INJECT_KEY, 'prometheus.io/port', 'promux.io/targets'),
  fc.array(fc.tuple(keyPiece, separator), { minLength: 1, maxLength: 4 }).map((parts) => parts.map(([p, s], i) => (i === 0 ? p : s + p)).join('')),
);
const annotationValue = fc.oneof({ weight: 4, arbitrary: fc.constant('true') }, fc.constantFrom('false', 'True', '', 'yes', '1', '8080'));
const containerArb = (name: string): fc.Arbitrary<object> => fc.record({
  port: fc.option(fc.integer({ min: 1024, max: 9999 }), { nil: undefined }),
  portName: fc.option(fc.constantFrom('metrics', 'http', 'http-metrics', 'app-metrics'), { nil: undefined }),
}).map(({ port, portName }) => container(name, port, port === undefined ? undefined : portName));
const podArb = fc.record({
  annotations: fc.dictionary(annotationKey, annotationValue, { maxKeys: 5, noNullPrototype: true }),
  labels: fc.option(fc.dictionary(fc.constantFrom(INJECT_KEY, 'app'), annotationValue, { maxKeys: 2, noNullPrototype: true }), { nil: undefined }),
  containers: fc.integer({ min: 1, max: 3 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => containerArb(`c${i}`)))),
  initContainers: fc.option(fc.array(fc.boolean(), { minLength: 1, maxLength: 2 }), { nil: undefined }),
}).map(({ annotations, labels, containers, initContainers }) => pod(annotations, containers, {
  ...(labels === undefined ? {} : { labels }),
  ...(initContainers === undefined ? {} : { initContainers: initContainers.map((always, i) => ({ ...container(`init${i}`), ...(always ? { restartPolicy: 'Always' } : {}) })) }),
}));

test('matchConditions (real CEL, any pod): never an error; a pod kept out is one the webhook skips in silence; the same rule as the webhook\'s key matching', (t) => {
  const rendered = renderFor(t);
  if (rendered === undefined) return;
  const sent = evaluator(rendered.conditions!);
  const { config } = rendered;
  const scrapeKeys = new Set(config.schemes.map((s) => sanitizeAnnotationName(`${s.prefix}/${s.keys.scrape}`)));
  let keptOut = 0;
  let injected = 0;
  fc.assert(fc.property(podArb, (p) => {
    const { annotations = {}, labels = {} } = (p as { metadata: { annotations?: Record<string, string>; labels?: Record<string, string> } }).metadata;
    const spec = (p as { spec: { containers: object[]; initContainers?: { restartPolicy?: string }[] } }).spec;
    const forced = annotations[INJECT_KEY] === 'true';
    const running = spec.containers.length + (spec.initContainers ?? []).filter((c) => c.restartPolicy === 'Always').length;
    const expected = labels[INJECT_KEY] !== 'false' && annotations[INJECT_KEY] !== 'false'
      && (forced || Object.entries(annotations).some(([k, v]) => v === 'true' && scrapeKeys.has(sanitizeAnnotationName(k))))
      && (forced || running >= config.minContainers);
    const { sent: isSent } = sent(p);
    assert.equal(isSent, expected);
    const answer = webhookAnswer(p, config);
    if (answer.injected) injected++;
    if (!isSent) {
      keptOut++;
      assert.equal(answer.injected, false);
      // A pod labelled promux.io/inject=false never gets as far as the conditions: the chart's
      // objectSelector keeps it away (the webhook would say "opted out" to one that also says "true").
      if (labels[INJECT_KEY] !== 'false') assert.deepEqual(answer.warnings, []);
    }
  }), { numRuns: 400 });
  // The generator reaches both sides.
  assert.ok(keptOut > 50 && injected > 10, `kept out ${keptOut}, injected ${injected}`);
});
