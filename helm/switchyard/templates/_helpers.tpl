{{/* Names, labels and shared snippets. */}}

{{- define "switchyard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "switchyard.fullname" -}}
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

{{- define "switchyard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "switchyard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchyard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "switchyard.labels" -}}
helm.sh/chart: {{ include "switchyard.chart" . }}
app.kubernetes.io/name: {{ include "switchyard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: switchyard
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "switchyard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "switchyard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "switchyard.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "switchyard.sidecarImage" -}}
{{- $repo := default .Values.image.repository .Values.sidecar.image.repository }}
{{- $tag := default (default .Chart.AppVersion .Values.image.tag) .Values.sidecar.image.tag }}
{{- printf "%s:%s" $repo $tag }}
{{- end }}

{{- define "switchyard.webhookName" -}}
{{- printf "%s-webhook" (include "switchyard.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "switchyard.webhookSecret" -}}
{{- printf "%s-webhook-tls" (include "switchyard.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "switchyard.injectorName" -}}
{{- printf "%s-sidecar-injector" (include "switchyard.fullname" .) }}
{{- end }}

{{- define "switchyard.certManager" -}}
{{- if and .Values.webhook.enabled (eq .Values.webhook.certificates.source "cert-manager") }}true{{ end }}
{{- end }}

{{- define "switchyard.selfManagedCerts" -}}
{{- if and .Values.webhook.enabled (eq .Values.webhook.certificates.source "self-managed") }}true{{ end }}
{{- end }}

{{/* The restricted container securityContext, shared by the operator and the sidecar. */}}
{{- define "switchyard.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Namespaced permissions of the operator (a ClusterRole or a Role per watched namespace). */}}
{{- define "switchyard.namespacedRules" -}}
- apiGroups: [switchyard.dev]
  resources: [llmproviders, routingpolicies]
  verbs: [get, list, watch, patch]
- apiGroups: [switchyard.dev]
  resources: [llmproviders/status, routingpolicies/status]
  verbs: [patch]
# Secrets: list and watch only those labelled switchyard.dev/credentials (the operator asks the
# API server with that selector; RBAC cannot scope by label), create and patch its own
# <policy>-credentials. No get (it never fetches a Secret by name), no update, no delete.
- apiGroups: [""]
  resources: [secrets]
  verbs: [list, watch, create, patch]
# ConfigMaps: the <policy>-routes tables it writes (watched by their managed-by label). No
# update, no delete: the garbage collector removes them with their policy.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, patch]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
# Router pods: the operator pulls their usage from their health port, and retires a router
# whose pod is gone.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create]
- apiGroups: [kopf.dev]
  resources: [kopfpeerings]
  verbs: [get, list, watch, patch]
{{- end }}

{{/* The egress proxy variables (`proxy` values) as container env: the operator's probes and the injected routers. */}}
{{- define "switchyard.tracingEnv" -}}
{{- with .Values.tracing.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: http/protobuf
{{- if $.Values.tracing.captureContent }}
- name: OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT
  value: "true"
{{- end }}
{{- end }}
{{- end }}

{{- define "switchyard.proxyEnv" -}}
{{- range $name, $key := dict "HTTPS_PROXY" "httpsProxy" "HTTP_PROXY" "httpProxy" "NO_PROXY" "noProxy" }}
{{- with index $.Values.proxy $key }}
- name: {{ $name }}
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}
