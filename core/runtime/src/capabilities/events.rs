//! `guildhall:platform/events`: named events with a JSON payload, recorded per tenant.

use guildhall_store::NewEvent;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::events;
use crate::host::Host;

/// The largest payload, in bytes.
pub(crate) const MAX_PAYLOAD: usize = 64 << 10;

pub(super) fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    events::add_to_linker::<Host, HasSelf<Host>>(linker, |h| h)
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

impl events::Host for Host {
    async fn emit(
        &mut self,
        name: String,
        payload: String,
    ) -> wasmtime::Result<Result<(), events::Error>> {
        if !valid_name(&name) {
            return Ok(Err(events::Error::InvalidName(
                name.chars().take(80).collect(),
            )));
        }
        if payload.len() > MAX_PAYLOAD {
            return Ok(Err(events::Error::TooLarge(payload.len() as u64)));
        }
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&payload) {
            return Ok(Err(events::Error::InvalidPayload(e.to_string())));
        }
        let store = &self.services.store;
        let recorded = store
            .events(&self.call.scope)
            .record(NewEvent {
                council: &self.call.council,
                plugin: &self.plugin,
                version: &self.version,
                name: &name,
                payload: &payload,
                request_id: &self.call.request_id,
                actor: match &self.call.principal {
                    crate::Principal::Anonymous => "anonymous",
                    crate::Principal::Subject { id, .. } => id,
                },
            })
            .await;
        Ok(match recorded {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::error!(
                    tenant = %self.call.scope.tenant(),
                    plugin = %self.plugin,
                    request_id = %self.call.request_id,
                    error = %e,
                    "recording a plugin event failed"
                );
                Err(events::Error::Unavailable(
                    "the platform's storage failed".into(),
                ))
            }
        })
    }
}
