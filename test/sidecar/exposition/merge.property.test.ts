import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { DROP_REASONS, DropCounter, mergeTargets, type MergeOutput } from '../../../src/sidecar/exposition/index.ts';
import { openMetricsErrors, promtoolError, readExposition, tools, type RefSample } from './checkers.ts';
import { mergeCase, type Case } from './generate.ts';

function run(c: Case): { output: MergeOutput; drops: DropCounter } {
  const drops = new DropCounter();
  return { output: mergeTargets(c.targets, { containerLabel: c.label, acceptOpenMetrics: c.acceptOpenMetrics }, drops), drops };
}

function formatOf(contentType: string | undefined): 'text' | 'openmetrics' {
  return contentType?.startsWith('application/openmetrics-text') ? 'openmetrics' : 'text';
}

/** The series key of a sample: name, labels sorted, value and timestamp (milliseconds when written as text). */
function key(s: RefSample, timestamp: string | undefined): string {
  const labels = [...s.labels].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([s.name, labels, s.value, timestamp]);
}

/** Checks every invariant of one merge that needs no outside tool; throws on the first broken one. */
function checkInvariants(c: Case): MergeOutput {
  const { output, drops } = run(c);
  const up = c.targets.filter((t) => t.body !== undefined);
  const allOpenMetrics = up.every((t) => formatOf(t.contentType) === 'openmetrics');
  assert.equal(output.format, c.acceptOpenMetrics && allOpenMetrics ? 'openmetrics' : 'text');
  for (const outcome of output.targets) assert.equal(outcome.up, outcome.container !== 'down', outcome.error);

  const families = readExposition(output.body.toString(), output.format);
  const names = families.map((f) => f.name);
  assert.equal(new Set(names).size, names.length, `each family once, contiguous: ${names.join(' ')}`);
  for (const f of families) assert.notEqual(f.type, undefined, `family ${f.name} has its TYPE and every sample fits it`);
  const body = output.body.toString();
  for (const name of names) assert.equal(body.split(`# TYPE ${name} `).length, 2, `one TYPE line for ${name}`);

  const containers = new Set(c.targets.map((t) => t.container));
  const served = new Map<string, number>();
  for (const f of families) {
    for (const s of f.samples) {
      const own = s.labels.filter(([n]) => n === c.label);
      assert.equal(own.length, 1, `one ${c.label} label on ${JSON.stringify(s)}`);
      assert.ok(containers.has(own[0]![1]));
      if (!f.name.startsWith('promux_')) served.set(own[0]![1], (served.get(own[0]![1]) ?? 0) + 1);
    }
  }

  // Every sample served is a sample of the inputs, labelled, with its name, value and time unchanged.
  const expected = new Map<string, number>();
  for (const target of up) {
    const format = formatOf(target.contentType);
    const input = readExposition(target.body!.toString(), format);
    let samples = 0;
    for (const s of input.flatMap((f) => f.samples)) {
      samples++;
      const labelNames = new Set(s.labels.map(([n]) => n));
      let exported = `exported_${c.label}`;
      while (labelNames.has(exported)) exported = `exported_${exported}`;
      const labels: Array<[string, string]> = s.labels.map(([n, v]) => [n === c.label ? exported : n, v]);
      labels.push([c.label, target.container]);
      const timestamp =
        s.timestamp !== undefined && format === 'openmetrics' && output.format === 'text'
          ? String(Math.trunc(Number(s.timestamp) * 1000))
          : s.timestamp;
      const k = key({ ...s, labels }, timestamp);
      expected.set(k, (expected.get(k) ?? 0) + 1);
    }
    const dropped = DROP_REASONS.reduce((sum, reason) => sum + drops.get(target, reason), 0);
    const out = served.get(target.container) ?? 0;
    assert.equal(samples, out + dropped, `${target.container}: ${samples} samples in, ${out} out, ${dropped} dropped`);
    assert.equal(output.targets.find((o) => o.container === target.container)!.samples, out);
  }
  for (const f of families) {
    if (f.name.startsWith('promux_')) continue;
    for (const s of f.samples) {
      const k = key(s, s.timestamp);
      const left = expected.get(k) ?? 0;
      assert.ok(left > 0, `served sample ${k} is not one of the inputs`);
      expected.set(k, left - 1);
    }
  }
  return output;
}

describe('mergeTargets properties over generated expositions', () => {
  test('samples in = served + dropped; one container label each; contiguous families with one TYPE; no name or value changed', () => {
    fc.assert(fc.property(mergeCase(), (c) => void checkInvariants(c)), { numRuns: 200 });
  });

  test('all-OpenMetrics targets, OpenMetrics accepted: the same invariants', () => {
    fc.assert(fc.property(mergeCase(['openmetrics'], fc.constant(true)), (c) => void checkInvariants(c)), { numRuns: 100 });
  });

  test('merged text passes promtool check metrics', (t) => {
    const checkers = tools(t);
    if (checkers === undefined) return;
    const seed = Date.now();
    const cases = fc.sample(mergeCase(['text', 'openmetrics'], fc.constant(false)), { numRuns: 40, seed });
    for (const c of cases) {
      const output = checkInvariants(c);
      const error = promtoolError(checkers.promtool, output.body);
      assert.equal(error, undefined, `seed ${seed}\ninputs:\n${c.targets.map((x) => x.body?.toString()).join('\n---\n')}\noutput:\n${output.body}`);
    }
  });

  test('merged OpenMetrics passes the Python OpenMetrics parser (and the generated inputs do too)', (t) => {
    const checkers = tools(t);
    if (checkers === undefined) return;
    const seed = Date.now();
    const cases = fc.sample(mergeCase(['openmetrics'], fc.constant(true)), { numRuns: 150, seed });
    const inputs = cases.flatMap((c) => c.targets.filter((x) => x.body !== undefined).map((x) => x.body!.toString()));
    const outputs = cases.map((c) => checkInvariants(c).body.toString());
    const errors = openMetricsErrors(checkers.python, [...inputs, ...outputs]);
    inputs.forEach((input, i) => assert.equal(errors[i], undefined, `seed ${seed}: generated input is invalid:\n${input}`));
    outputs.forEach((output, i) => {
      assert.equal(errors[inputs.length + i], undefined, `seed ${seed}\ninputs:\n${cases[i]!.targets.map((x) => x.body?.toString()).join('\n---\n')}\noutput:\n${output}`);
    });
  });

  test('the generated text inputs are valid for promtool themselves', (t) => {
    const checkers = tools(t);
    if (checkers === undefined) return;
    const seed = Date.now();
    const cases = fc.sample(mergeCase(['text']), { numRuns: 15, seed });
    for (const body of cases.flatMap((c) => c.targets.filter((x) => x.body !== undefined).map((x) => x.body!))) {
      // A body with a repeated series is what the merge must repair; promtool accepts it only without.
      assert.equal(promtoolError(checkers.promtool, body), undefined, `seed ${seed}: generated input is invalid:\n${body}`);
    }
  });
});

/** The same text body laid out otherwise: CRLF line ends, indentation, trailing blanks, comments, blank lines. */
function relaidOut(text: string, choices: number[]): string {
  return text
    .split('\n')
    .map((line, i) => {
      const choice = choices[i % choices.length]!;
      if (line === '') return line;
      const indented = choice & 1 ? ` \t${line}` : line;
      const trailing = choice & 2 && !line.startsWith('#') ? `${indented} \t ` : indented;
      const extra = choice & 4 ? '# a comment, not HELP or TYPE\n\n' : '';
      return `${extra}${trailing}${choice & 8 ? '\r' : ''}`;
    })
    .join('\n');
}

describe('mergeTargets and the layout of text bodies', () => {
  test('indentation, trailing blanks, comments, blank lines and CRLF do not change the merged output', () => {
    fc.assert(
      fc.property(mergeCase(['text']), fc.array(fc.integer({ min: 0, max: 15 }), { minLength: 1, maxLength: 20 }), (c, choices) => {
        const plain = run(c).output.body.toString();
        const relaid = run({
          ...c,
          targets: c.targets.map((t) => (t.body === undefined ? t : { ...t, body: Buffer.from(relaidOut(t.body.toString(), choices)) })),
        }).output.body.toString();
        assert.equal(relaid, plain);
      }),
      { numRuns: 100 },
    );
  });
});
