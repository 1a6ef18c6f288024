//! A tenant's lifecycle, on both databases: an alliance with councils, members, installs
//! (report-a-problem with reports filed, hello), key-value data, events, feedback and usage
//! is exported over HTTP and with the command line, deleted after confirmation (every table
//! then holds nothing of it and the gateway answers 404), and imported into a fresh
//! platform, where its plugins answer as before and its audit chain verifies. Damaged,
//! cut-short and clashing archives are refused and write nothing; callers without the
//! right role cannot export or delete.

use std::io::Read as _;
use std::path::Path;

use guildhall_store::Store;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::helpers::{Backend, TestApp, client_with, expect_json, expect_problem, guildhall, text};
use crate::on_both_databases;

on_both_databases!(
    export_delete_import_brings_a_tenant_back,
    council_deletion_removes_the_councils_data
);

const T: &str = "north-downs";
const TANDRIDGE: &str = "/s/north-downs/tandridge/report-a-problem";
const MOLE_VALLEY: &str = "/s/north-downs/mole-valley/report-a-problem";
const ISSUER: &str = "north-downs-idp";

/// Runs the real binary against `app`'s database.
fn cli(app: &TestApp, dir: &Path, args: &[&str]) -> (bool, String, String) {
    let output = guildhall(dir)
        .env("GUILDHALL_DATABASE__URL", app.db.url.expose())
        .env("GUILDHALL_DATABASE__ADMIN_URL", app.db.admin_url.expose())
        .args(args)
        .output()
        .expect("run guildhall");
    let (stdout, stderr) = text(&output);
    (output.status.success(), stdout, stderr)
}

/// Files a pothole report as a citizen and returns its id.
async fn report(app: &TestApp, base: &str, description: &str) -> String {
    let created = app
        .anonymous
        .post(app.url(&format!("{base}/requests.json")))
        .form(&[
            ("service_code", "pothole"),
            ("address_string", "High Street"),
            ("description", description),
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

/// What a citizen reads of a council's reports: status and body.
async fn reports(app: &TestApp, base: &str) -> (u16, String) {
    let url = app.url(&format!("{base}/requests.json"));
    let response = app.anonymous.get(url).send().await.unwrap();
    (
        response.status().as_u16(),
        response.text().await.unwrap_or_default(),
    )
}

/// Rows naming `tenant` in every tenant table, the adoption figures, the access rules and
/// the audit log, read as the owner behind every wall: table → count, zero counts left out.
pub(crate) async fn rows_of(app: &TestApp, tenant: &str) -> Vec<(String, i64)> {
    let admin = app.admin_store().await;
    let mut queries: Vec<(String, String)> = Store::tenant_tables()
        .iter()
        .map(|t| {
            (
                t.to_string(),
                format!("SELECT COUNT(*) AS n FROM {t} WHERE tenant_id = '{tenant}'"),
            )
        })
        .collect();
    queries.push((
        "tenants".into(),
        format!("SELECT COUNT(*) AS n FROM tenants WHERE id = '{tenant}'"),
    ));
    queries.push((
        "plugin_adoption".into(),
        format!("SELECT COUNT(*) AS n FROM plugin_adoption WHERE tenant_id = '{tenant}'"),
    ));
    queries.push((
        "casbin_rules".into(),
        format!(
            "SELECT COUNT(*) AS n FROM casbin_rules WHERE (ptype = 'g' AND v2 = '{tenant}') \
             OR (ptype = 'p' AND v1 = '{tenant}')"
        ),
    ));
    let mut found = Vec::new();
    for (table, sql) in queries {
        let row = admin
            .connection()
            .query_one_raw(sea_orm::Statement::from_string(
                admin.backend(),
                format!("SELECT CAST(n AS BIGINT) AS n FROM ({sql}) counted"),
            ))
            .await
            .unwrap()
            .unwrap();
        let n: i64 = row.try_get("", "n").unwrap();
        if n > 0 {
            found.push((table, n));
        }
    }
    admin.close().await.ok();
    found
}

/// The members of an archive: name → bytes.
fn members(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    tar.entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            (name, bytes)
        })
        .collect()
}

fn member<'a>(members: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &members
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("the archive has no {name}"))
        .1
}

fn records(bytes: &[u8]) -> Vec<Value> {
    std::str::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A client signed in as `sub` at the test identity provider.
fn signed_in(idp: &crate::access::Idp, sub: &str) -> reqwest::Client {
    let now = crate::access::now();
    client_with(Some(&idp.sign(json!({
        "iss": "https://login.north-downs.example/", "aud": "guildhall",
        "sub": sub, "iat": now, "exp": now + 600,
    }))))
}

/// Every entry of the platform's audit chain.
async fn platform_chain(app: &TestApp) -> Vec<guildhall_store::AuditRecord> {
    let store = app.store().await;
    let entries = store.platform_audit().list(0, 100_000).await.unwrap();
    store.close().await.ok();
    entries
}

/// A tenant set up with everything a tenant owns, exported, deleted and imported into a
/// fresh platform.
async fn export_delete_import_brings_a_tenant_back(mut app: TestApp) {
    let idp = crate::access::Idp::new();
    app.config.auth.oidc = vec![idp.issuer()];
    app.restart().await;
    app.create_example_tenants().await;
    app.publish_built("hello").await;
    app.install_reports(T).await;
    assert_eq!(
        app.install_for(T, "hello", json!(["tandridge", "mole-valley"]))
            .await
            .status(),
        201
    );
    for (sub, body) in [
        ("alice", json!({"roles": ["tenant-admin"]})),
        ("bob", json!({"roles": ["officer"], "council": "tandridge"})),
    ] {
        let path = format!("/api/v1/tenants/{T}/members/oidc:{ISSUER}:{sub}");
        assert_eq!(app.put_json(&path, &body).await.status(), 201);
    }
    assert_eq!(report(&app, TANDRIDGE, "tandridge first").await, "1");
    assert_eq!(report(&app, TANDRIDGE, "tandridge second").await, "2");
    assert_eq!(report(&app, MOLE_VALLEY, "mole valley first").await, "1");
    let (status, hello) = app.serve(T, "tandridge", "hello", "").await;
    assert_eq!(
        (status, hello.as_str()),
        (200, "Hello from tandridge (north-downs)!")
    );
    let rated = app
        .anonymous
        .post(app.url("/s/north-downs/tandridge/hello/_feedback"))
        .json(&json!({"rating": 4, "comment": "Quick"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rated.status(), 201);
    let admin_token = app.token("tenant-admin", Some(T), None).await;
    // The meter writes usage at shutdown: a restart puts it in the database.
    app.restart().await;
    let before_tandridge = reports(&app, TANDRIDGE).await;
    let before_mole = reports(&app, MOLE_VALLEY).await;
    assert_eq!(before_tandridge.0, 200);
    assert!(
        before_tandridge.1.contains("tandridge second"),
        "{before_tandridge:?}"
    );
    let installs_before = app.get_json(&format!("/api/v1/tenants/{T}/installs")).await;
    let tenant_before = app.get_json(&format!("/api/v1/tenants/{T}")).await;
    let audit_before = app
        .get_json(&format!("/api/v1/tenants/{T}/audit?limit=1000"))
        .await;
    let held = rows_of(&app, T).await;
    for table in [
        "councils",
        "members",
        "installs",
        "kv_entries",
        "plugin_events",
        "feedback",
        "usage_daily",
        "audit_log",
        "tokens",
    ] {
        assert!(
            held.iter().any(|(t, _)| t == table),
            "the tenant holds no {table} to export: {held:?}"
        );
    }

    // Exported over HTTP by an operator and by the tenant's own administrator.
    let response = app.get(&format!("/api/v1/tenants/{T}/export")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/gzip");
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.starts_with("attachment; filename=\"guildhall-north-downs-")
            && disposition.ends_with(".tar.gz\""),
        "{disposition}"
    );
    let sha256 = response.headers()["x-guildhall-archive-sha256"]
        .to_str()
        .unwrap()
        .to_string();
    let archive = response.bytes().await.unwrap().to_vec();
    assert_eq!(hex::encode(sha2::Sha256::digest(&archive)), sha256);
    let by_admin = client_with(Some(&admin_token))
        .get(app.url(&format!("/api/v1/tenants/{T}/export")))
        .send()
        .await
        .unwrap();
    assert_eq!(by_admin.status(), 200);

    // What the archive holds: a manifest with every member's checksum, the tenant's
    // records, the plugin versions it runs, and no tokens or sessions.
    let held = members(&archive);
    assert_eq!(held[0].0, "manifest.json", "the manifest comes first");
    let manifest: Value = serde_json::from_slice(&held[0].1).unwrap();
    assert_eq!(manifest["format"], "guildhall-tenant-archive");
    assert_eq!(manifest["format_version"], 1);
    assert_eq!(manifest["tenant"], T);
    let listed = manifest["files"].as_array().unwrap();
    assert_eq!(listed.len(), held.len() - 1);
    for (file, (name, bytes)) in listed.iter().zip(&held[1..]) {
        assert_eq!(file["name"], name.as_str());
        assert_eq!(file["size"], bytes.len());
        assert_eq!(file["sha256"], hex::encode(sha2::Sha256::digest(bytes)));
    }
    assert!(manifest["not_included"]["tokens"].is_string(), "{manifest}");
    assert!(
        held.iter()
            .all(|(n, _)| !n.contains("token") && !n.contains("session"))
    );
    let councils = records(member(&held, "councils.jsonl"));
    assert_eq!(councils.len(), 4);
    assert_eq!(records(member(&held, "members.jsonl")).len(), 2);
    let kv = records(member(&held, "kv.jsonl"));
    assert!(
        kv.iter().any(|r| r["plugin"] == "report-a-problem"),
        "{kv:?}"
    );
    assert_eq!(
        records(member(&held, "audit.jsonl")).len(),
        audit_before["entries"].as_array().unwrap().len()
    );
    let plugins = records(member(&held, "plugins.jsonl"));
    let mut versions: Vec<String> = plugins
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["plugin"].as_str().unwrap(),
                p["version"].as_str().unwrap()
            )
        })
        .collect();
    versions.sort();
    assert_eq!(versions, ["hello 0.1.0", "report-a-problem 0.1.0"]);
    assert_eq!(
        held.iter()
            .filter(|(n, _)| n.starts_with("components/"))
            .count(),
        2
    );
    assert!(!records(member(&held, "feedback.jsonl")).is_empty());
    assert!(!records(member(&held, "usage.jsonl")).is_empty());
    assert!(!records(member(&held, "events.jsonl")).is_empty());

    // Exported with the command line, to a file it never overwrites.
    let work = tempfile::tempdir().unwrap();
    let cli_archive = work.path().join("north-downs.tar.gz");
    let out = cli_archive.to_str().unwrap();
    let (ok, stdout, stderr) = cli(&app, work.path(), &["tenants", "export", T, "--out", out]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("sha256 ") && stdout.contains("kv.jsonl:"),
        "{stdout}"
    );
    let written = std::fs::read(&cli_archive).unwrap();
    assert!(
        stdout.contains(&hex::encode(sha2::Sha256::digest(&written))),
        "{stdout}"
    );
    let (ok, _, stderr) = cli(&app, work.path(), &["tenants", "export", T, "--out", out]);
    assert!(!ok && stderr.contains("exists"), "{stderr}");
    assert_eq!(std::fs::read(&cli_archive).unwrap(), written);
    let (ok, _, stderr) = cli(&app, work.path(), &["tenants", "export", "no-such-tenant"]);
    assert!(
        !ok && stderr.contains("no tenant no-such-tenant"),
        "{stderr}"
    );

    // Callers who may not: another tenant's administrator sees no tenant, the tenant's own
    // administrator may not delete it; HEAD is decided as GET.
    let marches_admin = app
        .client_as("tenant-admin", Some("the-marches"), None)
        .await;
    for request in [
        marches_admin.get(app.url(&format!("/api/v1/tenants/{T}/export"))),
        marches_admin.head(app.url(&format!("/api/v1/tenants/{T}/export"))),
        marches_admin.delete(app.url(&format!("/api/v1/tenants/{T}?confirm={T}"))),
    ] {
        assert_eq!(request.send().await.unwrap().status(), 404);
    }
    let refused = client_with(Some(&admin_token))
        .delete(app.url(&format!("/api/v1/tenants/{T}?confirm={T}")))
        .send()
        .await
        .unwrap();
    expect_problem(refused, 403).await;
    let officer = app.client_as("officer", Some(T), None).await;
    let refused = officer
        .get(app.url(&format!("/api/v1/tenants/{T}/export")))
        .send()
        .await
        .unwrap();
    expect_problem(refused, 403).await;
    let head = app
        .client
        .head(app.url(&format!("/api/v1/tenants/{T}/export")))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    let looked = head.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(
        head.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert!(head.bytes().await.unwrap().is_empty());
    // Exports are on the tenant's chain with the archive's checksum; a HEAD as what it was.
    let chain = app
        .get_json(&format!("/api/v1/tenants/{T}/audit?limit=1000"))
        .await;
    let exports: Vec<Value> = chain["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "tenants.export")
        .map(|e| serde_json::from_str(e["detail"].as_str().unwrap()).unwrap())
        .collect();
    assert!(
        exports
            .iter()
            .any(|d| d["archive_sha256"] == sha256.as_str()),
        "{exports:?}"
    );
    let head_entry = chain["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["request_id"] == looked.as_str())
        .expect("the HEAD is on the chain");
    let head_detail: Value = serde_json::from_str(head_entry["detail"].as_str().unwrap()).unwrap();
    assert_eq!(head_detail["method"], "HEAD");
    assert!(head_detail.get("archive_sha256").is_none());

    // Deletion needs the tenant's id repeated; without it, or with another, nothing goes
    // (the refusals themselves are recorded in the tenant's chain).
    let stored_before = outside_the_chain(rows_of(&app, T).await);
    let unconfirmed = app
        .client
        .delete(app.url(&format!("/api/v1/tenants/{T}")))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(unconfirmed, 428).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("DELETE /api/v1/tenants/{T}?confirm={T}")),
        "{problem}"
    );
    let other = app
        .client
        .delete(app.url(&format!("/api/v1/tenants/{T}?confirm=the-marches")))
        .send()
        .await
        .unwrap();
    expect_problem(other, 409).await;
    assert_eq!(reports(&app, TANDRIDGE).await, before_tandridge);
    assert_eq!(outside_the_chain(rows_of(&app, T).await), stored_before);

    let deleted = app
        .client
        .delete(app.url(&format!("/api/v1/tenants/{T}?confirm={T}")))
        .send()
        .await
        .unwrap();
    let request_id = deleted.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let deleted = expect_json(deleted, 200).await;
    assert_eq!(deleted["tenant"], T);
    assert_eq!(deleted["rows"]["councils"], 4, "{deleted}");
    assert!(
        deleted["rows"]["audit_log"].as_i64().unwrap() > 0,
        "{deleted}"
    );
    assert_eq!(rows_of(&app, T).await, Vec::<(String, i64)>::new());
    assert_eq!(reports(&app, TANDRIDGE).await.0, 404);
    assert_eq!(app.serve(T, "tandridge", "hello", "").await.0, 404);
    assert_eq!(app.get(&format!("/api/v1/tenants/{T}")).await.status(), 404);
    let gone = client_with(Some(&admin_token))
        .get(app.url(&format!("/api/v1/tenants/{T}")))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 401, "the tenant's tokens went with it");
    assert_eq!(app.get("/api/v1/tenants/the-marches").await.status(), 200);
    // The platform's chain says who deleted it, and what went.
    let entry = platform_chain(&app)
        .await
        .into_iter()
        .find(|e| e.request_id == request_id)
        .expect("the deletion is on the platform's chain");
    assert_eq!(
        (entry.action.as_str(), entry.outcome.as_str()),
        ("tenants.delete", "200")
    );
    assert!(entry.actor.starts_with("token:"), "{entry:?}");
    let detail: Value = serde_json::from_str(&entry.detail).unwrap();
    assert_eq!(detail["tenant"], T);
    assert_eq!(detail["removed"]["councils"], 4);
    let (ok, stdout, stderr) = cli(&app, work.path(), &["audit", "verify"]);
    assert!(ok, "{stdout}{stderr}");
    // The deleted chain leaves its mark, which verify reports: a chain of that tenant begun
    // again later (an import, or a forger re-creating the tenant) shows as begun again.
    let chain_entries = deleted["rows"]["audit_log"].as_i64().unwrap();
    assert!(
        stdout.contains(&format!(
            "{T}: a chain of {chain_entries} entries (last hash "
        )) && stdout.contains("was deleted with the tenant at"),
        "{stdout}"
    );
    // Deleting again finds nothing.
    let again = app
        .client
        .delete(app.url(&format!("/api/v1/tenants/{T}?confirm={T}")))
        .send()
        .await
        .unwrap();
    expect_problem(again, 404).await;
    if app.db.url != app.db.admin_url {
        // The server's role removes a chain only with its tenant, never a live one or the
        // platform's.
        let store = app.store().await;
        for (tenant, refusal) in [("the-marches", "exists"), ("_platform", "never deleted")] {
            let err = store
                .connection()
                .execute_unprepared(&format!("SELECT guildhall_forget_audit_chain('{tenant}')"))
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains(refusal), "{tenant}: {err}");
        }
        // Nor can it remove or change the mark a deleted chain left.
        for sql in [
            "DELETE FROM forgotten_audit_chains",
            "UPDATE forgotten_audit_chains SET entries = 0",
            "INSERT INTO forgotten_audit_chains VALUES ('x', 1, 'h', 1)",
        ] {
            let err = store
                .connection()
                .execute_unprepared(sql)
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains("permission denied"), "{sql}: {err}");
        }
        store.close().await.ok();
    }

    // Refused archives write nothing: one byte changed, one cut short.
    let mut flipped = archive.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x55;
    let cut = archive[..archive.len() * 2 / 3].to_vec();
    let catalogue_before = catalogue(&app).await;
    for (name, bytes) in [("flipped.tar.gz", &flipped), ("cut.tar.gz", &cut)] {
        let path = work.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let (ok, _, stderr) = cli(
            &app,
            work.path(),
            &["tenants", "import", path.to_str().unwrap()],
        );
        assert!(!ok, "{name} was imported");
        assert!(
            stderr.contains("the archive is refused"),
            "{name}: {stderr}"
        );
        assert_eq!(
            rows_of(&app, T).await,
            Vec::<(String, i64)>::new(),
            "{name}"
        );
    }
    assert_eq!(catalogue(&app).await, catalogue_before);

    // Imported into a fresh platform with its own database: the plugins are published
    // there from the archive and answer as before. What is compared is the data, not the
    // speed: the plugins get five seconds rather than the tests' one, which a first call on a
    // loaded machine (a new database's connections, a debug build) can pass.
    let fresh = TestApp::spawn_with(backend_of(&app), |config| {
        config.auth.oidc = vec![idp.issuer()];
        config.runtime.default_timeout_ms = 5_000;
        // The calls made here stay in the meter's memory: a flush landing during the
        // refused import below would add usage rows that the import did not write.
        config.metering.flush_interval_secs = 3_600;
    })
    .await
    .expect("the backend is available");
    let http_archive = work.path().join("http.tar.gz");
    std::fs::write(&http_archive, &archive).unwrap();
    let (ok, stdout, stderr) = cli(
        &fresh,
        work.path(),
        &["tenants", "import", http_archive.to_str().unwrap()],
    );
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("north-downs: imported")
            && stdout.contains("published report-a-problem 0.1.0"),
        "{stdout}"
    );
    assert_eq!(wait_for(&fresh, TANDRIDGE).await, before_tandridge);
    assert_eq!(reports(&fresh, MOLE_VALLEY).await, before_mole);
    assert_eq!(report(&fresh, TANDRIDGE, "after the move").await, "3");
    assert_eq!(
        fresh.serve(T, "mole-valley", "hello", "").await,
        (200, "Hello from mole-valley (north-downs)!".to_string())
    );
    assert_eq!(
        fresh
            .get_json(&format!("/api/v1/tenants/{T}/installs"))
            .await,
        installs_before
    );
    let tenant_after = fresh.get_json(&format!("/api/v1/tenants/{T}")).await;
    assert_eq!(tenant_after, tenant_before);
    // Members keep their roles; tokens were not carried over.
    let alice = signed_in(&idp, "alice");
    let members = alice
        .get(fresh.url(&format!("/api/v1/tenants/{T}/members")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_json(members, 200).await["members"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let stale = client_with(Some(&admin_token))
        .get(fresh.url(&format!("/api/v1/tenants/{T}")))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 401);
    // The chain came across as it was, and records the import after it.
    let audit_after = fresh
        .get_json(&format!("/api/v1/tenants/{T}/audit?limit=1000"))
        .await;
    let before_entries = audit_before["entries"].as_array().unwrap();
    let after_entries = audit_after["entries"].as_array().unwrap();
    assert_eq!(
        &after_entries[..before_entries.len()],
        before_entries.as_slice()
    );
    let last = &after_entries[before_entries.len()];
    assert_eq!(
        (last["action"].as_str(), last["actor"].as_str()),
        (Some("tenants.import"), Some("cli"))
    );
    assert!(
        platform_chain(&fresh)
            .await
            .iter()
            .any(|e| e.action == "tenants.import" && e.object == T)
    );
    let (ok, stdout, stderr) = cli(&fresh, work.path(), &["audit", "verify"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("north-downs: intact"), "{stdout}");

    // The archive crosses databases: SQLite's into PostgreSQL, PostgreSQL's into SQLite.
    let other = match backend_of(&app) {
        Backend::Sqlite => Backend::Postgres,
        Backend::Postgres => Backend::Sqlite,
    };
    if let Some(across) = TestApp::spawn_with(other, |config| {
        config.auth.oidc = vec![idp.issuer()];
        config.runtime.default_timeout_ms = 5_000;
    })
    .await
    {
        let (ok, _, stderr) = cli(
            &across,
            work.path(),
            &["tenants", "import", http_archive.to_str().unwrap()],
        );
        assert!(ok, "{stderr}");
        assert_eq!(wait_for(&across, TANDRIDGE).await, before_tandridge);
        // Times keep the precision the target stores (PostgreSQL: microseconds).
        let names = |tenant: &Value| -> Vec<String> {
            tenant["councils"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| format!("{} {} {}", c["id"], c["name"], c["gss_code"]))
                .chain([tenant["name"].to_string()])
                .collect()
        };
        assert_eq!(
            names(&across.get_json(&format!("/api/v1/tenants/{T}")).await),
            names(&tenant_before)
        );
        let (ok, stdout, stderr) = cli(&across, work.path(), &["audit", "verify"]);
        assert!(ok, "{stdout}{stderr}");
    }

    // An archive of a tenant that exists here is refused, and changes nothing.
    let held_before = rows_of(&fresh, T).await;
    let (ok, _, stderr) = cli(
        &fresh,
        work.path(),
        &["tenants", "import", http_archive.to_str().unwrap()],
    );
    assert!(!ok && stderr.contains("already exists"), "{stderr}");
    assert_eq!(rows_of(&fresh, T).await, held_before);

    // The command line's archive restores the tenant where it was deleted.
    let (ok, _, stderr) = cli(&app, work.path(), &["tenants", "import", out]);
    assert!(ok, "{stderr}");
    assert_eq!(wait_for(&app, TANDRIDGE).await, before_tandridge);
    let (ok, stdout, stderr) = cli(&app, work.path(), &["audit", "verify"]);
    assert!(ok, "{stdout}{stderr}");
}

/// Every version in the catalogue: plugin, version and digest.
async fn catalogue(app: &TestApp) -> Vec<(String, String, String)> {
    let listed = app.get_json("/api/v1/plugins").await;
    let mut versions = Vec::new();
    for plugin in listed["plugins"].as_array().unwrap() {
        for v in plugin["versions"].as_array().unwrap() {
            versions.push((
                v["plugin"].as_str().unwrap().to_string(),
                v["version"].as_str().unwrap().to_string(),
                v["digest"].as_str().unwrap().to_string(),
            ));
        }
    }
    versions
}

/// Row counts without the audit chain's.
fn outside_the_chain(rows: Vec<(String, i64)>) -> Vec<(String, i64)> {
    rows.into_iter()
        .filter(|(table, _)| table != "audit_log" && table != "audit_heads")
        .collect()
}

fn backend_of(app: &TestApp) -> Backend {
    if app.db.url.expose().starts_with("sqlite") {
        Backend::Sqlite
    } else {
        Backend::Postgres
    }
}

/// The reports at `base` once the gateway serves them (another process wrote the install;
/// the server sees it at its next poll of the revision).
async fn wait_for(app: &TestApp, base: &str) -> (u16, String) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let got = reports(app, base).await;
        if got.0 == 200 || std::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// One council deleted after confirmation: its part of each install's data, its events,
/// feedback and usage, its limited tokens and the installs only it had go; the other
/// councils keep everything.
async fn council_deletion_removes_the_councils_data(app: TestApp) {
    app.create_example_tenants().await;
    app.publish_built("hello").await;
    app.install_reports(T).await;
    assert_eq!(
        app.install_for(T, "hello", json!(["tandridge"]))
            .await
            .status(),
        201
    );
    report(&app, TANDRIDGE, "tandridge first").await;
    report(&app, MOLE_VALLEY, "mole valley first").await;
    let rated = app
        .anonymous
        .post(app.url("/s/north-downs/tandridge/hello/_feedback"))
        .json(&json!({"rating": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(rated.status(), 201);
    let tandridge_officer = app.token("officer", Some(T), Some("tandridge")).await;
    let mole_officer = app.token("officer", Some(T), Some("mole-valley")).await;
    // An install with secrets: the install's own and one council's.
    app.publish_built("garden-waste").await;
    let settings = json!({"eligible_postcodes": ["RH8"], "price_per_bin_pence": 4500,
        "confirmation_template_id": "confirm", "reminder_template_id": "remind"});
    assert_eq!(
        app.install(T, "garden-waste", "0.1.0", json!("all"), settings)
            .await
            .status(),
        201
    );
    let secret = app.url(&format!(
        "/api/v1/tenants/{T}/installs/garden-waste/secrets/pay_api_key"
    ));
    for body in [
        json!({"value": "pay-key-of-the-alliance"}),
        json!({"value": "pay-key-of-tandridge", "council": "tandridge"}),
    ] {
        let set = app.client.put(&secret).json(&body).send().await.unwrap();
        assert!(set.status().is_success(), "{}", set.status());
    }
    // An archive names the secrets to set again and holds none of their values.
    let archive = app
        .get(&format!("/api/v1/tenants/{T}/export"))
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let held = members(&archive);
    let manifest: Value = serde_json::from_slice(&held[0].1).unwrap();
    let mut named: Vec<String> = manifest["secrets_to_set_again"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{} {} {}", s["plugin"], s["council"], s["name"]))
        .collect();
    named.sort();
    assert_eq!(
        named,
        [
            r#""garden-waste" "*" "pay_api_key""#,
            r#""garden-waste" "tandridge" "pay_api_key""#
        ]
    );
    for (name, bytes) in &held {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !text.contains("pay-key-of"),
            "{name} holds a secret's value"
        );
    }
    let mole_before = reports(&app, MOLE_VALLEY).await;
    let path = format!("/api/v1/tenants/{T}/councils/tandridge");

    // Refused: no confirmation, another council's id, an officer, another alliance.
    let none = app.client.delete(app.url(&path)).send().await.unwrap();
    expect_problem(none, 428).await;
    let other = app
        .client
        .delete(app.url(&format!("{path}?confirm=mole-valley")))
        .send()
        .await
        .unwrap();
    expect_problem(other, 409).await;
    let officer = client_with(Some(&mole_officer))
        .delete(app.url(&format!("{path}?confirm=tandridge")))
        .send()
        .await
        .unwrap();
    expect_problem(officer, 403).await;
    let marches = app
        .client_as("tenant-admin", Some("the-marches"), None)
        .await;
    let hidden = marches
        .delete(app.url(&format!("{path}?confirm=tandridge")))
        .send()
        .await
        .unwrap();
    expect_problem(hidden, 404).await;
    let unknown = app
        .client
        .delete(app.url(&format!(
            "/api/v1/tenants/{T}/councils/waverley?confirm=waverley"
        )))
        .send()
        .await
        .unwrap();
    expect_problem(unknown, 404).await;
    assert_eq!(reports(&app, TANDRIDGE).await.0, 200);

    // The alliance's administrator removes the council.
    let admin = app.client_as("tenant-admin", Some(T), None).await;
    let deleted = admin
        .delete(app.url(&format!("{path}?confirm=tandridge")))
        .send()
        .await
        .unwrap();
    let deleted = expect_json(deleted, 200).await;
    assert_eq!(deleted["council"], "tandridge");
    assert_eq!(
        deleted["rows"]["installs"], 1,
        "hello served only tandridge: {deleted}"
    );
    assert!(
        deleted["rows"]["kv_entries"].as_i64().unwrap() > 0,
        "{deleted}"
    );
    assert_eq!(deleted["rows"]["feedback"], 1, "{deleted}");
    assert_eq!(deleted["rows"]["tokens"], 1, "{deleted}");
    assert_eq!(deleted["rows"]["install_secrets"], 1, "{deleted}");
    let left = app
        .get_json(&format!(
            "/api/v1/tenants/{T}/installs/garden-waste/secrets"
        ))
        .await;
    assert_eq!(
        left["set"].as_array().map(Vec::len),
        Some(1),
        "the alliance's own secret stays: {left}"
    );

    assert_eq!(reports(&app, TANDRIDGE).await.0, 404);
    assert_eq!(app.serve(T, "tandridge", "hello", "").await.0, 404);
    assert_eq!(reports(&app, MOLE_VALLEY).await, mole_before);
    let tenant = app.get_json(&format!("/api/v1/tenants/{T}")).await;
    assert!(
        tenant["councils"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["id"] != "tandridge"),
        "{tenant}"
    );
    let installs = app.get_json(&format!("/api/v1/tenants/{T}/installs")).await;
    assert!(
        installs["installs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["plugin"] != "hello"),
        "{installs}"
    );
    let revoked = client_with(Some(&tandridge_officer))
        .get(app.url(&format!("/api/v1/tenants/{T}")))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 401);
    let kept = client_with(Some(&mole_officer))
        .get(app.url(&format!("/api/v1/tenants/{T}")))
        .send()
        .await
        .unwrap();
    assert_eq!(kept.status(), 200);
    let admin_store = app.admin_store().await;
    for sql in [
        "SELECT COUNT(*) AS n FROM plugin_events WHERE council_id = 'tandridge'",
        "SELECT COUNT(*) AS n FROM feedback WHERE council_id = 'tandridge'",
        "SELECT COUNT(*) AS n FROM kv_entries WHERE key >= CAST('council/tandridge/' AS BLOB)",
    ] {
        let sql = if admin_store.backend() == sea_orm::DbBackend::Postgres {
            sql.replace(
                "CAST('council/tandridge/' AS BLOB)",
                "'council/tandridge/'::bytea",
            )
            .replace("key >=", "key < 'council/tandridge0'::bytea AND key >=")
        } else {
            sql.replace(
                "key >=",
                "key < CAST('council/tandridge0' AS BLOB) AND key >=",
            )
        };
        let row = admin_store
            .connection()
            .query_one_raw(sea_orm::Statement::from_string(
                admin_store.backend(),
                format!("SELECT CAST(n AS BIGINT) AS n FROM ({sql}) counted"),
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.try_get::<i64>("", "n").unwrap(), 0, "{sql}");
    }
    admin_store.close().await.ok();
    // On the tenant's chain, with what went.
    let audit = app
        .get_json(&format!("/api/v1/tenants/{T}/audit?limit=1000"))
        .await;
    let entry = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|e| e["action"] == "councils.delete" && e["outcome"] == "200")
        .expect("the deletion is on the tenant's chain")
        .clone();
    let detail: Value = serde_json::from_str(entry["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["removed"]["councils"], 1, "{detail}");
    let work = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = cli(&app, work.path(), &["audit", "verify"]);
    assert!(ok, "{stdout}{stderr}");

    // A council of the same id added again starts with nothing.
    let again = app
        .put_json(
            &path,
            &json!({"name": "Tandridge District Council", "gss_code": "E07000215"}),
        )
        .await;
    assert_eq!(again.status(), 201);
    assert_eq!(report(&app, TANDRIDGE, "a new start").await, "1");
}
