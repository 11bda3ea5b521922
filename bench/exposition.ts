// Micro-benchmark of the exposition core alone (no HTTP), on the bodies the sidecar benchmark serves:
// 3 targets x ~16.8k series (bench/sidecar/generate.ts). Reports, in one run: the whole merge
// (parse + merge + write), parsing alone, the merge of bodies already parsed (what is left once
// parsing overlaps with receiving), a plain Buffer.concat of the bodies (the floor a concatenating
// proxy pays), and the same bodies as OpenMetrics served as OpenMetrics (where the merge checks
// OpenMetrics' rules on every family). With a baseline, the whole merge of each is timed in turn,
// in rounds, and the ratio of each round's p50s is reported (their median is the figure to read).
// Run: npx node --expose-gc bench/exposition.ts [iterations] [baseline exposition index.ts to compare with]

import { BodyParser, ExpositionError, parseBody, releaseRecords, type ParsedBody } from '../src/sidecar/exposition/parse.ts';
import * as current from '../src/sidecar/exposition/index.ts';
import type { FetchedTarget } from '../src/sidecar/exposition/index.ts';
import { negotiateOutput } from '../src/sidecar/negotiate.ts';
import { generateExposition } from './sidecar/generate.ts';
import { PROMETHEUS_ACCEPT } from '../test/sidecar/helpers.ts';

const APPS = ['shop', 'pay', 'edge'];
const SERIES_PER_TARGET = 16_800;
const ROUNDS = 5;
/** Options both cores read (a baseline from before negotiation reads acceptOpenMetrics). */
const OPTIONS = { containerLabel: 'container', accept: negotiateOutput(PROMETHEUS_ACCEPT), acceptOpenMetrics: true };

type Core = Pick<typeof current, 'DropCounter' | 'mergeTargets'>;

const pct = (list: number[], p: number): number => [...list].sort((a, b) => a - b)[Math.floor((list.length - 1) * p)]!;
const mb = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);

/** p50 wall and CPU milliseconds of run() over the iterations. */
function measure(iterations: number, run: () => void, prepare?: () => void): { wall: number; cpu: number } {
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < iterations; i++) {
    prepare?.();
    const start = performance.now();
    const used = process.cpuUsage();
    run();
    const spent = process.cpuUsage(used);
    wall.push(performance.now() - start);
    cpu.push((spent.user + spent.system) / 1000);
  }
  return { wall: pct(wall, 0.5), cpu: pct(cpu, 0.5) };
}

const preparsed: FetchedTarget[][] = [];

/** A BodyParser's result for body received in 64 KiB pieces. */
function fedInPieces(body: Buffer): ParsedBody | ExpositionError {
  const parser = new BodyParser('text', ['container']);
  for (let end = 65536; end < body.length; end += 65536) parser.feed(body, end);
  try {
    return parser.finish(body, body.length);
  } catch (e) {
    if (e instanceof ExpositionError) return e;
    throw e;
  }
}

/**
 * p50 CPU time of a merge (parse + write) of each core and its targets, their iterations taken in
 * turn so that a busy machine or a warmer heap favours neither.
 */
function benchMerges(merges: Array<[string, Core, FetchedTarget[]]>, iterations: number, quiet = false): number[] {
  const options = OPTIONS;
  const runs = merges.map(([name, core, targets]) => {
    const drops = new core.DropCounter();
    for (let i = 0; i < 11; i++) core.mergeTargets(targets, options, drops);
    const merge = (): void => {
      core.mergeTargets(targets, options, drops);
    };
    return { name, wall: [] as number[], cpu: [] as number[], merge };
  });
  (globalThis as { gc?: () => void }).gc?.();
  for (let i = 0; i < iterations; i++) {
    for (const run of runs) {
      const start = performance.now();
      const used = process.cpuUsage();
      run.merge();
      const spent = process.cpuUsage(used);
      run.wall.push(performance.now() - start);
      run.cpu.push((spent.user + spent.system) / 1000);
    }
  }
  if (!quiet) for (const run of runs) console.log(`${run.name}: p50 ${pct(run.wall, 0.5).toFixed(2)} ms, CPU p50 ${pct(run.cpu, 0.5).toFixed(2)} ms`);
  return runs.map((run) => pct(run.cpu, 0.5));
}

async function main(): Promise<void> {
  const iterations = Number(process.argv[2] ?? 50);
  const bodies = APPS.map((app, i) => Buffer.from(generateExposition(app, SERIES_PER_TARGET, i + 1).body));
  const targets: FetchedTarget[] = bodies.map((body, i) => ({
    container: APPS[i]!, endpoint: '9100', body, contentType: 'text/plain; version=0.0.4', durationSeconds: 0.01,
  }));
  const merged = current.mergeTargets(targets, OPTIONS, new current.DropCounter());
  const served = merged.targets.reduce((sum, t) => sum + t.samples, 0);
  console.log(`input: ${targets.length} targets, ${mb(bodies.reduce((n, b) => n + b.length, 0))} MiB, ${served} samples; ` +
    `output ${mb(merged.body.length)} MiB`);

  const concat = measure(iterations, () => void Buffer.concat(bodies)).wall;
  const baseline = process.argv[3];
  const cores: Array<[string, Core]> = [['merge (parse + write)', current]];
  if (baseline !== undefined) cores.push([`baseline merge (${baseline})`, (await import(baseline)) as Core]);
  const withTargets = cores.map(([name, core]): [string, Core, FetchedTarget[]] => [name, core, targets]);
  const [merge, before] = benchMerges(withTargets, iterations);
  if (before !== undefined) {
    // Rounds in both orders: which core runs first in a round must not decide the ratio.
    const ratios = [merge! / before];
    for (let round = 1; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? withTargets : [...withTargets].reverse();
      const cpu = benchMerges(order, iterations, true);
      ratios.push(round % 2 === 0 ? cpu[0]! / cpu[1]! : cpu[1]! / cpu[0]!);
    }
    console.log(`merge / baseline merge, CPU p50 per round: ${ratios.map((r) => r.toFixed(3)).join(' ')}; median ${pct(ratios, 0.5).toFixed(3)}`);
  }
  // The same bodies as OpenMetrics, served as OpenMetrics.
  const openMetrics: FetchedTarget[] = bodies.map((body, i) => ({
    container: APPS[i]!, endpoint: '9100', contentType: 'application/openmetrics-text; version=1.0.0', durationSeconds: 0.01,
    body: Buffer.from(`${body.toString().replace(/^# (HELP|TYPE) (\S+)_total /gm, '# $1 $2 ')}# EOF\n`),
  }));
  const asOpenMetrics = current.mergeTargets(openMetrics, OPTIONS, new current.DropCounter());
  if (asOpenMetrics.format !== 'openmetrics') throw new Error(`OpenMetrics bodies served as text: ${asOpenMetrics.servedAsText}`);
  const [textMerge, omMerge] = benchMerges([
    ['text merge, again', current, targets], ['OpenMetrics merge (parse + rules + write)', current, openMetrics],
  ], iterations);
  const parse = measure(iterations, () => {
    for (const body of bodies) releaseRecords(parseBody(body, 'text', ['container']).records);
  });
  // What is left on the sidecar's critical path once every body was parsed while it arrived.
  const options = OPTIONS;
  const written = measure(iterations, () => {
    current.mergeTargets(preparsed.shift()!, options, new current.DropCounter());
  }, () => preparsed.push(targets.map((target) => ({ ...target, parsed: fedInPieces(target.body!) }))));
  console.log(`merge of bodies parsed while they arrived: p50 ${written.wall.toFixed(2)} ms, CPU p50 ${written.cpu.toFixed(2)} ms`);
  console.log(`parse alone (3 bodies): p50 ${parse.wall.toFixed(2)} ms, CPU p50 ${parse.cpu.toFixed(2)} ms`);
  console.log(`Buffer.concat of the bodies: p50 ${concat.toFixed(2)} ms; merge CPU / concat: ${(merge! / concat).toFixed(1)}`);
  console.log(`OpenMetrics merge CPU / text merge CPU (taken in turn): ${(omMerge! / textMerge!).toFixed(2)}`);
  console.log(`RSS ${mb(process.memoryUsage().rss)} MiB`);
}

if (import.meta.main) await main();
