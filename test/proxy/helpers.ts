// `promux proxy` in this process, in front of the stand-in API server and pods played by small
// servers on 127.0.0.1.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Timing } from '../../src/proxy/discovery.ts';
import type { ProxyOptions } from '../../src/proxy/flags.ts';
import { startProxy, type RunningProxy } from '../../src/proxy/main.ts';
import { jsonLog } from '../../src/sidecar/log.ts';
import { get, samples, type Response } from '../sidecar/helpers.ts';
import { PodsStandIn } from './stand-in.ts';

export const SELECTOR = 'app=web';
/** Short waits, so that the tests are quick; the watch timeout (a second at least) is the stand-in's to honour. */
export const FAST: Partial<Timing> = { backoffMs: 50, maxBackoffMs: 400, watchTimeoutMs: 1000, watchGraceMs: 1000, listTimeoutMs: 2000 };

export function proxyOptions(overrides: Partial<ProxyOptions> = {}): ProxyOptions {
  return {
    selector: SELECTOR, namespaces: ['shop'], allNamespaces: false, listenAddress: '127.0.0.1', port: 0, endpoint: '/metrics',
    scrapeTimeoutMs: 2000, concurrency: 16, maxTargetBytes: 1024 * 1024, maxTotalBytes: 16 * 1024 * 1024,
    labels: { namespace: 'namespace', pod: 'pod', container: 'container' }, kubeconfig: undefined,
    ...overrides,
  };
}

export interface Harness {
  api: PodsStandIn;
  proxy: RunningProxy;
  logs: Array<Record<string, unknown>>;
  get(path: string): Promise<Response>;
}

export async function startHarness(t: TestContext, options: Partial<ProxyOptions> = {}, timing: Partial<Timing> = FAST): Promise<Harness> {
  const api = await new PodsStandIn().start();
  t.after(() => api.close());
  const logs: Array<Record<string, unknown>> = [];
  const log = jsonLog((line) => void logs.push(JSON.parse(line) as Record<string, unknown>));
  const proxy = await startProxy(proxyOptions(options), log, api.kubeConfig(), {}, timing);
  t.after(() => proxy.stop());
  return { api, proxy, logs, get: (path) => get(proxy.address.port, path) };
}

/** A pod's container: serves `body` (a function: read on each request) at /metrics. */
export async function podServer(t: TestContext, body: () => string, handler?: http.RequestListener): Promise<number> {
  const server = http.createServer(handler ?? ((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(body());
  }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return (server.address() as AddressInfo).port;
}

/** Annotations asking to be scraped on `port`. */
export function scrapeOn(port: number, more: Record<string, string> = {}): Record<string, string> {
  return { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(port), ...more };
}

/** Polls `check` (bounded) until it returns a value other than undefined. */
export async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** The value of promux_target_up of a pod, or undefined when the answer has none. */
export function upOf(body: string, pod: string): number | undefined {
  const line = samples(body).find((l) => l.startsWith('promux_target_up{') && l.includes(`pod="${pod}"`));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

/** The pods (their pod label) that served a series of `metric`. */
export function podsWith(body: string, metric: string): string[] {
  return samples(body).filter((l) => l.startsWith(`${metric}{`)).map((l) => /pod="([^"]*)"/.exec(l)?.[1] ?? '').sort();
}
