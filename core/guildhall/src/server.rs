//! Starting, serving and stopping: the process lifecycle Kubernetes relies on.
//!
//! On SIGTERM or SIGINT the server stops accepting connections, lets in-flight requests
//! finish for at most `http.shutdown_grace_secs`, closes the database pool and returns.
//! Connections are accepted and bounded by [`crate::connections`].

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use guildhall_store::{PoolOptions, Store};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// A running server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    store: Store,
}

/// Connects to the configured database and applies pending migrations.
///
/// With `database.admin_url` set, migrations run over that (owner) connection, which then
/// grants the server's role what it needs and is closed; the server keeps only its own.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let pool = PoolOptions {
        max_connections: config.database.max_connections,
        acquire_timeout: Duration::from_millis(config.database.acquire_timeout_ms),
        statement_timeout: Duration::from_millis(config.database.statement_timeout_ms),
    };
    let store = Store::connect(&config.database.url, &pool)
        .await
        .with_context(|| format!("cannot open the database {}", config.database.url))?;
    // Processes starting together on one database migrate and grant one at a time.
    let schema = config
        .database
        .admin_url
        .as_ref()
        .unwrap_or(&config.database.url);
    let lock = guildhall_store::SchemaLock::acquire(schema)
        .await
        .with_context(|| format!("cannot lock the database schema of {schema}"))?;
    let applied = match &config.database.admin_url {
        Some(admin_url) if admin_url != &config.database.url => {
            let admin = Store::connect(
                admin_url,
                &PoolOptions {
                    max_connections: 2,
                    acquire_timeout: pool.acquire_timeout,
                    // Migrations may rewrite large tables.
                    statement_timeout: Duration::ZERO,
                },
            )
            .await
            .with_context(|| format!("cannot open the database as its owner {admin_url}"))?;
            let applied = admin
                .migrate()
                .await
                .context("cannot apply database migrations")?;
            if let Some(role) = store.current_role().await? {
                admin
                    .grant_application_role(&role)
                    .await
                    .with_context(|| format!("cannot grant the role {role} its privileges"))?;
            }
            admin.close().await?;
            applied
        }
        _ => store
            .migrate()
            .await
            .context("cannot apply database migrations")?,
    };
    lock.release().await?;
    if store.bypasses_row_security().await? == Some(true) {
        tracing::warn!(
            "the database role is a superuser or has BYPASSRLS: row-level security does not \
             separate tenants; connect as an ordinary role (see docs/operations.md)"
        );
    }
    if applied.is_empty() {
        tracing::info!(database = %config.database.url, "database schema is current");
    } else {
        tracing::info!(
            database = %config.database.url,
            count = applied.len(),
            migrations = %applied.join(", "),
            "applied pending database migrations"
        );
    }
    Ok(store)
}

/// Checks what loading cannot: values that must parse (trusted keys, outbound CIDRs) and
/// limits that must be consistent.
pub fn check_config(config: &Config) -> anyhow::Result<()> {
    guildhall_api::TrustedKeys::from_config(&config.catalogue).map_err(anyhow::Error::msg)?;
    guildhall_authz::Oidc::new(&config.auth.oidc).context("invalid [auth.oidc]")?;
    config.runtime.validate().map_err(anyhow::Error::msg)?;
    config.server.validate().map_err(anyhow::Error::msg)?;
    config.database.url.backend()?;
    config
        .console
        .validate()
        .map_err(anyhow::Error::msg)
        .context("invalid [console]")?;
    config
        .sessions
        .validate()
        .map_err(anyhow::Error::msg)
        .context("invalid [sessions]")?;
    config
        .secrets
        .keyring()
        .map_err(anyhow::Error::msg)
        .context("invalid [secrets]")?;
    config
        .schedules
        .validate()
        .map_err(anyhow::Error::msg)
        .context("invalid [schedules]")?;
    config
        .retention
        .validate()
        .map_err(anyhow::Error::msg)
        .context("invalid [retention]")?;
    check_telemetry(config)
}

/// Runs the retention job each `retention.interval_secs` on this replica (each run happens
/// once across replicas), unless `retention.enabled` is false.
fn spawn_retention(
    store: Store,
    config: guildhall_operations::retention::RetentionConfig,
) -> Option<tokio::task::JoinHandle<()>> {
    if !config.enabled {
        return None;
    }
    let runner = format!(
        "{}-{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "guildhall".to_string()),
        std::process::id()
    );
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(config.interval_secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) =
                guildhall_operations::retention::run_now(&store, &runner, config.interval_secs)
                    .await
            {
                tracing::warn!(error = %e, "the retention job failed");
            }
        }
    }))
}

/// The keyring of install secrets: the configured key, or on SQLite with none configured,
/// a key kept in `secret.key` next to the database file (made on first start, readable by
/// its owner only), so a trial install can set secrets with no set-up. PostgreSQL serves
/// several replicas, which must share a key: there the operator sets one.
pub fn keyring(config: &Config) -> anyhow::Result<Option<guildhall_store::Keyring>> {
    if let Some(ring) = config
        .secrets
        .keyring()
        .map_err(anyhow::Error::msg)
        .context("invalid [secrets]")?
    {
        return Ok(Some(ring));
    }
    let Some(path) = config.database.url.sqlite_path() else {
        return Ok(None);
    };
    let file = path
        .parent()
        .unwrap_or_else(|| std::path::Path::new("."))
        .join("secret.key");
    let key = match std::fs::read_to_string(&file) {
        Ok(key) => key,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = guildhall_store::Keyring::generate_key();
            write_private(&file, &key)
                .with_context(|| format!("cannot write {}", file.display()))?;
            tracing::info!(file = %file.display(), "made a key for install secrets");
            key
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    Ok(Some(
        guildhall_store::Keyring::from_base64(&key, &config.secrets.previous_keys)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?,
    ))
}

/// Writes `text` to a new file only its owner can read.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

/// Checks `[telemetry]` and `[metering]`.
pub fn check_telemetry(config: &Config) -> anyhow::Result<()> {
    config.telemetry.validate().map_err(anyhow::Error::msg)?;
    config.metering.validate().map_err(anyhow::Error::msg)
}

/// Builds this server's metrics and meter, and the gauges read at each scrape.
fn telemetry(
    config: &Config,
    store: &Store,
    runtime: &guildhall_runtime::Runtime,
    gateway: &guildhall_api::Gateway,
) -> anyhow::Result<guildhall_api::Telemetry> {
    use guildhall_telemetry::KeyValue;
    let metrics = guildhall_telemetry::Metrics::new().context("cannot set up metrics")?;
    let meter =
        guildhall_telemetry::Meter::new(store.clone(), metrics.clone(), config.metering.enabled);
    let tenant = |t: &guildhall_domain::TenantId| KeyValue::new("guildhall.tenant", t.to_string());
    let g = gateway.clone();
    metrics.observe_gauge(
        "guildhall.gateway.queue.depth",
        "Calls waiting for a slot in their tenant's share",
        move || {
            g.load()
                .iter()
                .map(|(t, waiting, _)| (*waiting as u64, vec![tenant(t)]))
                .collect()
        },
    );
    let g = gateway.clone();
    metrics.observe_gauge(
        "guildhall.gateway.in_flight",
        "Plugin calls running, per tenant",
        move || {
            g.load()
                .iter()
                .map(|(t, _, running)| (*running as u64, vec![tenant(t)]))
                .collect()
        },
    );
    let g = gateway.clone();
    metrics.observe_counter(
        "guildhall.gateway.install.resolutions",
        "Installs read from the database because the cached one was missing or older than its tenant's last change, per tenant",
        move || {
            g.resolutions()
                .into_iter()
                .map(|(t, n)| (n, vec![tenant(&t)]))
                .collect()
        },
    );
    let r = runtime.clone();
    metrics.observe_counter(
        "guildhall.runtime.compiles",
        "Components compiled from bytes (once per digest)",
        move || vec![(r.stats().compiles, vec![])],
    );
    let r = runtime.clone();
    metrics.observe_seconds(
        "guildhall.runtime.compile.time",
        "Time spent compiling components",
        move || vec![(r.stats().compile_time.as_secs_f64(), vec![])],
    );
    let r = runtime.clone();
    metrics.observe_gauge(
        "guildhall.runtime.uploads.compiling",
        "Uploads holding one of the upload compile permits",
        move || vec![(r.stats().uploads_compiling, vec![])],
    );
    let r = runtime.clone();
    metrics.observe_gauge(
        "guildhall.runtime.memory.reserved",
        "MiB of runtime.memory_budget_mib promised to plugin calls running now",
        move || vec![(u64::from(r.memory_in_use_mib()), vec![])],
    );
    let r = runtime.clone();
    metrics.observe_counter(
        "guildhall.runtime.cache.hits",
        "Compiled components found in memory, in the on-disk cache or shared by another replica",
        move || {
            let s = r.stats();
            vec![
                (s.memory_hits, vec![KeyValue::new("cache", "memory")]),
                (s.disk_loads, vec![KeyValue::new("cache", "disk")]),
                (s.shared_loads, vec![KeyValue::new("cache", "shared")]),
            ]
        },
    );
    let s = store.clone();
    metrics.observe_gauge(
        "guildhall.db.pool.connections",
        "Database connections in the pool, idle or in use",
        move || {
            let (open, idle) = s.pool_connections();
            vec![
                (u64::from(idle), vec![KeyValue::new("state", "idle")]),
                (
                    u64::from(open.saturating_sub(idle)),
                    vec![KeyValue::new("state", "in_use")],
                ),
            ]
        },
    );
    let m = meter.clone();
    metrics.observe_gauge(
        "guildhall.metering.pending",
        "Metered keys and failed batches waiting to be written",
        move || vec![(m.pending() as u64, vec![])],
    );
    Ok(guildhall_api::Telemetry::new(
        metrics,
        meter,
        config.metering.price_per_cpu_second,
    ))
}

/// Builds what every handler shares: the store, the plugin runtime (one wasmtime engine),
/// the gateway and the trusted publisher keys.
pub async fn app_state(config: &Config, store: &Store) -> anyhow::Result<guildhall_api::AppState> {
    let oidc = guildhall_authz::Oidc::new(&config.auth.oidc).context("invalid [auth.oidc]")?;
    let authz = guildhall_authz::Authz::new(store.clone(), oidc)
        .await
        .context("cannot load the access-control rules")?;
    let keyring = keyring(config)?.map(std::sync::Arc::new);
    let runtime = guildhall_runtime::Runtime::new(
        config.runtime.clone(),
        crate::ports::runtime_ports(
            store,
            std::sync::Arc::new(guildhall_api::access::PluginAuthorizer(authz.clone())),
            keyring.clone(),
        ),
    )
    .context("cannot start the plugin runtime")?;
    // Replicas share what they compile, authenticated under a key derived from the
    // secrets key; without one, each replica compiles for itself.
    let share = match config.runtime.share_compiled {
        guildhall_runtime::ShareCompiled::Auto => {
            config.database.url.expose().starts_with("postgres")
        }
        guildhall_runtime::ShareCompiled::On => true,
        guildhall_runtime::ShareCompiled::Off => false,
    };
    if share && keyring.is_none() {
        tracing::warn!(
            "compiled components are not shared between replicas: no secrets key is configured (secrets.key)"
        );
    }
    if let Some(keyring) = keyring.as_ref().filter(|_| share) {
        runtime.share_artefacts(std::sync::Arc::new(crate::ports::StoreArtefacts::new(
            store.clone(),
            keyring.artefact_key().clone(),
        )));
    }
    if !runtime.pooling() {
        tracing::warn!("the plugin runtime allocates instances on demand (slower than pooling)");
    }
    let trusted_keys =
        guildhall_api::TrustedKeys::from_config(&config.catalogue).map_err(anyhow::Error::msg)?;
    config
        .sessions
        .validate()
        .map_err(anyhow::Error::msg)
        .context("invalid [sessions]")?;
    let gateway = guildhall_api::Gateway::new(store.clone(), runtime.clone())
        .with_body_timeout(Duration::from_secs(config.server.body_read_timeout_secs))
        .with_sessions(config.sessions.clone())
        .with_public_hosts(config.server.public_hosts.clone())
        .with_assets(guildhall_console::assets::Assets::get().base());
    let telemetry = telemetry(config, store, &runtime, &gateway)?;
    Ok(guildhall_api::AppState::new(guildhall_api::AppStateParts {
        store: store.clone(),
        gateway,
        runtime,
        trusted_keys: std::sync::Arc::new(trusted_keys),
        authz,
        trusted_proxies: std::sync::Arc::new(guildhall_api::client::TrustedProxies::new(
            config.server.trusted_proxies.clone(),
        )),
        telemetry,
        keyring,
        schedules: config.schedules.clone(),
        exports: std::sync::Arc::new(tokio::sync::Semaphore::new(
            guildhall_api::AppState::EXPORTS,
        )),
    }))
}

impl Server {
    /// Opens the database, migrates it, binds the listener and starts serving.
    pub async fn start(config: &Config) -> anyhow::Result<Self> {
        config.server.validate().map_err(anyhow::Error::msg)?;
        let store = open_store(config).await?;
        let handle = store.clone();
        let listener = tokio::net::TcpListener::bind(config.listen.0)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen.0))?;
        let addr = listener.local_addr()?;
        let state = app_state(config, &store).await?;
        let watcher = state.gateway.watch();
        let session_purger = state.gateway.spawn_session_purger();
        let retention = spawn_retention(store.clone(), config.retention.clone());
        let flusher_stop = CancellationToken::new();
        let flusher = state.telemetry.meter.spawn_flusher(
            Duration::from_secs(config.metering.flush_interval_secs),
            flusher_stop.clone(),
        );
        let (pages, purger) = if config.console.enabled {
            let console = guildhall_console::Console::new(state.clone(), &config.console)
                .map_err(anyhow::Error::msg)
                .context("invalid [console]")?;
            let purger = guildhall_console::spawn_purger(console.clone());
            (
                guildhall_console::assets::router().merge(guildhall_console::router(console)),
                Some(purger),
            )
        } else {
            // Services' own pages link to the shared GOV.UK Frontend, console or not.
            (guildhall_console::assets::router(), None)
        };
        let scheduler_state = state.clone();
        let app = guildhall_api::router(
            state,
            &guildhall_api::Settings {
                api_body_limit: config.http.api_body_limit_bytes,
                pages: Some(pages),
            },
        );
        let stop = CancellationToken::new();
        let stop_handle = stop.clone();
        // Schedules stop being claimed when the drain begins; a run in progress finishes.
        let scheduler = guildhall_api::spawn_scheduler(scheduler_state, stop.clone());
        let grace = Duration::from_secs(config.http.shutdown_grace_secs);
        let limits = crate::connections::Limits::from(&config.server);
        let task = tokio::spawn(async move {
            let result = serve(listener, app, limits, stop, grace).await;
            watcher.abort();
            if let Some(scheduler) = scheduler
                && tokio::time::timeout(grace, scheduler).await.is_err()
            {
                tracing::warn!("a scheduled run did not finish within the shutdown grace");
            }
            session_purger.abort();
            if let Some(retention) = retention {
                retention.abort();
            }
            if let Some(purger) = purger {
                purger.abort();
            }
            // Calls counted up to the end of the drain are written before the pool closes.
            flusher_stop.cancel();
            match flusher.await {
                Ok(flushed) if flushed.failed > 0 => tracing::warn!(
                    failed = flushed.failed,
                    "some metered usage could not be written before stopping"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "the metering task failed"),
            }
            store
                .close()
                .await
                .context("cannot close the database pool")?;
            tracing::info!("stopped");
            result
        });
        tracing::info!(address = %addr, "listening");
        Ok(Self {
            addr,
            stop: stop_handle,
            task,
            store: handle,
        })
    }

    /// The server's database, for changes the gateway must see from its next request
    /// (writes through another connection pool reach it only at its next poll). Closed
    /// when the server stops.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The address the server listens on (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Asks the server to stop accepting and drain.
    pub fn shutdown(&self) {
        self.stop.cancel();
    }

    /// Waits until the server has stopped.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("the server task failed")?
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    limits: crate::connections::Limits,
    stop: CancellationToken,
    grace: Duration,
) -> anyhow::Result<()> {
    let graceful = crate::connections::serve(listener, app, limits, stop.clone());
    let deadline = async {
        stop.cancelled().await;
        tracing::info!(
            grace_secs = grace.as_secs(),
            "shutting down: draining in-flight requests"
        );
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        () = graceful => {}
        () = deadline => tracing::warn!("grace period over; dropping the remaining connections"),
    }
    Ok(())
}

/// Resolves when the process receives SIGTERM or SIGINT.
pub async fn termination_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(term) => term,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the server");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
