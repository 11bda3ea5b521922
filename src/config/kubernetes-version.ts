// The cluster's Kubernetes version, as the configuration gives it or the API server's /version
// reports it ("1.31", "v1.31.2", "v1.29.3-eks-adc7111"): promux only needs major and minor.

/** Native sidecars (init containers with restartPolicy Always) are on by default from 1.29 (beta; GA in 1.33). */
export const NATIVE_SIDECAR_VERSION = { major: 1, minor: 29 };

export function parseKubernetesVersion(text: string): { major: number; minor: number } | undefined {
  const match = /^v?(\d+)\.(\d+)(?:[.+-].*)?$/.exec(text.trim());
  return match === null ? undefined : { major: Number(match[1]), minor: Number(match[2]) };
}

/** Whether a cluster of this version runs native sidecars: 'unknown' for an empty or unreadable version. */
export function nativeSidecarSupport(version: string): 'yes' | 'no' | 'unknown' {
  const parsed = parseKubernetesVersion(version);
  if (parsed === undefined) return 'unknown';
  const { major, minor } = NATIVE_SIDECAR_VERSION;
  return parsed.major > major || (parsed.major === major && parsed.minor >= minor) ? 'yes' : 'no';
}
