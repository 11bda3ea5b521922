// kube-rbac-proxy (brancz/kube-rbac-proxy, used by kube-prometheus and kubebuilder projects): a
// container that authenticates and authorizes every request (TokenReview, SubjectAccessReview)
// before passing it to --upstream, usually an app bound to 127.0.0.1. Metrics behind it are
// protected; promux would serve them to anyone who reaches its port.
import { commandLine, flagValues, imageOf, portOfAddress } from './containers.ts';
import type { PodView } from './pod.ts';

export interface RbacProxy {
  container: string;
  /** Ports it listens on (its flags and its declared ports). */
  listens: Set<number>;
  /** Ports on localhost it forwards to. */
  upstreams: Set<number>;
}

const LOOPBACK = /^(localhost|127(\.\d+){3}|\[::1\]|::1)$/;

function upstreamPort(url: string): number | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (!LOOPBACK.test(parsed.hostname)) return undefined;
  if (parsed.port !== '') return Number(parsed.port);
  return parsed.protocol === 'https:' ? 443 : parsed.protocol === 'http:' ? 80 : undefined;
}

/** Every kube-rbac-proxy among the running containers, known by its image or by --upstream with --secure-listen-address. */
export function findRbacProxies(view: PodView): RbacProxy[] {
  const proxies: RbacProxy[] = [];
  for (const container of view.running) {
    const tokens = commandLine(container);
    const upstream = flagValues(tokens, ['--upstream']).map((f) => f.value);
    const secure = flagValues(tokens, ['--secure-listen-address']).map((f) => f.value);
    if (!imageOf(container).includes('kube-rbac-proxy') && !(upstream.length > 0 && secure.length > 0)) continue;
    const insecure = flagValues(tokens, ['--insecure-listen-address']).map((f) => f.value);
    const listens = new Set(container.ports.map((p) => p.containerPort));
    for (const address of [...secure, ...insecure]) {
      const port = portOfAddress(address);
      if (port !== undefined) listens.add(port);
    }
    const upstreams = new Set<number>();
    for (const url of upstream) {
      const port = upstreamPort(url);
      if (port !== undefined) upstreams.add(port);
    }
    proxies.push({ container: container.name, listens, upstreams });
  }
  return proxies;
}

/** The proxy a target on `port` is behind (its listen port or its upstream), if any. */
export function behindProxy(proxies: readonly RbacProxy[], port: number): RbacProxy | undefined {
  return proxies.find((p) => p.listens.has(port) || p.upstreams.has(port));
}
