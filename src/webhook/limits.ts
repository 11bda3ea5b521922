// How much the webhook may hold at once, sized from the memory it may use, so that no client (an
// idle-connection flood, many large bodies, more reviews than the CPU can answer) can push it past
// its memory limit: past a cap, a new connection is refused (or replaces an idle one) and a new
// review is answered at once without a patch.
import { totalmem } from 'node:os';
import type { ServingLimits } from './options.ts';

export const DEFAULT_TIMEOUTS = { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 120_000 };
/** The chart's memory limit; used when the process has none (or it cannot be read). */
export const DEFAULT_MEMORY_LIMIT = 256 * 1024 * 1024;
const MiB = 1024 * 1024;
/**
 * What the process needs whatever its clients do: Node and its code, the libraries, the heap at
 * rest (70 MiB resident at start, measured by test/webhook/stress.test.ts), with room for garbage.
 */
const RESERVED = 96 * MiB;
/**
 * Memory an open TLS connection costs: Node's socket and parser, OpenSSL's buffers (65-78 KiB
 * measured by the flood; 568 idle ones added 51 MiB of RSS in test/webhook/stress.test.ts).
 */
const CONNECTION_BYTES = 96 * 1024;
/**
 * Memory a review in flight costs besides its body: request and response objects and the answer.
 * Reviews are answered one at a time, so only one body at a time is parsed into objects.
 */
const REVIEW_BYTES = 64 * 1024;

export interface EffectiveLimits {
  memoryLimitBytes: number;
  /** Where the memory limit came from: the flag, the cgroup, or the default. */
  memorySource: 'flag' | 'cgroup' | 'default';
  maxConnections: number;
  maxReviewsInFlight: number;
  maxRequestBytesInFlight: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

/** The memory limit of the process's cgroup (v1 or v2, as libuv reads it), or undefined when it has none. */
export function cgroupMemoryLimit(): number | undefined {
  const limit = process.constrainedMemory();
  // No limit reads as 0 or as "unlimited" (2^64 or v1's 2^63 rounded to a page).
  return limit > 0 && limit < totalmem() ? limit : undefined;
}

/**
 * The caps for a memory limit: of what is left after RESERVED, about a third for connections, a
 * third for reviews in flight and a sixth for their bodies; the rest is headroom for the one
 * review being parsed (a 3 MiB body takes several times its size as objects) and for garbage.
 */
export function limitsFor(memoryBytes: number): Pick<EffectiveLimits, 'maxConnections' | 'maxReviewsInFlight' | 'maxRequestBytesInFlight'> {
  const spare = Math.max(memoryBytes - RESERVED, 32 * MiB);
  return {
    maxConnections: Math.floor(spare / 3 / CONNECTION_BYTES),
    maxReviewsInFlight: Math.floor(spare / 3 / REVIEW_BYTES),
    maxRequestBytesInFlight: Math.floor(spare / 6),
  };
}

/** The limits in force: each flag given, the rest sized from the memory limit. */
export function effectiveLimits(given: Partial<ServingLimits> = {}, cgroupLimit = cgroupMemoryLimit()): EffectiveLimits {
  const memorySource = given.memoryLimitBytes !== undefined ? 'flag' : cgroupLimit !== undefined ? 'cgroup' : 'default';
  const memoryLimitBytes = given.memoryLimitBytes ?? cgroupLimit ?? DEFAULT_MEMORY_LIMIT;
  const sized = limitsFor(memoryLimitBytes);
  return {
    memoryLimitBytes,
    memorySource,
    maxConnections: given.maxConnections ?? sized.maxConnections,
    maxReviewsInFlight: given.maxReviewsInFlight ?? sized.maxReviewsInFlight,
    maxRequestBytesInFlight: given.maxRequestBytesInFlight ?? sized.maxRequestBytesInFlight,
    headersTimeoutMs: given.headersTimeoutMs ?? DEFAULT_TIMEOUTS.headersTimeoutMs,
    requestTimeoutMs: given.requestTimeoutMs ?? DEFAULT_TIMEOUTS.requestTimeoutMs,
    keepAliveTimeoutMs: given.keepAliveTimeoutMs ?? DEFAULT_TIMEOUTS.keepAliveTimeoutMs,
  };
}
