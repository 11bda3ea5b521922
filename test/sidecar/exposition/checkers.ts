// Independent checks of merged expositions: the strict outside parsers (promtool for text, the Python
// OpenMetrics parser) and a small reference reader, written apart from the scanner under test.
import { spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';
import type { AnyMergeOutput, MergeAnswer } from '../../../src/sidecar/exposition/types.ts';
import { wholeAnswer } from '../../../src/sidecar/exposition/index.ts';
import { requireTool } from '../../helpers/tools.ts';

/** promtool check metrics on stdin: undefined when it parsed (lint findings about names are not parse errors). */
export function promtoolError(promtool: string, text: string | Buffer): string | undefined {
  const result = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  // Exit 3 means lint findings only (third-party metric names); a parse error exits 1 and says so.
  if ((result.status === 0 || result.status === 3) && !result.stderr.includes('error while linting')) return undefined;
  return `promtool exit ${result.status}: ${result.stderr}${result.stdout}`.slice(0, 2000);
}

const PYTHON_PARSE = `
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for text in json.load(sys.stdin):
    try:
        list(text_string_to_metric_families(text))
        out.append(None)
    except Exception as e:
        out.append(repr(e)[:1500])
json.dump(out, sys.stdout)
`;

/** The Python OpenMetrics parser over many texts in one process: per text, undefined or its error. */
export function openMetricsErrors(python: string, texts: string[]): Array<string | undefined> {
  const result = spawnSync(python, ['-c', PYTHON_PARSE], { input: JSON.stringify(texts), encoding: 'utf8', maxBuffer: 1 << 28 });
  if (result.status !== 0) throw new Error(`python failed: ${result.stderr}`);
  return (JSON.parse(result.stdout) as Array<string | null>).map((e) => e ?? undefined);
}

export function tools(t: TestContext): { promtool: string; python: string } | undefined {
  const promtool = requireTool(t, 'promtool');
  const python = requireTool(t, 'python3');
  return promtool === undefined || python === undefined ? undefined : { promtool, python };
}

export interface RefSample {
  name: string;
  /** Label values unescaped. */
  labels: Array<[string, string]>;
  value: string;
  timestamp: string | undefined;
  exemplar: string | undefined;
  /** Its metric name or a label name was quoted (Prometheus 3's UTF-8 syntax). */
  quoted: boolean;
}

export interface RefFamily {
  name: string;
  type: string | undefined;
  help: string | undefined;
  unit: string | undefined;
  samples: RefSample[];
  /** A metadata line quoted its name. */
  quoted: boolean;
}

const SUFFIXES: Record<string, string[]> = {
  'text:histogram': ['_bucket', '_count', '_sum'],
  'text:summary': ['', '_count', '_sum'],
  'openmetrics:counter': ['_total', '_created'],
  'openmetrics:histogram': ['_bucket', '_count', '_sum', '_created'],
  'openmetrics:summary': ['', '_count', '_sum', '_created'],
  'openmetrics:gaugehistogram': ['_bucket', '_gcount', '_gsum'],
  'openmetrics:info': ['_info'],
};

export function belongs(sampleName: string, family: string, type: string | undefined, format: string): boolean {
  return (SUFFIXES[`${format}:${type}`] ?? ['']).some((suffix) => family + suffix === sampleName);
}

/** \\ \" \n undone; any other backslash is kept, as Prometheus reads it. */
function unescape(value: string): string {
  return value.replace(/\\(.)/g, (escape, c: string) => (c === 'n' ? '\n' : c === '\\' || c === '"' ? c : escape));
}

/** The quoted string at line[i] (a name or label value), unescaped, and the index after its closing quote. */
function readQuoted(line: string, i: number): [string, number] {
  if (line[i] !== '"') throw new Error(`expected a quote at ${i}: ${line}`);
  let j = i + 1;
  while (j < line.length && line[j] !== '"') j += line[j] === '\\' ? 2 : 1;
  if (j >= line.length) throw new Error(`unterminated quoted string: ${line}`);
  return [unescape(line.slice(i + 1, j)), j + 1];
}

/** A metric name as written: plain, or quoted (Prometheus 3's UTF-8 names), and the index after it. */
function readName(line: string, i: number): [string, number] {
  if (line[i] === '"') return readQuoted(line, i);
  let j = i;
  while (j < line.length && line[j] !== ' ') j++;
  return [line.slice(i, j), j];
}

/**
 * Reads an exposition in the canonical layout promux and the generators write (single spaces, HELP/TYPE
 * before samples; text may have no blank between `}` and the value; names may be quoted, the metric
 * name inside the braces). Throws on what it cannot read. A sample joins the family of the last
 * metadata line when its name fits that family's type, else it starts a family of its own.
 */
export function readExposition(text: string, format: 'text' | 'openmetrics'): RefFamily[] {
  const families: RefFamily[] = [];
  let current: RefFamily | undefined;
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  for (const line of lines) {
    if (line === '' || line === '# EOF') continue;
    const meta = /^# (HELP|TYPE|UNIT) /.exec(line);
    if (meta !== null) {
      const [name, end] = readName(line, meta[0].length);
      if (end < line.length && line[end] !== ' ') throw new Error(`cannot read metadata: ${line}`);
      const rest = line.slice(end + 1);
      const keyword = meta[1];
      let metadataOf = current;
      if (metadataOf === undefined || metadataOf.name !== name || metadataOf.samples.length > 0) {
        metadataOf = { name, type: undefined, help: undefined, unit: undefined, samples: [], quoted: false };
        families.push(metadataOf);
        current = metadataOf;
      }
      if (line[meta[0].length] === '"') metadataOf.quoted = true;
      if (keyword === 'HELP') metadataOf.help = rest;
      else if (keyword === 'TYPE') metadataOf.type = rest;
      else metadataOf.unit = rest;
      continue;
    }
    if (line.startsWith('#')) continue;
    const sample = readSample(line);
    if (current === undefined || !belongs(sample.name, current.name, current.type, format)) {
      current = { name: sample.name, type: undefined, help: undefined, unit: undefined, samples: [], quoted: false };
      families.push(current);
    }
    current.samples.push(sample);
  }
  return families;
}

function readSample(line: string): RefSample {
  let i = 0;
  let name: string | undefined;
  if (line[0] !== '{') {
    while (i < line.length && line[i] !== '{' && line[i] !== ' ') i++;
    name = line.slice(0, i);
  }
  const labels: Array<[string, string]> = [];
  let quoted = false;
  if (line[i] === '{') {
    i++;
    while (line[i] !== '}') {
      let labelName: string;
      if (line[i] === '"') {
        quoted = true;
        [labelName, i] = readQuoted(line, i);
        if (line[i] === ',' || line[i] === '}') {
          if (name !== undefined) throw new Error(`two metric names: ${line}`);
          name = labelName;
          if (line[i] === ',') i++;
          continue;
        }
      } else {
        const eq = line.indexOf('=', i);
        labelName = line.slice(i, eq);
        i = eq;
      }
      if (line[i] !== '=') throw new Error(`expected = in ${line}`);
      let value: string;
      [value, i] = readQuoted(line, i + 1);
      labels.push([labelName, value]);
      if (line[i] === ',') i++;
      if (i >= line.length) throw new Error(`unterminated labels: ${line}`);
    }
    i++;
  }
  if (name === undefined || name === '') throw new Error(`no metric name: ${line}`);
  const rest = line.slice(line[i] === ' ' ? i + 1 : i);
  const hash = rest.indexOf(' # ');
  const fields = (hash === -1 ? rest : rest.slice(0, hash)).split(' ');
  if (fields.length > 2 || fields[0] === '') throw new Error(`cannot read sample: ${line}`);
  return { name, labels, value: fields[0]!, timestamp: fields[1], exemplar: hash === -1 ? undefined : rest.slice(hash + 3), quoted };
}

/** The answer with its body whole: a streamed one (mergeStreamed) taken to its end, which releases its snapshot. */
export function whole(output: MergeAnswer | AnyMergeOutput): AnyMergeOutput {
  return 'body' in output ? output : wholeAnswer(output);
}
