// The few Kubernetes API calls self-managed TLS makes, through @kubernetes/client-node. Kept thin:
// the decisions are in self-managed.ts, which talks to this interface only.
import {
  AdmissionregistrationV1Api, ApiException, CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions, VersionApi,
} from '@kubernetes/client-node';
import type { V1Secret } from '@kubernetes/client-node';

export interface StoredSecret {
  data: Record<string, string>;
  resourceVersion: string;
  /** uids of the Secret's owners (metadata.ownerReferences). */
  ownerUids: string[];
}

/**
 * The MutatingWebhookConfiguration the Secret serves: its owner, so that deleting the configuration
 * (helm uninstall, kubectl delete) has the garbage collector delete the Secret too.
 */
export interface SecretOwner {
  name: string;
  uid: string;
}

export interface WebhookConfiguration {
  uid: string;
  /** The caBundle (base64, '' when unset) of every webhook, by index. */
  webhooks: { name: string; caBundle: string }[];
}

export interface JsonPatchOp {
  op: 'add' | 'replace' | 'test';
  path: string;
  value: unknown;
}

export interface KubeApi {
  /** The Secret's data (decoded from base64), or undefined when it does not exist. */
  readSecret(namespace: string, name: string): Promise<StoredSecret | undefined>;
  /** 'exists' when another replica created it first (409). */
  createSecret(namespace: string, name: string, data: Record<string, string>, owner: SecretOwner): Promise<'created' | 'exists'>;
  /** Replaces the data when the Secret is still at `resourceVersion`; 'conflict' when it changed (409). */
  replaceSecret(namespace: string, name: string, data: Record<string, string>, resourceVersion: string, owner: SecretOwner):
  Promise<'replaced' | 'conflict'>;
  readWebhookConfiguration(configName: string): Promise<WebhookConfiguration>;
  patchWebhookConfiguration(configName: string, patch: JsonPatchOp[]): Promise<void>;
}

function statusOf(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

const encode = (data: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
const decode = (data: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));

function secretBody(name: string, data: Record<string, string>, owner: SecretOwner, resourceVersion?: string): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name,
      labels: { 'app.kubernetes.io/managed-by': 'promux-webhook' },
      // No blockOwnerDeletion: setting it needs rights on the owner's finalizers, which are not needed here.
      ownerReferences: [{
        apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', name: owner.name, uid: owner.uid,
      }],
      ...(resourceVersion === undefined ? {} : { resourceVersion }),
    },
    type: 'kubernetes.io/tls',
    data: encode(data),
  };
}

/**
 * The client for a KubeConfig: the pod's service account in a cluster (loadFromDefault falls back to
 * it), or $KUBECONFIG outside one.
 */
export function kubeApi(kubeConfig?: KubeConfig): KubeApi {
  let config = kubeConfig;
  if (config === undefined) {
    config = new KubeConfig();
    config.loadFromDefault();
  }
  const core = config.makeApiClient(CoreV1Api);
  const admission = config.makeApiClient(AdmissionregistrationV1Api);
  return {
    async readSecret(namespace, name) {
      try {
        const secret = await core.readNamespacedSecret({ namespace, name });
        return {
          data: decode(secret.data ?? {}),
          resourceVersion: secret.metadata?.resourceVersion ?? '',
          ownerUids: (secret.metadata?.ownerReferences ?? []).map((o) => o.uid),
        };
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw err;
      }
    },
    async createSecret(namespace, name, data, owner) {
      try {
        await core.createNamespacedSecret({ namespace, body: secretBody(name, data, owner) });
        return 'created';
      } catch (err) {
        if (statusOf(err) === 409) return 'exists';
        throw err;
      }
    },
    async replaceSecret(namespace, name, data, resourceVersion, owner) {
      try {
        await core.replaceNamespacedSecret({ namespace, name, body: secretBody(name, data, owner, resourceVersion) });
        return 'replaced';
      } catch (err) {
        if (statusOf(err) === 409) return 'conflict';
        throw err;
      }
    },
    async readWebhookConfiguration(configName) {
      const configuration = await admission.readMutatingWebhookConfiguration({ name: configName });
      return {
        uid: configuration.metadata?.uid ?? '',
        webhooks: (configuration.webhooks ?? []).map((w) => ({ name: w.name, caBundle: w.clientConfig.caBundle ?? '' })),
      };
    },
    async patchWebhookConfiguration(configName, patch) {
      await admission.patchMutatingWebhookConfiguration(
        { name: configName, body: patch },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      );
    },
  };
}

/**
 * The API server's version (its /version gitVersion, "v1.31.2"), which every client may read (the
 * system:public-info-viewer role: no RBAC to grant), for whether the cluster runs native sidecars.
 */
export async function readServerVersion(kubeConfig?: KubeConfig, timeoutMs = 5000): Promise<string> {
  let config = kubeConfig;
  if (config === undefined) {
    config = new KubeConfig();
    config.loadFromDefault();
  }
  const signal = AbortSignal.timeout(timeoutMs);
  const asked = config.makeApiClient(VersionApi).getCode();
  const timedOut = new Promise<never>((_, reject) => {
    signal.addEventListener('abort', () => reject(new Error(`no answer from the API server's /version within ${timeoutMs / 1000}s`)));
  });
  const info = await Promise.race([asked, timedOut]);
  return info.gitVersion;
}

/** A one-line description of a failed API call (status and the API server's message). */
export function describeApiError(err: unknown): string {
  if (err instanceof ApiException) {
    let message = '';
    try {
      const body = (typeof err.body === 'string' ? JSON.parse(err.body) : err.body) as { message?: string };
      message = body.message ?? '';
    } catch {
      message = String(err.body);
    }
    return `HTTP ${err.code}${message === '' ? '' : `: ${message}`}`;
  }
  return (err as Error).message ?? String(err);
}
