// Self-managed TLS: the webhook keeps its own CA and serving certificate in a Secret shared by all
// replicas, and patches the CA into its MutatingWebhookConfiguration. Every replica runs the same
// reconcile pass at start and then periodically; the API server's optimistic concurrency (create
// fails with 409 when the Secret exists, replace fails with 409 when it changed; a caBundle patch
// tests the value it replaces) decides races, and the losers adopt what the winner wrote.
//
// Replacing the CA (a year before it expires, or when it is unusable) never leaves a replica serving
// a certificate the API server does not trust. The Secret carries the rollover from pass to pass:
//   A. the new CA is added to the Secret as ca-next, and caBundle becomes old + new CA;
//   B. on a later pass (the API servers have seen the new caBundle), the new CA signs a new serving
//      certificate and becomes ca; the old one stays in caBundle as ca-previous until
//      ca-previous-until, long enough for every replica to have made a pass and serve the new one;
//   C. then ca-previous is dropped from the Secret and from caBundle.
// While a rollover is in progress every replica that sees it passes every rolloverPollMs instead of
// every checkIntervalMs. A replica is ready only while caBundle holds the CA of what it serves.
import { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import { caProblem, generateBundle, generateCa, generateServing, serviceDnsNames, servingProblem } from './certs.ts';
import type { CertBundle, KeyPairPem } from './certs.ts';
import { describeApiError } from './kube.ts';
import type { JsonPatchOp, KubeApi } from './kube.ts';

/** Secret keys: tls.crt and tls.key as in any kubernetes.io/tls Secret, plus the CA's pair and a rollover's. */
export const SECRET_KEYS = {
  caCert: 'ca.crt', caKey: 'ca.key', cert: 'tls.crt', key: 'tls.key',
  nextCaCert: 'ca-next.crt', nextCaKey: 'ca-next.key', previousCaCert: 'ca-previous.crt', previousUntil: 'ca-previous-until',
} as const;
const ROLLOVER_KEYS = [SECRET_KEYS.nextCaCert, SECRET_KEYS.nextCaKey, SECRET_KEYS.previousCaCert, SECRET_KEYS.previousUntil];
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
  /** Between passes while a CA rollover is in progress. */
  rolloverPollMs?: number;
  /** How long the old CA stays trusted after the new one signs; default twice checkIntervalMs. */
  rolloverOverlapMs?: number;
  /** First retry delay after a failed pass; doubles up to checkIntervalMs. */
  retryMs?: number;
}

export interface SelfManagedEvents {
  onChange: (serving: KeyPairPem) => void;
  /** After each pass: whether every webhook's caBundle holds the CA of the certificate served. */
  onTrust: (trusted: boolean) => void;
  onError: (problem: string) => void;
}

/** What one pass settled on. */
export interface PassResult {
  serving: KeyPairPem;
  trusted: boolean;
  /** A CA rollover is under way: pass again soon. */
  rollover: boolean;
  /** Why caBundle could not be set (the certificate is served all the same, but not trusted). */
  problem?: string;
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

/**
 * The JSON Patch that sets `caBundle` (base64) in every webhook not holding it; [] when all do. Each
 * change is guarded by tests of what was read (the webhook's name, and the caBundle it replaces), so
 * a replica never overwrites a caBundle another one changed meanwhile: the patch fails and the
 * pass is retried.
 */
export function caBundlePatch(webhooks: { name: string; caBundle: string }[], caBundle: string): JsonPatchOp[] {
  return webhooks.flatMap((w, i) => {
    if (w.caBundle === caBundle) return [];
    const path = `/webhooks/${i}/clientConfig/caBundle`;
    return [
      { op: 'test' as const, path: `/webhooks/${i}/name`, value: w.name },
      ...(w.caBundle === '' ? [] : [{ op: 'test' as const, path, value: w.caBundle }]),
      { op: 'add' as const, path, value: caBundle },
    ];
  });
}

function parses(pem: string | undefined): pem is string {
  if (pem === undefined || pem === '') return false;
  try {
    new X509Certificate(pem);
    return true;
  } catch {
    return false;
  }
}

/** The CA certificates one PEM bundle holds (a caBundle decoded), as normalized PEM. */
export function certificatesIn(pemBundle: string): string[] {
  return [...pemBundle.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)]
    .map((m) => `${m[0].replace(/\r/g, '').trim()}\n`);
}

/**
 * The caBundle a Secret calls for (PEM): its CA, the next CA of a rollover, the previous one until
 * its time is up; sorted, so that the same CAs always make the same bundle.
 */
export function desiredCaBundle(data: Record<string, string>, now: Date): string {
  const until = Date.parse(data[SECRET_KEYS.previousUntil] ?? '');
  const cas = [data[SECRET_KEYS.caCert], data[SECRET_KEYS.nextCaCert],
    Number.isFinite(until) && until > now.getTime() ? data[SECRET_KEYS.previousCaCert] : undefined]
    .filter(parses)
    .flatMap(certificatesIn);
  return [...new Set(cas)].sort().join('');
}

/** Whether `serving` was signed by one of the CAs in a caBundle (PEM). */
function trustedBy(pemBundle: string, serving: KeyPairPem): boolean {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(serving.cert);
  } catch {
    return false;
  }
  return certificatesIn(pemBundle).some((ca) => {
    try {
      const issuer = new X509Certificate(ca);
      return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
    } catch {
      return false;
    }
  });
}

const decode64 = (b64: string): string => Buffer.from(b64, 'base64').toString('utf8');

/** Whether every webhook's caBundle holds `caCert`. */
function caBundleTrusts(webhooks: readonly { caBundle: string }[], caCert: string): boolean {
  const wanted = certificatesIn(caCert)[0];
  return webhooks.length > 0 && webhooks.every((w) => certificatesIn(decode64(w.caBundle)).includes(wanted!));
}

/** A pass's view of the webhooks' caBundles. */
interface Webhooks {
  webhooks: { name: string; caBundle: string }[];
}
const encode64 = (pem: string): string => Buffer.from(pem).toString('base64');

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

  private get interval(): number {
    return this.options.checkIntervalMs ?? 10 * 60_000;
  }

  /**
   * One pass: the serving pair to use, after creating, renewing or rolling over the Secret and
   * setting caBundle. The webhook configuration is read first: it owns the Secret (so uninstalling
   * deletes it), and without it there is nothing to serve, so no Secret is created for a
   * configuration that is gone.
   */
  async reconcile(): Promise<PassResult> {
    const { kube, namespace, secretName, webhookConfigName, log } = this.options;
    const configuration = await kube.readWebhookConfiguration(webhookConfigName);
    const owner = { name: webhookConfigName, uid: configuration.uid };
    // The webhooks as last read or patched in this pass: caBundle patches test the value they replace,
    // so acting on this read is safe (a change by another replica fails the patch, and the pass).
    const seen: Webhooks = { webhooks: configuration.webhooks };
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const stored = await kube.readSecret(namespace, secretName);
      if (stored === undefined) {
        const bundle = generateBundle(this.dnsNames, this.now());
        const data = bundleToSecretData(bundle);
        if (await kube.createSecret(namespace, secretName, data, owner) === 'exists') {
          log.info(`${this.where} was created by another replica meanwhile; using theirs`);
          continue;
        }
        log.info({ dnsNames: this.dnsNames }, `created ${this.where} with a new CA and serving certificate`);
        return this.settle(seen, data, bundle.serving);
      }
      const current = bundleFromSecretData(stored.data)?.serving;
      const next = this.nextState(stored.data) ?? (stored.ownerUids.includes(owner.uid) ? undefined : {
        // A Secret from before owner references (or re-created by hand): adopted, data unchanged.
        data: stored.data,
        message: `${this.where} was not owned by MutatingWebhookConfiguration ${webhookConfigName}; added the owner reference`,
      });
      if (next === undefined) return this.settle(seen, stored.data, current!);
      // Before a new CA signs anything, caBundle must trust it: patch now, sign on a later pass
      // (the API servers pick up the new caBundle meanwhile), or at once when nothing can be served.
      if (next.needsTrust !== undefined && !caBundleTrusts(seen.webhooks, next.needsTrust)) {
        await this.ensureCaBundle(seen, desiredCaBundle(stored.data, this.now()));
        if (current !== undefined) return this.settle(seen, stored.data, current);
        continue;
      }
      const written = await kube.replaceSecret(namespace, secretName, next.data, stored.resourceVersion, owner);
      if (written === 'conflict') {
        log.info(`${this.where} changed while renewing (another replica); reading it again`);
        continue;
      }
      log.info(next.message);
      const serving = bundleFromSecretData(next.data)?.serving;
      if (serving !== undefined) return this.settle(seen, next.data, serving);
    }
    throw new Error(`${this.where} kept changing under ${MAX_ATTEMPTS} attempts to read and renew it`);
  }

  /**
   * The Secret's next state when it must change (renewal, a rollover step), with a log message;
   * undefined when it can be served as it is. `needsTrust`: a CA caBundle must hold first.
   */
  private nextState(data: Record<string, string>): { data: Record<string, string>; message: string; needsTrust?: string } | undefined {
    const now = this.now();
    const bundle = bundleFromSecretData(data);
    const nextCert = data[SECRET_KEYS.nextCaCert];
    const nextKey = data[SECRET_KEYS.nextCaKey];
    const nextCa: KeyPairPem | undefined = nextCert && nextKey ? { cert: nextCert, key: nextKey } : undefined;
    const without = (keys: string[]): Record<string, string> =>
      Object.fromEntries(Object.entries(data).filter(([k]) => !keys.includes(k)));

    if (nextCa !== undefined && caProblem(nextCa, now) === undefined) {
      // Phase B: the new CA signs, the old one stays trusted for the overlap.
      const overlap = this.options.rolloverOverlapMs ?? 2 * this.interval;
      const previous = parses(data[SECRET_KEYS.caCert]) ? data[SECRET_KEYS.caCert] : undefined;
      const serving = generateServing(nextCa, this.dnsNames, now);
      return {
        data: {
          ...without(ROLLOVER_KEYS),
          ...bundleToSecretData({ ca: nextCa, serving }),
          ...(previous === undefined ? {} : {
            [SECRET_KEYS.previousCaCert]: previous,
            [SECRET_KEYS.previousUntil]: new Date(now.getTime() + overlap).toISOString(),
          }),
        },
        message: `${this.where}: the new CA now signs the serving certificate; the old CA stays in caBundle `
          + `${previous === undefined ? '(none to keep)' : `until ${new Date(now.getTime() + overlap).toISOString()}`}`,
        needsTrust: nextCa.cert,
      };
    }
    const problem = bundle === undefined
      ? `${[SECRET_KEYS.caCert, SECRET_KEYS.caKey, SECRET_KEYS.cert, SECRET_KEYS.key].join(', ')} are not all set`
      : caProblem(bundle.ca, now);
    if (problem !== undefined) {
      // Phase A: a new CA, trusted before it signs anything.
      const ca = generateCa(now);
      return {
        data: { ...data, [SECRET_KEYS.nextCaCert]: ca.cert, [SECRET_KEYS.nextCaKey]: ca.key },
        message: `${this.where}: ${problem}; rolling over to a new CA (caBundle holds both until every replica serves its certificate)`,
      };
    }
    const until = Date.parse(data[SECRET_KEYS.previousUntil] ?? '');
    if (data[SECRET_KEYS.previousCaCert] !== undefined && !(until > now.getTime())) {
      // Phase C: every replica has had its pass; the old CA goes.
      return { data: without(ROLLOVER_KEYS), message: `${this.where}: CA rollover done; the old CA leaves caBundle` };
    }
    const servingIssue = servingProblem(bundle!, this.dnsNames, now);
    if (servingIssue === undefined) return undefined;
    return {
      data: { ...data, ...bundleToSecretData({ ca: bundle!.ca, serving: generateServing(bundle!.ca, this.dnsNames, now) }) },
      message: `${this.where}: ${servingIssue}; renewed the serving certificate`,
    };
  }

  /** Sets caBundle as the Secret calls for, and says whether it trusts `serving`. */
  private async settle(seen: Webhooks, data: Record<string, string>, serving: KeyPairPem): Promise<PassResult> {
    const rollover = ROLLOVER_KEYS.some((k) => data[k] !== undefined);
    const isTrusted = (): boolean => seen.webhooks.length > 0 && seen.webhooks.every((w) => trustedBy(decode64(w.caBundle), serving));
    try {
      await this.ensureCaBundle(seen, desiredCaBundle(data, this.now()));
    } catch (err) {
      // Most often another replica changed caBundle since this pass read it (the patch's test failed):
      // what it wrote may trust this replica's certificate as well, and readiness follows what is
      // there, not the lost race. The next pass sets caBundle as the Secret calls for.
      try {
        seen.webhooks = (await this.options.kube.readWebhookConfiguration(this.options.webhookConfigName)).webhooks;
      } catch {
        seen.webhooks = [];
      }
      const trusted = isTrusted();
      return { serving, trusted, rollover, ...(trusted ? {} : { problem: `setting caBundle failed: ${describeApiError(err)}` }) };
    }
    return { serving, trusted: isTrusted(), rollover };
  }

  /** Patches caBundle (PEM) into every webhook of `seen` lacking it, and records the result in `seen`. */
  private async ensureCaBundle(seen: Webhooks, pemBundle: string): Promise<void> {
    const { kube, webhookConfigName, log } = this.options;
    if (seen.webhooks.length === 0) log.warn(`MutatingWebhookConfiguration ${webhookConfigName} has no webhooks to give the CA to`);
    const caBundle = encode64(pemBundle);
    const patch = caBundlePatch(seen.webhooks, caBundle);
    if (patch.length === 0) return;
    await kube.patchWebhookConfiguration(webhookConfigName, patch);
    const changed = seen.webhooks.filter((w) => w.caBundle !== caBundle).length;
    log.info({ cas: certificatesIn(pemBundle).length },
      `patched caBundle of MutatingWebhookConfiguration ${webhookConfigName} (${changed} webhooks)`);
    seen.webhooks = seen.webhooks.map((w) => ({ name: w.name, caBundle }));
  }

  /** Reconciles now and then every checkIntervalMs (rolloverPollMs during a rollover), retrying failures with backoff, until close(). */
  start(events: SelfManagedEvents): void {
    let retry = this.options.retryMs ?? 1000;
    const pass = async (): Promise<void> => {
      let delay = this.interval;
      try {
        const result = await this.reconcile();
        if (result.rollover) delay = Math.min(delay, this.options.rolloverPollMs ?? 5000);
        if (!this.closed) {
          if (result.serving.cert !== this.served) {
            this.served = result.serving.cert;
            events.onChange(result.serving);
          }
          events.onTrust(result.trusted);
        }
        if (result.problem === undefined) retry = this.options.retryMs ?? 1000;
        else {
          events.onError(`self-managed TLS (MutatingWebhookConfiguration ${this.options.webhookConfigName}): `
            + `${result.problem}; retrying in ${retry} ms`);
          delay = Math.min(delay, retry);
          retry = Math.min(retry * 2, this.interval);
        }
      } catch (err) {
        events.onError(`self-managed TLS (${this.where}, MutatingWebhookConfiguration `
          + `${this.options.webhookConfigName}): ${describeApiError(err)}; retrying in ${retry} ms`);
        delay = retry;
        retry = Math.min(retry * 2, this.interval);
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
