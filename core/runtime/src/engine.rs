//! The wasmtime engine and its epoch ticker.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::config::RuntimeConfig;

/// How often the epoch advances. Each tick lets every running guest yield to the async
/// scheduler and checks its deadline, so it is also the longest a guest holds a worker
/// thread and a slot of the fair gate at once: another tenant's call waits at most about a
/// tick for its turn. A yield costs a few microseconds, well under 1% of a 1 ms tick.
pub(crate) const TICK: Duration = Duration::from_millis(1);

/// Bytes of each linear memory kept resident between calls where the kernel has
/// `PAGEMAP_SCAN` (Linux 6.7 and later): only the pages a call dirtied are reset, wherever
/// they lie in the first this many bytes. A component built with Rust's default 1 MiB
/// stack touches pages near its 1 MiB mark, and its data and heap above it.
const KEEP_RESIDENT_SCANNED: usize = 2 << 20;
/// Without the ioctl wasmtime resets the kept bytes from the start with `memset` on every
/// call, so fewer are kept: a small plugin's stack, data and heap.
const KEEP_RESIDENT_MEMSET: usize = 256 << 10;
/// Bytes of each table kept resident between calls.
const KEEP_RESIDENT_TABLE: usize = 16 << 10;

/// Builds the engine. Tries the pooling allocator first and falls back to on-demand
/// allocation, with a warning, when the address space cannot be reserved.
pub(crate) fn build(config: &RuntimeConfig) -> anyhow::Result<(Engine, bool)> {
    let mut wasm = Config::new();
    wasm.wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(config.max_wasm_stack_bytes)
        // The async fiber must hold the wasm stack plus host frames.
        .async_stack_size(config.max_wasm_stack_bytes + (1 << 20))
        .memory_init_cow(true)
        .parallel_compilation(false);
    if config.pooling_instances > 0 {
        // Page-scanned resets first; a kernel without the ioctl refuses `Enabled::Yes`.
        for (scan, keep) in [
            (Enabled::Yes, KEEP_RESIDENT_SCANNED),
            (Enabled::No, KEEP_RESIDENT_MEMSET),
        ] {
            let mut pooled = wasm.clone();
            pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pool(
                config, scan, keep,
            )));
            match Engine::new(&pooled) {
                Ok(engine) => return Ok((engine, true)),
                Err(e) if matches!(scan, Enabled::Yes) => tracing::debug!(
                    error = %format!("{e:#}"),
                    "no PAGEMAP_SCAN: resetting kept pages with memset"
                ),
                Err(e) => tracing::warn!(
                    error = %format!("{e:#}"),
                    "cannot reserve address space for the pooling allocator; allocating instances on demand"
                ),
            }
        }
    }
    wasm.allocation_strategy(InstanceAllocationStrategy::OnDemand);
    Ok((Engine::new(&wasm)?, false))
}

fn pool(config: &RuntimeConfig, scan: Enabled, keep_resident: usize) -> PoolingAllocationConfig {
    let n = config.pooling_instances;
    let mut pool = PoolingAllocationConfig::default();
    // A Rust component instantiates a handful of core modules (the program and the
    // shims that wit-component adds), each with its own table.
    pool.total_component_instances(n)
        .total_core_instances(n * 4)
        .total_memories(n * 2)
        .total_tables(n * 4)
        .total_stacks(n)
        .max_memory_size((config.max_memory_mib as usize) << 20)
        // Returning slots' memory to the kernel in batches saves TLB shootdowns.
        .decommit_batch_size(32)
        // Pages of each memory and table stay mapped when a slot is returned and are
        // reset in place, so the next call on the slot takes no page faults (each fault
        // in a multi-threaded process is a TLB shootdown across cores).
        .linear_memory_keep_resident(keep_resident)
        .table_keep_resident(KEEP_RESIDENT_TABLE)
        .pagemap_scan(scan);
    pool
}

/// Advances the engine's epoch every [`TICK`] on one thread, until dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub(crate) fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("guildhall-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawn the epoch ticker thread");
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
