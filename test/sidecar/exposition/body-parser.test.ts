import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  BodyParser, DropCounter, ExpositionError, formatOfContentType, mergeTargets, type FetchedTarget, type ParsedBody,
} from '../../../src/sidecar/exposition/index.ts';
import { freeScratch, parseBody, RECORD_SIZE, releaseRecords } from '../../../src/sidecar/exposition/parse.ts';
import { ACCEPT } from './accept.ts';
import { body as bodyArbitrary, mergeCase } from './generate.ts';

type Format = 'text' | 'openmetrics';
const LABEL = 'container';

/** What a parse gave, as plain data: the ParsedBody with its records cut to the samples, or the error message. */
function outcome(parse: () => ParsedBody): unknown {
  try {
    const parsed = parse();
    return {
      ...parsed,
      body: parsed.body.toString('latin1'),
      records: [...parsed.records.subarray(0, parsed.samples * RECORD_SIZE)],
    };
  } catch (e) {
    if (!(e instanceof ExpositionError)) throw e;
    return { error: e.message };
  }
}

/**
 * Feeds body to a BodyParser as it would arrive in pieces ending at `cuts`: into a buffer with junk
 * past the bytes received, which is replaced by a larger copy after the piece `regrowAt`.
 */
function streamed(body: Buffer, format: Format, cuts: number[], regrowAt: number): ParsedBody {
  const parser = new BodyParser(format, [LABEL]);
  let buf = Buffer.alloc(Math.max(1, body.length >> 1), 0x7b);
  let received = 0;
  const receive = (end: number): void => {
    if (end > buf.length) {
      const grown = Buffer.alloc(end * 2, '"\n\r ');
      buf.copy(grown, 0, 0, received);
      buf = grown;
    }
    body.copy(buf, received, received, end);
    received = end;
  };
  [...new Set(cuts.map((cut) => cut % (body.length + 1)))].sort((a, b) => a - b).forEach((cut, i) => {
    if (cut <= received) return;
    receive(cut);
    if (i === regrowAt) {
      const copy = Buffer.alloc(buf.length + 7, 0x0a);
      buf.copy(copy, 0, 0, received);
      buf = copy;
    }
    parser.feed(buf, received);
  });
  receive(body.length);
  return parser.finish(buf, received);
}

/** Splits: anywhere, every byte, and around each line feed (so between CR and LF too). */
const cuts = (length: number): fc.Arbitrary<number[]> => fc.oneof(
  fc.array(fc.nat(), { maxLength: 12 }),
  fc.constant(Array.from({ length }, (_, i) => i + 1)),
  fc.nat({ max: 4 }).map((shift) => Array.from({ length }, (_, i) => i).filter((i) => i % 7 === shift)),
);

function checkSame(body: Buffer, format: Format, pieces: number[], regrowAt: number): void {
  assert.deepEqual(outcome(() => streamed(body, format, pieces, regrowAt)), outcome(() => parseBody(body, format, [LABEL])),
    JSON.stringify(body.toString('latin1')));
}

/** The same text body with CRLF line ends, and sometimes without its last line feed. */
function variants(text: string, format: Format): string[] {
  const crlf = text.replace(/\n/g, '\r\n');
  return [text, crlf, text.replace(/\n$/, ''), crlf.replace(/\n$/, ''), ...(format === 'openmetrics' ? [`${text}x 1\n`] : [])];
}

describe('BodyParser fed a body in pieces gives what parseBody gives for the whole body', () => {
  test('valid text and OpenMetrics bodies (CRLF, without the last LF), any split, the buffer replaced midway', () => {
    fc.assert(fc.property(
      bodyArbitrary(['text', 'openmetrics']).chain((b) => fc.tuple(
        fc.constant(b), fc.constantFrom(...variants(b.text, b.format)).map((t) => Buffer.from(t)),
      )).chain(([b, body]) => fc.tuple(fc.constant(b.format), fc.constant(body), cuts(body.length), fc.nat({ max: 12 }))),
      ([format, body, pieces, regrowAt]) => checkSame(body, format, pieces, regrowAt),
    ), { numRuns: 150 });
  });

  test('broken bodies give the same error message, whatever the split', () => {
    const junk = ['\n', '\r', '\r\n', ' ', '\t', '"', '\\', '{', '}', ',', '=', '#', '# EOF\n', 'x', '1', '\xff', '\xc3', 'é'];
    fc.assert(fc.property(
      bodyArbitrary(['text', 'openmetrics']).chain((b) => fc.tuple(
        fc.constant(b.format), fc.constant(Buffer.from(b.text)),
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 3 }), fc.constantFrom(...junk)), { minLength: 1, maxLength: 3 }),
        fc.nat({ max: 12 }),
      )).chain(([format, body, edits, regrowAt]) => {
        let broken = body;
        for (const [at, removed, inserted] of edits) {
          const p = at % (broken.length + 1);
          broken = Buffer.concat([broken.subarray(0, p), Buffer.from(inserted, 'latin1'), broken.subarray(p + removed)]);
        }
        return fc.tuple(fc.constant(format), fc.constant(broken), cuts(broken.length), fc.constant(regrowAt));
      }),
      ([format, body, pieces, regrowAt]) => checkSame(body, format, pieces, regrowAt),
    ), { numRuns: 300 });
  });

  for (const [what, format, text] of [
    ['data after # EOF', 'openmetrics', 'g 1\n# EOF\ng 2\n'],
    ['a blank line after # EOF', 'openmetrics', 'g 1\n# EOF\n\n'],
    ['# EOF without LF', 'openmetrics', 'g 1\n# EOF'],
    ['# EOF with CR LF', 'openmetrics', 'g 1\r\n# EOF\r\n'],
    ['no # EOF', 'openmetrics', 'g 1\n'],
    ['a lone CR at the end', 'text', 'g 1\n\r'],
    ['a last line without LF', 'text', 'a 1\nb{x="y"} 2'],
    ['an unterminated label value at the end', 'text', 'a 1\nb{x="y'],
    ['an escape at the very end', 'text', 'a 1\nb{x="y\\'],
    ['invalid UTF-8 after a syntax error', 'text', 'a 1\nb{ 2\nc{x="\xff"} 3\n'],
    ['invalid UTF-8 split across pieces', 'text', 'a{x="\xc3\xa9\xc3"} 1\n'],
  ] as const) {
    test(`${what}: the same result split at every byte`, () => {
      const body = Buffer.from(text, 'latin1');
      for (let cut = 0; cut <= body.length; cut++) checkSame(body, format, [cut], 0);
      checkSame(body, format, Array.from({ length: body.length }, (_, i) => i + 1), 3);
    });
  }
});

describe('mergeTargets with bodies parsed while they arrived', () => {
  test('the same merged output and outcomes as when the merge parses the bodies', () => {
    fc.assert(fc.property(mergeCase(), fc.array(fc.nat(), { maxLength: 8 }), (c, pieces) => {
      const options = { containerLabel: c.label, accept: c.accept };
      const plain = mergeTargets(c.targets, options, new DropCounter());
      const withParsed = c.targets.map((target): FetchedTarget => {
        if (target.body === undefined) return target;
        const format = target.contentType!.startsWith('application/openmetrics-text') ? 'openmetrics' : 'text';
        const parser = new BodyParser(format, [c.label]);
        for (const cut of pieces) parser.feed(target.body, cut % (target.body.length + 1));
        try {
          return { ...target, parsed: parser.finish(target.body, target.body.length) };
        } catch (e) {
          return { ...target, parsed: e as ExpositionError };
        }
      });
      const merged = mergeTargets(withParsed, options, new DropCounter());
      assert.equal(merged.body.toString(), plain.body.toString());
      assert.deepEqual(merged.targets, plain.targets);
    }), { numRuns: 100 });
  });

  test('a snapshot merged twice (text, then OpenMetrics for another scraper) is right both times', () => {
    fc.assert(fc.property(mergeCase(), (c) => {
      const parsedAsArrived = (): FetchedTarget[] => c.targets.map((target) => {
        if (target.body === undefined) return { ...target };
        const format = target.contentType!.startsWith('application/openmetrics-text') ? 'openmetrics' : 'text';
        try {
          return { ...target, parsed: new BodyParser(format, [c.label]).finish(target.body, target.body.length) };
        } catch (e) {
          return { ...target, parsed: e as ExpositionError };
        }
      });
      const snapshot = parsedAsArrived();
      const merge = (targets: FetchedTarget[], openMetrics: boolean): string =>
        mergeTargets(targets, { containerLabel: c.label, accept: openMetrics ? ACCEPT.prometheus2 : ACCEPT.text }, new DropCounter()).body.toString();
      const text = merge(snapshot, false);
      assert.ok(snapshot.every((t) => t.parsed === undefined), 'the first merge consumed what was parsed');
      // Another fetch's parser now takes the records the first merge gave back, and writes over them.
      for (const target of parsedAsArrived()) if (target.parsed !== undefined && !(target.parsed instanceof ExpositionError)) {
        mergeTargets([target], { containerLabel: c.label, accept: ACCEPT.text }, new DropCounter());
      }
      assert.equal(merge(snapshot, true), merge(c.targets, true));
      assert.equal(text, merge(c.targets, false));
    }), { numRuns: 60 });
  });

  test('an ExpositionError from the parser marks the target down with the message parseBody would give', () => {
    const body = Buffer.from('first 1\nsecond{a="1" 2\n');
    const parser = new BodyParser('text', [LABEL]);
    parser.feed(body, 12);
    let error: ExpositionError | undefined;
    assert.throws(() => parser.finish(body, body.length), (e) => (error = e as ExpositionError) instanceof ExpositionError);
    const targets = (parsed?: ExpositionError): FetchedTarget[] =>
      [{ container: 'bad', endpoint: '9100', body, contentType: 'text/plain; version=0.0.4', durationSeconds: 0, parsed }];
    const streamedOutcome = mergeTargets(targets(error), { containerLabel: LABEL, accept: ACCEPT.text }, new DropCounter());
    const plainOutcome = mergeTargets(targets(), { containerLabel: LABEL, accept: ACCEPT.text }, new DropCounter());
    assert.deepEqual(streamedOutcome.targets, plainOutcome.targets);
    assert.match(streamedOutcome.targets[0]!.error!, /^invalid text format exposition: line 2: /);
  });
});

describe('BodyParser sample records', () => {
  test('six parsers fed in turn, some abandoned, each give what parseBody gives', () => {
    const bodies = Array.from({ length: 6 }, (_, i) => Buffer.from(Array.from({ length: 300 * (i + 1) }, (_, k) =>
      `m${i}_${k % 7}{k="${k}",i="${i}"} ${k}\n`).join('')));
    for (let round = 0; round < 3; round++) {
      const parsers = bodies.map(() => new BodyParser('text', [LABEL]));
      for (let end = 0; end < 20_000; end += 977) parsers.forEach((parser, i) => parser.feed(bodies[i]!, Math.min(end, bodies[i]!.length)));
      parsers[1]!.abandon();
      parsers[1]!.abandon();
      const results = parsers.map((parser, i) => (i === 1 ? undefined : parser.finish(bodies[i]!, bodies[i]!.length)));
      const records = new Set(results.flatMap((r) => (r === undefined ? [] : [r.records])));
      assert.equal(records.size, 5, 'no two parsers share records');
      results.forEach((result, i) => {
        if (result === undefined) return;
        assert.deepEqual(outcome(() => result), outcome(() => parseBody(bodies[i]!, 'text', [LABEL])));
      });
      parsers[0]!.abandon();
      // Merging hands the records back, for the next round's parsers.
      mergeTargets(results.flatMap((parsed, i) => (parsed === undefined ? [] : [{
        container: `c${i}`, endpoint: '9100', body: bodies[i], contentType: 'text/plain', durationSeconds: 0, parsed,
      }])), { containerLabel: LABEL, accept: ACCEPT.text }, new DropCounter());
    }
  });

  test('finish() after finish() or abandon() is refused', () => {
    const parser = new BodyParser('text', [LABEL]);
    parser.abandon();
    assert.throws(() => parser.finish(Buffer.from('a 1\n'), 4), /after finish\(\) or abandon\(\)/);
  });
});

test('formatOfContentType names the format only for a known media type (the body decides otherwise)', () => {
  assert.equal(formatOfContentType('application/openmetrics-text; version=1.0.0; charset=utf-8'), 'openmetrics');
  assert.equal(formatOfContentType('Text/Plain; version=0.0.4'), 'text');
  assert.equal(formatOfContentType('text/html'), undefined);
  assert.equal(formatOfContentType(undefined), undefined);
});

test('once the record pool is freed, a parse starts with records as large as the largest handed back, not doubling its way there', () => {
  const lines = Array.from({ length: 5000 }, (_, i) => `jobs{q="${i}"} ${i}`).join('\n');
  const large = parseBody(Buffer.from(`# TYPE jobs gauge\n${lines}\n`), 'text', [LABEL]);
  const length = large.records.length;
  assert.ok(length >= 5000 * RECORD_SIZE);
  releaseRecords(large.records);
  freeScratch();
  assert.equal(large.records.length, 0, 'freed');
  const small = parseBody(Buffer.from('# TYPE jobs gauge\njobs 1\n'), 'text', [LABEL]);
  assert.ok(small.records.length >= length, `${small.records.length} records, ${length} handed back`);
  releaseRecords(small.records);
});
