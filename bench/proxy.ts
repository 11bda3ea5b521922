// Benchmark of `promux proxy` (run on demand: `npm run bench -- proxy`; never part of npm test).
// 50 and 200 pods of ~1.7k series each (replicas of one app: bench/sidecar/generate.ts, served by
// bench/proxy/pods.ts in a process of their own), found through the stand-in API server of the
// tests (test/proxy/stand-in.ts; no Kubernetes here). The proxy runs as the image runs it (the
// esbuild bundle, the Dockerfile's node flags), side by side with the floor: a concatenating proxy
// over the same pods (bench/sidecar/concat-proxy.ts: every pod fetched at once, bodies joined, no
// parsing, no labels; what metrics-k8s-proxy does). Both stay up and are scraped in turn, so the
// machine's load meets both alike. Measures per-scrape latency p50/p99, CPU per scrape and peak
// memory of each from /proc. Writes the "Proxy" section of BENCHMARKS.md.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PodsStandIn } from '../test/proxy/stand-in.ts';
import { PROMETHEUS_ACCEPT } from '../test/sidecar/helpers.ts';
import { cpuModel, cpuMs, entrypointFlags, procStatus, ROOT, scrape, startChild, stopChild, writeSection, type Started } from './lib/children.ts';

const loadBefore = loadavg().map((l) => l.toFixed(2)).join(', ');
const FAN_OUTS = [50, 200];
const SERIES_PER_POD = 1_700;
const WARMUP = 10;
const SCRAPES = 60;
/** Pods fetched at once, by both servers: the proxy's default. */
const PROXY_CONCURRENCY = 64;
const PROMETHEUS_HEADERS = { accept: PROMETHEUS_ACCEPT, 'x-prometheus-scrape-timeout-seconds': '10' };

const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);
const ms = (value: number): string => value.toFixed(1);

interface Server {
  name: string;
  started: Started;
  headers: Record<string, string>;
  latencies: number[];
  cpuMs: number;
  anonPeak: number;
  bytes: number;
}

/** The pods' server process and their ports. */
async function startPods(count: number): Promise<{ child: ChildProcess; ports: number[] }> {
  const child = spawn(process.execPath, [join(import.meta.dirname, 'proxy', 'pods.ts'), String(count), String(SERIES_PER_POD)],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const ports = await new Promise<number[]>((resolve, reject) => {
    child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
      const line = stderr.split('\n').find((l) => l.includes('"ports"'));
      if (line !== undefined) resolve((JSON.parse(line) as { ports: number[] }).ports);
    });
    child.on('exit', (code) => reject(new Error(`pods exited ${code}: ${stderr}`)));
  });
  return { child, ports };
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    http.get({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', () => resolve({ status: 0, body: '' }));
  });
}

/** Waits (bounded) until the proxy is ready: it has listed the pods. */
async function waitForReady(port: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while ((await get(port, '/readyz')).status !== 200) {
    if (Date.now() > deadline) throw new Error('the proxy was not ready within a minute');
    await sleep(200);
  }
}

/** The number of pods the proxy serves up, on one scrape. */
async function podsUp(port: number): Promise<number> {
  return (await get(port, '/metrics')).body.split('\n').filter((l) => l.startsWith('promux_target_up{') && l.endsWith(' 1')).length;
}

/** Both servers, scraped one after the other, SCRAPES times after WARMUP; CPU and peak private memory of each. */
async function measure(servers: Server[]): Promise<void> {
  const agents = servers.map(() => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  try {
    for (let i = 0; i < WARMUP; i++) for (const [k, s] of servers.entries()) await scrape(agents[k]!, s.started.port, s.headers);
    const before = servers.map((s) => cpuMs(s.started.child.pid!));
    const sampler = setInterval(() => {
      for (const s of servers) s.anonPeak = Math.max(s.anonPeak, procStatus(s.started.child.pid!, 'RssAnon'));
    }, 5);
    for (let i = 0; i < SCRAPES; i++) {
      const order = i % 2 === 0 ? servers.entries() : [...servers.entries()].reverse();
      for (const [k, s] of order) {
        const t0 = performance.now();
        s.bytes = await scrape(agents[k]!, s.started.port, s.headers);
        s.latencies.push(performance.now() - t0);
      }
    }
    clearInterval(sampler);
    servers.forEach((s, k) => (s.cpuMs = (cpuMs(s.started.child.pid!) - before[k]!) / SCRAPES));
  } finally {
    for (const a of agents) a.destroy();
  }
}

const pct = (list: number[], p: number): number => [...list].sort((a, b) => a - b)[Math.floor(list.length * p)]!;

async function benchFanOut(bundle: string, count: number, dir: string): Promise<{ rows: string[]; note: string }> {
  const pods = await startPods(count);
  const api = await new PodsStandIn().start();
  const servers: Server[] = [];
  try {
    pods.ports.forEach((port, i) => api.put('bench', `web-${i}`, {
      ip: '127.0.0.1', labels: { app: 'bench' }, annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(port) },
    }));
    const kubeconfig = join(dir, `kubeconfig-${count}`);
    api.writeKubeConfig(kubeconfig);
    const proxy = await startChild([...entrypointFlags(), bundle, 'proxy', '--kubeconfig', kubeconfig, '-l', 'app=bench', '-n', 'bench',
      '--port', '0', '--listen_address', '127.0.0.1', '--concurrency', String(PROXY_CONCURRENCY)]);
    const server = (name: string, started: Started, headers: Record<string, string>): Server =>
      ({ name, started, headers, latencies: [], cpuMs: 0, anonPeak: 0, bytes: 0 });
    servers.push(server('promux proxy', proxy, PROMETHEUS_HEADERS));
    await waitForReady(proxy.port);
    await sleep(1000);
    const idleRss = procStatus(proxy.child.pid!, 'VmRSS');
    const up = await podsUp(proxy.port);
    if (up !== count) throw new Error(`the proxy serves ${up} pods up, not ${count}`);
    const floor = await startChild([join(import.meta.dirname, 'sidecar', 'concat-proxy.ts'), `--concurrency=${PROXY_CONCURRENCY}`, ...pods.ports.map(String)]);
    servers.push(server('concatenating proxy (floor)', floor, {}));
    await measure(servers);
    const rows = servers.map((s) => `| ${count} | ${s.name} | ${ms(pct(s.latencies, 0.5))} | ${ms(pct(s.latencies, 0.99))} | ` +
      `${ms(s.cpuMs)} | ${mib(procStatus(s.started.child.pid!, 'VmHWM'))} | ${mib(s.anonPeak)} | ${mib(s.bytes)} |`);
    for (const r of rows) console.log(r);
    const [promux, concat] = servers as [Server, Server];
    const note = `- ${count} pods: p50 ${(pct(promux.latencies, 0.5) / pct(concat.latencies, 0.5)).toFixed(2)}x the floor's, CPU per scrape ` +
      `${(promux.cpuMs / concat.cpuMs).toFixed(2)}x; the proxy's RSS once it had listed the pods, before its first scrape: ` +
      `${mib(idleRss)} MiB; after the scrapes: ${mib(procStatus(promux.started.child.pid!, 'VmRSS'))} MiB.`;
    return { rows, note };
  } finally {
    for (const s of servers) await stopChild(s.started.child);
    await stopChild(pods.child);
    await api.close();
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'promux-bench-proxy-'));
  const rows: string[] = [];
  const notes: string[] = [];
  try {
    const build = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.js'), '--outdir', join(dir, 'dist')], { stdio: 'inherit' });
    if (build.status !== 0) throw new Error('scripts/build.js failed');
    const bundle = join(dir, 'dist', 'promux.mjs');
    if (!existsSync(bundle)) throw new Error(`no ${bundle} after the build`);
    for (const count of FAN_OUTS) {
      const { rows: measured, note } = await benchFanOut(bundle, count, dir);
      rows.push(...measured);
      notes.push(note);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const loadAfter = loadavg().map((l) => l.toFixed(2)).join(', ');
  const section = [
    '## Proxy',
    '',
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${cpuModel()}, ${cpus().length} cores, ` +
      `Node ${process.version}, by \`npm run bench -- proxy\` (bench/proxy.ts); load average before the run: ${loadBefore}, ` +
      `after: ${loadAfter} (the machine is shared: the two servers are scraped in turn, so that the load meets both alike; ` +
      'read the ratios).',
    '',
    `Input: ${FAN_OUTS.join(' and ')} pods of ${SERIES_PER_POD} series each (about 146 kB of text 0.0.4; replicas of one app, ` +
      'so their families are the same: bench/sidecar/generate.ts), each on its own port of 127.0.0.1, served from memory by ' +
      'a process of their own (bench/proxy/pods.ts). `promux proxy` finds them through the stand-in API server of the tests ' +
      '(test/proxy/stand-in.ts) and runs the esbuild bundle with the Dockerfile\'s node flags and its default flags ' +
      `(--concurrency ${PROXY_CONCURRENCY}: at 200 pods, ${PROXY_CONCURRENCY} at a time), as the image runs it; it answers each scrape with every pod's series ` +
      'labelled with namespace and pod, the families merged, promux_target_* per pod. The floor is a concatenating proxy ' +
      'over the same pods (bench/sidecar/concat-proxy.ts: at most ' +
      `${PROXY_CONCURRENCY} pods fetched at once, the same fan-out, the bodies joined in order: no ` +
      'parsing, no labels, no up; what metrics-k8s-proxy does, less its label insertion). ' +
      `${SCRAPES} sequential scrapes of each after ${WARMUP} warm-up ones, the two servers in turn, with Prometheus's Accept ` +
      'and timeout headers (no gzip), on one keep-alive connection each. CPU is utime+stime of each server from /proc; peak ' +
      'RSS its VmHWM (with ~40 MiB of Node\'s own mapped code); private memory the peak RssAnon, sampled every 5 ms.',
    '',
    '| pods | server | p50 ms | p99 ms | CPU ms/scrape | peak RSS MiB | peak private MiB | response MiB |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    ...notes,
    '',
  ].join('\n');
  writeSection('Proxy', section);
  console.log(`\n${section}`);
}

await main();
