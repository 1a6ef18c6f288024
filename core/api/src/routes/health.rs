//! Liveness, readiness and the OpenAPI document.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::AppState;
use crate::error::{ApiError, Problem};

/// The body of a successful health check.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    /// `ok` for liveness, `ready` for readiness.
    status: &'static str,
}

/// The process is alive. Never touches the database, so a slow database does not get the
/// process killed.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The process is alive", body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The database answers and its schema is current.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready to serve", body = Health),
        (status = 503, description = "Database unreachable or migrations pending", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state
        .store
        .ping()
        .await
        .map_err(|e| ApiError::unavailable("the database is unreachable", e))?;
    let status = state
        .store
        .migration_status()
        .await
        .map_err(|e| ApiError::unavailable("the database schema cannot be read", e))?;
    if !status.pending.is_empty() {
        return Err(ApiError::unavailable(
            format!(
                "{} database migration(s) pending: {}",
                status.pending.len(),
                status.pending.join(", ")
            ),
            "migrations pending",
        ));
    }
    Ok(Json(Health { status: "ready" }))
}
