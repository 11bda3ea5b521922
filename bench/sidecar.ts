// Benchmark of `promux sidecar` (run on demand: `npm run bench -- sidecar`; never part of npm test).
// Three local targets of ~16.8k series each, served from memory; the sidecar runs as the image runs
// it (the esbuild bundle from scripts/build.js) with candidate Node heap flags, side by side with a
// plain concatenating proxy over the same targets (the floor). Measures per-scrape latency p50/p99,
// CPU per scrape and peak RSS of the child from /proc, and its CPU while nobody scrapes. Writes the
// "Sidecar" section of BENCHMARKS.md.
// `node bench/sidecar.ts --baseline <dir>` (dir: a checkout of another commit, node_modules installed
// or linked) instead compares the CPU per scrape of that checkout's sidecar and this one's, each as
// its checkout injects it (its Dockerfile's entrypoint flags, its injector's environment), on the
// same targets, their scrapes taken in turn (on a busy machine, two runs of separate benchmarks
// differ more than the code does), with their p50, peak private memory and CPU by thread (V8's
// helper threads apart from the main thread, to tell garbage collection's share); it only prints
// (`--gzip`: the scrapes take gzip). `--memory [dir]` prints where the private memory of this
// checkout's sidecar (or dir's) is; `--cgroup <MiB>` runs only the memory-limit part, at that limit.
// `--quick [dir]` measures only the floor and this checkout's (or dir's) sidecar as injected (see quick()).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SIDECAR_ENV } from '../src/inject/sidecar.ts';
import { cpuModel, cpuMs, CLOCK_TICK_MS, entrypointFlags, procStatus, ROOT, scrape, startChild, stopChild, threadCpuMs, writeSection, type Started } from './lib/children.ts';
import { createMemoryCgroup, dropPageCache, type MemoryCgroup } from './sidecar/cgroup.ts';
import { generateExposition } from './sidecar/generate.ts';
import { PROMETHEUS_PROTOBUF_ACCEPT } from '../test/sidecar/exposition/accept.ts';
import { PROMETHEUS_ACCEPT } from '../test/sidecar/helpers.ts';

const loadBefore = loadavg().map((l) => l.toFixed(2)).join(', ');
const APPS = ['shop', 'pay', 'edge'];
const SERIES_PER_TARGET = 16_800;
/** A more usual pod: an application and a sidecar or two with a few thousand series in all. */
const SMALL_SERIES_PER_TARGET = 1_700;
const WARMUP = 20;
const SCRAPES = 200;
const IDLE_SECONDS = 30; // covers one run of the HTTP server's 30 s request-timeout check
const IDLE_SETTLE_SECONDS = 8;
const PROMETHEUS_HEADERS = { accept: PROMETHEUS_ACCEPT, 'x-prometheus-scrape-timeout-seconds': '10' };
/** How Node runs the sidecar: flags on its command line, NODE_OPTIONS, and other environment variables. */
interface NodeSetup {
  label: string;
  flags: string[];
  nodeOptions: string;
  env?: Record<string, string>;
}

/** A sidecar run as an image's entrypoint flags and an injector's environment (NODE_OPTIONS, MALLOC_*) run it. */
function injectedSetup(flags: string[], injectedEnv: typeof SIDECAR_ENV): NodeSetup {
  const nodeOptions = injectedEnv.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '';
  const env = injectedEnv.filter((e) => e.name !== 'NODE_OPTIONS');
  const envText = env.map((e) => `${e.name}=${e.value}`).join(' ');
  return {
    label: `as injected: \`${[...flags, `NODE_OPTIONS="${nodeOptions}"`, envText].join(' ')}\``,
    flags,
    nodeOptions,
    env: Object.fromEntries(env.map((e) => [e.name, e.value])),
  };
}

/**
 * Exactly what an injected sidecar runs with: the image's entrypoint flags (--no-memory-reducer:
 * V8 stops waking up every 8 s while nobody scrapes) and the NODE_OPTIONS the injector sets (a
 * small old space makes V8 collect a scrape's buffers soon after it, as they count as external
 * memory against that limit, instead of letting several scrapes' worth pile up).
 * --single-threaded-gc was tried too: no less memory, and at most a few percent less CPU per scrape
 * back to back (BENCHMARKS.md, issue 13).
 */
const INJECTED = injectedSetup(entrypointFlags(), SIDECAR_ENV);
/** Node setups tried for the sidecar: Node's defaults, a smaller old space, as injected. */
const NODE_SETUPS: NodeSetup[] = [
  { label: 'node defaults', flags: [], nodeOptions: '' },
  { label: `\`${[...entrypointFlags(), 'NODE_OPTIONS="--max-old-space-size=32 --max-semi-space-size=1"'].join(' ')}\``,
    flags: entrypointFlags(), nodeOptions: '--max-old-space-size=32 --max-semi-space-size=1' },
  INJECTED,
];

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });


interface Run {
  p50: number;
  p99: number;
  cpuPerScrapeMs: number;
  bytes: number;
}

async function measure(started: Started, headers: Record<string, string>, onSample: () => void): Promise<Run> {
  for (let i = 0; i < WARMUP; i++) await scrape(agent, started.port, headers);
  const pid = started.child.pid!;
  const cpuBefore = cpuMs(pid);
  const latencies: number[] = [];
  let bytes = 0;
  const sampler = setInterval(onSample, 5);
  for (let i = 0; i < SCRAPES; i++) {
    const t0 = performance.now();
    bytes = await scrape(agent, started.port, headers);
    latencies.push(performance.now() - t0);
  }
  clearInterval(sampler);
  latencies.sort((a, b) => a - b);
  return {
    p50: latencies[Math.floor(SCRAPES * 0.5)]!,
    p99: latencies[Math.floor(SCRAPES * 0.99)]!,
    cpuPerScrapeMs: (cpuMs(pid) - cpuBefore) / SCRAPES,
    bytes,
  };
}

/** Peak private (anonymous) memory seen while sampling: what a memory limit is charged for. */
function anonPeak(pid: number): { sample: () => void; peak: () => number } {
  let peak = 0;
  return { sample: () => (peak = Math.max(peak, procStatus(pid, 'RssAnon'))), peak: () => peak };
}

/** CPU over IDLE_SECONDS after `settleSeconds` (the last scrape's keep-alive timeouts, 5 s). */
async function idleCpuMs(pid: number, settleSeconds = IDLE_SETTLE_SECONDS): Promise<number> {
  await sleep(settleSeconds * 1000);
  const before = cpuMs(pid);
  await sleep(IDLE_SECONDS * 1000);
  return cpuMs(pid) - before;
}

async function serve(body: Buffer): Promise<http.Server> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);
const ms = (value: number): string => value.toFixed(1);

interface Targets {
  label: string;
  ports: number[];
  series: number[];
  bytes: number;
  close(): Promise<unknown>;
}

async function startTargets(seriesPerTarget: number): Promise<Targets> {
  const bodies = APPS.map((app, i) => generateExposition(app, seriesPerTarget, i + 1));
  const servers = await Promise.all(bodies.map((b) => serve(Buffer.from(b.body))));
  const series = bodies.map((b) => b.series);
  return {
    label: `3 × ${(seriesPerTarget / 1000).toFixed(1)}k series`,
    ports: servers.map((s) => (s.address() as AddressInfo).port),
    series,
    bytes: bodies.reduce((n, b) => n + Buffer.byteLength(b.body), 0),
    close: () => Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve)))),
  };
}

interface Measured {
  rows: string[];
  run: Run;
  gzip: Run;
  hwm: number;
  anon: number;
  idle?: { fresh: number; after: number; later: number; rss: number; rssFile: number; rssAnon: number; steady: Steady };
}

/** Private memory while scraped every STEADY_INTERVAL_SECONDS, as Prometheus does: the figure paid per pod. */
interface Steady {
  /** RssAnon just before each scrape but the first (the previous one's leftovers), and the largest of them. */
  beforeScrapes: number[];
  max: number;
  rss: number;
  /** CPU per scrape over the whole run (the time between scrapes counted too). */
  cpuPerScrapeMs: number;
  /** RssAnon after the idle periods that follow (no scrape for STEADY_IDLE_SECONDS). */
  idle: number;
}
const STEADY_INTERVAL_SECONDS = 15;
const STEADY_SCRAPES = 5;

function row(workload: string, server: string, flags: string, run: Run, hwm: string, anon: string): string {
  return `| ${workload} | ${server} | ${flags} | ${ms(run.p50)} | ${ms(run.p99)} | ${ms(run.cpuPerScrapeMs)} | ` +
    `${hwm} | ${anon} | ${mib(run.bytes)} |`;
}

async function measureFloor(targets: Targets): Promise<Measured> {
  const proxy = await startChild([join(import.meta.dirname, 'sidecar', 'concat-proxy.ts'), ...targets.ports.map(String)]);
  const anon = anonPeak(proxy.child.pid!);
  const run = await measure(proxy, {}, anon.sample);
  const gzip = await measure(proxy, { 'accept-encoding': 'gzip' }, anon.sample);
  const hwm = procStatus(proxy.child.pid!, 'VmHWM');
  await stopChild(proxy.child);
  return {
    rows: [
      row(targets.label, 'concatenating proxy (floor)', 'node defaults', run, mib(hwm), mib(anon.peak())),
      row(targets.label, 'concatenating proxy (floor), gzip out', 'node defaults', gzip, '(same)', '(same)'),
    ],
    run,
    gzip,
    hwm,
    anon: anon.peak(),
  };
}

/** The bundle's sidecar in front of the targets, run with the setup's Node flags (in the cgroup, if any). */
function startSidecar(bundle: string, setup: NodeSetup, targets: Targets, cgroup?: MemoryCgroup): Promise<Started> {
  const map = APPS.map((app, i) => `${app}:${targets.ports[i]}`).join(',');
  const args = [...setup.flags, bundle, 'sidecar', '--listen_address', '127.0.0.1', '--export_to', '0', '-m', map];
  return startChild(args, setup.nodeOptions, cgroup?.wrap, setup.env);
}

async function measureSidecar(bundle: string, setup: NodeSetup, targets: Targets, withIdle: boolean): Promise<Measured> {
  const sidecar = await startSidecar(bundle, setup, targets);
  const pid = sidecar.child.pid!;
  const fresh = withIdle ? await idleCpuMs(pid) : 0;
  const [rss, rssFile, rssAnon] = ['VmRSS', 'RssFile', 'RssAnon'].map((field) => procStatus(pid, field)) as [number, number, number];
  const anon = anonPeak(pid);
  const text = await measure(sidecar, PROMETHEUS_HEADERS, anon.sample);
  const gzip = await measure(sidecar, { ...PROMETHEUS_HEADERS, 'accept-encoding': 'gzip' }, anon.sample);
  const hwm = procStatus(pid, 'VmHWM');
  const steady = withIdle ? await steadyState(sidecar) : undefined;
  const after = withIdle ? await idleCpuMs(pid) : 0;
  const later = withIdle ? await idleCpuMs(pid, 0) : 0;
  if (steady !== undefined) steady.idle = procStatus(pid, 'RssAnon');
  await stopChild(sidecar.child);
  const label = setup.label;
  return {
    rows: [
      row(targets.label, 'promux sidecar', label, text, mib(hwm), mib(anon.peak())),
      row(targets.label, 'promux sidecar, gzip out', label, gzip, '(same)', '(same)'),
    ],
    run: text,
    gzip,
    hwm,
    anon: anon.peak(),
    ...(steady !== undefined ? { idle: { fresh, after, later, rss, rssFile, rssAnon, steady } } : {}),
  };
}

/** Scrapes (gzip out, as Prometheus asks) every STEADY_INTERVAL_SECONDS; samples RssAnon just before each. */
async function steadyState(started: Started): Promise<Steady> {
  const pid = started.child.pid!;
  const beforeScrapes: number[] = [];
  let rss = 0;
  const cpuBefore = cpuMs(pid);
  for (let i = 0; i < STEADY_SCRAPES; i++) {
    if (i > 0) {
      beforeScrapes.push(procStatus(pid, 'RssAnon'));
      rss = Math.max(rss, procStatus(pid, 'VmRSS'));
    }
    await scrape(agent, started.port, { ...PROMETHEUS_HEADERS, 'accept-encoding': 'gzip' });
    await sleep(STEADY_INTERVAL_SECONDS * 1000);
  }
  beforeScrapes.push(procStatus(pid, 'RssAnon'));
  const cpuPerScrapeMs = (cpuMs(pid) - cpuBefore) / STEADY_SCRAPES;
  return { beforeScrapes, max: Math.max(...beforeScrapes), rss, cpuPerScrapeMs, idle: 0 };
}

/** RSS of Node 24 itself: an HTTP server doing nothing, with the sidecar's flags. */
async function bareNodeServer(): Promise<{ rss: number; rssFile: number }> {
  const script = "require('node:http').createServer().listen(0, '127.0.0.1', function () { " +
    "console.error(JSON.stringify({ msg: 'listening', address: '127.0.0.1:' + this.address().port })); });";
  const bare = await startChild([...INJECTED.flags, '-e', script], INJECTED.nodeOptions, undefined, INJECTED.env);
  await sleep(500);
  const measured = { rss: procStatus(bare.child.pid!, 'VmRSS'), rssFile: procStatus(bare.child.pid!, 'RssFile') };
  await stopChild(bare.child);
  return measured;
}

const LIMIT_MIB = 64;

/** `--cgroup <MiB>`: only the memory-limit runs (warm, then cold), at that limit; prints their rows. */
async function limitedOnly(limitMib: number): Promise<void> {
  const dist = mkdtempSync(join(tmpdir(), 'promux-bench-'));
  const big = await startTargets(SERIES_PER_TARGET);
  try {
    const build = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.js'), '--outdir', dist], { stdio: 'inherit' });
    if (build.status !== 0) throw new Error('scripts/build.js failed');
    console.log(`${big.label}, as injected, in a ${limitMib} MiB memory cgroup; load average before: ${loadBefore}`);
    for (const cold of [false, true]) {
      const limited = await measureLimited(join(dist, 'promux.mjs'), big, cold, limitMib);
      console.log(typeof limited === 'string' ? `not measured: ${limited}` : limited.row);
    }
  } finally {
    rmSync(dist, { recursive: true, force: true });
    await big.close();
    agent.destroy();
  }
}

interface Limited {
  row: string;
  oomKills: number;
}

/**
 * The sidecar as injected, in a memory cgroup limited to LIMIT_MIB: what a Kubernetes memory limit
 * does to it. `cold` empties the page cache first, so that the cgroup is charged for every page of
 * Node's code the sidecar reads, as the first sidecar on a node would be (this drops the whole
 * machine's page cache: a benchmark run on demand only).
 */
async function measureLimited(bundle: string, targets: Targets, cold: boolean, limitMib = LIMIT_MIB): Promise<Limited | string> {
  const cgroup = createMemoryCgroup(`promux-bench-${process.pid}`, limitMib * 1024 * 1024);
  if (typeof cgroup === 'string') return cgroup;
  try {
    if (cold) {
      spawnSync('sync');
      const failed = dropPageCache();
      if (failed !== undefined) return `cannot empty the page cache: ${failed}`;
    }
    const sidecar = await startSidecar(bundle, INJECTED, targets, cgroup);
    const text = await measure(sidecar, PROMETHEUS_HEADERS, () => {});
    const gzip = await measure(sidecar, { ...PROMETHEUS_HEADERS, 'accept-encoding': 'gzip' }, () => {});
    const alive = sidecar.child.exitCode === null;
    await stopChild(sidecar.child);
    const page = cold ? 'empty page cache at start (Node\'s code charged to the cgroup)' : 'warm page cache';
    return {
      row: `| ${targets.label} | ${page} | ${ms(text.p50)} | ${ms(text.p99)} | ${ms(gzip.p50)} | ` +
        `${mib(cgroup.peakBytes())} | ${cgroup.limitHits()} | ${cgroup.oomKills()}${alive ? '' : ' (exited)'} |`,
      oomKills: cgroup.oomKills() + (alive ? 0 : 1),
    };
  } finally {
    cgroup.remove();
  }
}

async function main(): Promise<void> {
  const dist = mkdtempSync(join(tmpdir(), 'promux-bench-'));
  const rows: string[] = [];
  const notes: string[] = [];
  const limitedRows: string[] = [];
  let limitedNote = '';
  const big = await startTargets(SERIES_PER_TARGET);
  const small = await startTargets(SMALL_SERIES_PER_TARGET);
  try {
    const build = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.js'), '--outdir', dist], { stdio: 'inherit' });
    if (build.status !== 0) throw new Error('scripts/build.js failed');
    const bundle = join(dist, 'promux.mjs');
    if (!existsSync(bundle)) throw new Error(`no ${bundle} after the build`);
    const report = (m: Measured): Measured => {
      rows.push(...m.rows);
      for (const r of m.rows) console.log(r);
      return m;
    };

    const floor = report(await measureFloor(big));
    let injected: Measured | undefined;
    for (const setup of NODE_SETUPS) {
      const measured = report(await measureSidecar(bundle, setup, big, setup === INJECTED));
      if (setup === INJECTED) injected = measured;
    }
    report(await measureFloor(small));
    report(await measureSidecar(bundle, INJECTED, small, false));
    for (const cold of [false, true]) {
      const limited = await measureLimited(bundle, big, cold);
      if (typeof limited === 'string') {
        limitedNote = `not measured: ${limited}`;
        break;
      }
      console.log(limited.row);
      limitedRows.push(limited.row);
    }
    const bare = await bareNodeServer();
    if (injected?.idle !== undefined) {
      const ratio = injected.run.p50 / floor.run.p50;
      const gzipRatio = injected.gzip.p50 / floor.gzip.p50;
      const steady = injected.idle.steady;
      notes.push(
        `- ${big.label} as injected, gzip out: p50 ${gzipRatio.toFixed(2)}x the floor's gzip figure ` +
          `(${ms(injected.gzip.p50)} ms against ${ms(floor.gzip.p50)} ms, both at the fastest level; target: at most 1.3x, ` +
          `${gzipRatio <= 1.3 ? 'met' : 'NOT met'}); ${mib(injected.gzip.bytes)} MiB on the wire against ` +
          `${mib(injected.run.bytes)} MiB plain (the floor: ${mib(floor.gzip.bytes)} MiB, without container labels). ` +
          `Peak private memory ${mib(injected.anon)} MiB (target: at most 32, ${injected.anon <= 32 * 1024 * 1024 ? 'met' : 'NOT met'}), ` +
          `peak RSS ${mib(injected.hwm)} MiB (target: at most 80, ${injected.hwm <= 80 * 1024 * 1024 ? 'met' : 'NOT met'}).`,
        `- Between scrapes, scraped every ${STEADY_INTERVAL_SECONDS} s (gzip out) after the load above: private memory ` +
          `just before each scrape ${steady.beforeScrapes.map(mib).join(', ')} MiB (target: at most 24, ` +
          `${steady.max <= 24 * 1024 * 1024 ? 'met' : 'NOT met'}), RSS at most ${mib(steady.rss)} MiB, CPU ` +
          `${ms(steady.cpuPerScrapeMs)} ms per scrape (${ms(injected.gzip.cpuPerScrapeMs)} back to back); ` +
          `${mib(steady.idle)} MiB private after ${STEADY_INTERVAL_SECONDS + 2 * IDLE_SECONDS + IDLE_SETTLE_SECONDS} s without a scrape.`,
        `- ${big.label} as injected: p50 ${ratio.toFixed(2)}x the floor's. Issue 13 sets no ratio for it: it holds ` +
          'the plain p50 and CPU per scrape within 10% of the code it was filed against, which only a side-by-side run ' +
          '(`--baseline`) measures on this machine.',
        `- The sidecar before its first scrape (as injected): RSS ${mib(injected.idle.rss)} MiB, of which ` +
          `${mib(injected.idle.rssFile)} MiB mapped files (the Node binary's code, shared by every copy on a node) and ` +
          `${mib(injected.idle.rssAnon)} MiB private; a bare Node 24 HTTP server (CommonJS, same flags): RSS ` +
          `${mib(bare.rss)} MiB, of which ${mib(bare.rssFile)} MiB mapped files.`,
        `- CPU while nobody scrapes (as injected, on demand): ${injected.idle.fresh} ms over ${IDLE_SECONDS} s ` +
          `after start; after the load, ${injected.idle.after} ms over the ${IDLE_SECONDS} s from ` +
          `${IDLE_SETTLE_SECONDS} s after the last scrape, then ${injected.idle.later} ms over the next ${IDLE_SECONDS} s; ` +
          `/proc counts in ${CLOCK_TICK_MS} ms ticks.`,
      );
    }
  } finally {
    rmSync(dist, { recursive: true, force: true });
    await Promise.all([big.close(), small.close()]);
    agent.destroy();
  }

  const section = [
    '## Sidecar',
    '',
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${cpuModel()}, ${cpus().length} cores, ` +
      `Node ${process.version}, by \`npm run bench -- sidecar\` (bench/sidecar.ts); load average before the run: ` +
      `${loadBefore} (other work on the machine competes for its cores: latencies vary from run to run, CPU ` +
      'times less).',
    '',
    `Input: 3 local static servers with ${big.series.join(' / ')} series (${mib(big.bytes)} MiB of text 0.0.4), and a ` +
      `small pod's ${small.series.join(' / ')} (${mib(small.bytes)} MiB), generated by bench/sidecar/generate.ts ` +
      '(HTTP histograms, client counters, pool gauges, summaries; process_*, nodejs_* and the HTTP histogram in every ' +
      `target). ${SCRAPES} sequential scrapes after ${WARMUP} warm-up ones, with Prometheus's Accept and timeout ` +
      'headers, on one keep-alive connection. The sidecar runs the esbuild bundle (scripts/build.js) as the image ' +
      'does; "as injected" is exactly how an injected sidecar runs: the node flags of the Dockerfile\'s ENTRYPOINT ' +
      'and the NODE_OPTIONS the injector sets (src/inject/sidecar.ts). CPU is utime+stime of the child from /proc; peak RSS its VmHWM, which includes ~40 MiB of the Node ' +
      'binary\'s own mapped code (clean, shared page cache); private memory the peak RssAnon, sampled every 5 ms.',
    '',
    '| workload | server | Node flags | p50 ms | p99 ms | CPU ms/scrape | peak RSS MiB | peak private MiB | response MiB |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    ...notes,
    '',
    `### In a ${LIMIT_MIB} MiB memory limit`,
    '',
    `The sidecar as injected, run in a cgroup with a hard ${LIMIT_MIB} MiB memory limit (cgroup v1 ` +
      'memory.limit_in_bytes or v2 memory.max: the mechanism of a Kubernetes memory limit), scraped as above. ' +
      'The charge is what the limit counts: the anonymous memory plus the page cache the cgroup brought in; ' +
      'clean page cache (Node\'s code) is reclaimed at the limit rather than the process killed.',
    '',
    ...(limitedRows.length > 0
      ? ['| workload | start | p50 ms | p99 ms | p50 ms, gzip out | peak charge MiB | limit reached (times) | OOM kills |',
        '|---|---|---|---|---|---|---|---|', ...limitedRows]
      : [limitedNote]),
    '',
  ].join('\n');
  writeSection('Sidecar', section);
  console.log(`\n${section}`);
}

/**
 * How `root`'s checkout injects its sidecar: its image's entrypoint flags, its injector's environment
 * (SIDECAR_ENV; a checkout older than it sets only SIDECAR_NODE_OPTIONS).
 */
async function injectedBy(root: string): Promise<NodeSetup> {
  const injector = await import(join(root, 'src', 'inject', 'sidecar.ts')) as { SIDECAR_ENV?: typeof SIDECAR_ENV; SIDECAR_NODE_OPTIONS: string };
  return injectedSetup(entrypointFlags(root), injector.SIDECAR_ENV ?? [{ name: 'NODE_OPTIONS', value: injector.SIDECAR_NODE_OPTIONS }]);
}

/** CPU per scrape of the baseline's sidecar and this one's, interleaved in rounds; prints the medians and their ratio. */
async function compare(baselineRoot: string, gzipped: boolean): Promise<void> {
  const headers = gzipped ? { ...PROMETHEUS_HEADERS, 'accept-encoding': 'gzip' } : PROMETHEUS_HEADERS;
  const ROUNDS = 12;
  const PER_ROUND = 20;
  const dist = mkdtempSync(join(tmpdir(), 'promux-bench-'));
  const big = await startTargets(SERIES_PER_TARGET);
  const sidecars: Array<{ name: string; started: Started; cpu: number[]; latencies: number[]; anon: ReturnType<typeof anonPeak> }> = [];
  try {
    for (const [name, root] of [['this checkout', ROOT], [`baseline (${baselineRoot})`, baselineRoot]] as const) {
      const out = join(dist, String(sidecars.length));
      const build = spawnSync(process.execPath, [join(root, 'scripts', 'build.js'), '--outdir', out], { stdio: 'inherit' });
      if (build.status !== 0) throw new Error(`${root}: scripts/build.js failed`);
      const started = await startSidecar(join(out, 'promux.mjs'), await injectedBy(root), big);
      for (let i = 0; i < WARMUP; i++) await scrape(agent, started.port, PROMETHEUS_HEADERS);
      sidecars.push({ name, started, cpu: [], latencies: [], anon: anonPeak(started.child.pid!) });
    }
    // Each round scrapes one, then the other, in turn: both meet the same load on the machine.
    const ratios: number[] = [];
    const sampler = setInterval(() => sidecars.forEach((s) => s.anon.sample()), 5);
    const threadsBefore = sidecars.map((s) => threadCpuMs(s.started.child.pid!));
    for (let round = 0; round < ROUNDS; round++) {
      const before = sidecars.map((s) => cpuMs(s.started.child.pid!));
      for (let i = 0; i < PER_ROUND; i++) {
        for (const sidecar of (round + i) % 2 === 0 ? sidecars : [...sidecars].reverse()) {
          const t0 = performance.now();
          await scrape(agent, sidecar.started.port, headers);
          sidecar.latencies.push(performance.now() - t0);
        }
      }
      sidecars.forEach((s, i) => s.cpu.push((cpuMs(s.started.child.pid!) - before[i]!) / PER_ROUND));
      ratios.push(sidecars[0]!.cpu[round]! / sidecars[1]!.cpu[round]!);
    }
    clearInterval(sampler);
    const byThread = sidecars.map((s, i) => {
      const after = threadCpuMs(s.started.child.pid!);
      const perScrape = [...after].map(([thread, spent]) => [thread, (spent - (threadsBefore[i]!.get(thread) ?? 0)) / (ROUNDS * PER_ROUND)] as const);
      return perScrape.filter(([, spent]) => spent > 0).map(([thread, spent]) => `${thread} ${ms(spent)}`).join(', ');
    });
    const median = (list: number[]): number => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)]!;
    console.log(`${big.label}, each as its checkout injects it, ${gzipped ? 'gzip out, ' : ''}${ROUNDS} rounds of ${PER_ROUND} scrapes of each, one then the other; load average before: ${loadBefore}`);
    for (const s of sidecars) {
      console.log(`${s.name}: CPU ms/scrape median ${ms(median(s.cpu))} (rounds: ${s.cpu.map(ms).join(' ')}); ` +
        `p50 ${ms(median(s.latencies))} ms; peak private ${mib(s.anon.peak())} MiB`);
    }
    sidecars.forEach((s, i) => console.log(`${s.name}: CPU ms/scrape by thread (those alive at the end, that used any): ${byThread[i]}`));
    console.log(`this / baseline, per round: ${ratios.map((r) => r.toFixed(3)).join(' ')}; median ${median(ratios).toFixed(3)}`);
  } finally {
    await Promise.all(sidecars.map((s) => stopChild(s.started.child)));
    await big.close();
    rmSync(dist, { recursive: true, force: true });
  }
}

/** Private memory of a process by where it is, from /proc/PID/smaps, in bytes. */
interface PrivateMemory {
  /** RssAnon of /proc/PID/status. */
  total: number;
  /** malloc's main arena (the brk heap). */
  brk: number;
  /** malloc's arenas of other threads (64 MiB-aligned reservations). */
  arenas: number;
  /** Thread stacks (8 MiB mappings) and the main stack. */
  stacks: number;
  /** Copy-on-write pages of the binary's and libraries' data. */
  fileData: number;
  /** Every other anonymous mapping: V8's heap pages and malloc's mmapped chunks (large ArrayBuffers). */
  otherAnon: number;
}

const ARENA_ALIGN = 64 * 1024 * 1024;

function privateMemory(pid: number): PrivateMemory {
  const result: PrivateMemory = { total: procStatus(pid, 'RssAnon'), brk: 0, arenas: 0, stacks: 0, fileData: 0, otherAnon: 0 };
  let kind: keyof PrivateMemory = 'otherAnon';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head !== null) {
      const start = Number.parseInt(head[1]!, 16);
      const size = Number.parseInt(head[2]!, 16) - start;
      const path = head[4]!;
      kind = path === '[heap]' ? 'brk' : path === '[stack]' ? 'stacks' : path.startsWith('/') ? 'fileData'
        : path !== '' ? 'otherAnon' : start % ARENA_ALIGN === 0 && size < ARENA_ALIGN ? 'arenas'
          : size === 8 * 1024 * 1024 || size === 8 * 1024 * 1024 - 4096 ? 'stacks' : 'otherAnon';
      continue;
    }
    const anon = /^Anonymous:\s+(\d+) kB/.exec(line);
    if (anon !== null) result[kind] += Number(anon[1]) * 1024;
  }
  return result;
}

/** V8's view (bench/sidecar/memory-probe.cjs), asked for with SIGUSR2. */
interface Probe {
  rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number;
  spaces: Record<string, number>;
}

function probe(started: Started): Promise<Probe> {
  return new Promise((resolve) => {
    let text = '';
    const onData = (c: Buffer): void => {
      text += c.toString();
      const m = /\{"probe":(\{.*\})\}\n/.exec(text);
      if (m === null) return;
      started.child.stderr!.off('data', onData);
      resolve(JSON.parse(m[1]!) as Probe);
    };
    started.child.stderr!.on('data', onData);
    started.child.kill('SIGUSR2');
  });
}

function describeMemory(at: string, m: PrivateMemory, p: Probe): string {
  const v8Heap = Object.values(p.spaces).reduce((a, b) => a + b, 0);
  const spaces = Object.entries(p.spaces).filter(([, v]) => v >= 256 * 1024).map(([k, v]) => `${k} ${mib(v)}`).join(', ');
  return `| ${at} | ${mib(m.total)} | ${mib(m.brk)} | ${mib(m.arenas)} | ${mib(m.stacks)} | ${mib(m.fileData)} | ` +
    `${mib(m.otherAnon)} | ${mib(v8Heap)} (${spaces}) | ${mib(p.arrayBuffers)} | ${mib(Math.max(0, m.otherAnon - v8Heap))} |`;
}

/**
 * Where a sidecar's private memory is (`--memory [dir]`: this checkout's, or dir's): before its first
 * scrape, at its peak (smaps read whenever RssAnon passes its last peak by 1 MiB while scraped back to back),
 * and between scrapes 15 s apart; and a bare Node HTTP server with the same flags. Prints a table.
 */
async function memory(root: string): Promise<void> {
  const dist = mkdtempSync(join(tmpdir(), 'promux-bench-'));
  const big = await startTargets(SERIES_PER_TARGET);
  const probeFile = join(import.meta.dirname, 'sidecar', 'memory-probe.cjs');
  // --no-env: without the injected environment but NODE_OPTIONS (as main injected it before MALLOC_ARENA_MAX).
  const chosen = setupFromArgs(process.argv.includes('--no-env') ? { ...INJECTED, env: {} } : INJECTED);
  const setup = { ...chosen, nodeOptions: `${chosen.nodeOptions} --require ${probeFile}` };
  const rows: string[] = [];
  let steadyCpu = 0;
  try {
    const build = spawnSync(process.execPath, [join(root, 'scripts', 'build.js'), '--outdir', dist], { stdio: 'inherit' });
    if (build.status !== 0) throw new Error(`${root}: scripts/build.js failed`);
    const bareScript = "require('node:http').createServer().listen(0, '127.0.0.1', function () { " +
      "console.error(JSON.stringify({ msg: 'listening', address: '127.0.0.1:' + this.address().port })); });";
    const bare = await startChild([...INJECTED.flags, '-e', bareScript], setup.nodeOptions, undefined, setup.env);
    await sleep(1000);
    rows.push(describeMemory('bare Node HTTP server, same flags', privateMemory(bare.child.pid!), await probe(bare)));
    await stopChild(bare.child);

    const sidecar = await startSidecar(join(dist, 'promux.mjs'), setup, big);
    const pid = sidecar.child.pid!;
    await sleep(1000);
    rows.push(describeMemory('sidecar before its first scrape', privateMemory(pid), await probe(sidecar)));
    for (const [name, headers] of [['plain', PROMETHEUS_HEADERS], ['gzip', { ...PROMETHEUS_HEADERS, 'accept-encoding': 'gzip' }]] as const) {
      let peak: PrivateMemory | undefined;
      let last = 0;
      const sampler = setInterval(() => {
        const anon = procStatus(pid, 'RssAnon');
        if (anon < last + 1024 * 1024) return;
        last = anon;
        peak = privateMemory(pid);
      }, 2);
      for (let i = 0; i < 60; i++) await scrape(agent, sidecar.port, headers);
      clearInterval(sampler);
      rows.push(describeMemory(`peak, 60 scrapes back to back (${name}; V8 figures after them)`, peak!, await probe(sidecar)));
    }
    const cpuBefore = cpuMs(pid);
    for (let i = 0; i < 4; i++) {
      await sleep(STEADY_INTERVAL_SECONDS * 1000);
      rows.push(describeMemory(`${STEADY_INTERVAL_SECONDS} s after scrape ${i + 1} of a scrape every ${STEADY_INTERVAL_SECONDS} s (gzip)`,
        privateMemory(pid), await probe(sidecar)));
      await scrape(agent, sidecar.port, { ...PROMETHEUS_HEADERS, 'accept-encoding': 'gzip' });
    }
    steadyCpu = (cpuMs(pid) - cpuBefore) / 4;
    await stopChild(sidecar.child);
  } finally {
    rmSync(dist, { recursive: true, force: true });
    await big.close();
    agent.destroy();
  }
  console.log(`${big.label}, as injected (plus bench/sidecar/memory-probe.cjs), environment ${JSON.stringify(setup.env)}, ${root}; ` +
    `load average before: ${loadBefore}; MiB`);
  console.log('| when | private (RssAnon) | malloc brk heap | malloc thread arenas | stacks | binary data (COW) | ' +
    'other anonymous mappings | of which V8 heap (spaces over 0.25 MiB) | ArrayBuffers (V8) | the rest: malloc mmap chunks |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
  console.log(`CPU per scrape, scraped every ${STEADY_INTERVAL_SECONDS} s (the 15 s between counted too): ${ms(steadyCpu)} ms`);
}

/** `setup` with the NODE_OPTIONS of `--node-options "<flags>"` and the variables of `--env NAME=VALUE` (repeatable) added to its environment. */
function setupFromArgs(setup: NodeSetup): NodeSetup {
  const option = (name: string): string[] => process.argv.flatMap((a, i) => (a === name ? [process.argv[i + 1]!] : []));
  const nodeOptions = option('--node-options')[0] ?? setup.nodeOptions;
  const env = { ...setup.env, ...Object.fromEntries(option('--env').map((e) => e.split('=', 2) as [string, string])) };
  return { label: `NODE_OPTIONS="${nodeOptions}" ${JSON.stringify(env)}`, flags: setup.flags, nodeOptions, env };
}

/**
 * `--quick [dir] [--node-options "<flags>"] [--env NAME=VALUE ...]`: only the floor and the sidecar as injected
 * (or with those NODE_OPTIONS and extra environment) over the 16.8k-series targets, plain and gzip, and
 * the targets' ratios; prints, writes nothing. For trying a change or a flag in a few minutes.
 */
async function quick(root: string): Promise<void> {
  const setup = setupFromArgs(INJECTED);
  const dist = mkdtempSync(join(tmpdir(), 'promux-bench-'));
  const big = await startTargets(SERIES_PER_TARGET);
  try {
    const build = spawnSync(process.execPath, [join(root, 'scripts', 'build.js'), '--outdir', dist], { stdio: 'inherit' });
    if (build.status !== 0) throw new Error(`${root}: scripts/build.js failed`);
    console.log(`${big.label}, ${root}; load average before: ${loadBefore}`);
    const floor = await measureFloor(big);
    const sidecar = await measureSidecar(join(dist, 'promux.mjs'), setup, big, false);
    for (const r of [...floor.rows, ...sidecar.rows]) console.log(r);
    console.log(`gzip p50 ${(sidecar.gzip.p50 / floor.gzip.p50).toFixed(2)}x the floor's (target 1.3x); plain ` +
      `${(sidecar.run.p50 / floor.run.p50).toFixed(2)}x; peak private ${mib(sidecar.anon)} MiB (32); peak RSS ${mib(sidecar.hwm)} MiB (80)`);
  } finally {
    rmSync(dist, { recursive: true, force: true });
    await big.close();
    agent.destroy();
  }
}

/** Prometheus 2.42 with --enable-feature=native-histograms: protobuf first. */
const PROTOBUF_HEADERS = { accept: PROMETHEUS_PROTOBUF_ACCEPT, 'x-prometheus-scrape-timeout-seconds': '10' };

/** Serves `protobuf` to a request that asks for it, `text` to any other (as client_golang does). */
async function serveBoth(text: Buffer, protobuf: Buffer): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const asked = (req.headers.accept ?? '').includes('application/vnd.google.protobuf');
    const body = asked ? protobuf : text;
    res.writeHead(200, {
      'content-type': asked ? 'application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited' : 'text/plain; version=0.0.4; charset=utf-8',
      'content-length': body.length,
    }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/**
 * `node bench/sidecar.ts --protobuf`: the sidecar as injected over the same three 16.8k-series targets,
 * text in and out beside protobuf in and out (the targets also serving native histograms, which only
 * protobuf carries) and a mixed pod (one protobuf target, two text ones, the answer protobuf), each
 * in a fresh process. Writes the "Sidecar: protobuf (issue 14)" section of BENCHMARKS.md.
 */
async function protobufRuns(): Promise<void> {
  const { protobufExposition } = await import('./sidecar/protobuf-input.ts');
  const dist = mkdtempSync(join(tmpdir(), 'promux-bench-'));
  const generated = APPS.map((app, i) => generateExposition(app, SERIES_PER_TARGET, i + 1));
  const texts = generated.map((g) => Buffer.from(g.body));
  const protobufs = APPS.map((app, i) => protobufExposition(app, generated[i]!.body));
  const servers = await Promise.all(texts.map((t, i) => serveBoth(t, protobufs[i]!)));
  const textOnly = await Promise.all(texts.map((t) => serve(t)));
  const port = (s: http.Server): number => (s.address() as AddressInfo).port;
  const rows: string[] = [];
  try {
    const build = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.js'), '--outdir', dist], { stdio: 'inherit' });
    if (build.status !== 0) throw new Error('scripts/build.js failed');
    const bundle = join(dist, 'promux.mjs');
    const cases: Array<{ label: string; ports: number[]; headers: Record<string, string> }> = [
      { label: 'text targets, Prometheus 2.42\'s Accept: text in, OpenMetrics/text out', ports: textOnly.map(port), headers: PROMETHEUS_HEADERS },
      { label: 'text targets, protobuf-first Accept (no target serves protobuf): text out', ports: textOnly.map(port), headers: PROTOBUF_HEADERS },
      { label: 'protobuf targets, protobuf-first Accept: protobuf in and out', ports: servers.map(port), headers: PROTOBUF_HEADERS },
      { label: 'one protobuf target and two text ones, protobuf-first Accept: protobuf out', ports: [port(servers[0]!), ...textOnly.slice(1).map(port)], headers: PROTOBUF_HEADERS },
    ];
    for (const c of cases) {
      const map = APPS.map((app, i) => `${app}:${c.ports[i]}`).join(',');
      const sidecar = await startChild([...INJECTED.flags, bundle, 'sidecar', '--listen_address', '127.0.0.1', '--export_to', '0', '-m', map], INJECTED.nodeOptions, undefined, INJECTED.env);
      const anon = anonPeak(sidecar.child.pid!);
      const run = await measure(sidecar, c.headers, anon.sample);
      const hwm = procStatus(sidecar.child.pid!, 'VmHWM');
      await stopChild(sidecar.child);
      const line = row('3 × 16.8k series', c.label, 'as injected', run, mib(hwm), mib(anon.peak()));
      console.log(line);
      rows.push(line);
    }
  } finally {
    rmSync(dist, { recursive: true, force: true });
    await Promise.all([...servers, ...textOnly].map((s) => new Promise((resolve) => s.close(resolve))));
    agent.destroy();
  }
  const section = [
    '## Sidecar: protobuf (issue 14)',
    '',
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${cpuModel()}, ${cpus().length} cores, ` +
      `Node ${process.version}, by \`node bench/sidecar.ts --protobuf\`; load average before the run: ${loadBefore}.`,
    '',
    `Input: the three targets of the Sidecar section (${texts.map((t) => mib(t.length)).join(' / ')} MiB of text 0.0.4), served as ` +
      `protobuf when asked for it (${protobufs.map((b) => mib(b.length)).join(' / ')} MiB: the same series as client_golang would serve ` +
      'them, plus native histograms, one per 50 series: bench/sidecar/protobuf-input.ts). The sidecar as injected (the bundle, ' +
      `\`${[...INJECTED.flags, `NODE_OPTIONS="${INJECTED.nodeOptions}"`].join(' ')}\`), a fresh process per row, ${SCRAPES} sequential scrapes ` +
      `after ${WARMUP} warm-up ones; figures as in the Sidecar section.`,
    '',
    '| workload | case | Node flags | p50 ms | p99 ms | CPU ms/scrape | peak RSS MiB | peak private MiB | response MiB |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
  writeSection('Sidecar: protobuf (issue 14)', section);
  console.log(`\n${section}`);
}

/** The directory after option `name`, if one follows it. */
function optionalDir(name: string): string | undefined {
  const next = process.argv[process.argv.indexOf(name) + 1];
  return next !== undefined && !next.startsWith('-') ? next : undefined;
}

const baselineAt = process.argv.indexOf('--baseline');
const cgroupAt = process.argv.indexOf('--cgroup');
if (process.argv.includes('--protobuf')) await protobufRuns();
else if (process.argv.includes('--quick')) await quick(optionalDir('--quick') ?? ROOT);
else if (cgroupAt !== -1) await limitedOnly(Number(process.argv[cgroupAt + 1]));
else if (process.argv.includes('--memory')) await memory(optionalDir('--memory') ?? ROOT);
else if (baselineAt === -1) await main();
else await compare(process.argv[baselineAt + 1]!, process.argv.includes('--gzip'));
