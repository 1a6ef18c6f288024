//! A tenant's audit log, for its auditors and admins.

use axum::extract::State;
use guildhall_operations::audit::{Page, Paging};
use guildhall_store::AuditRecord;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{ApiError, Problem};
use crate::extract::{Query, Scope};

/// Paging through the log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    /// Entries after this sequence number (0 for the start).
    #[serde(default)]
    after: i64,
    /// At most this many entries, 1 to 1000; 100 when absent.
    #[serde(default)]
    limit: Option<u64>,
}

/// One page of the log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AuditPage {
    /// Entries, oldest first.
    entries: Vec<AuditRecord>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<i64>,
}

/// Reads the tenant's audit log, oldest first, a page at a time. Each entry carries the
/// hash that chains it to the one before.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/audit", tag = "access",
    params(("tenant" = String, Path, description = "Tenant id"), AuditQuery),
    responses(
        (status = 200, description = "A page of entries", body = AuditPage),
        (status = 400, description = "Bad paging parameters", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn read_audit(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Query(query): Query<AuditQuery>,
) -> Result<axum::Json<AuditPage>, ApiError> {
    let paging =
        Paging::new(query.after, query.limit).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let Page {
        entries,
        next_after,
    } = guildhall_operations::audit::page(&state.store, &scope, paging).await?;
    Ok(axum::Json(AuditPage {
        entries,
        next_after,
    }))
}
