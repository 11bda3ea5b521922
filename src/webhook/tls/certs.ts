// Certificates for self-managed TLS: a CA and a serving certificate for the webhook's Service,
// generated with node-forge (RSA keys come from Node's native generator through forge), and the
// checks that decide when a stored certificate must be replaced, done with node:crypto.
import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import forge from 'node-forge';

export interface KeyPairPem {
  cert: string;
  key: string;
}

/** What the self-managed mode keeps in its Secret. */
export interface CertBundle {
  ca: KeyPairPem;
  serving: KeyPairPem;
}

const DAY_MS = 86_400_000;
export const CA_VALIDITY_DAYS = 3650;
export const SERVING_VALIDITY_DAYS = 365;
/** Renew the serving certificate when less than this is left (well before any client notices). */
export const RENEW_BEFORE_DAYS = 30;
/** Certificates start this much in the past, so replicas and API servers with a skewed clock accept them. */
const BACKDATE_MS = 60 * 60 * 1000;

/** The names the API server may use to reach the Service (it uses service.namespace.svc). */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}

function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0]! &= 0x7f; // positive, as RFC 5280 requires
  return bytes.toString('hex');
}

function newCertificate(publicKey: forge.pki.PublicKey, now: Date, validityDays: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = serialNumber();
  cert.validity.notBefore = new Date(now.getTime() - BACKDATE_MS);
  cert.validity.notAfter = new Date(now.getTime() + validityDays * DAY_MS);
  return cert;
}

export function generateCa(now: Date, commonName = 'promux-webhook-ca'): KeyPairPem {
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048 });
  const cert = newCertificate(keys.publicKey, now, CA_VALIDITY_DAYS);
  const subject = [{ name: 'commonName', value: commonName }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: forge.pki.privateKeyToPem(keys.privateKey) };
}

/** A serving certificate for `dnsNames` (the first is the subject's common name), signed by `ca`. */
export function generateServing(ca: KeyPairPem, dnsNames: string[], now: Date): KeyPairPem {
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const caKey = forge.pki.privateKeyFromPem(ca.key);
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048 });
  const cert = newCertificate(keys.publicKey, now, SERVING_VALIDITY_DAYS);
  cert.setSubject([{ name: 'commonName', value: dnsNames[0] ?? 'promux-webhook' }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: dnsNames.map((value) => ({ type: 2, value })) },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: forge.pki.privateKeyToPem(keys.privateKey) };
}

export function generateBundle(dnsNames: string[], now: Date): CertBundle {
  const ca = generateCa(now);
  return { ca, serving: generateServing(ca, dnsNames, now) };
}

/** The DNS names in a certificate's subjectAltName. */
export function dnsNamesOf(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(', ')
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice('DNS:'.length));
}

function matchesKey(cert: X509Certificate, keyPem: string): boolean {
  try {
    return cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

/** Why the CA in a bundle cannot be used, or undefined when it can. */
export function caProblem(ca: KeyPairPem, now: Date): string | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(ca.cert);
  } catch {
    return 'the CA certificate does not parse';
  }
  if (!cert.ca) return 'the CA certificate is not a CA';
  if (!matchesKey(cert, ca.key)) return 'the CA key does not match its certificate';
  // A serving certificate must not outlive its CA.
  if (new Date(cert.validTo).getTime() - now.getTime() < SERVING_VALIDITY_DAYS * DAY_MS) return 'the CA expires within a year';
  return undefined;
}

/**
 * Why the serving certificate must be replaced (expiring, not for these names, not from this CA,
 * not matching its key), or undefined when it is good.
 */
export function servingProblem(bundle: CertBundle, dnsNames: string[], now: Date): string | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(bundle.serving.cert);
  } catch {
    return 'the serving certificate does not parse';
  }
  const left = new Date(cert.validTo).getTime() - now.getTime();
  if (left < RENEW_BEFORE_DAYS * DAY_MS) return `the serving certificate expires ${cert.validTo}`;
  const covered = new Set(dnsNamesOf(cert));
  const missing = dnsNames.filter((n) => !covered.has(n));
  if (missing.length > 0) return `the serving certificate does not cover ${missing.join(', ')}`;
  try {
    if (!cert.verify(new X509Certificate(bundle.ca.cert).publicKey)) return 'the serving certificate is not signed by the CA';
  } catch {
    return 'the serving certificate is not signed by the CA';
  }
  if (!matchesKey(cert, bundle.serving.key)) return 'the serving key does not match its certificate';
  return undefined;
}
