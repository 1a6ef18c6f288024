//! Tenants (alliances) and their councils.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use guildhall_domain::CouncilId;
use guildhall_domain::brand::Brand;
use guildhall_domain::tenant::{CouncilSpec, TenantSpec};
use guildhall_store::{Applied, CouncilRecord, TenantRecord};
use serde::{Deserialize, Serialize};

use guildhall_authz::Principal;

use crate::AppState;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Path, Scope};

/// The list of tenants.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TenantList {
    /// Tenants ordered by id.
    tenants: Vec<TenantRecord>,
}

/// The body of `PUT /api/v1/tenants/{tenant}/councils/{council}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CouncilBody {
    /// Human-readable name.
    name: String,
    /// ONS GSS code, e.g. `E07000215`.
    #[serde(default)]
    gss_code: Option<String>,
    /// The council's brand on citizens' pages; what it leaves unset comes from its
    /// alliance's.
    #[serde(default)]
    brand: Brand,
}

/// Creates a tenant with its councils.
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants",
    request_body = TenantSpec,
    responses(
        (status = 201, description = "Created", body = TenantRecord),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The tenant exists", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create_tenant(
    State(state): State<AppState>,
    Json(spec): Json<TenantSpec>,
) -> Result<Response, ApiError> {
    let record = guildhall_operations::tenants::create(&state.store, &spec).await?;
    let location = format!("/api/v1/tenants/{}", record.id);
    let mut response = (StatusCode::CREATED, axum::Json(record)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// Lists the tenants the caller holds a role in (every tenant for operators).
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants",
    responses((status = 200, description = "Tenants", body = TenantList)))]
pub(crate) async fn list_tenants(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> Result<axum::Json<TenantList>, ApiError> {
    let tenants =
        guildhall_operations::tenants::visible(&state.authz, &state.store, &principal).await?;
    Ok(axum::Json(TenantList { tenants }))
}

/// Shows one tenant and its councils.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id")),
    responses(
        (status = 200, description = "The tenant", body = TenantRecord),
        (status = 400, description = "Invalid tenant id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_tenant(
    State(state): State<AppState>,
    Scope(scope): Scope,
) -> Result<axum::Json<TenantRecord>, ApiError> {
    let record = state
        .store
        .tenants()
        .get(&scope)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no tenant {}", scope.tenant())))?;
    Ok(axum::Json(record))
}

/// Adds a council to a tenant or updates it. Answers 201 when created, 200 otherwise.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/councils/{council}", tag = "tenants",
    params(
        ("tenant" = String, Path, description = "Tenant id"),
        ("council" = String, Path, description = "Council id"),
    ),
    request_body = CouncilBody,
    responses(
        (status = 200, description = "Updated or unchanged", body = CouncilRecord),
        (status = 201, description = "Created", body = CouncilRecord),
        (status = 400, description = "Invalid id or malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid council", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn put_council(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path((_tenant, council)): Path<(String, CouncilId)>,
    Json(body): Json<CouncilBody>,
) -> Result<Response, ApiError> {
    let spec = CouncilSpec {
        id: council,
        name: body.name,
        gss_code: body.gss_code,
        brand: body.brand,
    };
    let (applied, record) =
        guildhall_operations::tenants::put_council(&state.store, &scope, &spec).await?;
    let status = if applied == Applied::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(record)).into_response())
}

/// Sets the alliance's brand on citizens' pages: colour, contact and accessibility-statement
/// links and logo (a `data:` URL of an SVG or PNG image, or the path of the current one).
/// Its councils take what they do not set themselves.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/brand", tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id")),
    request_body = Brand,
    responses(
        (status = 200, description = "The tenant, with its brand", body = TenantRecord),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid brand", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn put_brand(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Json(brand): Json<Brand>,
) -> Result<axum::Json<TenantRecord>, ApiError> {
    let (_, record) =
        guildhall_operations::tenants::put_brand(&state.store, &scope, &brand).await?;
    Ok(axum::Json(record))
}
