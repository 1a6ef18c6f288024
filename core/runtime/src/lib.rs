//! Guildhall's plugin runtime: run a council service written by someone else, safely, for
//! one council of one tenant at a time.
//!
//! - [`Runtime::new`] builds one wasmtime engine (component model, async, epoch
//!   interruption with one ticker, pooling allocator when the address space allows it).
//!   Plugins reach storage and policy only through the [`Ports`] it is given: traits
//!   defined here and implemented by whoever wires the runtime, so this crate knows no
//!   database.
//! - [`Runtime::check_component`] vets uploaded bytes: size, component-ness, compilation
//!   within a time bound, and imports against the manifest's capabilities; the result enters
//!   the component cache only through [`Runtime::admit`], after the version is stored.
//! - [`Runtime::prepare`] turns a published version into a [`Prepared`] plugin. Components
//!   compile once per digest (and are cached on disk by digest and engine hash), shared by
//!   every tenant.
//! - [`Runtime::handle`] serves one HTTP request in a fresh instance with the install's
//!   memory cap and deadline, and returns a typed [`CallError`] when the plugin misbehaves.
//!
//! **Architecture Invariant:** a plugin can only call what its manifest declares. Imports
//! are checked when the component is published and again when it is linked, because each
//! plugin is linked with a linker that only holds its declared capabilities.
//!
//! **Architecture Invariant:** a plugin can never stop the server. Every call has an epoch
//! deadline, a memory cap, a wasm stack cap and a response cap, and a trap ends only that
//! call.
//!
//! **Architecture Invariant:** a plugin can never exhaust the host's memory. A call's
//! memory cap covers all of its linear memories together and every byte the host keeps
//! for it (header fields, outgoing body buffers, the collected response); its resource
//! table, outbound requests, refused-use records, log lines and events are bounded per
//! call; and the memory caps of the calls running at once never add up past
//! `runtime.memory_budget_mib` ([`Runtime::reserve_memory`]).

mod bindings;
mod budget;
mod cache;
mod call;
mod capabilities;
pub mod config;
pub mod edge;
mod engine;
mod error;
mod fair;
mod host;
pub mod subject;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use guildhall_domain::manifest::Manifest;
use guildhall_domain::{CouncilId, Digest, PluginName, TenantId};
use wasmtime::component::Linker;

pub use budget::MemoryReservation;
pub use cache::{ArtefactShelf, ShelfFuture};
pub use call::CallReport;
pub use capabilities::{
    Authorizer, AuthzQuestion, CallSession, DenyAll, EventsPort, HttpPort, KvPort, KvSetError,
    NoSecrets, OutboundRequest, PluginEvent, PortError, PortFuture, Ports, SecretsPort,
    SessionError, platform_imports,
};
pub use config::{OutboundConfig, RuntimeConfig, ShareCompiled};
pub use error::{CallError, MemoryBusy, PrepareError};

use crate::cache::ComponentCache;
use crate::capabilities::{CapabilitySet, OutboundPolicy};
use crate::host::Host;

/// Who is calling a plugin, as access control resolved it for the call's tenant and council.
pub use guildhall_domain::Caller;

/// Everything a call knows about where it runs.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The tenant, which the caller has checked exists (the gateway resolved the install
    /// this call runs for in it).
    pub tenant: TenantId,
    /// The council the request is for.
    pub council: CouncilId,
    /// The caller.
    pub principal: Caller,
    /// The install's checked configuration (a JSON object).
    pub config: Arc<serde_json::Value>,
    /// The platform's request id.
    pub request_id: String,
    /// The W3C `traceparent` the plugin's outbound requests carry, so a trace continues
    /// through the services it calls.
    pub traceparent: Option<String>,
    /// How the council's pages look and where they live (`context.site`).
    pub site: Arc<guildhall_domain::Site>,
    /// The citizen's session, for a plugin that declares `session` (`None`: the call has
    /// none and cannot start one).
    pub session: Option<Arc<dyn CallSession>>,
}

/// A plugin version ready to serve: compiled, linked with exactly its capabilities, and
/// with its effective limits worked out.
pub struct Prepared {
    manifest: Arc<Manifest>,
    digest: Digest,
    pre: wasmtime_wasi_http::p2::bindings::ProxyPre<Host>,
    memory_bytes: usize,
    timeout: Duration,
    /// The capabilities the manifest declares: what its linker holds and what its calls
    /// prepare.
    capabilities: CapabilitySet,
    /// What it may reach over HTTP, when it declares outbound hosts.
    outbound: Option<Arc<OutboundPolicy>>,
    /// The names of the secrets it declares.
    secrets: Arc<std::collections::BTreeSet<String>>,
    /// Its `guildhall:platform/scheduled` `run` function, when it declares schedules.
    scheduled: Option<wasmtime::component::ComponentExportIndex>,
    /// Its `guildhall:platform/data-subject` functions, when it declares subject requests.
    data_subject: Option<subject::Exports>,
    /// How much guest CPU its calls took lately, for the fair gate.
    weight: fair::CallWeight,
    /// The manifest's version as text, formatted once rather than on every call.
    version: Arc<str>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("plugin", &self.manifest.name)
            .field("version", &self.manifest.version.to_string())
            .field("digest", &self.digest)
            .field("memory_bytes", &self.memory_bytes)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Prepared {
    /// The plugin's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The manifest's version, e.g. `0.2.0`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The component's digest.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The plugin's name.
    pub fn plugin(&self) -> &PluginName {
        &self.manifest.name
    }

    /// The deadline of each call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The memory cap of each call, in MiB.
    pub fn memory_mib(&self) -> u32 {
        u32::try_from(self.memory_bytes >> 20)
            .unwrap_or(u32::MAX)
            .max(1)
    }
}

/// An upload that passed [`Runtime::check_component`]; its compiled component is held
/// here, outside the cache, until [`Runtime::admit`] or drop.
pub struct Checked {
    digest: Digest,
    staged: cache::Staged,
}

impl std::fmt::Debug for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checked")
            .field("digest", &self.digest)
            .finish()
    }
}

impl Checked {
    /// The component's digest.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }
}

/// Counters that show the runtime's caches at work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RuntimeStats {
    /// Components compiled from bytes.
    pub compiles: u64,
    /// Time spent compiling them.
    pub compile_time: Duration,
    /// Components loaded from the on-disk cache of precompiled artefacts.
    pub disk_loads: u64,
    /// Components loaded from artefacts another replica compiled and shared.
    pub shared_loads: u64,
    /// Requests for a component that was already in memory.
    pub memory_hits: u64,
    /// Components evicted to keep the cache within its bounds.
    pub evictions: u64,
    /// Components in the cache now (in memory, on disk or both).
    pub cached: u64,
    /// Uploads holding a compile permit now.
    pub uploads_compiling: u64,
}

/// The plugin runtime; cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("pooling", &self.inner.pooling)
            .field("stats", &self.stats())
            .finish()
    }
}

struct Inner {
    engine: wasmtime::Engine,
    pooling: bool,
    config: RuntimeConfig,
    ports: Ports,
    cache: ComponentCache,
    linkers: Mutex<HashMap<CapabilitySet, Arc<Linker<Host>>>>,
    outbound_allow: Arc<Vec<config::Cidr>>,
    gate: fair::FairGate,
    budget: budget::MemoryBudget,
    events: Arc<capabilities::EventQuota>,
    /// `None` in a runtime built only to check uploads, which never runs a call.
    ticker: Option<engine::EpochTicker>,
}

impl Runtime {
    /// Builds the engine, starts the epoch ticker and opens the component cache. Plugins'
    /// capabilities reach storage and policy through `ports`.
    pub fn new(config: RuntimeConfig, ports: Ports) -> Result<Self, PrepareError> {
        Self::build(config, ports, true)
    }

    /// A runtime that only checks and compiles uploads ([`Runtime::check_component`],
    /// [`Runtime::admit`]) for `guildhall plugins publish`: the same engine and component
    /// cache, but no epoch ticker thread. It never runs a call: without the ticker no call
    /// could meet its deadline, so [`Runtime::handle`] refuses at once.
    pub fn for_publishing(config: RuntimeConfig, ports: Ports) -> Result<Self, PrepareError> {
        Self::build(config, ports, false)
    }

    fn build(config: RuntimeConfig, ports: Ports, serve: bool) -> Result<Self, PrepareError> {
        let (engine, pooling) = engine::build(&config).map_err(PrepareError::Engine)?;
        let ticker = serve.then(|| engine::EpochTicker::start(engine.clone()));
        let cache = ComponentCache::new(engine.clone(), &config).map_err(PrepareError::Engine)?;
        let outbound_allow = config::parse_cidrs(&config.outbound.allow_cidrs).map_err(|e| {
            PrepareError::Engine(anyhow::anyhow!("runtime.outbound.allow_cidrs: {e}"))
        })?;
        let budget = budget::MemoryBudget::new(
            config.memory_budget_mib,
            Duration::from_millis(config.tenant_queue_timeout_ms),
        );
        let events = Arc::new(capabilities::EventQuota::new(
            config.events_per_tenant_per_minute,
        ));
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                pooling,
                config,
                ports,
                cache,
                linkers: Mutex::new(HashMap::new()),
                outbound_allow: Arc::new(outbound_allow),
                // One guest per core at a time, handed round between tenants.
                gate: fair::FairGate::new(
                    std::thread::available_parallelism().map_or(2, |n| n.get()),
                ),
                budget,
                events,
                ticker,
            }),
        })
    }

    /// The settings the runtime runs with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Shares compiled components with the platform's other replicas through `shelf`:
    /// components are looked for there before they are compiled, and what this replica
    /// compiles is put there. Set once, at start; later calls are ignored.
    pub fn share_artefacts(&self, shelf: Arc<dyn ArtefactShelf>) {
        self.inner.cache.share(shelf);
    }

    /// Whether the pooling allocator is in use (false after a fallback).
    pub fn pooling(&self) -> bool {
        self.inner.pooling
    }

    /// Cache counters.
    pub fn stats(&self) -> RuntimeStats {
        self.inner.cache.stats()
    }

    /// Checks uploaded component bytes against their manifest: size, that they are a
    /// component, that they compile within the time bound (with the upload compile
    /// permits: [`PrepareError::Busy`] when none comes free in time), that every import is
    /// allowed by the declared capabilities, and that the component links and exports
    /// `wasi:http/incoming-handler`. Nothing enters the component cache: pass the result to
    /// [`Runtime::admit`] once the version is stored, or drop it to leave nothing behind.
    pub async fn check_component(
        &self,
        manifest: &Manifest,
        bytes: Arc<Vec<u8>>,
    ) -> Result<Checked, PrepareError> {
        if bytes.len() > self.inner.config.max_component_bytes {
            return Err(PrepareError::TooLarge {
                size: bytes.len(),
                limit: self.inner.config.max_component_bytes,
            });
        }
        manifest
            .validate(&self.inner.config.caps())
            .map_err(PrepareError::Manifest)?;
        let digest = Digest::of(&bytes);
        let staged = self.inner.cache.stage(&digest, bytes).await?;
        self.link(manifest, staged.component())?;
        Ok(Checked { digest, staged })
    }

    /// Keeps a checked upload's compiled component once its version is stored.
    pub fn admit(&self, checked: Checked) {
        self.inner.cache.admit(&checked.digest, checked.staged);
    }

    /// Prepares a published version. `load` is only called when the component is neither
    /// in memory nor in the on-disk cache.
    pub async fn prepare(
        &self,
        manifest: Arc<Manifest>,
        digest: Digest,
        load: impl AsyncFnOnce() -> anyhow::Result<Arc<Vec<u8>>>,
    ) -> Result<Prepared, PrepareError> {
        manifest
            .validate(&self.inner.config.caps())
            .map_err(PrepareError::Manifest)?;
        let component = self.inner.cache.get(&digest, load).await?;
        let pre = self.link(&manifest, &component)?;
        let scheduled = capabilities::scheduled_export(&component, &manifest)?;
        let data_subject = capabilities::data_subject_export(&component, &manifest)?;
        let config = &self.inner.config;
        let memory_mib = manifest
            .limits
            .memory_mib
            .unwrap_or(config.default_memory_mib);
        let timeout_ms = manifest
            .limits
            .timeout_ms
            .unwrap_or(config.default_timeout_ms);
        let capabilities = CapabilitySet::of_manifest(&manifest);
        let secrets = Arc::new(manifest.secrets.keys().cloned().collect());
        let outbound = (!manifest.capabilities.outbound_http.is_empty()).then(|| {
            Arc::new(OutboundPolicy::new(
                &manifest.capabilities.outbound_http,
                &config.outbound,
                Arc::clone(&self.inner.outbound_allow),
                self.inner.ports.http.clone(),
            ))
        });
        Ok(Prepared {
            digest,
            pre,
            memory_bytes: (memory_mib as usize) << 20,
            timeout: Duration::from_millis(timeout_ms),
            capabilities,
            outbound,
            secrets,
            scheduled,
            data_subject,
            weight: fair::CallWeight::default(),
            version: manifest.version.to_string().into(),
            manifest,
        })
    }

    /// Checks the component's imports against the manifest and links it with exactly the
    /// declared capabilities.
    fn link(
        &self,
        manifest: &Manifest,
        component: &wasmtime::component::Component,
    ) -> Result<wasmtime_wasi_http::p2::bindings::ProxyPre<Host>, PrepareError> {
        capabilities::check_imports(&self.inner.engine, component, manifest)?;
        capabilities::scheduled_export(component, manifest)?;
        capabilities::data_subject_export(component, manifest)?;
        let caps = CapabilitySet::of_manifest(manifest);
        let linker = self.linker(caps)?;
        let pre = linker
            .instantiate_pre(component)
            .map_err(|e| PrepareError::Link(format!("{e:#}")))?;
        wasmtime_wasi_http::p2::bindings::ProxyPre::new(pre)
            .map_err(|e| PrepareError::NotAService(format!("{e:#}")))
    }

    fn linker(&self, caps: CapabilitySet) -> Result<Arc<Linker<Host>>, PrepareError> {
        let mut linkers = self.inner.linkers.lock().expect("linker cache poisoned");
        if let Some(linker) = linkers.get(&caps) {
            return Ok(Arc::clone(linker));
        }
        let linker =
            Arc::new(capabilities::linker(&self.inner.engine, caps).map_err(PrepareError::Engine)?);
        linkers.insert(caps, Arc::clone(&linker));
        Ok(linker)
    }

    /// Reserves `plugin`'s memory cap in the memory budget for one call, waiting up to
    /// `runtime.tenant_queue_timeout_ms` for running calls to give theirs back. Hold the
    /// reservation until the call's [`Runtime::handle`] returns.
    pub async fn reserve_memory(&self, plugin: &Prepared) -> Result<MemoryReservation, MemoryBusy> {
        self.inner.budget.reserve(plugin.memory_mib()).await
    }

    /// MiB of the memory budget reserved by running calls, for metrics and tests.
    pub fn memory_in_use_mib(&self) -> u32 {
        self.inner.budget.in_use_mib()
    }

    /// Serves one request with a fresh instance of `plugin`.
    pub async fn handle(
        &self,
        plugin: &Prepared,
        call: CallContext,
        request: http::Request<bytes::Bytes>,
    ) -> (Result<http::Response<bytes::Bytes>, CallError>, CallReport) {
        if self.inner.ticker.is_none() {
            let error = CallError::Internal(
                "this runtime was built to check uploads and runs no calls".to_string(),
            );
            let report = CallReport {
                outcome: error.kind(),
                wall: Duration::ZERO,
                bytes_in: 0,
                bytes_out: 0,
                cpu: Duration::ZERO,
                kv_bytes: 0,
                denied: Vec::new(),
            };
            return (Err(error), report);
        }
        call::handle(&self.inner, plugin, call, request).await
    }

    /// Runs `plugin`'s declared schedule `name` once, in a fresh instance with the same
    /// limits and capabilities as a request: `Ok(Err(message))` when the plugin's `run`
    /// reported a failure, `Err` when the call itself failed.
    pub async fn run_schedule(
        &self,
        plugin: &Prepared,
        call: CallContext,
        name: &str,
    ) -> (Result<Result<(), String>, CallError>, CallReport) {
        if self.inner.ticker.is_none() || plugin.manifest.schedule(name).is_none() {
            let error = CallError::Internal(if self.inner.ticker.is_none() {
                "this runtime was built to check uploads and runs no calls".to_string()
            } else {
                format!("{} declares no schedule {name:?}", plugin.manifest.name)
            });
            let report = CallReport {
                outcome: error.kind(),
                wall: Duration::ZERO,
                bytes_in: 0,
                bytes_out: 0,
                cpu: Duration::ZERO,
                kv_bytes: 0,
                denied: Vec::new(),
            };
            return (Err(error), report);
        }
        call::scheduled(&self.inner, plugin, call, name).await
    }
}
