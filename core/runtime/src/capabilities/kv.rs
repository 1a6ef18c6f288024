//! `guildhall:platform/kv`: a key-value store private to the plugin in each tenant, kept
//! in the platform's database through the store's tenant-scoped repository.

use guildhall_store::KvWriteError;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::kv;
use crate::host::Host;

/// The longest key, in bytes.
pub(crate) const MAX_KEY: usize = 512;
/// The largest value, in bytes.
pub(crate) const MAX_VALUE: usize = 1 << 20;
/// The most keys one `list-keys` call returns.
pub(crate) const MAX_PAGE: u32 = 1000;

pub(super) fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    kv::add_to_linker::<Host, HasSelf<Host>>(linker, |h| h)
}

fn check_key(key: &str) -> Result<(), kv::Error> {
    if key.is_empty() || key.len() > MAX_KEY {
        Err(kv::Error::InvalidKey(key.len() as u32))
    } else {
        Ok(())
    }
}

fn unavailable(host: &Host, e: impl std::fmt::Display) -> kv::Error {
    tracing::error!(
        tenant = %host.call.scope.tenant(),
        plugin = %host.plugin,
        request_id = %host.call.request_id,
        error = %e,
        "kv storage failed"
    );
    kv::Error::Unavailable("the platform's storage failed; try again later".into())
}

impl kv::Host for Host {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, kv::Error>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        let store = &self.services.store;
        Ok(
            match store.kv(&self.call.scope, &self.plugin).get(&key).await {
                Ok(value) => Ok(value),
                Err(e) => Err(unavailable(self, e)),
            },
        )
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), kv::Error>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        if value.len() > MAX_VALUE {
            return Ok(Err(kv::Error::ValueTooLarge(value.len() as u64)));
        }
        let quota = self.services.kv_quota;
        let store = &self.services.store;
        Ok(
            match store
                .kv(&self.call.scope, &self.plugin)
                .set(&key, &value, quota)
                .await
            {
                Ok(()) => {
                    self.observed
                        .lock()
                        .expect("observed poisoned")
                        .kv_bytes_written += (key.len() + value.len()) as u64;
                    Ok(())
                }
                Err(KvWriteError::QuotaExceeded { quota, .. }) => {
                    Err(kv::Error::QuotaExceeded(quota))
                }
                Err(KvWriteError::Store(e)) => Err(unavailable(self, e)),
            },
        )
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<bool, kv::Error>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        let store = &self.services.store;
        Ok(
            match store.kv(&self.call.scope, &self.plugin).delete(&key).await {
                Ok(existed) => Ok(existed),
                Err(e) => Err(unavailable(self, e)),
            },
        )
    }

    async fn list_keys(
        &mut self,
        prefix: String,
        cursor: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Result<kv::Page, kv::Error>> {
        if prefix.len() > MAX_KEY {
            return Ok(Err(kv::Error::InvalidKey(prefix.len() as u32)));
        }
        let limit = limit.clamp(1, MAX_PAGE);
        let store = &self.services.store;
        Ok(
            match store
                .kv(&self.call.scope, &self.plugin)
                .list_keys(&prefix, cursor.as_deref(), limit)
                .await
            {
                Ok((keys, next)) => Ok(kv::Page { keys, next }),
                Err(e) => Err(unavailable(self, e)),
            },
        )
    }
}
