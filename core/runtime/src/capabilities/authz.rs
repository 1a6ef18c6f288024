//! `guildhall:platform/authz`: ask the platform's policy whether the caller may do
//! something. The decision comes from an [`Authorizer`] the server wires in.

use std::sync::Arc;

use guildhall_domain::{CouncilId, PluginName, TenantId};
use wasmtime::component::{HasSelf, Linker};

use super::{CallSetup, prepared};
use crate::Caller;
use crate::bindings::authz;
use crate::host::{Call, Host};

/// What a plugin asks: may the caller do `action` on `object`, here.
#[derive(Debug, Clone, Copy)]
pub struct AuthzQuestion<'a> {
    /// The calling tenant.
    pub tenant: &'a TenantId,
    /// The council the request is for.
    pub council: &'a CouncilId,
    /// The plugin asking; its objects are its own namespace.
    pub plugin: &'a PluginName,
    /// The caller.
    pub principal: &'a Caller,
    /// The action, e.g. `update-status`.
    pub action: &'a str,
    /// The object, e.g. `reports`.
    pub object: &'a str,
}

/// Decides whether a principal may perform an action on an object in a tenant.
pub trait Authorizer: Send + Sync + 'static {
    /// `true` when allowed.
    fn allowed(&self, question: AuthzQuestion<'_>) -> bool;
}

/// Refuses everything: for tools and benchmarks that run plugins without a policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct DenyAll;

impl Authorizer for DenyAll {
    fn allowed(&self, _: AuthzQuestion<'_>) -> bool {
        false
    }
}

/// The per-call state: the call's identity and the policy that answers.
pub(crate) struct State {
    call: Arc<Call>,
    authorizer: Arc<dyn Authorizer>,
}

pub(super) fn prepare(setup: &CallSetup<'_>) -> State {
    State {
        call: Arc::clone(setup.call),
        authorizer: Arc::clone(&setup.runtime.ports.authorizer),
    }
}

pub(super) fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    authz::add_to_linker::<Host, HasSelf<State>>(linker, |h| prepared(&mut h.capabilities.authz))
}

impl authz::Host for State {
    async fn allowed(&mut self, action: String, object: String) -> wasmtime::Result<bool> {
        let call = &self.call.context;
        Ok(self.authorizer.allowed(AuthzQuestion {
            tenant: &call.tenant,
            council: &call.council,
            plugin: &self.call.plugin,
            principal: &call.principal,
            action: &action,
            object: &object,
        }))
    }
}
