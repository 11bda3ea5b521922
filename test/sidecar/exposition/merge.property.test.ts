import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  DROP_REASONS, DropCounter, EXEMPLAR_DROP_REASONS, mergeTargets, type Escaping, type MergeOutput, type TargetKey,
} from '../../../src/sidecar/exposition/index.ts';
import { escapeName } from '../../../src/sidecar/exposition/names.ts';
import { ACCEPT } from './accept.ts';
import { openMetricsErrors, promtoolError, readExposition, tools, type RefSample } from './checkers.ts';
import { mergeCase, type Case } from './generate.ts';

function run(c: Case): { output: MergeOutput; drops: DropCounter } {
  const drops = new DropCounter();
  return { output: mergeTargets(c.targets, { containerLabel: c.label, accept: c.accept }, drops), drops };
}

function formatOf(contentType: string | undefined): 'text' | 'openmetrics' {
  return contentType?.startsWith('application/openmetrics-text') ? 'openmetrics' : 'text';
}

/** The series key of a sample: name, labels sorted, value and timestamp. */
function key(s: RefSample, timestamp: string | undefined): string {
  const labels = [...s.labels].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([s.name, labels, s.value, timestamp]);
}

/** A timestamp as served in the other format: OpenMetrics seconds truncated to text milliseconds, or the reverse. */
function convertedTimestamp(timestamp: string | undefined, from: 'text' | 'openmetrics', to: 'text' | 'openmetrics'): string | undefined {
  if (timestamp === undefined || from === to) return timestamp;
  if (to === 'text') return String(Math.trunc(Number(timestamp) * 1000));
  const digits = timestamp.padStart(4, '0');
  return `${digits.slice(0, -3)}.${digits.slice(-3)}`;
}

/** Dropped samples and exemplars of a target, by reason. */
function dropsOf(drops: DropCounter, target: TargetKey): { samples: number; exemplars: number } {
  return {
    samples: DROP_REASONS.reduce((sum, reason) => sum + drops.get(target, reason), 0),
    exemplars: EXEMPLAR_DROP_REASONS.reduce((sum, reason) => sum + drops.getExemplars(target, reason), 0),
  };
}

/** Checks every invariant of one merge that needs no outside tool; throws on the first broken one. */
function checkInvariants(c: Case): MergeOutput {
  const { output, drops } = run(c);
  const { accept } = c;
  const up = c.targets.filter((t) => t.body !== undefined);
  const allOpenMetrics = up.every((t) => formatOf(t.contentType) === 'openmetrics');
  const poisoned = [...c.bodies.values()].some((b) => b.poisons.length > 0);
  // The format: the one the scraper takes, OpenMetrics when it prefers it and every target answered
  // it, unless a poisoned family made the answer text (servedAsText says which).
  const offered = accept.openMetrics === undefined ? 'text'
    : accept.text === undefined ? 'openmetrics'
      : accept.preferText || !allOpenMetrics ? 'text' : 'openmetrics';
  if (output.servedAsText !== undefined) {
    assert.ok(poisoned && offered === 'openmetrics' && output.format === 'text', output.servedAsText);
  } else {
    assert.equal(output.format, offered);
  }
  const served = output.format === 'text' ? accept.text! : accept.openMetrics!;
  assert.equal(output.contentType, served.contentType);
  const escaping: Escaping = served.escaping;
  for (const outcome of output.targets) assert.equal(outcome.up, outcome.container !== 'down', outcome.error);

  const families = readExposition(output.body.toString(), output.format);
  if (escaping !== 'allow-utf-8') assert.ok(!quotesNames(output), 'no quoted name when the scraper takes none');
  const names = families.map((f) => f.name);
  assert.equal(new Set(names).size, names.length, `each family once, contiguous: ${names.join(' ')}`);
  for (const f of families) assert.notEqual(f.type, undefined, `family ${f.name} has its TYPE and every sample fits it`);

  const containers = new Set(c.targets.map((t) => t.container));
  const servedSamples = new Map<string, number>();
  const servedExemplars = new Map<string, number>();
  for (const f of families) {
    for (const s of f.samples) {
      const own = s.labels.filter(([n]) => n === c.label);
      assert.equal(own.length, 1, `one ${c.label} label on ${JSON.stringify(s)}`);
      const container = own[0]![1];
      assert.ok(containers.has(container));
      if (f.name.startsWith('promux_')) continue;
      servedSamples.set(container, (servedSamples.get(container) ?? 0) + 1);
      if (s.exemplar !== undefined) servedExemplars.set(container, (servedExemplars.get(container) ?? 0) + 1);
    }
  }

  // Every sample served is a sample of the inputs, labelled, its names escaped as the scraper asked,
  // its value unchanged and its time converted when the format changed; samples and exemplars in =
  // served + dropped; a target that serves nothing poisoned loses nothing to poison.
  const expected = new Map<string, number>();
  for (const target of up) {
    const format = formatOf(target.contentType);
    const input = readExposition(target.body!.toString(), format);
    let samples = 0;
    let exemplars = 0;
    for (const family of input) {
      const base = escapeName(family.name, escaping, true);
      for (const s of family.samples) {
        samples++;
        if (s.exemplar !== undefined) exemplars++;
        const labelNames = new Set(s.labels.map(([n]) => n));
        let exported = `exported_${c.label}`;
        while (labelNames.has(exported)) exported = `exported_${exported}`;
        const labels: Array<[string, string]> = s.labels.map(([n, v]) => [escapeName(n === c.label ? exported : n, escaping, false), v]);
        labels.push([c.label, target.container]);
        const name = base + s.name.slice(family.name.length);
        const k = key({ ...s, name, labels }, convertedTimestamp(s.timestamp, format, output.format));
        expected.set(k, (expected.get(k) ?? 0) + 1);
      }
    }
    const dropped = dropsOf(drops, target);
    const out = servedSamples.get(target.container) ?? 0;
    assert.equal(samples, out + dropped.samples, `${target.container}: ${samples} samples in, ${out} out, ${dropped.samples} dropped`);
    assert.equal(output.targets.find((o) => o.container === target.container)!.samples, out);
    const exemplarsOut = servedExemplars.get(target.container) ?? 0;
    assert.equal(exemplars, exemplarsOut + dropped.exemplars, `${target.container}: ${exemplars} exemplars in, ${exemplarsOut} out, ${dropped.exemplars} dropped`);
    const generated = c.bodies.get(target.container)!;
    if (generated.poisons.length === 0) {
      for (const reason of ['invalid_label', 'invalid_timestamp', 'openmetrics_violation'] as const) {
        assert.equal(drops.get(target, reason), 0, `${target.container} (not poisoned): ${reason}`);
      }
      assert.equal(drops.getExemplars(target, 'invalid'), 0, `${target.container} (not poisoned): invalid exemplars`);
      if (!generated.utf8) assert.equal(drops.get(target, 'escaping_conflict'), 0);
    }
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

/** The merged answer quotes a UTF-8 name: no strict parser here reads that syntax (readExposition does). */
function quotesNames(output: MergeOutput): boolean {
  return readExposition(output.body.toString(), output.format).some((f) => f.quoted || f.samples.some((s) => s.quoted));
}

function inputsOf(c: Case): string {
  return c.targets.map((x) => `${x.contentType}\n${x.body?.toString()}`).join('\n---\n');
}

describe('mergeTargets properties over generated expositions (poisoned families and UTF-8 names among them)', () => {
  test('samples and exemplars in = served + dropped; one container label each; contiguous families with one TYPE; no name or value changed but by escaping', () => {
    fc.assert(fc.property(mergeCase(), (c) => void checkInvariants(c)), { numRuns: 300 });
  });

  test('all-OpenMetrics targets, OpenMetrics preferred: the same invariants', () => {
    fc.assert(fc.property(mergeCase(['openmetrics'], fc.constantFrom(ACCEPT.prometheus2, ACCEPT.prometheus3, ACCEPT.prometheus3Legacy)),
      (c) => void checkInvariants(c)), { numRuns: 150 });
  });

  test('the merged answer passes the strict parser of its format: promtool for text, the Python parser for OpenMetrics', (t) => {
    const checkers = tools(t);
    if (checkers === undefined) return;
    const seed = Date.now();
    const cases = fc.sample(mergeCase(), { numRuns: 300, seed });
    const outputs = cases.map((c) => ({ c, output: checkInvariants(c) })).filter(({ output }) => !quotesNames(output));
    const openMetrics = outputs.filter(({ output }) => output.format === 'openmetrics');
    const text = outputs.filter(({ output }) => output.format === 'text').slice(0, 60);
    assert.ok(openMetrics.length > 30 && text.length > 30, `enough answers of each format: ${openMetrics.length} and ${text.length}`);
    const errors = openMetricsErrors(checkers.python, openMetrics.map(({ output }) => output.body.toString()));
    openMetrics.forEach(({ c, output }, i) => {
      assert.equal(errors[i], undefined, `seed ${seed}\ninputs:\n${inputsOf(c)}\noutput:\n${output.body}`);
    });
    for (const { c, output } of text) {
      assert.equal(promtoolError(checkers.promtool, output.body), undefined, `seed ${seed}\ninputs:\n${inputsOf(c)}\noutput:\n${output.body}`);
    }
  });

  test('the generated inputs without poison or UTF-8 name are valid for the strict parsers themselves', (t) => {
    const checkers = tools(t);
    if (checkers === undefined) return;
    const seed = Date.now();
    const bodies = fc.sample(mergeCase(), { numRuns: 60, seed }).flatMap((c) => [...c.bodies.values()])
      .filter((b) => b.poisons.length === 0 && !b.utf8);
    const openMetrics = bodies.filter((b) => b.format === 'openmetrics');
    openMetricsErrors(checkers.python, openMetrics.map((b) => b.text)).forEach((error, i) => {
      assert.equal(error, undefined, `seed ${seed}: generated input is invalid:\n${openMetrics[i]!.text}`);
    });
    // A body with a repeated series is what the merge must repair; promtool accepts it all the same.
    for (const b of bodies.filter((x) => x.format === 'text').slice(0, 15)) {
      assert.equal(promtoolError(checkers.promtool, b.text), undefined, `seed ${seed}: generated input is invalid:\n${b.text}`);
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
