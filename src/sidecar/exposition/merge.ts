// The merge: every target's parsed body plus promux's own families, written once into one Buffer.
// Families keep their first-seen order across targets (in target order); a family's samples come
// grouped by target, in target order, each sample in its body's order. Sample bytes are copied from
// the bodies; only the target's labels are inserted (the container label, or the proxy's namespace
// and pod; an existing one is renamed exported_<label>).
// A rare sample (quoted names, a label renamed or re-escaped, a text sample served as OpenMetrics)
// is written anew instead, from its parts.

import { targetLabelNames, targetLabels, type DropCounter, type DropReason, type TargetKey } from './drops.ts';
import { keepLastInstance } from './last-instances.ts';
import { escapeName, isLegacyLabelName, quoteName } from './names.ts';
import {
  detectFormat, ExpositionError, F_DROPPED, freeNow, F_REWRITTEN, F_TIMESTAMP_NOT_TEXT,
  OPENMETRICS_TYPE_NAMES, parseBody, Part, PART_MASK, PART_SHIFT, R_END, R_EXEMPLAR_START, R_FLAGS, R_LABELS_END,
  R_LABELS_START, R_NAME_END, R_NAME_START, R_REST, R_TS_END, R_TS_START, R_VALUE_END, RECORD_SIZE, releaseRecords,
  servedLabels, SUFFIX_OF_PART, TEXT_TYPE_NAMES, type MetricType, type ParsedBody, type ParsedFamily,
} from './parse.ts';
import { ownSeries, OWN_FAMILY_LIST, totalName } from './own.ts';
import { openMetricsViolation } from './rules.ts';
import type {
  Accepted, Escaping, ExpositionFormat, FetchedTarget, MergeAnswer, MergeOptions, MergeOutput, OutputFormat, TargetLabels, TargetOutcome,
} from './types.ts';

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
function textProjections(name: string, type: MetricType): Projection[] {
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
 * How a text family is served as OpenMetrics (to a scraper that takes no text), no series renamed: a
 * counter `foo_total` is the counter `foo`; a counter without that suffix cannot be an OpenMetrics
 * counter and is served as unknown; untyped is unknown.
 */
function openMetricsProjection(name: string, type: MetricType): Projection {
  if (type === 'counter') {
    return name.endsWith('_total') && name.length > 6
      ? { name: name.slice(0, -6), type, parts: ALL_PARTS }
      : { name, type: 'untyped', parts: ALL_PARTS };
  }
  return { name, type, parts: ALL_PARTS };
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
  /** The family's name as written (escaped for a scraper that takes no UTF-8 names): sample names are it plus their suffix. */
  base: string;
  /** The family's name is written quoted (a UTF-8 name, the scraper takes them). */
  quoted: boolean;
}

interface OutFamily {
  name: string;
  type: MetricType;
  help: string | undefined;
  unit: string | undefined;
  quoted: boolean;
  /** promux's own samples, already written out as lines. */
  ownLines: string;
  sources: Source[];
}

/**
 * Parses every target and plans one exposition, written as its pieces are taken (see types.ts for the
 * contract): the targets' outcomes and drops are known and counted on return.
 */
export function mergeStreamed(targets: FetchedTarget[], options: MergeOptions, drops: DropCounter): MergeAnswer {
  const label = options.containerLabel;
  const parsed: Array<ParsedBody | undefined> = [];
  const outcomes: TargetOutcome[] = [];
  for (const target of targets) {
    drops.track(target);
    const outcome: TargetOutcome = {
      container: target.container, endpoint: target.endpoint, ...(target.labels === undefined ? {} : { labels: target.labels }), up: false, samples: 0,
    };
    outcomes.push(outcome);
    parsed.push(undefined);
    if (target.body === undefined) {
      outcome.error = target.error ?? 'no response';
      continue;
    }
    const format = detectFormat(target.contentType, target.body);
    try {
      const body = target.parsed ?? parseBody(target.body, format, targetLabelNames(target, label));
      // A ParsedBody belongs to one merge: its records are flagged here and reused after. Merging the
      // same snapshot again (in the other format, for another scraper) parses the body anew.
      target.parsed = undefined;
      if (body instanceof ExpositionError) throw body;
      parsed[parsed.length - 1] = body;
      outcome.up = true;
      outcome.samples = body.samples;
    } catch (e) {
      if (!(e instanceof ExpositionError)) throw e;
      outcome.error = `invalid ${format === 'text' ? 'text format' : 'OpenMetrics'} exposition: ${e.message}`;
    }
  }
  // Every target is tracked now: the counters of one that is gone (a pod) end.
  drops.retain(targets);
  /** Counts samples of a target that are flagged F_DROPPED as dropped for reason. */
  const count = (target: number, reason: DropReason, samples: number): void => {
    if (samples === 0) return;
    outcomes[target]!.samples -= samples;
    drops.add(targets[target]!, reason, samples);
  };
  for (let target = 0; target < parsed.length; target++) {
    const body = parsed[target];
    if (body === undefined) continue;
    count(target, 'duplicate_series', body.duplicates);
    count(target, 'invalid_label', body.invalidLabels);
    count(target, 'invalid_timestamp', body.invalidTimestamps);
  }

  /** Drops what escaping names for the scraper makes equal (once per escaping). */
  const escaped = new Set<Escaping>(['allow-utf-8']);
  const escape = (escaping: Escaping): void => {
    if (escaped.has(escaping)) return;
    escaped.add(escaping);
    for (let target = 0; target < parsed.length; target++) {
      const body = parsed[target];
      if (body !== undefined && body.quoted > 0) count(target, 'escaping_conflict', dropEscapingConflicts(body, escaping));
    }
  };
  const accept = options.accept;
  let output = formatOffered(parsed, accept);
  let servedAsText: string | undefined;
  if (output.format === 'openmetrics' && accept.text !== undefined) {
    // OpenMetrics preferred, text taken: a family that breaks OpenMetrics' rules makes the answer
    // text, which carries it whole (rather than dropping it).
    escape(output.escaping);
    servedAsText = firstViolation(parsed, targets, output.escaping);
    if (servedAsText !== undefined) output = accept.text;
  }
  const format = output.format;
  const escaping = output.escaping;
  escape(escaping);
  const openMetricsOnly = format === 'openmetrics' && accept.text === undefined;
  for (let target = 0; target < parsed.length; target++) {
    const body = parsed[target];
    if (body !== undefined && format === 'text' && body.timestampsNotText > 0) {
      count(target, 'invalid_timestamp', dropFlagged(body, F_TIMESTAMP_NOT_TEXT));
    }
  }

  const suffixes = format === 'text' ? TEXT_SUFFIXES : OPENMETRICS_SUFFIXES;
  /** In output order. */
  const families: OutFamily[] = [];
  /** Every sample name an output family uses: its own name (mapped to the family) and its suffixed ones (null). */
  const taken = new Map<string, OutFamily | null>();
  const add = (name: string, type: MetricType, help: string | undefined, unit: string | undefined, quoted: boolean): OutFamily => {
    const family: OutFamily = { name, type, help, unit: format === 'openmetrics' ? unit : undefined, quoted, ownLines: '', sources: [] };
    families.push(family);
    taken.set(name, family);
    const suffixed = suffixes[type] ?? NO_SUFFIXES;
    for (let i = 0; i < suffixed.length; i++) taken.set(name + suffixed[i]!, null);
    return family;
  };
  /** The output family samples named `name` of a family of `type` join, or why they are dropped. */
  const place = (name: string, type: MetricType, quoted: boolean): OutFamily | DropReason => {
    const out = taken.get(name);
    if (out === null) return 'name_conflict';
    if (out !== undefined) return out.type === type ? out : 'type_conflict';
    const suffixed = suffixes[type] ?? NO_SUFFIXES;
    for (let i = 0; i < suffixed.length; i++) if (taken.has(name + suffixed[i]!)) return 'name_conflict';
    return add(name, type, undefined, undefined, quoted);
  };
  /** Serves the samples of family among parts as output family `name` of `type`, or drops and counts them. */
  const serve = (source: Source, name: string, type: MetricType): void => {
    const body = parsed[source.target]!;
    const family = source.family;
    const samples = countSamples(body, family, source.parts, false);
    if (samples === 0) return;
    const out = place(name, type, source.quoted);
    if (typeof out === 'string') {
      countSamples(body, family, source.parts, true);
      body.dropped += samples;
      count(source.target, out, samples);
      return;
    }
    out.help ??= family.help;
    if (format === 'openmetrics') out.unit ??= family.unit;
    // Most output families have one source: an array of just it, not the 17 slots a first push makes.
    if (out.sources.length === 0) out.sources = [source];
    else out.sources.push(source);
  };
  // promux's own families come first, so that a target's family of the same name joins them.
  const own = OWN_FAMILY_LIST.map((f) => add(format === 'text' ? totalName(f) : f.name, f.type, f.help, f.unit, false));

  /** Timestamps (true) or none (false) of the info families served as OpenMetrics so far, by name (see sameInfoTimestamps). */
  const infoTimestamps = new Map<string, boolean>();
  for (let target = 0; target < parsed.length; target++) {
    const body = parsed[target];
    if (body === undefined) continue;
    // Indexed loops here and below: a for-of makes an iterator result per step until V8 optimizes
    // the function, which a merge once per scrape may never be.
    const bodyFamilies = body.families;
    for (let i = 0; i < bodyFamilies.length; i++) {
      const family = bodyFamilies[i]!;
      const type = family.type;
      if (type === undefined) continue; // HELP or UNIT without samples
      const base = family.legacy ? family.name : escapeName(family.name, escaping, true);
      const quoted = !family.legacy && escaping === 'allow-utf-8';
      if (format === 'text' && body.format === 'openmetrics') {
        const projections = textProjections(base, type);
        for (let k = 0; k < projections.length; k++) {
          const projection = projections[k]!;
          serve({ target, family, parts: projection.parts, base, quoted }, projection.name, projection.type);
        }
        continue;
      }
      const projection = body.format === format ? { name: base, type } : openMetricsProjection(base, type);
      if (openMetricsOnly) {
        // No text to fall back to: a family OpenMetrics cannot carry is dropped.
        const textCounter = body.format === 'text' && projection.type === 'counter';
        if (openMetricsViolation(body, family, projection.type, textCounter) !== undefined ||
          !sameInfoTimestamps(body, family, projection.type, projection.name, infoTimestamps)) {
          const dropped = countSamples(body, family, ALL_PARTS, true);
          body.dropped += dropped;
          count(target, 'openmetrics_violation', dropped);
          continue;
        }
      }
      serve({ target, family, parts: ALL_PARTS, base, quoted }, projection.name, projection.type);
    }
  }
  for (let target = 0; target < parsed.length; target++) {
    const body = parsed[target];
    if (body !== undefined) countExemplars(body, format, targets[target]!, drops);
  }

  const containerTexts = targets.map((t) => labelsText(targetLabels(t, label)));
  const containerLabels = containerTexts.map((text) => Buffer.from(text, 'utf8'));
  const series = ownSeries(targets, outcomes, drops, label);
  for (let f = 0; f < series.length; f++) {
    const { family, samples } = series[f]!;
    const name = totalName(family);
    let lines = '';
    for (let i = 0; i < samples.length; i++) lines += `${name}{${labelsText(samples[i]!.labels)}} ${samples[i]!.value}\n`;
    own[f]!.ownLines = lines;
  }

  return {
    pieces: writeAnswer(families, parsed, containerLabels, containerTexts, { format, escaping }),
    contentType: output.contentType,
    format,
    targets: outcomes,
    ...(servedAsText === undefined ? {} : { servedAsText }),
  };
}

/** mergeStreamed's answer whole, in one Buffer (what the background cache serves many times). */
export function mergeTargets(targets: FetchedTarget[], options: MergeOptions, drops: DropCounter): MergeOutput {
  return wholeAnswer(mergeStreamed(targets, options, drops));
}

/** A streamed answer taken whole: every piece, in one Buffer. */
export function wholeAnswer(answer: MergeAnswer): MergeOutput {
  const { pieces, ...head } = answer;
  return { ...head, body: Buffer.concat([...pieces]) };
}

/**
 * Writes the families in order, handing the answer out in pieces as they fill: only the piece being
 * written is held, never the whole answer. The targets' bodies and sample records are read until the
 * last piece is taken; their records go back to the pool then (or when the caller stops early).
 */
function* writeAnswer(
  families: OutFamily[], parsed: Array<ParsedBody | undefined>, containerLabels: Buffer[], containerTexts: string[],
  context: WriteContext,
): Generator<Buffer, void, undefined> {
  const out = new Output();
  try {
    for (let i = 0; i < families.length; i++) {
      const family = families[i]!;
      const sources = family.sources;
      if (family.ownLines === '' && sources.length === 0) continue;
      writeMetadata(out, family, context.format);
      out.text(family.ownLines);
      for (let k = 0; k < sources.length; k++) {
        const source = sources[k]!;
        writeSamples(out, parsed[source.target]!, source, family.type, containerLabels[source.target]!, containerTexts[source.target]!, context);
        if (out.full.length > 0) yield* out.takeFull();
      }
    }
    if (context.format === 'openmetrics') out.text('# EOF\n');
    yield* out.takeFull();
    if (out.pos > 0) yield out.buf.subarray(0, out.pos);
  } finally {
    out.forget();
    for (const body of parsed) if (body !== undefined) releaseRecords(body.records);
  }
}

/**
 * The format offered to the scraper: OpenMetrics when it takes it and either takes no text or
 * prefers OpenMetrics and every target answered it; else text (then see firstViolation).
 */
function formatOffered(parsed: Array<ParsedBody | undefined>, accept: Accepted): OutputFormat {
  if (accept.openMetrics === undefined) return accept.text!;
  if (accept.text === undefined) return accept.openMetrics;
  return accept.preferText || parsed.some((p) => p !== undefined && p.format !== 'openmetrics') ? accept.text : accept.openMetrics;
}

/** The first family, with its target, that breaks a rule of OpenMetrics (see rules.ts), in words; undefined when none. */
function firstViolation(parsed: Array<ParsedBody | undefined>, targets: FetchedTarget[], escaping: Escaping): string | undefined {
  const infoTimestamps = new Map<string, boolean>();
  for (let target = 0; target < parsed.length; target++) {
    const body = parsed[target];
    if (body === undefined) continue;
    for (const family of body.families) {
      if (family.type === undefined) continue;
      const name = family.legacy ? family.name : escapeName(family.name, escaping, true);
      const rule = openMetricsViolation(body, family, family.type, false) ??
        (sameInfoTimestamps(body, family, family.type, name, infoTimestamps) ? undefined : 'info samples with and without timestamps');
      if (rule !== undefined) return `${describeTarget(targets[target]!)}, family ${family.name}: ${rule}`;
    }
  }
  return undefined;
}

/**
 * The OpenMetrics parser takes all samples of an info family as one group, whose timestamps must be
 * all there or all absent, across targets too: false when this family's disagree with the first
 * served under that name (and records its own when it is the first).
 */
function sameInfoTimestamps(body: ParsedBody, family: ParsedFamily, type: MetricType, name: string, seen: Map<string, boolean>): boolean {
  if (type !== 'info') return true;
  const records = body.records;
  const runs = family.runs;
  for (let k = 0; k < runs.length; k += 2) {
    for (let i = runs[k]!; i < runs[k + 1]!; i++) {
      const r = i * RECORD_SIZE;
      if ((records[r + R_FLAGS]! & F_DROPPED) !== 0) continue;
      const timestamps = records[r + R_TS_START]! >= 0;
      const first = seen.get(name);
      if (first === undefined) seen.set(name, timestamps);
      else if (first !== timestamps) return false;
    }
  }
  return true;
}

/** Flags dropped the samples of the body that have `flag` and are not dropped yet; returns how many. */
function dropFlagged(body: ParsedBody, flag: number): number {
  const records = body.records;
  let dropped = 0;
  for (let i = 0; i < body.samples; i++) {
    const r = i * RECORD_SIZE + R_FLAGS;
    const flags = records[r]!;
    if ((flags & flag) === 0 || (flags & F_DROPPED) !== 0) continue;
    records[r] = flags | F_DROPPED;
    dropped++;
  }
  body.dropped += dropped;
  return dropped;
}

/**
 * For a scraper that takes no UTF-8 names, in a body that quoted some: flags dropped each group of
 * samples (a series with its _created, a histogram's series...) that escaping made equal to an
 * earlier group, or whose label names it made equal; whole groups, so that what is left keeps
 * OpenMetrics' structure. Returns how many samples. Rare, and so slow: every sample is keyed by its
 * group as written.
 */
function dropEscapingConflicts(body: ParsedBody, escaping: Escaping): number {
  const { body: buf, records } = body;
  /** Escaped group key to the group (family index and unescaped key) that claimed it. */
  const claimed = new Map<string, string>();
  const conflicting = new Set<string>();
  const groups: string[] = [];
  const families = body.families;
  for (let f = 0; f < families.length; f++) {
    const family = families[f]!;
    const type = family.type;
    const base = family.legacy ? family.name : escapeName(family.name, escaping, true);
    const runs = family.runs;
    for (let k = 0; k < runs.length; k += 2) {
      for (let i = runs[k]!; i < runs[k + 1]!; i++) {
        const r = i * RECORD_SIZE;
        const flags = records[r + R_FLAGS]!;
        if ((flags & F_DROPPED) !== 0) continue;
        const part = (flags >> PART_SHIFT) & PART_MASK;
        const excluded = part === Part.bucket ? 'le' : part === Part.bare && type === 'summary' ? 'quantile'
          : type === 'stateset' ? family.name : undefined;
        const all = servedLabels(buf, records[r + R_LABELS_START]!, records[r + R_LABELS_END]!, body.targetLabels);
        // The OpenMetrics parser takes an info family's samples as one group.
        const labels = type === 'info' ? [] : all.filter(([name]) => name !== excluded);
        const group = `${f}\n${labels.map(([name, value]) => `${name}=${value}`).sort().join('\n')}`;
        const key = `${base}\n${labels.map(([name, value]) => `${escapeName(name, escaping, false)}=${value}`).sort().join('\n')}`;
        groups[i] = group;
        if (new Set(all.map(([name]) => escapeName(name, escaping, false))).size !== all.length) conflicting.add(group);
        const owner = claimed.get(key);
        if (owner === undefined) claimed.set(key, group);
        else if (owner !== group) conflicting.add(group);
      }
    }
  }
  let dropped = 0;
  if (conflicting.size === 0) return 0;
  for (let i = 0; i < body.samples; i++) {
    const r = i * RECORD_SIZE + R_FLAGS;
    const group = groups[i];
    if (group === undefined || !conflicting.has(group)) continue;
    records[r] = records[r]! | F_DROPPED;
    dropped++;
  }
  body.dropped += dropped;
  return dropped;
}

/** The part of samples of each type that may carry an exemplar in OpenMetrics, -1 for none. */
function exemplarPart(type: MetricType): number {
  return type === 'counter' ? Part.total : type === 'histogram' || type === 'gaugehistogram' ? Part.bucket : -1;
}

/** Counts the body's exemplars that the answer leaves out, by reason (writeSamples leaves them out alike). */
function countExemplars(body: ParsedBody, format: ExpositionFormat, target: TargetKey, drops: DropCounter): void {
  drops.addExemplars(target, 'invalid', body.invalidExemplars);
  if (body.exemplars === 0) return;
  const records = body.records;
  for (const family of body.families) {
    const allowed = family.type === undefined ? -1 : exemplarPart(family.type);
    const runs = family.runs;
    for (let k = 0; k < runs.length; k += 2) {
      for (let i = runs[k]!; i < runs[k + 1]!; i++) {
        const r = i * RECORD_SIZE;
        if (records[r + R_EXEMPLAR_START]! < 0) continue;
        const flags = records[r + R_FLAGS]!;
        if ((flags & F_DROPPED) !== 0) drops.addExemplars(target, 'sample_dropped', 1);
        else if (format === 'text') drops.addExemplars(target, 'text_output', 1);
        else if (((flags >> PART_SHIFT) & PART_MASK) !== allowed) drops.addExemplars(target, 'not_allowed', 1);
      }
    }
  }
}

/** Samples of the family among parts not yet dropped; with drop, flags them dropped too. */
function countSamples(body: ParsedBody, family: ParsedFamily, partMask: number, drop: boolean): number {
  const records = body.records;
  const runs = family.runs;
  let count = 0;
  if (!drop && partMask === ALL_PARTS && body.dropped === 0) {
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
 * once more to be written. Legacy metric names are ASCII; a quoted one is written as text.
 */
function writeMetadata(out: Output, family: OutFamily, format: ExpositionFormat): void {
  const om = format === 'openmetrics';
  const name = family.quoted ? quoteName(family.name) : family.name;
  if (family.help !== undefined && family.help !== '') writeMetadataLine(out, HELP_START, name, escapeHelp(family.help, om), family.quoted);
  const typeEnd = TYPE_END.get(family.type === 'untyped' && om ? 'unknown' : family.type)!;
  out.ensure(TYPE_START.length + name.length + typeEnd.length);
  out.all(TYPE_START);
  if (family.quoted) out.text(name);
  else out.latin1(name);
  out.all(typeEnd);
  // Strict parsers reject a UNIT that is not the suffix of its family's name, or on an info or a
  // stateset: the family is served without it.
  const unit = family.unit;
  if (om && unit !== undefined && unit !== '' && family.name.endsWith(`_${unit}`) && family.type !== 'info' && family.type !== 'stateset') {
    writeMetadataLine(out, UNIT_START, name, unit, family.quoted);
  }
}

/** `# KEYWORD name text` and a line feed, keyword and its space in start. */
function writeMetadataLine(out: Output, start: Buffer, name: string, text: string, quoted: boolean): void {
  // Room for the whole line, counting 3 bytes per UTF-16 code unit of the text as text() does.
  out.ensure(start.length + name.length + 2 + text.length * 3);
  out.all(start);
  if (quoted) out.text(name);
  else out.latin1(name);
  out.byte(SPACE);
  out.text(text);
  out.byte(LF);
}

const COMMA = 0x2c;
const OPEN = 0x7b;
const CLOSE = 0x7d;
const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;

interface WriteContext {
  format: ExpositionFormat;
  escaping: Escaping;
}

function writeSamples(
  out: Output, parsed: ParsedBody, source: Source, type: MetricType, containerLabel: Buffer, containerText: string,
  context: WriteContext,
): void {
  const { body, records } = parsed;
  const format = context.format;
  const toText = format === 'text' && parsed.format === 'openmetrics';
  // A text sample served as OpenMetrics is written anew: text allows blanks OpenMetrics does not.
  const rewriteAll = format === 'openmetrics' && parsed.format === 'text';
  // The OpenMetrics parser takes exemplars on counter totals and histogram buckets only.
  const keptExemplarPart = format === 'openmetrics' ? exemplarPart(type) : -1;
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
      const exemplar = part === keptExemplarPart && records[r + R_EXEMPLAR_START]! >= 0;
      if (rewriteAll || (flags & F_REWRITTEN) !== 0) {
        from = flush(out, body, from, to);
        out.text(rewrittenLine(parsed, r, part, source, containerText, context, exemplar));
        continue;
      }
      const tail = toText ? valueEnd : exemplar ? end : tsStart >= 0 ? records[r + R_TS_END]! : valueEnd;
      // Room for the line: its bytes up to tail, our label, comma or braces, line feed, a converted timestamp.
      const room = tail - nameStart + labelLength + 3 + (toText && tsStart >= 0 ? 24 : 0);
      if (labelsEnd > labelsStart && labelsStart === nameEnd + 1 &&
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

/**
 * The rare path: the line of sample r written from its parts. Its name is its family's as written
 * plus its suffix, quoted in the braces when it is a UTF-8 name the scraper takes; its labels as
 * servedLabels gives them, names escaped or quoted as the scraper asked; value, timestamp (converted
 * between seconds and milliseconds when the format changes) and exemplar as they came.
 */
function rewrittenLine(
  parsed: ParsedBody, r: number, part: number, source: Source, containerText: string, context: WriteContext, exemplar: boolean,
): string {
  const { body, records } = parsed;
  const { format, escaping } = context;
  const name = source.base + SUFFIX_OF_PART[part]!;
  let labels = containerText;
  for (const [labelName, value] of servedLabels(body, records[r + R_LABELS_START]!, records[r + R_LABELS_END]!, parsed.targetLabels)) {
    const written = escaping !== 'allow-utf-8' ? escapeName(labelName, escaping, false)
      : isLegacyLabelName(labelName) ? labelName : quoteName(labelName);
    labels += `,${written}="${value}"`;
  }
  let valueStart = records[r + R_REST]!;
  while (body[valueStart] === SPACE || body[valueStart] === TAB) valueStart++;
  let line = source.quoted ? `{${quoteName(name)},${labels}}` : `${name}{${labels}}`;
  line += ` ${body.toString('latin1', valueStart, records[r + R_VALUE_END]!)}`;
  const tsStart = records[r + R_TS_START]!;
  if (tsStart >= 0) {
    const timestamp = body.toString('latin1', tsStart, records[r + R_TS_END]!);
    line += ` ${parsed.format === format ? timestamp : format === 'text' ? secondsToMilliseconds(timestamp) : millisecondsToSeconds(timestamp)}`;
  }
  if (exemplar) line += ` ${body.toString('utf8', records[r + R_EXEMPLAR_START]!, records[r + R_END]!)}`;
  return `${line}\n`;
}

/** Prometheus' OpenMetrics parser keeps int64(seconds * 1000); the text format carries milliseconds. */
function secondsToMilliseconds(seconds: string): string {
  const ms = Math.trunc(Number(seconds) * 1000);
  return Number.isSafeInteger(ms) ? String(ms === 0 ? 0 : ms) : BigInt(ms).toString();
}

/** A text timestamp (digits: see isTextTimestamp) as OpenMetrics seconds, exactly. */
function millisecondsToSeconds(milliseconds: string): string {
  const digits = milliseconds.replace(/^0+(?=\d)/, '').padStart(4, '0');
  return `${digits.slice(0, -3)}.${digits.slice(-3)}`;
}

/** `name="value",...` */
function labelsText(labels: TargetLabels): string {
  return labels.map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(',');
}

/** The target, for messages: "container app", or its own labels ("namespace shop, pod web-1"). */
function describeTarget(target: FetchedTarget): string {
  return target.labels === undefined ? `container ${target.container}` : target.labels.map(([name, value]) => `${name} ${value}`).join(', ');
}

export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

export function escapeHelp(help: string, openMetrics: boolean): string {
  // Most HELP texts need no escape: looked for first, the replace (and its garbage) is left out.
  if (!help.includes('\\') && !help.includes('\n') && !(openMetrics && help.includes('"'))) return help;
  return help.replace(openMetrics ? /[\\"\n]/g : /[\\\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

/**
 * The exposition written in pieces of PIECE_BYTES (larger only for a longer line): a full piece is
 * never written again, so it can be handed out while the next one fills.
 */
const PIECE_BYTES = 256 * 1024;
/**
 * Pieces handed back once sent (recyclePiece), for the next answer to write into: a fresh 256 KiB
 * buffer is mmapped, faulted in and unmapped again on every scrape (~5% of a scrape's CPU).
 */
const sparePieces: Buffer[] = [];
const MAX_SPARE_PIECES = 4;

/** Gives a piece of a streamed answer back once it has been written out; it must not be read after. */
export function recyclePiece(piece: Buffer): void {
  const memory = piece.buffer as ArrayBuffer;
  if (memory.byteLength !== PIECE_BYTES || sparePieces.length >= MAX_SPARE_PIECES) return;
  for (let i = 0; i < sparePieces.length; i++) if (sparePieces[i]!.buffer === memory) return;
  sparePieces.push(Buffer.from(memory, 0, PIECE_BYTES));
}

/** Frees the spare pieces now (see freeNow). */
export function freePieces(): void {
  for (const piece of sparePieces.splice(0)) freeNow(piece);
}

function newPiece(bytes: number): Buffer {
  return bytes <= PIECE_BYTES ? sparePieces.pop() ?? Buffer.allocUnsafeSlow(PIECE_BYTES) : Buffer.allocUnsafeSlow(bytes);
}

const NO_PIECE = Buffer.alloc(0);

class Output {
  buf = newPiece(PIECE_BYTES);
  pos = 0;
  /** Pieces filled and not taken yet. */
  full: Buffer[] = [];

  constructor() {
    keepLastInstance(this);
  }

  /** Lets go of the pieces once the answer is over: the Output stays referenced as its class's last instance (keepLastInstance). */
  forget(): void {
    this.buf = NO_PIECE;
    this.full = [];
  }

  /** Makes room for `bytes` more in buf: a full piece is set aside and a new one started. */
  ensure(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    if (this.pos > 0) this.full.push(this.buf.subarray(0, this.pos));
    this.buf = newPiece(bytes);
    this.pos = 0;
  }

  takeFull(): Buffer[] {
    const full = this.full;
    this.full = [];
    return full;
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
}
