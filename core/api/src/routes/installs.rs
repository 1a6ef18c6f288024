//! A tenant's installs: which plugin versions it runs, for which councils, configured how.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use guildhall_domain::PluginName;
use guildhall_operations::installs::InstallRequest;
use guildhall_store::{Applied, InstallRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::AppState;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Path, Query, Scope};

/// An install.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct InstallView {
    plugin: String,
    version: String,
    /// `"all"` or a list of council ids.
    #[schema(schema_with = councils_schema)]
    councils: Value,
    /// The checked configuration, with defaults filled in.
    #[schema(value_type = Object)]
    config: Value,
    created_at: String,
    updated_at: String,
}

impl From<&InstallRecord> for InstallView {
    fn from(i: &InstallRecord) -> Self {
        let rfc3339 = |t: &time::OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        Self {
            plugin: i.plugin.to_string(),
            version: i.version.clone(),
            councils: serde_json::to_value(&i.councils).unwrap_or(Value::Null),
            config: i.config.clone(),
            created_at: rfc3339(&i.created_at),
            updated_at: rfc3339(&i.updated_at),
        }
    }
}

/// The schema of an install's councils: the string `"all"` or a list of council ids.
fn councils_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
    let one_of = OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["all"])),
        )
        .item(ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::String)))
        .description(Some("`\"all\"` or a list of council ids."))
        .build();
    Schema::OneOf(one_of)
}

/// The installs of a tenant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct InstallList {
    installs: Vec<InstallView>,
}

/// The body of `PUT /api/v1/tenants/{tenant}/installs/{plugin}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InstallBody {
    /// The version to run; another version than the installed one is an upgrade or a
    /// rollback, switched atomically.
    version: String,
    /// `"all"` or a list of council ids of this tenant.
    #[schema(schema_with = councils_schema)]
    councils: Value,
    /// Settings checked against the manifest's `[config]` declarations.
    #[serde(default)]
    #[schema(value_type = Object)]
    config: Value,
}

/// Query of `DELETE …/installs/{plugin}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct UninstallQuery {
    /// Also delete the plugin's key-value data in this tenant (kept by default, so a
    /// reinstall continues where it left off).
    #[serde(default)]
    purge_data: bool,
}

/// Lists a tenant's installs.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/installs", tag = "installs",
    params(("tenant" = String, Path, description = "Tenant id")),
    responses(
        (status = 200, description = "Installs", body = InstallList),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_installs(
    State(state): State<AppState>,
    Scope(scope): Scope,
) -> Result<axum::Json<InstallList>, ApiError> {
    let installs = state.store.installs(&scope).list().await?;
    Ok(axum::Json(InstallList {
        installs: installs.iter().map(InstallView::from).collect(),
    }))
}

/// Installs a plugin version for some councils, or switches an install to another version
/// or configuration. Requests in flight finish on the old version.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/installs/{plugin}", tag = "installs",
    params(("tenant" = String, Path, description = "Tenant id"), ("plugin" = String, Path, description = "Plugin name")),
    request_body = InstallBody,
    responses(
        (status = 201, description = "Installed", body = InstallView),
        (status = 200, description = "Updated or unchanged", body = InstallView),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The version is yanked", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown version or council, or invalid config", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn put_install(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path((_tenant, plugin)): Path<(String, PluginName)>,
    Json(body): Json<InstallBody>,
) -> Result<Response, ApiError> {
    let (applied, record) = guildhall_operations::installs::put(
        &state.store,
        &state.gateway,
        &scope,
        &plugin,
        InstallRequest {
            version: &body.version,
            councils: &body.councils,
            config: &body.config,
        },
    )
    .await?;
    let status = if applied == Applied::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(InstallView::from(&record))).into_response())
}

/// Uninstalls a plugin. Its key-value data is kept unless `purge_data=true`.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/installs/{plugin}", tag = "installs",
    params(("tenant" = String, Path, description = "Tenant id"), ("plugin" = String, Path, description = "Plugin name"), UninstallQuery),
    responses(
        (status = 204, description = "Uninstalled"),
        (status = 404, description = "Not installed", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn delete_install(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path((_tenant, plugin)): Path<(String, PluginName)>,
    Query(query): Query<UninstallQuery>,
) -> Result<StatusCode, ApiError> {
    guildhall_operations::installs::delete(&state.store, &scope, &plugin, query.purge_data).await?;
    Ok(StatusCode::NO_CONTENT)
}
