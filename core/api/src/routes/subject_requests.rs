//! Subject access and erasure requests: a council's data protection officer finds, or
//! erases, what every service of the alliance holds about a resident.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use guildhall_authz::Principal;
use guildhall_domain::CouncilId;
use guildhall_runtime::subject::Identifiers;
use guildhall_store::{NewSubjectRequest, SubjectRequestRecord, hash_identifier};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{ApiError, FieldError, Problem};
use crate::extract::{Json, Path, Query, Scope};
use crate::gateway::{ServiceAnswer, SubjectKind, answer_subject_request};

/// The longest identifier, in characters.
const MAX_IDENTIFIER: usize = 320;

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
    fn fields(&self) -> [(&'static str, &Option<String>); 6] {
        [
            ("email", &self.email),
            ("phone", &self.phone),
            ("name", &self.name),
            ("address", &self.address),
            ("uprn", &self.uprn),
            ("reference", &self.reference),
        ]
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

/// A finished subject request: its record, and for access the bundle of what each service
/// holds.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SubjectRequestAnswer {
    /// The request as kept (identifiers hashed, outcome without the records).
    request: SubjectRequestRecord,
    /// Each service and council: what it holds (access) or erased (erasure).
    services: Vec<ServiceAnswer>,
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

/// Checks the body: identifiers are single lines, at least one is given, councils are the
/// alliance's.
async fn checked(
    state: &AppState,
    scope: &guildhall_store::TenantScope,
    body: &SubjectRequestBody,
) -> Result<(Identifiers, Option<Vec<CouncilId>>), ApiError> {
    let mut errors = Vec::new();
    let mut given = 0;
    for (name, value) in body.identifiers.fields() {
        let Some(value) = value else { continue };
        if value.trim().is_empty() {
            continue;
        }
        match guildhall_domain::text::line(&format!("identifiers.{name}"), value, MAX_IDENTIFIER) {
            Ok(()) => given += 1,
            Err(e) => errors.push(FieldError {
                field: e.field,
                reason: e.reason,
            }),
        }
    }
    if given == 0 && errors.is_empty() {
        errors.push(FieldError {
            field: "identifiers".to_string(),
            reason: "give at least one of email, phone, name, address, uprn and reference"
                .to_string(),
        });
    }
    let mut councils = None;
    if let Some(asked) = &body.councils {
        let known = state.store.councils(scope).list().await?;
        let mut ids = Vec::new();
        for (i, raw) in asked.iter().enumerate() {
            match CouncilId::parse(raw) {
                Ok(id) if known.iter().any(|c| c.id == id) => ids.push(id),
                _ => errors.push(FieldError {
                    field: format!("councils[{i}]"),
                    reason: format!("{raw:?} is not a council of {}", scope.tenant()),
                }),
            }
        }
        if asked.is_empty() {
            errors.push(FieldError {
                field: "councils".to_string(),
                reason: "name at least one council, or leave it out for every council".to_string(),
            });
        }
        councils = Some(ids);
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(
            "the subject request is not valid",
            errors,
        ));
    }
    let value = |v: &Option<String>| {
        v.as_ref()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let ids = &body.identifiers;
    Ok((
        Identifiers {
            email: value(&ids.email),
            phone: value(&ids.phone),
            name: value(&ids.name),
            address: value(&ids.address),
            uprn: value(&ids.uprn),
            reference: value(&ids.reference),
        },
        councils,
    ))
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
    let (subject, councils) = checked(&state, &scope, &body).await?;
    let tenant = scope.tenant().as_str().to_string();
    let mut hashed = serde_json::Map::new();
    for (name, value) in body.identifiers.fields() {
        if let Some(value) = value.as_deref().filter(|v| !v.trim().is_empty()) {
            hashed.insert(
                name.to_string(),
                hash_identifier(&tenant, name, value).into(),
            );
        }
    }
    let council_names: Option<Vec<String>> = councils
        .as_ref()
        .map(|ids| ids.iter().map(ToString::to_string).collect());
    let (kind, kind_name) = match body.kind {
        RequestKind::Access => (SubjectKind::Access, "access"),
        RequestKind::Erasure => (SubjectKind::Erasure, "erasure"),
    };
    let requests = state.store.subject_requests(&scope);
    let started = requests
        .start(NewSubjectRequest {
            kind: kind_name,
            identifiers: &hashed,
            councils: council_names.as_deref(),
            requested_by: principal.subject(),
        })
        .await?;
    // In a task of its own: a requester who goes away does not leave an erasure half done.
    let task_state = state.clone();
    let task_scope = scope.clone();
    let call_id = format!("subject-{}", started.id);
    let services = tokio::spawn(async move {
        answer_subject_request(
            &task_state,
            &task_scope,
            kind,
            &subject,
            councils.as_deref(),
            &call_id,
        )
        .await
    })
    .await
    .map_err(|e| ApiError::internal(format!("a subject request's task failed: {e}")))?;
    let services = match services {
        Ok(services) => services,
        Err(e) => {
            let outcome = serde_json::json!({ "error": e.to_string() });
            requests.finish(&started.id, false, &outcome).await?;
            return Err(e);
        }
    };
    let completed = services.iter().all(|s| s.state != "failed");
    let outcome = serde_json::json!({
        "services": services.iter().map(ServiceAnswer::summary).collect::<Vec<_>>(),
    });
    let request = requests
        .finish(&started.id, completed, &outcome)
        .await?
        .ok_or_else(|| ApiError::internal("a subject request vanished while it ran"))?;
    let location = format!("/api/v1/tenants/{tenant}/subject-requests/{}", request.id);
    let mut response = (
        StatusCode::CREATED,
        axum::Json(SubjectRequestAnswer { request, services }),
    )
        .into_response();
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
