// A stand-in for the Kubernetes API server's pods endpoints (none runs on these machines), as
// `promux proxy` uses them: list and watch, in one namespace or all, with a label selector. It keeps
// the API server's semantics that matter to an informer: resourceVersions, a watch from a version
// replaying the changes after it, a watch from a version compacted away answered with an ERROR
// event of code 410 (Gone), a pod that stops matching the selector sent as DELETED, watches ended
// after their timeoutSeconds, RBAC refusals as 403 Status objects. Requests it does not expect
// (a watch without labelSelector or timeoutSeconds, a wrong token, another path) are problems.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';

type Obj = Record<string, unknown>;

const TOKEN = 'stand-in-token';
const NAMESPACED = /^\/api\/v1\/namespaces\/([a-z0-9-]+)\/pods$/;
const ALL = '/api/v1/pods';

export interface PodSpec {
  ip?: string;
  phase?: string;
  ready?: boolean;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  containers?: Array<{ name: string; ports?: Array<{ name?: string; containerPort: number }> }>;
}

interface Change {
  version: number;
  namespace: string;
  before: Obj | undefined;
  after: Obj | undefined;
}

interface Watcher {
  namespace: string | undefined;
  selector: string;
  res: ServerResponse;
  timer: NodeJS.Timeout;
}

/** `a=b,c!=d,e` (equality-based selectors, as the proxy's tests use). */
function matches(selector: string, labels: Record<string, string>): boolean {
  return selector.split(',').map((s) => s.trim()).filter((s) => s !== '').every((term) => {
    const ne = /^([^!=]+)!=(.*)$/.exec(term);
    if (ne !== null) return labels[ne[1]!.trim()] !== ne[2]!.trim();
    const eq = /^([^!=]+)==?(.*)$/.exec(term);
    if (eq !== null) return labels[eq[1]!.trim()] === eq[2]!.trim();
    return term.startsWith('!') ? !(term.slice(1) in labels) : term in labels;
  });
}

function labelsOf(pod: Obj | undefined): Record<string, string> {
  return ((pod?.metadata as Obj | undefined)?.labels ?? {}) as Record<string, string>;
}

export class PodsStandIn {
  readonly pods = new Map<string, Obj>();
  /** Requests it would not expect from the proxy, or that the real API server would refuse as malformed. */
  readonly problems: string[] = [];
  /** method and path?query of every request. */
  readonly requests: string[] = [];
  /** Namespaces whose pods the proxy's service account may not list or watch. */
  readonly denied = new Set<string>();
  /** Answer watches (only) with 403: a Role that grants list but not watch. */
  denyWatches = false;
  /** Whether a request for every namespace is allowed (a ClusterRole). */
  clusterWide = true;
  /** Watches get no events and are never ended (a connection that died without a word). */
  stalled = false;
  /** Every watch is ended as soon as it starts (an API server or proxy in the way that misbehaves). */
  endWatchesAtOnce = false;
  private version = 1000;
  private compactedBefore = 0;
  private readonly changes: Change[] = [];
  private readonly watchers = new Set<Watcher>();
  private readonly server = createServer((req, res) => this.handle(req, res));
  url = '';

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const w of this.watchers) this.endWatch(w);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** A KubeConfig for this stand-in (plain HTTP, which client-node allows only with skipTLSVerify). */
  kubeConfig(namespace = 'default'): KubeConfig {
    const config = new KubeConfig();
    config.loadFromString(this.kubeConfigYaml(namespace));
    return config;
  }

  /** The same, as a kubeconfig file's text. */
  kubeConfigYaml(namespace = 'default'): string {
    return JSON.stringify({
      apiVersion: 'v1', kind: 'Config', 'current-context': 'stand-in',
      clusters: [{ name: 'stand-in', cluster: { server: this.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'proxy', user: { token: TOKEN } }],
      contexts: [{ name: 'stand-in', context: { cluster: 'stand-in', user: 'proxy', namespace } }],
    });
  }

  writeKubeConfig(file: string, namespace = 'default'): void {
    writeFileSync(file, this.kubeConfigYaml(namespace));
  }

  /** Creates or replaces a pod (a new resourceVersion, a watch event). */
  put(namespace: string, name: string, spec: PodSpec): void {
    const key = `${namespace}/${name}`;
    const before = this.pods.get(key);
    const version = ++this.version;
    const ready = spec.ready ?? true;
    const pod: Obj = {
      apiVersion: 'v1', kind: 'Pod',
      metadata: {
        name, namespace, uid: `uid-${key}`, resourceVersion: String(version), labels: spec.labels ?? {},
        ...(spec.annotations === undefined ? {} : { annotations: spec.annotations }),
      },
      spec: { containers: spec.containers ?? [{ name: 'app' }] },
      status: {
        phase: spec.phase ?? 'Running',
        ...(spec.ip === undefined ? {} : { podIP: spec.ip, podIPs: [{ ip: spec.ip }] }),
        conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
      },
    };
    this.pods.set(key, pod);
    this.record({ version, namespace, before, after: pod });
  }

  delete(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const before = this.pods.get(key);
    if (before === undefined) return;
    this.pods.delete(key);
    this.record({ version: ++this.version, namespace, before, after: undefined });
  }

  /** Ends every watch as the API server does when its timeout is up (a clean end of the stream). */
  endWatches(): void {
    this.stalled = false;
    for (const w of this.watchers) this.endWatch(w);
  }

  /** Cuts every watch's connection (a network failure, an API server restarting). */
  cutWatches(): void {
    for (const w of this.watchers) {
      clearTimeout(w.timer);
      this.watchers.delete(w);
      w.res.socket?.destroy();
    }
  }

  /** Forgets the history so far: a watch from any version before now gets 410 Gone. */
  compact(): void {
    this.compactedBefore = this.version + 1;
    this.changes.length = 0;
  }

  get watchCount(): number {
    return this.watchers.size;
  }

  /** Requests so far that were lists (not watches). */
  lists(): string[] {
    return this.requests.filter((r) => r.startsWith('GET') && !r.includes('watch=true'));
  }

  private record(change: Change): void {
    this.changes.push(change);
    for (const w of this.watchers) this.send(w, change);
  }

  private send(w: Watcher, change: Change): void {
    if (this.stalled) return;
    if (w.namespace !== undefined && change.namespace !== w.namespace) return;
    const was = change.before !== undefined && matches(w.selector, labelsOf(change.before));
    const is = change.after !== undefined && matches(w.selector, labelsOf(change.after));
    let type: string;
    let object: Obj;
    if (is) {
      type = was ? 'MODIFIED' : 'ADDED';
      object = change.after!;
    } else if (was) {
      type = 'DELETED';
      object = { ...change.before!, metadata: { ...(change.before!.metadata as Obj), resourceVersion: String(change.version) } };
    } else {
      return;
    }
    w.res.write(`${JSON.stringify({ type, object })}\n`);
  }

  private endWatch(w: Watcher): void {
    clearTimeout(w.timer);
    this.watchers.delete(w);
    w.res.end();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.url);
    this.requests.push(`${req.method} ${url.pathname}${url.search}`);
    const status = (code: number, reason: string, message: string): void => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }));
    };
    const problem = (code: number, message: string): void => {
      this.problems.push(`${req.method} ${url.pathname}${url.search}: ${message}`);
      status(code, 'BadRequest', message);
    };
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return problem(401, 'missing or wrong bearer token');
    if (req.method !== 'GET') return problem(405, `the proxy has no business doing ${req.method}`);
    const namespaced = NAMESPACED.exec(url.pathname);
    if (namespaced === null && url.pathname !== ALL) return problem(404, `the stand-in serves no ${url.pathname}`);
    const namespace = namespaced?.[1];
    const selector = url.searchParams.get('labelSelector');
    if (selector === null || selector === '') return problem(400, 'no labelSelector: the proxy would read every pod');
    const watch = url.searchParams.get('watch') === 'true';
    const verb = watch ? 'watch' : 'list';
    const user = 'system:serviceaccount:monitoring:promux-proxy';
    if (namespace === undefined ? !this.clusterWide : this.denied.has(namespace)) {
      const where = namespace === undefined ? 'at the cluster scope' : `in the namespace "${namespace}"`;
      return status(403, 'Forbidden', `pods is forbidden: User "${user}" cannot ${verb} resource "pods" in API group "" ${where}`);
    }
    if (watch && this.denyWatches) {
      return status(403, 'Forbidden', `pods is forbidden: User "${user}" cannot watch resource "pods" in API group "" in the namespace "${namespace}"`);
    }
    if (!watch) {
      const items = [...this.pods.values()].filter((p) =>
        (namespace === undefined || (p.metadata as Obj).namespace === namespace) && matches(selector, labelsOf(p)));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ apiVersion: 'v1', kind: 'PodList', metadata: { resourceVersion: String(this.version) }, items }));
      return;
    }
    const timeout = Number(url.searchParams.get('timeoutSeconds'));
    if (!(timeout > 0)) return problem(400, 'a watch without timeoutSeconds may hang forever on a dead connection');
    const from = Number(url.searchParams.get('resourceVersion') ?? '0');
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    if (from < this.compactedBefore - 1) {
      res.end(`${JSON.stringify({
        type: 'ERROR',
        object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: `too old resource version: ${from} (${this.compactedBefore})`, reason: 'Expired', code: 410 },
      })}\n`);
      return;
    }
    if (this.endWatchesAtOnce) {
      res.end();
      return;
    }
    const w: Watcher = { namespace, selector, res, timer: setTimeout(() => this.stalled || this.endWatch(w), Math.min(timeout, 600) * 1000) };
    this.watchers.add(w);
    res.on('close', () => {
      clearTimeout(w.timer);
      this.watchers.delete(w);
    });
    for (const change of this.changes) if (change.version > from) this.send(w, change);
    res.flushHeaders();
  }
}
