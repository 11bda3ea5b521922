// Every skip reason, and bad input: a skip with a sentence saying why, an empty patch, the pod given
// back unchanged, and never a throw.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { injectPod } from '../../src/inject/index.ts';
import { config, fixturePod, makePod, skip } from './support.ts';

const scraped = { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8080' };
const twoContainers = [{ name: 'app', ports: [8080] }, 'proxy'];

describe('skip reasons', () => {
  test('what injection adds would push the annotations past Kubernetes\' 256 KiB: too-large, before any patch', () => {
    // Each param_* annotation moves into the status annotation (JSON-escaped) and into the target map.
    const near = { ...scraped, 'prometheus.io/param_q': 'x'.repeat(200 * 1024) };
    const result = skip(makePod(near, twoContainers));
    assert.equal(result.skipCode, 'too-large');
    assert.match(result.reason, /^the target map would be \d+ bytes, over promux's limit of 32768 /);
    // The status keeps the original of every key it rewrites, JSON-escaped: 100 KiB of quotes become 200.
    const quoted = {
      'k8s.grafana.com/scrape': 'true', 'k8s.grafana.com/metrics.container': '"'.repeat(100 * 1024),
      'promux.io/targets': 'app:8080', 'other/blob': 'x'.repeat(100 * 1024),
    };
    const grown = skip(makePod(quoted, twoContainers));
    assert.equal(grown.skipCode, 'too-large');
    assert.match(grown.reason, /^the pod's annotations would be \d+ bytes with promux's, over Kubernetes' limit of 262144 \(256 KiB\)/);
  });

  test('90,000 param_* annotations: decided in linear time, one warning, skipped as too large', () => {
    const many: Record<string, string> = { ...scraped };
    for (let i = 0; i < 90_000; i++) many[`prometheus.io/param_p${i}`] = 'v';
    assert.match(skip(makePod(many, twoContainers)).reason, /^the target map would be/);
    // With an explicit map the params are not applied, so every one of them reaches the rewrite.
    const result = skip(makePod({ ...many, 'promux.io/targets': 'app:8080' }, twoContainers));
    assert.equal(result.skipCode, 'too-large');
    assert.match(result.reason, /^the pod's annotations would be/);
    assert.deepEqual(result.warnings, [
      'prometheus.io/param_p0, prometheus.io/param_p1, prometheus.io/param_p2 and 89997 more are not applied to ' +
        "promux.io/targets; put the query in the target's path",
    ]);
  });

  test('opted out by label or annotation promux.io/inject "false"', () => {
    const byLabel = makePod(scraped, twoContainers);
    (byLabel.metadata as { labels: Record<string, string> }).labels = { 'promux.io/inject': 'false' };
    const result = skip(byLabel);
    assert.equal(result.skipCode, 'opted-out');
    assert.equal(result.reason, 'opted out: label promux.io/inject is "false"');
    const byAnnotation = skip(makePod({ ...scraped, 'promux.io/inject': 'false' }, twoContainers));
    assert.equal(byAnnotation.skipCode, 'opted-out');
    assert.equal(byAnnotation.reason, 'opted out: annotation promux.io/inject is "false"');
  });

  test('no scrape annotation in any configured scheme', () => {
    const result = skip(makePod({ 'prometheus.io/port': '8080' }, twoContainers));
    assert.equal(result.skipCode, 'no-scrape-annotation');
    assert.equal(result.reason, 'no scrape annotation (prometheus.io/scrape or k8s.grafana.com/scrape): nothing scrapes this pod');
    assert.equal(skip(makePod({}, twoContainers)).skipCode, 'no-scrape-annotation');
    const bare = makePod({}, twoContainers);
    delete (bare.metadata as { annotations?: unknown }).annotations;
    assert.equal(skip(bare).skipCode, 'no-scrape-annotation');
  });

  test('scrape annotation other than "true"', () => {
    const result = skip(makePod({ ...scraped, 'prometheus.io/scrape': 'false' }, twoContainers));
    assert.equal(result.skipCode, 'scrape-false');
    assert.equal(result.reason, 'prometheus.io/scrape is "false": the pod does not ask to be scraped');
    const both = skip(makePod({ 'prometheus.io.scrape': 'no', 'k8s.grafana.com/scrape': 'false' }, twoContainers));
    assert.equal(both.reason, 'prometheus.io.scrape is "no", k8s.grafana.com/scrape is "false": the pod does not ask to be scraped');
    // Spellings that disagree while none says "true": the pod does not ask, and its other keys are not read.
    const unsure = skip(makePod({ 'prometheus.io/scrape': 'false', 'prometheus.io.scrape': 'True', 'prometheus.io/port': 'x' }, twoContainers));
    assert.equal(unsure.skipCode, 'scrape-false');
    assert.equal(unsure.reason, 'prometheus.io/scrape is "false": the pod does not ask to be scraped');
    const split = skip(makePod({ 'prometheus.io/scrape': 'false', 'prometheus.io.scrape': 'true' }, twoContainers));
    assert.equal(split.skipCode, 'invalid-annotation');
    assert.match(split.reason, /^annotations prometheus.io\/scrape \("false"\) and prometheus.io.scrape \("true"\) are the same key/);
  });

  test('hostNetwork', () => {
    const result = skip(makePod(scraped, twoContainers, { hostNetwork: true }));
    assert.equal(result.skipCode, 'host-network');
    assert.match(result.reason, /^uses hostNetwork: the sidecar would open its port on the node/);
  });

  test('already injected: the status annotation, or a container with the sidecar\'s name', () => {
    const injected = injectPod(fixturePod('Deployment/gateway'), config());
    const again = skip(injected.pod);
    assert.equal(again.skipCode, 'already-injected');
    assert.equal(again.reason, 'already injected (promux.io/status is set)');
    const named = skip(makePod(scraped, [...twoContainers, 'promux']));
    assert.equal(named.skipCode, 'already-injected');
    assert.equal(named.reason, 'already has a container named "promux"');
  });

  test('fewer containers than minContainers, unless promux.io/inject is "true"', () => {
    const result = skip(makePod(scraped, [{ name: 'app', ports: [8080] }]));
    assert.equal(result.skipCode, 'too-few-containers');
    assert.equal(result.reason, 'only 1 container runs (promux injects from 2); annotate promux.io/inject: "true" to inject anyway');
    const three = config((c) => (c.minContainers = 3));
    assert.equal(skip(makePod(scraped, twoContainers), three).reason,
      'only 2 containers run (promux injects from 3); annotate promux.io/inject: "true" to inject anyway');
    assert.equal(injectPod(makePod({ ...scraped, 'promux.io/inject': 'true' }, twoContainers), three).decision, 'inject');
  });

  test('no target: no metrics port, no port annotation, or only excluded containers', () => {
    const none = skip(makePod({ 'prometheus.io/scrape': 'true' }, [{ name: 'app', ports: [['http', 8080]] }, 'proxy']));
    assert.equal(none.skipCode, 'no-target');
    assert.equal(none.reason, 'no target to scrape: no container outside the excluded ones has a port named metrics, ' +
      'http-metrics or *-metrics, and no port annotation points at one; the ports are app http (8080): annotate ' +
      'prometheus.io/port with the port that serves metrics, or promux.io/targets: "<container>:<port>[/<path>]" (several, comma-separated)');
    const portless = skip(makePod({ 'k8s.grafana.com/scrape': 'true' }, ['app', 'proxy']));
    assert.equal(portless.reason, 'no target to scrape: no container outside the excluded ones declares a port, and no port ' +
      'annotation names one: annotate k8s.grafana.com/metrics.portNumber with the port that serves metrics, or promux.io/targets: ' +
      '"<container>:<port>[/<path>]" (several, comma-separated)');
    const excluded = skip(makePod({ ...scraped, 'promux.io/exclude': 'app' }, twoContainers));
    assert.equal(excluded.skipCode, 'no-target');
    assert.match(excluded.warnings.join('\n'), /port 8080 of the excluded container "app"/);
    const explicit = skip(makePod({ 'prometheus.io/scrape': 'true', 'promux.io/targets': 'istio-proxy:15020' }, ['app', 'istio-proxy']));
    assert.equal(explicit.skipCode, 'no-target');
    assert.match(explicit.reason, /^no target to scrape: every container in promux.io\/targets is excluded/);
  });

  test('the checks run in the order a person thinks: injected, opted out, asks for no scrape, then hostNetwork, then the rest', () => {
    const everything = makePod({ 'promux.io/inject': 'false', 'promux.io/status': '{}' }, ['app'], { hostNetwork: true });
    assert.equal(skip(everything).skipCode, 'already-injected');
    const optedOutHost = makePod({ 'promux.io/inject': 'false' }, ['app'], { hostNetwork: true });
    assert.equal(skip(optedOutHost).skipCode, 'opted-out');
    assert.equal(skip(makePod({}, ['app'], { hostNetwork: true })).skipCode, 'no-scrape-annotation');
    assert.equal(skip(makePod({ 'prometheus.io/scrape': 'false' }, ['app'], { hostNetwork: true })).skipCode, 'scrape-false');
    assert.equal(skip(makePod(scraped, ['app'], { hostNetwork: true })).skipCode, 'host-network');
    assert.equal(skip(makePod(scraped, ['app'], { restartPolicy: 'Never' })).skipCode, 'too-few-containers');
  });
});

describe('bad input is an invalid-pod or invalid-annotation skip, never a throw', () => {
  // The spec is read only for a pod that asks to be scraped (the metadata decides most skips).
  const asking = (spec: unknown): Record<string, unknown> => ({ metadata: { annotations: { 'prometheus.io/scrape': 'true' } }, spec });
  const cases: [string, unknown, string][] = [
    ['null', null, 'not a valid Pod: expected an object, got null'],
    ['a string', 'kind: Pod', 'not a valid Pod: expected an object, got string "kind: Pod"'],
    ['a list', [], 'not a valid Pod: expected an object, got a list'],
    ['another kind', { kind: 'Deployment', spec: {} }, 'not a valid Pod: expected kind Pod, got string "Deployment"'],
    ['no spec', { kind: 'Pod', metadata: { annotations: { 'prometheus.io/scrape': 'true' } } }, 'not a valid Pod: spec is missing'],
    ['spec not a mapping', asking('x'), 'not a valid Pod: spec is string "x", not a mapping'],
    ['no containers', asking({}), 'not a valid Pod: spec.containers is missing or empty'],
    ['containers not a list', asking({ containers: {} }), 'not a valid Pod: spec.containers is a mapping, not a list'],
    ['a container not a mapping', asking({ containers: [1] }), 'not a valid Pod: spec.containers[0] is number 1, not a container'],
    ['a container without a name', asking({ containers: [{ image: 'x' }] }),
      'not a valid Pod: spec.containers[0] has no name'],
    ['a container name that is not a DNS label', asking({ containers: [{ name: 'App_1' }] }),
      'not a valid Pod: spec.containers[0].name is string "App_1", not a container name (DNS label)'],
    ['duplicate container names', asking({ containers: [{ name: 'a' }], initContainers: [{ name: 'a' }] }),
      'not a valid Pod: two containers are named "a"'],
    ['a port that is not a number', asking({ containers: [{ name: 'a', ports: [{ containerPort: '80' }] }] }),
      'not a valid Pod: spec.containers[0].ports[0].containerPort is string "80", not a port number'],
    ['metadata not a mapping', { metadata: [], spec: { containers: [{ name: 'a' }] } }, 'not a valid Pod: metadata is a list, not a mapping'],
    ['a non-string annotation', { metadata: { annotations: { 'prometheus.io/port': 8080 } }, spec: { containers: [{ name: 'a' }] } },
      'not a valid Pod: metadata.annotations["prometheus.io/port"] is number 8080, not a string'],
    ['a non-string label', { metadata: { labels: { app: true } }, spec: { containers: [{ name: 'a' }] } },
      'not a valid Pod: metadata.labels["app"] is boolean true, not a string'],
    ['hostNetwork not a boolean', asking({ hostNetwork: 'true', containers: [{ name: 'a' }] }),
      'not a valid Pod: spec.hostNetwork is string "true", not a boolean'],
  ];
  for (const [name, input, reason] of cases) {
    test(name, () => {
      const result = skip(input);
      assert.equal(result.skipCode, 'invalid-pod');
      assert.equal(result.reason, reason);
    });
  }

  test('a pod skipped on its metadata (injected, opted out, not asking to be scraped) is skipped for that, its spec never read', () => {
    const broken = { containers: {}, hostNetwork: 'true' };
    assert.equal(skip({ spec: broken }).skipCode, 'no-scrape-annotation');
    assert.equal(skip({ metadata: { annotations: { 'prometheus.io/scrape': 'false' } }, spec: broken }).skipCode, 'scrape-false');
    assert.equal(skip({ metadata: { labels: { 'promux.io/inject': 'false' } }, spec: broken }).skipCode, 'opted-out');
    assert.equal(skip({ metadata: { annotations: { 'promux.io/status': '{}' } }, spec: 'x' }).skipCode, 'already-injected');
    // Not plain JSON either: only a pod promux would change must be copyable data.
    const unscraped = { spec: { containers: [{ name: 'a', probe: () => 1 }] } };
    assert.equal(injectPod(unscraped, config()).skipCode, 'no-scrape-annotation');
  });

  const annotated: [string, Record<string, string>, string][] = [
    ['an invalid promux.io/targets', { 'promux.io/targets': 'app:http' },
      'annotation promux.io/targets: "app:http": "http" is not a port number (1-65535)'],
    ['a promux.io/targets path the sidecar could never request', { 'promux.io/targets': 'app:80/a\r\nb' },
      'annotation promux.io/targets: "app:80/a\\r\\nb": path "/a\\r\\nb" has a character HTTP does not allow ' +
      'in a request line ("\\r" at 2; percent-encode it)'],
    ['the same endpoint twice in promux.io/targets', { 'promux.io/targets': 'app:80,proxy:81,app:80/metrics' },
      'annotation promux.io/targets: "app:80" appears twice: the same endpoint would be scraped twice'],
    ['promux.io/targets naming a missing container', { 'promux.io/targets': 'app:80,ghost:81' },
      'annotation promux.io/targets names container "ghost", which is not a running container'],
    ['a port annotation that is not a port', { 'prometheus.io/port': 'http' },
      'annotation prometheus.io/port is "http", not a port number'],
    ['a scheme annotation other than http or https', { 'prometheus.io/port': '80', 'prometheus.io/scheme': 'HTTPS' },
      'annotation prometheus.io/scheme is "HTTPS", not http or https'],
    ['a param_* annotation that is not valid Unicode', { 'prometheus.io/port': '80', 'prometheus.io/param_q': 'a\uD800' },
      'annotation prometheus.io/param_q is not valid Unicode text'],
    ['two spellings of one key that disagree', { 'prometheus.io/port': '80', 'prometheus-io/port': '81' },
      'annotations prometheus.io/port ("80") and prometheus-io/port ("81") are the same key to Prometheus but disagree'],
  ];
  for (const [name, annotations, reason] of annotated) {
    test(name, () => {
      const result = skip(makePod({ 'prometheus.io/scrape': 'true', ...annotations }, ['app', 'proxy']));
      assert.equal(result.skipCode, 'invalid-annotation');
      assert.equal(result.reason, reason);
    });
  }

  test('an object that is not plain JSON data', () => {
    const input = asking({ containers: [{ name: 'a', probe: () => 1 }] });
    const result = injectPod(input, config());
    assert.equal(result.skipCode, 'invalid-pod');
    assert.equal(result.reason, 'not a valid Pod: the object is not plain JSON data');
    assert.equal(result.pod, input, 'the input itself, not a copy');
  });
});
