//! Subject access and erasure requests: a council's data protection officer finds, or
//! erases, what every service of the alliance holds about a resident.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use guildhall_authz::Principal;
use guildhall_store::SubjectRequestRecord;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Path, Query, Scope};
use crate::subject_requests::{self, Given, Kind as SubjectKind, SubjectRequestAnswer};

/// Access or erasure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RequestKind {
    /// Everything held about the resident, in one bundle.
    Access,
    /// Erase everything held about the resident.
    Erasure,
}

/// What the resident gave to find their data. At least one is needed; a record matches
/// when any of them matches it, so give only identifiers you have checked are the
/// resident's.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IdentifiersBody {
    /// An email address.
    #[serde(default)]
    email: Option<String>,
    /// A telephone number.
    #[serde(default)]
    phone: Option<String>,
    /// A full name.
    #[serde(default)]
    name: Option<String>,
    /// A postal address as one line.
    #[serde(default)]
    address: Option<String>,
    /// A Unique Property Reference Number.
    #[serde(default)]
    uprn: Option<String>,
    /// A reference a service gave the resident.
    #[serde(default)]
    reference: Option<String>,
}

impl IdentifiersBody {
    fn given(&self) -> Given {
        Given {
            email: self.email.clone(),
            phone: self.phone.clone(),
            name: self.name.clone(),
            address: self.address.clone(),
            uprn: self.uprn.clone(),
            reference: self.reference.clone(),
        }
    }
}

/// A subject request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubjectRequestBody {
    /// `access` or `erasure`.
    kind: RequestKind,
    /// What the resident gave.
    identifiers: IdentifiersBody,
    /// Only these councils of the alliance; every council when absent.
    #[serde(default)]
    councils: Option<Vec<String>>,
}

/// The newest requests.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SubjectRequestList {
    /// Newest first, at most 100.
    requests: Vec<SubjectRequestRecord>,
}

/// Paging for the list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// At most this many, 1 to 100; 100 when absent.
    #[serde(default)]
    limit: Option<u64>,
}

/// Answers a resident's subject access or erasure request across every service the
/// alliance runs, for every council or those named. Access answers with each service's
/// records and events about the resident; erasure erases them and answers with what each
/// service erased. The request is kept with its identifiers hashed and its outcome counted,
/// never the records; a service that failed makes the request `failed` (ask again: erasure
/// is idempotent).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/subject-requests", tag = "data-protection",
    params(("tenant" = String, Path, description = "Tenant id")),
    request_body = SubjectRequestBody,
    responses(
        (status = 201, description = "Answered; Location names the kept request", body = SubjectRequestAnswer),
        (status = 422, description = "No identifier, a bad one, or a council not of the alliance", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create_subject_request(
    State(state): State<AppState>,
    Scope(scope): Scope,
    axum::Extension(principal): axum::Extension<Principal>,
    Json(body): Json<SubjectRequestBody>,
) -> Result<Response, ApiError> {
    let kind = match body.kind {
        RequestKind::Access => SubjectKind::Access,
        RequestKind::Erasure => SubjectKind::Erasure,
    };
    let answer = subject_requests::run(
        &state,
        &scope,
        principal.subject(),
        kind,
        &body.identifiers.given(),
        body.councils.as_deref(),
    )
    .await?;
    let location = answer.location(scope.tenant().as_str());
    let mut response = (StatusCode::CREATED, axum::Json(answer)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The alliance's subject requests, newest first: kind, hashed identifiers, councils, who
/// made each, when, and what each service found or erased (counts, never the records).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/subject-requests", tag = "data-protection",
    params(("tenant" = String, Path, description = "Tenant id"), ListQuery),
    responses(
        (status = 200, description = "The newest requests", body = SubjectRequestList),
        (status = 400, description = "A bad limit", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_subject_requests(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<SubjectRequestList>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("limit must be 1 to 100"));
    }
    let requests = state.store.subject_requests(&scope).list(limit).await?;
    Ok(axum::Json(SubjectRequestList { requests }))
}

/// One subject request as kept.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/subject-requests/{request}", tag = "data-protection",
    params(("tenant" = String, Path, description = "Tenant id"), ("request" = String, Path, description = "The request's id")),
    responses(
        (status = 200, description = "The request", body = SubjectRequestRecord),
        (status = 404, description = "No such tenant or request", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_subject_request(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path((_tenant, id)): Path<(String, String)>,
) -> Result<axum::Json<SubjectRequestRecord>, ApiError> {
    let not_found = || ApiError::not_found(format!("no subject request {id}"));
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(not_found());
    }
    state
        .store
        .subject_requests(&scope)
        .get(&id)
        .await?
        .map(axum::Json)
        .ok_or_else(not_found)
}
