//! An alliance's API tokens: list, create (the secret is shown once, on the page that
//! answers the form) and revoke, through the same decisions, operations and audit entries
//! as the API's token routes. Revoking a token also ends every console session signed in
//! with it, since each request checks the token.

use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use guildhall_api::ApiError;
use guildhall_authz::TokenRequest;
use guildhall_domain::{CouncilId, Role};
use guildhall_store::TenantScope;
use minijinja::context;
use serde::Serialize;
use time::OffsetDateTime;

use crate::Console;
use crate::act::{self, Req, Section};
use crate::pages::{Flash, FormError, council_options, error_for, when};
use crate::render::{PageError, page};
use crate::session::{FormFields, SignedIn};

const LIST: &str = "/api/v1/tenants/{tenant}/tokens";
const REVOKE: &str = "/api/v1/tenants/{tenant}/tokens/{token}";

#[derive(Debug, Serialize)]
struct TokenRow {
    id: String,
    name: String,
    role: String,
    council: String,
    created_by: String,
    expires: String,
    status: &'static str,
}

#[derive(Debug, Default)]
struct Typed {
    name: String,
    role: String,
    council: String,
    days: String,
}

#[allow(clippy::too_many_arguments)]
async fn render(
    console: &Console,
    who: &SignedIn,
    scope: &TenantScope,
    typed: Typed,
    errors: Vec<FormError>,
    created: Option<(String, String)>,
    done: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let now = OffsetDateTime::now_utc();
    let tokens = console.app.store.tokens().list(scope).await?;
    let rows: Vec<TokenRow> = tokens
        .into_iter()
        .map(|t| TokenRow {
            status: if t.revoked_at.is_some() {
                "Revoked"
            } else if t.expires_at <= now {
                "Expired"
            } else {
                "Active"
            },
            id: t.id,
            name: t.name,
            role: t.role.as_str().to_string(),
            council: t.council.unwrap_or_else(|| "All".to_string()),
            created_by: t.created_by,
            expires: when(&t.expires_at),
        })
        .collect();
    let can_write = act::may(console, who, Method::POST, LIST, Some(scope.tenant()));
    let council_options = council_options(console, scope, &typed.council).await?;
    let roles: Vec<_> = [Role::TenantAdmin, Role::Officer, Role::Auditor]
        .iter()
        .map(|r| context! { value => r.as_str(), text => r.as_str(), checked => typed.role == r.as_str() })
        .collect();
    let mut chrome = act::chrome(
        console,
        who,
        "Tokens",
        Some(scope.tenant()),
        Section::Tenant("tokens"),
    );
    chrome.has_errors = !errors.is_empty();
    Ok(page(
        status,
        "tokens.html",
        &chrome,
        context! {
            tenant => scope.tenant().to_string(),
            tokens => rows,
            can_write => can_write,
            roles => roles,
            councils => council_options,
            name => typed.name,
            days => if typed.days.is_empty() { guildhall_authz::DEFAULT_TOKEN_DAYS.to_string() } else { typed.days },
            max_days => guildhall_authz::MAX_TOKEN_DAYS,
            errors => errors.clone(),
            name_error => error_for(&errors, "name"),
            role_error => error_for(&errors, "role"),
            council_error => error_for(&errors, "council"),
            days_error => error_for(&errors, "days"),
            created => created.map(|(secret, name)| context! { secret => secret, name => name }),
            done => done,
        },
    ))
}

/// `GET /console/t/{tenant}/tokens`.
pub async fn list(
    State(console): State<Console>,
    who: SignedIn,
    Path(tenant): Path<String>,
    Query(flash): Query<Flash>,
) -> Result<Response, PageError> {
    let scope = act::read_tenant(&console, &who, LIST, &tenant).await?;
    let done = match flash.done.as_deref() {
        Some("revoked") => Some("The token was revoked."),
        _ => None,
    };
    render(
        &console,
        &who,
        &scope,
        Typed::default(),
        Vec::new(),
        None,
        done,
        StatusCode::OK,
    )
    .await
}

fn field_of(field: &str) -> &'static str {
    match field {
        "role" => "role",
        "council" => "council",
        "days" | "expires_in_days" => "days",
        _ => "name",
    }
}

/// `POST /console/t/{tenant}/tokens`: mint a token; the answer shows its secret once.
pub async fn create(
    State(console): State<Console>,
    who: SignedIn,
    req: Req,
    Path(tenant): Path<String>,
    fields: FormFields,
) -> Result<Response, PageError> {
    let typed = Typed {
        name: fields.get("name").unwrap_or_default().trim().to_string(),
        role: fields.get("role").unwrap_or_default().to_string(),
        council: fields.get("council").unwrap_or_default().to_string(),
        days: fields.get("days").unwrap_or_default().trim().to_string(),
    };
    let mut errors = Vec::new();
    if typed.name.is_empty() {
        errors.push(FormError::at("name", "Enter a name for the token"));
    }
    let role = match Role::parse(&typed.role) {
        Ok(role) if !role.is_global() => Some(role),
        _ => {
            errors.push(FormError::at("role", "Select the token’s role"));
            None
        }
    };
    let council = if typed.council.is_empty() {
        None
    } else {
        match CouncilId::parse(typed.council.clone()) {
            Ok(c) => Some(c),
            Err(_) => {
                errors.push(FormError::at(
                    "council",
                    "Select a council of this alliance",
                ));
                None
            }
        }
    };
    let days = if typed.days.is_empty() {
        Some(guildhall_authz::DEFAULT_TOKEN_DAYS)
    } else {
        match typed.days.parse::<u32>() {
            Ok(d) => Some(d),
            Err(_) => {
                errors.push(FormError::at(
                    "days",
                    format!(
                        "Enter a number of days from 1 to {}",
                        guildhall_authz::MAX_TOKEN_DAYS
                    ),
                ));
                None
            }
        }
    };
    let outcome = match (role, days, errors.is_empty()) {
        (Some(role), Some(days), true) => {
            let api_path = format!("/api/v1/tenants/{tenant}/tokens");
            let console_ref = &console;
            let name = typed.name.clone();
            let subject = who.principal.subject().to_string();
            Some(
                act::write(
                    &console,
                    &who,
                    &req,
                    Method::POST,
                    LIST,
                    &api_path,
                    Some(&tenant),
                    |scope| async move {
                        let scope = scope.ok_or_else(|| ApiError::not_found("no tenant"))?;
                        let (secret, record) = guildhall_operations::access::create_token(
                            &console_ref.app.authz,
                            &console_ref.app.store,
                            Some(&scope),
                            TokenRequest {
                                name: &name,
                                role,
                                tenant: Some(scope.tenant()),
                                council: council.as_ref(),
                                days,
                                created_by: &subject,
                            },
                        )
                        .await?;
                        Ok(((secret, record.name), StatusCode::CREATED))
                    },
                )
                .await?,
            )
        }
        _ => None,
    };
    let scope = act::read_tenant(&console, &who, LIST, &tenant).await?;
    match outcome {
        Some(Ok(created)) => {
            render(
                &console,
                &who,
                &scope,
                Typed::default(),
                Vec::new(),
                Some(created),
                None,
                StatusCode::CREATED,
            )
            .await
        }
        other => {
            if !act::may(&console, &who, Method::POST, LIST, Some(scope.tenant())) {
                return Err(PageError::forbidden(
                    "Your role in this alliance does not allow creating tokens.",
                ));
            }
            if let Some(Err(e)) = other {
                if e.errors().is_empty() {
                    errors.push(FormError::general(e.detail().to_string()));
                }
                for f in e.errors() {
                    errors.push(FormError::at(field_of(&f.field), f.reason.clone()));
                }
            }
            render(
                &console,
                &who,
                &scope,
                typed,
                errors,
                None,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

/// `POST /console/t/{tenant}/tokens/{token}/revoke`.
pub async fn revoke(
    State(console): State<Console>,
    who: SignedIn,
    req: Req,
    Path((tenant, token)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let api_path = format!(
        "/api/v1/tenants/{tenant}/tokens/{}",
        crate::session::urlencoding(&token)
    );
    let console_ref = &console;
    let token_ref = &token;
    let outcome = act::write(
        &console,
        &who,
        &req,
        Method::DELETE,
        REVOKE,
        &api_path,
        Some(&tenant),
        |scope| async move {
            let scope = scope.ok_or_else(|| ApiError::not_found("no tenant"))?;
            console_ref
                .app
                .authz
                .revoke_token(&scope, token_ref)
                .await
                .map_err(ApiError::from)?
                .ok_or_else(|| ApiError::not_found(format!("no token {token_ref}")))?;
            Ok(((), StatusCode::OK))
        },
    )
    .await?;
    outcome.map_err(PageError::from)?;
    Ok(Redirect::to(&format!("{}/t/{tenant}/tokens?done=revoked", crate::PREFIX)).into_response())
}
