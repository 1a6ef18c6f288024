//! The wasmtime engine and its epoch ticker.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::config::RuntimeConfig;

/// How often the epoch advances. Each tick lets every running guest yield to the async
/// scheduler and checks its deadline.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// Bytes at the start of each linear memory kept resident between calls: a small
/// plugin's stack, data and heap (see `plugins/hello`'s 64 KiB stack).
const KEEP_RESIDENT_MEMORY: usize = 256 << 10;
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
            // The first pages of each memory and table stay mapped when a slot is returned
            // and are reset in place, so the next call on the slot takes no page faults
            // (each fault in a multi-threaded process is a TLB shootdown across cores).
            .linear_memory_keep_resident(KEEP_RESIDENT_MEMORY)
            .table_keep_resident(KEEP_RESIDENT_TABLE);
        let mut pooled = wasm.clone();
        pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        match Engine::new(&pooled) {
            Ok(engine) => return Ok((engine, true)),
            Err(e) => tracing::warn!(
                error = %format!("{e:#}"),
                "cannot reserve address space for the pooling allocator; allocating instances on demand"
            ),
        }
    }
    wasm.allocation_strategy(InstanceAllocationStrategy::OnDemand);
    Ok((Engine::new(&wasm)?, false))
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
