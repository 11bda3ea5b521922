// The end-to-end proof: a real Prometheus 2.42 applies the scrape configurations people run to the
// targets Kubernetes pod discovery would make of real-shaped pods, before and after promux injects
// them. The pods' containers are real exporters on 127.0.0.1 and the sidecar is the real
// `promux sidecar`, started from the args `promux inject` wrote. Only the discovery is a stand-in
// (no API server here): pod-sd.ts builds its targets, and Prometheus reads them through file_sd.
//
// One Prometheus serves every scenario, each in its own job (`<configuration>/<pod>/<phase>`).
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import { REPO_ROOT, FIXTURES, requireTool } from '../helpers/tools.ts';
import {
  MARKER,
  startNodeExporter,
  startPromClientExporter,
  startPythonExporter,
  type Exporter,
} from './exporters.ts';
import { asRunningPod, podTargetGroups } from './pod-sd.ts';
import { movePorts, podOf, readManifest } from './pods.ts';
import { freePort } from './processes.ts';
import {
  prometheusDir,
  startPrometheus,
  waitForScrapes,
  type JobProgress,
  type PrometheusServer,
} from './prometheus.ts';
import { injectWithCli, sidecarContainer, startSidecar } from './promux.ts';
import {
  CHART_WITH_CONTAINER,
  CHART_WITH_CONTAINER_ONE_PORT,
  CHART_WITHOUT_INJECTED,
  COMMUNITY_CHART,
  grafanaAutodiscovery,
  prometheusConfig,
  prometheusOperatorPodMonitor,
  promuxRecommended,
  type ScrapeConfiguration,
  type ScrapeJob,
} from './scrape-configs.ts';

type Json = Record<string, unknown>;

// Short, so the test is quick; 2 s leaves the sidecar's fan-out room on a busy 2-core CI machine.
const INTERVAL = '2s';
const SIDECAR = 'promux';
const SIDECAR_PORT_NAME = 'promux-metrics';

const GRAFANA = grafanaAutodiscovery({ scrapeInterval: INTERVAL, scrapeTimeout: INTERVAL });
const RECOMMENDED = promuxRecommended(SIDECAR_PORT_NAME);
const PROMETHEUS_SCHEME_CONFIGS = [
  COMMUNITY_CHART,
  CHART_WITH_CONTAINER,
  CHART_WITH_CONTAINER_ONE_PORT,
  RECOMMENDED,
  CHART_WITHOUT_INJECTED,
];

/** A PodMonitor for the pod's sidecar port, with and without honorLabels (its job label names the pod case). */
function podMonitors(podCase: string): ScrapeConfiguration[] {
  return [true, false].map((honorLabels) =>
    prometheusOperatorPodMonitor({
      namespace: 'monitoring',
      name: `promux-${podCase}-${honorLabels ? 'honor' : 'plain'}`,
      port: SIDECAR_PORT_NAME,
      honorLabels,
    }),
  );
}

type Phase = 'before' | 'after';

/**
 * What a job must show: how many targets, and for each exporter the `container` label of each of
 * its series (with the `exported_container` label in parentheses when there is one).
 */
interface Expected {
  targets: number;
  series: Record<string, string[]>;
}

interface PodCase {
  key: string;
  /** The pod as admitted, its ports moved to the exporters'. */
  pod: Json;
  /** Extra promux configuration for the injection (the sidecar port is always set). */
  promuxConfig?: Json;
  /** A warning `promux inject` must print for this pod. */
  warning?: RegExp;
  /** The containers that serve metrics, each played by an exporter of the same name. */
  exporters: string[];
  configurations: ScrapeConfiguration[];
  /** Before injection, per configuration name: the problem as it shows (no before-job without an entry). */
  before: Record<string, Expected>;
  /**
   * After injection, per configuration name; by default one target, and each exporter's series
   * once, labelled as its own container.
   */
  after?: Record<string, Expected>;
}

/** Every exporter's series exactly once, labelled with its own container. */
function eachOnce(exporters: string[]): Record<string, string[]> {
  return Object.fromEntries(exporters.map((e) => [e, [e]]));
}

/** Every exporter's series once, with the target's container label and its own as exported_container. */
function eachOnceExported(exporters: string[]): Record<string, string[]> {
  return Object.fromEntries(exporters.map((e) => [e, [`${SIDECAR} (exported_container=${e})`]]));
}

function none(exporters: string[]): Record<string, string[]> {
  return Object.fromEntries(exporters.map((e) => [e, []]));
}

test('real Prometheus 2.42 scrapes each promux-injected pod once, with every container labelled (pod discovery: file_sd stand-in)', async (t) => {
  const prometheusBinary = requireTool(t, 'prometheus');
  const python = requireTool(t, 'python3');
  const nodeExporterBinary = requireTool(t, 'prometheus-node-exporter');
  if (prometheusBinary === undefined || python === undefined || nodeExporterBinary === undefined) return;

  const cleanups: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });
  const exporter = async (start: Promise<Exporter>) => {
    const e = await start;
    cleanups.push(() => e.close());
    return e;
  };
  // A declared port that is not a metrics port gets a free port nothing listens on.
  // The OpenFaaS gateway: the gateway serves metrics on 8082 (undeclared), faas-netes on 8081.
  const gateway = await exporter(startPromClientExporter('gateway'));
  const faasNetes = await exporter(startPromClientExporter('faas-netes'));
  const openfaasPod = movePorts(
    podOf(readManifest(join(FIXTURES, 'manifests', 'openfaas-gateway.yaml'))),
    new Map([[8080, await freePort()], [8081, faasNetes.port], [8082, gateway.port]]),
  );

  // examples/: an API whose log forwarder serves no metrics; the API's are under /internal/metrics.
  const ordersApi = await exporter(startPromClientExporter('api', '/internal/metrics'));
  const ordersPod = movePorts(
    readManifest(join(REPO_ROOT, 'examples', 'pod-with-sidecar.yaml')),
    new Map([[8080, ordersApi.port]]),
  );

  // examples/: three containers with metrics; the relay declares no port and serves /prometheus.
  const api = await exporter(startPromClientExporter('api'));
  const payments = await exporter(startPythonExporter(python, 'payments'));
  const relay = await exporter(startNodeExporter(nodeExporterBinary, 'event-relay', '/prometheus'));
  const checkoutPod = movePorts(
    podOf(readManifest(join(REPO_ROOT, 'examples', 'three-container-deployment.yaml'))),
    new Map([[8080, await freePort()], [9090, api.port], [9091, payments.port], [9102, relay.port]]),
  );

  // The same pod annotated for Grafana annotation autodiscovery instead, on the same port.
  const checkoutGrafanaPod = structuredClone(checkoutPod);
  const checkoutAnnotations = (checkoutGrafanaPod.metadata as Json).annotations as Json;
  checkoutAnnotations['k8s.grafana.com/scrape'] = 'true';
  checkoutAnnotations['k8s.grafana.com/metrics.portNumber'] = checkoutAnnotations['prometheus.io/port'];
  delete checkoutAnnotations['prometheus.io/scrape'];
  delete checkoutAnnotations['prometheus.io/port'];

  // The vault-agent pod, scraped through Grafana annotation autodiscovery. Its 30s interval
  // annotation becomes the test's, so the test need not wait 30 s; intervals do not decide targets.
  const myService = await exporter(startPromClientExporter('my-service'));
  const vaultPod = movePorts(
    readManifest(join(FIXTURES, 'manifests', 'vault-agent-pod.yaml')),
    new Map([[3500, myService.port]]),
  );
  ((vaultPod.metadata as Json).annotations as Json)['k8s.grafana.com/metrics.scrapeInterval'] = INTERVAL;

  const openfaas = ['gateway', 'faas-netes'];
  const checkout = ['api', 'payments', 'event-relay'];
  const vault = ['my-service'];
  const cases: PodCase[] = [
    {
      key: 'openfaas-gateway',
      pod: openfaasPod,
      exporters: openfaas,
      configurations: [...PROMETHEUS_SCHEME_CONFIGS, ...podMonitors('openfaas-gateway')],
      before: {
        // Both container ports become podIP:8082 with equal labels: Prometheus keeps one target,
        // the gateway's. faas-netes (8081) is never scraped.
        chart: { targets: 1, series: { gateway: [''], 'faas-netes': [] } },
        'chart-uninjected': { targets: 1, series: { gateway: [''], 'faas-netes': [] } },
        // With a container label the two targets differ: 8082 is scraped twice, once as each container.
        'chart-container': { targets: 2, series: { gateway: ['faas-netes', 'gateway'], 'faas-netes': [] } },
        // No container declares 8082, so nothing is left.
        'chart-container-port': { targets: 0, series: none(openfaas) },
        promux: { targets: 0, series: none(openfaas) },
      },
      after: {
        // Every container's target is now the sidecar's address with a different container label.
        'chart-container': { targets: 3, series: eachOnce(openfaas) },
        podmonitor: { targets: 1, series: eachOnceExported(openfaas) },
        // Left to the recommended job.
        'chart-uninjected': { targets: 0, series: none(openfaas) },
      },
    },
    {
      key: 'orders-api',
      pod: ordersPod,
      exporters: ['api'],
      configurations: [...PROMETHEUS_SCHEME_CONFIGS, ...podMonitors('orders-api')],
      before: {
        // Both containers' targets become podIP:8080 with equal labels: one target, as it should be.
        chart: { targets: 1, series: { api: [''] } },
        'chart-uninjected': { targets: 1, series: { api: [''] } },
        // With a container label the API is scraped twice, the second copy as the log forwarder.
        'chart-container': { targets: 2, series: { api: ['api', 'log-forwarder'] } },
        'chart-container-port': { targets: 1, series: { api: ['api'] } },
        promux: { targets: 0, series: none(['api']) },
      },
      after: {
        'chart-container': { targets: 3, series: eachOnce(['api']) },
        podmonitor: { targets: 1, series: eachOnceExported(['api']) },
        'chart-uninjected': { targets: 0, series: none(['api']) },
      },
    },
    {
      key: 'checkout',
      pod: checkoutPod,
      exporters: checkout,
      configurations: [...PROMETHEUS_SCHEME_CONFIGS, ...podMonitors('checkout')],
      before: {
        chart: { targets: 1, series: { api: [''], payments: [], 'event-relay': [] } },
        'chart-uninjected': { targets: 1, series: { api: [''], payments: [], 'event-relay': [] } },
        'chart-container': {
          targets: 3,
          series: { api: ['api', 'event-relay', 'payments'], payments: [], 'event-relay': [] },
        },
        'chart-container-port': { targets: 1, series: { api: ['api'], payments: [], 'event-relay': [] } },
        promux: { targets: 0, series: none(checkout) },
      },
      after: {
        'chart-container': { targets: 4, series: eachOnce(checkout) },
        podmonitor: { targets: 1, series: eachOnceExported(checkout) },
        'chart-uninjected': { targets: 0, series: none(checkout) },
      },
    },
    {
      key: 'checkout-grafana',
      pod: checkoutGrafanaPod,
      exporters: checkout,
      configurations: [GRAFANA, RECOMMENDED, ...podMonitors('checkout-grafana')],
      before: {
        // Every container's targets point at api's port, each labelled as its container.
        grafana: {
          targets: 3,
          series: { api: ['api', 'event-relay', 'payments'], payments: [], 'event-relay': [] },
        },
        promux: { targets: 0, series: none(checkout) },
      },
      after: {
        podmonitor: { targets: 1, series: eachOnceExported(checkout) },
      },
    },
    {
      key: 'vault-agent',
      pod: vaultPod,
      exporters: vault,
      configurations: [GRAFANA, RECOMMENDED, ...podMonitors('vault-agent')],
      before: {
        // my-service and vault-agent both become podIP:3500: every series twice, once per container.
        grafana: { targets: 2, series: { 'my-service': ['my-service', 'vault-agent'] } },
        promux: { targets: 0, series: none(vault) },
      },
      after: {
        podmonitor: { targets: 1, series: eachOnceExported(vault) },
      },
    },
    {
      // The same pod with promux as a native sidecar (an init container with restartPolicy Always):
      // the Grafana rules keep only non-init containers, so they drop the one target left.
      key: 'vault-agent-native',
      pod: vaultPod,
      promuxConfig: { sidecar: { nativeSidecar: 'always' } },
      warning: /warning: .*Grafana .*will not scrape this pod/,
      exporters: vault,
      configurations: [GRAFANA, RECOMMENDED, ...podMonitors('vault-agent-native')],
      before: {},
      after: {
        grafana: { targets: 0, series: none(vault) },
        podmonitor: { targets: 1, series: eachOnceExported(vault) },
      },
    },
  ];

  // Inject each pod with the real CLI, and run its sidecar on a port of its own (all pods share 127.0.0.1).
  const injected = new Map<string, Json>();
  for (const c of cases) {
    const port = await freePort();
    const config = { ...c.promuxConfig, sidecar: { ...(c.promuxConfig?.sidecar as Json | undefined), port } };
    const result = await injectWithCli(c.pod, config);
    assert.match(result.report, /: injected/, `promux inject did not inject ${c.key}: ${result.report}`);
    if (c.warning !== undefined) assert.match(result.report, c.warning);
    injected.set(c.key, result.pod);
    const sidecar = await startSidecar(sidecarContainer(result.pod, SIDECAR), SIDECAR_PORT_NAME);
    cleanups.push(() => sidecar.child.stop());
  }

  const dir = prometheusDir();
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const jobs: ScrapeJob[] = [];
  const progress = new Map<string, JobProgress>();
  const expectations = new Map<string, Expected>();
  for (const c of cases) {
    for (const configuration of c.configurations) {
      const phases: Phase[] = configuration.name in c.before ? ['before', 'after'] : ['after'];
      for (const phase of phases) {
        const jobName = `${configuration.name}/${c.key}/${phase}`;
        const pod = phase === 'before' ? c.pod : injected.get(c.key)!;
        const groups = podTargetGroups(asRunningPod(pod, { podIP: '127.0.0.1' }));
        const file = join(dir, `${jobName.replaceAll('/', '--')}.json`);
        writeFileSync(file, JSON.stringify(groups, null, 2));
        jobs.push({ jobName, configuration, file });
        progress.set(jobName, { discovered: groups.length, jobLabel: configuration.jobLabel ?? jobName });
        const expected =
          phase === 'before'
            ? c.before[configuration.name]
            : (c.after?.[configuration.name] ?? { targets: 1, series: eachOnce(c.exporters) });
        assert.ok(expected !== undefined, `no expectation for ${jobName}`);
        expectations.set(jobName, expected);
      }
    }
  }

  const prometheus: PrometheusServer = await startPrometheus(prometheusBinary, dir, prometheusConfig(jobs, INTERVAL));
  cleanups.push(() => prometheus.stop());
  const targets = await waitForScrapes(prometheus, progress, 60_000);

  for (const job of jobs) {
    await t.test(job.jobName, async (st) => {
      const expected = expectations.get(job.jobName)!;
      const active = targets.activeTargets.filter((target) => target.scrapePool === job.jobName);
      const down = active.filter((target) => target.health !== 'up');
      assert.deepEqual(down.map((d) => `${d.scrapeUrl}: ${d.lastError}`), [], 'every target is up');
      const listed = active.map((a) => JSON.stringify(a.labels)).join('\n');
      assert.equal(active.length, expected.targets, `targets:\n${listed}`);

      const jobLabel = progress.get(job.jobName)!.jobLabel;
      const samples = await prometheus.query(`${MARKER}{job="${jobLabel}"}`);
      const series: Record<string, string[]> = none(Object.keys(expected.series));
      for (const s of samples) {
        const exportedContainer = s.metric.exported_container;
        const exported = exportedContainer === undefined ? '' : ` (exported_container=${exportedContainer})`;
        (series[s.metric.exporter ?? '?'] ??= []).push(`${s.metric.container ?? ''}${exported}`);
      }
      for (const list of Object.values(series)) list.sort();
      assert.deepEqual(series, expected.series, 'container labels of each exporter\'s series');

      const [total] = await prometheus.query(`count({job="${jobLabel}"})`);
      st.diagnostic(`${job.jobName}: ${active.length} target(s), ${total?.value[1] ?? 0} series`);
    });
  }

  // Several targets on one endpoint (chart-container after injection) each append the same series;
  // Prometheus takes every sample (these counters stay 0), which the docs report.
  const own = await (await fetch(`${prometheus.url}/metrics`)).text();
  for (const line of own.split('\n')) {
    if (/^prometheus_target_scrapes_sample_(out_of_order|duplicate_timestamp)_total /.test(line)) t.diagnostic(line);
  }

  // After injection every mapped container is a promux target that answered, labelled as itself.
  for (const c of cases) {
    await t.test(`${c.key}: the sidecar scraped every mapped container`, async () => {
      const up = await prometheus.query(`promux_target_up{job="${RECOMMENDED.name}/${c.key}/after"}`);
      assert.deepEqual(
        up.map((s) => `${s.metric.container}=${s.value[1]}`).sort(),
        c.exporters.map((e) => `${e}=1`).sort(),
      );
    });
  }
});
