// The merge: every target's parsed body plus promux's own families, written once into one Buffer.
// Families keep their first-seen order across targets (in target order); a family's samples come
// grouped by target, in target order, each sample in its body's order. Sample bytes are copied from
// the bodies; only the container label is inserted (and an existing one renamed exported_<label>).

import { DROP_REASONS, type DropCounter, type DropReason } from './drops.ts';
import {
  detectFormat, ExpositionError, F_DROPPED, F_HAS_TARGET_LABEL, F_ODD_ESCAPE, OPENMETRICS_TYPE_NAMES, parseBody, Part,
  PART_MASK, PART_SHIFT, R_END, R_EXEMPLAR_START, R_FLAGS, R_LABELS_END, R_LABELS_START, R_NAME_END, R_NAME_START,
  R_REST, R_TS_END, R_TS_START, R_VALUE_END, RECORD_SIZE, releaseRecords, servedLabels, TEXT_TYPE_NAMES,
  type MetricType, type ParsedBody, type ParsedFamily,
} from './parse.ts';
import type { ExpositionFormat, FetchedTarget, MergeOptions, MergeOutput, TargetOutcome } from './types.ts';

export const TEXT_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

const ALL_PARTS = 0xffff;

function parts(...list: number[]): number {
  return list.reduce((mask, part) => mask | (1 << part), 0);
}

/** Where (part of) a parsed family goes in the output: a family name and type, and which of its samples. */
interface Projection {
  name: string;
  type: MetricType;
  parts: number;
}

/**
 * How an OpenMetrics family is served as text, following client_python's text writer, so that no
 * series changes its name: a counter `foo` becomes `foo_total` (counter) and `foo_created` (gauge);
 * histogram and summary `_created` become gauges; a gauge histogram becomes a histogram of its
 * buckets plus `foo_gcount` and `foo_gsum` gauges; info `foo` is the gauge `foo_info`; a stateset is
 * a gauge. (A family served in the format it came in is served as it is.)
 */
function textProjections(family: ParsedFamily, type: MetricType): Projection[] {
  const name = family.name;
  const created: Projection = { name: `${name}_created`, type: 'gauge', parts: parts(Part.created) };
  switch (type) {
    case 'counter':
      return [{ name: `${name}_total`, type, parts: parts(Part.total) }, created];
    case 'histogram':
      return [{ name, type, parts: parts(Part.bucket, Part.count, Part.sum) }, created];
    case 'summary':
      return [{ name, type, parts: parts(Part.bare, Part.count, Part.sum) }, created];
    case 'gaugehistogram':
      return [
        { name, type: 'histogram', parts: parts(Part.bucket) },
        { name: `${name}_gcount`, type: 'gauge', parts: parts(Part.gcount) },
        { name: `${name}_gsum`, type: 'gauge', parts: parts(Part.gsum) },
      ];
    case 'info':
      return [{ name: `${name}_info`, type: 'gauge', parts: ALL_PARTS }];
    case 'stateset':
      return [{ name, type: 'gauge', parts: ALL_PARTS }];
    default:
      return [{ name, type, parts: ALL_PARTS }];
  }
}

/**
 * The sample names a family uses besides its own name, which no other family may use (expfmt and the
 * OpenMetrics parser both map them to it), by format and type.
 */
const TEXT_SUFFIXES: Partial<Record<MetricType, readonly string[]>> = {
  histogram: ['_bucket', '_count', '_sum'], summary: ['_count', '_sum'],
};
const OPENMETRICS_SUFFIXES: Partial<Record<MetricType, readonly string[]>> = {
  counter: ['_total', '_created'], histogram: ['_bucket', '_count', '_sum', '_created'],
  summary: ['_count', '_sum', '_created'], gaugehistogram: ['_bucket', '_gcount', '_gsum'], info: ['_info'],
};
const NO_SUFFIXES: readonly string[] = [];

interface Source {
  target: number;
  family: ParsedFamily;
  parts: number;
}

interface OutFamily {
  name: string;
  type: MetricType;
  help: string | undefined;
  unit: string | undefined;
  /** promux's own samples, already written out as lines. */
  ownLines: string;
  sources: Source[];
}

const OWN_FAMILIES = {
  up: {
    name: 'promux_target_up',
    help: '1 when promux fetched and parsed the target\'s metrics (a container\'s endpoint) on this scrape, 0 when it served none of them.',
  },
  duration: {
    name: 'promux_target_scrape_duration_seconds', unit: 'seconds',
    help: 'How long fetching the target\'s metrics took on this scrape.',
  },
  samples: { name: 'promux_target_samples', help: 'Samples of the target served on this scrape.' },
  /** A counter: OpenMetrics names the family without _total, text with it. */
  dropped: {
    name: 'promux_dropped_samples',
    help: 'Samples of the target not served, by reason: duplicate_series, type_conflict, name_conflict.',
  },
};
const DROPPED_TOTAL = `${OWN_FAMILIES.dropped.name}_total`;

/** Parses every target and writes one exposition; see types.ts for the contract. */
export function mergeTargets(targets: FetchedTarget[], options: MergeOptions, drops: DropCounter): MergeOutput {
  const label = options.containerLabel;
  const parsed: Array<ParsedBody | undefined> = [];
  const outcomes: TargetOutcome[] = [];
  for (const target of targets) {
    drops.track(target);
    const outcome: TargetOutcome = { container: target.container, endpoint: target.endpoint, up: false, samples: 0 };
    outcomes.push(outcome);
    parsed.push(undefined);
    if (target.body === undefined) {
      outcome.error = target.error ?? 'no response';
      continue;
    }
    const format = detectFormat(target.contentType, target.body);
    try {
      const body = target.parsed ?? parseBody(target.body, format, label);
      // A ParsedBody belongs to one merge: its records are flagged here and reused after. Merging the
      // same snapshot again (in the other format, for another scraper) parses the body anew.
      target.parsed = undefined;
      if (body instanceof ExpositionError) throw body;
      parsed[parsed.length - 1] = body;
      outcome.up = true;
    } catch (e) {
      if (!(e instanceof ExpositionError)) throw e;
      outcome.error = `invalid ${format === 'text' ? 'text format' : 'OpenMetrics'} exposition: ${e.message}`;
    }
  }

  const format: ExpositionFormat =
    options.acceptOpenMetrics && parsed.every((p) => p === undefined || p.format === 'openmetrics') ? 'openmetrics' : 'text';
  const suffixes = format === 'text' ? TEXT_SUFFIXES : OPENMETRICS_SUFFIXES;
  /** In output order. */
  const families: OutFamily[] = [];
  /** Every sample name an output family uses: its own name (mapped to the family) and its suffixed ones (null). */
  const taken = new Map<string, OutFamily | null>();
  const add = (name: string, type: MetricType, help: string | undefined, unit: string | undefined): OutFamily => {
    const family: OutFamily = { name, type, help, unit: format === 'openmetrics' ? unit : undefined, ownLines: '', sources: [] };
    families.push(family);
    taken.set(name, family);
    const suffixed = suffixes[type] ?? NO_SUFFIXES;
    for (let i = 0; i < suffixed.length; i++) taken.set(name + suffixed[i]!, null);
    return family;
  };
  /** The output family samples named `name` of a family of `type` join, or why they are dropped. */
  const place = (name: string, type: MetricType): OutFamily | DropReason => {
    const out = taken.get(name);
    if (out === null) return 'name_conflict';
    if (out !== undefined) return out.type === type ? out : 'type_conflict';
    const suffixed = suffixes[type] ?? NO_SUFFIXES;
    for (let i = 0; i < suffixed.length; i++) if (taken.has(name + suffixed[i]!)) return 'name_conflict';
    return add(name, type, undefined, undefined);
  };
  /** Serves the samples of family among parts as output family `name` of `type`, or drops and counts them. */
  const serve = (target: number, family: ParsedFamily, name: string, type: MetricType, partMask: number): void => {
    const body = parsed[target]!;
    const count = countSamples(body, family, partMask, false);
    if (count === 0) return;
    const out = place(name, type);
    if (typeof out === 'string') {
      countSamples(body, family, partMask, true);
      outcomes[target]!.samples -= count;
      drops.add(targets[target]!, out, count);
      return;
    }
    out.help ??= family.help;
    if (format === 'openmetrics') out.unit ??= family.unit;
    const source: Source = { target, family, parts: partMask };
    // Most output families have one source: an array of just it, not the 17 slots a first push makes.
    if (out.sources.length === 0) out.sources = [source];
    else out.sources.push(source);
  };
  // promux's own families come first, so that a target's family of the same name joins them.
  const ownFamily = (f: { name: string; help: string; unit?: string }, type: MetricType): OutFamily =>
    add(f.name, type, f.help, f.unit);
  const own = {
    up: ownFamily(OWN_FAMILIES.up, 'gauge'),
    duration: ownFamily(OWN_FAMILIES.duration, 'gauge'),
    samples: ownFamily(OWN_FAMILIES.samples, 'gauge'),
    dropped: ownFamily({ ...OWN_FAMILIES.dropped, name: format === 'text' ? DROPPED_TOTAL : OWN_FAMILIES.dropped.name }, 'counter'),
  };

  for (let target = 0; target < parsed.length; target++) {
    const body = parsed[target];
    if (body === undefined) continue;
    outcomes[target]!.samples = body.samples - body.duplicates;
    if (body.duplicates > 0) drops.add(targets[target]!, 'duplicate_series', body.duplicates);
    // Indexed loops here and below: a for-of makes an iterator result per step until V8 optimizes
    // the function, which a merge once per scrape may never be.
    const bodyFamilies = body.families;
    for (let i = 0; i < bodyFamilies.length; i++) {
      const family = bodyFamilies[i]!;
      const type = family.type;
      if (type === undefined) continue; // HELP or UNIT without samples
      if (body.format === format) {
        serve(target, family, family.name, type, ALL_PARTS);
        continue;
      }
      const projections = textProjections(family, type);
      for (let k = 0; k < projections.length; k++) {
        const projection = projections[k]!;
        serve(target, family, projection.name, projection.type, projection.parts);
      }
    }
  }

  const containerLabels = targets.map((t) => Buffer.from(`${label}="${escapeLabelValue(t.container)}"`, 'utf8'));
  targets.forEach((target, i) => {
    const outcome = outcomes[i]!;
    const labels = `{${label}="${escapeLabelValue(target.container)}",endpoint="${escapeLabelValue(target.endpoint)}"}`;
    own.up.ownLines += `${own.up.name}${labels} ${outcome.up ? 1 : 0}\n`;
    own.duration.ownLines += `${own.duration.name}${labels} ${target.durationSeconds}\n`;
    own.samples.ownLines += `${own.samples.name}${labels} ${outcome.samples}\n`;
  });
  for (const target of drops.targets()) {
    for (const reason of DROP_REASONS) {
      own.dropped.ownLines +=
        `${DROPPED_TOTAL}{${label}="${escapeLabelValue(target.container)}",endpoint="${escapeLabelValue(target.endpoint)}",reason="${reason}"} ` +
        `${drops.get(target, reason)}\n`;
    }
  }

  // Each sample grows by its container label and a comma (or braces): exact but for renamed labels and
  // converted timestamps, which the Output grows for.
  const estimate = parsed.reduce((sum, p, i) => sum + (p === undefined ? 0 : p.body.length + p.samples * (containerLabels[i]!.length + 2)), 0);
  let metadata = 0;
  for (let i = 0; i < families.length; i++) metadata += families[i]!.ownLines.length * 2 + 256;
  const out = new Output(estimate + metadata, options.reuse);
  for (let i = 0; i < families.length; i++) {
    const family = families[i]!;
    const sources = family.sources;
    if (family.ownLines === '' && sources.length === 0) continue;
    writeMetadata(out, family, format);
    out.text(family.ownLines);
    for (let k = 0; k < sources.length; k++) {
      const source = sources[k]!;
      writeSamples(out, parsed[source.target]!, source, family.type, containerLabels[source.target]!, label, format);
    }
  }
  if (format === 'openmetrics') out.text('# EOF\n');
  for (const body of parsed) if (body !== undefined) releaseRecords(body.records);
  return {
    body: out.result(),
    buffer: out.buf,
    contentType: format === 'text' ? TEXT_CONTENT_TYPE : OPENMETRICS_CONTENT_TYPE,
    format,
    targets: outcomes,
  };
}

/** Samples of the family among parts not yet dropped; with drop, flags them dropped too. */
function countSamples(body: ParsedBody, family: ParsedFamily, partMask: number, drop: boolean): number {
  const records = body.records;
  const runs = family.runs;
  let count = 0;
  if (!drop && partMask === ALL_PARTS && body.duplicates === 0) {
    // Nothing of the family was dropped yet: every sample counts, and the records need not be read.
    for (let k = 0; k < runs.length; k += 2) count += runs[k + 1]! - runs[k]!;
    return count;
  }
  for (let k = 0; k < runs.length; k += 2) {
    for (let i = runs[k]!, end = runs[k + 1]!; i < end; i++) {
      const r = i * RECORD_SIZE + R_FLAGS;
      const flags = records[r]!;
      if ((flags & F_DROPPED) !== 0 || ((1 << ((flags >> PART_SHIFT) & PART_MASK)) & partMask) === 0) continue;
      count++;
      if (drop) records[r] = flags | F_DROPPED;
    }
  }
  return count;
}

const HELP_START = Buffer.from('# HELP ');
const TYPE_START = Buffer.from('# TYPE ');
const UNIT_START = Buffer.from('# UNIT ');
/** The end of a TYPE line after the family name, by type as served. */
const TYPE_END = new Map(
  [...new Set([...TEXT_TYPE_NAMES, ...OPENMETRICS_TYPE_NAMES])].map((type) => [type, Buffer.from(` ${type}\n`)]),
);

/**
 * Written in pieces: each line made a string first would be garbage for every family, and flattened
 * once more to be written. Metric names are ASCII.
 */
function writeMetadata(out: Output, family: OutFamily, format: ExpositionFormat): void {
  const om = format === 'openmetrics';
  const name = family.name;
  if (family.help !== undefined && family.help !== '') writeMetadataLine(out, HELP_START, name, escapeHelp(family.help, om));
  const typeEnd = TYPE_END.get(family.type === 'untyped' && om ? 'unknown' : family.type)!;
  out.ensure(TYPE_START.length + name.length + typeEnd.length);
  out.all(TYPE_START);
  out.latin1(name);
  out.all(typeEnd);
  if (om && family.unit !== undefined && family.unit !== '') writeMetadataLine(out, UNIT_START, name, family.unit);
}

/** `# KEYWORD name text` and a line feed, keyword and its space in start. */
function writeMetadataLine(out: Output, start: Buffer, name: string, text: string): void {
  // Room for the whole line, counting 3 bytes per UTF-16 code unit of the text as text() does.
  out.ensure(start.length + name.length + 2 + text.length * 3);
  out.all(start);
  out.latin1(name);
  out.byte(SPACE);
  out.text(text);
  out.byte(LF);
}

const COMMA = 0x2c;
const OPEN = 0x7b;
const CLOSE = 0x7d;
const SPACE = 0x20;
const LF = 0x0a;

function writeSamples(
  out: Output, parsed: ParsedBody, source: Source, type: MetricType, containerLabel: Buffer, label: string,
  format: ExpositionFormat,
): void {
  const { body, records } = parsed;
  const toText = format === 'text' && parsed.format === 'openmetrics';
  // The OpenMetrics parser takes exemplars on counter totals and histogram buckets only.
  const exemplarPart =
    format === 'openmetrics' ? (type === 'counter' ? Part.total : type === 'histogram' || type === 'gaugehistogram' ? Part.bucket : -1) : -1;
  const runs = source.family.runs;
  const partMask = source.parts;
  const labelLength = containerLabel.length;
  // Body bytes [from, to) still to be copied as they are: consecutive lines between the points where
  // the container label goes in are copied in one piece rather than line by line.
  let from = -1;
  let to = -1;
  for (let k = 0; k < runs.length; k += 2) {
    for (let i = runs[k]!, last = runs[k + 1]!; i < last; i++) {
      const r = i * RECORD_SIZE;
      const flags = records[r + R_FLAGS]!;
      const part = (flags >> PART_SHIFT) & PART_MASK;
      if ((flags & F_DROPPED) !== 0 || ((1 << part) & partMask) === 0) continue;
      const nameStart = records[r + R_NAME_START]!;
      const end = records[r + R_END]!;
      const nameEnd = records[r + R_NAME_END]!;
      const labelsStart = records[r + R_LABELS_START]!;
      const labelsEnd = records[r + R_LABELS_END]!;
      const rest = records[r + R_REST]!;
      const tsStart = records[r + R_TS_START]!;
      const valueEnd = records[r + R_VALUE_END]!;
      const tail = toText
        ? valueEnd
        : part === exemplarPart && records[r + R_EXEMPLAR_START]! >= 0
          ? end
          : tsStart >= 0 ? records[r + R_TS_END]! : valueEnd;
      // Room for the line: its bytes up to tail, our label, comma or braces, line feed, a converted timestamp.
      const room = tail - nameStart + labelLength + 3 + (toText && tsStart >= 0 ? 24 : 0);
      if ((flags & (F_HAS_TARGET_LABEL | F_ODD_ESCAPE)) === 0 && labelsEnd > labelsStart && labelsStart === nameEnd + 1 &&
        rest === labelsEnd + 1) {
        // The usual `name{labels} value`: everything up to the brace, our label and a comma, the rest.
        if (from !== -1 && to !== nameStart) from = flush(out, body, from, to);
        if (from === -1) from = nameStart;
        out.ensure(labelsStart - from + room);
        out.copy(body, from, labelsStart);
        out.all(containerLabel);
        out.byte(COMMA);
        if (body[tail] === LF && !(toText && tsStart >= 0)) {
          // The line is served to its end as it is: it goes out with the next piece.
          from = labelsStart;
          to = tail + 1;
          continue;
        }
        from = -1;
        out.copy(body, labelsStart, tail);
      } else if ((flags & (F_HAS_TARGET_LABEL | F_ODD_ESCAPE)) !== 0) {
        from = flush(out, body, from, to);
        const labels = Buffer.from(rewriteLabels(body, labelsStart, labelsEnd, label));
        out.ensure(room + labels.length);
        out.copy(body, nameStart, nameEnd);
        out.byte(OPEN);
        out.all(containerLabel);
        out.copy(labels, 0, labels.length);
        out.byte(CLOSE);
        out.copy(body, rest, tail);
      } else {
        from = flush(out, body, from, to);
        out.ensure(room);
        out.copy(body, nameStart, nameEnd);
        out.byte(OPEN);
        out.all(containerLabel);
        if (labelsEnd > labelsStart) {
          out.byte(COMMA);
          out.copy(body, labelsStart, labelsEnd);
        }
        out.byte(CLOSE);
        out.copy(body, rest, tail);
      }
      if (toText && tsStart >= 0) {
        out.byte(SPACE);
        out.latin1(secondsToMilliseconds(body.toString('latin1', tsStart, records[r + R_TS_END]!)));
      }
      out.byte(LF);
    }
  }
  flush(out, body, from, to);
}

/**
 * Copies the bytes body[from, to) waiting to be copied, if any (from is -1 when none); returns -1, none
 * waiting. A function rather than a closure over from and to, which every writeSamples call would make.
 */
function flush(out: Output, body: Buffer, from: number, to: number): number {
  if (from === -1) return -1;
  out.ensure(to - from);
  out.copy(body, from, to);
  return -1;
}

/** The labels after the container label, for a series that has one already or odd escapes (the rare path). */
function rewriteLabels(body: Buffer, start: number, end: number, label: string): string {
  return servedLabels(body, start, end, label).map(([name, value]) => `,${name}="${value}"`).join('');
}

/** Prometheus' OpenMetrics parser keeps int64(seconds * 1000); the text format carries milliseconds. */
export function secondsToMilliseconds(seconds: string): string {
  const ms = Math.trunc(Number(seconds) * 1000);
  return Number.isSafeInteger(ms) ? String(ms === 0 ? 0 : ms) : BigInt(ms).toString();
}

export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

function escapeHelp(help: string, openMetrics: boolean): string {
  // Most HELP texts need no escape: looked for first, the replace (and its garbage) is left out.
  if (!help.includes('\\') && !help.includes('\n') && !(openMetrics && help.includes('"'))) return help;
  return help.replace(openMetrics ? /[\\"\n]/g : /[\\\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

/** One growing Buffer the exposition is written into. */
class Output {
  buf: Buffer;
  pos = 0;

  /** Writes into `reuse` when it fits and is not far too large (kept from one scrape to the next). */
  constructor(size: number, reuse: Buffer | undefined) {
    // Headroom, so that a reused buffer still fits when the targets grow a little.
    this.buf = reuse !== undefined && reuse.length >= size && reuse.length <= 2 * size + 65536
      ? reuse
      : Buffer.allocUnsafeSlow(size + (size >> 4));
  }

  ensure(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(Math.ceil(this.buf.length * 1.25), this.pos + bytes + 4096));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  byte(c: number): void {
    this.buf[this.pos++] = c;
  }

  /** Short ranges are copied in JavaScript: cheaper than a call into C++ for a few bytes. */
  copy(source: Buffer, start: number, end: number): void {
    const buf = this.buf;
    let pos = this.pos;
    if (end - start < 48) {
      for (let i = start; i < end; i++) buf[pos++] = source[i]!;
      this.pos = pos;
    } else {
      this.pos = pos + source.copy(buf, pos, start, end);
    }
  }

  /** The whole of bytes: TypedArray set() of a whole array is cheaper than copy() and than a loop. */
  all(bytes: Buffer): void {
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** ASCII text the caller made room for. */
  latin1(s: string): void {
    this.pos += this.buf.write(s, this.pos, 'latin1');
  }

  text(s: string): void {
    // At most 3 bytes of UTF-8 per UTF-16 code unit: room without measuring the string first.
    this.ensure(s.length * 3);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  result(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}
