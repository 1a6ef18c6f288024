//! Data protection: a resident's subject access and erasure requests across every service
//! of an alliance, events kept apart from the audit chain so erasing them leaves the chain
//! verifiable, and the request's boundaries (roles, tenants, councils, bad input).

use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_json, expect_problem, guildhall, status_of, text};
use crate::on_both_databases;

const T: &str = "north-downs";
const TANDRIDGE: &str = "/s/north-downs/tandridge/report-a-problem";
const MOLE_VALLEY: &str = "/s/north-downs/mole-valley/report-a-problem";
const REQUESTS: &str = "/api/v1/tenants/north-downs/subject-requests";

/// Reports a pothole at `base` as `email` (and a name); returns the request's id.
async fn report_as(app: &TestApp, base: &str, email: &str, last_name: &str) -> String {
    let created = app
        .anonymous
        .post(app.url(&format!("{base}/requests.json")))
        .form(&[
            ("service_code", "pothole"),
            ("address_string", "High Street"),
            ("description", "A deep pothole"),
            ("email", email),
            ("first_name", "Jo"),
            ("last_name", last_name),
            ("phone", "01632 960001"),
        ])
        .send()
        .await
        .unwrap();
    let created = expect_json(created, 201).await;
    created[0]["service_request_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `guildhall audit verify --tenant north-downs`: whether it passed, and what it printed.
fn verify(app: &TestApp) -> (bool, String) {
    let workdir = tempfile::tempdir().unwrap();
    let out = guildhall(workdir.path())
        .env("GUILDHALL_DATABASE__URL", app.db.url.expose())
        .env("GUILDHALL_DATABASE__ADMIN_URL", app.db.admin_url.expose())
        .args(["audit", "verify", "--tenant", T])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    (out.status.success(), format!("{stdout}{stderr}"))
}

/// The answer for report-a-problem at `council` in a subject request's answer.
fn service<'a>(answer: &'a Value, council: &str) -> &'a Value {
    answer["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["plugin"] == "report-a-problem" && s["council"] == council)
        .unwrap_or_else(|| panic!("no answer for {council}: {answer}"))
}

async fn subject_access_and_erasure_reach_every_service(app: TestApp) {
    app.create_example_tenants().await;
    app.publish_built("hello").await;
    app.install_reports(T).await;
    assert_eq!(
        app.install_for(T, "hello", json!("all")).await.status(),
        201
    );

    let jo = report_as(&app, TANDRIDGE, "jo@example.org", "Bloggs").await;
    let sam = report_as(&app, TANDRIDGE, "sam@example.org", "Smith").await;
    let jo_mole_valley = report_as(&app, MOLE_VALLEY, "jo@example.org", "Bloggs").await;
    let officer = app.client_as("officer", Some(T), Some("tandridge")).await;
    let closed = officer
        .post(app.url(&format!("{TANDRIDGE}/requests/{jo}/status.json")))
        .json(&json!({"status": "closed"}));
    assert_eq!(status_of(closed).await, 200);

    // The chain records each event's id and its payload's hash, never the payload.
    let audit = app
        .get_json(&format!("/api/v1/tenants/{T}/audit?limit=1000"))
        .await;
    let events: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "plugin.event")
        .collect();
    assert_eq!(events.len(), 4, "{audit}");
    for entry in &events {
        let detail: Value = serde_json::from_str(entry["detail"].as_str().unwrap()).unwrap();
        assert!(
            detail["payload_sha256"].as_str().unwrap().len() == 64,
            "{detail}"
        );
        assert!(detail.get("payload").is_none(), "{detail}");
    }
    let (ok, printed) = verify(&app);
    assert!(ok, "{printed}");

    // Who may ask: tenant admins and data protection officers, nobody else, and nobody
    // from another alliance.
    let body = json!({"kind": "access", "identifiers": {"email": "jo@example.org"}});
    let dpo = app
        .client_as("data-protection-officer", Some(T), None)
        .await;
    for (client, status) in [
        (app.anonymous.clone(), 401),
        (app.client_as("officer", Some(T), None).await, 403),
        (app.client_as("auditor", Some(T), None).await, 403),
        (
            app.client_as("data-protection-officer", Some("the-marches"), None)
                .await,
            404,
        ),
        (
            app.client_as("tenant-admin", Some("the-marches"), None)
                .await,
            404,
        ),
    ] {
        let response = client
            .post(app.url(REQUESTS))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status);
        let listed = client.get(app.url(REQUESTS)).send().await.unwrap();
        assert_eq!(listed.status().as_u16(), status);
    }
    // A data protection officer reads the alliance but changes nothing else.
    assert_eq!(
        status_of(dpo.get(app.url(&format!("/api/v1/tenants/{T}/installs")))).await,
        200
    );
    let install = json!({"version": "0.1.0", "councils": "all", "config": {}});
    assert_eq!(
        status_of(
            dpo.put(app.url(&format!("/api/v1/tenants/{T}/installs/hello")))
                .json(&install)
        )
        .await,
        403
    );

    // Bad requests are refused precisely and keep nothing.
    for (bad, field) in [
        (json!({"kind": "access", "identifiers": {}}), "identifiers"),
        (
            json!({"kind": "access", "identifiers": {"email": "  "}}),
            "identifiers",
        ),
        (
            json!({"kind": "access", "identifiers": {"email": "jo@example.org\u{0}"}}),
            "identifiers.email",
        ),
        (
            json!({"kind": "access", "identifiers": {"email": "jo@example.org"}, "councils": ["shropshire"]}),
            "councils[0]",
        ),
        (
            json!({"kind": "access", "identifiers": {"email": "jo@example.org"}, "councils": ["Not A Council"]}),
            "councils[0]",
        ),
        (
            json!({"kind": "access", "identifiers": {"email": "jo@example.org"}, "councils": []}),
            "councils",
        ),
    ] {
        let response = dpo.post(app.url(REQUESTS)).json(&bad).send().await.unwrap();
        let problem = expect_problem(response, 422).await;
        assert!(
            problem["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{bad}: {problem}"
        );
    }
    for bad in [
        json!({"kind": "delete", "identifiers": {"email": "jo@example.org"}}),
        json!({"kind": "access", "identifiers": {"email": "jo@example.org", "nino": "AB123456C"}}),
        json!({"kind": "access", "identifiers": {"email": 7}}),
        json!({"identifiers": {"email": "jo@example.org"}}),
    ] {
        let response = dpo.post(app.url(REQUESTS)).json(&bad).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    let listed: Value = dpo
        .get(app.url(REQUESTS))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["requests"], json!([]), "{listed}");

    // Access: every council's records and events about the resident, named by service.
    let response = dpo
        .post(app.url(REQUESTS))
        .json(&json!({"kind": "access", "identifiers": {"email": " JO@example.org"}}))
        .send()
        .await
        .unwrap();
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        response.headers()["cache-control"].to_str().unwrap(),
        "no-store"
    );
    let answer = expect_json(response, 201).await;
    assert_eq!(answer["request"]["state"], "completed", "{answer}");
    let tandridge = service(&answer, "tandridge");
    assert_eq!(tandridge["state"], "ok");
    assert_eq!(
        tandridge["description"],
        "Report a problem such as a pothole or fly-tipping, through the Open311 GeoReport v2 interface"
    );
    let records = tandridge["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{tandridge}");
    assert_eq!(records[0]["schema"], "service-request");
    assert_eq!(records[0]["data"]["email"], "jo@example.org");
    assert_eq!(records[0]["data"]["service_request_id"], jo.as_str());
    let names: Vec<&str> = tandridge["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["request.created", "request.updated"], "{tandridge}");
    let mole_valley = service(&answer, "mole-valley");
    assert_eq!(
        mole_valley["records"][0]["data"]["service_request_id"],
        jo_mole_valley.as_str()
    );
    assert!(!answer.to_string().contains("sam@example.org"), "{answer}");
    // hello keeps no personal data and does not answer subject requests: only the
    // platform's record of its events was searched, and the bundle says so.
    let hello = answer["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["plugin"] == "hello")
        .unwrap();
    assert_eq!(hello["state"], "events-only");
    assert_eq!(hello["events"], json!([]));

    // Kept: hashes of the identifiers and counts, never the values or the records.
    let kept = app.get_json(&location).await;
    assert_eq!(kept["kind"], "access");
    assert!(
        kept["requested_by"].as_str().unwrap().starts_with("token:"),
        "{kept}"
    );
    assert_eq!(kept["identifiers"]["email"].as_str().unwrap().len(), 64);
    assert!(!kept.to_string().contains("example.org"), "{kept}");
    let summary = kept["outcome"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["council"] == "tandridge" && s["plugin"] == "report-a-problem")
        .unwrap()
        .clone();
    assert_eq!(summary["found"], json!({"service-request": 1}), "{kept}");
    assert_eq!(summary["events_found"], 2);
    // Another alliance's administrator cannot read it, even by id.
    let marches = app
        .client_as("tenant-admin", Some("the-marches"), None)
        .await;
    let id = location.rsplit('/').next().unwrap();
    let elsewhere = app.url(&format!(
        "/api/v1/tenants/the-marches/subject-requests/{id}"
    ));
    assert_eq!(status_of(marches.get(elsewhere)).await, 404);
    assert_eq!(
        status_of(dpo.get(app.url(&format!("{REQUESTS}/not-an-id")))).await,
        404
    );

    // Erasure for Tandridge only: the record, and the payloads of its events.
    let response = dpo
        .post(app.url(REQUESTS))
        .json(&json!({
            "kind": "erasure",
            "identifiers": {"email": "jo@example.org"},
            "councils": ["tandridge"],
        }))
        .send()
        .await
        .unwrap();
    let erased = expect_json(response, 201).await;
    assert_eq!(erased["request"]["state"], "completed", "{erased}");
    let tandridge = service(&erased, "tandridge");
    assert_eq!(
        tandridge["erased"],
        json!({"service-request": 1}),
        "{erased}"
    );
    assert_eq!(tandridge["events_erased"], 2);
    assert!(
        erased["services"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["council"] == "tandridge"),
        "{erased}"
    );
    let (status, _) = app
        .serve(
            T,
            "tandridge",
            "report-a-problem",
            &format!("requests/{jo}.json"),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .serve(
            T,
            "tandridge",
            "report-a-problem",
            &format!("requests/{sam}.json"),
        )
        .await;
    assert_eq!(status, 200, "another resident's report stays");

    // A second access request finds nothing left in Tandridge, and Mole Valley's as it was.
    let again = dpo
        .post(app.url(REQUESTS))
        .json(&json!({"kind": "access", "identifiers": {"email": "jo@example.org"}}))
        .send()
        .await
        .unwrap();
    let again = expect_json(again, 201).await;
    assert_eq!(
        service(&again, "tandridge")["records"],
        json!([]),
        "{again}"
    );
    assert_eq!(service(&again, "tandridge")["events"], json!([]), "{again}");
    assert_eq!(
        service(&again, "mole-valley")["records"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let sam_access = dpo
        .post(app.url(REQUESTS))
        .json(&json!({"kind": "access", "identifiers": {"reference": sam, "email": "sam@example.org"}}))
        .send()
        .await
        .unwrap();
    let sam_access = expect_json(sam_access, 201).await;
    assert_eq!(
        service(&sam_access, "tandridge")["events"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{sam_access}"
    );

    // The events themselves stay, their payloads erased; the chain still verifies, and
    // still finds a flipped byte.
    let admin = app.admin_store().await;
    let rows = admin
        .connection()
        .query_all_raw(sea_orm::Statement::from_string(
            admin.connection().get_database_backend(),
            "SELECT payload, erased_at_ms, payload_salt FROM plugin_events \
             WHERE tenant_id = 'north-downs' AND council_id = 'tandridge' ORDER BY id",
        ))
        .await
        .unwrap();
    let payloads: Vec<(String, Option<i64>, Option<String>)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get::<String>("", "payload").unwrap(),
                r.try_get::<Option<i64>>("", "erased_at_ms").unwrap(),
                r.try_get::<Option<String>>("", "payload_salt").unwrap(),
            )
        })
        .collect();
    assert_eq!(payloads.len(), 3, "{payloads:?}");
    // Erased: the payload and the salt its chain hash was made with.
    for erased in [&payloads[0], &payloads[2]] {
        assert_eq!(
            (erased.0.as_str(), erased.1.is_some(), erased.2.is_none()),
            ("null", true, true),
            "{payloads:?}"
        );
    }
    assert!(
        payloads[1].0.contains(&sam)
            && payloads[1].1.is_none()
            && payloads[1].2.as_ref().is_some_and(|salt| salt.len() == 32),
        "{payloads:?}"
    );
    let (ok, printed) = verify(&app);
    assert!(ok, "{printed}");
    let audit = app
        .get_json(&format!("/api/v1/tenants/{T}/audit?limit=1000"))
        .await;
    // Each request is on the chain with its outcome; an answered one names the kept request.
    let entries = audit["entries"].as_array().unwrap();
    let answered: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "subject-requests.create" && e["outcome"] == "201")
        .collect();
    assert_eq!(answered.len(), 4, "{audit}");
    assert!(
        answered
            .iter()
            .all(|e| e["detail"].as_str().unwrap().contains("/subject-requests/")),
        "{answered:?}"
    );
    for refused in ["403", "422"] {
        assert!(
            entries
                .iter()
                .any(|e| e["action"] == "subject-requests.create" && e["outcome"] == refused),
            "no refusal with {refused}: {audit}"
        );
    }
    let victim = events[0]["seq"].as_i64().unwrap();
    admin
        .connection()
        .execute_unprepared(&format!(
            "UPDATE audit_log SET outcome = 'recordeD' WHERE tenant_id = '{T}' AND seq = {victim}"
        ))
        .await
        .unwrap();
    let (ok, printed) = verify(&app);
    assert!(
        !ok && printed.contains(&format!("broken at entry {victim}")),
        "{printed}"
    );
}

on_both_databases!(subject_access_and_erasure_reach_every_service);

// ---------------------------------------------------------------------------------------
// Retention.

const FIXTURE: &str = "fixture-kv-ttl";

/// `GET /s/{tenant}/{council}/fixture-kv-ttl/{path}`: the status and text.
async fn fixture(app: &TestApp, tenant: &str, council: &str, path: &str) -> (u16, String) {
    app.serve(tenant, council, FIXTURE, path).await
}

/// Runs a statement as the database's owner, behind every wall, with `at` bound to `?` and
/// `{old}` the key `old` as the database writes bytes.
async fn at_owner(app: &TestApp, sql: &str, at: time::OffsetDateTime) {
    let admin = app.admin_store().await;
    let backend = admin.connection().get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => sql
            .replace('?', "$1")
            .replace("{old}", "decode('6f6c64', 'hex')"),
        _ => sql.replace("{old}", "X'6f6c64'"),
    };
    admin
        .connection()
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            backend,
            &sql,
            [at.into()],
        ))
        .await
        .unwrap();
}

/// How many rows `sql` (a `SELECT COUNT(*) AS n …`) counts, as the owner.
async fn count(app: &TestApp, sql: &str) -> i64 {
    let admin = app.admin_store().await;
    let backend = admin.connection().get_database_backend();
    let row = admin
        .connection()
        .query_one_raw(sea_orm::Statement::from_string(backend, sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

async fn retention_removes_what_is_past_its_time_and_nothing_else(app: TestApp) {
    app.create_example_tenants().await;
    app.publish_built(FIXTURE).await;
    for tenant in [T, "the-marches"] {
        assert_eq!(
            app.install_for(tenant, FIXTURE, json!("all"))
                .await
                .status(),
            201
        );
    }
    for (path, want) in [
        ("set/keep/1", 200),
        ("set/old/1", 200),
        ("set/short/1/1", 200),
        ("set/long/1/3600", 200),
        ("set/counter/5/1", 200),
        ("increment/counter", 200),
        ("set/never/1/0", 400),
        ("emit/fresh", 200),
        ("emit/stale", 200),
    ] {
        let (status, body) = fixture(&app, T, "tandridge", path).await;
        assert_eq!(status, want, "{path}: {body}");
        if path == "set/never/1/0" {
            assert!(body.contains("invalid ttl"), "{body}");
        }
    }
    assert_eq!(
        fixture(&app, "the-marches", "shropshire", "set/old/1")
            .await
            .0,
        200
    );
    // A key past its time to live is absent at once, before the job removes it; an
    // increment kept the counter's.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(fixture(&app, T, "tandridge", "get/short").await.0, 404);
    assert_eq!(fixture(&app, T, "tandridge", "get/counter").await.0, 404);
    assert_eq!(
        fixture(&app, T, "tandridge", "get/long").await,
        (200, "1".to_string())
    );
    let (_, keys) = fixture(&app, T, "tandridge", "keys").await;
    assert_eq!(keys, "keep\nlong\nold", "expired keys are not listed");

    // The install's own retention: shorter than the manifest's year, never longer.
    let url = app.url(&format!("/api/v1/tenants/{T}/installs/{FIXTURE}/retention"));
    let admin = app.client_as("tenant-admin", Some(T), None).await;
    for (body, field) in [
        (json!({"kv_days": 400}), "kv_days"),
        (json!({"event_days": 0}), "event_days"),
    ] {
        let response = admin.put(&url).json(&body).send().await.unwrap();
        let problem = expect_problem(response, 422).await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let response = admin
        .put(&url)
        .json(&json!({"kv_days": 30, "weeks": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    for (client, status) in [
        (app.client_as("officer", Some(T), None).await, 403),
        (
            app.client_as("data-protection-officer", Some(T), None)
                .await,
            403,
        ),
        (
            app.client_as("tenant-admin", Some("the-marches"), None)
                .await,
            404,
        ),
    ] {
        let put = client.put(&url).json(&json!({"kv_days": 1}));
        assert_eq!(status_of(put).await, status);
    }
    let not_installed = app.url(&format!("/api/v1/tenants/{T}/installs/hello/retention"));
    assert_eq!(
        status_of(admin.put(&not_installed).json(&json!({"kv_days": 1}))).await,
        404
    );
    let set = json!({"kv_days": 30, "event_days": 30});
    assert_eq!(status_of(admin.put(&url).json(&set)).await, 201);
    let view = expect_json(admin.put(&url).json(&set).send().await.unwrap(), 200).await;
    assert_eq!(
        (
            &view["manifest_kv_days"],
            &view["kv_days"],
            &view["event_days"]
        ),
        (&json!(365), &json!(30), &json!(30)),
        "{view}"
    );
    assert!(
        view["install"]["set_by"]
            .as_str()
            .unwrap()
            .starts_with("token:"),
        "{view}"
    );

    // Forty days old: past Tandridge's thirty, within the other alliance's year.
    let forty_days_ago = time::OffsetDateTime::now_utc() - time::Duration::days(40);
    at_owner(
        &app,
        "UPDATE kv_entries SET updated_at = ? WHERE key = {old}",
        forty_days_ago,
    )
    .await;
    at_owner(
        &app,
        "UPDATE plugin_events SET created_at = ? WHERE name = 'stale'",
        forty_days_ago,
    )
    .await;

    let store = app.store().await;
    let now = time::OffsetDateTime::now_utc();
    let (a, b) = tokio::join!(
        guildhall_operations::retention::run_once(&store, "replica-a", 3600, now),
        guildhall_operations::retention::run_once(&store, "replica-b", 3600, now),
    );
    let runs: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(runs.len(), 1, "one run per slot across replicas: {runs:?}");
    let removed = &runs[0].tenants[T];
    assert_eq!(
        removed.kv_entries[FIXTURE], 3,
        "old, short and counter: {removed:?}"
    );
    assert_eq!(removed.events[FIXTURE], 1, "{removed:?}");
    assert!(!runs[0].tenants.contains_key("the-marches"), "{runs:?}");

    let kv = "SELECT COUNT(*) AS n FROM kv_entries WHERE tenant_id = 'north-downs'";
    assert_eq!(count(&app, kv).await, 2, "keep and long stay");
    let marches = "SELECT COUNT(*) AS n FROM kv_entries WHERE tenant_id = 'the-marches'";
    assert_eq!(count(&app, marches).await, 1, "within its year");
    let events = "SELECT COUNT(*) AS n FROM plugin_events WHERE tenant_id = 'north-downs' \
                  AND name = 'fresh'";
    assert_eq!(count(&app, events).await, 1);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM plugin_events WHERE name = 'stale'"
        )
        .await,
        0
    );
    // The quota's counter moved with what went.
    let usage = "SELECT COUNT(*) AS n FROM kv_usage u WHERE u.tenant_id = 'north-downs' \
                 AND u.bytes = (SELECT SUM(size) FROM kv_entries e \
                 WHERE e.tenant_id = u.tenant_id AND e.plugin = u.plugin)";
    assert_eq!(count(&app, usage).await, 1);
    // On the chain, which still verifies.
    let audit = app
        .get_json(&format!("/api/v1/tenants/{T}/audit?limit=1000"))
        .await;
    let entry = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "retention.remove")
        .unwrap_or_else(|| panic!("{audit}"));
    assert_eq!(entry["actor"], "platform");
    assert!(
        entry["detail"].as_str().unwrap().contains(FIXTURE),
        "{entry}"
    );
    let (ok, printed) = verify(&app);
    assert!(ok, "{printed}");
    // The next slot finds nothing more to remove and records nothing.
    let later = now + time::Duration::hours(1);
    let next = guildhall_operations::retention::run_once(&store, "replica-a", 3600, later)
        .await
        .unwrap()
        .unwrap();
    assert!(next.tenants.is_empty(), "{next:?}");
}

/// The servers' own retention job is off, so the test's runs are the only ones.
mod retention_removes_what_is_past_its_time_and_nothing_else {
    use crate::helpers::{Backend, TestApp};

    async fn app(backend: Backend) -> Option<TestApp> {
        TestApp::spawn_with(backend, |c| c.retention.enabled = false).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let app = app(Backend::Sqlite)
            .await
            .expect("SQLite is always available");
        super::retention_removes_what_is_past_its_time_and_nothing_else(app).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(app) = app(Backend::Postgres).await {
            super::retention_removes_what_is_past_its_time_and_nothing_else(app).await;
        }
    }
}
