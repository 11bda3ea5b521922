// The original multiplexer sidecar (thought-machine/prometheus-multiplexer-sidecar), which promux
// replaces: its image, or its flags. It takes one `-m <container>:<port>` per container (go-flags:
// `-m v`, `-mv`, `--container_to_port_map v`, `--container_to_port_map=v`), scrapes each port on
// localhost at its own --endpoint path (-p, /metrics), and serves the merge on --export_to (-e,
// 13434) with the label --container_label (-n, container). Its -x is documented but never applied
// (pkg/server/server.go takes no exclusions); its -i polls every container every 200 ms.
import { OWN_LABELS } from '../sidecar/flags.ts';
import { parseTarget, pathProblem, TargetMapError } from '../target-map.ts';
import type { Target } from '../target-map.ts';
import { commandLine, flagValues, imageOf } from './containers.ts';
import type { ContainerView, PodView } from './pod.ts';

const MAP_FLAGS = ['-m', '--container_to_port_map', '--container-to-port-map'];
const ENDPOINT_FLAGS = ['-p', '--endpoint'];
const PORT_FLAGS = ['-e', '--export_to', '--export-to'];
const LABEL_FLAGS = ['-n', '--container_label', '--container-label'];
const EXCLUDE_FLAGS = ['-x', '--exclude_containers', '--exclude-containers'];
const DEFAULT_PORT = 13434;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export interface Multiplexer {
  container: ContainerView;
  /** Its map, each entry on its --endpoint path (what it scraped). */
  targets: Target[];
  /** Its -x list. */
  excluded: string[];
  /** Its --export_to. */
  port: number;
  /** The name of its declared port serving `port`, if it has one. */
  portName: string | undefined;
  /** Its --endpoint: the path it served (and scraped). */
  endpoint: string;
  /** Its --container_label, when given and a valid label name. */
  containerLabel: string | undefined;
}

/** Why a container recognised as the original multiplexer cannot be replaced (promux then skips the pod). */
export class MultiplexerError extends Error {
  override name = 'MultiplexerError';
}

/** An image's name without its registry, path, tag and digest ("ghcr.io/a/b:1@sha256:..." is "b"). */
function imageName(image: string): string {
  const at = image.indexOf('@');
  const ref = at === -1 ? image : image.slice(0, at);
  const name = ref.slice(ref.lastIndexOf('/') + 1);
  const colon = name.indexOf(':');
  return colon === -1 ? name : name.slice(0, colon);
}

function looksLikeMultiplexer(container: ContainerView): boolean {
  const image = imageName(imageOf(container));
  const binary = commandLine(container)[0] ?? '';
  return image.includes('multiplexer-sidecar') || binary.endsWith('metrics-multiplexer-sidecar');
}

function last(tokens: string[], names: string[]): string | undefined {
  return flagValues(tokens, names).at(-1)?.value;
}

function entries(values: string[]): Target[] | undefined {
  try {
    return values.flatMap((v) => v.split(',')).filter((e) => e.trim() !== '').map(parseTarget);
  } catch (err) {
    if (err instanceof TargetMapError) return undefined;
    throw err;
  }
}

/**
 * The original multiplexer among the running containers: the first recognised by its image or
 * binary, or by -m/--container_to_port_map values that all read as `<container>:<port>`. Undefined
 * when there is none; a MultiplexerError when one is recognised but its flags cannot be adopted.
 */
export function findMultiplexer(view: PodView): Multiplexer | undefined {
  for (const container of view.running) {
    const tokens = commandLine(container);
    const mapValues = flagValues(tokens, MAP_FLAGS).map((f) => f.value);
    const map = mapValues.length === 0 ? undefined : entries(mapValues);
    const byImage = looksLikeMultiplexer(container);
    if (!byImage && map === undefined) continue;
    const what = `container "${container.name}" runs the original multiplexer sidecar`;
    if (map === undefined || map.length === 0) {
      throw new MultiplexerError(
        `${what}, but its -m/--container_to_port_map flags could not be read (${JSON.stringify(mapValues.join(' '))}): ` +
          'promux cannot take over its map; name the targets in promux.io/targets',
      );
    }
    const endpoint = last(tokens, ENDPOINT_FLAGS) ?? '/metrics';
    const portText = last(tokens, PORT_FLAGS) ?? String(DEFAULT_PORT);
    const port = Number(portText);
    if (pathProblem(endpoint) !== undefined || !/^\d+$/.test(portText) || port < 1 || port > 65535) {
      throw new MultiplexerError(`${what}, but its --endpoint ${JSON.stringify(endpoint)} or --export_to ${JSON.stringify(portText)} cannot be read`);
    }
    const label = last(tokens, LABEL_FLAGS);
    const excluded = flagValues(tokens, EXCLUDE_FLAGS).flatMap((f) => f.value.split(',')).map((n) => n.trim()).filter((n) => n !== '');
    return {
      container,
      targets: map.map((t) => (t.path === '/metrics' ? { ...t, path: endpoint } : t)),
      excluded,
      port,
      portName: container.ports.find((p) => p.containerPort === port)?.name,
      endpoint,
      containerLabel: label !== undefined && LABEL_NAME.test(label) && !label.startsWith('__') && !OWN_LABELS.includes(label) ? label : undefined,
    };
  }
  return undefined;
}
