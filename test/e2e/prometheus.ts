// A real Prometheus server for tests: temporary storage, 127.0.0.1 on a free port, stopped by pid.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, startChild, waitForHttp, type Child } from './processes.ts';

export interface ActiveTarget {
  scrapePool: string;
  scrapeUrl: string;
  labels: Record<string, string>;
  discoveredLabels: Record<string, string>;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
  lastScrape: string;
}

export interface DroppedTarget {
  discoveredLabels: Record<string, string>;
}

export interface Targets {
  activeTargets: ActiveTarget[];
  droppedTargets: DroppedTarget[];
}

export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PrometheusServer {
  url: string;
  /** The directory of the config, the data and the file_sd files (the caller's, left in place). */
  dir: string;
  targets(): Promise<Targets>;
  query(promql: string): Promise<Sample[]>;
  output(): string;
  stop(): Promise<void>;
}

async function api<T>(url: string): Promise<T> {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const body = (await response.json()) as { status: string; data: T; error?: string };
  if (body.status !== 'success') throw new Error(`${url}: ${body.error ?? response.status}`);
  return body.data;
}

/** A temporary directory for a server's files, created before the server so file_sd can live there. */
export function prometheusDir(): string {
  return mkdtempSync(join(tmpdir(), 'promux-e2e-prometheus-'));
}

/** Starts `binary` with `config` (written into `dir`), and `flags` (`--enable-feature=...`), and waits until it is ready. */
export async function startPrometheus(binary: string, dir: string, config: string, flags: string[] = []): Promise<PrometheusServer> {
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, config);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: Child = startChild('prometheus', binary, [
    `--config.file=${configFile}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
    ...flags,
  ]);
  const server: PrometheusServer = {
    url,
    dir,
    targets: () => api<Targets>(`${url}/api/v1/targets`),
    query: async (promql) =>
      (await api<{ result: Sample[] }>(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`)).result,
    output: () => child.output(),
    stop: () => child.stop(),
  };
  try {
    await waitForHttp(`${url}/-/ready`, 30_000, child);
    return server;
  } catch (err) {
    await server.stop();
    throw err;
  }
}

export interface JobProgress {
  /** How many targets its file_sd file holds. */
  discovered: number;
  /** The `job` label of its series (relabeling may set another than the job name). */
  jobLabel: string;
}

/**
 * Waits until every job has been given all of its discovered targets (active or dropped), every
 * active target has been scraped at least once, and `up` is stored for all of them. Bounded.
 */
export async function waitForScrapes(
  prometheus: PrometheusServer,
  jobs: Map<string, JobProgress>,
  timeoutMs: number,
): Promise<Targets> {
  const deadline = Date.now() + timeoutMs;
  let pending = '';
  while (Date.now() < deadline) {
    const targets = await prometheus.targets();
    const active = new Map<string, number>();
    for (const t of targets.activeTargets) active.set(t.scrapePool, (active.get(t.scrapePool) ?? 0) + 1);
    const seen = new Map(active);
    for (const t of targets.droppedTargets) {
      const job = t.discoveredLabels.job ?? '';
      seen.set(job, (seen.get(job) ?? 0) + 1);
    }
    const undiscovered = [...jobs].filter(([job, p]) => p.discovered > 0 && !seen.has(job)).map(([job]) => job);
    const unscraped = targets.activeTargets.filter((t) => t.health === 'unknown').map((t) => t.scrapeUrl);
    const ups = await prometheus.query('count by (job) (up)');
    const upCount = new Map(ups.map((s) => [s.metric.job ?? '', Number(s.value[1])]));
    const unstored = [...active]
      .filter(([job, n]) => (upCount.get(jobs.get(job)?.jobLabel ?? job) ?? 0) < n)
      .map(([job]) => job);
    if (undiscovered.length === 0 && unscraped.length === 0 && unstored.length === 0) return targets;
    pending =
      `undiscovered jobs: ${undiscovered.join(', ')}; unscraped: ${unscraped.join(', ')}; ` +
      `up not stored: ${unstored.join(', ')}`;
    await sleep(250);
  }
  throw new Error(`Prometheus did not scrape everything within ${timeoutMs} ms (${pending})\n${prometheus.output()}`);
}
