{{/* Chart name, truncated to the 63-character label limit. */}}
{{- define "mambast-batch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name used for every object. */}}
{{- define "mambast-batch.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "mambast-batch.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mambast-batch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mambast-batch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: worker
{{- end }}

{{- define "mambast-batch.labels" -}}
helm.sh/chart: {{ include "mambast-batch.chart" . }}
{{ include "mambast-batch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mambast-batch
{{- end }}

{{- define "mambast-batch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mambast-batch.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository@digest, or repository:tag with the tag defaulting to <appVersion>-gpu / -cpu. */}}
{{- define "mambast-batch.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- $variant := ternary "gpu" "cpu" .Values.gpu.enabled }}
{{- printf "%s:%s" .Values.image.repository (default (printf "%s-%s" .Chart.AppVersion $variant) .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "mambast-batch.executionProvider" -}}
{{- default (ternary "Cuda" "Cpu" .Values.gpu.enabled) .Values.inference.executionProvider }}
{{- end }}

{{/* The chart's own Secret (secret.create) serves every credential it holds and wins over broker.existingSecret /
storage.existingSecret for those; the existing Secrets serve the rest. */}}
{{- define "mambast-batch.brokerInChartSecret" -}}
{{- if and .Values.secret.create (or .Values.secret.brokerUsername .Values.secret.brokerPassword .Values.secret.brokerUri .Values.secret.brokerManagementUri) }}true{{ end }}
{{- end }}

{{- define "mambast-batch.storageInChartSecret" -}}
{{- if and .Values.secret.create (or (and (eq .Values.storage.mode "connectionString") .Values.secret.storageConnectionString) (and (eq .Values.storage.mode "sasUrl") .Values.secret.storageSasUrl)) }}true{{ end }}
{{- end }}

{{/* Key of the broker Secret that KEDA reads: the management API URI (protocol http) or the AMQP URI (amqp). */}}
{{- define "mambast-batch.kedaHostKey" -}}
{{- if eq .Values.autoscaling.protocol "amqp" }}
{{- .Values.broker.uriKey }}
{{- else }}
{{- .Values.broker.managementUriKey }}
{{- end }}
{{- end }}

{{/* Secret holding the broker credentials: the chart's own Secret when it holds them, else broker.existingSecret. */}}
{{- define "mambast-batch.brokerSecretName" -}}
{{- if include "mambast-batch.brokerInChartSecret" . }}
{{- include "mambast-batch.fullname" . }}
{{- else if .Values.broker.existingSecret }}
{{- .Values.broker.existingSecret }}
{{- else }}
{{- fail "broker credentials: set broker.existingSecret (recommended) or secret.create=true with secret.brokerUsername/brokerPassword" }}
{{- end }}
{{- end }}

{{- define "mambast-batch.storageSecretName" -}}
{{- if include "mambast-batch.storageInChartSecret" . }}
{{- include "mambast-batch.fullname" . }}
{{- else if .Values.storage.existingSecret }}
{{- .Values.storage.existingSecret }}
{{- else }}
{{- fail (printf "storage.mode=%s needs storage.existingSecret (recommended) or secret.create=true with its secret.storage* value" .Values.storage.mode) }}
{{- end }}
{{- end }}

{{/* Cross-field rules the values schema cannot express. Included by the Deployment. */}}
{{- define "mambast-batch.validate" -}}
{{- /* The worker's host shutdown timeout is Worker__StopTimeoutSeconds + 10 s (src/Worker/WorkerHostExtensions.cs);
5 s more for process exit. */}}
{{- $minGrace := add (int .Values.worker.stopTimeoutSeconds) 15 }}
{{- if lt (int .Values.terminationGracePeriodSeconds) (int $minGrace) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be >= worker.stopTimeoutSeconds + 15 (%d): after SIGTERM the worker waits up to worker.stopTimeoutSeconds for in-flight batches and its host up to 10 s more to stop, so Kubernetes' SIGKILL at the end of the grace period must come later (15 s = those 10 s + 5 s for process exit)" (int .Values.terminationGracePeriodSeconds) (int $minGrace)) }}
{{- end }}
{{- if and (not .Values.gpu.enabled) (eq .Values.inference.executionProvider "Cuda") }}
{{- fail "inference.executionProvider=Cuda needs gpu.enabled=true" }}
{{- end }}
{{- if .Values.autoscaling.enabled }}
{{- if gt (int .Values.autoscaling.minReplicaCount) (int .Values.autoscaling.maxReplicaCount) }}
{{- fail "autoscaling.minReplicaCount must be <= autoscaling.maxReplicaCount" }}
{{- end }}
{{- if and (not (kindIs "invalid" .Values.autoscaling.idleReplicaCount)) (lt (int .Values.autoscaling.minReplicaCount) 1) }}
{{- fail "autoscaling.idleReplicaCount=0 (scale to zero) needs autoscaling.minReplicaCount >= 1 (KEDA: idle < min)" }}
{{- end }}
{{- end }}
{{- if include "mambast-batch.brokerInChartSecret" . }}
{{- if not (and .Values.secret.brokerUsername .Values.secret.brokerPassword) }}
{{- fail "secret.create=true holds broker credentials: set both secret.brokerUsername and secret.brokerPassword (or neither, and use broker.existingSecret)" }}
{{- end }}
{{- if .Values.autoscaling.enabled }}
{{- if and (eq .Values.autoscaling.protocol "amqp") (not .Values.secret.brokerUri) }}
{{- fail "secret.brokerUri is required: autoscaling.enabled=true with autoscaling.protocol=amqp, and KEDA reads the AMQP URI (key broker.uriKey) from the chart's Secret, which secret.create=true makes the broker Secret" }}
{{- end }}
{{- if and (eq .Values.autoscaling.protocol "http") (not .Values.secret.brokerManagementUri) }}
{{- fail "secret.brokerManagementUri is required: autoscaling.enabled=true with autoscaling.protocol=http, and KEDA reads the management API URI (key broker.managementUriKey) from the chart's Secret, which secret.create=true makes the broker Secret" }}
{{- end }}
{{- end }}
{{- end }}
{{- if and (eq .Values.storage.mode "workloadIdentity") (not .Values.storage.accountUrl) }}
{{- fail "storage.mode=workloadIdentity needs storage.accountUrl" }}
{{- end }}
{{- /* Transport: TLS unless turned off explicitly (docs/security.md). */}}
{{- $scheme := regexFind "^[a-z]+" .Values.broker.url }}
{{- if .Values.broker.tls.enabled }}
{{- if not (has $scheme (list "amqps" "rabbitmqs")) }}
{{- fail (printf "broker.url is %s:// but broker.tls.enabled=true: use amqps:// (port 5671), or set broker.tls.enabled=false to send credentials and job references in plain text" $scheme) }}
{{- end }}
{{- if not .Values.broker.tls.caSecret }}
{{- fail "broker.tls.enabled=true needs broker.tls.caSecret (the Secret holding the CA that signed the broker's certificate)" }}
{{- end }}
{{- else if has $scheme (list "amqps" "rabbitmqs") }}
{{- fail "broker.url is amqps:// but broker.tls.enabled=false: set broker.tls.enabled=true with broker.tls.caSecret" }}
{{- end }}
{{- if and .Values.storage.accountUrl (not (hasPrefix "https://" .Values.storage.accountUrl)) }}
{{- fail "storage.accountUrl must be https://" }}
{{- end }}
{{- $limits := default dict .Values.resources.limits }}
{{- if not (and (hasKey $limits "cpu") (hasKey $limits "ephemeral-storage")) }}
{{- fail "resources.limits.cpu and resources.limits.ephemeral-storage are required: without them one worker can starve its node" }}
{{- end }}
{{- end }}
