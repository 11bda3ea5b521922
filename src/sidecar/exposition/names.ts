// Metric and label names outside Prometheus' legacy character set (UTF-8 names, Prometheus 3): kept
// and quoted for a scraper that takes them, escaped into legacy names (as prometheus/common's
// EscapeName does) for one that does not.

import type { Escaping } from './types.ts';

function isLetter(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** The character code at position i may stand there in a legacy metric (colon allowed) or label name. */
function isLegacyChar(c: number, i: number, metric: boolean): boolean {
  return isLetter(c) || (metric && c === 0x3a) || (i > 0 && isDigit(c));
}

function isLegacy(name: string, metric: boolean): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) if (!isLegacyChar(name.charCodeAt(i), i, metric)) return false;
  return true;
}

/** `[a-zA-Z_:][a-zA-Z0-9_:]*` */
export function isLegacyMetricName(name: string): boolean {
  return isLegacy(name, true);
}

/** `[a-zA-Z_][a-zA-Z0-9_]*` */
export function isLegacyLabelName(name: string): boolean {
  return isLegacy(name, false);
}

/** isLegacyLabelName of the UTF-8 bytes buf[start, end) (a byte >= 0x80 is never legacy). */
export function isLegacyLabelNameAt(buf: Uint8Array, start: number, end: number): boolean {
  if (start >= end) return false;
  for (let p = start; p < end; p++) if (!isLegacyChar(buf[p]!, p - start, false)) return false;
  return true;
}

/**
 * A name outside the legacy set made a legacy name by the scheme the scraper asked for (a legacy
 * name is left as it is): `underscores` replaces each other character by `_`; `dots` writes `_` as
 * `__`, `.` as `_dot_` and other characters as `__`; `values` prefixes `U__` and writes `_` as `__`
 * and other characters as `_<hex code point>_`. A label name is escaped by the label name rules (no
 * colon), so that the result is always a valid label name.
 */
export function escapeName(name: string, escaping: Escaping, metric: boolean): string {
  if (escaping === 'allow-utf-8' || isLegacy(name, metric)) return name;
  let out = escaping === 'values' ? 'U__' : '';
  let i = 0;
  for (const ch of name) {
    const c = ch.codePointAt(0)!;
    if (escaping === 'underscores') {
      out += c < 0x80 && isLegacyChar(c, i, metric) ? ch : '_';
    } else if (c === 0x5f) {
      out += '__';
    } else if (escaping === 'dots' && c === 0x2e) {
      out += '_dot_';
    } else if (c < 0x80 && isLegacyChar(c, i, metric)) {
      out += ch;
    } else {
      out += escaping === 'dots' ? '__' : `_${c.toString(16)}_`;
    }
    i += ch.length;
  }
  return out;
}

/** The name quoted as Prometheus 3 writes a UTF-8 name: \ " and line feed escaped as in label values. */
export function quoteName(name: string): string {
  return `"${name.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`))}"`;
}
