import type { AnnotationScheme, PromuxConfig } from './types.ts';
import { VERSION } from '../version.ts';

export const PROMETHEUS_SCHEME: AnnotationScheme = {
  name: 'prometheus',
  prefix: 'prometheus.io',
  keys: { scrape: 'scrape', port: 'port', path: 'path', scheme: 'scheme', paramPrefix: 'param_', portName: '', container: '' },
};

/** Grafana k8s-monitoring annotation autodiscovery (its default annotation names). */
export const GRAFANA_SCHEME: AnnotationScheme = {
  name: 'grafana',
  prefix: 'k8s.grafana.com',
  keys: {
    scrape: 'scrape',
    port: 'metrics.portNumber',
    path: 'metrics.path',
    scheme: 'metrics.scheme',
    paramPrefix: 'metrics.param_',
    portName: 'metrics.portName',
    container: 'metrics.container',
  },
};

/** Sidecars known to serve no application metrics of their own. */
export const DEFAULT_EXCLUDED_CONTAINERS = [
  'vault-agent',
  'vault-agent-init',
  'istio-proxy',
  'istio-init',
  'istio-validation',
  'linkerd-proxy',
  'linkerd-init',
  'linkerd-network-validator',
];

/** The image's numeric USER and group (distroless "nonroot"), which the sidecar runs as by default. */
export const IMAGE_UID = 65532;

export function defaultConfig(): PromuxConfig {
  return {
    sidecar: {
      image: `ghcr.io/promux/promux:${VERSION}`,
      imagePullPolicy: 'IfNotPresent',
      imagePullSecrets: [],
      containerName: 'promux',
      port: 13434,
      portName: 'promux-metrics',
      containerLabel: 'container',
      scrapeTimeout: '10s',
      scrapeInterval: '0',
      maxTargetBytes: '32MiB',
      resources: { requests: { cpu: '10m', memory: '48Mi' }, limits: { memory: '128Mi' } },
      runAsUser: IMAGE_UID,
      runAsGroup: IMAGE_UID,
      nativeSidecar: 'auto',
    },
    kubernetesVersion: '',
    excludeContainers: [...DEFAULT_EXCLUDED_CONTAINERS],
    minContainers: 2,
    schemes: [structuredClone(PROMETHEUS_SCHEME), structuredClone(GRAFANA_SCHEME)],
  };
}
