// The pods of the end-to-end scenarios: fixture manifests turned into Pods as the API server would
// admit them, with their ports moved to the ports the local exporters really listen on.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

type Json = Record<string, unknown>;

function record(value: unknown): Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : {};
}

/** The first document of a YAML file. */
export function readManifest(file: string): Json {
  const [doc] = parseAllDocuments(readFileSync(file, 'utf8'));
  if (doc === undefined || !('toJS' in doc)) throw new Error(`${file}: no YAML document`);
  return record(doc.toJS());
}

/**
 * The Pod a Deployment's ReplicaSet creates from its template: the template's metadata, a generated
 * name and the ReplicaSet as controller. A Pod manifest is returned as it is.
 */
export function podOf(manifest: Json, podSuffix = '7c9f8d6b5-x2k4q'): Json {
  if (manifest.kind === 'Pod') return structuredClone(manifest);
  if (manifest.kind !== 'Deployment') throw new Error(`podOf: ${String(manifest.kind)} is not a Pod or Deployment`);
  const metadata = record(manifest.metadata);
  const template = record(record(manifest.spec).template);
  const name = String(metadata.name);
  const replicaSet = `${name}-${podSuffix.split('-')[0]}`;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      ...structuredClone(record(template.metadata)),
      name: `${name}-${podSuffix}`,
      namespace: metadata.namespace ?? 'default',
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: replicaSet, uid: `uid-${replicaSet}`, controller: true },
      ],
    },
    spec: structuredClone(record(template.spec)),
  };
}

/** Annotations whose whole value is a port number. */
const PORT_ANNOTATIONS = ['prometheus.io/port', 'k8s.grafana.com/metrics.portNumber'];

/**
 * `pod` with every port number in `ports` (manifest port -> real port) replaced: the containers'
 * declared ports, the port annotations and the ports in a `promux.io/targets` map.
 */
export function movePorts(pod: Json, ports: Map<number, number>): Json {
  const copy = structuredClone(pod);
  const move = (port: number) => {
    const moved = ports.get(port);
    if (moved === undefined) throw new Error(`movePorts: no real port for manifest port ${port}`);
    return moved;
  };
  const spec = record(copy.spec);
  for (const key of ['containers', 'initContainers']) {
    for (const container of Array.isArray(spec[key]) ? (spec[key] as Json[]) : []) {
      for (const port of Array.isArray(container.ports) ? (container.ports as Json[]) : []) {
        port.containerPort = move(Number(port.containerPort));
      }
    }
  }
  const annotations = record(record(copy.metadata).annotations);
  for (const key of PORT_ANNOTATIONS) {
    if (typeof annotations[key] === 'string') annotations[key] = String(move(Number(annotations[key])));
  }
  const targets = annotations['promux.io/targets'];
  if (typeof targets === 'string') {
    annotations['promux.io/targets'] = targets.replace(/:(\d+)/g, (_, port: string) => `:${move(Number(port))}`);
  }
  return copy;
}
