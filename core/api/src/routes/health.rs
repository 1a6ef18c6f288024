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
    use guildhall_operations::health::NotReady;
    guildhall_operations::health::readiness(&state.store)
        .await
        .map_err(|e| match e {
            NotReady::Unreachable(e) => ApiError::unavailable("the database is unreachable", e),
            NotReady::SchemaUnreadable(e) => {
                ApiError::unavailable("the database schema cannot be read", e)
            }
            pending @ NotReady::Pending(_) => {
                ApiError::unavailable(pending.to_string(), "migrations pending")
            }
        })?;
    Ok(Json(Health { status: "ready" }))
}
