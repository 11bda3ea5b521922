// What `promux proxy` scrapes of one pod, from the pod alone: no I/O. A pod is scraped when it runs
// (phase Running, with an IP) and asks to be (a scrape annotation says "true"):
// - injected by promux (promux.io/status): its sidecar's port, once; the sidecar's series carry
//   their container label already;
// - else promux.io/targets: each entry, on the pod's IP, labelled with its container;
// - else the scrape annotations: the port they name (prometheus.io/port; Grafana's
//   metrics.portNumber or metrics.portName), else the pod's first port named metrics, http-metrics
//   or *-metrics, else 80 (as the original metrics-k8s-proxy and Prometheus do), with the path,
//   scheme and param_* the annotations ask for.
// Readiness does not matter: a pod that is not ready is scraped, as Prometheus' pod discovery does
// (its metrics may tell why).
import { GRAFANA_SCHEME, PROMETHEUS_SCHEME } from '../config/defaults.ts';
import { EXCLUDE_ANNOTATION, readSchemes, scrapeKeyOf, STATUS_ANNOTATION, TARGETS_ANNOTATION } from '../inject/annotations.ts';
import { AnnotationError, PodError, readPod, type PodView } from '../inject/pod.ts';
import { applyOptions, isMetricsPortName, parseTargetsAnnotation, resolveEndpoints, scrapeOptions } from '../inject/targets.ts';
import { isObject } from '../json.ts';
import type { TargetLabels } from '../sidecar/exposition/types.ts';
import type { ScrapeTarget } from '../sidecar/fetch.ts';
import { DEFAULT_METRICS_PATH, endpointOf, type Target } from '../target-map.ts';

const SCHEMES = [PROMETHEUS_SCHEME, GRAFANA_SCHEME];
/** Where Prometheus, and the original proxy, scrape a pod whose annotations name no port. */
const DEFAULT_PORT = 80;

/** The names of the labels the proxy adds (--namespace_label, --pod_label, --container_label). */
export interface LabelNames {
  namespace: string;
  pod: string;
  container: string;
}

export interface PodTarget extends ScrapeTarget {
  host: string;
  labels: TargetLabels;
}

export type PodScrape =
  | { scraped: true; targets: PodTarget[]; warnings: string[] }
  | { scraped: false; reason: string };

/** namespace/name of a pod object, or undefined when it has none. */
export function podKey(pod: unknown): string | undefined {
  const metadata = isObject(pod) ? pod.metadata : undefined;
  if (!isObject(metadata) || typeof metadata.name !== 'string' || typeof metadata.namespace !== 'string') return undefined;
  return `${metadata.namespace}/${metadata.name}`;
}

function field(object: unknown, name: string): unknown {
  return isObject(object) ? object[name] : undefined;
}

/** The sidecar's port from promux.io/status, or undefined when the annotation is not promux's status. */
function sidecarPort(status: string): number | undefined {
  let value: unknown;
  try {
    value = JSON.parse(status);
  } catch {
    return undefined;
  }
  const port = field(value, 'port');
  return Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65535 ? port as number : undefined;
}

function explicitTargets(view: PodView, text: string): Target[] {
  const listed = parseTargetsAnnotation(text);
  const unknown = listed.find((t) => !view.running.some((c) => c.name === t.container));
  if (unknown !== undefined) {
    throw new AnnotationError(`annotation ${TARGETS_ANNOTATION} names container "${unknown.container}", which is not a running container`);
  }
  const excluded = new Set((view.annotations[EXCLUDE_ANNOTATION] ?? '').split(',').map((s) => s.trim()));
  return listed.filter((t) => !excluded.has(t.container));
}

/** The one endpoint of a pod scraped as a whole, from its scrape annotations (see the top of this file). */
function annotatedTarget(view: PodView, active: ReturnType<typeof readSchemes>, warnings: string[]): Target {
  const named: Target[] = [];
  for (const s of active) {
    for (const e of resolveEndpoints(view, view.running, s, scrapeOptions(s), warnings)) {
      named.push(applyOptions({ container: '', port: e.port, path: DEFAULT_METRICS_PATH, scheme: 'http' }, e.options));
    }
  }
  const [first, ...others] = named;
  for (const other of others) {
    if (endpointOf(other) !== endpointOf(first!)) {
      warnings.push(`the scrape annotations also name ${endpointOf(other)}, not scraped: the pod is scraped once, on ${endpointOf(first!)}`);
    }
  }
  if (first !== undefined) return first;
  const options = scrapeOptions(active[0]!);
  const port = view.running.flatMap((c) => c.ports).find((p) => isMetricsPortName(p.name));
  const scheme = port?.name === 'https-metrics' ? 'https' : 'http';
  return applyOptions({ container: '', port: port?.containerPort ?? DEFAULT_PORT, path: DEFAULT_METRICS_PATH, scheme }, options);
}

/** What the proxy scrapes of `pod` (a Pod as the API server serves it), or why it does not. */
export function podTargets(pod: unknown, names: LabelNames): PodScrape {
  const metadata = field(pod, 'metadata');
  const name = field(metadata, 'name');
  const namespace = field(metadata, 'namespace');
  if (typeof name !== 'string' || typeof namespace !== 'string') return { scraped: false, reason: 'not a pod: no metadata.name or metadata.namespace' };
  const status = field(pod, 'status');
  const phase = field(status, 'phase');
  if (phase !== 'Running') return { scraped: false, reason: `phase is ${typeof phase === 'string' ? phase : 'unknown'}, not Running` };
  const host = field(status, 'podIP');
  if (typeof host !== 'string' || host === '') return { scraped: false, reason: 'no pod IP yet' };
  try {
    const view = readPod(pod);
    const found = readSchemes(view.annotations, SCHEMES);
    const active = found.filter((s) => s.scrape === 'true');
    if (active.length === 0) {
      const said = found.map((s) => `${scrapeKeyOf(s)} is ${JSON.stringify(s.scrape)}`).join(', ');
      return { scraped: false, reason: said === '' ? 'no scrape annotation (prometheus.io/scrape or k8s.grafana.com/scrape: "true")' : `${said}, not "true"` };
    }
    const podLabels: TargetLabels = [[names.namespace, namespace], [names.pod, name]];
    const warnings: string[] = [];
    const whole = (target: Target): PodTarget => ({ ...target, host, labels: podLabels });
    const statusText = view.annotations[STATUS_ANNOTATION];
    if (statusText !== undefined) {
      const port = sidecarPort(statusText);
      if (port !== undefined) return { scraped: true, targets: [whole({ container: '', port, path: DEFAULT_METRICS_PATH, scheme: 'http' })], warnings };
      warnings.push(`annotation ${STATUS_ANNOTATION} is not promux's status (no port): scraped as its annotations say`);
    }
    const explicit = view.annotations[TARGETS_ANNOTATION];
    if (explicit !== undefined) {
      const targets = explicitTargets(view, explicit).map((t) => ({ ...t, host, labels: [...podLabels, [names.container, t.container]] as TargetLabels }));
      if (targets.length === 0) return { scraped: false, reason: `${EXCLUDE_ANNOTATION} excludes every container of ${TARGETS_ANNOTATION}` };
      return { scraped: true, targets, warnings };
    }
    return { scraped: true, targets: [whole(annotatedTarget(view, active, warnings))], warnings };
  } catch (err) {
    if (err instanceof PodError || err instanceof AnnotationError) return { scraped: false, reason: err.message };
    throw err;
  }
}
