{{/* The release's full name: the release name, with the chart's name unless it already holds it. */}}
{{- define "stackops.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "stackops.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "stackops.labels" -}}
{{ include "stackops.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "stackops.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "stackops.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The operator image; the Jobs the operator creates run the same one. */}}
{{- define "stackops.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The operator's RBAC rules by scope (files/rbac-rules.yaml, generated from stackops.reconcile.rbac). */}}
{{- define "stackops.rules" -}}
{{- .Files.Get "files/rbac-rules.yaml" -}}
{{- end -}}

{{/* The namespaces the operator serves when not all: those named, or the release's own. */}}
{{- define "stackops.watchedNamespaces" -}}
{{- if .Values.watchNamespaces -}}
{{- uniq .Values.watchNamespaces | toJson -}}
{{- else -}}
{{- list .Release.Namespace | toJson -}}
{{- end -}}
{{- end -}}
