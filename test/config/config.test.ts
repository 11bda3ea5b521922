import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { defaultConfig, DEFAULT_EXCLUDED_CONTAINERS } from '../../src/config/defaults.ts';
import { ConfigError, configFrom, loadConfig } from '../../src/config/load.ts';
import { injectPod } from '../../src/inject/index.ts';
import { VERSION } from '../../src/version.ts';

const dir = mkdtempSync(join(tmpdir(), 'promux-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
function file(text: string): string {
  const path = join(dir, `config-${++files}.yaml`);
  writeFileSync(path, text);
  return path;
}

describe('defaults', () => {
  test('the documented defaults', () => {
    const c = defaultConfig();
    assert.deepEqual(c.sidecar, {
      image: `ghcr.io/promux/promux:${VERSION}`,
      imagePullPolicy: 'IfNotPresent',
      imagePullSecrets: [],
      containerName: 'promux',
      port: 13434,
      portName: 'promux-metrics',
      containerLabel: 'container',
      scrapeTimeout: '10s',
      scrapeInterval: '0',
      maxTargetBytes: '32MiB',
      resources: { requests: { cpu: '10m', memory: '48Mi' }, limits: { memory: '128Mi' } },
      runAsUser: 65532,
      runAsGroup: 65532,
      nativeSidecar: 'auto',
    });
    assert.equal(c.kubernetesVersion, '', 'unknown until the webhook asks the API server');
    assert.equal(c.minContainers, 2);
    for (const name of ['vault-agent', 'vault-agent-init', 'istio-proxy', 'linkerd-proxy']) assert.ok(c.excludeContainers.includes(name), name);
    assert.deepEqual(c.schemes.map((s) => `${s.name}=${s.prefix}/${s.keys.scrape}`), [
      'prometheus=prometheus.io/scrape',
      'grafana=k8s.grafana.com/scrape',
    ]);
  });

  test('each call returns a fresh copy', () => {
    const a = defaultConfig();
    a.excludeContainers.push('mine');
    a.schemes[0]!.keys.port = 'changed';
    const b = defaultConfig();
    assert.deepEqual(b.excludeContainers, DEFAULT_EXCLUDED_CONTAINERS);
    assert.equal(b.schemes[0]!.keys.port, 'port');
  });

  test('a file spelling out every key with its default value gives the defaults', () => {
    assert.deepEqual(loadConfig(file(`
sidecar:
  image: ghcr.io/promux/promux:${VERSION}
  imagePullPolicy: IfNotPresent
  imagePullSecrets: []
  containerName: promux
  port: 13434
  portName: promux-metrics
  containerLabel: container
  scrapeTimeout: 10s
  scrapeInterval: "0"
  maxTargetBytes: 32MiB
  resources:
    requests: { cpu: 10m, memory: 48Mi }
    limits: { memory: 128Mi }
  runAsUser: 65532
  runAsGroup: 65532
  nativeSidecar: auto
kubernetesVersion: ""
excludeContainers:
  - vault-agent
  - vault-agent-init
  - istio-proxy
  - istio-init
  - istio-validation
  - linkerd-proxy
  - linkerd-init
  - linkerd-network-validator
minContainers: 2
schemes:
  - name: prometheus
    prefix: prometheus.io
    keys: { scrape: scrape, port: port, path: path, scheme: scheme, paramPrefix: param_ }
  - name: grafana
    prefix: k8s.grafana.com
    keys:
      scrape: scrape
      port: metrics.portNumber
      path: metrics.path
      scheme: metrics.scheme
      paramPrefix: metrics.param_
      portName: metrics.portName
      container: metrics.container
`)), defaultConfig());
  });

  test('no file, an empty file and a file of comments give the defaults', () => {
    assert.deepEqual(loadConfig(), defaultConfig());
    assert.deepEqual(loadConfig(file('')), defaultConfig());
    assert.deepEqual(loadConfig(file('# nothing here\n')), defaultConfig());
  });
});

describe('a file overrides the defaults', () => {
  test('mappings merge key by key; lists and scalars replace', () => {
    const c = loadConfig(file(`
sidecar:
  port: 9999
  image: registry.example.com/promux:1.2.3
  scrapeInterval: 30s
  resources:
    limits:
      cpu: 100m
  nativeSidecar: never
kubernetesVersion: v1.31.2
excludeContainers: [envoy]
minContainers: 3
`));
    const expected = defaultConfig();
    expected.sidecar.port = 9999;
    expected.sidecar.image = 'registry.example.com/promux:1.2.3';
    expected.sidecar.scrapeInterval = '30s';
    expected.sidecar.resources.limits = { memory: '128Mi', cpu: '100m' };
    expected.sidecar.nativeSidecar = 'never';
    expected.kubernetesVersion = 'v1.31.2';
    expected.excludeContainers = ['envoy'];
    expected.minContainers = 3;
    assert.deepEqual(c, expected);
  });

  test('a scheme list replaces the defaults; Grafana-only keys may be left out', () => {
    const c = loadConfig(file(`
schemes:
  - name: custom
    prefix: metrics.example.com
    keys: { scrape: enabled, port: port, path: path, scheme: scheme, paramPrefix: param_ }
`));
    assert.deepEqual(c.schemes, [{
      name: 'custom',
      prefix: 'metrics.example.com',
      keys: { scrape: 'enabled', port: 'port', path: 'path', scheme: 'scheme', paramPrefix: 'param_', portName: '', container: '' },
    }]);
  });

  test('runAsUser and runAsGroup: a uid, or null to leave it to the platform (OpenShift assigns one)', () => {
    const c = loadConfig(file('sidecar:\n  runAsUser: null\n  runAsGroup: ~\n'));
    assert.equal(c.sidecar.runAsUser, null);
    assert.equal(c.sidecar.runAsGroup, null);
    const ids = loadConfig(file('sidecar: { runAsUser: 1000680000, runAsGroup: 0 }\n'));
    assert.equal(ids.sidecar.runAsUser, 1000680000);
    assert.equal(ids.sidecar.runAsGroup, 0, 'the root group is OpenShift\'s convention, and not root');
  });

  test('imagePullSecrets: Secret names', () => {
    const c = loadConfig(file('sidecar:\n  imagePullSecrets: [registry-credentials, mirror.example.com]\n'));
    assert.deepEqual(c.sidecar.imagePullSecrets, ['registry-credentials', 'mirror.example.com']);
  });

  test('the loaded configuration drives the engine', () => {
    const c = loadConfig(file('excludeContainers: []\nsidecar: { port: 9999 }\n'));
    const pod = {
      metadata: { annotations: { 'prometheus.io/scrape': 'true' } },
      spec: {
        containers: [
          { name: 'app', ports: [{ name: 'metrics', containerPort: 9100 }] },
          { name: 'vault-agent', ports: [{ name: 'metrics', containerPort: 9101 }] },
        ],
      },
    };
    const result = injectPod(pod, c);
    assert.deepEqual(result.targets.map((t) => t.container), ['app', 'vault-agent']);
    assert.match(result.reason, /port 9999/);
  });
});

describe('errors name the file and the key', () => {
  const fails = (text: string, ...expected: string[]): void => {
    const path = file(text);
    assert.throws(() => loadConfig(path), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.ok(err.message.startsWith(`${path}: `), err.message);
      for (const e of expected) assert.ok(err.message.includes(e), `${JSON.stringify(e)} not in:\n${err.message}`);
      return true;
    });
  };

  test('an unknown key, with the keys known there', () => {
    fails('sidecar:\n  prot: 9999\n', 'invalid configuration', 'sidecar.prot: unknown key (known here: image, imagePullPolicy, imagePullSecrets, containerName, port,');
    fails('excludedContainers: [a]\n', 'excludedContainers: unknown key');
    fails('schemes:\n  - { name: x, prefix: y, keys: { scrape: s, port: p, path: p, scheme: s, paramPrefix: p, portname: n } }\n',
      'schemes[0].keys.portname: unknown key');
  });

  test('a wrong type, with what was expected and what was found', () => {
    fails('sidecar: { port: "13434" }\n', 'sidecar.port: expected an integer from 1 to 65535, got string "13434"');
    fails('sidecar: { port: 70000 }\n', 'sidecar.port: expected an integer from 1 to 65535, got number 70000');
    fails('kubernetesVersion: 1.30\n', 'kubernetesVersion: expected a Kubernetes version as a quoted string such as "1.31" ("" for unknown), got number 1.3');
    fails('kubernetesVersion: latest\n', 'kubernetesVersion: expected a Kubernetes version as a quoted string');
    fails('sidecar: { nativeSidecar: true }\n', 'sidecar.nativeSidecar: expected one of "never", "always", "auto", got boolean true');
    fails('sidecar: { scrapeTimeout: 10 seconds }\n', 'sidecar.scrapeTimeout: expected a duration such as "10s" or "500ms"');
    fails('sidecar: { maxTargetBytes: lots }\n', 'sidecar.maxTargetBytes: expected a size such as "32MiB"');
    fails('sidecar: { portName: Promux_Metrics }\n', 'sidecar.portName: expected a port name');
    fails('sidecar: { containerName: Promux }\n', 'sidecar.containerName: expected a DNS label');
    fails('sidecar: { containerLabel: __name__ }\n', 'sidecar.containerLabel: expected a Prometheus label name');
    fails('sidecar: { containerLabel: endpoint }\n', 'sidecar.containerLabel: expected a Prometheus label name other than endpoint and reason');
    fails('sidecar: { resources: { requests: { cpu: lots } } }\n', 'sidecar.resources.requests.cpu: expected a Kubernetes quantity');
    fails('excludeContainers: vault-agent\n', 'excludeContainers: expected a list, got string "vault-agent"');
    fails('excludeContainers: [""]\n', 'excludeContainers[0]: expected a non-empty string');
    fails('sidecar: 3\n', 'sidecar: expected a mapping, got number 3');
    fails('- a\n- b\n', '(top level): expected a mapping, got a list');
  });

  test('the sidecar\'s user, group and pull secrets', () => {
    fails('sidecar: { runAsUser: 0 }\n', 'sidecar.runAsUser: expected an integer from 1 to 2147483647 (never 0: the sidecar does not run as root), or null');
    fails('sidecar: { runAsUser: "65532" }\n', 'sidecar.runAsUser: expected an integer', 'got string "65532"');
    fails('sidecar: { runAsGroup: -1 }\n', 'sidecar.runAsGroup: expected an integer from 0 to 2147483647, or null to leave it to the platform, got number -1');
    fails('sidecar: { imagePullSecrets: regcred }\n', 'sidecar.imagePullSecrets: expected a list, got string "regcred"');
    fails('sidecar: { imagePullSecrets: [{ name: regcred }] }\n', 'sidecar.imagePullSecrets[0]: expected a Secret name (lower case, digits, "-" and "."), got a mapping');
    fails('sidecar: { imagePullSecrets: [Reg_Cred] }\n', 'sidecar.imagePullSecrets[0]: expected a Secret name');
  });

  test('resources: memory in whole bytes, any Kubernetes quantity', () => {
    fails('sidecar: { resources: { limits: { memory: 128m } } }\n',
      'sidecar.resources.limits.memory: expected a whole number of bytes such as "64Mi" (the suffix m means thousandths: "64m" is 0.064 bytes), got string "128m"');
    fails('sidecar: { resources: { requests: { cpu: -1 } } }\n', 'sidecar.resources.requests.cpu: expected a Kubernetes quantity such as "10m" or "0.5", got number -1');
    fails('sidecar: { resources: { requests: { memory: 64MiB } } }\n', 'sidecar.resources.requests.memory: expected a Kubernetes quantity such as "64Mi" or "1G", got string "64MiB"');
    assert.deepEqual(loadConfig(file('sidecar: { resources: { requests: { cpu: "0.05", memory: 100M }, limits: { cpu: "2e-1", memory: 0.25Gi } } }\n')).sidecar.resources,
      { requests: { cpu: '0.05', memory: '100M' }, limits: { cpu: '2e-1', memory: '0.25Gi' } });
  });

  test('a limit below its request, which the API server would refuse in every injected pod, naming the default', () => {
    fails('sidecar: { resources: { requests: { memory: 256Mi } } }\n',
      'sidecar.resources.limits.memory: 128Mi (the built-in default) is below sidecar.resources.requests.memory 256Mi: ' +
        'the API server would refuse every pod promux injects');
    fails('sidecar: { resources: { limits: { memory: 32Mi } } }\n',
      'sidecar.resources.limits.memory: 32Mi is below sidecar.resources.requests.memory 48Mi (the built-in default)');
    fails('sidecar: { resources: { requests: { cpu: "0.5" }, limits: { cpu: 499m } } }\n',
      'sidecar.resources.limits.cpu: 499m is below sidecar.resources.requests.cpu 0.5:');
    // Equal is fine, however it is spelled.
    assert.deepEqual(loadConfig(file('sidecar: { resources: { requests: { cpu: "0.3" }, limits: { cpu: 300m, memory: 48Mi } } }\n')).sidecar.resources,
      { requests: { cpu: '0.3', memory: '48Mi' }, limits: { cpu: '300m', memory: '48Mi' } });
  });

  test('every problem is listed, not only the first', () => {
    fails('sidecar: { port: 0, imagePullPolicy: sometimes }\nminContainers: 0\n',
      'sidecar.port:', 'sidecar.imagePullPolicy:', 'minContainers: expected an integer from 1 to 1000, got number 0');
  });

  test('an incomplete scheme names the missing keys', () => {
    fails('schemes:\n  - name: x\n    keys: { scrape: s }\n',
      'schemes[0].prefix: missing', 'schemes[0].keys.port: missing', 'schemes[0].keys.paramPrefix: missing');
  });

  test('YAML that does not parse, and duplicate keys', () => {
    fails('sidecar: [\n', 'not valid YAML');
    fails('minContainers: 2\nminContainers: 3\n', 'not valid YAML', 'unique');
  });

  test('a file that cannot be read', () => {
    const missing = join(dir, 'missing.yaml');
    assert.throws(() => loadConfig(missing), (err: unknown) =>
      err instanceof ConfigError && err.message === `${missing}: cannot read: no such file or directory`);
  });

  test('configFrom names its source the same way', () => {
    assert.throws(() => configFrom({ minContainers: 'two' }, 'values.yaml (config)'),
      /^ConfigError: values.yaml \(config\): invalid configuration:\n {2}minContainers: expected an integer/);
    assert.deepEqual(configFrom(undefined, 'x'), defaultConfig());
  });
});
