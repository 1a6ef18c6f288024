//! Runtime micro-benchmarks: instantiate + handle `hello` (pooling and `InstancePre`, with
//! its 50th and 99th percentiles), kv get/set through the host, compiling a component
//! against loading it precompiled, publishing a 5 MiB component, and the per-call cost of
//! the trust-boundary checks (body cap and deadline, memory budget).
//!
//! Run with `cargo bench -p guildhall-runtime`.

use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use guildhall::ports::runtime_ports;
use guildhall_domain::manifest::Manifest;
use guildhall_domain::tenant::TenantSpec;
use guildhall_domain::{CouncilId, Digest, TenantId};
use guildhall_runtime::{CallContext, Caller, DenyAll, Runtime, RuntimeConfig};
use guildhall_store::Store;
use guildhall_test_artifacts::{plugin, print_percentiles, with_custom_section};
use std::time::Instant;

/// The allocator the `guildhall` binary runs with (`src/main.rs`), so the figures are the
/// server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Bench {
    _dir: tempfile::TempDir,
    store: Store,
    config: RuntimeConfig,
    runtime: Runtime,
}

async fn setup() -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite_file(&dir.path().join("g.db"))
        .await
        .unwrap();
    let spec = TenantSpec::from_toml(
        "id = \"bench\"\nname = \"Bench\"\n[[councils]]\nid = \"c1\"\nname = \"C1\"\n",
    )
    .unwrap();
    store.tenants().create(&spec).await.unwrap();
    let config = RuntimeConfig {
        cache_dir: dir.path().join("cache"),
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::new(
        config.clone(),
        runtime_ports(&store, Arc::new(DenyAll), None),
    )
    .unwrap();
    Bench {
        _dir: dir,
        store,
        config,
        runtime,
    }
}

async fn context(store: &Store, principal: Caller) -> CallContext {
    CallContext {
        tenant: store
            .scope(&TenantId::parse("bench").unwrap())
            .await
            .unwrap()
            .unwrap()
            .tenant()
            .clone(),
        council: CouncilId::parse("c1").unwrap(),
        principal,
        config: Arc::new(serde_json::json!({"council_name": "Bench"})),
        request_id: "bench".into(),
        traceparent: None,
        site: Arc::default(),
        session: None,
    }
}

async fn prepared(runtime: &Runtime, name: &str) -> guildhall_runtime::Prepared {
    let artifact = plugin(name);
    let manifest = Arc::new(Manifest::from_toml(&artifact.manifest()).unwrap());
    let bytes = Arc::new(artifact.bytes());
    runtime
        .prepare(manifest, Digest::of(&bytes), async move || Ok(bytes))
        .await
        .unwrap()
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let bench = rt.block_on(setup());
    let hello = rt.block_on(prepared(&bench.runtime, "hello"));
    let ctx = rt.block_on(context(&bench.store, Caller::Anonymous));

    c.bench_function("instantiate_and_handle_hello", |b| {
        b.to_async(&rt).iter(|| async {
            let request = http::Request::get("/").body(Bytes::new()).unwrap();
            let (response, _) = bench.runtime.handle(&hello, ctx.clone(), request).await;
            assert_eq!(response.unwrap().status(), 200);
        })
    });

    // Percentiles, timed one call at a time inside one task (no runtime hand-off).
    let samples = rt.block_on(async {
        let mut samples = Vec::with_capacity(5_000);
        for _ in 0..5_000 {
            let request = http::Request::get("/").body(Bytes::new()).unwrap();
            let started = Instant::now();
            let (response, _) = bench.runtime.handle(&hello, ctx.clone(), request).await;
            samples.push(started.elapsed());
            assert_eq!(response.unwrap().status(), 200);
        }
        samples
    });
    print_percentiles("instantiate_and_handle_hello", samples);

    // kv through the host: bin-collections answers a UPRN lookup with one kv get; an upload
    // of one property is one kv set per key plus an event.
    let bins = rt.block_on(prepared(&bench.runtime, "bin-collections"));
    let officer = rt.block_on(context(
        &bench.store,
        Caller::Subject {
            id: "bench-officer".into(),
            roles: vec![guildhall_domain::Role::Officer],
            council: None,
        },
    ));
    let schedule = r#"[{"uprn":"100062035361","postcode":"RH8 0BT","address":"1 Station Road","collections":[{"date":"2099-01-05","bin":"refuse"}]}]"#;
    let upload = || {
        http::Request::put("/schedule")
            .header("content-type", "application/json")
            .body(Bytes::from_static(schedule.as_bytes()))
            .unwrap()
    };
    let (first, _) = rt.block_on(bench.runtime.handle(&bins, officer.clone(), upload()));
    assert!(first.unwrap().status().is_success());
    c.bench_function("kv_get_via_bin_collections_lookup", |b| {
        b.to_async(&rt).iter(|| async {
            let request = http::Request::get("/uprn/100062035361")
                .body(Bytes::new())
                .unwrap();
            let (response, _) = bench.runtime.handle(&bins, ctx.clone(), request).await;
            assert_eq!(response.unwrap().status(), 200);
        })
    });
    c.bench_function("kv_set_via_bin_collections_upload", |b| {
        b.to_async(&rt).iter(|| async {
            let (response, _) = bench.runtime.handle(&bins, officer.clone(), upload()).await;
            assert!(response.unwrap().status().is_success());
        })
    });

    // The trust-boundary checks every plugin call passes besides instantiate + handle: its
    // body read under the size cap and the body deadline (as the gateway reads it) against
    // the same read unbounded, and its memory cap reserved in the memory budget and given
    // back.
    let form = Bytes::from(vec![b'x'; 1024]);
    let mut group = c.benchmark_group("trust_checks");
    group.bench_function("body_read_unbounded", |b| {
        b.to_async(&rt).iter(|| async {
            let body = axum::body::Body::from(form.clone());
            let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            assert_eq!(bytes.len(), 1024);
        })
    });
    group.bench_function("body_read_with_cap_and_deadline", |b| {
        b.to_async(&rt).iter(|| async {
            let body = axum::body::Body::from(form.clone());
            let read = axum::body::to_bytes(body, bench.config.max_request_body_bytes);
            let bytes = tokio::time::timeout(std::time::Duration::from_secs(30), read)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(bytes.len(), 1024);
        })
    });
    group.bench_function("memory_budget_reserve_and_release", |b| {
        b.to_async(&rt).iter(|| async {
            let reservation = bench.runtime.reserve_memory(&hello).await.unwrap();
            assert!(bench.runtime.memory_in_use_mib() > 0);
            drop(reservation);
        })
    });
    group.finish();

    // Compile from bytes against load from the precompiled cache, on fresh runtimes.
    let manifest = Arc::new(Manifest::from_toml(&plugin("hello").manifest()).unwrap());
    let bytes = Arc::new(plugin("hello").bytes());
    let digest = Digest::of(&bytes);
    let mut group = c.benchmark_group("prepare_hello");
    group.sample_size(10);
    group.bench_function("compile", |b| {
        b.to_async(&rt).iter(|| async {
            let dir = tempfile::tempdir().unwrap();
            let config = RuntimeConfig {
                cache_dir: dir.path().to_path_buf(),
                pooling_instances: 0,
                ..bench.config.clone()
            };
            let fresh =
                Runtime::new(config, runtime_ports(&bench.store, Arc::new(DenyAll), None)).unwrap();
            let bytes = Arc::clone(&bytes);
            fresh
                .prepare(Arc::clone(&manifest), digest, async move || Ok(bytes))
                .await
                .unwrap();
            assert_eq!(fresh.stats().compiles, 1);
        })
    });
    group.bench_function("load_precompiled", |b| {
        b.to_async(&rt).iter(|| async {
            let config = RuntimeConfig {
                pooling_instances: 0,
                ..bench.config.clone()
            };
            let fresh =
                Runtime::new(config, runtime_ports(&bench.store, Arc::new(DenyAll), None)).unwrap();
            fresh
                .prepare(Arc::clone(&manifest), digest, async || {
                    anyhow::bail!("must load from disk")
                })
                .await
                .unwrap();
            assert_eq!(fresh.stats().disk_loads, 1);
        })
    });
    group.finish();

    // Publishing a 5 MiB component: digest, checks, compilation (each iteration is new
    // bytes, so nothing is cached) and the catalogue write.
    let hello_manifest = plugin("hello").manifest();
    let hello_bytes = plugin("hello").bytes();
    let padding = vec![0x5a_u8; 5 << 20];
    let published = std::sync::atomic::AtomicUsize::new(0);
    let mut group = c.benchmark_group("publish");
    group.sample_size(10);
    group.bench_function("publish_5_mib_component", |b| {
        b.to_async(&rt).iter(|| async {
            let n = published.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut payload = n.to_le_bytes().to_vec();
            payload.extend_from_slice(&padding);
            let bytes = with_custom_section(&hello_bytes, "guildhall-bench", &payload);
            assert!(bytes.len() > 5 << 20);
            let text = hello_manifest
                .replace("name = \"hello\"", "name = \"hello-5mib\"")
                .replace("version = \"0.1.0\"", &format!("version = \"0.0.{n}\""));
            // The operation the API and the command line publish with.
            let keys = guildhall_operations::catalogue::TrustedKeys::default();
            guildhall_operations::catalogue::publish(
                guildhall_operations::catalogue::Catalogue {
                    store: &bench.store,
                    runtime: &bench.runtime,
                    keys: &keys,
                },
                guildhall_store::Actor {
                    subject: "bench",
                    operator: true,
                },
                None,
                &text,
                bytes,
                None,
            )
            .await
            .unwrap();
        })
    });
    group.finish();
}

criterion_group!(runtime, benches);
criterion_main!(runtime);
