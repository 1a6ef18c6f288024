//! Two server processes on one PostgreSQL database: a change made through one replica is
//! served by the other within two seconds, without a restart.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{
    Backend, TestDb, cli_operator_token, client_with, hello_at, serve_process, status_of,
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
    assert_eq!(
        status_of(client.put(&put).json(&install("0.1.0"))).await,
        201
    );
    wait_for(&client, &service, |s, by, _| {
        s == 200 && by == "hello@0.1.0"
    })
    .await;

    // Upgrade and rollback through A: B serves the new version within two seconds.
    for version in ["0.2.0", "0.1.0"] {
        assert_eq!(
            status_of(client.put(&put).json(&install(version))).await,
            200
        );
        let expected = format!("hello@{version}");
        wait_for(&client, &service, |s, by, _| s == 200 && by == expected).await;
    }

    // Uninstall through A: B stops serving within two seconds.
    assert_eq!(status_of(client.delete(&put)).await, 204);
    wait_for(&client, &service, |s, _, _| s == 404).await;

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
    let response = client
        .post(format!("http://{base}/api/v1/plugins/{name}/versions"))
        .multipart(form)
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
