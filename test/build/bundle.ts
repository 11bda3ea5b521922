// The bundle the Dockerfile copies into the image, built once per test file into an empty folder
// (no node_modules anywhere above it), and helpers to run its modes there as child processes.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO_ROOT } from '../helpers/tools.ts';

export interface Metafile {
  outputs: Record<string, { entryPoint?: string; imports: { path: string; kind: string }[]; inputs: Record<string, unknown> }>;
}

export interface Bundle {
  /** The folder holding dist/ and nothing else: the image's /app stand-in. */
  root: string;
  entry: string;
  metafile: Metafile;
  remove(): void;
}

/** Runs `npm run build` into a fresh temporary folder. */
export function buildBundle(): Bundle {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'promux-image-')));
  for (let dir = root; dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'node_modules'))) throw new Error(`${dir}/node_modules exists: the bundle would not run alone`);
  }
  const metafilePath = join(root, 'meta.json');
  const result = spawnSync('npm', ['run', '--silent', 'build', '--', '--outdir', join(root, 'dist'), '--metafile', metafilePath], {
    cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000,
  });
  if (result.status !== 0) throw new Error(`npm run build failed (exit ${result.status}): ${result.stderr}${result.stdout}`);
  const metafile = JSON.parse(readFileSync(metafilePath, 'utf8')) as Metafile;
  rmSync(metafilePath);
  return { root, entry: join(root, 'dist', 'promux.mjs'), metafile, remove: () => rmSync(root, { recursive: true, force: true }) };
}

/** Runs the bundle with `args` in its folder, with nothing but PATH in the environment. */
export function runBundle(bundle: Bundle, args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [bundle.entry, ...args], {
    cwd: bundle.root, encoding: 'utf8', input, timeout: 30_000, env: { PATH: process.env.PATH ?? '' },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export interface Running {
  child: ChildProcess;
  /** Resolves with the first JSON log line (stdout or stderr) for which `match` returns a value. */
  waitFor<T>(match: (line: Record<string, unknown>) => T | undefined): Promise<T>;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | null>;
  output(): string;
}

/** Starts a long-running mode of the bundle; `stop()` must be called (in t.after or finally). */
export function startBundle(bundle: Bundle, args: string[]): Running {
  const child = spawn(process.execPath, [bundle.entry, ...args], {
    cwd: bundle.root, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters: ((line: string) => void)[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      lines.push(line);
      for (const w of [...waiters]) w(line);
    });
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => lines.join('\n'),
    waitFor<T>(match: (line: Record<string, unknown>) => T | undefined): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const tryLine = (line: string): boolean => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(line);
          } catch {
            return false;
          }
          const found = typeof parsed === 'object' && parsed !== null ? match(parsed as Record<string, unknown>) : undefined;
          if (found !== undefined) resolve(found);
          return found !== undefined;
        };
        if (lines.some(tryLine)) return;
        const waiter = (line: string): void => {
          if (tryLine(line)) waiters.splice(waiters.indexOf(waiter), 1);
        };
        waiters.push(waiter);
        void exited.then((code) => reject(new Error(`exited (${code}) before the expected line:\n${lines.join('\n')}`)));
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Output files reachable from `output` through static imports (what loads when it loads). */
export function staticClosure(metafile: Metafile, output: string): string[] {
  const seen = new Set<string>();
  const visit = (path: string): void => {
    if (seen.has(path)) return;
    seen.add(path);
    // Node built-ins appear as imports too, with no output of their own.
    for (const imp of metafile.outputs[path]?.imports ?? []) {
      if (imp.kind === 'import-statement' && metafile.outputs[imp.path] !== undefined) visit(imp.path);
    }
  };
  visit(output);
  return [...seen];
}

export function outputFor(metafile: Metafile, entryPoint: string): string {
  const found = Object.entries(metafile.outputs).filter(([, o]) => o.entryPoint === entryPoint);
  if (found.length !== 1) throw new Error(`expected one output for ${entryPoint}, found ${found.length}`);
  return found[0]![0];
}
