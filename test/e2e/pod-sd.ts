// A stand-in for Prometheus's Kubernetes service discovery, `role: pod`, as Prometheus 2.42 builds it
// (discovery/kubernetes/pod.go): the targets a Pod turns into, written as file_sd target groups.
// file_sd keeps every `__meta_*` label a group carries until relabeling, so a real Prometheus applies
// the same relabel_configs to these groups as it would to the groups its Kubernetes discovery makes.
// (There is no API server here, and Debian's Prometheus is built without Kubernetes discovery.)
//
// What pod.go does, and this copies:
// - no target at all while the pod has no IP;
// - containers first, then init containers (`__meta_kubernetes_pod_container_init` "true"); a
//   restartable init container (a native sidecar, `restartPolicy: Always`) is an init container
//   like any other: 2.42 predates the field, and later versions still only look at the list;
// - one target per declared container port (`__address__` podIP:port, with the port's name, number
//   and protocol), or one port-less target (`__address__` the bare pod IP) for a container without
//   ports; each with the container's name, image, id (new in 2.42) and init flag;
// - pod-level labels: name, namespace, ip, ready, phase, node_name, host_ip, uid, controller
//   kind/name, and label_/labelpresent_/annotation_/annotationpresent_ with the key sanitized.

type Json = Record<string, unknown>;

export interface FileSdGroup {
  targets: string[];
  labels: Record<string, string>;
}

const META = '__meta_kubernetes_';

/** Prometheus's strutil.SanitizeLabelName: every character outside [a-zA-Z0-9_] becomes "_". */
export function sanitizeLabelName(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, '_');
}

function record(value: unknown): Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : {};
}

function list(value: unknown): Json[] {
  return Array.isArray(value) ? value.map(record) : [];
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/** The meta labels shared by every target of the pod (pod.go: podLabels plus the namespace). */
function podLabels(pod: Json): Record<string, string> {
  const metadata = record(pod.metadata);
  const spec = record(pod.spec);
  const status = record(pod.status);
  const ready = list(status.conditions).find((c) => c.type === 'Ready');
  const labels: Record<string, string> = {
    [`${META}namespace`]: text(metadata.namespace),
    [`${META}pod_name`]: text(metadata.name),
    [`${META}pod_ip`]: text(status.podIP),
    [`${META}pod_ready`]: ready === undefined ? 'unknown' : text(ready.status).toLowerCase(),
    [`${META}pod_phase`]: text(status.phase),
    [`${META}pod_node_name`]: text(spec.nodeName),
    [`${META}pod_host_ip`]: text(status.hostIP),
    [`${META}pod_uid`]: text(metadata.uid),
  };
  const controller = list(metadata.ownerReferences).find((ref) => ref.controller === true);
  if (controller !== undefined) {
    if (text(controller.kind) !== '') labels[`${META}pod_controller_kind`] = text(controller.kind);
    if (text(controller.name) !== '') labels[`${META}pod_controller_name`] = text(controller.name);
  }
  for (const [key, value] of Object.entries(record(metadata.labels))) {
    labels[`${META}pod_label_${sanitizeLabelName(key)}`] = text(value);
    labels[`${META}pod_labelpresent_${sanitizeLabelName(key)}`] = 'true';
  }
  for (const [key, value] of Object.entries(record(metadata.annotations))) {
    labels[`${META}pod_annotation_${sanitizeLabelName(key)}`] = text(value);
    labels[`${META}pod_annotationpresent_${sanitizeLabelName(key)}`] = 'true';
  }
  return labels;
}

/** The file_sd target groups Prometheus's pod role makes of `pod`: one group per target. */
export function podTargetGroups(pod: Json): FileSdGroup[] {
  const spec = record(pod.spec);
  const status = record(pod.status);
  const podIP = text(status.podIP);
  if (podIP === '') return [];
  const shared = podLabels(pod);
  const containers = list(spec.containers);
  const statusesOf = (init: boolean) => list(init ? status.initContainerStatuses : status.containerStatuses);
  const groups: FileSdGroup[] = [];
  [...containers, ...list(spec.initContainers)].forEach((container, i) => {
    const init = i >= containers.length;
    const name = text(container.name);
    const containerStatus = statusesOf(init).find((s) => s.name === name);
    const containerLabels = {
      [`${META}pod_container_name`]: name,
      [`${META}pod_container_id`]: text(containerStatus?.containerID),
      [`${META}pod_container_image`]: text(container.image),
      [`${META}pod_container_init`]: String(init),
    };
    const ports = list(container.ports);
    if (ports.length === 0) {
      groups.push({ targets: [podIP], labels: { ...shared, ...containerLabels } });
      return;
    }
    for (const port of ports) {
      const number = String(port.containerPort);
      groups.push({
        targets: [hostPort(podIP, number)],
        labels: {
          ...shared,
          ...containerLabels,
          [`${META}pod_container_port_name`]: text(port.name),
          [`${META}pod_container_port_number`]: number,
          // The API server defaults the protocol to TCP; a manifest may leave it out.
          [`${META}pod_container_port_protocol`]: text(port.protocol) || 'TCP',
        },
      });
    }
  });
  return groups;
}

/** Go's net.JoinHostPort: brackets around an IPv6 address. */
function hostPort(host: string, port: string): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export interface RunningPodOptions {
  podIP: string;
  nodeName?: string;
  hostIP?: string;
  uid?: string;
}

/**
 * `pod` as the API server reports it once scheduled, started and ready: node, IPs, a uid, phase
 * Running, the Ready condition, and a status with an id for every container and init container.
 */
export function asRunningPod(pod: Json, options: RunningPodOptions): Json {
  const copy = structuredClone(pod);
  const metadata = record(copy.metadata);
  const spec = record(copy.spec);
  const nodeName = options.nodeName ?? 'node-1';
  copy.metadata = { ...metadata, uid: options.uid ?? `uid-${text(metadata.name)}` };
  copy.spec = { ...spec, nodeName };
  const statuses = (containers: Json[], init: boolean) =>
    containers.map((c, i) => ({
      name: text(c.name),
      containerID: `containerd://${init ? 'init' : 'main'}-${i}-${text(c.name)}`,
      ready: !init || c.restartPolicy === 'Always',
    }));
  copy.status = {
    phase: 'Running',
    podIP: options.podIP,
    podIPs: [{ ip: options.podIP }],
    hostIP: options.hostIP ?? options.podIP,
    conditions: [{ type: 'Ready', status: 'True' }],
    containerStatuses: statuses(list(spec.containers), false),
    initContainerStatuses: statuses(list(spec.initContainers), true),
  };
  return copy;
}
