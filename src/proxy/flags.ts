// Flags of `promux proxy`, a drop-in replacement of canonical/metrics-k8s-proxy: its variables
// (POD_LABEL_SELECTOR, SCRAPE_TIMEOUT, PORT), its flags (--labels, --scrape_timeout, --port), its
// port and timeout; plus the sidecar's conventions (kebab-case, PROMUX_* variables; see
// command-flags.ts). Pure: argv and the environment in, options out.
import {
  FlagError, flagRows, parseAddress, parseBoolean, parseEndpoint, parseLabelName, parsePort, parsePositiveDuration,
  parsePositiveSize, readFlags, type FlagSpec, type FlagsOf,
} from '../command-flags.ts';
import { OWN_LABELS } from '../sidecar/flags.ts';
import type { LabelNames } from './targets.ts';

export { FlagError };

export interface ProxyOptions {
  /** A Kubernetes label selector, passed to the API server as it is. */
  selector: string;
  /** The namespaces watched; undefined: the proxy's own (POD_NAMESPACE, else the kubeconfig context's). */
  namespaces: string[] | undefined;
  allNamespaces: boolean;
  listenAddress: string;
  port: number;
  endpoint: string;
  /** Per pod, lowered to the scraper's X-Prometheus-Scrape-Timeout-Seconds less a margin (as the sidecar's). */
  scrapeTimeoutMs: number;
  /** Pods scraped at once. */
  concurrency: number;
  maxTargetBytes: number;
  /** Cap on the bodies of all pods of one scrape together. */
  maxTotalBytes: number;
  labels: LabelNames;
  /** A kubeconfig file; undefined: $KUBECONFIG, ~/.kube/config, else the pod's service account. */
  kubeconfig: string | undefined;
}

export type FlagsResult = FlagsOf<ProxyOptions>;

export const FLAGS: FlagSpec[] = [
  { name: 'selector', short: 'l', aliases: ['labels'], env: ['POD_LABEL_SELECTOR'], value: 'selector', defaultText: '',
    help: 'label selector of the pods to scrape (app=web, tier in (a,b), ...); required' },
  { name: 'namespace', short: 'n', list: true, value: 'names', defaultText: '',
    help: "namespaces watched, repeatable or comma-separated (default: the proxy's own, $POD_NAMESPACE)" },
  { name: 'all_namespaces', short: 'A', boolean: true, value: '', defaultText: '',
    help: 'watch the pods of every namespace (needs a ClusterRole)' },
  { name: 'port', env: ['PORT'], value: 'port', defaultText: '15090', help: 'port served (0: any free port)' },
  { name: 'listen_address', value: 'address', defaultText: '0.0.0.0', help: 'address to listen on' },
  { name: 'endpoint', value: 'path', defaultText: '/metrics', help: 'path served' },
  { name: 'scrape_timeout', aliases: ['timeout'], env: ['SCRAPE_TIMEOUT'], value: 'duration', defaultText: '9s',
    help: "per-pod timeout, lowered below the scraper's own (X-Prometheus-Scrape-Timeout-Seconds)" },
  { name: 'concurrency', value: 'n', defaultText: '64', help: 'pods scraped at once' },
  { name: 'max_target_bytes', value: 'size', defaultText: '32MiB', help: 'a pod answering more (after gunzip) is marked down' },
  { name: 'max_total_bytes', value: 'size', defaultText: '64MiB',
    help: 'cap on the bodies of one scrape together; the pods whose bodies pass it are marked down' },
  { name: 'namespace_label', value: 'label', defaultText: 'namespace', help: "label added to every series: the pod's namespace" },
  { name: 'pod_label', value: 'label', defaultText: 'pod', help: "label added to every series: the pod's name" },
  { name: 'container_label', value: 'label', defaultText: 'container',
    help: 'label added to the series of a container named in a pod\'s promux.io/targets' },
  { name: 'kubeconfig', value: 'file', defaultText: '',
    help: 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, else the pod\'s service account)' },
];

export function usage(): string {
  return [
    'Usage: promux proxy --selector <selector> [--namespace <ns>[,...] | --all-namespaces] [options]',
    '',
    'Watches the pods matching the selector and answers each scrape by scraping all of them in',
    'parallel: every series labelled with its pod and namespace, the metric families merged, and',
    'promux_target_up per pod (plus /healthz and /readyz). A drop-in for metrics-k8s-proxy.',
    '',
    'Options (long names also in kebab-case, e.g. --scrape-timeout; each also from the environment as',
    'PROMUX_<NAME>, e.g. PROMUX_SELECTOR; flags win over the environment):',
    ...flagRows(FLAGS),
    '  -h, --help',
    '',
  ].join('\n');
}

/** A namespace name (a DNS label). */
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function parseProxyFlags(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): FlagsResult {
  if (argv.includes('-h') || argv.includes('--help')) return { help: true };
  const get = readFlags(FLAGS, argv, env, 'the selector goes in --selector');

  const selector = get('selector');
  if (selector.text.trim() === '') {
    throw new FlagError('no selector: give --selector app=<name> (or POD_LABEL_SELECTOR); an empty one would select every pod');
  }
  const namespace = get('namespace');
  const namespaces = namespace.text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const bad = namespaces.find((n) => !NAMESPACE.test(n));
  if (bad !== undefined) throw new FlagError(`${namespace.source}: "${bad}" is not a namespace name`);
  const allNamespaces = parseBoolean(get('all_namespaces'));
  if (allNamespaces && namespaces.length > 0) throw new FlagError('--all_namespaces and --namespace exclude each other');

  const labels: LabelNames = {
    namespace: parseLabelName(get('namespace_label'), OWN_LABELS),
    pod: parseLabelName(get('pod_label'), OWN_LABELS),
    container: parseLabelName(get('container_label'), OWN_LABELS),
  };
  if (new Set(Object.values(labels)).size !== 3) {
    throw new FlagError(`--namespace_label, --pod_label and --container_label must differ (${Object.values(labels).join(', ')})`);
  }
  const concurrency = get('concurrency');
  const parallel = Number(concurrency.text);
  if (!/^\d+$/.test(concurrency.text.trim()) || parallel < 1) {
    throw new FlagError(`${concurrency.source}: "${concurrency.text}" is not a positive whole number`);
  }
  const kubeconfig = get('kubeconfig').text.trim();
  return {
    help: false,
    options: {
      selector: selector.text.trim(),
      namespaces: namespaces.length === 0 ? undefined : [...new Set(namespaces)],
      allNamespaces,
      listenAddress: parseAddress(get('listen_address')),
      port: parsePort(get('port')),
      endpoint: parseEndpoint(get('endpoint')),
      scrapeTimeoutMs: parsePositiveDuration(get('scrape_timeout')),
      concurrency: parallel,
      maxTargetBytes: parsePositiveSize(get('max_target_bytes')),
      maxTotalBytes: parsePositiveSize(get('max_total_bytes')),
      labels,
      kubeconfig: kubeconfig === '' ? undefined : kubeconfig,
    },
  };
}
