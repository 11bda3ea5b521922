// Pods Istio's injector mutated before promux (its webhook configuration's name sorts first).
// With Istio's metrics merge on (the default), Istio moves the pod's prometheus.io annotations into
// istio-proxy's env ISTIO_PROMETHEUS_ANNOTATIONS ({"scrape","path","port"}, and in newer proposals a
// "targets" list of {port, path}) and points prometheus.io/port and path at pilot-agent's status
// port (15020, /stats/prometheus). That endpoint serves the agent's own series, Envoy's (fetched
// from 15090) and, only while the env is set, the app's: pilot/cmd/pilot-agent/status/server.go.
import { isObject } from '../json.ts';
import { DEFAULT_METRICS_PATH } from '../target-map.ts';
import type { Target } from '../target-map.ts';
import { envEntry, flagValues, stringList } from './containers.ts';
import { PodError } from './pod.ts';
import type { ContainerView, PodView } from './pod.ts';

export const ISTIO_PROXY = 'istio-proxy';
export const ISTIO_INIT = 'istio-init';
export const MERGE_ENV = 'ISTIO_PROMETHEUS_ANNOTATIONS';
/** Read by istio-cni at pod start, and rendered by Istio's injector into istio-init's -d. */
export const EXCLUDE_INBOUND_ANNOTATION = 'traffic.sidecar.istio.io/excludeInboundPorts';
const STATUS_PORT_ANNOTATION = 'status.sidecar.istio.io/port';
const DEFAULT_STATUS_PORT = 15020;
/** pilot-agent serves the same merged endpoint on /metrics and /stats/prometheus; Istio annotates the latter. */
const AGENT_PATH = '/stats/prometheus';
/** istio-iptables' inbound exclusion flag, short and long. */
const EXCLUDE_INBOUND_FLAGS = ['-d', '--inbound-ports-exclude'];

/** An app endpoint pilot-agent merged into its own, as it reads the env (port "" is 80, path "" is /metrics). */
export interface MergedEndpoint {
  port: number;
  /** As written in the env; the caller normalizes it like a path annotation. */
  path: string;
}

export interface IstioMerge {
  proxy: ContainerView;
  /** Position of ISTIO_PROMETHEUS_ANNOTATIONS in istio-proxy's env. */
  envIndex: number;
  statusPort: number;
  /** What the agent scraped for the app: none when the env says scrape "false". */
  app: MergedEndpoint[];
}

function statusPort(view: PodView): number {
  const text = view.annotations[STATUS_PORT_ANNOTATION];
  const port = Number(text);
  return text !== undefined && /^\d+$/.test(text) && port >= 1 && port <= 65535 ? port : DEFAULT_STATUS_PORT;
}

function mergedPort(text: unknown): number {
  const value = text === undefined || text === '' ? '80' : text;
  const port = Number(value);
  if (typeof value !== 'string' || !/^\d+$/.test(value) || port < 1 || port > 65535) {
    throw new PodError(`container ${ISTIO_PROXY}: env ${MERGE_ENV} has port ${JSON.stringify(text)}, not a port number`);
  }
  return port;
}

function mergedPath(text: unknown): string {
  if (text !== undefined && typeof text !== 'string') {
    throw new PodError(`container ${ISTIO_PROXY}: env ${MERGE_ENV} has path ${JSON.stringify(text)}, not a string`);
  }
  return text === undefined || text === '' ? DEFAULT_METRICS_PATH : text;
}

/** The env's value as pilot-agent reads it (json.Unmarshal into {scrape, path, port[, targets]}). */
function readMergeEnv(value: string): MergedEndpoint[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    parsed = undefined;
  }
  if (!isObject(parsed)) {
    throw new PodError(`container ${ISTIO_PROXY}: env ${MERGE_ENV} is not a JSON object (pilot-agent would not start)`);
  }
  if (parsed.scrape === 'false') return [];
  const targets = parsed.targets;
  if (Array.isArray(targets) && targets.length > 0) {
    return targets.map((t) => {
      if (!isObject(t)) throw new PodError(`container ${ISTIO_PROXY}: env ${MERGE_ENV} has a target that is not an object`);
      return { port: mergedPort(t.port), path: mergedPath(t.path) };
    });
  }
  return [{ port: mergedPort(parsed.port), path: mergedPath(parsed.path) }];
}

/**
 * Istio's metrics merge, when it moved this pod's annotations: istio-proxy (a regular or a native
 * sidecar) carries ISTIO_PROMETHEUS_ANNOTATIONS and the prometheus scheme's port annotation is the
 * agent's status port. Otherwise undefined: the annotations point at the app, as promux reads them.
 */
export function readIstioMerge(view: PodView, prometheusPort: string | undefined): IstioMerge | undefined {
  const proxy = view.running.find((c) => c.name === ISTIO_PROXY);
  if (proxy === undefined) return undefined;
  const env = envEntry(proxy, MERGE_ENV);
  const port = statusPort(view);
  if (env === undefined || prometheusPort !== String(port)) return undefined;
  return { proxy, envIndex: env.index, statusPort: port, app: readMergeEnv(env.value) };
}

/** istio-proxy's own target: the agent's endpoint, which without the env serves the agent's and Envoy's series only. */
export function proxyTarget(merge: IstioMerge): Target {
  return { container: ISTIO_PROXY, port: merge.statusPort, path: AGENT_PATH, scheme: 'http' };
}

/** The excludeInboundPorts annotation's value with `port` added (or just `port` when there was none). */
export function withExcludedPort(current: string | undefined, port: number): string {
  const ports = (current ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '');
  return ports.includes(String(port)) ? (current as string) : [...ports, String(port)].join(',');
}

/**
 * istio-init's args with `port` added to its inbound exclusion list (-d), or undefined when it has no
 * such container or its args are not a list of strings (then istio-cni's annotation is the only way).
 */
export function istioInitArgs(view: PodView, port: number): { container: ContainerView; args: string[] } | undefined {
  const init = view.containers.find((c) => c.name === ISTIO_INIT && c.field === 'initContainers');
  const args = init === undefined ? undefined : stringList(init, 'args');
  if (init === undefined || args === undefined) return undefined;
  const given = flagValues(args, EXCLUDE_INBOUND_FLAGS);
  const edited = [...args];
  if (given.length === 0) {
    edited.push('-d', String(port));
  } else {
    const last = given[given.length - 1]!; // the flag package keeps the last value
    const ports = last.value.split(',').map((p) => p.trim()).filter((p) => p !== '');
    if (ports.includes(String(port))) return undefined;
    edited[last.at] = `${last.prefix}${[...ports, String(port)].join(',')}`;
  }
  return { container: init, args: edited };
}
