// A memory cgroup with a hard limit: the kernel mechanism behind a Kubernetes container's memory
// limit (cgroup v1 memory.limit_in_bytes, or v2 memory.max). The kubelet's OOM kills and its
// container_memory_* figures come from the same counters. Needs root and a writable cgroup tree.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface MemoryCgroup {
  version: 1 | 2;
  /** A command that runs `command args` inside the cgroup. */
  wrap(command: string, args: string[]): [string, string[]];
  /** The most memory charged to the cgroup (anonymous memory plus the page cache it brought in). */
  peakBytes(): number;
  /** How often the charge reached the limit (and the kernel reclaimed page cache to stay under it). */
  limitHits(): number;
  oomKills(): number;
  remove(): void;
}

function field(text: string, name: string): number {
  return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
}

/** A command that joins the cgroup at dir (v1 and v2 alike) and then runs `command args`. */
function wrapIn(dir: string, command: string, args: string[]): [string, string[]] {
  return ['/bin/sh', ['-c', `echo $$ > ${dir}/cgroup.procs && exec "$0" "$@"`, command, ...args]];
}

/** Makes the cgroup, or says why it cannot. */
export function createMemoryCgroup(name: string, limitBytes: number): MemoryCgroup | string {
  try {
    const v1 = '/sys/fs/cgroup/memory';
    if (existsSync(join(v1, 'memory.limit_in_bytes'))) {
      const dir = join(v1, name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'memory.limit_in_bytes'), String(limitBytes));
      writeFileSync(join(dir, 'memory.max_usage_in_bytes'), '0');
      writeFileSync(join(dir, 'memory.failcnt'), '0');
      return {
        version: 1,
        wrap: (command, args) => wrapIn(dir, command, args),
        peakBytes: () => Number(readFileSync(join(dir, 'memory.max_usage_in_bytes'), 'utf8')),
        limitHits: () => Number(readFileSync(join(dir, 'memory.failcnt'), 'utf8')),
        oomKills: () => field(readFileSync(join(dir, 'memory.oom_control'), 'utf8'), 'oom_kill'),
        remove: () => rmdirSync(dir),
      };
    }
    const v2 = ['/sys/fs/cgroup', '/sys/fs/cgroup/unified'].find((root) => existsSync(join(root, 'cgroup.subtree_control')));
    if (v2 === undefined) return 'no cgroup memory controller found';
    if (!readFileSync(join(v2, 'cgroup.subtree_control'), 'utf8').includes('memory')) {
      writeFileSync(join(v2, 'cgroup.subtree_control'), '+memory');
    }
    const dir = join(v2, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'memory.max'), String(limitBytes));
    const events = (): string => readFileSync(join(dir, 'memory.events'), 'utf8');
    return {
      version: 2,
      wrap: (command, args) => wrapIn(dir, command, args),
      peakBytes: () => Number(readFileSync(join(dir, 'memory.peak'), 'utf8')),
      limitHits: () => field(events(), 'max'),
      oomKills: () => field(events(), 'oom_kill'),
      remove: () => rmdirSync(dir),
    };
  } catch (e) {
    return `cannot make a memory cgroup: ${(e as Error).message}`;
  }
}

/** Empties the page cache, so that the next process is charged for the Node binary's pages it reads. */
export function dropPageCache(): string | undefined {
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}
