import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { endpointOf, formatTarget, formatTargetMap, parseTarget, parseTargetMap, pathProblem, TargetMapError } from '../src/target-map.ts';

test('entries: container, optional https, port, optional path with query', () => {
  assert.deepEqual(parseTargetMap('gateway:8082, api:https:8443/custom/metrics?x=1'), [
    { container: 'gateway', port: 8082, path: '/metrics', scheme: 'http' },
    { container: 'api', port: 8443, path: '/custom/metrics?x=1', scheme: 'https' },
  ]);
});

test('several endpoints of one container; the same endpoint twice is refused; endpointOf is the entry without its container', () => {
  const targets = parseTargetMap('ksm:8080,ksm:8081,ksm:https:8080/metrics,ksm:8080/other');
  assert.equal(targets.length, 4);
  assert.deepEqual(targets.map(endpointOf), ['8080', '8081', 'https:8080', '8080/other']);
  assert.throws(() => parseTargetMap('ksm:8080', 'ksm:8080/metrics'),
    { name: 'TargetMapError', message: '"ksm:8080" appears twice: the same endpoint would be scraped twice' });
  assert.equal(formatTarget({ container: 'api', port: 8443, path: '/custom/metrics', scheme: 'https' }), 'api:https:8443/custom/metrics');
});

test('a path is visible ASCII starting with "/": one rule for the injector and the sidecar', () => {
  assert.equal(pathProblem('/metrics/%E6%8C%87?a=b&c=%20'), undefined);
  for (const [path, at] of [['/a b', 2], ['/a\r\nb', 2], ['/\tx', 1], ['/métrics', 2], ['/指标', 1], ['/x\x7f', 2]] as const) {
    assert.match(pathProblem(path) ?? '', new RegExp(`has a character HTTP does not allow in a request line \\(.* at ${at}; percent-encode it\\)$`), path);
    assert.throws(() => parseTarget(`a:1${path}`), TargetMapError);
  }
  assert.match(pathProblem('metrics') ?? '', /does not start with "\/"/);
});

test('property: every map the formatter writes is read back the same', () => {
  const name = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/);
  const path = fc.stringMatching(/^\/[\x21-\x2b\x2d-\x7e]{0,30}$/);
  const target = fc.record({
    container: name,
    port: fc.integer({ min: 1, max: 65535 }),
    path,
    scheme: fc.constantFrom('http' as const, 'https' as const),
  });
  fc.assert(fc.property(fc.uniqueArray(target, { selector: (t) => formatTarget(t), minLength: 1, maxLength: 6 }), (targets) => {
    assert.deepEqual(parseTargetMap(formatTargetMap(targets)), targets.map((t) => ({ ...t })));
  }));
});
