// Field checks for the custom resources the chart renders, which kubernetes-models has no schema
// for: cert-manager.io/v1 Issuer and Certificate, monitoring.coreos.com/v1 ServiceMonitor,
// PodMonitor and PrometheusRule. Only the fields the chart can set are listed, with the types and enums of the CRD
// reference (cert-manager.io/docs/reference/api-docs, prometheus-operator.dev/docs/api-reference);
// any other field is reported, so a typo in a template fails the test.

type Check = (value: unknown) => string | undefined;
interface Shape {
  fields: Record<string, Check | Shape>;
  required?: string[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str: Check = (v) => (typeof v === 'string' && v !== '' ? undefined : 'expected a non-empty string');
const bool: Check = (v) => (typeof v === 'boolean' ? undefined : 'expected a boolean');
const int: Check = (v) => (Number.isInteger(v) ? undefined : 'expected an integer');
const anyObject: Check = (v) => (isObject(v) ? undefined : 'expected an object');
const anyList: Check = (v) => (Array.isArray(v) ? undefined : 'expected a list');
const oneOf = (...allowed: string[]): Check => (v) =>
  typeof v === 'string' && allowed.includes(v) ? undefined : `expected one of ${allowed.join(', ')}`;
const matching = (re: RegExp, what: string): Check => (v) => (typeof v === 'string' && re.test(v) ? undefined : `expected ${what}`);
const listOf = (item: Check): Check => (v) => {
  if (!Array.isArray(v)) return 'expected a list';
  const bad = v.map(item).find((p) => p !== undefined);
  return bad === undefined ? undefined : `item: ${bad}`;
};
const stringMap: Check = (v) =>
  isObject(v) && Object.values(v).every((x) => typeof x === 'string') ? undefined : 'expected a map of strings';

const goDuration = matching(/^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/, 'a Go duration such as "8760h"');
const promDuration = matching(/^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$/, 'a Prometheus duration');
const KEY_USAGES = [
  'signing', 'digital signature', 'content commitment', 'key encipherment', 'key agreement', 'data encipherment',
  'cert sign', 'crl sign', 'encipher only', 'decipher only', 'any', 'server auth', 'client auth', 'code signing',
  'email protection', 's/mime', 'ipsec end system', 'ipsec tunnel', 'ipsec user', 'timestamping', 'ocsp signing',
  'microsoft sgc', 'netscape sgc',
];

const metadata: Shape = {
  fields: { name: str, namespace: str, labels: stringMap, annotations: stringMap },
  required: ['name', 'namespace'],
};
const issuerRef: Shape = { fields: { name: str, kind: str, group: str }, required: ['name'] };

const ISSUER: Shape = {
  fields: {
    selfSigned: { fields: { crlDistributionPoints: listOf(str) } },
    ca: { fields: { secretName: str, crlDistributionPoints: listOf(str), ocspServers: listOf(str), issuingCertificateURLs: listOf(str) }, required: ['secretName'] },
  },
};
const CERTIFICATE: Shape = {
  fields: {
    secretName: str,
    commonName: str,
    dnsNames: listOf(str),
    duration: goDuration,
    renewBefore: goDuration,
    isCA: bool,
    usages: listOf(oneOf(...KEY_USAGES)),
    privateKey: {
      fields: {
        algorithm: oneOf('RSA', 'ECDSA', 'Ed25519'),
        size: int,
        encoding: oneOf('PKCS1', 'PKCS8'),
        rotationPolicy: oneOf('Never', 'Always'),
      },
    },
    issuerRef,
  },
  required: ['secretName', 'issuerRef'],
};
const selector: Check = (v) => (isObject(v) && (isObject(v.matchLabels) || Array.isArray(v.matchExpressions)) ? undefined : 'expected a label selector');
const endpointFields: Record<string, Check | Shape> = {
  port: str,
  scheme: oneOf('http', 'https', 'HTTP', 'HTTPS'),
  path: str,
  interval: promDuration,
  scrapeTimeout: promDuration,
  tlsConfig: {
    fields: { insecureSkipVerify: bool, serverName: str, ca: anyObject, cert: anyObject, keySecret: anyObject, minVersion: str, maxVersion: str },
  },
  relabelings: anyList,
  metricRelabelings: anyList,
};
const SERVICE_MONITOR: Shape = {
  fields: { selector, endpoints: (v) => shapeListProblem(v, { fields: endpointFields }) },
  required: ['selector', 'endpoints'],
};
const POD_MONITOR: Shape = {
  fields: { selector, podMetricsEndpoints: (v) => shapeListProblem(v, { fields: endpointFields }) },
  required: ['selector', 'podMetricsEndpoints'],
};

const RULE: Shape = {
  fields: { alert: str, record: str, expr: str, for: promDuration, keep_firing_for: promDuration, labels: stringMap, annotations: stringMap },
  required: ['expr'],
};
const PROMETHEUS_RULE: Shape = {
  fields: {
    groups: (v) => shapeListProblem(v, {
      fields: { name: str, interval: promDuration, limit: int, rules: (r) => shapeListProblem(r, RULE) },
      required: ['name', 'rules'],
    }),
  },
  required: ['groups'],
};

const KINDS: Record<string, Shape> = {
  'monitoring.coreos.com/v1/PrometheusRule': PROMETHEUS_RULE,
  'cert-manager.io/v1/Issuer': ISSUER,
  'cert-manager.io/v1/Certificate': CERTIFICATE,
  'monitoring.coreos.com/v1/ServiceMonitor': SERVICE_MONITOR,
  'monitoring.coreos.com/v1/PodMonitor': POD_MONITOR,
};

function walk(value: unknown, shape: Shape, path: string, out: string[]): void {
  if (!isObject(value)) {
    out.push(`${path}: expected an object`);
    return;
  }
  for (const key of shape.required ?? []) if (!(key in value)) out.push(`${path}/${key}: required`);
  for (const [key, v] of Object.entries(value)) {
    const rule = shape.fields[key];
    if (rule === undefined) out.push(`${path}/${key}: unknown field "${key}"`);
    else if (typeof rule === 'function') {
      const problem = rule(v);
      if (problem !== undefined) out.push(`${path}/${key}: ${problem}`);
    } else walk(v, rule, `${path}/${key}`, out);
  }
}

function shapeListProblem(v: unknown, shape: Shape): string | undefined {
  if (!Array.isArray(v) || v.length === 0) return 'expected a non-empty list';
  const out: string[] = [];
  v.forEach((item, i) => walk(item, shape, `[${i}]`, out));
  return out.length === 0 ? undefined : out.join('; ');
}

/** Problems of a cert-manager or Prometheus Operator object; undefined for any other kind. */
export function crdProblems(obj: { apiVersion?: unknown; kind?: unknown } & Record<string, unknown>): string[] | undefined {
  const shape = KINDS[`${String(obj.apiVersion)}/${String(obj.kind)}`];
  if (shape === undefined) return undefined;
  const out: string[] = [];
  walk(obj, { fields: { apiVersion: str, kind: str, metadata, spec: shape }, required: ['metadata', 'spec'] }, '', out);
  return out;
}
