// What the benchmarks of long-running modes share: children that log where they listen, their CPU
// and memory from /proc, and their section of BENCHMARKS.md.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
/** USER_HZ = 100 on Linux. */
export const CLOCK_TICK_MS = 10;

/** The node flags of the image's ENTRYPOINT (between the node binary and the bundle), of this checkout or of `root`'s. */
export function entrypointFlags(root = ROOT): string[] {
  const line = readFileSync(join(root, 'Dockerfile'), 'utf8').split('\n').find((l) => l.startsWith('ENTRYPOINT '));
  const entrypoint = JSON.parse(line!.slice('ENTRYPOINT '.length)) as string[];
  return entrypoint.slice(1, -1);
}

/** Runs `command argv` with NODE_OPTIONS (a cgroup's wrapper may be the command). */
export type Wrap = (command: string, args: string[]) => [string, string[]];

export interface Started {
  child: ChildProcess;
  port: number;
}

/** Spawns a server child that logs {"msg":"listening","address":"host:port"} on stderr; `extraEnv` is added to its environment. */
export async function startChild(args: string[], nodeOptions = '', wrap?: Wrap, extraEnv: Record<string, string> = {}): Promise<Started> {
  const env = { ...process.env, ...extraEnv, NODE_OPTIONS: nodeOptions };
  const [command, argv] = wrap === undefined ? [process.execPath, args] : wrap(process.execPath, args);
  const child = spawn(command, argv, { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stderr!.on('data', (c: Buffer) => {
      stderr = (stderr + c.toString()).slice(-65536);
      const m = /"msg":"listening","address":"[^"]*:(\d+)"/.exec(stderr);
      if (m !== null) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}: ${stderr}`)));
  });
  return { child, port };
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

export function procStatus(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN) * 1024;
}

/** utime + stime of the process, in milliseconds. */
export function cpuMs(pid: number): number {
  return statCpuMs(readFileSync(`/proc/${pid}/stat`, 'utf8'));
}

/**
 * utime + stime of the process's live threads, in milliseconds, summed by thread name without its
 * number: Node's MainThread, V8's helper threads (V8Worker: garbage collection, compilation), libuv's
 * pool (libuv-worker: zlib, file I/O).
 */
export function threadCpuMs(pid: number): Map<string, number> {
  const byName = new Map<string, number>();
  for (const thread of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${thread}/stat`, 'utf8');
    } catch {
      continue; // the thread ended since the listing
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/\d+$/, '');
    byName.set(name, (byName.get(name) ?? 0) + statCpuMs(stat));
  }
  return byName;
}

/** utime + stime of a /proc stat line, in milliseconds. */
function statCpuMs(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_MS;
}

/** The machine, for a section's first line. */
export function cpuModel(): string {
  return /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
}

/** Replaces (or appends) the section whose first line is `## <title>`, leaving the other sections alone. */
export function writeSection(title: string, section: string, file = join(ROOT, 'BENCHMARKS.md')): void {
  const header = '# Benchmarks\n\nFigures written by `npm run bench` (bench/run.js); each section by its own benchmark.\n\n';
  const current = existsSync(file) ? readFileSync(file, 'utf8') : header;
  const start = current.indexOf(`\n## ${title}\n`);
  if (start === -1) {
    writeFileSync(file, `${current.trimEnd()}\n\n${section}`);
    return;
  }
  const next = current.indexOf('\n## ', start + 1);
  writeFileSync(file, `${current.slice(0, start + 1)}${section}${next === -1 ? '' : `\n${current.slice(next + 1)}`}`);
}

/** GET /metrics of a child on 127.0.0.1; the bytes of its answer (an error unless 200). */
export function scrape(agent: http.Agent, port: number, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics', headers, agent }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => (res.statusCode === 200 ? resolve(bytes) : reject(new Error(`HTTP ${res.statusCode}`))));
      res.on('error', reject);
    }).on('error', reject);
  });
}
