// The one configuration shared by `promux inject`, `promux webhook` and the Helm chart's ConfigMap.

export type NativeSidecarMode = 'never' | 'always' | 'auto';

/**
 * A family of scrape annotations. Keys are matched the way Prometheus sanitizes annotation names
 * into meta labels, so `prometheus.io/port`, `prometheus.io.port` and `prometheus-io/port` are one key.
 */
export interface AnnotationScheme {
  /** Short name used in reports and the status annotation ("prometheus", "grafana"). */
  name: string;
  /** Annotation prefix before the slash, e.g. "prometheus.io". */
  prefix: string;
  keys: {
    scrape: string;
    port: string;
    path: string;
    scheme: string;
    /** Prefix of query-parameter annotations ("param_"): moved into the status on injection. */
    paramPrefix: string;
    /** Grafana only: the port name and container a target must match. Empty when the scheme has none. */
    portName: string;
    container: string;
  };
}

export interface ResourceList {
  cpu?: string;
  memory?: string;
}

export interface SidecarConfig {
  image: string;
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  /** Name of the injected container. */
  containerName: string;
  port: number;
  portName: string;
  /** Label the sidecar adds to every series. */
  containerLabel: string;
  /** Per-target scrape timeout (Prometheus duration). */
  scrapeTimeout: string;
  /** 0 scrapes on demand; a duration refreshes a cache in the background. */
  scrapeInterval: string;
  /** A target answering more than this is marked down ("32MiB"). */
  maxTargetBytes: string;
  resources: { requests: ResourceList; limits: ResourceList };
  /**
   * The sidecar's uid; null leaves it to the platform: the pod's runAsUser, else the image's USER, or
   * the uid OpenShift's SCC assigns. runAsNonRoot is true either way.
   */
  runAsUser: number | null;
  /** The sidecar's gid; null leaves it to the platform, as for runAsUser. */
  runAsGroup: number | null;
  /** Secrets (names) that pull the sidecar image: added to the pod's spec.imagePullSecrets where absent. */
  imagePullSecrets: string[];
  nativeSidecar: NativeSidecarMode;
}

export interface PromuxConfig {
  sidecar: SidecarConfig;
  /**
   * The cluster's Kubernetes version ("1.31"), for whether it runs native sidecars; "" is unknown,
   * which the webhook fills at start from the API server's /version.
   */
  kubernetesVersion: string;
  /** Containers never scraped; a pod's `promux.io/exclude` adds to these. */
  excludeContainers: string[];
  /** Fewer containers than this and a pod is skipped, unless it says `promux.io/inject: "true"`. */
  minContainers: number;
  schemes: AnnotationScheme[];
}
