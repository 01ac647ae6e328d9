{{/* The release's object name: <release>-rill-authd, or <release> when it already says so. */}}
{{- define "rill-authd.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rill-authd.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rill-authd.labels" -}}
{{ include "rill-authd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
app.kubernetes.io/component: {{ .Values.mode }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* mode must be sidecar or shared; shared needs the PostgreSQL URL's Secret. */}}
{{- define "rill-authd.validate" -}}
{{- if not (has .Values.mode (list "sidecar" "shared")) -}}
{{- fail (printf "mode must be sidecar or shared, not %q" .Values.mode) -}}
{{- end -}}
{{- if and (eq .Values.mode "shared") (not .Values.postgres.urlSecret) -}}
{{- fail "mode shared needs postgres.urlSecret: the Secret holding the postgres:// URL (kubectl create secret generic rill-authd-postgres --from-literal=url='postgres://…')" -}}
{{- end -}}
{{- end -}}

{{/* Where the chart puts things in the rill-authd container. */}}
{{- define "rill-authd.configPath" -}}/etc/rill-authd/config.yaml{{- end -}}
{{- define "rill-authd.dataDir" -}}/var/lib/rill-authd{{- end -}}
{{- define "rill-authd.bootstrapDir" -}}/run/rill-authd/bootstrap{{- end -}}

{{/* The --config file: the chart's own keys win over .Values.config. */}}
{{- define "rill-authd.config" -}}
{{- $own := dict
  "data_dir" (include "rill-authd.dataDir" .)
  "grpc_addr" (printf "0.0.0.0:%v" .Values.ports.grpc)
  "http_addr" (printf "0.0.0.0:%v" .Values.ports.http)
  "bootstrap_token_file" (printf "%s/token" (include "rill-authd.bootstrapDir" .))
  "bootstrap_email" .Values.bootstrap.email -}}
{{- toYaml (merge $own (deepCopy .Values.config)) -}}
{{- end -}}

{{/* The rill-authd container, the same in both shapes. */}}
{{- define "rill-authd.container" -}}
- name: rill-authd
  image: {{ printf "%s:%s" .Values.image.repository .Values.image.tag | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["--config", {{ include "rill-authd.configPath" . | quote }}]
  {{- if eq .Values.mode "shared" }}
  env:
    - name: RILL_AUTHD_STORE
      valueFrom:
        secretKeyRef:
          name: {{ .Values.postgres.urlSecret }}
          key: {{ .Values.postgres.urlSecretKey }}
  {{- end }}
  ports:
    - name: grpc
      containerPort: {{ .Values.ports.grpc }}
      protocol: TCP
    - name: http
      containerPort: {{ .Values.ports.http }}
      protocol: TCP
  # The gRPC listener and its health service are up (then liveness and readiness take over).
  startupProbe:
    grpc:
      port: {{ .Values.ports.grpc }}
    periodSeconds: 2
    failureThreshold: 60
  livenessProbe:
    httpGet:
      path: /healthz
      port: http
    periodSeconds: 10
    timeoutSeconds: 2
    failureThreshold: 3
  # /readyz fails while a replica cannot confirm it has every change (--max-staleness).
  readinessProbe:
    httpGet:
      path: /readyz
      port: http
    periodSeconds: 5
    timeoutSeconds: 2
    failureThreshold: 2
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: config
      mountPath: /etc/rill-authd
      readOnly: true
    - name: data
      mountPath: {{ include "rill-authd.dataDir" . }}
    - name: bootstrap
      mountPath: {{ include "rill-authd.bootstrapDir" . }}
{{- end -}}

{{/* Pod-level settings shared by both shapes. */}}
{{- define "rill-authd.podSpecCommon" -}}
serviceAccountName: {{ include "rill-authd.fullname" . }}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
