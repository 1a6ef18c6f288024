//! `guildhall:platform/authz`: ask the platform's policy whether the caller may do
//! something. The decision comes from an [`Authorizer`] the server wires in.

use guildhall_domain::TenantId;
use wasmtime::component::{HasSelf, Linker};

use crate::Principal;
use crate::bindings::authz;
use crate::host::Host;

/// Decides whether a principal may perform an action on an object in a tenant.
pub trait Authorizer: Send + Sync + 'static {
    /// `true` when allowed.
    fn allowed(&self, tenant: &TenantId, principal: &Principal, action: &str, object: &str)
    -> bool;
}

/// Refuses everything: the fail-closed decision until a policy engine is wired in.
#[derive(Debug, Clone, Copy, Default)]
pub struct DenyAll;

impl Authorizer for DenyAll {
    fn allowed(&self, _: &TenantId, _: &Principal, _: &str, _: &str) -> bool {
        false
    }
}

pub(super) fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    authz::add_to_linker::<Host, HasSelf<Host>>(linker, |h| h)
}

impl authz::Host for Host {
    async fn allowed(&mut self, action: String, object: String) -> wasmtime::Result<bool> {
        Ok(self.services.authorizer.allowed(
            self.call.scope.tenant(),
            &self.call.principal,
            &action,
            &object,
        ))
    }
}
