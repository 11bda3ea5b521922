import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseBytes, parseDurationMs } from '../../src/config/duration.ts';

test('Prometheus-style durations in milliseconds; a bare number is seconds', () => {
  const cases: [string, number | undefined][] = [
    ['10s', 10_000], ['500ms', 500], ['1m30s', 90_000], ['1h', 3_600_000], ['1d', 86_400_000], ['1.5s', 1500],
    ['0', 0], ['2', 2000], [' 5s ', 5000],
    ['', undefined], ['10', 10_000], ['s', undefined], ['10 s', undefined], ['-1s', undefined], ['1w', undefined], ['10sx', undefined],
  ];
  for (const [text, ms] of cases) assert.equal(parseDurationMs(text), ms, JSON.stringify(text));
});

test('sizes in bytes, binary and decimal units', () => {
  const cases: [string, number | undefined][] = [
    ['32MiB', 32 * 1024 ** 2], ['64Mi', 64 * 1024 ** 2], ['1000000', 1_000_000], ['10MB', 10_000_000], ['1GiB', 1024 ** 3],
    ['1.5KiB', 1536], ['512B', 512], ['lots', undefined], ['-1MiB', undefined], ['1TiB', undefined], ['', undefined],
  ];
  for (const [text, bytes] of cases) assert.equal(parseBytes(text), bytes, JSON.stringify(text));
});
