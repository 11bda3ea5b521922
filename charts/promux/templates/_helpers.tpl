{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "promux.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, prefixed with the chart name unless it already contains it. */}}
{{- define "promux.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "promux.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "promux.selectorLabels" -}}
app.kubernetes.io/name: {{ include "promux.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end }}

{{- define "promux.labels" -}}
helm.sh/chart: {{ include "promux.chart" . }}
{{ include "promux.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: promux
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels of the helm test's objects: the chart's, but never the webhook's selector labels. */}}
{{- define "promux.testLabels" -}}
helm.sh/chart: {{ include "promux.chart" . }}
app.kubernetes.io/name: {{ include "promux.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: test
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: promux
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "promux.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "promux.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, or repository@digest when a digest is given. Arguments: repository, tag, digest. */}}
{{- define "promux.imageRef" -}}
{{- if .digest }}
{{- printf "%s@%s" .repository .digest }}
{{- else }}
{{- printf "%s:%s" .repository .tag }}
{{- end }}
{{- end }}

{{- define "promux.image" -}}
{{- include "promux.imageRef" (dict "repository" .Values.image.repository "tag" (default .Chart.AppVersion .Values.image.tag) "digest" .Values.image.digest) }}
{{- end }}

{{/* The sidecar runs the chart's own image unless sidecar.image says otherwise. */}}
{{- define "promux.sidecarImage" -}}
{{- $img := .Values.sidecar.image }}
{{- $repository := default .Values.image.repository $img.repository }}
{{- $tag := default (default .Chart.AppVersion .Values.image.tag) $img.tag }}
{{- $digest := "" }}
{{- if $img.digest }}
{{- $digest = $img.digest }}
{{- else if and (not $img.repository) (not $img.tag) }}
{{- $digest = .Values.image.digest }}
{{- end }}
{{- include "promux.imageRef" (dict "repository" $repository "tag" $tag "digest" $digest) }}
{{- end }}

{{- define "promux.serviceName" -}}
{{- include "promux.fullname" . }}
{{- end }}

{{- define "promux.webhookConfigName" -}}
{{- include "promux.fullname" . }}
{{- end }}

{{- define "promux.tlsSecretName" -}}
{{- if eq .Values.certificates.mode "existingSecret" }}
{{- required "certificates.secretName is required when certificates.mode is existingSecret" .Values.certificates.secretName }}
{{- else }}
{{- default (printf "%s-tls" (include "promux.fullname" .)) .Values.certificates.secretName }}
{{- end }}
{{- end }}

{{- define "promux.selfManaged" -}}
{{- if eq .Values.certificates.mode "selfManaged" }}true{{ end }}
{{- end }}

{{/* The injector config file read by `promux webhook --config` (shape: src/config/load.ts). */}}
{{- define "promux.config" -}}
{{- $s := .Values.sidecar -}}
sidecar:
  image: {{ include "promux.sidecarImage" . | quote }}
  imagePullPolicy: {{ default .Values.image.pullPolicy $s.image.pullPolicy }}
  imagePullSecrets: {{ $s.imagePullSecrets | default list | toJson }}
  containerName: {{ $s.containerName }}
  port: {{ $s.port }}
  portName: {{ $s.portName }}
  containerLabel: {{ $s.containerLabel }}
  scrapeTimeout: {{ $s.scrapeTimeout | quote }}
  scrapeInterval: {{ $s.scrapeInterval | quote }}
  maxTargetBytes: {{ $s.maxTargetBytes | quote }}
  resources:
    requests: {{- $s.resources.requests | default dict | toYaml | nindent 6 }}
    limits: {{- $s.resources.limits | default dict | toYaml | nindent 6 }}
  {{- /* Helm deletes a value set to null, so a missing key is the user's null; int64: no 1e+09. */}}
  runAsUser: {{ if hasKey $s "runAsUser" }}{{ int64 $s.runAsUser }}{{ else }}null{{ end }}
  runAsGroup: {{ if hasKey $s "runAsGroup" }}{{ int64 $s.runAsGroup }}{{ else }}null{{ end }}
  nativeSidecar: {{ $s.nativeSidecar }}
excludeContainers: {{- .Values.excludeContainers | toYaml | nindent 2 }}
minContainers: {{ .Values.minContainers }}
{{- with .Values.kubernetesVersion }}
kubernetesVersion: {{ . | quote }}
{{- end }}
schemes: {{- include "promux.schemes" . | nindent 2 }}
{{- end }}

{{/*
The scrape annotation schemes: values.schemes, or the webhook's built-in ones (src/config/defaults.ts;
test/chart keeps them equal). Both the injector config and the matchConditions are made from these.
*/}}
{{- define "promux.schemes" -}}
{{- if .Values.schemes }}
{{- toYaml .Values.schemes }}
{{- else -}}
- name: prometheus
  prefix: prometheus.io
  keys: {scrape: scrape, port: port, path: path, scheme: scheme, paramPrefix: param_}
- name: grafana
  prefix: k8s.grafana.com
  keys: {scrape: scrape, port: metrics.portNumber, path: metrics.path, scheme: metrics.scheme,
         paramPrefix: metrics.param_, portName: metrics.portName, container: metrics.container}
{{- end }}
{{- end }}

{{/*
The webhook's matchConditions (CEL, evaluated by the API server before it calls the webhook): the
pod is sent only when the webhook could inject it or has something to say about it. They repeat the
webhook's first checks (src/inject), from the same config values, and never exclude more:
- not opted out: label or annotation promux.io/inject is not "false";
- asks to be scraped: some annotation whose name Prometheus sanitizes to a scheme's scrape key
  (prometheus.io/scrape, prometheus.io.scrape, prometheus-io/scrape ...; each character outside
  [a-zA-Z0-9] may be any such character) has the value "true";
- has at least minContainers containers, native sidecars (init containers with restartPolicy
  Always) included.
A pod annotated promux.io/inject: "true" passes the last two: the webhook injects it or says why not.
Absent maps and lists are tested with has(): an error would make the API server skip the webhook
(failurePolicy Ignore) or refuse the pod (Fail).
*/}}
{{- define "promux.matchConditions" -}}
{{- $key := "promux.io/inject" }}
{{- $annotation := printf "has(object.metadata.annotations) && '%s' in object.metadata.annotations && object.metadata.annotations['%s']" $key $key }}
{{- $label := printf "has(object.metadata.labels) && '%s' in object.metadata.labels && object.metadata.labels['%s']" $key $key }}
{{- $forced := printf "(%s == 'true')" $annotation }}
{{- $scrapeKeys := list }}
{{- range (include "promux.schemes" . | fromYamlArray) }}
{{- $scrapeKeys = append $scrapeKeys (regexReplaceAll "[^a-zA-Z0-9]" (printf "%s/%s" .prefix .keys.scrape) "[^a-zA-Z0-9]") }}
{{- end }}
- name: not-opted-out
  expression: {{ printf "!(%s == 'false') && !(%s == 'false')" $label $annotation | quote }}
- name: asks-to-be-scraped
  expression: {{ printf "%s || (has(object.metadata.annotations) && object.metadata.annotations.exists(k, object.metadata.annotations[k] == 'true' && k.matches('^(%s)$')))" $forced (join "|" $scrapeKeys) | quote }}
{{- if gt (int .Values.minContainers) 1 }}
- name: enough-containers
  expression: {{ printf "%s || size(object.spec.containers) + (has(object.spec.initContainers) ? size(object.spec.initContainers.filter(c, has(c.restartPolicy) && c.restartPolicy == 'Always')) : 0) >= %d" $forced (int .Values.minContainers) | quote }}
{{- end }}
{{- end }}
