// `promux sidecar`: the multiplexer. Loads node built-ins and promux's own modules only (one copy of
// this process runs in every injected pod, so its memory is what promux costs).

import { formatTarget } from '../target-map.ts';
import { Collector, type Merge, type Source } from './collector.ts';
import { mergeAnyFormat } from './exposition/index.ts';
import { fetchTarget } from './fetch.ts';
import { parseSidecarFlags, usage, type SidecarOptions } from './flags.ts';
import { jsonLog, type Log } from './log.ts';
import { BackgroundScraper, OnDemandScraper, type FetchFn } from './scraper.ts';
import { SidecarServer } from './server.ts';
import { runWithFlags } from '../usage.ts';

/** The first SIGTERM or SIGINT. */
export function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve(signal);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

function sourceFor(options: SidecarOptions): Source {
  const fetch: FetchFn = (target, limits, receive) => fetchTarget(target, limits, receive, options.containerLabel);
  if (options.scrapeIntervalMs === 0) {
    return { mode: 'on-demand', scraper: new OnDemandScraper(options.targets, options.maxTargetBytes, fetch) };
  }
  const limits = { timeoutMs: options.scrapeTimeoutMs, maxBytes: options.maxTargetBytes };
  const scraper = new BackgroundScraper(options.targets, limits, options.scrapeIntervalMs, fetch);
  return { mode: 'background', scraper };
}

export async function run(options: SidecarOptions, log: Log): Promise<number> {
  const merge: Merge = (targets, accept, drops) =>
    mergeAnyFormat(targets, { containerLabel: options.containerLabel, accept }, drops);
  const stopped = waitForSignal();
  const source = sourceFor(options);
  const server = new SidecarServer(options, new Collector(source, merge, log), log);
  let address;
  try {
    address = await server.listen();
  } catch (e) {
    if (source.mode === 'background') source.scraper.stop();
    log('error', `cannot listen on ${options.listenAddress}:${options.port}: ${(e as Error).message}`);
    return 1;
  }
  log('info', 'listening', {
    address: `${address.address}:${address.port}`,
    endpoint: options.endpoint,
    mode: source.mode,
    targets: options.targets.map(formatTarget),
  });
  const signal = await stopped;
  log('info', 'shutting down', { signal });
  if (source.mode === 'background') source.scraper.stop();
  await server.close();
  log('info', 'stopped');
  return 0;
}

export function main(argv: string[]): Promise<number> {
  return runWithFlags('sidecar', argv, parseSidecarFlags, usage, (options) => run(options, jsonLog()));
}
