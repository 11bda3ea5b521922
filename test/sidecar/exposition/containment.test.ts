// One container never sinks the merged answer. For each kind of input a container can really serve
// that a strict consumer rejects, and each valid input Prometheus accepts, a merge beside healthy
// targets: the answer passes the strict parser of its format (promtool, the Python OpenMetrics
// parser), the healthy targets' series are all served, and what was left out is counted.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  DROP_REASONS, DropCounter, EXEMPLAR_DROP_REASONS, mergeTargets, type Accepted, type DropReason, type ExemplarDropReason,
  type FetchedTarget, type MergeOutput, type TargetKey,
} from '../../../src/sidecar/exposition/index.ts';
import { REPO_ROOT } from '../../helpers/tools.ts';
import { ACCEPT } from './accept.ts';
import { openMetricsErrors, promtoolError, readExposition, tools, type RefSample } from './checkers.ts';

const TEXT = 'text/plain; version=0.0.4; charset=utf-8';
const OM = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

const HEALTHY_TEXT = [
  '# HELP app_requests_total Requests.', '# TYPE app_requests_total counter',
  'app_requests_total{code="200"} 5', 'app_requests_total{code="500"} 1',
  '# TYPE app_latency_seconds histogram',
  'app_latency_seconds_bucket{le="0.1"} 1', 'app_latency_seconds_bucket{le="+Inf"} 2', 'app_latency_seconds_sum 0.3', 'app_latency_seconds_count 2',
  '# TYPE app_queue gauge', 'app_queue 3', '',
].join('\n');
const HEALTHY_OPENMETRICS = [
  '# HELP jobs Jobs done.', '# TYPE jobs counter',
  'jobs_total{queue="a"} 3 # {trace_id="abc"} 1 1700000000.5', 'jobs_created{queue="a"} 1700000000',
  '# TYPE job_seconds histogram', '# UNIT job_seconds seconds',
  'job_seconds_bucket{le="1.0"} 2 # {trace_id="def"} 0.5', 'job_seconds_bucket{le="+Inf"} 3', 'job_seconds_count 3', 'job_seconds_sum 4.5',
  '# TYPE build info', 'build_info{version="1.2"} 1',
  '# EOF', '',
].join('\n');

/** Every target of these tests is its container's only endpoint. */
const ENDPOINT = '9100';
const at = (container: string): TargetKey => ({ container, endpoint: ENDPOINT });

function target(container: string, body: string, contentType: string): FetchedTarget {
  return { container, endpoint: ENDPOINT, body: Buffer.from(body), contentType, durationSeconds: 0.01 };
}

interface Merged {
  output: MergeOutput;
  drops: DropCounter;
}

function merge(targets: FetchedTarget[], accept: Accepted): Merged {
  const drops = new DropCounter();
  return { output: mergeTargets(targets, { containerLabel: 'container', accept }, drops), drops };
}

function key(s: RefSample): string {
  return JSON.stringify([s.name, [...s.labels].sort(([a], [b]) => (a < b ? -1 : 1)), s.value]);
}

/** The samples of the container in the answer, promux's own left out, as keys. */
function servedOf(output: MergeOutput, container: string): string[] {
  return readExposition(output.body.toString(), output.format).filter((f) => !f.name.startsWith('promux_'))
    .flatMap((f) => f.samples).filter((s) => s.labels.some(([n, v]) => n === 'container' && v === container)).map(key);
}

/** Every sample of a healthy body is served, labelled; nothing of it is dropped; its exemplars are kept in OpenMetrics. */
function assertHealthy(merged: Merged, container: string, body: string, format: 'text' | 'openmetrics'): void {
  const { output, drops } = merged;
  const input = readExposition(body, format).flatMap((f) => f.samples)
    .map((s) => key({ ...s, labels: [...s.labels, ['container', container]] })).sort();
  assert.deepEqual(servedOf(output, container).sort(), input, `${container}: every series served`);
  for (const reason of DROP_REASONS) assert.equal(drops.get(at(container), reason), 0, `${container}: ${reason}`);
  const exemplarsIn = (body.match(/ # \{/g) ?? []).length;
  const exemplarsOut = output.body.toString().split('\n').filter((l) => l.includes(`container="${container}"`) && l.includes(' # {')).length;
  assert.equal(exemplarsOut, output.format === 'openmetrics' ? exemplarsIn : 0);
  assert.equal(drops.getExemplars(at(container), 'text_output'), output.format === 'text' ? exemplarsIn : 0);
}

/** The answer passes the strict parser of its format. */
function assertValid(t: import('node:test').TestContext, output: MergeOutput): void {
  const checkers = tools(t);
  if (checkers === undefined) return;
  if (output.format === 'text') assert.equal(promtoolError(checkers.promtool, output.body), undefined, output.body.toString());
  else assert.deepEqual(openMetricsErrors(checkers.python, [output.body.toString()]), [undefined], output.body.toString());
}

function counts(drops: DropCounter, container: string): Partial<Record<DropReason | `exemplar ${ExemplarDropReason}`, number>> {
  const found: Partial<Record<DropReason | `exemplar ${ExemplarDropReason}`, number>> = {};
  for (const reason of DROP_REASONS) if (drops.get(at(container), reason) > 0) found[reason] = drops.get(at(container), reason);
  for (const reason of EXEMPLAR_DROP_REASONS) if (drops.getExemplars(at(container), reason) > 0) found[`exemplar ${reason}`] = drops.getExemplars(at(container), reason);
  return found;
}

interface Poison {
  what: string;
  body: string;
  /** The poisoned target's samples still served (keys as readExposition reads the answer would be too strict: lines). */
  kept: RegExp[];
}

/** OpenMetrics families valid as text (Prometheus 2.42 ingests them) that break OpenMetrics' rules. */
const OPENMETRICS_RULES: Poison[] = [
  { what: 'a negative counter', body: '# TYPE c counter\nc_total -1\n', kept: [/^c_total\{container="p"\} -1$/m] },
  { what: 'a NaN counter', body: '# TYPE c counter\nc_total NaN\n', kept: [/^c_total\{container="p"\} NaN$/m] },
  {
    what: 'a histogram without +Inf bucket', body: '# TYPE h histogram\nh_bucket{le="1.0"} 1\nh_count 1\nh_sum 1\n',
    kept: [/^h_bucket\{container="p",le="1\.0"\} 1$/m],
  },
  {
    what: 'buckets out of order', body: '# TYPE h histogram\nh_bucket{le="2.0"} 1\nh_bucket{le="1.0"} 1\nh_bucket{le="+Inf"} 1\nh_count 1\nh_sum 1\n',
    kept: [/^h_bucket\{container="p",le="2\.0"\} 1$/m],
  },
  {
    what: '_count different from the +Inf bucket', body: '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_count 3\nh_sum 1\n',
    kept: [/^h_count\{container="p"\} 3$/m],
  },
  { what: 'an info other than 1', body: '# TYPE i info\ni_info{v="1"} 2\n', kept: [/^i_info\{container="p",v="1"\} 2$/m] },
  { what: 'a stateset other than 0 or 1', body: '# TYPE s stateset\ns{s="a"} 3\n', kept: [/^s\{container="p",s="a"\} 3$/m] },
  { what: 'a _sum without _count', body: '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\n', kept: [/^h_sum\{container="p"\} 1$/m] },
  // As in Prometheus' own OpenMetrics test data.
  {
    what: 'a negative histogram _sum', body: '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_count 2\nh_sum -3.5\n',
    kept: [/^h_sum\{container="p"\} -3\.5$/m],
  },
  {
    what: 'a series split apart from its _created', body: '# TYPE c counter\nc_total{a="1"} 1\nc_total{a="2"} 2\nc_created{a="1"} 5\n',
    kept: [/^c_created\{container="p",a="1"\} 5$/m],
  },
];

describe('OpenMetrics families that break its rules on values and structure', () => {
  for (const poison of OPENMETRICS_RULES) {
    test(`${poison.what}: served as text to a scraper that takes text, the family whole`, (t) => {
      const body = `${poison.body}# TYPE other gauge\nother 1\n# EOF\n`;
      const merged = merge([target('p', body, OM), target('ok', HEALTHY_OPENMETRICS, OM)], ACCEPT.prometheus2);
      assert.equal(merged.output.format, 'text');
      assert.equal(merged.output.contentType, TEXT);
      assert.match(merged.output.servedAsText ?? '', /^container p, family \w+: /);
      for (const line of poison.kept) assert.match(merged.output.body.toString(), line);
      assert.deepEqual(counts(merged.drops, 'p'), {});
      assertHealthy(merged, 'ok', HEALTHY_OPENMETRICS, 'openmetrics');
      assertValid(t, merged.output);
    });

    test(`${poison.what}: dropped and counted for a scraper that takes OpenMetrics only, the rest served`, (t) => {
      const body = `${poison.body}# TYPE other gauge\nother 1\n# EOF\n`;
      const merged = merge([target('p', body, OM), target('ok', HEALTHY_OPENMETRICS, OM)], ACCEPT.openMetricsOnly);
      assert.equal(merged.output.format, 'openmetrics');
      const samples = poison.body.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
      assert.deepEqual(counts(merged.drops, 'p'), { openmetrics_violation: samples });
      assert.match(merged.output.body.toString(), /^other\{container="p"\} 1$/m);
      assertHealthy(merged, 'ok', HEALTHY_OPENMETRICS, 'openmetrics');
      assertValid(t, merged.output);
    });
  }

  test('info samples with and without timestamps in two targets: served as text', (t) => {
    const merged = merge([
      target('a', '# TYPE i info\ni_info{v="1"} 1\n# EOF\n', OM), target('b', '# TYPE i info\ni_info{v="2"} 1 1700000000\n# EOF\n', OM),
    ], ACCEPT.prometheus2);
    assert.equal(merged.output.format, 'text');
    assert.match(merged.output.servedAsText ?? '', /info samples with and without timestamps/);
    assertValid(t, merged.output);
  });
});

describe('samples strict parsers reject, in either format', () => {
  for (const [format, contentType, eof] of [['text', TEXT, ''], ['openmetrics', OM, '# EOF\n']] as const) {
    test(`${format}: a __name__ label inside the braces is dropped and counted, the family's other series served`, (t) => {
      const body = `# TYPE g gauge\ng{__name__="x"} 1\ng{a="1"} 2\n${eof}`;
      for (const accept of [ACCEPT.prometheus2, ACCEPT.text]) {
        const merged = merge([target('p', body, contentType), target('ok', HEALTHY_TEXT, TEXT)], accept);
        assert.deepEqual(counts(merged.drops, 'p'), { invalid_label: 1 });
        assert.match(merged.output.body.toString(), /^g\{container="p",a="1"\} 2$/m);
        assert.doesNotMatch(merged.output.body.toString(), /__name__/);
        assertHealthy(merged, 'ok', HEALTHY_TEXT, 'text');
        assertValid(t, merged.output);
      }
    });

    test(`${format}: a bucket with a non-numeric le and a quantile with a non-numeric quantile are dropped and counted`, (t) => {
      const body = '# TYPE h histogram\nh_bucket{le="abc"} 1\nh_bucket{le="+Inf"} 1\nh_count 1\nh_sum 1\n' +
        '# TYPE s summary\ns{quantile="x"} 1\ns{quantile="0.5"} 1\ns_count 1\ns_sum 1\n' + eof;
      const merged = merge([target('p', body, contentType), target('ok', HEALTHY_TEXT, TEXT)], ACCEPT.prometheus2);
      assert.equal(merged.output.format, 'text');
      assert.deepEqual(counts(merged.drops, 'p'), { invalid_label: 2 });
      assert.match(merged.output.body.toString(), /^h_bucket\{container="p",le="\+Inf"\} 1$/m);
      assert.match(merged.output.body.toString(), /^s\{container="p",quantile="0\.5"\} 1$/m);
      assertHealthy(merged, 'ok', HEALTHY_TEXT, 'text');
      assertValid(t, merged.output);
    });
  }

  test('text: signed timestamps and timestamps beyond int64 are dropped and counted (Prometheus cannot read them)', (t) => {
    const body = 'a 1 -5\nb 2 +5\nc 3 99999999999999999999\nd 4 9223372036854775807\ne 5 0000000000000000000001\n';
    const merged = merge([target('p', body, TEXT), target('ok', HEALTHY_TEXT, TEXT)], ACCEPT.prometheus2);
    assert.deepEqual(counts(merged.drops, 'p'), { invalid_timestamp: 3 });
    assert.match(merged.output.body.toString(), /^d\{container="p"\} 4 9223372036854775807$/m);
    assert.match(merged.output.body.toString(), /^e\{container="p"\} 5 0000000000000000000001$/m);
    assert.deepEqual(merged.output.targets.map((o) => o.up), [true, true]);
    assertHealthy(merged, 'ok', HEALTHY_TEXT, 'text');
    assertValid(t, merged.output);
  });

  test('OpenMetrics: a negative timestamp, or one beyond int64 milliseconds, is served in OpenMetrics and dropped from text', (t) => {
    const body = '# TYPE g gauge\ng{a="1"} 1 -1\ng{a="2"} 2 12345678901234567890.123\ng{a="3"} 3 1700000000.5\n# EOF\n';
    const asOpenMetrics = merge([target('p', body, OM), target('ok', HEALTHY_OPENMETRICS, OM)], ACCEPT.prometheus2);
    assert.equal(asOpenMetrics.output.format, 'openmetrics');
    assert.deepEqual(counts(asOpenMetrics.drops, 'p'), {});
    assert.match(asOpenMetrics.output.body.toString(), /^g\{container="p",a="1"\} 1 -1$/m);
    assert.match(asOpenMetrics.output.body.toString(), /^g\{container="p",a="2"\} 2 12345678901234567890\.123$/m);
    assertValid(t, asOpenMetrics.output);
    const asText = merge([target('p', body, OM), target('ok', HEALTHY_TEXT, TEXT)], ACCEPT.prometheus2);
    assert.deepEqual(counts(asText.drops, 'p'), { invalid_timestamp: 2 });
    assert.match(asText.output.body.toString(), /^g\{container="p",a="3"\} 3 1700000000500$/m);
    assertHealthy(asText, 'ok', HEALTHY_TEXT, 'text');
    assertValid(t, asText.output);
  });
});

describe('metadata and exemplars strict parsers reject', () => {
  test('a UNIT that is not the suffix of its family, or on an info: the family served without it', (t) => {
    const body = '# TYPE g gauge\n# UNIT g seconds\ng 1\n# TYPE i info\n# UNIT i bytes\ni_info 1\n# EOF\n';
    const merged = merge([target('p', body, OM), target('ok', HEALTHY_OPENMETRICS, OM)], ACCEPT.prometheus2);
    assert.equal(merged.output.format, 'openmetrics');
    assert.doesNotMatch(merged.output.body.toString(), /^# UNIT (g|i) /m);
    assert.match(merged.output.body.toString(), /^# UNIT job_seconds seconds$/m);
    assert.deepEqual(counts(merged.drops, 'p'), {});
    assertHealthy(merged, 'ok', HEALTHY_OPENMETRICS, 'openmetrics');
    assertValid(t, merged.output);
  });

  test('exemplars on a gauge, on a _sum, over 128 characters are left out and counted; in text all are', (t) => {
    const body = [
      '# TYPE g gauge', 'g 1 # {id="a"} 1',
      '# TYPE h histogram', 'h_bucket{le="+Inf"} 1 # {id="b"} 1', 'h_count 1', 'h_sum 1 # {id="c"} 1',
      '# TYPE c counter', `c_total 1 # {id="${'x'.repeat(130)}"} 1`,
      '# EOF', '',
    ].join('\n');
    const merged = merge([target('p', body, OM), target('ok', HEALTHY_OPENMETRICS, OM)], ACCEPT.prometheus2);
    assert.equal(merged.output.format, 'openmetrics');
    assert.deepEqual(counts(merged.drops, 'p'), { 'exemplar not_allowed': 2, 'exemplar invalid': 1 });
    assert.match(merged.output.body.toString(), /^h_bucket\{container="p",le="\+Inf"\} 1 # \{id="b"\} 1$/m);
    assertHealthy(merged, 'ok', HEALTHY_OPENMETRICS, 'openmetrics');
    assertValid(t, merged.output);
    const asText = merge([target('p', body, OM), target('ok', HEALTHY_TEXT, TEXT)], ACCEPT.prometheus2);
    assert.deepEqual(counts(asText.drops, 'p'), { 'exemplar text_output': 3, 'exemplar invalid': 1 });
  });

  test('the exemplar of a dropped sample is counted as sample_dropped', () => {
    const body = '# TYPE c counter\nc_total{a="1"} 1 # {id="a"} 1\nc_total{a="1"} 2 # {id="b"} 1\n# EOF\n';
    const merged = merge([target('p', body, OM)], ACCEPT.prometheus2);
    assert.deepEqual(counts(merged.drops, 'p'), { duplicate_series: 1, 'exemplar sample_dropped': 1 });
  });
});

describe('valid inputs Prometheus accepts, which promux used to refuse', () => {
  test('text: a value right after the braces', (t) => {
    const merged = merge([target('p', 'a{b="c"}1\na{b="d"}2 1700000000000\n', TEXT), target('ok', HEALTHY_TEXT, TEXT)], ACCEPT.prometheus2);
    assert.deepEqual(merged.output.targets.map((o) => [o.up, o.samples]), [[true, 2], [true, 7]]);
    assert.deepEqual(servedOf(merged.output, 'p'), [key({ name: 'a', labels: [['container', 'p'], ['b', 'c']], value: '1' } as RefSample),
      key({ name: 'a', labels: [['container', 'p'], ['b', 'd']], value: '2' } as RefSample)]);
    assertValid(t, merged.output);
    // As OpenMetrics (for a scraper that takes no text), written with the blank OpenMetrics requires.
    const asOpenMetrics = merge([target('p', 'a{b="c"}1\n', TEXT)], ACCEPT.openMetricsOnly);
    assert.match(asOpenMetrics.output.body.toString(), /^a\{container="p",b="c"\} 1$/m);
    assertValid(t, asOpenMetrics.output);
  });

  test('OpenMetrics: a timestamp beyond 9.2e15 s (the target is up)', () => {
    const merged = merge([target('p', 'a 1 12345678901234567890.123\n# EOF\n', OM)], ACCEPT.prometheus2);
    assert.deepEqual(merged.output.targets[0], { container: 'p', endpoint: ENDPOINT, up: true, samples: 1 });
  });
});

describe('UTF-8 names (Prometheus 3)', () => {
  const body = [
    '# HELP "http.requests" Requests.', '# TYPE "http.requests" counter',
    '{"http.requests_total","method.name"="get"} 3', '{"http.requests_total","method.name"="put"} 1',
    '# TYPE plain gauge', 'plain{"zone.id"="a"} 1', '# EOF', '',
  ].join('\n');

  test('kept, quoted, for a scraper that takes them, in OpenMetrics and in text', () => {
    const merged = merge([target('p', body, OM), target('ok', HEALTHY_OPENMETRICS, OM)], ACCEPT.prometheus3);
    assert.equal(merged.output.contentType, `${OM}; escaping=allow-utf-8`);
    const served = merged.output.body.toString();
    assert.match(served, /^# HELP "http\.requests" Requests\.$/m);
    assert.match(served, /^# TYPE "http\.requests" counter$/m);
    assert.match(served, /^\{"http\.requests_total",container="p","method\.name"="get"\} 3$/m);
    assert.match(served, /^plain\{container="p","zone\.id"="a"\} 1$/m);
    assertHealthy(merged, 'ok', HEALTHY_OPENMETRICS, 'openmetrics');
    const text = merge([target('p', body, OM), target('ok', HEALTHY_TEXT, TEXT)], ACCEPT.prometheus3);
    assert.equal(text.output.contentType, 'text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8');
    assert.match(text.output.body.toString(), /^# TYPE "http\.requests_total" counter$/m);
    assert.match(text.output.body.toString(), /^\{"http\.requests_total",container="p","method\.name"="get"\} 3$/m);
  });

  for (const [accept, name, label] of [
    [ACCEPT.prometheus3Legacy, 'http_requests', 'method_name'], [ACCEPT.prometheus2, 'http_requests', 'method_name'],
  ] as const) {
    test(`escaped for a scraper that takes none (${accept.openMetrics!.contentType}): valid for the strict parsers`, (t) => {
      for (const others of [HEALTHY_OPENMETRICS, HEALTHY_TEXT]) {
        const merged = merge([target('p', body, OM), target('ok', others, others === HEALTHY_TEXT ? TEXT : OM)], accept);
        const served = merged.output.body.toString();
        assert.match(served, new RegExp(`^${name}_total\\{container="p",${label}="get"\\} 3$`, 'm'));
        assert.match(served, /^plain\{container="p",zone_id="a"\} 1$/m);
        assert.deepEqual(counts(merged.drops, 'p'), {});
        assertHealthy(merged, 'ok', others, others === HEALTHY_TEXT ? 'text' : 'openmetrics');
        assertValid(t, merged.output);
      }
    });
  }

  test('names that escaping makes equal: the later group dropped and counted as escaping_conflict', (t) => {
    const conflicting = [
      '# TYPE "a.b" gauge', '{"a.b",x="1"} 1', '# TYPE a_b gauge', 'a_b{x="1"} 2', 'a_b{x="2"} 3',
      'c{"l.1"="v",l_1="w"} 4', '# EOF', '',
    ].join('\n');
    const merged = merge([target('p', conflicting, OM), target('ok', HEALTHY_OPENMETRICS, OM)], ACCEPT.prometheus2);
    assert.deepEqual(counts(merged.drops, 'p'), { escaping_conflict: 2 });
    assert.match(merged.output.body.toString(), /^a_b\{container="p",x="1"\} 1$/m);
    assert.match(merged.output.body.toString(), /^a_b\{container="p",x="2"\} 3$/m);
    assertHealthy(merged, 'ok', HEALTHY_OPENMETRICS, 'openmetrics');
    assertValid(t, merged.output);
    // Kept apart for a scraper that takes UTF-8 names.
    assert.deepEqual(counts(merge([target('p', conflicting, OM)], ACCEPT.prometheus3).drops, 'p'), {});
  });
});

test('docs/exposition.md and the README name exactly the drop reasons of the code', () => {
  const docs = readFileSync(join(REPO_ROOT, 'docs', 'exposition.md'), 'utf8');
  const rows = (header: string): string[] => {
    const table = docs.slice(docs.indexOf(`| ${header} |`)).split('\n\n')[0]!.split('\n').slice(2);
    return table.map((row) => /^\| `([a-z_]+)` \|/.exec(row)![1]!);
  };
  assert.deepEqual(rows('reason'), [...DROP_REASONS]);
  assert.deepEqual(rows('exemplar reason'), [...EXEMPLAR_DROP_REASONS]);
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  for (const reason of [...DROP_REASONS, ...EXEMPLAR_DROP_REASONS]) assert.ok(readme.includes(`\`${reason}\``), reason);
});
