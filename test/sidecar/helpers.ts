// Real servers and a real sidecar child process on 127.0.0.1 for the sidecar's tests.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { entrypointFlags } from '../../bench/lib/children.ts';
import { SIDECAR_NODE_OPTIONS } from '../../src/inject/sidecar.ts';
import { REPO_ROOT, FIXTURES } from '../helpers/tools.ts';

export const BIN = join(REPO_ROOT, 'bin', 'promux.js');
export const TEXT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
export const OM_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';
export const PROMETHEUS_ACCEPT =
  'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,' +
  'text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

/** The Node flags of an injected sidecar: the image's entrypoint flags (Dockerfile) and the injector's NODE_OPTIONS. */
export const INJECTED_NODE_FLAGS = [...entrypointFlags(), ...SIDECAR_NODE_OPTIONS.split(' ')];

export function fixture(name: string): Buffer {
  return readFileSync(join(FIXTURES, 'expositions', name));
}

export interface TestServer {
  port: number;
  /** Requests received so far. */
  requests: number;
  close(): Promise<void>;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export async function startServer(handler: Handler): Promise<TestServer> {
  const state = { requests: 0 };
  const server = http.createServer((req, res) => {
    state.requests++;
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get requests() {
      return state.requests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Serves `body` after `delayMs`. */
export function staticBody(body: Buffer | string, contentType = TEXT_TYPE, delayMs = 0): Handler {
  return (_req, res) => {
    setTimeout(() => res.writeHead(200, { 'content-type': contentType }).end(body), delayMs);
  };
}

/** A port nothing listens on (bound, then released). */
export { freePort as closedPort } from '../helpers/ports.ts';

export interface Sidecar {
  port: number;
  child: ChildProcessWithoutNullStreams;
  /** The JSON log lines written so far. */
  logs(): Record<string, unknown>[];
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
}

/** `promux sidecar <args>` on 127.0.0.1 and a free port; resolves once it logged that it listens. */
export async function startSidecar(args: string[], options: { nodeArgs?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<Sidecar> {
  const child = spawn(
    process.execPath,
    [...(options.nodeArgs ?? []), BIN, 'sidecar', '--listen_address', '127.0.0.1', '--export_to', '0', ...args],
    { env: { ...process.env, ...options.env } },
  );
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const logs = (): Record<string, unknown>[] =>
    stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const port = await new Promise<number>((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const listening = logs().find((l) => l.msg === 'listening');
      if (listening !== undefined) resolve(Number(String(listening.address).split(':').pop()));
    });
    void exited.then((code) => reject(new Error(`sidecar exited (${code}) before listening:\n${stderr}`)));
  });
  const stop = async (): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    return exited;
  };
  return { port, child, logs, exited, stop };
}

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The body, gunzipped when it came gzipped. */
  body: string;
  rawLength: number;
}

export function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers, method, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        const body = res.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: body.toString(), rawLength: raw.length });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Sample lines (neither comments nor blank) of an exposition. */
export function samples(body: string): string[] {
  return body.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
}

/** The value of a promux_* per-target series, or undefined when absent. */
export function targetValue(body: string, metric: string, container: string, label = 'container'): number | undefined {
  const line = samples(body).find((l) => l.startsWith(`${metric}{`) && l.includes(`${label}="${container}"`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf('}') + 1).trim().split(' ')[0]);
}

/** The sample lines of one container, promux's own series left out. */
export function containerSamples(body: string, container: string, label = 'container'): string[] {
  return samples(body).filter((l) => !l.startsWith('promux_') && l.includes(`${label}="${container}"`));
}
