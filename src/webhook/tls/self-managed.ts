// Self-managed TLS: the webhook keeps its own CA and serving certificate in a Secret shared by all
// replicas, and patches the CA into its MutatingWebhookConfiguration. Every replica runs the same
// reconcile pass at start and then periodically; the API server's optimistic concurrency (create
// fails with 409 when the Secret exists, replace fails with 409 when it changed) decides races, and
// the losers adopt what the winner wrote.
import type { Logger } from 'pino';
import { caProblem, generateBundle, generateServing, serviceDnsNames, servingProblem } from './certs.ts';
import type { CertBundle, KeyPairPem } from './certs.ts';
import { describeApiError } from './kube.ts';
import type { JsonPatchOp, KubeApi, WebhookConfiguration } from './kube.ts';

/** Secret keys: tls.crt and tls.key as in any kubernetes.io/tls Secret, plus the CA's pair. */
export const SECRET_KEYS = { caCert: 'ca.crt', caKey: 'ca.key', cert: 'tls.crt', key: 'tls.key' } as const;
/** Bound on read-modify-write rounds lost to other replicas in one pass. */
const MAX_ATTEMPTS = 5;

export interface SelfManagedOptions {
  kube: KubeApi;
  namespace: string;
  secretName: string;
  webhookConfigName: string;
  serviceName: string;
  log: Logger;
  now?: () => Date;
  /** Between successful passes: picks up renewals by other replicas and restores a reset caBundle. */
  checkIntervalMs?: number;
  /** First retry delay after a failed pass; doubles up to checkIntervalMs. */
  retryMs?: number;
}

export interface SelfManagedEvents {
  onChange: (serving: KeyPairPem) => void;
  onError: (problem: string) => void;
}

export function bundleToSecretData(bundle: CertBundle): Record<string, string> {
  return {
    [SECRET_KEYS.caCert]: bundle.ca.cert,
    [SECRET_KEYS.caKey]: bundle.ca.key,
    [SECRET_KEYS.cert]: bundle.serving.cert,
    [SECRET_KEYS.key]: bundle.serving.key,
  };
}

export function bundleFromSecretData(data: Record<string, string>): CertBundle | undefined {
  const { caCert, caKey, cert, key } = SECRET_KEYS;
  if (!data[caCert] || !data[caKey] || !data[cert] || !data[key]) return undefined;
  return { ca: { cert: data[caCert], key: data[caKey] }, serving: { cert: data[cert], key: data[key] } };
}

/** The JSON Patch that puts `caBundle` into every webhook lacking it; [] when all have it. */
export function caBundlePatch(webhooks: { name: string; caBundle: string }[], caBundle: string): JsonPatchOp[] {
  return webhooks.flatMap((w, i) =>
    w.caBundle === caBundle
      ? []
      : [
        // The test guards against the list changing between our read and this patch.
        { op: 'test' as const, path: `/webhooks/${i}/name`, value: w.name },
        { op: 'add' as const, path: `/webhooks/${i}/clientConfig/caBundle`, value: caBundle },
      ]);
}

export class SelfManagedTls {
  private readonly options: SelfManagedOptions;
  private readonly dnsNames: string[];
  private readonly now: () => Date;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private served = '';

  constructor(options: SelfManagedOptions) {
    this.options = options;
    this.dnsNames = serviceDnsNames(options.serviceName, options.namespace);
    this.now = options.now ?? (() => new Date());
  }

  private get where(): string {
    return `Secret ${this.options.namespace}/${this.options.secretName}`;
  }

  /**
   * One pass: the serving pair to use, after creating or renewing the Secret and patching caBundle.
   * The webhook configuration is read first: it owns the Secret (so uninstalling deletes it), and
   * without it there is nothing to serve, so no Secret is created for a configuration that is gone.
   */
  async reconcile(): Promise<KeyPairPem> {
    const { kube, namespace, secretName, webhookConfigName, log } = this.options;
    const configuration = await kube.readWebhookConfiguration(webhookConfigName);
    const owner = { name: webhookConfigName, uid: configuration.uid };
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const stored = await kube.readSecret(namespace, secretName);
      if (stored === undefined) {
        const bundle = generateBundle(this.dnsNames, this.now());
        if (await kube.createSecret(namespace, secretName, bundleToSecretData(bundle), owner) === 'exists') {
          log.info(`${this.where} was created by another replica meanwhile; using theirs`);
          continue;
        }
        log.info({ dnsNames: this.dnsNames }, `created ${this.where} with a new CA and serving certificate`);
        await this.ensureCaBundle(configuration, bundle.ca.cert);
        return bundle.serving;
      }
      let bundle = bundleFromSecretData(stored.data);
      let replacement = this.replacementFor(bundle);
      if (replacement === undefined && !stored.ownerUids.includes(owner.uid)) {
        // A Secret from before owner references (or re-created by hand): adopted, data unchanged.
        log.info(`${this.where} is not owned by MutatingWebhookConfiguration ${webhookConfigName}; adding the owner reference`);
        replacement = bundle;
      }
      if (replacement !== undefined) {
        const written = await kube.replaceSecret(namespace, secretName, bundleToSecretData(replacement), stored.resourceVersion, owner);
        if (written === 'conflict') {
          log.info(`${this.where} changed while renewing (another replica); reading it again`);
          continue;
        }
        bundle = replacement;
      }
      await this.ensureCaBundle(configuration, bundle!.ca.cert);
      return bundle!.serving;
    }
    throw new Error(`${this.where} kept changing under ${MAX_ATTEMPTS} attempts to read and renew it`);
  }

  /** A new bundle when the stored one cannot be served as it is; undefined when it can. */
  private replacementFor(bundle: CertBundle | undefined): CertBundle | undefined {
    const { log } = this.options;
    const now = this.now();
    const problem = bundle === undefined ? `${Object.values(SECRET_KEYS).join(', ')} are not all set` : caProblem(bundle.ca, now);
    if (problem !== undefined) {
      log.warn(`${this.where}: ${problem}; replacing the CA and the serving certificate`);
      return generateBundle(this.dnsNames, now);
    }
    const servingIssue = servingProblem(bundle!, this.dnsNames, now);
    if (servingIssue === undefined) return undefined;
    log.info(`${this.where}: ${servingIssue}; renewing the serving certificate`);
    return { ca: bundle!.ca, serving: generateServing(bundle!.ca, this.dnsNames, now) };
  }

  private async ensureCaBundle({ webhooks }: WebhookConfiguration, caCert: string): Promise<void> {
    const { kube, webhookConfigName, log } = this.options;
    if (webhooks.length === 0) log.warn(`MutatingWebhookConfiguration ${webhookConfigName} has no webhooks to give the CA to`);
    const patch = caBundlePatch(webhooks, Buffer.from(caCert).toString('base64'));
    if (patch.length === 0) return;
    await kube.patchWebhookConfiguration(webhookConfigName, patch);
    log.info(`patched the CA into caBundle of MutatingWebhookConfiguration ${webhookConfigName} (${patch.length / 2} webhooks)`);
  }

  /** Reconciles now and then every checkIntervalMs, retrying failures with backoff, until close(). */
  start(events: SelfManagedEvents): void {
    const interval = this.options.checkIntervalMs ?? 10 * 60_000;
    let retry = this.options.retryMs ?? 1000;
    const pass = async (): Promise<void> => {
      let delay = interval;
      try {
        const serving = await this.reconcile();
        retry = this.options.retryMs ?? 1000;
        if (serving.cert !== this.served && !this.closed) {
          this.served = serving.cert;
          events.onChange(serving);
        }
      } catch (err) {
        events.onError(`self-managed TLS (${this.where}, MutatingWebhookConfiguration `
          + `${this.options.webhookConfigName}): ${describeApiError(err)}; retrying in ${retry} ms`);
        delay = retry;
        retry = Math.min(retry * 2, interval);
      }
      if (!this.closed) this.timer = setTimeout(() => void pass(), delay);
    };
    void pass();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }
}
