//! An alliance's members: who holds which roles, and binding or removing them, through the
//! same decision, operation and audit entry as `PUT /api/v1/tenants/{tenant}/members/{subject}`.

use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use guildhall_api::ApiError;
use guildhall_domain::{CouncilId, Role, Subject};
use guildhall_store::{Applied, TenantScope};
use minijinja::context;
use serde::Serialize;

use crate::Console;
use crate::act::{self, Req, Section};
use crate::pages::{Flash, FormError, council_options, error_for, when};
use crate::render::{PageError, page};
use crate::session::{FormFields, SignedIn};

const LIST: &str = "/api/v1/tenants/{tenant}/members";
const PUT: &str = "/api/v1/tenants/{tenant}/members/{subject}";

/// The roles a member of an alliance can hold.
const TENANT_ROLES: [(Role, &str); 3] = [
    (
        Role::TenantAdmin,
        "Runs the alliance: councils, members, tokens, services, audit and usage",
    ),
    (
        Role::Officer,
        "A council officer: uses services’ officer functions, optionally for one council",
    ),
    (Role::Auditor, "Reads the audit log, usage and performance"),
];

#[derive(Debug, Serialize)]
struct MemberRow {
    subject: String,
    who: String,
    issuer: String,
    roles: String,
    council: String,
    updated: String,
}

#[derive(Debug, Default)]
struct Typed {
    issuer: String,
    sub: String,
    roles: Vec<String>,
    council: String,
}

async fn render(
    console: &Console,
    who: &SignedIn,
    scope: &TenantScope,
    typed: Typed,
    errors: Vec<FormError>,
    done: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let members = console.app.store.members(scope).list().await?;
    let rows: Vec<MemberRow> = members
        .into_iter()
        .map(|m| {
            let (issuer, sub) = Subject::parse(&m.subject)
                .ok()
                .and_then(|s| s.oidc_parts().map(|(i, s)| (i.to_string(), s.to_string())))
                .unwrap_or_else(|| ("—".to_string(), m.subject.clone()));
            MemberRow {
                who: sub,
                issuer,
                roles: m
                    .roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                council: m.council.clone().unwrap_or_else(|| "All".to_string()),
                updated: when(&m.updated_at),
                subject: m.subject,
            }
        })
        .collect();
    let can_write = act::may(console, who, Method::PUT, PUT, Some(scope.tenant()));
    let issuers: Vec<_> = console
        .app
        .authz
        .oidc()
        .issuers_for_tenant(scope.tenant().as_str())
        .into_iter()
        .map(|i| {
            let id = i.to_string();
            context! { value => id.clone(), text => id.clone(), selected => id == typed.issuer }
        })
        .collect();
    let council_options = council_options(console, scope, &typed.council).await?;
    let roles: Vec<_> = TENANT_ROLES
        .iter()
        .map(|(role, hint)| {
            context! {
                value => role.as_str(),
                text => role.as_str(),
                hint => *hint,
                checked => typed.roles.iter().any(|r| r == role.as_str()),
            }
        })
        .collect();
    let mut chrome = act::chrome(
        console,
        who,
        "Members",
        Some(scope.tenant()),
        Section::Tenant("members"),
    );
    chrome.has_errors = !errors.is_empty();
    Ok(page(
        status,
        "members.html",
        &chrome,
        context! {
            tenant => scope.tenant().to_string(),
            members => rows,
            can_write => can_write,
            issuers => issuers,
            councils => council_options,
            roles => roles,
            sub => typed.sub,
            errors => errors.clone(),
            sub_error => error_for(&errors, "sub"),
            issuer_error => error_for(&errors, "issuer"),
            roles_error => error_for(&errors, "roles"),
            council_error => error_for(&errors, "council"),
            done => done,
        },
    ))
}

/// `GET /console/t/{tenant}/members`.
pub async fn list(
    State(console): State<Console>,
    who: SignedIn,
    Path(tenant): Path<String>,
    Query(flash): Query<Flash>,
) -> Result<Response, PageError> {
    let scope = act::read_tenant(&console, &who, LIST, &tenant).await?;
    let done = match flash.done.as_deref() {
        Some("bound") => Some("The member’s roles were saved."),
        Some("removed") => Some("The member was removed."),
        _ => None,
    };
    render(
        &console,
        &who,
        &scope,
        Typed::default(),
        Vec::new(),
        done,
        StatusCode::OK,
    )
    .await
}

fn field_of(field: &str) -> &'static str {
    match field {
        "issuer" => "issuer",
        "council" => "council",
        f if f.starts_with("roles") => "roles",
        _ => "sub",
    }
}

/// `POST /console/t/{tenant}/members`: bind roles (none removes the member).
pub async fn bind(
    State(console): State<Console>,
    who: SignedIn,
    req: Req,
    Path(tenant): Path<String>,
    fields: FormFields,
) -> Result<Response, PageError> {
    let typed = Typed {
        issuer: fields.get("issuer").unwrap_or_default().trim().to_string(),
        sub: fields.get("sub").unwrap_or_default().trim().to_string(),
        roles: fields
            .all("roles")
            .into_iter()
            .map(str::to_string)
            .collect(),
        council: fields.get("council").unwrap_or_default().trim().to_string(),
    };
    let removing = fields.get("remove").is_some();
    let mut errors = Vec::new();
    // A whole subject (from the list's "Remove" button) or an issuer and a `sub`.
    let subject_text = fields.get("subject").map(str::to_string);
    let subject = match &subject_text {
        Some(whole) => guildhall_operations::access::member_subject(whole, None),
        None if typed.sub.is_empty() => {
            errors.push(FormError::at(
                "sub",
                "Enter the person’s identifier at their identity provider",
            ));
            Err(guildhall_operations::Error::NotFound(String::new()))
        }
        None => guildhall_operations::access::member_subject(
            &typed.sub,
            Some(typed.issuer.as_str()).filter(|i| !i.is_empty()),
        ),
    };
    let mut roles = Vec::new();
    if !removing {
        for name in &typed.roles {
            match Role::parse(name) {
                Ok(role) if !role.is_global() => roles.push(role),
                _ => errors.push(FormError::at(
                    "roles",
                    format!("{name} is not a role in an alliance"),
                )),
            }
        }
        if roles.is_empty() && errors.is_empty() {
            errors.push(FormError::at("roles", "Select at least one role"));
        }
    }
    let council = if typed.council.is_empty() || removing {
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
    let subject = match subject {
        Ok(subject) => Some(subject),
        Err(guildhall_operations::Error::Invalid { fields, detail }) => {
            if fields.is_empty() {
                errors.push(FormError::at("sub", detail));
            }
            for f in fields {
                errors.push(FormError::at(field_of(&f.field), f.reason));
            }
            None
        }
        Err(_) => None,
    };
    let outcome = match (subject, errors.is_empty()) {
        (Some(subject), true) => {
            let api_path = format!(
                "/api/v1/tenants/{tenant}/members/{}",
                crate::session::urlencoding(subject.as_str())
            );
            let console_ref = &console;
            let roles_ref = &roles;
            let council_ref = council.as_ref();
            Some(
                act::write(
                    &console,
                    &who,
                    &req,
                    Method::PUT,
                    PUT,
                    &api_path,
                    Some(&tenant),
                    |scope| async move {
                        let scope = scope.ok_or_else(|| ApiError::not_found("no tenant"))?;
                        let (applied, record) = guildhall_operations::access::bind_member(
                            &console_ref.app.authz,
                            &console_ref.app.store,
                            &scope,
                            &subject,
                            roles_ref,
                            council_ref,
                        )
                        .await?;
                        let status = match (&record, applied) {
                            (None, _) => StatusCode::NO_CONTENT,
                            (Some(_), Applied::Created) => StatusCode::CREATED,
                            _ => StatusCode::OK,
                        };
                        Ok((record.is_some(), status))
                    },
                )
                .await?,
            )
        }
        _ => None,
    };
    match outcome {
        Some(Ok(bound)) => Ok(Redirect::to(&format!(
            "{}/t/{tenant}/members?done={}",
            crate::PREFIX,
            if bound { "bound" } else { "removed" }
        ))
        .into_response()),
        other => {
            if let Some(Err(e)) = other {
                if e.errors().is_empty() {
                    errors.push(FormError::general(e.detail().to_string()));
                }
                for f in e.errors() {
                    errors.push(FormError::at(field_of(&f.field), f.reason.clone()));
                }
            }
            let scope = act::read_tenant(&console, &who, LIST, &tenant).await?;
            if !act::may(&console, &who, Method::PUT, PUT, Some(scope.tenant())) {
                return Err(PageError::forbidden(
                    "Your role in this alliance does not allow changing its members.",
                ));
            }
            render(
                &console,
                &who,
                &scope,
                typed,
                errors,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}
