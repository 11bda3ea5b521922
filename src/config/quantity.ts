// Kubernetes resource quantities ("10m", "64Mi", "0.5", "1e3"), read as the API server reads them
// (k8s.io/apimachinery resource.ParseQuantity) and compared exactly, so that a limit below its request
// is refused here exactly when the API server would refuse the pod. Kept free of dependencies.

import type { ResourceList } from './types.ts';

const BINARY_EXPONENT: Record<string, bigint> = { Ki: 10n, Mi: 20n, Gi: 30n, Ti: 40n, Pi: 50n, Ei: 60n };
const DECIMAL_EXPONENT: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };

// No sign: a resource is never negative, and "+" adds nothing. The exponent is bounded to keep the
// arithmetic small; nothing a container asks for needs more than three digits of it.
const QUANTITY = /^(\d+(?:\.\d*)?|\.\d+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d{1,3})?$/;
const NANOS_PER_UNIT = 1_000_000_000n;
const MAX_BINARY_NANOS = (2n ** 63n - 1n) * NANOS_PER_UNIT;
/** Longer than any sane quantity; bounds the work a pod's annotation can cause. */
const MAX_LENGTH = 64;

/**
 * The quantity in nano units (the API server rounds a quantity up to a whole nano), or undefined
 * when the text is not a non-negative Kubernetes quantity.
 */
export function parseQuantity(text: string): bigint | undefined {
  if (text.length > MAX_LENGTH) return undefined;
  const match = QUANTITY.exec(text);
  if (match === null) return undefined;
  const [whole = '', fraction = ''] = match[1]!.split('.');
  const suffix = match[2] ?? '';
  let mantissa = BigInt(`${whole}${fraction}` || '0');
  let exponent = -fraction.length + 9;
  if (suffix in BINARY_EXPONENT) mantissa <<= BINARY_EXPONENT[suffix]!;
  else if (suffix in DECIMAL_EXPONENT) exponent += DECIMAL_EXPONENT[suffix]!;
  else exponent += Number(suffix.slice(1));
  let nanos: bigint;
  if (exponent >= 0) {
    nanos = mantissa * 10n ** BigInt(exponent);
  } else {
    const divisor = 10n ** BigInt(-exponent);
    nanos = (mantissa + divisor - 1n) / divisor;
  }
  // The API server caps binary-suffixed values at the largest int64.
  return suffix in BINARY_EXPONENT && nanos > MAX_BINARY_NANOS ? MAX_BINARY_NANOS : nanos;
}

export type ResourceName = 'cpu' | 'memory';

const EXAMPLES: Record<ResourceName, string> = { cpu: '"10m" or "0.5"', memory: '"64Mi" or "1G"' };

/**
 * What `text` should be as an amount of `resource`, phrased to follow "expected"; undefined when it
 * is one. Memory must be whole bytes: the API server takes "64m" (0.064 bytes) but no container runs
 * in it, and it is always a slip for "64Mi".
 */
export function quantityExpectation(resource: ResourceName, text: unknown): string | undefined {
  const nanos = typeof text === 'string' ? parseQuantity(text) : undefined;
  if (nanos === undefined) return `a Kubernetes quantity such as ${EXAMPLES[resource]}`;
  if (resource === 'memory' && nanos % NANOS_PER_UNIT !== 0n) {
    return 'a whole number of bytes such as "64Mi" (the suffix m means thousandths: "64m" is 0.064 bytes)';
  }
  return undefined;
}

/**
 * The resources whose limit is below the request: the API server refuses such a pod ("must be less
 * than or equal to memory limit"). A request without a limit, or a limit without a request (which the
 * API server sets to the limit), is never one. Both lists must hold valid quantities.
 */
export function limitsBelowRequests(resources: { requests: ResourceList; limits: ResourceList }): ResourceName[] {
  return (['cpu', 'memory'] as const).filter((name) => {
    const request = resources.requests[name];
    const limit = resources.limits[name];
    return request !== undefined && limit !== undefined && parseQuantity(limit)! < parseQuantity(request)!;
  });
}
