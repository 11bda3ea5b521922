// The webhook under hostile and heavy load, as the image runs it (the esbuild bundle, in a 256 MiB
// memory cgroup: the chart's limit, and the mechanism of a Kubernetes memory limit), attacked from
// 127.0.0.1: an idle-connection flood, concurrent 3 MiB bodies, pods with 40,000 and 90,000
// param_* annotations, and three times more reviews than it can answer. Throughout, a prober sends
// an ordinary review every 100 ms on a kept-alive connection (as the API server does) and one on a
// new connection every second. What must hold: no OOM kill, every answer within its deadline (or
// shed at once), ordinary reviews answered within 0.5 s during the attacks (one in fifty may be
// late on a machine that other work shares, none beyond 2 s).
// Needs root and a writable cgroup tree: skipped with the reason otherwise (even under CI=true).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Agent, request } from 'node:https';
import { connect as tcpConnect } from 'node:net';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { createMemoryCgroup } from '../../bench/sidecar/cgroup.ts';
import type { MemoryCgroup } from '../../bench/sidecar/cgroup.ts';
import { buildBundle } from '../build/bundle.ts';
import { freePort } from '../helpers/ports.ts';
import { SERVER_NAME, createReview, fixturePods, tempDir, testBundle, writeKeyPair } from './helpers.ts';

type Obj = Record<string, unknown>;
const MiB = 1024 * 1024;
const MEMORY_LIMIT = 256 * MiB;
const tls = testBundle();
const CA = tls.ca.cert;
const pod = fixturePods('shop')[0]!.pod;

interface Webhook {
  child: ChildProcess;
  port: number;
  healthPort: number;
  lines: Obj[];
  limits: Obj;
}

async function startInCgroup(t: TestContext, memory: MemoryCgroup): Promise<Webhook> {
  const bundle = buildBundle();
  t.after(() => bundle.remove());
  const files = writeKeyPair(tempDir(t), tls.serving);
  const [port, healthPort] = [await freePort(), await freePort()];
  const [command, args] = memory.wrap(process.execPath, [bundle.entry, 'webhook', '--port', String(port),
    '--health-port', String(healthPort), '--listen-address', '127.0.0.1', '--tls-cert-file', files.certFile,
    '--tls-private-key-file', files.keyFile, '--shutdown-delay', '0', '--log-level', 'info']);
  const child = spawn(command, args, { cwd: bundle.root, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Obj[] = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const listening = new Promise<Obj>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (text) => {
      // Keep what the assertions need, not one object per review of the overload.
      if (!text.includes('"msg":"review"')) {
        const line = JSON.parse(text) as Obj;
        lines.push(line);
        if (line.msg === 'promux webhook listening') resolve(line);
      } else if (text.includes('"durationMs"') && text.includes('"too-large"')) lines.push(JSON.parse(text) as Obj);
    });
    child.once('exit', (code, signal) => reject(new Error(`the webhook exited (${code ?? signal}) before listening: ${stderr}`)));
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(killer);
  });
  const line = await listening;
  return { child, port, healthPort, lines, limits: line.limits as Obj };
}

function post(port: number, body: string | Buffer, options: { agent?: Agent | false; path?: string; timeoutMs?: number } = {}):
Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = request({
      host: '127.0.0.1', port, servername: SERVER_NAME, ca: CA, method: 'POST', path: options.path ?? '/mutate?timeout=5s',
      agent: options.agent ?? false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      timeout: options.timeoutMs ?? 5000,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => resolve({ error: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ error: (err as NodeJS.ErrnoException).code ?? err.message }));
    req.end(body);
  });
}

const LOAD = join(import.meta.dirname, 'stress-load.ts');

/**
 * Runs stress-load.ts in its own process; `until` ends a probe (closing its stdin). `ready` resolves
 * when it printed "ready" (the probe, once its connections are up).
 */
function load<T>(args: string[], until?: Promise<unknown>): { ready: Promise<void>; result: Promise<T> } {
  const child = spawn(process.execPath, [LOAD, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.startsWith('ready\n')) {
      out = out.slice('ready\n'.length);
      ready();
    }
  });
  if (until === undefined) child.stdin.end();
  else void until.then(() => child.stdin.end());
  const result = new Promise<T>((resolve, reject) => {
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as T) : reject(new Error(`stress-load ${args[0]} exited ${code}`))));
  });
  return { ready: isReady, result };
}

interface ProbeResult { keptAlive: number[]; fresh: number[]; refusedAtOnce: number[]; failures: string[] }

async function metricsOf(port: number): Promise<string> {
  const answer = await new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, servername: SERVER_NAME, ca: CA, path: '/metrics', agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
  return answer;
}

const metric = (text: string, name: string): number =>
  Number(new RegExp(`^${name.replace(/[{}]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);

function rssMiB(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
}

/** A TLS connection (handshake done) or a bare TCP one, left idle; resolves once up or refused. */
function idleConnection(port: number, handshake: boolean): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const socket: Socket = handshake
      ? tlsConnect({ host: '127.0.0.1', port, servername: SERVER_NAME, ca: CA }, () => resolve(socket))
      : tcpConnect(port, '127.0.0.1', () => resolve(socket));
    socket.on('error', () => resolve(undefined));
    socket.on('close', () => resolve(undefined));
  });
}

const max = (values: number[]): number => values.reduce((a, b) => Math.max(a, b), 0);

test('stress: the bundle in a 256 MiB memory cgroup survives floods, huge bodies and pods, and 3x overload', { timeout: 240_000 }, async (t) => {
  const name = `promux-stress-${process.pid}`;
  const memory = createMemoryCgroup(name, MEMORY_LIMIT);
  if (typeof memory === 'string') {
    t.skip(`${memory} (needs root and a writable cgroup tree)`);
    return;
  }
  // After the webhook has stopped (t.after runs in order, the webhook's own stop first): remove the cgroup.
  const webhook = await startInCgroup(t, memory);
  t.after(() => {
    try {
      memory.remove();
    } catch (err) {
      t.diagnostic(`could not remove the cgroup: ${(err as Error).message}`);
    }
  });
  assert.equal(webhook.limits.memorySource, 'cgroup', 'the caps are sized from the cgroup\'s limit');
  assert.equal(webhook.limits.memoryLimitBytes, MEMORY_LIMIT);
  const pid = webhook.child.pid!;
  const report: string[] = [`limits: ${JSON.stringify(webhook.limits)}`, `RSS at start: ${rssMiB(pid).toFixed(0)} MiB`];
  const alive = (what: string): void => {
    assert.equal(webhook.child.exitCode, null, `the webhook died during ${what}`);
    assert.equal(memory.oomKills(), 0, `OOM kill during ${what}`);
  };
  const caFile = join(tempDir(t), 'ca.crt');
  writeFileSync(caFile, CA);
  const during = async (what: string, attack: () => Promise<string>): Promise<void> => {
    let finished!: () => void;
    const attackDone = new Promise<void>((resolve) => (finished = resolve));
    const probe = load<ProbeResult>(['probe', String(webhook.port), caFile], attackDone);
    await Promise.race([probe.ready, probe.result]);
    const started = performance.now();
    let outcome: string;
    try {
      outcome = await attack();
    } finally {
      finished();
    }
    const { keptAlive, fresh, refusedAtOnce, failures } = await probe.result;
    alive(what);
    report.push(`${what}: ${outcome}; ${((performance.now() - started) / 1000).toFixed(1)} s; ordinary reviews: kept-alive `
      + `${keptAlive.length}, slowest ${max(keptAlive).toFixed(0)} ms; new connection ${fresh.length}, slowest ${max(fresh).toFixed(0)} ms`
      + `${refusedAtOnce.length > 0 ? ` (${refusedAtOnce.length} refused at once)` : ''}; `
      + `RSS ${rssMiB(pid).toFixed(0)} MiB, cgroup peak ${(memory.peakBytes() / MiB).toFixed(0)} MiB`);
    const sorted = [...keptAlive].sort((a, b) => a - b);
    report.push(`  kept-alive latencies: p50 ${sorted[Math.floor(sorted.length / 2)]?.toFixed(0)} ms, `
      + `p90 ${sorted[Math.floor(sorted.length * 0.9)]?.toFixed(0)} ms, over 500 ms: ${sorted.filter((x) => x > 500).length}`);
    problems.push(...failures.map((f) => `${what}: ${f}`));
    if (keptAlive.length < 5) problems.push(`${what}: the prober did not run`);
    // Within 0.5 s; on a machine other work shares, a scheduling hiccup may make one of fifty late, never beyond 2 s.
    const late = keptAlive.filter((ms) => ms > 500).length;
    if (late > keptAlive.length / 50) problems.push(`${what}: ${late} of ${keptAlive.length} ordinary reviews took over 500 ms`);
    if (max([...keptAlive, ...fresh]) > 2000) problems.push(`${what}: an ordinary review took ${max([...keptAlive, ...fresh]).toFixed(0)} ms`);
  };
  const problems: string[] = [];
  t.after(() => t.diagnostic(report.join('\n')));

  // 1. Idle-connection flood: 3,000 TLS connections (three times the ~3,000 that OOM-killed the
  // webhook before were not needed: the cap is ~570) and 1,000 bare TCP ones, opened 100 at a time.
  await during('idle-connection flood', async () => {
    const open: Socket[] = [];
    let refused = 0;
    for (let batch = 0; batch < 40; batch++) {
      const made = await Promise.all(Array.from({ length: 100 }, (_, i) => idleConnection(webhook.port, (batch * 100 + i) % 4 !== 3)));
      for (const s of made) if (s === undefined) refused += 1; else open.push(s);
    }
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const metrics = await metricsOf(webhook.port);
    const connections = metric(metrics, 'promux_webhook_connections');
    for (const s of open) s.destroy();
    assert.ok(connections <= Number(webhook.limits.maxConnections), `${connections} connections open`);
    return `4000 opened, ${refused} refused at once, ${connections} open at the end (cap ${String(webhook.limits.maxConnections)}), `
      + `evicted ${metric(metrics, 'promux_webhook_connections_closed_total{reason="evicted"}')}, `
      + `refused ${metric(metrics, 'promux_webhook_connections_closed_total{reason="limit"}')}`;
  });

  // 2. Ninety concurrent 3 MiB bodies (the API server's own limit): only what the byte cap allows is held.
  await during('90 concurrent 3 MiB bodies', async () => {
    const padding = Buffer.alloc(3 * MiB - 4096, 'x');
    const results = await Promise.all(Array.from({ length: 90 }, () => {
      const review = createReview(structuredClone(pod));
      const text = JSON.stringify(review);
      // {"kind":...,"request":{"uid":...,"object":{...,"padding":"xxx..."}}}: valid JSON, uid first.
      const cut = text.lastIndexOf('}}');
      const body = Buffer.concat([Buffer.from(`${text.slice(0, cut)},"padding":"`), padding, Buffer.from(`"}${text.slice(cut + 1)}`)]);
      return post(webhook.port, body);
    }));
    const statuses = results.map((r) => ('error' in r ? r.error : String(r.status)));
    const shed = results.filter((r) => !('error' in r) && r.body.includes('the webhook was full')).length;
    assert.deepEqual(statuses.filter((s) => s !== '200'), [], 'every one answered');
    return `90 answered: ${shed} shed at the byte cap, ${90 - shed} decided (skipped)`;
  });

  // 3. Pods with 40,000 and 90,000 param_* annotations, three of each at once.
  await during('40k and 90k param_* pods', async () => {
    const bodies = [40_000, 40_000, 40_000, 90_000, 90_000, 90_000].map((n) => {
      const big = structuredClone(pod);
      const annotations = (big.metadata as Obj).annotations as Record<string, string>;
      for (let i = 0; i < n; i++) annotations[`prometheus.io/param_${i.toString(36)}`] = '1';
      return JSON.stringify(createReview(big));
    });
    const started = performance.now();
    const results = await Promise.all(bodies.map((b) => post(webhook.port, b)));
    const took = performance.now() - started;
    for (const r of results) {
      assert.ok(!('error' in r) && r.status === 200, JSON.stringify(r).slice(0, 200));
      assert.match(r.body, /annotations are already \d+ bytes|the webhook was (full|overloaded)/);
    }
    const durations = webhook.lines.filter((l) => l.skipCode === 'too-large').map((l) => Number(l.durationMs));
    return `6 answered in ${took.toFixed(0)} ms (bodies ${(bodies[0]!.length / MiB).toFixed(1)} and ${(bodies[5]!.length / MiB).toFixed(1)} MiB); `
      + `server time per pod ${durations.map((d) => d.toFixed(0)).join(', ')} ms`;
  });

  // 4. Three times more reviews than it can answer, as the API server sends them (a new connection
  // whenever its kept-alive ones are busy; ?timeout=5s). Pods of 100 containers, so that one load
  // process on this machine can offer three times what the webhook answers.
  const heavy = structuredClone(pod);
  (heavy.spec as Obj).containers = Array.from({ length: 100 }, (_, i) => ({
    name: `c${i}`, image: 'registry.example.com/app:1', ports: [{ name: 'metrics', containerPort: 9000 + i, protocol: 'TCP' }],
    env: Array.from({ length: 10 }, (_, j) => ({ name: `SETTING_${j}`, value: 'x'.repeat(20) })),
  }));
  (heavy.metadata as Obj).annotations = { 'prometheus.io/scrape': 'true' };
  const heavyFile = join(tempDir(t), 'heavy.json');
  writeFileSync(heavyFile, JSON.stringify(createReview(heavy)));
  const capacity = await (async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    const body = readFileSync(heavyFile);
    let done = 0;
    const end = performance.now() + 2000;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (performance.now() < end) {
        const r = await post(webhook.port, body, { agent });
        if (!('error' in r) && r.body.includes('"patch"')) done += 1;
      }
    }));
    agent.destroy();
    return done / 2;
  })();
  await during('3x overload', async () => {
    const rate = Math.round(3 * capacity);
    const result = await load<{
      total: number; sentMs: number; behindMs: number; p50: number; p99: number; max: number; wireP99: number; wireMax: number;
      outcomes: { full: number; skipped: number; shed: number; noConnection: number; refused: number; timedOut: number; other: number };
    }>(['overload', String(webhook.port), caFile, String(rate), '5', heavyFile]).result;
    if (result.max > 5000) problems.push(`3x overload: an answer came ${result.max.toFixed(0)} ms after it was due`);
    // The API server would have given up on these: none, but for what a CPU taken by other work
    // on this shared machine may hold up (at most 1%).
    if (result.outcomes.timedOut > result.total / 100) problems.push(`3x overload: ${result.outcomes.timedOut} reviews left unanswered for 5 s`);
    if (result.behindMs > 1000) problems.push(`3x overload: the load generator fell ${result.behindMs.toFixed(0)} ms behind`);
    return `capacity ${capacity.toFixed(0)} reviews/s (100-container pods), offered ${rate}/s for 5 s (${result.total} sent in `
      + `${(result.sentMs / 1000).toFixed(1)} s, at most ${result.behindMs.toFixed(0)} ms behind): ${JSON.stringify(result.outcomes)}; `
      + `answered p50 ${result.p50.toFixed(0)} ms, p99 ${result.p99.toFixed(0)} ms, max ${result.max.toFixed(0)} ms from the `
      + `scheduled time (p99 ${result.wireP99.toFixed(0)} ms, max ${result.wireMax.toFixed(0)} ms from sending)`;
  });

  // Still serving, and the kubelet's port answers.
  const health = await new Promise<number>((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port: webhook.healthPort, path: '/healthz', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.end();
  });
  assert.equal(health, 200);
  alive('the whole run');
  assert.deepEqual(problems, []);
  report.push(`cgroup: peak ${(memory.peakBytes() / MiB).toFixed(0)} MiB of ${MEMORY_LIMIT / MiB}, limit reached ${memory.limitHits()} times, OOM kills ${memory.oomKills()}`);
});
