// The injected container: the multiplexer in sidecar mode, with the target map in its flags.
import type { ResourceList, SidecarConfig } from '../config/types.ts';
import { parseDurationMs } from '../config/duration.ts';
import type { SidecarResources } from './resources.ts';

/**
 * The configured port unless a container declares it or a target uses it; then the next free one
 * (wrapping to 1024 after 65535).
 */
export function choosePort(preferred: number, used: ReadonlySet<number>): number {
  for (let port = preferred; port <= 65535; port++) if (!used.has(port)) return port;
  for (let port = 1024; port < preferred; port++) if (!used.has(port)) return port;
  return preferred; // every port taken: not a pod Kubernetes would run
}

/**
 * V8 heap limits for the sidecar (NODE_OPTIONS takes these two flags): a small old space makes V8
 * collect a scrape's buffers soon after it, instead of letting several scrapes' worth pile up in the
 * pod's memory (peak RSS 102 MiB instead of 283 for 50k series); a 1 MiB semi-space keeps the young
 * generation small. 32 MiB of old space saved no memory over 48. --expose-gc lets the sidecar collect
 * its garbage once a scrape is over (see collectionsOf in src/sidecar/collector.ts).
 * The image's entrypoint adds --no-memory-reducer (which NODE_OPTIONS does not take). Measured in
 * bench/sidecar.ts.
 */
export const SIDECAR_NODE_OPTIONS = '--max-old-space-size=48 --max-semi-space-size=1 --expose-gc';

/**
 * The injected container's environment. MALLOC_ARENA_MAX: glibc gives each thread that allocates
 * (zlib on the thread pool, V8's compiler and GC helpers) an arena of its own, and the memory freed in
 * one is rarely given back: 9-15 MiB of the sidecar's private memory at its peak and between scrapes.
 * Two arenas: 7-10 MiB less, at no measurable CPU cost. MALLOC_MMAP_THRESHOLD_: a fixed threshold
 * (glibc otherwise raises it to the size of each large block freed) keeps every block of 128 KiB or
 * more (bodies, sample records, answer pieces) in a mapping of its own, given back to the system when
 * the sidecar frees it after a scrape, rather than in malloc's heap, which keeps it: 3-9 MiB less
 * between scrapes (bench/sidecar.ts --memory, BENCHMARKS.md).
 */
export const SIDECAR_ENV: ReadonlyArray<{ name: string; value: string }> = [
  { name: 'NODE_OPTIONS', value: SIDECAR_NODE_OPTIONS },
  { name: 'MALLOC_ARENA_MAX', value: '2' },
  { name: 'MALLOC_MMAP_THRESHOLD_', value: '131072' },
];

function definedResources(list: ResourceList): ResourceList | undefined {
  const out: ResourceList = {};
  if (list.cpu !== undefined) out.cpu = list.cpu;
  if (list.memory !== undefined) out.memory = list.memory;
  return Object.keys(out).length === 0 ? undefined : out;
}

/** What one pod's sidecar serves: where, under which port name and path, with which label. */
export interface SidecarServing {
  port: number;
  portName: string;
  /** The path it serves (its --endpoint). */
  endpoint: string;
  containerLabel: string;
}

function sidecarArgs(sidecar: SidecarConfig, serving: SidecarServing, targetMap: string): string[] {
  const args = [
    'sidecar',
    '--container_to_port_map', targetMap,
    '--export_to', String(serving.port),
    ...(serving.endpoint === '/metrics' ? [] : ['--endpoint', serving.endpoint]),
    '--container_label', serving.containerLabel,
    '--scrape_timeout', sidecar.scrapeTimeout,
    '--max_target_bytes', sidecar.maxTargetBytes,
  ];
  const intervalMs = parseDurationMs(sidecar.scrapeInterval) ?? 0;
  if (intervalMs > 0) args.push('--scrape_interval', String(intervalMs));
  return args;
}

/**
 * The sidecar container, scraping `targetMap` (formatTargetMap's) with `sidecarResources`; `native`
 * makes it an init container that keeps running (restartPolicy Always).
 */
export function sidecarContainer(
  sidecar: SidecarConfig,
  serving: SidecarServing,
  targetMap: string,
  native: boolean,
  sidecarResources: SidecarResources,
): Record<string, unknown> {
  const resources: Record<string, ResourceList> = {};
  const requests = definedResources(sidecarResources.requests);
  const limits = definedResources(sidecarResources.limits);
  if (requests !== undefined) resources.requests = requests;
  if (limits !== undefined) resources.limits = limits;
  return {
    name: sidecar.containerName,
    image: sidecar.image,
    imagePullPolicy: sidecar.imagePullPolicy,
    ...(native ? { restartPolicy: 'Always' } : {}),
    args: sidecarArgs(sidecar, serving, targetMap),
    env: SIDECAR_ENV.map((e) => ({ ...e })),
    ports: [{ name: serving.portName, containerPort: serving.port, protocol: 'TCP' }],
    ...(Object.keys(resources).length > 0 ? { resources } : {}),
    readinessProbe: { httpGet: { path: '/readyz', port: serving.portName } },
    livenessProbe: { httpGet: { path: '/healthz', port: serving.portName } },
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      readOnlyRootFilesystem: true,
      // Where runAsUser is left to the platform, the kubelet checks the uid it gets (the pod's, the
      // image's numeric USER or OpenShift's) is not root.
      runAsNonRoot: true,
      ...(sidecar.runAsUser === null ? {} : { runAsUser: sidecar.runAsUser }),
      ...(sidecar.runAsGroup === null ? {} : { runAsGroup: sidecar.runAsGroup }),
      seccompProfile: { type: 'RuntimeDefault' },
    },
  };
}
