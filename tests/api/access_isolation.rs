//! Isolation between tenants: the cross-tenant matrix of every API operation for every
//! role, the same plugin installed in two tenants sharing nothing, and row-level security
//! hiding other tenants' rows from the server's own database role.

use guildhall_authz::DEFAULT_POLICIES;
use reqwest::Method;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::access::{A, B, concrete, operations, send, two_alliances};
use crate::helpers::{Backend, TestApp, fetch_json, pothole_services, status_of};
use crate::on_both_databases;

/// Strings that only tenant B's data contains.
const B_DATA: &[&str] = &[
    "Marches Digital",
    "shropshire",
    "herefordshire",
    "Shropshire",
];

/// What the matrix expects for one caller on one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Allowed,
    Forbidden,
    Hidden,
}

fn key_match(object: &str, pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => object.starts_with(prefix),
        None => object == pattern,
    }
}

fn policy_allows(role: &str, object: &str, action: &str) -> bool {
    let role = format!("role:{role}");
    DEFAULT_POLICIES
        .iter()
        .any(|[r, _, o, a]| *r == role && key_match(object, o) && (*a == "*" || *a == action))
}

/// The expected answer for `role` (held in `home`, or platform-wide when `None`) on a
/// route needing `access` aimed at tenant `target`.
fn expect(access: &str, role: &str, home: Option<&str>, target: &str) -> Expect {
    let parts: Vec<&str> = access.split(':').collect();
    match parts.as_slice() {
        ["authenticated"] => Expect::Allowed,
        ["platform", object, action] => {
            if home.is_none() && policy_allows(role, object, action) {
                Expect::Allowed
            } else {
                Expect::Forbidden
            }
        }
        ["tenant", object, action] => match home {
            None if policy_allows(role, object, action) => Expect::Allowed,
            None => Expect::Hidden,
            Some(home) if home != target => Expect::Hidden,
            Some(_) if policy_allows(role, object, action) => Expect::Allowed,
            Some(_) => Expect::Forbidden,
        },
        other => panic!("unknown access {other:?}"),
    }
}

async fn cross_tenant_matrix(app: TestApp) {
    two_alliances(&app).await;
    let ops = operations(&app).await;
    let mut callers: Vec<(String, Option<&str>, reqwest::Client)> = vec![
        ("operator".into(), None, app.client.clone()),
        (
            "publisher".into(),
            None,
            app.client_as("publisher", None, None).await,
        ),
    ];
    for home in [A, B] {
        for role in ["tenant-admin", "officer", "auditor"] {
            let client = app.client_as(role, Some(home), None).await;
            callers.push((role.into(), Some(home), client));
        }
    }
    let mut failures = Vec::new();
    // Reads first, then writes, so that nothing a write changes hides a read's answer.
    let mut ordered = ops.clone();
    ordered.sort_by_key(|(method, _, _)| method != "GET");
    for (method, path, access) in &ordered {
        let method: Method = method.parse().unwrap();
        // Nobody anonymous gets in, anywhere.
        let (status, body) = send(&app.anonymous, &app, &method, &concrete(path, B)).await;
        if status != 401 {
            failures.push(format!("anonymous {method} {path}: {status} {body}"));
        }
        for (role, home, client) in &callers {
            let target = B;
            let want = expect(access, role, *home, target);
            let (status, body) = send(client, &app, &method, &concrete(path, target)).await;
            let who = format!("{role}@{} {method} {path} ({access})", home.unwrap_or("*"));
            let ok = match want {
                // The owner routes are open to any authenticated caller at the access layer;
                // the operation then refuses a non-owner (a 403 that names ownership).
                Expect::Allowed => {
                    (![401, 403].contains(&status) || body.contains("is not an owner of plugin"))
                        && !body.contains("no tenant")
                }
                Expect::Forbidden => status == 403,
                Expect::Hidden => status == 404 && body.contains(&format!("no tenant {target}")),
            };
            if !ok {
                failures.push(format!("{who}: expected {want:?}, got {status} {body}"));
            }
            // A caller from another tenant learns nothing of B's data (`instance` only
            // echoes the path the caller sent).
            let answer = match serde_json::from_str::<Value>(&body) {
                Ok(Value::Object(mut problem)) => {
                    problem.remove("instance");
                    Value::Object(problem).to_string()
                }
                _ => body.clone(),
            };
            if *home == Some(A) && B_DATA.iter().any(|d| answer.contains(d)) {
                failures.push(format!("{who}: the answer leaks B's data: {body}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // The tenant list shows each caller only its own alliances.
    let admin_a = app.client_as("tenant-admin", Some(A), None).await;
    let list = fetch_json(admin_a.get(app.url("/api/v1/tenants"))).await;
    let ids: Vec<&str> = list["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [A]);
}

async fn same_plugin_in_two_tenants_shares_nothing(app: TestApp) {
    app.create_example_tenants().await;
    app.publish_built("report-a-problem").await;
    for (tenant, name) in [(A, "Pothole (North Downs)"), (B, "Pothole (Marches)")] {
        let services = pothole_services(name);
        let r = app
            .install(
                tenant,
                "report-a-problem",
                "0.1.0",
                json!("all"),
                json!({"services": services}),
            )
            .await;
        assert_eq!(r.status(), 201);
    }
    let report = |tenant: &str, council: &str, description: &str| {
        fetch_json(
            app.anonymous
                .post(app.url(&format!(
                    "/s/{tenant}/{council}/report-a-problem/requests.json"
                )))
                .form(&[
                    ("service_code", "pothole"),
                    ("address_string", "High Street"),
                    ("description", description),
                ]),
        )
    };
    let a = report(A, "tandridge", "secret of north downs").await;
    let b = report(B, "shropshire", "marches only").await;
    // Both tenants' first request: the same id, different data.
    let id_a = a[0]["service_request_id"].as_str().unwrap();
    let id_b = b[0]["service_request_id"].as_str().unwrap();
    assert_eq!(id_a, id_b);
    let request = format!("requests/{id_a}.json");
    let (_, seen_by_b) = app
        .serve(B, "shropshire", "report-a-problem", &request)
        .await;
    assert!(
        seen_by_b.contains("marches only") && !seen_by_b.contains("north downs"),
        "{seen_by_b}"
    );
    let (_, list_b) = app
        .serve(B, "shropshire", "report-a-problem", "requests.json")
        .await;
    assert!(!list_b.contains("north downs"), "{list_b}");
    // Each sees its own configuration.
    let (_, services_b) = app
        .serve(B, "shropshire", "report-a-problem", "services.json")
        .await;
    assert!(
        services_b.contains("Marches") && !services_b.contains("North Downs"),
        "{services_b}"
    );
    // Officers update requests through the plugin, which asks the platform's enforcer
    // (`authz`): an officer of this council may, an auditor may not, an officer of the
    // other alliance holds no role here, a citizen must sign in.
    let status_url = app.url(&format!(
        "/s/{A}/tandridge/report-a-problem/requests/{id_a}/status.json"
    ));
    let update = |client: reqwest::Client| {
        let url = status_url.clone();
        async move {
            status_of(
                client
                    .post(url)
                    .json(&json!({"status": "closed", "status_notes": "Filled in"})),
            )
            .await
        }
    };
    assert_eq!(update(app.anonymous.clone()).await, 401);
    assert_eq!(
        update(app.client_as("auditor", Some(A), None).await).await,
        403
    );
    assert_eq!(
        update(app.client_as("officer", Some(B), None).await).await,
        403
    );
    let officer_elsewhere = app.client_as("officer", Some(A), Some("mole-valley")).await;
    assert_eq!(update(officer_elsewhere).await, 403);
    let officer = app.client_as("officer", Some(A), Some("tandridge")).await;
    assert_eq!(update(officer).await, 200);
    let (_, closed) = app
        .serve(A, "tandridge", "report-a-problem", &request)
        .await;
    assert!(
        closed.contains("closed") && closed.contains("Filled in"),
        "{closed}"
    );
    // B's request with the same id is untouched.
    let (_, still_open) = app
        .serve(B, "shropshire", "report-a-problem", &request)
        .await;
    assert!(still_open.contains("\"open\""), "{still_open}");

    // Each tenant's events are in its own audit chain only.
    let audit_b: Value = app
        .get_json(&format!("/api/v1/tenants/{B}/audit?limit=1000"))
        .await;
    let text_b = audit_b.to_string();
    assert!(
        text_b.contains("plugin.event") && !text_b.contains("north downs"),
        "{text_b}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_level_security_hides_other_tenants_rows_from_the_server_role() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    two_alliances(&app).await;
    let server_role = app.store().await;
    assert_eq!(
        server_role.bypasses_row_security().await.unwrap(),
        Some(false)
    );
    let count = |sql: &'static str, tenant: Option<&'static str>| {
        let store = server_role.clone();
        async move {
            let txn = store.connection_begin().await.unwrap();
            if let Some(t) = tenant {
                txn.execute_unprepared(&format!(
                    "SELECT set_config('guildhall.tenant_id', '{t}', true)"
                ))
                .await
                .unwrap();
            }
            let rows = txn
                .query_all_raw(Statement::from_string(sea_orm::DbBackend::Postgres, sql))
                .await
                .unwrap();
            txn.commit().await.unwrap();
            rows.into_iter()
                .map(|r| r.try_get_by_index::<String>(0).unwrap())
                .collect::<Vec<_>>()
        }
    };
    // A tenant token in each alliance, beside the platform token minted at start.
    let a_token = app.token("auditor", Some(A), None).await;
    app.token("auditor", Some(B), None).await;
    // Every tenant table has row-level security enabled and forced: dropping it from one
    // (tokens included) fails here, even before any row would leak.
    let owner = app.admin_store().await;
    for table in guildhall_store::Store::tenant_tables() {
        let row = owner
            .connection()
            .query_one_raw(Statement::from_string(
                sea_orm::DbBackend::Postgres,
                format!(
                    "SELECT relrowsecurity AND relforcerowsecurity FROM pg_class \
                     WHERE oid = '{table}'::regclass"
                ),
            ))
            .await
            .unwrap()
            .unwrap();
        assert!(
            row.try_get_by_index::<bool>(0).unwrap(),
            "{table} lacks forced row-level security"
        );
        let sql: &'static str = Box::leak(
            format!("SELECT DISTINCT tenant_id FROM {table} WHERE tenant_id IS NOT NULL")
                .into_boxed_str(),
        );
        assert!(
            count(sql, None).await.is_empty(),
            "{table} without the setting"
        );
    }
    let tokens = "SELECT DISTINCT tenant_id FROM tokens WHERE tenant_id IS NOT NULL";
    assert_eq!(count(tokens, Some(A)).await, [A]);
    // Authentication's lookup sees exactly the token it names, whatever its tenant.
    let a_id = a_token
        .strip_prefix("ghall_")
        .and_then(|rest| rest.split('_').next())
        .unwrap()
        .to_string();
    let txn = server_role.connection_begin().await.unwrap();
    txn.execute_unprepared(&format!(
        "SELECT set_config('guildhall.token_id', '{a_id}', true)"
    ))
    .await
    .unwrap();
    let seen = txn
        .query_all_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT tenant_id FROM tokens WHERE tenant_id IS NOT NULL",
        ))
        .await
        .unwrap();
    txn.commit().await.unwrap();
    assert_eq!(seen.len(), 1, "the lookup shows one tenant token");
    // And that token still authenticates through the API.
    let auditor = app.client_for(&a_token);
    let response = auditor
        .get(app.url(&format!("/api/v1/tenants/{A}/audit")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        count("SELECT DISTINCT tenant_id FROM councils", None)
            .await
            .is_empty()
    );
    assert_eq!(
        count("SELECT DISTINCT tenant_id FROM councils", Some(A)).await,
        [A]
    );
    assert_eq!(
        count("SELECT DISTINCT tenant_id FROM installs", Some(A)).await,
        [A]
    );
    // The owner sees both tenants' rows: the data is there, the wall hides it.
    let rows = owner
        .connection()
        .query_all_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT DISTINCT tenant_id FROM installs",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    // Writing another tenant's row under A's setting is refused.
    let txn = server_role.connection_begin().await.unwrap();
    txn.execute_unprepared(&format!(
        "SELECT set_config('guildhall.tenant_id', '{A}', true)"
    ))
    .await
    .unwrap();
    let err = txn
        .execute_unprepared(&format!(
            "INSERT INTO councils (tenant_id, id, name, created_at, updated_at) \
             VALUES ('{B}', 'intruder', 'x', now(), now())"
        ))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
}

on_both_databases!(
    cross_tenant_matrix,
    same_plugin_in_two_tenants_shares_nothing
);
