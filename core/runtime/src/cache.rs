//! Compile once per digest: a bounded, least-recently-used map of compiled components in
//! front of an on-disk cache of precompiled artefacts.
//!
//! **Architecture Invariant:** precompiled artefacts are deserialised (an unsafe operation:
//! the bytes become machine code) only from files this cache wrote into
//! `runtime.cache_dir`, named by digest and by `Engine::precompile_compatibility_hash`, and
//! from an [`ArtefactShelf`] that authenticates what it returns (the server's shelf is the
//! database, each artefact under an HMAC keyed from the secrets key). Uploaded bytes are
//! always compiled, never deserialised.
//!
//! Replicas share their compiles through the shelf: a component not in memory or on this
//! replica's disk is looked for there before it is compiled, and what this replica compiles
//! (for serving or for an upload it admits) is put there, so a new replica compiles nothing
//! another has compiled for the same engine.
//!
//! **Architecture Invariant:** an upload's compiled artefact enters the cache (memory or
//! disk) only through [`ComponentCache::admit`], after its version is stored; a refused
//! upload leaves nothing behind. Compiles for serving (installed versions) and for
//! publishing have separate permits and separate compiler threads, so a publish never
//! delays a gateway compile; a publish waits for its permit at most
//! `runtime.publish_compile_wait_ms`.
//!
//! The cache holds at most `runtime.compile_cache_entries` components and
//! `runtime.compile_cache_mib` of artefacts (memory and disk alike); beyond that the least
//! recently used are evicted, except components prepared for serving, which are pinned.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
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

/// A future a shelf returns.
pub type ShelfFuture<T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<T>> + Send + 'static>>;

/// Where replicas share compiled artefacts (the database, in the server).
///
/// `get` must return only bytes some replica of this platform put there with `put`: they
/// are loaded as machine code. The server's shelf checks an HMAC under a key only the
/// platform holds.
pub trait ArtefactShelf: Send + Sync + 'static {
    /// The artefact for `digest` compiled by an engine with compatibility id `engine`.
    fn get(&self, digest: Digest, engine: String) -> ShelfFuture<Option<Vec<u8>>>;
    /// Shares the artefact for `digest` compiled by this engine.
    fn put(&self, digest: Digest, engine: String, artefact: Arc<Vec<u8>>) -> ShelfFuture<()>;
}

/// How long a replica waits for the shelf before compiling instead (a busy database).
const SHELF_WAIT: Duration = Duration::from_secs(5);

/// Artefacts larger than this are kept on this replica's disk only.
const MAX_SHARED_BYTES: usize = 256 << 20;

/// A stable id of the engine's compatibility hash: SHA-256 of what the hash feeds, as hex.
fn engine_id(engine: &Engine) -> String {
    use sha2::Digest as _;
    struct Sha(sha2::Sha256);
    impl Hasher for Sha {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut sha = Sha(sha2::Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut sha);
    hex::encode(sha.0.finalize())
}

/// What a compile is for: serving an installed version, or checking an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Serve,
    Publish,
}

struct Entry {
    slot: Slot,
    /// The artefact's size in bytes; 0 until it is known.
    size: u64,
    last_used: u64,
    pinned: bool,
}

#[derive(Default)]
struct Entries {
    map: HashMap<Digest, Entry>,
    tick: u64,
    bytes: u64,
}

impl Entries {
    /// Marks `digest` as just used, making its entry when there is none; `pin` pins it
    /// (an entry once pinned stays pinned).
    fn touch(&mut self, digest: &Digest, pin: bool) -> &mut Entry {
        self.tick += 1;
        let tick = self.tick;
        let entry = self.map.entry(*digest).or_insert_with(|| Entry {
            slot: Slot::default(),
            size: 0,
            last_used: tick,
            pinned: false,
        });
        entry.last_used = tick;
        entry.pinned |= pin;
        entry
    }

    /// Records the size of `digest`'s artefact and keeps the total in step; `false` when
    /// there is no such entry.
    fn set_size(&mut self, digest: &Digest, size: u64) -> bool {
        let Some(entry) = self.map.get_mut(digest) else {
            return false;
        };
        let old = std::mem::replace(&mut entry.size, size);
        self.bytes = self.bytes - old + size;
        true
    }
}

/// An upload's compiled component, not yet in the cache.
pub(crate) enum Staged {
    /// The digest was cached already (memory or disk); nothing to admit.
    Cached(Component),
    /// Compiled for this upload; [`ComponentCache::admit`] keeps it once stored.
    Fresh {
        component: Component,
        artefact: Vec<u8>,
    },
}

impl Staged {
    pub(crate) fn component(&self) -> &Component {
        match self {
            Staged::Cached(c) | Staged::Fresh { component: c, .. } => c,
        }
    }
}

pub(crate) struct ComponentCache {
    engine: Engine,
    dir: PathBuf,
    engine_hash: String,
    max_bytes: usize,
    timeout: Duration,
    max_entries: usize,
    max_cache_bytes: u64,
    serve_permits: Arc<Semaphore>,
    publish_permits: Arc<Semaphore>,
    /// How many upload compiles may run at once.
    publish_concurrency: usize,
    publish_wait: Duration,
    publish_pool: Arc<rayon::ThreadPool>,
    entries: Mutex<Entries>,
    shelf: OnceLock<Arc<dyn ArtefactShelf>>,
    /// The engine's id on the shelf.
    engine_id: String,
    compiles: AtomicU64,
    compile_micros: AtomicU64,
    disk_loads: AtomicU64,
    shared_loads: AtomicU64,
    memory_hits: AtomicU64,
    evictions: AtomicU64,
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
        let publish_pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.publish_compile_threads.max(1))
            .thread_name(|i| format!("publish-compile-{i}"))
            .build()
            .map_err(|e| anyhow::anyhow!("cannot start the publish compiler threads: {e}"))?;
        let cache = Self {
            engine_id: engine_id(&engine),
            engine,
            dir: config.cache_dir.clone(),
            engine_hash: format!("{:016x}", hasher.finish()),
            max_bytes: config.max_component_bytes,
            timeout: Duration::from_millis(config.compile_timeout_ms),
            max_entries: config.compile_cache_entries.max(1),
            max_cache_bytes: config.compile_cache_mib.max(1) << 20,
            serve_permits: Arc::new(Semaphore::new(config.compile_concurrency.max(1))),
            publish_permits: Arc::new(Semaphore::new(config.publish_compile_concurrency.max(1))),
            publish_concurrency: config.publish_compile_concurrency.max(1),
            publish_wait: Duration::from_millis(config.publish_compile_wait_ms),
            publish_pool: Arc::new(publish_pool),
            entries: Mutex::new(Entries::default()),
            shelf: OnceLock::new(),
            compiles: AtomicU64::new(0),
            compile_micros: AtomicU64::new(0),
            disk_loads: AtomicU64::new(0),
            shared_loads: AtomicU64::new(0),
            memory_hits: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        };
        cache.adopt_disk();
        Ok(cache)
    }

    /// Counts the artefacts an earlier process left for this engine against the bounds,
    /// oldest first, and removes torn temporary files.
    fn adopt_disk(&self) {
        let suffix = format!("-{}.cwasm", self.engine_hash);
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut found = Vec::new();
        for file in dir.flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            if name.contains(".tmp-") {
                let _ = std::fs::remove_file(file.path());
                continue;
            }
            let Some(hex) = name.strip_suffix(&suffix) else {
                continue;
            };
            let (Ok(digest), Ok(meta)) =
                (format!("sha256:{hex}").parse::<Digest>(), file.metadata())
            else {
                continue;
            };
            found.push((meta.modified().ok(), digest, meta.len()));
        }
        found.sort();
        let mut entries = self.entries.lock().expect("component cache poisoned");
        for (_, digest, size) in found {
            entries.tick += 1;
            let tick = entries.tick;
            entries.bytes += size;
            entries.map.insert(
                digest,
                Entry {
                    slot: Slot::default(),
                    size,
                    last_used: tick,
                    pinned: false,
                },
            );
        }
        let doomed = self.evict(&mut entries);
        drop(entries);
        self.remove_files(doomed);
    }

    pub(crate) fn stats(&self) -> RuntimeStats {
        let cached = self.entries.lock().map(|e| e.map.len()).unwrap_or(0);
        RuntimeStats {
            compiles: self.compiles.load(Ordering::Relaxed),
            compile_time: Duration::from_micros(self.compile_micros.load(Ordering::Relaxed)),
            disk_loads: self.disk_loads.load(Ordering::Relaxed),
            shared_loads: self.shared_loads.load(Ordering::Relaxed),
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            cached: cached as u64,
            uploads_compiling: self
                .publish_concurrency
                .saturating_sub(self.publish_permits.available_permits())
                as u64,
        }
    }

    /// Shares compiles with other replicas through `shelf`; the first shelf set stays.
    pub(crate) fn share(&self, shelf: Arc<dyn ArtefactShelf>) {
        let _ = self.shelf.set(shelf);
    }

    fn artefact(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join(format!("{}-{}.cwasm", digest.hex(), self.engine_hash))
    }

    /// The compiled component for `digest`, for serving: from memory, else from the disk
    /// cache, else compiled from the bytes `load` returns. Concurrent callers for one
    /// digest share one compilation. A failure is not cached, so a later call may try
    /// again. The component is pinned: it is never evicted.
    pub(crate) async fn get(
        &self,
        digest: &Digest,
        load: impl AsyncFnOnce() -> anyhow::Result<Arc<Vec<u8>>>,
    ) -> Result<Component, PrepareError> {
        let slot = {
            let mut entries = self.entries.lock().expect("component cache poisoned");
            Arc::clone(&entries.touch(digest, true).slot)
        };
        if let Some(component) = slot.get() {
            self.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(component.clone());
        }
        let mut size = None;
        let size_ref = &mut size;
        let component = slot
            .get_or_try_init(move || async move {
                let (component, bytes) = self.load_or_compile(digest, load).await?;
                *size_ref = Some(bytes);
                Ok::<_, PrepareError>(component)
            })
            .await?
            .clone();
        if let Some(size) = size {
            self.record_size(digest, size);
        }
        Ok(component)
    }

    /// Compiles (or finds) an upload's component without adding it to the cache.
    pub(crate) async fn stage(
        &self,
        digest: &Digest,
        bytes: Arc<Vec<u8>>,
    ) -> Result<Staged, PrepareError> {
        let cached = {
            let mut entries = self.entries.lock().expect("component cache poisoned");
            entries.tick += 1;
            let tick = entries.tick;
            entries.map.get_mut(digest).and_then(|entry| {
                entry.last_used = tick;
                entry.slot.get().cloned()
            })
        };
        if let Some(component) = cached {
            self.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Staged::Cached(component));
        }
        if let Some(component) = self.load_from_disk(digest).await? {
            return Ok(Staged::Cached(component));
        }
        self.check_shape(&bytes)?;
        let (component, artefact) = self.compile(digest, bytes, Purpose::Publish).await?;
        Ok(Staged::Fresh {
            component,
            artefact,
        })
    }

    /// Keeps a stored upload's compiled component (memory and disk), so installing it does
    /// not compile again.
    pub(crate) fn admit(&self, digest: &Digest, staged: Staged) {
        let Staged::Fresh {
            component,
            artefact,
        } = staged
        else {
            return;
        };
        self.write_artefact(digest, &artefact);
        let size = artefact.len() as u64;
        self.put_on_shelf(digest, artefact);
        let mut entries = self.entries.lock().expect("component cache poisoned");
        let _ = entries.touch(digest, false).slot.set(component);
        entries.set_size(digest, size);
        let doomed = self.evict(&mut entries);
        drop(entries);
        self.remove_files(doomed);
    }

    fn record_size(&self, digest: &Digest, size: u64) {
        let mut entries = self.entries.lock().expect("component cache poisoned");
        if !entries.set_size(digest, size) {
            return;
        }
        let doomed = self.evict(&mut entries);
        drop(entries);
        self.remove_files(doomed);
    }

    /// Removes least recently used, unpinned, idle entries until the bounds hold; returns
    /// the files to delete (outside the lock).
    fn evict(&self, entries: &mut Entries) -> Vec<PathBuf> {
        let mut doomed = Vec::new();
        while entries.map.len() > self.max_entries || entries.bytes > self.max_cache_bytes {
            let victim = entries
                .map
                .iter()
                // Someone else holding the slot is compiling or loading it right now.
                .filter(|(_, e)| !e.pinned && Arc::strong_count(&e.slot) == 1)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(d, _)| *d);
            let Some(victim) = victim else {
                break;
            };
            if let Some(entry) = entries.map.remove(&victim) {
                entries.bytes -= entry.size;
                self.evictions.fetch_add(1, Ordering::Relaxed);
                doomed.push(self.artefact(&victim));
            }
        }
        doomed
    }

    fn remove_files(&self, files: Vec<PathBuf>) {
        for file in files {
            if let Err(e) = std::fs::remove_file(&file)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %file.display(), error = %e, "cannot remove an evicted artefact");
            }
        }
    }

    async fn load_from_disk(&self, digest: &Digest) -> Result<Option<Component>, PrepareError> {
        let path = self.artefact(digest);
        if !path.exists() {
            return Ok(None);
        }
        let engine = self.engine.clone();
        let from = path.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            // SAFETY: the file was written by `write_artefact` below from bytes this engine
            // compiled, into the operator's cache directory, under a name that includes the
            // digest and the engine's compatibility hash.
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
                Ok(Some(component))
            }
            Err(e) => {
                tracing::warn!(digest = %digest, error = %format!("{e:#}"), "discarding an unusable precompiled artefact");
                let _ = std::fs::remove_file(&path);
                Ok(None)
            }
        }
    }

    async fn load_or_compile(
        &self,
        digest: &Digest,
        load: impl AsyncFnOnce() -> anyhow::Result<Arc<Vec<u8>>>,
    ) -> Result<(Component, u64), PrepareError> {
        if let Some(component) = self.load_from_disk(digest).await? {
            let size = std::fs::metadata(self.artefact(digest)).map_or(0, |m| m.len());
            return Ok((component, size));
        }
        if let Some(loaded) = self.load_from_shelf(digest).await {
            return Ok(loaded);
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
        let (component, artefact) = self.compile(digest, bytes, Purpose::Serve).await?;
        self.write_artefact(digest, &artefact);
        let size = artefact.len() as u64;
        self.put_on_shelf(digest, artefact);
        Ok((component, size))
    }

    /// The component from the shared shelf, kept on this replica's disk too; `None` when
    /// there is no shelf, nothing on it, or what is there does not load (then it compiles).
    async fn load_from_shelf(&self, digest: &Digest) -> Option<(Component, u64)> {
        let shelf = self.shelf.get()?;
        let artefact = match tokio::time::timeout(
            SHELF_WAIT,
            shelf.get(*digest, self.engine_id.clone()),
        )
        .await
        {
            Ok(Ok(Some(artefact))) => artefact,
            Ok(Ok(None)) => return None,
            Err(_) => {
                tracing::warn!(digest = %digest, "the shared artefacts did not answer within {SHELF_WAIT:?}; compiling");
                return None;
            }
            Ok(Err(e)) => {
                tracing::warn!(digest = %digest, error = %format!("{e:#}"), "cannot read the shared artefacts; compiling");
                return None;
            }
        };
        let engine = self.engine.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            // SAFETY: the shelf returns only artefacts a replica of this platform compiled
            // and put there (the server's shelf checks their HMAC under the platform's key),
            // under this engine's compatibility id; wasmtime checks the engine again.
            #[allow(unsafe_code)]
            let component = unsafe { Component::deserialize(&engine, &artefact) };
            (component, artefact)
        })
        .await;
        match loaded {
            Ok((Ok(component), artefact)) => {
                self.write_artefact(digest, &artefact);
                self.shared_loads.fetch_add(1, Ordering::Relaxed);
                Some((component, artefact.len() as u64))
            }
            Ok((Err(e), _)) => {
                tracing::warn!(digest = %digest, error = %format!("{e:#}"), "a shared artefact does not load; compiling");
                None
            }
            Err(e) => {
                tracing::warn!(digest = %digest, error = %e, "loading a shared artefact failed; compiling");
                None
            }
        }
    }

    /// Puts a fresh artefact on the shelf, in the background: the caller does not wait
    /// for the database, and a failure only means other replicas compile it themselves.
    fn put_on_shelf(&self, digest: &Digest, artefact: Vec<u8>) {
        let Some(shelf) = self.shelf.get() else {
            return;
        };
        if artefact.len() > MAX_SHARED_BYTES {
            return;
        }
        let put = shelf.put(*digest, self.engine_id.clone(), Arc::new(artefact));
        let digest = *digest;
        tokio::spawn(async move {
            if let Err(e) = put.await {
                tracing::warn!(digest = %digest, error = %format!("{e:#}"), "cannot share a compiled artefact");
            }
        });
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

    /// Compiles `bytes` with the permit and threads of `purpose`; returns the component
    /// and its artefact, written nowhere.
    async fn compile(
        &self,
        digest: &Digest,
        bytes: Arc<Vec<u8>>,
        purpose: Purpose,
    ) -> Result<(Component, Vec<u8>), PrepareError> {
        let permit = match purpose {
            Purpose::Serve => Arc::clone(&self.serve_permits)
                .acquire_owned()
                .await
                .map_err(|e| PrepareError::Engine(e.into()))?,
            Purpose::Publish => tokio::time::timeout(
                self.publish_wait,
                Arc::clone(&self.publish_permits).acquire_owned(),
            )
            .await
            .map_err(|_| PrepareError::Busy(self.publish_wait))?
            .map_err(|e| PrepareError::Engine(e.into()))?,
        };
        let engine = self.engine.clone();
        let pool = (purpose == Purpose::Publish).then(|| Arc::clone(&self.publish_pool));
        let started = std::time::Instant::now();
        // The permit moves into the blocking task: a compilation that overruns its time
        // bound keeps its slot until cranelift finishes, so overruns cannot pile up.
        // Publish compiles run on their own rayon threads (wasmtime's parallel compile uses
        // the pool it is called in), so they never queue ahead of a gateway compile's work.
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            match pool {
                Some(pool) => pool.install(|| engine.precompile_component(&bytes)),
                None => engine.precompile_component(&bytes),
            }
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
        tracing::info!(digest = %digest, purpose = ?purpose, elapsed_ms = started.elapsed().as_millis() as u64, "compiled component");
        // SAFETY: `artefact` was produced just now by this engine's `precompile_component`.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(&self.engine, &artefact) }
            .map_err(|e| PrepareError::Engine(e.into()))?;
        Ok((component, artefact))
    }

    fn write_artefact(&self, digest: &Digest, artefact: &[u8]) {
        let path = self.artefact(digest);
        // Write to a temporary name and rename, so a crash never leaves a torn artefact
        // under the real name.
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        if let Err(e) = std::fs::write(&tmp, artefact).and_then(|()| std::fs::rename(&tmp, &path)) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the precompiled artefact; continuing without it");
            let _ = std::fs::remove_file(&tmp);
        }
    }
}
