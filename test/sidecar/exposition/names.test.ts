import assert from 'node:assert/strict';
import { test } from 'node:test';
import { escapeName, isLegacyLabelName, isLegacyMetricName, quoteName } from '../../../src/sidecar/exposition/names.ts';

test('legacy names: metric names may hold a colon, label names not; neither starts with a digit', () => {
  for (const name of ['a', '_x', 'http_requests_total', 'ns:rule:rate5m', 'A9']) assert.equal(isLegacyMetricName(name), true, name);
  for (const name of ['', '9a', 'my.metric', 'a-b', 'ünï', 'a b']) assert.equal(isLegacyMetricName(name), false, name);
  assert.equal(isLegacyLabelName('a:b'), false);
  assert.equal(isLegacyLabelName('__name__'), true);
});

test("escaping as prometheus/common's EscapeName does: legacy names untouched, the others made legacy", () => {
  const cases: Array<[string, string, string, string]> = [
    // name, underscores, dots, values
    ['my.metric', 'my_metric', 'my_dot_metric', 'U__my_2e_metric'],
    ['my_metric.x', 'my_metric_x', 'my__metric_dot_x', 'U__my__metric_2e_x'],
    ['ünï', '_n_', '__n__', 'U___fc_n_ef_'],
    ['0a.b', '_a_b', '__a_dot_b', 'U___30_a_2e_b'],
    ['emoji🙂', 'emoji_', 'emoji__', 'U__emoji_1f642_'],
  ];
  for (const [name, underscores, dots, values] of cases) {
    assert.equal(escapeName(name, 'underscores', true), underscores, name);
    assert.equal(escapeName(name, 'dots', true), dots, name);
    assert.equal(escapeName(name, 'values', true), values, name);
    assert.equal(escapeName(name, 'allow-utf-8', true), name);
    for (const escaping of ['underscores', 'dots', 'values'] as const) {
      assert.equal(isLegacyMetricName(escapeName(name, escaping, true)), true, `${escaping} ${name}`);
    }
  }
  for (const escaping of ['underscores', 'dots', 'values'] as const) {
    assert.equal(escapeName('http_requests_total', escaping, true), 'http_requests_total');
    assert.equal(escapeName('ns:rule', escaping, true), 'ns:rule');
  }
  // A label name never keeps a colon: the result is always a valid label name.
  assert.equal(escapeName('a:b', 'underscores', false), 'a_b');
  assert.equal(escapeName('a:b', 'values', false), 'U__a_3a_b');
  assert.equal(isLegacyLabelName(escapeName('a:b.c', 'dots', false)), true);
});

test('a quoted name escapes backslash, quote and line feed as label values do', () => {
  assert.equal(quoteName('my.metric'), '"my.metric"');
  assert.equal(quoteName('a"b\\c\nd'), '"a\\"b\\\\c\\nd"');
});
