//! `guildhall:platform/events`: named events with a JSON payload, recorded per tenant.
//!
//! Every event lands in the tenant's audit chain, so emitting is bounded: at most
//! `runtime.events_per_call` per call and `runtime.events_per_tenant_per_minute` per
//! tenant (per replica, in fixed one-minute windows). Past either the plugin gets
//! `unavailable` with a message starting `quota exceeded:` and nothing is recorded; the
//! WIT `error` variant is unchanged, so components built against it keep linking.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use guildhall_domain::{CouncilId, PluginName, TenantId};
use wasmtime::component::{HasSelf, Linker};

use super::{CallSetup, PortFuture, prepared};
use crate::bindings::events;
use crate::host::{Call, Host};

/// Where plugins' events are recorded. The server's records each in its tenant's events
/// and audit chain, in one transaction.
pub trait EventsPort: Send + Sync + 'static {
    /// Records `event`; the runtime has checked its name and payload and the quotas.
    fn record<'a>(&'a self, event: PluginEvent<'a>) -> PortFuture<'a, ()>;
}

/// An event a plugin emitted, with where and for whom it ran.
#[derive(Debug, Clone, Copy)]
pub struct PluginEvent<'a> {
    /// The calling tenant.
    pub tenant: &'a TenantId,
    /// The council the request was for.
    pub council: &'a CouncilId,
    /// The plugin that emitted it.
    pub plugin: &'a PluginName,
    /// The plugin's version.
    pub version: &'a str,
    /// The event's name (`[a-z0-9._-]`, 1 to 64 bytes).
    pub name: &'a str,
    /// JSON payload text, already checked to be JSON.
    pub payload: &'a str,
    /// The platform's request id.
    pub request_id: &'a str,
    /// Who the plugin acted for: the caller's subject, or `anonymous`.
    pub actor: &'a str,
}

/// The largest payload, in bytes.
pub(crate) const MAX_PAYLOAD: usize = 64 << 10;

/// The per-call state: the call's identity, where events are recorded, the tenant's
/// budget on this replica and what is left of the call's own.
pub(crate) struct State {
    call: Arc<Call>,
    port: Arc<dyn EventsPort>,
    tenant_quota: Arc<EventQuota>,
    /// `events.emit` calls this call may still make.
    left: u32,
    /// `runtime.events_per_call`, for the message once `left` is spent.
    per_call: u32,
}

pub(super) fn prepare(setup: &CallSetup<'_>) -> State {
    let per_call = setup.runtime.config.events_per_call;
    State {
        call: Arc::clone(setup.call),
        port: Arc::clone(&setup.runtime.ports.events),
        tenant_quota: Arc::clone(&setup.runtime.events),
        left: per_call,
        per_call,
    }
}

pub(super) fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    events::add_to_linker::<Host, HasSelf<State>>(linker, |h| prepared(&mut h.capabilities.events))
}

/// The per-tenant events budget of this replica: fixed one-minute windows, one entry per
/// tenant that has emitted (tenants are created by operators, so the map stays small).
#[derive(Debug)]
pub(crate) struct EventQuota {
    per_minute: u32,
    windows: Mutex<HashMap<TenantId, (Instant, u32)>>,
}

impl EventQuota {
    pub(crate) fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one event from `tenant`'s budget for this minute, or says when the budget
    /// is spent.
    pub(crate) fn take(&self, tenant: &TenantId, now: Instant) -> bool {
        let mut windows = self.windows.lock().expect("event quota poisoned");
        let (started, used) = windows.entry(tenant.clone()).or_insert((now, 0));
        if now.duration_since(*started) >= Duration::from_secs(60) {
            *started = now;
            *used = 0;
        }
        if *used >= self.per_minute {
            return false;
        }
        *used += 1;
        true
    }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

impl events::Host for State {
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
        let Some(left) = self.left.checked_sub(1) else {
            return Ok(Err(events::Error::Unavailable(format!(
                "quota exceeded: at most {} events per call",
                self.per_call
            ))));
        };
        self.left = left;
        let call = &self.call.context;
        let tenant = &call.tenant;
        if !self.tenant_quota.take(tenant, Instant::now()) {
            tracing::warn!(
                tenant = %tenant,
                plugin = %self.call.plugin,
                request_id = %call.request_id,
                "event refused: the tenant's events quota for this minute is spent"
            );
            return Ok(Err(events::Error::Unavailable(format!(
                "quota exceeded: tenant {tenant} may record at most {} events a minute; retry later",
                self.tenant_quota.per_minute
            ))));
        }
        let recorded = self
            .port
            .record(PluginEvent {
                tenant,
                council: &call.council,
                plugin: &self.call.plugin,
                version: &self.call.version,
                name: &name,
                payload: &payload,
                request_id: &call.request_id,
                actor: call.principal.subject(),
            })
            .await;
        Ok(match recorded {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::error!(
                    tenant = %call.tenant,
                    plugin = %self.call.plugin,
                    request_id = %call.request_id,
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use guildhall_domain::TenantId;

    use super::EventQuota;

    #[test]
    fn each_tenant_has_its_own_budget_per_minute() {
        let quota = EventQuota::new(3);
        let alpha = TenantId::parse("alpha").unwrap();
        let beta = TenantId::parse("beta").unwrap();
        let start = Instant::now();
        for _ in 0..3 {
            assert!(quota.take(&alpha, start));
        }
        assert!(!quota.take(&alpha, start + Duration::from_secs(59)));
        // Another tenant's budget is untouched by the first's.
        assert!(quota.take(&beta, start));
        // A new minute brings a new budget.
        assert!(quota.take(&alpha, start + Duration::from_secs(60)));
    }
}
