//! Two server processes on one PostgreSQL database: a change made through one replica is
//! served by the other within two seconds, without a restart, and leaves the other tenants'
//! cached installs alone; and the revision log the replicas read, on both databases.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::json;

use guildhall_domain::TenantId;
use guildhall_domain::tenant::TenantSpec;
use guildhall_store::{PoolOptions, Store, TenantRevision};
use sea_orm::ConnectionTrait;

use crate::gateway::install_resolutions;
use crate::helpers::{
    APP_ROLE, Backend, TestDb, cli_operator_token, client_with, hello_at, serve_process, status_of,
};

/// Starts `guildhall serve` on `db` with a compile cache of its own in `dir/{cache}`; returns
/// the process and its address.
fn replica(dir: &Path, db: &TestDb, cache: &str) -> (Child, String) {
    let cache = dir.join(cache);
    let (child, addr, _) = serve_process(
        dir,
        &[
            ("GUILDHALL_DATABASE__URL", db.url.expose()),
            ("GUILDHALL_DATABASE__ADMIN_URL", db.admin_url.expose()),
            ("GUILDHALL_RUNTIME__CACHE_DIR", cache.to_str().unwrap()),
        ],
    );
    (child, addr)
}

/// Polls `url` until `want(status, served_by, body)`; fails after two seconds.
async fn wait_for(
    client: &reqwest::Client,
    url: &str,
    want: impl Fn(u16, &str, &str) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let response = client.get(url).send().await.unwrap();
        let status = response.status().as_u16();
        let served_by = response
            .headers()
            .get("x-guildhall-plugin")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = response.text().await.unwrap_or_default();
        if want(status, &served_by, &body) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the other replica still answers {status} ({served_by}): {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_changes_reach_the_other_replica_within_two_seconds() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = db.url.expose().to_string();
    let (mut a, addr_a) = replica(dir.path(), &db, "a");
    let (mut b, addr_b) = replica(dir.path(), &db, "b");
    let token = cli_operator_token(dir.path(), &[("GUILDHALL_DATABASE__URL", &url)]);
    let client = client_with(Some(&token));
    let on_a = |path: &str| format!("http://{addr_a}{path}");
    let on_b = |path: &str| format!("http://{addr_b}{path}");

    let tenant = json!({"id": "north-downs", "name": "North Downs", "councils": [{"id": "tandridge", "name": "Tandridge"}]});
    assert_eq!(
        status_of(client.post(on_a("/api/v1/tenants")).json(&tenant)).await,
        201
    );
    let other = json!({"id": "the-marches", "name": "The Marches", "councils": [{"id": "shropshire", "name": "Shropshire"}]});
    assert_eq!(
        status_of(client.post(on_a("/api/v1/tenants")).json(&other)).await,
        201
    );
    let hello = guildhall_test_artifacts::plugin("hello");
    for (version, manifest) in [("0.1.0", hello.manifest()), ("0.2.0", hello_at("0.2.0"))] {
        let form = reqwest::multipart::Form::new()
            .text("manifest", manifest)
            .part("component", reqwest::multipart::Part::bytes(hello.bytes()));
        let response = client
            .post(on_a("/api/v1/plugins/hello/versions"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "publishing {version}");
    }
    let service = on_b("/s/north-downs/tandridge/hello/");
    assert_eq!(status_of(client.get(&service)).await, 404);

    let install = |version: &str| json!({"version": version, "councils": "all", "config": {}});
    let put = on_a("/api/v1/tenants/north-downs/installs/hello");

    // The other tenant's install, served and cached by B: changes to north-downs must not
    // make B read it again (issue #19), which B's /metrics counts.
    let other_put = on_a("/api/v1/tenants/the-marches/installs/hello");
    assert_eq!(
        status_of(client.put(&other_put).json(&install("0.1.0"))).await,
        201
    );
    let other_service = on_b("/s/the-marches/shropshire/hello/");
    wait_for(&client, &other_service, |s, _, _| s == 200).await;
    let base_b = on_b("");
    let other_resolved = install_resolutions(&base_b, "the-marches").await;
    assert!(other_resolved > 0);
    let other_still_cached = |when: &'static str| {
        let (client, other_service, base_b) = (&client, &other_service, &base_b);
        async move {
            assert_eq!(status_of(client.get(other_service)).await, 200, "{when}");
            assert_eq!(
                install_resolutions(base_b, "the-marches").await,
                other_resolved,
                "B read the-marches' install again {when}"
            );
        }
    };
    other_still_cached("while nothing changed").await;
    assert_eq!(
        status_of(client.put(&put).json(&install("0.1.0"))).await,
        201
    );
    wait_for(&client, &service, |s, by, _| {
        s == 200 && by == "hello@0.1.0"
    })
    .await;
    other_still_cached("after north-downs' install").await;

    // Upgrade and rollback through A: B serves the new version within two seconds.
    for version in ["0.2.0", "0.1.0"] {
        assert_eq!(
            status_of(client.put(&put).json(&install(version))).await,
            200
        );
        let expected = format!("hello@{version}");
        wait_for(&client, &service, |s, by, _| s == 200 && by == expected).await;
        other_still_cached("after north-downs' upgrade or rollback").await;
    }

    // Uninstall through A: B stops serving within two seconds.
    assert_eq!(status_of(client.delete(&put)).await, 204);
    wait_for(&client, &service, |s, _, _| s == 404).await;
    other_still_cached("after north-downs' uninstall").await;

    // north-downs deleted and created again through A: B serves none of its old installs.
    assert_eq!(
        status_of(client.put(&put).json(&install("0.2.0"))).await,
        201
    );
    wait_for(&client, &service, |s, by, _| {
        s == 200 && by == "hello@0.2.0"
    })
    .await;
    let delete = on_a("/api/v1/tenants/north-downs?confirm=north-downs");
    assert_eq!(status_of(client.delete(&delete)).await, 200);
    wait_for(&client, &service, |s, _, _| s == 404).await;
    assert_eq!(
        status_of(client.post(on_a("/api/v1/tenants")).json(&tenant)).await,
        201
    );
    // Longer than the watch interval: B never answers with the deleted tenant's install.
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        assert_eq!(status_of(client.get(&service)).await, 404);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        status_of(client.put(&put).json(&install("0.1.0"))).await,
        201
    );
    wait_for(&client, &service, |s, by, _| {
        s == 200 && by == "hello@0.1.0"
    })
    .await;
    other_still_cached("after north-downs was deleted and created again").await;

    for child in [&mut a, &mut b] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Publishes a built plugin through `base` (a replica's address).
async fn publish(client: &reqwest::Client, base: &str, name: &str) {
    let artifact = guildhall_test_artifacts::plugin(name);
    let form = reqwest::multipart::Form::new()
        .text("manifest", artifact.manifest())
        .part(
            "component",
            reqwest::multipart::Part::bytes(artifact.bytes()),
        );
    // Publishing compiles the component before it answers: on a loaded machine a debug
    // build's compile can take longer than the ten seconds other requests are given.
    let response = client
        .post(format!("http://{base}/api/v1/plugins/{name}/versions"))
        .multipart(form)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "publishing {name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_replica_loses_no_acknowledged_write() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = db.url.expose().to_string();
    let (mut a, addr_a) = replica(dir.path(), &db, "a");
    let (mut b, addr_b) = replica(dir.path(), &db, "b");
    let token = cli_operator_token(dir.path(), &[("GUILDHALL_DATABASE__URL", &url)]);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .default_headers(
            [(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {token}").parse().unwrap(),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .unwrap();
    let tenant = json!({"id": "north-downs", "name": "North Downs", "councils": [
        {"id": "tandridge", "name": "Tandridge"}, {"id": "mole-valley", "name": "Mole Valley"}]});
    assert_eq!(
        status_of(
            client
                .post(format!("http://{addr_a}/api/v1/tenants"))
                .json(&tenant)
        )
        .await,
        201
    );
    publish(&client, &addr_a, "hello").await;
    publish(&client, &addr_a, "report-a-problem").await;
    let services = json!([{"service_code": "pothole", "service_name": "Pothole", "description": "A hole in the road",
        "metadata": false, "type": "realtime", "keywords": "road", "group": "highways"}]);
    for (plugin, body) in [
        (
            "hello",
            json!({"version": "0.1.0", "councils": ["tandridge"], "config": {}}),
        ),
        (
            "report-a-problem",
            json!({"version": "0.1.0", "councils": "all", "config": {"services": services}}),
        ),
    ] {
        let response = client
            .put(format!(
                "http://{addr_a}/api/v1/tenants/north-downs/installs/{plugin}"
            ))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "installing {plugin}");
    }
    let hello_on_b = format!("http://{addr_b}/s/north-downs/tandridge/hello/");
    wait_for(&client, &hello_on_b, |s, _, _| s == 200).await;

    // Steady load on B for the whole test: it must never fail.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let client = client.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match client.get(&hello_on_b).send().await {
                    Ok(r) if r.status() == 200 => ok += 1,
                    Ok(r) => failed.push(r.status().to_string()),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed)
        })
    };

    // Writes alternate between the replicas; A is killed halfway. Only answers that came
    // back 2xx count as acknowledged.
    let mut acknowledged = Vec::new();
    let mut killed = false;
    let mut last_install_request = String::new();
    for i in 0..30 {
        if i == 15 {
            // An install change acknowledged by A just before it dies.
            let response = client
                .put(format!("http://{addr_a}/api/v1/tenants/north-downs/installs/hello"))
                .json(&json!({"version": "0.1.0", "councils": ["tandridge", "mole-valley"], "config": {}}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            last_install_request = response
                .headers()
                .get("x-request-id")
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            a.kill().unwrap();
            a.wait().unwrap();
            killed = true;
        }
        let target = if i % 2 == 0 && !killed {
            &addr_a
        } else {
            &addr_b
        };
        let description = format!("Pothole number {i}");
        let response = client
            .post(format!(
                "http://{target}/s/north-downs/tandridge/report-a-problem/requests.json"
            ))
            .form(&[
                ("service_code", "pothole"),
                ("address_string", "High Street, Oxted"),
                ("description", description.as_str()),
            ])
            .send()
            .await;
        if let Ok(response) = response
            && response.status() == 201
        {
            let body: serde_json::Value = response.json().await.unwrap();
            let id = body[0]["service_request_id"].as_str().unwrap().to_string();
            acknowledged.push((id, description));
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = load.await.unwrap();
    assert!(
        failed.is_empty(),
        "B failed {} of {} requests: {failed:?}",
        failed.len(),
        ok as usize + failed.len()
    );
    assert!(ok > 20, "only {ok} requests reached B");
    assert_eq!(acknowledged.len(), 30, "every write went to a live replica");

    // Everything acknowledged, by either replica, is there.
    for (id, description) in &acknowledged {
        let response = client
            .get(format!(
                "http://{addr_b}/s/north-downs/tandridge/report-a-problem/requests/{id}.json"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "request {id} was lost");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body[0]["description"], description.as_str());
    }
    wait_for(
        &client,
        &format!("http://{addr_b}/s/north-downs/mole-valley/hello/"),
        |s, _, _| s == 200,
    )
    .await;
    // The audit entry of the install change A acknowledged just before dying is there.
    let audit: serde_json::Value = client
        .get(format!(
            "http://{addr_b}/api/v1/tenants/north-downs/audit?limit=1000"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = audit["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["request_id"] == last_install_request.as_str()
                && e["action"] == "installs.put"
                && e["outcome"] == "200"),
        "the acknowledged install change is not in the audit log: {audit}"
    );
    let _ = b.kill();
    let _ = b.wait();
}

/// Every revision bump names its tenant: the bump logs a row (its revision, its tenant) in
/// `tenant_revisions` (which replicas read) and the store records it for this process.
async fn bumps_write_their_tenants_revision(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = Store::connect(&db.admin_url, &PoolOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let (a, b) = (
        TenantId::parse("north-downs").unwrap(),
        TenantId::parse("the-marches").unwrap(),
    );
    let (spec_a, spec_b) = (spec(&a, "tandridge"), spec(&b, "shropshire"));
    let committed = store.committed_revision();
    let start = store.revision().await.unwrap();
    assert_eq!(logged(&store, start).await, vec![]);

    store.tenants().create(&spec_a).await.unwrap();
    let created_a = store.revision().await.unwrap();
    assert_eq!(created_a, start + 1);
    assert_eq!(logged(&store, start).await, vec![(created_a, a.clone())]);
    assert_eq!(committed.tenant(&a), Some(created_a));
    assert_eq!(committed.tenant(&b), None);

    // Applying both: A is unchanged, only B bumps.
    store
        .tenants()
        .apply(&[spec_a.clone(), spec_b.clone()])
        .await
        .unwrap();
    let created_b = store.revision().await.unwrap();
    assert_eq!(created_b, created_a + 1);
    assert_eq!(
        logged(&store, created_a).await,
        vec![(created_b, b.clone())]
    );
    assert_eq!(committed.tenant(&b), Some(created_b));
    assert_eq!(committed.tenant(&a), Some(created_a));

    // A council changed in A adds a row for A at the new platform revision; the log keeps
    // every change, one row per revision.
    let scope_a = store.scope(&a).await.unwrap().unwrap();
    let mut council = spec_a.councils[0].clone();
    council.name = "Tandridge District Council".to_string();
    store.councils(&scope_a).put(&council).await.unwrap();
    let changed_a = store.revision().await.unwrap();
    assert_eq!(changed_a, created_b + 1);
    assert_eq!(
        logged(&store, created_b).await,
        vec![(changed_a, a.clone())]
    );
    assert_eq!(
        logged(&store, start).await,
        vec![
            (created_a, a.clone()),
            (created_b, b.clone()),
            (changed_a, a.clone())
        ]
    );
    // The rows are what the table holds.
    assert_eq!(
        table(&store).await,
        vec![
            (created_a, "north-downs".to_string()),
            (created_b, "the-marches".to_string()),
            (changed_a, "north-downs".to_string())
        ]
    );

    // Deleting A logs a row for A too; its earlier rows stay.
    store.lifecycle().delete_tenant(&scope_a).await.unwrap();
    let deleted_a = store.revision().await.unwrap();
    assert_eq!(
        logged(&store, changed_a).await,
        vec![(deleted_a, a.clone())]
    );
    assert_eq!(committed.tenant(&a), Some(deleted_a));
    assert_eq!(logged(&store, start).await.len(), 4);

    // A gateway takes what this process committed; later commits are recorded afresh.
    let taken = committed.take_tenants();
    assert_eq!(taken.get(&a), Some(&deleted_a));
    assert_eq!(taken.get(&b), Some(&created_b));
    assert_eq!(committed.tenant(&a), None);
    store.tenants().create(&spec_a).await.unwrap();
    let again = store.revision().await.unwrap();
    assert_eq!(logged(&store, deleted_a).await, vec![(again, a.clone())]);
    assert_eq!(committed.tenant(&a), Some(again));
    assert_eq!(committed.latest(), again);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bumps_write_their_tenants_revision_on_sqlite() {
    bumps_write_their_tenants_revision(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bumps_write_their_tenants_revision_on_postgres() {
    bumps_write_their_tenants_revision(Backend::Postgres).await;
}

/// A tenant `id` with one council.
fn spec(id: &TenantId, council: &str) -> TenantSpec {
    TenantSpec::from_toml(&format!(
        "id = \"{id}\"\nname = \"{id}\"\n[[councils]]\nid = \"{council}\"\nname = \"{council}\"\n"
    ))
    .unwrap()
}

/// The revision log's rows above `after`, up to the platform revision now, in order.
async fn logged(store: &Store, after: i64) -> Vec<(i64, TenantId)> {
    let upto = store.revision().await.unwrap();
    store
        .tenant_revisions_between(after, upto)
        .await
        .unwrap()
        .into_iter()
        .map(|row| (row.revision, row.tenant.expect("a valid tenant id")))
        .collect()
}

/// Every row of `tenant_revisions`, read with SQL, in revision order.
async fn table(store: &Store) -> Vec<(i64, String)> {
    store
        .connection()
        .query_all_raw(sea_orm::Statement::from_string(
            store.backend(),
            "SELECT revision, tenant_id FROM tenant_revisions ORDER BY revision",
        ))
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r.try_get::<i64>("", "revision").unwrap(),
                r.try_get::<String>("", "tenant_id").unwrap(),
            )
        })
        .collect()
}

/// The revision log is pruned below a bound only, as the server's role, by several
/// replicas at once without harm; the reads between two revisions see exactly what is
/// left, and a row naming no valid tenant is returned as such rather than failing the read.
async fn the_revision_log_is_pruned_below_its_bound_only(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let admin = Store::connect(&db.admin_url, &PoolOptions::default())
        .await
        .unwrap();
    admin.migrate().await.unwrap();
    admin.grant_application_role(APP_ROLE).await.unwrap();
    // Two replicas, connected as the server is.
    let one = Store::connect(&db.url, &PoolOptions::default())
        .await
        .unwrap();
    let two = Store::connect(&db.url, &PoolOptions::default())
        .await
        .unwrap();
    let a = TenantId::parse("north-downs").unwrap();
    let spec_a = spec(&a, "tandridge");
    let start = one.revision().await.unwrap();
    one.tenants().create(&spec_a).await.unwrap();
    let scope = one.scope(&a).await.unwrap().unwrap();
    for n in 1..=5 {
        let mut council = spec_a.councils[0].clone();
        council.name = format!("Tandridge {n}");
        one.councils(&scope).put(&council).await.unwrap();
    }
    let revisions = |from: i64, to: i64| (from..=to).map(|r| (r, a.clone())).collect::<Vec<_>>();
    let last = one.revision().await.unwrap();
    assert_eq!(last, start + 6);
    assert_eq!(logged(&one, start).await, revisions(start + 1, last));

    // Below start + 3: the two rows under it go, the rest stay.
    assert_eq!(one.prune_tenant_revisions(start + 3).await.unwrap(), 2);
    assert_eq!(logged(&one, start).await, revisions(start + 3, last));
    // Both replicas at once, to the same bound: the rows go once, whoever deletes them.
    let (by_one, by_two) = tokio::join!(
        one.prune_tenant_revisions(start + 5),
        two.prune_tenant_revisions(start + 5)
    );
    assert_eq!(by_one.unwrap() + by_two.unwrap(), 2);
    assert_eq!(logged(&one, start).await, revisions(start + 5, last));
    // A bound at or below what is left removes nothing.
    assert_eq!(one.prune_tenant_revisions(start + 5).await.unwrap(), 0);
    assert_eq!(one.prune_tenant_revisions(start).await.unwrap(), 0);
    assert_eq!(table(&admin).await.len(), 2);

    // Bumps go on logging after a prune.
    let mut council = spec_a.councils[0].clone();
    council.name = "Tandridge District Council".to_string();
    two.councils(&scope).put(&council).await.unwrap();
    let bumped = two.revision().await.unwrap();
    assert_eq!(bumped, last + 1);
    assert_eq!(logged(&one, last).await, vec![(bumped, a.clone())]);

    // A row naming no valid tenant is read as such.
    admin
        .connection()
        .execute_unprepared(
            "UPDATE platform_revision SET revision = revision + 1 WHERE id = 1;
             INSERT INTO tenant_revisions (revision, tenant_id)
                 SELECT revision, 'Not A Tenant!' FROM platform_revision WHERE id = 1;",
        )
        .await
        .unwrap();
    let rows = one
        .tenant_revisions_between(bumped, bumped + 1)
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![TenantRevision {
            revision: bumped + 1,
            tenant: Err("Not A Tenant!".to_string()),
        }]
    );
    for store in [one, two, admin] {
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_revision_log_is_pruned_below_its_bound_only_on_sqlite() {
    the_revision_log_is_pruned_below_its_bound_only(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_revision_log_is_pruned_below_its_bound_only_on_postgres() {
    the_revision_log_is_pruned_below_its_bound_only(Backend::Postgres).await;
}
