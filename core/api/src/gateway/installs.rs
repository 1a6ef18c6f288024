//! The install cache: each tenant's install of a plugin resolved once per platform
//! revision, each version prepared (compiled) once, and the watcher that notices changes
//! made through other replicas.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use guildhall_domain::brand::{COLOUR_PATH, colour_hex};
use guildhall_domain::manifest::Manifest;
use guildhall_domain::{CouncilId, PluginName, Site, TenantId};
use guildhall_runtime::Prepared;
use guildhall_store::{InstallCouncils, TenantRecord, TenantScope};

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

impl Gateway {
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

    pub(crate) async fn resolve(
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
        let Some(tenant_record) = self.inner.store.tenants().get(&scope).await? else {
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
        let resolved = Arc::new(Resolved {
            revision,
            scope,
            councils: install.councils,
            sites,
            configs,
            prepared,
            installed_at: install.created_at,
        });
        self.inner
            .installs
            .lock()
            .expect("install cache poisoned")
            .insert(key, Arc::clone(&resolved));
        Ok(Some(resolved))
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
            version: resolved.prepared.manifest().version.to_string(),
            site: Arc::clone(site),
        }))
    }
}
