import assert from 'node:assert/strict';
import { test } from 'node:test';
import { acceptsGzip, negotiateOutput, targetTimeoutMs } from '../../src/sidecar/negotiate.ts';
import { PROMETHEUS_3_ACCEPT, PROMETHEUS_PROTOBUF_ACCEPT } from './exposition/accept.ts';
import { PROMETHEUS_ACCEPT } from './helpers.ts';

test("the targets' timeout is --scrape_timeout, lowered below the scraper's own with a margin", () => {
  assert.equal(targetTimeoutMs(10_000, undefined), 10_000);
  assert.equal(targetTimeoutMs(10_000, '30'), 10_000); // the flag is lower
  assert.equal(targetTimeoutMs(10_000, '10'), 9_000); // 10%
  assert.equal(targetTimeoutMs(10_000, '2'), 1_500); // at least 0.5 s
  assert.equal(targetTimeoutMs(10_000, '0.6'), 300); // never below half of it
  assert.equal(targetTimeoutMs(60_000, '60'), 54_000);
  for (const bad of ['', 'soon', '-1', '0', 'Infinity']) assert.equal(targetTimeoutMs(10_000, bad), 10_000, bad);
});

const PROMETHEUS_2 = PROMETHEUS_ACCEPT;
const PROMETHEUS_3 = PROMETHEUS_3_ACCEPT;
const PROMETHEUS_3_LEGACY = PROMETHEUS_3.replaceAll('allow-utf-8', 'underscores');

test('Prometheus 2.42: OpenMetrics 1.0.0 preferred, text 0.0.4 taken, names escaped with underscores', () => {
  assert.deepEqual(negotiateOutput(PROMETHEUS_2), {
    openMetrics: { format: 'openmetrics', contentType: 'application/openmetrics-text; version=1.0.0; charset=utf-8', escaping: 'underscores' },
    text: { format: 'text', contentType: 'text/plain; version=0.0.4; charset=utf-8', escaping: 'underscores' },
    preferText: false,
    protobuf: false,
    protobufEscaping: 'underscores',
    key: 'application/openmetrics-text; version=1.0.0; charset=utf-8|text/plain; version=0.0.4; charset=utf-8|false|false',
  });
});

test('protobuf taken when the Accept names delimited MetricFamily messages (Prometheus 2.42 with native histograms, Prometheus 3)', () => {
  const prometheus2 = negotiateOutput(PROMETHEUS_PROTOBUF_ACCEPT);
  assert.equal(prometheus2.protobuf, true);
  // No escaping parameter (Prometheus 2.x rejects a scrape with a UTF-8 name): names escaped with underscores.
  assert.equal(prometheus2.protobufEscaping, 'underscores');
  assert.equal(prometheus2.openMetrics?.contentType, 'application/openmetrics-text; version=1.0.0; charset=utf-8');
  assert.notEqual(prometheus2.key, negotiateOutput(PROMETHEUS_2).key);
  const prometheus3 = 'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;escaping=allow-utf-8;q=0.6,' +
    PROMETHEUS_3.replace('*/*;q=0.2', '*/*;q=0.1');
  assert.equal(negotiateOutput(prometheus3).protobuf, true);
  assert.equal(negotiateOutput(prometheus3).protobufEscaping, 'allow-utf-8');
  assert.equal(negotiateOutput(prometheus3.replaceAll('allow-utf-8', 'dots')).protobufEscaping, 'dots');
  assert.notEqual(negotiateOutput(prometheus3).key, negotiateOutput(prometheus3.replaceAll('allow-utf-8', 'underscores')).key);
  // The protobuf range with the highest q decides.
  assert.equal(negotiateOutput(`${PROMETHEUS_PROTOBUF_ACCEPT.replace('delimited,', 'delimited;q=0.9,')},` +
    'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;escaping=allow-utf-8').protobufEscaping, 'allow-utf-8');
  // Other encodings (text, compact-text) and other messages are not what promux writes; nor is q=0.
  for (const other of [
    'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text',
    'application/vnd.google.protobuf;proto=other.Message;encoding=delimited',
    'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0',
  ]) {
    const accepted = negotiateOutput(other);
    assert.equal(accepted.protobuf, false, other);
    assert.equal(accepted.text?.contentType, 'text/plain; version=0.0.4; charset=utf-8', other);
  }
});

test('Prometheus 3: the versions 1.0.0 it prefers, with the escaping it names, echoed in the Content-Type', () => {
  const utf8 = negotiateOutput(PROMETHEUS_3);
  assert.deepEqual(utf8.openMetrics, {
    format: 'openmetrics', contentType: 'application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8', escaping: 'allow-utf-8',
  });
  assert.deepEqual(utf8.text, { format: 'text', contentType: 'text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8', escaping: 'allow-utf-8' });
  assert.equal(utf8.preferText, false);
  const legacy = negotiateOutput(PROMETHEUS_3_LEGACY);
  assert.equal(legacy.openMetrics?.escaping, 'underscores');
  assert.equal(legacy.text?.contentType, 'text/plain; version=1.0.0; charset=utf-8; escaping=underscores');
  for (const escaping of ['dots', 'values'] as const) {
    assert.equal(negotiateOutput(`text/plain;version=1.0.0;escaping=${escaping}`).text?.escaping, escaping);
  }
  assert.notEqual(utf8.key, legacy.key);
});

test('the range with the highest q decides each format; unknown versions and escapings are ignored', () => {
  const accepted = negotiateOutput('text/plain;version=0.0.4;q=0.3,text/plain;version=1.0.0;escaping=dots;q=0.5,text/plain;version=9;q=1');
  assert.equal(accepted.text?.contentType, 'text/plain; version=1.0.0; charset=utf-8; escaping=dots');
  assert.equal(accepted.openMetrics, undefined);
  assert.equal(negotiateOutput('application/openmetrics-text;version=2.0.0').openMetrics, undefined);
  assert.equal(negotiateOutput('application/openmetrics-text;version=0.0.1').openMetrics?.contentType,
    'application/openmetrics-text; version=0.0.1; charset=utf-8');
  assert.equal(negotiateOutput('Application/OpenMetrics-Text; Version="1.0.0"; q=0.9').openMetrics?.contentType,
    'application/openmetrics-text; version=1.0.0; charset=utf-8');
  assert.equal(negotiateOutput('text/plain;escaping=klingon').text?.escaping, 'underscores');
  assert.equal(negotiateOutput('application/openmetrics-text;q=0').openMetrics, undefined);
});

test('text preferred when its q is higher; OpenMetrics alone when nothing else is taken', () => {
  assert.equal(negotiateOutput('application/openmetrics-text;q=0.4,text/plain;q=0.5').preferText, true);
  assert.equal(negotiateOutput('application/openmetrics-text;q=0.5,text/plain;q=0.5').preferText, false);
  const only = negotiateOutput('application/openmetrics-text;version=1.0.0');
  assert.equal(only.text, undefined);
  assert.equal(only.openMetrics?.format, 'openmetrics');
});

test('no Accept, */*, text/* or only types promux does not write: text 0.0.4', () => {
  for (const accept of [undefined, '', '*/*', 'text/*', 'application/json', 'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited']) {
    const accepted = negotiateOutput(accept);
    assert.equal(accepted.text?.contentType, 'text/plain; version=0.0.4; charset=utf-8', String(accept));
    assert.equal(accepted.openMetrics, undefined, String(accept));
  }
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
