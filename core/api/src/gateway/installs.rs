//! The install cache: each tenant's install of a plugin resolved once per change to that
//! tenant, each version prepared (compiled) once, and the watcher that notices changes made
//! through other replicas.
//!
//! An entry holds the platform revision read just before its install was, so it reflects
//! every change up to that revision. It is valid while that revision is at least the
//! highest revision known for its tenant: the store's record of this process's commits
//! ([`guildhall_store::Revision`]) and what the watcher read from the revision log
//! (`tenant_revisions`). A change to one tenant leaves every other tenant's entries valid.
//! When the log cannot say which tenants changed (a revision without its row: bumped by a
//! release that kept no log, during a rolling upgrade, or pruned while this replica lagged;
//! or a row naming no valid tenant), the watcher drops every entry instead.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use guildhall_domain::brand::{COLOUR_PATH, colour_hex};
use guildhall_domain::manifest::Manifest;
use guildhall_domain::{CouncilId, PluginName, Site, TenantId};
use guildhall_runtime::Prepared;
use guildhall_store::{InstallCouncils, TenantRecord, TenantScope};
use guildhall_telemetry::PluginLabels;

use super::{Gateway, WATCH_INTERVAL};
use crate::error::ApiError;

/// A resolved install, valid for the revision it was read at.
pub(crate) struct Resolved {
    pub(super) revision: i64,
    pub(super) scope: TenantScope,
    pub(super) councils: InstallCouncils,
    /// Each council of the tenant's site for this plugin: names, brand and paths.
    pub(super) sites: HashMap<CouncilId, Arc<Site>>,
    /// Each council's settings: the install's, with the council's overrides laid over them.
    pub(super) configs: HashMap<CouncilId, Arc<serde_json::Value>>,
    pub(super) prepared: Arc<Prepared>,
    /// Its calls' metric labels (tenant, plugin, version), built once here.
    pub(super) labels: PluginLabels,
    /// When the plugin was first installed (schedules due before then do not run).
    pub(super) installed_at: time::OffsetDateTime,
}

impl Resolved {
    /// Whether the install serves `council`, a council of its tenant.
    pub(super) fn serves(&self, council: &CouncilId) -> bool {
        self.sites.contains_key(council) && self.councils.includes(council)
    }

    /// The settings `council`'s calls see.
    pub(super) fn config(&self, council: &CouncilId) -> Arc<serde_json::Value> {
        self.configs.get(council).cloned().unwrap_or_default()
    }
}

/// The sites of every council of a tenant for one plugin: a council's own brand, and its
/// alliance's for what it leaves unset.
fn sites(
    tenant: &TenantRecord,
    plugin: &PluginName,
    assets: &str,
) -> HashMap<CouncilId, Arc<Site>> {
    tenant
        .councils
        .iter()
        .map(|council| {
            let pick = |own: &Option<String>, alliance: &Option<String>| {
                own.clone().or_else(|| alliance.clone())
            };
            let (own, alliance) = (&council.brand, &tenant.brand);
            let base_path = format!("/s/{}/{}/{plugin}", tenant.id, council.id);
            let site = Site {
                tenant_name: tenant.name.clone(),
                council_name: council.name.clone(),
                assets: assets.to_string(),
                brand_stylesheet: pick(&own.colour, &alliance.colour)
                    .as_deref()
                    .and_then(colour_hex)
                    .map(|hex| format!("{COLOUR_PATH}/{hex}.css")),
                logo: pick(&own.logo, &alliance.logo),
                contact_url: pick(&own.contact_url, &alliance.contact_url),
                accessibility_url: pick(&own.accessibility_url, &alliance.accessibility_url),
                feedback_path: format!("{base_path}/_feedback"),
                base_path,
            };
            (council.id.clone(), Arc::new(site))
        })
        .collect()
}

/// A plugin installed for a council.
#[derive(Debug, Clone)]
pub struct Installed {
    /// The tenant's scope.
    pub scope: TenantScope,
    /// The installed version.
    pub version: String,
    /// The council's site for the plugin.
    pub site: Arc<Site>,
}

/// One version's preparation, shared by everyone who asks for it.
pub(super) type PreparedSlot = Arc<tokio::sync::OnceCell<Arc<Prepared>>>;

/// How many watcher ticks between sweeps of the cache (a minute).
const SWEEP_EVERY: u32 = 120;

/// How many revisions of the log the sweep keeps below the platform revision: rows older
/// than that are deleted, so the log holds about this many changes however long the
/// platform runs. A replica whose watcher lags further behind (cut off from the database
/// for a while) no longer finds every row it needs, sees a gap and drops its whole install
/// cache, which is safe: its next calls read their installs again.
const LOG_KEPT: i64 = 10_000;

/// The most installs found not to exist that the cache keeps; past it they are forgotten
/// all at once (each is read again on its next call).
const ABSENT_KEPT: usize = 4096;

/// The resolved installs and what they are checked against, under one lock.
#[derive(Default)]
pub(super) struct InstallCache {
    /// Each tenant's installs, resolved.
    entries: HashMap<(TenantId, PluginName), Arc<Resolved>>,
    /// Installs found not to exist (no such tenant, or no such install), with the revision
    /// they were read at, held valid by the same rule as `entries`: a flood of calls to a
    /// plugin that is not installed is answered from here, not from the database. The
    /// names are the caller's, so at most [`ABSENT_KEPT`] are kept.
    absent: HashMap<(TenantId, PluginName), i64>,
    /// The highest revision the watcher read for each tenant changed since the last sweep
    /// (at most one entry per tenant; the sweep empties it).
    seen: HashMap<TenantId, i64>,
    /// No install read before this revision is cached: raised to the platform revision
    /// when the watcher first looks or finds the revision log incomplete, and to the
    /// highest revision a sweep forgets.
    floor: i64,
    /// Installs resolved from the database (cache misses), per tenant, for metrics.
    resolutions: HashMap<TenantId, u64>,
}

impl InstallCache {
    /// The highest revision known for `tenant`: seen by the watcher or committed by this
    /// process (`committed`). `None` when neither since the last sweep.
    fn known(&self, tenant: &TenantId, committed: Option<i64>) -> Option<i64> {
        self.seen.get(tenant).copied().max(committed)
    }

    /// Whether what was read of `tenant` at `revision` is still what the database holds:
    /// no change to the tenant is known since.
    fn valid(&self, tenant: &TenantId, committed: Option<i64>, revision: i64) -> bool {
        self.known(tenant, committed)
            .is_none_or(|known| revision >= known)
    }

    /// Whether the cache holds an install or an absence of `key` read after `revision`.
    fn holds_newer(&self, key: &(TenantId, PluginName), revision: i64) -> bool {
        self.entries
            .get(key)
            .is_some_and(|cached| cached.revision > revision)
            || self.absent.get(key).is_some_and(|read| *read > revision)
    }

    /// Whether a read at `revision` may be kept: at or above the floor, and still valid.
    fn keeps(&self, tenant: &TenantId, committed: Option<i64>, revision: i64) -> bool {
        revision >= self.floor && self.valid(tenant, committed, revision)
    }
}

impl Gateway {
    /// Looks for changes other replicas committed: reads the platform revision and, when it
    /// moved past the last one fully processed, the log rows between the two, raising the
    /// known revision of each tenant they name. This process's own writes need no call; the
    /// store records their revisions as they commit.
    ///
    /// The platform revision is read first: every change at or below it is committed by
    /// then (see `bump_revision`), and revisions are consecutive, so the log holds exactly
    /// one row for each revision above the last one processed, up to it. Fewer rows (a
    /// change by a release that kept no log, or rows pruned while this replica lagged) or a
    /// row naming no valid tenant leave the changed tenants unknown: then every entry read
    /// before the platform revision is dropped and none read before it is cached.
    pub(super) async fn refresh(&self) -> guildhall_store::Result<()> {
        let platform = self.inner.store.revision().await?;
        let watched = self.inner.watched.load(Ordering::SeqCst);
        if watched < 0 {
            // The first look knows nothing older: what was cached before it (read at a lower
            // revision) is dropped, and nothing read before it is cached from now on.
            self.drop_read_before(platform);
            self.inner.watched.store(platform, Ordering::SeqCst);
            return Ok(());
        }
        if platform <= watched {
            return Ok(());
        }
        let expected = platform - watched;
        // Further behind than the log keeps: rows may be gone, so the read is not worth it.
        let logged = if expected > LOG_KEPT {
            Vec::new()
        } else {
            self.inner
                .store
                .tenant_revisions_between(watched, platform)
                .await?
        };
        let found = logged.len();
        let mut changed = HashMap::new();
        let mut unreadable = Vec::new();
        for row in logged {
            match row.tenant {
                Ok(tenant) => {
                    let known = changed.entry(tenant).or_insert(row.revision);
                    *known = (*known).max(row.revision);
                }
                Err(id) => unreadable.push((row.revision, id)),
            }
        }
        if let Some((revision, id)) = unreadable.first() {
            tracing::warn!(
                rows = unreadable.len(),
                revision,
                tenant_id = %id,
                "the revision log names a tenant id that is not valid; dropping every cached install"
            );
            self.drop_read_before(platform);
        } else if !usize::try_from(expected).is_ok_and(|expected| found == expected) {
            tracing::info!(
                from = watched,
                to = platform,
                logged = found,
                "revisions without a row in the revision log (changed by an earlier release, \
                 or pruned while this replica lagged); dropping every cached install"
            );
            self.drop_read_before(platform);
        } else {
            // A tenant changed lately exists (or did): its calls are counted as its own.
            self.inner.admission.know(changed.keys().cloned());
            let mut cache = self.inner.installs.lock().expect("install cache poisoned");
            for (tenant, revision) in changed {
                let seen = cache.seen.entry(tenant).or_insert(revision);
                *seen = (*seen).max(revision);
            }
        }
        self.inner.watched.store(platform, Ordering::SeqCst);
        Ok(())
    }

    /// Drops every entry read before `revision` and caches none read before it from now on
    /// (raises the floor): for when the changes up to `revision` are not known tenant by
    /// tenant. An entry read at `revision` or later reflects them all and stays.
    fn drop_read_before(&self, revision: i64) {
        let mut cache = self.inner.installs.lock().expect("install cache poisoned");
        cache.floor = cache.floor.max(revision);
        cache.entries.retain(|_, entry| entry.revision >= revision);
        cache.absent.retain(|_, read| *read >= revision);
    }

    /// Deletes the revision log's rows more than [`LOG_KEPT`] below the last platform
    /// revision the watcher processed, unless `pruned` (the bound of this replica's last
    /// prune) already covers them. Returns the bound used. Every replica prunes; a row one
    /// deletes is simply gone for the others.
    async fn prune_log(&self, pruned: i64) -> guildhall_store::Result<i64> {
        let below = self.inner.watched.load(Ordering::SeqCst) - LOG_KEPT;
        if below <= pruned {
            return Ok(pruned);
        }
        let deleted = self.inner.store.prune_tenant_revisions(below).await?;
        tracing::debug!(below, deleted, "pruned the revision log");
        Ok(below)
    }

    /// Drops the entries that can no longer be served (older than their tenant's known
    /// revision: a changed or deleted tenant's), then forgets the known revisions, raising
    /// the floor to the highest of them: every entry left is at least as new as its tenant's,
    /// and an install read before a forgotten change is no longer cached. So the revisions
    /// kept per tenant never outnumber the tenants changed in one sweep's time.
    fn sweep(&self) {
        let committed = self.inner.store.committed_revision();
        let mut cache = self.inner.installs.lock().expect("install cache poisoned");
        let mut known = std::mem::take(&mut cache.seen);
        // Taken under the cache's lock, so no request judges an entry in between.
        for (tenant, revision) in committed.take_tenants() {
            let seen = known.entry(tenant).or_insert(revision);
            *seen = (*seen).max(revision);
        }
        let Some(highest) = known.values().copied().max() else {
            return;
        };
        cache
            .entries
            .retain(|(tenant, _), entry| known.get(tenant).is_none_or(|k| entry.revision >= *k));
        cache
            .absent
            .retain(|(tenant, _), read| known.get(tenant).is_none_or(|k| *read >= *k));
        cache.floor = cache.floor.max(highest);
    }

    /// Polls for changes until the process ends, so installs changed through another
    /// replica are served here within [`WATCH_INTERVAL`], and sweeps the cache and prunes
    /// the revision log now and then.
    pub fn watch(&self) -> tokio::task::JoinHandle<()> {
        let gateway = self.clone();
        tokio::spawn(async move {
            // Admission counts the platform's tenants each as itself from the start, so that
            // paths naming made-up tenants, counted together, never hold a real tenant's
            // first calls back on a new replica.
            match gateway.inner.store.tenants().list().await {
                Ok(tenants) => gateway
                    .inner
                    .admission
                    .know(tenants.into_iter().map(|record| record.id)),
                Err(e) => tracing::warn!(error = %e, "cannot list the tenants for admission"),
            }
            let mut tick = tokio::time::interval(WATCH_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut ticks = 0u32;
            let mut pruned = 0;
            loop {
                tick.tick().await;
                if let Err(e) = gateway.refresh().await {
                    tracing::warn!(error = %e, "cannot read the platform's revisions");
                }
                ticks += 1;
                if ticks == SWEEP_EVERY {
                    ticks = 0;
                    gateway.sweep();
                    match gateway.prune_log(pruned).await {
                        Ok(below) => pruned = below,
                        Err(e) => tracing::warn!(error = %e, "cannot prune the revision log"),
                    }
                }
            }
        })
    }

    /// Installs resolved from the database (not found in the cache) per tenant since the
    /// gateway started, for metrics.
    pub fn resolutions(&self) -> Vec<(TenantId, u64)> {
        self.inner
            .installs
            .lock()
            .expect("install cache poisoned")
            .resolutions
            .iter()
            .map(|(tenant, n)| (tenant.clone(), *n))
            .collect()
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

    pub(crate) async fn resolve(
        &self,
        tenant: &TenantId,
        plugin: &PluginName,
    ) -> Result<Option<Arc<Resolved>>, ApiError> {
        // Changes this process committed are seen at once; other replicas' by the watcher.
        let committed = self.inner.store.committed_revision();
        let key = (tenant.clone(), plugin.clone());
        {
            let cache = self.inner.installs.lock().expect("install cache poisoned");
            let valid = |revision| cache.valid(tenant, committed.tenant(tenant), revision);
            if let Some(hit) = cache.entries.get(&key)
                && valid(hit.revision)
            {
                return Ok(Some(Arc::clone(hit)));
            }
            if let Some(&read) = cache.absent.get(&key)
                && valid(read)
            {
                return Ok(None);
            }
        }
        // Read the revision before the install, so a change committed in between makes
        // this entry stale rather than hiding the change.
        let revision = self.inner.store.revision().await?;
        let Some(scope) = self.inner.store.scope(tenant).await? else {
            self.absent(key, revision);
            return Ok(None);
        };
        *self
            .inner
            .installs
            .lock()
            .expect("install cache poisoned")
            .resolutions
            .entry(tenant.clone())
            .or_default() += 1;
        let Some(install) = self.inner.store.installs(&scope).get(plugin).await? else {
            self.absent(key, revision);
            return Ok(None);
        };
        let Some(tenant_record) = self.inner.store.tenants().get(&scope).await? else {
            self.absent(key, revision);
            return Ok(None);
        };
        let sites = sites(&tenant_record, plugin, &self.inner.assets);
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
        let overrides = self
            .inner
            .store
            .council_settings(&scope)
            .all(plugin)
            .await?;
        let configs = sites
            .keys()
            .map(|council| {
                let merged = guildhall_domain::manifest::Manifest::merged_config(
                    &install.config,
                    overrides.get(council.as_str()),
                );
                (council.clone(), Arc::new(merged))
            })
            .collect();
        let labels = PluginLabels::new(tenant.as_str(), plugin.as_str(), prepared.version());
        let resolved = Arc::new(Resolved {
            revision,
            scope,
            councils: install.councils,
            sites,
            configs,
            prepared,
            labels,
            installed_at: install.created_at,
        });
        let mut cache = self.inner.installs.lock().expect("install cache poisoned");
        // A change known since the revision was read (or forgotten by a sweep) makes this
        // read stale already: it answers this call and is not kept.
        let fresh = cache.keeps(tenant, committed.tenant(tenant), revision);
        let newer = cache.holds_newer(&key, revision);
        if fresh && !newer {
            cache.absent.remove(&key);
            cache.entries.insert(key, Arc::clone(&resolved));
        }
        Ok(Some(resolved))
    }

    /// Records an install (or tenant) found not to exist at `revision`: its entry goes, and
    /// the absence is kept, by the rule that keeps entries, until a change to the tenant.
    fn absent(&self, key: (TenantId, PluginName), revision: i64) {
        let committed = self.inner.store.committed_revision();
        let mut cache = self.inner.installs.lock().expect("install cache poisoned");
        let fresh = cache.keeps(&key.0, committed.tenant(&key.0), revision);
        let newer = cache.holds_newer(&key, revision);
        if newer {
            return;
        }
        cache.entries.remove(&key);
        if !fresh {
            cache.absent.remove(&key);
            return;
        }
        if cache.absent.len() >= ABSENT_KEPT {
            cache.absent.clear();
        }
        cache.absent.insert(key, revision);
    }

    /// The tenant's install of `plugin` for `council`: its scope, installed version and
    /// the council's site, or `None` when the plugin is not installed for that council.
    pub async fn installed_version(
        &self,
        tenant: &TenantId,
        council: &CouncilId,
        plugin: &PluginName,
    ) -> Result<Option<Installed>, ApiError> {
        let Some(resolved) = self.resolve(tenant, plugin).await? else {
            return Ok(None);
        };
        let Some(site) = resolved
            .sites
            .get(council)
            .filter(|_| resolved.serves(council))
        else {
            return Ok(None);
        };
        Ok(Some(Installed {
            scope: resolved.scope.clone(),
            version: resolved.prepared.version().to_string(),
            site: Arc::clone(site),
        }))
    }
}
