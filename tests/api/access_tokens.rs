//! API tokens: shown once, stored only as a hash, limited to their tenant, refused once
//! revoked or expired, minted only for roles and councils that exist there; and no token
//! or secret ever reaches the server's log.

use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::access::{A, B};
use crate::helpers::{
    TestApp, client_with, expect_json, expect_problem, fetch_json, serve_process, token_secret,
};
use crate::on_both_databases;

async fn tokens_are_shown_once_stored_hashed_and_revocable(app: TestApp) {
    app.create_example_tenants().await;
    let admin = app.client_as("tenant-admin", Some(A), None).await;
    let response = admin
        .post(app.url(&format!("/api/v1/tenants/{A}/tokens")))
        .json(&json!({"name": "ci", "role": "auditor", "expires_in_days": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let minted = expect_json(response, 201).await;
    let token = minted["token"].as_str().unwrap().to_string();
    let id = minted["id"].as_str().unwrap().to_string();
    assert!(token.starts_with("ghall_") && token.len() > 60, "{token}");
    assert_eq!(minted["role"], "auditor");

    // The auditor reads the audit log and may not install.
    let auditor = app.client_for(&token);
    let audit = auditor
        .get(app.url(&format!("/api/v1/tenants/{A}/audit")))
        .send()
        .await
        .unwrap();
    let audit = expect_json(audit, 200).await;
    let created = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "tokens.create")
        .expect("the minting is audited");
    assert_eq!(created["outcome"], "201");
    assert!(created["actor"].as_str().unwrap().starts_with("token:"));
    let problem = expect_problem(
        auditor
            .put(app.url(&format!("/api/v1/tenants/{A}/installs/hello")))
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("installs:write")
    );

    // Listing never shows a secret; the database holds only a hash.
    let list = admin
        .get(app.url(&format!("/api/v1/tenants/{A}/tokens")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(list.contains(&id) && !list.contains(&token), "{list}");
    let secret = token_secret(&token);
    let store = app.admin_store().await;
    let rows = store
        .connection()
        .query_all_raw(Statement::from_string(
            store.backend(),
            "SELECT id, hash, name FROM tokens",
        ))
        .await
        .unwrap();
    for row in &rows {
        let hash: String = row.try_get_by_index(1).unwrap();
        assert!(!hash.contains(secret) && hash.len() == 64);
    }

    // Another tenant's admin cannot see or revoke it.
    let admin_b = app.client_as("tenant-admin", Some(B), None).await;
    for tenant in [A, B] {
        expect_problem(
            admin_b
                .delete(app.url(&format!("/api/v1/tenants/{tenant}/tokens/{id}")))
                .send()
                .await
                .unwrap(),
            404,
        )
        .await;
    }

    // Revoked: refused on the next request.
    let revoked = admin
        .delete(app.url(&format!("/api/v1/tenants/{A}/tokens/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let problem = expect_problem(
        auditor
            .get(app.url(&format!("/api/v1/tenants/{A}/audit")))
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("revoked"));

    // Expired: refused.
    let officer = app.token("officer", Some(A), None).await;
    let officer_id = officer.split('_').nth(1).unwrap().to_string();
    store
        .connection()
        .execute_raw(Statement::from_sql_and_values(
            store.backend(),
            match store.backend() {
                sea_orm::DbBackend::Postgres => "UPDATE tokens SET expires_at = $1 WHERE id = $2",
                _ => "UPDATE tokens SET expires_at = ? WHERE id = ?",
            },
            [
                sea_orm::Value::from(sea_orm::prelude::TimeDateTimeWithTimeZone::UNIX_EPOCH),
                officer_id.into(),
            ],
        ))
        .await
        .unwrap();
    let problem = expect_problem(
        app.client_for(&officer)
            .get(app.url(&format!("/api/v1/tenants/{A}")))
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("expired"));

    // Bad requests change nothing: a platform role in a tenant, an unknown council.
    let count = || async {
        store
            .connection()
            .query_one_raw(Statement::from_string(
                store.backend(),
                "SELECT count(*) FROM tokens",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<i64>(0)
            .unwrap()
    };
    for body in [
        json!({"name": "x", "role": "operator"}),
        json!({"name": "x", "role": "officer", "council": "shropshire"}),
        json!({"name": "x", "role": "auditor", "expires_in_days": 400}),
    ] {
        let before = count().await;
        expect_problem(
            admin
                .post(app.url(&format!("/api/v1/tenants/{A}/tokens")))
                .json(&body)
                .send()
                .await
                .unwrap(),
            422,
        )
        .await;
        let after = count().await;
        assert_eq!(before, after, "{body}");
    }
}

#[test]
fn no_tokens_or_secrets_in_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("GUILDHALL_LOG__FILTER", "debug")];
    let (mut child, addr, logs) = serve_process(dir.path(), &env);
    let token = crate::helpers::cli_operator_token(dir.path(), &env);
    let secret = token_secret(&token).to_string();
    let forged = format!("ghall_0123456789abcdef_{}", "Z".repeat(43));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let minted = rt.block_on(async {
        let operator = client_with(Some(&token));
        let url = |p: &str| format!("http://{addr}{p}");
        operator
            .post(url("/api/v1/tenants"))
            .json(&json!({"id": A, "name": "North Downs", "councils": [{"id": "tandridge", "name": "Tandridge"}]}))
            .send()
            .await
            .unwrap();
        let minted = fetch_json(
            operator
                .post(url(&format!("/api/v1/tenants/{A}/tokens")))
                .json(&json!({"name": "x", "role": "auditor"})),
        )
        .await;
        client_with(Some(&forged)).get(url("/api/v1/tenants")).send().await.unwrap();
        reqwest::Client::new()
            .get(url("/api/v1/tenants"))
            .header("authorization", format!("Basic {secret}"))
            .send()
            .await
            .unwrap();
        minted["token"].as_str().unwrap().to_string()
    });
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().unwrap();
    let logs = logs.join().unwrap();
    assert!(logs.contains("request"), "{logs}");
    let minted_secret = token_secret(&minted);
    for needle in [secret.as_str(), minted_secret, &forged[23..]] {
        assert!(!logs.contains(needle), "a secret reached the log:\n{logs}");
    }
}

on_both_databases!(tokens_are_shown_once_stored_hashed_and_revocable);
