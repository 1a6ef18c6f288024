//! `guildhall:platform/kv`: a key-value store private to the plugin in each tenant, kept
//! wherever the [`KvPort`] the runtime was built with keeps it (the server's is the
//! platform's database, through the store's tenant-scoped repository).

use std::sync::{Arc, Mutex};

use guildhall_domain::{PluginName, TenantId};
use wasmtime::component::{HasSelf, Linker};

use super::{CallSetup, PortError, PortFuture, prepared};
use crate::bindings::kv;
use crate::host::{Call, Host, Observed};

/// Where plugins' key-value data is kept: each plugin's own keys in each tenant. The
/// runtime checks keys, values and page sizes before it asks, and logs failures with the
/// call's tenant, plugin and request id; the plugin only learns that storage failed.
pub trait KvPort: Send + Sync + 'static {
    /// The value under `key`, if any.
    fn get<'a>(
        &'a self,
        tenant: &'a TenantId,
        plugin: &'a PluginName,
        key: &'a str,
    ) -> PortFuture<'a, Option<Vec<u8>>>;

    /// Stores `value` under `key`, unless the plugin's data in the tenant would then
    /// exceed `quota` bytes (keys plus values). Concurrent writers of one plugin in one
    /// tenant must not both pass the check. With a `ttl` the key reads as absent once it
    /// has passed; without one the key keeps no time to live.
    fn set<'a>(
        &'a self,
        tenant: &'a TenantId,
        plugin: &'a PluginName,
        key: &'a str,
        value: &'a [u8],
        ttl: Option<std::time::Duration>,
        quota: u64,
    ) -> PortFuture<'a, (), KvSetError>;

    /// Adds `delta` to the number stored under `key` (a missing key counts as 0) and
    /// returns the sum, as one write no concurrent writer can interleave with. The number
    /// is stored as the decimal ASCII text of an `i64`; any other stored value, or a sum
    /// outside the `i64` range, is [`KvSetError::NotANumber`] and changes nothing. The
    /// quota is checked as for [`KvPort::set`].
    fn increment<'a>(
        &'a self,
        tenant: &'a TenantId,
        plugin: &'a PluginName,
        key: &'a str,
        delta: i64,
        quota: u64,
    ) -> PortFuture<'a, i64, KvSetError>;

    /// Stores `new` under `key` only if the key holds exactly `old` now (`None`: only if it
    /// is absent), as one write no concurrent writer can interleave with; `true` when it
    /// stored `new`. The quota is checked as for [`KvPort::set`].
    fn compare_and_swap<'a>(
        &'a self,
        tenant: &'a TenantId,
        plugin: &'a PluginName,
        key: &'a str,
        old: Option<&'a [u8]>,
        new: &'a [u8],
        quota: u64,
    ) -> PortFuture<'a, bool, KvSetError>;

    /// Deletes `key`; `true` when it existed.
    fn delete<'a>(
        &'a self,
        tenant: &'a TenantId,
        plugin: &'a PluginName,
        key: &'a str,
    ) -> PortFuture<'a, bool>;

    /// Up to `limit` keys starting with `prefix`, in byte order after `cursor`, and the
    /// cursor of the next page when there is one.
    fn list_keys<'a>(
        &'a self,
        tenant: &'a TenantId,
        plugin: &'a PluginName,
        prefix: &'a str,
        cursor: Option<&'a str>,
        limit: u32,
    ) -> PortFuture<'a, (Vec<String>, Option<String>)>;
}

/// Why a write through [`KvPort`] stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum KvSetError {
    /// The write would take the plugin's data in the tenant past its quota.
    #[error("quota of {quota} bytes exceeded")]
    QuotaExceeded {
        /// The quota in bytes.
        quota: u64,
    },
    /// [`KvPort::increment`] found a value that is not a number, or the sum would leave
    /// the `i64` range; says which.
    #[error("not a number: {0}")]
    NotANumber(String),
    /// The storage behind the port failed.
    #[error(transparent)]
    Storage(PortError),
}

/// The longest key, in bytes.
pub(crate) const MAX_KEY: usize = 512;
/// The largest value, in bytes.
pub(crate) const MAX_VALUE: usize = 1 << 20;
/// The most keys one `list-keys` call returns.
pub(crate) const MAX_PAGE: u32 = 1000;
/// The longest time to live `set-with-ttl` takes, in seconds: ten years.
pub const MAX_TTL_SECS: u32 = 10 * 365 * 86_400;

/// The per-call state: the call's identity, where the data is kept, the install's quota
/// and the bytes written, which the call reports.
pub(crate) struct State {
    call: Arc<Call>,
    port: Arc<dyn KvPort>,
    quota: u64,
    observed: Arc<Mutex<Observed>>,
}

pub(super) fn prepare(setup: &CallSetup<'_>) -> State {
    State {
        call: Arc::clone(setup.call),
        port: Arc::clone(&setup.runtime.ports.kv),
        quota: setup.runtime.config.kv_quota_bytes,
        observed: Arc::clone(setup.observed),
    }
}

pub(super) fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    kv::add_to_linker::<Host, HasSelf<State>>(linker, |h| prepared(&mut h.capabilities.kv))
}

fn check_key(key: &str) -> Result<(), kv::Error> {
    if key.is_empty() || key.len() > MAX_KEY {
        Err(kv::Error::InvalidKey(key.len() as u32))
    } else {
        Ok(())
    }
}

fn unavailable(state: &State, e: impl std::fmt::Display) -> kv::Error {
    tracing::error!(
        tenant = %state.call.context.tenant,
        plugin = %state.call.plugin,
        request_id = %state.call.context.request_id,
        error = %e,
        "kv storage failed"
    );
    kv::Error::Unavailable("the platform's storage failed; try again later".into())
}

impl State {
    /// Counts `bytes` written by the call, which the call reports for metering.
    fn wrote(&self, bytes: usize) {
        self.observed
            .lock()
            .expect("observed poisoned")
            .kv_bytes_written += bytes as u64;
    }

    /// What the plugin learns of a refused write. A value that is not a number is an
    /// existing case of the WIT `error` (`unavailable("not a number: …")`), so components
    /// built against `guildhall:platform@0.1.0` keep linking.
    fn write_failed(&self, e: KvSetError) -> kv::Error {
        match e {
            KvSetError::QuotaExceeded { quota } => kv::Error::QuotaExceeded(quota),
            KvSetError::NotANumber(why) => kv::Error::Unavailable(format!("not a number: {why}")),
            KvSetError::Storage(e) => unavailable(self, e),
        }
    }

    /// `set` and `set-with-ttl`.
    async fn put(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl: Option<std::time::Duration>,
    ) -> Result<(), kv::Error> {
        check_key(&key)?;
        if value.len() > MAX_VALUE {
            return Err(kv::Error::ValueTooLarge(value.len() as u64));
        }
        match self
            .port
            .set(
                &self.call.context.tenant,
                &self.call.plugin,
                &key,
                &value,
                ttl,
                self.quota,
            )
            .await
        {
            Ok(()) => {
                self.wrote(key.len() + value.len());
                Ok(())
            }
            Err(e) => Err(self.write_failed(e)),
        }
    }

    /// `compare-and-swap` and `set-if-absent`.
    async fn swap(
        &mut self,
        key: String,
        old: Option<Vec<u8>>,
        new: Vec<u8>,
    ) -> Result<bool, kv::Error> {
        check_key(&key)?;
        if new.len() > MAX_VALUE {
            return Err(kv::Error::ValueTooLarge(new.len() as u64));
        }
        match self
            .port
            .compare_and_swap(
                &self.call.context.tenant,
                &self.call.plugin,
                &key,
                old.as_deref(),
                &new,
                self.quota,
            )
            .await
        {
            Ok(swapped) => {
                if swapped {
                    self.wrote(key.len() + new.len());
                }
                Ok(swapped)
            }
            Err(e) => Err(self.write_failed(e)),
        }
    }
}

impl kv::Host for State {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, kv::Error>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        Ok(
            match self
                .port
                .get(&self.call.context.tenant, &self.call.plugin, &key)
                .await
            {
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
        Ok(self.put(key, value, None).await)
    }

    async fn set_with_ttl(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_seconds: u32,
    ) -> wasmtime::Result<Result<(), kv::Error>> {
        if !(1..=MAX_TTL_SECS).contains(&ttl_seconds) {
            // An existing case of the WIT `error`, as for a value that is not a number.
            return Ok(Err(kv::Error::Unavailable(format!(
                "invalid ttl: ttl-seconds must be 1 to {MAX_TTL_SECS}, not {ttl_seconds}"
            ))));
        }
        let ttl = std::time::Duration::from_secs(u64::from(ttl_seconds));
        Ok(self.put(key, value, Some(ttl)).await)
    }

    async fn increment(
        &mut self,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, kv::Error>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        Ok(
            match self
                .port
                .increment(
                    &self.call.context.tenant,
                    &self.call.plugin,
                    &key,
                    delta,
                    self.quota,
                )
                .await
            {
                Ok(sum) => {
                    // At most 20 digits and a sign were written.
                    self.wrote(key.len() + sum.to_string().len());
                    Ok(sum)
                }
                Err(e) => Err(self.write_failed(e)),
            },
        )
    }

    async fn compare_and_swap(
        &mut self,
        key: String,
        old: Option<Vec<u8>>,
        new: Vec<u8>,
    ) -> wasmtime::Result<Result<bool, kv::Error>> {
        Ok(self.swap(key, old, new).await)
    }

    async fn set_if_absent(
        &mut self,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<bool, kv::Error>> {
        Ok(self.swap(key, None, value).await)
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<bool, kv::Error>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        Ok(
            match self
                .port
                .delete(&self.call.context.tenant, &self.call.plugin, &key)
                .await
            {
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
        Ok(
            match self
                .port
                .list_keys(
                    &self.call.context.tenant,
                    &self.call.plugin,
                    &prefix,
                    cursor.as_deref(),
                    limit,
                )
                .await
            {
                Ok((keys, next)) => Ok(kv::Page { keys, next }),
                Err(e) => Err(unavailable(self, e)),
            },
        )
    }
}
