// Child processes and local ports for the end-to-end tests: every process is started on 127.0.0.1,
// waited for with a bounded loop, and stopped by its own pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

/** A free TCP port on 127.0.0.1, for a child process that must be told its port up front. */
export { freePort } from '../helpers/ports.ts';

export interface Child {
  name: string;
  process: ChildProcess;
  /** What the process wrote to stdout and stderr so far (the last 64 KiB of each). */
  output(): string;
  /** Resolves with the first stdout line that matches. */
  line(pattern: RegExp, timeoutMs: number): Promise<string>;
  stop(): Promise<void>;
}

const KEEP = 64 * 1024;

export function startChild(name: string, command: string, args: string[], env?: NodeJS.ProcessEnv): Child {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout = (stdout + chunk).slice(-KEEP);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-KEEP);
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return {
    name,
    process: child,
    output: () => `--- ${name} stdout ---\n${stdout}\n--- ${name} stderr ---\n${stderr}`,
    async line(pattern, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const match = stdout.split('\n').find((l) => pattern.test(l));
        if (match !== undefined) return match;
        if (child.exitCode !== null) break;
        await sleep(50);
      }
      throw new Error(`${name}: no output line matching ${pattern} within ${timeoutMs} ms\n${this.output()}`);
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const killed = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
      if (!killed) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

/** Polls `url` until it answers 200 (bounded); fails with the child's output when it never does. */
export async function waitForHttp(url: string, timeoutMs: number, child?: Child): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (child !== undefined && child.process.exitCode !== null) break;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      if (response.ok) return;
      last = `HTTP ${response.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(100);
  }
  const output = child === undefined ? '' : `\n${child.output()}`;
  throw new Error(`${url} not ready within ${timeoutMs} ms (${last})${output}`);
}
