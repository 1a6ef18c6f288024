//! The audit chain: installs, council changes and plugin events are recorded per tenant,
//! each entry chained to the one before; `guildhall audit verify` finds the chain intact
//! and names the entry that was altered behind every wall; on PostgreSQL the server's own
//! role can neither change nor remove entries.

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::access::{A, B, two_alliances};
use crate::helpers::{TestApp, guildhall, pothole_services, text};
use crate::on_both_databases;

async fn audit_chain_verifies_and_shows_tampering(app: TestApp) {
    two_alliances(&app).await;
    let store = app.admin_store().await;
    // Some history: installs, a council, a plugin event (report-a-problem emits one).
    app.publish_built("report-a-problem").await;
    let services = pothole_services("Pothole");
    let r = app
        .install(
            A,
            "report-a-problem",
            "0.1.0",
            json!("all"),
            json!({"services": services}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = app
        .put_json(
            &format!("/api/v1/tenants/{A}/councils/waverley"),
            &json!({"name": "Waverley"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = app
        .anonymous
        .post(app.url(&format!("/s/{A}/tandridge/report-a-problem/requests.json")))
        .form(&[
            ("service_code", "pothole"),
            ("address_string", "High St"),
            ("description", "Deep"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let page: Value = app
        .get_json(&format!("/api/v1/tenants/{A}/audit?limit=2"))
        .await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
    assert_eq!(page["next_after"], 2);
    let all: Value = app
        .get_json(&format!("/api/v1/tenants/{A}/audit?limit=1000"))
        .await;
    let entries = all["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in ["installs.put", "councils.put", "plugin.event"] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
    let event = entries
        .iter()
        .find(|e| e["action"] == "plugin.event")
        .unwrap();
    assert_eq!(event["actor"], "anonymous");
    assert_eq!(
        event["object"],
        "plugins/report-a-problem/events/request.created"
    );
    for pair in entries.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
    }
    // B's chain holds only B's history.
    let b: Value = app.get_json(&format!("/api/v1/tenants/{B}/audit")).await;
    assert!(
        b["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| !e.to_string().contains("waverley"))
    );

    let workdir = tempfile::tempdir().unwrap();
    let verify = |tenant: Option<&str>| {
        let mut cmd = guildhall(workdir.path());
        cmd.env("GUILDHALL_DATABASE__URL", app.db.url.expose())
            .env("GUILDHALL_DATABASE__ADMIN_URL", app.db.admin_url.expose())
            .args(["audit", "verify"]);
        if let Some(t) = tenant {
            cmd.args(["--tenant", t]);
        }
        cmd.output().unwrap()
    };
    let out = verify(None);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("{A}: intact")) && stdout.contains("_platform: intact"),
        "{stdout}"
    );

    // On PostgreSQL the server's role cannot change or remove entries at all.
    if app.db.url != app.db.admin_url {
        let app_store = app.store().await;
        for sql in ["UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"] {
            let txn = app_store.connection_begin().await.unwrap();
            txn.execute_unprepared(&format!(
                "SELECT set_config('guildhall.tenant_id', '{A}', true)"
            ))
            .await
            .unwrap();
            let err = txn.execute_unprepared(sql).await.unwrap_err().to_string();
            assert!(err.contains("permission denied"), "{sql}: {err}");
        }
    }

    // Change one byte of one entry behind every wall: verify names that entry.
    let victim = entries[2]["seq"].as_i64().unwrap();
    let sql =
        format!("UPDATE audit_log SET outcome = '299' WHERE tenant_id = '{A}' AND seq = {victim}");
    store.connection().execute_unprepared(&sql).await.unwrap();
    let out = verify(Some(A));
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stdout.contains(&format!("{A}: broken at entry {victim}")),
        "{stdout}{stderr}"
    );
    assert!(stderr.contains("altered"), "{stderr}");
}

on_both_databases!(audit_chain_verifies_and_shows_tampering);
