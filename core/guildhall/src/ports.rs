//! The plugin runtime's ports over the platform's database: plugins' key-value data and
//! events go through the store's tenant-scoped repositories.
//!
//! The runtime hands the ports tenant ids, not scopes: the gateway resolved the tenant
//! (through `Store::scope`) before it started the call, so the adapter rebuilds the scope
//! with [`TenantScope::already_checked`] instead of reading the tenant's row again.

use std::sync::Arc;

use guildhall_domain::{CouncilId, Digest, PluginName, TenantId};
use guildhall_runtime::{
    ArtefactShelf, Authorizer, EventsPort, KvPort, KvSetError, NoSecrets, PluginEvent, PortFuture,
    Ports, SecretsPort, ShelfFuture,
};
use guildhall_store::{Keyring, KvWriteError, NewEvent, Store, TenantScope};

/// The runtime's ports for a server on `store`, with `authorizer` answering plugins'
/// `authz` questions.
pub fn runtime_ports(
    store: &Store,
    authorizer: Arc<dyn Authorizer>,
    keyring: Option<Arc<Keyring>>,
) -> Ports {
    let storage = Arc::new(StorePorts(store.clone()));
    let secrets: Arc<dyn SecretsPort> = match keyring {
        Some(keyring) => Arc::new(StoreSecrets {
            store: store.clone(),
            keyring,
        }),
        None => Arc::new(NoSecrets),
    };
    Ports {
        kv: storage.clone(),
        events: storage,
        authorizer,
        secrets,
        http: None,
    }
}

/// [`ArtefactShelf`] over the platform's database: compiled components shared between
/// replicas, each authenticated with `key`.
#[derive(Debug, Clone)]
pub struct StoreArtefacts {
    store: Store,
    key: Arc<guildhall_store::ArtefactKey>,
}

impl StoreArtefacts {
    /// The shelf in `store`, under `key` ([`Keyring::artefact_key`]).
    pub fn new(store: Store, key: guildhall_store::ArtefactKey) -> Self {
        Self {
            store,
            key: Arc::new(key),
        }
    }
}

impl ArtefactShelf for StoreArtefacts {
    fn get(&self, digest: Digest, engine: String) -> ShelfFuture<Option<Vec<u8>>> {
        let this = self.clone();
        Box::pin(async move {
            Ok(this
                .store
                .shared_artefacts(&this.key)
                .get(&digest.to_string(), &engine)
                .await?)
        })
    }

    fn put(&self, digest: Digest, engine: String, artefact: Arc<Vec<u8>>) -> ShelfFuture<()> {
        let this = self.clone();
        Box::pin(async move {
            Ok(this
                .store
                .shared_artefacts(&this.key)
                .put(&digest.to_string(), &engine, &artefact)
                .await?)
        })
    }
}

/// [`SecretsPort`] over the platform's database, opening values with the keyring.
#[derive(Debug, Clone)]
pub struct StoreSecrets {
    store: Store,
    keyring: Arc<Keyring>,
}

impl SecretsPort for StoreSecrets {
    fn get<'a>(
        &'a self,
        tenant: &'a TenantId,
        plugin: &'a PluginName,
        council: &'a CouncilId,
        name: &'a str,
    ) -> PortFuture<'a, Option<String>> {
        Box::pin(async move {
            let scope = TenantScope::already_checked(tenant.clone());
            Ok(self
                .store
                .secrets(&scope)
                .value(&self.keyring, plugin, council, name)
                .await?)
        })
    }
}

/// [`KvPort`] and [`EventsPort`] over the platform's database.
#[derive(Debug, Clone)]
pub struct StorePorts(pub Store);

impl KvPort for StorePorts {
    fn get<'a>(
        &'a self,
        tenant: &'a TenantId,
        plugin: &'a PluginName,
        key: &'a str,
    ) -> PortFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let scope = TenantScope::already_checked(tenant.clone());
            Ok(self.0.kv(&scope, plugin).get(key).await?)
        })
    }

    fn set<'a>(
        &'a self,
        tenant: &'a TenantId,
        plugin: &'a PluginName,
        key: &'a str,
        value: &'a [u8],
        ttl: Option<std::time::Duration>,
        quota: u64,
    ) -> PortFuture<'a, (), KvSetError> {
        Box::pin(async move {
            let scope = TenantScope::already_checked(tenant.clone());
            let kv = self.0.kv(&scope, plugin);
            match ttl {
                Some(ttl) => kv.set_with_ttl(key, value, ttl, quota).await,
                None => kv.set(key, value, quota).await,
            }
            .map_err(refused)
        })
    }

    fn increment<'a>(
        &'a self,
        tenant: &'a TenantId,
        plugin: &'a PluginName,
        key: &'a str,
        delta: i64,
        quota: u64,
    ) -> PortFuture<'a, i64, KvSetError> {
        Box::pin(async move {
            let scope = TenantScope::already_checked(tenant.clone());
            self.0
                .kv(&scope, plugin)
                .increment(key, delta, quota)
                .await
                .map_err(refused)
        })
    }

    fn compare_and_swap<'a>(
        &'a self,
        tenant: &'a TenantId,
        plugin: &'a PluginName,
        key: &'a str,
        old: Option<&'a [u8]>,
        new: &'a [u8],
        quota: u64,
    ) -> PortFuture<'a, bool, KvSetError> {
        Box::pin(async move {
            let scope = TenantScope::already_checked(tenant.clone());
            self.0
                .kv(&scope, plugin)
                .compare_and_swap(key, old, new, quota)
                .await
                .map_err(refused)
        })
    }

    fn delete<'a>(
        &'a self,
        tenant: &'a TenantId,
        plugin: &'a PluginName,
        key: &'a str,
    ) -> PortFuture<'a, bool> {
        Box::pin(async move {
            let scope = TenantScope::already_checked(tenant.clone());
            Ok(self.0.kv(&scope, plugin).delete(key).await?)
        })
    }

    fn list_keys<'a>(
        &'a self,
        tenant: &'a TenantId,
        plugin: &'a PluginName,
        prefix: &'a str,
        cursor: Option<&'a str>,
        limit: u32,
    ) -> PortFuture<'a, (Vec<String>, Option<String>)> {
        Box::pin(async move {
            let scope = TenantScope::already_checked(tenant.clone());
            Ok(self
                .0
                .kv(&scope, plugin)
                .list_keys(prefix, cursor, limit)
                .await?)
        })
    }
}

/// The runtime's reason for a key-value write the store refused.
fn refused(e: KvWriteError) -> KvSetError {
    match e {
        KvWriteError::QuotaExceeded { quota, .. } => KvSetError::QuotaExceeded { quota },
        KvWriteError::NotANumber(why) => KvSetError::NotANumber(why),
        KvWriteError::Store(e) => KvSetError::Storage(e.into()),
    }
}

impl EventsPort for StorePorts {
    fn record<'a>(&'a self, event: PluginEvent<'a>) -> PortFuture<'a, ()> {
        Box::pin(async move {
            let scope = TenantScope::already_checked(event.tenant.clone());
            self.0
                .events(&scope)
                .record(NewEvent {
                    council: event.council,
                    plugin: event.plugin,
                    version: event.version,
                    name: event.name,
                    payload: event.payload,
                    request_id: event.request_id,
                    actor: event.actor,
                })
                .await?;
            Ok(())
        })
    }
}
