//! The per-call host state that lives in each `Store`: what every capability shares (the
//! resource table, the memory cap, what the host observed) and each capability's own state.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use guildhall_domain::PluginName;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

use crate::capabilities::{self, CallSetup, States, prepared};
use crate::{CallContext, Inner, Prepared};

/// Who and where a call is: what the gateway said, and the plugin and version answering.
/// Capabilities' states share it.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) context: CallContext,
    pub(crate) plugin: PluginName,
    pub(crate) version: Arc<str>,
}

/// Refused capability uses listed in a call's report; later ones are only counted.
pub(crate) const MAX_DENIED_RECORDS: usize = 16;

/// What the host observed during a call, reported with its outcome.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    /// Capability uses the host refused, e.g. an outbound call to an undeclared host.
    pub(crate) denied: Vec<String>,
    /// Refused capability uses beyond those kept in `denied`.
    pub(crate) denied_more: u32,
    /// Whether the guest asked for memory beyond its cap.
    pub(crate) memory_cap_hit: bool,
    /// A per-call host limit the call ran into, e.g. too many outbound requests; the call
    /// fails with it.
    pub(crate) host_limit: Option<String>,
    /// Bytes (keys plus values) the guest wrote to its key-value store.
    pub(crate) kv_bytes_written: u64,
}

impl Observed {
    /// Records a refused capability use, keeping at most [`MAX_DENIED_RECORDS`].
    pub(crate) fn deny(&mut self, what: String) {
        if self.denied.len() < MAX_DENIED_RECORDS {
            self.denied.push(what);
        } else {
            self.denied_more += 1;
        }
    }
}

/// Every byte a call holds, counted against its memory cap: the linear memories the guest
/// grows (all of them, however many the component has), its tables' elements, and what the
/// host keeps on the guest's behalf (header fields, buffered bodies, the collected response).
#[derive(Debug)]
pub(crate) struct CallMemory {
    cap: usize,
    used: AtomicUsize,
}

impl CallMemory {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap,
            used: AtomicUsize::new(0),
        }
    }

    /// The cap, in bytes.
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    /// Counts `bytes` more, or refuses (counting nothing) when that would pass the cap.
    pub(crate) fn try_take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.cap)
            })
            .is_ok()
    }
}

/// The data of one call's `Store`: what every capability shares (the resource table, the
/// memory accounting, what the host observed) and each capability's own per-call state.
pub(crate) struct Host {
    pub(crate) table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) observed: Arc<Mutex<Observed>>,
    /// The per-call state of the capabilities the plugin declared, each built by its
    /// row's `prepare`.
    pub(crate) capabilities: States,
}

impl Host {
    /// Prepares per-instance state: each declared capability's, from the call's identity,
    /// then the memory cap and the resource table every capability shares.
    pub(crate) fn new(
        runtime: &Inner,
        plugin: &Prepared,
        call: CallContext,
        memory: Arc<CallMemory>,
    ) -> Self {
        let observed = Arc::new(Mutex::new(Observed::default()));
        let call = Arc::new(Call {
            context: call,
            plugin: plugin.manifest.name.clone(),
            version: Arc::clone(&plugin.version),
        });
        let capabilities = capabilities::prepare(
            &CallSetup {
                call: &call,
                runtime,
                plugin,
                observed: &observed,
            },
            plugin.capabilities,
        );
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(plugin.memory_bytes)
            .instances(32)
            .tables(64)
            .memories(8)
            .table_elements(100_000)
            .build();
        // The table holds every resource the guest has open (fields, bodies, streams,
        // pollables); without a bound its size is limited only by the host's memory.
        let mut table = ResourceTable::new();
        table.set_max_capacity(runtime.config.max_call_resources as usize);
        Self {
            table,
            limiter: Limiter {
                inner: store_limits,
                memory,
                observed: Arc::clone(&observed),
            },
            observed,
            capabilities,
        }
    }

    /// Counts `bytes` the host is about to keep for the guest against the call's memory
    /// cap; past the cap the guest traps and the call ends as over its memory cap.
    pub(crate) fn charge(&mut self, bytes: usize, what: &str) -> wasmtime::Result<()> {
        self.limiter.charge(bytes, what)
    }
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: prepared(&mut self.capabilities.wasi),
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        let http = prepared(&mut self.capabilities.http);
        WasiHttpCtxView {
            ctx: &mut http.ctx,
            table: &mut self.table,
            hooks: &mut http.hooks,
        }
    }
}

/// Host bytes one table element takes: wasmtime keeps a pointer per element (the size
/// `ResourceLimiter::table_growing` documents for every element type it supports here).
const TABLE_ELEMENT_BYTES: usize = std::mem::size_of::<usize>();

/// The store's resource limiter: the operator's caps, with every linear memory and every
/// table of the call counted together against its memory cap, remembering when memory was
/// refused so a following trap is reported as the memory cap rather than a generic trap.
pub(crate) struct Limiter {
    inner: StoreLimits,
    memory: Arc<CallMemory>,
    observed: Arc<Mutex<Observed>>,
}

impl Limiter {
    fn refused(&self) {
        self.observed
            .lock()
            .expect("observed poisoned")
            .memory_cap_hit = true;
    }

    pub(crate) fn charge(&mut self, bytes: usize, what: &str) -> wasmtime::Result<()> {
        if self.memory.try_take(bytes) {
            return Ok(());
        }
        self.refused();
        wasmtime::bail!(
            "{what} ({bytes} bytes) would take the call past its memory cap of {} bytes",
            self.memory.cap()
        )
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Each memory on its own is held to the cap, and all of them together (with what
        // the host holds) too: a component may have several memories.
        let allowed = self.inner.memory_growing(current, desired, maximum)?
            && self.memory.try_take(desired.saturating_sub(current));
        if !allowed {
            self.refused();
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A table's elements are host memory too (a pointer each), allocated when the
        // table is created and when it grows: counted against the same cap as the
        // memories, or up to 64 tables of 100,000 elements would escape it.
        let bytes = desired
            .saturating_sub(current)
            .saturating_mul(TABLE_ELEMENT_BYTES);
        if !self.inner.table_growing(current, desired, maximum)? {
            return Ok(false);
        }
        if !self.memory.try_take(bytes) {
            self.refused();
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(cap: usize) -> (Limiter, Arc<Mutex<Observed>>) {
        let observed = Arc::new(Mutex::new(Observed::default()));
        let limiter = Limiter {
            inner: StoreLimitsBuilder::new()
                .memory_size(cap)
                .table_elements(100_000)
                .build(),
            memory: Arc::new(CallMemory::new(cap)),
            observed: Arc::clone(&observed),
        };
        (limiter, observed)
    }

    #[test]
    fn table_elements_count_against_the_memory_cap_with_the_memories() {
        let (mut limiter, observed) = limiter(1 << 20);
        // A memory takes most of the cap; a table may have what is left.
        assert!(limiter.memory_growing(0, 900 << 10, None).unwrap());
        let fits = (1 << 20) - (900 << 10);
        let elements = fits / TABLE_ELEMENT_BYTES;
        assert!(limiter.table_growing(0, elements, None).unwrap());
        assert!(!observed.lock().unwrap().memory_cap_hit);
        // One more element is past the cap: refused, and remembered as the memory cap.
        assert!(!limiter.table_growing(elements, elements + 1, None).unwrap());
        assert!(observed.lock().unwrap().memory_cap_hit);
        // Nothing was counted for the refused growth, and the memory cannot grow either.
        assert!(
            !limiter
                .memory_growing(900 << 10, (900 << 10) + 1, None)
                .unwrap()
        );
    }

    #[test]
    fn many_tables_cannot_pass_the_cap_together() {
        // 64 tables of 100,000 elements each would be about 51 MB of host memory.
        let (mut limiter, observed) = limiter(16 << 20);
        let granted = (0..64)
            .filter(|_| limiter.table_growing(0, 100_000, None).unwrap())
            .count();
        assert_eq!(granted, (16 << 20) / (100_000 * TABLE_ELEMENT_BYTES));
        assert!(observed.lock().unwrap().memory_cap_hit);
    }

    #[test]
    fn a_growth_refused_by_the_tables_own_limits_is_not_the_memory_cap() {
        let (mut limiter, observed) = limiter(16 << 20);
        assert!(!limiter.table_growing(0, 100_001, None).unwrap());
        assert!(!limiter.table_growing(0, 10, Some(5)).unwrap());
        assert!(!observed.lock().unwrap().memory_cap_hit);
        // Neither refusal took anything from the cap.
        assert!(limiter.memory_growing(0, 16 << 20, None).unwrap());
    }
}
