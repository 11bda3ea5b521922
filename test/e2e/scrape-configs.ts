// The scrape configurations people run against Kubernetes pods, reproduced rule for rule, for a
// real Prometheus to apply to the pod-role targets of pod-sd.ts (read through file_sd). Each entry
// names where it comes from; docs/scrape-configs.md shows the same rules as YAML.

/** One relabel rule, in Prometheus's YAML field names. */
export interface RelabelRule {
  source_labels?: string[];
  separator?: string;
  regex?: string;
  target_label?: string;
  replacement?: string;
  action?:
    | 'replace' | 'keep' | 'drop' | 'keepequal' | 'dropequal' | 'labelmap' | 'labeldrop' | 'labelkeep' | 'hashmod';
}

export interface ScrapeConfiguration {
  /** Short name, used in job names. */
  name: string;
  /** Where the rules come from. */
  source: string;
  honorLabels: boolean;
  relabel: RelabelRule[];
  /** The `job` label its series carry when the rules set one (default: the job name). */
  jobLabel?: string;
}

const POD = '__meta_kubernetes_pod_';

/** Grafana's `pod_annotation` helper: the meta label of a pod annotation (sanitized name). */
function grafanaAnnotation(name: string): string {
  return `${POD}annotation_${name.replace(/[^a-zA-Z0-9_]/g, '_')}`;
}

/**
 * (1) The `kubernetes-pods` job of the prometheus-community Helm chart `prometheus`
 * (charts/prometheus/values.yaml, chart 27.46.0; older versions lack only the last rule, `node`).
 * `honor_labels: true` is the chart's.
 */
export const COMMUNITY_CHART: ScrapeConfiguration = {
  name: 'chart',
  source: 'prometheus-community/helm-charts charts/prometheus 27.46.0, job kubernetes-pods',
  honorLabels: true,
  relabel: [
    { source_labels: [`${POD}annotation_prometheus_io_scrape`], action: 'keep', regex: 'true' },
    { source_labels: [`${POD}annotation_prometheus_io_scrape_slow`], action: 'drop', regex: 'true' },
    {
      source_labels: [`${POD}annotation_prometheus_io_scheme`],
      action: 'replace',
      regex: '(https?)',
      target_label: '__scheme__',
    },
    {
      source_labels: [`${POD}annotation_prometheus_io_path`],
      action: 'replace',
      target_label: '__metrics_path__',
      regex: '(.+)',
    },
    {
      source_labels: [`${POD}annotation_prometheus_io_port`, `${POD}ip`],
      action: 'replace',
      regex: '(\\d+);(([A-Fa-f0-9]{1,4}::?){1,7}[A-Fa-f0-9]{1,4})',
      replacement: '[$2]:$1',
      target_label: '__address__',
    },
    {
      source_labels: [`${POD}annotation_prometheus_io_port`, `${POD}ip`],
      action: 'replace',
      regex: '(\\d+);((([0-9]+?)(\\.|$)){4})',
      replacement: '$2:$1',
      target_label: '__address__',
    },
    { action: 'labelmap', regex: `${POD}annotation_prometheus_io_param_(.+)`, replacement: '__param_$1' },
    { action: 'labelmap', regex: `${POD}label_(.+)` },
    { source_labels: ['__meta_kubernetes_namespace'], action: 'replace', target_label: 'namespace' },
    { source_labels: [`${POD}name`], action: 'replace', target_label: 'pod' },
    { source_labels: [`${POD}phase`], regex: 'Pending|Succeeded|Failed|Completed', action: 'drop' },
    { source_labels: [`${POD}node_name`], action: 'replace', target_label: 'node' },
  ],
};

const CONTAINER_LABEL: RelabelRule = {
  source_labels: [`${POD}container_name`],
  action: 'replace',
  target_label: 'container',
};

/**
 * (2) The chart's job with a `container` target label: the OpenFaaS experiment, and what Grafana
 * Alloy's and k8s-monitoring's pod rules do.
 */
export const CHART_WITH_CONTAINER: ScrapeConfiguration = {
  name: 'chart-container',
  source: '(1) plus __meta_kubernetes_pod_container_name -> container',
  honorLabels: true,
  relabel: [...COMMUNITY_CHART.relabel, CONTAINER_LABEL],
};

/**
 * (2) fixed: keep only the target of the container port the `prometheus.io/port` annotation names.
 * After injection that is the sidecar's declared port, so each pod is one target again.
 */
export const CHART_WITH_CONTAINER_ONE_PORT: ScrapeConfiguration = {
  name: 'chart-container-port',
  source: '(2) plus keepequal of the annotated port and the container port number',
  honorLabels: true,
  relabel: [
    ...COMMUNITY_CHART.relabel.slice(0, 2),
    { source_labels: [`${POD}annotation_prometheus_io_port`], target_label: '__tmp_port' },
    { source_labels: [`${POD}container_port_number`], action: 'keepequal', target_label: '__tmp_port' },
    ...COMMUNITY_CHART.relabel.slice(2),
    CONTAINER_LABEL,
  ],
};

/**
 * (1) for clusters that also run the recommended job: the chart's job leaves promux-injected pods
 * (those with the `promux.io/status` annotation) to it, so no pod is scraped by both jobs.
 */
export const CHART_WITHOUT_INJECTED: ScrapeConfiguration = {
  name: 'chart-uninjected',
  source: '(1) plus a drop of pods with the promux.io/status annotation',
  honorLabels: true,
  relabel: [
    { source_labels: [`${POD}annotationpresent_promux_io_status`], action: 'drop', regex: 'true' },
    ...COMMUNITY_CHART.relabel,
  ],
};

export interface GrafanaOptions {
  /** The chart's scrapeInterval / scrapeTimeout values (its defaults are 60s and 10s). */
  scrapeInterval: string;
  scrapeTimeout: string;
}

/**
 * (3) Grafana k8s-monitoring-helm, feature-annotation-autodiscovery, the pod rules of
 * templates/_pods.alloy.tpl (discovery.relabel "annotation_autodiscovery_pods") with the default
 * annotation names, as Prometheus relabel_configs. Its prometheus.scrape sets honor_labels = true.
 * One translation: Alloy's prometheus.scrape fills an empty `job` label with its own job name,
 * Prometheus does not, so the job-annotation rule only replaces when the annotation has a value.
 */
export function grafanaAutodiscovery(options: GrafanaOptions): ScrapeConfiguration {
  const a = (key: string) => grafanaAnnotation(`k8s.grafana.com/${key}`);
  return {
    name: 'grafana',
    source: 'grafana/k8s-monitoring-helm feature-annotation-autodiscovery templates/_pods.alloy.tpl',
    honorLabels: true,
    relabel: [
      { source_labels: [a('scrape')], regex: 'true', action: 'keep' },
      {
        source_labels: [`${POD}phase`, `${POD}ready`, `${POD}container_init`],
        regex: 'Running;true;false',
        action: 'keep',
      },
      { source_labels: [`${POD}name`], target_label: 'pod' },
      { source_labels: [`${POD}container_name`], target_label: 'container' },
      { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
      { source_labels: [a('job')], regex: '(.+)', target_label: 'job' },
      { source_labels: [a('instance')], target_label: 'instance' },
      { source_labels: ['container'], target_label: '__tmp_container' },
      { source_labels: [a('metrics.container')], regex: '(.+)', target_label: '__tmp_container' },
      { source_labels: ['container'], action: 'keepequal', target_label: '__tmp_container' },
      { action: 'labeldrop', regex: '__tmp_container' },
      { source_labels: [a('metrics.path')], regex: '(.+)', target_label: '__metrics_path__' },
      { action: 'labelmap', regex: `${a('metrics.param')}_(.+)`, replacement: '__param_$1' },
      { source_labels: [`${POD}container_port_name`], target_label: '__tmp_port' },
      { source_labels: [a('metrics.portName')], regex: '(.+)', target_label: '__tmp_port' },
      { source_labels: [`${POD}container_port_name`], action: 'keepequal', target_label: '__tmp_port' },
      { action: 'labeldrop', regex: '__tmp_port' },
      {
        source_labels: [a('metrics.portNumber'), `${POD}ip`],
        regex: '(\\d+);(([A-Fa-f0-9]{1,4}::?){1,7}[A-Fa-f0-9]{1,4})',
        replacement: '[$2]:$1',
        target_label: '__address__',
      },
      {
        source_labels: [a('metrics.portNumber'), `${POD}ip`],
        regex: '(\\d+);((([0-9]+?)(\\.|$)){4})',
        replacement: '$2:$1',
        target_label: '__address__',
      },
      { source_labels: [a('metrics.scheme')], regex: '(.+)', target_label: '__scheme__' },
      { source_labels: [a('metrics.scrapeInterval')], regex: '(.+)', target_label: '__scrape_interval__' },
      {
        source_labels: ['__scrape_interval__'],
        regex: '',
        replacement: options.scrapeInterval,
        target_label: '__scrape_interval__',
      },
      { source_labels: [a('metrics.scrapeTimeout')], regex: '(.+)', target_label: '__scrape_timeout__' },
      {
        source_labels: ['__scrape_timeout__'],
        regex: '',
        replacement: options.scrapeTimeout,
        target_label: '__scrape_timeout__',
      },
    ],
  };
}

/**
 * promux's recommendation: one job that keeps the sidecar's named port. Whatever annotation scheme
 * the pod used, an injected pod declares exactly one `promux-metrics` port, so it is one target;
 * honor_labels keeps the `container` label the sidecar put on every series.
 */
export function promuxRecommended(portName = 'promux-metrics'): ScrapeConfiguration {
  return {
    name: 'promux',
    source: 'docs/scrape-configs.md, the recommended job',
    honorLabels: true,
    relabel: [
      { source_labels: [`${POD}container_port_name`], regex: portName, action: 'keep' },
      { source_labels: [`${POD}phase`], regex: 'Pending|Succeeded|Failed|Completed', action: 'drop' },
      { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
      { source_labels: [`${POD}name`], target_label: 'pod' },
    ],
  };
}

export interface PodMonitorOptions {
  namespace: string;
  name: string;
  /** podMetricsEndpoints[].port: the container port name to scrape. */
  port: string;
  honorLabels: boolean;
}

/**
 * A Prometheus Operator PodMonitor with an empty selector (every pod) and one endpoint selected by
 * port name, as the operator turns it into relabel_configs (pkg/prometheus/promcfg.go,
 * generatePodMonitorConfig; Alloy's prometheus.operator.podmonitors copies it): drop finished
 * pods, keep the port, then namespace, container and pod target labels, job "<namespace>/<name>"
 * and endpoint "<port>".
 */
export function prometheusOperatorPodMonitor(options: PodMonitorOptions): ScrapeConfiguration {
  return {
    name: options.honorLabels ? 'podmonitor-honor' : 'podmonitor',
    source: 'prometheus-operator generatePodMonitorConfig, endpoint selected by port name',
    honorLabels: options.honorLabels,
    jobLabel: `${options.namespace}/${options.name}`,
    relabel: [
      { source_labels: ['job'], target_label: '__tmp_prometheus_job_name' },
      { source_labels: [`${POD}phase`], action: 'drop', regex: '(Failed|Succeeded)' },
      { source_labels: [`${POD}container_port_name`], action: 'keep', regex: options.port },
      { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
      { source_labels: [`${POD}container_name`], target_label: 'container' },
      { source_labels: [`${POD}name`], target_label: 'pod' },
      { replacement: `${options.namespace}/${options.name}`, target_label: 'job' },
      { replacement: options.port, target_label: 'endpoint' },
    ],
  };
}

export interface ScrapeJob {
  jobName: string;
  configuration: ScrapeConfiguration;
  /** The file_sd file the job reads its targets from. */
  file: string;
}

/** A Prometheus configuration (JSON is YAML) with one file_sd job per entry. */
export function prometheusConfig(jobs: ScrapeJob[], scrapeInterval: string): string {
  return JSON.stringify(
    {
      global: { scrape_interval: scrapeInterval, scrape_timeout: scrapeInterval, evaluation_interval: '1m' },
      scrape_configs: jobs.map((job) => ({
        job_name: job.jobName,
        honor_labels: job.configuration.honorLabels,
        file_sd_configs: [{ files: [job.file] }],
        relabel_configs: job.configuration.relabel,
      })),
    },
    null,
    2,
  );
}
