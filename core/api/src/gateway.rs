//! The service gateway: `ANY /s/{tenant}/{council}/{plugin}/{*path}` runs the tenant's
//! install of the plugin for that council.
//!
//! Installs are resolved once and cached with the platform revision they were read at. A
//! change made through this replica updates the revision at once; a change made through
//! another replica is noticed by [`Gateway::watch`], which polls the revision (a single
//! indexed row) every half second. Polling a counter works the same on SQLite and
//! PostgreSQL and needs no long-lived connection; its cost is one tiny query per replica
//! per interval, and the bound on staleness is the interval.
//!
//! Each tenant has its own concurrency share: `runtime.tenant_concurrency` calls at once,
//! then a short queue, then 429 with `Retry-After`. A tenant flooding the gateway fills
//! only its own share.
//!
//! A call's body is read whole, bounded in size (`runtime.max_request_body_bytes`, 413) and
//! in time (`server.body_read_timeout_secs`, 408), before the call asks for a slot: a
//! client trickling an upload holds a connection, never a share of its tenant.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use guildhall_domain::manifest::Manifest;
use guildhall_domain::{CouncilId, PluginName, TenantId};
use guildhall_runtime::{CallContext, CallError, CallReport, Prepared, Principal, Runtime};
use guildhall_store::{InstallCouncils, Store, TenantScope};
use guildhall_telemetry::CallSample;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use crate::AppState;
use crate::error::ApiError;
use crate::middleware::RequestId;

/// How often replicas look for install changes made elsewhere.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// The Content-Security-Policy of plugin responses that set none: resources from this
/// origin only, no plugins (`object-src`), no `<base>` rewriting, no framing by others.
pub const DEFAULT_CSP: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// How long a call's body may take to arrive unless configured otherwise.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// A resolved install, valid for the revision it was read at.
struct Resolved {
    revision: i64,
    scope: TenantScope,
    councils: InstallCouncils,
    tenant_councils: HashSet<CouncilId>,
    config: Arc<serde_json::Value>,
    prepared: Arc<Prepared>,
}

impl Resolved {
    /// Whether the install serves `council`, a council of its tenant.
    fn serves(&self, council: &CouncilId) -> bool {
        self.tenant_councils.contains(council) && self.councils.includes(council)
    }
}

/// One version's preparation, shared by everyone who asks for it.
type PreparedSlot = Arc<tokio::sync::OnceCell<Arc<Prepared>>>;

struct TenantGate {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
}

/// The gateway's caches and concurrency shares; cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<GatewayInner>,
}

struct GatewayInner {
    store: Store,
    runtime: Runtime,
    revision: AtomicI64,
    installs: Mutex<HashMap<(TenantId, PluginName), Arc<Resolved>>>,
    prepared: Mutex<HashMap<(PluginName, String), PreparedSlot>>,
    gates: Mutex<HashMap<TenantId, Arc<TenantGate>>>,
    body_timeout: Duration,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("revision", &self.inner.revision.load(Ordering::Relaxed))
            .finish()
    }
}

impl Gateway {
    /// A gateway over the store and runtime.
    pub fn new(store: Store, runtime: Runtime) -> Self {
        Self {
            inner: Arc::new(GatewayInner {
                store,
                runtime,
                revision: AtomicI64::new(-1),
                installs: Mutex::new(HashMap::new()),
                prepared: Mutex::new(HashMap::new()),
                gates: Mutex::new(HashMap::new()),
                body_timeout: DEFAULT_BODY_TIMEOUT,
            }),
        }
    }

    /// The same gateway with another deadline for reading a call's body.
    ///
    /// # Panics
    /// When the gateway has already been cloned: set this while building it.
    #[must_use]
    pub fn with_body_timeout(mut self, timeout: Duration) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("the body timeout is set before the gateway is shared")
            .body_timeout = timeout;
        self
    }

    /// Reads a call's whole body within the size cap and the deadline, before the call
    /// takes anything of its tenant's share.
    ///
    /// A body declared over the cap is still read up to the cap (within the deadline)
    /// before the 413, so the client, still sending, gets the answer rather than a reset.
    async fn read_body(&self, body: Body) -> Result<axum::body::Bytes, ApiError> {
        let limit = self.inner.runtime.config().max_request_body_bytes;
        let too_large = || {
            ApiError::from_status(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than {limit} bytes"),
            )
        };
        let timeout = self.inner.body_timeout;
        match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(e)) if is_length_limit(&e) => Err(too_large()),
            Ok(Err(e)) => Err(ApiError::bad_request(format!(
                "the request body could not be read: {e}"
            ))),
            Err(_) => Err(ApiError::from_status(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} seconds",
                    timeout.as_secs()
                ),
            )
            .with_header(header::CONNECTION, HeaderValue::from_static("close"))),
        }
    }

    /// Reads the platform revision now: what other replicas committed. This process's own
    /// writes need no call; the store records their revision as they commit.
    async fn refresh(&self) {
        match self.inner.store.revision().await {
            Ok(revision) => {
                self.inner.revision.fetch_max(revision, Ordering::SeqCst);
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the platform revision"),
        }
    }

    /// Polls the platform revision until the process ends, so installs changed through
    /// another replica are served here within [`WATCH_INTERVAL`].
    pub fn watch(&self) -> tokio::task::JoinHandle<()> {
        let gateway = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(WATCH_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                gateway.refresh().await;
            }
        })
    }

    /// Prepares (compiling if needed) a published version, shared by every tenant.
    /// Versions are immutable, so a prepared version never goes stale; callers for one
    /// version share one preparation and never wait for another version's.
    pub async fn prepare(
        &self,
        manifest: &Manifest,
    ) -> Result<Arc<Prepared>, guildhall_operations::Error> {
        let key = (manifest.name.clone(), manifest.version.to_string());
        let slot = Arc::clone(
            self.inner
                .prepared
                .lock()
                .expect("prepared cache poisoned")
                .entry(key.clone())
                .or_default(),
        );
        slot.get_or_try_init(|| self.prepare_uncached(&key.0, &key.1))
            .await
            .cloned()
    }

    async fn prepare_uncached(
        &self,
        plugin: &PluginName,
        version: &str,
    ) -> Result<Arc<Prepared>, guildhall_operations::Error> {
        let record = self
            .inner
            .store
            .catalogue()
            .version(plugin, version)
            .await?
            .ok_or_else(|| {
                guildhall_operations::Error::NotFound(format!(
                    "no version {version} of plugin {plugin}"
                ))
            })?;
        let store = self.inner.store.clone();
        let digest = record.digest;
        let prepared =
            self.inner
                .runtime
                .prepare(Arc::new(record.manifest), digest, async move || {
                    let bytes = store.catalogue().blob(&digest).await?.ok_or_else(|| {
                        anyhow::anyhow!("no stored component with digest {digest}")
                    })?;
                    Ok(Arc::new(bytes))
                })
                .await?;
        Ok(Arc::new(prepared))
    }

    async fn resolve(
        &self,
        tenant: &TenantId,
        plugin: &PluginName,
    ) -> Result<Option<Arc<Resolved>>, ApiError> {
        // Changes this process committed are seen at once; other replicas' by the watcher.
        let current = self
            .inner
            .revision
            .load(Ordering::SeqCst)
            .max(self.inner.store.committed_revision().latest());
        let key = (tenant.clone(), plugin.clone());
        if let Some(hit) = self
            .inner
            .installs
            .lock()
            .expect("install cache poisoned")
            .get(&key)
            && hit.revision >= current
        {
            return Ok(Some(Arc::clone(hit)));
        }
        // Read the revision before the install, so a change committed in between makes
        // this entry stale rather than hiding the change.
        let revision = self.inner.store.revision().await?;
        self.inner.revision.fetch_max(revision, Ordering::SeqCst);
        let Some(scope) = self.inner.store.scope(tenant).await? else {
            return Ok(None);
        };
        let Some(install) = self.inner.store.installs(&scope).get(plugin).await? else {
            self.inner
                .installs
                .lock()
                .expect("install cache poisoned")
                .remove(&key);
            return Ok(None);
        };
        let tenant_councils = self
            .inner
            .store
            .councils(&scope)
            .ids()
            .await?
            .into_iter()
            .collect();
        let version = self
            .inner
            .store
            .catalogue()
            .version(plugin, &install.version)
            .await?
            .ok_or_else(|| {
                ApiError::internal(format!(
                    "install of {plugin} names a missing version {}",
                    install.version
                ))
            })?;
        let prepared = self.prepare(&version.manifest).await?;
        let resolved = Arc::new(Resolved {
            revision,
            scope,
            councils: install.councils,
            tenant_councils,
            config: Arc::new(install.config),
            prepared,
        });
        self.inner
            .installs
            .lock()
            .expect("install cache poisoned")
            .insert(key, Arc::clone(&resolved));
        Ok(Some(resolved))
    }

    fn gate(&self, tenant: &TenantId) -> Arc<TenantGate> {
        let concurrency = self.inner.runtime.config().tenant_concurrency.max(1);
        Arc::clone(
            self.inner
                .gates
                .lock()
                .expect("gates poisoned")
                .entry(tenant.clone())
                .or_insert_with(|| {
                    Arc::new(TenantGate {
                        permits: Arc::new(Semaphore::new(concurrency)),
                        waiting: AtomicUsize::new(0),
                    })
                }),
        )
    }

    /// The tenant's install of `plugin` for `council`: its scope and installed version,
    /// or `None` when the plugin is not installed for that council.
    pub async fn installed_version(
        &self,
        tenant: &TenantId,
        council: &CouncilId,
        plugin: &PluginName,
    ) -> Result<Option<(TenantScope, String)>, ApiError> {
        let Some(resolved) = self.resolve(tenant, plugin).await? else {
            return Ok(None);
        };
        if !resolved.serves(council) {
            return Ok(None);
        }
        Ok(Some((
            resolved.scope.clone(),
            resolved.prepared.manifest().version.to_string(),
        )))
    }

    /// Calls waiting for a slot and calls running, per tenant, for metrics.
    pub fn load(&self) -> Vec<(TenantId, usize, usize)> {
        let concurrency = self.inner.runtime.config().tenant_concurrency.max(1);
        self.inner
            .gates
            .lock()
            .expect("gates poisoned")
            .iter()
            .map(|(tenant, gate)| {
                (
                    tenant.clone(),
                    gate.waiting.load(Ordering::Relaxed),
                    concurrency.saturating_sub(gate.permits.available_permits()),
                )
            })
            .collect()
    }

    /// Takes a slot in the tenant's share, waiting briefly in a short queue.
    async fn admit(&self, tenant: &TenantId) -> Result<OwnedSemaphorePermit, ApiError> {
        let gate = self.gate(tenant);
        if let Ok(permit) = Arc::clone(&gate.permits).try_acquire_owned() {
            return Ok(permit);
        }
        let config = self.inner.runtime.config();
        let too_many = || {
            ApiError::from_status(
                StatusCode::TOO_MANY_REQUESTS,
                format!("tenant {tenant} is using its whole share of the platform; retry shortly"),
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
        };
        if gate.waiting.fetch_add(1, Ordering::SeqCst) >= config.tenant_queue {
            gate.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(too_many());
        }
        let waited = tokio::time::timeout(
            Duration::from_millis(config.tenant_queue_timeout_ms),
            Arc::clone(&gate.permits).acquire_owned(),
        )
        .await;
        gate.waiting.fetch_sub(1, Ordering::SeqCst);
        match waited {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(too_many()),
        }
    }
}

/// Maps a plugin failure to the gateway's answer (DESIGN "Gateway outcomes").
fn call_error(plugin: &PluginName, e: CallError) -> ApiError {
    let reason = e.to_string();
    let kind = e.kind();
    let error = match e {
        CallError::Deadline(_) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "plugin-timeout",
            "Plugin timed out",
            format!("{plugin} did not answer in time"),
        ),
        CallError::BodyTooLarge(limit) => ApiError::from_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {limit} bytes"),
        ),
        CallError::Internal(cause) => return ApiError::internal(cause),
        CallError::MemoryCap(_)
        | CallError::Trap(_)
        | CallError::BadResponse(_)
        | CallError::HostLimit(_) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "plugin-failed",
            "Plugin failed",
            format!("{plugin} failed to answer"),
        ),
    };
    error
        .with_extension("reason", reason)
        .with_extension("outcome", kind)
}

/// The response header naming the plugin version that answered, e.g. `hello@0.2.0`.
pub const SERVED_BY: &str = "x-guildhall-plugin";

/// Request headers the platform sets on every plugin call; callers cannot set their own.
const PLATFORM_HEADER_PREFIX: &str = "x-guildhall-";
/// The tenant of the call, e.g. `north-downs`.
pub const TENANT_HEADER: &str = "x-guildhall-tenant";
/// The council of the call, e.g. `tandridge`.
pub const COUNCIL_HEADER: &str = "x-guildhall-council";

/// Headers never passed to a plugin: credentials stay with the platform.
const WITHHELD: [header::HeaderName; 3] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
];

/// `ANY /s/{tenant}/{council}/{plugin}/{*path}`
pub(crate) async fn serve(State(state): State<AppState>, request: Request) -> Response {
    match serve_inner(&state, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn serve_inner(state: &AppState, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let not_found = || ApiError::not_found("no such service");
    let crate::service_path::ServicePath {
        tenant,
        council,
        plugin,
        ..
    } = crate::service_path::ServicePath::parse(parts.uri.path()).ok_or_else(not_found)?;

    let started = std::time::Instant::now();
    let gateway = &state.gateway;
    let resolved = gateway
        .resolve(&tenant, &plugin)
        .await?
        .ok_or_else(not_found)?;
    if !resolved.serves(&council) {
        return Err(not_found());
    }
    let version = resolved.prepared.manifest().version.to_string();
    let span = tracing::Span::current();
    span.record("guildhall.tenant", tenant.as_str());
    span.record("guildhall.council", council.as_str());
    span.record("guildhall.plugin", plugin.as_str());
    span.record("guildhall.plugin.version", version.as_str());
    let body = gateway.read_body(body).await?;
    let principal = crate::access::principal(state, &parts.headers, &parts.extensions).await?;
    let caller = match &principal {
        guildhall_authz::Principal::Anonymous => Principal::Anonymous,
        guildhall_authz::Principal::Authenticated { subject, .. } => {
            state.authz.refresh().await?;
            let limit = state
                .authz
                .council_limit(&principal, &resolved.scope)
                .await?;
            // Roles limited to another council do not hold in this one.
            let roles = if limit.as_deref().is_some_and(|c| c != council.as_str()) {
                Vec::new()
            } else {
                state
                    .authz
                    .roles_in(&principal, &tenant)
                    .into_iter()
                    .map(|r| r.as_str().to_string())
                    .collect()
            };
            Principal::Subject {
                id: subject.clone(),
                roles,
                council: limit,
            }
        }
    };
    let (result, report) = call(state, &resolved, &tenant, &council, parts, body, caller).await;
    let status = match &result {
        Ok(response) => response.status(),
        Err(e) => e.status(),
    };
    let outcome = report.as_ref().map_or(
        if status == StatusCode::TOO_MANY_REQUESTS {
            "rejected"
        } else {
            "refused"
        },
        |r| r.outcome,
    );
    span.record("guildhall.outcome", outcome);
    let telemetry = &state.telemetry;
    if status == StatusCode::TOO_MANY_REQUESTS {
        telemetry.metrics.rejected(tenant.as_str());
    }
    telemetry.meter.record(&CallSample {
        tenant: tenant.as_str(),
        council: council.as_str(),
        plugin: plugin.as_str(),
        version: &version,
        error: status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error(),
        wall: report
            .as_ref()
            .map_or_else(|| started.elapsed(), |r| r.wall),
        cpu: report.as_ref().map_or(std::time::Duration::ZERO, |r| r.cpu),
        bytes_in: report.as_ref().map_or(0, |r| r.bytes_in),
        bytes_out: report.as_ref().map_or(0, |r| r.bytes_out),
        kv_bytes: report.as_ref().map_or(0, |r| r.kv_bytes),
    });
    let mut response = match result {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    let served_by = HeaderValue::from_str(&format!(
        "{plugin}@{}",
        resolved.prepared.manifest().version
    ))
    .ok();
    // Which version answered: for operators during upgrades, and for tests of them.
    if let Some(value) = served_by {
        response.headers_mut().insert(SERVED_BY, value);
    }
    Ok(response)
}

/// Whether reading a body failed on the size cap rather than on the connection.
fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Admits the call to the tenant's share, passes the request (its body already read) to
/// the plugin and maps its failure; the report is absent when the plugin never ran (429).
async fn call(
    state: &AppState,
    resolved: &Resolved,
    tenant: &TenantId,
    council: &CouncilId,
    parts: http::request::Parts,
    body: axum::body::Bytes,
    caller: Principal,
) -> (Result<Response, ApiError>, Option<CallReport>) {
    let gateway = &state.gateway;
    let plugin = resolved.prepared.plugin();
    let _permit = match gateway.admit(tenant).await {
        Ok(permit) => permit,
        Err(e) => return (Err(e), None),
    };
    // The call's memory cap comes out of the platform's memory budget while it runs.
    let _memory = match state.runtime.reserve_memory(&resolved.prepared).await {
        Ok(reservation) => reservation,
        Err(busy) => {
            tracing::warn!(tenant = %tenant, plugin = %plugin, error = %busy, "memory budget in use");
            let error = ApiError::from_status(
                StatusCode::TOO_MANY_REQUESTS,
                "the platform is running as many plugin calls as its memory allows; retry shortly",
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return (Err(error), None);
        }
    };
    let rest = parts
        .uri
        .path()
        .strip_prefix("/s/")
        .unwrap_or_default()
        .splitn(4, '/')
        .nth(3)
        .unwrap_or("");
    let path_and_query = match parts.uri.query() {
        Some(q) => format!("/{rest}?{q}"),
        None => format!("/{rest}"),
    };
    let mut builder = http::Request::builder()
        .method(parts.method.clone())
        .uri(path_and_query);
    for (name, value) in &parts.headers {
        if !WITHHELD.contains(name) && !name.as_str().starts_with(PLATFORM_HEADER_PREFIX) {
            builder = builder.header(name, value);
        }
    }
    // Where the call runs, also for plugins that import nothing of the platform.
    builder = builder
        .header(TENANT_HEADER, tenant.as_str())
        .header(COUNCIL_HEADER, council.as_str());
    let plugin_request = match builder.body(body) {
        Ok(request) => request,
        Err(e) => {
            return (
                Err(ApiError::bad_request(format!(
                    "the request cannot be passed on: {e}"
                ))),
                None,
            );
        }
    };
    let request_id = parts
        .extensions
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let version = resolved.prepared.manifest().version.to_string();
    let span = tracing::info_span!(
        "plugin call",
        otel.name = %format!("plugin call {plugin}"),
        guildhall.tenant = %tenant,
        guildhall.council = %council,
        guildhall.plugin = %plugin,
        guildhall.plugin.version = %version,
        guildhall.outcome = tracing::field::Empty,
    );
    let call = CallContext {
        tenant: resolved.scope.tenant().clone(),
        council: council.clone(),
        principal: caller,
        config: Arc::clone(&resolved.config),
        request_id,
        traceparent: guildhall_telemetry::propagation::outbound_traceparent(&span, &parts.headers),
    };
    let (result, report) = state
        .runtime
        .handle(&resolved.prepared, call, plugin_request)
        .instrument(span.clone())
        .await;
    span.record("guildhall.outcome", report.outcome);
    state.telemetry.metrics.plugin_call(
        tenant.as_str(),
        plugin.as_str(),
        &version,
        report.outcome,
        report.wall,
        report.cpu,
    );
    tracing::info!(
        parent: &span,
        tenant = %tenant,
        plugin = %plugin,
        version = %version,
        outcome = report.outcome,
        wall_ms = report.wall.as_secs_f64() * 1000.0,
        cpu_ms = report.cpu.as_secs_f64() * 1000.0,
        bytes_in = report.bytes_in,
        bytes_out = report.bytes_out,
        denied = ?report.denied,
        "plugin call"
    );
    let response = match result {
        Ok(response) => Ok(response.map(Body::from)),
        Err(e) => Err(call_error(plugin, e)),
    };
    (response, Some(report))
}

/// Install changes prepare the version they switch to through the gateway, so its first
/// call finds it compiled.
impl guildhall_operations::installs::Serving for Gateway {
    async fn prepare(&self, manifest: &Manifest) -> Result<(), guildhall_operations::Error> {
        Gateway::prepare(self, manifest).await.map(drop)
    }
}
