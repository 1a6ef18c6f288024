//! How long an install keeps its plugin's data: the manifest's retention, and the shorter one
//! an alliance's administrators may set.

use axum::extract::State;
use axum::http::StatusCode;
use guildhall_authz::Principal;
use guildhall_domain::PluginName;
use guildhall_operations::retention::RetentionView;
use serde::Deserialize;

use crate::AppState;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Path, Scope};

/// An install's own retention. Both absent removes it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetentionBody {
    /// Days key-value entries are kept after their last write (1 to 36525), at most the
    /// manifest's when it declares one.
    #[serde(default)]
    kv_days: Option<u32>,
    /// Days events are kept (1 to 36525), at most the manifest's when it declares one.
    #[serde(default)]
    event_days: Option<u32>,
}

/// How long the install keeps its plugin's data: what its manifest declares, the install's
/// own setting, and what the retention job applies (the shorter).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/installs/{plugin}/retention", tag = "data-protection",
    params(("tenant" = String, Path, description = "Tenant id"), ("plugin" = String, Path, description = "Plugin name")),
    responses(
        (status = 200, description = "The retention", body = RetentionView),
        (status = 404, description = "No such tenant, or not installed", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_retention(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path((_tenant, plugin)): Path<(String, PluginName)>,
) -> Result<axum::Json<RetentionView>, ApiError> {
    Ok(axum::Json(
        guildhall_operations::retention::get_install(&state.store, &scope, &plugin).await?,
    ))
}

/// Keeps the install's data for less than its manifest says (never more); both fields
/// absent returns to the manifest's retention. Data past the retention is removed by the
/// next run of the retention job.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/installs/{plugin}/retention", tag = "data-protection",
    params(("tenant" = String, Path, description = "Tenant id"), ("plugin" = String, Path, description = "Plugin name")),
    request_body = RetentionBody,
    responses(
        (status = 200, description = "Replaced", body = RetentionView),
        (status = 201, description = "Set", body = RetentionView),
        (status = 404, description = "No such tenant, or not installed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Out of range, or longer than the manifest's", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn put_retention(
    State(state): State<AppState>,
    Scope(scope): Scope,
    axum::Extension(principal): axum::Extension<Principal>,
    Path((_tenant, plugin)): Path<(String, PluginName)>,
    Json(body): Json<RetentionBody>,
) -> Result<(StatusCode, axum::Json<RetentionView>), ApiError> {
    let (existed, view) = guildhall_operations::retention::put_install(
        &state.store,
        &scope,
        &plugin,
        body.kv_days,
        body.event_days,
        principal.subject(),
    )
    .await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(view)))
}
