{{/*
Names and labels.
*/}}
{{- define "guildhall.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "guildhall.fullname" -}}
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

{{- define "guildhall.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "guildhall.selectorLabels" -}}
app.kubernetes.io/name: {{ include "guildhall.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "guildhall.labels" -}}
helm.sh/chart: {{ include "guildhall.chart" . }}
{{ include "guildhall.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: guildhall
{{- end }}

{{/* The server pods (the migration Job's pods carry component "migrate" instead). */}}
{{- define "guildhall.serverSelectorLabels" -}}
{{ include "guildhall.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{- define "guildhall.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "guildhall.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "guildhall.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Database.
*/}}
{{- define "guildhall.databaseSecretName" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecret }}
{{- else }}
{{- printf "%s-database" (include "guildhall.fullname" .) }}
{{- end }}
{{- end }}

{{/* The key of the application URL in the database Secret. */}}
{{- define "guildhall.databaseSecretKey" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecretKey }}
{{- else -}}
url
{{- end }}
{{- end }}

{{/* The key of the URL the migration Job connects with: the owner URL when one is given. */}}
{{- define "guildhall.migrationSecretKey" -}}
{{- if .Values.database.existingSecret }}
{{- default .Values.database.existingSecretKey .Values.database.existingSecretAdminKey }}
{{- else if .Values.database.adminUrl -}}
adminUrl
{{- else -}}
url
{{- end }}
{{- end }}

{{/* The key of the URL the backup CronJob's pg_dump connects with; empty when none is set. */}}
{{- define "guildhall.backupSecretKey" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecretBackupKey }}
{{- else if .Values.database.backupUrl -}}
backupUrl
{{- end }}
{{- end }}

{{/* CronJob names: at most 52 characters, so the Jobs' names fit. */}}
{{- define "guildhall.backupName" -}}
{{- printf "%s-backup" (include "guildhall.fullname" . | trunc 45 | trimSuffix "-") }}
{{- end }}

{{- define "guildhall.auditVerifyName" -}}
{{- printf "%s-audit-verify" (include "guildhall.fullname" . | trunc 39 | trimSuffix "-") }}
{{- end }}

{{/* The backup volume's claim: an existing one, or the one the chart creates. */}}
{{- define "guildhall.backupClaimName" -}}
{{- default (printf "%s-backups" (include "guildhall.fullname" .)) .Values.backup.persistence.existingClaim }}
{{- end }}

{{- define "guildhall.backupImage" -}}
{{- $image := .Values.backup.image }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository $image.tag }}
{{- end }}
{{- end }}

{{/* Refuses CronJobs that cannot work (values.schema.json says the same). */}}
{{- define "guildhall.validateCronJobs" -}}
{{- if and .Values.backup.enabled (include "guildhall.isSqlite" .) }}
{{- fail "guildhall: backup.enabled runs pg_dump, for PostgreSQL; with SQLite, back up the server's volume (docs/operations.md, \"Backup and restore\")" }}
{{- end }}
{{- if and .Values.auditVerify.enabled (include "guildhall.isSqlite" .) }}
{{- fail "guildhall: auditVerify.enabled needs PostgreSQL: the SQLite file is on the server's own volume, so run `guildhall audit verify` in the server's pod" }}
{{- end }}
{{- if and .Values.backup.enabled (not (include "guildhall.backupSecretKey" .)) }}
{{- if .Values.database.existingSecret }}
{{- fail (printf "guildhall: backup.enabled needs database.existingSecretBackupKey: the key in the Secret %s of a URL whose role has BYPASSRLS and pg_read_all_data (row-level security is forced on the tenant tables, so neither the server's role nor the owner can dump them)" .Values.database.existingSecret) }}
{{- else }}
{{- fail "guildhall: backup.enabled needs database.backupUrl: a URL whose role has BYPASSRLS and pg_read_all_data (row-level security is forced on the tenant tables, so neither the server's role nor the owner can dump them)" }}
{{- end }}
{{- end }}
{{- if and .Values.backup.enabled (not (or .Values.backup.image.tag .Values.backup.image.digest)) }}
{{- fail "guildhall: backup.image needs a tag or a digest" }}
{{- end }}
{{- end }}

{{/* "true" when the database is SQLite (one replica, no migration Job). */}}
{{- define "guildhall.isSqlite" -}}
{{- if and (not .Values.database.existingSecret) (hasPrefix "sqlite:" (lower (toString .Values.database.url))) -}}
true
{{- end }}
{{- end }}

{{/*
Refuses value combinations that cannot work. values.schema.json says the same, but a
schema can be skipped (--skip-schema-validation), a template cannot.
*/}}
{{- define "guildhall.validate" -}}
{{- if and (not .Values.database.existingSecret) (not .Values.database.url) }}
{{- fail "guildhall: set database.url, or database.existingSecret naming a Secret that holds it" }}
{{- end }}
{{- if include "guildhall.isSqlite" . }}
{{- if gt (int .Values.replicaCount) 1 }}
{{- fail (printf "guildhall: SQLite supports a single replica, but replicaCount is %d; use PostgreSQL for more" (int .Values.replicaCount)) }}
{{- end }}
{{- if .Values.autoscaling.enabled }}
{{- fail "guildhall: SQLite supports a single replica, so autoscaling.enabled must be false; use PostgreSQL to autoscale" }}
{{- end }}
{{- end }}
{{- include "guildhall.validateOidc" . }}
{{- include "guildhall.validateConsole" . }}
{{- include "guildhall.validateCronJobs" . }}
{{- if and .Values.telemetry.enabled (not .Values.telemetry.otlpEndpoint) }}
{{- fail "guildhall: telemetry.enabled needs telemetry.otlpEndpoint" }}
{{- end }}
{{- if and .Values.telemetry.enabled (not (hasPrefix "http://" (toString .Values.telemetry.otlpEndpoint))) }}
{{- fail (printf "guildhall: telemetry.otlpEndpoint %q must be an http:// URL (a collector's OTLP/HTTP receiver, usually on port 4318); run a collector next to Guildhall to forward over TLS" (toString .Values.telemetry.otlpEndpoint)) }}
{{- end }}
{{- $grace := include "guildhall.terminationGracePeriodSeconds" . | int }}
{{- $needed := add (include "guildhall.shutdownGraceSecs" . | int) (int .Values.lifecycle.preStopSleepSeconds) 5 }}
{{- if lt $grace $needed }}
{{- fail (printf "guildhall: terminationGracePeriodSeconds (%d) must be at least lifecycle.preStopSleepSeconds + config.http.shutdown_grace_secs + 5 (%d), or Kubernetes kills the server while it drains or writes its last metering counts" $grace $needed) }}
{{- end }}
{{- end }}

{{/*
OpenID Connect issuers. auth.oidc.issuers lists them; the single issuer written directly
under auth.oidc (id, issuer, audience, jwksUrl, jwksFile) is the older, deprecated shape and
is still rendered, first, when any of those is set. Nothing is rendered unless
auth.oidc.enabled.
*/}}
{{- define "guildhall.oidcLegacyKeys" -}}
{{- toJson (list "id" "issuer" "audience" "jwksUrl" "jwksFile") }}
{{- end }}

{{/* "true" when the deprecated single issuer under auth.oidc is set. */}}
{{- define "guildhall.oidcLegacy" -}}
{{- $oidc := .Values.auth.oidc | default dict }}
{{- range $key := include "guildhall.oidcLegacyKeys" . | fromJsonArray }}
{{- if get $oidc $key }}true{{ end }}
{{- end }}
{{- end }}

{{/* The issuers to render, in the values' spelling, as a JSON list. */}}
{{- define "guildhall.oidcIssuers" -}}
{{- $oidc := .Values.auth.oidc | default dict }}
{{- $all := list }}
{{- if get $oidc "enabled" }}
{{- if include "guildhall.oidcLegacy" . }}
{{- $legacy := dict }}
{{- range $key := include "guildhall.oidcLegacyKeys" . | fromJsonArray }}
{{- with get $oidc $key }}{{ $_ := set $legacy $key . }}{{ end }}
{{- end }}
{{- $all = append $all $legacy }}
{{- end }}
{{- range $issuer := get $oidc "issuers" | default list }}
{{- $all = append $all $issuer }}
{{- end }}
{{- end }}
{{- toJson $all }}
{{- end }}

{{/* Refuses what the server would refuse in [[auth.oidc]] (and values.schema.json too). */}}
{{- define "guildhall.validateOidc" -}}
{{- $oidc := .Values.auth.oidc | default dict }}
{{- if get $oidc "enabled" }}
{{- $issuers := include "guildhall.oidcIssuers" . | fromJsonArray }}
{{- if not $issuers }}
{{- fail "guildhall: auth.oidc.enabled needs at least one issuer in auth.oidc.issuers" }}
{{- end }}
{{- $legacy := include "guildhall.oidcLegacy" . }}
{{- $ids := dict }}
{{- $names := dict }}
{{- range $index, $issuer := $issuers }}
{{- $where := printf "auth.oidc.issuers[%d]" (ternary (sub $index 1) $index (not (empty $legacy))) }}
{{- if and $legacy (eq $index 0) }}{{ $where = "auth.oidc (the single issuer)" }}{{ end }}
{{- if not (kindIs "map" $issuer) }}
{{- fail (printf "guildhall: %s must be a map (id, issuer, audience, jwksUrl or jwksFile, tenants, leewaySecs, and for sign-in clientId, clientSecret, displayName, signIn, requireMfa, mfaAcrValues)" $where) }}
{{- end }}
{{- if not (and (get $issuer "id") (get $issuer "issuer") (get $issuer "audience")) }}
{{- fail (printf "guildhall: %s needs id, issuer and audience" $where) }}
{{- end }}
{{- $id := toString (get $issuer "id") }}
{{- if not (regexMatch "^[a-z0-9-]{2,32}$" $id) }}
{{- fail (printf "guildhall: %s: id %q must be 2 to 32 characters of a-z, 0-9 and -; its users are oidc:<id>:<sub>" $where $id) }}
{{- end }}
{{- if hasKey $ids $id }}
{{- fail (printf "guildhall: %s: the id %q is used by another issuer" $where $id) }}
{{- end }}
{{- $_ := set $ids $id true }}
{{- $name := toString (get $issuer "issuer") }}
{{- if hasKey $names $name }}
{{- fail (printf "guildhall: %s: the issuer %q is configured twice" $where $name) }}
{{- end }}
{{- $_ := set $names $name true }}
{{- if eq (empty (get $issuer "jwksUrl")) (empty (get $issuer "jwksFile")) }}
{{- fail (printf "guildhall: %s needs exactly one of jwksUrl and jwksFile" $where) }}
{{- end }}
{{- $leeway := index $issuer "leewaySecs" }}
{{- if not (kindIs "invalid" $leeway) }}
{{- if or (not (or (kindIs "float64" $leeway) (kindIs "int" $leeway) (kindIs "int64" $leeway))) (lt (float64 $leeway) 0.0) (gt (float64 $leeway) 3600.0) (ne (float64 $leeway) (floor $leeway)) }}
{{- fail (printf "guildhall: %s: leewaySecs must be a whole number of seconds from 0 to 3600" $where) }}
{{- end }}
{{- end }}
{{- include "guildhall.validateOidcSignIn" (dict "where" $where "issuer" $issuer) }}
{{- end }}
{{- $path := include "guildhall.oidcSecretsPath" . }}
{{- if not (hasPrefix "/" $path) }}
{{- fail (printf "guildhall: auth.oidc.clientSecretsMountPath %q must be an absolute path" $path) }}
{{- end }}
{{- if or (eq (trimSuffix "/" $path) "/etc/guildhall") (hasPrefix "/etc/guildhall/" $path) }}
{{- fail (printf "guildhall: auth.oidc.clientSecretsMountPath %q may not be in /etc/guildhall, where the configuration is mounted" $path) }}
{{- end }}
{{- end }}
{{- end }}

{{/* An issuer's sign-in and MFA keys, checked as the server checks them. */}}
{{- define "guildhall.validateOidcSignIn" -}}
{{- $where := .where }}
{{- $issuer := .issuer }}
{{- if hasKey $issuer "clientId" }}
{{- $clientId := index $issuer "clientId" }}
{{- if or (not (kindIs "string" $clientId)) (not (trim (toString $clientId))) }}
{{- fail (printf "guildhall: %s: clientId must be a non-empty string (Guildhall's client id at the provider)" $where) }}
{{- end }}
{{- end }}
{{- if hasKey $issuer "clientSecret" }}
{{- $secret := index $issuer "clientSecret" }}
{{- if or (not (kindIs "map" $secret)) (not (kindIs "string" (index ($secret | default dict) "existingSecret"))) (not (index ($secret | default dict) "existingSecret")) }}
{{- fail (printf "guildhall: %s: clientSecret must name an existing Secret holding the client secret ({existingSecret: <name>, key: <key>}); the secret itself never goes in values" $where) }}
{{- end }}
{{- if and (hasKey $secret "key") (or (not (kindIs "string" (index $secret "key"))) (not (index $secret "key"))) }}
{{- fail (printf "guildhall: %s: clientSecret.key must be the non-empty name of a key in the Secret" $where) }}
{{- end }}
{{- end }}
{{- if hasKey $issuer "displayName" }}
{{- $name := index $issuer "displayName" }}
{{- if or (not (kindIs "string" $name)) (not (trim (toString $name))) (gt (len (trim (toString $name))) 100) }}
{{- fail (printf "guildhall: %s: displayName must be 1 to 100 characters" $where) }}
{{- end }}
{{- end }}
{{- range $key := list "signIn" "requireMfa" }}
{{- if and (hasKey $issuer $key) (not (kindIs "bool" (index $issuer $key))) }}
{{- fail (printf "guildhall: %s: %s must be true or false" $where $key) }}
{{- end }}
{{- end }}
{{- $acr := index $issuer "mfaAcrValues" | default list }}
{{- if not (kindIs "slice" $acr) }}
{{- fail (printf "guildhall: %s: mfaAcrValues must be a list of acr values" $where) }}
{{- end }}
{{- $requireMfa := and (kindIs "bool" (index $issuer "requireMfa")) (index $issuer "requireMfa") }}
{{- if and $acr (not $requireMfa) }}
{{- fail (printf "guildhall: %s: mfaAcrValues has no effect without requireMfa: true; set both, or neither" $where) }}
{{- end }}
{{- range $value := $acr }}
{{- if or (not (kindIs "string" $value)) (not (regexMatch "^\\S+$" (toString $value))) }}
{{- fail (printf "guildhall: %s: mfaAcrValues holds %q; each value must be non-empty, without spaces" $where (toString $value)) }}
{{- end }}
{{- end }}
{{- if and (kindIs "bool" (index $issuer "signIn")) (index $issuer "signIn") }}
{{- if not (regexMatch "^(https://[^/?#\\s]+|http://(localhost|127(\\.[0-9]{1,3}){3}|\\[::1\\])(:[0-9]{1,5})?)(/[^?#\\s]*)?$" (toString (index $issuer "issuer"))) }}
{{- fail (printf "guildhall: %s: signIn: true needs the provider's configuration at its issuer URL, so issuer %q must use https (plain http only on loopback), without a query" $where (toString (index $issuer "issuer"))) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The console. publicUrl as the server takes it (console.public_url): a scheme and host (and
port), no path; https, or plain http on loopback (the binary's own rule, [::1] with a port).
*/}}
{{- define "guildhall.consolePublicUrlPattern" -}}
^(https://[^/?#\s]+|http://(localhost(:[0-9]{1,5})?|127\.0\.0\.1(:[0-9]{1,5})?|\[::1\]:[0-9]{1,5}))/*$
{{- end }}

{{/* console.publicUrl, or when it is empty and the ingress is enabled, https://<the first
ingress host> if that host is a plain DNS name (no wildcard) listed in ingress.tls; else
nothing. */}}
{{- define "guildhall.consolePublicUrl" -}}
{{- $console := .Values.console | default dict }}
{{- $url := get $console "publicUrl" | default "" }}
{{- if $url }}
{{- $url }}
{{- else if .Values.ingress.enabled }}
{{- with first (.Values.ingress.hosts | default list) }}
{{- $host := toString (get . "host") }}
{{- $tls := false }}
{{- range $.Values.ingress.tls | default list }}{{ if has $host (.hosts | default list) }}{{ $tls = true }}{{ end }}{{ end }}
{{- if and $tls (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$" $host) }}
{{- printf "https://%s" $host }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Refuses what the server refuses in [console] (values.schema.json says the same). The
server checks [console] when it starts serving the console, not in `config check`, so a bad
value here would only show as pods that never become ready. */}}
{{- define "guildhall.validateConsole" -}}
{{- $console := .Values.console | default dict }}
{{- if not (kindIs "map" $console) }}
{{- fail "guildhall: console must be a map (enabled, publicUrl, secureCookies, tokenSignIn, idleTimeoutMins, absoluteTimeoutHours)" }}
{{- end }}
{{- range $key := list "enabled" "secureCookies" "tokenSignIn" }}
{{- $value := index $console $key }}
{{- if not (or (kindIs "invalid" $value) (kindIs "bool" $value)) }}
{{- fail (printf "guildhall: console.%s must be true or false" $key) }}
{{- end }}
{{- end }}
{{- range $key, $bound := dict "idleTimeoutMins" (list 1440 "minutes") "absoluteTimeoutHours" (list 168 "hours") }}
{{- $value := index $console $key }}
{{- if not (kindIs "invalid" $value) }}
{{- $max := index $bound 0 }}
{{- if or (not (or (kindIs "float64" $value) (kindIs "int" $value) (kindIs "int64" $value))) (lt (float64 $value) 1.0) (gt (float64 $value) (float64 $max)) (ne (float64 $value) (floor $value)) }}
{{- fail (printf "guildhall: console.%s must be a whole number of %s from 1 to %d" $key (index $bound 1) $max) }}
{{- end }}
{{- end }}
{{- end }}
{{- $url := index $console "publicUrl" }}
{{- if not (or (kindIs "invalid" $url) (kindIs "string" $url)) }}
{{- fail "guildhall: console.publicUrl must be a string, e.g. https://guildhall.example.gov.uk" }}
{{- end }}
{{- if and $url (not (regexMatch (include "guildhall.consolePublicUrlPattern" .) (toString $url))) }}
{{- fail (printf "guildhall: console.publicUrl %q must be https://host or https://host:port with no path (plain http only for localhost, 127.0.0.1 or [::1]:port); identity providers send staff back to <publicUrl>/console/sign-in/callback" (toString $url)) }}
{{- end }}
{{- end }}

{{/* Where the issuers' client secrets are mounted in the server's pods. */}}
{{- define "guildhall.oidcSecretsPath" -}}
{{- $oidc := .Values.auth.oidc | default dict }}
{{- trimSuffix "/" (toString (get $oidc "clientSecretsMountPath" | default "/var/run/secrets/guildhall/oidc")) }}
{{- end }}

{{/* The Secrets holding the issuers' client secrets, as the sources of one projected volume
in which each issuer's secret is the file named by its id. A JSON list; empty when no issuer
has one. */}}
{{- define "guildhall.oidcSecretSources" -}}
{{- $sources := list }}
{{- range $issuer := include "guildhall.oidcIssuers" . | fromJsonArray }}
{{- with get $issuer "clientSecret" }}
{{- $item := dict "key" (get . "key" | default "client-secret") "path" (get $issuer "id") }}
{{- $sources = append $sources (dict "secret" (dict "name" (get . "existingSecret") "items" (list $item))) }}
{{- end }}
{{- end }}
{{- toJson $sources }}
{{- end }}

{{/*
Shutdown timing: the server drains for http.shutdown_grace_secs after SIGTERM, which comes
after the pre-stop sleep, then writes its last metering counts and sends its last spans; the
pod's grace period must cover all of it.
*/}}
{{- define "guildhall.shutdownGraceSecs" -}}
{{- $http := .Values.config.http | default dict }}
{{- if hasKey $http "shutdown_grace_secs" }}{{ int64 $http.shutdown_grace_secs }}{{ else }}25{{ end }}
{{- end }}

{{- define "guildhall.terminationGracePeriodSeconds" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add (include "guildhall.shutdownGraceSecs" . | int) (int .Values.lifecycle.preStopSleepSeconds) 15 }}
{{- else }}
{{- int64 .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/*
guildhall.toml. The `config` values tree, plus what the chart owns (listen, cache_dir) and
the sections behind feature values, rendered as TOML.
*/}}
{{- define "guildhall.configTree" -}}
{{- $config := deepCopy (.Values.config | default dict) }}
{{- $_ := set $config "listen" (printf "0.0.0.0:%d" (int .Values.containerPort)) }}
{{- $runtime := get $config "runtime" | default dict }}
{{- $_ := set $runtime "cache_dir" .Values.compileCache.mountPath }}
{{- /* The memory budget follows the container's memory limit, less room for the server
itself, unless set explicitly; never below the largest plugin's cap (the server refuses
that). */}}
{{- $limit := dig "limits" "memory" "" (.Values.resources | default dict) }}
{{- if and $limit (not (get $runtime "memory_budget_mib")) }}
{{- $maxMemory := get $runtime "max_memory_mib" | default 256 | int }}
{{- $budget := sub (include "guildhall.memoryMiB" $limit | int) 256 | int }}
{{- $_ := set $runtime "memory_budget_mib" (max $budget $maxMemory) }}
{{- end }}
{{- $_ := set $config "runtime" $runtime }}
{{- $oidc := list }}
{{- $secrets := include "guildhall.oidcSecretsPath" . }}
{{- range $issuer := include "guildhall.oidcIssuers" . | fromJsonArray }}
{{- $table := dict "id" (get $issuer "id") "issuer" (get $issuer "issuer") "audience" (get $issuer "audience") }}
{{- with get $issuer "jwksUrl" }}{{ $_ := set $table "jwks_url" . }}{{ end }}
{{- with get $issuer "jwksFile" }}{{ $_ := set $table "jwks_file" . }}{{ end }}
{{- with get $issuer "tenants" }}{{ $_ := set $table "tenants" . }}{{ end }}
{{- if not (kindIs "invalid" (index $issuer "leewaySecs")) }}{{ $_ := set $table "leeway_secs" (index $issuer "leewaySecs") }}{{ end }}
{{- with get $issuer "clientId" }}{{ $_ := set $table "client_id" . }}{{ end }}
{{- /* The secret stays in its Secret, mounted in the pod: only its path is written here. */}}
{{- if get $issuer "clientSecret" }}{{ $_ := set $table "client_secret_file" (printf "%s/%s" $secrets (get $issuer "id")) }}{{ end }}
{{- with get $issuer "displayName" }}{{ $_ := set $table "display_name" . }}{{ end }}
{{- if kindIs "bool" (index $issuer "signIn") }}{{ $_ := set $table "sign_in" (index $issuer "signIn") }}{{ end }}
{{- if kindIs "bool" (index $issuer "requireMfa") }}{{ $_ := set $table "require_mfa" (index $issuer "requireMfa") }}{{ end }}
{{- with get $issuer "mfaAcrValues" }}{{ $_ := set $table "mfa_acr_values" . }}{{ end }}
{{- $oidc = append $oidc $table }}
{{- end }}
{{- if $oidc }}
{{- $_ := set $config "auth" (dict "oidc" $oidc) }}
{{- end }}
{{- if .Values.telemetry.enabled }}
{{- $_ := set $config "telemetry" (dict "otlp_endpoint" .Values.telemetry.otlpEndpoint "service_name" (default (include "guildhall.fullname" .) .Values.telemetry.serviceName)) }}
{{- end }}
{{- $_ := set $config "metering" (dict "enabled" .Values.metering.enabled "flush_interval_secs" .Values.metering.flushIntervalSecs "price_per_cpu_second" .Values.metering.pricePerCpuSecond) }}
{{- $console := .Values.console | default dict }}
{{- $table := dict "enabled" (index $console "enabled") "secure_cookies" (index $console "secureCookies") "idle_timeout_mins" (index $console "idleTimeoutMins") "absolute_timeout_hours" (index $console "absoluteTimeoutHours") }}
{{- with include "guildhall.consolePublicUrl" . }}{{ $_ := set $table "public_url" . }}{{ end }}
{{- if kindIs "bool" (index $console "tokenSignIn") }}{{ $_ := set $table "token_sign_in" (index $console "tokenSignIn") }}{{ end }}
{{- $_ := set $config "console" $table }}
{{- toJson $config }}
{{- end }}

{{/* The TCP port of telemetry.otlpEndpoint: the URL's own, else 80 (http). */}}
{{- define "guildhall.otlpPort" -}}
{{- $port := regexFind ":[0-9]+$" (urlParse (toString .Values.telemetry.otlpEndpoint)).host | trimPrefix ":" }}
{{- default "80" $port }}
{{- end }}

{{- define "guildhall.toml" -}}
# Rendered by the Guildhall Helm chart from the `config` values; do not edit in the cluster.
# The database URL comes from the environment (GUILDHALL_DATABASE__URL, from a Secret).
{{- include "guildhall.toml.table" (dict "path" "" "table" (include "guildhall.configTree" . | fromJson)) }}
{{- end }}

{{/* One TOML table: its plain keys first, then its sub-tables and arrays of tables, each
sorted by name. */}}
{{- define "guildhall.toml.table" -}}
{{- $path := .path }}
{{- $table := .table }}
{{- range $key := keys $table | sortAlpha }}
{{- $value := get $table $key }}
{{- if and (not (kindIs "map" $value)) (not (kindIs "invalid" $value)) (not (include "guildhall.toml.isTableArray" $value)) }}
{{ include "guildhall.toml.key" $key }} = {{ include "guildhall.toml.value" $value }}
{{- end }}
{{- end }}
{{- range $key := keys $table | sortAlpha }}
{{- $value := get $table $key }}
{{- $sub := ternary (include "guildhall.toml.key" $key) (printf "%s.%s" $path (include "guildhall.toml.key" $key)) (eq $path "") }}
{{- if kindIs "map" $value }}
{{- if $value }}

[{{ $sub }}]
{{- include "guildhall.toml.table" (dict "path" $sub "table" $value) }}
{{- end }}
{{- else if include "guildhall.toml.isTableArray" $value }}
{{- range $element := $value }}

[[{{ $sub }}]]
{{- include "guildhall.toml.table" (dict "path" $sub "table" $element) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* "true" for a non-empty list of tables, written as [[path]] blocks. */}}
{{- define "guildhall.toml.isTableArray" -}}
{{- if kindIs "slice" . }}{{ if . }}{{ if kindIs "map" (first .) }}true{{ end }}{{ end }}{{ end }}
{{- end }}

{{/* A key: bare when it can be, quoted otherwise. */}}
{{- define "guildhall.toml.key" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . }}{{ . }}{{ else }}{{ toJson . }}{{ end }}
{{- end }}

{{/* A value: string, integer, float, boolean or an array of those. */}}
{{- define "guildhall.toml.value" -}}
{{- if kindIs "string" . }}{{ toJson . }}
{{- else if kindIs "bool" . }}{{ ternary "true" "false" . }}
{{- else if or (kindIs "float64" .) (kindIs "float32" .) }}
{{- if eq (float64 .) (floor .) }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- else if or (kindIs "int" .) (kindIs "int64" .) (kindIs "int32" .) (kindIs "uint64" .) }}{{ . }}
{{- else if kindIs "slice" . }}[{{ range $i, $v := . }}{{ if $i }}, {{ end }}{{ include "guildhall.toml.value" $v }}{{ end }}]
{{- else }}{{ fail (printf "guildhall: cannot write %s (%s) as a TOML value" (toString .) (kindOf .)) }}
{{- end }}
{{- end }}

{{/* Volumes and mounts shared by the server and the migration Job. */}}
{{- define "guildhall.volumeMounts" -}}
- name: config
  mountPath: /etc/guildhall
  readOnly: true
- name: compile-cache
  mountPath: {{ .Values.compileCache.mountPath }}
- name: tmp
  mountPath: /tmp
{{- end }}

{{- define "guildhall.emptyDirVolumes" -}}
{{- $cache := dict }}
{{- with .Values.compileCache.medium }}{{ $_ := set $cache "medium" . }}{{ end }}
{{- with .Values.compileCache.sizeLimit }}{{ $_ := set $cache "sizeLimit" . }}{{ end -}}
- name: compile-cache
  emptyDir: {{ toJson $cache }}
- name: tmp
  emptyDir: {{ include "guildhall.tmpEmptyDir" . }}
{{- end }}

{{/* The /tmp emptyDir (the root filesystem is read-only), as JSON. */}}
{{- define "guildhall.tmpEmptyDir" -}}
{{- $tmp := dict }}
{{- with .Values.tmpSizeLimit }}{{ $_ := set $tmp "sizeLimit" . }}{{ end }}
{{- toJson $tmp }}
{{- end }}

{{/* A Kubernetes memory quantity (integer, with Ki, Mi, Gi, Ti, k, M, G or no suffix) in
MiB, rounded down. */}}
{{- define "guildhall.memoryMiB" -}}
{{- $q := toString . }}
{{- if hasSuffix "Ti" $q }}{{ mul (trimSuffix "Ti" $q | int64) 1048576 }}
{{- else if hasSuffix "Gi" $q }}{{ mul (trimSuffix "Gi" $q | int64) 1024 }}
{{- else if hasSuffix "Mi" $q }}{{ trimSuffix "Mi" $q | int64 }}
{{- else if hasSuffix "Ki" $q }}{{ div (trimSuffix "Ki" $q | int64) 1024 }}
{{- else if hasSuffix "G" $q }}{{ div (mul (trimSuffix "G" $q | int64) 1000000000) 1048576 }}
{{- else if hasSuffix "M" $q }}{{ div (mul (trimSuffix "M" $q | int64) 1000000) 1048576 }}
{{- else if hasSuffix "k" $q }}{{ div (mul (trimSuffix "k" $q | int64) 1000) 1048576 }}
{{- else }}{{ div ($q | int64) 1048576 }}
{{- end }}
{{- end }}

{{/* NetworkPolicy egress rules to DNS and the database (networkPolicy.egress.dns and
.database), for the server and the CronJobs. */}}
{{- define "guildhall.databaseEgress" -}}
{{- $egress := .Values.networkPolicy.egress -}}
# DNS.
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
  {{- with $egress.dns.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
# The database.
- ports:
    {{- range $egress.database.ports }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
  {{- with $egress.database.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
