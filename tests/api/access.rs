//! Identity and isolation: tokens, OIDC, roles, the cross-tenant matrix, row-level
//! security, the audit chain and its tamper check, and no secrets in logs.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use guildhall_authz::DEFAULT_POLICIES;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, client_with, expect_problem, guildhall, serve_process, text,
};
use crate::on_both_databases;

pub(crate) const A: &str = "north-downs";
pub(crate) const B: &str = "the-marches";
/// Strings that only tenant B's data contains.
const B_DATA: &[&str] = &[
    "Marches Digital",
    "shropshire",
    "herefordshire",
    "Shropshire",
];

pub(crate) async fn two_alliances(app: &TestApp) {
    app.create_example_tenants().await;
    app.publish_built("hello").await;
    for tenant in [A, B] {
        let r = app
            .install(tenant, "hello", "0.1.0", json!("all"), json!({}))
            .await;
        assert_eq!(r.status(), 201);
    }
}

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

/// Every `/api/v1` operation of the OpenAPI document with its declared access.
pub(crate) async fn operations(app: &TestApp) -> Vec<(String, String, String)> {
    let doc = app.get_json("/api/openapi.json").await;
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/api/v1/") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            let access = op["x-guildhall-access"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} declares no access"));
            assert_eq!(op["security"][0]["bearer"], json!([]), "{method} {path}");
            ops.push((method.to_uppercase(), path.clone(), access.to_string()));
        }
    }
    assert!(ops.len() >= 18, "only {} operations", ops.len());
    ops
}

pub(crate) fn concrete(path: &str, tenant: &str) -> String {
    let council = if tenant == A {
        "tandridge"
    } else {
        "shropshire"
    };
    path.replace("{tenant}", tenant)
        .replace("{council}", council)
        .replace("{plugin}", "hello")
        .replace("{version}", "9.9.9")
        .replace("{subject}", "someone")
        .replace("{token}", "0000000000000000")
}

pub(crate) async fn send(
    client: &reqwest::Client,
    app: &TestApp,
    method: &str,
    path: &str,
) -> (u16, String) {
    let url = app.url(path);
    let request = match method {
        "GET" => client.get(url),
        "DELETE" => client.delete(url),
        "PUT" => client.put(url).json(&json!({})),
        "POST" if path.ends_with("/versions") => client
            .post(url)
            .multipart(reqwest::multipart::Form::new().text("manifest", "not toml")),
        "POST" => client.post(url).json(&json!({})),
        other => panic!("method {other}"),
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

async fn cross_tenant_matrix(app: TestApp) {
    two_alliances(&app).await;
    let ops = operations(&app).await;
    let mut callers: Vec<(String, Option<&str>, reqwest::Client)> = vec![
        ("operator".into(), None, app.client.clone()),
        (
            "publisher".into(),
            None,
            app.client_for(&app.token("publisher", None, None).await),
        ),
    ];
    for home in [A, B] {
        for role in ["tenant-admin", "officer", "auditor"] {
            let token = app.token(role, Some(home), None).await;
            callers.push((role.into(), Some(home), app.client_for(&token)));
        }
    }
    let mut failures = Vec::new();
    // Reads first, then writes, so that nothing a write changes hides a read's answer.
    let mut ordered = ops.clone();
    ordered.sort_by_key(|(method, _, _)| method != "GET");
    for (method, path, access) in &ordered {
        // Nobody anonymous gets in, anywhere.
        let (status, body) = send(&app.anonymous, &app, method, &concrete(path, B)).await;
        if status != 401 {
            failures.push(format!("anonymous {method} {path}: {status} {body}"));
        }
        for (role, home, client) in &callers {
            let target = B;
            let want = expect(access, role, *home, target);
            let (status, body) = send(client, &app, method, &concrete(path, target)).await;
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
    let admin_a = app.client_for(&app.token("tenant-admin", Some(A), None).await);
    let list: Value = admin_a
        .get(app.url("/api/v1/tenants"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [A]);
}

async fn tokens_are_shown_once_stored_hashed_and_revocable(app: TestApp) {
    app.create_example_tenants().await;
    let admin = app.client_for(&app.token("tenant-admin", Some(A), None).await);
    let response = admin
        .post(app.url(&format!("/api/v1/tenants/{A}/tokens")))
        .json(&json!({"name": "ci", "role": "auditor", "expires_in_days": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let minted: Value = response.json().await.unwrap();
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
    assert_eq!(audit.status(), 200);
    let audit: Value = audit.json().await.unwrap();
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
    let secret = crate::helpers::token_secret(&token);
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
    let admin_b = app.client_for(&app.token("tenant-admin", Some(B), None).await);
    expect_problem(
        admin_b
            .delete(app.url(&format!("/api/v1/tenants/{A}/tokens/{id}")))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    expect_problem(
        admin_b
            .delete(app.url(&format!("/api/v1/tenants/{B}/tokens/{id}")))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;

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
    for body in [
        json!({"name": "x", "role": "operator"}),
        json!({"name": "x", "role": "officer", "council": "shropshire"}),
        json!({"name": "x", "role": "auditor", "expires_in_days": 400}),
    ] {
        let before = store
            .connection()
            .query_one_raw(Statement::from_string(
                store.backend(),
                "SELECT count(*) FROM tokens",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<i64>(0)
            .unwrap();
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
        let after = store
            .connection()
            .query_one_raw(Statement::from_string(
                store.backend(),
                "SELECT count(*) FROM tokens",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<i64>(0)
            .unwrap();
        assert_eq!(before, after, "{body}");
    }
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub(crate) struct Idp {
    key: p256::ecdsa::SigningKey,
    _dir: tempfile::TempDir,
    jwks: std::path::PathBuf,
}

impl Idp {
    pub(crate) fn new() -> Self {
        let key = p256::ecdsa::SigningKey::random(&mut rsa::rand_core::OsRng);
        let point = key.verifying_key().to_encoded_point(false);
        let jwks = json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
        }]});
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, jwks.to_string()).unwrap();
        Self {
            key,
            _dir: dir,
            jwks: path,
        }
    }

    pub(crate) fn sign(&self, claims: Value) -> String {
        use p256::pkcs8::EncodePrivateKey as _;
        let der = self.key.to_pkcs8_der().unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes()),
        )
        .unwrap()
    }

    pub(crate) fn issuer(&self) -> guildhall_authz::OidcIssuer {
        guildhall_authz::OidcIssuer {
            id: "north-downs-idp".into(),
            issuer: "https://login.north-downs.example/".into(),
            audience: "guildhall".into(),
            jwks_url: None,
            jwks_file: Some(self.jwks.clone()),
            tenants: vec![],
            leeway_secs: 30,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_subjects_get_their_roles_from_member_bindings_on_every_replica() {
    let idp = Idp::new();
    let issuer = idp.issuer();
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.auth.oidc = vec![issuer.clone()])
        .await
        .unwrap();
    app.create_example_tenants().await;
    // A second replica on the same database.
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::helpers::test_config(&app.db, dir.path());
    config.auth.oidc = vec![issuer];
    let replica = guildhall::Server::start(&config).await.unwrap();
    let on_replica = |path: &str| format!("http://{}{path}", replica.addr());

    let claims = |sub: &str, exp: u64| {
        json!({"iss": "https://login.north-downs.example/", "aud": "guildhall", "sub": sub,
               "iat": now(), "exp": exp})
    };
    let jwt = idp.sign(claims("alice@tandridge", now() + 600));
    let alice = client_with(Some(&jwt));
    // Authenticated but bound to nothing: A is hidden.
    expect_problem(
        alice
            .get(on_replica(&format!("/api/v1/tenants/{A}")))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    // Bind her as an officer of A through the first replica; the second honours it on
    // the very next request.
    let bound = app
        .put_json(
            &format!("/api/v1/tenants/{A}/members/alice@tandridge"),
            &json!({"issuer": "north-downs-idp", "roles": ["officer"], "council": "tandridge"}),
        )
        .await;
    assert_eq!(bound.status(), 201);
    let bound: Value = bound.json().await.unwrap();
    assert_eq!(bound["subject"], "oidc:north-downs-idp:alice@tandridge");
    assert_eq!(bound["issuer"], "north-downs-idp");
    assert_eq!(bound["sub"], "alice@tandridge");
    let tenant = alice
        .get(on_replica(&format!("/api/v1/tenants/{A}")))
        .send()
        .await
        .unwrap();
    assert_eq!(tenant.status(), 200);
    expect_problem(
        alice
            .put(on_replica(&format!("/api/v1/tenants/{A}/installs/hello")))
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    expect_problem(
        alice
            .get(on_replica(&format!("/api/v1/tenants/{B}")))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    // Platform roles cannot be handed out in a tenant.
    expect_problem(
        app.put_json(
            &format!("/api/v1/tenants/{A}/members/oidc:north-downs-idp:alice@tandridge"),
            &json!({"roles": ["operator"]}),
        )
        .await,
        422,
    )
    .await;
    // Removed: gone on the next request, on both replicas.
    let removed = app
        .put_json(
            &format!("/api/v1/tenants/{A}/members/oidc:north-downs-idp:alice@tandridge"),
            &json!({"roles": []}),
        )
        .await;
    assert_eq!(removed.status(), 204);
    for url in [
        on_replica(&format!("/api/v1/tenants/{A}")),
        app.url(&format!("/api/v1/tenants/{A}")),
    ] {
        expect_problem(alice.get(url).send().await.unwrap(), 404).await;
    }

    // A provider cannot name a token's subject and so inherit its roles: its `sub` is
    // `oidc:<issuer>:token:…`, a person with no role anywhere.
    let operator = app.token("operator", None, None).await;
    let stolen = format!("token:{}", operator.split('_').nth(1).unwrap());
    let posing = client_with(Some(&idp.sign(claims(&stolen, now() + 600))));
    let listed: Value = posing
        .get(app.url("/api/v1/tenants"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["tenants"], json!([]));
    expect_problem(
        posing
            .post(app.url("/api/v1/tenants"))
            .json(&json!({"id": "stolen", "name": "Stolen"}))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;

    // Expired, not yet valid, wrong audience, another key: 401 with the reason.
    let other = Idp::new();
    for (jwt, reason) in [
        (idp.sign(claims("alice@tandridge", now() - 600)), "expired"),
        (
            idp.sign(
                json!({"iss": "https://login.north-downs.example/", "aud": "guildhall",
                            "sub": "alice@tandridge", "nbf": now() + 600, "exp": now() + 1200}),
            ),
            "not valid yet",
        ),
        (
            idp.sign(
                json!({"iss": "https://login.north-downs.example/", "aud": "someone-else",
                            "sub": "alice@tandridge", "exp": now() + 600}),
            ),
            "audience",
        ),
        (
            other.sign(claims("alice@tandridge", now() + 600)),
            "signature",
        ),
    ] {
        let problem = expect_problem(
            client_with(Some(&jwt))
                .get(app.url("/api/v1/tenants"))
                .send()
                .await
                .unwrap(),
            401,
        )
        .await;
        let detail = problem["detail"].as_str().unwrap().to_lowercase();
        assert!(detail.contains(reason), "{reason}: {detail}");
        assert!(!detail.contains(&jwt));
    }
    replica.shutdown();
}

async fn audit_chain_verifies_and_shows_tampering(app: TestApp) {
    two_alliances(&app).await;
    let store = app.admin_store().await;
    // Some history: installs, a council, a plugin event (report-a-problem emits one).
    app.publish_built("report-a-problem").await;
    let services = json!([{"service_code": "pothole", "service_name": "Pothole",
        "description": "A hole", "metadata": false, "type": "realtime", "keywords": "road",
        "group": "highways"}]);
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

async fn same_plugin_in_two_tenants_shares_nothing(app: TestApp) {
    app.create_example_tenants().await;
    app.publish_built("report-a-problem").await;
    for (tenant, name) in [(A, "Pothole (North Downs)"), (B, "Pothole (Marches)")] {
        let services = json!([{"service_code": "pothole", "service_name": name,
            "description": "A hole", "metadata": false, "type": "realtime", "keywords": "road",
            "group": "highways"}]);
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
        app.anonymous
            .post(app.url(&format!(
                "/s/{tenant}/{council}/report-a-problem/requests.json"
            )))
            .form(&[
                ("service_code", "pothole"),
                ("address_string", "High Street"),
                ("description", description),
            ])
            .send()
    };
    let a: Value = report(A, "tandridge", "secret of north downs")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b: Value = report(B, "shropshire", "marches only")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Both tenants' first request: the same id, different data.
    let id_a = a[0]["service_request_id"].as_str().unwrap();
    let id_b = b[0]["service_request_id"].as_str().unwrap();
    assert_eq!(id_a, id_b);
    let seen_by_b = app
        .anonymous
        .get(app.url(&format!(
            "/s/{B}/shropshire/report-a-problem/requests/{id_a}.json"
        )))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        seen_by_b.contains("marches only") && !seen_by_b.contains("north downs"),
        "{seen_by_b}"
    );
    let list_b = app
        .anonymous
        .get(app.url(&format!("/s/{B}/shropshire/report-a-problem/requests.json")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!list_b.contains("north downs"), "{list_b}");
    // Each sees its own configuration.
    let services_b = app
        .anonymous
        .get(app.url(&format!("/s/{B}/shropshire/report-a-problem/services.json")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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
            client
                .post(url)
                .json(&json!({"status": "closed", "status_notes": "Filled in"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(update(app.anonymous.clone()).await, 401);
    let auditor = app.token("auditor", Some(A), None).await;
    assert_eq!(update(app.client_for(&auditor)).await, 403);
    let officer_b = app.token("officer", Some(B), None).await;
    assert_eq!(update(app.client_for(&officer_b)).await, 403);
    let officer_elsewhere = app.token("officer", Some(A), Some("mole-valley")).await;
    assert_eq!(update(app.client_for(&officer_elsewhere)).await, 403);
    let officer = app.token("officer", Some(A), Some("tandridge")).await;
    assert_eq!(update(app.client_for(&officer)).await, 200);
    let closed = app
        .anonymous
        .get(app.url(&format!(
            "/s/{A}/tandridge/report-a-problem/requests/{id_a}.json"
        )))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        closed.contains("closed") && closed.contains("Filled in"),
        "{closed}"
    );
    // B's request with the same id is untouched.
    let still_open = app
        .anonymous
        .get(app.url(&format!(
            "/s/{B}/shropshire/report-a-problem/requests/{id_a}.json"
        )))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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

#[test]
fn no_tokens_or_secrets_in_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("GUILDHALL_LOG__FILTER", "debug")];
    let (mut child, addr, logs) = serve_process(dir.path(), &env);
    let token = crate::helpers::cli_operator_token(dir.path(), &env);
    let secret = crate::helpers::token_secret(&token).to_string();
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
        let minted: Value = operator
            .post(url(&format!("/api/v1/tenants/{A}/tokens")))
            .json(&json!({"name": "x", "role": "auditor"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
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
    let minted_secret = crate::helpers::token_secret(&minted);
    for needle in [secret.as_str(), minted_secret, &forged[23..]] {
        assert!(!logs.contains(needle), "a secret reached the log:\n{logs}");
    }
}

on_both_databases!(
    cross_tenant_matrix,
    tokens_are_shown_once_stored_hashed_and_revocable,
    audit_chain_verifies_and_shows_tampering,
    same_plugin_in_two_tenants_shares_nothing,
);
