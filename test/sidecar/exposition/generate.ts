// fast-check generators of valid expositions (text 0.0.4 as promtool reads it, OpenMetrics as the
// Python parser reads it): families of every type with random names, tricky label values and HELP,
// NaN and infinities, timestamps, exemplars, existing container labels and repeated series.
import fc from 'fast-check';
import type { FetchedTarget } from '../../../src/sidecar/exposition/index.ts';

type Format = 'text' | 'openmetrics';
type Kind = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped' | 'gaugehistogram' | 'stateset' | 'info';

const TEXT_KINDS: Kind[] = ['counter', 'gauge', 'histogram', 'summary', 'untyped'];
const OM_KINDS: Kind[] = [...TEXT_KINDS, 'gaugehistogram', 'stateset', 'info'];

// Some names are others plus a suffix, so that families of different targets collide in every way.
const NAMES = ['alpha', 'beta', 'gamma', 'delta', 'alpha_count', 'beta_total', 'gamma_created', 'delta_bucket', 'delta_sum', 'eps:ratio'];
const LABEL_NAMES = ['container', 'exported_container', 'path', 'method', '_x'];

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
  return labels.length === 0 ? '' : `{${labels.map(([n, v]) => `${n}="${escapeValue(v)}"`).join(',')}}`;
}

interface Line {
  name: string;
  labels: Array<[string, string]>;
  value: number;
  exemplar?: boolean;
}

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
        return { name: `${name}_bucket`, labels: [...labels, ['le', le]], value: cumulative, exemplar: om && exemplar && i === 0 };
      });
      lines.push({ name: name + suffixOfCount, labels, value: cumulative }, { name: name + suffixOfSum, labels, value: sum });
      return lines;
    });
  const created = fc.option(fc.double({ min: 1, max: 2e9, noNaN: true }), { nil: undefined });
  const withCreated = (lines: Line[], value: number | undefined): Line[] =>
    om && value !== undefined ? [...lines, { name: `${name}_created`, labels, value }] : lines;
  switch (kind) {
    case 'counter':
      return fc.tuple(om ? nonNegative : anyValue, created, fc.boolean()).map(([value, createdAt, exemplar]) =>
        withCreated([{ name: om ? `${name}_total` : name, labels, value, exemplar: om && exemplar }], createdAt));
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
  timestamp: string | undefined;
  series: Line[][];
}

function family(format: Format, name: string) {
  // A stateset's label is named after the family, and label names cannot hold a colon.
  const kinds = (format === 'text' ? TEXT_KINDS : OM_KINDS).filter((k) => k !== 'stateset' || !name.includes(':'));
  return fc.constantFrom(...kinds).chain((kind) =>
    fc.record({
      name: fc.constant(name),
      kind: fc.constant(kind),
      help: helpText,
      // Not on info: the Python parser takes all samples of an info family as one group, which must
      // not mix samples with and without timestamps, so info families of two targets could not merge.
      timestamp: kind === 'info' ? fc.constant(undefined) : fc.option(
        format === 'text'
          ? fc.integer({ min: -1e12, max: 4e12 }).map(String)
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
    }));
}

export interface Body {
  format: Format;
  text: string;
}

function render(format: Format, families: Family[], repeat: boolean): string {
  const out: string[] = [];
  for (const f of families) {
    if (f.help !== undefined) out.push(`# HELP ${f.name} ${escapeHelp(f.help, format)}`);
    if (f.kind !== 'untyped') out.push(`# TYPE ${f.name} ${f.kind}`);
    for (const series of f.series) {
      for (const line of series) {
        const ts = f.timestamp === undefined ? '' : ` ${f.timestamp}`;
        const exemplar = line.exemplar ? ` # {trace_id="t${line.value}"} 0.5 1700000000.5` : '';
        out.push(`${line.name}${labelsText(line.labels)} ${formatValue(line.value)}${ts}${exemplar}`);
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
  }).chain(({ names, repeat }) =>
    fc.tuple(...names.map((name) => family(format, name))).map((families) => {
      // Keep the families whose sample names no earlier family of this body claims.
      const taken = new Set<string>();
      const kept = (families as Family[]).filter((f) => {
        const names = claimed(f.name, f.kind, format);
        if (names.some((n) => taken.has(n))) return false;
        for (const n of names) taken.add(n);
        return true;
      });
      return { format, text: render(format, kept, repeat) };
    })));

export interface Case {
  label: string;
  acceptOpenMetrics: boolean;
  targets: FetchedTarget[];
}

/** One to three targets with bodies of the given formats, sometimes one more that failed to fetch. */
export const mergeCase = (formats: Format[] = ['text', 'openmetrics'], acceptOpenMetrics = fc.boolean()): fc.Arbitrary<Case> => fc.record({
  label: fc.constantFrom('container', 'path'),
  acceptOpenMetrics,
  bodies: fc.array(body(formats), { minLength: 1, maxLength: 3 }),
  down: fc.boolean(),
}).map(({ label, acceptOpenMetrics, bodies, down }) => {
  const targets: FetchedTarget[] = bodies.map((b, i) => ({
    container: `c${i}`,
    endpoint: String(9100 + i),
    body: Buffer.from(b.text),
    contentType: b.format === 'text' ? 'text/plain; version=0.0.4' : 'application/openmetrics-text; version=1.0.0',
    durationSeconds: 0.001 * (i + 1),
  }));
  if (down) targets.push({ container: 'down', endpoint: '9999', error: 'connection refused', durationSeconds: 0.5 });
  return { label, acceptOpenMetrics, targets };
});
