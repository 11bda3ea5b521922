// promux itself, as a user runs it: the dry-run CLI injects a pod, and the sidecar container it
// wrote is started from that container's own args (the image's entrypoint is `promux`).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../helpers/tools.ts';
import { startChild, waitForHttp, type Child } from './processes.ts';

type Json = Record<string, unknown>;

const PROMUX = join(REPO_ROOT, 'bin', 'promux.js');
const run = promisify(execFile);

export interface Injected {
  pod: Json;
  /** What `promux inject` reported on stderr. */
  report: string;
}

/** Runs the real `promux inject -f <pod> -o json --config <config>` and returns the pod it printed. */
export async function injectWithCli(pod: Json, config: Json): Promise<Injected> {
  const dir = mkdtempSync(join(tmpdir(), 'promux-e2e-inject-'));
  try {
    const podFile = join(dir, 'pod.json');
    const configFile = join(dir, 'promux.yaml');
    writeFileSync(podFile, JSON.stringify(pod));
    writeFileSync(configFile, JSON.stringify(config)); // JSON is YAML
    const { stdout, stderr } = await run(
      process.execPath,
      [PROMUX, 'inject', '-f', podFile, '-o', 'json', '--config', configFile],
      { timeout: 30_000, maxBuffer: 16 * 1024 * 1024 },
    );
    return { pod: JSON.parse(stdout) as Json, report: stderr.trim() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function containers(pod: Json, key: 'containers' | 'initContainers'): Json[] {
  const spec = pod.spec as Json | undefined;
  const list = spec?.[key];
  return Array.isArray(list) ? (list as Json[]) : [];
}

/** The injected sidecar container, wherever the engine put it (a native sidecar is an init container). */
export function sidecarContainer(pod: Json, name: string): Json {
  const found = [...containers(pod, 'containers'), ...containers(pod, 'initContainers')].find((c) => c.name === name);
  if (found === undefined) throw new Error(`the injected pod has no container "${name}"`);
  return found;
}

export interface RunningSidecar {
  port: number;
  child: Child;
}

/**
 * Starts the sidecar the way its container would run: `promux <args>` with the container's literal
 * environment, and waits on its readiness probe's path. In a pod it listens on every address; here
 * PROMUX_LISTEN_ADDRESS keeps it on 127.0.0.1 (the container's args do not set the address).
 */
export async function startSidecar(container: Json, portName: string): Promise<RunningSidecar> {
  const args = Array.isArray(container.args) ? (container.args as string[]) : [];
  const env: NodeJS.ProcessEnv = { ...process.env, PROMUX_LISTEN_ADDRESS: '127.0.0.1' };
  for (const e of Array.isArray(container.env) ? (container.env as Json[]) : []) {
    if (typeof e.value === 'string') env[String(e.name)] = e.value;
  }
  const port = (Array.isArray(container.ports) ? (container.ports as Json[]) : []).find((p) => p.name === portName);
  if (port === undefined) throw new Error(`sidecar container declares no port named "${portName}"`);
  const probe = ((container.readinessProbe as Json | undefined)?.httpGet as Json | undefined)?.path;
  const child = startChild(`promux ${args.join(' ')}`, process.execPath, [PROMUX, ...args], env);
  const sidecarPort = Number(port.containerPort);
  try {
    const path = typeof probe === 'string' ? probe : '/metrics';
    await waitForHttp(`http://127.0.0.1:${sidecarPort}${path}`, 20_000, child);
  } catch (err) {
    await child.stop();
    throw err;
  }
  return { port: sidecarPort, child };
}
