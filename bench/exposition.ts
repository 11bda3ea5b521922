// Micro-benchmark of the exposition core alone (parse + merge + write, no HTTP): 3 targets of
// ~16.8k series each (~4.9 MB merged), shaped like node_exporter output. Compares one merge with a
// plain Buffer.concat of the same bodies (the floor a concatenating proxy pays), and reports heap.
// Run: npx node --expose-gc bench/exposition.ts [iterations]

import { DropCounter, mergeTargets, type FetchedTarget } from '../src/sidecar/exposition/index.ts';

const SERIES_PER_TARGET = 16_800;

/** A body of about `series` samples: gauges and counters with 2-4 labels, and histograms. */
export function generateBody(series: number, seed: number): Buffer {
  const lines: string[] = [];
  let written = 0;
  for (let f = 0; written < series; f++) {
    const name = `bench_s${f % 40}_metric_${f}`;
    const kind = f % 5;
    if (kind === 4) {
      lines.push(`# HELP ${name}_seconds Latency of operation ${f}.`, `# TYPE ${name}_seconds histogram`);
      for (let s = 0; s < 8 && written < series; s++) {
        let cumulative = 0;
        for (const le of ['0.005', '0.01', '0.05', '0.1', '0.5', '1', '5', '+Inf']) {
          cumulative += (seed + s) % 7;
          lines.push(`${name}_seconds_bucket{handler="/api/v1/item/${s}",method="GET",le="${le}"} ${cumulative}`);
        }
        lines.push(`${name}_seconds_sum{handler="/api/v1/item/${s}",method="GET"} ${(cumulative * 0.0173).toFixed(4)}`);
        lines.push(`${name}_seconds_count{handler="/api/v1/item/${s}",method="GET"} ${cumulative}`);
        written += 10;
      }
    } else {
      const type = kind % 2 === 0 ? 'gauge' : 'counter';
      const metric = type === 'counter' ? `${name}_total` : name;
      lines.push(`# HELP ${metric} Value of thing ${f} for the device.`, `# TYPE ${metric} ${type}`);
      for (let s = 0; s < 24 && written < series; s++, written++) {
        lines.push(`${metric}{device="sda${s}",mode="user",cpu="${s % 8}"} ${(seed * 1000.5 + s * 17.25 + f).toExponential(6)}`);
      }
    }
  }
  return Buffer.from(`${lines.join('\n')}\n`);
}

function main(): void {
  const iterations = Number(process.argv[2] ?? 50);
  const targets: FetchedTarget[] = [1, 2, 3].map((seed) => ({
    container: `container-${seed}`,
    body: generateBody(SERIES_PER_TARGET, seed),
    contentType: 'text/plain; version=0.0.4',
    durationSeconds: 0.01,
  }));
  const gc = (globalThis as { gc?: () => void }).gc;
  const drops = new DropCounter();
  const options = { containerLabel: 'container', acceptOpenMetrics: false };
  const merged = mergeTargets(targets, options, drops);
  const served = merged.targets.reduce((sum, t) => sum + t.samples, 0);
  const input = targets.reduce((sum, t) => sum + t.body!.length, 0);
  // As the sidecar does on demand: each merge writes into the previous one's buffer.
  let reuse = merged.buffer;
  for (let i = 0; i < 10; i++) reuse = mergeTargets(targets, { ...options, reuse }, drops).buffer;
  gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const times: number[] = [];
  const cpuTimes: number[] = [];
  let peakHeap = 0;
  for (let i = 0; i < iterations; i++) {
    const start = performance.now();
    const cpu = process.cpuUsage();
    reuse = mergeTargets(targets, { ...options, reuse }, drops).buffer;
    const used = process.cpuUsage(cpu);
    cpuTimes.push((used.user + used.system) / 1000);
    times.push(performance.now() - start);
    peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  }
  const concatTimes: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const start = performance.now();
    Buffer.concat(targets.map((t) => t.body!));
    concatTimes.push(performance.now() - start);
  }
  const pct = (list: number[], p: number): number => [...list].sort((a, b) => a - b)[Math.floor((list.length - 1) * p)]!;
  const mb = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);
  console.log(`input: ${targets.length} targets, ${mb(input)} MiB, ${served} samples served; output ${mb(merged.body.length)} MiB`);
  console.log(`merge: p50 ${pct(times, 0.5).toFixed(2)} ms, p99 ${pct(times, 0.99).toFixed(2)} ms over ${iterations} runs`);
  console.log(`merge CPU time: p50 ${pct(cpuTimes, 0.5).toFixed(2)} ms, min ${pct(cpuTimes, 0).toFixed(2)} ms`);
  console.log(`Buffer.concat of the bodies: p50 ${pct(concatTimes, 0.5).toFixed(2)} ms`);
  console.log(`heap: ${mb(heapBefore)} MiB after gc, peak ${mb(peakHeap)} MiB during merges; RSS ${mb(process.memoryUsage().rss)} MiB`);
}

if (import.meta.main) main();
