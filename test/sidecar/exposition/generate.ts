// fast-check generators of expositions (text 0.0.4 as promtool reads it, OpenMetrics as the Python
// parser reads it): families of every type with random names (some UTF-8, quoted as Prometheus 3
// writes them), tricky label values and HELP, NaN and infinities, timestamps, exemplars, existing
// container labels and repeated series; and poisons: families a container can really serve that a
// strict consumer rejects (see Poison), which the merge must keep from sinking the whole answer.
import fc from 'fast-check';
import type { Accepted, FetchedTarget } from '../../../src/sidecar/exposition/index.ts';
import { ACCEPT } from './accept.ts';

type Format = 'text' | 'openmetrics';
type Kind = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped' | 'gaugehistogram' | 'stateset' | 'info';

const TEXT_KINDS: Kind[] = ['counter', 'gauge', 'histogram', 'summary', 'untyped'];
const OM_KINDS: Kind[] = [...TEXT_KINDS, 'gaugehistogram', 'stateset', 'info'];

// Some names are others plus a suffix, so that families of different targets collide in every way;
// some are UTF-8 names, one of which escapes to another name (my.metric, my_metric).
const NAMES = ['alpha', 'beta', 'gamma', 'delta', 'alpha_count', 'beta_total', 'gamma_created', 'delta_bucket', 'delta_sum', 'eps:ratio',
  'my.metric', 'my_metric', 'ünï'];
const LABEL_NAMES = ['container', 'exported_container', 'path', 'method', '_x', 'a.b', 'a_b'];

/**
 * What a container can serve that breaks a strict consumer's rules: OpenMetrics' rules on values
 * and structure (for an OpenMetrics answer), labels and timestamps Prometheus' parsers reject,
 * metadata and exemplars the Python parser rejects.
 */
export type Poison =
  | 'negativeCounter' | 'nanCounter' | 'noInfBucket' | 'bucketsOutOfOrder' | 'countMismatch' | 'sumWithoutCount' | 'negativeSum'
  | 'splitGroup' | 'info2' | 'state3' | 'badLe' | 'badQuantile' | 'nameLabel' | 'negativeTimestamp' | 'hugeTimestamp' | 'badUnit'
  | 'exemplarOnGauge' | 'exemplarOnSum' | 'longExemplar';

function poisonsOf(kind: Kind, format: Format): Poison[] {
  const om = format === 'openmetrics';
  const all: Poison[] = ['nameLabel', ...(kind === 'info' ? [] : ['negativeTimestamp', 'hugeTimestamp'] as Poison[]), ...(om ? ['badUnit'] as Poison[] : [])];
  switch (kind) {
    case 'counter':
      return [...all, 'negativeCounter', ...(om ? ['nanCounter', 'longExemplar'] as Poison[] : [])];
    case 'histogram':
      return [...all, 'noInfBucket', 'bucketsOutOfOrder', 'countMismatch', 'sumWithoutCount', 'negativeSum', 'splitGroup', 'badLe',
        ...(om ? ['exemplarOnSum'] as Poison[] : [])];
    case 'gaugehistogram':
      return [...all, 'noInfBucket', 'bucketsOutOfOrder', 'countMismatch', 'badLe'];
    case 'summary':
      return [...all, 'badQuantile'];
    case 'info':
      return [...all, 'info2'];
    case 'stateset':
      return [...all, 'state3'];
    default:
      return [...all, ...(om ? ['exemplarOnGauge'] as Poison[] : [])];
  }
}

function isLegacy(name: string, metric: boolean): boolean {
  return (metric ? /^[a-zA-Z_:][a-zA-Z0-9_:]*$/ : /^[a-zA-Z_][a-zA-Z0-9_]*$/).test(name);
}

/** The names a family's samples may take (with its own), which no other family of the same body may use. */
function claimed(name: string, kind: Kind, format: Format): string[] {
  const suffixes: Record<Kind, string[]> =
    format === 'text'
      ? { histogram: ['_bucket', '_count', '_sum'], summary: ['_count', '_sum'], counter: [], gauge: [], untyped: [], gaugehistogram: [], stateset: [], info: [] }
      : {
          counter: ['_total', '_created'], histogram: ['_bucket', '_count', '_sum', '_created'], summary: ['_count', '_sum', '_created'],
          gaugehistogram: ['_bucket', '_gcount', '_gsum'], info: ['_info'], gauge: [], untyped: [], stateset: [],
        };
  return [name, ...suffixes[kind].map((s) => name + s)];
}

const labelValue = fc.oneof(
  fc.constantFrom('', '"', '\\', '\n', 'a\\nb', '\\"x\\"', 'ünïcödé', '✓ ok', '{a="b"}', ',', '=', ' # {x="y"} 1'),
  fc.string({ maxLength: 8, unit: 'grapheme' }),
  fc.string({ maxLength: 8, unit: 'grapheme-ascii' }),
);

const helpText = fc.option(
  fc.oneof(fc.constantFrom('Plain help.', 'With "quotes", a \\ backslash\nand a newline.', 'ünïcödé ✓'), fc.string({ maxLength: 20, unit: 'grapheme' })),
  { nil: undefined },
);

const labelSet = fc.uniqueArray(fc.tuple(fc.constantFrom(...LABEL_NAMES), labelValue), { maxLength: 3, selector: ([name]) => name });

/** Value of a gauge-like sample: anything, NaN and infinities included. */
const anyValue = fc.oneof(
  fc.double(),
  fc.integer({ min: -1e6, max: 1e6 }),
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0, 1),
);
const nonNegative = fc.oneof(fc.double({ min: 0, noNaN: true }), fc.integer({ min: 0, max: 1e9 }));
const count = fc.integer({ min: 0, max: 1000 });

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

function escapeValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

function escapeHelp(help: string, format: Format): string {
  return help.replace(format === 'text' ? /[\\\n]/g : /[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

function labelsText(labels: Array<[string, string]>): string {
  return labels.map(([n, v]) => `${isLegacy(n, false) ? n : `"${n}"`}="${escapeValue(v)}"`).join(',');
}

interface Line {
  name: string;
  labels: Array<[string, string]>;
  value: number;
  exemplar?: string;
}

const EXEMPLAR = (value: number): string => `# {trace_id="t${value}"} 0.5 1700000000.5`;

/** The sample lines of one series of a family of that kind, values consistent with what strict parsers check. */
function seriesLines(name: string, kind: Kind, format: Format, labels: Array<[string, string]>) {
  const om = format === 'openmetrics';
  const buckets = (suffixOfCount: string, suffixOfSum: string) =>
    fc.record({
      les: fc.subarray(['0.1', '1.0', '10.0']),
      increments: fc.array(count, { minLength: 4, maxLength: 4 }),
      sum: nonNegative,
      exemplar: fc.boolean(),
    }).map(({ les, increments, sum, exemplar }): Line[] => {
      let cumulative = 0;
      const lines: Line[] = [...les, '+Inf'].map((le, i) => {
        cumulative += increments[i]!;
        return { name: `${name}_bucket`, labels: [...labels, ['le', le]], value: cumulative, ...(om && exemplar && i === 0 ? { exemplar: EXEMPLAR(cumulative) } : {}) };
      });
      lines.push({ name: name + suffixOfCount, labels, value: cumulative }, { name: name + suffixOfSum, labels, value: sum });
      return lines;
    });
  const created = fc.option(fc.double({ min: 1, max: 2e9, noNaN: true }), { nil: undefined });
  const withCreated = (lines: Line[], value: number | undefined): Line[] =>
    om && value !== undefined ? [...lines, { name: `${name}_created`, labels, value }] : lines;
  switch (kind) {
    case 'counter':
      // Never negative, in text too: a text counter served as OpenMetrics (to a scraper that takes no text) is one.
      return fc.tuple(nonNegative, created, fc.boolean()).map(([value, createdAt, exemplar]) =>
        withCreated([{ name: om ? `${name}_total` : name, labels, value, ...(om && exemplar ? { exemplar: EXEMPLAR(value) } : {}) }], createdAt));
    case 'histogram':
      return fc.tuple(buckets('_count', '_sum'), created).map(([lines, createdAt]) => withCreated(lines, createdAt));
    case 'gaugehistogram':
      return buckets('_gcount', '_gsum');
    case 'summary':
      return fc.tuple(fc.subarray(['0.5', '0.9', '0.99']), fc.array(nonNegative, { minLength: 3, maxLength: 3 }), count, nonNegative, created)
        .map(([quantiles, values, n, sum, createdAt]) => withCreated([
          ...quantiles.map((q, i): Line => ({ name, labels: [...labels, ['quantile', q]], value: values[i]! })),
          { name: `${name}_count`, labels, value: n },
          { name: `${name}_sum`, labels, value: sum },
        ], createdAt));
    case 'stateset':
      return fc.subarray(['a', 'b', 'c'], { minLength: 1 }).chain((states) =>
        fc.array(fc.constantFrom(0, 1), { minLength: states.length, maxLength: states.length }).map((values) =>
          states.map((s, i): Line => ({ name, labels: [...labels, [name, s]], value: values[i]! }))));
    case 'info':
      return fc.constant([{ name: `${name}_info`, labels, value: 1 }]);
    default:
      return anyValue.map((value): Line[] => [{ name, labels, value }]);
  }
}

interface Family {
  name: string;
  kind: Kind;
  help: string | undefined;
  unit: string | undefined;
  timestamp: string | undefined;
  series: Line[][];
  poison: Poison | undefined;
}

/** Applies the poison to the family's lines (series by series, as rendered). */
function poisoned(f: Family, format: Format): Family {
  const series = f.series.map((lines) => lines.map((line) => ({ ...line, labels: [...line.labels] })));
  const first = series[0]!;
  const find = (suffix: string): number => first.findIndex((l) => l.name === f.name + suffix);
  switch (f.poison) {
    case 'negativeCounter':
      first[0]!.value = -1;
      break;
    case 'nanCounter':
      first[0]!.value = Number.NaN;
      break;
    case 'noInfBucket':
      first.splice(first.findIndex((l) => l.labels.some(([n, v]) => n === 'le' && v === '+Inf')), 1);
      break;
    case 'bucketsOutOfOrder': {
      const inf = first.findIndex((l) => l.labels.some(([n, v]) => n === 'le' && v === '+Inf'));
      // +Inf first: out of order whatever the other buckets.
      first.unshift(...first.splice(inf, 1));
      break;
    }
    case 'countMismatch':
      first[find(format === 'text' || f.kind === 'histogram' ? '_count' : '_gcount')]!.value += 1;
      break;
    case 'sumWithoutCount':
      first.splice(find('_count'), 1);
      break;
    case 'negativeSum':
      first[find('_sum')]!.value = -1;
      break;
    case 'splitGroup':
      // The first series' _sum after the last series: its group is split (only with two series or more).
      if (series.length > 1) series.at(-1)!.push(...first.splice(find('_sum'), 1));
      break;
    case 'info2':
      first[0]!.value = 2;
      break;
    case 'state3':
      first[0]!.value = 3;
      break;
    case 'badLe':
      first[0]!.labels = first[0]!.labels.map(([n, v]) => [n, n === 'le' ? 'abc' : v]);
      break;
    case 'badQuantile': {
      const quantile = first.findIndex((l) => l.labels.some(([n]) => n === 'quantile'));
      if (quantile !== -1) first[quantile]!.labels = first[quantile]!.labels.map(([n, v]) => [n, n === 'quantile' ? 'x' : v]);
      break;
    }
    case 'nameLabel':
      first[0]!.labels.push(['__name__', 'x']);
      break;
    case 'exemplarOnGauge':
      first[0]!.exemplar = EXEMPLAR(1);
      break;
    case 'exemplarOnSum':
      first[find('_sum')]!.exemplar = EXEMPLAR(2);
      break;
    case 'longExemplar':
      first[0]!.exemplar = `# {trace_id="${'x'.repeat(130)}"} 1`;
      break;
    default:
      break;
  }
  const timestamp = f.poison === 'negativeTimestamp' ? (format === 'text' ? '-5' : '-1.5')
    : f.poison === 'hugeTimestamp' ? (format === 'text' ? '99999999999999999999' : '12345678901234567890.123')
      : f.timestamp;
  return { ...f, series, timestamp, unit: f.poison === 'badUnit' ? 'seconds' : f.unit };
}

function family(format: Format, name: string) {
  const kinds = (format === 'text' ? TEXT_KINDS : OM_KINDS)
    // A stateset's label is named after the family, and label names cannot hold a colon.
    .filter((k) => k !== 'stateset' || !name.includes(':'));
  return fc.constantFrom(...kinds).chain((kind) =>
    fc.record({
      name: fc.constant(name),
      kind: fc.constant(kind),
      help: helpText,
      unit: fc.constant(undefined),
      // Not on info: the Python parser takes all samples of an info family as one group, which must
      // not mix samples with and without timestamps, so info families of two targets could not merge.
      timestamp: kind === 'info' ? fc.constant(undefined) : fc.option(
        format === 'text'
          ? fc.integer({ min: 0, max: 4e12 }).map(String)
          : fc.tuple(fc.integer({ min: 0, max: 4e9 }), fc.integer({ min: 0, max: 999 })).map(([s, ms]) => `${s}.${String(ms).padStart(3, '0')}`),
        { nil: undefined },
      ),
      // Label sets distinct also once `container` is renamed exported_container: a series that then
      // equals another is a repeat (an example test covers it); here it would leave a histogram or
      // summary group half served, which the Python parser rejects as out of order.
      series: fc.uniqueArray(labelSet, {
        minLength: 1, maxLength: 3,
        selector: (labels) => {
          const renamed = labels.some(([n]) => n === 'exported_container') ? 'exported_exported_container' : 'exported_container';
          return labels.map(([n, v]) => `${n === 'container' ? renamed : n}=${v}`).sort().join('\n');
        },
      }).chain((sets) => fc.tuple(...sets.map((labels) => seriesLines(name, kind, format, labels)))),
      poison: fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom(...poisonsOf(kind, format)) }),
    }));
}

export interface Body {
  format: Format;
  text: string;
  /** The poisons of its families. */
  poisons: Poison[];
  /** It has a UTF-8 (quoted) metric or label name. */
  utf8: boolean;
}

function render(format: Format, families: Family[], repeat: boolean, tight: boolean): string {
  const out: string[] = [];
  for (const f of families) {
    const name = isLegacy(f.name, true) ? f.name : `"${f.name}"`;
    if (f.help !== undefined) out.push(`# HELP ${name} ${escapeHelp(f.help, format)}`);
    if (f.kind !== 'untyped') out.push(`# TYPE ${name} ${f.kind}`);
    if (f.unit !== undefined) out.push(`# UNIT ${name} ${f.unit}`);
    for (const series of f.series) {
      for (const line of series) {
        const ts = f.timestamp === undefined ? '' : ` ${f.timestamp}`;
        const exemplar = line.exemplar === undefined ? '' : ` ${line.exemplar}`;
        const labels = labelsText(line.labels);
        const head = isLegacy(line.name, true)
          ? `${line.name}${labels === '' ? '' : `{${labels}}`}`
          : `{"${line.name}"${labels === '' ? '' : `,${labels}`}}`;
        // Text takes a value right after the braces (`a{b="c"}1`).
        const blank = tight && format === 'text' && head.endsWith('}') ? '' : ' ';
        out.push(`${head}${blank}${formatValue(line.value)}${ts}${exemplar}`);
      }
    }
    // A repeated series (text only: the OpenMetrics parser rejects one).
    if (repeat && format === 'text') out.push(out.at(-1)!);
  }
  if (format === 'openmetrics') out.push('# EOF');
  return `${out.join('\n')}\n`;
}

export const body = (formats: Format[]): fc.Arbitrary<Body> => fc.constantFrom(...formats).chain((format) =>
  fc.record({
    names: fc.shuffledSubarray(NAMES, { minLength: 0, maxLength: 5 }),
    repeat: fc.boolean(),
    tight: fc.boolean(),
  }).chain(({ names, repeat, tight }) =>
    fc.tuple(...names.map((name) => family(format, name))).map((families) => {
      // Keep the families whose sample names no earlier family of this body claims.
      const taken = new Set<string>();
      const kept = (families as Family[]).filter((f) => {
        const names = claimed(f.name, f.kind, format);
        if (names.some((n) => taken.has(n))) return false;
        for (const n of names) taken.add(n);
        return true;
      }).map((f) => poisoned(f, format));
      const utf8 = kept.some((f) => !isLegacy(f.name, true) || f.series.some((s) => s.some((l) => l.labels.some(([n]) => !isLegacy(n, false)))));
      return { format, text: render(format, kept, repeat, tight), poisons: kept.flatMap((f) => (f.poison === undefined ? [] : [f.poison])), utf8 };
    })));

export interface Case {
  label: string;
  accept: Accepted;
  targets: FetchedTarget[];
  /** The generated body of each target that answered, by container. */
  bodies: Map<string, Body>;
}

/** One to three targets with bodies of the given formats, sometimes one more that failed to fetch. */
export const mergeCase = (formats: Format[] = ['text', 'openmetrics'], accept = fc.constantFrom(...Object.values(ACCEPT))): fc.Arbitrary<Case> => fc.record({
  label: fc.constantFrom('container', 'path'),
  accept,
  bodies: fc.array(body(formats), { minLength: 1, maxLength: 3 }),
  down: fc.boolean(),
}).map(({ label, accept, bodies, down }) => {
  const targets: FetchedTarget[] = bodies.map((b, i) => ({
    container: `c${i}`,
    endpoint: String(9100 + i),
    body: Buffer.from(b.text),
    contentType: b.format === 'text' ? 'text/plain; version=0.0.4' : 'application/openmetrics-text; version=1.0.0',
    durationSeconds: 0.001 * (i + 1),
  }));
  if (down) targets.push({ container: 'down', endpoint: '9999', error: 'connection refused', durationSeconds: 0.5 });
  return { label, accept, targets, bodies: new Map(bodies.map((b, i) => [`c${i}`, b])) };
});
