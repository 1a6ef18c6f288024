//! Member bindings: which roles a subject (`oidc:<issuer id>:<sub>`) holds in a tenant.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use guildhall_domain::{CouncilId, Role, Subject};
use guildhall_store::{Applied, MemberRecord};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Path, Scope};

/// The body of `PUT /api/v1/tenants/{tenant}/members/{subject}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MemberBody {
    /// The id of the identity provider (`[[auth.oidc]] id`) whose `sub` the path names.
    /// Required unless the path is the whole subject, `oidc:<issuer id>:<sub>`.
    #[serde(default)]
    issuer: Option<String>,
    /// The subject's roles in the tenant; an empty list removes the binding.
    roles: Vec<Role>,
    /// The one council an officer is limited to.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    council: Option<CouncilId>,
}

/// A member binding.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct MemberView {
    /// The subject, `oidc:<issuer id>:<sub>`.
    subject: String,
    /// The identity provider's id; absent for a binding made before subjects named their
    /// issuer, which grants nothing until it is bound again.
    #[serde(skip_serializing_if = "Option::is_none")]
    issuer: Option<String>,
    /// The `sub` claim at that provider.
    sub: String,
    /// Its roles.
    roles: Vec<Role>,
    /// The council it is limited to.
    #[serde(skip_serializing_if = "Option::is_none")]
    council: Option<String>,
    /// When the binding was made, RFC 3339.
    created_at: String,
    /// When it last changed, RFC 3339.
    updated_at: String,
}

impl From<MemberRecord> for MemberView {
    fn from(m: MemberRecord) -> Self {
        let rfc = |t: time::OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        let (issuer, sub) = match Subject::parse(&m.subject) {
            Ok(subject) => match subject.oidc_parts() {
                Some((issuer, sub)) => (Some(issuer.to_string()), sub.to_string()),
                None => (None, m.subject.clone()),
            },
            Err(_) => (None, m.subject.clone()),
        };
        Self {
            subject: m.subject,
            issuer,
            sub,
            roles: m.roles,
            council: m.council,
            created_at: rfc(m.created_at),
            updated_at: rfc(m.updated_at),
        }
    }
}

/// The members of a tenant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct MemberList {
    /// Bindings ordered by subject.
    members: Vec<MemberView>,
}

/// The namespaced subject a `PUT …/members/{subject}` names: the path's `sub` at the body's
/// `issuer`, or the whole subject written in the path. Nothing else can be bound, so a
/// binding never names a token, a role or a subject of an issuer left unsaid.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/members", tag = "access",
    params(("tenant" = String, Path, description = "Tenant id")),
    responses(
        (status = 200, description = "Members", body = MemberList),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_members(
    State(state): State<AppState>,
    Scope(scope): Scope,
) -> Result<axum::Json<MemberList>, ApiError> {
    let members = state.store.members(&scope).list().await?;
    Ok(axum::Json(MemberList {
        members: members.into_iter().map(MemberView::from).collect(),
    }))
}

/// Sets a subject's roles in the tenant (an empty list removes them). The change holds
/// from the next request, on every replica. 201 when created, 200 when changed or
/// unchanged, 204 when removed.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/members/{subject}", tag = "access",
    params(
        ("tenant" = String, Path, description = "Tenant id"),
        ("subject" = String, Path, description = "The `sub` claim, with `issuer` in the body; or the whole subject `oidc:<issuer id>:<sub>`"),
    ),
    request_body = MemberBody,
    responses(
        (status = 200, description = "Updated or unchanged", body = MemberView),
        (status = 201, description = "Created", body = MemberView),
        (status = 204, description = "Removed"),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid roles or council", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn put_member(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path((_tenant, subject)): Path<(String, String)>,
    Json(body): Json<MemberBody>,
) -> Result<Response, ApiError> {
    let subject = guildhall_operations::access::member_subject(&subject, body.issuer.as_deref())?;
    let (applied, record) = guildhall_operations::access::bind_member(
        &state.authz,
        &state.store,
        &scope,
        &subject,
        &body.roles,
        body.council.as_ref(),
    )
    .await?;
    Ok(match record {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(record) => {
            let status = if applied == Applied::Created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, axum::Json(MemberView::from(record))).into_response()
        }
    })
}
