// Shared by the webhook tests: certificates on disk, AdmissionReviews shaped like the API server's,
// and an HTTPS client that trusts the test CA and reports the certificate it was served.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import type { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { parseAllDocuments } from 'yaml';
import { generateBundle, serviceDnsNames } from '../../src/webhook/tls/certs.ts';
import type { CertBundle } from '../../src/webhook/tls/certs.ts';
import { FIXTURES } from '../helpers/tools.ts';

export const SERVICE = 'promux-webhook';
export const NAMESPACE = 'promux-system';
/** The name the API server dials: the Service's <name>.<namespace>.svc. */
export const SERVER_NAME = `${SERVICE}.${NAMESPACE}.svc`;

export function testBundle(now = new Date()): CertBundle {
  return generateBundle(serviceDnsNames(SERVICE, NAMESPACE), now);
}

/** A temporary directory removed after the test. */
export function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'promux-webhook-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A logger that keeps its JSON lines for assertions (level debug and up). */
export function memoryLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { log, lines };
}

export interface HttpsAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** SHA-256 fingerprint of the certificate the server presented. */
  fingerprint256: string;
}

export function httpsRequest(
  port: number,
  ca: string,
  options: {
    method?: string; path: string; body?: string | Buffer; agent?: Agent; headers?: Record<string, string>;
    /** Accept any certificate (a server still on its placeholder). */
    insecure?: boolean;
  },
): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      servername: SERVER_NAME,
      ca,
      rejectUnauthorized: options.insecure !== true,
      method: options.method ?? 'GET',
      path: options.path,
      agent: options.agent ?? false,
      headers: { ...(options.body === undefined ? {} : { 'content-type': 'application/json' }), ...options.headers },
      timeout: 20_000,
    }, (res) => {
      const fingerprint256 = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        fingerprint256,
      }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(options.body);
  });
}

export interface ReviewResponse {
  apiVersion: string;
  kind: string;
  response: {
    uid: string;
    allowed: boolean;
    patchType?: string;
    patch?: string;
    warnings?: string[];
    auditAnnotations?: Record<string, string>;
  };
}

export async function postReview(port: number, ca: string, review: unknown): Promise<{ answer: HttpsAnswer; json: ReviewResponse }> {
  const answer = await httpsRequest(port, ca, { method: 'POST', path: '/mutate', body: JSON.stringify(review) });
  return { answer, json: JSON.parse(answer.body) as ReviewResponse };
}

export function decodePatch(json: ReviewResponse): unknown[] {
  return JSON.parse(Buffer.from(json.response.patch ?? '', 'base64').toString('utf8')) as unknown[];
}

type Obj = Record<string, unknown>;

/** The objects in a fixture manifest file. */
export function fixtureObjects(file: string): Obj[] {
  const text = readFileSync(join(FIXTURES, 'manifests', file), 'utf8');
  return parseAllDocuments(text).map((d) => d.toJS() as Obj);
}

/** Every workload in the fixture manifests, each with the pod a controller would create from it. */
export function fixturePods(namespace: string): { source: string; pod: Obj }[] {
  const objects = ['openfaas-gateway.yaml', 'vault-agent-pod.yaml', 'workloads.yaml']
    .flatMap(fixtureObjects)
    .flatMap((o) => (o.kind === 'List' ? (o.items as Obj[]) : [o]));
  return objects.flatMap((o) => {
    const source = `${String(o.kind)}/${String((o.metadata as Obj).name)}`;
    if (o.kind === 'Pod') return [{ source, pod: podAsAdmitted(o, namespace) }];
    if (o.kind === 'CronJob') {
      const job = { kind: 'Job', metadata: o.metadata, spec: ((o.spec as Obj).jobTemplate as Obj).spec };
      return [{ source, pod: podAsAdmitted(job, namespace) }];
    }
    const spec = o.spec as Obj | undefined;
    return spec?.template === undefined ? [] : [{ source, pod: podAsAdmitted(o, namespace) }];
  });
}

/**
 * A Pod as the API server hands it to a mutating webhook: defaults applied, the service account
 * token volume added by the built-in admission, and for a controller's pod a generateName and no name.
 */
export function podAsAdmitted(source: Obj, namespace: string): Obj {
  const isPod = source.kind === 'Pod';
  const meta = (source.metadata ?? {}) as Obj;
  const template = isPod ? source : ((source.spec as Obj).template as Obj);
  const templateMeta = (template.metadata ?? {}) as Obj;
  const spec = structuredClone(template.spec) as Obj;
  const containers = (spec.containers as Obj[]).map((c) => {
    const admitted: Obj = {
      terminationMessagePath: '/dev/termination-log',
      terminationMessagePolicy: 'File',
      imagePullPolicy: 'IfNotPresent',
      resources: {},
      ...c,
      volumeMounts: [{ name: 'kube-api-access-x7k2p', readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }],
    };
    if (Array.isArray(c.ports)) admitted.ports = (c.ports as Obj[]).map((p) => ({ protocol: 'TCP', ...p }));
    return admitted;
  });
  const name = String(meta.name);
  const metadata: Obj = isPod
    ? { name, namespace, creationTimestamp: null, labels: meta.labels, annotations: meta.annotations }
    : {
      generateName: `${name}-7d9c8b6f5-`,
      namespace,
      creationTimestamp: null,
      labels: { ...(templateMeta.labels as Obj), 'pod-template-hash': '7d9c8b6f5' },
      annotations: templateMeta.annotations,
      ownerReferences: [{
        apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${name}-7d9c8b6f5`,
        uid: randomUUID(), controller: true, blockOwnerDeletion: true,
      }],
    };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata,
    spec: {
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: 'default',
      serviceAccount: 'default',
      securityContext: {},
      schedulerName: 'default-scheduler',
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
      priority: 0,
      ...spec,
      containers,
      volumes: [{
        name: 'kube-api-access-x7k2p',
        projected: {
          defaultMode: 420,
          sources: [
            { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
            { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
            { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
          ],
        },
      }],
    },
    status: {},
  };
}

/** An admission.k8s.io/v1 AdmissionReview for creating `pod`, field for field as the API server sends it. */
export function createReview(pod: Obj, overrides: Obj = {}): Obj {
  const metadata = pod.metadata as Obj;
  const namespace = String(metadata.namespace);
  const byController = metadata.generateName !== undefined;
  return {
    kind: 'AdmissionReview',
    apiVersion: 'admission.k8s.io/v1',
    request: {
      uid: randomUUID(),
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      ...(byController ? {} : { name: metadata.name }),
      namespace,
      operation: 'CREATE',
      userInfo: byController
        ? { username: 'system:serviceaccount:kube-system:replicaset-controller', uid: randomUUID(),
          groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'] }
        : { username: 'kubernetes-admin', groups: ['kubeadm:cluster-admins', 'system:authenticated'] },
      object: pod,
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1', fieldManager: 'kubectl-client-side-apply' },
      ...overrides,
    },
  };
}

export function writeKeyPair(dir: string, material: { cert: string; key: string }, names = ['tls.crt', 'tls.key']): { certFile: string; keyFile: string } {
  const certFile = join(dir, names[0]!);
  const keyFile = join(dir, names[1]!);
  writeFileSync(certFile, material.cert);
  writeFileSync(keyFile, material.key);
  return { certFile, keyFile };
}

/** Polls `check` until it returns a value (not undefined), at most `timeoutMs`; fails naming `what`. */
export async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
