import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { test } from 'node:test';
import {
  CA_VALIDITY_DAYS, SERVING_VALIDITY_DAYS, caProblem, dnsNamesOf, generateBundle, generateCa, generateServing,
  serviceDnsNames, servingProblem,
} from '../../src/webhook/tls/certs.ts';

const DAY = 86_400_000;
const NOW = new Date('2026-03-01T12:00:00Z');
const NAMES = serviceDnsNames('promux-webhook', 'promux-system');
const bundle = generateBundle(NAMES, NOW);

test('the serving names are the ones the API server may dial for a Service', () => {
  assert.deepEqual(serviceDnsNames('svc', 'ns'), ['svc', 'svc.ns', 'svc.ns.svc', 'svc.ns.svc.cluster.local']);
});

test('generated certificates verify with node:crypto: chain, SANs, validity, CA flag, keys', () => {
  const ca = new X509Certificate(bundle.ca.cert);
  const serving = new X509Certificate(bundle.serving.cert);
  assert.equal(ca.ca, true);
  assert.equal(serving.ca, false);
  assert.ok(ca.verify(ca.publicKey), 'the CA is self-signed');
  assert.ok(serving.verify(ca.publicKey), 'the serving certificate is signed by the CA');
  assert.ok(serving.checkIssued(ca));
  assert.deepEqual(dnsNamesOf(serving), NAMES);
  assert.match(serving.subject, /CN=promux-webhook/);
  assert.deepEqual(serving.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'extended key usage: server authentication only');
  for (const [cert, days] of [[ca, CA_VALIDITY_DAYS], [serving, SERVING_VALIDITY_DAYS]] as const) {
    const from = new Date(cert.validFrom).getTime();
    const to = new Date(cert.validTo).getTime();
    assert.ok(from <= NOW.getTime() && from >= NOW.getTime() - 2 * 3600_000, `${cert.subject} starts just before now`);
    assert.equal(Math.round((to - NOW.getTime()) / DAY), days);
  }
  assert.ok(ca.checkPrivateKey(createPrivateKey(bundle.ca.key)));
  assert.ok(serving.checkPrivateKey(createPrivateKey(bundle.serving.key)));
  assert.notEqual(ca.serialNumber, serving.serialNumber);
});

test('a fresh bundle needs nothing; a stored one is renewed 30 days before expiry', () => {
  assert.equal(caProblem(bundle.ca, NOW), undefined);
  assert.equal(servingProblem(bundle, NAMES, NOW), undefined);
  assert.equal(servingProblem(bundle, NAMES, new Date(NOW.getTime() + 300 * DAY)), undefined);
  assert.match(servingProblem(bundle, NAMES, new Date(NOW.getTime() + 340 * DAY)) ?? '', /expires/);
  assert.match(servingProblem(bundle, NAMES, new Date(NOW.getTime() + 400 * DAY)) ?? '', /expires/);
});

test('a serving certificate for other names, from another CA or with the wrong key is replaced', () => {
  assert.match(servingProblem(bundle, serviceDnsNames('promux-webhook', 'elsewhere'), NOW) ?? '', /does not cover promux-webhook.elsewhere/);
  const otherCa = generateCa(NOW);
  assert.match(servingProblem({ ca: otherCa, serving: bundle.serving }, NAMES, NOW) ?? '', /not signed by the CA/);
  const other = generateServing(bundle.ca, NAMES, NOW);
  assert.match(servingProblem({ ca: bundle.ca, serving: { cert: bundle.serving.cert, key: other.key } }, NAMES, NOW) ?? '',
    /key does not match/);
  assert.match(servingProblem({ ca: bundle.ca, serving: { cert: 'garbage', key: other.key } }, NAMES, NOW) ?? '', /does not parse/);
});

test('a CA that is not a CA, has the wrong key, or expires within a year is replaced', () => {
  assert.match(caProblem(bundle.serving, NOW) ?? '', /not a CA/);
  assert.match(caProblem({ cert: bundle.ca.cert, key: bundle.serving.key }, NOW) ?? '', /does not match/);
  assert.match(caProblem(bundle.ca, new Date(NOW.getTime() + (CA_VALIDITY_DAYS - 300) * DAY)) ?? '', /expires within a year/);
  assert.match(caProblem({ cert: '', key: '' }, NOW) ?? '', /does not parse/);
});
