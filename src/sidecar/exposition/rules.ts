// OpenMetrics' rules on values and family structure, which strict consumers check (the Python
// OpenMetrics parser does; Prometheus' own parser does not): a counter is never negative or NaN, a
// histogram has a +Inf bucket, its buckets go up, its _count equals the +Inf bucket, an info is 1, a
// stateset 0 or 1, a group of samples (a series with its _created, a histogram's buckets, _count and
// _sum...) is written together. A family that breaks one cannot be served as OpenMetrics.
// Run only when the answer would be OpenMetrics. No string per sample on the common path.

import {
  F_DROPPED, F_REWRITTEN, FNV_OFFSET, FNV_PRIME, hashBytes, isFloat, LE_LABEL, mix, Part, PART_MASK, PART_SHIFT, R_FLAGS, R_LABELS_END, R_LABELS_START, R_REST,
  R_TS_END, R_TS_START, R_VALUE_END, QUANTILE_LABEL, RECORD_SIZE, sameBytes, servedLabels, type MetricType, type ParsedBody, type ParsedFamily,
} from './parse.ts';

const SPACE = 0x20;
const TAB = 0x09;
const QUOTE = 0x22;
const COMMA = 0x2c;
const BACKSLASH = 0x5c;
const EQUALS = 0x3d;


/** The samples of a histogram group (labels but le, one timestamp) seen so far. */
interface HistogramGroup {
  bucket: number | undefined;
  bucketValue: number;
  count: number | undefined;
  hasSum: boolean;
  hasGsum: boolean;
  negativeBuckets: boolean;
  negativeGsum: boolean;
}

/**
 * The first rule of OpenMetrics the family's samples break, as a phrase ("a negative counter"), or
 * undefined. `type` is the family's type as served; `textCounter`: the family is a text counter
 * served as an OpenMetrics counter (its samples are its _total samples). A group is told by its
 * labels as served (an existing label of a name promux adds renamed: the body's targetLabels).
 */
export function openMetricsViolation(
  body: ParsedBody, family: ParsedFamily, type: MetricType, textCounter: boolean,
): string | undefined {
  // A gauge's or unknown's group is one series, and a series is served once: no rule to break.
  if (type === 'gauge' || type === 'untyped') return undefined;
  const buf = body.body;
  const records = body.records;
  const runs = family.runs;
  const targetLabels = body.targetLabels;
  const histogram = type === 'histogram' || type === 'gaugehistogram';
  const stateLabel = type === 'stateset' ? Buffer.from(family.name) : undefined;
  /** The label that is not part of the group of the sample at r: le of a bucket, quantile of a summary's quantile, the state of a stateset. */
  const excludedAt = (r: number): Buffer | undefined => {
    const part = textCounter ? Part.total : (records[r + R_FLAGS]! >> PART_SHIFT) & PART_MASK;
    return part === Part.bucket && histogram ? LE_LABEL : part === Part.bare && type === 'summary' ? QUANTILE_LABEL : stateLabel;
  };
  /** Group hash to the first record of each group seen. */
  const seen = new Map<number, number[]>();
  // The labels of this sample and of the previous one, read once (undefined for a rewritten sample).
  let labels: Labels | undefined;
  let before: Labels | undefined;
  let previous = -1;
  let groupHashOf = 0;
  let group: HistogramGroup | undefined;
  let groupTimestamp = Number.NaN;
  for (let k = 0; k < runs.length; k += 2) {
    for (let i = runs[k]!, last = runs[k + 1]!; i < last; i++) {
      const r = i * RECORD_SIZE;
      const flags = records[r + R_FLAGS]!;
      if ((flags & F_DROPPED) !== 0) continue;
      const part = textCounter ? Part.total : (flags >> PART_SHIFT) & PART_MASK;
      const excluded = excludedAt(r);
      const spare: Labels = before === SCRATCH[0] ? SCRATCH[1]! : SCRATCH[0]!;
      labels = readLabels(buf, records, r, excluded, spare);
      const value = valueOf(buf, records, r);
      if (COUNTER_LIKE[part] === 1 && Number.isNaN(value)) return `a NaN ${PART_NAMES[part]}`;
      if (COUNTER_LIKE[part] === 1 && part !== Part.gsum && value < 0) return `a negative ${PART_NAMES[part]}`;
      if ((part === Part.bucket || part === Part.count || part === Part.gcount) && !Number.isInteger(value)) {
        return `a ${PART_NAMES[part]} that is not an integer`;
      }
      if (type === 'info' && value !== 1) return 'an info sample other than 1';
      if (type === 'stateset' && value !== 0 && value !== 1) return 'a stateset sample other than 0 or 1';
      let le = Number.NaN;
      if (excluded === LE_LABEL) {
        const found = labels !== undefined ? excludedNumber(buf, labels) : labelNumber(buf, records, r, LE_LABEL, targetLabels);
        if (found === undefined || Number.isNaN(found)) return 'a bucket without a numeric le (+Inf written so)';
        le = found;
      } else if (excluded === QUANTILE_LABEL) {
        const quantile = labels !== undefined ? excludedNumber(buf, labels) : labelNumber(buf, records, r, QUANTILE_LABEL, targetLabels);
        if (quantile === undefined || !(quantile >= 0 && quantile <= 1)) return 'a quantile outside [0, 1]';
        if (value < 0) return 'a negative quantile value';
      } else if (excluded !== undefined &&
        (labels !== undefined ? labels.excluded === -1 : labelNumber(buf, records, r, excluded, targetLabels) === undefined)) {
        return `a stateset sample without its ${family.name} label`;
      }
      // Groups: the samples of one group come together, their timestamps all there or all absent, in
      // order. Consecutive samples are compared as bytes; a group's hash is computed when it starts.
      const timestamp = records[r + R_TS_START]! < 0 ? Number.NaN : timestampOf(buf, records, r);
      let same = previous !== -1 && (type === 'info' || (labels !== undefined && before !== undefined && sameLabels(buf, before, labels)));
      let hash = groupHashOf;
      if (!same && type !== 'info') {
        hash = labels !== undefined ? labelsHash(buf, labels) : groupHash(buf, records, r, excluded, targetLabels);
        // Bytes differ, yet the labels may be the same in another order, or written otherwise.
        same = previous !== -1 && hash === groupHashOf && sameGroup(buf, records, previous, excludedAt(previous), r, excluded, targetLabels);
      }
      if (same) {
        const before = timestampOf(buf, records, previous);
        if (Number.isNaN(before) !== Number.isNaN(timestamp)) return 'a group of samples with and without timestamps';
        if (type !== 'info' && timestamp < before) return 'timestamps going backwards within a group';
      } else {
        const others = seen.get(hash);
        if (others === undefined) {
          seen.set(hash, [r]);
        } else {
          for (const other of others) {
            if (sameGroup(buf, records, other, excludedAt(other), r, excluded, targetLabels)) return 'a group of samples split apart';
          }
          others.push(r);
        }
        groupHashOf = hash;
      }
      // Histograms: each group at one timestamp is checked as a whole.
      if (histogram) {
        if (group === undefined || !same || !Object.is(timestamp, groupTimestamp)) {
          const broken = group === undefined ? undefined : histogramViolation(group);
          if (broken !== undefined) return broken;
          group = { bucket: undefined, bucketValue: 0, count: undefined, hasSum: false, hasGsum: false, negativeBuckets: false, negativeGsum: false };
          groupTimestamp = timestamp;
        }
        if (part === Part.bucket) {
          if (le < 0) group.negativeBuckets = true;
          if (group.bucket !== undefined && le <= group.bucket) return 'histogram buckets out of order';
          if (value < group.bucketValue) return 'histogram bucket values going down';
          group.bucket = le;
          group.bucketValue = value;
        } else if (part === Part.count || part === Part.gcount) {
          group.count = value;
        } else if (part === Part.sum) {
          group.hasSum = true;
        } else if (part === Part.gsum) {
          group.hasGsum = true;
          if (value < 0) group.negativeGsum = true;
        }
      }
      previous = r;
      before = labels;
    }
  }
  return group === undefined ? undefined : histogramViolation(group);
}

function histogramViolation(g: HistogramGroup): string | undefined {
  if (g.bucket !== Infinity) return 'a histogram without +Inf bucket';
  if (g.count !== undefined && g.count !== g.bucketValue) return 'a histogram _count other than its +Inf bucket';
  if ((g.hasSum || g.hasGsum) && g.count === undefined) return 'a histogram _sum without _count';
  if (!(g.hasSum || g.hasGsum) && g.count !== undefined) return 'a histogram _count without _sum';
  if (g.negativeBuckets && g.hasSum) return 'a histogram _sum with negative buckets';
  if (!g.negativeBuckets && g.negativeGsum) return 'a negative _gsum with no negative bucket';
  return undefined;
}

/** By part: 1 for the samples OpenMetrics treats as counters (never NaN; never negative but _gsum). */
const COUNTER_LIKE = [0, 1, 0, 1, 1, 1, 1, 1, 0];
const PART_NAMES = ['sample', 'counter', '_created', 'bucket', '_count', '_sum', '_gcount', '_gsum', 'info'];

/** The timestamp of record r (in its body's unit), NaN when it has none. */
function timestampOf(buf: Buffer, records: Int32Array, r: number): number {
  const start = records[r + R_TS_START]!;
  return start < 0 ? Number.NaN : Number(buf.toString('latin1', start, records[r + R_TS_END]!));
}

function valueOf(buf: Buffer, records: Int32Array, r: number): number {
  let start = records[r + R_REST]!;
  while (buf[start] === SPACE || buf[start] === TAB) start++;
  return numberOf(buf, start, records[r + R_VALUE_END]!);
}

/**
 * A number as Go and Python read it (isFloat's syntax), NaN for anything else; +Infinity only when
 * written `+Inf` (the one spelling OpenMetrics allows in le). Plain integers without a string.
 */
function numberOf(buf: Buffer, start: number, end: number): number {
  // A plain decimal of up to 15 digits is the exact quotient of two exact doubles (Clinger's fast
  // path): the same number as Number() of its text, without making the text.
  let p = start;
  const negative = buf[p] === 0x2d;
  if (negative || buf[p] === 0x2b) p++;
  let mantissa = 0;
  let digits = 0;
  let scale = 1;
  let dot = false;
  for (; p < end; p++) {
    const c = buf[p]!;
    if (c >= 0x30 && c <= 0x39) {
      mantissa = mantissa * 10 + c - 0x30;
      digits++;
      if (dot) scale *= 10;
    } else if (c === 0x2e && !dot) {
      dot = true;
    } else {
      break;
    }
  }
  if (p === end && digits > 0 && digits <= 15) return (negative ? -mantissa : mantissa) / scale;
  if (!isFloat(buf, start, end)) return Number.NaN;
  const text = buf.toString('latin1', start, end);
  if (text === '+Inf') return Infinity;
  const lower = text.toLowerCase();
  const unsigned = lower[0] === '+' || lower[0] === '-' ? lower.slice(1) : lower;
  if (unsigned === 'inf' || unsigned === 'infinity') return lower[0] === '-' ? -Infinity : Number.NaN;
  return Number(text);
}

/** The value of record r's label `name` (as served) read by numberOf; undefined when the label is absent. */
function labelNumber(buf: Buffer, records: Int32Array, r: number, name: Buffer, targetLabels: readonly string[]): number | undefined {
  const start = records[r + R_LABELS_START]!;
  const end = records[r + R_LABELS_END]!;
  if ((records[r + R_FLAGS]! & F_REWRITTEN) !== 0) {
    const wanted = name.toString('utf8');
    const found = servedLabels(buf, start, end, targetLabels).find(([n]) => n === wanted);
    if (found === undefined) return undefined;
    const value = Buffer.from(found[1]);
    return numberOf(value, 0, value.length);
  }
  for (let p = start; p < end; p = LABEL[4]!) {
    nextLabel(buf, p, end, LABEL);
    if (isLabel(buf, LABEL, name)) return numberOf(buf, LABEL[2]!, LABEL[3]!);
  }
  return undefined;
}

/**
 * The raw labels of a sample (not rewritten: see F_REWRITTEN): per label its name start and end and
 * its value start and end (between the quotes); `excluded` is the index of the label that is not part
 * of the sample's group, -1 when it has none.
 */
interface Labels {
  at: Int32Array;
  count: number;
  excluded: number;
}

/** Two lists, the current sample's and the previous one's, reused (openMetricsViolation runs once at a time). */
const SCRATCH: [Labels, Labels] = [{ at: new Int32Array(64), count: 0, excluded: -1 }, { at: new Int32Array(64), count: 0, excluded: -1 }];

/** Reads record r's labels into `into`; undefined (nothing read) for a rewritten sample. */
function readLabels(buf: Buffer, records: Int32Array, r: number, excluded: Buffer | undefined, into: Labels): Labels | undefined {
  if ((records[r + R_FLAGS]! & F_REWRITTEN) !== 0) return undefined;
  const end = records[r + R_LABELS_END]!;
  let count = 0;
  into.excluded = -1;
  for (let p = records[r + R_LABELS_START]!; p < end; count++) {
    if ((count + 2) * 4 > into.at.length) {
      const grown = new Int32Array(into.at.length * 2);
      grown.set(into.at);
      into.at = grown;
    }
    // Read into place: name start, name end, value start, value end, and the next label's start after them.
    p = nextLabel(buf, p, end, into.at, count * 4);
    if (into.excluded === -1 && isLabelAt(buf, into.at, count * 4, excluded)) into.excluded = count;
  }
  into.count = count;
  return into;
}

/** The excluded label's value read by numberOf; undefined when the sample has none. */
function excludedNumber(buf: Buffer, labels: Labels): number | undefined {
  const i = labels.excluded * 4;
  return labels.excluded === -1 ? undefined : numberOf(buf, labels.at[i + 2]!, labels.at[i + 3]!);
}

/** The same labels in the same order and bytes, each list's excluded label left out. */
function sameLabels(buf: Buffer, a: Labels, b: Labels): boolean {
  let i = 0;
  let k = 0;
  for (;;) {
    if (i === a.excluded) i++;
    if (k === b.excluded) k++;
    if (i >= a.count || k >= b.count) return i >= a.count && k >= b.count;
    const x = i * 4;
    const y = k * 4;
    if (!sameRange(buf, a.at[x]!, a.at[x + 1]!, b.at[y]!, b.at[y + 1]!) || !sameRange(buf, a.at[x + 2]!, a.at[x + 3]!, b.at[y + 2]!, b.at[y + 3]!)) {
      return false;
    }
    i++;
    k++;
  }
}

/** groupHash of a list read by readLabels. */
function labelsHash(buf: Buffer, labels: Labels): number {
  let hash = 0;
  for (let i = 0; i < labels.count; i++) {
    if (i === labels.excluded) continue;
    const x = i * 4;
    const h = Math.imul(hashBytes(buf, labels.at[x]!, labels.at[x + 1]!, FNV_OFFSET) ^ EQUALS, FNV_PRIME);
    hash = (hash + mix(hashBytes(buf, labels.at[x + 2]!, labels.at[x + 3]!, h))) | 0;
  }
  return hash;
}

/** Scratch label positions: name start, name end, value start, value end (raw, between the quotes), next label. */
const LABEL = new Int32Array(5);
const OTHER = new Int32Array(5);

/**
 * The label at p (raw bytes; no quoted name: see F_REWRITTEN) into into[at, at + 4): name start and
 * end, value start and end; returns where the next one starts (also into[at + 4]).
 */
function nextLabel(buf: Buffer, p: number, end: number, into: Int32Array, at = 0): number {
  while (p < end && (buf[p] === SPACE || buf[p] === TAB || buf[p] === COMMA)) p++;
  into[at] = p;
  while (p < end && buf[p] !== EQUALS && buf[p] !== SPACE && buf[p] !== TAB) p++;
  into[at + 1] = p;
  while (buf[p] !== QUOTE) p++;
  into[at + 2] = ++p;
  while (buf[p] !== QUOTE) p += buf[p] === BACKSLASH ? 2 : 1;
  into[at + 3] = p;
  into[at + 4] = p + 1;
  return p + 1;
}

/** The label's name is `name` (compared in JavaScript: for a few bytes, cheaper than a call into C++). */
function isLabel(buf: Buffer, label: Int32Array, name: Buffer | undefined): boolean {
  return isLabelAt(buf, label, 0, name);
}

function isLabelAt(buf: Buffer, labels: Int32Array, at: number, name: Buffer | undefined): boolean {
  if (name === undefined) return false;
  const start = labels[at]!;
  if (labels[at + 1]! - start !== name.length) return false;
  for (let i = 0; i < name.length; i++) if (buf[start + i] !== name[i]) return false;
  return true;
}


/** An order-independent hash of record r's labels as served, but `excluded`. */
function groupHash(buf: Buffer, records: Int32Array, r: number, excluded: Buffer | undefined, targetLabels: readonly string[]): number {
  const start = records[r + R_LABELS_START]!;
  const end = records[r + R_LABELS_END]!;
  let hash = 0;
  if ((records[r + R_FLAGS]! & F_REWRITTEN) !== 0) {
    const skip = excluded?.toString('utf8');
    for (const [name, value] of servedLabels(buf, start, end, targetLabels)) {
      if (name === skip) continue;
      const bytes = Buffer.from(`${name}=${value}`);
      hash = (hash + mix(hashBytes(bytes, 0, bytes.length, FNV_OFFSET))) | 0;
    }
    return hash;
  }
  for (let p = start; p < end; p = LABEL[4]!) {
    nextLabel(buf, p, end, LABEL);
    if (isLabel(buf, LABEL, excluded)) continue;
    const h = Math.imul(hashBytes(buf, LABEL[0]!, LABEL[1]!, FNV_OFFSET) ^ EQUALS, FNV_PRIME);
    hash = (hash + mix(hashBytes(buf, LABEL[2]!, LABEL[3]!, h))) | 0;
  }
  return hash;
}

/** Records a and b, neither rewritten, have the same labels but the label each excludes, in the same order and bytes. */
function sameGroupBytes(buf: Buffer, records: Int32Array, a: number, excludedA: Buffer | undefined, b: number, excludedB: Buffer | undefined): boolean {
  if (((records[a + R_FLAGS]! | records[b + R_FLAGS]!) & F_REWRITTEN) !== 0) return false;
  let p = records[a + R_LABELS_START]!;
  let q = records[b + R_LABELS_START]!;
  const pEnd = records[a + R_LABELS_END]!;
  const qEnd = records[b + R_LABELS_END]!;
  for (;;) {
    let pFound = false;
    while (p < pEnd && !pFound) {
      nextLabel(buf, p, pEnd, LABEL);
      p = LABEL[4]!;
      pFound = !isLabel(buf, LABEL, excludedA);
    }
    let qFound = false;
    while (q < qEnd && !qFound) {
      nextLabel(buf, q, qEnd, OTHER);
      q = OTHER[4]!;
      qFound = !isLabel(buf, OTHER, excludedB);
    }
    if (!pFound || !qFound) return pFound === qFound;
    if (!sameRange(buf, LABEL[0]!, LABEL[1]!, OTHER[0]!, OTHER[1]!) || !sameRange(buf, LABEL[2]!, LABEL[3]!, OTHER[2]!, OTHER[3]!)) return false;
  }
}

function sameRange(buf: Buffer, aStart: number, aEnd: number, bStart: number, bEnd: number): boolean {
  return aEnd - aStart === bEnd - bStart && sameBytes(buf, aStart, buf, bStart, aEnd - aStart);
}

/** Records a and b have the same labels as served (in any order), but the label each excludes. */
function sameGroup(
  buf: Buffer, records: Int32Array, a: number, excludedA: Buffer | undefined, b: number, excludedB: Buffer | undefined, targetLabels: readonly string[],
): boolean {
  if (sameGroupBytes(buf, records, a, excludedA, b, excludedB)) return true;
  const key = (r: number, excluded: Buffer | undefined): string => {
    const skip = excluded?.toString('utf8');
    return servedLabels(buf, records[r + R_LABELS_START]!, records[r + R_LABELS_END]!, targetLabels)
      .filter(([name]) => name !== skip).map(([name, value]) => `${name}=${value}`).sort().join('\n');
  };
  return key(a, excludedA) === key(b, excludedB);
}
