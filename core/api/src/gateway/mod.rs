//! The service gateway: `ANY /s/{tenant}/{council}/{plugin}/{*path}` runs the tenant's
//! install of the plugin for that council.
//!
//! Installs are resolved once and cached with the platform revision they were read at; an
//! entry is stale once its tenant has a later revision, so a change to one tenant's
//! installs, councils or settings re-resolves only that tenant's installs. A change made
//! through this replica is known at once (the store records each tenant's committed
//! revision); a change made through another replica is noticed by [`Gateway::watch`], which
//! polls the platform revision (a single indexed row) every half second and, when it moved,
//! reads which tenants changed from the revision log (`tenant_revisions`, one row per
//! revision); a revision missing from the log (a change by an earlier release) drops every
//! cached install. Polling a counter works the same on SQLite and PostgreSQL and needs no
//! long-lived connection; its cost is one tiny query per replica per interval, and the bound
//! on staleness is the interval.
//!
//! Each tenant has its own share (`shares`): while the process is saturated
//! (`runtime.saturation_calls` calls in flight, or its worker threads busy) a call of a
//! tenant holding its fair share waits, parked, before its install is resolved, and gets 429
//! with `Retry-After` if it waits too long; then `runtime.tenant_concurrency` calls at once,
//! a short queue, and 429. A tenant flooding the gateway fills only its own share.
//!
//! A call's body is read whole, bounded in size (`runtime.max_request_body_bytes`, 413) and
//! in time (`server.body_read_timeout_secs`, 408), before the call asks for a slot: a
//! client trickling an upload holds a connection, never a share of its tenant.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use guildhall_domain::manifest::Manifest;
use guildhall_domain::{PluginName, TenantId};
use guildhall_runtime::Runtime;
use guildhall_store::Store;

mod handler;
mod installs;
mod schedules;
mod session;
mod shares;
mod subjects;

pub(crate) use handler::serve;
pub use handler::{COUNCIL_HEADER, ORIGIN_HEADER, SERVED_BY, TENANT_HEADER};
pub use installs::Installed;
pub(crate) use installs::Resolved;
use installs::{InstallCache, PreparedSlot};
pub(crate) use schedules::{RunOutcome, next_due, run_now};
pub use schedules::{SchedulesConfig, spawn_scheduler};
pub(crate) use session::Refusal;
pub use session::{CSRF_HEADER, SessionsConfig, cookie_name};
use shares::TenantGate;
pub(crate) use subjects::answer as answer_subject_request;
pub use subjects::{EventView, Kind as SubjectKind, RecordView, ServiceAnswer};

/// How often replicas look for install changes made elsewhere.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// The Content-Security-Policy of plugin responses that set none: resources from this
/// origin only, no plugins (`object-src`), no `<base>` rewriting, no framing by others.
pub const DEFAULT_CSP: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Every plugin answer also carries a policy of the platform's own, which the plugin's
/// cannot loosen (browsers enforce every policy a response carries): the only scripts that
/// run on a plugin's page are the platform's GOV.UK Frontend, no plugin embeds objects or
/// rewrites `<base>`, and no page is framed. Plugins share the platform's origin with each
/// other and the console, so a script of one plugin could otherwise read another's pages
/// (and the session tokens in them) with the citizen's cookies. `{assets}` is the absolute
/// source of the shared assets' folder; with no usable `Host`, no script runs.
fn script_policy(assets: Option<&str>) -> String {
    let scripts = assets.map_or_else(|| "'none'".to_string(), |a| format!("{a}/"));
    format!("script-src {scripts}; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
}

/// How long a call's body may take to arrive unless configured otherwise.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// The gateway's caches and concurrency shares; cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<GatewayInner>,
}

struct GatewayInner {
    store: Store,
    runtime: Runtime,
    /// The last platform revision the watcher fully processed; -1 before its first look.
    watched: AtomicI64,
    installs: Mutex<InstallCache>,
    prepared: Mutex<HashMap<(PluginName, String), PreparedSlot>>,
    gates: Mutex<HashMap<TenantId, Arc<TenantGate>>>,
    /// Calls in flight per tenant, for admission when the process is saturated.
    admission: shares::Admission,
    body_timeout: Duration,
    sessions: SessionsConfig,
    /// The path of the shared GOV.UK Frontend assets, for plugins' pages.
    assets: String,
    /// The hosts residents reach the platform at (`server.public_hosts`); empty: any.
    public_hosts: Vec<String>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("watched", &self.inner.watched.load(Ordering::Relaxed))
            .finish()
    }
}

impl Gateway {
    /// A gateway over the store and runtime.
    pub fn new(store: Store, runtime: Runtime) -> Self {
        let admission = shares::Admission::new(
            runtime.config().saturation(),
            Duration::from_millis(runtime.config().tenant_queue_timeout_ms),
        );
        Self {
            inner: Arc::new(GatewayInner {
                store,
                runtime,
                watched: AtomicI64::new(-1),
                installs: Mutex::new(InstallCache::default()),
                prepared: Mutex::new(HashMap::new()),
                gates: Mutex::new(HashMap::new()),
                admission,
                body_timeout: DEFAULT_BODY_TIMEOUT,
                sessions: SessionsConfig::default(),
                assets: String::new(),
                public_hosts: Vec::new(),
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

    /// The same gateway with these settings for citizens' sessions.
    ///
    /// # Panics
    /// When the gateway has already been cloned: set this while building it.
    #[must_use]
    pub fn with_sessions(mut self, sessions: SessionsConfig) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("the sessions' settings are set before the gateway is shared")
            .sessions = sessions;
        self
    }

    /// The same gateway telling plugins their origin only for requests to these hosts
    /// (`server.public_hosts`, compared without case); empty: any host.
    ///
    /// # Panics
    /// When the gateway has already been cloned: set this while building it.
    #[must_use]
    pub fn with_public_hosts(mut self, hosts: Vec<String>) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("the public hosts are set before the gateway is shared")
            .public_hosts = hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect();
        self
    }

    /// The same gateway telling plugins' pages to link the shared GOV.UK Frontend assets
    /// at `path` (e.g. `/assets/govuk-frontend/3f2a…`).
    ///
    /// # Panics
    /// When the gateway has already been cloned: set this while building it.
    #[must_use]
    pub fn with_assets(mut self, path: impl Into<String>) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("the assets' path is set before the gateway is shared")
            .assets = path.into();
        self
    }

    /// The platform's policy for a plugin answer to a request with these headers (see
    /// [`script_policy`]): scripts only from the shared assets' folder at the `Host` the
    /// browser asked (`http://` also matches `https://` there).
    pub(crate) fn script_policy(&self, headers: &http::HeaderMap) -> http::HeaderValue {
        let assets = match public_host(headers) {
            Some(host) if !self.inner.assets.is_empty() => {
                Some(format!("http://{host}{}", self.inner.assets))
            }
            _ => None,
        };
        http::HeaderValue::from_str(&script_policy(assets.as_deref()))
            .unwrap_or_else(|_| http::HeaderValue::from_static("script-src 'none'"))
    }

    /// Where residents reach the platform, for a plugin building absolute links (a payment's
    /// return address): the `Host` they asked when it is one of `server.public_hosts` (any,
    /// when none are configured), `https` when the platform's cookies are marked secure (it
    /// is served over TLS) and `http` otherwise. `None` without such a `Host`.
    pub(crate) fn public_origin(&self, headers: &http::HeaderMap) -> Option<String> {
        let scheme = if self.inner.sessions.secure_cookies {
            "https"
        } else {
            "http"
        };
        let public = &self.inner.public_hosts;
        public_host(headers)
            .filter(|host| public.is_empty() || public.iter().any(|p| p.eq_ignore_ascii_case(host)))
            .map(|host| format!("{scheme}://{host}"))
    }
}

/// The request's `Host`, when it is one: letters, digits, `.`, `-`, a port and IPv6
/// brackets only, so it can be put in a policy or a link as it is.
fn public_host(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
        })
}

/// Install changes prepare the version they switch to through the gateway, so its first
/// call finds it compiled.
impl guildhall_operations::installs::Serving for Gateway {
    async fn prepare(&self, manifest: &Manifest) -> Result<(), guildhall_operations::Error> {
        Gateway::prepare(self, manifest).await.map(drop)
    }
}
