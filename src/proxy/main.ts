// `promux proxy`: one endpoint for the pods a label selector finds (the job of the canonical
// metrics-k8s-proxy), with the sidecar's fetch, merge and server. The only mode that loads
// @kubernetes/client-node besides the webhook.
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { Collector, type Merge } from '../sidecar/collector.ts';
import { mergeStreamed } from '../sidecar/exposition/index.ts';
import { waitForSignal } from '../sidecar/main.ts';
import { jsonLog, type Log } from '../sidecar/log.ts';
import { SidecarServer } from '../sidecar/server.ts';
import { runWithFlags } from '../usage.ts';
import { PodDiscovery, type Timing } from './discovery.ts';
import { PodFanOut } from './fanout.ts';
import { parseProxyFlags, usage, type ProxyOptions } from './flags.ts';

export interface RunningProxy {
  address: AddressInfo;
  /** Stops watching, stops accepting, lets the scrapes in flight finish. */
  stop(): Promise<void>;
}

/** The namespaces to watch: as asked, else the proxy's own ($POD_NAMESPACE, else the kubeconfig context's, else "default"). */
export function namespacesOf(options: ProxyOptions, kubeConfig: KubeConfig, env: NodeJS.ProcessEnv): string[] | 'all' {
  if (options.allNamespaces) return 'all';
  if (options.namespaces !== undefined) return options.namespaces;
  const own = env.POD_NAMESPACE?.trim() || kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace || 'default';
  return [own];
}

export async function startProxy(
  options: ProxyOptions, log: Log, kubeConfig: KubeConfig, env: NodeJS.ProcessEnv = process.env, timing?: Partial<Timing>,
): Promise<RunningProxy> {
  const namespaces = namespacesOf(options, kubeConfig, env);
  const discovery = new PodDiscovery({ selector: options.selector, namespaces, labels: options.labels, kubeConfig, log, timing });
  const fanOut = new PodFanOut(() => discovery.targets(), {
    concurrency: options.concurrency, maxTargetBytes: options.maxTargetBytes, maxTotalBytes: options.maxTotalBytes,
    containerLabel: options.labels.container,
  });
  const merge: Merge = (targets, accept, drops) =>
    mergeStreamed(targets, { containerLabel: options.labels.container, accept }, drops);
  const server = new SidecarServer(
    { ...options, notReady: () => discovery.notReady() },
    new Collector({ mode: 'on-demand', scraper: fanOut }, merge, log),
    log,
  );
  const address = await server.listen();
  try {
    discovery.start();
  } catch (e) {
    await server.close();
    throw e;
  }
  log('info', 'listening', {
    address: `${address.address}:${address.port}`,
    endpoint: options.endpoint,
    selector: options.selector,
    namespaces,
    labels: options.labels,
    apiServer: kubeConfig.getCurrentCluster()?.server,
  });
  return {
    address,
    async stop() {
      await discovery.stop();
      await server.close();
    },
  };
}

export async function run(options: ProxyOptions, log: Log): Promise<number> {
  const kubeConfig = new KubeConfig();
  const source = options.kubeconfig === undefined ? '' : ` ${options.kubeconfig}`;
  try {
    if (options.kubeconfig === undefined) kubeConfig.loadFromDefault();
    else kubeConfig.loadFromFile(options.kubeconfig);
  } catch (e) {
    log('error', `cannot load the kubeconfig${source}: ${(e as Error).message}`);
    return 1;
  }
  // Caught here, not by the first request: client-node would throw "No active cluster!" from deep inside.
  if (kubeConfig.getCurrentCluster() === null) {
    log('error', `the kubeconfig${source} names no cluster for its current context ("${kubeConfig.getCurrentContext()}"): give --kubeconfig, or run in a pod`);
    return 1;
  }
  const stopped = waitForSignal();
  let proxy: RunningProxy;
  try {
    proxy = await startProxy(options, log, kubeConfig);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    log('error', typeof err.code === 'string' && err.syscall === 'listen'
      ? `cannot listen on ${options.listenAddress}:${options.port}: ${err.message}`
      : `cannot start: ${err.message}`);
    return 1;
  }
  const signal = await stopped;
  log('info', 'shutting down', { signal });
  await proxy.stop();
  log('info', 'stopped');
  return 0;
}

export function main(argv: string[]): Promise<number> {
  return runWithFlags('proxy', argv, parseProxyFlags, usage, (options) => run(options, jsonLog()));
}
