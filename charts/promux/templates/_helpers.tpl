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
{{- with .Values.schemes }}
schemes: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
