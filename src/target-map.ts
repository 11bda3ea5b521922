// The container-to-port map shared by the injector (which writes it into the sidecar's args and
// the `promux.io/targets` annotation) and the sidecar (which reads it from -m). Syntax, compatible
// with the original multiplexer sidecar's `<container>:<port>`:
//
//   <container>:[https:]<port>[/<path>[?<query>]]     e.g. gateway:8082, api:https:8443/custom/metrics
//
// Entries are separated by commas (or given as repeated flags). One container may have several
// entries (endpoints); the same entry twice is refused. It sits below src/inject and src/sidecar,
// which both import it, so the sidecar never loads the injector; no dependencies.

export interface Target {
  container: string;
  port: number;
  /** Path and optional query string, always starting with "/". */
  path: string;
  scheme: 'http' | 'https';
}

export const DEFAULT_METRICS_PATH = '/metrics';

export class TargetMapError extends Error {
  override name = 'TargetMapError';
}

/**
 * Why `path` cannot be a target's path, or undefined when it can. The one rule for the injector
 * (at admission) and the sidecar (at start): the path goes into the request line as it is, and
 * HTTP/1.1 allows only visible ASCII there (RFC 9112), so anything else must come percent-encoded.
 */
export function pathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return `path ${JSON.stringify(path)} does not start with "/"`;
  for (let i = 0; i < path.length; i++) {
    const code = path.charCodeAt(i);
    if (code < 0x21 || code > 0x7e) {
      return `path ${JSON.stringify(path)} has a character HTTP does not allow in a request line ` +
        `(${JSON.stringify(path[i])} at ${i}; percent-encode it)`;
    }
  }
  return undefined;
}

/** One `<container>:[https:]<port>[/<path>]` entry. */
export function parseTarget(entry: string): Target {
  const text = entry.trim();
  const firstColon = text.indexOf(':');
  if (firstColon <= 0) throw new TargetMapError(`${JSON.stringify(text)}: expected <container>:<port>[/<path>]`);
  const container = text.slice(0, firstColon);
  let rest = text.slice(firstColon + 1);
  let scheme: Target['scheme'] = 'http';
  for (const s of ['https:', 'http:'] as const) {
    if (rest.startsWith(s)) {
      scheme = s === 'https:' ? 'https' : 'http';
      rest = rest.slice(s.length);
    }
  }
  const slash = rest.indexOf('/');
  const portText = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? DEFAULT_METRICS_PATH : rest.slice(slash);
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(container)) {
    throw new TargetMapError(`${JSON.stringify(text)}: ${JSON.stringify(container)} is not a container name`);
  }
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) {
    throw new TargetMapError(`${JSON.stringify(text)}: ${JSON.stringify(portText)} is not a port number (1-65535)`);
  }
  const problem = pathProblem(path);
  if (problem !== undefined) throw new TargetMapError(`${JSON.stringify(text)}: ${problem}`);
  return { container, port, path, scheme };
}

/**
 * A comma-separated list, or several of them (repeated flags); empty entries are ignored. The same
 * endpoint of a container twice (same scheme, port and path) is refused: it would be scraped twice.
 */
export function parseTargetMap(...lists: string[]): Target[] {
  const targets = lists
    .flatMap((l) => l.split(','))
    .filter((e) => e.trim() !== '')
    .map(parseTarget);
  const seen = new Set<string>();
  for (const t of targets) {
    const entry = formatTarget(t);
    if (seen.has(entry)) throw new TargetMapError(`${JSON.stringify(entry)} appears twice: the same endpoint would be scraped twice`);
    seen.add(entry);
  }
  return targets;
}

/** The entry without its container, as the sidecar's `endpoint` label shows it: "8080", "https:8443/custom/metrics". */
export function endpointOf(t: Target): string {
  const scheme = t.scheme === 'https' ? 'https:' : '';
  const path = t.path === DEFAULT_METRICS_PATH ? '' : t.path;
  return `${scheme}${t.port}${path}`;
}

export function formatTarget(t: Target): string {
  return `${t.container}:${endpointOf(t)}`;
}

export function formatTargetMap(targets: readonly Target[]): string {
  return targets.map(formatTarget).join(',');
}
