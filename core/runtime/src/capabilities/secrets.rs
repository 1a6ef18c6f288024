//! `guildhall:platform/secrets`: the values of the secrets a plugin's manifest declares,
//! set by the alliance's administrators and kept wherever the [`SecretsPort`] keeps them
//! (the server's is the platform's database, encrypted). The runtime answers only for
//! declared names, and never logs a value.

use std::collections::BTreeSet;
use std::sync::Arc;

use guildhall_domain::{CouncilId, PluginName, TenantId};
use wasmtime::component::{HasSelf, Linker};

use super::{CallSetup, PortFuture, prepared};
use crate::bindings::secrets;
use crate::host::{Call, Host};

/// Where install secrets are kept.
pub trait SecretsPort: Send + Sync + 'static {
    /// `plugin`'s secret `name` for `council`: the council's own value, else the install's,
    /// else `None`.
    fn get<'a>(
        &'a self,
        tenant: &'a TenantId,
        plugin: &'a PluginName,
        council: &'a CouncilId,
        name: &'a str,
    ) -> PortFuture<'a, Option<String>>;
}

/// Holds no secrets: for tools and benchmarks that run plugins without a keyring.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSecrets;

impl SecretsPort for NoSecrets {
    fn get<'a>(
        &'a self,
        _: &'a TenantId,
        _: &'a PluginName,
        _: &'a CouncilId,
        _: &'a str,
    ) -> PortFuture<'a, Option<String>> {
        Box::pin(async { Err("this platform has no secrets key configured (secrets.key)".into()) })
    }
}

/// The per-call state: the call's identity, the declared names and where values are kept.
pub(crate) struct State {
    call: Arc<Call>,
    declared: Arc<BTreeSet<String>>,
    port: Arc<dyn SecretsPort>,
}

pub(super) fn prepare(setup: &CallSetup<'_>) -> State {
    State {
        call: Arc::clone(setup.call),
        declared: Arc::clone(&setup.plugin.secrets),
        port: Arc::clone(&setup.runtime.ports.secrets),
    }
}

pub(super) fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    secrets::add_to_linker::<Host, HasSelf<State>>(linker, |h| {
        prepared(&mut h.capabilities.secrets)
    })
}

impl secrets::Host for State {
    async fn get(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<Option<String>, secrets::Error>> {
        if !self.declared.contains(&name) {
            let shown: String = name.chars().take(64).collect();
            return Ok(Err(secrets::Error::Undeclared(shown)));
        }
        let call = &self.call.context;
        match self
            .port
            .get(&call.tenant, &self.call.plugin, &call.council, &name)
            .await
        {
            Ok(value) => Ok(Ok(value)),
            Err(e) => {
                tracing::error!(
                    tenant = %call.tenant,
                    plugin = %self.call.plugin,
                    request_id = %call.request_id,
                    secret = %name,
                    error = %e,
                    "secret could not be read"
                );
                Ok(Err(secrets::Error::Unavailable(
                    "the platform could not read the secret; try again later".into(),
                )))
            }
        }
    }
}
