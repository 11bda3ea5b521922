// io.prometheus.client.MetricFamily, the protobuf exposition (client_model's metrics.proto, with
// Prometheus 3's fields: created timestamps, native histograms, unit), read and written by hand for
// this one message type: no dependency in the sidecar, and the merge copies each metric's fields
// byte for byte instead of decoding them (RawMetric).
//
// A body is a sequence of MetricFamily messages, each after its size as a varint ("delimited").
// 64-bit integers are read as JavaScript numbers: exact up to 2^53 (counts and milliseconds far
// beyond any real exposition); the merge never reads them, it copies their bytes.

import { keepLastInstance } from '../last-instances.ts';
import { isLegacyLabelNameAt } from '../names.ts';

export const PROTOBUF_CONTENT_TYPE = 'application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited';

/** MetricType of metrics.proto, by number. */
export const TYPE = { counter: 0, gauge: 1, summary: 2, untyped: 3, histogram: 4, gaugeHistogram: 5 } as const;

export interface Timestamp {
  seconds: number;
  nanos: number;
}

export type LabelPairs = Array<[string, string]>;

export interface Exemplar {
  labels: LabelPairs;
  value?: number;
  timestamp?: Timestamp;
}

export interface Quantile {
  quantile?: number;
  value?: number;
}

export interface Bucket {
  cumulativeCount?: number;
  cumulativeCountFloat?: number;
  upperBound?: number;
  exemplar?: Exemplar;
}

export interface BucketSpan {
  offset: number;
  length: number;
}

export interface Histogram {
  sampleCount?: number;
  sampleCountFloat?: number;
  sampleSum?: number;
  buckets: Bucket[];
  createdTimestamp?: Timestamp;
  schema?: number;
  zeroThreshold?: number;
  zeroCount?: number;
  zeroCountFloat?: number;
  negativeSpans: BucketSpan[];
  negativeDeltas: number[];
  negativeCounts: number[];
  positiveSpans: BucketSpan[];
  positiveDeltas: number[];
  positiveCounts: number[];
  exemplars: Exemplar[];
}

export interface Metric {
  labels: LabelPairs;
  gauge?: { value?: number };
  counter?: { value?: number; exemplar?: Exemplar; createdTimestamp?: Timestamp };
  summary?: { sampleCount?: number; sampleSum?: number; quantiles: Quantile[]; createdTimestamp?: Timestamp };
  untyped?: { value?: number };
  histogram?: Histogram;
  timestampMs?: number;
  /** Fields metrics.proto does not name, as they came (tag included). */
  unknown: Uint8Array[];
}

/** A metric as the merge handles it: its labels, and every other field's bytes as they came (tags included). */
export interface RawMetric {
  labels: LabelPairs;
  fields: Uint8Array[];
}

export interface MetricFamily<M = Metric> {
  name: string;
  help?: string;
  type?: number;
  unit?: string;
  metrics: M[];
  /** Fields metrics.proto does not name, as they came (tag included). */
  unknown: Uint8Array[];
}

export class ProtobufError extends Error {
  override name = 'ProtobufError';
}

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;
const TWO_63 = 2 ** 63;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Doubles go through these (little-endian, as protobuf's wire: the platforms Node runs the sidecar on). */
const F64 = new Float64Array(1);
const F64_BYTES = new Uint8Array(F64.buffer);

class Reader {
  readonly buf: Uint8Array;
  pos: number;
  /** The end of the message being read (a nested one while nested() reads it). */
  end: number;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  /** An unsigned varint as a number (exact up to 2^53). */
  varint(): number {
    const buf = this.buf;
    let b = buf[this.pos];
    if (b !== undefined && b < 0x80 && this.pos < this.end) {
      this.pos++;
      return b;
    }
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtobufError('truncated varint');
      b = buf[this.pos++]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
    }
    throw new ProtobufError('varint longer than 10 bytes');
  }

  /** int64: two's complement, a negative value is ten bytes. */
  int64(): number {
    const start = this.pos;
    const v = this.varint();
    if (v < TWO_63) return v;
    // Negative: ten bytes, beyond a double's precision; read again exactly.
    let big = 0n;
    for (let p = this.pos - 1; p >= start; p--) big = (big << 7n) | BigInt(this.buf[p]! & 0x7f);
    return Number(BigInt.asIntN(64, big));
  }

  int32(): number {
    return this.int64() | 0;
  }

  sint(): number {
    const v = this.varint();
    return v % 2 === 0 ? v / 2 : -(v + 1) / 2;
  }

  double(): number {
    if (this.pos + 8 > this.end) throw new ProtobufError('truncated double');
    const buf = this.buf;
    const p = this.pos;
    for (let i = 0; i < 8; i++) F64_BYTES[i] = buf[p + i]!;
    this.pos += 8;
    return F64[0]!;
  }

  /** The end of a length-delimited field that starts here (after its tag). */
  lengthEnd(): number {
    const length = this.varint();
    const end = this.pos + length;
    if (end > this.end) throw new ProtobufError(`field of ${length} bytes runs past its message`);
    return end;
  }

  string(): string {
    const end = this.lengthEnd();
    const buf = this.buf;
    let s = '';
    for (let p = this.pos; p < end; p++) {
      const c = buf[p]!;
      if (c >= 0x80) {
        // Not ASCII: decoded (and checked) as UTF-8 by the platform.
        try {
          s = utf8.decode(buf.subarray(this.pos, end));
        } catch {
          throw new ProtobufError('string is not UTF-8');
        }
        break;
      }
      s += String.fromCharCode(c);
    }
    this.pos = end;
    return s;
  }

  /** Reads the length-delimited field that starts here with `read`, as if it were a whole message. */
  nested<T>(read: (r: Reader) => T): T {
    const end = this.lengthEnd();
    const outer = this.end;
    this.end = end;
    const value = read(this);
    this.end = outer;
    return value;
  }

  skip(wire: number): void {
    switch (wire) {
      case VARINT: this.varint(); return;
      case I64: this.pos += 8; break;
      case LEN: this.pos = this.lengthEnd(); return;
      case I32: this.pos += 4; break;
      default: throw new ProtobufError(`unsupported wire type ${wire}`);
    }
    if (this.pos > this.end) throw new ProtobufError('truncated field');
  }

  /** Reads a repeated scalar, packed (wire type 2) or one element (its own wire type). */
  repeated(wire: number, one: () => number, into: number[]): void {
    if (wire !== LEN) {
      into.push(one());
      return;
    }
    const end = this.lengthEnd();
    const outer = this.end;
    this.end = end;
    while (this.pos < end) into.push(one());
    this.end = outer;
  }
}

// A Reader is built per metric, too often to keep each: one kept from the start holds its hidden class
// (the same, as every Reader is built alike) through the collection after a scrape (last-instances.ts).
keepLastInstance(new Reader(new Uint8Array(0)));

function expectWire(wire: number, expected: number, field: string): void {
  if (wire !== expected) throw new ProtobufError(`${field}: wire type ${wire}, expected ${expected}`);
}

function readLabelPair(r: Reader): [string, string] {
  let name = '';
  let value = '';
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === (1 << 3 | LEN)) name = r.string();
    else if (tag === (2 << 3 | LEN)) value = r.string();
    else r.skip(tag & 7);
  }
  return [name, value];
}

function readTimestamp(r: Reader): Timestamp {
  const t: Timestamp = { seconds: 0, nanos: 0 };
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === (1 << 3 | VARINT)) t.seconds = r.int64();
    else if (tag === (2 << 3 | VARINT)) t.nanos = r.int32();
    else r.skip(tag & 7);
  }
  return t;
}

function readExemplar(r: Reader): Exemplar {
  const e: Exemplar = { labels: [] };
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === (1 << 3 | LEN)) e.labels.push(r.nested(readLabelPair));
    else if (tag === (2 << 3 | I64)) e.value = r.double();
    else if (tag === (3 << 3 | LEN)) e.timestamp = r.nested(readTimestamp);
    else r.skip(tag & 7);
  }
  return e;
}

/** Gauge and Untyped: one double. */
function readValue(r: Reader): { value?: number } {
  const m: { value?: number } = {};
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === (1 << 3 | I64)) m.value = r.double();
    else r.skip(tag & 7);
  }
  return m;
}

function readCounter(r: Reader): NonNullable<Metric['counter']> {
  const c: NonNullable<Metric['counter']> = {};
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === (1 << 3 | I64)) c.value = r.double();
    else if (tag === (2 << 3 | LEN)) c.exemplar = r.nested(readExemplar);
    else if (tag === (3 << 3 | LEN)) c.createdTimestamp = r.nested(readTimestamp);
    else r.skip(tag & 7);
  }
  return c;
}

function readQuantile(r: Reader): Quantile {
  const q: Quantile = {};
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === (1 << 3 | I64)) q.quantile = r.double();
    else if (tag === (2 << 3 | I64)) q.value = r.double();
    else r.skip(tag & 7);
  }
  return q;
}

function readSummary(r: Reader): NonNullable<Metric['summary']> {
  const s: NonNullable<Metric['summary']> = { quantiles: [] };
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === (1 << 3 | VARINT)) s.sampleCount = r.varint();
    else if (tag === (2 << 3 | I64)) s.sampleSum = r.double();
    else if (tag === (3 << 3 | LEN)) {
      s.quantiles.push(r.nested(readQuantile));
    } else if (tag === (4 << 3 | LEN)) s.createdTimestamp = r.nested(readTimestamp);
    else r.skip(tag & 7);
  }
  return s;
}

function readBucket(r: Reader): Bucket {
  const b: Bucket = {};
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === (1 << 3 | VARINT)) b.cumulativeCount = r.varint();
    else if (tag === (2 << 3 | I64)) b.upperBound = r.double();
    else if (tag === (3 << 3 | LEN)) b.exemplar = r.nested(readExemplar);
    else if (tag === (4 << 3 | I64)) b.cumulativeCountFloat = r.double();
    else r.skip(tag & 7);
  }
  return b;
}

function readSpan(r: Reader): BucketSpan {
  const s: BucketSpan = { offset: 0, length: 0 };
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === (1 << 3 | VARINT)) s.offset = r.sint();
    else if (tag === (2 << 3 | VARINT)) s.length = r.varint();
    else r.skip(tag & 7);
  }
  return s;
}

function readHistogram(r: Reader): Histogram {
  const h: Histogram = {
    buckets: [], negativeSpans: [], negativeDeltas: [], negativeCounts: [], positiveSpans: [], positiveDeltas: [], positiveCounts: [], exemplars: [],
  };
  const sint = (): number => r.sint();
  const double = (): number => r.double();
  while (r.pos < r.end) {
    const tag = r.varint();
    const wire = tag & 7;
    switch (tag >>> 3) {
      case 1: expectWire(wire, VARINT, 'sample_count'); h.sampleCount = r.varint(); break;
      case 2: expectWire(wire, I64, 'sample_sum'); h.sampleSum = r.double(); break;
      case 3: expectWire(wire, LEN, 'bucket'); h.buckets.push(r.nested(readBucket)); break;
      case 4: expectWire(wire, I64, 'sample_count_float'); h.sampleCountFloat = r.double(); break;
      case 5: expectWire(wire, VARINT, 'schema'); h.schema = r.sint(); break;
      case 6: expectWire(wire, I64, 'zero_threshold'); h.zeroThreshold = r.double(); break;
      case 7: expectWire(wire, VARINT, 'zero_count'); h.zeroCount = r.varint(); break;
      case 8: expectWire(wire, I64, 'zero_count_float'); h.zeroCountFloat = r.double(); break;
      case 9: expectWire(wire, LEN, 'negative_span'); h.negativeSpans.push(r.nested(readSpan)); break;
      case 10: r.repeated(wire, sint, h.negativeDeltas); break;
      case 11: r.repeated(wire, double, h.negativeCounts); break;
      case 12: expectWire(wire, LEN, 'positive_span'); h.positiveSpans.push(r.nested(readSpan)); break;
      case 13: r.repeated(wire, sint, h.positiveDeltas); break;
      case 14: r.repeated(wire, double, h.positiveCounts); break;
      case 15: expectWire(wire, LEN, 'created_timestamp'); h.createdTimestamp = r.nested(readTimestamp); break;
      case 16: expectWire(wire, LEN, 'exemplars'); h.exemplars.push(r.nested(readExemplar)); break;
      default: r.skip(wire);
    }
  }
  return h;
}

/** A metric's fields other than its labels (RawMetric.fields), decoded. */
export function decodeMetric(raw: RawMetric): Metric {
  const m: Metric = { labels: raw.labels, unknown: [] };
  for (const run of raw.fields) {
    const r = new Reader(run);
    while (r.pos < r.end) {
      const start = r.pos;
      const tag = r.varint();
      switch (tag) {
        case 2 << 3 | LEN: m.gauge = r.nested(readValue); break;
        case 3 << 3 | LEN: m.counter = r.nested(readCounter); break;
        case 4 << 3 | LEN: m.summary = r.nested(readSummary); break;
        case 5 << 3 | LEN: m.untyped = r.nested(readValue); break;
        case 6 << 3 | VARINT: m.timestampMs = r.int64(); break;
        case 7 << 3 | LEN: m.histogram = r.nested(readHistogram); break;
        default:
          r.skip(tag & 7);
          m.unknown.push(run.subarray(start, r.pos));
      }
    }
  }
  return m;
}

function readRawMetric(r: Reader): RawMetric {
  const m: RawMetric = { labels: [], fields: [] };
  // The fields other than labels, as few views as possible: one per run of them (most often one).
  let runStart = -1;
  while (r.pos < r.end) {
    const start = r.pos;
    const tag = r.varint();
    if (tag === (1 << 3 | LEN)) {
      if (runStart !== -1) m.fields.push(r.buf.subarray(runStart, start));
      runStart = -1;
      m.labels.push(r.nested(readLabelPair));
      continue;
    }
    if (runStart === -1) runStart = start;
    r.skip(tag & 7);
  }
  if (runStart !== -1) m.fields.push(r.buf.subarray(runStart, r.pos));
  return m;
}

/** Every MetricFamily of a delimited body; the metrics' fields other than labels are left as bytes (see RawMetric). */
export function decodeFamilies(body: Uint8Array): Array<MetricFamily<RawMetric>> {
  return scanFamilies(body).map(({ metrics, ...family }) => {
    const raw: RawMetric[] = [];
    for (let i = 0; i < metrics.length; i += 2) raw.push(rawMetricAt(body, metrics[i]!, metrics[i + 1]!));
    // A scanned family has every field, set or not (see scanFamilies); a decoded one only those set.
    const set = Object.fromEntries(Object.entries(family).filter(([, value]) => value !== undefined)) as typeof family;
    return { ...set, metrics: raw };
  });
}

/** A MetricFamily as the merge reads it: its metrics left where they are in the body. */
export interface ScannedFamily {
  name: string;
  help?: string;
  type?: number;
  unit?: string;
  unknown: Uint8Array[];
  /** [start, end) in the body of each Metric message's contents, two numbers per metric. */
  metrics: number[];
}

function scanFamily(family: ScannedFamily, m: Reader): void {
  while (m.pos < m.end) {
    const start = m.pos;
    const tag = m.varint();
    if (tag === (1 << 3 | LEN)) family.name = m.string();
    else if (tag === (2 << 3 | LEN)) family.help = m.string();
    else if (tag === (3 << 3 | VARINT)) family.type = m.int32();
    else if (tag === (4 << 3 | LEN)) {
      const end = m.lengthEnd();
      family.metrics.push(m.pos, end);
      m.pos = end;
    } else if (tag === (5 << 3 | LEN)) family.unit = m.string();
    else {
      m.skip(tag & 7);
      family.unknown.push(m.buf.subarray(start, m.pos));
    }
  }
}

/** Every MetricFamily of a delimited body, its metrics located but not read (see ScannedFamily). */
export function scanFamilies(body: Uint8Array): ScannedFamily[] {
  const families: ScannedFamily[] = [];
  const r = new Reader(body);
  while (r.pos < r.end) {
    const at = r.pos;
    // Every field from the start: fields added later make hidden classes that die with the scrape (last-instances.ts).
    const family: ScannedFamily = { name: '', help: undefined, type: undefined, unit: undefined, metrics: [], unknown: [] };
    try {
      const end = r.lengthEnd();
      const outer = r.end;
      r.end = end;
      scanFamily(family, r);
      r.end = outer;
    } catch (e) {
      if (e instanceof ProtobufError) throw new ProtobufError(`MetricFamily at byte ${at}: ${e.message}`);
      throw e;
    }
    if (family.name === '') throw new ProtobufError(`MetricFamily at byte ${at} has no name`);
    families.push(family);
  }
  return families;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a of buf[start, end), continuing from `h`. */
function fnv(buf: Uint8Array, start: number, end: number, h: number): number {
  for (let p = start; p < end; p++) h = Math.imul(h ^ buf[p]!, FNV_PRIME);
  return h;
}

/** The hash of one label (name and value as UTF-8 bytes): labelsHash sums them, so that order does not matter. */
export function labelHash(name: Uint8Array, value: Uint8Array): number {
  return fnv(value, 0, value.length, Math.imul(fnv(name, 0, name.length, FNV_OFFSET) ^ 0xff, FNV_PRIME)) >>> 0;
}

/**
 * The labels of the Metric message body[start, end), hashed (labelHash, summed: equal label sets
 * hash equal in any order), or NaN when one of them is named as one of `names` (the labels promux
 * adds) or, with `legacyOnly`, has a name outside the legacy set (to be escaped): that metric's
 * labels must be rewritten.
 */
export function metricLabelsHash(body: Uint8Array, start: number, end: number, names: readonly Uint8Array[], legacyOnly: boolean): number {
  const r = new Reader(body, start, end);
  let sum = 0;
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag !== (1 << 3 | LEN)) {
      r.skip(tag & 7);
      continue;
    }
    const pairEnd = r.lengthEnd();
    let nameStart = 0;
    let nameEnd = 0;
    let valueStart = 0;
    let valueEnd = 0;
    while (r.pos < pairEnd) {
      const t = r.varint();
      if (t === (1 << 3 | LEN)) {
        nameEnd = r.lengthEnd();
        nameStart = r.pos;
        r.pos = nameEnd;
      } else if (t === (2 << 3 | LEN)) {
        valueEnd = r.lengthEnd();
        valueStart = r.pos;
        r.pos = valueEnd;
      } else r.skip(t & 7);
    }
    if (legacyOnly && !isLegacyLabelNameAt(body, nameStart, nameEnd)) return NaN;
    for (const name of names) {
      if (name.length !== nameEnd - nameStart) continue;
      let same = true;
      for (let i = 0; same && i < name.length; i++) same = name[i] === body[nameStart + i];
      if (same) return NaN;
    }
    const h = fnv(body, valueStart, valueEnd, Math.imul(fnv(body, nameStart, nameEnd, FNV_OFFSET) ^ 0xff, FNV_PRIME)) >>> 0;
    sum = (sum + h) >>> 0;
  }
  return sum;
}

/** The Metric message body[start, end) as the merge holds it (labels read, the other fields as bytes). */
export function rawMetricAt(body: Uint8Array, start: number, end: number): RawMetric {
  return readRawMetric(new Reader(body, start, end));
}

/** Every MetricFamily of a delimited body, fully decoded. */
export function decodeBody(body: Uint8Array): MetricFamily[] {
  return decodeFamilies(body).map((f) => ({ ...f, metrics: f.metrics.map(decodeMetric) }));
}

const encoder = new TextEncoder();

/** Writes into one growing buffer; a nested message is written in place and its size put before it. */
export class Writer {
  buf: Uint8Array;
  pos = 0;

  /** `capacity`: the bytes expected, to start with a buffer that need not grow. */
  constructor(capacity = 4096) {
    this.buf = new Uint8Array(capacity);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    grown.set(this.buf.subarray(0, this.pos));
    this.buf = grown;
  }

  varint(v: number): void {
    this.ensure(10);
    if (v < 0) {
      let big = BigInt.asUintN(64, BigInt(Math.trunc(v)));
      while (big >= 0x80n) {
        this.buf[this.pos++] = Number(big & 0x7fn) | 0x80;
        big >>= 7n;
      }
      this.buf[this.pos++] = Number(big);
      return;
    }
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  tag(field: number, wire: number): void {
    this.varint(field << 3 | wire);
  }

  double(field: number, v: number | undefined): void {
    if (v === undefined) return;
    this.tag(field, I64);
    this.rawDouble(v);
  }

  rawDouble(v: number): void {
    this.ensure(8);
    F64[0] = v;
    this.buf.set(F64_BYTES, this.pos);
    this.pos += 8;
  }

  uint(field: number, v: number | undefined): void {
    if (v === undefined) return;
    this.tag(field, VARINT);
    this.varint(v);
  }

  sint(field: number, v: number | undefined): void {
    if (v === undefined) return;
    this.tag(field, VARINT);
    this.varint(zigzag(v));
  }

  string(field: number, s: string | undefined): void {
    if (s === undefined) return;
    this.tag(field, LEN);
    const n = s.length;
    let ascii = n < 0x4000;
    for (let i = 0; ascii && i < n; i++) ascii = s.charCodeAt(i) < 0x80;
    if (!ascii) {
      const bytes = encoder.encode(s);
      this.varint(bytes.length);
      this.bytes(bytes);
      return;
    }
    this.varint(n);
    this.ensure(n);
    const buf = this.buf;
    for (let i = 0, p = this.pos; i < n; i++, p++) buf[p] = s.charCodeAt(i);
    this.pos += n;
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** Writes a length-delimited message: `field` 0 writes only the size (a delimited body's framing). */
  message(field: number, write: () => void): void {
    if (field !== 0) this.tag(field, LEN);
    // Most nested messages (labels, values) are under 128 bytes, their size one byte: reserve one,
    // move the message along when its size takes more.
    this.ensure(1);
    const sizeAt = this.pos;
    this.pos += 1;
    write();
    const size = this.pos - sizeAt - 1;
    if (size < 0x80) {
      this.buf[sizeAt] = size;
      return;
    }
    const extra = varintLength(size) - 1;
    this.ensure(extra);
    this.buf.copyWithin(sizeAt + 1 + extra, sizeAt + 1, this.pos);
    const end = this.pos + extra;
    this.pos = sizeAt;
    this.varint(size);
    this.pos = end;
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

function zigzag(v: number): number {
  return v >= 0 ? v * 2 : -v * 2 - 1;
}

function varintLength(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

function writeLabels(w: Writer, field: number, labels: LabelPairs): void {
  for (const [name, value] of labels) {
    w.message(field, () => {
      w.string(1, name);
      w.string(2, value);
    });
  }
}

function writeTimestamp(w: Writer, field: number, t: Timestamp | undefined): void {
  if (t === undefined) return;
  w.message(field, () => {
    if (t.seconds !== 0) w.uint(1, t.seconds);
    if (t.nanos !== 0) w.uint(2, t.nanos);
  });
}

function writeExemplar(w: Writer, field: number, e: Exemplar | undefined): void {
  if (e === undefined) return;
  w.message(field, () => {
    writeLabels(w, 1, e.labels);
    w.double(2, e.value);
    writeTimestamp(w, 3, e.timestamp);
  });
}

function writeSpans(w: Writer, field: number, spans: BucketSpan[]): void {
  for (const s of spans) {
    w.message(field, () => {
      if (s.offset !== 0) w.sint(1, s.offset);
      if (s.length !== 0) w.uint(2, s.length);
    });
  }
}

function writePacked(w: Writer, field: number, values: number[], write: (v: number) => void): void {
  if (values.length === 0) return;
  w.message(field, () => {
    for (const v of values) write(v);
  });
}

function writeHistogram(w: Writer, h: Histogram): void {
  w.uint(1, h.sampleCount);
  w.double(2, h.sampleSum);
  for (const b of h.buckets) {
    w.message(3, () => {
      w.uint(1, b.cumulativeCount);
      w.double(2, b.upperBound);
      writeExemplar(w, 3, b.exemplar);
      w.double(4, b.cumulativeCountFloat);
    });
  }
  w.double(4, h.sampleCountFloat);
  w.sint(5, h.schema);
  w.double(6, h.zeroThreshold);
  w.uint(7, h.zeroCount);
  w.double(8, h.zeroCountFloat);
  writeSpans(w, 9, h.negativeSpans);
  writePacked(w, 10, h.negativeDeltas, (v) => w.varint(zigzag(v)));
  writePacked(w, 11, h.negativeCounts, (v) => w.rawDouble(v));
  writeSpans(w, 12, h.positiveSpans);
  writePacked(w, 13, h.positiveDeltas, (v) => w.varint(zigzag(v)));
  writePacked(w, 14, h.positiveCounts, (v) => w.rawDouble(v));
  writeTimestamp(w, 15, h.createdTimestamp);
  for (const e of h.exemplars) writeExemplar(w, 16, e);
}

/** Where encodeMetricFields writes (its result is copied out): one buffer, not one per metric. */
const scratch = new Writer();

/** A metric's fields other than its labels, as RawMetric.fields holds them (one array: the fields in order). */
export function encodeMetricFields(m: Metric): Uint8Array {
  scratch.pos = 0;
  writeMetricFields(scratch, m);
  return scratch.finish().slice();
}

function writeMetricFields(w: Writer, m: Metric): void {
  if (m.gauge !== undefined) w.message(2, () => w.double(1, m.gauge!.value));
  if (m.counter !== undefined) {
    const c = m.counter;
    w.message(3, () => {
      w.double(1, c.value);
      writeExemplar(w, 2, c.exemplar);
      writeTimestamp(w, 3, c.createdTimestamp);
    });
  }
  if (m.summary !== undefined) {
    const s = m.summary;
    w.message(4, () => {
      w.uint(1, s.sampleCount);
      w.double(2, s.sampleSum);
      for (const q of s.quantiles) {
        w.message(3, () => {
          w.double(1, q.quantile);
          w.double(2, q.value);
        });
      }
      writeTimestamp(w, 4, s.createdTimestamp);
    });
  }
  if (m.untyped !== undefined) w.message(5, () => w.double(1, m.untyped!.value));
  if (m.timestampMs !== undefined) w.uint(6, m.timestampMs);
  if (m.histogram !== undefined) w.message(7, () => writeHistogram(w, m.histogram!));
  for (const u of m.unknown) w.bytes(u);
}

/** A metric as the merge holds it (its fields encoded). */
export function rawMetric(m: Metric): RawMetric {
  return { labels: m.labels, fields: [encodeMetricFields(m)] };
}

/** Appends one delimited MetricFamily to `w`. */
export function writeFamily(w: Writer, f: MetricFamily<RawMetric> | MetricFamily): void {
  w.message(0, () => {
    w.string(1, f.name);
    w.string(2, f.help);
    if (f.type !== undefined) w.uint(3, f.type);
    for (const m of f.metrics) {
      w.message(4, () => {
        writeLabels(w, 1, m.labels);
        if ('fields' in m) for (const field of m.fields) w.bytes(field);
        else writeMetricFields(w, m);
      });
    }
    w.string(5, f.unit);
    for (const u of f.unknown) w.bytes(u);
  });
}

/** A delimited body of these families. */
export function encodeBody(families: ReadonlyArray<MetricFamily<RawMetric> | MetricFamily>): Uint8Array {
  const w = new Writer();
  // A decoded metric's fields are written in place, not encoded into an array of their own first.
  for (const f of families) writeFamily(w, f);
  return w.finish();
}
