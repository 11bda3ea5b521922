// The webhook's log: its ISO timestamp, and lines written together at the end of a callback.
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { batchedDestination, isoTimeField, webhookLogger } from '../../src/webhook/log.ts';
import { tempDir } from './helpers.ts';

test('the time field is Date.toISOString\'s, whatever the clock does (seconds, years, going back)', () => {
  let now = 0;
  const field = isoTimeField(() => now);
  const expect = (t: number): string => `,"time":"${new Date(t).toISOString()}"`;
  for (const t of [0, 1, 9, 10, 99, 100, 999, 1000, 1001, 59_999, 60_000, Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2027, 0, 1)]) {
    now = t;
    assert.equal(field(), expect(t));
  }
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: Date.UTC(9999, 11, 31, 23, 59, 59, 999) }), { minLength: 1, maxLength: 20 }), (times) => {
      for (const t of times) {
        now = t;
        assert.equal(field(), expect(t));
        now = t + 1;
        assert.equal(field(), expect(t + 1), 'the next millisecond, maybe in the next second');
      }
    }),
  );
});

test('lines logged in one callback are written together as it ends; flushSync writes at once; nothing is lost or reordered', async (t) => {
  const file = join(tempDir(t), 'log');
  const fd = openSync(file, 'w');
  t.after(() => closeSync(fd));
  const destination = batchedDestination(fd);
  const log = webhookLogger('info', destination);
  for (let i = 0; i < 5; i++) log.info({ i }, 'review');
  assert.equal(readFileSync(file, 'utf8'), '', 'not yet: the callback is still running');
  await Promise.resolve();
  const first = readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(first.map((l) => l.i), [0, 1, 2, 3, 4]);
  for (const line of first) {
    assert.equal(line.name, 'promux-webhook');
    assert.match(String(line.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(Math.abs(Date.parse(String(line.time)) - Date.now()) < 60_000);
  }

  log.warn('before exit');
  destination.flushSync();
  assert.match(readFileSync(file, 'utf8'), /"msg":"before exit"}\n$/, 'flushSync (on exit) writes what is pending');
  log.info('flushed by pino');
  await new Promise<void>((resolve) => log.flush(() => resolve()));
  assert.match(readFileSync(file, 'utf8'), /"msg":"flushed by pino"}\n$/);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(readFileSync(file, 'utf8').trimEnd().split('\n').length, 7, 'each line once');
});
