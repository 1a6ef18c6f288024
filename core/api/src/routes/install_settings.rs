//! What an install holds besides its version and settings: secrets (write-only), each
//! council's own settings, and its schedules with their runs.
//!
//! A caller whose roles are limited to one council sees and changes only that council's:
//! its own settings, its own secrets (and which install-wide ones are set), its own runs.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use guildhall_authz::Principal;
use guildhall_domain::manifest::Manifest;
use guildhall_domain::{CouncilId, PluginName};
use guildhall_store::{SecretRecord, SettingsError, TenantScope};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::AppState;
use crate::error::{ApiError, FieldError, Problem};
use crate::extract::{Json, Path, Query, Scope};

/// The longest secret value, in bytes.
pub const MAX_SECRET_BYTES: usize = 8 << 10;

/// The installed version's manifest, or 404.
async fn installed(
    state: &AppState,
    scope: &TenantScope,
    plugin: &PluginName,
) -> Result<(guildhall_store::InstallRecord, Manifest), ApiError> {
    let install = state
        .store
        .installs(scope)
        .get(plugin)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("{plugin} is not installed in {}", scope.tenant()))
        })?;
    let version = state
        .store
        .catalogue()
        .version(plugin, &install.version)
        .await?
        .ok_or_else(|| ApiError::internal(format!("{plugin} {} is missing", install.version)))?;
    Ok((install, version.manifest))
}

/// The council the caller's roles are limited to, if any.
async fn limit(
    state: &AppState,
    principal: &Principal,
    scope: &TenantScope,
) -> Result<Option<String>, ApiError> {
    Ok(state.authz.council_limit(principal, scope).await?)
}

/// A council of the tenant the install serves, named in a path or body: 404 when the
/// caller is limited to another council (it may not know of others' settings), 422 for a
/// council the install does not serve.
async fn own_council(
    state: &AppState,
    scope: &TenantScope,
    install: &guildhall_store::InstallRecord,
    limit: Option<&str>,
    raw: &str,
    field: &str,
) -> Result<CouncilId, ApiError> {
    if limit.is_some_and(|c| c != raw) {
        return Err(ApiError::not_found(format!(
            "your roles are limited to council {}",
            limit.unwrap_or_default()
        )));
    }
    let invalid = |reason: String| {
        ApiError::validation(
            format!("{field}: {reason}"),
            vec![FieldError {
                field: field.to_string(),
                reason,
            }],
        )
    };
    let council = CouncilId::parse(raw.to_string()).map_err(|e| invalid(e.to_string()))?;
    let known = state.store.councils(scope).ids().await?;
    if !known.contains(&council) || !install.councils.includes(&council) {
        return Err(invalid(format!(
            "{plugin} is not installed for a council {council} of this tenant",
            plugin = install.plugin
        )));
    }
    Ok(council)
}

// ---- Secrets ----------------------------------------------------------------------------

/// A declared secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DeclaredSecret {
    name: String,
    description: String,
}

/// An install's secrets: what the plugin declares, and which are set (never their values).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SecretList {
    declared: Vec<DeclaredSecret>,
    #[schema(value_type = Vec<Object>)]
    set: Vec<SecretRecord>,
}

/// The body of `PUT …/secrets/{name}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecretBody {
    /// The value; it is stored encrypted and never shown again.
    value: String,
    /// The council whose own value this is; absent for the install's, which every council
    /// without its own gets.
    #[serde(default)]
    council: Option<String>,
}

impl std::fmt::Debug for SecretBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBody")
            .field("council", &self.council)
            .finish_non_exhaustive()
    }
}

/// Query of `DELETE …/secrets/{name}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecretQuery {
    /// The council whose own value to remove; absent for the install's.
    #[serde(default)]
    council: Option<String>,
}

/// The council a secret is for: the one named (which a caller limited to one council must
/// name, and only its own), or `None` for the install's.
async fn secret_council(
    state: &AppState,
    scope: &TenantScope,
    install: &guildhall_store::InstallRecord,
    limit: Option<&str>,
    given: Option<&str>,
) -> Result<Option<CouncilId>, ApiError> {
    match (given, limit) {
        (Some(raw), _) => Ok(Some(
            own_council(state, scope, install, limit, raw, "council").await?,
        )),
        (None, Some(own)) => Err(ApiError::from_status(
            StatusCode::FORBIDDEN,
            format!("your roles are limited to council {own}: name it as \"council\""),
        )),
        (None, None) => Ok(None),
    }
}

fn keyring(state: &AppState) -> Result<&guildhall_store::Keyring, ApiError> {
    state.keyring.as_deref().ok_or_else(|| {
        ApiError::conflict(
            "secrets are not enabled on this platform: the operator has set no secrets.key",
        )
    })
}

/// Lists the secrets a plugin declares and which are set, by whom and when. Values are never
/// returned.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/installs/{plugin}/secrets", tag = "installs",
    params(("tenant" = String, Path, description = "Tenant id"), ("plugin" = String, Path, description = "Plugin name")),
    responses(
        (status = 200, description = "Declared and set secrets", body = SecretList),
        (status = 404, description = "Not installed", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_secrets(
    State(state): State<AppState>,
    Scope(scope): Scope,
    axum::Extension(principal): axum::Extension<Principal>,
    Path((_tenant, plugin)): Path<(String, PluginName)>,
) -> Result<axum::Json<SecretList>, ApiError> {
    let (_, manifest) = installed(&state, &scope, &plugin).await?;
    let limit = limit(&state, &principal, &scope).await?;
    let set = state
        .store
        .secrets(&scope)
        .list(&plugin)
        .await?
        .into_iter()
        .filter(|s| match (&s.council, &limit) {
            (Some(council), Some(own)) => council == own,
            _ => true,
        })
        .collect();
    Ok(axum::Json(SecretList {
        declared: manifest
            .secrets
            .iter()
            .map(|(name, d)| DeclaredSecret {
                name: name.clone(),
                description: d.description.clone(),
            })
            .collect(),
        set,
    }))
}

/// Sets a secret the plugin declares, for the install or one council. Write-only: the
/// answer says when it was set, never the value.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/installs/{plugin}/secrets/{name}", tag = "installs",
    params(("tenant" = String, Path, description = "Tenant id"), ("plugin" = String, Path, description = "Plugin name"), ("name" = String, Path, description = "A secret the plugin declares")),
    request_body = SecretBody,
    responses(
        (status = 201, description = "Set", body = Object),
        (status = 200, description = "Replaced", body = Object),
        (status = 404, description = "Not installed", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No secrets key is configured", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Undeclared name, bad value or council", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn put_secret(
    State(state): State<AppState>,
    Scope(scope): Scope,
    axum::Extension(principal): axum::Extension<Principal>,
    Path((_tenant, plugin, name)): Path<(String, PluginName, String)>,
    Json(body): Json<SecretBody>,
) -> Result<Response, ApiError> {
    let keyring = keyring(&state)?;
    let (install, manifest) = installed(&state, &scope, &plugin).await?;
    let limit = limit(&state, &principal, &scope).await?;
    if !manifest.secrets.contains_key(&name) {
        let shown: String = name.chars().take(64).collect();
        return Err(ApiError::validation(
            format!("{plugin} {} declares no secret {shown:?}", manifest.version),
            vec![FieldError {
                field: "name".into(),
                reason: "not declared under [secrets] in the plugin's manifest".into(),
            }],
        ));
    }
    let council = secret_council(
        &state,
        &scope,
        &install,
        limit.as_deref(),
        body.council.as_deref(),
    )
    .await?;
    let invalid = |reason: &str| {
        ApiError::validation(
            format!("value: {reason}"),
            vec![FieldError {
                field: "value".into(),
                reason: reason.into(),
            }],
        )
    };
    if body.value.is_empty() {
        return Err(invalid(
            "must not be empty (DELETE the secret to remove it)",
        ));
    }
    if body.value.len() > MAX_SECRET_BYTES {
        return Err(invalid("must be at most 8 KiB"));
    }
    if body.value.chars().any(char::is_control) {
        return Err(invalid("must not hold control characters or line breaks"));
    }
    let replaced = state
        .store
        .secrets(&scope)
        .put(
            keyring,
            &plugin,
            council.as_ref(),
            &name,
            &body.value,
            principal.subject(),
        )
        .await?;
    let record = serde_json::json!({
        "name": name,
        "council": council.as_ref().map(CouncilId::as_str),
        "set_by": principal.subject(),
    });
    let status = if replaced {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(record)).into_response())
}

/// Removes a secret (the install's, or one council's with `?council=`).
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/installs/{plugin}/secrets/{name}", tag = "installs",
    params(("tenant" = String, Path, description = "Tenant id"), ("plugin" = String, Path, description = "Plugin name"), ("name" = String, Path, description = "Secret name"), SecretQuery),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "Not set", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn delete_secret(
    State(state): State<AppState>,
    Scope(scope): Scope,
    axum::Extension(principal): axum::Extension<Principal>,
    Path((_tenant, plugin, name)): Path<(String, PluginName, String)>,
    Query(query): Query<SecretQuery>,
) -> Result<StatusCode, ApiError> {
    let (install, _) = installed(&state, &scope, &plugin).await?;
    let limit = limit(&state, &principal, &scope).await?;
    let council = secret_council(
        &state,
        &scope,
        &install,
        limit.as_deref(),
        query.council.as_deref(),
    )
    .await?;
    if state
        .store
        .secrets(&scope)
        .delete(&plugin, council.as_ref(), &name)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "no secret {name:?} is set there"
        )))
    }
}

// ---- Per-council settings -------------------------------------------------------------

/// A council's settings.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CouncilConfigView {
    council: String,
    /// What this council gives differently from the install.
    #[schema(value_type = Object)]
    overrides: Value,
    /// What the plugin sees for this council: the install's settings with the overrides.
    #[schema(value_type = Object)]
    config: Value,
}

/// The body of `PUT …/councils/{council}/config`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CouncilConfigBody {
    /// The settings this council gives differently; `{}` removes its overrides.
    #[schema(value_type = Object)]
    overrides: Value,
}

/// A council's own settings for an install, and what the plugin sees for it.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/installs/{plugin}/councils/{council}/config", tag = "installs",
    params(("tenant" = String, Path, description = "Tenant id"), ("plugin" = String, Path, description = "Plugin name"), ("council" = String, Path, description = "Council id")),
    responses(
        (status = 200, description = "The council's settings", body = CouncilConfigView),
        (status = 404, description = "Not installed, or another council's", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_council_config(
    State(state): State<AppState>,
    Scope(scope): Scope,
    axum::Extension(principal): axum::Extension<Principal>,
    Path((_tenant, plugin, council)): Path<(String, PluginName, String)>,
) -> Result<axum::Json<CouncilConfigView>, ApiError> {
    let (install, _) = installed(&state, &scope, &plugin).await?;
    let limit = limit(&state, &principal, &scope).await?;
    let council = own_council(
        &state,
        &scope,
        &install,
        limit.as_deref(),
        &council,
        "council",
    )
    .await
    .map_err(|e| {
        if e.status() == StatusCode::UNPROCESSABLE_ENTITY {
            ApiError::not_found(format!("{plugin} is not installed for council {council}"))
        } else {
            e
        }
    })?;
    let overrides = state
        .store
        .council_settings(&scope)
        .get(&plugin, &council)
        .await?;
    Ok(axum::Json(CouncilConfigView {
        council: council.to_string(),
        config: Manifest::merged_config(&install.config, Some(&overrides)),
        overrides,
    }))
}

/// Replaces a council's own settings for an install, checked against the plugin's
/// declarations; the council's calls see them at once, on every replica.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/installs/{plugin}/councils/{council}/config", tag = "installs",
    params(("tenant" = String, Path, description = "Tenant id"), ("plugin" = String, Path, description = "Plugin name"), ("council" = String, Path, description = "Council id")),
    request_body = CouncilConfigBody,
    responses(
        (status = 200, description = "Stored", body = CouncilConfigView),
        (status = 404, description = "Not installed, or another council's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The install changed meanwhile", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Settings the plugin does not declare, or of the wrong type", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn put_council_config(
    State(state): State<AppState>,
    Scope(scope): Scope,
    axum::Extension(principal): axum::Extension<Principal>,
    Path((_tenant, plugin, council)): Path<(String, PluginName, String)>,
    Json(body): Json<CouncilConfigBody>,
) -> Result<axum::Json<CouncilConfigView>, ApiError> {
    let (install, manifest) = installed(&state, &scope, &plugin).await?;
    let limit = limit(&state, &principal, &scope).await?;
    let council = own_council(
        &state,
        &scope,
        &install,
        limit.as_deref(),
        &council,
        "council",
    )
    .await?;
    let overrides = manifest
        .check_overrides(&body.overrides)
        .map_err(|errors| {
            ApiError::validation(
                "the settings do not match the plugin's declarations",
                errors
                    .into_iter()
                    .map(|e| FieldError {
                        field: format!("overrides.{}", e.field.trim_start_matches("config.")),
                        reason: e.reason,
                    })
                    .collect(),
            )
        })?;
    // A council's officers set only what the plugin lets councils set; the rest (where the
    // install's secrets go, for one) is the alliance's administrators' to change.
    let administrator = state.authz.allowed(
        &principal,
        guildhall_authz::Domain::Tenant(scope.tenant()),
        "installs",
        "write",
    );
    if !administrator {
        let current = state
            .store
            .council_settings(&scope)
            .get(&plugin, &council)
            .await?;
        let refused = manifest.admin_only_changes(&current, &overrides);
        if !refused.is_empty() {
            return Err(ApiError::from_status(
                StatusCode::FORBIDDEN,
                format!(
                    "only the alliance's administrators change {}: the plugin does not let councils set them",
                    refused.join(", ")
                ),
            )
            .with_extension("settings", refused));
        }
    }
    state
        .store
        .council_settings(&scope)
        .put(&plugin, &install.version, &council, &overrides)
        .await
        .map_err(|e| match e {
            SettingsError::Store(e) => ApiError::from(e),
            e @ SettingsError::InstallChanged { .. } => ApiError::conflict(e.to_string()),
        })?;
    Ok(axum::Json(CouncilConfigView {
        council: council.to_string(),
        config: Manifest::merged_config(&install.config, Some(&overrides)),
        overrides,
    }))
}

// ---- Schedules --------------------------------------------------------------------------

/// A declared schedule and its latest runs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ScheduleView {
    name: String,
    cron: String,
    /// The next due time, in UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_due: Option<String>,
    /// The latest runs, newest first.
    #[schema(value_type = Vec<Object>)]
    runs: Vec<guildhall_store::RunRecord>,
}

/// An install's schedules.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ScheduleList {
    schedules: Vec<ScheduleView>,
}

/// The body of `POST …/schedules/{name}/run`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunBody {
    /// The council to run it for; absent for every council the install serves.
    #[serde(default)]
    council: Option<String>,
}

/// The runs a `POST …/run` made.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RunList {
    runs: Vec<crate::gateway::RunOutcome>,
}

/// The schedules a plugin declares, when each is next due, and its latest runs.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/installs/{plugin}/schedules", tag = "installs",
    params(("tenant" = String, Path, description = "Tenant id"), ("plugin" = String, Path, description = "Plugin name")),
    responses(
        (status = 200, description = "Schedules and runs", body = ScheduleList),
        (status = 404, description = "Not installed", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_schedules(
    State(state): State<AppState>,
    Scope(scope): Scope,
    axum::Extension(principal): axum::Extension<Principal>,
    Path((_tenant, plugin)): Path<(String, PluginName)>,
) -> Result<axum::Json<ScheduleList>, ApiError> {
    let (_, manifest) = installed(&state, &scope, &plugin).await?;
    let limit = limit(&state, &principal, &scope).await?;
    let council = match limit.as_deref().map(|c| CouncilId::parse(c.to_string())) {
        Some(Ok(c)) => Some(c),
        Some(Err(_)) => {
            return Ok(axum::Json(ScheduleList {
                schedules: Vec::new(),
            }));
        }
        None => None,
    };
    let mut schedules = Vec::new();
    for s in &manifest.schedules {
        let runs = state
            .store
            .schedule_runs(&scope)
            .recent(&plugin, &s.name, council.as_ref(), 20)
            .await?;
        schedules.push(ScheduleView {
            name: s.name.clone(),
            cron: s.cron.clone(),
            next_due: crate::gateway::next_due(s).and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            }),
            runs,
        });
    }
    Ok(axum::Json(ScheduleList { schedules }))
}

/// Runs a declared schedule now, for one council or every council the install serves,
/// and answers with each run's outcome once they end.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/installs/{plugin}/schedules/{name}/run", tag = "installs",
    params(("tenant" = String, Path, description = "Tenant id"), ("plugin" = String, Path, description = "Plugin name"), ("name" = String, Path, description = "Schedule name")),
    request_body(content = RunBody, description = "Optional: the council"),
    responses(
        (status = 200, description = "The runs and their outcomes", body = RunList),
        (status = 404, description = "Not installed, no such schedule, or another council's", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn run_schedule(
    State(state): State<AppState>,
    Scope(scope): Scope,
    axum::Extension(principal): axum::Extension<Principal>,
    Path((_tenant, plugin, name)): Path<(String, PluginName, String)>,
    body: axum::body::Bytes,
) -> Result<axum::Json<RunList>, ApiError> {
    let body: RunBody = if body.iter().all(u8::is_ascii_whitespace) {
        RunBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!(
                "the body is not a JSON object with an optional \"council\": {e}"
            ))
        })?
    };
    let (install, _) = installed(&state, &scope, &plugin).await?;
    let limit = limit(&state, &principal, &scope).await?;
    let council = match (&body.council, &limit) {
        (Some(raw), _) | (None, Some(raw)) => Some(
            own_council(&state, &scope, &install, limit.as_deref(), raw, "council")
                .await
                .map_err(|e| {
                    if e.status() == StatusCode::UNPROCESSABLE_ENTITY {
                        ApiError::not_found(format!("{plugin} is not installed for council {raw}"))
                    } else {
                        e
                    }
                })?,
        ),
        (None, None) => None,
    };
    let runs =
        crate::gateway::run_now(&state, scope.tenant(), &plugin, &name, council.as_ref()).await?;
    Ok(axum::Json(RunList { runs }))
}
