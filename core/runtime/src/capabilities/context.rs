//! `guildhall:platform/context`: where and for whom the call runs. Needs no declaration.

use wasmtime::component::{HasSelf, Linker};

use crate::Principal;
use crate::bindings::context;
use crate::host::Host;

pub(super) fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    context::add_to_linker::<Host, HasSelf<Host>>(linker, |h| h)
}

impl context::Host for Host {
    async fn tenant(&mut self) -> wasmtime::Result<String> {
        Ok(self.call.tenant.to_string())
    }

    async fn council(&mut self) -> wasmtime::Result<String> {
        Ok(self.call.council.to_string())
    }

    async fn plugin(&mut self) -> wasmtime::Result<String> {
        Ok(self.plugin.to_string())
    }

    async fn version(&mut self) -> wasmtime::Result<String> {
        Ok(self.version.clone())
    }

    async fn request_id(&mut self) -> wasmtime::Result<String> {
        Ok(self.call.request_id.clone())
    }

    async fn caller(&mut self) -> wasmtime::Result<context::Principal> {
        Ok(match &self.call.principal {
            Principal::Anonymous => context::Principal::Anonymous,
            Principal::Subject { id, roles, council } => {
                context::Principal::Subject(context::Subject {
                    id: id.clone(),
                    roles: roles.clone(),
                    council: council.clone(),
                })
            }
        })
    }

    async fn config(&mut self) -> wasmtime::Result<String> {
        Ok(self.call.config.to_string())
    }

    async fn config_value(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.call.config.get(&key).map(ToString::to_string))
    }
}
