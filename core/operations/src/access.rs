//! Who may act in a tenant: council checks, member bindings and tokens, shared by the API,
//! the console and `guildhall token create`.

use guildhall_authz::{Authz, TokenRequest};
use guildhall_domain::{CouncilId, IssuerId, Role, Subject};
use guildhall_store::{Applied, MemberRecord, Store, TenantScope, TokenRecord};

use crate::Error;

/// The subject a member binding names: a whole subject (`oidc:<issuer id>:<sub>`, or
/// `token:<id>`), or an identity provider's `sub` with `issuer` naming the provider. A
/// whole subject and an `issuer` that disagree are refused.
pub fn member_subject(subject: &str, issuer: Option<&str>) -> Result<Subject, Error> {
    let invalid = |field: &str, reason: String| Error::field(field, reason.clone(), reason);
    if subject.starts_with("oidc:") || subject.starts_with("token:") {
        let parsed = Subject::parse(subject).map_err(|e| invalid("subject", e.to_string()))?;
        if let (Some(named), Some((issuer, _))) = (issuer, parsed.oidc_parts())
            && named != issuer
        {
            return Err(invalid(
                "issuer",
                format!("the body names issuer {named:?} but the subject names {issuer:?}"),
            ));
        }
        return Ok(parsed);
    }
    let Some(issuer) = issuer else {
        return Err(invalid(
            "issuer",
            "name the identity provider: `issuer` in the body, or the subject as \
             oidc:<issuer id>:<sub>"
                .to_string(),
        ));
    };
    let issuer = IssuerId::parse(issuer).map_err(|e| invalid("issuer", e.to_string()))?;
    Subject::oidc(&issuer, subject).map_err(|e| invalid("subject", e.to_string()))
}

/// Refuses a council the tenant does not have, naming `field`.
pub async fn ensure_council(
    store: &Store,
    scope: &TenantScope,
    council: &CouncilId,
    field: &str,
) -> Result<(), Error> {
    if store.councils(scope).ids().await?.contains(council) {
        Ok(())
    } else {
        Err(Error::field(
            field,
            format!("no council {council} in this tenant"),
            format!("no council {council} in {}", scope.tenant()),
        ))
    }
}

/// Sets `subject`'s roles in the tenant, limited to `council` when given; no roles removes
/// the binding (then the record is `None`).
pub async fn bind_member(
    authz: &Authz,
    store: &Store,
    scope: &TenantScope,
    subject: &Subject,
    roles: &[Role],
    council: Option<&CouncilId>,
) -> Result<(Applied, Option<MemberRecord>), Error> {
    if let Some(council) = council {
        ensure_council(store, scope, council, "council").await?;
    }
    Ok(authz.put_member(scope, subject, roles, council).await?)
}

/// Mints a token; its council, when given, must be one of the tenant's. Returns the secret
/// (shown once) and the record.
pub async fn create_token(
    authz: &Authz,
    store: &Store,
    scope: Option<&TenantScope>,
    request: TokenRequest<'_>,
) -> Result<(String, TokenRecord), Error> {
    if let (Some(scope), Some(council)) = (scope, request.council) {
        ensure_council(store, scope, council, "council").await?;
    }
    Ok(authz.create_token(request).await?)
}
