//! Host capabilities: what a plugin may call besides its own HTTP handler.
//!
//! Every capability has the same three steps (the shape of Spin's factors):
//! 1. **link** its host functions into a linker, once per set of declared capabilities
//!    ([`linker`]); a plugin gets the linker for exactly its declarations, so an
//!    undeclared import cannot link;
//! 2. **validate** once per prepared plugin what the manifest says about it (for example
//!    the outbound allow-list, [`OutboundPolicy::new`]);
//! 3. **prepare** its per-call state when a call starts ([`prepare`]), into its own slot of
//!    [`States`]. The platform's interfaces (`context`, `kv`, `events`, `authz`, `session`) are
//!    implemented on their own state and reach nothing else; WASI and `wasi:http` reach
//!    theirs through the `Host`, as wasmtime's views pair them with the shared resource
//!    table.
//!
//! [`CAPABILITIES`] lists them with the component imports each one satisfies and its
//! `link` and `prepare`; the publish-time import check reads the same table, and the same
//! row's `declared` decides both whether a plugin's linker holds a capability and whether
//! its calls prepare its state. Adding a capability means adding a module here (its host
//! functions, `link`, state and `prepare`), a row to that table and its slot in [`States`].

mod authz;
mod context;
mod events;
mod http_limits;
mod kv;
mod outbound;
mod secrets;
mod session;
mod wasi;

use std::pin::Pin;
use std::sync::{Arc, Mutex};

use guildhall_domain::manifest::Capabilities;
use guildhall_domain::{PluginName, TenantId};
use wasmtime::Engine;
use wasmtime::component::Linker;
use wasmtime::component::types::ComponentItem;

pub use authz::{Authorizer, AuthzQuestion, DenyAll};
pub(crate) use events::EventQuota;
pub use events::{EventsPort, PluginEvent};
pub use kv::{KvPort, KvSetError};
pub(crate) use outbound::OutboundPolicy;
pub use outbound::{HttpPort, OutboundRequest};
pub use secrets::{NoSecrets, SecretsPort};
pub use session::{CallSession, SessionError};

use crate::error::PrepareError;
use crate::host::{Call, Host, Observed};
use crate::{Inner, Prepared};

/// What the runtime reaches outside itself through: traits the runtime defines and whoever
/// builds it implements (the server over its database and access policy). The runtime
/// itself knows no storage.
#[derive(Clone)]
pub struct Ports {
    /// Plugins' key-value data, for `guildhall:platform/kv`.
    pub kv: Arc<dyn KvPort>,
    /// Plugins' events, for `guildhall:platform/events`.
    pub events: Arc<dyn EventsPort>,
    /// The access policy, for `guildhall:platform/authz`.
    pub authorizer: Arc<dyn Authorizer>,
    /// Install secrets, for `guildhall:platform/secrets`.
    pub secrets: Arc<dyn SecretsPort>,
    /// Where outbound requests to a declared host go instead of the network, for tools
    /// that run plugins with canned answers (the test harness); `None` in the server,
    /// whose requests go to the checked address.
    pub http: Option<Arc<dyn HttpPort>>,
}

impl Ports {
    /// Ports that reach nothing: for a runtime that only checks components
    /// ([`crate::Runtime::for_publishing`]) and never runs a call.
    pub fn unavailable() -> Self {
        let none = Arc::new(Unavailable);
        Self {
            kv: none.clone(),
            events: none,
            authorizer: Arc::new(DenyAll),
            secrets: Arc::new(NoSecrets),
            http: None,
        }
    }
}

/// Storage that is not there.
struct Unavailable;

fn unavailable<'a, T: Send + 'a>() -> PortFuture<'a, T> {
    Box::pin(std::future::ready(
        Err("this runtime has no storage".into()),
    ))
}

fn unavailable_write<'a, T: Send + 'a>() -> PortFuture<'a, T, KvSetError> {
    Box::pin(std::future::ready(Err(KvSetError::Storage(
        "this runtime has no storage".into(),
    ))))
}

impl KvPort for Unavailable {
    fn get<'a>(
        &'a self,
        _: &'a TenantId,
        _: &'a PluginName,
        _: &'a str,
    ) -> PortFuture<'a, Option<Vec<u8>>> {
        unavailable()
    }
    fn set<'a>(
        &'a self,
        _: &'a TenantId,
        _: &'a PluginName,
        _: &'a str,
        _: &'a [u8],
        _: Option<std::time::Duration>,
        _: u64,
    ) -> PortFuture<'a, (), KvSetError> {
        unavailable_write()
    }
    fn increment<'a>(
        &'a self,
        _: &'a TenantId,
        _: &'a PluginName,
        _: &'a str,
        _: i64,
        _: u64,
    ) -> PortFuture<'a, i64, KvSetError> {
        unavailable_write()
    }
    fn compare_and_swap<'a>(
        &'a self,
        _: &'a TenantId,
        _: &'a PluginName,
        _: &'a str,
        _: Option<&'a [u8]>,
        _: &'a [u8],
        _: u64,
    ) -> PortFuture<'a, bool, KvSetError> {
        unavailable_write()
    }
    fn delete<'a>(
        &'a self,
        _: &'a TenantId,
        _: &'a PluginName,
        _: &'a str,
    ) -> PortFuture<'a, bool> {
        unavailable()
    }
    fn list_keys<'a>(
        &'a self,
        _: &'a TenantId,
        _: &'a PluginName,
        _: &'a str,
        _: Option<&'a str>,
        _: u32,
    ) -> PortFuture<'a, (Vec<String>, Option<String>)> {
        unavailable()
    }
}

impl EventsPort for Unavailable {
    fn record<'a>(&'a self, _: PluginEvent<'a>) -> PortFuture<'a, ()> {
        unavailable()
    }
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports").finish_non_exhaustive()
    }
}

/// Why storage behind a port failed. The runtime logs it with the call's tenant, plugin
/// and request id and tells the plugin only that storage failed.
pub type PortError = Box<dyn std::error::Error + Send + Sync>;

/// What a port's methods return: a boxed future, so the ports can be trait objects.
pub type PortFuture<'a, T, E = PortError> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'a>>;

/// Which optional capabilities a plugin declared; the key of the linker cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct CapabilitySet {
    kv: bool,
    events: bool,
    authz: bool,
    outbound_http: bool,
    session: bool,
    secrets: bool,
}

impl CapabilitySet {
    pub(crate) fn of(caps: &Capabilities) -> Self {
        Self {
            kv: caps.kv,
            events: caps.events,
            authz: caps.authz,
            outbound_http: !caps.outbound_http.is_empty(),
            session: caps.session,
            secrets: false,
        }
    }

    /// The set for a whole manifest: its capabilities, and `secrets` when it declares any.
    pub(crate) fn of_manifest(manifest: &guildhall_domain::manifest::Manifest) -> Self {
        Self {
            secrets: !manifest.secrets.is_empty(),
            ..Self::of(&manifest.capabilities)
        }
    }
}

/// What a capability's `prepare` reads when a call starts.
pub(crate) struct CallSetup<'a> {
    /// Who and where the call is.
    pub(crate) call: &'a Arc<Call>,
    /// The runtime: its settings, ports and shared budgets.
    pub(crate) runtime: &'a Inner,
    /// The plugin version answering, as prepared (its outbound policy, for instance).
    pub(crate) plugin: &'a Prepared,
    /// What the host observes during the call, reported with its outcome.
    pub(crate) observed: &'a Arc<Mutex<Observed>>,
}

/// Each capability's per-call state: a slot per row, filled by the row's `prepare` when
/// the plugin declared it (always, for rows that need no declaration).
#[derive(Default)]
pub(crate) struct States {
    pub(crate) wasi: Option<wasmtime_wasi::WasiCtx>,
    pub(crate) http: Option<outbound::Http>,
    pub(crate) context: Option<context::State>,
    pub(crate) kv: Option<kv::State>,
    pub(crate) events: Option<events::State>,
    pub(crate) authz: Option<authz::State>,
    pub(crate) outbound_http: Option<outbound::Requests>,
    pub(crate) session: Option<session::State>,
    pub(crate) secrets: Option<secrets::State>,
}

/// A capability's state, for its host functions. They are linked only for plugins that
/// declared it, and a call prepares the state of exactly those (the row's `declared`
/// decides both), so the slot is always filled when they run.
#[track_caller]
pub(crate) fn prepared<T>(slot: &mut Option<T>) -> &mut T {
    slot.as_mut()
        .expect("a capability's host functions ran without its per-call state")
}

/// One row of the capability table.
pub(crate) struct Capability {
    /// The name used in manifests and messages.
    pub(crate) name: &'static str,
    /// Interfaces (`namespace:package/interface`, without version) it satisfies.
    pub(crate) interfaces: &'static [&'static str],
    /// Whether a plugin with these declarations has it.
    pub(crate) declared: fn(CapabilitySet) -> bool,
    /// Adds its host functions to a linker.
    pub(crate) link: fn(&mut Linker<Host>) -> wasmtime::Result<()>,
    /// Builds its per-call state into its slot, for a plugin that has it.
    pub(crate) prepare: fn(&CallSetup<'_>, &mut States),
}

/// Everything a plugin can import. Rows whose `declared` is always true need no
/// declaration: they carry no authority (WASI is linked with an empty environment, no
/// preopened directories and no network).
pub(crate) const CAPABILITIES: &[Capability] = &[
    Capability {
        name: "wasi",
        interfaces: &[
            "wasi:io/error",
            "wasi:io/poll",
            "wasi:io/streams",
            "wasi:clocks/monotonic-clock",
            "wasi:clocks/wall-clock",
            "wasi:random/random",
            "wasi:random/insecure",
            "wasi:random/insecure-seed",
            "wasi:cli/environment",
            "wasi:cli/exit",
            "wasi:cli/stdin",
            "wasi:cli/stdout",
            "wasi:cli/stderr",
            "wasi:cli/terminal-input",
            "wasi:cli/terminal-output",
            "wasi:cli/terminal-stdin",
            "wasi:cli/terminal-stdout",
            "wasi:cli/terminal-stderr",
            "wasi:filesystem/types",
            "wasi:filesystem/preopens",
            // CPython's C library imports the socket interfaces (componentize-py's
            // components do). They link, but the context allows no TCP, UDP or name
            // lookup, so every socket a guest asks for is refused.
            "wasi:sockets/network",
            "wasi:sockets/instance-network",
            "wasi:sockets/tcp",
            "wasi:sockets/tcp-create-socket",
            "wasi:sockets/udp",
            "wasi:sockets/udp-create-socket",
            "wasi:sockets/ip-name-lookup",
        ],
        declared: |_| true,
        link: wasi::link,
        prepare: |setup, states| states.wasi = Some(wasi::prepare(setup)),
    },
    Capability {
        name: "http",
        interfaces: &["wasi:http/types"],
        declared: |_| true,
        link: outbound::link_types,
        prepare: |setup, states| states.http = Some(outbound::prepare_http(setup)),
    },
    Capability {
        name: "context",
        interfaces: &["guildhall:platform/context"],
        declared: |_| true,
        link: context::link,
        prepare: |setup, states| states.context = Some(context::prepare(setup)),
    },
    Capability {
        name: "kv",
        interfaces: &["guildhall:platform/kv"],
        declared: |c| c.kv,
        link: kv::link,
        prepare: |setup, states| states.kv = Some(kv::prepare(setup)),
    },
    Capability {
        name: "events",
        interfaces: &["guildhall:platform/events"],
        declared: |c| c.events,
        link: events::link,
        prepare: |setup, states| states.events = Some(events::prepare(setup)),
    },
    Capability {
        name: "authz",
        interfaces: &["guildhall:platform/authz"],
        declared: |c| c.authz,
        link: authz::link,
        prepare: |setup, states| states.authz = Some(authz::prepare(setup)),
    },
    Capability {
        name: "outbound_http",
        interfaces: &["wasi:http/outgoing-handler"],
        declared: |c| c.outbound_http,
        link: outbound::link_outgoing,
        prepare: |setup, states| {
            states.outbound_http = Some(outbound::prepare_requests(setup));
        },
    },
    Capability {
        name: "session",
        interfaces: &["guildhall:platform/session"],
        declared: |c| c.session,
        link: session::link,
        prepare: |setup, states| states.session = Some(session::prepare(setup)),
    },
    Capability {
        name: "secrets",
        interfaces: &["guildhall:platform/secrets"],
        declared: |c| c.secrets,
        link: secrets::link,
        prepare: |setup, states| states.secrets = Some(secrets::prepare(setup)),
    },
];

/// A linker holding exactly the capabilities in `caps`.
pub(crate) fn linker(engine: &Engine, caps: CapabilitySet) -> anyhow::Result<Linker<Host>> {
    let mut linker = Linker::new(engine);
    for capability in CAPABILITIES {
        if (capability.declared)(caps) {
            (capability.link)(&mut linker).map_err(|e| {
                anyhow::anyhow!("cannot link the {} capability: {e:#}", capability.name)
            })?;
        }
    }
    Ok(linker)
}

/// The per-call state of every capability in `caps`.
pub(crate) fn prepare(setup: &CallSetup<'_>, caps: CapabilitySet) -> States {
    let mut states = States::default();
    for capability in CAPABILITIES {
        if (capability.declared)(caps) {
            (capability.prepare)(setup, &mut states);
        }
    }
    states
}

/// The interfaces (without version) a component may import beyond WASI's own: the
/// platform's and the outbound HTTP handler, each with whether `manifest` declares it
/// (`context` always is).
pub fn platform_imports(
    manifest: &guildhall_domain::manifest::Manifest,
) -> Vec<(&'static str, bool)> {
    let caps = CapabilitySet::of_manifest(manifest);
    CAPABILITIES
        .iter()
        .filter(|c| !matches!(c.name, "wasi" | "http"))
        .flat_map(|c| c.interfaces.iter().map(move |i| (*i, (c.declared)(caps))))
        .collect()
}

/// Interface name without its version: `wasi:http/types@0.2.12` → `wasi:http/types`.
fn unversioned(import: &str) -> &str {
    import.split('@').next().unwrap_or(import)
}

/// Checks every import of `component` against the declared capabilities and lists the
/// offending imports, with what would allow each.
pub(crate) fn check_imports(
    engine: &Engine,
    component: &wasmtime::component::Component,
    manifest: &guildhall_domain::manifest::Manifest,
) -> Result<(), PrepareError> {
    let caps = CapabilitySet::of_manifest(manifest);
    let mut offending = Vec::new();
    for (name, item) in component.component_type().imports(engine) {
        let interface = unversioned(name);
        let provider = CAPABILITIES
            .iter()
            .find(|c| c.interfaces.contains(&interface));
        match provider {
            Some(c) if (c.declared)(caps) => {}
            Some(c) if c.name == "secrets" => {
                offending.push(format!(
                    "{name} (declare the secrets it reads under [secrets])"
                ));
            }
            Some(c) => offending.push(format!("{name} (declare `{}` in [capabilities])", c.name)),
            None => {
                let what = match item.ty {
                    ComponentItem::ComponentInstance(_) => "not offered by Guildhall",
                    _ => "not offered by Guildhall (only interface imports are)",
                };
                offending.push(format!("{name} ({what})"));
            }
        }
    }
    if offending.is_empty() {
        Ok(())
    } else {
        Err(PrepareError::UndeclaredImports(offending))
    }
}

/// The interface a plugin that answers subject requests exports.
const DATA_SUBJECT: &str = "guildhall:platform/data-subject@0.1.0";

/// The `access` and `erase` functions of the component's `guildhall:platform/data-subject`
/// export, when the manifest declares `[data_protection] subject_requests = true`. A
/// declaration without the export is refused, and so is the export without the
/// declaration: the catalogue says which plugins answer subject requests, so the two must
/// agree.
pub(crate) fn data_subject_export(
    component: &wasmtime::component::Component,
    manifest: &guildhall_domain::manifest::Manifest,
) -> Result<Option<crate::subject::Exports>, PrepareError> {
    let interface = component.get_export_index(None, DATA_SUBJECT);
    let declared = manifest.data_protection.subject_requests;
    match (interface, declared) {
        (None, false) => Ok(None),
        (Some(_), false) => Err(PrepareError::Link(format!(
            "the component exports {DATA_SUBJECT} but the manifest does not declare \
             [data_protection] subject_requests = true"
        ))),
        (interface, true) => {
            let function = |name: &str| {
                interface
                    .as_ref()
                    .and_then(|interface| component.get_export_index(Some(interface), name))
            };
            match (function("access"), function("erase")) {
                (Some(access), Some(erase)) => Ok(Some(crate::subject::Exports { access, erase })),
                _ => Err(PrepareError::Link(format!(
                    "the manifest declares [data_protection] subject_requests = true but the \
                     component does not export {DATA_SUBJECT} with `access` and `erase` \
                     (world guildhall:platform/data-subject-service)"
                ))),
            }
        }
    }
}

/// The interface a plugin that declares schedules exports.
const SCHEDULED: &str = "guildhall:platform/scheduled@0.1.0";

/// The `run` function of the component's `guildhall:platform/scheduled` export, when the
/// manifest declares schedules: a manifest with schedules whose component does not export
/// it is refused, so a schedule never finds nothing to run.
pub(crate) fn scheduled_export(
    component: &wasmtime::component::Component,
    manifest: &guildhall_domain::manifest::Manifest,
) -> Result<Option<wasmtime::component::ComponentExportIndex>, PrepareError> {
    if manifest.schedules.is_empty() {
        return Ok(None);
    }
    let run = component
        .get_export_index(None, SCHEDULED)
        .and_then(|interface| component.get_export_index(Some(&interface), "run"));
    match run {
        Some(run) => Ok(Some(run)),
        None => Err(PrepareError::Link(format!(
            "the manifest declares [[schedules]] but the component does not export \
             {SCHEDULED} with a `run` function (world guildhall:platform/scheduled-service)"
        ))),
    }
}
