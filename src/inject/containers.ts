// Reading other tools' containers: their command-line flags, environment and image, the way those
// tools read them (Go's flag packages: `-f v`, `-fv`, `-f=v`, `--flag v`, `--flag=v`).
import { isObject } from '../json.ts';
import type { ContainerView } from './pod.ts';

/** A string list field of a container (command, args); other values count as absent. */
export function stringList(container: ContainerView, field: 'command' | 'args'): string[] | undefined {
  const list = container.spec[field];
  return Array.isArray(list) && list.every((a) => typeof a === 'string') ? list : undefined;
}

/** command then args: what the process is started with (an image's entrypoint aside). */
export function commandLine(container: ContainerView): string[] {
  return [...(stringList(container, 'command') ?? []), ...(stringList(container, 'args') ?? [])];
}

export function imageOf(container: ContainerView): string {
  return typeof container.spec.image === 'string' ? container.spec.image : '';
}

export interface FlagValue {
  /** Position in the list of the token holding the value. */
  at: number;
  value: string;
  /** The text before the value in that token ("--flag=", "-f"), or "" when the value is a token of its own. */
  prefix: string;
}

/**
 * Every value given to a flag among `tokens`, in order. `names` are spelled with their dashes
 * ("-m", "--container_to_port_map"); a one-letter name also takes its value attached ("-mapp:80").
 */
export function flagValues(tokens: readonly string[], names: readonly string[]): FlagValue[] {
  const found: FlagValue[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token === '--') break;
    for (const name of names) {
      if (token === name) {
        if (i + 1 < tokens.length) found.push({ at: i + 1, value: tokens[i + 1]!, prefix: '' });
        i++;
        break;
      }
      if (token.startsWith(`${name}=`)) {
        found.push({ at: i, value: token.slice(name.length + 1), prefix: `${name}=` });
        break;
      }
      if (/^-[a-zA-Z]$/.test(name) && token.startsWith(name) && token.length > 2) {
        found.push({ at: i, value: token.slice(2), prefix: name });
        break;
      }
    }
  }
  return found;
}

/** The container's env entry `name` with a literal value, and its position. */
export function envEntry(container: ContainerView, name: string): { index: number; value: string } | undefined {
  const env = container.spec.env;
  if (!Array.isArray(env)) return undefined;
  const index = env.findIndex((e) => isObject(e) && e.name === name);
  if (index === -1) return undefined;
  const value = (env[index] as Record<string, unknown>).value;
  return typeof value === 'string' ? { index, value } : undefined;
}

/** The port of "host:port", ":port" or "[::1]:port"; undefined when there is none. */
export function portOfAddress(address: string): number | undefined {
  const colon = address.lastIndexOf(':');
  const text = address.slice(colon + 1);
  const port = Number(text);
  return colon !== -1 && /^\d+$/.test(text) && port >= 1 && port <= 65535 ? port : undefined;
}
