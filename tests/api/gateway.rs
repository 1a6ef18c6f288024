//! The service gateway over real HTTP: published plugins installed for some councils of one
//! alliance, isolation between councils and alliances, upgrades and rollbacks under load,
//! hostile plugins, fair shares between tenants.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, expect_json, expect_problem, expect_text, hello_at, status_of,
};
use crate::on_both_databases;

on_both_databases!(
    published_plugins_serve_only_their_councils,
    upgrade_and_rollback_under_load_lose_nothing,
    a_change_to_one_tenant_leaves_the_others_installs_cached,
    calls_to_what_is_not_installed_are_answered_from_the_cache_until_it_is,
    a_tenant_deleted_and_created_again_serves_none_of_its_old_installs,
    a_change_missing_from_the_revision_log_is_served_within_the_watch_interval
);

fn open311_services() -> Value {
    json!([
        {"service_code": "pothole", "service_name": "Pothole", "description": "A hole in the road",
         "metadata": false, "type": "realtime", "keywords": "road,hole", "group": "highways"},
        {"service_code": "fly-tipping", "service_name": "Fly-tipping", "description": "Dumped rubbish",
         "metadata": false, "type": "realtime", "keywords": "rubbish", "group": "waste"}
    ])
}

async fn published_plugins_serve_only_their_councils(app: TestApp) {
    app.create_example_tenants().await;
    for plugin in ["hello", "bin-collections", "report-a-problem"] {
        app.publish_built(plugin).await;
    }
    let installed = app
        .install_for("north-downs", "hello", ["tandridge", "mole-valley"])
        .await;
    assert_eq!(installed.status(), 201);
    let installed = app
        .install(
            "north-downs",
            "bin-collections",
            "0.1.0",
            json!(["tandridge"]),
            json!({"council_name": "Tandridge District Council"}),
        )
        .await;
    expect_text(installed, 201).await;
    let installed = app
        .install(
            "north-downs",
            "report-a-problem",
            "0.1.0",
            json!("all"),
            json!({"services": open311_services()}),
        )
        .await;
    expect_text(installed, 201).await;

    // A caller cannot pose as another council or tenant: the platform's headers win.
    let response = app
        .client
        .get(app.url("/s/north-downs/mole-valley/hello/"))
        .header("x-guildhall-council", "tandridge")
        .header("x-guildhall-tenant", "the-marches")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.text().await.unwrap(),
        "Hello from mole-valley (north-downs)!"
    );

    // hello for an enabled council.
    let response = app.get("/s/north-downs/tandridge/hello/").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    // A plugin that sets no Content-Security-Policy gets the gateway's default.
    assert_eq!(
        response.headers()["content-security-policy"],
        crate::hardening::DEFAULT_CSP
    );
    let body = response.text().await.unwrap();
    assert!(
        body.contains("tandridge") && body.contains("north-downs"),
        "{body}"
    );
    assert_eq!(
        app.get("/s/north-downs/mole-valley/hello").await.status(),
        200
    );
    // Another council of the same alliance, another alliance, an unknown council: 404.
    expect_problem(app.get("/s/north-downs/epsom-ewell/hello/").await, 404).await;
    expect_problem(app.get("/s/the-marches/shropshire/hello/").await, 404).await;
    expect_problem(app.get("/s/north-downs/nowhere/hello/").await, 404).await;
    expect_problem(
        app.get("/s/north-downs/tandridge/not-installed/").await,
        404,
    )
    .await;

    // bin-collections: citizens look up; an unknown property is the plugin's own 404.
    let response = app
        .get("/s/north-downs/tandridge/bin-collections/uprn/100062035361")
        .await;
    assert_eq!(response.status(), 404);
    // Uploads need an officer; the plugin sees who is calling. Anonymous: 401.
    let upload = |client: &reqwest::Client| {
        client
            .put(app.url("/s/north-downs/tandridge/bin-collections/schedule"))
            .header("content-type", "application/json")
            .body("[]")
    };
    assert_eq!(status_of(upload(&app.anonymous)).await, 401);
    // An auditor holds a role, but not one that uploads; an officer of another council
    // holds none here; an officer of this council may.
    let auditor = app.client_as("auditor", Some("north-downs"), None).await;
    assert_eq!(status_of(upload(&auditor)).await, 403);
    let elsewhere = app
        .client_as("officer", Some("north-downs"), Some("mole-valley"))
        .await;
    assert_eq!(status_of(upload(&elsewhere)).await, 403);
    let officer = app
        .token("officer", Some("north-downs"), Some("tandridge"))
        .await;
    // Past the permission check, the plugin judges the (empty) schedule itself.
    let officer_upload = upload(&app.client_for(&officer)).send().await.unwrap();
    let body = expect_text(officer_upload, 422).await;
    assert!(body.contains("no properties"));
    // A token that does not check out is refused by the platform, not passed on as a
    // citizen.
    let forged = format!("{}x", &officer[..officer.len() - 1]);
    expect_problem(upload(&app.client_for(&forged)).send().await.unwrap(), 401).await;

    // report-a-problem: the Open311 GeoReport v2 flow, installed for all councils.
    let base = "/s/north-downs/epsom-ewell/report-a-problem";
    let services: Value = app
        .get(&format!("{base}/services.json"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(services.as_array().unwrap().len(), 2);
    let created = app
        .client
        .post(app.url(&format!("{base}/requests.json")))
        .form(&[
            ("service_code", "pothole"),
            ("lat", "51.3326"),
            ("long", "-0.2700"),
            ("description", "Deep pothole outside the library"),
            ("email", "resident@example.org"),
        ])
        .send()
        .await
        .unwrap();
    let created = expect_json(created, 201).await;
    let id = created[0]["service_request_id"]
        .as_str()
        .unwrap()
        .to_string();
    let listed: Value = app
        .get(&format!("{base}/requests.json?service_code=pothole"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["service_request_id"], id.as_str());
    assert!(
        !listed.to_string().contains("resident@example.org"),
        "personal data leaked: {listed}"
    );
    let one: Value = app
        .get(&format!("{base}/requests/{id}.json"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one[0]["description"], "Deep pothole outside the library");
    // Another council's install shares the tenant's data (the plugin is per tenant), but
    // another tenant sees nothing.
    let missing = app.get(&format!("{base}/services/nope.json")).await;
    let error = expect_json(missing, 404).await;
    assert_eq!(error[0]["code"], 404);

    let installs = app.get_json("/api/v1/tenants/north-downs/installs").await;
    assert_eq!(installs["installs"].as_array().unwrap().len(), 3);

    // The new request was stored in the tenant's kv and announced as an event.
    let store = app.store().await;
    let scope = store
        .scope(&"north-downs".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let plugin = "report-a-problem".parse().unwrap();
    let events = store.events(&scope).list(&plugin, 10).await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].name, "request.created");
    assert_eq!(events[0].council, "epsom-ewell");
    assert!(store.kv(&scope, &plugin).usage().await.unwrap() > 0);

    // Uninstalling with purge_data deletes the plugin's data in this tenant.
    let response = app
        .client
        .delete(app.url("/api/v1/tenants/north-downs/installs/report-a-problem?purge_data=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(store.kv(&scope, &plugin).usage().await.unwrap(), 0);

    // Uninstalling takes the service away.
    let response = app
        .client
        .delete(app.url("/api/v1/tenants/north-downs/installs/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    expect_problem(app.get("/s/north-downs/tandridge/hello/").await, 404).await;
    let response = app
        .client
        .delete(app.url("/api/v1/tenants/north-downs/installs/hello"))
        .send()
        .await
        .unwrap();
    expect_problem(response, 404).await;
}

async fn upgrade_and_rollback_under_load_lose_nothing(app: TestApp) {
    app.create_example_tenants().await;
    let hello = guildhall_test_artifacts::plugin("hello");
    app.publish_built("hello").await;
    let v2 = hello_at("0.2.0");
    assert_eq!(
        app.publish("hello", &v2, hello.bytes(), None)
            .await
            .status(),
        201
    );
    assert_eq!(
        app.install_for("north-downs", "hello", "all")
            .await
            .status(),
        201
    );

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let client = app.client.clone();
        let url = app.url("/s/north-downs/tandridge/hello/");
        let stop = stop.clone();
        workers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let response = client.get(&url).send().await.expect("request");
                let status = response.status().as_u16();
                let version = response
                    .headers()
                    .get("x-guildhall-plugin")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                let body = response.text().await.unwrap_or_default();
                seen.push((status, version, body));
            }
            seen
        }));
    }
    for version in ["0.2.0", "0.1.0", "0.2.0", "0.1.0"] {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let response = app
            .install("north-downs", "hello", version, json!("all"), json!({}))
            .await;
        assert_eq!(response.status(), 200, "switching to {version}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    let mut versions = std::collections::BTreeSet::new();
    for worker in workers {
        for (status, version, body) in worker.await.unwrap() {
            total += 1;
            assert_eq!(status, 200, "a request failed during a switch: {body}");
            assert!(body.contains("tandridge"), "{body}");
            assert!(
                version == "hello@0.1.0" || version == "hello@0.2.0",
                "answered by {version:?}"
            );
            versions.insert(version);
        }
    }
    assert!(total > 20, "only {total} requests were made");
    assert_eq!(
        versions.len(),
        2,
        "both versions should have answered: {versions:?}"
    );
    let install = app.get_json("/api/v1/tenants/north-downs/installs").await;
    assert_eq!(install["installs"][0]["version"], "0.1.0");
}

/// Installs every hostile fixture for `north-downs` and `hello` for `the-marches`.
async fn hostile_app(adjust: impl FnOnce(&mut guildhall::Config)) -> TestApp {
    let app = TestApp::spawn_with(Backend::Sqlite, adjust).await.unwrap();
    app.create_example_tenants().await;
    app.publish_built("hello").await;
    assert_eq!(
        app.install_for("the-marches", "hello", "all")
            .await
            .status(),
        201
    );
    for fixture in [
        "fixture-infinite-loop",
        "fixture-memory-bomb",
        "fixture-deep-recursion",
        "fixture-big-response",
        "fixture-slow-drip",
        "fixture-panic",
        "fixture-outbound",
        "fixture-socket-probe",
    ] {
        app.publish_built(fixture).await;
        let response = app.install_for("north-downs", fixture, "all").await;
        assert_eq!(response.status(), 201, "{fixture}");
    }
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugins_break_only_their_own_requests() {
    let app = hostile_app(|_| {}).await;
    let cases: [(&str, u16, &str); 6] = [
        ("fixture-infinite-loop", 504, "deadline"),
        ("fixture-slow-drip", 504, "deadline"),
        ("fixture-memory-bomb", 502, "memory_cap"),
        ("fixture-deep-recursion", 502, "trap"),
        ("fixture-panic", 502, "trap"),
        ("fixture-big-response", 502, "bad_response"),
    ];
    for (fixture, status, outcome) in cases {
        let started = Instant::now();
        let path = format!("/s/north-downs/tandridge/{fixture}/");
        let (hostile, neighbour) = tokio::join!(app.get(&path), async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let t = Instant::now();
            let r = app.get("/s/the-marches/shropshire/hello/").await;
            (r.status(), t.elapsed())
        });
        let problem = expect_problem(hostile, status).await;
        assert_eq!(problem["outcome"], outcome, "{fixture}: {problem}");
        assert!(problem["reason"].is_string(), "{problem}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{fixture} took {:?}",
            started.elapsed()
        );
        assert_eq!(neighbour.0, 200, "the neighbour failed during {fixture}");
        assert!(
            neighbour.1 < Duration::from_secs(1),
            "the neighbour took {:?} during {fixture}",
            neighbour.1
        );
        assert_eq!(app.get("/healthz").await.status(), 200);
    }
    // Outbound calls to an undeclared host and to loopback are refused to the plugin.
    let response = app
        .get("/s/north-downs/tandridge/fixture-outbound/?url=http%3A%2F%2Flocalhost%3A9%2F")
        .await;
    let body = expect_text(response, 502).await;
    assert!(body.contains("DestinationIpProhibited"));
    let response = app
        .get("/s/north-downs/tandridge/fixture-outbound/?url=http%3A%2F%2Fevil.example.com%2F")
        .await;
    assert!(response.text().await.unwrap().contains("HttpRequestDenied"));
    // wasi:sockets links (stock toolchains' C libraries import it) but with no authority:
    // a connection to a listener on this machine, a name lookup and a bind are refused,
    // and the listener sees nothing.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let response = app
        .get(&format!(
            "/s/north-downs/tandridge/fixture-socket-probe/?port={port}"
        ))
        .await;
    let body = expect_text(response, 200).await;
    for attempt in ["connect: refused", "resolve: refused", "bind: refused"] {
        assert!(body.contains(attempt), "{attempt}: {body}");
    }
    assert!(!body.contains("allowed"), "{body}");
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the plugin reached the listener"
    );
    // A request body over the cap is refused before the plugin runs.
    let response = app
        .client
        .post(app.url("/s/the-marches/shropshire/hello/"))
        .body(vec![0u8; (4 << 20) + 1])
        .send()
        .await
        .unwrap();
    expect_problem(response, 413).await;
    assert_eq!(
        app.get("/s/the-marches/shropshire/hello/").await.status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noisy_neighbour_does_not_starve_another_tenant() {
    // The noisy calls run for five seconds. A starved neighbour would wait for them; a
    // served one answers in milliseconds. The bound below sits between the two with room
    // for the other tests this binary runs at the same time on a small machine.
    let app = hostile_app(|c| c.runtime.default_timeout_ms = 5_000).await;
    // A dozen CPU-bound calls from one tenant at once.
    let noisy: Vec<_> = (0..12)
        .map(|_| {
            // Citizens: no credential to check, so the plugins' CPU is the only load.
            let client = app.anonymous.clone();
            let url = app.url("/s/north-downs/tandridge/fixture-infinite-loop/");
            tokio::spawn(async move { client.get(url).send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..5 {
        let started = Instant::now();
        let response = app
            .anonymous
            .get(app.url("/s/the-marches/shropshire/hello/"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            started.elapsed() < Duration::from_millis(2_500),
            "hello took {:?} under load",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for call in noisy {
        assert_eq!(call.await.unwrap().unwrap(), 504);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_share_gets_429_with_retry_after() {
    let app = hostile_app(|c| {
        c.runtime.tenant_concurrency = 2;
        c.runtime.tenant_queue = 1;
        c.runtime.tenant_queue_timeout_ms = 100;
    })
    .await;
    let calls: Vec<_> = (0..6)
        .map(|_| {
            // Citizens: no credential to check, so the plugins' CPU is the only load.
            let client = app.anonymous.clone();
            let url = app.url("/s/north-downs/tandridge/fixture-infinite-loop/");
            tokio::spawn(async move {
                let r = client.get(url).send().await.unwrap();
                (
                    r.status().as_u16(),
                    r.headers()
                        .get("retry-after")
                        .map(|v| v.to_str().unwrap().to_string()),
                )
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for call in calls {
        statuses.push(call.await.unwrap());
    }
    let limited: Vec<_> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert!(limited.len() >= 3, "{statuses:?}");
    assert!(
        limited
            .iter()
            .all(|(_, retry)| retry.as_deref() == Some("1")),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|(s, _)| *s == 504).count(),
        6 - limited.len(),
        "{statuses:?}"
    );
    // Another tenant is unaffected by north-downs' share.
    assert_eq!(
        app.get("/s/the-marches/shropshire/hello/").await.status(),
        200
    );
}

/// A client that hangs up while its call waits in its tenant's queue leaves the queue. Were
/// it counted still, a few rounds of callers giving up (or of a load tool stopping) would
/// fill the queue for good, and the tenant would get 429 whenever its share is in use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_who_hang_up_while_queued_leave_the_queue() {
    let app = hostile_app(|c| {
        c.runtime.tenant_concurrency = 1;
        c.runtime.tenant_queue = 2;
        c.runtime.tenant_queue_timeout_ms = 30_000;
    })
    .await;
    let url = app.url("/s/north-downs/tandridge/fixture-infinite-loop/");
    let call = |timeout: Option<Duration>| {
        let (client, url) = (app.anonymous.clone(), url.clone());
        tokio::spawn(async move {
            let mut request = client.get(url);
            if let Some(timeout) = timeout {
                request = request.timeout(timeout);
            }
            request.send().await.map(|r| r.status().as_u16())
        })
    };
    // Three rounds, each leaving two hung-up callers behind: three times the queue.
    for round in 0..3 {
        // The loop holds the tenant's one slot until its deadline.
        let holder = call(None);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let quitters = [
            call(Some(Duration::from_millis(300))),
            call(Some(Duration::from_millis(300))),
        ];
        for quitter in quitters {
            let result = quitter.await.unwrap();
            assert!(
                result.as_ref().is_err_and(reqwest::Error::is_timeout),
                "round {round}: a queued caller should wait, not be answered: {result:?}"
            );
        }
        assert_eq!(holder.await.unwrap().unwrap(), 504, "round {round}");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let depth = queue_depth(&app.url(""), "north-downs").await;
        if depth == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{depth} calls still counted as queued"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The queue still holds two: with the slot in use, two more calls wait their turn (and
    // run into the loop's deadline: 504) rather than being refused.
    let holder = call(None);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiting = [call(None), call(None)];
    assert_eq!(holder.await.unwrap().unwrap(), 504);
    for waiting in waiting {
        assert_eq!(waiting.await.unwrap().unwrap(), 504);
    }
}

/// How many times the server at `base` has read `tenant`'s installs from the database
/// (rather than its cache), from `/metrics`; 0 before the first.
pub(crate) async fn install_resolutions(base: &str, tenant: &str) -> u64 {
    tenant_metric(base, "guildhall_gateway_install_resolutions_total", tenant).await
}

/// Calls the server at `base` counts as waiting in `tenant`'s queue, from `/metrics`.
async fn queue_depth(base: &str, tenant: &str) -> u64 {
    tenant_metric(base, "guildhall_gateway_queue_depth", tenant).await
}

/// The sum of `name`'s samples for `tenant` on the server at `base`, from `/metrics`.
async fn tenant_metric(base: &str, name: &str, tenant: &str) -> u64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("{name}{{");
    let label = format!("guildhall_tenant=\"{tenant}\"");
    text.lines()
        .filter(|l| l.starts_with(&series) && l.contains(&label))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .map(|n| n as u64)
        .sum()
}

/// Serves `/s/{tenant}/{council}/{plugin}/` asking for JSON: the status, the version that
/// answered and the body.
async fn served(app: &TestApp, tenant: &str, council: &str, plugin: &str) -> (u16, String, String) {
    let response = app
        .anonymous
        .get(app.url(&format!("/s/{tenant}/{council}/{plugin}/")))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let version = response
        .headers()
        .get("x-guildhall-plugin")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, version, response.text().await.unwrap())
}

/// A flood of calls to a plugin that is not installed, or to a tenant that does not exist,
/// is answered from the install cache rather than the database; the absence is forgotten
/// by the tenant's next change, so an install (or a tenant created under a name callers
/// tried first) is served by its next call.
async fn calls_to_what_is_not_installed_are_answered_from_the_cache_until_it_is(app: TestApp) {
    const A: &str = "north-downs";
    let base = &app.url("");
    app.create_example_tenants().await;
    app.publish_built("hello").await;
    let (status, _, body) = served(&app, A, "tandridge", "hello").await;
    assert_eq!(status, 404, "{body}");
    let read = install_resolutions(base, A).await;
    assert!(read >= 1, "the first call read the install: {read}");
    for _ in 0..5 {
        assert_eq!(served(&app, A, "tandridge", "hello").await.0, 404);
    }
    assert_eq!(
        install_resolutions(base, A).await,
        read,
        "calls to an install known not to exist read the database again"
    );

    expect_text(app.install_for(A, "hello", "all").await, 201).await;
    let (status, version, body) = served(&app, A, "tandridge", "hello").await;
    assert_eq!((status, version.as_str()), (200, "hello@0.1.0"), "{body}");
    let uninstalled = app
        .client
        .delete(app.url(&format!("/api/v1/tenants/{A}/installs/hello")))
        .send()
        .await
        .unwrap();
    assert_eq!(uninstalled.status(), 204);
    assert_eq!(served(&app, A, "tandridge", "hello").await.0, 404);

    // A tenant's name called before the tenant exists: created, installed, served.
    const NEW: &str = "weald-digital";
    for _ in 0..3 {
        assert_eq!(served(&app, NEW, "wealden", "hello").await.0, 404);
    }
    let tenant = json!({"id": NEW, "name": "Weald Digital",
        "councils": [{"id": "wealden", "name": "Wealden"}]});
    let created = app
        .client
        .post(app.url("/api/v1/tenants"))
        .json(&tenant)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(served(&app, NEW, "wealden", "hello").await.0, 404);
    expect_text(app.install_for(NEW, "hello", "all").await, 201).await;
    let (status, version, body) = served(&app, NEW, "wealden", "hello").await;
    assert_eq!((status, version.as_str()), (200, "hello@0.1.0"), "{body}");
}

/// Issue #19: the install cache is invalidated per tenant. Upgrading, reconfiguring and
/// overriding a council's settings in one alliance is served by its next call, and the
/// other alliance's installs stay cached (its resolutions, counted on `/metrics`, do not
/// move); a change to that alliance is served by its next call too.
async fn a_change_to_one_tenant_leaves_the_others_installs_cached(app: TestApp) {
    const A: &str = "north-downs";
    const B: &str = "the-marches";
    let base = &app.url("");
    app.create_example_tenants().await;
    let hello = guildhall_test_artifacts::plugin("hello");
    app.publish_built("hello").await;
    assert_eq!(
        app.publish("hello", &hello_at("0.2.0"), hello.bytes(), None)
            .await
            .status(),
        201
    );
    app.publish_built("bin-collections").await;
    for tenant in [A, B] {
        expect_text(app.install_for(tenant, "hello", "all").await, 201).await;
        let bins = json!({"council_name": format!("{tenant} bins")});
        let installed = app
            .install(tenant, "bin-collections", "0.1.0", json!("all"), bins)
            .await;
        expect_text(installed, 201).await;
    }
    let b_served = || async {
        for plugin in ["hello", "bin-collections"] {
            let (status, _, body) = served(&app, B, "shropshire", plugin).await;
            assert_eq!(status, 200, "{plugin} in {B}: {body}");
        }
    };
    b_served().await;
    assert_eq!(served(&app, A, "tandridge", "hello").await.1, "hello@0.1.0");
    let b_resolved = install_resolutions(base, B).await;
    assert!(
        b_resolved >= 2,
        "{B}'s installs were resolved {b_resolved} times"
    );
    // Served again from the cache.
    b_served().await;
    assert_eq!(install_resolutions(base, B).await, b_resolved);

    // Each change to A is served by A's next call, and B's installs stay cached.
    let a_resolved = install_resolutions(base, A).await;
    let upgraded = app
        .install(A, "hello", "0.2.0", json!("all"), json!({}))
        .await;
    expect_text(upgraded, 200).await;
    assert_eq!(served(&app, A, "tandridge", "hello").await.1, "hello@0.2.0");
    b_served().await;
    assert_eq!(
        install_resolutions(base, B).await,
        b_resolved,
        "after A's upgrade"
    );

    let renamed = app
        .install(
            A,
            "bin-collections",
            "0.1.0",
            json!("all"),
            json!({"council_name": "Renamed bins"}),
        )
        .await;
    expect_text(renamed, 200).await;
    let (_, _, body) = served(&app, A, "mole-valley", "bin-collections").await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["council_name"],
        "Renamed bins"
    );
    b_served().await;
    assert_eq!(
        install_resolutions(base, B).await,
        b_resolved,
        "after A's settings"
    );

    let overridden = app
        .client
        .put(app.url(&format!(
            "/api/v1/tenants/{A}/installs/bin-collections/councils/tandridge/config"
        )))
        .json(&json!({"overrides": {"council_name": "Tandridge's own"}}))
        .send()
        .await
        .unwrap();
    expect_text(overridden, 200).await;
    let (_, _, body) = served(&app, A, "tandridge", "bin-collections").await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["council_name"],
        "Tandridge's own"
    );
    b_served().await;
    assert_eq!(
        install_resolutions(base, B).await,
        b_resolved,
        "after a council's settings in A"
    );
    assert!(
        install_resolutions(base, A).await >= a_resolved + 3,
        "A's installs were read again after each change"
    );

    // A change to B is served by B's next call: its installs are read again.
    let upgraded = app
        .install(B, "hello", "0.2.0", json!("all"), json!({}))
        .await;
    expect_text(upgraded, 200).await;
    assert_eq!(
        served(&app, B, "shropshire", "hello").await.1,
        "hello@0.2.0"
    );
    assert!(install_resolutions(base, B).await > b_resolved);
}

/// A tenant deleted and created again with the same id starts with no installs: the
/// deleted tenant's cached installs are never served, on this replica's next call.
async fn a_tenant_deleted_and_created_again_serves_none_of_its_old_installs(app: TestApp) {
    const A: &str = "north-downs";
    const B: &str = "the-marches";
    let base = &app.url("");
    app.create_example_tenants().await;
    let hello = guildhall_test_artifacts::plugin("hello");
    app.publish_built("hello").await;
    assert_eq!(
        app.publish("hello", &hello_at("0.2.0"), hello.bytes(), None)
            .await
            .status(),
        201
    );
    let installed = app
        .install(A, "hello", "0.2.0", json!("all"), json!({}))
        .await;
    expect_text(installed, 201).await;
    expect_text(app.install_for(B, "hello", "all").await, 201).await;
    assert_eq!(served(&app, A, "tandridge", "hello").await.1, "hello@0.2.0");
    assert_eq!(served(&app, B, "shropshire", "hello").await.0, 200);
    let b_resolved = install_resolutions(base, B).await;

    let deleted = app
        .client
        .delete(app.url(&format!("/api/v1/tenants/{A}?confirm={A}")))
        .send()
        .await
        .unwrap();
    expect_json(deleted, 200).await;
    assert_eq!(served(&app, A, "tandridge", "hello").await.0, 404);

    let text =
        std::fs::read_to_string(crate::helpers::repo_root().join("tenants/north-downs.toml"))
            .unwrap();
    let spec = serde_json::to_value(toml::from_str::<toml::Value>(&text).unwrap()).unwrap();
    expect_json(app.post_json("/api/v1/tenants", &spec).await, 201).await;
    let (status, version, _) = served(&app, A, "tandridge", "hello").await;
    assert_eq!(
        (status, version.as_str()),
        (404, ""),
        "the old install answered"
    );

    expect_text(app.install_for(A, "hello", "all").await, 201).await;
    assert_eq!(served(&app, A, "tandridge", "hello").await.1, "hello@0.1.0");
    // The other alliance's install stayed cached throughout.
    assert_eq!(served(&app, B, "shropshire", "hello").await.0, 200);
    assert_eq!(install_resolutions(base, B).await, b_resolved);
}

/// Polls `/s/{tenant}/{council}/{plugin}/` until `version` answers; fails after three
/// seconds (the watch interval and a generous margin).
async fn served_soon(app: &TestApp, tenant: &str, council: &str, plugin: &str, version: &str) {
    let started = Instant::now();
    loop {
        let (status, by, body) = served(app, tenant, council, plugin).await;
        if status == 200 && by == version {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{tenant} still answers {status} ({by}), not {version}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Changes `tenant`'s install of hello to `version` straight in the database, bumping the
/// platform revision in the same transaction as a replica does, and logging the change as
/// `logged_as` in `tenant_revisions` (`None`: no row, as the release before the log did).
async fn change_behind_the_api(
    app: &TestApp,
    tenant: &str,
    version: &str,
    logged_as: Option<&str>,
) {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let admin = sea_orm::Database::connect(app.db.admin_url.expose())
        .await
        .unwrap();
    let txn = admin.begin().await.unwrap();
    if admin.get_database_backend() == sea_orm::DbBackend::Postgres {
        // The installs table's row-level security holds for its owner too.
        txn.execute_unprepared(&format!(
            "SELECT set_config('guildhall.tenant_id', '{tenant}', true)"
        ))
        .await
        .unwrap();
    }
    txn.execute_unprepared("UPDATE platform_revision SET revision = revision + 1 WHERE id = 1")
        .await
        .unwrap();
    if let Some(logged) = logged_as {
        txn.execute_unprepared(&format!(
            "INSERT INTO tenant_revisions (revision, tenant_id) \
             SELECT revision, '{logged}' FROM platform_revision WHERE id = 1"
        ))
        .await
        .unwrap();
    }
    let changed = txn
        .execute_unprepared(&format!(
            "UPDATE installs SET version = '{version}' \
             WHERE tenant_id = '{tenant}' AND plugin = 'hello'"
        ))
        .await
        .unwrap();
    assert_eq!(changed.rows_affected(), 1);
    txn.commit().await.unwrap();
    admin.close().await.unwrap();
}

/// A rolling upgrade runs replicas of the previous release beside this one, and they bump
/// the platform revision without logging which tenant changed. The server sees a revision
/// missing from the log and drops its whole install cache, so the change is served within
/// the watch interval (without the check the stale install would be served until a
/// restart). A log row naming no valid tenant is handled the same way and stops nothing: a
/// change logged after it is served too, re-reading only its tenant's installs.
async fn a_change_missing_from_the_revision_log_is_served_within_the_watch_interval(app: TestApp) {
    const A: &str = "north-downs";
    const B: &str = "the-marches";
    let base = &app.url("");
    app.create_example_tenants().await;
    let hello = guildhall_test_artifacts::plugin("hello");
    app.publish_built("hello").await;
    assert_eq!(
        app.publish("hello", &hello_at("0.2.0"), hello.bytes(), None)
            .await
            .status(),
        201
    );
    expect_text(app.install_for(A, "hello", "all").await, 201).await;
    // B runs 0.2.0, so both versions are prepared before A's install changes behind the API.
    let installed = app
        .install(B, "hello", "0.2.0", json!("all"), json!({}))
        .await;
    expect_text(installed, 201).await;
    assert_eq!(served(&app, A, "tandridge", "hello").await.1, "hello@0.1.0");
    assert_eq!(
        served(&app, B, "shropshire", "hello").await.1,
        "hello@0.2.0"
    );
    let b_resolved = install_resolutions(base, B).await;
    // Cached: serving again reads nothing.
    assert_eq!(served(&app, B, "shropshire", "hello").await.0, 200);
    assert_eq!(install_resolutions(base, B).await, b_resolved);

    // An earlier release upgrades A: no log row.
    change_behind_the_api(&app, A, "0.2.0", None).await;
    served_soon(&app, A, "tandridge", "hello", "hello@0.2.0").await;
    // Which tenant changed was unknown, so B's install was dropped and is read again.
    assert_eq!(
        served(&app, B, "shropshire", "hello").await.1,
        "hello@0.2.0"
    );
    assert!(
        install_resolutions(base, B).await > b_resolved,
        "B's install was not read again after an unlogged change"
    );

    // A row naming no valid tenant: the same, and the watcher goes on.
    change_behind_the_api(&app, A, "0.1.0", Some("Not A Tenant!")).await;
    served_soon(&app, A, "tandridge", "hello", "hello@0.1.0").await;
    assert_eq!(
        served(&app, B, "shropshire", "hello").await.1,
        "hello@0.2.0"
    );
    let b_resolved = install_resolutions(base, B).await;

    // A change logged as A's (as another replica of this release writes it) is served
    // too, and B's install stays cached.
    change_behind_the_api(&app, A, "0.2.0", Some(A)).await;
    served_soon(&app, A, "tandridge", "hello", "hello@0.2.0").await;
    assert_eq!(
        served(&app, B, "shropshire", "hello").await.1,
        "hello@0.2.0"
    );
    assert_eq!(
        install_resolutions(base, B).await,
        b_resolved,
        "B's install was read again after a change logged for A"
    );
}
