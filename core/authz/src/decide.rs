//! Decisions: may a principal do this here, which roles and tenants it has, and which
//! council it is limited to.

use super::*;

impl Authz {
    /// Whether a principal may act in `domain` at all: an OIDC subject only in the tenants
    /// its issuer serves, and on the platform only when its issuer is not limited to some
    /// tenants (so a council's provider can never reach a platform-wide role).
    fn may_act_in(&self, principal: &Principal, domain: Domain<'_>) -> bool {
        match (principal, domain) {
            (
                Principal::Authenticated {
                    credential: Credential::Oidc { issuer },
                    ..
                },
                Domain::Tenant(t),
            ) => self
                .inner
                .oidc
                .issuer_allows_tenant(issuer.as_str(), t.as_str()),
            (
                Principal::Authenticated {
                    credential: Credential::Oidc { issuer },
                    ..
                },
                Domain::Platform,
            ) => !self.inner.oidc.issuer_is_restricted(issuer.as_str()),
            (Principal::Anonymous, _) => false,
            (Principal::Authenticated { .. }, _) => true,
        }
    }

    /// Whether `principal` may do `action` on `object` in `domain`, by the rules as they
    /// were at the last [`refresh`](Self::refresh).
    pub fn allowed(
        &self,
        principal: &Principal,
        domain: Domain<'_>,
        object: &str,
        action: &str,
    ) -> bool {
        if !self.may_act_in(principal, domain) || !namespaced(principal.subject()) {
            return false;
        }
        self.loaded()
            .decide(principal.subject(), domain.as_str(), object, action)
    }

    /// Whether `subject`, already known to hold a role in `tenant`, may do `action` on
    /// `object` there. For plugins' `authz` import, whose caller was authenticated (and its
    /// issuer checked against the tenant) when the request arrived.
    pub fn allowed_subject(
        &self,
        subject: &str,
        tenant: &TenantId,
        object: &str,
        action: &str,
    ) -> bool {
        namespaced(subject)
            && self
                .loaded()
                .decide(subject, tenant.as_str(), object, action)
    }

    /// The roles `principal` holds in `tenant`, platform-wide ones included.
    pub fn roles_in(&self, principal: &Principal, tenant: &TenantId) -> Vec<Role> {
        if principal.is_anonymous() {
            return Vec::new();
        }
        let loaded = self.loaded();
        let enforcer = &loaded.enforcer;
        let mut roles = Vec::new();
        if self.may_act_in(principal, Domain::Platform) {
            roles.extend(
                enforcer
                    .get_roles_for_user(principal.subject(), Some(PLATFORM))
                    .into_iter()
                    .filter_map(|r| Role::from_casbin(&r)),
            );
        }
        if self.may_act_in(principal, Domain::Tenant(tenant)) {
            roles.extend(
                enforcer
                    .get_roles_for_user(principal.subject(), Some(tenant.as_str()))
                    .into_iter()
                    .filter_map(|r| Role::from_casbin(&r)),
            );
        }
        roles.sort();
        roles.dedup();
        roles
    }

    /// Whether `principal` holds any role bound in `tenant` itself (platform-wide roles do
    /// not count): such callers are told 403 rather than 404 when they lack a permission.
    pub fn holds_role_in(&self, principal: &Principal, tenant: &TenantId) -> bool {
        !principal.is_anonymous()
            && self.may_act_in(principal, Domain::Tenant(tenant))
            && !self
                .loaded()
                .enforcer
                .get_roles_for_user(principal.subject(), Some(tenant.as_str()))
                .is_empty()
    }

    /// The tenants in which `principal` holds a role (for listing), or `None` when it holds
    /// a platform-wide role that sees every tenant.
    pub fn tenants_of(&self, principal: &Principal) -> Option<Vec<String>> {
        if self.allowed(principal, Domain::Platform, "tenants", "list") {
            return None;
        }
        let loaded = self.loaded();
        let enforcer = &loaded.enforcer;
        let mut tenants: Vec<String> = enforcer
            .get_model()
            .get_model()
            .get("g")
            .and_then(|g| g.get("g"))
            .map(|g| {
                g.get_policy()
                    .iter()
                    .filter(|rule| rule.first().map(String::as_str) == Some(principal.subject()))
                    .filter_map(|rule| rule.get(2).cloned())
                    .filter(|d| d != PLATFORM)
                    .filter(|d| match principal {
                        Principal::Authenticated {
                            credential: Credential::Oidc { issuer },
                            ..
                        } => self.inner.oidc.issuer_allows_tenant(issuer.as_str(), d),
                        _ => true,
                    })
                    .collect()
            })
            .unwrap_or_default();
        tenants.sort();
        tenants.dedup();
        Some(tenants)
    }

    /// The council `principal` is limited to in this tenant, if any: an officer token's
    /// council, or the council of an OIDC subject's member binding.
    pub async fn council_limit(
        &self,
        principal: &Principal,
        scope: &TenantScope,
    ) -> Result<Option<String>, guildhall_store::Error> {
        match principal {
            Principal::Anonymous => Ok(None),
            Principal::Authenticated {
                credential: Credential::Token { record },
                ..
            } => Ok(record.council.clone()),
            Principal::Authenticated { subject, .. } => Ok(self
                .inner
                .store
                .members(scope)
                .get(subject)
                .await?
                .and_then(|m| m.council)),
        }
    }

    /// Who `principal` is to a service of `scope`'s tenant called for `council`: its
    /// subject, its roles in the tenant (none when its roles are limited to another
    /// council) and the council it is limited to. Rules changed on any replica hold.
    pub async fn caller(
        &self,
        principal: &Principal,
        scope: &TenantScope,
        council: &CouncilId,
    ) -> Result<guildhall_domain::Caller, ManageError> {
        let Principal::Authenticated { subject, .. } = principal else {
            return Ok(guildhall_domain::Caller::Anonymous);
        };
        self.refresh().await?;
        let limit = match self.council_limit(principal, scope).await? {
            None => None,
            Some(stored) => match CouncilId::parse(stored) {
                Ok(id) => Some(id),
                // A limit that names no valid council limits the caller to nothing.
                Err(_) => {
                    return Ok(guildhall_domain::Caller::Subject {
                        id: subject.clone(),
                        roles: Vec::new(),
                        council: None,
                    });
                }
            },
        };
        let roles = if limit.as_ref().is_some_and(|c| c != council) {
            Vec::new()
        } else {
            self.roles_in(principal, scope.tenant())
        };
        Ok(guildhall_domain::Caller::Subject {
            id: subject.clone(),
            roles,
            council: limit,
        })
    }
}
