// Benchmark of `promux webhook` over TLS with keep-alive, side by side with its ceiling: a bare
// node:https server that answers every request with the same fixed AdmissionReview (no parsing, no
// engine, no logging). Each server runs as its own process, one after the other, in ROUNDS rounds
// (promux, ceiling, promux, ceiling: a burst of other work on the machine hits both); the load
// generator is another process, the same program and request body for both. Two phases per server:
// closed loop (CONNECTIONS keep-alive connections, one request in flight on each, no pipelining) for
// throughput, then open loop at a fixed RATE for latency (measured from each request's scheduled
// start, so a stall is not hidden by the generator waiting for it). The run waits (a while) for the
// machine's 1-minute load average to drop below QUIET_LOAD first, and records it. The webhook is
// measured with two reviews: a pod it injects, and one it skips (no scrape annotation: most pods of
// an opted-in namespace).
// Targets: server CPU per review at most 150 µs, injected or skipped; p99 at most 5 ms at 1000 reviews/s.
// Run: npm run bench -- webhook (writes the "Webhook" section of BENCHMARKS.md).
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request } from 'node:https';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { defaultConfig } from '../src/config/defaults.ts';
import { injectPod } from '../src/inject/index.ts';
import { diff } from '../src/inject/patch.ts';
import { batchedDestination, webhookLogger } from '../src/webhook/log.ts';
import { answerJson, review } from '../src/webhook/review.ts';
import { SERVER_NAME, createReview, fixturePods, testBundle, writeKeyPair } from '../test/webhook/helpers.ts';
import { freePort } from '../test/helpers/ports.ts';
import { cpuMs, entrypointFlags, ROOT, writeSection } from './lib/children.ts';

const CONNECTIONS = 8;
// Long enough for V8 to finish optimizing the hot code, as in a webhook that has run for a while: with
// --trace-opt --trace-deopt, the engine's largest function was still being deoptimized and optimized again
// until about 40,000 reviews of the injected pod (over 10 s on this machine when it is busy).
const WARMUP_MS = 20_000;
const THROUGHPUT_MS = 10_000;
const RATE = 1000;
const RATE_MS = 10_000;
const ROUNDS = 2;
const QUIET_LOAD = 1.5;
const QUIET_WAIT_MS = 60_000;
/** Bound on requests in one phase, whatever the speed. */
const MAX_REQUESTS = 500_000;

interface PhaseResult {
  requests: number;
  errors: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** The load generator's own CPU time (user + system) per request. */
  clientCpuMicros: number;
}

interface LoadArgs {
  port: number;
  ca: string;
  body: string;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summarize(latencies: number[], errors: number, ms: number, cpuStart: NodeJS.CpuUsage): PhaseResult {
  const sorted = [...latencies].sort((a, b) => a - b);
  const cpu = process.cpuUsage(cpuStart);
  return {
    requests: latencies.length,
    errors,
    seconds: ms / 1000,
    perSecond: latencies.length / (ms / 1000),
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.at(-1) ?? NaN,
    clientCpuMicros: (cpu.user + cpu.system) / Math.max(1, latencies.length + errors),
  };
}

/** One review POSTed on the keep-alive agent; resolves with its status. */
function post(args: LoadArgs, agent: Agent): Promise<number> {
  return new Promise((resolve) => {
    const req = request({
      host: '127.0.0.1', port: args.port, servername: SERVER_NAME, ca: args.ca, agent, method: 'POST', path: '/mutate',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(args.body) },
    }, (res) => {
      res.on('data', () => {});
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('error', () => resolve(0));
    req.end(args.body);
  });
}

async function closedLoop(args: LoadArgs, agent: Agent, ms: number): Promise<PhaseResult> {
  const latencies: number[] = [];
  let errors = 0;
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  const end = start + ms;
  const worker = async (): Promise<void> => {
    while (performance.now() < end && latencies.length + errors < MAX_REQUESTS) {
      const t0 = performance.now();
      const status = await post(args, agent);
      if (status === 200) latencies.push(performance.now() - t0);
      else errors++;
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  return summarize(latencies, errors, performance.now() - start, cpuStart);
}

async function openLoop(args: LoadArgs, agent: Agent, rate: number, ms: number): Promise<PhaseResult> {
  const latencies: number[] = [];
  let errors = 0;
  const total = Math.min(Math.round((rate * ms) / 1000), MAX_REQUESTS);
  const interval = 1000 / rate;
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const scheduled = start + i * interval;
    const wait = scheduled - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    // From the scheduled start when sent late (the generator's lag counts), from the send when sent
    // early (up to 1 ms: timers are not finer), so that no latency comes out below its real one.
    const from = Math.min(scheduled, performance.now());
    pending.push(post(args, agent).then((status) => {
      if (status === 200) latencies.push(performance.now() - from);
      else errors++;
    }));
  }
  await Promise.all(pending);
  return summarize(latencies, errors, performance.now() - start, cpuStart);
}

/** Child mode: the load generator. Prints {throughput, fixedRate} as JSON. */
async function runLoad(argsFile: string): Promise<void> {
  const args = JSON.parse(readFileSync(argsFile, 'utf8')) as LoadArgs;
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  await closedLoop(args, agent, WARMUP_MS);
  process.send?.('throughput-start');
  const throughput = await closedLoop(args, agent, THROUGHPUT_MS);
  process.send?.('throughput-end');
  process.send?.('rate-start');
  const fixedRate = await openLoop(args, agent, RATE, RATE_MS);
  process.send?.('rate-end');
  agent.destroy();
  process.stdout.write(JSON.stringify({ throughput, fixedRate }));
  process.disconnect?.();
}

/** Child mode: the ceiling, a bare HTTPS server with a fixed answer. */
function runCeiling(port: number, certFile: string, keyFile: string, answerFile: string): void {
  const answer = readFileSync(answerFile);
  const server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile), minVersion: 'TLSv1.2' }, (req, res) => {
    req.on('data', () => {});
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.length });
      res.end(answer);
    });
  });
  server.keepAliveTimeout = 120_000;
  server.listen(port, '127.0.0.1');
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}


async function waitUntilServing(port: number, ca: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    const up = await new Promise<boolean>((resolve) => {
      const req = request({ host: '127.0.0.1', port, servername: SERVER_NAME, ca, path: '/healthz', agent: false }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on('error', () => resolve(false));
      req.end();
    });
    if (up) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('server did not come up');
}

interface ServerResult {
  /** 1-minute load average when the measurement started. */
  loadBefore: number;
  throughput: PhaseResult;
  fixedRate: PhaseResult;
  /** Server process CPU time (user + system) per review during the throughput phase. */
  cpuMicrosPerReview: number;
  /** The same during the fixed-rate phase. */
  cpuMicrosAtRate: number;
  /**
   * During the fixed-rate phase, how long the server and the load generator were ready to run but
   * waited for a core (ms, /proc/<pid>/schedstat): the machine's share of their latency, not theirs.
   */
  serverRunQueueMsAtRate: number;
  generatorRunQueueMsAtRate: number;
}

/** Nanoseconds a process has waited on a run queue so far (ready to run, no core free), from /proc/<pid>/schedstat. */
function runQueueNanos(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]);
}

async function measure(name: string, server: ChildProcess, port: number, loadArgsFile: string, ca: string): Promise<ServerResult> {
  try {
    await waitUntilServing(port, ca, server);
    const loadBefore = loadavg()[0]!;
    const load = spawn(process.execPath, [import.meta.filename, '--load', loadArgsFile], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    let out = '';
    load.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    // The load generator announces each phase; the server's CPU time is sampled at the boundaries.
    const cpuAt: Record<string, number> = {};
    const waitAt: Record<string, [number, number]> = {};
    load.on('message', (phase: string) => {
      cpuAt[phase] = cpuMs(server.pid!) / 1000;
      waitAt[phase] = [runQueueNanos(server.pid!), runQueueNanos(load.pid!)];
    });
    const code = await new Promise<number | null>((resolve) => load.on('exit', resolve));
    if (code !== 0) throw new Error(`load generator for ${name} exited with ${code}`);
    const result = JSON.parse(out) as { throughput: PhaseResult; fixedRate: PhaseResult };
    const cpu = (cpuAt['throughput-end']! - cpuAt['throughput-start']!) / result.throughput.requests;
    const atRate = (cpuAt['rate-end']! - cpuAt['rate-start']!) / result.fixedRate.requests;
    const waited = (who: 0 | 1): number => (waitAt['rate-end']![who] - waitAt['rate-start']![who]) / 1e6;
    return {
      loadBefore, ...result, cpuMicrosPerReview: cpu * 1e6, cpuMicrosAtRate: atRate * 1e6,
      serverRunQueueMsAtRate: waited(0), generatorRunQueueMsAtRate: waited(1),
    };
  } finally {
    server.kill('SIGTERM');
    await new Promise((resolve) => (server.exitCode === null ? server.on('exit', resolve) : resolve(null)));
  }
}

/**
 * CPU time (µs) of one call of each function in a tight loop, after a warm-up: the fastest of
 * several batches (the one least disturbed by other work on the machine), the functions' batches
 * taken in turn so that all of them see the same moments of the machine.
 */
function cpuMicros(fs: (() => unknown)[], runs = 4000, batches = 15): number[] {
  for (let i = 0; i < 4 * runs; i++) for (const f of fs) f();
  const best = fs.map(() => Infinity);
  for (let batch = 0; batch < batches; batch++) {
    fs.forEach((f, n) => {
      const start = process.cpuUsage();
      for (let i = 0; i < runs; i++) f();
      const cpu = process.cpuUsage(start);
      best[n] = Math.min(best[n]!, (cpu.user + cpu.system) / runs);
    });
  }
  return best;
}

/** A review's work in-process, piece by piece (µs of CPU), as the webhook does it for each review. */
interface DecisionCosts {
  /** JSON.parse of the body. */
  parse: number;
  /** review(): the envelope, the engine, the patch's JSON and base64, warnings, the audit annotation. */
  review: number;
  /** Of review(): the injection engine (injectPod); of it, the patch (diff). */
  engine: number;
  diff: number;
  /** The answer's JSON. */
  answer: number;
  /** The log line: pino's serializing and one write(2) to a file (a line per write, as at a low rate). */
  log: number;
  total: number;
}

function decisionCosts(body: string, logFile: string): DecisionCosts {
  const config = defaultConfig();
  const buffer = Buffer.from(body);
  type Body = { request: { object: Record<string, unknown> } };
  // Each call parses its own review, as the webhook does: the engine gets a pod fresh in the cache.
  const parsed = (): Body => JSON.parse(buffer.toString('utf8')) as Body;
  const [parse, withReview, withEngine] = cpuMicros([
    parsed,
    () => review(parsed(), config, injectPod),
    () => injectPod(parsed().request.object, config, { parsedJson: true }),
  ]) as [number, number, number];
  const input = parsed().request.object;
  const result = injectPod(input, config, { parsedJson: true });
  const outcome = review(parsed(), config, injectPod);
  if (!outcome.ok) throw new Error('the benchmark review is not an AdmissionReview');
  const fd = openSync(logFile, 'w');
  const destination = batchedDestination(fd);
  const log = webhookLogger('info', destination);
  const line = { ...outcome.summary, durationMs: 0.123 };
  const [patch, answer, logLine] = cpuMicros([
    () => diff(input, result.pod),
    () => answerJson(outcome.review),
    () => {
      log.info(line, 'review');
      destination.flushSync();
    },
  ]) as [number, number, number];
  closeSync(fd);
  const injected = result.decision === 'inject';
  const reviewMicros = withReview - parse;
  return {
    parse, review: reviewMicros, engine: withEngine - parse, diff: injected ? patch : 0,
    answer, log: logLine, total: parse + reviewMicros + answer + logLine,
  };
}

const f1 = (n: number): string => n.toFixed(1);
const f2 = (n: number): string => n.toFixed(2);

/** Waits (up to QUIET_WAIT_MS) for the 1-minute load average to drop below QUIET_LOAD; returns whether it did. */
async function waitForQuiet(): Promise<boolean> {
  const deadline = Date.now() + QUIET_WAIT_MS;
  while (loadavg()[0]! >= QUIET_LOAD) {
    if (Date.now() > deadline) return false;
    console.log(`load average ${loadavg()[0]!.toFixed(2)} >= ${QUIET_LOAD}: waiting for the machine to quieten ...`);
    await new Promise((resolve) => setTimeout(resolve, 15_000));
  }
  return true;
}

const PROMUX = 'promux webhook, injected pod';
const SKIPPED = 'promux webhook, skipped pod';
const CEILING = 'ceiling (bare https, fixed answer)';
const SERVERS = [PROMUX, SKIPPED, CEILING];
const CPU_TARGET_MICROS = 150;
const P99_TARGET_MS = 5;

/** The two reviews measured: the OpenFaaS gateway pod (injected) and the same pod without its scrape annotations (skipped). */
function benchReviews(): { reviewBody: string; skippedBody: string; outcome: ReturnType<typeof review> & { ok: true } } {
  // The OpenFaaS gateway pod: injected, so the whole path runs (engine, patch, audit annotation).
  const pod = fixturePods('openfaas')[0]!.pod;
  const reviewBody = JSON.stringify(createReview(pod));
  const outcome = review(JSON.parse(reviewBody), defaultConfig(), injectPod);
  if (!outcome.ok || outcome.summary.decision !== 'injected') throw new Error('the benchmark pod is not injected');
  // The same pod without its scrape annotations: skipped (no-scrape-annotation), as most pods are.
  const unscraped = structuredClone(pod) as { metadata: { annotations?: Record<string, string> } };
  unscraped.metadata.annotations = Object.fromEntries(Object.entries(unscraped.metadata.annotations ?? {})
    .filter(([k]) => !k.startsWith('prometheus.io')));
  const skippedBody = JSON.stringify(createReview(unscraped as Record<string, unknown>));
  const skippedOutcome = review(JSON.parse(skippedBody), defaultConfig(), injectPod);
  if (!skippedOutcome.ok || skippedOutcome.summary.skipCode !== 'no-scrape-annotation') throw new Error('the skipped pod is not skipped');
  return { reviewBody, skippedBody, outcome };
}

async function orchestrate(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'promux-bench-webhook-'));
  try {
    const bundle = testBundle();
    // The certificates in a directory of their own, as in a pod (a Secret volume): the webhook watches
    // it for new ones, and the log written beside them would wake the watcher at every line.
    const tlsDir = join(dir, 'tls');
    mkdirSync(tlsDir);
    const { certFile, keyFile } = writeKeyPair(tlsDir, bundle.serving);
    const { reviewBody, skippedBody, outcome } = benchReviews();
    const answerFile = join(dir, 'answer.json');
    writeFileSync(answerFile, JSON.stringify(outcome.review));

    // The webhook runs as the image runs it: the esbuild bundle.
    const dist = join(dir, 'dist');
    const build = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.js'), '--outdir', dist], { stdio: 'inherit' });
    if (build.status !== 0) throw new Error('scripts/build.js failed');

    const quiet = await waitForQuiet();
    const loadBefore = loadavg().map((l) => l.toFixed(2)).join(', ');
    const costs: Record<string, DecisionCosts> = { [PROMUX]: decisionCosts(reviewBody, join(dir, 'cost.log')), [SKIPPED]: decisionCosts(skippedBody, join(dir, 'cost.log')) };
    const rounds: Record<string, ServerResult>[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const results: Record<string, ServerResult> = {};
      for (const name of SERVERS) {
        const port = await freePort();
        const loadArgsFile = join(dir, 'load.json');
        writeFileSync(loadArgsFile, JSON.stringify({ port, ca: bundle.ca.cert, body: name === SKIPPED ? skippedBody : reviewBody } satisfies LoadArgs));
        const logFile = openSync(join(dir, 'webhook.log'), 'w');
        const server = name !== CEILING
          // The node flags and environment of the image (the Dockerfile's ENTRYPOINT and ENV).
          ? spawn(process.execPath, [...entrypointFlags(), join(dist, 'promux.mjs'), 'webhook', '--port', String(port), '--listen-address', '127.0.0.1',
            '--tls-cert-file', certFile, '--tls-private-key-file', keyFile, '--shutdown-delay', '0'],
          { stdio: ['ignore', logFile, 'inherit'], env: { ...process.env, NODE_ENV: 'production' } })
          : spawn(process.execPath, [import.meta.filename, '--ceiling', String(port), certFile, keyFile, answerFile],
            { stdio: ['ignore', 'ignore', 'inherit'] });
        console.log(`round ${round}: measuring ${name} ...`);
        results[name] = await measure(name, server, port, loadArgsFile, bundle.ca.cert);
        if (name !== CEILING) {
          const logLines = readFileSync(join(dir, 'webhook.log'), 'utf8').split('\n').filter((l) => l.includes('"msg":"review"'));
          console.log(`promux logged ${logLines.length} review lines; e.g. ${logLines[0]}`);
        }
      }
      rounds.push(results);
    }

    const row = (name: string, round: number, r: ServerResult): string =>
      `| ${name} | ${round} | ${r.loadBefore.toFixed(2)} | ${r.throughput.perSecond.toFixed(0)} | ${f2(r.throughput.p50Ms)} `
      + `| ${f2(r.throughput.p99Ms)} | ${r.cpuMicrosPerReview.toFixed(0)} | ${r.throughput.clientCpuMicros.toFixed(0)} `
      + `| ${f2(r.fixedRate.p50Ms)} | ${f2(r.fixedRate.p99Ms)} | ${f1(r.fixedRate.maxMs)} | ${r.cpuMicrosAtRate.toFixed(0)} `
      + `| ${r.serverRunQueueMsAtRate.toFixed(0)} | ${r.generatorRunQueueMsAtRate.toFixed(0)} | ${r.throughput.errors + r.fixedRate.errors} |`;
    const pct = (n: number): string => `${(n * 100).toFixed(0)}%`;
    const ratio = (name: string): string => rounds.map((r) => pct(r[name]!.throughput.perSecond / r[CEILING]!.throughput.perSecond)).join(' and ');
    const worstCpu = (name: string): number => Math.max(...rounds.map((r) => r[name]!.cpuMicrosPerReview));
    const worstP99 = (name: string): number => Math.max(...rounds.map((r) => r[name]!.fixedRate.p99Ms));
    const cpuRatio = (name: string): string => rounds.map((r) => `${(r[name]!.cpuMicrosPerReview / r[CEILING]!.cpuMicrosPerReview).toFixed(2)}x`).join(' and ');
    const meanCpu = (name: string): number => rounds.reduce((sum, r) => sum + r[name]!.cpuMicrosPerReview, 0) / rounds.length;
    const f0 = (n: number): string => n.toFixed(0);
    /** Where one pod's server CPU goes: the ceiling's HTTPS, the pieces measured in-process, and the rest. */
    const breakdown = (name: string): string => {
      const c = costs[name]!;
      const rest = meanCpu(name) - meanCpu(CEILING) - c.total;
      const compare = c.diff > 0 ? `, of which the patch (diff) ${f0(c.diff)}`
        : '';
      return `${f0(meanCpu(name))} µs (mean of the rounds): HTTPS as the ceiling ${f0(meanCpu(CEILING))}, JSON.parse of the body`
        + ` ${f0(c.parse)}, review() ${f0(c.review)} (the engine ${f0(c.engine)}${compare}; the rest the patch's JSON and base64 and the`
        + ` envelope), the answer's JSON ${f0(c.answer)}, the log line ${f0(c.log)}; ${f0(rest)} µs (${pct(rest / meanCpu(name))}) beyond these`;
    };
    const met = (ok: boolean): string => (ok ? 'met' : 'NOT met');
    const cpu = cpus()[0]?.model ?? 'unknown CPU';
    const section = [
      '## Webhook',
      '',
      `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${cpus().length} × ${cpu},`
        + ` ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, with \`npm run bench -- webhook\``
        + ` (bench/webhook.ts). Load average before the run: ${loadBefore}`
        + (quiet ? '.' : ` (it stayed at or above ${QUIET_LOAD} for ${QUIET_WAIT_MS / 60_000} minutes: other work competed for the cores).`),
      '',
      `Two AdmissionReviews: the OpenFaaS gateway pod (${reviewBody.length} bytes; injected, answer`
        + ` ${JSON.stringify(outcome.review).length} bytes), and the same pod without its scrape annotations (skipped:`
        + ' no-scrape-annotation, as most pods of an opted-in namespace), each POSTed over TLS from a separate'
        + ' load-generator process on 127.0.0.1, the same program for every server; the webhook runs the esbuild bundle'
        + ` (scripts/build.js), as the image does. Throughput: ${CONNECTIONS} keep-alive connections with one request in flight each`
        + ` (no pipelining) for ${THROUGHPUT_MS / 1000} s after a ${WARMUP_MS / 1000} s warm-up. Fixed rate: ${RATE} reviews/s`
        + ` for ${RATE_MS / 1000} s, latency from each request's scheduled start. The webhook logs one JSON line per review to a`
        + ' file, as in a pod. The ceiling is a bare node:https server answering the fixed AdmissionReview of the injected pod'
        + ` without parsing anything. ${ROUNDS} rounds, the servers in turn. CPU columns: user + system time per request of the`
        + ' server (from /proc) during the throughput phase and during the fixed rate, and of the load generator.',
      '',
      `| server | round | load avg | reviews/s | p50 ms | p99 ms | server CPU µs/review | generator CPU µs/request `
        + `| p50 ms at ${RATE}/s | p99 ms at ${RATE}/s | max ms at ${RATE}/s | server CPU µs/review at ${RATE}/s `
        + `| server run-queue wait ms at ${RATE}/s | generator run-queue wait ms at ${RATE}/s | errors |`,
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
      ...rounds.flatMap((r, i) => SERVERS.map((name) => row(name, i + 1, r[name]!))),
      '',
      `- Server CPU per review at saturation: injected at most ${worstCpu(PROMUX).toFixed(0)} µs, skipped at most`
        + ` ${worstCpu(SKIPPED).toFixed(0)} µs (target: at most ${CPU_TARGET_MICROS} µs: `
        + `${met(worstCpu(PROMUX) <= CPU_TARGET_MICROS && worstCpu(SKIPPED) <= CPU_TARGET_MICROS)}); the ceiling's is`
        + ` ${Math.max(...rounds.map((r) => r[CEILING]!.cpuMicrosPerReview)).toFixed(0)} µs.`,
      `- p99 at ${RATE} reviews/s: injected at most ${f2(worstP99(PROMUX))} ms, skipped at most ${f2(worstP99(SKIPPED))} ms`
        + ` (target: at most ${P99_TARGET_MS} ms: ${met(worstP99(PROMUX) <= P99_TARGET_MS && worstP99(SKIPPED) <= P99_TARGET_MS)}).`,
      `- The machine's share of the latency at ${RATE}/s: time the server spent ready to run but waiting for a core,`
        + ` by round: injected ${rounds.map((r) => `${r[PROMUX]!.serverRunQueueMsAtRate.toFixed(0)} ms`).join(' and ')},`
        + ` skipped ${rounds.map((r) => `${r[SKIPPED]!.serverRunQueueMsAtRate.toFixed(0)} ms`).join(' and ')},`
        + ` the ceiling ${rounds.map((r) => `${r[CEILING]!.serverRunQueueMsAtRate.toFixed(0)} ms`).join(' and ')}`
        + ` (of ${RATE_MS / 1000} s; /proc/<pid>/schedstat). A review that arrives while the server waits for a core waits as long.`,
      `- Against the ceiling in the same round: server CPU per review injected ${cpuRatio(PROMUX)}, skipped ${cpuRatio(SKIPPED)};`
        + ` throughput injected ${ratio(PROMUX)}, skipped ${ratio(SKIPPED)}.`,
      `- Where the CPU goes. Injected: ${breakdown(PROMUX)}. Skipped: ${breakdown(SKIPPED)}. The pieces are measured in-process`
        + ' in a tight loop (the fastest of 15 batches), each on a review parsed for it (the parse then subtracted). "Beyond these"'
        + ' is mostly the same pieces again: a profile of the server (perf, below) finds each costing about twice its tight-loop'
        + ' figure between requests, plus the request\'s JavaScript beyond the ceiling\'s (its listeners, deadline timer, queue,'
        + ' metrics); garbage collection is about 1%.',
      '',
    ].join('\n');
    writeSection('Webhook', section);
    console.log(section);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === '--load') await runLoad(rest[0]!);
else if (mode === '--ceiling') runCeiling(Number(rest[0]), rest[1]!, rest[2]!, rest[3]!);
// --costs: only the in-process pieces (seconds, not minutes), for work on the webhook's CPU.
else if (mode === '--costs') {
  const { reviewBody, skippedBody } = benchReviews();
  const logFile = join(mkdtempSync(join(tmpdir(), 'promux-bench-costs-')), 'cost.log');
  console.log({ injected: decisionCosts(reviewBody, logFile), skipped: decisionCosts(skippedBody, logFile) });
  rmSync(join(logFile, '..'), { recursive: true, force: true });
} else await orchestrate();
