// A scanner for one target's body, text 0.0.4 or OpenMetrics 1.0, modelled on Prometheus'
// model/textparse: one pass over the bytes, no regular expression, no object per sample. Each sample
// becomes a fixed-size record of byte offsets into the body (see R_* below), so the writer can copy
// the original bytes (label values, numbers, exemplars) exactly and insert the container label.
// Families, HELP, TYPE and UNIT are the only objects, one per family.

import { isUtf8 } from 'node:buffer';
import { mediaTypeOf } from './content-type.ts';
import { keepLastInstance } from './last-instances.ts';
import { isLegacyMetricName } from './names.ts';
import type { ExpositionFormat } from './types.ts';

/** Metric types as parsed; OpenMetrics `unknown` and a family without TYPE are both `untyped`. */
export type MetricType =
  | 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped' | 'gaugehistogram' | 'stateset' | 'info';

/**
 * Which suffix a sample carries relative to its family name. OpenMetrics families need it to be
 * written as text (a counter `foo` is served as `foo_total`, its `foo_created` apart) and to know
 * which samples may keep exemplars.
 */
export const Part = {
  bare: 0, total: 1, created: 2, bucket: 3, count: 4, sum: 5, gcount: 6, gsum: 7, info: 8,
} as const;

export const SUFFIX_OF_PART = ['', '_total', '_created', '_bucket', '_count', '_sum', '_gcount', '_gsum', '_info'];

/** The suffixes (as parts) a family of each type accepts, per format (text, as expfmt reads it; OpenMetrics). */
const TEXT_PARTS: Record<MetricType, readonly number[]> = {
  counter: [Part.bare], gauge: [Part.bare], untyped: [Part.bare],
  histogram: [Part.bucket, Part.count, Part.sum], summary: [Part.bare, Part.count, Part.sum],
  gaugehistogram: [], stateset: [], info: [],
};
const OPENMETRICS_PARTS: Record<MetricType, readonly number[]> = {
  counter: [Part.total, Part.created], gauge: [Part.bare], untyped: [Part.bare], stateset: [Part.bare],
  histogram: [Part.bucket, Part.count, Part.sum, Part.created], summary: [Part.bare, Part.count, Part.sum, Part.created],
  gaugehistogram: [Part.bucket, Part.gcount, Part.gsum], info: [Part.info],
};

/** The type words of TYPE lines, per format. */
export const TEXT_TYPE_NAMES = ['counter', 'gauge', 'histogram', 'summary', 'untyped'];
export const OPENMETRICS_TYPE_NAMES = ['counter', 'gauge', 'histogram', 'summary', 'unknown', 'gaugehistogram', 'stateset', 'info'];

export interface ParsedFamily {
  /** Unescaped (a quoted name's escapes undone). */
  name: string;
  /** Within Prometheus' legacy character set; otherwise the body quoted it (a UTF-8 name). */
  legacy: boolean;
  /** undefined while only HELP or UNIT named the family; `untyped` once samples came without TYPE. */
  type: MetricType | undefined;
  /** HELP text, unescaped. */
  help: string | undefined;
  unit: string | undefined;
  /** Sample index ranges [start, end) of this family, in body order (more than one when the body split it). */
  runs: number[];
  /** The parts this family's type accepts in the body's format. */
  parts: readonly number[];
}

// Sample record layout: RECORD_SIZE int32 per sample.
export const R_NAME_START = 0;
export const R_NAME_END = 1;
/** After `{` (equal to R_LABELS_END when the sample has no labels). */
export const R_LABELS_START = 2;
/** After the closing quote of the last label value (a trailing comma is left out). */
export const R_LABELS_END = 3;
/** After `}` or after the name: the whitespace before the value. */
export const R_REST = 4;
export const R_VALUE_END = 5;
/** -1 when the sample has no timestamp. */
export const R_TS_START = 6;
export const R_TS_END = 7;
/** Start of an OpenMetrics exemplar (`# {...} v [ts]`), -1 when none; it runs to R_END. */
export const R_EXEMPLAR_START = 8;
export const R_END = 9;
export const R_FLAGS = 10;
export const R_HASH = 11;
export const RECORD_SIZE = 12;

/** The series carries a label promux adds: it is renamed to exported_<label> when written. */
export const F_HAS_TARGET_LABEL = 1;
/** A label value has an escape other than \\ \" \n: rewritten so that strict parsers read it as Prometheus does. */
export const F_ODD_ESCAPE = 2;
export const F_DROPPED = 4;
/**
 * A name is quoted (Prometheus 3's syntax for UTF-8 names: `{"my.metric","a.b"="x"}`), inside the
 * braces or as a label name: R_NAME_START and R_NAME_END hold the name between its quotes, and the
 * labels (R_LABELS_*) may include the quoted metric name, which splitLabels leaves out.
 */
export const F_QUOTED = 8;
/** An OpenMetrics timestamp that text cannot carry (negative, or beyond int64 milliseconds). */
export const F_TIMESTAMP_NOT_TEXT = 16;
export const PART_SHIFT = 8;
export const PART_MASK = 0xf;

export interface ParsedBody {
  format: ExpositionFormat;
  body: Buffer;
  /** The labels promux adds to this body's series (see BodyParser): an existing one is served as exported_<name>. */
  targetLabels: readonly string[];
  /** In first-seen order; a name appears twice only when the body gives it two different TYPEs. */
  families: ParsedFamily[];
  records: Int32Array;
  samples: number;
  /** Samples flagged F_DROPPED so far (the sum of the counts below; the merge adds its own drops). */
  dropped: number;
  /** Samples flagged F_DROPPED as repeats of an earlier series of this body. */
  duplicates: number;
  /** Samples flagged F_DROPPED for a `__name__` label, or an `le` or `quantile` label that is not a number. */
  invalidLabels: number;
  /** Text samples flagged F_DROPPED for a timestamp Prometheus' text parser rejects (signed, beyond int64). */
  invalidTimestamps: number;
  /** Samples flagged F_TIMESTAMP_NOT_TEXT. */
  timestampsNotText: number;
  /** Samples flagged F_QUOTED. */
  quoted: number;
  /** Exemplars kept (R_EXEMPLAR_START set), and exemplars left out as not servable. */
  exemplars: number;
  invalidExemplars: number;
}

export class ExpositionError extends Error {
  override name = 'ExpositionError';
}

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const TAB = 0x09;
const HASH = 0x23;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const EQUALS = 0x3d;
const OPEN = 0x7b;
const CLOSE = 0x7d;
/** The label name reserved for the metric name: never a label of a sample that has a name. */
const NAME_LABEL = Buffer.from('__name__');
/** The label strict parsers read as a number, by family type: `le` of histograms, `quantile` of summaries. */
export const LE_LABEL = Buffer.from('le');
export const QUANTILE_LABEL = Buffer.from('quantile');

const METRIC_START = 1;
const METRIC_CHAR = 2;
const LABEL_START = 4;
const LABEL_CHAR = 8;
const DIGIT = 16;
const CHAR_CLASS = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const ch = String.fromCharCode(c);
  const letter = /[A-Za-z_]/.test(ch);
  const digit = /[0-9]/.test(ch);
  CHAR_CLASS[c] =
    (letter || ch === ':' ? METRIC_START | METRIC_CHAR : 0) | (digit ? METRIC_CHAR | LABEL_CHAR | DIGIT : 0) |
    (letter ? LABEL_START | LABEL_CHAR : 0);
}

/** Text or OpenMetrics, from the Content-Type; without a known one, a body that ends in `# EOF` is OpenMetrics. */
export function detectFormat(contentType: string | undefined, body: Buffer): ExpositionFormat {
  const known = formatOfContentType(contentType);
  if (known !== undefined) return known;
  let end = body.length;
  while (end > 0 && (body[end - 1] === LF || body[end - 1] === CR)) end--;
  return end >= 5 && body.toString('latin1', end - 5, end) === '# EOF' && (end === 5 || body[end - 6] === LF)
    ? 'openmetrics'
    : 'text';
}

/** Text or OpenMetrics from a known Content-Type; undefined when only the body can tell (see detectFormat). */
export function formatOfContentType(contentType: string | undefined): ExpositionFormat | undefined {
  const mediaType = mediaTypeOf(contentType);
  if (mediaType === 'application/openmetrics-text') return 'openmetrics';
  if (mediaType === 'text/plain') return 'text';
  return undefined;
}

/** Parses a whole body or throws ExpositionError naming the line; nothing of a broken body is kept. */
export function parseBody(body: Buffer, format: ExpositionFormat, targetLabels: readonly string[]): ParsedBody {
  return new BodyParser(format, targetLabels).finish(body, body.length);
}

/**
 * Parses one target's body as it arrives: feed() after every received piece, finish() at the end.
 * Only complete lines are scanned before finish(), and no line's scan looks past its line feed, so
 * the result (or error) is the same as a parse of the whole body, however the body was split.
 */
export class BodyParser {
  private readonly scanner: Scanner;
  /** Bytes [0, utf8Checked) were checked to be UTF-8; a multi-byte sequence never holds a line feed. */
  private utf8Checked = 0;
  private utf8Valid = true;
  /** The length of the last feed(). */
  private received = 0;
  /** The first error met; scanning stops there. */
  private error: unknown;
  /** finish() or abandon() ran: the records are no longer the parser's. */
  private done = false;

  /** `targetLabels`: the names of the labels promux adds to every series (the sidecar's container label). */
  constructor(format: ExpositionFormat, targetLabels: readonly string[]) {
    this.scanner = new Scanner(format, targetLabels);
    keepLastInstance(this);
  }

  /** Scans the complete lines (up to the last LF) of buf[0, length) not scanned yet; keeps errors for finish(). */
  feed(buf: Buffer, length: number): void {
    if (this.done || !this.utf8Valid) return;
    // Only the bytes new since the last call are searched for the last line feed: a long line (or a
    // body without any) is searched once, not once per piece.
    const from = this.received;
    this.received = length;
    let end = length;
    while (end > from && buf[end - 1] !== LF) end--;
    if (end > from) this.scanUpTo(buf.subarray(0, end));
  }

  /**
   * The whole body is buf[0, length): scans the rest, runs the end checks and returns the parsed
   * body (whose records mergeTargets hands back), or throws ExpositionError naming the line.
   */
  finish(buf: Buffer, length: number): ParsedBody {
    if (this.done) throw new Error('BodyParser.finish() after finish() or abandon()');
    const body = buf.subarray(0, length);
    const scanner = this.scanner;
    if (this.utf8Valid) this.scanUpTo(body);
    if (this.error === undefined) {
      try {
        scanner.end();
      } catch (e) {
        this.error = e;
      }
    }
    this.done = true;
    const error = this.error;
    if (!this.utf8Valid || error !== undefined) {
      releaseRecords(scanner.records);
      scanner.forgetBody();
      if (!this.utf8Valid) throw new ExpositionError('the body is not valid UTF-8');
      if (error instanceof LineError) throw new ExpositionError(describeLine(body, error.position, error.message));
      throw error;
    }
    const duplicates = flagDuplicates(body, scanner.records, scanner.count, scanner.targetLabels);
    const parsed: ParsedBody = {
      format: scanner.format, body, targetLabels: scanner.targetLabels, families: scanner.families, records: scanner.records, samples: scanner.count,
      dropped: duplicates + scanner.invalidLabels + scanner.invalidTimestamps, duplicates,
      invalidLabels: scanner.invalidLabels, invalidTimestamps: scanner.invalidTimestamps,
      timestampsNotText: scanner.timestampsNotText, quoted: scanner.quoted,
      exemplars: scanner.exemplars, invalidExemplars: scanner.invalidExemplars,
    };
    scanner.forgetBody();
    return parsed;
  }

  /** Gives the records back to the pool when a parse is abandoned (fetch failed mid-body). */
  abandon(): void {
    if (this.done) return;
    this.done = true;
    releaseRecords(this.scanner.records);
    this.scanner.forgetBody();
  }

  /** Checks UTF-8 up to the end of body and, until the first error, scans it. */
  private scanUpTo(body: Buffer): void {
    if (body.length < this.utf8Checked) return;
    if (!isUtf8(body.subarray(this.utf8Checked))) {
      this.utf8Valid = false;
      return;
    }
    this.utf8Checked = body.length;
    if (this.error !== undefined) return;
    try {
      this.scanner.scan(body);
    } catch (e) {
      // Kept for finish(): the UTF-8 check of the rest still decides which error the body gets.
      this.error = e;
    }
  }
}

class LineError extends Error {
  position: number;
  constructor(position: number, message: string) {
    super(message);
    this.position = position;
  }
}

function describeLine(body: Buffer, position: number, message: string): string {
  let line = 1;
  let start = 0;
  for (let i = body.indexOf(LF); i !== -1 && i < position; i = body.indexOf(LF, i + 1)) {
    line++;
    start = i + 1;
  }
  let end = body.indexOf(LF, start);
  if (end === -1) end = body.length;
  const text = body.toString('utf8', start, Math.min(end, start + 120)).replace(/\r$/, '');
  return `line ${line}: ${message}: ${JSON.stringify(text)}${end - start > 120 ? '...' : ''}`;
}

const NO_BYTES = Buffer.alloc(0);
const NO_WORDS = new DataView(new ArrayBuffer(0));
const NO_RECORDS = new Int32Array(0);

class Scanner {
  /** The body so far, ending after a line feed (or the whole body, at the end): lines are scanned up to its end. */
  buf: Buffer = NO_BYTES;
  /** buf, read four bytes at a time. */
  words: DataView<ArrayBufferLike> = NO_WORDS;
  len = 0;
  readonly format: ExpositionFormat;
  readonly openMetrics: boolean;
  readonly targetLabels: readonly string[];
  /** targetLabels as bytes, for the scan. */
  readonly targetLabelBytes: Buffer[];
  readonly families: ParsedFamily[] = [];
  readonly byName = new Map<string, ParsedFamily>();
  records: Int32Array;
  count = 0;
  pos = 0;
  /** The family of the last sample or metadata line: the next sample most likely belongs to it too. */
  current: ParsedFamily | undefined;
  /** The family whose run of samples is open, and where that run started. */
  runFamily: ParsedFamily | undefined;
  runStart = 0;
  /** Label name offsets of the sample being scanned, to find a repeated name. */
  labelNames = new Int32Array(64);
  sawEof = false;
  /** The previous sample's name and part, unless a metadata line came since. */
  lastNameStart = 0;
  lastNameEnd = -1;
  lastPart = 0;
  lastNameHash = 0;
  /** The label strict parsers read as a number in the current sample's family (le, quantile), if any. */
  keyLabel: Buffer | undefined;
  keyLength = -1;
  /** What bracedHead() read of its sample. */
  headNameStart = 0;
  headNameEnd = 0;
  headLabelsStart = 0;
  headLabelsEnd = 0;
  headRest = 0;
  invalidLabels = 0;
  invalidTimestamps = 0;
  timestampsNotText = 0;
  quoted = 0;
  exemplars = 0;
  invalidExemplars = 0;

  constructor(format: ExpositionFormat, targetLabels: readonly string[]) {
    this.format = format;
    this.openMetrics = format === 'openmetrics';
    this.targetLabels = targetLabels;
    this.targetLabelBytes = targetLabels.map((name) => Buffer.from(name, 'latin1'));
    this.records = takeRecords(64 * RECORD_SIZE);
    keepLastInstance(this);
  }

  /**
   * Lets go of the body and the records once the parse is over: the scanner stays referenced as its
   * class's last instance (keepLastInstance), and would otherwise hold them until the next parse.
   */
  forgetBody(): void {
    this.buf = NO_BYTES;
    this.words = NO_WORDS;
    this.records = NO_RECORDS;
  }

  /** Scans the lines from pos to the end of buf, which holds the bytes scanned before at the same offsets. */
  scan(buf: Buffer): void {
    this.buf = buf;
    this.words = new DataView(buf.buffer, buf.byteOffset, buf.length);
    const len = this.len = buf.length;
    while (this.pos < len) {
      if (this.sawEof) throw new LineError(this.pos, 'data after # EOF');
      let c = buf[this.pos]!;
      if (!this.openMetrics) {
        while (c === SPACE || c === TAB) c = buf[++this.pos] ?? LF;
      }
      if (c === LF) {
        this.pos++;
      } else if (c === CR && buf[this.pos + 1] === LF) {
        this.pos += 2;
      } else if (c === HASH) {
        this.comment();
      } else {
        this.sample();
      }
    }
  }

  /** The checks at the end of the whole body. */
  end(): void {
    this.closeRun();
    if (this.openMetrics && !this.sawEof) throw new LineError(this.len, 'OpenMetrics body does not end with # EOF');
  }

  lineEnd(from: number): number {
    let end = this.buf.indexOf(LF, from);
    if (end === -1) end = this.len;
    return end;
  }

  /** The end of the line's content: before LF, a CR, and (text format) trailing blanks. */
  trimmedEnd(end: number): number {
    const buf = this.buf;
    if (end > this.pos && buf[end - 1] === CR) end--;
    if (!this.openMetrics) while (end > this.pos && (buf[end - 1] === SPACE || buf[end - 1] === TAB)) end--;
    return end;
  }

  comment(): void {
    const buf = this.buf;
    const lineEnd = this.lineEnd(this.pos);
    const end = this.trimmedEnd(lineEnd);
    const start = this.pos;
    let p = start + 1;
    while (p < end && (buf[p] === SPACE || buf[p] === TAB)) p++;
    const keywordStart = p;
    while (p < end && buf[p] !== SPACE && buf[p] !== TAB) p++;
    this.pos = lineEnd + 1;
    this.lastNameEnd = -1;
    if (this.openMetrics && isWord(buf, keywordStart, p, 'EOF') && p === end && keywordStart === start + 2) {
      this.sawEof = true;
      return;
    }
    // Most comments are HELP or TYPE lines: their keyword is told from the bytes, without a string.
    const keyword = isWord(buf, keywordStart, p, 'HELP') ? 'HELP' : isWord(buf, keywordStart, p, 'TYPE') ? 'TYPE'
      : this.openMetrics && isWord(buf, keywordStart, p, 'UNIT') ? 'UNIT' : undefined;
    if (keyword === undefined) return; // a plain comment
    while (p < end && (buf[p] === SPACE || buf[p] === TAB)) p++;
    const nameStart = p;
    let name: string;
    let legacy = true;
    if (buf[p] === QUOTE) {
      p = this.quotedEnd(p, end, start);
      name = decodeQuoted(buf, nameStart, p);
      if (name === '') throw new LineError(start, `${keyword} without a valid metric name`);
      legacy = isLegacyMetricName(name);
    } else {
      if (p >= end || (CHAR_CLASS[buf[p]!]! & METRIC_START) === 0) throw new LineError(start, `${keyword} without a valid metric name`);
      while (p < end && (CHAR_CLASS[buf[p]!]! & METRIC_CHAR) !== 0) p++;
      // A TYPE line after its HELP line names the current family again: no string is made for the name.
      // (The current family is always the one byName has for its name.)
      const current = this.current;
      name = current !== undefined && isWord(buf, nameStart, p, current.name) ? current.name : buf.toString('latin1', nameStart, p);
    }
    if (p < end && buf[p] !== SPACE && buf[p] !== TAB) throw new LineError(start, `invalid character in metric name`);
    if (p < end) p++;
    if (!this.openMetrics) while (p < end && (buf[p] === SPACE || buf[p] === TAB)) p++;
    // The rest of the line becomes a string only when it is kept.
    if (keyword === 'HELP') {
      const family = this.byName.get(name) ?? this.newFamily(name, undefined, legacy);
      family.help ??= unescapeHelp(buf.toString('utf8', p, end), this.openMetrics);
      this.current = family;
    } else if (keyword === 'UNIT') {
      const family = this.byName.get(name) ?? this.newFamily(name, undefined, legacy);
      family.unit ??= buf.toString('utf8', p, end);
      this.current = family;
    } else {
      this.typeLine(start, name, this.typeName(p, end), legacy);
    }
  }

  /** The TYPE line's type word at [start, end), trimmed; a known one is told from the bytes, without a new string. */
  typeName(start: number, end: number): string {
    const buf = this.buf;
    const names = this.openMetrics ? OPENMETRICS_TYPE_NAMES : TEXT_TYPE_NAMES;
    for (let i = 0; i < names.length; i++) if (isWord(buf, start, end, names[i]!)) return names[i]!;
    return buf.toString('utf8', start, end).trim();
  }

  typeLine(start: number, name: string, typeName: string, legacy: boolean): void {
    const known = this.openMetrics ? OPENMETRICS_TYPE_NAMES : TEXT_TYPE_NAMES;
    if (!known.includes(typeName)) throw new LineError(start, `unknown metric type "${typeName}"`);
    const type = (typeName === 'unknown' ? 'untyped' : typeName) as MetricType;
    let family = this.byName.get(name);
    if (family === undefined) {
      family = this.newFamily(name, type, legacy);
    } else if (family.type === undefined) {
      family.type = type;
      family.parts = this.partsOf(type);
    } else if (family.type !== type) {
      // A second, different TYPE: a new family of the same name, which the merge drops as a type conflict.
      family = this.newFamily(name, type, legacy);
    }
    this.current = family;
  }

  partsOf(type: MetricType | undefined): readonly number[] {
    if (type === undefined) return [Part.bare];
    return (this.openMetrics ? OPENMETRICS_PARTS : TEXT_PARTS)[type];
  }

  newFamily(name: string, type: MetricType | undefined, legacy: boolean): ParsedFamily {
    const family: ParsedFamily = {
      name, legacy, type, help: undefined, unit: undefined, runs: [], parts: this.partsOf(type),
    };
    this.families.push(family);
    this.byName.set(name, family);
    return family;
  }

  /** The part of family's name the sample name [start, end) is, or -1 when it is not one of the family's. */
  partIn(family: ParsedFamily, start: number, end: number): number {
    // Names are ASCII: a character code is the byte, and no string is made of the sample name.
    const key = family.name;
    const keyLength = key.length;
    const nameLength = end - start;
    if (nameLength < keyLength) return -1;
    const buf = this.buf;
    for (let i = 0; i < keyLength; i++) if (buf[start + i] !== key.charCodeAt(i)) return -1;
    const parts = family.parts;
    for (let k = 0; k < parts.length; k++) {
      const part = parts[k]!;
      const suffix = SUFFIX_OF_PART[part]!;
      if (suffix.length !== nameLength - keyLength) continue;
      let same = true;
      for (let i = 0; i < suffix.length; i++) {
        if (buf[start + keyLength + i] !== suffix.charCodeAt(i)) {
          same = false;
          break;
        }
      }
      if (same) return part;
    }
    return -1;
  }

  /** Finds (or makes) the family of the sample named [start, end); returns its part. */
  findFamily(start: number, end: number): number {
    const current = this.current;
    if (current !== undefined) {
      const part = this.partIn(current, start, end);
      if (part >= 0) return this.settle(current, part);
    }
    return this.familyOf(this.buf.toString('latin1', start, end), true, start);
  }

  /** Finds (or makes) the family of the sample named `name`; returns its part. */
  familyOf(name: string, legacy: boolean, lineStart: number): number {
    // As expfmt looks a name up: the family of that very name first, then one it is a suffix of.
    const same = this.byName.get(name);
    if (same !== undefined && same.parts.includes(Part.bare)) return this.settle(same, Part.bare);
    for (let part = 1; part < SUFFIX_OF_PART.length; part++) {
      const suffix = SUFFIX_OF_PART[part]!;
      if (!name.endsWith(suffix)) continue;
      const family = this.byName.get(name.slice(0, name.length - suffix.length));
      if (family !== undefined && family.parts.includes(part)) return this.settle(family, part);
    }
    if (same !== undefined) throw new LineError(lineStart, `sample ${name} does not belong to the ${same.type} family ${name}`);
    return this.settle(this.newFamily(name, 'untyped', legacy), Part.bare);
  }

  settle(family: ParsedFamily, part: number): number {
    if (family.type === undefined) family.type = 'untyped';
    const type = family.type;
    this.keyLabel = type === 'histogram' || type === 'gaugehistogram' ? LE_LABEL : type === 'summary' ? QUANTILE_LABEL : undefined;
    this.keyLength = this.keyLabel === undefined ? -1 : this.keyLabel.length;
    this.current = family;
    if (this.runFamily !== family) {
      this.closeRun();
      this.runFamily = family;
      this.runStart = this.count;
    }
    return part;
  }

  closeRun(): void {
    const family = this.runFamily;
    if (family !== undefined && this.count > this.runStart) {
      // Most families come in one run: an array of just its two numbers, not the 19 slots a first push makes.
      if (family.runs.length === 0) family.runs = [this.runStart, this.count];
      else family.runs.push(this.runStart, this.count);
    }
    this.runFamily = undefined;
  }

  sample(): void {
    const buf = this.buf;
    const om = this.openMetrics;
    const lineStart = this.pos;
    // Scanned up to the buffer's end: a line feed ends every field.
    const end = this.len;
    let p = lineStart;
    let nameStart = lineStart;
    let nameEnd = -1;
    let part: number;
    let hash: number;
    let labelsStart: number;
    let labelsEnd: number;
    let flags: number;
    if (buf[p] === OPEN) {
      // Prometheus 3's `{"name", labels}`: a rare, slower path.
      flags = this.bracedHead(lineStart);
      nameStart = this.headNameStart;
      nameEnd = this.headNameEnd;
      labelsStart = this.headLabelsStart;
      labelsEnd = this.headLabelsEnd;
      p = this.headRest;
      part = (flags >> PART_SHIFT) & PART_MASK;
      hash = 0; // F_QUOTED: the hash is computed again as served (flagDuplicates)
    } else {
      if ((CHAR_CLASS[buf[p]!]! & METRIC_START) === 0) throw new LineError(lineStart, 'expected a metric name');
      // Most samples repeat the previous sample's name: compared first, it needs neither a scan by
      // character class nor a family lookup nor a hash.
      const lastStart = this.lastNameStart;
      const lastLength = this.lastNameEnd - lastStart;
      if (lastLength > 0 && lineStart + lastLength < end && (CHAR_CLASS[buf[lineStart + lastLength]!]! & METRIC_CHAR) === 0) {
        // Four bytes at a time (a DataView read is one load): byte by byte, this compare took a quarter of the scan.
        const words = this.words;
        let i = 0;
        while (i + 4 <= lastLength && words.getInt32(lineStart + i, true) === words.getInt32(lastStart + i, true)) i += 4;
        while (i < lastLength && buf[lineStart + i] === buf[lastStart + i]) i++;
        if (i === lastLength) nameEnd = lineStart + lastLength;
      }
      if (nameEnd !== -1) {
        p = nameEnd;
        part = this.lastPart;
        hash = this.lastNameHash;
      } else {
        hash = Math.imul(FNV_OFFSET ^ buf[p]!, FNV_PRIME);
        p++;
        for (;;) {
          const c = buf[p]!;
          if (p >= end || (CHAR_CLASS[c]! & METRIC_CHAR) === 0) break;
          hash = Math.imul(hash ^ c, FNV_PRIME);
          p++;
        }
        nameEnd = p;
        this.lastNameHash = hash;
        part = this.lastPart = this.findFamily(lineStart, nameEnd);
      }
      this.lastNameStart = lineStart;
      this.lastNameEnd = nameEnd;
      labelsStart = p;
      labelsEnd = p;
      flags = part << PART_SHIFT;
      let brace = p;
      if (!om) while (brace < end && (buf[brace] === SPACE || buf[brace] === TAB)) brace++;
      if (brace < end && buf[brace] === OPEN) {
        p = brace + 1;
        labelsStart = labelsEnd = p;
        let labels = 0;
        const targetLabels = this.targetLabelBytes;
        // The first name checked inline (the sidecar's only one, the container label), the others after.
        const targetLabel = targetLabels[0]!;
        const moreTargetLabels = targetLabels.length > 1;
        const keyLabel = this.keyLabel;
        const keyLength = this.keyLength;
        for (;;) {
          if (!om) while (p < end && (buf[p] === SPACE || buf[p] === TAB)) p++;
          if (p < end && buf[p] === CLOSE && (labels > 0 ? !om : true)) break;
          const labelStart = p;
          let labelHash: number;
          if (p < end && (CHAR_CLASS[buf[p]!]! & LABEL_START) !== 0) {
            labelHash = Math.imul(FNV_OFFSET ^ buf[p]!, FNV_PRIME);
            p++;
            for (;;) {
              const c = buf[p]!;
              if (p >= end || (CHAR_CLASS[c]! & LABEL_CHAR) === 0) break;
              labelHash = Math.imul(labelHash ^ c, FNV_PRIME);
              p++;
            }
          } else if (buf[p] === QUOTE) {
            // A quoted (UTF-8) label name; its checks below are made on it unquoted (checkQuotedLabels).
            p = this.quotedEnd(p, end, lineStart);
            labelHash = 0;
            flags |= F_QUOTED;
          } else {
            throw new LineError(lineStart, 'expected a label name');
          }
          const labelEnd = p;
          if (!om) while (p < end && (buf[p] === SPACE || buf[p] === TAB)) p++;
          if (buf[p] !== EQUALS) throw new LineError(lineStart, 'expected "=" after the label name');
          p++;
          if (!om) while (p < end && (buf[p] === SPACE || buf[p] === TAB)) p++;
          if (buf[p] !== QUOTE) throw new LineError(lineStart, 'expected a quoted label value');
          p++;
          const valueStart = p;
          for (;;) {
            if (p >= end) throw new LineError(lineStart, 'unterminated label value');
            const c = buf[p]!;
            if (c === QUOTE) break;
            if (c === LF) throw new LineError(lineStart, 'unterminated label value');
            labelHash = Math.imul(labelHash ^ c, FNV_PRIME);
            if (c === BACKSLASH) {
              const next = buf[p + 1];
              if (next === LF || next === undefined) throw new LineError(lineStart, 'unterminated label value');
              if (next !== BACKSLASH && next !== QUOTE && next !== 0x6e) flags |= F_ODD_ESCAPE;
              labelHash = Math.imul(labelHash ^ next, FNV_PRIME);
              p += 2;
            } else {
              p++;
            }
          }
          const valueEnd = p;
          p++;
          labelsEnd = p;
          // A sum of per-label hashes does not depend on label order, as series identity does not.
          hash = (hash + mix(labelHash)) | 0;
          const nameLength = labelEnd - labelStart;
          if ((nameLength === targetLabel.length && buf[labelStart] === targetLabel[0] && sameBytes(buf, labelStart, targetLabel, 0, nameLength)) ||
            (moreTargetLabels && isTargetLabel(buf, labelStart, nameLength, targetLabels))) {
            flags |= F_HAS_TARGET_LABEL;
          } else if (nameLength === keyLength && buf[labelStart] === keyLabel![0] && sameBytes(buf, labelStart, keyLabel!, 0, nameLength)) {
            if (!isLabelNumber(buf, valueStart, valueEnd)) flags |= F_DROPPED;
          } else if (nameLength === NAME_LABEL.length && buf[labelStart] === 0x5f && buf[labelStart + 1] === 0x5f &&
            sameBytes(buf, labelStart, NAME_LABEL, 0, nameLength)) {
            flags |= F_DROPPED;
          }
          this.checkRepeatedLabel(labels, labelStart, labelEnd, lineStart);
          labels++;
          if (!om) while (p < end && (buf[p] === SPACE || buf[p] === TAB)) p++;
          if (p < end && buf[p] === COMMA) {
            p++;
            continue;
          }
          if (p < end && buf[p] === CLOSE) break;
          throw new LineError(lineStart, 'expected "," or "}" after a label value');
        }
        p++;
        if ((flags & (F_QUOTED | F_DROPPED)) !== 0) flags = this.labelsChecked(labelsStart, labelsEnd, flags, lineStart);
      }
    }
    const rest = p;
    // The rest of the line: a value, then maybe a timestamp and (OpenMetrics) an exemplar, each
    // scanned to its end without first looking for the line's end. Text takes a value right after
    // `}` (`a{b="c"}1`), as Prometheus and expfmt do.
    const len = this.len;
    if (om ? buf[p] !== SPACE : buf[p] !== SPACE && buf[p] !== TAB && buf[p - 1] !== CLOSE) throw new LineError(lineStart, 'expected a value');
    p = this.skipBlanks(p);
    const valueStart = p;
    while (p < len && !isFieldEnd(buf[p]!)) p++;
    const valueEnd = p;
    if (!isFloat(buf, valueStart, valueEnd)) throw new LineError(lineStart, 'invalid value');
    let tsStart = -1;
    let tsEnd = -1;
    let exemplarStart = -1;
    let contentEnd = valueEnd;
    if (buf[p] === SPACE || (!om && buf[p] === TAB)) {
      p = this.skipBlanks(p);
      if (om && buf[p] === HASH) {
        exemplarStart = p;
      } else if (this.nextLine(p) === -1) {
        tsStart = p;
        while (p < len && !isFieldEnd(buf[p]!)) p++;
        tsEnd = contentEnd = p;
        flags = this.timestamp(tsStart, tsEnd, flags, lineStart);
        if (buf[p] === SPACE || (!om && buf[p] === TAB)) {
          p = this.skipBlanks(p);
          if (om && buf[p] === HASH) exemplarStart = p;
          else if (this.nextLine(p) === -1) throw new LineError(lineStart, 'unexpected text after the timestamp');
        }
      }
    }
    if (exemplarStart >= 0) {
      let lineEnd = buf.indexOf(LF, p);
      if (lineEnd === -1) lineEnd = len;
      p = contentEnd = lineEnd > p && buf[lineEnd - 1] === CR ? lineEnd - 1 : lineEnd;
      if (this.exemplar(exemplarStart, contentEnd, lineStart)) {
        this.exemplars++;
      } else {
        this.invalidExemplars++;
        exemplarStart = -1;
        contentEnd = tsEnd >= 0 ? tsEnd : valueEnd;
      }
    }
    const next = this.nextLine(p);
    if (next === -1) throw new LineError(lineStart, om && p > valueEnd ? 'unexpected space' : 'unexpected character after the value');
    const count = this.count;
    let records = this.records;
    if ((count + 1) * RECORD_SIZE > records.length) {
      const grown = takeRecords(records.length * 2);
      grown.set(records);
      // Not back to the pool: a parse that outgrows an array would otherwise leave it there, unused,
      // on every later scrape (the pool keeps what each merge returns).
      this.records = records = grown;
    }
    const r = count * RECORD_SIZE;
    records[r + R_NAME_START] = nameStart;
    records[r + R_NAME_END] = nameEnd;
    records[r + R_LABELS_START] = labelsStart;
    records[r + R_LABELS_END] = labelsEnd;
    records[r + R_REST] = rest;
    records[r + R_VALUE_END] = valueEnd;
    records[r + R_TS_START] = tsStart;
    records[r + R_TS_END] = tsEnd;
    records[r + R_EXEMPLAR_START] = exemplarStart;
    records[r + R_END] = contentEnd;
    records[r + R_FLAGS] = flags;
    records[r + R_HASH] = hash;
    this.count = count + 1;
    this.pos = next;
  }

  /**
   * Checks the timestamp at [start, end) (rare: most samples have none); returns the sample's flags,
   * with F_DROPPED for a text timestamp Prometheus' parser rejects (a sign; beyond int64, which it
   * cannot read) and F_TIMESTAMP_NOT_TEXT for an OpenMetrics one that text could not carry.
   */
  timestamp(start: number, end: number, flags: number, lineStart: number): number {
    const buf = this.buf;
    if (this.openMetrics) {
      if (!isTimestampSeconds(buf, start, end)) throw new LineError(lineStart, 'invalid timestamp');
      if (!fitsTextTimestamp(buf, start, end)) {
        this.timestampsNotText++;
        return flags | F_TIMESTAMP_NOT_TEXT;
      }
      return flags;
    }
    if (!isInteger(buf, start, end)) throw new LineError(lineStart, 'expected an integer timestamp in milliseconds');
    if (isTextTimestamp(buf, start, end) || (flags & F_DROPPED) !== 0) return flags;
    this.invalidTimestamps++;
    return flags | F_DROPPED;
  }

  /**
   * The `{...}` of a sample whose name is quoted inside the braces (`{"my.metric",a="b"}`): sets the
   * head* fields and returns the sample's flags. Checks what sample() checks of its labels.
   */
  bracedHead(lineStart: number): number {
    const buf = this.buf;
    const om = this.openMetrics;
    const end = this.len;
    let p = lineStart + 1;
    let nameStart = -1;
    let nameEnd = -1;
    let labelsEnd = p;
    let items = 0;
    for (;;) {
      if (!om) while (p < end && (buf[p] === SPACE || buf[p] === TAB)) p++;
      if (p < end && buf[p] === CLOSE && (items > 0 ? !om : true)) break;
      const itemStart = p;
      if (buf[p] === QUOTE) {
        p = this.quotedEnd(p, end, lineStart);
      } else {
        if (p >= end || (CHAR_CLASS[buf[p]!]! & LABEL_START) === 0) throw new LineError(lineStart, 'expected a label name');
        while (p < end && (CHAR_CLASS[buf[p]!]! & LABEL_CHAR) !== 0) p++;
      }
      const itemEnd = p;
      if (!om) while (p < end && (buf[p] === SPACE || buf[p] === TAB)) p++;
      if (buf[itemStart] === QUOTE && (buf[p] === COMMA || buf[p] === CLOSE)) {
        if (nameStart !== -1) throw new LineError(lineStart, 'two metric names in the braces');
        nameStart = itemStart + 1;
        nameEnd = itemEnd - 1;
        labelsEnd = itemEnd;
      } else {
        if (buf[p] !== EQUALS) throw new LineError(lineStart, 'expected "=" after the label name');
        p++;
        if (!om) while (p < end && (buf[p] === SPACE || buf[p] === TAB)) p++;
        if (buf[p] !== QUOTE) throw new LineError(lineStart, 'expected a quoted label value');
        p = labelsEnd = this.quotedEnd(p, end, lineStart);
      }
      items++;
      if (!om) while (p < end && (buf[p] === SPACE || buf[p] === TAB)) p++;
      if (p < end && buf[p] === COMMA) {
        p++;
        continue;
      }
      if (p < end && buf[p] === CLOSE) break;
      throw new LineError(lineStart, 'expected "," or "}" after a label value');
    }
    if (nameStart === -1) throw new LineError(lineStart, 'no metric name');
    const name = decodeQuoted(buf, nameStart - 1, nameEnd + 1);
    if (name === '') throw new LineError(lineStart, 'an empty metric name');
    this.lastNameEnd = -1;
    const part = this.familyOf(name, isLegacyMetricName(name), lineStart);
    this.headNameStart = nameStart;
    this.headNameEnd = nameEnd;
    this.headLabelsStart = lineStart + 1;
    this.headLabelsEnd = labelsEnd;
    this.headRest = p + 1;
    const flags = this.checkQuotedLabels(lineStart + 1, labelsEnd, (part << PART_SHIFT) | F_QUOTED, lineStart);
    if ((flags & F_DROPPED) !== 0) this.invalidLabels++;
    this.quoted++;
    return flags;
  }

  /** Counts a sample whose labels quote a name or were found invalid; returns its flags, checked anew when quoted. */
  labelsChecked(labelsStart: number, labelsEnd: number, flags: number, lineStart: number): number {
    if ((flags & F_QUOTED) !== 0) {
      flags = this.checkQuotedLabels(labelsStart, labelsEnd, flags, lineStart);
      this.quoted++;
    }
    if ((flags & F_DROPPED) !== 0) this.invalidLabels++;
    return flags;
  }

  /**
   * The checks of sample() on the labels of a sample with quoted names, made on the names unquoted:
   * a repeated name is an error; the container label, `__name__` and the family's `le` or `quantile`
   * set flags; odd escapes in values set F_ODD_ESCAPE.
   */
  checkQuotedLabels(start: number, end: number, flags: number, lineStart: number): number {
    const buf = this.buf;
    const labels = splitLabels(buf, start, end);
    const names = new Set<string>();
    const key = this.keyLabel?.toString('latin1');
    for (const [name, value] of labels) {
      if (names.has(name)) throw new LineError(lineStart, `label ${name} appears twice`);
      names.add(name);
      if (name === '') throw new LineError(lineStart, 'an empty label name');
      if (this.targetLabels.includes(name)) flags |= F_HAS_TARGET_LABEL;
      if (name === '__name__') flags |= F_DROPPED;
      if (name === key && !isFloat(Buffer.from(value), 0, Buffer.byteLength(value))) flags |= F_DROPPED;
      if (hasOddEscape(value)) flags |= F_ODD_ESCAPE;
    }
    return flags;
  }

  /** From the opening quote at p, the position after the closing one (a backslash escapes the next byte). */
  quotedEnd(p: number, end: number, lineStart: number): number {
    const buf = this.buf;
    p++;
    for (;;) {
      if (p >= end || buf[p] === LF) throw new LineError(lineStart, 'unterminated quoted name');
      const c = buf[p]!;
      if (c === QUOTE) return p + 1;
      if (c === BACKSLASH) {
        if (p + 1 >= end || buf[p + 1] === LF) throw new LineError(lineStart, 'unterminated quoted name');
        p += 2;
      } else {
        p++;
      }
    }
  }

  /** Past the blanks at p (OpenMetrics: the one space, which must be followed by a field). */
  skipBlanks(p: number): number {
    const buf = this.buf;
    if (this.openMetrics) {
      if (buf[p + 1] === SPACE || this.nextLine(p + 1) !== -1) throw new LineError(this.pos, 'unexpected space');
      return p + 1;
    }
    while (buf[p] === SPACE || buf[p] === TAB) p++;
    return p;
  }

  /** The start of the next line when p is at the end of one (LF, CR LF or the body's end), else -1. */
  nextLine(p: number): number {
    const c = this.buf[p];
    if (c === LF) return p + 1;
    if (p >= this.len) return this.len;
    if (c === CR && p + 1 === this.len) return this.len;
    if (c === CR && this.buf[p + 1] === LF) return p + 2;
    return -1;
  }

  /** Skips the blanks between two fields (OpenMetrics: exactly one space); returns the next field's start. */
  separator(p: number, end: number, lineStart: number, missing: string): number {
    const buf = this.buf;
    if (this.openMetrics) {
      if (buf[p] !== SPACE || p + 1 >= end || buf[p + 1] === SPACE) throw new LineError(lineStart, missing);
      return p + 1;
    }
    if (buf[p] !== SPACE && buf[p] !== TAB) throw new LineError(lineStart, missing);
    while (p < end && (buf[p] === SPACE || buf[p] === TAB)) p++;
    if (p >= end) throw new LineError(lineStart, missing);
    return p;
  }

  checkRepeatedLabel(index: number, start: number, end: number, lineStart: number): void {
    const buf = this.buf;
    let names = this.labelNames;
    if (index * 2 + 2 > names.length) {
      const grown = new Int32Array(names.length * 2);
      grown.set(names);
      this.labelNames = names = grown;
    }
    const length = end - start;
    for (let i = 0; i < index; i++) {
      const otherStart = names[2 * i]!;
      const otherEnd = names[2 * i + 1]!;
      if (otherEnd - otherStart === length && buf[otherStart] === buf[start] && sameBytes(buf, otherStart, buf, start, length)) {
        throw new LineError(lineStart, `label ${buf.toString('latin1', start, end)} appears twice`);
      }
    }
    names[2 * index] = start;
    names[2 * index + 1] = end;
  }

  /**
   * Checks `# {labels} value [timestamp]` (OpenMetrics only) from p to end. False for an exemplar that
   * is well formed but not servable: an escape other than \\ \" \n, labels over the 128 characters
   * OpenMetrics allows (Prometheus stores no exemplar then), or a quoted (UTF-8) label name.
   */
  exemplar(start: number, end: number, lineStart: number): boolean {
    const buf = this.buf;
    let p = start;
    let servable = true;
    let labelBytes = 0;
    if (buf[p] !== HASH || buf[p + 1] !== SPACE || buf[p + 2] !== OPEN) throw new LineError(lineStart, 'invalid exemplar');
    p += 3;
    const names: string[] = [];
    while (buf[p] !== CLOSE) {
      const nameStart = p;
      let name: string;
      if (buf[p] === QUOTE) {
        p = this.quotedEnd(p, end, lineStart);
        name = decodeQuoted(buf, nameStart, p);
        servable = false;
      } else {
        if (p >= end || (CHAR_CLASS[buf[p]!]! & LABEL_START) === 0) throw new LineError(lineStart, 'invalid exemplar label');
        while (p < end && (CHAR_CLASS[buf[p]!]! & LABEL_CHAR) !== 0) p++;
        name = buf.toString('latin1', nameStart, p);
      }
      if (names.includes(name)) throw new LineError(lineStart, `exemplar label ${name} appears twice`);
      names.push(name);
      if (buf[p] !== EQUALS || buf[p + 1] !== QUOTE) throw new LineError(lineStart, 'invalid exemplar label');
      p += 2;
      const valueStart = p;
      while (p < end && buf[p] !== QUOTE) {
        if (buf[p] === BACKSLASH && buf[p + 1] !== BACKSLASH && buf[p + 1] !== QUOTE && buf[p + 1] !== 0x6e) servable = false;
        p += buf[p] === BACKSLASH ? 2 : 1;
      }
      if (p >= end) throw new LineError(lineStart, 'unterminated exemplar label value');
      labelBytes += name.length + p - valueStart;
      p++;
      if (buf[p] === COMMA && buf[p + 1] !== CLOSE) p++;
      else if (buf[p] !== CLOSE) throw new LineError(lineStart, 'invalid exemplar labels');
    }
    p++;
    p = this.separator(p, end, lineStart, 'expected an exemplar value');
    const valueStart = p;
    while (p < end && buf[p] !== SPACE) p++;
    if (!isFloat(buf, valueStart, p)) throw new LineError(lineStart, 'invalid exemplar value');
    if (p < end) {
      p = this.separator(p, end, lineStart, 'expected an exemplar timestamp');
      if (!isTimestampSeconds(buf, p, end)) throw new LineError(lineStart, 'invalid exemplar timestamp');
    }
    // Escaped bytes and multi-byte characters count once in the limit: only a long label set is decoded.
    if (labelBytes > 128) {
      const labels = splitLabels(buf, start + 3, buf.lastIndexOf(CLOSE, end));
      if (labels.reduce((n, [name, value]) => n + [...name].length + [...unescapeLabelValue(value)].length, 0) > 128) servable = false;
    }
    return servable;
  }
}

/** Decodes HELP text as Prometheus reads it: \\ and \n (and \" in OpenMetrics); any other backslash is literal. */
function unescapeHelp(raw: string, openMetrics: boolean): string {
  if (!raw.includes('\\')) return raw;
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    const next = raw[i + 1];
    if (c === '\\' && next === '\\') {
      out += '\\';
      i++;
    } else if (c === '\\' && next === 'n') {
      out += '\n';
      i++;
    } else if (c === '\\' && next === '"' && openMetrics) {
      out += '"';
      i++;
    } else {
      out += c;
    }
  }
  return out;
}

export const FNV_OFFSET = 0x811c9dc5;
export const FNV_PRIME = 0x01000193;

/** \\ \" \n undone; any other backslash is kept, as Prometheus reads it. */
export function unescapeLabelValue(raw: string): string {
  return raw.replace(/\\(.)/gs, (escape, c: string) => (c === 'n' ? '\n' : c === '\\' || c === '"' ? c : escape));
}

/** buf[start, end) is the ASCII word. */
function isWord(buf: Buffer, start: number, end: number, word: string): boolean {
  if (end - start !== word.length) return false;
  for (let i = 0; i < word.length; i++) if (buf[start + i] !== word.charCodeAt(i)) return false;
  return true;
}

/**
 * a[aStart, aStart + length) equals b[bStart, bStart + length). For the few bytes of a label name a
 * JavaScript loop is cheaper than buf.compare(), a call into C++.
 */
export function sameBytes(a: Buffer, aStart: number, b: Buffer, bStart: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (a[aStart + i] !== b[bStart + i]) return false;
  return true;
}

export function hashBytes(buf: Buffer, start: number, end: number, seed: number): number {
  let h = seed;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, FNV_PRIME);
  return h;
}

export function mix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

const PLUS = 0x2b;
const MINUS = 0x2d;
const DOT = 0x2e;

function isFieldEnd(c: number): boolean {
  return c === SPACE || c === TAB || c === LF || c === CR;
}

function isDigit(c: number | undefined): boolean {
  return c !== undefined && c >= 0x30 && c <= 0x39;
}

/** A decimal float, or Inf/Infinity/NaN (any case, optional sign): what both Go and Python read. */
export function isFloat(buf: Buffer, start: number, end: number): boolean {
  let p = start;
  if (buf[p] === PLUS || buf[p] === MINUS) p++;
  const c = buf[p];
  if (c !== undefined && !isDigit(c) && c !== DOT) {
    const word = buf.toString('latin1', p, end).toLowerCase();
    return word === 'inf' || word === 'infinity' || word === 'nan';
  }
  return isDecimal(buf, p, end);
}

function isDecimal(buf: Buffer, p: number, end: number): boolean {
  // Digits compared inline (p < end: a byte, never undefined): this runs for every sample's value.
  const first = p;
  while (p < end && buf[p]! >= 0x30 && buf[p]! <= 0x39) p++;
  let digits = p - first;
  if (p < end && buf[p] === DOT) {
    const fraction = ++p;
    while (p < end && buf[p]! >= 0x30 && buf[p]! <= 0x39) p++;
    digits += p - fraction;
  }
  if (digits === 0) return false;
  if (p < end && (buf[p] === 0x65 || buf[p] === 0x45)) {
    p++;
    if (buf[p] === PLUS || buf[p] === MINUS) p++;
    if (!isDigit(buf[p])) return false;
    while (p < end && isDigit(buf[p])) p++;
  }
  return p === end;
}

/**
 * The value of an `le` or `quantile` label is a number (isFloat): the usual `0.25` and `+Inf`
 * checked here at once, the rest by isFloat.
 */
function isLabelNumber(buf: Buffer, start: number, end: number): boolean {
  if (end - start === 4 && buf[start] === PLUS && buf[start + 1] === 0x49 && buf[start + 2] === 0x6e && buf[start + 3] === 0x66) return true;
  let p = start;
  let dots = 0;
  for (; p < end; p++) {
    const c = buf[p]!;
    if (c === DOT) dots++;
    else if (c < 0x30 || c > 0x39) break;
  }
  return (p === end && dots <= 1 && end - start > dots) || isFloat(buf, start, end);
}

function isInteger(buf: Buffer, start: number, end: number): boolean {
  let p = start;
  if (buf[p] === MINUS || buf[p] === PLUS) p++;
  if (p >= end) return false;
  while (p < end) if (!isDigit(buf[p++])) return false;
  return true;
}

const INT64_MAX = '9223372036854775807';

/** An integer Prometheus' text parser reads as a timestamp: digits only (no sign) up to int64's largest. */
function isTextTimestamp(buf: Buffer, start: number, end: number): boolean {
  let p = start;
  while (p < end - 1 && buf[p] === 0x30) p++;
  for (let i = p; i < end; i++) if (!isDigit(buf[i])) return false;
  const digits = end - p;
  return digits < INT64_MAX.length || (digits === INT64_MAX.length && buf.toString('latin1', p, end) <= INT64_MAX);
}

/** An OpenMetrics timestamp: a finite decimal number of seconds (any size, as Prometheus reads it). */
function isTimestampSeconds(buf: Buffer, start: number, end: number): boolean {
  let p = start;
  if (buf[p] === PLUS || buf[p] === MINUS) p++;
  return isDecimal(buf, p, end);
}

/** The OpenMetrics timestamp becomes, in text, milliseconds that Prometheus' text parser reads (see isTextTimestamp). */
function fitsTextTimestamp(buf: Buffer, start: number, end: number): boolean {
  const ms = Math.trunc(Number(buf.toString('latin1', start, end)) * 1000);
  return ms > -1 && ms < 2 ** 63;
}

// Scratch memory kept from one scrape to the next, so that a scrape does not churn megabytes of
// garbage. The dedupe table is used within one synchronous call; sample records are lent to one
// parser each (several parse at once while their bodies arrive) until the merge hands them back.
let dedupeTable = new Int32Array(0);
const spareRecords: Int32Array[] = [];
const MAX_SPARE_RECORDS = 8;
/**
 * The length of the largest records handed back: once the pool has been freed, a parse starts at it
 * instead of doubling its way there (copying each time). Pages of it that a smaller body leaves
 * untouched cost no memory.
 */
let recordsHint = 0;

/**
 * Gives the scratch memory back to the system now (detaching an ArrayBuffer frees its memory at once,
 * where dropping it waits for a garbage collection that an idle process may never run). Only between
 * merges: records lent to a parser are not the pool's.
 */
export function freeScratch(): void {
  for (const records of spareRecords.splice(0)) freeNow(records);
  freeNow(dedupeTable);
  dedupeTable = new Int32Array(0);
}

/** Frees the memory under `view` (and every other view of it) now; they read as empty after. */
export function freeNow(view: ArrayBufferView): void {
  (view.buffer as ArrayBuffer).transfer(0);
}

/**
 * Sample records of at least `length` int32: the largest spare, since how large a body arriving
 * grows is not known yet (most likely as large as on the last scrape).
 */
function takeRecords(length: number): Int32Array {
  let largest = -1;
  for (let i = 0; i < spareRecords.length; i++) {
    if (largest === -1 || spareRecords[i]!.length > spareRecords[largest]!.length) largest = i;
  }
  if (largest === -1 || spareRecords[largest]!.length < length) return new Int32Array(Math.max(length, recordsHint));
  return spareRecords.splice(largest, 1)[0]!;
}

/**
 * Hands sample records (a parsed body's, once merged) back for the next parse; they must not be used
 * after. A full pool keeps the larger arrays.
 */
export function releaseRecords(records: Int32Array): void {
  if (spareRecords.includes(records)) return;
  recordsHint = Math.max(recordsHint, records.length);
  if (spareRecords.length < MAX_SPARE_RECORDS) {
    spareRecords.push(records);
    return;
  }
  let smallest = 0;
  for (let i = 1; i < spareRecords.length; i++) if (spareRecords[i]!.length < spareRecords[smallest]!.length) smallest = i;
  if (spareRecords[smallest]!.length < records.length) spareRecords[smallest] = records;
}

/**
 * Flags every repeat of a series after its first sample: same name and labels as served (in any
 * label order), so two series that differ only as `container` and `exported_container` are repeats.
 */
function flagDuplicates(buf: Buffer, records: Int32Array, count: number, targetLabels: readonly string[]): number {
  let size = 16;
  while (size < count * 2) size *= 2;
  if (dedupeTable.length < size) dedupeTable = new Int32Array(size);
  const table = dedupeTable;
  table.fill(0, 0, size);
  const mask = size - 1;
  let duplicates = 0;
  for (let i = 0; i < count; i++) {
    const r = i * RECORD_SIZE;
    const flags = records[r + R_FLAGS]!;
    if ((flags & F_DROPPED) !== 0) continue; // dropped while scanned (an invalid label or timestamp)
    if ((flags & F_REWRITTEN) !== 0) records[r + R_HASH] = servedHash(buf, records, r, targetLabels);
    let slot = records[r + R_HASH]! & mask;
    for (;;) {
      const other = table[slot]!;
      if (other === 0) {
        table[slot] = i + 1;
        break;
      }
      if (records[(other - 1) * RECORD_SIZE + R_HASH] === records[r + R_HASH] && sameSeries(buf, records, other - 1, i, targetLabels)) {
        records[r + R_FLAGS] = records[r + R_FLAGS]! | F_DROPPED;
        duplicates++;
        break;
      }
      slot = (slot + 1) & mask;
    }
  }
  return duplicates;
}

/** The labels of a sample are served otherwise than they came. */
export const F_REWRITTEN = F_HAS_TARGET_LABEL | F_ODD_ESCAPE | F_QUOTED;

/** The hash the scanner computes, over the labels as served. */
function servedHash(buf: Buffer, records: Int32Array, r: number, targetLabels: readonly string[]): number {
  const name = records[r + R_NAME_START]!;
  let hash = name === records[r + R_NAME_END] ? FNV_OFFSET : hashBytes(buf, name, records[r + R_NAME_END]!, FNV_OFFSET);
  for (const [name, value] of servedLabels(buf, records[r + R_LABELS_START]!, records[r + R_LABELS_END]!, targetLabels)) {
    const bytes = Buffer.from(name + value);
    hash = (hash + mix(hashBytes(bytes, 0, bytes.length, FNV_OFFSET))) | 0;
  }
  return hash;
}

function sameSeries(buf: Buffer, records: Int32Array, a: number, b: number, targetLabels: readonly string[]): boolean {
  const ra = a * RECORD_SIZE;
  const rb = b * RECORD_SIZE;
  if (buf.compare(buf, records[ra]!, records[ra + R_NAME_END]!, records[rb]!, records[rb + R_NAME_END]!) !== 0) return false;
  const la = records[ra + R_LABELS_START]!;
  const lb = records[rb + R_LABELS_START]!;
  const ea = records[ra + R_LABELS_END]!;
  const eb = records[rb + R_LABELS_END]!;
  const rewritten = ((records[ra + R_FLAGS]! | records[rb + R_FLAGS]!) & F_REWRITTEN) !== 0;
  if (!rewritten && buf.compare(buf, la, ea, lb, eb) === 0) return true;
  const key = (start: number, end: number): string =>
    servedLabels(buf, start, end, targetLabels).map(([name, value]) => `${name}=${value}`).sort().join('\n');
  return key(la, ea) === key(lb, eb);
}

/**
 * The labels of a scanned sample as served, besides the labels promux adds (targetLabels): an
 * existing label of one of those names renamed exported_<name> (exported_exported_<name> when that
 * is taken, and so on, as Prometheus does), and escapes other than \\ \" \n written as the literal
 * backslash Prometheus reads them as. Values stay escaped.
 */
export function servedLabels(buf: Buffer, start: number, end: number, targetLabels: readonly string[]): Array<[string, string]> {
  const labels = splitLabels(buf, start, end);
  const names = new Set(labels.map(([name]) => name));
  return labels.map(([name, value]) => [
    targetLabels.includes(name) ? exportedName(name, names) : name,
    value.replace(/\\(.)/gs, (escape, c: string) => (c === '\\' || c === '"' || c === 'n' ? escape : `\\${escape}`)),
  ]);
}

/** exported_<name>, prefixed again while the sample has a label of that name already. */
function exportedName(name: string, taken: ReadonlySet<string>): string {
  let exported = `exported_${name}`;
  while (taken.has(exported)) exported = `exported_${exported}`;
  return exported;
}

/** buf[start, start + length) is one of the label names promux adds (most often the only one, the container label). */
function isTargetLabel(buf: Buffer, start: number, length: number, names: readonly Buffer[]): boolean {
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    if (length === name.length && buf[start] === name[0] && sameBytes(buf, start, name, 0, length)) return true;
  }
  return false;
}

/**
 * The labels between R_LABELS_START and R_LABELS_END of an already scanned sample, as [name, raw
 * value]: quoted names unquoted, a quoted metric name among them left out.
 */
export function splitLabels(buf: Buffer, start: number, end: number): Array<[string, string]> {
  const labels: Array<[string, string]> = [];
  let p = start;
  while (p < end) {
    while (buf[p] === SPACE || buf[p] === TAB || buf[p] === COMMA) p++;
    if (p >= end) break;
    const nameStart = p;
    let name: string;
    if (buf[p] === QUOTE) {
      p = quotedStringEnd(buf, p);
      name = decodeQuoted(buf, nameStart, p);
      while (buf[p] === SPACE || buf[p] === TAB) p++;
      if (buf[p] !== EQUALS) continue; // the metric name
    } else {
      while ((CHAR_CLASS[buf[p]!]! & LABEL_CHAR) !== 0) p++;
      name = buf.toString('latin1', nameStart, p);
    }
    while (buf[p] !== QUOTE) p++;
    const valueStart = ++p;
    while (buf[p] !== QUOTE) p += buf[p] === BACKSLASH ? 2 : 1;
    labels.push([name, buf.toString('utf8', valueStart, p)]);
    p++;
  }
  return labels;
}

/** The position after the closing quote of the quoted string that starts at p (scanned already: it ends). */
function quotedStringEnd(buf: Buffer, p: number): number {
  p++;
  while (buf[p] !== QUOTE) p += buf[p] === BACKSLASH ? 2 : 1;
  return p + 1;
}

/** The quoted name buf[start, end) (quotes included) unquoted: \\ \" and \n undone, as in label values. */
export function decodeQuoted(buf: Buffer, start: number, end: number): string {
  const raw = buf.toString('utf8', start + 1, end - 1);
  return raw.includes('\\') ? unescapeLabelValue(raw) : raw;
}

/** The raw label value has an escape other than \\ \" \n. */
function hasOddEscape(raw: string): boolean {
  for (let i = raw.indexOf('\\'); i !== -1 && i < raw.length; i = raw.indexOf('\\', i + 2)) {
    const next = raw[i + 1];
    if (next !== '\\' && next !== '"' && next !== 'n') return true;
  }
  return false;
}
