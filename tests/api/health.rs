//! Liveness, readiness, request ids, the OpenAPI document and platform-wide errors.

use sea_orm::ConnectionTrait;

use crate::helpers::{TestApp, expect_json, expect_problem};
use crate::on_both_databases;

on_both_databases!(
    health_and_readiness,
    readiness_fails_when_a_migration_is_pending
);

async fn health_and_readiness(app: TestApp) {
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let body = expect_json(app.get("/readyz").await, 200).await;
    assert_eq!(body["status"], "ready");
}

async fn readiness_fails_when_a_migration_is_pending(app: TestApp) {
    let store = app.admin_store().await;
    store
        .connection()
        .execute_unprepared(
            "DELETE FROM seaql_migrations WHERE version = 'm20261127_000001_tenants'",
        )
        .await
        .unwrap();
    let problem = expect_problem(app.get("/readyz").await, 503).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("m20261127_000001_tenants"),
        "{problem}"
    );
    // Liveness does not depend on the database.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn request_ids_are_the_servers_own() {
    let app = TestApp::spawn(crate::helpers::Backend::Sqlite)
        .await
        .unwrap();
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    // The caller's id is kept apart (logged and audited as `client_request_id`); the id
    // the server answers with and records under is its own.
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(id, "abc-123");
    assert_eq!(id.len(), 36, "a UUID: {id}");
    // An id unsafe for logs is never echoed either.
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "evil\tid")
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(id, "evil\tid");
    assert_eq!(id.len(), 36, "a UUID: {id}");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = TestApp::spawn(crate::helpers::Backend::Sqlite)
        .await
        .unwrap();
    let problem = expect_problem(app.get("/nowhere").await, 404).await;
    assert_eq!(problem["instance"], "/nowhere");
    assert!(problem["request_id"].is_string());
    let response = app
        .client
        .delete(app.url("/api/v1/tenants"))
        .send()
        .await
        .unwrap();
    let allow = response.headers()["allow"].to_str().unwrap().to_string();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let problem = expect_problem(response, 405).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("DELETE is not allowed"),
        "{problem}"
    );
}

#[tokio::test]
async fn openapi_document_covers_every_api_route() {
    let app = TestApp::spawn(crate::helpers::Backend::Sqlite)
        .await
        .unwrap();
    let doc = app.get_json("/api/openapi.json").await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/healthz", &["get"][..]),
        ("/readyz", &["get"]),
        ("/api/v1/tenants", &["get", "post"]),
        ("/api/v1/tenants/{tenant}", &["get"]),
        ("/api/v1/tenants/{tenant}/councils/{council}", &["put"]),
    ] {
        for method in methods {
            assert!(
                paths.get(path).and_then(|p| p.get(method)).is_some(),
                "{method} {path} is missing from the OpenAPI document"
            );
        }
    }
    // The document is the same as the one generated from the code.
    let generated = serde_json::to_value(guildhall::openapi()).unwrap();
    assert_eq!(doc, generated);
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_release_stays_ready() {
    let app = TestApp::spawn(crate::helpers::Backend::Sqlite)
        .await
        .unwrap();
    let store = app.store().await;
    store
        .connection()
        .execute_unprepared("INSERT INTO seaql_migrations (version, applied_at) VALUES ('m20991231_000001_from_the_future', 0)")
        .await
        .unwrap();
    assert_eq!(app.get("/readyz").await.status(), 200);
    // An older binary starts on it without trying to migrate.
    assert!(store.migrate().await.unwrap().is_empty());
    assert_eq!(
        store.migration_status().await.unwrap().newer,
        ["m20991231_000001_from_the_future"]
    );
}

#[tokio::test]
async fn security_headers_are_on_platform_responses() {
    let app = TestApp::spawn(crate::helpers::Backend::Sqlite)
        .await
        .unwrap();
    for path in ["/healthz", "/api/v1/tenants", "/nowhere"] {
        let response = app.get(path).await;
        let h = response.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'none'"),
            "{path}"
        );
    }
}
