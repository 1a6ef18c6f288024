//! `guildhall:platform/context`: where and for whom the call runs. Needs no declaration.

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use super::{CallSetup, prepared};
use crate::Caller;
use crate::bindings::context;
use crate::host::{Call, Host};

/// The per-call state: the call's identity, which it only reads.
pub(crate) struct State {
    call: Arc<Call>,
}

pub(super) fn prepare(setup: &CallSetup<'_>) -> State {
    State {
        call: Arc::clone(setup.call),
    }
}

pub(super) fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    context::add_to_linker::<Host, HasSelf<State>>(linker, |h| {
        prepared(&mut h.capabilities.context)
    })
}

impl context::Host for State {
    async fn tenant(&mut self) -> wasmtime::Result<String> {
        Ok(self.call.context.tenant.to_string())
    }

    async fn council(&mut self) -> wasmtime::Result<String> {
        Ok(self.call.context.council.to_string())
    }

    async fn plugin(&mut self) -> wasmtime::Result<String> {
        Ok(self.call.plugin.to_string())
    }

    async fn version(&mut self) -> wasmtime::Result<String> {
        Ok(self.call.version.to_string())
    }

    async fn request_id(&mut self) -> wasmtime::Result<String> {
        Ok(self.call.context.request_id.clone())
    }

    async fn caller(&mut self) -> wasmtime::Result<context::Principal> {
        Ok(match &self.call.context.principal {
            Caller::Anonymous => context::Principal::Anonymous,
            Caller::Subject { id, roles, council } => {
                context::Principal::Subject(context::Subject {
                    id: id.clone(),
                    roles: roles.iter().map(|r| r.as_str().to_string()).collect(),
                    council: council.as_ref().map(ToString::to_string),
                })
            }
        })
    }

    async fn config(&mut self) -> wasmtime::Result<String> {
        Ok(self.call.context.config.to_string())
    }

    async fn config_value(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.call.context.config.get(&key).map(ToString::to_string))
    }

    async fn current_site(&mut self) -> wasmtime::Result<context::Site> {
        let site = &self.call.context.site;
        Ok(context::Site {
            tenant_name: site.tenant_name.clone(),
            council_name: site.council_name.clone(),
            assets: site.assets.clone(),
            brand_stylesheet: site.brand_stylesheet.clone(),
            logo: site.logo.clone(),
            contact_url: site.contact_url.clone(),
            accessibility_url: site.accessibility_url.clone(),
            base_path: site.base_path.clone(),
            feedback_path: site.feedback_path.clone(),
        })
    }
}
