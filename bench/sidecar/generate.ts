// Realistic text 0.0.4 expositions for the sidecar benchmark, generated (deterministically) rather
// than stored: HTTP server histograms by route, method and code, client counters, pool gauges,
// summaries and the usual process_/nodejs_ families. Families such as process_* and
// http_request_duration_seconds appear in every target, as they do in real pods, so the
// merge has families to join across targets.

/** Mulberry32: small deterministic PRNG, so every run measures the same bytes. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'];
const CODES = ['200', '201', '204', '400', '404', '500'];
const BUCKETS = ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf'];
const RESOURCES = ['users', 'orders', 'payments', 'invoices', 'carts', 'products', 'sessions', 'tokens', 'reports',
  'shipments', 'refunds', 'accounts', 'addresses', 'reviews', 'coupons', 'webhooks'];
const MODULES = ['api', 'worker', 'scheduler', 'billing', 'search', 'auth', 'ledger', 'notify', 'export', 'sync',
  'audit', 'render', 'index', 'stream', 'batch', 'mailer', 'pricing', 'catalog', 'fraud', 'tax'];

export interface Generated {
  body: string;
  series: number;
}

/** An exposition with about `targetSeries` series, the application's own families named `<app>_...`. */
export function generateExposition(app: string, targetSeries: number, seed: number): Generated {
  const rnd = random(seed);
  const out: string[] = [];
  let series = 0;
  const float = (scale: number): string => (rnd() * scale).toFixed(6);
  const counter = (scale: number): string => String(Math.floor(rnd() * scale));
  const family = (name: string, type: string, help: string): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  };
  const sample = (name: string, labels: string, value: string): void => {
    out.push(labels === '' ? `${name} ${value}` : `${name}{${labels}} ${value}`);
    series++;
  };

  family('process_cpu_seconds_total', 'counter', 'Total user and system CPU time spent in seconds.');
  sample('process_cpu_seconds_total', '', float(5000));
  family('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.');
  sample('process_resident_memory_bytes', '', counter(5e8));
  family('process_open_fds', 'gauge', 'Number of open file descriptors.');
  sample('process_open_fds', '', counter(500));
  family('nodejs_heap_space_size_used_bytes', 'gauge', 'Process heap space size used from Node.js in bytes.');
  for (const space of ['read_only', 'new', 'old', 'code', 'shared', 'trusted', 'new_large_object', 'large_object']) {
    sample('nodejs_heap_space_size_used_bytes', `space="${space}"`, counter(1e8));
  }

  // The shared HTTP histogram: by route, method and code, until about 40% of the series.
  const routes = RESOURCES.flatMap((r) => [`/${r}`, `/${r}/:id`, `/v2/${r}/:id/log`]);
  family('http_request_duration_seconds', 'histogram', 'Duration of HTTP server requests.');
  outer: for (const route of routes) {
    for (const method of METHODS) {
      for (const code of CODES) {
        if (series > targetSeries * 0.4) break outer;
        const labels = `method="${method}",route="${route}",code="${code}"`;
        let cumulative = 0;
        for (const le of BUCKETS) {
          cumulative += Math.floor(rnd() * 50);
          sample('http_request_duration_seconds_bucket', `${labels},le="${le}"`, String(cumulative));
        }
        sample('http_request_duration_seconds_sum', labels, float(cumulative));
        sample('http_request_duration_seconds_count', labels, String(cumulative));
      }
    }
  }

  // The application's own families: client calls, pools, caches, queue summaries.
  let i = 0;
  while (series < targetSeries) {
    // (kind, resource, module) is unique per i: no family name repeats.
    const kind = i % 4;
    const resource = RESOURCES[Math.floor(i / 4) % RESOURCES.length]!;
    const round = Math.floor(i / (4 * RESOURCES.length));
    const prefix = `${app}_${MODULES[round % MODULES.length]}${round < MODULES.length ? '' : round}_${resource}`;
    if (kind === 0) {
      const name = `${prefix}_client_calls_total`;
      family(name, 'counter', `Calls made to the ${resource} service.`);
      for (const method of ['Get', 'List', 'Create', 'Update', 'Delete', 'Watch']) {
        for (const status of ['OK', 'NOT_FOUND', 'UNAVAILABLE', 'DEADLINE_EXCEEDED', 'INTERNAL']) {
          sample(name, `method="${method}",code="${status}"`, counter(1e7));
        }
      }
    } else if (kind === 1) {
      const name = `${prefix}_db_pool_connections`;
      family(name, 'gauge', `Connections of the ${resource} database pool by state.`);
      for (let shard = 0; shard < 8; shard++) {
        for (const state of ['idle', 'in_use', 'waiting']) sample(name, `pool="${resource}-${shard}",state="${state}"`, counter(64));
      }
    } else if (kind === 2) {
      const name = `${prefix}_cache_ops_total`;
      family(name, 'counter', `Operations on the ${resource} cache.`);
      for (const op of ['get', 'set', 'delete', 'expire']) {
        for (const result of ['hit', 'miss', 'error']) sample(name, `cache="${resource}",op="${op}",result="${result}"`, counter(1e9));
      }
    } else {
      const name = `${prefix}_queue_wait_seconds`;
      family(name, 'summary', `Time ${resource} jobs waited in the queue.`);
      for (const queue of ['default', 'priority', 'bulk', 'retry']) {
        for (const q of ['0.5', '0.9', '0.99']) sample(name, `queue="${queue}",quantile="${q}"`, float(30));
        sample(`${name}_sum`, `queue="${queue}"`, float(1e6));
        sample(`${name}_count`, `queue="${queue}"`, counter(1e6));
      }
    }
    i++;
  }
  return { body: `${out.join('\n')}\n`, series };
}
