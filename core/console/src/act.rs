//! The console acts through the API's rules: each page names the API route it mirrors, and
//! the decision and the audit entry are exactly that route's ([`guildhall_api::access`]).
//!
//! **Architecture Invariant:** a console page reads or changes nothing before
//! [`read`] or [`write`] has asked the access decision of the API route it mirrors, and
//! every write is recorded in the audit log as that route, with `"via": "console"`.

use std::future::Future;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use guildhall_api::ApiError;
use guildhall_api::access::{self, Access};
use guildhall_api::middleware::RequestId;
use guildhall_authz::Domain;
use guildhall_domain::TenantId;
use guildhall_store::TenantScope;

use crate::Console;
use crate::assets::Assets;
use crate::render::{Chrome, Nav, PageError};
use crate::session::SignedIn;

/// The request's id, for audit entries.
#[derive(Debug, Clone, Default)]
pub struct Req(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Req {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Req(parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default()))
    }
}

fn rule(method: &Method, route: &'static str) -> &'static access::Rule {
    access::rule_for(method, route)
        .unwrap_or_else(|| panic!("the console mirrors {method} {route}, which has no rule"))
}

/// May the signed-in person read what `GET route` shows, for `tenant`? Returns the
/// tenant's scope for tenant routes. A refusal is the same page as the API's answer: a
/// tenant they hold no role in is "not found".
pub async fn read(
    console: &Console,
    who: &SignedIn,
    route: &'static str,
    tenant: Option<&str>,
) -> Result<Option<TenantScope>, PageError> {
    let rule = rule(&Method::GET, route);
    let (scope, decision) =
        access::authorize(&console.app, &who.principal, rule.access, tenant).await?;
    decision?;
    Ok(scope)
}

/// [`read`] for a page about one tenant: its scope, or "not found" (as the API answers
/// for a tenant the person holds no role in).
pub async fn read_tenant(
    console: &Console,
    who: &SignedIn,
    route: &'static str,
    tenant: &str,
) -> Result<TenantScope, PageError> {
    read(console, who, route, Some(tenant))
        .await?
        .ok_or_else(PageError::not_found)
}

/// Whether the signed-in person may read `GET route` for `tenant`, without failing: for
/// links and sections shown only to those who may follow them. Call after a [`read`] or
/// [`write`] in the same request (they refresh the rules).
pub fn may(
    console: &Console,
    who: &SignedIn,
    method: Method,
    route: &'static str,
    tenant: Option<&TenantId>,
) -> bool {
    match (rule(&method, route).access, tenant) {
        (Access::Authenticated, _) => true,
        (Access::Platform(object, action), _) => {
            console
                .app
                .authz
                .allowed(&who.principal, Domain::Platform, object, action)
        }
        (Access::Tenant(object, action), Some(tenant)) => {
            console
                .app
                .authz
                .allowed(&who.principal, Domain::Tenant(tenant), object, action)
        }
        (Access::Tenant(..), None) => false,
    }
}

/// Performs a change as the API route `method route` (at the concrete `api_path`) would:
/// the same decision, then `op`, then the same audit entry. A refusal is an `Err` page (and
/// is recorded within the same quota as the API's refusals). The operation's own failure
/// (invalid input, a conflict) comes back as `Ok(Err(_))` for the page to show beside the
/// form, and is recorded too.
#[allow(clippy::too_many_arguments)]
pub async fn write<T, F, Fut>(
    console: &Console,
    who: &SignedIn,
    req: &Req,
    method: Method,
    route: &'static str,
    api_path: &str,
    tenant: Option<&str>,
    op: F,
) -> Result<Result<T, ApiError>, PageError>
where
    F: FnOnce(Option<TenantScope>) -> Fut,
    Fut: Future<Output = Result<(T, StatusCode), ApiError>>,
{
    write_located(
        console,
        who,
        req,
        method,
        route,
        api_path,
        tenant,
        op,
        |_| None,
    )
    .await
}

/// [`write`] for a route whose answer names what it created (`Location`), which the API
/// records in the audit entry's detail: `locate` gives that path from the operation's
/// value.
#[allow(clippy::too_many_arguments)]
pub async fn write_located<T, F, Fut>(
    console: &Console,
    who: &SignedIn,
    req: &Req,
    method: Method,
    route: &'static str,
    api_path: &str,
    tenant: Option<&str>,
    op: F,
    locate: impl FnOnce(&T) -> Option<String>,
) -> Result<Result<T, ApiError>, PageError>
where
    F: FnOnce(Option<TenantScope>) -> Fut,
    Fut: Future<Output = Result<(T, StatusCode), ApiError>>,
{
    let rule = rule(&method, route);
    let action = rule
        .audit
        .unwrap_or_else(|| panic!("{method} {route} changes state but has no audit action"));
    let (scope, decision) =
        access::authorize(&console.app, &who.principal, rule.access, tenant).await?;
    let mut detail = serde_json::json!({
        "method": method.as_str(),
        "path": api_path,
        "via": "console",
    });
    if let Err(refusal) = decision {
        // As in the API: a caller the tenant is hidden from writes into the platform's
        // chain, naming the tenant; one holding a role there, into the tenant's.
        let chain = if refusal.status() == StatusCode::NOT_FOUND {
            if let Some(tenant) = tenant {
                detail["tenant"] = tenant.into();
            }
            None
        } else {
            scope
        };
        if console.app.authz.note_refusal(&who.principal) {
            access::audit(
                &console.app,
                &who.principal,
                action,
                chain.as_ref(),
                api_path,
                &req.0,
                refusal.status(),
                detail,
            )
            .await?;
        }
        return Err(refusal.into());
    }
    let outcome = op(scope.clone()).await;
    let status = match &outcome {
        Ok((value, status)) => {
            if let Some(location) = locate(value) {
                detail["location"] = location.into();
            }
            *status
        }
        Err(e) => e.status(),
    };
    access::audit(
        &console.app,
        &who.principal,
        action,
        scope.as_ref(),
        api_path,
        &req.0,
        status,
        detail,
    )
    .await?;
    match outcome {
        Ok((value, _)) => Ok(Ok(value)),
        Err(e) if e.status().is_server_error() => Err(e.into()),
        Err(e) => Ok(Err(e)),
    }
}

/// Which section of the console a page is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The list of alliances.
    Alliances,
    /// The catalogue.
    Catalogue,
    /// The signed-in person's own plugins.
    Plugins,
    /// The platform's tenants and health.
    Platform,
    /// A page of one alliance: which of its sections.
    Tenant(&'static str),
}

/// The alliance sections and the API route whose read permission shows each.
const TENANT_SECTIONS: &[(&str, &str, &str)] = &[
    ("overview", "Overview", "/api/v1/tenants/{tenant}"),
    ("installs", "Services", "/api/v1/tenants/{tenant}/installs"),
    ("members", "Members", "/api/v1/tenants/{tenant}/members"),
    ("tokens", "Tokens", "/api/v1/tenants/{tenant}/tokens"),
    ("usage", "Usage", "/api/v1/tenants/{tenant}/usage"),
    ("kpis", "Performance", "/api/v1/tenants/{tenant}/kpis"),
    ("audit", "Audit log", "/api/v1/tenants/{tenant}/audit"),
    (
        "subject-requests",
        "Data protection",
        "/api/v1/tenants/{tenant}/subject-requests",
    ),
];

/// The chrome of a signed-in page: navigation shows only what this person may open.
pub fn chrome(
    console: &Console,
    who: &SignedIn,
    title: impl Into<String>,
    tenant: Option<&TenantId>,
    section: Section,
) -> Chrome {
    let prefix = crate::PREFIX;
    let mut nav = vec![
        Nav {
            text: "Alliances".into(),
            href: prefix.to_string(),
            active: matches!(section, Section::Alliances | Section::Tenant(_)),
        },
        Nav {
            text: "Catalogue".into(),
            href: format!("{prefix}/catalogue"),
            active: section == Section::Catalogue,
        },
    ];
    nav.push(Nav {
        text: "Your plugins".into(),
        href: format!("{prefix}/plugins"),
        active: section == Section::Plugins,
    });
    if may(console, who, Method::POST, "/api/v1/tenants", None) {
        nav.push(Nav {
            text: "Platform".into(),
            href: format!("{prefix}/platform"),
            active: section == Section::Platform,
        });
    }
    let tenant_nav = tenant
        .map(|t| {
            TENANT_SECTIONS
                .iter()
                .filter(|(_, _, route)| may(console, who, Method::GET, route, Some(t)))
                .map(|(key, text, _)| Nav {
                    text: (*text).to_string(),
                    href: if *key == "overview" {
                        format!("{prefix}/t/{t}")
                    } else {
                        format!("{prefix}/t/{t}/{key}")
                    },
                    active: section == Section::Tenant(key),
                })
                .collect()
        })
        .unwrap_or_default();
    Chrome {
        title: title.into(),
        assets: Assets::get().base(),
        csrf: who.csrf().to_string(),
        user: Some(who.display()),
        tenant: tenant.map(|t| t.to_string()),
        nav,
        tenant_nav,
        has_errors: false,
    }
}
