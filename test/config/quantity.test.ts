import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { limitsBelowRequests, parseQuantity, quantityExpectation } from '../../src/config/quantity.ts';
import { requireTool } from '../helpers/tools.ts';

const GIGA = 1_000_000_000n;

test('quantities in nano units, every suffix and form the API server reads', () => {
  const cases: [string, bigint][] = [
    ['0', 0n], ['10m', 10_000_000n], ['0.5', 500_000_000n], ['.5', 500_000_000n], ['5.', 5n * GIGA],
    ['100u', 100_000n], ['7n', 7n], ['2k', 2000n * GIGA], ['1M', 10n ** 6n * GIGA], ['1G', 10n ** 9n * GIGA],
    ['1T', 10n ** 12n * GIGA], ['1P', 10n ** 15n * GIGA], ['1E', 10n ** 18n * GIGA],
    ['64Mi', 64n * 2n ** 20n * GIGA], ['1.5Gi', 3n * 2n ** 29n * GIGA], ['1Ki', 1024n * GIGA], ['1Ei', 2n ** 60n * GIGA],
    ['1e3', 1000n * GIGA], ['2E-1', 200_000_000n], ['1e+2', 100n * GIGA], ['0007', 7n * GIGA],
    // Finer than a nano rounds up to the next nano, as the API server rounds it.
    ['0.0000000001', 1n], ['1.0000000001', GIGA + 1n], ['1e-12', 1n],
  ];
  for (const [text, nanos] of cases) assert.equal(parseQuantity(text), nanos, text);
});

/** Refused by the API server's parser too (checked with kubectl below). */
const NOT_QUANTITIES = ['', 'x', '1K', '1 Mi', ' 1', '1e', '1e3.5', '1.2.3', '1Mi2', '1mi', '0x10', '1ki'];

test('not quantities: what the API server refuses, and what it takes but no resource can be', () => {
  for (const text of [...NOT_QUANTITIES, '1,5']) assert.equal(parseQuantity(text), undefined, text);
  // Accepted by resource.ParseQuantity, refused here: negative or signed values (a resource is never
  // negative), "." and "Mi" (no digits: zero), exponents beyond three digits and absurdly long numbers.
  for (const text of ['-1', '+1', '.', 'Mi', '1e1000', '1'.repeat(65)]) assert.equal(parseQuantity(text), undefined, text);
});

test('memory is whole bytes: "128m" is a slip for "128Mi"', () => {
  assert.equal(quantityExpectation('memory', '128Mi'), undefined);
  assert.equal(quantityExpectation('memory', '0.5Ki'), undefined);
  assert.match(quantityExpectation('memory', '128m')!, /whole number of bytes/);
  assert.match(quantityExpectation('memory', '1.5')!, /whole number of bytes/);
  assert.equal(quantityExpectation('cpu', '1.5'), undefined);
  assert.equal(quantityExpectation('cpu', 3), 'a Kubernetes quantity such as "10m" or "0.5"');
});

test('a limit below its request, compared exactly however each is spelled', () => {
  assert.deepEqual(limitsBelowRequests({ requests: { cpu: '0.3', memory: '1Gi' }, limits: { cpu: '300m', memory: '1073741824' } }), []);
  assert.deepEqual(limitsBelowRequests({ requests: { cpu: '0.3', memory: '1Gi' }, limits: { cpu: '299m', memory: '1G' } }), ['cpu', 'memory']);
  assert.deepEqual(limitsBelowRequests({ requests: { memory: '64Mi' }, limits: { cpu: '1m' } }), [], 'no limit, or no request: nothing to compare');
  // Both round up to 1n: equal to the API server.
  assert.deepEqual(limitsBelowRequests({ requests: { cpu: '2e-10' }, limits: { cpu: '1e-10' } }), []);
});

const suffixArb = fc.oneof(
  fc.constantFrom('', 'n', 'u', 'm', 'k', 'M', 'G', 'T', 'P', 'E', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'),
  fc.tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), fc.integer({ min: 0, max: 20 })).map(([e, sign, n]) => `${e}${sign}${n}`),
);
const quantityArb = fc
  .tuple(fc.stringMatching(/^\d{0,6}$/), fc.option(fc.stringMatching(/^\d{0,6}$/), { nil: undefined }), suffixArb)
  .filter(([whole, fraction]) => whole !== '' || (fraction !== undefined && fraction !== ''))
  .map(([whole, fraction, suffix]) => `${whole}${fraction === undefined ? '' : `.${fraction}`}${suffix}`);

/**
 * `kubectl set resources --local` on a pod of containers requesting `cpus`: kubectl decodes the pod
 * into its typed form (every quantity through the API server's resource.ParseQuantity) and writes
 * it back with each quantity canonical. `flag` sets one more resource.
 */
function kubectlSetResources(kubectl: string, cpus: string[], flag: string): { status: number | null; stdout: string; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'promux-quantity-'));
  try {
    const containers = cpus.map((cpu, i) => ({ name: `c${i}`, image: 'x', resources: { requests: { cpu } } }));
    writeFileSync(join(dir, 'pod.json'), JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'q' }, spec: { containers } }));
    writeFileSync(join(dir, 'kubeconfig'), '');
    return spawnSync(kubectl, ['set', 'resources', '--local', '-f', join(dir, 'pod.json'), '-c', 'c0', flag, '-o', 'json'],
      { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', HOME: dir, KUBECONFIG: join(dir, 'kubeconfig') }, timeout: 30_000 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('real parser: what promux refuses as not a quantity, kubectl (resource.ParseQuantity) refuses too', (t) => {
  const kubectl = requireTool(t, 'kubectl');
  if (kubectl === undefined) return;
  for (const text of NOT_QUANTITIES) {
    const result = kubectlSetResources(kubectl, ['1'], `--limits=cpu=${text}`);
    assert.notEqual(result.status, 0, `kubectl took ${JSON.stringify(text)}`);
    assert.match(result.stderr, /quantit/, text);
  }
  assert.equal(kubectlSetResources(kubectl, ['1'], '--limits=cpu=1.5Gi').status, 0, 'and takes a quantity');
});

test('real parser: every generated quantity means what kubectl (the API server\'s resource.ParseQuantity) makes of it', (t) => {
  const kubectl = requireTool(t, 'kubectl');
  if (kubectl === undefined) return;
  const quantities = fc.sample(quantityArb, { numRuns: 400, seed: 12 });
  const result = kubectlSetResources(kubectl, quantities, '--limits=memory=1Gi');
  assert.equal(result.status, 0, result.stderr);
  const canonical = (JSON.parse(result.stdout) as { spec: { containers: { resources: { requests: { cpu: string } } }[] } })
    .spec.containers.map((c) => c.resources.requests.cpu);
  let rewritten = 0;
  quantities.forEach((q, i) => {
    const nanos = parseQuantity(q);
    assert.notEqual(nanos, undefined, q);
    assert.equal(parseQuantity(canonical[i]!), nanos, `${q} became ${canonical[i]!}`);
    if (canonical[i] !== q) rewritten++;
  });
  assert.ok(rewritten > 100, `only ${rewritten} quantities were rewritten: the comparison tests little`);
});
