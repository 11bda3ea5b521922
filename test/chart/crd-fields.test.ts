import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crdProblems } from './crd-fields.ts';

const certificate = {
  apiVersion: 'cert-manager.io/v1',
  kind: 'Certificate',
  metadata: { name: 'promux', namespace: 'promux' },
  spec: { secretName: 'promux-tls', dnsNames: ['promux.promux.svc'], issuerRef: { name: 'ca', kind: 'Issuer' } },
};

test('crdProblems: a well-formed Certificate has none; other kinds are not its business', () => {
  assert.deepEqual(crdProblems(certificate), []);
  assert.equal(crdProblems({ apiVersion: 'v1', kind: 'Pod' }), undefined);
});

test('crdProblems: unknown fields, bad enums, bad durations and missing required fields are reported', () => {
  const bad = {
    ...certificate,
    spec: {
      secretName: 'promux-tls',
      dnsName: ['x'],
      duration: '1y',
      usages: ['server auth', 'server-auth'],
      privateKey: { algorithm: 'EC' },
    },
  };
  assert.deepEqual(crdProblems(bad), [
    '/spec/issuerRef: required',
    '/spec/dnsName: unknown field "dnsName"',
    '/spec/duration: expected a Go duration such as "8760h"',
    '/spec/usages: item: expected one of signing, digital signature, content commitment, key encipherment, key agreement, data encipherment, cert sign, crl sign, encipher only, decipher only, any, server auth, client auth, code signing, email protection, s/mime, ipsec end system, ipsec tunnel, ipsec user, timestamping, ocsp signing, microsoft sgc, netscape sgc',
    '/spec/privateKey/algorithm: expected one of RSA, ECDSA, Ed25519',
  ]);
  const monitor = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'ServiceMonitor',
    metadata: { name: 'promux', namespace: 'promux' },
    spec: { selector: { matchLabels: { a: 'b' } }, endpoints: [{ port: 'https', intervall: '30s', scrapeTimeout: '5 s' }] },
  };
  assert.deepEqual(crdProblems(monitor), [
    '/spec/endpoints: [0]/intervall: unknown field "intervall"; [0]/scrapeTimeout: expected a Prometheus duration',
  ]);
});
