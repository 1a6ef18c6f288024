//! Alliances and their councils: creating a tenant, adding or renaming a council, and
//! which tenants a principal may see, for the API, the console and the command line.

use guildhall_authz::{Authz, Principal};
use guildhall_domain::brand::Brand;
use guildhall_domain::tenant::{CouncilSpec, SpecError, TenantSpec};
use guildhall_store::{Applied, CouncilRecord, Store, TenantRecord, TenantScope};

use crate::{Error, FieldProblem};

/// A declaration's problem, naming its field.
fn invalid(e: SpecError) -> Error {
    Error::Invalid {
        detail: format!("invalid tenant: {e}"),
        fields: vec![FieldProblem {
            field: e.field,
            reason: e.reason,
        }],
    }
}

/// Creates a tenant with its councils, after the same checks as a tenant file. A tenant
/// that exists already is the store's `TenantExists`.
pub async fn create(store: &Store, spec: &TenantSpec) -> Result<TenantRecord, Error> {
    spec.validate().map_err(invalid)?;
    Ok(store.tenants().create(spec).await?)
}

/// Adds a council to the tenant, or changes its name and GSS code.
pub async fn put_council(
    store: &Store,
    scope: &TenantScope,
    spec: &CouncilSpec,
) -> Result<(Applied, CouncilRecord), Error> {
    spec.validate("").map_err(invalid)?;
    Ok(store.councils(scope).put(spec).await?)
}

/// Sets the alliance's brand on citizens' pages, which its councils take unless they set
/// their own.
pub async fn put_brand(
    store: &Store,
    scope: &TenantScope,
    brand: &Brand,
) -> Result<(Applied, TenantRecord), Error> {
    brand.validate("", false).map_err(invalid)?;
    Ok(store.tenants().put_brand(scope, brand).await?)
}

/// The tenants `principal` may see, by id: every tenant for operators, otherwise those
/// they hold a role in.
pub async fn visible(
    authz: &Authz,
    store: &Store,
    principal: &Principal,
) -> Result<Vec<TenantRecord>, Error> {
    let mut tenants = store.tenants().list().await?;
    if let Some(visible) = authz.tenants_of(principal) {
        tenants.retain(|t| visible.iter().any(|v| v == t.id.as_str()));
    }
    Ok(tenants)
}
