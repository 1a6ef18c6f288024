//! Compile once per digest: an in-memory map of compiled components in front of an
//! on-disk cache of precompiled artefacts.
//!
//! **Architecture Invariant:** precompiled artefacts are deserialised (an unsafe operation:
//! the bytes become machine code) only from files this cache wrote into
//! `runtime.cache_dir`, named by digest and by `Engine::precompile_compatibility_hash`.
//! Uploaded bytes are always compiled, never deserialised.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use guildhall_domain::Digest;
use tokio::sync::{OnceCell, Semaphore};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::RuntimeStats;
use crate::config::RuntimeConfig;
use crate::error::PrepareError;

/// The first eight bytes of a component (as opposed to a core module).
const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
const MODULE_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

type Slot = Arc<OnceCell<Component>>;

pub(crate) struct ComponentCache {
    engine: Engine,
    dir: PathBuf,
    engine_hash: String,
    max_bytes: usize,
    timeout: Duration,
    compile_permits: Arc<Semaphore>,
    slots: Mutex<HashMap<Digest, Slot>>,
    compiles: AtomicU64,
    compile_micros: AtomicU64,
    disk_loads: AtomicU64,
    memory_hits: AtomicU64,
}

impl ComponentCache {
    pub(crate) fn new(engine: Engine, config: &RuntimeConfig) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.cache_dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create runtime.cache_dir {}: {e}",
                config.cache_dir.display()
            )
        })?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            engine,
            dir: config.cache_dir.clone(),
            engine_hash: format!("{:016x}", hasher.finish()),
            max_bytes: config.max_component_bytes,
            timeout: Duration::from_millis(config.compile_timeout_ms),
            compile_permits: Arc::new(Semaphore::new(config.compile_concurrency.max(1))),
            slots: Mutex::new(HashMap::new()),
            compiles: AtomicU64::new(0),
            compile_micros: AtomicU64::new(0),
            disk_loads: AtomicU64::new(0),
            memory_hits: AtomicU64::new(0),
        })
    }

    pub(crate) fn stats(&self) -> RuntimeStats {
        RuntimeStats {
            compiles: self.compiles.load(Ordering::Relaxed),
            compile_time: Duration::from_micros(self.compile_micros.load(Ordering::Relaxed)),
            disk_loads: self.disk_loads.load(Ordering::Relaxed),
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
        }
    }

    fn artefact(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join(format!("{}-{}.cwasm", digest.hex(), self.engine_hash))
    }

    /// The compiled component for `digest`: from memory, else from the disk cache, else
    /// compiled from the bytes `load` returns. Concurrent callers for one digest share one
    /// compilation. A failure is not cached, so a later call may try again.
    pub(crate) async fn get(
        &self,
        digest: &Digest,
        load: impl AsyncFnOnce() -> anyhow::Result<Arc<Vec<u8>>>,
    ) -> Result<Component, PrepareError> {
        let slot = {
            let mut slots = self.slots.lock().expect("component cache poisoned");
            Arc::clone(slots.entry(*digest).or_default())
        };
        if let Some(component) = slot.get() {
            self.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(component.clone());
        }
        slot.get_or_try_init(|| self.load_or_compile(digest, load))
            .await
            .cloned()
    }

    async fn load_or_compile(
        &self,
        digest: &Digest,
        load: impl AsyncFnOnce() -> anyhow::Result<Arc<Vec<u8>>>,
    ) -> Result<Component, PrepareError> {
        let path = self.artefact(digest);
        if path.exists() {
            let engine = self.engine.clone();
            let from = path.clone();
            let loaded = tokio::task::spawn_blocking(move || {
                // SAFETY: the file was written by `compile` below from bytes this engine
                // compiled, into the operator's cache directory, under a name that includes
                // the digest and the engine's compatibility hash.
                #[allow(unsafe_code)]
                unsafe {
                    Component::deserialize_file(&engine, &from)
                }
            })
            .await
            .map_err(|e| PrepareError::Engine(e.into()))?;
            match loaded {
                Ok(component) => {
                    self.disk_loads.fetch_add(1, Ordering::Relaxed);
                    return Ok(component);
                }
                Err(e) => {
                    tracing::warn!(digest = %digest, error = %format!("{e:#}"), "discarding an unusable precompiled artefact");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let bytes = load()
            .await
            .map_err(|e| PrepareError::Load(format!("{e:#}")))?;
        if Digest::of(&bytes) != *digest {
            return Err(PrepareError::Load(format!(
                "the stored bytes do not match {digest}"
            )));
        }
        self.check_shape(&bytes)?;
        self.compile(digest, bytes, path).await
    }

    fn check_shape(&self, bytes: &[u8]) -> Result<(), PrepareError> {
        if bytes.len() > self.max_bytes {
            return Err(PrepareError::TooLarge {
                size: bytes.len(),
                limit: self.max_bytes,
            });
        }
        match bytes.get(..8) {
            Some(h) if h == COMPONENT_HEADER => Ok(()),
            Some(h) if h == MODULE_HEADER => Err(PrepareError::NotAComponent(
                "this is a core WebAssembly module; build a component (e.g. for wasm32-wasip2)"
                    .into(),
            )),
            Some(h) if h[..4] == COMPONENT_HEADER[..4] => Err(PrepareError::NotAComponent(
                "unsupported WebAssembly binary version".into(),
            )),
            _ => Err(PrepareError::NotAComponent(
                "the bytes do not start with the WebAssembly magic number".into(),
            )),
        }
    }

    async fn compile(
        &self,
        digest: &Digest,
        bytes: Arc<Vec<u8>>,
        path: PathBuf,
    ) -> Result<Component, PrepareError> {
        let permit = Arc::clone(&self.compile_permits)
            .acquire_owned()
            .await
            .map_err(|e| PrepareError::Engine(e.into()))?;
        let engine = self.engine.clone();
        let started = std::time::Instant::now();
        // The permit moves into the blocking task: a compilation that overruns its time
        // bound keeps its slot until cranelift finishes, so overruns cannot pile up.
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            engine.precompile_component(&bytes)
        });
        let artefact = match tokio::time::timeout(self.timeout, task).await {
            Err(_) => return Err(PrepareError::CompileTimeout(self.timeout)),
            Ok(Err(join)) => return Err(PrepareError::Engine(join.into())),
            Ok(Ok(Err(e))) => return Err(PrepareError::Compile(format!("{e:#}"))),
            Ok(Ok(Ok(artefact))) => artefact,
        };
        self.compiles.fetch_add(1, Ordering::Relaxed);
        self.compile_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        tracing::info!(digest = %digest, elapsed_ms = started.elapsed().as_millis() as u64, "compiled component");
        // Write to a temporary name and rename, so a crash never leaves a torn artefact
        // under the real name.
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        if let Err(e) = std::fs::write(&tmp, &artefact).and_then(|()| std::fs::rename(&tmp, &path))
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the precompiled artefact; continuing without it");
            let _ = std::fs::remove_file(&tmp);
        }
        // SAFETY: `artefact` was produced just now by this engine's `precompile_component`.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(&self.engine, &artefact) }
            .map_err(|e| PrepareError::Engine(e.into()))?;
        Ok(component)
    }
}
