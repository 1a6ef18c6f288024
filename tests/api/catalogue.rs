//! Publishing to the catalogue: good uploads, idempotent re-uploads, and every kind of bad
//! upload refused with its documented error and nothing left behind.

use std::time::Duration;

use crate::helpers::{Backend, TestApp, expect_json, expect_problem, hello_at};
use crate::on_both_databases;

on_both_databases!(
    publish_is_idempotent_and_immutable,
    bad_uploads_change_nothing,
    yanked_versions_cannot_be_newly_installed
);

async fn publish_is_idempotent_and_immutable(app: TestApp) {
    let hello = guildhall_test_artifacts::plugin("hello");
    let first = expect_json(app.publish_artifact(&hello).await, 201).await;
    assert!(first["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(first["signature"]["status"], "unsigned");

    // The same bytes again: 200 and the same record.
    let again = expect_json(app.publish_artifact(&hello).await, 200).await;
    assert_eq!(again["digest"], first["digest"]);

    // Other bytes under the same version: 409.
    let other = guildhall_test_artifacts::plugin("fixture-panic").bytes();
    let problem = expect_problem(
        app.publish("hello", &hello.manifest(), other, None).await,
        409,
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("immutable"),
        "{problem}"
    );

    // The same bytes under a new version share one stored blob.
    let v2 = hello_at("0.2.0");
    assert_ne!(
        v2,
        hello.manifest(),
        "the hello manifest is expected at version 0.1.0"
    );
    let response = app.publish("hello", &v2, hello.bytes(), None).await;
    assert_eq!(response.status(), 201);
    let store = app.store().await;
    assert_eq!(store.catalogue().blob_count().await.unwrap(), 1);

    let catalogue = app.get_json("/api/v1/plugins").await;
    let plugin = &catalogue["plugins"][0];
    assert_eq!(plugin["name"], "hello");
    assert_eq!(plugin["latest_version"], "0.2.0");
    assert_eq!(plugin["versions"].as_array().unwrap().len(), 2);
    let version = app.get_json("/api/v1/plugins/hello/versions/0.1.0").await;
    assert_eq!(version["digest"], first["digest"]);
    expect_problem(app.get("/api/v1/plugins/hello/versions/9.9.9").await, 404).await;
    expect_problem(app.get("/api/v1/plugins/nothing-here").await, 404).await;
}

async fn bad_uploads_change_nothing(app: TestApp) {
    app.publish_built("hello").await;
    let before = app.get_json("/api/v1/plugins").await;
    let store = app.store().await;
    let blobs = store.catalogue().blob_count().await.unwrap();
    let hello = guildhall_test_artifacts::plugin("hello");
    let manifest = hello_at("0.3.0");

    // Not wasm at all.
    let problem = expect_problem(
        app.publish("hello", &manifest, b"MZ not wasm".to_vec(), None)
            .await,
        422,
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not a WebAssembly component"),
        "{problem}"
    );

    // A core module instead of a component.
    let module = b"\0asm\x01\0\0\0".to_vec();
    let problem = expect_problem(app.publish("hello", &manifest, module, None).await, 422).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("core WebAssembly module"),
        "{problem}"
    );

    // Imports beyond the declared capabilities, listed.
    let undeclared = guildhall_test_artifacts::plugin("fixture-undeclared-kv");
    let problem = expect_problem(app.publish_artifact(&undeclared).await, 422).await;
    let imports: Vec<&str> = problem["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    assert!(
        imports
            .iter()
            .any(|i| i.starts_with("guildhall:platform/kv")),
        "{problem}"
    );

    // Limits above the operator's caps.
    let greedy = manifest.replace(
        "[capabilities]",
        "[limits]\nmemory_mib = 1024\n\n[capabilities]",
    );
    let greedy = if greedy.contains("memory_mib = 1024") {
        greedy
    } else {
        format!("{manifest}\n[limits]\nmemory_mib = 1024\n")
    };
    let problem = expect_problem(
        app.publish("hello", &greedy, hello.bytes(), None).await,
        422,
    )
    .await;
    assert!(
        problem["errors"].to_string().contains("limits.memory_mib"),
        "{problem}"
    );

    // A signature no trusted key verifies.
    let problem = expect_problem(
        app.publish("hello", &manifest, hello.bytes(), Some(&"A".repeat(88)))
            .await,
        422,
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("bad signature"),
        "{problem}"
    );

    // A malformed manifest, and a manifest for another plugin than the URL names.
    let problem = expect_problem(
        app.publish(
            "hello",
            "name = \"hello\"\nversion = 1",
            hello.bytes(),
            None,
        )
        .await,
        422,
    )
    .await;
    assert!(
        problem["errors"][0]["field"]
            .as_str()
            .unwrap()
            .starts_with("manifest."),
        "{problem}"
    );
    expect_problem(
        app.publish("other-name", &manifest, hello.bytes(), None)
            .await,
        422,
    )
    .await;

    // Not multipart.
    let response = app
        .client
        .post(app.url("/api/v1/plugins/hello/versions"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    expect_problem(response, 415).await;

    assert_eq!(
        app.get_json("/api/v1/plugins").await,
        before,
        "a refused upload changed the catalogue"
    );
    assert_eq!(store.catalogue().blob_count().await.unwrap(), blobs);
}

async fn yanked_versions_cannot_be_newly_installed(app: TestApp) {
    app.create_example_tenants().await;
    app.publish_built("hello").await;
    let hello = guildhall_test_artifacts::plugin("hello");
    let v2 = hello_at("0.2.0");
    assert_eq!(
        app.publish("hello", &v2, hello.bytes(), None)
            .await
            .status(),
        201
    );
    let installed = app.install_for("north-downs", "hello", "all").await;
    assert_eq!(installed.status(), 201);

    let yanked = app
        .client
        .post(app.url("/api/v1/plugins/hello/versions/0.1.0/yank"))
        .send()
        .await
        .unwrap();
    let yanked = expect_json(yanked, 200).await;
    assert_eq!(yanked["yanked"], true);

    // The running install keeps working.
    assert_eq!(
        app.get("/s/north-downs/tandridge/hello/").await.status(),
        200
    );
    // Another tenant cannot newly install it.
    let problem = expect_problem(app.install_for("the-marches", "hello", "all").await, 409).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("yanked"),
        "{problem}"
    );
    assert_eq!(
        app.get_json("/api/v1/plugins/hello").await["latest_version"],
        "0.2.0"
    );
}

/// A component that is slow to compile: one core module of many long functions (and no
/// HTTP handler, so its upload is refused after the compile).
fn slow_component() -> Vec<u8> {
    let mut text = String::from("(component (core module\n");
    for _ in 0..2_500 {
        text.push_str("(func (param i32) (result i32) local.get 0\n");
        for i in 0..400 {
            text.push_str(&format!("i32.const {i} i32.add i32.const 3 i32.mul\n"));
        }
        text.push_str(")\n");
    }
    text.push_str("))");
    wat::parse_str(&text).unwrap()
}

/// While a slow upload compiles, a second upload gets a clear 503 and an installed plugin's
/// first call on a cold server (nothing compiled, nothing on disk) is served at once.
async fn upload_compiles_never_delay_the_gateway(backend: Backend) {
    let Some(mut app) =
        TestApp::spawn_with(backend, |c| c.runtime.publish_compile_wait_ms = 300).await
    else {
        return;
    };
    app.create_example_tenants().await;
    app.publish_built("hello").await;
    let installed = app.install_for("north-downs", "hello", "all").await;
    assert_eq!(installed.status(), 201);
    // Cold: an empty compile cache and a fresh process.
    for file in std::fs::read_dir(&app.config.runtime.cache_dir).unwrap() {
        std::fs::remove_file(file.unwrap().path()).unwrap();
    }
    app.restart().await;

    let hello = guildhall_test_artifacts::plugin("hello");
    let slow_manifest = hello
        .manifest()
        .replace("name = \"hello\"", "name = \"slow-compile\"");
    let upload = {
        let client = app.client.clone();
        let url = app.url("/api/v1/plugins/slow-compile/versions");
        let form = reqwest::multipart::Form::new()
            .text("manifest", slow_manifest)
            .part(
                "component",
                reqwest::multipart::Part::bytes(slow_component()).file_name("slow.wasm"),
            );
        tokio::spawn(async move { client.post(url).multipart(form).send().await.unwrap() })
    };
    // Wait until the slow upload holds its compile permit (reading, hashing and checking it
    // come first and take their own time).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = app.anonymous.get(app.url("/metrics")).send().await.unwrap();
        let text = metrics.text().await.unwrap();
        if text
            .lines()
            .any(|l| l.starts_with("guildhall_runtime_uploads_compiling 1"))
        {
            break;
        }
        assert!(
            !upload.is_finished(),
            "the slow upload ended before compiling"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the slow upload never started compiling"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let other = hello_at("0.2.0");
    let busy = app
        .publish(
            "hello",
            &other,
            guildhall_test_artifacts::plugin("fixture-panic").bytes(),
            None,
        )
        .await;
    assert!(busy.headers().contains_key("retry-after"));
    let problem = expect_problem(busy, 503).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("compil"),
        "{problem}"
    );

    let started = std::time::Instant::now();
    let served = app.get("/s/north-downs/tandridge/hello/").await;
    let took = started.elapsed();
    assert_eq!(served.status(), 200);
    assert!(
        !upload.is_finished(),
        "the cold call ({took:?}) was served only after the upload compile finished"
    );
    let refused = upload.await.unwrap();
    expect_problem(refused, 422).await;
    assert!(
        app.get("/api/v1/plugins/slow-compile").await.status() == 404,
        "a refused upload created its plugin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_compiles_never_delay_the_gateway_sqlite() {
    upload_compiles_never_delay_the_gateway(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_compiles_never_delay_the_gateway_postgres() {
    upload_compiles_never_delay_the_gateway(Backend::Postgres).await;
}
