//! What handlers reach: the server's state, built once by the wiring and cloned into every
//! request. Kept apart from the router, which only assembles routes and layers over it.

use std::sync::Arc;

use guildhall_runtime::Runtime;
use guildhall_store::Store;

use crate::{Gateway, TrustedKeys, client};

/// What every handler can reach. axum clones it for every handler and middleware a request
/// passes, so it is one shared reference: a clone is one reference count, not one per part
/// (each a cache line the worker threads would pass between them on every request).
#[derive(Debug, Clone)]
pub struct AppState(Arc<AppStateParts>);

/// The parts of [`AppState`], built once by the wiring.
#[derive(Debug)]
pub struct AppStateParts {
    /// The database.
    pub store: Store,
    /// The plugin runtime.
    pub runtime: Runtime,
    /// The service gateway's caches and shares.
    pub gateway: Gateway,
    /// The `[catalogue]` signature settings and the operator's own signing keys.
    pub trusted_keys: Arc<TrustedKeys>,
    /// Authentication and access control.
    pub authz: guildhall_authz::Authz,
    /// Whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<client::TrustedProxies>,
    /// Metrics, metering and feedback limits.
    pub telemetry: Telemetry,
    /// The key install secrets are sealed with; `None` when none is configured.
    pub keyring: Option<Arc<guildhall_store::Keyring>>,
    /// How this replica runs plugins' schedules.
    pub schedules: crate::SchedulesConfig,
    /// Tenant exports being built on this replica: one at a time (`AppState::EXPORTS`).
    pub exports: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    /// The state over `parts`.
    pub fn new(parts: AppStateParts) -> Self {
        Self(Arc::new(parts))
    }

    /// How many tenant exports one replica builds at once: each stages the whole alliance on
    /// disk and holds a database snapshot while it is built.
    pub const EXPORTS: usize = 1;
}

impl std::ops::Deref for AppState {
    type Target = AppStateParts;

    fn deref(&self) -> &AppStateParts {
        &self.0
    }
}

/// What the telemetry routes and the gateway record into.
#[derive(Debug, Clone)]
pub struct Telemetry {
    /// This server's metrics.
    pub metrics: guildhall_telemetry::Metrics,
    /// This server's meter.
    pub meter: guildhall_telemetry::Meter,
    /// The price of one second of plugin CPU time, in pounds.
    pub price_per_cpu_second: f64,
    /// Ratings per client address per minute.
    pub feedback_limiter: Arc<guildhall_authz::FailureLimiter>,
}

impl Telemetry {
    /// Ratings one client address may send per minute.
    pub const FEEDBACK_PER_MINUTE: u32 = 10;

    /// Telemetry over `metrics` and `meter`.
    pub fn new(
        metrics: guildhall_telemetry::Metrics,
        meter: guildhall_telemetry::Meter,
        price_per_cpu_second: f64,
    ) -> Self {
        Self {
            metrics,
            meter,
            price_per_cpu_second,
            feedback_limiter: Arc::new(guildhall_authz::FailureLimiter::new(
                Self::FEEDBACK_PER_MINUTE,
                std::time::Duration::from_secs(60),
            )),
        }
    }
}
