//! Access control for every `/api` route, in one layer.
//!
//! [`RULES`] says, for each route, what a caller needs: to be anyone authenticated, to hold a
//! platform permission, or to hold a permission in the tenant named in the path. The layer
//! authenticates the caller, decides, puts the [`Principal`] in the request for handlers,
//! and appends every state-changing call to the audit log with its outcome.
//!
//! **Architecture Invariant:** a route without a rule is refused (500) rather than left
//! open, and a test checks that every route in the OpenAPI document has one. Callers who
//! hold no role in a tenant get the same 404 as for a tenant that does not exist, so
//! tenants cannot be discovered; callers with a role there but not this permission get 403.

use std::net::IpAddr;

use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use guildhall_authz::{AuthError, Domain, Principal};
use guildhall_domain::TenantId;
use guildhall_store::{NewAuditEntry, TenantScope};

use crate::AppState;
use crate::error::ApiError;
use crate::middleware::{ClientRequestId, RequestId};

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any authenticated caller (handlers narrow what they show).
    Authenticated,
    /// A platform-wide permission: (object, action).
    Platform(&'static str, &'static str),
    /// A permission in the `{tenant}` of the path: (object, action).
    Tenant(&'static str, &'static str),
}

impl Access {
    /// How the OpenAPI document describes it, e.g. `tenant:installs:write`.
    pub fn describe(self) -> String {
        match self {
            Access::Authenticated => "authenticated".to_string(),
            Access::Platform(o, a) => format!("platform:{o}:{a}"),
            Access::Tenant(o, a) => format!("tenant:{o}:{a}"),
        }
    }
}

/// One route's rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The HTTP method.
    pub method: Method,
    /// The route as registered, e.g. `/api/v1/tenants/{tenant}`.
    pub path: &'static str,
    /// What it requires.
    pub access: Access,
    /// The audit action recorded for it; `None` for reads.
    pub audit: Option<&'static str>,
}

const fn rule(
    method: Method,
    path: &'static str,
    access: Access,
    audit: Option<&'static str>,
) -> Rule {
    Rule {
        method,
        path,
        access,
        audit,
    }
}

/// Every `/api/v1` route's rule.
pub const RULES: &[Rule] = &[
    rule(
        Method::POST,
        "/api/v1/tenants",
        Access::Platform("tenants", "create"),
        Some("tenants.create"),
    ),
    rule(Method::GET, "/api/v1/tenants", Access::Authenticated, None),
    rule(
        Method::GET,
        "/api/v1/tenants/{tenant}",
        Access::Tenant("tenant", "read"),
        None,
    ),
    rule(
        Method::PUT,
        "/api/v1/tenants/{tenant}/councils/{council}",
        Access::Tenant("tenant", "write"),
        Some("councils.put"),
    ),
    // A tenant's lifecycle: its archive holds everything it owns, so its own object; deleting
    // the whole tenant is the operator's alone (tenant administrators hold `tenant:*`, not
    // `lifecycle:delete`). A deleted tenant's chain is gone with it, so the deletion's
    // entry falls to the platform's chain (see `audit`).
    rule(
        Method::GET,
        "/api/v1/tenants/{tenant}/export",
        Access::Tenant("lifecycle", "export"),
        Some("tenants.export"),
    ),
    rule(
        Method::DELETE,
        "/api/v1/tenants/{tenant}",
        Access::Tenant("lifecycle", "delete"),
        Some("tenants.delete"),
    ),
    rule(
        Method::DELETE,
        "/api/v1/tenants/{tenant}/councils/{council}",
        Access::Tenant("councils", "delete"),
        Some("councils.delete"),
    ),
    rule(
        Method::PUT,
        "/api/v1/tenants/{tenant}/brand",
        Access::Tenant("tenant", "write"),
        Some("tenants.brand"),
    ),
    rule(
        Method::GET,
        "/api/v1/tenants/{tenant}/members",
        Access::Tenant("members", "read"),
        None,
    ),
    rule(
        Method::PUT,
        "/api/v1/tenants/{tenant}/members/{subject}",
        Access::Tenant("members", "write"),
        Some("members.put"),
    ),
    rule(
        Method::GET,
        "/api/v1/tenants/{tenant}/tokens",
        Access::Tenant("tokens", "read"),
        None,
    ),
    rule(
        Method::POST,
        "/api/v1/tenants/{tenant}/tokens",
        Access::Tenant("tokens", "write"),
        Some("tokens.create"),
    ),
    rule(
        Method::DELETE,
        "/api/v1/tenants/{tenant}/tokens/{token}",
        Access::Tenant("tokens", "write"),
        Some("tokens.revoke"),
    ),
    rule(
        Method::GET,
        "/api/v1/tenants/{tenant}/installs",
        Access::Tenant("installs", "read"),
        None,
    ),
    rule(
        Method::PUT,
        "/api/v1/tenants/{tenant}/installs/{plugin}",
        Access::Tenant("installs", "write"),
        Some("installs.put"),
    ),
    rule(
        Method::DELETE,
        "/api/v1/tenants/{tenant}/installs/{plugin}",
        Access::Tenant("installs", "write"),
        Some("installs.delete"),
    ),
    rule(
        Method::GET,
        "/api/v1/tenants/{tenant}/installs/{plugin}/retention",
        Access::Tenant("installs", "read"),
        None,
    ),
    rule(
        Method::PUT,
        "/api/v1/tenants/{tenant}/installs/{plugin}/retention",
        Access::Tenant("installs", "write"),
        Some("installs.retention"),
    ),
    rule(
        Method::GET,
        "/api/v1/tenants/{tenant}/installs/{plugin}/secrets",
        Access::Tenant("secrets", "read"),
        None,
    ),
    rule(
        Method::PUT,
        "/api/v1/tenants/{tenant}/installs/{plugin}/secrets/{name}",
        Access::Tenant("secrets", "write"),
        Some("secrets.put"),
    ),
    rule(
        Method::DELETE,
        "/api/v1/tenants/{tenant}/installs/{plugin}/secrets/{name}",
        Access::Tenant("secrets", "write"),
        Some("secrets.delete"),
    ),
    rule(
        Method::GET,
        "/api/v1/tenants/{tenant}/installs/{plugin}/councils/{council}/config",
        Access::Tenant("settings", "read"),
        None,
    ),
    rule(
        Method::PUT,
        "/api/v1/tenants/{tenant}/installs/{plugin}/councils/{council}/config",
        Access::Tenant("settings", "write"),
        Some("settings.put"),
    ),
    rule(
        Method::GET,
        "/api/v1/tenants/{tenant}/installs/{plugin}/schedules",
        Access::Tenant("schedules", "read"),
        None,
    ),
    rule(
        Method::POST,
        "/api/v1/tenants/{tenant}/installs/{plugin}/schedules/{name}/run",
        Access::Tenant("schedules", "run"),
        Some("schedules.run"),
    ),
    rule(
        Method::GET,
        "/api/v1/tenants/{tenant}/audit",
        Access::Tenant("audit", "read"),
        None,
    ),
    rule(
        Method::GET,
        "/api/v1/tenants/{tenant}/usage",
        Access::Tenant("usage", "read"),
        None,
    ),
    rule(
        Method::GET,
        "/api/v1/tenants/{tenant}/kpis",
        Access::Tenant("kpis", "read"),
        None,
    ),
    // Citizens' comments: free text that may hold personal data, so not with the KPIs.
    rule(
        Method::GET,
        "/api/v1/tenants/{tenant}/feedback",
        Access::Tenant("feedback", "read"),
        None,
    ),
    // Subject requests return residents' personal data: their own object.
    rule(
        Method::POST,
        "/api/v1/tenants/{tenant}/subject-requests",
        Access::Tenant("subject-requests", "write"),
        Some("subject-requests.create"),
    ),
    rule(
        Method::GET,
        "/api/v1/tenants/{tenant}/subject-requests",
        Access::Tenant("subject-requests", "read"),
        None,
    ),
    rule(
        Method::GET,
        "/api/v1/tenants/{tenant}/subject-requests/{request}",
        Access::Tenant("subject-requests", "read"),
        None,
    ),
    rule(Method::GET, "/api/v1/plugins", Access::Authenticated, None),
    rule(
        Method::GET,
        "/api/v1/plugins/{plugin}",
        Access::Authenticated,
        None,
    ),
    rule(
        Method::GET,
        "/api/v1/plugins/{plugin}/versions/{version}",
        Access::Authenticated,
        None,
    ),
    rule(
        Method::POST,
        "/api/v1/plugins/{plugin}/versions",
        Access::Platform("catalogue", "publish"),
        Some("catalogue.publish"),
    ),
    rule(
        Method::POST,
        "/api/v1/plugins/{plugin}/versions/{version}/yank",
        Access::Platform("catalogue", "yank"),
        Some("catalogue.yank"),
    ),
    // Owners and signing keys: the ownership rule is in the operation (store), so any
    // authenticated caller reaches it and a non-owner gets 403 there.
    rule(
        Method::GET,
        "/api/v1/plugins/{plugin}/owners",
        Access::Authenticated,
        None,
    ),
    rule(
        Method::PUT,
        "/api/v1/plugins/{plugin}/owners/{subject}",
        Access::Authenticated,
        Some("catalogue.owners.add"),
    ),
    rule(
        Method::DELETE,
        "/api/v1/plugins/{plugin}/owners/{subject}",
        Access::Authenticated,
        Some("catalogue.owners.remove"),
    ),
    rule(
        Method::GET,
        "/api/v1/publisher-keys",
        Access::Authenticated,
        None,
    ),
    rule(
        Method::PUT,
        "/api/v1/publisher-keys/{name}",
        Access::Platform("catalogue", "publish"),
        Some("catalogue.keys.put"),
    ),
    rule(
        Method::DELETE,
        "/api/v1/publisher-keys/{name}",
        Access::Platform("catalogue", "publish"),
        Some("catalogue.keys.delete"),
    ),
];

/// Detail a handler adds to its route's audit entry (what an export wrote, what a
/// deletion removed), as a response extension the layer reads before recording.
#[derive(Debug, Clone)]
pub struct AuditDetail(pub serde_json::Map<String, serde_json::Value>);

/// The rule for a route, if it has one.
pub fn rule_for(method: &Method, path: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.method == *method && r.path == path)
}

/// The 405 for a method `route` does not have, naming the ones it has.
fn method_not_allowed(method: &Method, route: &str) -> ApiError {
    let mut allowed: Vec<&str> = RULES
        .iter()
        .filter(|r| r.path == route)
        .map(|r| r.method.as_str())
        .collect();
    if allowed.contains(&"GET") {
        allowed.push("HEAD");
    }
    let allow = allowed.join(", ");
    ApiError::from_status(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed here; this route accepts {allow}"),
    )
    .with_header(
        header::ALLOW,
        HeaderValue::from_str(&allow).unwrap_or(HeaderValue::from_static("GET")),
    )
}

/// The 404 for a tenant the caller cannot see, the same whether it exists or not.
pub(crate) fn no_tenant(tenant: &str) -> ApiError {
    ApiError::not_found(format!("no tenant {tenant}"))
}

fn unauthenticated(detail: impl Into<String>) -> ApiError {
    ApiError::from_status(StatusCode::UNAUTHORIZED, detail)
        .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
}

fn auth_error(e: AuthError) -> ApiError {
    match e {
        AuthError::RateLimited(wait) => {
            ApiError::from_status(StatusCode::TOO_MANY_REQUESTS, e.to_string()).with_header(
                header::RETRY_AFTER,
                HeaderValue::from(wait.as_secs().max(1)),
            )
        }
        AuthError::Store(e) => ApiError::from(e),
        // The identity provider's keys could not be fetched: not the caller's fault.
        AuthError::Oidc(guildhall_authz::OidcError::Jwks(cause)) => ApiError::unavailable(
            "the identity provider's signing keys are unavailable; try again shortly",
            cause,
        ),
        other => unauthenticated(other.to_string()),
    }
}

/// Authenticates the caller of any request (API or gateway) from its headers. Failures
/// count against the presented token, or the client (behind a trusted proxy, the address it
/// forwarded for).
pub(crate) async fn principal(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    extensions: &axum::http::Extensions,
) -> Result<Principal, ApiError> {
    let client: Option<IpAddr> = state.trusted_proxies.client_of(headers, extensions);
    let header = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| unauthenticated("the Authorization header is not valid text"))?,
        ),
    };
    state
        .authz
        .authenticate(header, client)
        .await
        .map_err(auth_error)
}

/// The layer: authenticate, decide, run, audit.
pub async fn enforce(
    State(state): State<AppState>,
    params: RawPathParams,
    request: Request,
    next: Next,
) -> Response {
    let tenant_param = params
        .iter()
        .find(|(name, _)| *name == "tenant")
        .map(|(_, value)| value.to_string());
    match decide(&state, tenant_param, request, next).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn decide(
    state: &AppState,
    tenant_param: Option<String>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    // HEAD is answered by the GET handler, so it is decided as GET.
    let method = if request.method() == Method::HEAD {
        Method::GET
    } else {
        request.method().clone()
    };
    let rule = rule_for(&method, &route);
    if rule.is_none() && !RULES.iter().any(|r| r.path == route) {
        return Err(ApiError::internal(format!(
            "route {method} {route} has no access rule"
        )));
    }
    // Every method is authenticated first, so an anonymous caller learns nothing from which
    // methods a path has.
    let principal = principal(state, request.headers(), request.extensions()).await?;
    if principal.is_anonymous() {
        return Err(unauthenticated(
            "this route needs a bearer token or an identity token",
        ));
    }
    let Some(rule) = rule else {
        return Err(method_not_allowed(request.method(), &route));
    };
    // The tenant of a tenant route, looked up once here for the decision, the handler (the
    // `Scope` extractor) and the audit entry.
    let (scope, decision) =
        authorize(state, &principal, rule.access, tenant_param.as_deref()).await?;
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let client_request_id = request
        .extensions()
        .get::<ClientRequestId>()
        .map(|r| r.0.clone());
    let path = request.uri().path().to_string();
    let refused = decision.is_err();
    // A refusal is recorded in the tenant's chain only for a caller who holds a role there
    // (403). A caller the tenant is hidden from (404) writes nothing into that tenant's
    // chain: the attempt goes to the platform's, naming the tenant.
    let chain = match &decision {
        Err(e) if e.status() == StatusCode::NOT_FOUND => None,
        _ => scope.clone(),
    };
    let response = match decision {
        Ok(()) => {
            request.extensions_mut().insert(principal.clone());
            if let Some(scope) = scope {
                request.extensions_mut().insert(scope);
            }
            next.run(request).await
        }
        Err(e) => e.into_response(),
    };
    // Refusals are recorded up to a quota per principal, so nobody can flood a chain with
    // requests that change nothing.
    let record = rule.audit.is_some() && (!refused || state.authz.note_refusal(&principal));
    if let (Some(action), true) = (rule.audit, record) {
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut detail = serde_json::json!({ "method": rule.method.as_str(), "path": path });
        if let Some(location) = location {
            detail["location"] = location.into();
        }
        if let Some(id) = client_request_id {
            detail["client_request_id"] = id.into();
        }
        if let Some(AuditDetail(extra)) = response.extensions().get::<AuditDetail>() {
            for (key, value) in extra {
                detail[key.as_str()] = value.clone();
            }
        }
        if chain.is_none()
            && let Some(tenant) = &tenant_param
        {
            detail["tenant"] = tenant.as_str().into();
        }
        audit(
            state,
            &principal,
            action,
            chain.as_ref(),
            &path,
            &request_id,
            response.status(),
            detail,
        )
        .await?;
    }
    Ok(response)
}

/// The one access decision, for the API's layer and the console alike: may `principal`
/// have `access`, with `tenant` the tenant it names (for [`Access::Tenant`]). Returns the
/// tenant's scope when one was looked up, and the decision: a tenant the caller holds no
/// role in is the same 404 as one that does not exist; a role without the permission is
/// 403. An `Err` is the database failing, not a refusal.
pub async fn authorize(
    state: &AppState,
    principal: &Principal,
    access: Access,
    tenant: Option<&str>,
) -> Result<(Option<TenantScope>, Result<(), ApiError>), ApiError> {
    state.authz.refresh().await?;
    let mut scope: Option<TenantScope> = None;
    let decision = match access {
        Access::Authenticated => {
            if principal.is_anonymous() {
                Err(unauthenticated("this needs a signed-in caller"))
            } else {
                Ok(())
            }
        }
        Access::Platform(object, action) => {
            if state
                .authz
                .allowed(principal, Domain::Platform, object, action)
            {
                Ok(())
            } else {
                Err(ApiError::from_status(
                    StatusCode::FORBIDDEN,
                    format!("this needs the platform permission {object}:{action}"),
                ))
            }
        }
        Access::Tenant(object, action) => {
            let raw = tenant.unwrap_or_default();
            match TenantId::parse(raw.to_string()) {
                Err(_) => Err(no_tenant(raw)),
                Ok(tenant) => {
                    scope = state.store.scope(&tenant).await?;
                    if scope.is_none() {
                        Err(no_tenant(raw))
                    } else if state.authz.allowed(
                        principal,
                        Domain::Tenant(&tenant),
                        object,
                        action,
                    ) {
                        Ok(())
                    } else if !state.authz.holds_role_in(principal, &tenant) {
                        Err(no_tenant(raw))
                    } else {
                        Err(ApiError::from_status(
                            StatusCode::FORBIDDEN,
                            format!("your roles in {tenant} do not allow {object}:{action}"),
                        ))
                    }
                }
            }
        }
    };
    Ok((scope, decision))
}

/// Appends a state-changing call to its tenant's chain (or the platform's), before the
/// response leaves: a change the caller sees acknowledged is on record.
#[allow(clippy::too_many_arguments)]
pub async fn audit(
    state: &AppState,
    principal: &Principal,
    action: &str,
    chain: Option<&TenantScope>,
    path: &str,
    request_id: &str,
    status: StatusCode,
    detail: serde_json::Value,
) -> Result<(), ApiError> {
    let object = path.strip_prefix("/api/v1/").unwrap_or(path);
    let object = match chain {
        Some(scope) => object
            .strip_prefix(&format!("tenants/{}/", scope.tenant()))
            .unwrap_or(object),
        None => object,
    };
    let entry = NewAuditEntry {
        actor: principal.subject(),
        action,
        object,
        outcome: status.as_str(),
        request_id,
        detail,
    };
    let appended = match chain {
        Some(scope) => match state.store.audit(scope).append(entry.clone()).await {
            // The tenant was deleted meanwhile (by this request, or by another while this
            // one ran): its chain is gone, so the platform's records the call, naming it.
            Err(e) if e.is_tenant_gone() => {
                let mut entry = entry;
                entry.detail["tenant"] = scope.tenant().as_str().into();
                state.store.platform_audit().append(entry).await
            }
            other => other,
        },
        None => state.store.platform_audit().append(entry).await,
    };
    appended.map(|_| ()).map_err(|e| {
        if e.is_transient() {
            ApiError::from(e)
        } else {
            ApiError::internal(format!(
                "the audit log could not record {action} on {object}: {e}"
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_openapi_operation_has_a_rule() {
        let doc = crate::openapi();
        let mut missing = Vec::new();
        for (path, item) in &doc.paths.paths {
            if !path.starts_with("/api/v1/") {
                continue;
            }
            let methods = [
                (Method::GET, item.get.is_some()),
                (Method::PUT, item.put.is_some()),
                (Method::POST, item.post.is_some()),
                (Method::DELETE, item.delete.is_some()),
                (Method::PATCH, item.patch.is_some()),
            ];
            for (method, present) in methods {
                if present && rule_for(&method, path).is_none() {
                    missing.push(format!("{method} {path}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "routes without an access rule: {missing:?}"
        );
    }

    #[test]
    fn every_rule_names_a_route() {
        let doc = crate::openapi();
        for rule in RULES {
            assert!(
                doc.paths.paths.contains_key(rule.path),
                "rule for {} {} matches no route",
                rule.method,
                rule.path
            );
        }
    }
}

/// Answers plugins' `authz` import with the same enforcer as the API, for the calling
/// principal in the calling tenant. A plugin's objects are its own: `object` is checked
/// as `plugin:<plugin>:<object>`, so one plugin's grants never cover another's.
#[derive(Debug, Clone)]
pub struct PluginAuthorizer(pub guildhall_authz::Authz);

impl guildhall_runtime::Authorizer for PluginAuthorizer {
    fn allowed(&self, q: guildhall_runtime::AuthzQuestion<'_>) -> bool {
        // No roles here: anonymous, none in the tenant, or limited to another council.
        if !q.principal.acts_in(q.council) {
            return false;
        }
        let object = format!("plugin:{}:{}", q.plugin, q.object);
        self.0
            .allowed_subject(q.principal.subject(), q.tenant, &object, q.action)
    }
}
