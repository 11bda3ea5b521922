// The pods `promux proxy` scrapes: one @kubernetes/client-node informer (list, then watch from the
// list's resourceVersion; a 410 Gone relists) per namespace watched, or one for all namespaces,
// kept alive around the library's gaps:
// - an error ends a ListWatch for good: after a backoff (1 s doubling to 30 s, jittered) a new one
//   lists again, and its list is what tells that the API server answers again (a watch that works
//   gives no sign of it);
// - a watch may hang without an error (a dead connection, an API server that never answers): each
//   is asked to end after 5 to 10 minutes (timeoutSeconds, as client-go's reflector does), and when
//   no (re)connect came in that time and a minute more, the informer is replaced;
// - a list is cut after a minute; an API server that ends every watch at once is backed off from.
// Each list also forgets the pods it no longer holds. Every change of a pod is turned into its
// targets at once (targets.ts), so a scrape only reads a ready list.
import {
  ApiException, CoreV1Api, makeInformer, Observable, type ConfigurationOptions, type Informer, type KubeConfig,
  type KubernetesListObject, type V1Pod,
} from '@kubernetes/client-node';
import type { Log } from '../sidecar/log.ts';
import { describeApiError } from '../webhook/tls/kube.ts';
import { endpointOf } from '../target-map.ts';
import { podKey, podTargets, type LabelNames, type PodScrape, type PodTarget } from './targets.ts';

export interface Timing {
  backoffMs: number;
  maxBackoffMs: number;
  /** A watch is asked to end after a random time between this and twice this. */
  watchTimeoutMs: number;
  /** Added to the watch timeout before an informer that never reconnected is replaced. */
  watchGraceMs: number;
  listTimeoutMs: number;
}

export const DEFAULT_TIMING: Timing = {
  backoffMs: 1000, maxBackoffMs: 30_000, watchTimeoutMs: 300_000, watchGraceMs: 60_000, listTimeoutMs: 60_000,
};

export interface DiscoveryOptions {
  selector: string;
  /** 'all': every namespace. */
  namespaces: string[] | 'all';
  labels: LabelNames;
  kubeConfig: KubeConfig;
  log: Log;
  timing?: Partial<Timing>;
}

/** What is known of one pod: what is scraped of it, and that, in words, for the log and for change detection. */
interface PodState {
  scrape: PodScrape;
  summary: string;
}

/** An informer that had too many connects in a row less than a second apart: the API server ends every watch at once. */
const QUICK_RECONNECTS = 5;

function describeError(err: unknown): string {
  const status = (err as { statusCode?: unknown }).statusCode;
  if (typeof status === 'number') return `HTTP ${status} ${(err as Error).message}`;
  return describeApiError(err);
}

function statusOf(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  const status = (err as { statusCode?: unknown } | undefined)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/** Options that cut a request of the generated API client after `ms`. */
function cutAfter(ms: number): ConfigurationOptions {
  return {
    middleware: [{
      pre: (context) => {
        context.setSignal(AbortSignal.timeout(ms));
        return new Observable(Promise.resolve(context));
      },
      post: (context) => new Observable(Promise.resolve(context)),
    }],
    middlewareMergeStrategy: 'append',
  };
}

/** The informer of one namespace (or of all of them), replaced whenever it fails or falls silent. */
class ScopeWatch {
  /** A namespace, or undefined for all of them. */
  readonly namespace: string | undefined;
  private readonly discovery: PodDiscovery;
  private readonly timing: Timing;
  private informer: Informer<V1Pod> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private startedAt = 0;
  private lastConnect = 0;
  private quickReconnects = 0;
  /** The timeoutSeconds the current informer's watches ask for. */
  private watchTimeoutSeconds = 0;
  private stopped = false;
  /** A list succeeded at least once. */
  synced = false;
  /** The last failure since the last list that succeeded. */
  failure: { message: string; denied: boolean } | undefined;

  constructor(discovery: PodDiscovery, namespace: string | undefined, timing: Timing) {
    this.discovery = discovery;
    this.namespace = namespace;
    this.timing = timing;
  }

  get scope(): string {
    return this.namespace === undefined ? 'all namespaces' : `namespace ${this.namespace}`;
  }

  start(): void {
    const { kubeConfig, selector } = this.discovery.options;
    const api = kubeConfig.makeApiClient(CoreV1Api);
    const namespace = this.namespace;
    const timeoutSeconds = Math.max(1, Math.round((this.timing.watchTimeoutMs * (1 + Math.random())) / 1000));
    const path = `${namespace === undefined ? '/api/v1/pods' : `/api/v1/namespaces/${namespace}/pods`}` +
      `?allowWatchBookmarks=true&timeoutSeconds=${timeoutSeconds}`;
    const options = cutAfter(this.timing.listTimeoutMs);
    let informer: Informer<V1Pod> | undefined = undefined;
    const current = (): boolean => informer !== undefined && informer === this.informer;
    const list = async (): Promise<KubernetesListObject<V1Pod>> => {
      const pods = namespace === undefined
        ? await api.listPodForAllNamespaces({ labelSelector: selector }, options)
        : await api.listNamespacedPod({ namespace, labelSelector: selector }, options);
      // A list that ends after its informer was replaced must not start that informer's watch.
      if (!current()) throw new Error('replaced');
      this.listed(pods.items);
      return pods;
    };
    informer = makeInformer<V1Pod>(kubeConfig, path, list, selector);
    this.informer = informer;
    this.startedAt = performance.now();
    this.quickReconnects = 0;
    this.watchTimeoutSeconds = timeoutSeconds;
    informer.on('add', (pod) => current() && this.discovery.upsert(pod));
    informer.on('update', (pod) => current() && this.discovery.upsert(pod));
    informer.on('delete', (pod) => current() && this.discovery.remove(podKey(pod)));
    informer.on('connect', () => current() && this.connected());
    informer.on('error', (err: unknown) => current() && this.failed(err));
    this.armWatchdog();
    informer.start().catch((err: unknown) => current() && this.failed(err));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.retire();
  }

  private arm(ms: number, then: () => void): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(then, ms);
  }

  private async retire(): Promise<void> {
    const informer = this.informer;
    this.informer = undefined;
    await informer?.stop();
  }

  private listed(items: readonly V1Pod[]): void {
    this.synced = true;
    if (this.failure !== undefined) this.discovery.log('info', 'pod discovery works again', { scope: this.scope });
    this.failure = undefined;
    this.discovery.forget(this.namespace, new Set(items.map(podKey)));
  }

  private connected(): void {
    const now = performance.now();
    this.quickReconnects = now - this.lastConnect < 1000 ? this.quickReconnects + 1 : 0;
    this.lastConnect = now;
    if (this.quickReconnects >= QUICK_RECONNECTS) {
      this.failed(new Error('the API server ends every watch at once'));
      return;
    }
    this.armWatchdog();
  }

  /** Replaces the informer when it does not (re)connect within its watch's timeout and a grace. */
  private armWatchdog(): void {
    const silentMs = this.watchTimeoutSeconds * 1000 + this.timing.watchGraceMs;
    this.arm(silentMs, () => this.silent(silentMs));
  }

  /** No (re)connect in the watch's timeout and the grace after it: the watch hangs. */
  private silent(silentMs: number): void {
    if (this.stopped) return;
    this.discovery.log('warn', 'pod watch silent, reconnecting', { scope: this.scope, silentForSeconds: silentMs / 1000 });
    void this.retire();
    this.start();
  }

  private failed(err: unknown): void {
    if (this.stopped) return;
    void this.retire();
    // An informer that lived a while failed anew: the backoff starts over.
    if (performance.now() - this.startedAt > 2 * this.timing.maxBackoffMs) this.failures = 0;
    this.failures++;
    const status = statusOf(err);
    const denied = status === 401 || status === 403;
    const message = describeError(err);
    this.failure = { message, denied };
    const delay = Math.min(this.timing.maxBackoffMs, this.timing.backoffMs * 2 ** (this.failures - 1)) * (0.8 + 0.4 * Math.random());
    const hint = denied
      ? `; the proxy's service account needs list and watch on pods in ${this.namespace ?? 'every namespace (a ClusterRole)'}`
      : '';
    this.discovery.log(denied || !this.synced ? 'error' : 'warn', `cannot list or watch pods: ${message}${hint}`, {
      scope: this.scope, retryInSeconds: Math.round(delay / 100) / 10,
    });
    this.arm(delay, () => this.start());
  }
}

/** The pods matching the selector in the namespaces watched, and what the proxy scrapes of them. */
export class PodDiscovery {
  readonly options: DiscoveryOptions;
  readonly log: Log;
  private readonly watches: ScopeWatch[];
  /** By namespace/name. */
  private readonly pods = new Map<string, PodState>();
  /** Changes whenever a pod's targets do. */
  private generation = 0;
  private snapshot: { generation: number; targets: PodTarget[] } = { generation: 0, targets: [] };

  constructor(options: DiscoveryOptions) {
    this.options = options;
    this.log = options.log;
    const timing = { ...DEFAULT_TIMING, ...options.timing };
    const scopes = options.namespaces === 'all' ? [undefined] : options.namespaces;
    this.watches = scopes.map((namespace) => new ScopeWatch(this, namespace, timing));
  }

  start(): void {
    for (const w of this.watches) w.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.watches.map((w) => w.stop()));
  }

  /** Why the proxy is not ready (a namespace never listed, or access denied since its last list), or undefined. */
  notReady(): string | undefined {
    const reasons = this.watches.flatMap((w) => {
      if (w.failure?.denied === true) return [`${w.scope}: access denied: ${w.failure.message}`];
      if (!w.synced) return [`${w.scope}: pods not listed yet${w.failure === undefined ? '' : ` (${w.failure.message})`}`];
      return [];
    });
    return reasons.length === 0 ? undefined : reasons.join('; ');
  }

  /** Every target of every pod scraped, by namespace and name; the same array while nothing changed. */
  targets(): PodTarget[] {
    if (this.snapshot.generation !== this.generation) {
      const keys = [...this.pods.keys()].sort();
      const targets = keys.flatMap((key) => {
        const { scrape } = this.pods.get(key)!;
        return scrape.scraped ? scrape.targets : [];
      });
      this.snapshot = { generation: this.generation, targets };
    }
    return this.snapshot.targets;
  }

  /** A pod added or changed. */
  upsert(pod: V1Pod): void {
    const key = podKey(pod);
    if (key === undefined) return;
    const scrape = podTargets(pod, this.options.labels);
    const summary = scrape.scraped
      ? scrape.targets.map((t) => `${t.host.includes(':') ? `[${t.host}]` : t.host}:${endpointOf(t)}${t.container === '' ? '' : ` (${t.container})`}`).join(', ')
      : scrape.reason;
    const before = this.pods.get(key);
    this.pods.set(key, { scrape, summary });
    if (before?.summary === summary) return;
    this.generation++;
    const [namespace, name] = key.split('/');
    if (scrape.scraped) this.log('info', 'pod scraped', { namespace, pod: name, targets: summary, ...(scrape.warnings.length === 0 ? {} : { warnings: scrape.warnings }) });
    else this.log('info', 'pod not scraped', { namespace, pod: name, reason: summary });
  }

  remove(key: string | undefined): void {
    if (key === undefined || !this.pods.delete(key)) return;
    this.generation++;
    const [namespace, name] = key.split('/');
    this.log('info', 'pod gone', { namespace, pod: name });
  }

  /** After a list of `namespace` (undefined: all): the pods it no longer holds are gone. */
  forget(namespace: string | undefined, listed: ReadonlySet<string | undefined>): void {
    for (const key of [...this.pods.keys()]) {
      if ((namespace === undefined || key.startsWith(`${namespace}/`)) && !listed.has(key)) this.remove(key);
    }
  }
}
