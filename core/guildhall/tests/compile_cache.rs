//! The component cache under pressure: uploads compile on their own permits and threads so
//! a gateway compile never waits behind them, a refused upload leaves nothing cached, and
//! the cache stays within its bounds without evicting what serves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use guildhall::ports::runtime_ports;
use guildhall_domain::Digest;
use guildhall_domain::manifest::Manifest;
use guildhall_runtime::{DenyAll, PrepareError, Runtime, RuntimeConfig};
use guildhall_store::{DatabaseUrl, PoolOptions, Store};
use guildhall_test_artifacts::plugin;

struct World {
    dir: tempfile::TempDir,
    runtime: Runtime,
}

async fn world_with(config: impl FnOnce(&mut RuntimeConfig)) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite_file(&dir.path().join("g.db"))
        .await
        .unwrap();
    let mut rc = RuntimeConfig {
        cache_dir: dir.path().join("cache"),
        pooling_instances: 16,
        ..RuntimeConfig::default()
    };
    config(&mut rc);
    let runtime = Runtime::new(rc, runtime_ports(&store, Arc::new(DenyAll), None)).unwrap();
    World { dir, runtime }
}

impl World {
    fn cache_files(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("cache"))
            .unwrap()
            .count()
    }

    /// Prepares a built plugin as the gateway does for an installed version.
    async fn serve(&self, name: &str) -> Result<(), PrepareError> {
        let artifact = plugin(name);
        let manifest = Arc::new(manifest(name));
        let bytes = Arc::new(artifact.bytes());
        let digest = Digest::of(&bytes);
        self.runtime
            .prepare(manifest, digest, async move || Ok(bytes))
            .await
            .map(|_| ())
    }
}

fn manifest(name: &str) -> Manifest {
    Manifest::from_toml(&plugin(name).manifest()).unwrap()
}

/// A component that is slow to compile: one core module of many long functions (about
/// 15 MB of code: seconds of compiling on one thread even on an idle machine, against a
/// serving compile of `hello` in well under one).
fn slow_component() -> Vec<u8> {
    let mut text = String::from("(component (core module\n");
    for _ in 0..6_000 {
        text.push_str("(func (param i32) (result i32) local.get 0\n");
        for i in 0..400 {
            text.push_str(&format!("i32.const {i} i32.add i32.const 3 i32.mul\n"));
        }
        text.push_str(")\n");
    }
    text.push_str("))");
    wat::parse_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serving_compiles_never_wait_behind_an_upload_compile() {
    let w = world_with(|c| c.publish_compile_wait_ms = 100).await;
    let slow = Arc::new(slow_component());
    let runtime = w.runtime.clone();
    let upload = tokio::spawn(async move {
        let started = Instant::now();
        let result = runtime.check_component(&manifest("hello"), slow).await;
        (result.map(|_| ()), started.elapsed())
    });
    // Wait until the slow upload holds its compile permit (hashing and checking it come
    // first and take their own time).
    let deadline = Instant::now() + Duration::from_secs(60);
    while w.runtime.stats().uploads_compiling == 0 {
        assert!(
            !upload.is_finished(),
            "the slow upload ended before compiling"
        );
        assert!(
            Instant::now() < deadline,
            "the slow upload never started compiling"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // A second upload waits at most publish_compile_wait_ms, then hears Busy.
    let started = Instant::now();
    let busy = w
        .runtime
        .check_component(
            &manifest("fixture-panic"),
            Arc::new(plugin("fixture-panic").bytes()),
        )
        .await
        .unwrap_err();
    assert!(matches!(busy, PrepareError::Busy(_)), "{busy}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // The gateway compiles an installed version (cold) meanwhile, without waiting.
    let started = Instant::now();
    w.serve("hello").await.unwrap();
    let served_in = started.elapsed();
    assert!(
        !upload.is_finished(),
        "the serving compile ({served_in:?}) finished only after the upload compile"
    );
    let (result, upload_took) = upload.await.unwrap();
    // The slow component has no HTTP handler: refused, after compiling.
    assert!(
        matches!(result, Err(PrepareError::NotAService(_))),
        "{result:?}"
    );
    assert!(served_in < upload_took, "{served_in:?} vs {upload_took:?}");
    // Only the served component is cached: the refused upload left nothing, anywhere.
    assert_eq!(w.runtime.stats().cached, 1);
    assert_eq!(w.cache_files(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upload_is_not_cached_and_an_admitted_one_is() {
    let w = world_with(|_| {}).await;
    // Compiles, then fails the import check.
    let undeclared = plugin("fixture-undeclared-kv");
    let err = w
        .runtime
        .check_component(&manifest("hello"), Arc::new(undeclared.bytes()))
        .await
        .unwrap_err();
    assert!(matches!(err, PrepareError::UndeclaredImports(_)), "{err}");
    assert_eq!(w.runtime.stats().cached, 0);
    assert_eq!(w.cache_files(), 0);

    let checked = w
        .runtime
        .check_component(&manifest("hello"), Arc::new(plugin("hello").bytes()))
        .await
        .unwrap();
    assert_eq!(w.cache_files(), 0, "cached before it was stored");
    w.runtime.admit(checked);
    assert_eq!(w.runtime.stats().cached, 1);
    assert_eq!(w.cache_files(), 1);
    let compiles = w.runtime.stats().compiles;
    w.serve("hello").await.unwrap();
    assert_eq!(
        w.runtime.stats().compiles,
        compiles,
        "an admitted upload compiled again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_is_bounded_and_never_evicts_what_serves() {
    let w = world_with(|c| c.compile_cache_entries = 2).await;
    w.serve("hello").await.unwrap();
    for name in [
        "fixture-panic",
        "fixture-infinite-loop",
        "fixture-big-response",
    ] {
        let checked = w
            .runtime
            .check_component(&manifest(name), Arc::new(plugin(name).bytes()))
            .await
            .unwrap();
        w.runtime.admit(checked);
    }
    let stats = w.runtime.stats();
    assert_eq!(stats.cached, 2, "{stats:?}");
    assert_eq!(stats.evictions, 2, "{stats:?}");
    assert_eq!(w.cache_files(), 2);
    // hello, pinned, is still in memory.
    let compiles = stats.compiles;
    w.serve("hello").await.unwrap();
    assert_eq!(w.runtime.stats().compiles, compiles);
    // A new process adopts the files on disk within the same bounds.
    let again = Runtime::new(
        RuntimeConfig {
            cache_dir: w.dir.path().join("cache"),
            pooling_instances: 16,
            compile_cache_entries: 1,
            ..RuntimeConfig::default()
        },
        runtime_ports(
            &Store::connect(
                &DatabaseUrl::new(format!(
                    "sqlite://{}?mode=rwc",
                    w.dir.path().join("g.db").display()
                )),
                &PoolOptions::default(),
            )
            .await
            .unwrap(),
            Arc::new(DenyAll),
            None,
        ),
    )
    .unwrap();
    assert_eq!(again.stats().cached, 1);
    assert_eq!(w.cache_files(), 1);
}
