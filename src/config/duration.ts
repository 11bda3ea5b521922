// Prometheus-style durations ("10s", "1m30s", "500ms"), shared by the config and the sidecar flags.
// Kept free of dependencies: the sidecar imports it.

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds in a duration string, or undefined when it is not one. A bare number means seconds. */
export function parseDurationMs(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  let total = 0;
  let rest = trimmed;
  while (rest !== '') {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)/.exec(rest);
    if (m === null) return undefined;
    total += Number(m[1]) * UNITS[m[2] as string]!;
    rest = rest.slice(m[0].length);
  }
  return Math.round(total);
}

/** Bytes in a size such as "32MiB", "64Mi", "1000000" or "10MB". */
export function parseBytes(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB|Ki|Mi|Gi|K|M|G)?\s*$/.exec(text);
  if (m === null) return undefined;
  const factors: Record<string, number> = {
    B: 1, K: 1e3, KB: 1e3, M: 1e6, MB: 1e6, G: 1e9, GB: 1e9,
    Ki: 1024, KiB: 1024, Mi: 1024 ** 2, MiB: 1024 ** 2, Gi: 1024 ** 3, GiB: 1024 ** 3,
  };
  return Math.round(Number(m[1]) * factors[m[2] ?? 'B']!);
}
