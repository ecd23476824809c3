{{/*
Names, labels and the pieces every Lading container shares. Each component is one process of the same image:
`node dist/<component>/main.cjs`, on port 5000 (API, /healthz, /readyz) and telemetry.metricsPort (/metrics).
*/}}

{{/* The chart's name, or nameOverride. */}}
{{- define "lading.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: the prefix of every object, short enough for a suffix like "-webhooks". */}}
{{- define "lading.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "lading.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object; pass (dict "root" $ "component" "blob"), component optional. */}}
{{- define "lading.labels" -}}
helm.sh/chart: {{ include "lading.chart" .root }}
{{ include "lading.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: lading
{{- end }}

{{/* The labels a Service, PDB or Deployment selects one component's pods by. */}}
{{- define "lading.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lading.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{/* The image reference: by digest when one is given, else by tag (appVersion by default). */}}
{{- define "lading.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "lading.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "lading.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret whose keys are LADING_* variables: the user's, or the chart's. */}}
{{- define "lading.secretName" -}}
{{- default (include "lading.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/* The URL of one component's Service inside the cluster. */}}
{{- define "lading.serviceUrl" -}}
{{- printf "http://%s-%s:5000" (include "lading.fullname" .root) .component }}
{{- end }}

{{/*
Stops the render with a message when the values cannot make a working registry, before anything reaches the cluster.
*/}}
{{- define "lading.validate" -}}
{{- if eq .Values.mode "distributed" }}
{{- if not .Values.kafka.brokers }}
{{- fail "mode distributed needs kafka.brokers (host:port of your Kafka brokers, comma-separated)" }}
{{- end }}
{{- if not .Values.storage.endpoint }}
{{- fail "mode distributed needs storage.endpoint (the URL of your S3 or MinIO)" }}
{{- end }}
{{- if not .Values.secrets.existingSecret }}
{{- if not .Values.secrets.databaseUrl }}
{{- fail "mode distributed needs secrets.databaseUrl (postgres://user:password@host:5432/db) or secrets.existingSecret" }}
{{- end }}
{{- if or (not .Values.secrets.storageAccessKey) (not .Values.secrets.storageSecretKey) }}
{{- fail "mode distributed needs secrets.storageAccessKey and secrets.storageSecretKey, or secrets.existingSecret" }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .Values.secrets.upstreamsSecret (lt (len .Values.secrets.upstreamsSecret) 32) }}
{{- fail "secrets.upstreamsSecret needs 32 characters or more" }}
{{- end }}
{{- if ne (empty .Values.secrets.adminUser) (empty .Values.secrets.adminPassword) }}
{{- fail "secrets.adminUser and secrets.adminPassword go together" }}
{{- end }}
{{- end }}

{{/*
The environment of every Lading container: the mode, where it listens, the backends' non-secret settings and
telemetry. Pass (dict "root" $ "component" "blob"); the component names its OTel service.
*/}}
{{- define "lading.env" -}}
{{- $v := .root.Values }}
- name: LADING_MODE
  value: {{ $v.mode | quote }}
- name: LADING_HTTP_ADDR
  value: "0.0.0.0:5000"
- name: LADING_TELEMETRY_METRICSADDR
  value: {{ printf "0.0.0.0:%d" (int $v.telemetry.metricsPort) | quote }}
{{- if $v.httpHost }}
- name: LADING_HTTP_HOST
  value: {{ $v.httpHost | quote }}
{{- end }}
{{- if eq $v.mode "distributed" }}
- name: LADING_DATABASE_POOLSIZE
  value: {{ $v.database.poolSize | quote }}
- name: LADING_KAFKA_BROKERS
  value: {{ $v.kafka.brokers | quote }}
- name: LADING_KAFKA_TOPIC
  value: {{ $v.kafka.topic | quote }}
- name: LADING_STORAGE_ENDPOINT
  value: {{ $v.storage.endpoint | quote }}
- name: LADING_STORAGE_BUCKET
  value: {{ $v.storage.bucket | quote }}
- name: LADING_STORAGE_REGION
  value: {{ $v.storage.region | quote }}
- name: LADING_STORAGE_REDIRECT
  value: {{ $v.storage.redirect | quote }}
{{- end }}
{{- if $v.telemetry.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $v.telemetry.otlpEndpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $v.telemetry.otlpProtocol | quote }}
{{- end }}
- name: OTEL_SERVICE_NAME
  value: {{ printf "lading-%s" .component | quote }}
{{- end }}

{{/* The user's variables: `env` (every process), then the component's own (its values' `env`), which win. */}}
{{- define "lading.userEnv" -}}
{{- with .root.Values.env }}
{{ toYaml . }}
{{- end }}
{{- with .env }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Where every Lading container reads its secret settings from, then the user's envFrom. */}}
{{- define "lading.envFrom" -}}
- secretRef:
    name: {{ include "lading.secretName" . }}
{{- with .Values.envFrom }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The TLS volume mount and variables, when tls.secretName is set. */}}
{{- define "lading.tlsEnv" -}}
{{- if .Values.tls.secretName }}
- name: LADING_HTTP_TLS_CERTIFICATE
  value: /etc/lading/tls/tls.crt
- name: LADING_HTTP_TLS_KEY
  value: /etc/lading/tls/tls.key
{{- end }}
{{- end }}

{{/* The preStop pause of a long-running Lading container (preStopSleepSeconds). */}}
{{- define "lading.lifecycle" -}}
{{- with .Values.preStopSleepSeconds }}
lifecycle:
  preStop:
    exec:
      command: ["sleep", "{{ . }}"]
{{- end }}
{{- end }}

{{/* The probes of a Lading container: /healthz for startup and liveness, /readyz for readiness. */}}
{{- define "lading.probes" -}}
{{- $p := .root.Values.probes }}
{{- $scheme := ternary "HTTPS" "HTTP" (and .tls (not (empty .root.Values.tls.secretName))) }}
startupProbe:
  httpGet: {path: /healthz, port: http, scheme: {{ $scheme }}}
  periodSeconds: {{ $p.startup.periodSeconds }}
  failureThreshold: {{ $p.startup.failureThreshold }}
  timeoutSeconds: {{ $p.startup.timeoutSeconds }}
livenessProbe:
  httpGet: {path: /healthz, port: http, scheme: {{ $scheme }}}
  periodSeconds: {{ $p.liveness.periodSeconds }}
  failureThreshold: {{ $p.liveness.failureThreshold }}
  timeoutSeconds: {{ $p.liveness.timeoutSeconds }}
readinessProbe:
  httpGet: {path: /readyz, port: http, scheme: {{ $scheme }}}
  periodSeconds: {{ $p.readiness.periodSeconds }}
  failureThreshold: {{ $p.readiness.failureThreshold }}
  timeoutSeconds: {{ $p.readiness.timeoutSeconds }}
{{- end }}

{{/* Pod-level settings every Lading pod shares; pass (dict "root" $ "component" "blob"). */}}
{{- define "lading.podSpec" -}}
{{- $v := .root.Values }}
serviceAccountName: {{ include "lading.serviceAccountName" .root }}
automountServiceAccountToken: false
enableServiceLinks: false
{{- with $v.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $v.podSecurityContext | nindent 2 }}
terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
{{- with $v.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $v.affinity }}
affinity:
  {{- toYaml $v.affinity | nindent 2 }}
{{- else if $v.topologySpread }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "lading.selectorLabels" . | nindent 8 }}
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "lading.selectorLabels" . | nindent 8 }}
{{- end }}
{{- end }}

{{/*
The pod template's metadata: labels, and a checksum of the secret values so that changing one rolls the pods (the
generated values never change once made, so they need not be in it).
*/}}
{{- define "lading.podMetadata" -}}
{{- $v := .root.Values }}
labels:
  {{- include "lading.labels" . | nindent 2 }}
  {{- with $v.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  {{- if not $v.secrets.existingSecret }}
  checksum/secret: {{ toJson $v.secrets | sha256sum }}
  {{- end }}
  {{- with include "lading.configFile" .root }}
  checksum/config: {{ . | sha256sum }}
  {{- end }}
  {{- with $v.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* The ports of a Lading container. */}}
{{- define "lading.ports" -}}
- name: http
  containerPort: 5000
  protocol: TCP
- name: metrics
  containerPort: {{ .Values.telemetry.metricsPort }}
  protocol: TCP
{{- end }}

{{/*
The chart's Secret data (LADING_* name: base64 value). Generated values (the upstreams secret, the secrets key) are
read back from the Secret of an earlier install when it exists, so an upgrade keeps them. Pass the root context.
*/}}
{{- define "lading.secretData" -}}
{{- $v := .Values }}
{{- $existing := (lookup "v1" "Secret" .Release.Namespace (include "lading.fullname" .)).data | default dict }}
{{- $data := dict }}
{{- if eq $v.mode "distributed" }}
{{- $_ := set $data "LADING_DATABASE_URL" ($v.secrets.databaseUrl | b64enc) }}
{{- $_ := set $data "LADING_STORAGE_ACCESSKEY" ($v.secrets.storageAccessKey | b64enc) }}
{{- $_ := set $data "LADING_STORAGE_SECRETKEY" ($v.secrets.storageSecretKey | b64enc) }}
{{- if $v.secrets.upstreamsSecret }}
{{- $_ := set $data "LADING_UPSTREAMS_SECRET" ($v.secrets.upstreamsSecret | b64enc) }}
{{- else }}
{{- $_ := set $data "LADING_UPSTREAMS_SECRET" (get $existing "LADING_UPSTREAMS_SECRET" | default (randAlphaNum 48 | b64enc)) }}
{{- end }}
{{- end }}
{{- if $v.secrets.secretsKey }}
{{- $_ := set $data "LADING_SECRETS_KEY" ($v.secrets.secretsKey | b64enc) }}
{{- else if $v.secrets.generateSecretsKey }}
{{- /* 32 random characters are 32 bytes: their base64 is a valid key (about 190 bits of entropy). */}}
{{- $_ := set $data "LADING_SECRETS_KEY" (get $existing "LADING_SECRETS_KEY" | default (randAlphaNum 32 | b64enc | b64enc)) }}
{{- end }}
{{- if $v.secrets.previousKeys }}
{{- $_ := set $data "LADING_SECRETS_PREVIOUSKEYS" ($v.secrets.previousKeys | b64enc) }}
{{- end }}
{{- if $v.secrets.adminUser }}
{{- $_ := set $data "LADING_ADMIN_USER" ($v.secrets.adminUser | b64enc) }}
{{- $_ := set $data "LADING_ADMIN_PASSWORD" ($v.secrets.adminPassword | b64enc) }}
{{- end }}
{{- toYaml $data }}
{{- end }}

{{/*
What one component of the distributed mode adds to the shared environment. The services behind the gateway count it
as one more proxy; the gateway finds them through their Services (kube-proxy spreads its keep-alive connections), and
so does the auth service the gc and manifest services.
*/}}
{{- define "lading.componentEnv" -}}
{{- $v := .root.Values }}
{{- if eq .component "gateway" }}
- name: LADING_HTTP_TRUSTEDPROXIES
  value: {{ $v.trustedProxies | quote }}
- name: LADING_UPSTREAMS_BLOB
  value: {{ include "lading.serviceUrl" (dict "root" .root "component" "blob") | quote }}
- name: LADING_UPSTREAMS_MANIFEST
  value: {{ include "lading.serviceUrl" (dict "root" .root "component" "manifest") | quote }}
- name: LADING_UPSTREAMS_AUTH
  value: {{ include "lading.serviceUrl" (dict "root" .root "component" "auth") | quote }}
- name: LADING_AUTH_ENABLED
  value: {{ $v.auth.enabled | quote }}
{{- include "lading.tlsEnv" .root }}
{{- else if has .component (list "blob" "manifest" "auth") }}
- name: LADING_HTTP_TRUSTEDPROXIES
  value: {{ add1 $v.trustedProxies | quote }}
{{- if eq .component "auth" }}
{{- /* The admin API forwards the collector's routes (/admin/v1/gc/...) to the gc service and repository deletions
(DELETE /admin/v1/repositories/...) to the manifest service. */}}
- name: LADING_UPSTREAMS_GC
  value: {{ include "lading.serviceUrl" (dict "root" .root "component" "gc") | quote }}
- name: LADING_UPSTREAMS_MANIFEST
  value: {{ include "lading.serviceUrl" (dict "root" .root "component" "manifest") | quote }}
{{- end }}
{{- else if and (eq .component "webhooks") $v.webhooks.allowList }}
- name: LADING_WEBHOOKS_ALLOWLIST
  value: {{ $v.webhooks.allowList | quote }}
{{- end }}
{{- end }}

{{/*
The configuration file's YAML (proxies and mirror), empty when neither is set: then no file, volume or LADING_CONFIG.
*/}}
{{- define "lading.configFile" -}}
{{- $file := dict }}
{{- with .Values.proxies }}{{- $_ := set $file "proxies" . }}{{- end }}
{{- with .Values.mirror.namespace }}{{- $_ := set $file "mirror" (dict "namespace" .) }}{{- end }}
{{- if $file }}{{ toYaml $file }}{{- end }}
{{- end }}

{{/* LADING_CONFIG naming the mounted configuration file, when there is one. Pass the root context. */}}
{{- define "lading.configEnv" -}}
{{- if include "lading.configFile" . }}
- name: LADING_CONFIG
  value: /etc/lading/config/config.yaml
{{- end }}
{{- end }}

{{/* The configuration file's volume mount, when there is one. Pass the root context. */}}
{{- define "lading.configMount" -}}
{{- if include "lading.configFile" . }}
- name: config
  mountPath: /etc/lading/config
  readOnly: true
{{- end }}
{{- end }}

{{/* The configuration file's volume, when there is one. Pass the root context. */}}
{{- define "lading.configVolume" -}}
{{- if include "lading.configFile" . }}
- name: config
  secret:
    secretName: {{ include "lading.fullname" . }}-config
{{- end }}
{{- end }}
