//! Two server processes on one PostgreSQL database: a change made through one replica is
//! served by the other within two seconds, without a restart.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{Backend, TestDb, serve_process};

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
    let cache_a = dir.path().join("a");
    let cache_b = dir.path().join("b");
    let url = db.url.expose().to_string();
    let (mut a, addr_a, _) = serve_process(
        dir.path(),
        &[
            ("GUILDHALL_DATABASE__URL", &url),
            ("GUILDHALL_RUNTIME__CACHE_DIR", cache_a.to_str().unwrap()),
        ],
    );
    let (mut b, addr_b, _) = serve_process(
        dir.path(),
        &[
            ("GUILDHALL_DATABASE__URL", &url),
            ("GUILDHALL_RUNTIME__CACHE_DIR", cache_b.to_str().unwrap()),
        ],
    );
    let client = reqwest::Client::new();
    let on_a = |path: &str| format!("http://{addr_a}{path}");
    let on_b = |path: &str| format!("http://{addr_b}{path}");

    let tenant = json!({"id": "north-downs", "name": "North Downs", "councils": [{"id": "tandridge", "name": "Tandridge"}]});
    assert_eq!(
        client
            .post(on_a("/api/v1/tenants"))
            .json(&tenant)
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    let hello = guildhall_test_artifacts::plugin("hello");
    for (version, manifest) in [
        ("0.1.0", hello.manifest()),
        (
            "0.2.0",
            hello
                .manifest()
                .replace("version = \"0.1.0\"", "version = \"0.2.0\""),
        ),
    ] {
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
    assert_eq!(client.get(&service).send().await.unwrap().status(), 404);

    let install = |version: &str| json!({"version": version, "councils": "all", "config": {}});
    let put = on_a("/api/v1/tenants/north-downs/installs/hello");
    assert_eq!(
        client
            .put(&put)
            .json(&install("0.1.0"))
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    wait_for(&client, &service, |s, by, _| {
        s == 200 && by == "hello@0.1.0"
    })
    .await;

    // Upgrade and rollback through A: B serves the new version within two seconds.
    for version in ["0.2.0", "0.1.0"] {
        assert_eq!(
            client
                .put(&put)
                .json(&install(version))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        let expected = format!("hello@{version}");
        wait_for(&client, &service, |s, by, _| s == 200 && by == expected).await;
    }

    // Uninstall through A: B stops serving within two seconds.
    assert_eq!(client.delete(&put).send().await.unwrap().status(), 204);
    wait_for(&client, &service, |s, _, _| s == 404).await;

    for child in [&mut a, &mut b] {
        let _ = child.kill();
        let _ = child.wait();
    }
}
