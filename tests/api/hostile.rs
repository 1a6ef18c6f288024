//! Plugins that try to exhaust the host: floods of host-side resources (header bytes,
//! resource-table entries, outbound requests, events), several linear memories, grown
//! tables, and more concurrent calls than the memory budget holds. Each call is refused with
//! its own status, the server stays healthy, and its resident memory stays near where it
//! started.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use guildhall_domain::TenantId;

use crate::helpers::{Backend, TestApp, expect_problem, expect_text};

/// The server's resident set in bytes: the test server runs in this process.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("a VmRSS line");
    kib * 1024
}

/// Samples the resident set every few milliseconds until stopped; returns the peak.
fn watch_rss() -> (Arc<AtomicBool>, std::thread::JoinHandle<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(rss_bytes()));
    let handle = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
            peak.load(Ordering::Relaxed)
        })
    };
    (stop, handle)
}

const MIB: u64 = 1 << 20;

/// The fixtures written in WAT (a Rust `cdylib` cannot have several memories or grow its
/// table), kept with the others under `plugins/fixtures` and compiled here: (manifest,
/// component text) of each.
const TWO_MEMORIES: (&str, &str) = (
    include_str!("../../plugins/fixtures/two-memories/manifest.toml"),
    include_str!("../../plugins/fixtures/two-memories/component.wat"),
);
const TABLE_GROWTH: (&str, &str) = (
    include_str!("../../plugins/fixtures/table-growth/manifest.toml"),
    include_str!("../../plugins/fixtures/table-growth/component.wat"),
);

/// Publishes a WAT fixture; its name is the manifest's.
async fn publish_wat(app: &TestApp, (manifest, wat): (&str, &str)) {
    let name = guildhall_domain::manifest::Manifest::from_toml(manifest)
        .expect("the fixture's manifest parses")
        .name;
    let wasm = wat::parse_str(wat).expect("the WAT component parses");
    let response = app.publish(name.as_str(), manifest, wasm, None).await;
    expect_text(response, 201).await;
}

/// A server with the host-flooding fixtures installed for `north-downs` and `hello` for
/// `the-marches`.
async fn flooded_app(adjust: impl FnOnce(&mut guildhall::Config)) -> TestApp {
    let app = TestApp::spawn_with(Backend::Sqlite, adjust).await.unwrap();
    app.create_example_tenants().await;
    app.publish_built("hello").await;
    for (tenant, plugin) in [
        ("the-marches", "hello"),
        ("north-downs", "hello"),
        ("north-downs", "fixture-header-flood"),
        ("north-downs", "fixture-resource-flood"),
        ("north-downs", "fixture-outbound-loop"),
        ("north-downs", "fixture-slow-drip"),
        ("north-downs", "fixture-two-memories"),
        ("north-downs", "fixture-table-growth"),
    ] {
        match plugin {
            "hello" => {}
            "fixture-two-memories" => publish_wat(&app, TWO_MEMORIES).await,
            "fixture-table-growth" => publish_wat(&app, TABLE_GROWTH).await,
            _ => {
                app.publish_built(plugin).await;
            }
        }
        let response = app.install_for(tenant, plugin, "all").await;
        assert_eq!(response.status(), 201, "{tenant} {plugin}");
    }
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_side_floods_end_their_call_and_leave_the_host_as_it_was() {
    // A deadline long enough that a busy machine's calls still reach their host limits
    // (they do within milliseconds when the machine is idle) rather than their deadline.
    let app = flooded_app(|config| config.runtime.default_timeout_ms = 10_000).await;
    // Warm every path once so the baseline includes the server's own caches.
    assert_eq!(
        app.get("/s/the-marches/shropshire/hello/").await.status(),
        200
    );
    let baseline = rss_bytes();
    let (stop, peak) = watch_rss();
    let cases: [(&str, &str, &str); 5] = [
        // 60 KB headers pile up on the host, not in the guest: counted against its 16 MiB.
        (
            "fixture-header-flood",
            "memory_cap",
            "memory cap of 16777216 bytes",
        ),
        // Empty fields: no bytes to speak of, but one resource-table entry each.
        (
            "fixture-resource-flood",
            "host_limit",
            "runtime.max_call_resources",
        ),
        // Refused outbound requests in a loop.
        (
            "fixture-outbound-loop",
            "host_limit",
            "runtime.outbound.max_requests_per_call",
        ),
        // Two memories, each under the cap, together over it.
        (
            "fixture-two-memories",
            "memory_cap",
            "memory cap of 16777216 bytes",
        ),
        // A memory under the cap and a table that would take it over.
        (
            "fixture-table-growth",
            "memory_cap",
            "memory cap of 16777216 bytes",
        ),
    ];
    for (fixture, outcome, reason) in cases {
        // Several at once, as an attacker would send them.
        let path = format!("/s/north-downs/tandridge/{fixture}/");
        let (a, b, c, neighbour) =
            tokio::join!(app.get(&path), app.get(&path), app.get(&path), async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                app.get("/s/the-marches/shropshire/hello/").await.status()
            });
        for response in [a, b, c] {
            let problem = expect_problem(response, 502).await;
            assert_eq!(problem["outcome"], outcome, "{fixture}: {problem}");
            let why = problem["reason"].as_str().unwrap();
            assert!(why.contains(reason), "{fixture}: {why}");
        }
        assert_eq!(neighbour, 200, "the neighbour failed during {fixture}");
        assert_eq!(app.get("/healthz").await.status(), 200);
        assert_eq!(
            app.get("/s/north-downs/tandridge/hello/").await.status(),
            200,
            "the flooding tenant's other plugins still answer after {fixture}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let peak = peak.join().unwrap();
    let after = rss_bytes();
    // Unbounded, one header flood took the server from 34 MiB to 3.4 GiB. Bounded, fifteen
    // calls of at most 64 MiB each (three at a time) stay within a few hundred MiB.
    assert!(
        peak.saturating_sub(baseline) < 512 * MIB,
        "resident memory grew from {} MiB to a peak of {} MiB",
        baseline / MIB,
        peak / MIB
    );
    assert!(
        after.saturating_sub(baseline) < 256 * MIB,
        "resident memory stayed at {} MiB after the calls (baseline {} MiB)",
        after / MIB,
        baseline / MIB
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_elements_count_against_the_memory_cap_in_both_allocators() {
    // The same fixture growing its table by 1,000 elements (8 kB), which fits.
    let fits = TABLE_GROWTH
        .1
        .replace("(i32.const 20000)", "(i32.const 1000)");
    let fits_manifest = TABLE_GROWTH
        .0
        .replace("fixture-table-growth", "fixture-table-fits");
    assert!(fits != TABLE_GROWTH.1 && fits_manifest != TABLE_GROWTH.0);
    // Pooled instances (the default) and instances allocated on demand.
    for pooling_instances in [100, 0] {
        let app = TestApp::spawn_with(Backend::Sqlite, |c| {
            c.runtime.pooling_instances = pooling_instances;
        })
        .await
        .unwrap();
        app.create_example_tenants().await;
        app.publish_built("hello").await;
        publish_wat(&app, TABLE_GROWTH).await;
        publish_wat(&app, (&fits_manifest, &fits)).await;
        for plugin in ["hello", "fixture-table-growth", "fixture-table-fits"] {
            let response = app.install_for("north-downs", plugin, "all").await;
            assert_eq!(response.status(), 201, "{plugin}");
        }
        let allocation = if pooling_instances > 0 {
            "pooling"
        } else {
            "on demand"
        };
        for _ in 0..3 {
            let over = app
                .get("/s/north-downs/tandridge/fixture-table-growth/")
                .await;
            let problem = expect_problem(over, 502).await;
            assert_eq!(problem["outcome"], "memory_cap", "{allocation}: {problem}");
            // Within the cap, both growths succeed and the guest returns without answering.
            let within = app
                .get("/s/north-downs/tandridge/fixture-table-fits/")
                .await;
            let problem = expect_problem(within, 502).await;
            assert_eq!(
                problem["outcome"], "bad_response",
                "{allocation}: {problem}"
            );
        }
        assert_eq!(
            app.get("/s/north-downs/tandridge/hello/").await.status(),
            200,
            "{allocation}"
        );
        assert_eq!(app.get("/healthz").await.status(), 200, "{allocation}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_memory_budget_wait_then_get_429() {
    // Room for one 64 MiB guest at a time.
    let app = flooded_app(|config| {
        config.runtime.memory_budget_mib = 64;
        config.runtime.max_memory_mib = 64;
        config.runtime.default_memory_mib = 64;
        config.runtime.tenant_queue_timeout_ms = 200;
    })
    .await;
    let slow = "/s/north-downs/tandridge/fixture-slow-drip/";
    let responses = futures::future::join_all((0..4).map(|_| app.get(slow))).await;
    let mut statuses: Vec<u16> = Vec::new();
    for response in responses {
        let status = response.status().as_u16();
        if status == 429 {
            assert_eq!(
                response.headers().get("retry-after").unwrap(),
                "1",
                "a refused call says when to retry"
            );
            let problem = expect_problem(response, 429).await;
            assert!(
                problem["detail"].as_str().unwrap().contains("memory"),
                "{problem}"
            );
        }
        statuses.push(status);
    }
    statuses.sort_unstable();
    // One runs (and ends at its deadline); the others wait 200 ms and are refused.
    assert_eq!(statuses, [429, 429, 429, 504], "{statuses:?}");
    // The budget is given back when a call ends, however it ends.
    assert_eq!(
        app.get("/s/the-marches/shropshire/hello/").await.status(),
        200
    );
    assert_eq!(app.get("/healthz").await.status(), 200);
}

/// The audit chain entries of `tenant`.
async fn chain_length(app: &TestApp, tenant: &str) -> u64 {
    let store = app.store().await;
    let scope = store
        .scope(&TenantId::parse(tenant).unwrap())
        .await
        .unwrap()
        .unwrap();
    let verification = store.audit(&scope).verify().await.unwrap();
    assert!(verification.broken.is_none(), "{verification:?}");
    verification.entries
}

async fn event_floods_stop_at_the_quotas(app: TestApp) {
    app.create_example_tenants().await;
    app.publish_built("fixture-event-flood").await;
    let response = app
        .install_for("north-downs", "fixture-event-flood", "all")
        .await;
    assert_eq!(response.status(), 201);
    let before = chain_length(&app, "north-downs").await;
    let flood = "/s/north-downs/tandridge/fixture-event-flood/?count=100";
    let text = expect_text(app.get(flood).await, 200).await;
    assert!(text.starts_with("recorded 20\n"), "{text}");
    assert!(
        text.contains(
            "first error: event not recorded: quota exceeded: at most 20 events per call"
        ),
        "{text}"
    );
    // The tenant's minute allows 30: the second call gets the 10 left.
    let second = app.get(flood).await.text().await.unwrap();
    assert!(second.starts_with("recorded 10\n"), "{second}");
    assert!(
        second.contains("tenant north-downs may record at most 30 events a minute"),
        "{second}"
    );
    let third = app.get(flood).await.text().await.unwrap();
    assert!(third.starts_with("recorded 0\n"), "{third}");
    let grown = chain_length(&app, "north-downs").await - before;
    assert!(
        (30..=35).contains(&grown),
        "the chain grew by {grown} entries for 300 emits"
    );
    // Another tenant's budget is its own.
    assert!(chain_length(&app, "the-marches").await < 10);
}

/// Small quotas, and a deadline long enough for debug builds to record them.
fn quotas(config: &mut guildhall::Config) {
    config.runtime.events_per_call = 20;
    config.runtime.events_per_tenant_per_minute = 30;
    config.runtime.default_timeout_ms = 10_000;
}

/// Both databases, with small quotas (`on_both_databases!` takes the default
/// configuration).
mod event_quota {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let app = TestApp::spawn_with(Backend::Sqlite, |c| {
            quotas(c);
        })
        .await
        .unwrap();
        event_floods_stop_at_the_quotas(app).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(app) = TestApp::spawn_with(Backend::Postgres, |c| {
            quotas(c);
        })
        .await
        {
            event_floods_stop_at_the_quotas(app).await;
        }
    }
}
