//! Management: minting and revoking tokens, binding members, and moving bindings made
//! before subjects were namespaced.

use super::*;

impl Authz {
    /// Mints a token: stores its hash and its role binding, and returns the token text
    /// (to show once) with its record.
    pub async fn create_token(
        &self,
        request: TokenRequest<'_>,
    ) -> Result<(String, TokenRecord), ManageError> {
        match (request.role.is_global(), request.tenant) {
            (true, Some(_)) => {
                return Err(ManageError::Invalid(format!(
                    "role {} is platform-wide and takes no tenant",
                    request.role
                )));
            }
            (false, None) => {
                return Err(ManageError::Invalid(format!(
                    "role {} needs a tenant",
                    request.role
                )));
            }
            _ => {}
        }
        if request.council.is_some() && request.role != Role::Officer {
            return Err(ManageError::Invalid(
                "only officer tokens can be limited to a council".to_string(),
            ));
        }
        if !(1..=MAX_TOKEN_DAYS).contains(&request.days) {
            return Err(ManageError::Invalid(format!(
                "a token lives from 1 to {MAX_TOKEN_DAYS} days, not {}",
                request.days
            )));
        }
        let name = request.name.trim();
        guildhall_domain::text::line("name", name, MAX_TOKEN_NAME)
            .map_err(|e| ManageError::Field("name", format!("a token's name {}", e.reason)))?;
        let secret = tokens::generate();
        let domain = request.tenant.map_or(PLATFORM, |t| t.as_str());
        let subject = token_subject(&secret.id);
        let record = self
            .inner
            .store
            .tokens()
            .create(NewToken {
                id: &secret.id,
                tenant: request.tenant,
                name,
                role: request.role,
                council: request.council,
                hash: &secret.hash,
                created_by: request.created_by,
                expires_at: OffsetDateTime::now_utc()
                    + time::Duration::days(i64::from(request.days)),
                binding: binding(&subject, request.role, domain),
            })
            .await?;
        Ok((secret.token, record))
    }

    /// Revokes a tenant's token and its binding.
    pub async fn revoke_token(
        &self,
        scope: &TenantScope,
        id: &str,
    ) -> Result<Option<TokenRecord>, ManageError> {
        let Some(record) = self.inner.store.tokens().find(id).await? else {
            return Ok(None);
        };
        let rule = binding(&token_subject(id), record.role, scope.tenant().as_str());
        Ok(self.inner.store.tokens().revoke(scope, id, &rule).await?)
    }

    /// Sets `subject`'s roles in a tenant; an empty list removes the binding. The subject
    /// must be an OIDC subject of a configured issuer that serves this tenant: tokens get
    /// their role when they are minted, and platform-wide roles are never given here.
    pub async fn put_member(
        &self,
        scope: &TenantScope,
        subject: &Subject,
        roles: &[Role],
        council: Option<&CouncilId>,
    ) -> Result<(guildhall_store::Applied, Option<MemberRecord>), ManageError> {
        if let Some(global) = roles.iter().find(|r| r.is_global()) {
            return Err(ManageError::Invalid(format!(
                "role {global} is platform-wide and cannot be given in a tenant"
            )));
        }
        if council.is_some() && roles.iter().any(|r| *r != Role::Officer) {
            return Err(ManageError::Invalid(
                "only officers can be limited to a council".to_string(),
            ));
        }
        let Some((issuer, _)) = subject.oidc_parts() else {
            return Err(ManageError::Invalid(
                "token subjects get their role when the token is created".to_string(),
            ));
        };
        let tenant = scope.tenant().as_str();
        // Removing a binding is allowed whatever the configuration says now, so bindings of
        // an issuer that was since removed or narrowed can still be cleaned up.
        if !roles.is_empty() {
            if !self.inner.oidc.knows_issuer(issuer) {
                return Err(ManageError::Field(
                    "issuer",
                    format!("no OpenID Connect issuer with id {issuer:?} is configured"),
                ));
            }
            if !self.inner.oidc.issuer_allows_tenant(issuer, tenant) {
                return Err(ManageError::Field(
                    "issuer",
                    format!("the issuer {issuer:?} does not serve tenant {tenant}"),
                ));
            }
        }
        let subject = subject.as_str();
        let old: Vec<RuleRow> = Role::ALL
            .iter()
            .filter(|r| !r.is_global())
            .map(|r| binding(subject, *r, tenant))
            .collect();
        let new: Vec<RuleRow> = roles.iter().map(|r| binding(subject, *r, tenant)).collect();
        Ok(self
            .inner
            .store
            .members(scope)
            .put(subject, roles, council, &old, &new)
            .await?)
    }
}

/// Moves member bindings made before subjects were namespaced (a bare `sub`) to
/// `oidc:<issuer id>:<sub>`, when exactly one configured issuer serves their tenant. A bare
/// subject matches no principal, so a binding that cannot be moved grants nothing; it is
/// named in a warning for an administrator to bind again with the issuer.
pub(crate) async fn rebind_legacy_members(store: &Store, oidc: &Oidc) -> Result<(), ManageError> {
    if !oidc.is_enabled() {
        // Without issuers no OIDC subject can call; the bindings wait for the configuration.
        return Ok(());
    }
    for tenant in store.tenants().list().await? {
        let Some(scope) = store.scope(&tenant.id).await? else {
            continue;
        };
        let members = store.members(&scope);
        for member in members.list().await? {
            if namespaced(&member.subject) {
                continue;
            }
            let issuers = oidc.issuers_for_tenant(tenant.id.as_str());
            let moved = match issuers.as_slice() {
                [issuer] => match Subject::oidc(issuer, &member.subject) {
                    Ok(subject) => members.rename(&member.subject, subject.as_str()).await?,
                    Err(_) => false,
                },
                _ => false,
            };
            if moved {
                tracing::info!(tenant = %tenant.id, "member binding moved to its issuer's namespace");
            } else {
                tracing::warn!(
                    tenant = %tenant.id,
                    issuers = issuers.len(),
                    "a member binding made before subjects named their issuer grants nothing \
                     until it is bound again as oidc:<issuer id>:<sub>"
                );
            }
        }
    }
    Ok(())
}

fn binding(subject: &str, role: Role, domain: &str) -> RuleRow {
    RuleRow::new("g", &[subject, role.casbin_name(), domain])
}

/// The role bindings that give `subject` `roles` in `tenant`, as member bindings are
/// stored: for restoring a tenant's members from an archive.
pub fn member_bindings(subject: &str, roles: &[Role], tenant: &TenantId) -> Vec<RuleRow> {
    roles
        .iter()
        .map(|role| binding(subject, *role, tenant.as_str()))
        .collect()
}
