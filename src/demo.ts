// `promux demo`: the whole path on one machine, no cluster. The real webhook (a child process, on a
// certificate made here) admits the example pod; the pod's containers are played by small exporters
// in this process; the real sidecar runs with the args the webhook injected and serves the merge.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import jsonpatch, { type Operation } from 'fast-json-patch';
import { defaultConfig } from './config/defaults.ts';
import { formatTargetMap, parseTargetMap, type Target } from './target-map.ts';
import { isObject } from './json.ts';
import { fileErrorReason, usageError } from './usage.ts';
import { generateBundle } from './webhook/tls/certs.ts';
import { documentValue, parseManifests } from './workloads/documents.ts';
import { InputError } from './workloads/input.ts';
import { getPath, templateAsPod, templatePath } from './workloads/kinds.ts';

// Next to this module in both layouts: src/ in a clone, dist/chunks/ in the image (scripts/build.js).
const DEFAULT_POD = fileURLToPath(new URL('../examples/two-container-pod.yaml', import.meta.url));
const STEP_TIMEOUT_MS = 20_000;

const USAGE = `Usage: promux demo [options]

The whole promux path on this machine, with no cluster: the webhook (on a certificate made here)
admits the example pod, small exporters stand in for its containers, and the sidecar serves their
metrics merged, each series labelled with its container. Keeps serving until Ctrl-C.

Options:
  -f, --filename <file>  the pod to admit: the first Pod in the file, or the pod template of its first
                         Deployment, StatefulSet, DaemonSet, Job, ... (default: examples/two-container-pod.yaml)
  --port <port>          port of the merged endpoint (default: 0, any free port)
  -h, --help             show this help
`;

class DemoError extends Error {
  override name = 'DemoError';
}

type Obj = Record<string, unknown>;


interface Container {
  name: string;
  args?: string[];
  ports?: { containerPort: number; name?: string }[];
}
interface Pod {
  metadata: { name?: string; namespace?: string; annotations?: Record<string, string> };
  spec: { containers: Container[]; initContainers?: Container[] };
}

/**
 * The first Pod of a YAML or JSON file, or the pod template of its first workload as the pod its
 * controller would create (named after the workload), read as `promux inject -f` reads files.
 */
export function readPod(file: string): Pod {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new DemoError(`${file}: cannot read: ${fileErrorReason(err)}`);
  }
  try {
    for (const document of parseManifests({ name: file, text })) {
      const obj = documentValue(document);
      const path = isObject(obj) ? templatePath(obj) : undefined;
      if (path === undefined) continue;
      const template = getPath(obj as Obj, path);
      const pod = path.length === 0 ? obj : isObject(template) ? templateAsPod(obj as Obj, template) : undefined;
      if (isObject(pod) && isObject(pod.spec) && Array.isArray(pod.spec.containers)) return pod as unknown as Pod;
    }
  } catch (err) {
    if (err instanceof InputError) throw new DemoError(err.message);
    throw err;
  }
  throw new DemoError(`${file}: no Pod, and no workload with a pod template, in the file`);
}

/** Node's parseArgs message as promux words a usage error: its first sentence, lower case. */
function parseArgsMessage(err: Error): string {
  const first = err.message.split(/\.(?: |$)/)[0]!;
  return first.charAt(0).toLowerCase() + first.slice(1);
}

/** The AdmissionReview the API server would send for creating `pod`. */
export function admissionReview(pod: Pod, uid: string): Obj {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      name: pod.metadata.name ?? '',
      namespace: pod.metadata.namespace ?? 'default',
      operation: 'CREATE',
      userInfo: { username: 'promux-demo' },
      object: pod,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  };
}

function short(value: unknown): string {
  const text = JSON.stringify(value);
  return text.length <= 70 ? text : `${text.slice(0, 67)}...`;
}

function unescapePointer(segment: string): string {
  return segment.replaceAll('~1', '/').replaceAll('~0', '~');
}

/** One line per JSON Patch operation, in words a Kubernetes user reads at a glance. */
export function summarizePatch(ops: Operation[], before: unknown): string[] {
  return ops.map((op) => {
    const path = op.path.split('/').slice(1).map(unescapePointer);
    const where = path.at(-2) === 'annotations' ? `annotation ${path.at(-1)}` : op.path;
    if (op.op === 'add' && isObject(op.value) && typeof op.value.name === 'string' && /containers$/i.test(String(path.at(-2)))) {
      return `add ${op.path}: container ${op.value.name} (${String(op.value.image)})`;
    }
    if (op.op === 'add' && Array.isArray(op.value) && /containers$/i.test(String(path.at(-1)))) {
      return `add ${op.path}: containers ${op.value.map((c: Obj) => c.name).join(', ')}`;
    }
    if (op.op === 'replace') {
      let old: unknown;
      try {
        old = jsonpatch.getValueByPointer(before, op.path);
      } catch {
        old = undefined;
      }
      return `replace ${where}: ${short(old)} -> ${short(op.value)}`;
    }
    if (op.op === 'add') return `add ${where}: ${short(op.value)}`;
    if (op.op === 'remove') return `remove ${where}`;
    return `${op.op} ${where}`;
  });
}

/** The injected sidecar container (a regular container or a native sidecar). */
export function injectedSidecar(pod: Pod, name: string): Container {
  const found = [...pod.spec.containers, ...(pod.spec.initContainers ?? [])].find((c) => c.name === name);
  if (found === undefined || !Array.isArray(found.args)) throw new DemoError(`the patched pod has no ${name} container with args`);
  return found;
}

function flagValue(args: string[], names: string[]): string | undefined {
  const i = args.findIndex((a) => names.includes(a));
  return i === -1 ? undefined : args[i + 1];
}

/**
 * The injected sidecar's args for this machine: each container's port becomes its stand-in's, and
 * the sidecar serves on `port` of 127.0.0.1. Everything else stays as the webhook wrote it.
 */
export function localSidecarArgs(args: string[], standIns: ReadonlyMap<string, number>, port: number): string[] {
  const out = [...args];
  const mapAt = out.findIndex((a) => a === '--container_to_port_map' || a === '-m');
  if (mapAt === -1 || out[mapAt + 1] === undefined) throw new DemoError('the injected sidecar has no --container_to_port_map');
  const targets = parseTargetMap(out[mapAt + 1]!).map((t): Target => {
    const local = standIns.get(t.container);
    if (local === undefined) throw new DemoError(`no stand-in for container ${t.container}`);
    return { ...t, port: local };
  });
  out[mapAt + 1] = formatTargetMap(targets);
  const exportAt = out.findIndex((a) => a === '--export_to' || a === '-e');
  if (exportAt === -1) out.push('--export_to', String(port));
  else out[exportAt + 1] = String(port);
  out.push('--listen_address', '127.0.0.1');
  return out;
}

/** A stand-in container's metrics: families every instrumented app has, values moving per scrape. */
export function standInExposition(container: string, scrapes: number, index: number): string {
  const lines = [
    '# HELP http_requests_total Requests handled, by status code.',
    '# TYPE http_requests_total counter',
    `http_requests_total{code="200"} ${(index + 1) * 100 + scrapes * (index + 3)}`,
    `http_requests_total{code="500"} ${index + 1}`,
    '# HELP process_resident_memory_bytes Resident memory size in bytes.',
    '# TYPE process_resident_memory_bytes gauge',
    `process_resident_memory_bytes ${(40 + 12 * index) * 1024 * 1024}`,
  ];
  if (index === 0) {
    lines.push('# HELP app_build_info The running build.', '# TYPE app_build_info gauge', `app_build_info{version="1.4.2"} 1`);
  } else {
    lines.push(
      `# HELP ${container.replaceAll('-', '_')}_jobs_processed_total Jobs done by the ${container} container.`,
      `# TYPE ${container.replaceAll('-', '_')}_jobs_processed_total counter`,
      `${container.replaceAll('-', '_')}_jobs_processed_total ${scrapes * 7}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

interface Child {
  name: string;
  process: ChildProcess;
  lines: string[];
  /** Resolves when the process has exited, whatever the reason. */
  exited: Promise<void>;
  waitFor<T>(match: (line: Obj) => T | undefined): Promise<T>;
  stop(): Promise<void>;
}

/** Runs this same promux binary in another mode; its JSON log lines are kept for waitFor and errors. */
function startPromux(name: string, args: string[]): Child {
  const entry = process.argv[1]!;
  // The demo's own Node flags, minus a debugger port that the children could not share.
  const nodeFlags = process.execArgv.filter((flag) => !flag.startsWith('--inspect'));
  const child = spawn(process.execPath, [...nodeFlags, entry, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const listeners = new Set<(line: string) => void>();
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      lines.push(line);
      for (const listener of listeners) listener(line);
    });
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    name,
    process: child,
    lines,
    exited,
    waitFor<T>(match: (line: Obj) => T | undefined): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const check = (line: string): boolean => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(line);
          } catch {
            return false;
          }
          const found = isObject(parsed) ? match(parsed) : undefined;
          if (found === undefined) return false;
          done();
          resolve(found);
          return true;
        };
        const fail = (why: string): void => {
          done();
          reject(new DemoError(`promux ${name} ${why}:\n${lines.map((l) => `  ${l}`).join('\n')}`));
        };
        const onExit = (): void => fail(`exited (code ${child.exitCode ?? child.signalCode})`);
        const timer = setTimeout(() => fail(`gave no answer within ${STEP_TIMEOUT_MS / 1000}s`), STEP_TIMEOUT_MS);
        const done = (): void => {
          clearTimeout(timer);
          listeners.delete(listener);
          child.off('exit', onExit);
        };
        const listener = (line: string): void => void check(line);
        if (lines.some(check)) return;
        listeners.add(listener);
        child.once('exit', onExit);
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

function listen(server: Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function postJson(url: string, body: unknown, ca: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, {
      method: 'POST', ca, servername: 'localhost', timeout: STEP_TIMEOUT_MS, headers: { 'content-type': 'application/json' },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk)).on('end', () => {
        if (res.statusCode !== 200) reject(new DemoError(`POST ${url}: HTTP ${res.statusCode}: ${text}`));
        else resolve(JSON.parse(text));
      });
    });
    req.on('timeout', () => req.destroy(new DemoError(`POST ${url}: no answer`))).on('error', reject).end(JSON.stringify(body));
  });
}

function indent(text: string, prefix = '     '): string {
  return text.trimEnd().split('\n').map((l) => `${prefix}${l}`).join('\n');
}

function waitForInterrupt(): Promise<void> {
  return new Promise((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

async function run(podFile: string, sidecarPort: number, print: (text: string) => void, interrupted: Promise<void>): Promise<void> {
  const config = defaultConfig();
  const pod = readPod(podFile);
  const podName = `${pod.metadata.namespace ?? 'default'}/${pod.metadata.name ?? '(unnamed)'}`;
  const dir = mkdtempSync(join(tmpdir(), 'promux-demo-'));
  const children: Child[] = [];
  const servers: Server[] = [];
  try {
    print(`promux demo: the whole path for pod ${podName} (${podFile}), no cluster needed.\n`);

    // 1. The webhook, exactly as in the cluster but on a certificate made here.
    const certs = generateBundle(['localhost'], new Date());
    const caFile = join(dir, 'ca.crt');
    writeFileSync(caFile, certs.ca.cert);
    writeFileSync(join(dir, 'tls.crt'), certs.serving.cert);
    writeFileSync(join(dir, 'tls.key'), certs.serving.key, { mode: 0o600 });
    const webhook = startPromux('webhook', [
      'webhook', '--port', '0', '--listen-address', '127.0.0.1',
      '--tls-cert-file', join(dir, 'tls.crt'), '--tls-private-key-file', join(dir, 'tls.key'),
      // No Service routes to the demo's webhook, so there is nothing to drain on Ctrl-C.
      '--shutdown-delay', '0',
    ]);
    children.push(webhook);
    const webhookPort = await webhook.waitFor((l) => (l.msg === 'promux webhook listening' ? Number(l.port) : undefined));
    const webhookUrl = `https://localhost:${webhookPort}`;
    print(`1. Webhook: promux webhook on ${webhookUrl} (CA and certificate generated in ${dir})`);

    // 2. The API server's call: an AdmissionReview for creating the pod.
    const uid = randomUUID();
    const review = admissionReview(pod, uid);
    writeFileSync(join(dir, 'review.json'), JSON.stringify(review, null, 2));
    const answer = await postJson(`https://127.0.0.1:${webhookPort}/mutate`, review, certs.ca.cert);
    const response = (isObject(answer) && isObject(answer.response) ? answer.response : {}) as Obj;
    const logged = await webhook.waitFor((l) => (l.msg === 'review' && l.uid === uid ? l : undefined));
    print(`2. POST /mutate, AdmissionReview CREATE pod ${podName}`);
    print(`   decision: allowed, ${String(logged.decision)}${logged.reason ? ` (${String(logged.reason)})` : ''}`);
    for (const w of (response.warnings as string[] | undefined) ?? []) print(`   warning: ${w}`);
    if (typeof response.patch !== 'string') {
      throw new DemoError(`the webhook did not inject pod ${podName}, so there is nothing to merge (try examples/two-container-pod.yaml)`);
    }
    const ops = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as Operation[];
    print(`   patch (${ops.length} JSON Patch operations):`);
    for (const line of summarizePatch(ops, pod)) print(`     ${line}`);
    const injected = jsonpatch.applyPatch(structuredClone(pod), ops, true, false).newDocument;
    const sidecar = injectedSidecar(injected, config.sidecar.containerName);

    // 3. The pod running: a stand-in exporter per scraped container, and the injected sidecar.
    const mapped = parseTargetMap(flagValue(sidecar.args!, ['--container_to_port_map', '-m']) ?? '');
    const standIns = new Map<string, number>();
    print('3. The pod runs here: each scraped container is played by a small exporter on 127.0.0.1');
    for (const [index, target] of mapped.entries()) {
      let scrapes = 0;
      const server = createServer((req, res) => {
        if (req.url?.split('?')[0] !== target.path.split('?')[0]) {
          res.writeHead(404).end('not found\n');
          return;
        }
        scrapes += 1;
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
        res.end(standInExposition(target.container, scrapes, index));
      });
      servers.push(server);
      const port = await listen(server);
      standIns.set(target.container, port);
      print(`     container ${target.container.padEnd(12)} port ${String(target.port).padEnd(5)} -> http://127.0.0.1:${port}${target.path}`);
    }
    const args = localSidecarArgs(sidecar.args!, standIns, sidecarPort);
    const sidecarChild = startPromux('sidecar', args);
    children.push(sidecarChild);
    const address = await sidecarChild.waitFor((l) => (l.msg === 'listening' ? String(l.address) : undefined));
    print(`   and the injected sidecar, with its args (its targets here are the stand-ins; it serves on ${address}):`);
    print(`     promux ${sidecar.args!.join(' ')}`);
    const endpoint = flagValue(args, ['--endpoint', '-p']) ?? '/metrics';
    const mergedUrl = `http://${address}${endpoint}`;

    // 4. What Prometheus scrapes: one endpoint, every series labelled with its container.
    const scrape = await fetch(mergedUrl, { signal: AbortSignal.timeout(STEP_TIMEOUT_MS) });
    const merged = await scrape.text();
    if (!scrape.ok) throw new DemoError(`GET ${mergedUrl}: HTTP ${scrape.status}: ${merged}`);
    print(`4. GET ${mergedUrl} (what Prometheus scrapes, once per pod):`);
    print(indent(merged));

    print('\nReady. Try:');
    print(`  curl ${mergedUrl}`);
    for (const [container, port] of standIns) print(`  curl http://127.0.0.1:${port}/metrics    # container ${container} alone`);
    print(`  curl --cacert ${caFile} ${webhookUrl}/metrics    # the webhook's own metrics`);
    print(`  curl --cacert ${caFile} -H 'content-type: application/json' --data @${join(dir, 'review.json')} ${webhookUrl}/mutate`);
    print('Press Ctrl-C to stop.');
    // Ctrl-C in a terminal also reaches the children, which then exit 0 on their own.
    const ended = await Promise.race([interrupted.then(() => undefined), ...children.map((c) => c.exited.then(() => c))]);
    if (ended !== undefined && ended.process.exitCode !== 0) {
      const why = ended.process.exitCode ?? ended.process.signalCode;
      throw new DemoError(`promux ${ended.name} stopped (${why}):\n${ended.lines.map((l) => `  ${l}`).join('\n')}`);
    }
    print('\nStopping.');
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        filename: { type: 'string', short: 'f', default: DEFAULT_POD },
        port: { type: 'string', default: '0' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    process.stderr.write(usageError('demo', parseArgsMessage(err as Error)));
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port) || port > 65535) {
    process.stderr.write(usageError('demo', `--port ${JSON.stringify(values.port)}: expected a port number (0-65535)`));
    return 2;
  }
  // Ctrl-C reaches the whole process group: the children stop on their own, and so does the demo.
  const interrupted = waitForInterrupt();
  try {
    await run(values.filename, port, (text) => process.stdout.write(`${text}\n`), interrupted);
    return 0;
  } catch (err) {
    if (!(err instanceof DemoError)) throw err;
    process.stderr.write(`promux demo: ${err.message}\n`);
    return 1;
  }
}
