import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { DropCounter, mergeStreamed, mergeTargets, recyclePiece, type FetchedTarget, type MergeOutput } from '../../../src/sidecar/exposition/index.ts';
import { FIXTURES } from '../../helpers/tools.ts';
import { ACCEPT } from './accept.ts';
import { openMetricsErrors, promtoolError, readExposition, tools, type RefFamily } from './checkers.ts';

const TEXT = 'text/plain; version=0.0.4; charset=utf-8';
const OM = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

function fixture(name: string): Buffer {
  return readFileSync(join(FIXTURES, 'expositions', name));
}

function target(container: string, body: string | Buffer | undefined, contentType?: string, error?: string): FetchedTarget {
  return {
    container,
    endpoint: '9100',
    body: typeof body === 'string' ? Buffer.from(body) : body,
    contentType,
    error,
    durationSeconds: 0.0125,
  };
}

function merge(targets: FetchedTarget[], acceptOpenMetrics = false, drops = new DropCounter(), label = 'container'): MergeOutput {
  return mergeTargets(targets, { containerLabel: label, accept: acceptOpenMetrics ? ACCEPT.prometheus2 : ACCEPT.text }, drops);
}

function family(output: MergeOutput, name: string): RefFamily {
  const found = readExposition(output.body.toString(), output.format).filter((f) => f.name === name);
  assert.equal(found.length, 1, `family ${name} once in:\n${output.body.toString()}`);
  return found[0]!;
}

function lines(output: MergeOutput): string[] {
  return output.body.toString().split('\n');
}

const FIXTURE_TARGETS = (): FetchedTarget[] => [
  target('node', fixture('node-exporter.prom'), 'text/plain; version=0.0.4'),
  target('app', fixture('prom-client-app.prom'), 'text/plain; version=0.0.4; charset=utf-8'),
  target('worker', fixture('python-worker.om'), 'application/openmetrics-text; version=1.0.0; charset=utf-8'),
];

describe('mergeTargets on the real fixture outputs', () => {
  test('node_exporter, prom-client and a Python OpenMetrics app merge into text that promtool accepts', (t) => {
    const checkers = tools(t);
    const drops = new DropCounter();
    const output = merge(FIXTURE_TARGETS(), true, drops);
    assert.equal(output.format, 'text', 'two targets answered text, so the output is text');
    assert.equal(output.contentType, TEXT);
    assert.deepEqual(output.targets.map((o) => [o.container, o.up]), [['node', true], ['app', true], ['worker', true]]);
    if (checkers !== undefined) assert.equal(promtoolError(checkers.promtool, output.body), undefined);

    const inputs = [
      readExposition(fixture('node-exporter.prom').toString(), 'text'),
      readExposition(fixture('prom-client-app.prom').toString(), 'text'),
      readExposition(fixture('python-worker.om').toString(), 'openmetrics'),
    ].map((families) => families.reduce((n, f) => n + f.samples.length, 0));
    assert.deepEqual(output.targets.map((o) => o.samples), inputs, 'every sample served');

    // OpenMetrics families written as text, as client_python does, no series renamed.
    assert.deepEqual(family(output, 'jobs_processed_total').type, 'counter');
    assert.deepEqual(family(output, 'jobs_processed_created').type, 'gauge');
    assert.deepEqual(family(output, 'build_info').type, 'gauge');
    assert.deepEqual(family(output, 'worker_state').type, 'gauge');
    assert.equal(family(output, 'batch_size_bytes_created').samples.length, 1);
    const body = output.body.toString();
    assert.doesNotMatch(body, /# UNIT|# EOF|trace_id/, 'no UNIT, EOF or exemplar in text');
    assert.match(body, /^# HELP queue_depth Jobs waiting, "quoted" and \\\\ backslashed help\.$/m);
    assert.match(body, /^queue_depth\{container="worker",queue="weird \\"quoted\\" \\\\ value\\nnewline"\} 3\.0$/m);
    assert.match(body, /^queue_depth\{container="worker",queue="default"\} NaN$/m);
    assert.match(body, /^node_exporter_build_info\{container="node",branch=/m);
    assert.match(body, /^promux_target_up\{container="worker",endpoint="9100"\} 1$/m);
    assert.match(body, /^promux_target_samples\{container="node",endpoint="9100"\} \d+$/m);
    assert.match(body, /^promux_target_scrape_duration_seconds\{container="app",endpoint="9100"\} 0\.0125$/m);
  });

  test('the Python OpenMetrics app alone, with OpenMetrics accepted, is served as OpenMetrics the Python parser accepts', (t) => {
    const checkers = tools(t);
    const output = merge([target('worker', fixture('python-worker.om'), OM), target('again', fixture('python-worker.om'), OM)], true);
    assert.equal(output.format, 'openmetrics');
    assert.equal(output.contentType, OM);
    if (checkers !== undefined) assert.deepEqual(openMetricsErrors(checkers.python, [output.body.toString()]), [undefined]);
    const body = output.body.toString();
    assert.ok(body.endsWith('\n# EOF\n'));
    assert.match(body, /^jobs_processed_total\{container="worker",queue="default"\} 43\.0 # \{trace_id="abc123def456"\} 1\.0 1795274673\.2669926$/m);
    assert.match(body, /^# UNIT batch_size_bytes bytes$/m);
    assert.match(body, /^# UNIT promux_target_scrape_duration_seconds seconds$/m);
    assert.match(body, /^promux_dropped_samples_total\{container="again",endpoint="9100",reason="type_conflict"\} 0$/m);
    const jobs = family(output, 'jobs_processed');
    assert.deepEqual(jobs.samples.map((s) => s.labels[0]), [
      ['container', 'worker'], ['container', 'worker'], ['container', 'worker'], ['container', 'worker'],
      ['container', 'again'], ['container', 'again'], ['container', 'again'], ['container', 'again'],
    ], 'samples grouped by target in target order');
  });

  test('all three fixtures with text promux output pass promtool when a target is down too', (t) => {
    const checkers = tools(t);
    const output = merge([...FIXTURE_TARGETS(), target('gone', undefined, undefined, 'connection refused')]);
    assert.deepEqual(output.targets.at(-1), { container: 'gone', endpoint: '9100', up: false, samples: 0, error: 'connection refused' });
    assert.match(output.body.toString(), /^promux_target_up\{container="gone",endpoint="9100"\} 0$/m);
    if (checkers !== undefined) assert.equal(promtoolError(checkers.promtool, output.body), undefined);
  });
});

describe('mergeTargets edge cases', () => {
  test('an existing container label is kept as exported_container, then exported_exported_container', (t) => {
    const checkers = tools(t);
    const output = merge([target('web', [
      '# TYPE a gauge',
      'a{container="old"} 1',
      'a{exported_container="x",container="old",z="1"} 2',
      '',
    ].join('\n'), TEXT)]);
    assert.deepEqual(family(output, 'a').samples.map((s) => s.labels), [
      [['container', 'web'], ['exported_container', 'old']],
      [['container', 'web'], ['exported_container', 'x'], ['exported_exported_container', 'old'], ['z', '1']],
    ]);
    if (checkers !== undefined) assert.equal(promtoolError(checkers.promtool, output.body), undefined);
  });

  test('the label name comes from the options', () => {
    const output = merge([target('web', 'a{pod_container="p"} 1\n', TEXT)], false, new DropCounter(), 'pod_container');
    assert.match(output.body.toString(), /^a\{pod_container="web",exported_pod_container="p"\} 1$/m);
    assert.match(output.body.toString(), /^promux_target_up\{pod_container="web",endpoint="9100"\} 1$/m);
  });

  test('label values, HELP text, NaN, infinities and timestamps are kept byte for byte', (t) => {
    const checkers = tools(t);
    const input = [
      '# HELP m Help with a backslash \\\\ and a\\nnewline, "quotes", ünïcödé.',
      '# TYPE m gauge',
      'm{v="q\\"uote",w="back\\\\slash",x="new\\nline",y="ünïcödé ✓",z=""} NaN 1700000000123',
      'm{v="2"} +Inf 5',
      'm{v="3"} -Inf',
      'm{v="4"} 1.5e-300',
      '',
    ].join('\n');
    const output = merge([target('c', input, TEXT)]);
    const body = output.body.toString();
    assert.ok(body.includes(`${input.split('\n')[0]}\n${input.split('\n')[1]}\n`), body);
    assert.ok(body.includes('m{container="c",v="q\\"uote",w="back\\\\slash",x="new\\nline",y="ünïcödé ✓",z=""} NaN 1700000000123\n'));
    assert.ok(body.includes('m{container="c",v="2"} +Inf 5\n'));
    assert.ok(body.includes('m{container="c",v="3"} -Inf\n'));
    assert.ok(body.includes('m{container="c",v="4"} 1.5e-300\n'));
    if (checkers !== undefined) assert.equal(promtoolError(checkers.promtool, output.body), undefined);
  });

  test('escapes strict parsers reject are written as Prometheus reads them (a literal backslash)', (t) => {
    const checkers = tools(t);
    const output = merge([target('c', '# HELP m Path C:\\dir and \\"q\\"\nm{p="C:\\dir\\t"} 1\n', TEXT)]);
    const body = output.body.toString();
    assert.match(body, /^# HELP m Path C:\\\\dir and \\\\"q\\\\"$/m);
    assert.ok(body.includes('m{container="c",p="C:\\\\dir\\\\t"} 1\n'), body);
    if (checkers !== undefined) assert.equal(promtoolError(checkers.promtool, output.body), undefined);
  });

  test('OpenMetrics timestamps become milliseconds in text, truncated as Prometheus does', () => {
    const input = '# TYPE g gauge\ng 1 1700000000.1239\ng{a="b"} 2 -0.0001\ng{a="c"} 3 1e3\n# EOF\n';
    const body = merge([target('c', input, OM)]).body.toString();
    assert.match(body, /^g\{container="c"\} 1 1700000000123$/m);
    assert.match(body, /^g\{container="c",a="b"\} 2 0$/m);
    assert.match(body, /^g\{container="c",a="c"\} 3 1000000$/m);
  });

  test('exemplars stay only where the OpenMetrics parser allows them, and never in text', (t) => {
    const checkers = tools(t);
    const input = [
      '# TYPE c counter', 'c_total 1 # {id="a"} 1 1.5', 'c_created 1.7e9',
      '# TYPE g gauge', 'g 1 # {id="b"} 2',
      '# EOF', '',
    ].join('\n');
    const om = merge([target('x', input, OM)], true);
    assert.match(om.body.toString(), /^c_total\{container="x"\} 1 # \{id="a"\} 1 1\.5$/m);
    assert.match(om.body.toString(), /^g\{container="x"\} 1$/m);
    if (checkers !== undefined) assert.deepEqual(openMetricsErrors(checkers.python, [om.body.toString()]), [undefined]);
    const text = merge([target('x', input, OM)], false);
    assert.doesNotMatch(text.body.toString(), /id=/);
  });

  test('an exemplar strict parsers would reject is left out, its sample kept', (t) => {
    const checkers = tools(t);
    const long = 'x'.repeat(120);
    const input = [
      '# TYPE c counter',
      'c_total{k="odd"} 1 # {id="a\\tb"} 1',
      `c_total{k="long"} 2 # {id="${long}",more="123456789"} 1 1.5`,
      `c_total{k="fits"} 3 # {id="${long}",m="12345"} 1`,
      '# EOF', '',
    ].join('\n');
    const output = merge([target('x', input, OM)], true);
    assert.deepEqual(output.targets[0], { container: 'x', endpoint: '9100', up: true, samples: 3 });
    const body = output.body.toString();
    assert.match(body, /^c_total\{container="x",k="odd"\} 1$/m);
    assert.match(body, /^c_total\{container="x",k="long"\} 2$/m);
    assert.match(body, /^c_total\{container="x",k="fits"\} 3 # \{id="x+",m="12345"\} 1$/m);
    if (checkers !== undefined) assert.deepEqual(openMetricsErrors(checkers.python, [body]), [undefined]);
  });

  test('a family with another TYPE in a later target is dropped and counted as type_conflict', (t) => {
    const checkers = tools(t);
    const drops = new DropCounter();
    const output = merge([
      target('a', '# TYPE x gauge\nx 1\n', TEXT),
      target('b', '# TYPE x counter\nx{l="1"} 1\nx{l="2"} 2\n# TYPE y gauge\ny 3\n', TEXT),
    ], false, drops);
    assert.deepEqual(family(output, 'x').samples.map((s) => s.value), ['1']);
    assert.equal(family(output, 'x').type, 'gauge');
    assert.equal(drops.get({ container: 'b', endpoint: '9100' }, 'type_conflict'), 2);
    assert.deepEqual(output.targets.map((o) => o.samples), [1, 1]);
    assert.match(output.body.toString(), /^promux_dropped_samples_total\{container="b",endpoint="9100",reason="type_conflict"\} 2$/m);
    if (checkers !== undefined) assert.equal(promtoolError(checkers.promtool, output.body), undefined);
  });

  test('a second, different TYPE in one body is a type conflict too', () => {
    const drops = new DropCounter();
    const output = merge([target('a', '# TYPE x gauge\nx{a="1"} 1\n# TYPE x counter\nx{a="2"} 2\n', TEXT)], false, drops);
    assert.deepEqual(family(output, 'x').samples.map((s) => s.value), ['1']);
    assert.equal(drops.get({ container: 'a', endpoint: '9100' }, 'type_conflict'), 1);
  });

  test('sample names two families would share are dropped as name_conflict', (t) => {
    const checkers = tools(t);
    const drops = new DropCounter();
    const output = merge([
      target('a', '# TYPE s summary\ns{quantile="0.5"} 1\ns_sum 2\ns_count 3\n', TEXT),
      target('b', '# TYPE s_count gauge\ns_count 7\n', TEXT),
    ], false, drops);
    assert.equal(drops.get({ container: 'b', endpoint: '9100' }, 'name_conflict'), 1);
    assert.doesNotMatch(output.body.toString(), / 7$/m);
    if (checkers !== undefined) assert.equal(promtoolError(checkers.promtool, output.body), undefined);
  });

  test('a repeated series in one body keeps its first sample and counts the rest as duplicate_series', (t) => {
    const checkers = tools(t);
    const drops = new DropCounter();
    const output = merge([
      target('a', 'x{a="1",b="2"} 1\nx{b="2",a="1"} 2\nx{a="1"} 3\nx{a="1",b="2"} 4\n', TEXT),
      target('b', 'x{a="1",b="2"} 5\n', TEXT),
    ], false, drops);
    assert.deepEqual(family(output, 'x').samples.map((s) => s.value), ['1', '3', '5']);
    assert.equal(drops.get({ container: 'a', endpoint: '9100' }, 'duplicate_series'), 2);
    assert.equal(drops.get({ container: 'b', endpoint: '9100' }, 'duplicate_series'), 0);
    if (checkers !== undefined) assert.equal(promtoolError(checkers.promtool, output.body), undefined);
  });

  test('series that become the same once labelled are repeats too', (t) => {
    const checkers = tools(t);
    const drops = new DropCounter();
    const output = merge([target('a', 'x{exported_container="v"} 1\nx{container="v"} 2\nx{p="a\\\\tb"} 3\nx{p="a\\tb"} 4\n', TEXT)], false, drops);
    assert.deepEqual(family(output, 'x').samples.map((s) => s.value), ['1', '3']);
    assert.equal(drops.get({ container: 'a', endpoint: '9100' }, 'duplicate_series'), 2);
    if (checkers !== undefined) assert.equal(promtoolError(checkers.promtool, output.body), undefined);
  });

  test('the drop counter adds up across merges', () => {
    const drops = new DropCounter();
    const targets = [target('a', 'x 1\nx 2\n', TEXT)];
    merge(targets, false, drops);
    const second = merge(targets, false, drops);
    assert.match(second.body.toString(), /^promux_dropped_samples_total\{container="a",endpoint="9100",reason="duplicate_series"\} 2$/m);
  });

  test('a body that does not parse marks its target down with the line, and serves none of it', () => {
    const output = merge([
      target('good', 'ok 1\n', TEXT),
      target('bad', 'first 1\nsecond{a="1" 2\nthird 3\n', TEXT),
      target('html', '<html><body>Not Found</body></html>', 'text/html'),
      target('binary', Buffer.from([0x66, 0x20, 0xff, 0xfe, 0x0a]), TEXT),
    ]);
    const [good, bad, html, binary] = output.targets;
    assert.deepEqual(good, { container: 'good', endpoint: '9100', up: true, samples: 1 });
    assert.equal(bad!.up, false);
    assert.match(bad!.error!, /^invalid text format exposition: line 2: expected "," or "}" after a label value: "second\{a=\\"1\\" 2"$/);
    assert.match(html!.error!, /line 1: expected a metric name/);
    assert.match(binary!.error!, /not valid UTF-8/);
    assert.doesNotMatch(output.body.toString(), /^(first|third)/m);
    assert.match(output.body.toString(), /^promux_target_up\{container="bad",endpoint="9100"\} 0$/m);
  });

  for (const [what, body, error] of [
    ['text after a timestamp', 'x 1 2 3\n', /unexpected text after the timestamp/],
    ['a fractional text timestamp', 'x 1 2.5\n', /integer timestamp/],
    ['a bad value', 'x one\n', /invalid value/],
    ['an exemplar in text', 'x_total 1 # {a="b"} 1\n', /integer timestamp/],
    ['an unknown type', '# TYPE x info\nx_info 1\n', /unknown metric type "info"/],
    ['a repeated label', 'x{a="1",a="2"} 1\n', /label a appears twice/],
    ['a raw line feed in a label value', 'x{a="1\n"} 1\n', /unterminated label value/],
    ['a histogram sample without suffix', '# TYPE h histogram\nh 1\n', /does not belong to the histogram family h/],
  ] as const) {
    test(`text with ${what} does not parse`, () => {
      const [outcome] = merge([target('a', body, TEXT)]).targets;
      assert.equal(outcome!.up, false);
      assert.match(outcome!.error!, error);
    });
  }

  for (const [what, body, error] of [
    ['no # EOF', '# TYPE g gauge\ng 1\n', /does not end with # EOF/],
    ['data after # EOF', 'g 1\n# EOF\ng 2\n', /data after # EOF/],
    ['two spaces', 'g  1\n# EOF\n', /unexpected space/],
    ['a trailing space', 'g 1 \n# EOF\n', /unexpected space/],
    ['a tab', 'g 1\t2\n# EOF\n', /unexpected character/],
    ['a broken exemplar', '# TYPE c counter\nc_total 1 # {a="b" 1\n# EOF\n', /exemplar/],
    ['a counter sample without _total', '# TYPE c counter\nc 1\n# EOF\n', /does not belong to the counter family c/],
  ] as const) {
    test(`OpenMetrics with ${what} does not parse`, () => {
      const [outcome] = merge([target('a', body, OM)]).targets;
      assert.equal(outcome!.up, false);
      assert.match(outcome!.error!, /^invalid OpenMetrics exposition: /);
      assert.match(outcome!.error!, error);
    });
  }

  test('an empty text body is a target with no samples; an empty OpenMetrics body lacks # EOF', () => {
    const output = merge([target('text', '', TEXT), target('om', '', OM)]);
    assert.deepEqual(output.targets[0], { container: 'text', endpoint: '9100', up: true, samples: 0 });
    assert.equal(output.targets[1]!.up, false);
  });

  test('a family split across a body is written as one contiguous family', (t) => {
    const checkers = tools(t);
    const output = merge([target('a', '# HELP x X.\n# TYPE x gauge\nx{a="1"} 1\ny 5\nx{a="2"} 2\n', TEXT)]);
    const families = readExposition(output.body.toString(), 'text').map((f) => f.name).filter((n) => !n.startsWith('promux_'));
    assert.deepEqual(families, ['x', 'y']);
    assert.deepEqual(family(output, 'x').samples.map((s) => s.value), ['1', '2']);
    if (checkers !== undefined) assert.equal(promtoolError(checkers.promtool, output.body), undefined);
  });

  test('HELP, TYPE and UNIT lines find their family wherever they come; the first HELP and UNIT are kept', (t) => {
    const checkers = tools(t);
    // Names that are prefixes of one another, metadata after the samples or repeated, a TYPE with trailing blanks.
    const text = '# HELP ab First.\n# TYPE a gauge\na 1\n# TYPE ab counter\n# HELP ab Second.\nab 2\n' +
      '# HELP a Late help.\n# TYPE abc gauge \t\nabc 3\n';
    const output = merge([target('c', text, TEXT)]);
    assert.deepEqual(lines(output).filter((line) => !line.includes('promux_')), [
      '# HELP ab First.', '# TYPE ab counter', 'ab{container="c"} 2',
      '# HELP a Late help.', '# TYPE a gauge', 'a{container="c"} 1',
      '# TYPE abc gauge', 'abc{container="c"} 3', '',
    ]);
    const openMetrics = '# TYPE x_seconds gauge\n# UNIT x_seconds seconds\n# UNIT x_seconds other\n# HELP x_seconds X.\n' +
      'x_seconds 1\n# TYPE x_seconds_total gauge\n# HELP x_seconds_total Y.\nx_seconds_total 2\n# EOF\n';
    const served = merge([target('c', openMetrics, OM)], true);
    assert.deepEqual(lines(served).filter((line) => !line.includes('promux_')), [
      '# HELP x_seconds X.', '# TYPE x_seconds gauge', '# UNIT x_seconds seconds', 'x_seconds{container="c"} 1',
      '# HELP x_seconds_total Y.', '# TYPE x_seconds_total gauge', 'x_seconds_total{container="c"} 2', '# EOF', '',
    ]);
    if (checkers !== undefined) {
      assert.equal(promtoolError(checkers.promtool, output.body), undefined);
      assert.deepEqual(openMetricsErrors(checkers.python, [served.body.toString()]), [undefined]);
    }
  });

  test('comments, blank lines, indentation, tabs and CRLF line ends are read; the output has none', (t) => {
    const checkers = tools(t);
    const input = '# a comment\r\n\r\n# HELP x X.\r\n# TYPE x counter\r\n  x{a = "1" , } \t 1\t 17 \r\n\n#another\nx{a="2"} 2\r\n';
    const output = merge([target('a', input, TEXT)]);
    assert.deepEqual(output.targets[0], { container: 'a', endpoint: '9100', up: true, samples: 2 });
    const body = output.body.toString();
    assert.doesNotMatch(body, /\r|comment|another/);
    assert.match(body, /^x\{container="a",a = "1"\} \t 1\t 17$/m);
    if (checkers !== undefined) assert.equal(promtoolError(checkers.promtool, output.body), undefined);
  });

  test('samples without TYPE are untyped families of their own, as Prometheus reads them', (t) => {
    const checkers = tools(t);
    const output = merge([target('a', '# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_count 1\nh_sum 2\nh_created 5\nfree 3\n', TEXT)]);
    assert.equal(family(output, 'h_created').type, 'untyped');
    assert.equal(family(output, 'free').type, 'untyped');
    assert.equal(family(output, 'h').samples.length, 3);
    if (checkers !== undefined) assert.equal(promtoolError(checkers.promtool, output.body), undefined);
  });

  test('format sniffing: a body ending in # EOF without a known Content-Type is OpenMetrics', () => {
    const body = '# TYPE c counter\nc_total 1\n# EOF\n';
    assert.equal(merge([target('a', body, undefined)], true).format, 'openmetrics');
    assert.equal(merge([target('a', body, 'application/octet-stream')], true).format, 'openmetrics');
    // Declared text is read as text, as Prometheus would: there `# EOF` is a comment.
    assert.equal(merge([target('a', body, TEXT)], true).format, 'text');
    assert.equal(merge([target('a', 'c_total 1\n', undefined)], true).format, 'text');
  });

  test('OpenMetrics is served only when accepted and every target that is up answered OpenMetrics', () => {
    const om = target('a', 'g 1\n# EOF\n', OM);
    assert.equal(merge([om], false).format, 'text');
    assert.equal(merge([om, target('b', 'g 2\n', TEXT)], true).format, 'text');
    assert.equal(merge([om, target('b', undefined, undefined, 'timeout')], true).format, 'openmetrics');
  });

  test('OpenMetrics gauge histograms, info, stateset and unknown become text families without renamed series', (t) => {
    const checkers = tools(t);
    const input = [
      '# TYPE gh gaugehistogram', 'gh_bucket{le="1.0"} 1', 'gh_bucket{le="+Inf"} 2', 'gh_gcount 2', 'gh_gsum 3.5',
      '# TYPE i info', 'i_info{v="1"} 1',
      '# TYPE s stateset', 's{s="a"} 1', 's{s="b"} 0',
      '# TYPE u unknown', 'u 4',
      '# EOF', '',
    ].join('\n');
    if (checkers !== undefined) assert.deepEqual(openMetricsErrors(checkers.python, [input]), [undefined]);
    const text = merge([target('a', input, OM)]);
    assert.deepEqual(
      readExposition(text.body.toString(), 'text').filter((f) => !f.name.startsWith('promux_')).map((f) => [f.name, f.type, f.samples.length]),
      [['gh', 'histogram', 2], ['gh_gcount', 'gauge', 1], ['gh_gsum', 'gauge', 1], ['i_info', 'gauge', 1], ['s', 'gauge', 2], ['u', 'untyped', 1]],
    );
    if (checkers !== undefined) assert.equal(promtoolError(checkers.promtool, text.body), undefined);
    const om = merge([target('a', input, OM)], true);
    assert.match(om.body.toString(), /^# TYPE gh gaugehistogram$/m);
    assert.match(om.body.toString(), /^# TYPE u unknown$/m);
    if (checkers !== undefined) assert.deepEqual(openMetricsErrors(checkers.python, [om.body.toString()]), [undefined]);
  });

  test("a target's own promux_ family joins promux's, its container label kept as exported_container", (t) => {
    const checkers = tools(t);
    const output = merge([target('inner', '# TYPE promux_target_up gauge\npromux_target_up{container="x"} 0\n', TEXT)]);
    assert.deepEqual(family(output, 'promux_target_up').samples.map((s) => [s.labels, s.value]), [
      [[['container', 'inner'], ['endpoint', '9100']], '1'],
      [[['container', 'inner'], ['exported_container', 'x']], '0'],
    ]);
    if (checkers !== undefined) assert.equal(promtoolError(checkers.promtool, output.body), undefined);
  });

  test('no targets: promux writes a valid, empty exposition', (t) => {
    const checkers = tools(t);
    const text = merge([]);
    assert.equal(text.body.length, 0);
    const om = merge([], true);
    assert.equal(om.body.toString(), '# EOF\n');
    if (checkers !== undefined) assert.deepEqual(openMetricsErrors(checkers.python, [om.body.toString()]), [undefined]);
  });

  test('families keep first-seen order across targets', () => {
    const output = merge([target('a', 'b 1\nd 1\n', TEXT), target('b', 'c 1\nb 2\na 1\n', TEXT)]);
    const names = readExposition(output.body.toString(), 'text').map((f) => f.name).filter((n) => !n.startsWith('promux_'));
    assert.deepEqual(names, ['b', 'd', 'c', 'a']);
    assert.ok(lines(output).indexOf('b{container="a"} 1') + 1 === lines(output).indexOf('b{container="b"} 2'));
  });
});

test('pieces handed back once sent are written into by a later answer, which is still exactly the whole answer', () => {
  const jobs = Array.from({ length: 40000 }, (_, i) => `jobs{q="${i}"} ${i}\n`).join('');
  const targets = [target('app', `# TYPE jobs gauge\n${jobs}`, TEXT)];
  const whole = merge(targets);
  const first = [...mergeStreamed(targets, { containerLabel: 'container', accept: ACCEPT.text }, new DropCounter()).pieces];
  assert.deepEqual(Buffer.concat(first), whole.body);
  first.forEach(recyclePiece);
  first.forEach(recyclePiece); // twice: still handed out once
  const second = [...mergeStreamed(targets, { containerLabel: 'container', accept: ACCEPT.text }, new DropCounter()).pieces];
  assert.ok(second.some((p) => first.some((f) => f.buffer === p.buffer)), 'a piece handed back is written into again');
  assert.equal(new Set(second.map((p) => p.buffer)).size, second.length, 'no piece given to two parts of the answer');
  assert.deepEqual(Buffer.concat(second), whole.body);
});

test('the streamed answer comes in pieces that make exactly the whole answer, none written after it is taken', () => {
  const jobs = Array.from({ length: 20000 }, (_, i) => `jobs{q="${i}"} ${i}\n`).join('');
  const targets = [target('node', fixture('node-exporter.prom'), TEXT), target('app', `# TYPE jobs gauge\n${jobs}`, TEXT)];
  const whole = merge(targets);
  const streamed = mergeStreamed(targets, { containerLabel: 'container', accept: ACCEPT.text }, new DropCounter());
  const pieces: Buffer[] = [];
  const copies: Buffer[] = [];
  for (const piece of streamed.pieces) {
    pieces.push(piece);
    copies.push(Buffer.from(piece));
  }
  assert.ok(pieces.length > 1, `${whole.body.length} bytes in ${pieces.length} pieces`);
  assert.deepEqual(Buffer.concat(pieces), whole.body);
  assert.deepEqual(pieces, copies, 'no piece changed after it was taken');
  assert.equal(streamed.contentType, whole.contentType);
  assert.deepEqual(streamed.targets, whole.targets);
});
