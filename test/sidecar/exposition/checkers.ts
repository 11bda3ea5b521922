// Independent checks of merged expositions: the strict outside parsers (promtool for text, the Python
// OpenMetrics parser) and a small reference reader, written apart from the scanner under test.
import { spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';
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
}

export interface RefFamily {
  name: string;
  type: string | undefined;
  help: string | undefined;
  unit: string | undefined;
  samples: RefSample[];
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

function unescape(value: string): string {
  return value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

/**
 * Reads an exposition in the canonical layout promux and the generators write (single spaces, HELP/TYPE
 * before samples). Throws on what it cannot read. A sample joins the family of the last metadata line
 * when its name fits that family's type, else it starts a family of its own.
 */
export function readExposition(text: string, format: 'text' | 'openmetrics'): RefFamily[] {
  const families: RefFamily[] = [];
  let current: RefFamily | undefined;
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  for (const line of lines) {
    if (line === '' || line === '# EOF') continue;
    const meta = /^# (HELP|TYPE|UNIT) (\S+)(?: (.*))?$/.exec(line);
    if (meta !== null) {
      const [, keyword, name, rest = ''] = meta;
      let metadataOf = current;
      if (metadataOf === undefined || metadataOf.name !== name || metadataOf.samples.length > 0) {
        metadataOf = { name: name!, type: undefined, help: undefined, unit: undefined, samples: [] };
        families.push(metadataOf);
        current = metadataOf;
      }
      if (keyword === 'HELP') metadataOf.help = rest;
      else if (keyword === 'TYPE') metadataOf.type = rest;
      else metadataOf.unit = rest;
      continue;
    }
    if (line.startsWith('#')) continue;
    const sample = readSample(line);
    if (current === undefined || !belongs(sample.name, current.name, current.type, format)) {
      current = { name: sample.name, type: undefined, help: undefined, unit: undefined, samples: [] };
      families.push(current);
    }
    current.samples.push(sample);
  }
  return families;
}

function readSample(line: string): RefSample {
  let i = 0;
  while (i < line.length && line[i] !== '{' && line[i] !== ' ') i++;
  const name = line.slice(0, i);
  const labels: Array<[string, string]> = [];
  if (line[i] === '{') {
    i++;
    while (line[i] !== '}') {
      const eq = line.indexOf('=', i);
      const labelName = line.slice(i, eq);
      let j = eq + 2;
      while (line[j] !== '"') j += line[j] === '\\' ? 2 : 1;
      labels.push([labelName, unescape(line.slice(eq + 2, j))]);
      i = j + 1;
      if (line[i] === ',') i++;
      if (i >= line.length) throw new Error(`unterminated labels: ${line}`);
    }
    i++;
  }
  const rest = line.slice(i + 1);
  const hash = rest.indexOf(' # ');
  const fields = (hash === -1 ? rest : rest.slice(0, hash)).split(' ');
  if (fields.length > 2 || fields[0] === '') throw new Error(`cannot read sample: ${line}`);
  return { name, labels, value: fields[0]!, timestamp: fields[1], exemplar: hash === -1 ? undefined : rest.slice(hash + 3) };
}
