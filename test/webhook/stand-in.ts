// A stand-in for the Kubernetes API server (none runs on these machines): just the Secret and
// MutatingWebhookConfiguration endpoints self-managed TLS uses, with the API server's semantics for
// them (create conflicts, resourceVersion preconditions, JSON Patch with test operations) and
// checks of every request's path, verb, content type, token and body. Anything else is a problem.
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import fastJsonPatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';

type Obj = Record<string, unknown>;

export interface RecordedRequest {
  method: string;
  path: string;
  contentType: string;
  body: unknown;
  status: number;
}

const TOKEN = 'stand-in-token';
const SECRET_PATH = /^\/api\/v1\/namespaces\/([a-z0-9-]+)\/secrets(?:\/([a-z0-9.-]+))?$/;
const MWC_PATH = /^\/apis\/admissionregistration\.k8s\.io\/v1\/mutatingwebhookconfigurations\/([a-z0-9.-]+)$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export class KubeStandIn {
  /** Secrets by "namespace/name", as stored (data base64-encoded, with metadata.resourceVersion). */
  readonly secrets = new Map<string, Obj>();
  readonly webhookConfigurations = new Map<string, Obj>();
  readonly requests: RecordedRequest[] = [];
  /** Requests that the real API server would refuse or that self-managed TLS should not make. */
  readonly problems: string[] = [];
  /** Runs when a Secret create arrives, before it is stored: lets a test have another replica win. */
  beforeCreate: ((namespace: string, name: string) => void) | undefined;
  /** Runs when a Secret replace arrives, before its precondition is checked (another replica renews first). */
  beforeReplace: ((namespace: string, name: string) => void) | undefined;
  /** Answers caBundle patches 403, as RBAC or an admission policy would refuse them. */
  forbidPatches = false;
  private version = 100;
  private readonly server = createServer((req, res) => void this.handle(req, res));
  url = '';

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** A KubeConfig for this stand-in (plain HTTP, which client-node allows only with skipTLSVerify). */
  kubeConfig(): KubeConfig {
    const config = new KubeConfig();
    config.loadFromOptions({
      clusters: [{ name: 'stand-in', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'webhook', token: TOKEN }],
      contexts: [{ name: 'stand-in', cluster: 'stand-in', user: 'webhook' }],
      currentContext: 'stand-in',
    });
    return config;
  }

  nextResourceVersion(): string {
    this.version += 1;
    return String(this.version);
  }

  /**
   * Stores a Secret as another replica would have created it, owned by the MutatingWebhookConfiguration
   * `owner`; without one, as promux did before it set owner references.
   */
  putSecret(namespace: string, name: string, data: Record<string, string>, owner?: string): void {
    const encoded = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
    const ownerReferences = owner === undefined ? [] : [{
      apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', name: owner,
      uid: (this.webhookConfigurations.get(owner)!.metadata as Obj).uid,
    }];
    this.secrets.set(`${namespace}/${name}`, {
      apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls',
      metadata: { name, namespace, resourceVersion: this.nextResourceVersion(), ...(owner === undefined ? {} : { ownerReferences }) },
      data: encoded,
    });
  }

  /** A Secret's data, decoded. */
  secretData(namespace: string, name: string): Record<string, string> | undefined {
    const secret = this.secrets.get(`${namespace}/${name}`);
    if (secret === undefined) return undefined;
    return Object.fromEntries(Object.entries(secret.data as Record<string, string>)
      .map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
  }

  addWebhookConfiguration(name: string, webhookNames: string[]): void {
    this.webhookConfigurations.set(name, {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name, uid: `uid-of-${name}-${this.version}`, resourceVersion: this.nextResourceVersion() },
      webhooks: webhookNames.map((w) => ({
        name: w,
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: 'Ignore',
        clientConfig: { service: { name: 'promux-webhook', namespace: 'promux-system', path: '/mutate', port: 443 } },
      })),
    });
  }

  /** The caBundle of each webhook of a configuration, decoded ('' when unset). */
  caBundles(name: string): string[] {
    const config = this.webhookConfigurations.get(name);
    return ((config?.webhooks ?? []) as Obj[]).map((w) => {
      const bundle = (w.clientConfig as Obj).caBundle;
      return typeof bundle === 'string' ? Buffer.from(bundle, 'base64').toString('utf8') : '';
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', this.url);
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
    let body: unknown;
    if (raw !== '') {
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
      }
    }
    const record: RecordedRequest = { method: req.method ?? '', path: url.pathname, contentType, body, status: 0 };
    this.requests.push(record);
    const reply = (status: number, payload: unknown): void => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(payload));
    };
    const fail = (status: number, reason: string, message: string, expected = false): void => {
      if (!expected) this.problems.push(`${record.method} ${record.path}: ${message}`);
      reply(status, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code: status });
    };

    if (req.headers.authorization !== `Bearer ${TOKEN}`) return fail(401, 'Unauthorized', 'missing or wrong bearer token');
    const secret = SECRET_PATH.exec(url.pathname);
    const mwc = MWC_PATH.exec(url.pathname);
    if (secret !== null) return this.secretCall(record, secret[1]!, secret[2], reply, fail);
    if (mwc !== null) return this.webhookConfigurationCall(record, mwc[1]!, reply, fail);
    return fail(404, 'NotFound', `the stand-in serves no ${record.method} ${record.path}`);
  }

  private secretCall(
    record: RecordedRequest, namespace: string, name: string | undefined,
    reply: (status: number, payload: unknown) => void,
    fail: (status: number, reason: string, message: string, expected?: boolean) => void,
  ): void {
    const { method, body } = record;
    if (method === 'GET' && name !== undefined) {
      const stored = this.secrets.get(`${namespace}/${name}`);
      if (stored === undefined) return fail(404, 'NotFound', `secrets "${name}" not found`, true);
      return reply(200, stored);
    }
    const isWrite = (method === 'POST' && name === undefined) || (method === 'PUT' && name !== undefined);
    if (!isWrite) return fail(405, 'MethodNotAllowed', `unexpected ${method} on secrets`);
    if (record.contentType !== 'application/json') return fail(415, 'UnsupportedMediaType', `content type ${record.contentType}`);
    const shapeProblem = secretShapeProblem(body, namespace, name) ?? this.ownerProblem(body as Obj);
    if (shapeProblem !== undefined) return fail(422, 'Invalid', shapeProblem);
    const obj = structuredClone(body) as Obj;
    const metadata = obj.metadata as Obj;
    const key = `${namespace}/${String(metadata.name)}`;
    if (method === 'POST') {
      if (metadata.resourceVersion !== undefined) return fail(400, 'BadRequest', 'resourceVersion should not be set on create');
      this.beforeCreate?.(namespace, String(metadata.name));
      if (this.secrets.has(key)) return fail(409, 'AlreadyExists', `secrets "${String(metadata.name)}" already exists`, true);
    } else {
      this.beforeReplace?.(namespace, String(metadata.name));
      const stored = this.secrets.get(key);
      if (stored === undefined) return fail(404, 'NotFound', `secrets "${name}" not found`);
      if (typeof metadata.resourceVersion !== 'string' || metadata.resourceVersion === '') {
        return fail(422, 'Invalid', 'metadata.resourceVersion: must be specified for an update');
      }
      if (metadata.resourceVersion !== (stored.metadata as Obj).resourceVersion) {
        return fail(409, 'Conflict', `Operation cannot be fulfilled on secrets "${name}": the object has been modified`, true);
      }
    }
    Object.assign(metadata, { namespace, resourceVersion: this.nextResourceVersion() });
    this.secrets.set(key, obj);
    reply(method === 'POST' ? 201 : 200, obj);
  }

  /** Owner references must name an existing owner by its uid (else the garbage collector deletes the Secret). */
  private ownerProblem(secret: Obj): string | undefined {
    const owners = ((secret.metadata as Obj).ownerReferences ?? []) as Obj[];
    for (const owner of owners) {
      if (owner.apiVersion !== 'admissionregistration.k8s.io/v1' || owner.kind !== 'MutatingWebhookConfiguration') {
        return `ownerReferences: unexpected owner ${String(owner.apiVersion)} ${String(owner.kind)}`;
      }
      const config = this.webhookConfigurations.get(String(owner.name));
      if (config === undefined || (config.metadata as Obj).uid !== owner.uid) {
        return `ownerReferences: no MutatingWebhookConfiguration ${String(owner.name)} with uid ${String(owner.uid)}`;
      }
      // Setting blockOwnerDeletion needs update rights on the owner's finalizers (OwnerReferencesPermissionEnforcement).
      if (owner.blockOwnerDeletion === true) return 'ownerReferences: blockOwnerDeletion needs rights the webhook does not have';
    }
    return undefined;
  }

  private webhookConfigurationCall(
    record: RecordedRequest, name: string,
    reply: (status: number, payload: unknown) => void,
    fail: (status: number, reason: string, message: string, expected?: boolean) => void,
  ): void {
    const stored = this.webhookConfigurations.get(name);
    if (stored === undefined) return fail(404, 'NotFound', `mutatingwebhookconfigurations "${name}" not found`);
    if (record.method === 'GET') return reply(200, stored);
    if (record.method !== 'PATCH') return fail(405, 'MethodNotAllowed', `unexpected ${record.method}`);
    if (this.forbidPatches) return fail(403, 'Forbidden', `mutatingwebhookconfigurations "${name}" is forbidden`, true);
    if (record.contentType !== 'application/json-patch+json') {
      return fail(415, 'UnsupportedMediaType', `expected a JSON Patch, got ${record.contentType}`);
    }
    if (!Array.isArray(record.body)) return fail(400, 'BadRequest', 'a JSON Patch must be a list');
    const ops = record.body as Operation[];
    for (const op of ops) {
      const pathOk = /^\/webhooks\/\d+\/(name|clientConfig\/caBundle)$/.test(op.path);
      if (!pathOk) return fail(422, 'Invalid', `patch touches ${op.path}, not only caBundle`);
      // A test that fails is the API server's 422 too, but an expected one (another replica changed it).
      if (op.op === 'add' && (typeof op.value !== 'string' || !BASE64.test(op.value))) {
        return fail(422, 'Invalid', `${op.path}: caBundle must be base64`);
      }
    }
    let patched: Obj;
    try {
      patched = fastJsonPatch.applyPatch(structuredClone(stored), ops, true, false).newDocument;
    } catch (err) {
      return fail(422, 'Invalid', `the patch does not apply: ${(err as Error).message}`, ops.some((op) => op.op === 'test'));
    }
    (patched.metadata as Obj).resourceVersion = this.nextResourceVersion();
    this.webhookConfigurations.set(name, patched);
    reply(200, patched);
  }
}

function secretShapeProblem(body: unknown, namespace: string, name: string | undefined): string | undefined {
  if (typeof body !== 'object' || body === null) return 'body is not a Secret object';
  const obj = body as Obj;
  if (obj.apiVersion !== 'v1' || obj.kind !== 'Secret') return `expected v1 Secret, got ${String(obj.apiVersion)} ${String(obj.kind)}`;
  const metadata = obj.metadata as Obj | undefined;
  if (typeof metadata?.name !== 'string' || metadata.name === '') return 'metadata.name: required';
  if (name !== undefined && metadata.name !== name) return `metadata.name ${metadata.name} does not match the path`;
  if (metadata.namespace !== undefined && metadata.namespace !== namespace) return 'metadata.namespace does not match the path';
  if (obj.type !== 'kubernetes.io/tls') return `type ${String(obj.type)}: expected kubernetes.io/tls`;
  const data = obj.data as Record<string, unknown> | undefined;
  if (typeof data !== 'object' || data === null) return 'data: required';
  for (const key of ['tls.crt', 'tls.key']) if (!(key in data)) return `data[${key}]: required for a kubernetes.io/tls Secret`;
  for (const [k, v] of Object.entries(data)) {
    if (typeof v !== 'string' || !BASE64.test(v)) return `data[${k}]: not base64`;
  }
  return undefined;
}
