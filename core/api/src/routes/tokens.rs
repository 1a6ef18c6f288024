//! A tenant's API tokens: minted by its admins, shown once, listed without secrets,
//! revoked.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use guildhall_authz::{Principal, TokenRequest};
use guildhall_domain::{CouncilId, Role};
use guildhall_store::TokenRecord;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Path, Scope};

/// The body of `POST /api/v1/tenants/{tenant}/tokens`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenBody {
    /// A label, e.g. `ci deploy`.
    name: String,
    /// A tenant role: `tenant-admin`, `officer` or `auditor`.
    role: Role,
    /// The one council an officer token is limited to.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    council: Option<CouncilId>,
    /// Lifetime in days, 1 to 365; 90 when absent.
    #[serde(default)]
    expires_in_days: Option<u32>,
}

/// A token without its secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TokenView {
    /// The token's id (the part after `ghall_`).
    id: String,
    /// Its label.
    name: String,
    /// Its role.
    role: Role,
    /// The council it is limited to.
    #[serde(skip_serializing_if = "Option::is_none")]
    council: Option<String>,
    /// Who minted it.
    created_by: String,
    /// When, RFC 3339.
    created_at: String,
    /// When it stops working, RFC 3339.
    expires_at: String,
    /// When it was revoked, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_at: Option<String>,
}

impl From<TokenRecord> for TokenView {
    fn from(t: TokenRecord) -> Self {
        let rfc = |t: time::OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        Self {
            id: t.id,
            name: t.name,
            role: t.role,
            council: t.council,
            created_by: t.created_by,
            created_at: rfc(t.created_at),
            expires_at: rfc(t.expires_at),
            revoked_at: t.revoked_at.map(rfc),
        }
    }
}

/// A freshly minted token: the only time its secret is shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct MintedToken {
    /// The bearer token. It is not stored and cannot be shown again.
    token: String,
    /// Its record.
    #[serde(flatten)]
    record: TokenView,
}

/// A tenant's tokens.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TokenList {
    /// Newest first, revoked and expired ones included.
    tokens: Vec<TokenView>,
}

/// Mints a token for the tenant. The response is the only time the token is shown.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/tokens", tag = "access",
    params(("tenant" = String, Path, description = "Tenant id")),
    request_body = TokenBody,
    responses(
        (status = 201, description = "Minted", body = MintedToken),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid role, council or lifetime", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create_token(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Scope(scope): Scope,
    Json(body): Json<TokenBody>,
) -> Result<Response, ApiError> {
    let (token, record) = guildhall_operations::access::create_token(
        &state.authz,
        &state.store,
        Some(&scope),
        TokenRequest {
            name: &body.name,
            role: body.role,
            tenant: Some(scope.tenant()),
            council: body.council.as_ref(),
            days: body
                .expires_in_days
                .unwrap_or(guildhall_authz::DEFAULT_TOKEN_DAYS),
            created_by: principal.subject(),
        },
    )
    .await?;
    let mut response = (
        StatusCode::CREATED,
        axum::Json(MintedToken {
            token,
            record: TokenView::from(record),
        }),
    )
        .into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// Lists the tenant's tokens, without secrets.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/tokens", tag = "access",
    params(("tenant" = String, Path, description = "Tenant id")),
    responses(
        (status = 200, description = "Tokens", body = TokenList),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_tokens(
    State(state): State<AppState>,
    Scope(scope): Scope,
) -> Result<axum::Json<TokenList>, ApiError> {
    let tokens = state.store.tokens().list(&scope).await?;
    Ok(axum::Json(TokenList {
        tokens: tokens.into_iter().map(TokenView::from).collect(),
    }))
}

/// Revokes one of the tenant's tokens; it stops working on the next request.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/tokens/{token}", tag = "access",
    params(
        ("tenant" = String, Path, description = "Tenant id"),
        ("token" = String, Path, description = "Token id"),
    ),
    responses(
        (status = 200, description = "Revoked (or already revoked)", body = TokenView),
        (status = 404, description = "No such tenant or token", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path((_tenant, token)): Path<(String, String)>,
) -> Result<axum::Json<TokenView>, ApiError> {
    let record = state
        .authz
        .revoke_token(&scope, &token)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no token {token} in {}", scope.tenant())))?;
    Ok(axum::Json(TokenView::from(record)))
}
