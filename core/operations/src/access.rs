//! Who may act in a tenant: council checks, member bindings and tokens, shared by the API,
//! the console and `guildhall token create`.

use guildhall_authz::{Authz, TokenRequest};
use guildhall_domain::{CouncilId, Role, Subject};
use guildhall_store::{Applied, MemberRecord, Store, TenantScope, TokenRecord};

use crate::Error;

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
