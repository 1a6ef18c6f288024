//! The runtime against real components built from `plugins/`, a real SQLite store and real
//! wasmtime: example plugins work, every hostile fixture ends in its precise outcome within
//! its deadline, and a neighbouring tenant keeps being served throughout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use guildhall::ports::runtime_ports;
use guildhall_domain::manifest::Manifest;
use guildhall_domain::tenant::TenantSpec;
use guildhall_domain::{CouncilId, Digest, TenantId};
use guildhall_runtime::{
    CallContext, CallError, Caller, DenyAll, PrepareError, Prepared, Runtime, RuntimeConfig,
};
use guildhall_store::Store;
use guildhall_test_artifacts::plugin;

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    runtime: Runtime,
    config: RuntimeConfig,
}

async fn world_with(config: impl FnOnce(&mut RuntimeConfig)) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite_file(&dir.path().join("g.db"))
        .await
        .unwrap();
    for tenant in ["alpha", "beta"] {
        let spec = TenantSpec::from_toml(&format!(
            "id = \"{tenant}\"\nname = \"{tenant}\"\n[[councils]]\nid = \"first\"\nname = \"First\"\n[[councils]]\nid = \"second\"\nname = \"Second\"\n"
        ))
        .unwrap();
        store.tenants().create(&spec).await.unwrap();
    }
    let mut rc = RuntimeConfig {
        cache_dir: dir.path().join("cache"),
        default_timeout_ms: 1_000,
        pooling_instances: 64,
        ..RuntimeConfig::default()
    };
    config(&mut rc);
    let runtime = Runtime::new(rc.clone(), runtime_ports(&store, Arc::new(DenyAll), None)).unwrap();
    World {
        _dir: dir,
        store,
        runtime,
        config: rc,
    }
}

async fn world() -> World {
    world_with(|_| {}).await
}

impl World {
    async fn prepare(&self, name: &str) -> Result<Prepared, PrepareError> {
        let artifact = plugin(name);
        let manifest = Arc::new(Manifest::from_toml(&artifact.manifest()).unwrap());
        let bytes = Arc::new(artifact.bytes());
        let digest = Digest::of(&bytes);
        self.runtime
            .prepare(manifest, digest, async move || Ok(bytes))
            .await
    }

    async fn context(
        &self,
        tenant: &str,
        principal: Caller,
        config: serde_json::Value,
    ) -> CallContext {
        // Like the gateway, resolve the tenant before handing the runtime its id.
        let scope = self
            .store
            .scope(&TenantId::parse(tenant).unwrap())
            .await
            .unwrap()
            .unwrap();
        CallContext {
            tenant: scope.tenant().clone(),
            council: CouncilId::parse("first").unwrap(),
            principal,
            config: Arc::new(config),
            request_id: "test-request".into(),
            traceparent: None,
            site: Arc::default(),
            session: None,
        }
    }

    async fn call(
        &self,
        plugin: &Prepared,
        tenant: &str,
        request: http::Request<Bytes>,
    ) -> (
        Result<http::Response<Bytes>, CallError>,
        guildhall_runtime::CallReport,
    ) {
        let ctx = self
            .context(tenant, Caller::Anonymous, serde_json::json!({}))
            .await;
        self.runtime.handle(plugin, ctx, request).await
    }
}

fn get(path: &str) -> http::Request<Bytes> {
    http::Request::get(path).body(Bytes::new()).unwrap()
}

fn text(response: &http::Response<Bytes>) -> String {
    String::from_utf8_lossy(response.body()).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_answers_for_the_council_its_request_names() {
    let w = world().await;
    let hello = w.prepare("hello").await.unwrap();
    // The gateway names tenant and council in these headers on every call.
    let request = http::Request::get("/")
        .header("x-guildhall-tenant", "alpha")
        .header("x-guildhall-council", "first")
        .body(Bytes::new())
        .unwrap();
    let (response, report) = w.call(&hello, "alpha", request).await;
    let response = response.unwrap();
    assert_eq!(response.status(), 200);
    let body = text(&response);
    assert!(body.contains("first") && body.contains("alpha"), "{body}");
    assert_eq!(report.outcome, "ok");
    assert_eq!(report.bytes_out, response.body().len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_compiles_once_for_every_tenant_and_once_per_disk_cache() {
    let w = world().await;
    let a = w.prepare("hello").await.unwrap();
    let b = w.prepare("hello").await.unwrap();
    assert_eq!(a.digest(), b.digest());
    let stats = w.runtime.stats();
    assert_eq!(stats.compiles, 1, "{stats:?}");
    assert!(stats.memory_hits >= 1, "{stats:?}");
    for tenant in ["alpha", "beta"] {
        assert_eq!(w.call(&b, tenant, get("/")).await.0.unwrap().status(), 200);
    }

    // A second runtime on the same cache folder (a restart) loads the precompiled artefact.
    let again = Runtime::new(
        w.config.clone(),
        runtime_ports(&w.store, Arc::new(DenyAll), None),
    )
    .unwrap();
    let artifact = plugin("hello");
    let manifest = Arc::new(Manifest::from_toml(&artifact.manifest()).unwrap());
    let loaded = again
        .prepare(manifest, *a.digest(), async || {
            anyhow::bail!("the bytes must not be needed")
        })
        .await
        .unwrap();
    assert_eq!(again.stats().compiles, 0);
    assert_eq!(again.stats().disk_loads, 1);
    assert_eq!(
        again
            .handle(
                &loaded,
                w.context("beta", Caller::Anonymous, serde_json::json!({}))
                    .await,
                get("/")
            )
            .await
            .0
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeclared_imports_are_listed() {
    let w = world().await;
    let err = w.prepare("fixture-undeclared-kv").await.unwrap_err();
    let PrepareError::UndeclaredImports(imports) = &err else {
        panic!("expected UndeclaredImports, got {err}");
    };
    assert!(
        imports
            .iter()
            .any(|i| i.starts_with("guildhall:platform/kv@0.1.0") && i.contains("declare `kv`")),
        "{imports:?}"
    );
    assert!(err.to_string().contains("guildhall:platform/kv"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bytes_are_refused_precisely() {
    let w = world().await;
    let manifest = Arc::new(Manifest::from_toml(&plugin("hello").manifest()).unwrap());
    let core_module = wat::parse_str("(module)").unwrap();
    let err = w
        .runtime
        .check_component(&manifest, Arc::new(core_module))
        .await
        .unwrap_err();
    assert!(
        matches!(err, PrepareError::NotAComponent(ref m) if m.contains("core WebAssembly module")),
        "{err}"
    );
    let err = w
        .runtime
        .check_component(&manifest, Arc::new(b"hello".to_vec()))
        .await
        .unwrap_err();
    assert!(matches!(err, PrepareError::NotAComponent(_)), "{err}");
    let no_handler = wat::parse_str("(component)").unwrap();
    let bytes = Arc::new(no_handler);
    let digest = Digest::of(&bytes);
    let err = w
        .runtime
        .prepare(Arc::clone(&manifest), digest, async move || Ok(bytes))
        .await
        .unwrap_err();
    assert!(matches!(err, PrepareError::NotAService(_)), "{err}");
    let small = world_with(|c| c.max_component_bytes = 1024).await;
    let err = small
        .runtime
        .check_component(&manifest, Arc::new(plugin("hello").bytes()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, PrepareError::TooLarge { limit: 1024, .. }),
        "{err}"
    );
}

/// Runs a hostile call for `alpha` while `beta` keeps calling `hello`, and checks that
/// every `hello` answered quickly during and after.
async fn hostile(
    w: &World,
    fixture: &str,
    request: http::Request<Bytes>,
) -> (Result<http::Response<Bytes>, CallError>, Duration) {
    let bad = w.prepare(fixture).await.unwrap();
    let hello = w.prepare("hello").await.unwrap();
    let started = Instant::now();
    let (outcome, neighbour) = tokio::join!(
        async {
            let r = w.call(&bad, "alpha", request).await.0;
            (r, started.elapsed())
        },
        async {
            let mut slowest = Duration::ZERO;
            let mut calls = 0;
            while started.elapsed() < Duration::from_millis(1_200) {
                let t = Instant::now();
                let (r, _) = w.call(&hello, "beta", get("/")).await;
                assert_eq!(
                    r.unwrap().status(),
                    200,
                    "the neighbour's hello failed during {fixture}"
                );
                slowest = slowest.max(t.elapsed());
                calls += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (slowest, calls)
        }
    );
    let (slowest, calls) = neighbour;
    assert!(
        calls >= 5,
        "the neighbour made only {calls} calls during {fixture}"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "the neighbour's slowest hello took {slowest:?} during {fixture}"
    );
    // And the runtime still serves afterwards.
    assert_eq!(
        w.call(&hello, "alpha", get("/")).await.0.unwrap().status(),
        200
    );
    outcome
}

/// The deadline plus a margin for one epoch tick and scheduling on a busy 2-core machine.
const MARGIN: Duration = Duration::from_millis(750);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_hits_its_deadline() {
    let w = world().await;
    let (result, elapsed) = hostile(&w, "fixture-infinite-loop", get("/")).await;
    assert_eq!(
        result.unwrap_err(),
        CallError::Deadline(Duration::from_millis(1_000))
    );
    assert!(
        elapsed < Duration::from_millis(1_000) + MARGIN,
        "{elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_drip_hits_its_deadline() {
    let w = world().await;
    let (result, elapsed) = hostile(&w, "fixture-slow-drip", get("/")).await;
    assert_eq!(
        result.unwrap_err(),
        CallError::Deadline(Duration::from_millis(1_000))
    );
    assert!(
        elapsed < Duration::from_millis(1_000) + MARGIN,
        "{elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_hits_its_cap() {
    let w = world().await;
    let (result, _) = hostile(&w, "fixture-memory-bomb", get("/")).await;
    assert_eq!(result.unwrap_err(), CallError::MemoryCap(16 << 20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_recursion_overflows_the_wasm_stack() {
    let w = world().await;
    let (result, _) = hostile(&w, "fixture-deep-recursion", get("/")).await;
    assert_eq!(
        result.unwrap_err(),
        CallError::Trap("wasm stack overflow".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_a_trap_for_that_call_only() {
    let w = world().await;
    let (result, _) = hostile(&w, "fixture-panic", get("/")).await;
    let err = result.unwrap_err();
    assert!(
        matches!(err, CallError::Trap(ref m) if m.contains("unreachable")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_over_the_cap_is_a_bad_response() {
    let w = world().await;
    let (result, _) = hostile(&w, "fixture-big-response", get("/")).await;
    let err = result.unwrap_err();
    assert_eq!(
        err,
        CallError::BadResponse(format!(
            "the response body is larger than {} bytes",
            8 << 20
        ))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_cap_is_refused() {
    let w = world().await;
    let hello = w.prepare("hello").await.unwrap();
    let big = http::Request::post("/")
        .body(Bytes::from(vec![0u8; (4 << 20) + 1]))
        .unwrap();
    let (result, report) = w.call(&hello, "alpha", big).await;
    assert_eq!(result.unwrap_err(), CallError::BodyTooLarge(4 << 20));
    assert_eq!(report.outcome, "body_too_large");
}

fn outbound_to(url: &str) -> http::Request<Bytes> {
    let encoded: String = url
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    get(&format!("/?url={encoded}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_calls_to_undeclared_hosts_and_loopback_are_denied() {
    let w = world().await;
    let (result, _) = hostile(
        &w,
        "fixture-outbound",
        outbound_to("http://undeclared.example.org/"),
    )
    .await;
    let response = result.unwrap();
    assert_eq!(response.status(), 502);
    assert!(
        text(&response).contains("HttpRequestDenied"),
        "{}",
        text(&response)
    );

    let outbound = w.prepare("fixture-outbound").await.unwrap();
    let (result, report) = w
        .call(&outbound, "alpha", outbound_to("http://localhost:9/"))
        .await;
    let response = result.unwrap();
    assert!(
        text(&response).contains("DestinationIpProhibited"),
        "{}",
        text(&response)
    );
    assert_eq!(report.denied.len(), 1, "{:?}", report.denied);
    assert!(
        report.denied[0].starts_with("outbound http to localhost: address ")
            && report.denied[0].ends_with(" is internal"),
        "{:?}",
        report.denied
    );
    // An address the manifest cannot declare is never reached, whatever it is.
    let (result, report) = w
        .call(&outbound, "alpha", outbound_to("http://127.0.0.1:9/"))
        .await;
    assert!(text(&result.unwrap()).contains("HttpRequestDenied"));
    assert_eq!(
        report.denied,
        ["outbound http to 127.0.0.1: not declared in the manifest"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_calls_reach_hosts_the_operator_allows() {
    let w = world_with(|c| c.outbound.allow_cidrs = vec!["127.0.0.0/8".into()]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 13\r\nconnection: close\r\n\r\nupstream says")
                .await;
        }
    });
    let outbound = w.prepare("fixture-outbound").await.unwrap();
    let (result, report) = w
        .call(
            &outbound,
            "alpha",
            outbound_to(&format!("http://localhost:{port}/x")),
        )
        .await;
    let response = result.unwrap();
    assert_eq!(response.status(), 200, "{}", text(&response));
    assert!(
        text(&response).contains("upstream says"),
        "{}",
        text(&response)
    );
    assert!(report.denied.is_empty());
}

/// Report-a-problem files through the atomic kv operations, as the host binds them over the
/// store: ids continue above requests filed before there was a counter, a record already
/// under a number is skipped rather than overwritten, and a counter that is not a number
/// reaches the plugin as that (a 500 of the plugin's, not "storage unavailable").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_a_problem_numbers_requests_with_atomic_kv_operations() {
    let w = world().await;
    let reports = w.prepare("report-a-problem").await.unwrap();
    let scope = w
        .store
        .scope(&TenantId::parse("alpha").unwrap())
        .await
        .unwrap()
        .unwrap();
    let name = guildhall_domain::PluginName::parse("report-a-problem").unwrap();
    let kv = w.store.kv(&scope, &name);
    let quota = w.config.kv_quota_bytes;
    let file = async || {
        let config = serde_json::json!({"services": [{"service_code": "pothole",
            "service_name": "Pothole", "description": "A hole", "metadata": false,
            "type": "realtime", "keywords": "road", "group": "highways"}]});
        let ctx = w.context("alpha", Caller::Anonymous, config).await;
        let request = http::Request::post("/requests.json")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Bytes::from_static(
                b"service_code=pothole&address_string=High+Street&description=A+hole",
            ))
            .unwrap();
        let response = w.runtime.handle(&reports, ctx, request).await.0.unwrap();
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        (response.status().as_u16(), body)
    };

    // A request filed before there was a counter: numbering continues above it.
    kv.set("council/first/request/7", b"{}", quota)
        .await
        .unwrap();
    let (status, body) = file().await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body[0]["service_request_id"], "8");
    assert_eq!(
        kv.get("council/first/counter/requests")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"8"[..])
    );
    // A record already under the next number is kept; the request gets the one after.
    kv.set("council/first/request/9", b"{\"kept\":true}", quota)
        .await
        .unwrap();
    let (_, body) = file().await;
    assert_eq!(body[0]["service_request_id"], "10");
    assert_eq!(
        kv.get("council/first/request/9").await.unwrap().as_deref(),
        Some(&b"{\"kept\":true}"[..])
    );
    // A counter that is not a number.
    kv.set("council/first/counter/requests", b"ten", quota)
        .await
        .unwrap();
    let (status, body) = file().await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(kv.usage().await.unwrap(), kv.stored_bytes().await.unwrap());
}
