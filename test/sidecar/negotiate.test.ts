import assert from 'node:assert/strict';
import { test } from 'node:test';
import { acceptsGzip, acceptsOpenMetrics, targetTimeoutMs } from '../../src/sidecar/negotiate.ts';

test("the targets' timeout is --scrape_timeout, lowered below the scraper's own with a margin", () => {
  assert.equal(targetTimeoutMs(10_000, undefined), 10_000);
  assert.equal(targetTimeoutMs(10_000, '30'), 10_000); // the flag is lower
  assert.equal(targetTimeoutMs(10_000, '10'), 9_000); // 10%
  assert.equal(targetTimeoutMs(10_000, '2'), 1_500); // at least 0.5 s
  assert.equal(targetTimeoutMs(10_000, '0.6'), 300); // never below half of it
  assert.equal(targetTimeoutMs(60_000, '60'), 54_000);
  for (const bad of ['', 'soon', '-1', '0', 'Infinity']) assert.equal(targetTimeoutMs(10_000, bad), 10_000, bad);
});

test('OpenMetrics only when the Accept header takes version 1.0.0 (or unversioned) with q > 0', () => {
  const prometheus242 =
    'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,' +
    'text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
  assert.equal(acceptsOpenMetrics(prometheus242), true);
  assert.equal(acceptsOpenMetrics('application/openmetrics-text'), true);
  assert.equal(acceptsOpenMetrics('Application/OpenMetrics-Text; Version="1.0.0"; q=0.9'), true);
  assert.equal(acceptsOpenMetrics('text/plain;version=0.0.4;q=0.5,*/*;q=0.1'), false);
  assert.equal(acceptsOpenMetrics('application/openmetrics-text;version=0.0.1'), false);
  assert.equal(acceptsOpenMetrics('application/openmetrics-text;q=0'), false);
  assert.equal(acceptsOpenMetrics('*/*'), false);
  assert.equal(acceptsOpenMetrics(undefined), false);
});

test('gzip output when Accept-Encoding takes it', () => {
  assert.equal(acceptsGzip('gzip'), true);
  assert.equal(acceptsGzip('deflate, gzip;q=0.5'), true);
  assert.equal(acceptsGzip('*'), true);
  assert.equal(acceptsGzip('gzip;q=0, *'), false);
  assert.equal(acceptsGzip('identity'), false);
  assert.equal(acceptsGzip('br, deflate'), false);
  assert.equal(acceptsGzip(undefined), false);
});
